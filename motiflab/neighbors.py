"""k-nearest-neighbour graph of the feature vectors and its fuzzy (UMAP-style) weights.

The force-relaxed layout (:mod:`motiflab.layout`) attracts every feature to its
k nearest neighbours in feature space (Dan et al. 2022, Materials and Methods,
"FR clustering": k = 10, determined once from the feature matrix X).  This
module builds that graph:

* :func:`knn_graph` -- the k nearest neighbours of every row of ``X`` (self
  excluded).  Small inputs use an exact, blocked brute-force search (one BLAS
  matrix product per block of rows, never an N x N matrix); large inputs use
  our own approximate search: an inverted file of ~sqrt(N) k-means cells,
  each point searched exactly (BLAS) in its 16 nearest cells; numba kernels
  are cached on disk.  pynndescent is available as ``method="nndescent"``;
  it is not the default because it recompiles much of itself in every new
  process (1-3 minutes on a 2-core machine), which dwarfs the search itself.
* :func:`fuzzy_graph` -- turns the neighbour lists into a symmetric sparse
  matrix of similarities in (0, 1]: per point, ``rho`` is the distance to the
  nearest neighbour and ``sigma`` is found by bisection so that
  ``sum_j exp(-(d_j - rho) / sigma) = log2(k)``; the directed weights are then
  symmetrised with the fuzzy union ``w = a + b - a * b``.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ._blas import single_threaded_blas
from ._neighbors_kernels import CHUNK, drop_self, finalize, fuzzy_weights, push_block, smallest_k
from ._threads import for_ranges
from .errors import MotifLabError

__all__ = ["knn_graph", "fuzzy_graph", "EXACT_MAX_POINTS", "check_features", "check_graph"]

#: Largest N for which ``method="auto"`` uses the exact search, so graphs up to
#: this size have recall 1.  Measured on a (shared, noisy) 2-core machine with an
#: imbalanced 66-D Gaussian mixture at N = 20 000: exact 1.1-1.3 s, approximate
#: 0.55 s at recall 0.96 (it was 2.9 s against 3.2 s when this limit was set;
#: both searches have got faster since).  The exact search grows as N^2, the
#: approximate one as N^1.5 (N = 100 000: approximate 3.7-4.3 s, recall 0.91).
EXACT_MAX_POINTS = 20_000

# Memory for one block of the distance matrix (float32 entries).
_BLOCK_BYTES = 32 * 2**20


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------
def check_features(X, n_neighbors):
    """The feature matrix as C-contiguous float32, or a clear error.

    Shared by :func:`knn_graph` and :class:`motiflab.layout.FRLayout`, so both
    word the same mistake the same way.

    Parameters
    ----------
    X : array-like, shape (n_points, n_features)
        Finite real features.
    n_neighbors : int
        k; ``X`` needs at least ``k + 1`` rows.

    Returns
    -------
    ndarray of float32, shape (n_points, n_features)
        ``X`` itself when it already is C-contiguous float32, else a copy.

    Raises
    ------
    MotifLabError
        If ``X`` is not a 2-D real array, has NaN/inf, no columns or too few
        rows, or ``n_neighbors`` is not a positive integer.
    """
    try:
        X = np.asarray(X)
    except Exception as exc:  # ragged lists etc.
        raise MotifLabError(
            f"Could not convert the features to an array ({exc}); pass a 2-D "
            "array of shape (n_points, n_features)."
        ) from None
    if X.ndim != 2:
        raise MotifLabError(
            f"Features must be a 2-D array (n_points, n_features); got {X.ndim}-D "
            f"with shape {X.shape}. Reshape it, e.g. X.reshape(len(X), -1)."
        )
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise MotifLabError(
            f"Features must be real numbers; got dtype {X.dtype}. Convert with "
            "X.astype(np.float32) (use np.abs for complex moments)."
        )
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1:
        raise MotifLabError(f"n_neighbors must be a positive integer; got {n_neighbors!r}.")
    n = X.shape[0]
    if n < n_neighbors + 1:
        raise MotifLabError(
            f"Need at least n_neighbors + 1 = {n_neighbors + 1} points to find "
            f"{n_neighbors} neighbours of each point (self excluded); got {n}. "
            "Use more points or a smaller n_neighbors."
        )
    if X.shape[1] < 1:
        raise MotifLabError("Features have zero columns; pass at least one feature per point.")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        bad = int(np.count_nonzero(~np.isfinite(X).all(axis=1)))
        raise MotifLabError(
            f"Features contain NaN or infinite values ({bad} of {n} rows). Remove "
            "or impute those rows (e.g. X[np.isfinite(X).all(axis=1)])."
        )
    return X


def check_graph(graph, n):
    """A user-supplied similarity graph as the layout needs it, or a clear error.

    Parameters
    ----------
    graph : scipy.sparse matrix, shape (n, n)
        Non-negative, finite weights (e.g. from :func:`fuzzy_graph`).
    n : int
        Number of points.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n, n)
        float32 weights without the diagonal and explicit zeros, duplicates
        summed, column indices sorted.

    Raises
    ------
    MotifLabError
        If ``graph`` is not sparse, has the wrong shape, or negative / non-finite weights.
    """
    if not sp.issparse(graph):
        raise MotifLabError(
            "graph must be a scipy.sparse matrix (e.g. from motiflab.neighbors.fuzzy_graph); "
            f"got {type(graph).__name__}."
        )
    if graph.shape != (n, n):
        raise MotifLabError(
            f"graph has shape {graph.shape} but X has {n} rows; the graph must be "
            f"({n}, {n}). Recompute it for these features."
        )
    c = sp.coo_matrix(graph)
    keep = c.row != c.col  # a point does not attract itself
    g = sp.csr_matrix((c.data[keep].astype(np.float32), (c.row[keep], c.col[keep])), shape=(n, n))
    g.sum_duplicates()
    g.eliminate_zeros()
    g.sort_indices()
    if g.nnz and (not np.isfinite(g.data).all() or g.data.min() < 0):
        raise MotifLabError("graph weights must be finite and non-negative.")
    return g


# --------------------------------------------------------------------------
# shared machinery: BLAS dot-product blocks -> per-row candidate lists
# --------------------------------------------------------------------------
def _new_lists(n, kk):
    return np.full((n, kk), np.inf, dtype=np.float32), np.full((n, kk), -1, dtype=np.int64)


def _done(X, hi, k):
    out_idx = np.empty((X.shape[0], k), dtype=np.int32)
    out_dist = np.empty((X.shape[0], k), dtype=np.float32)
    for_ranges(finalize, X.shape[0], X, hi, k, out_idx, out_dist, min_size=256)
    return out_idx, out_dist


# --------------------------------------------------------------------------
# exact search
# --------------------------------------------------------------------------
def _exact_knn(X, k):
    """Exact k-NN by blocked brute force: one BLAS product per block of rows."""
    n = X.shape[0]
    sq = np.einsum("ij,ij->i", X, X, dtype=np.float64).astype(np.float32)
    # a few spare candidates absorb float32 rounding of the BLAS ranking
    kk = min(n - 1, k + max(4, k // 2))
    hd, hi = _new_lists(n, kk)
    block = int(max(1, min(n, _BLOCK_BYTES // (4 * n))))
    members = np.arange(n, dtype=np.int64)
    # BLAS runs on one thread: an idle OpenBLAS worker spins for ~0.1 s after its
    # last product and takes a core from the threaded kernels that follow (the
    # merge, and the FR layout: at 5k points its first ~50 iterations ran 2.4x
    # slower); and a threaded sgemm rounds differently with the thread count, so
    # the float32 pre-ranking (and, at a near tie, a neighbour) could depend on it.
    # Above ~1.5e10 flops (12k points at 66-D) a second BLAS thread once saved
    # ~0.2 s (20k: 1.0 s against 1.2 s on an idle machine); on the shared 2-core
    # machine one thread was faster (19.5k: 1.6-1.8 s against 2.7-3.0 s).
    with single_threaded_blas():
        for s in range(0, n, block):
            e = min(n, s + block)
            for_ranges(push_block, e - s, X[s:e] @ X.T, sq, members[s:e], members, hd, hi, min_size=32)
    return _done(X, hi, k)


# --------------------------------------------------------------------------
# approximate search: inverted file (k-means cells), exact inside probed cells
# --------------------------------------------------------------------------
def _nearest_cells(X, cent, n_probe):
    """Indices of the ``n_probe`` nearest centroids of every row (blocked BLAS)."""
    n, C = X.shape[0], cent.shape[0]
    csq = np.einsum("ij,ij->i", cent, cent)
    out = np.empty((n, n_probe), dtype=np.int64)
    block = int(max(1, min(n, _BLOCK_BYTES // (4 * C))))
    for s in range(0, n, block):
        D = csq[None, :] - 2.0 * (X[s:s + block] @ cent.T)
        if n_probe == 1:
            out[s:s + block, 0] = np.argmin(D, axis=1)
        elif n_probe < C:
            # np.argpartition pays a per-row overhead on these short rows (0.35 s for
            # 34k x 184); a threaded insertion into a sorted list of n_probe is ~20x faster
            for_ranges(smallest_k, len(D), D, out[s:s + block], min_size=256)
        else:
            out[s:s + block] = np.arange(C)
    return out


def _cell_lists(assign, C):
    """CSR-style member lists of each cell (stable order -> deterministic)."""
    order = np.argsort(assign, kind="stable")
    starts = np.searchsorted(assign[order], np.arange(C + 1))
    return order, starts


def _ivf_knn(X, k, random_state, n_cells=None, n_probe=16, n_lloyd=2, extra=5):
    """Approximate k-NN: k-means cells; each point searched exactly in its nearest cells.

    ``n_cells ~ sqrt(N)`` centroids start from a seeded random subset and take
    ``n_lloyd`` Lloyd steps.  Each point is a member of its nearest cell and a
    query of its ``n_probe`` nearest cells; every cell is one BLAS product
    (its queries x its members), so the work is ~ N * n_probe * N / n_cells
    distance evaluations instead of N^2.
    """
    n, dim = X.shape
    C = int(n_cells) if n_cells else max(1, int(round(math.sqrt(n))))
    C = min(C, n)
    n_probe = int(min(n_probe, C))
    rng = np.random.default_rng(_seed_int(random_state))
    cent = X[np.sort(rng.choice(n, C, replace=False))].astype(np.float32)
    for _ in range(n_lloyd):
        assign = _nearest_cells(X, cent, 1)[:, 0]
        order, starts = _cell_lists(assign, C)
        cnt = np.diff(starts)
        nz = cnt > 0
        sums = np.add.reduceat(X[order].astype(np.float64), starts[:-1][nz], axis=0)
        cent[nz] = (sums / cnt[nz, None]).astype(np.float32)
    assign = _nearest_cells(X, cent, 1)[:, 0]
    morder, mstart = _cell_lists(assign, C)
    probes = _nearest_cells(X, cent, n_probe)
    flat = probes.ravel()
    qorder = np.argsort(flat, kind="stable")
    qstart = np.searchsorted(flat[qorder], np.arange(C + 1))
    qpts = (qorder // n_probe).astype(np.int64)
    sq = np.einsum("ij,ij->i", X, X, dtype=np.float64).astype(np.float32)
    kk = min(n - 1, k + extra)
    hd, hi = _new_lists(n, kk)
    # Members stored cell by cell (a slice per cell, no gather); the query rows
    # and the dot products go to buffers reused for every cell, so the loop
    # does not page-fault fresh memory ~200 times.
    Xm = X[morder]
    sqm = sq[morder]
    morder = morder.astype(np.int64)
    qmax = int(np.diff(qstart).max(initial=0))
    mmax = int(np.diff(mstart).max(initial=0))
    qbuf = np.empty((qmax, dim), dtype=np.float32)
    gbuf = np.empty(qmax * mmax, dtype=np.float32)
    # One BLAS thread: the products are small (~3000 x 66 x 200), and idle
    # OpenBLAS workers spin after each one, taking the cores from the
    # threaded merge that follows it (measured: merge 0.44 s -> 0.12 s at 34k).
    with single_threaded_blas():
        for c in range(C):
            m0, m1 = mstart[c], mstart[c + 1]
            Q = qpts[qstart[c]:qstart[c + 1]]
            if m1 == m0 or Q.size == 0:
                continue
            Xq = np.take(X, Q, axis=0, out=qbuf[:Q.size])
            G = gbuf[: Q.size * (m1 - m0)].reshape(Q.size, m1 - m0)
            np.matmul(Xq, Xm[m0:m1].T, out=G)
            for_ranges(push_block, Q.size, G, sqm[m0:m1], Q, morder[m0:m1], hd, hi, min_size=32)
    return _done(X, hi, k)


def memberships(dist, target):
    """Directed UMAP-style memberships of sorted neighbour distances (float32, the shape of ``dist``).

    Per row ``exp(-(d - rho) / sigma)``, ``rho`` the nearest distance and
    ``sigma`` found by bisection so the row sums to ``target``.
    """
    dist = np.ascontiguousarray(dist)
    w = np.empty(dist.shape, dtype=np.float32)
    for_ranges(fuzzy_weights, dist.shape[0], dist, float(target), 64, 1e-5, w, min_size=256)
    return w


def _seed_int(random_state):
    """Non-negative int seed from ``random_state`` (None -> 0, so results stay reproducible)."""
    if random_state is None:
        return 0
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    raise MotifLabError(f"random_state must be a non-negative int or None; got {random_state!r}.")


# --------------------------------------------------------------------------
# pynndescent (optional)
# --------------------------------------------------------------------------
def _nndescent_knn(X, k, random_state):
    try:
        from pynndescent import NNDescent
    except ImportError:  # pragma: no cover - pynndescent is a dependency
        raise MotifLabError(
            "method='nndescent' needs pynndescent (pip install pynndescent); or use method='exact'."
        ) from None
    seed = _seed_int(random_state) % (2**31 - 1)
    nnd = NNDescent(
        X,
        n_neighbors=k + 1,
        metric="euclidean",
        random_state=seed,
        n_jobs=None,  # pynndescent's n_jobs would change numba's global thread count
        low_memory=True,
        compressed=True,
        verbose=False,
    )
    idx, dist = nnd.neighbor_graph
    out_idx = np.empty((X.shape[0], k), dtype=np.int32)
    out_dist = np.empty((X.shape[0], k), dtype=np.float32)
    drop_self(np.ascontiguousarray(idx, dtype=np.int64), np.ascontiguousarray(dist, dtype=np.float32), k,
              out_idx, out_dist)
    return out_idx, out_dist


def knn_graph(X, n_neighbors=10, random_state=0, method="auto"):
    """k nearest neighbours (Euclidean) of every row of ``X``, excluding the row itself.

    Parameters
    ----------
    X : array-like, shape (n_points, n_features)
        Feature vectors (e.g. the 66 Zernike moments of each patch).  Finite
        real numbers; converted to float32.
    n_neighbors : int, default 10
        k, the number of neighbours per point (the paper uses k = 10).
        ``X`` needs at least ``k + 1`` rows.
    random_state : int or None, default 0
        Seed for the approximate searches (None means 0); the exact search
        does not use it.
    method : {"auto", "exact", "approx", "nndescent"}, default "auto"
        ``"exact"``: blocked brute force (one BLAS product per block of rows
        of at most ~32 MB, a parallel numba top-k and an exact float64
        re-ranking of the candidates); O(N^2 d) time, O(N k) memory.
        ``"approx"``: inverted file -- ~sqrt(N) k-means cells (seeded
        start, 2 Lloyd steps), each point searched exactly in its 16 nearest
        cells with one BLAS product per cell; O(N k) memory, O(N^1.5 d)
        time; recall 0.91-0.96 on hard 66-D Gaussian mixtures (full
        intrinsic dimension), higher on lower-dimensional feature sets.
        ``"nndescent"``: pynndescent's NNDescent (similar recall; compiles
        for a minute or more on first use in each process).
        ``"auto"``: exact for N <= :data:`EXACT_MAX_POINTS`, else approx.

    Returns
    -------
    indices : ndarray of int32, shape (n_points, n_neighbors)
        Neighbour indices, nearest first.
    distances : ndarray of float32, shape (n_points, n_neighbors)
        The matching Euclidean distances (non-decreasing along each row).

    Raises
    ------
    MotifLabError
        If ``X`` is not 2-D, contains NaN/inf, has fewer than
        ``n_neighbors + 1`` rows, or ``method`` is unknown.

    Notes
    -----
    All methods are deterministic: the exact one breaks distance ties by the
    smaller index; the approximate ones are seeded by ``random_state``, and
    ``"exact"`` and ``"approx"`` are also independent of the number of
    threads (each point only updates its own list, cells are visited in a
    fixed order).
    """
    X = check_features(X, n_neighbors)
    k = int(n_neighbors)
    if method not in ("auto", "exact", "approx", "nndescent"):
        raise MotifLabError(
            f"method must be 'auto', 'exact', 'approx' or 'nndescent'; got {method!r}."
        )
    _seed_int(random_state)
    if method == "auto":
        method = "exact" if X.shape[0] <= EXACT_MAX_POINTS else "approx"
    if method == "exact":
        return _exact_knn(X, k)
    if method == "approx":
        return _ivf_knn(X, k, random_state)
    return _nndescent_knn(X, k, random_state)


# --------------------------------------------------------------------------
# fuzzy graph
# --------------------------------------------------------------------------
def fuzzy_graph(indices, distances):
    """Symmetric fuzzy-similarity graph from k-NN lists (UMAP-style weights).

    For point ``i`` with neighbour distances ``d_1 <= ... <= d_k``,
    ``rho_i = d_1`` and ``sigma_i`` solves
    ``sum_j exp(-max(d_j - rho_i, 0) / sigma_i) = log2(k)`` (bisection); the
    directed weight is ``a_ij = exp(-max(d_ij - rho_i, 0) / sigma_i)``, so every
    point's nearest neighbour has weight 1.  The graph is symmetrised with the
    fuzzy union ``w_ij = a_ij + a_ji - a_ij * a_ji``.

    Parameters
    ----------
    indices : array-like of int, shape (n_points, k)
        Neighbour indices from :func:`knn_graph` (self excluded, nearest first).
    distances : array-like of float, shape (n_points, k)
        Matching non-negative distances, non-decreasing along each row.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_points, n_points)
        Symmetric, float32 weights in (0, 1], sorted column indices, no
        diagonal, at most ``2 k n_points`` stored entries.

    Raises
    ------
    MotifLabError
        On mismatched shapes, indices out of range or pointing at the row
        itself, or negative / non-finite distances.
    """
    idx = np.asarray(indices)
    dist = np.asarray(distances)
    if idx.ndim != 2 or dist.shape != idx.shape:
        raise MotifLabError(
            f"indices and distances must be 2-D arrays of the same shape (n_points, k); "
            f"got {idx.shape} and {dist.shape}. Pass the output of knn_graph."
        )
    n, k = idx.shape
    if n == 0 or k == 0:
        raise MotifLabError("Empty neighbour lists; run knn_graph on at least k + 1 points first.")
    if not np.issubdtype(idx.dtype, np.integer):
        raise MotifLabError(f"indices must be integers; got dtype {idx.dtype}.")
    if idx.min() < 0 or idx.max() >= n:
        raise MotifLabError(
            f"Neighbour indices must lie in [0, {n}); got range [{idx.min()}, {idx.max()}]."
        )
    if np.any(idx == np.arange(n)[:, None]):
        raise MotifLabError(
            "A point is listed as its own neighbour; drop self from the lists "
            "(knn_graph already does)."
        )
    dist = np.ascontiguousarray(dist, dtype=np.float32)
    if not np.isfinite(dist).all() or (dist < 0).any():
        raise MotifLabError("Neighbour distances must be finite and non-negative.")
    # bisection assumes sorted rows; sorting is cheap and makes the contract forgiving
    if k > 1 and np.any(np.diff(dist, axis=1) < 0):
        order = np.argsort(dist, axis=1, kind="stable")
        dist = np.take_along_axis(dist, order, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
    target = math.log2(k) if k > 1 else 1.0
    w = memberships(dist, target)
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    P = sp.csr_matrix((w.ravel(), (rows, idx.ravel().astype(np.int32))), shape=(n, n), dtype=np.float32)
    P.sum_duplicates()
    Pt = P.T.tocsr()
    S = (P + Pt - P.multiply(Pt)).tocsr()
    S.eliminate_zeros()
    S.sort_indices()
    S.data = S.data.astype(np.float32, copy=False)
    return S


# The old private names, still importable from here (tests and warmup checks use some).
_check_X = check_features
_CHUNK, _drop_self, _finalize, _fuzzy_weights = CHUNK, drop_self, finalize, fuzzy_weights
_push_block, _smallest_k = push_block, smallest_k
