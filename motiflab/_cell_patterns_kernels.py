"""Compiled core of the containment test of :mod:`motiflab.cell_patterns`.

Kept apart from the public module like the other ``_*_kernels`` modules: the
numba code in one place, written as plain loops over arrays.
"""
from __future__ import annotations

import numba

__all__ = ["occurs"]


@numba.njit(cache=True)
def occurs(pcs, pks, n_rot, s, q_grid):  # pragma: no cover - compiled
    """Does one rotation of pattern P fit on the grid of pattern Q under a translation?

    Parameters
    ----------
    pcs : ndarray (n_rot * s, 2) int64
        Cells of P, each rotation stacked and normalised to a zero corner.
    pks : ndarray (n_rot * s,) int64
        Composition id of each of those cells.
    n_rot, s : int
        Number of rotations and of cells per rotation.
    q_grid : ndarray (bi, bj) int64
        Q's composition ids + 1 (0 = no cell).

    Returns
    -------
    bool
    """
    bi, bj = q_grid.shape
    for r in range(n_rot):
        o = r * s
        ei = 0
        ej = 0
        for k in range(s):
            if pcs[o + k, 0] > ei:
                ei = pcs[o + k, 0]
            if pcs[o + k, 1] > ej:
                ej = pcs[o + k, 1]
        if ei >= bi or ej >= bj:
            continue
        c0 = pks[o] + 1
        for a in range(bi):
            for b in range(bj):
                if q_grid[a, b] != c0:
                    continue
                ti = a - pcs[o, 0]
                tj = b - pcs[o, 1]
                if ti < 0 or tj < 0 or ti + ei >= bi or tj + ej >= bj:
                    continue
                ok = True
                for k in range(1, s):
                    if q_grid[ti + pcs[o + k, 0], tj + pcs[o + k, 1]] != pks[o + k] + 1:
                        ok = False
                        break
                if ok:
                    return True
    return False
