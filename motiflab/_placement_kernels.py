"""numba kernels of out-of-sample placement (:mod:`motiflab.placement`): new points relaxed against a fixed layout.

Each works on rows ``start..stop-1`` and releases the GIL;
:func:`motiflab._threads.for_ranges` runs the ranges on the threads.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ._layout_kernels import FLOAT_FLAGS, pair_coef
from ._neighbors_kernels import insert_sorted
from ._random_kernels import GOLDEN, mix64, next64

__all__ = ["row_keys", "place_points", "rerank_exact"]


@numba.njit(cache=True, nogil=True)
def row_keys(start, stop, bits, seed, out):
    """A 64-bit key per row of ``bits`` (the float32 features viewed as uint32), mixed with ``seed``.

    The negative samples of a placed point are drawn from a stream keyed by
    its own feature values, not by its position in the batch: a column gets
    the same place whichever batch, tile or frame it arrives in.
    """
    j = bits.shape[1]
    base = mix64(np.uint64(seed) + GOLDEN)
    for i in range(start, stop):
        h = base
        for p in range(j):
            h = mix64(h ^ (np.uint64(bits[i, p]) + GOLDEN))
        out[i] = h


@numba.njit(cache=True, nogil=True, fastmath=FLOAT_FLAGS, error_model="numpy")
def place_points(start, stop, Y, Yfit, nbr, w, fixed, keys, n_neg, alpha, n_exp, n_int, beta, m_exp, m_int, k_neg, lrs,
                 max_step, unit):
    """Relax new points ``Y`` (in place) against a fixed layout ``Yfit``.

    Point ``i`` is pulled towards its training neighbours ``nbr[i]`` (weights
    ``w[i]``, the forces' weighted mean, as in :func:`update_block`) and pushed
    from ``n_neg[i]`` uniformly drawn training points (its own neighbours get
    weight 0), scaled by ``k_neg / n_neg[i]``; one step per learning rate in
    ``lrs``, each pair force and each step limited to ``max_step``.  The
    training points never move and new points do not act on each other, so
    every point's place depends only on its own neighbours and its key
    (:func:`row_keys`): the same for any batch, order or thread count.
    Points with ``fixed[i]`` (exact copies of a training point) stay where
    they are.
    """
    k = nbr.shape[1]
    nn = np.uint64(Yfit.shape[0])
    ms = np.float32(max_step)
    zero = np.float32(0.0)
    for i in range(start, stop):
        if fixed[i]:
            continue
        y0 = Y[i, 0]
        y1 = Y[i, 1]
        wsum = zero
        for p in range(k):
            wsum += w[i, p]
        inv_w = np.float32(1.0) / wsum if wsum > zero else zero
        cnt = n_neg[i]
        sc = np.float32(k_neg / cnt) if cnt > 0 else zero
        for it in range(lrs.shape[0]):
            ax = zero
            ay = zero
            for p in range(k):
                j = nbr[i, p]
                dx = Yfit[j, 0] - y0
                dy = Yfit[j, 1] - y1
                c = pair_coef(dx * dx + dy * dy, alpha, n_int, n_exp, ms, unit, False) * w[i, p]
                ax += c * dx
                ay += c * dy
            ax *= inv_w
            ay *= inv_w
            rx = zero
            ry = zero
            state = mix64(keys[i] ^ mix64(np.uint64(it) + GOLDEN))
            for s in range(cnt):
                state, z = next64(state)
                r = np.int64(((z >> np.uint64(32)) * nn) >> np.uint64(32))
                hit = False
                for p in range(k):
                    if nbr[i, p] == r:
                        hit = True
                if hit:
                    continue
                dx = y0 - Yfit[r, 0]
                dy = y1 - Yfit[r, 1]
                c = pair_coef(dx * dx + dy * dy, beta, m_int, m_exp, ms, unit, False)
                rx += c * dx
                ry += c * dy
            lr = lrs[it]
            sx = lr * (ax + sc * rx)
            sy = lr * (ay + sc * ry)
            s2 = sx * sx + sy * sy
            if s2 > ms * ms:
                t = ms / math.sqrt(s2)
                sx *= t
                sy *= t
            y0 += sx
            y1 += sy
        Y[i, 0] = y0
        Y[i, 1] = y1


@numba.njit(cache=True, nogil=True)
def rerank_exact(start, stop, Xfit, X, cand, k, idx, dist):
    """The ``k`` nearest of each row's candidates ``cand[i]`` (ascending training index), by exact distance.

    Distances are summed in float64 from the float32 features, so an exact
    copy of a training row is at distance 0 exactly; ties keep the lower
    training index (the candidates are sorted, the insertion is stable).
    Writes ``idx[i]`` (int64) and ``dist[i]`` (float32), nearest first.
    """
    kc = cand.shape[1]
    d = X.shape[1]
    best_d = np.empty(kc, np.float64)
    best_j = np.empty(kc, np.int64)
    for i in range(start, stop):
        for c in range(kc):
            j = cand[i, c]
            s = 0.0
            for p in range(d):
                t = np.float64(Xfit[j, p]) - np.float64(X[i, p])
                s += t * t
            # stable: a later candidate (higher index) goes after an equal one
            insert_sorted(best_d, best_j, c, math.sqrt(s), j)
        for c in range(k):
            idx[i, c] = best_j[c]
            dist[i, c] = np.float32(best_d[c])
