"""Two-stage force-relaxed (FR) layout of feature vectors (Dan et al. 2022).

The FR layout is the paper's replacement for t-SNE/UMAP when classifying
Zernike features into motifs.  Starting from the 2-D PCA projection of the
features ``X``, every point is pulled towards its k nearest neighbours in
feature space (k = 10, weights = fuzzy similarities, see
:mod:`motiflab.neighbors`) and pushed away from randomly drawn non-neighbours
(k' = 5 per attracting pair, negative sampling as in LargeVis/UMAP).  With
``d`` the 2-D distance of a pair, the force *coefficients* are

* attraction ``alpha / (1 + d**n)``,
* repulsion  ``beta / (1 + d**m)``,

applied along the difference vector of the pair (``force_form="vector"``, the
authors' own convention, in which the force magnitude is ``coefficient * d``;
``force_form="unit"`` applies them along the unit vector instead).  The
iterations run in stages, by default the paper's two:

1. a repulsion-dominated stage ``{alpha=1, beta=1, n=0, m=2}``: linear springs
   along the graph against a long-ranged (~1/d) repulsion dilate the layout and
   rough class boundaries appear while k-neighbours stay together;
2. an attraction-dominated stage ``{alpha=5, beta=1, n=2, m=5}``: short-ranged
   repulsion and strong short-range attraction make each class coalesce into a
   compact blob without a global contraction.

Within each stage the learning rate is relaxed from the stage's maximum (linear
decay by default) for numerical stability.

Implementation
--------------
Each iteration is a synchronous (Jacobi) update computed in parallel over
vertices by one numba kernel: vertex ``i`` sums the forces from its own CSR
row of the (symmetric) graph and from its negative samples, and writes only
its own row of the next-position buffer.  The samples are drawn per block of
16 consecutive vertices (each vertex uses as many as its weight asks for,
itself excluded) from a counter-based generator, splitmix64 of ``(seed,
iteration, block)``: a vertex still meets fresh uniform samples every
iteration, but their positions are read once per block instead of once per
vertex (1.2-1.4x faster per iteration, the same ARI on the benchmark
mixtures).  There is no shared random state and no write race, so the layout
is **bit-identical for any number of threads** and any run with the same
seed.  Per vertex, the offsets to its neighbours are first gathered into a
small buffer and the forces are then summed in branch-free loops that LLVM
compiles to 8-wide float32 SIMD (exact division and square root; only the
order of the sums is reassociated, identically on every run).  The summed forces are
normalised by the vertex's total edge weight (a per-vertex step size; it does
not move the fixed points of the force field) and each pair force and each
step is clipped in length to ``max_step``.  Memory is O(N k); snapshots of the
relaxation are written into a preallocated float32 buffer whose size is
bounded by ``snapshot_max_bytes``.
"""
from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from ._blas import single_threaded_blas
from .errors import MotifLabError
from .neighbors import _check_X, fuzzy_graph, knn_graph

__all__ = ["ForceStage", "PAPER_STAGES", "FRLayout", "pca_init"]


@dataclass(frozen=True)
class ForceStage:
    """Force parameters of one stage of the FR layout.

    Parameters
    ----------
    alpha : float
        Attraction strength (>= 0).
    beta : float
        Repulsion strength (>= 0).
    n : float
        Attraction decay exponent: coefficient ``alpha / (1 + d**n)``.
        ``n = 0`` gives linear springs, ``n = 2`` a short-ranged pull.
    m : float
        Repulsion decay exponent: coefficient ``beta / (1 + d**m)``.
        Small ``m`` is long-ranged (global dilation), large ``m`` short-ranged.
    learning_rate : float, default 1.0
        Maximum learning rate (step multiplier) of this stage; it is relaxed
        (decayed) within the stage by ``FRLayout.learning_rate_schedule``.
        A synchronous step moves a point ``learning_rate * c`` of the way to
        its neighbours' weighted mean, ``c`` being the short-range attraction
        coefficient (``alpha / 2`` for ``n = 0``, ``alpha`` for ``n > 0``);
        above ~1 the step overshoots.  Starting a stage above that and
        decaying below it works like annealing (fragments of one class merge
        before the layout freezes); ``FRLayout.max_step`` bounds every move.
    """

    alpha: float
    beta: float
    n: float
    m: float
    learning_rate: float = 1.0


#: The paper's defaults (Materials and Methods, "FR clustering"):
#: repulsion-dominated ``{alpha=1, beta=1, n=0, m=2}`` then attraction-dominated
#: ``{alpha=5, beta=1, n=2, m=5}``.  The maximum learning rates (4 and 1.5) are
#: ours, chosen by experiment for the synchronous update: on imbalanced 66-D
#: mixtures they were the most robust of {1, 2, 4} x {0.6, 1, 1.5} (HDBSCAN
#: ARI >= 0.99 on six 3 000-point mixtures from 100 iterations on, and on
#: 20 000 / 100 000 points at 200); smaller second-stage rates left large
#: classes in several fragments.
PAPER_STAGES = (
    ForceStage(1.0, 1.0, 0.0, 2.0, learning_rate=4.0),
    ForceStage(5.0, 1.0, 2.0, 5.0, learning_rate=1.5),
)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

#: Vertices that share one draw of negative samples per iteration (consecutive
#: indices).  The samples' positions are gathered once per block instead of
#: once per vertex, and each vertex sums over a contiguous buffer.
_SAMPLE_BLOCK = 16


# --------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _mix64(z):
    """splitmix64 finaliser: a bijective, well-mixing hash of a uint64."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _is_neighbour(indices, start, end, r):
    """Binary search of ``r`` in the sorted CSR row ``indices[start:end]``."""
    lo = start
    hi = end
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v < r:
            lo = mid + 1
        elif v > r:
            hi = mid
        else:
            return True
    return False


# Float flags for the per-vertex force loops: reassociation lets LLVM vectorise
# the force sums (8 float32 lanes), "numpy" errors drop the per-division zero
# check that blocks vectorisation.  No "afn"/"ninf": sqrt and division stay exact
# (no rsqrt approximations), so results do not depend on the CPU's fast paths.
_FLOAT_FLAGS = {"reassoc", "nsz", "contract"}

# Compile time: the force helpers below are separate compiled functions that
# LLVM inlines into their caller (not numba's IR-level ``inline="always"``), and
# the exponent is a literal only where the caller passes one (the paper's two
# stages, see :func:`_update_range`); every other exponent shares one
# run-time-exponent loop.  A literal-exponent copy of every loop for six
# exponents, inlined at the IR level, took 77 s to compile on a fresh cache;
# this takes 12 s alone (~22 s in a process that has compiled the rest of the
# pipeline) at the same speed per iteration (benchmarks/bench_compile.py).


@numba.njit(cache=True, fastmath=_FLOAT_FLAGS, error_model="numpy")
def _pair_coef(d2, coef, e_int, e, ms, unit):
    """Force coefficient of one pair at squared distance ``d2`` (before its weight).

    ``c = coef / (1 + d**e)``, divided by ``d`` if ``unit``, then limited to
    ``ms / d`` so no pair force is longer than ``ms`` (for ``c >= 0`` this is
    the length clip ``|c (dx, dy)| <= ms``).  An integer exponent
    ``0 <= e_int <= 9`` is computed from ``d2`` and ``d`` by selects, without a
    branch or a ``pow`` call, so the loops calling this run on 8-wide float32
    SIMD whether ``e_int`` is a compile-time literal or only known at run time;
    ``e_int = -1`` (any other exponent) uses ``pow``.
    """
    one = np.float32(1.0)
    inv_d = one / math.sqrt(d2 + np.float32(1e-30))
    if e_int >= 0:
        # d**e = d2**(e // 2) * d**(e % 2)
        h = e_int >> 1
        d4 = d2 * d2
        q = one if h == 0 else (d2 if h == 1 else (d4 if h == 2 else (d4 * d2 if h == 3 else d4 * d4)))
        p = q * (d2 * inv_d) if e_int & 1 else q
    else:
        p = d2 ** np.float32(0.5 * e)
    c = coef / (one + p)
    c = c * (inv_d if unit else one)
    lim = ms * inv_d
    return c if c < lim else lim


@numba.njit(cache=True, fastmath=_FLOAT_FLAGS, error_model="numpy")
def _pair_sum(bx, by, bw, cnt, coef, e_int, e, ms, unit):
    """Sum of ``bw * c(d) * (dx, dy)`` over the ``cnt`` gathered pairs (see :func:`_pair_coef`)."""
    sx = np.float32(0.0)
    sy = np.float32(0.0)
    for s in range(cnt):
        dx = bx[s]
        dy = by[s]
        c = _pair_coef(dx * dx + dy * dy, coef, e_int, e, ms, unit) * bw[s]
        sx += c * dx
        sy += c * dy
    return sx, sy


@numba.njit(cache=True, fastmath=_FLOAT_FLAGS, error_model="numpy")
def _sample_sum(yi0, yi1, i, px, py, pr, cnt, coef, e_int, e, ms, unit):
    """Repulsion of vertex ``i`` from the first ``cnt`` shared samples (positions ``px, py``).

    Runs over whole blocks of 8 (the sample buffers are padded); samples past
    ``cnt`` and a sample that is the vertex itself get weight 0.  No gather:
    the samples' positions were read once for the whole vertex block.
    """
    sx = np.float32(0.0)
    sy = np.float32(0.0)
    cnt8 = (cnt + 7) & ~7
    for s in range(cnt8):
        dx = yi0 - px[s]
        dy = yi1 - py[s]
        w = np.float32(1.0) if (s < cnt and pr[s] != i) else np.float32(0.0)
        c = _pair_coef(dx * dx + dy * dy, coef, e_int, e, ms, unit) * w
        sx += c * dx
        sy += c * dy
    return sx, sy


@numba.njit(cache=True, fastmath=_FLOAT_FLAGS, error_model="numpy")
def _pad8(bx, by, bw, cnt):
    """Fill the gather buffers up to the next multiple of 8 with zero-weight pairs.

    The force loops then run entirely in 8-wide vector blocks instead of
    finishing with up to 7 scalar iterations (each a scalar sqrt and divide).
    """
    cnt8 = (cnt + 7) & ~7
    for q in range(cnt, cnt8):
        bx[q] = np.float32(1.0)
        by[q] = np.float32(1.0)
        bw[q] = np.float32(0.0)
    return cnt8


@numba.njit(cache=True, fastmath=_FLOAT_FLAGS, error_model="numpy")
def _update_block(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
                  beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, key_it, bx, by, bw, px, py, pr):
    """Body of :func:`_update_range`; compiled once per specialisation (literal arguments)."""
    nn = np.uint64(Y.shape[0])
    zero = np.float32(0.0)
    ms = np.float32(max_step)
    cur = -1
    for i in range(lo, hi):
        yi0 = Y[i, 0]
        yi1 = Y[i, 1]
        start = indptr[i]
        end = indptr[i + 1]
        # --- attraction along the graph (weighted mean of the pair forces)
        k = 0
        for p in range(start, end):
            j = indices[p]
            bx[k] = Y[j, 0] - yi0
            by[k] = Y[j, 1] - yi1
            bw[k] = weights[p]
            k += 1
        k = _pad8(bx, by, bw, k)
        ax, ay = _pair_sum(bx, by, bw, k, alpha, n_int, n_exp, ms, unit)
        ax *= inv_wsum[i]
        ay *= inv_wsum[i]
        # --- repulsion from negative samples (k' per unit of edge weight), drawn
        # once per block of _SAMPLE_BLOCK vertices: their positions are read once
        # and every vertex of the block sums over the same contiguous buffer
        blk = i // _SAMPLE_BLOCK
        if blk != cur:
            cur = blk
            state = _mix64(key_it ^ _mix64(np.uint64(blk) * _GOLDEN + np.uint64(1)))
            z = np.uint64(0)
            for s in range((blk_cnt[blk] + 7) & ~7):
                # one 64-bit hash gives two 32-bit draws; r = floor(u32 * N / 2^32)
                if s & 1 == 0:
                    state = state + _GOLDEN
                    z = _mix64(state)
                    r = np.int64(((z & np.uint64(0xFFFFFFFF)) * nn) >> np.uint64(32))
                else:
                    r = np.int64(((z >> np.uint64(32)) * nn) >> np.uint64(32))
                pr[s] = r
                px[s] = Y[r, 0]
                py[s] = Y[r, 1]
        cnt = n_neg[i]
        if check_nbrs:
            # small graphs: a draw hits a neighbour often enough to matter; only
            # non-neighbours (and not the vertex itself) repel
            for s in range(cnt):
                bx[s] = yi0 - px[s]
                by[s] = yi1 - py[s]
                hit = pr[s] == i or _is_neighbour(indices, start, end, pr[s])
                bw[s] = zero if hit else np.float32(1.0)
            rx, ry = _pair_sum(bx, by, bw, _pad8(bx, by, bw, cnt), beta, m_int, m_exp, ms, unit)
        else:
            rx, ry = _sample_sum(yi0, yi1, i, px, py, pr, cnt, beta, m_int, m_exp, ms, unit)
        if cnt > 0:
            sc = np.float32(k_neg / cnt)
            rx *= sc
            ry *= sc
        sx = lr * (ax + rx)
        sy = lr * (ay + ry)
        s2 = sx * sx + sy * sy
        if s2 > ms * ms:
            t = ms / math.sqrt(s2)
            sx *= t
            sy *= t
        Ynew[i, 0] = yi0 + sx
        Ynew[i, 1] = yi1 + sy


@numba.njit(cache=True, fastmath=_FLOAT_FLAGS, error_model="numpy")
def _update_range(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
                  beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, key_it, bx, by, bw, px, py, pr):
    """Write the new positions of vertices ``lo..hi-1`` into ``Ynew`` (reads ``Y`` only).

    Per vertex: gather the offsets to its graph neighbours into the scratch
    rows ``bx, by`` (weights in ``bw``) and sum their forces with the
    vectorised :func:`_pair_sum_e`; gathering first keeps the random reads out
    of the SIMD loop.  Negative samples are drawn once per block of
    ``_SAMPLE_BLOCK`` vertices into ``px, py`` (positions) and ``pr``
    (indices); a vertex sums over the first ``n_neg[i]`` of them
    (:func:`_sample_sum_e`), skipping itself and, if ``check_nbrs``, its
    graph neighbours.  Only :func:`_fr_step` calls it, for every thread count
    (one chunk when single-threaded), so a vertex's update is the same
    machine code, and the same bits, however the vertices are split.  (A
    separate serial caller would get its own inlined, differently optimised
    copy; that broke the bit-identity in a fresh compile.)

    The paper's two stages get their own copy of the loop with the exponents,
    the force form and the neighbour check as literals (numba compiles the
    helpers once per literal value); any other stage runs the copy with
    run-time values, which costs one more compile, not one per exponent (so a
    force slider that tries many exponents compiles nothing new).
    """
    if not unit and not check_nbrs:
        if n_int == 0 and m_int == 2:
            _update_block(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, 0,
                          beta, m_exp, 2, k_neg, lr, max_step, False, False, key_it, bx, by, bw, px, py, pr)
            return
        if n_int == 2 and m_int == 5:
            _update_block(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, 2,
                          beta, m_exp, 5, k_neg, lr, max_step, False, False, key_it, bx, by, bw, px, py, pr)
            return
    _update_block(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
                  beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, key_it, bx, by, bw, px, py, pr)


@numba.njit(cache=True, parallel=True)
def _fr_step(Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
             beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, seed, it, scratch, iscratch):
    """One synchronous FR iteration over all vertices, threaded.

    The vertices are cut into one contiguous range per ``scratch`` row (one per
    thread, or a single one for small inputs and single-threaded runs); vertex ``i``
    reads ``Y`` and writes only ``Ynew[i]``, and the negative samples of its
    block come from splitmix64 seeded by ``(seed, it, i // _SAMPLE_BLOCK)``.
    Hence the result does not depend on how the vertices are split between
    threads.  ``scratch`` holds one (5, L) float32 buffer per thread (gathered
    offsets and weights, sample positions), ``iscratch`` one (L,) int64
    buffer of sample indices.
    """
    key_it = _mix64(np.uint64(seed) ^ _mix64(np.uint64(it) + _GOLDEN))
    n = Y.shape[0]
    nt = scratch.shape[0]  # one range per thread (the caller sizes scratch)
    chunk = (n + nt - 1) // nt
    for t in numba.prange(nt):
        lo = t * chunk
        hi = min(n, lo + chunk)
        _update_range(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
                      beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, key_it,
                      scratch[t, 0], scratch[t, 1], scratch[t, 2], scratch[t, 3], scratch[t, 4], iscratch[t])


#: Below this many points one iteration is a fraction of a millisecond and one
#: chunk on one thread beats splitting the vertices between threads.
SERIAL_MAX_POINTS = 2000


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def pca_init(X, scale=10.0):
    """2-D PCA projection of ``X``, standardised to a fixed spread.

    Parameters
    ----------
    X : ndarray, shape (n_points, n_features)
        Finite features.
    scale : float, default 10.0
        The projection is centred and multiplied so that the standard
        deviation along the first principal axis equals ``scale / 3``, i.e.
        the bulk (three standard deviations) of the data spans about
        ``[-scale, scale]`` -- the spread of the authors' initial layout
        (max |coordinate| = 10) but insensitive to single outliers.  The
        second axis keeps its relative variance.

    Returns
    -------
    ndarray of float32, shape (n_points, 2)

    Notes
    -----
    Computed from the 66 x 66 covariance (eigendecomposition) in float64, so
    memory stays O(N d).  Signs are fixed (largest loading positive) to make
    the result deterministic.
    """
    X = np.asarray(X)
    mu = X.mean(axis=0, dtype=np.float64)
    Xc = X.astype(np.float64, copy=False) - mu if X.dtype == np.float64 else X - mu.astype(X.dtype)
    # One BLAS thread: the relaxation starts right after, and an idle OpenBLAS
    # worker spins for ~0.1 s after its last product, taking a core from the
    # layout threads (5k points: the first ~90 iterations ran 2.4x slower).
    with single_threaded_blas():
        C = (Xc.T @ Xc).astype(np.float64) / max(1, X.shape[0] - 1)
        evals, evecs = np.linalg.eigh(C)
        order = np.argsort(evals)[::-1]
        V = evecs[:, order[:2]]
        if V.shape[1] < 2:  # a single feature: second axis is zero
            V = np.concatenate([V, np.zeros((V.shape[0], 1))], axis=1)
        for c in range(V.shape[1]):
            if V[np.argmax(np.abs(V[:, c])), c] < 0:
                V[:, c] = -V[:, c]
        P = np.asarray(Xc @ V.astype(Xc.dtype), dtype=np.float64)
    sd = P[:, 0].std()
    if not np.isfinite(sd) or sd <= 0:
        sd = 1.0
    return (P * (scale / 3.0 / sd)).astype(np.float32)


def _schedule_factors(schedule, n):
    """Learning-rate factors (max 1) for the ``n`` iterations of one stage."""
    if n <= 0:
        return np.zeros(0)
    t = np.arange(n, dtype=np.float64) / n  # progress within the stage, [0, 1)
    if callable(schedule):
        f = np.array([float(schedule(float(x))) for x in t])
    elif schedule == "linear":
        f = 1.0 - t
    elif schedule == "cosine":
        f = 0.5 * (1.0 + np.cos(np.pi * t))
    elif schedule == "constant":
        f = np.ones(n)
    else:
        raise MotifLabError(
            f"learning_rate_schedule must be 'linear', 'cosine', 'constant' or a callable "
            f"progress -> factor; got {schedule!r}."
        )
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        raise MotifLabError("learning_rate_schedule must return finite, non-negative factors.")
    return f


def _int_exponent(e):
    """Integer exponent code for the kernel: the integer if ``e`` is one, else -1."""
    return int(e) if float(e).is_integer() and 0 <= e <= 9 else -1


def _check_graph(graph, n):
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
# estimator
# --------------------------------------------------------------------------
class FRLayout(TransformerMixin, BaseEstimator):
    """Two-stage force-relaxed 2-D layout of feature vectors (Dan et al. 2022).

    Parameters
    ----------
    n_neighbors : int, default 10
        k of the k-NN graph (paper: 10).
    negative_samples : int, default 5
        k', non-neighbours repelled per attracting pair (paper: 5).  Drawn per
        vertex as ``round(k' * W_i)`` samples, ``W_i`` being the vertex's total
        edge weight, i.e. each pair's repulsion is scaled by its weight.
    stages : sequence of ForceStage, default PAPER_STAGES
        Force parameters, applied in order.
    stage_split : float or sequence of float, default 0.5
        With two stages, the fraction of iterations spent in the first.  With
        more stages, a sequence of fractions (one per stage, summing to 1).
    n_iter : int, default 200
        Total number of iterations over all stages.  100 already separates
        the test mixtures; 200 leaves a margin for larger, harder data.
    learning_rate_schedule : {"linear", "cosine", "constant"} or callable, default "linear"
        How the learning rate is relaxed within each stage from the stage's
        ``learning_rate``: linear decay to ~0, half-cosine decay, none, or
        ``f(progress) -> factor`` with progress in [0, 1).
    init : "pca" or ndarray of shape (n_points, 2), default "pca"
        Initial layout: the 2-D PCA projection (see :func:`pca_init`) or
        user coordinates (used as given).
    init_scale : float, default 10.0
        Spread of the PCA initial layout (see :func:`pca_init`).  The forces
        have a natural length of 1, so this sets how crowded the start is.
    max_step : float, default 4.0
        Length cap for every pair force and every per-iteration displacement.
    force_form : {"vector", "unit"}, default "vector"
        ``"vector"``: force = coefficient x difference vector (authors' code,
        UMAP's gradient convention; the paper's "inversely proportional to
        their mutual separation" for n = 2); ``"unit"``: coefficient x unit
        vector (weaker long-range pull; it split classes more often in our
        tests).
    knn_method : {"auto", "exact", "approx", "nndescent"}, default "auto"
        Passed to :func:`motiflab.neighbors.knn_graph`.
    snapshot_every : int or None, default None
        Record the layout every this many iterations (0 disables snapshots).
        ``None`` chooses the smallest interval whose buffer fits in
        ``snapshot_max_bytes``.  The initial and final layouts are always
        recorded.  An explicit interval that would exceed the bound is
        enlarged (with a warning).
    snapshot_max_bytes : int, default 64 MiB
        Upper bound on the snapshot buffer (float32, ``frames * N * 8`` bytes).
    random_state : int or None, default 0
        Seed of the negative sampling (and of the approximate k-NN search
        used for large N).  None draws a fresh seed.
    n_jobs : int or None, default None
        numba threads used during ``fit`` (None: numba's current setting).
        The result does not depend on it.
    verbose : bool, default False
        Show a tqdm progress bar.
    callback : callable or None, default None
        ``callback(iteration, embedding)`` called at every snapshot
        (iteration 0 .. n_iter) with a float32 copy of the current layout;
        a hook for interactive displays.

    Attributes
    ----------
    embedding_ : ndarray of float32, shape (n_points, 2)
        Final layout.
    snapshots_ : ndarray of float32, shape (n_frames, n_points, 2)
        Recorded layouts, first = initial, last = final.
    snapshot_iterations_ : ndarray of int, shape (n_frames,)
        Iteration number of each snapshot (0 = initial layout).
    graph_ : scipy.sparse.csr_matrix
        Symmetric fuzzy k-NN graph used for the attraction.
    knn_indices_, knn_distances_ : ndarray or None
        The k-NN lists (None when ``graph`` was passed to ``fit``).
    n_iter_ : int
        Iterations run.
    stage_iterations_ : tuple of int
        Iterations spent in each stage.
    timings_ : dict
        Seconds spent in ``"knn"``, ``"graph"``, ``"init"`` and ``"layout"``.

    Examples
    --------
    >>> from motiflab.layout import FRLayout
    >>> Y = FRLayout(random_state=0).fit_transform(features)   # doctest: +SKIP
    """

    def __init__(self, n_neighbors=10, negative_samples=5, stages=PAPER_STAGES, stage_split=0.5,
                 n_iter=200, learning_rate_schedule="linear", init="pca", init_scale=10.0,
                 max_step=4.0, force_form="vector", knn_method="auto", snapshot_every=None,
                 snapshot_max_bytes=64 * 2**20, random_state=0, n_jobs=None, verbose=False,
                 callback=None):
        self.n_neighbors = n_neighbors
        self.negative_samples = negative_samples
        self.stages = stages
        self.stage_split = stage_split
        self.n_iter = n_iter
        self.learning_rate_schedule = learning_rate_schedule
        self.init = init
        self.init_scale = init_scale
        self.max_step = max_step
        self.force_form = force_form
        self.knn_method = knn_method
        self.snapshot_every = snapshot_every
        self.snapshot_max_bytes = snapshot_max_bytes
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.callback = callback

    # ---------------------------------------------------------------- checks
    def _stage_plan(self):
        """Validate stages/stage_split/n_iter; return (stages, iterations per stage)."""
        n_iter = self.n_iter
        if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 1:
            raise MotifLabError(f"n_iter must be a positive integer; got {n_iter!r}.")
        stages = tuple(self.stages) if self.stages is not None else ()
        if not stages or not all(isinstance(s, ForceStage) for s in stages):
            raise MotifLabError(
                "stages must be a non-empty sequence of ForceStage(alpha, beta, n, m, learning_rate); "
                f"got {self.stages!r}."
            )
        for s in stages:
            vals = (s.alpha, s.beta, s.n, s.m, s.learning_rate)
            if not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in vals):
                raise MotifLabError(f"ForceStage values must be finite numbers; got {s!r}.")
            if s.alpha < 0 or s.beta < 0 or s.n < 0 or s.m < 0 or s.learning_rate < 0:
                raise MotifLabError(f"ForceStage values must be non-negative; got {s!r}.")
        split = self.stage_split
        k = len(stages)
        if k == 1:
            fr = np.array([1.0])
        elif k == 2 and isinstance(split, numbers.Real):
            if not (0.0 < float(split) < 1.0):
                raise MotifLabError(
                    f"stage_split must be a fraction strictly between 0 and 1 (iterations in the "
                    f"first stage); got {split!r}."
                )
            fr = np.array([float(split), 1.0 - float(split)])
        else:
            try:
                fr = np.asarray(split, dtype=np.float64).ravel()
            except (TypeError, ValueError):
                fr = np.zeros(0)
            if fr.shape != (k,) or np.any(~np.isfinite(fr)) or np.any(fr <= 0) or abs(fr.sum() - 1) > 1e-6:
                raise MotifLabError(
                    f"With {k} stages, stage_split must be {k} positive fractions summing to 1; "
                    f"got {split!r}."
                )
        counts = np.floor(fr * n_iter + 1e-9).astype(int)
        counts[-1] = n_iter - counts[:-1].sum()
        if np.any(counts < 1):
            raise MotifLabError(
                f"stage_split {split!r} with n_iter={n_iter} leaves a stage with no iteration; "
                "increase n_iter or move the split away from 0/1."
            )
        return stages, [int(c) for c in counts]

    def _snapshot_interval(self, n_points, n_iter):
        """Interval between snapshots so that the buffer respects ``snapshot_max_bytes``."""
        every = self.snapshot_every
        if every is not None and (isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 0):
            raise MotifLabError(f"snapshot_every must be None, 0 or a positive integer; got {every!r}.")
        if every == 0:
            return 0
        frame = n_points * 2 * 4
        max_frames = int(self.snapshot_max_bytes // frame)
        if max_frames < 2:
            raise MotifLabError(
                f"snapshot_max_bytes={self.snapshot_max_bytes} cannot hold the initial and final "
                f"layouts of {n_points} points ({2 * frame} bytes needed); raise it or set "
                "snapshot_every=0 to disable snapshots."
            )

        def frames(s):
            return n_iter // s + 1 + (1 if n_iter % s else 0)

        s = 1 if every is None else int(every)
        s0 = s
        while frames(s) > max_frames:
            s += 1 if s < 16 else max(1, s // 8)
        if every is not None and s != s0:
            warnings.warn(
                f"snapshot_every={s0} would need {frames(s0)} frames of {frame} bytes; using "
                f"{s} to stay within snapshot_max_bytes={self.snapshot_max_bytes}.",
                stacklevel=3,
            )
        return s

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, graph=None):
        """Compute the layout of ``X``.

        Parameters
        ----------
        X : array-like, shape (n_points, n_features)
            Feature vectors (finite).  Used for the k-NN graph (unless
            ``graph`` is given) and for the PCA initial layout.
        y : ignored
        graph : scipy.sparse matrix, shape (n_points, n_points), optional
            Precomputed symmetric similarity graph (e.g. ``self.graph_`` of an
            earlier fit, or :func:`motiflab.neighbors.fuzzy_graph`), reused so
            a change of forces or schedule does not recompute the k-NN search.

        Returns
        -------
        self
        """
        stages, counts = self._stage_plan()
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise MotifLabError(f"n_neighbors must be a positive integer; got {k!r}.")
        kneg = self.negative_samples
        if isinstance(kneg, bool) or not isinstance(kneg, numbers.Integral) or kneg < 0:
            raise MotifLabError(f"negative_samples must be a non-negative integer; got {kneg!r}.")
        if self.force_form not in ("vector", "unit"):
            raise MotifLabError(f"force_form must be 'vector' or 'unit'; got {self.force_form!r}.")
        if not (isinstance(self.max_step, numbers.Real) and self.max_step > 0 and math.isfinite(self.max_step)):
            raise MotifLabError(f"max_step must be a positive number; got {self.max_step!r}.")
        X = _check_X(X, k if graph is None else 1)
        n = X.shape[0]
        if n < 2:
            raise MotifLabError("Need at least 2 points for a layout.")
        factors = [_schedule_factors(self.learning_rate_schedule, c) for c in counts]
        every = self._snapshot_interval(n, self.n_iter)
        seed = self._seed()

        old_threads = numba.get_num_threads()
        if self.n_jobs is not None:
            nj = int(self.n_jobs)
            nj = numba.config.NUMBA_NUM_THREADS if nj < 0 else max(1, min(nj, numba.config.NUMBA_NUM_THREADS))
            numba.set_num_threads(nj)
        try:
            timings = {"knn": 0.0, "graph": 0.0, "init": 0.0, "layout": 0.0}
            # ---- graph
            if graph is None:
                t0 = time.perf_counter()
                idx, dist = knn_graph(X, k, random_state=seed, method=self.knn_method)
                timings["knn"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                g = fuzzy_graph(idx, dist)
                timings["graph"] = time.perf_counter() - t0
                self.knn_indices_, self.knn_distances_ = idx, dist
            else:
                t0 = time.perf_counter()
                g = _check_graph(graph, n)
                timings["graph"] = time.perf_counter() - t0
                self.knn_indices_ = self.knn_distances_ = None
            # ---- initial layout
            t0 = time.perf_counter()
            Y = self._initial_layout(X)
            timings["init"] = time.perf_counter() - t0
            # ---- relaxation
            t0 = time.perf_counter()
            Y, snaps, snap_it = self._relax(Y, g, stages, counts, factors, every, seed, kneg)
            timings["layout"] = time.perf_counter() - t0
        finally:
            if self.n_jobs is not None:
                numba.set_num_threads(old_threads)
        self.graph_ = g
        self.embedding_ = Y
        self.snapshots_ = snaps
        self.snapshot_iterations_ = snap_it
        self.n_iter_ = int(sum(counts))
        self.stage_iterations_ = tuple(counts)
        self.timings_ = timings
        return self

    def fit_transform(self, X, y=None, graph=None):
        """Fit and return the final layout (float32, shape (n_points, 2)); see :meth:`fit`."""
        return self.fit(X, y=y, graph=graph).embedding_

    def transform(self, X):
        """Not supported: the FR layout has no out-of-sample extension.

        Raises
        ------
        MotifLabError
            Always; refit on the combined data instead.
        """
        raise MotifLabError(
            "FRLayout cannot place new points into an existing layout; call fit_transform on "
            "all features together."
        )

    # -------------------------------------------------------------- internals
    def _seed(self):
        rs = self.random_state
        if rs is None:
            return int(np.random.default_rng().integers(0, 2**63 - 1))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(0, 2**31 - 1))
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(0, 2**63 - 1))
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and rs >= 0:
            return int(rs)
        raise MotifLabError(f"random_state must be a non-negative int (or None); got {rs!r}.")

    def _initial_layout(self, X):
        init = self.init
        n = X.shape[0]
        if isinstance(init, str):
            if init != "pca":
                raise MotifLabError(f"init must be 'pca' or an (n_points, 2) array; got {init!r}.")
            if not (isinstance(self.init_scale, numbers.Real) and self.init_scale > 0):
                raise MotifLabError(f"init_scale must be a positive number; got {self.init_scale!r}.")
            return pca_init(X, float(self.init_scale))
        Y = np.asarray(init)
        if Y.shape != (n, 2) or not np.issubdtype(Y.dtype, np.number):
            raise MotifLabError(f"init array must have shape ({n}, 2); got {Y.shape}.")
        if not np.isfinite(Y).all():
            raise MotifLabError("init array contains NaN or infinite values.")
        return np.array(Y, dtype=np.float32, order="C", copy=True)

    def _relax(self, Y, g, stages, counts, factors, every, seed, kneg):
        f32 = np.float32
        n = Y.shape[0]
        indptr = g.indptr.astype(np.int64)
        indices = g.indices.astype(np.int32)
        weights = g.data.astype(np.float32)
        wsum = np.add.reduceat(weights.astype(np.float64), indptr[:-1]) if g.nnz else np.zeros(n)
        wsum[np.diff(indptr) == 0] = 0.0
        inv_wsum = np.where(wsum > 0, 1.0 / np.maximum(wsum, 1e-300), 0.0).astype(np.float32)
        n_neg = np.rint(kneg * wsum).astype(np.int64)
        n_neg[(wsum > 0) & (n_neg < 1) & (kneg > 0)] = 1
        # isolated vertices (no edges) still feel repulsion so they do not sit on top of others
        n_neg[wsum == 0] = kneg

        n_iter = int(sum(counts))
        if every:
            its = list(range(0, n_iter + 1, every))
            if its[-1] != n_iter:
                its.append(n_iter)
        else:
            its = []
        snaps = np.empty((len(its), n, 2), dtype=np.float32)
        snap_it = np.asarray(its, dtype=np.int64)
        fi = 0
        if its:
            snaps[0] = Y
            fi = 1
            if self.callback is not None:
                self.callback(0, Y.copy())
        elif self.callback is not None:
            self.callback(0, Y.copy())

        Ynew = np.empty_like(Y)
        unit = self.force_form == "unit"
        # Exclude graph neighbours from the negative samples only where a
        # uniform draw would hit one often enough to matter (> 2 %, i.e.
        # below ~800 points for k = 10); elsewhere the search costs more than
        # the rare, harmless extra repulsion it prevents.
        check_nbrs = bool(g.nnz > 0.02 * n * n)
        # one chunk of vertices (and one gather buffer, as long as the longest CSR
        # row / sample count) per thread; a single chunk for small inputs
        threads = numba.get_num_threads()
        chunks = 1 if n <= SERIAL_MAX_POINTS else threads
        # a single chunk runs with the other threads switched off for the call: idle
        # OpenMP workers in the launch made 1.5k-point iterations 2.4x slower
        one_thread = chunks == 1 and threads > 1
        width = int(max(np.diff(indptr).max(initial=0), n_neg.max(initial=0), 1))
        width = (width + 7) & ~7  # the force loops pad to a multiple of 8
        scratch = np.zeros((chunks, 5, width), dtype=np.float32)
        iscratch = np.zeros((chunks, width), dtype=np.int64)
        # samples drawn per block of vertices: as many as its most demanding vertex needs
        nb = -(-n // _SAMPLE_BLOCK)
        blk_cnt = np.zeros(nb * _SAMPLE_BLOCK, np.int64)
        blk_cnt[:n] = n_neg
        blk_cnt = blk_cnt.reshape(nb, _SAMPLE_BLOCK).max(axis=1)
        max_step = float(self.max_step)
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_iter, desc="FR layout", unit="it")
        it = 0
        try:
            for stage, cnt, fac in zip(stages, counts, factors):
                n_int = _int_exponent(stage.n)
                m_int = _int_exponent(stage.m)
                for t in range(cnt):
                    lr = float(stage.learning_rate) * float(fac[t])
                    if one_thread:
                        numba.set_num_threads(1)
                    try:
                        _fr_step(Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt,
                                 f32(stage.alpha), float(stage.n), n_int,
                                 f32(stage.beta), float(stage.m), m_int,
                                 float(kneg), f32(lr), max_step, unit, check_nbrs, np.uint64(seed), it,
                                 scratch, iscratch)
                    finally:
                        if one_thread:
                            numba.set_num_threads(threads)
                    Y, Ynew = Ynew, Y
                    it += 1
                    if fi < len(its) and its[fi] == it:
                        snaps[fi] = Y
                        fi += 1
                        if self.callback is not None:
                            self.callback(it, Y.copy())
                    elif not its and it == n_iter and self.callback is not None:
                        self.callback(it, Y.copy())
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return Y, snaps, snap_it
