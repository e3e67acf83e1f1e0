"""Units on an integer grid, from their positions (input of :func:`motiflab.assembly.square_motifs`).

:func:`label_grid` indexes labelled unit centres (e.g. pentagon centres of a
Cairo tiling) on the grid of their translation lattice, optionally
subdivided; :func:`checkerboard_parity` picks which checkerboard colour of
2 x 2 plaquettes are the true squares of a snub-square arrangement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_positions
from .errors import MotifLabError
from .lattice import Lattice, find_lattice

__all__ = ["UnitGrid", "label_grid", "checkerboard_parity"]


@dataclass
class UnitGrid:
    """Units placed on an integer grid.

    Attributes
    ----------
    grid : ndarray (H, W) int
        State of each grid node (index into ``states``); -1 = no unit / ignored.
    states : list
        Label of each state.
    index : ndarray (N, 2) int
        Grid node of every input unit (``-1, -1`` if dropped as a duplicate).
    positions : ndarray (H, W, 2) float
        Position of the unit at each node (NaN where empty).
    lattice : Lattice
        Lattice used to index the units.
    n_duplicates : int
        Units dropped because another unit was closer to the same node.
    """

    grid: np.ndarray
    states: list
    index: np.ndarray
    positions: np.ndarray
    lattice: Lattice
    n_duplicates: int = 0


def label_grid(positions, labels, lattice: Lattice | None = None, *, subdivide=(1, 1), states=None,
               ignore=()) -> UnitGrid:
    """Put labelled units (e.g. pentagon centres) on an integer grid.

    Parameters
    ----------
    positions : array_like (N, 2)
        Unit centres ``(row, col)`` in pixels.
    labels : array_like (N,)
        Unit labels (e.g. "empty" / "filled").
    lattice : Lattice, optional
        Translation lattice of the units (found when omitted). For a
        snub-square / Cairo arrangement the translation cell holds 2 x 2 units:
        pass ``subdivide=(2, 2)``.
    subdivide : (int, int)
        Grid nodes per lattice vector along ``u`` and ``v``.
    states : sequence, optional
        Labels in state order (state k = ``states[k]``); default sorted labels
        (minus ``ignore``).
    ignore : sequence
        Labels whose units count as missing (-1), e.g. the paper's V-centred
        pentagons.

    Returns
    -------
    UnitGrid
    """
    p = check_positions(
        positions, min_n=4, why="Too few units to place on a grid (or to find their lattice); use a larger field of view."
    )
    lab = np.asarray(labels)
    if lab.shape != (len(p),):
        raise MotifLabError(
            f"labels and positions have different lengths ({lab.shape[0] if lab.ndim else 0} vs {len(p)}); "
            "give one label per unit"
        )
    si, sj = (int(x) for x in subdivide)
    if si < 1 or sj < 1:
        raise MotifLabError(f"subdivide must be positive integers, got {subdivide!r}")
    if lattice is None:
        lattice = find_lattice(p)
    if not isinstance(lattice, Lattice):
        raise MotifLabError(f"lattice must be a motiflab.lattice.Lattice (or None to find it), got "
                            f"{type(lattice).__name__}.")
    frac = lattice.to_fractional(p)
    ref = lattice.basis[0] if len(lattice.basis) else np.zeros(2)
    q = (frac - ref) * np.array([si, sj])
    g = np.rint(q).astype(np.int64)
    err = np.hypot(*(q - g).T)
    g -= g.min(axis=0)
    shape = tuple(int(x) + 1 for x in g.max(axis=0))
    if shape[0] * shape[1] > 20_000_000:
        raise MotifLabError(f"grid of {shape} nodes is implausibly large; check the lattice and subdivide")
    ign = set(ignore or ())
    if states is None:
        states = sorted({x.item() if hasattr(x, "item") else x for x in lab} - ign, key=str)
    states = list(states)
    smap = {s: k for k, s in enumerate(states)}
    code = np.array([smap.get(x.item() if hasattr(x, "item") else x, -1) for x in lab], dtype=np.int64)
    unknown = [x for x in set(lab.tolist()) if x not in smap and x not in ign]
    if unknown:
        raise MotifLabError(f"labels {sorted(map(str, unknown))} are neither in states nor in ignore")
    grid = np.full(shape, -1, np.int64)
    best = np.full(shape, np.inf)
    posg = np.full(shape + (2,), np.nan)
    order = np.argsort(err, kind="stable")  # closest first wins each node
    index = np.full((len(p), 2), -1, np.int64)
    dup = 0
    for k in order:
        a, b = g[k]
        if np.isfinite(best[a, b]):
            dup += 1
            continue
        best[a, b] = err[k]
        grid[a, b] = code[k]
        posg[a, b] = p[k]
        index[k] = (a, b)
    return UnitGrid(grid=grid, states=states, index=index, positions=posg, lattice=lattice, n_duplicates=dup)


def checkerboard_parity(positions_grid) -> int:
    """Checkerboard colour whose 2 x 2 plaquettes are closest to squares.

    In a snub-square arrangement (centres of a Cairo pentagon tiling) one
    colour of plaquettes are true squares (equal diagonals) and the other are
    pairs of triangles (unequal diagonals); the squares are the paper's
    level-2 motifs.

    Parameters
    ----------
    positions_grid : ndarray (H, W, 2)
        Unit positions per grid node (NaN where empty), e.g. ``UnitGrid.positions``.

    Returns
    -------
    int
        0 or 1.
    """
    from ._validation import check_matrix

    pg = check_matrix(positions_grid, "positions_grid", min_rows=0, ndim=3)
    if pg.ndim != 3 or pg.shape[2] != 2 or pg.shape[0] < 2 or pg.shape[1] < 2:
        raise MotifLabError("positions_grid must have shape (H, W, 2) with H, W >= 2")
    d1 = np.hypot(*(pg[1:, 1:] - pg[:-1, :-1]).transpose(2, 0, 1))
    d2 = np.hypot(*(pg[1:, :-1] - pg[:-1, 1:]).transpose(2, 0, 1))
    asym = np.abs(d1 - d2) / (d1 + d2)
    ii, jj = np.indices(asym.shape)
    score = []
    for par in (0, 1):
        m = ((ii + jj) % 2 == par) & np.isfinite(asym)
        score.append(np.mean(asym[m]) if m.any() else np.inf)
    return int(np.argmin(score))
