"""Patterns of cells: rotations, canonical forms and containment (steps 5-6 of :mod:`motiflab.hierarchy`).

A pattern is a set of cells ``(i, j)`` with a composition id each. Two
patterns are the same motif-cell when one is a rotation of the other (90
degree steps of the index grid, the lattice's own rotations, or none), so
every pattern is brought to a canonical form: rotated, shifted to a zero
bounding-box corner and sorted, the smallest over the rotations. A lower
motif-cell is linked to a higher one when its pattern occurs inside it under
a translation (compiled test in :mod:`motiflab._cell_patterns_kernels`).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ._cell_patterns_kernels import occurs
from .errors import MotifLabError
from .lattice import Lattice

__all__ = ["SQUARE_ROTATIONS", "canonical_pattern", "rotation_set", "canonical_classes", "containment_edges"]

#: The four 90-degree rotations of the (i, j) index grid, as integer matrices.
SQUARE_ROTATIONS = [
    np.array([[1, 0], [0, 1]]),
    np.array([[0, -1], [1, 0]]),
    np.array([[-1, 0], [0, -1]]),
    np.array([[0, 1], [-1, 0]]),
]


def rotation_set(rotations, lattice: Lattice | None) -> list[np.ndarray]:
    """The rotation group on index coordinates named by ``rotations``.

    Parameters
    ----------
    rotations : {"square", "lattice", "none"}
        The four 90-degree steps, the lattice's own rotations, or the identity.
    lattice : Lattice or None
        Needed for ``"lattice"``.

    Returns
    -------
    list of ndarray (2, 2) int
    """
    if rotations == "square":
        return [r.copy() for r in SQUARE_ROTATIONS]
    if rotations == "none":
        return [np.eye(2, dtype=np.int64)]
    if rotations == "lattice":
        if lattice is None:
            raise MotifLabError("rotations='lattice' needs a lattice; pass lattice= or use rotations='square'")
        return lattice.rotations()
    raise MotifLabError(f"rotations must be 'square', 'lattice' or 'none', got {rotations!r}")


def canonical_pattern(cells, comps, rotations=None) -> tuple:
    """Canonical form of one pattern (pure Python, for checks and small inputs).

    Parameters
    ----------
    cells : array_like (s, 2) int
        Cell indices of the pattern.
    comps : array_like (s,) int
        Composition id of each cell.
    rotations : list of (2, 2) int arrays, optional
        Rotation group on index coordinates (default: the four 90 degree steps).

    Returns
    -------
    tuple of (di, dj, comp)
        The lexicographically smallest, bounding-box-normalised, sorted form
        over all rotations.
    """
    rots = SQUARE_ROTATIONS if rotations is None else rotations
    c = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    best = None
    for r in rots:
        q = c @ np.asarray(r).T
        q = q - q.min(axis=0)
        t = tuple(sorted((int(a), int(b), int(k)) for (a, b), k in zip(q, comps)))
        if best is None or t < best:
            best = t
    return best


def canonical_classes(sizes, member_cells, member_comp, rots):
    """Canonical classes of all components at once (vectorised per component size).

    Parameters
    ----------
    sizes : (n_comp,) int
    member_cells : list-like; cells of component k are rows start[k]:start[k]+sizes[k]
        of ``member_cells`` (n_total, 2) int (sorted by component).
    member_comp : (n_total,) int
    rots : list of (2, 2) int

    Returns
    -------
    class_of : (n_comp,) int  (class index, unique per (size, canonical pattern))
    patterns : list of (s, 3) int arrays, one per class (canonical form)
    """
    n_comp = len(sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if n_comp else np.zeros(0, np.int64)
    class_of = np.full(n_comp, -1, np.int64)
    patterns: list[np.ndarray] = []
    nr = len(rots)
    for s in np.unique(sizes):
        comp_idx = np.flatnonzero(sizes == s)
        n = len(comp_idx)
        rows = starts[comp_idx][:, None] + np.arange(s)[None, :]
        di = member_cells[rows, 0]
        dj = member_cells[rows, 1]
        cc = member_comp[rows]
        base = 2 * s + 1
        stacked = np.empty((nr * n, 2 * s), np.int64)
        for k, r in enumerate(rots):
            a = r[0, 0] * di + r[0, 1] * dj
            b = r[1, 0] * di + r[1, 1] * dj
            a = a - a.min(axis=1, keepdims=True)
            b = b - b.min(axis=1, keepdims=True)
            key = a * base + b
            order = np.argsort(key, axis=1, kind="stable")
            stacked[k * n : (k + 1) * n, :s] = np.take_along_axis(key, order, axis=1)
            stacked[k * n : (k + 1) * n, s:] = np.take_along_axis(cc, order, axis=1)
        uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
        inv = inv.reshape(nr, n)
        canon = inv.min(axis=0)
        cls_u, cls_local = np.unique(canon, return_inverse=True)
        offset = len(patterns)
        class_of[comp_idx] = offset + cls_local.reshape(-1)
        for u in cls_u:
            row = uniq[u]
            key = row[:s]
            pat = np.column_stack([key // base, key % base, row[s:]])
            patterns.append(pat)
    return class_of, patterns


def _occurs_in(p_rots, q_grid) -> bool:
    """Does pattern P (under one of its rotations) occur in Q under a translation?

    ``p_rots``: (cells (n_rot * s, 2), comps (n_rot * s,), n_rot, s), each
    rotation normalised to a zero corner; ``q_grid``: dense array of Q's
    composition ids + 1 (0 = no cell). Candidate translations put P's first
    cell on a Q cell of the same composition.
    """
    pcs, pks, n_rot, s = p_rots
    return bool(occurs(pcs, pks, n_rot, s, q_grid))


def containment_edges(nodes, rots, max_level_gap, nearest):
    """Containment edges between minority motif-cells (lattice mode).

    Parameters
    ----------
    nodes : list of MotifCell
        All motif-cells, with canonical ``pattern`` rows ``[di, dj, comp]``.
    rots : list of ndarray (2, 2) int
        Rotations under which a pattern may occur.
    max_level_gap : int or None
        Largest level difference kept (None: all).
    nearest : bool
        A node with no contained pattern within the gap is linked to those at
        the closest lower level that has any.

    Returns
    -------
    list of (int, int)
        Sorted, distinct ``(lower_id, higher_id)`` pairs.
    """
    info = {}
    for m in nodes:
        if m.dominant:
            continue
        pat = np.asarray(m.pattern, dtype=np.int64).reshape(-1, 3)
        cells, comps = pat[:, :2], pat[:, 2]
        grid = np.zeros(tuple(cells.max(axis=0) + 1), np.int64)
        grid[cells[:, 0], cells[:, 1]] = comps + 1
        pcs, pks = [], []
        seen = set()
        for r in rots:
            pc = cells @ np.asarray(r).T
            pc = pc - pc.min(axis=0)
            order = np.lexsort((pc[:, 1], pc[:, 0]))
            pc, pk = pc[order], comps[order]
            key = (pc.tobytes(), pk.tobytes())
            if key in seen:  # symmetric patterns: skip repeated rotations
                continue
            seen.add(key)
            pcs.append(pc)
            pks.append(pk)
        p_rots = (np.ascontiguousarray(np.vstack(pcs), dtype=np.int64),
                  np.ascontiguousarray(np.concatenate(pks), dtype=np.int64), len(pcs), len(cells))
        info[m.id] = (p_rots, grid, Counter(comps.tolist()))
    by_level: dict = {}
    for m in nodes:
        if not m.dominant:
            by_level.setdefault(m.level, []).append(m.id)
    levels = sorted(by_level)
    edges = []
    for q in nodes:
        if q.dominant or q.level < 2:
            continue
        _, q_grid, qcnt = info[q.id]
        found_any = False
        for lv in sorted((lv for lv in levels if lv < q.level), reverse=True):
            gap = q.level - lv
            within = max_level_gap is None or gap <= max_level_gap
            if not within and (found_any or not nearest):
                break
            hits = []
            for pid in by_level[lv]:
                p_rots, _, pcnt = info[pid]
                if any(n > qcnt.get(c, 0) for c, n in pcnt.items()):
                    continue
                if _occurs_in(p_rots, q_grid):
                    hits.append(pid)
            edges += [(pid, q.id) for pid in hits]
            found_any = found_any or bool(hits)
    return sorted(set(edges))
