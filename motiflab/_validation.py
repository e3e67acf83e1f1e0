"""Checks and small measurements every stage shares: one rule each, one message each.

Public functions validate their own arguments with these, so a user sees the
same words for the same mistake whichever function they called.
"""
from __future__ import annotations

import numpy as np

from .errors import MotifLabError

__all__ = ["check_positions", "median_nn_distance"]


def check_positions(positions, name: str = "positions", min_n: int = 1, why: str | None = None) -> np.ndarray:
    """``positions`` as a finite float64 (N, 2) array of (row, col) pixels, or a clear error.

    Parameters
    ----------
    positions : array_like
    name : str
        What the caller calls the argument (used in messages).
    min_n : int
        Fewest rows needed.
    why : str, optional
        What needs ``min_n`` rows and what to do instead, appended to the
        message when there are too few.
    """
    p = np.asarray(positions)
    if p.dtype.kind not in "fiu":
        raise MotifLabError(f"{name} must be numeric (row, col) pixel coordinates, got dtype {p.dtype}.")
    if p.ndim != 2 or p.shape[1] != 2:
        raise MotifLabError(f"{name} must be an (N, 2) array of (row, col) pixel coordinates, got shape {p.shape}.")
    p = p.astype(np.float64, copy=False)
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        raise MotifLabError(
            f"{name} has NaN/inf in {int(bad.sum())} row(s) (first: {int(np.flatnonzero(bad)[0])}); drop them, "
            f"e.g. {name}[np.isfinite({name}).all(axis=1)]."
        )
    if len(p) < min_n:
        if len(p) == 0:
            msg = f"{name} is empty: no atom columns; lower the detection threshold or check the image."
        else:
            msg = f"need at least {min_n} {name}, got {len(p)}."
        raise MotifLabError(msg if why is None else f"{msg} {why}")
    return p


def median_nn_distance(positions, tree=None) -> float:
    """Median distance from each point to its nearest other point (px).

    Coincident duplicates (distance 0) say nothing about spacing and are left
    out. NaN when there are fewer than two distinct points; callers that need a
    spacing turn that into their own error.

    Parameters
    ----------
    positions : (N, 2) array
    tree : scipy.spatial.cKDTree, optional
        A tree already built over ``positions``.
    """
    from scipy.spatial import cKDTree

    p = np.asarray(positions, dtype=np.float64)
    if len(p) < 2:
        return float("nan")
    d, _ = (tree if tree is not None else cKDTree(p)).query(p, k=2)
    d = d[:, 1]
    d = d[d > 1e-9]
    return float(np.median(d)) if d.size else float("nan")
