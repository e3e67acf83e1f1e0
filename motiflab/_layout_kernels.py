"""numba kernels of the FR layout and the loop that drives them.

:class:`motiflab.layout.FRLayout` checks its parameters, builds the graph and
the initial layout, then hands them to :func:`relax`, which runs
:func:`fr_step` once per iteration.  The estimator and the public API live in
:mod:`motiflab.layout`; this module is private, so its names carry no
underscore.  The random numbers come from :mod:`motiflab._random_kernels`.

Each iteration is a synchronous (Jacobi) update computed by one numba kernel
over contiguous chunks of vertices, one chunk per thread
(:func:`motiflab._threads.for_ranges`): vertex ``i`` sums the forces from its own CSR
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
import math

import numba
import numpy as np

from ._random_kernels import GOLDEN, mix64, next64
from ._threads import for_ranges, n_threads

#: Vertices that share one draw of negative samples per iteration (consecutive
#: indices).  The samples' positions are gathered once per block instead of
#: once per vertex, and each vertex sums over a contiguous buffer.
SAMPLE_BLOCK = 16


@numba.njit(cache=True, inline="always")
def is_neighbour(indices, start, end, r):
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
FLOAT_FLAGS = {"reassoc", "nsz", "contract"}

# Compile time: the force helpers below are inlined into :func:`update_block`
# at the IR level (numba's ``inline="always"``), so one specialisation of it is
# typed and lowered, instead of a separately compiled and linked library per
# helper; the per-iteration drivers call it directly.  The default pipeline
# compiles one specialisation (~1.8 s on a first run, with its driver):
# :func:`fr_step_int`'s, with the flags as literals, no ``pow`` branch and the
# integer exponents as run-time values, so both paper stages share it.  (Literal
# exponents, one specialisation per stage, took 3.5 s of compile for no faster
# an iteration.)  Any other exponent or force form runs :func:`fr_step`'s
# general copy, ~4x slower per iteration.


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy", inline="always")
def pair_coef(d2, coef, e_int, e, ms, unit, int_only):
    """Force coefficient of one pair at squared distance ``d2`` (before its weight).

    ``c = coef / (1 + d**e)``, divided by ``d`` if ``unit``, then limited to
    ``ms / d`` so no pair force is longer than ``ms`` (for ``c >= 0`` this is
    the length clip ``|c (dx, dy)| <= ms``).  An integer exponent
    ``0 <= e_int <= 9`` is computed from ``d2`` and ``d`` by selects, without a
    branch or a ``pow`` call, so the loops calling this run on 8-wide float32
    SIMD whether ``e_int`` is a compile-time literal or only known at run time;
    ``e_int = -1`` (any other exponent) uses ``pow``, unless ``int_only`` (a
    literal True in :func:`fr_step_int`) leaves that branch out: a ``pow`` in
    the loop would keep it from vectorising.
    """
    one = np.float32(1.0)
    inv_d = one / math.sqrt(d2 + np.float32(1e-30))
    if int_only or e_int >= 0:
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


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy", inline="always")
def pair_sum(bx, by, bw, cnt, coef, e_int, e, ms, unit, int_only):
    """Sum of ``bw * c(d) * (dx, dy)`` over the ``cnt`` gathered pairs (see :func:`pair_coef`)."""
    sx = np.float32(0.0)
    sy = np.float32(0.0)
    for s in range(cnt):
        dx = bx[s]
        dy = by[s]
        c = pair_coef(dx * dx + dy * dy, coef, e_int, e, ms, unit, int_only) * bw[s]
        sx += c * dx
        sy += c * dy
    return sx, sy


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy", inline="always")
def sample_sum(yi0, yi1, i, px, py, pr, cnt, coef, e_int, e, ms, unit, int_only):
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
        c = pair_coef(dx * dx + dy * dy, coef, e_int, e, ms, unit, int_only) * w
        sx += c * dx
        sy += c * dy
    return sx, sy


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy", inline="always")
def pad8(bx, by, bw, cnt):
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


@numba.njit(cache=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def update_block(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
                  beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, int_only, key_it, bx, by, bw, px, py, pr):
    """Write the new positions of vertices ``lo..hi-1`` into ``Ynew`` (reads ``Y`` only).

    Per vertex: gather the offsets to its graph neighbours into the scratch
    rows ``bx, by`` (weights in ``bw``) and sum their forces with the
    vectorised :func:`pair_sum`; gathering first keeps the random reads out
    of the SIMD loop.  Negative samples are drawn once per block of
    ``SAMPLE_BLOCK`` vertices into ``px, py`` (positions) and ``pr``
    (indices); a vertex sums over the first ``n_neg[i]`` of them
    (:func:`sample_sum`), skipping itself and, if ``check_nbrs``, its
    graph neighbours.  Only the drivers :func:`fr_step` and
    :func:`fr_step_int` call it, for every thread count (one chunk when
    single-threaded), so a vertex's update is the same machine code, and the
    same bits, however the vertices are split.  (A separate serial caller
    would get its own inlined, differently optimised copy; that broke the
    bit-identity in a fresh compile.)
    """
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
        k = pad8(bx, by, bw, k)
        ax, ay = pair_sum(bx, by, bw, k, alpha, n_int, n_exp, ms, unit, int_only)
        ax *= inv_wsum[i]
        ay *= inv_wsum[i]
        # --- repulsion from negative samples (k' per unit of edge weight), drawn
        # once per block of SAMPLE_BLOCK vertices: their positions are read once
        # and every vertex of the block sums over the same contiguous buffer
        blk = i // SAMPLE_BLOCK
        if blk != cur:
            cur = blk
            state = mix64(key_it ^ mix64(np.uint64(blk) * GOLDEN + np.uint64(1)))
            z = np.uint64(0)
            for s in range((blk_cnt[blk] + 7) & ~7):
                # one 64-bit hash gives two 32-bit draws; r = floor(u32 * N / 2^32)
                if s & 1 == 0:
                    state, z = next64(state)
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
                hit = pr[s] == i or is_neighbour(indices, start, end, pr[s])
                bw[s] = zero if hit else np.float32(1.0)
            rx, ry = pair_sum(bx, by, bw, pad8(bx, by, bw, cnt), beta, m_int, m_exp, ms, unit, int_only)
        else:
            rx, ry = sample_sum(yi0, yi1, i, px, py, pr, cnt, beta, m_int, m_exp, ms, unit, int_only)
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


@numba.njit(cache=True, nogil=True)
def fr_step(t0, t1, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
             beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, seed, it, scratch, iscratch):
    """Chunks ``t0..t1-1`` of one synchronous FR iteration (all of them: the whole iteration).

    The vertices are cut into one contiguous range per ``scratch`` row (one per
    thread, or a single one for small inputs and single-threaded runs; the
    caller runs the chunks on the threads with
    :func:`motiflab._threads.for_ranges`); vertex ``i`` reads ``Y`` and writes
    only ``Ynew[i]``, and the negative samples of its block come from
    splitmix64 seeded by ``(seed, it, i // SAMPLE_BLOCK)``.  Hence the result
    does not depend on how the vertices are split between threads.
    ``scratch`` holds one (5, L) float32 buffer per chunk (gathered offsets and
    weights, sample positions), ``iscratch`` one (L,) int64 buffer of sample
    indices.
    """
    key_it = mix64(np.uint64(seed) ^ mix64(np.uint64(it) + GOLDEN))
    n = Y.shape[0]
    nt = scratch.shape[0]
    chunk = (n + nt - 1) // nt
    for t in range(t0, t1):
        lo = t * chunk
        hi = min(n, lo + chunk)
        update_block(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
                     beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, False, key_it,
                     scratch[t, 0], scratch[t, 1], scratch[t, 2], scratch[t, 3], scratch[t, 4], iscratch[t])


# The same driver for integer exponents.  (A numba kernel that takes the
# range function as an argument is not cached between processes, so the few
# lines are repeated.)
@numba.njit(cache=True, nogil=True)
def fr_step_int(t0, t1, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
                beta, m_exp, m_int, k_neg, lr, max_step, unit, check_nbrs, seed, it, scratch, iscratch):
    """:func:`fr_step` for integer exponents 0..9, vector forces and no neighbour check (the default).

    The flags are literals here, so numba compiles one specialisation of
    :func:`update_block` without the ``pow`` and neighbour-check branches,
    whose force loops vectorise for any integer exponents (run-time values,
    so the paper's two stages share it).  ``unit`` and ``check_nbrs`` must be
    False and ``n_int, m_int`` in 0..9.
    """
    key_it = mix64(np.uint64(seed) ^ mix64(np.uint64(it) + GOLDEN))
    n = Y.shape[0]
    nt = scratch.shape[0]
    chunk = (n + nt - 1) // nt
    for t in range(t0, t1):
        lo = t * chunk
        hi = min(n, lo + chunk)
        update_block(lo, hi, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt, alpha, n_exp, n_int,
                     beta, m_exp, m_int, k_neg, lr, max_step, False, False, True, key_it,
                     scratch[t, 0], scratch[t, 1], scratch[t, 2], scratch[t, 3], scratch[t, 4], iscratch[t])


def int_exponent(e):
    """Integer exponent code for the kernels: the integer if ``e`` is one in 0..9, else -1."""
    return int(e) if float(e).is_integer() and 0 <= e <= 9 else -1


def driver_flags(stages, force_form, n_neighbors, n_points):
    """Which drivers :func:`relax` runs for ``stages`` on ``n_points``: :func:`compile_driver`'s ``fast`` flags.

    ``stages`` are :class:`motiflab.forces.ForceStage`.  Below ``100 *
    n_neighbors`` points, where the driver depends on the graph's density,
    none (an empty list).  Kept apart from the estimator so that
    :mod:`motiflab.warmup` can ask before scikit-learn is imported.
    """
    # relax() checks graph neighbours among the negative samples when the graph
    # holds > 2 % of all pairs; its <= 2 k n entries never do from 100 k points on
    if n_points < 100 * n_neighbors:
        return []
    fast = [force_form == "vector" and int_exponent(s.n) >= 0 and int_exponent(s.m) >= 0 for s in stages]
    return sorted(set(fast))


def relax(Y, g, stages, counts, factors, every, seed, kneg, *, max_step, unit, serial_max_points,
          callback=None, verbose=False):
    """Run the FR iterations of every stage from the initial layout ``Y``.

    Parameters
    ----------
    Y : ndarray of float32, shape (n, 2)
        Initial layout (overwritten: it and one more buffer take turns).
    g : scipy.sparse.csr_matrix, shape (n, n)
        Symmetric similarity graph, sorted indices, no diagonal.
    stages : sequence of ForceStage
        Force parameters of each stage.
    counts : sequence of int
        Iterations of each stage.
    factors : sequence of ndarray
        Learning-rate factor of each iteration of each stage.
    every : int
        Snapshot interval (0: none).
    seed : int
        Seed of the negative samples.
    kneg : int
        Negative samples per unit of edge weight.
    max_step : float
        Length cap of every pair force and every step.
    unit : bool
        Forces along the unit vector (``force_form="unit"``).
    serial_max_points : int
        Up to this many points the vertices run as one chunk on one thread.
    callback : callable or None
        ``callback(iteration, layout_copy)`` at every snapshot.
    verbose : bool
        Show a tqdm progress bar.

    Returns
    -------
    Y : ndarray of float32, shape (n, 2)
        Final layout.
    snaps : ndarray of float32, shape (n_frames, n, 2)
        Recorded layouts.
    snap_it : ndarray of int64, shape (n_frames,)
        Iteration of each snapshot.
    """
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
        if callback is not None:
            callback(0, Y.copy())
    elif callback is not None:
        callback(0, Y.copy())

    Ynew = np.empty_like(Y)
    # Exclude graph neighbours from the negative samples only where a
    # uniform draw would hit one often enough to matter (> 2 %, i.e.
    # below ~800 points for k = 10); elsewhere the search costs more than
    # the rare, harmless extra repulsion it prevents.
    check_nbrs = bool(g.nnz > 0.02 * n * n)
    # one chunk of vertices (and one gather buffer, as long as the longest CSR
    # row / sample count) per thread; a single chunk, on the calling thread, for
    # small inputs (handing 1.5k points to threads made each iteration slower)
    chunks = 1 if n <= serial_max_points else n_threads()
    width = int(max(np.diff(indptr).max(initial=0), n_neg.max(initial=0), 1))
    width = (width + 7) & ~7  # the force loops pad to a multiple of 8
    scratch = np.zeros((chunks, 5, width), dtype=np.float32)
    iscratch = np.zeros((chunks, width), dtype=np.int64)
    # samples drawn per block of vertices: as many as its most demanding vertex needs
    nb = -(-n // SAMPLE_BLOCK)
    blk_cnt = np.zeros(nb * SAMPLE_BLOCK, np.int64)
    blk_cnt[:n] = n_neg
    blk_cnt = blk_cnt.reshape(nb, SAMPLE_BLOCK).max(axis=1)
    max_step = float(max_step)
    fast = [not unit and not check_nbrs and int_exponent(st.n) >= 0 and int_exponent(st.m) >= 0
            for st in stages]
    # compile now (or wait for compile-ahead): the progress bar then times iterations, not the
    # compiler (a first iteration of 4 s made it promise a 12-minute layout)
    for flag in sorted(set(fast)):
        compile_driver(flag)
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_iter, desc="FR layout", unit="it")
    it = 0
    try:
        for stage, cnt, fac, is_fast in zip(stages, counts, factors, fast):
            n_int = int_exponent(stage.n)
            m_int = int_exponent(stage.m)
            step = fr_step_int if is_fast else fr_step
            for t in range(cnt):
                lr = float(stage.learning_rate) * float(fac[t])
                for_ranges(step, chunks, Y, Ynew, indptr, indices, weights, inv_wsum, n_neg, blk_cnt,
                           f32(stage.alpha), float(stage.n), n_int,
                           f32(stage.beta), float(stage.m), m_int,
                           float(kneg), f32(lr), max_step, unit, check_nbrs, np.uint64(seed), it,
                           scratch, iscratch, threads=chunks)
                Y, Ynew = Ynew, Y
                it += 1
                if fi < len(its) and its[fi] == it:
                    snaps[fi] = Y
                    fi += 1
                    if callback is not None:
                        callback(it, Y.copy())
                elif not its and it == n_iter and callback is not None:
                    callback(it, Y.copy())
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return Y, snaps, snap_it


def compile_driver(fast):
    """Compile (or load from numba's cache) one FR driver, running no iteration.

    ``fast`` selects :func:`fr_step_int` (integer exponents, vector forces,
    no neighbour check: the paper's stages as :func:`relax` runs them above
    ~1 000 points) over :func:`fr_step`.  The
    arguments have the types :func:`relax` passes, so the specialisation
    compiled is the one it will use.  For :func:`motiflab.warmup.compile_ahead`.
    """
    f32 = np.float32
    Y = np.zeros((1, 2), f32)
    i64 = np.zeros(2, np.int64)
    step = fr_step_int if fast else fr_step
    step(0, 0, Y, Y, i64, np.zeros(1, np.int32), np.zeros(1, f32), np.zeros(1, f32), i64, i64,
         f32(1.0), 0.0, 0, f32(1.0), 2.0, 2, 1.0, f32(1.0), 1.0, False, False, np.uint64(0), 0,
         np.zeros((1, 5, 8), f32), np.zeros((1, 8), np.int64))
