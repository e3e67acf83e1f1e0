"""Codes of square motifs: 2 x 2 (level 2) and 4 x 4 (level 3) blocks of units.

The coding and window rules are described in :mod:`motiflab.assembly`: a
level-2 code reads the four corner units in reading order as digits in base
``n``, a level-3 code reads four level-2 codes in base ``n**4``;
:func:`decode` / :func:`encode` convert between codes and blocks. Also the
grid validation shared by every assembly function.
"""
from __future__ import annotations

import numpy as np

from .errors import MotifLabError

__all__ = ["level2_codes", "level3_codes", "decode", "encode", "check_grid", "canonical_rotation"]

_WINDOWS = ("all", "checkerboard", "disjoint")


# --------------------------------------------------------------------------- validation


def check_grid(grid, n_states=None) -> tuple[np.ndarray, int]:
    """``grid`` as int64 unit labels (-1 = missing) and the number of states, or a clear error.

    Parameters
    ----------
    grid : array_like (H, W)
        Unit labels ``0..n_states-1``; negative, masked or NaN = missing.
    n_states : int, optional
        Number of unit states (default: ``max + 1``, at least 2).

    Returns
    -------
    grid : ndarray (H, W) int64
    n_states : int

    Raises
    ------
    MotifLabError
        Not 2-D, non-integer labels, labels >= ``n_states``, too many states
        for 64-bit level-3 codes, or smaller than 2 x 2.
    """
    g = np.ma.asarray(grid)
    mask = np.ma.getmaskarray(g)
    data = np.asarray(g.data)
    if data.ndim != 2:
        raise MotifLabError(f"grid must be a 2-D array of unit labels, got shape {data.shape}")
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data)
        mask = mask | bad
        d2 = np.where(bad, -1, data)
        if not np.all(d2 == np.round(d2)):
            raise MotifLabError("grid values must be whole numbers (unit labels 0..n-1; negative = missing)")
        data = d2.astype(np.int64)
    elif data.dtype.kind in "iub":
        data = data.astype(np.int64)
    else:
        raise MotifLabError(
            f"grid must hold integer unit labels (0..n-1, negative = missing), got dtype {data.dtype}; "
            "map string labels to integers first (see label_grid)"
        )
    data = np.where(mask, -1, data)
    valid = data >= 0
    if n_states is None:
        n_states = int(data[valid].max()) + 1 if valid.any() else 0
        n_states = max(n_states, 2)
    from ._validation import check_int

    n_states = check_int(n_states, "n_states", low=2, high=15,
                         hint="Level-3 codes need n_states**16 to fit in 64 bits.")
    if n_states < 2:
        raise MotifLabError(f"n_states must be at least 2, got {n_states}")
    if valid.any() and data[valid].max() >= n_states:
        raise MotifLabError(
            f"grid holds label {int(data[valid].max())} but n_states={n_states}; labels must be 0..n_states-1"
        )
    if n_states**16 >= 2**63:
        raise MotifLabError(
            f"n_states={n_states} is too many for level-3 codes (n^16 must fit in 64 bits); use at most 15 states"
        )
    if data.shape[0] < 2 or data.shape[1] < 2:
        raise MotifLabError(f"grid {data.shape} is too small: need at least 2 x 2 units for level 2")
    return data, n_states


def _window_mask(shape, windows, parity, step):
    """Boolean mask of allowed anchors for windows of a given step (1: level 2, 2: level 3)."""
    if windows not in _WINDOWS:
        raise MotifLabError(f"windows must be one of {_WINDOWS}, got {windows!r}")
    ii, jj = np.indices(shape)
    if windows == "all":
        return np.ones(shape, bool)
    if windows == "checkerboard":
        return (ii + jj) % 2 == parity
    # disjoint: level 2 anchors on even (i, j) (+ offset), level 3 on multiples of 4
    oi, oj = (parity, parity) if np.isscalar(parity) else parity
    block = 2 * step
    return ((ii - oi) % block == 0) & ((jj - oj) % block == 0)


# --------------------------------------------------------------------------- codes


def level2_codes(grid, n_states=None, windows: str = "all", parity=0) -> np.ndarray:
    """Level-2 code of every 2 x 2 window.

    Parameters
    ----------
    grid : array_like (H, W) int
        Unit labels ``0..n_states-1``; negative (or masked / NaN) = missing.
    n_states : int, optional
        Number of unit states (default: ``max + 1``, at least 2).
    windows : {"all", "checkerboard", "disjoint"}
        Which windows count (see module notes).
    parity : int or (int, int)
        Checkerboard colour, or the block offset for ``"disjoint"``.

    Returns
    -------
    ndarray (H - 1, W - 1) int64
        Code at each window anchor (top-left unit); -1 where the window is not
        selected or touches a missing unit.
    """
    g, n = check_grid(grid, n_states)
    tl, tr, bl, br = g[:-1, :-1], g[:-1, 1:], g[1:, :-1], g[1:, 1:]
    code = ((tl * n + tr) * n + bl) * n + br
    ok = (tl >= 0) & (tr >= 0) & (bl >= 0) & (br >= 0) & _window_mask(code.shape, windows, parity, 1)
    return np.where(ok, code, -1)


def level3_codes(code2, n_states: int, windows: str = "all", parity=0) -> np.ndarray:
    """Level-3 code of every 4 x 4 block, from a level-2 code map.

    Parameters
    ----------
    code2 : ndarray (H - 1, W - 1) int
        Output of :func:`level2_codes` (with the same ``windows``/``parity``).
    n_states : int
        Number of unit states.
    windows, parity
        As for :func:`level2_codes`.

    Returns
    -------
    ndarray (H - 3, W - 3) int64
        Code at each anchor; -1 where not selected or incomplete.
    """
    c = np.asarray(code2, dtype=np.int64)
    if c.shape[0] < 3 or c.shape[1] < 3:
        return np.full((max(c.shape[0] - 2, 0), max(c.shape[1] - 2, 0)), -1, np.int64)
    b = n_states**4
    tl, tr, bl, br = c[:-2, :-2], c[:-2, 2:], c[2:, :-2], c[2:, 2:]
    code = ((tl * b + tr) * b + bl) * b + br
    ok = (tl >= 0) & (tr >= 0) & (bl >= 0) & (br >= 0) & _window_mask(code.shape, windows, parity, 2)
    return np.where(ok, code, -1)


def decode(code: int, level: int, n_states: int) -> np.ndarray:
    """Unit block of a code: (2, 2) for level 2, (4, 4) for level 3."""
    from ._validation import check_int

    n_states = check_int(n_states, "n_states", low=1, high=15)
    level = check_int(level, "level", low=2, high=3)
    code = check_int(code, "code", low=0, high=n_states ** (4 if level == 2 else 16) - 1)
    if level == 2:
        digits = []
        for _ in range(4):
            digits.append(code % n_states)
            code //= n_states
        return np.array(digits[::-1], dtype=np.int64).reshape(2, 2)
    if level == 3:
        b = n_states**4
        quads = []
        for _ in range(4):
            quads.append(code % b)
            code //= b
        tl, tr, bl, br = (decode(q, 2, n_states) for q in quads[::-1])
        return np.block([[tl, tr], [bl, br]])
    raise MotifLabError(f"level must be 2 or 3, got {level}")


def encode(block, n_states: int) -> int:
    """Code of a (2, 2) or (4, 4) unit block (inverse of :func:`decode`)."""
    from ._validation import check_int, check_matrix

    n_states = check_int(n_states, "n_states", low=1, high=15)
    a = check_matrix(block, "block", min_rows=0)
    if not (np.all(a == np.round(a)) and np.all(a >= 0) and np.all(a < n_states)):
        raise MotifLabError(f"block must hold unit labels 0..n_states-1 = 0..{n_states - 1}.")
    a = a.astype(np.int64)
    if a.shape == (2, 2):
        tl, tr, bl, br = (int(x) for x in a.ravel())
        return ((tl * n_states + tr) * n_states + bl) * n_states + br
    if a.shape == (4, 4):
        b = n_states**4
        q = [encode(a[r : r + 2, c : c + 2], n_states) for r in (0, 2) for c in (0, 2)]
        return ((q[0] * b + q[1]) * b + q[2]) * b + q[3]
    raise MotifLabError(f"block must be 2x2 or 4x4, got shape {a.shape}")


def canonical_rotation(codes: np.ndarray, level: int, n: int) -> np.ndarray:
    """Smallest code over the four 90-degree rotations of each block.

    Parameters
    ----------
    codes : ndarray int
        Level-``level`` codes.
    level : {2, 3}
    n : int
        Number of unit states.

    Returns
    -------
    ndarray
        Canonical (rotation-merged) code of each input code.
    """
    out = np.empty_like(codes)
    cache: dict = {}
    for k, c in enumerate(codes.tolist()):
        if c not in cache:
            blk = decode(c, level, n)
            cache[c] = min(encode(np.rot90(blk, r), n) for r in range(4))
        out[k] = cache[c]
    return out
