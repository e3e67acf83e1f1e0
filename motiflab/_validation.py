"""Checks and small measurements every stage shares: one rule each, one message each.

Public functions validate their own arguments with these, so a user sees the
same words for the same mistake whichever function they called.
"""
from __future__ import annotations

import numpy as np

from .errors import MotifLabError

__all__ = ["check_positions", "median_nn_distance", "check_int", "check_number", "check_labels", "check_shape",
           "check_matrix", "check_image_array", "check_vector2", "MAX_PIXELS"]


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


# ---------------------------------------------------------------------- scalars, labels, shapes
# (shared by the public functions so that a wrongly typed, non-finite or absurd argument is
# refused at the entry with its name, instead of failing deep inside NumPy or numba, or
# allocating for hours)

#: the most pixels an output image may have (16k x 16k); more is a typo, not a micrograph
MAX_PIXELS = 2**28


def _shown(value) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def check_int(value, name: str, low: int | None = None, high: int | None = None, hint: str = "") -> int:
    """``value`` as a Python int in ``[low, high]``, or a :class:`MotifLabError` naming ``name``.

    Integers, NumPy integers and whole floats are accepted; booleans, strings,
    arrays, NaN/inf and fractions are not.
    """
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer, float, np.floating))
    if ok and isinstance(value, (float, np.floating)):
        ok = bool(np.isfinite(value)) and float(value).is_integer()
    rng = " and ".join(x for x in ((f"≥ {low}" if low is not None else ""), (f"≤ {high}" if high is not None else ""))
                       if x)
    if ok:
        value = int(value)
        ok = (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        raise MotifLabError(f"{name} must be a whole number{(' ' + rng) if rng else ''}, got {_shown(value)}."
                            + (f" {hint}" if hint else ""))
    return value


def check_number(value, name: str, low: float | None = None, high: float | None = None, low_open: bool = False,
                 hint: str = "") -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``), or a clear error."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if ok:
        try:
            x = float(value)
        except OverflowError:
            ok = False
        else:
            ok = np.isfinite(x) and (low is None or x > low or (x == low and not low_open)) and (
                high is None or x <= high)
    if not ok:
        lo = None if low is None else f"{'>' if low_open else '≥'} {low:g}"
        hi = None if high is None else f"≤ {high:g}"
        rng = " and ".join(x for x in (lo, hi) if x)
        raise MotifLabError(f"{name} must be a finite number{(' ' + rng) if rng else ''}, got {_shown(value)}."
                            + (f" {hint}" if hint else ""))
    return x


def check_labels(labels, n: int | None = None, name: str = "labels", what: str = "positions") -> np.ndarray:
    """``labels`` as a 1-D int64 array of motif labels (−1 = unassigned), ``n`` long when given."""
    lab = np.asarray(labels) if not isinstance(labels, (str, bytes, dict)) else np.asarray(None)
    if lab.dtype.kind not in "iub" and not (lab.dtype.kind == "f" and lab.size and np.isfinite(lab).all()
                                            and np.all(lab == np.round(lab))):
        if not (lab.dtype.kind == "f" and lab.size == 0):
            raise MotifLabError(f"{name} must be integer motif labels (−1 = unassigned), got "
                                f"{_shown(labels) if lab.ndim == 0 else f'dtype {lab.dtype}'}.")
    if lab.ndim != 1:
        raise MotifLabError(f"{name} must be a 1-D array (one label per column), got shape {lab.shape}.")
    if n is not None and len(lab) != n:
        raise MotifLabError(f"{name} has {len(lab)} entries but there are {n} {what}; give one label each.")
    return lab.astype(np.int64, copy=False)


def check_shape(shape, name: str = "shape", max_pixels: int = MAX_PIXELS) -> tuple:
    """``shape`` as ``(rows, cols)`` positive ints with at most ``max_pixels`` pixels, or a clear error."""
    try:
        t = tuple(shape)
    except TypeError:
        t = None
    if t is None or len(t) != 2:
        raise MotifLabError(f"{name} must be (rows, cols) of a 2-D image, got {_shown(shape)}.")
    h, w = (check_int(x, f"{name} ({'rows' if i == 0 else 'cols'})", low=1) for i, x in enumerate(t))
    if h * w > max_pixels:
        raise MotifLabError(f"{name} {(h, w)} has {h * w:,} pixels, more than the {max_pixels:,} an image here "
                            "may have; give the shape of the micrograph, e.g. image.shape.")
    return h, w


def check_matrix(X, name: str, min_rows: int = 1, ndim: int = 2, cols: int | None = None) -> np.ndarray:
    """``X`` as a finite float array of ``ndim`` dimensions with at least ``min_rows`` rows, or a clear error."""
    A = np.asarray(X) if not isinstance(X, (str, bytes, dict)) else np.asarray(None)
    if A.dtype.kind not in "fiub":
        raise MotifLabError(f"{name} must be a numeric array, got "
                            f"{_shown(X) if A.ndim == 0 else f'dtype {A.dtype}'}.")
    if A.ndim != ndim:
        raise MotifLabError(f"{name} must be a {ndim}-D array, got shape {A.shape}.")
    if cols is not None and A.shape[1] != cols:
        raise MotifLabError(f"{name} must have {cols} columns, got shape {A.shape}.")
    if len(A) < min_rows:
        raise MotifLabError(f"{name} has {len(A)} rows; at least {min_rows} needed.")
    A = A.astype(np.float64, copy=False)
    if not np.isfinite(A).all():
        raise MotifLabError(f"{name} contains NaN or inf; drop or fill those entries first.")
    return A


def check_image_array(image, name: str = "image") -> np.ndarray:
    """``image`` as a C-contiguous float32 2-D array (numeric, non-empty), or a clear error.

    Lighter than :func:`motiflab.image_checks.validate_image` (no NaN, size or
    constant-image check): for inner steps that receive an already validated
    or smoothed image but are public, so that a 1-D or object array is named
    instead of failing inside a numba kernel.
    """
    a = np.asarray(image) if not isinstance(image, (str, bytes, dict)) else np.asarray(None)
    if a.dtype.kind not in "fiub":
        raise MotifLabError(f"{name} must be a numeric 2-D image, got "
                            f"{_shown(image) if a.ndim == 0 else f'dtype {a.dtype}'}.")
    if a.ndim != 2 or a.size == 0:
        raise MotifLabError(f"{name} must be a 2-D image (rows, cols), got shape {a.shape}.")
    return np.ascontiguousarray(a, dtype=np.float32)


def check_vector2(v, name: str) -> np.ndarray:
    """``v`` as a finite float64 2-vector (a lattice vector in px), or a clear error."""
    a = np.asarray(v) if not isinstance(v, (str, bytes, dict)) else np.asarray(None)
    if a.dtype.kind not in "fiu" or a.shape != (2,):
        raise MotifLabError(f"{name} must be a 2-vector (row, col) in px, got {_shown(v)}.")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise MotifLabError(f"{name} must be finite, got {_shown(v)}.")
    return a
