"""numba kernels of the k-NN search and the fuzzy graph (:mod:`motiflab.neighbors`).

* :func:`push_block` and :func:`finalize` -- every search (exact and
  approximate) ranks candidates from BLAS dot-product blocks into per-row
  sorted lists, then re-ranks each row's candidates by exact float64
  distances.
* :func:`smallest_k` -- the nearest k-means cells of each point.
* :func:`drop_self` -- removes each point from its own pynndescent list.
* :func:`fuzzy_weights` -- the directed UMAP-style memberships.

Each point only writes its own row, so every kernel gives the same bits for
any number of threads.  The threaded kernels work on a range of rows
``start..stop`` and release the GIL; :func:`motiflab._threads.for_ranges`
runs the ranges.  The Python side (checks, blocking, BLAS products)
lives in :mod:`motiflab.neighbors`; this module is private, so its names carry
no underscore.
"""
import math

import numba
import numpy as np

# --------------------------------------------------------------------------
# candidate lists from BLAS dot-product blocks
# --------------------------------------------------------------------------
#: Members per step of the vectorised filter in :func:`push_block`.
CHUNK = 32


@numba.njit(cache=True, nogil=True, fastmath=True)
def push_block(start, stop, G, sqm, qidx, midx, hd, hi):
    """Merge a block of dot products into the rows' sorted candidate lists.

    ``G[a, b] = <x_q, x_m>`` for queries ``q = qidx[a]`` and members
    ``m = midx[b]``; ``sqm[b] - 2 G[a, b]`` ranks the members exactly like the
    squared distance (the query's own norm is a constant).  Queries within a
    block are distinct, so rows are updated without races; a member reaches a
    query at most once over all blocks, so no duplicate check is needed.
    Members are scanned in chunks; a vectorised count of the entries better
    than the current worst candidate skips almost every chunk once the list
    is full.  (fastmath only changes how ``sqm - 2 G`` is evaluated in that
    filter, identically for every thread count; the insertion recomputes it
    the same way.)
    """
    nm = G.shape[1]
    kk = hd.shape[1]
    for a in range(start, stop):
        i = qidx[a]
        worst = hd[i, kk - 1]
        for b0 in range(0, nm, CHUNK):
            b1 = min(nm, b0 + CHUNK)
            # count (not min: numba's min/select reductions stay scalar) the
            # entries better than the worst candidate; compare+add vectorises
            better = 0
            for b in range(b0, b1):
                better += np.int32(sqm[b] - np.float32(2.0) * G[a, b] < worst)
            if better == 0:
                continue
            for b in range(b0, b1):
                v = sqm[b] - np.float32(2.0) * G[a, b]
                j = midx[b]
                if v < worst and j != i:
                    p = kk - 1
                    while p > 0 and hd[i, p - 1] > v:
                        hd[i, p] = hd[i, p - 1]
                        hi[i, p] = hi[i, p - 1]
                        p -= 1
                    hd[i, p] = v
                    hi[i, p] = j
                    worst = hd[i, kk - 1]


@numba.njit(cache=True, nogil=True)
def finalize(start, stop, X, hi, k, out_idx, out_dist):
    """Exact float64 distances of each row's candidates; keep the k nearest.

    The BLAS ranking (|a|^2 - 2ab + |b|^2 in float32) can swap near ties;
    the direct sum cannot.  Ties go to the smaller index, so the output is
    reproducible.  Rows with fewer than k candidates (cannot happen for
    valid inputs) are padded with their last neighbour.
    """
    kk = hi.shape[1]
    d = X.shape[1]
    dist = np.empty(kk, dtype=np.float64)
    idx = np.empty(kk, dtype=np.int64)
    for i in range(start, stop):
        m = 0
        for p in range(kk):
            j = hi[i, p]
            if j < 0:
                continue
            s = 0.0
            for c in range(d):
                t = np.float64(X[i, c]) - np.float64(X[j, c])
                s += t * t
            dist[m] = s
            idx[m] = j
            m += 1
        for a in range(1, m):  # insertion sort by (distance, index)
            vd = dist[a]
            vi = idx[a]
            b = a
            while b > 0 and (dist[b - 1] > vd or (dist[b - 1] == vd and idx[b - 1] > vi)):
                dist[b] = dist[b - 1]
                idx[b] = idx[b - 1]
                b -= 1
            dist[b] = vd
            idx[b] = vi
        for p in range(k):
            q = min(p, m - 1)
            out_idx[i, p] = idx[q]
            out_dist[i, p] = math.sqrt(dist[q])


# --------------------------------------------------------------------------
# approximate search: nearest cells
# --------------------------------------------------------------------------
@numba.njit(cache=True)
def insert_sorted(vals, idx, p, v, j):
    """Put ``(v, j)`` into the ascending ``vals[:p + 1]`` / ``idx``, the slot ``p`` free (or dropped).

    Larger entries move one place up; an equal one stays before the new
    entry, so ties keep their order of arrival.
    """
    while p > 0 and vals[p - 1] > v:
        vals[p] = vals[p - 1]
        idx[p] = idx[p - 1]
        p -= 1
    vals[p] = v
    idx[p] = j


@numba.njit(cache=True, nogil=True)
def smallest_k(start, stop, D, out):
    """Column indices of the ``out.shape[1]`` smallest entries of rows ``start..stop-1`` of ``D`` (sorted)."""
    c = D.shape[1]
    k = out.shape[1]
    vals = np.empty(k, D.dtype)
    idx = np.empty(k, np.int64)
    for i in range(start, stop):
        m = 0
        for j in range(c):
            v = D[i, j]
            if m == k and not v < vals[k - 1]:
                continue
            insert_sorted(vals, idx, m if m < k else k - 1, v, j)
            if m < k:
                m += 1
        for p in range(k):
            out[i, p] = idx[p]


# --------------------------------------------------------------------------
# pynndescent
# --------------------------------------------------------------------------
@numba.njit(cache=True)
def drop_self(idx, dist, k, out_idx, out_dist):
    """Remove each row's own index from a (N, k+1) neighbour list (or its last entry)."""
    n, kk = idx.shape
    for i in range(n):
        q = 0
        for p in range(kk):
            if idx[i, p] == i or idx[i, p] < 0:
                continue
            if q < k:
                out_idx[i, q] = idx[i, p]
                out_dist[i, q] = dist[i, p]
                q += 1
        # NN-descent may leave a row short (never in practice); pad with the last found.
        while q < k:
            out_idx[i, q] = out_idx[i, q - 1] if q > 0 else (i + 1) % n
            out_dist[i, q] = out_dist[i, q - 1] if q > 0 else np.float32(np.inf)
            q += 1


# --------------------------------------------------------------------------
# fuzzy weights
# --------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def fuzzy_weights(start, stop, dist, target, n_iter, tol, w):
    """Directed UMAP-style memberships of rows ``start..stop-1`` into ``w``: exp(-(d - rho) / sigma), sigma by bisection."""
    k = dist.shape[1]
    for i in range(start, stop):
        rho = np.float64(dist[i, 0])
        mean_d = 0.0
        for p in range(k):
            mean_d += np.float64(dist[i, p])
        mean_d /= k
        lo = 0.0
        hi = np.inf
        sigma = 1.0
        for _ in range(n_iter):
            s = 0.0
            for p in range(k):
                t = np.float64(dist[i, p]) - rho
                if t > 0.0:
                    s += math.exp(-t / sigma)
                else:
                    s += 1.0
            if abs(s - target) < tol:
                break
            if s > target:  # memberships too large -> narrower kernel
                hi = sigma
                sigma = 0.5 * (lo + hi)
            else:
                lo = sigma
                if hi == np.inf:
                    sigma *= 2.0
                else:
                    sigma = 0.5 * (lo + hi)
        # Floor sigma so a point whose neighbours are all at almost the same
        # distance (or duplicates) does not get a degenerate, infinitely sharp kernel.
        floor = 1e-3 * mean_d
        if sigma < floor:
            sigma = floor
        if sigma <= 0.0:
            sigma = 1.0  # all neighbours at distance 0: every weight is 1 anyway
        for p in range(k):
            t = np.float64(dist[i, p]) - rho
            if t > 0.0:
                w[i, p] = np.float32(math.exp(-t / sigma))
            else:
                w[i, p] = np.float32(1.0)
        # exp may underflow for far neighbours; keep every stored edge positive
        for p in range(k):
            if w[i, p] < np.float32(1e-12):
                w[i, p] = np.float32(1e-12)


# --------------------------------------------------------------------------
# compiling ahead
# --------------------------------------------------------------------------
def compile_search(approx, exact=True):
    """Compile (or load from numba's cache) the kernels of a k-NN search and fuzzy graph, running none.

    Each kernel is called on an empty range with arguments of the dtypes
    :mod:`motiflab.neighbors` passes, so the one specialisation a search uses
    is the one compiled.  ``exact``: the kernels every search uses (the
    exact search's); ``approx``: the nearest-cells kernel the approximate
    search adds.  For :func:`motiflab.warmup.compile_ahead`.
    """
    f32 = np.zeros((1, 1), np.float32)
    i64 = np.zeros((1, 1), np.int64)
    if exact:
        push_block(0, 0, f32, f32[0], i64[0], i64[0], f32, i64)
        finalize(0, 0, f32, i64, 1, np.zeros((1, 1), np.int32), f32)
        fuzzy_weights(0, 0, f32, 1.0, 1, 1e-5, f32)
    if approx:
        smallest_k(0, 0, f32, i64)
