"""Hierarchy of motif-cells (METHOD.md §5; Dan et al. 2022, Fig. 2 and Methods).

Steps, as in the paper's Methods:

1. Tessellate the field of view into cells: the unit cells of a lattice found
   with :func:`motiflab.lattice.find_lattice` (``cells="lattice"``), or the
   Voronoi cells of the columns (``cells="voronoi"``) for non-periodic samples.
2. Assign every labelled column to its cell. A cell's **composition** (the
   multiset of motif labels in it) classifies it: a *motif-cell*.
3. The most frequent composition is the host crystal's unit cell (the
   *dominant* motif-cell); all other cells are *minority* cells.
4. Minority cells that touch (von Neumann neighbourhood ``(i±1, j)``,
   ``(i, j±1)`` on the index grid by default) are grown into connected
   components; each component is a motif-cell whose **level** is its number of
   cells.
5. Components with the same pattern up to an overall rotation are merged (90
   degree steps of the index grid as in the paper, or the lattice's own
   rotations such as 60 degrees for hexagonal lattices); each merged motif-cell
   gets its occurrence **count** and **locations**.
6. Edges: a lower-level motif-cell is linked to a higher-level one when its
   pattern occurs inside it under a translation. Only level differences up to
   ``max_level_gap`` are kept (the paper's drawing threshold).

Cells on the border of the field of view are excluded (they are cut by the
frame, so their composition is incomplete): a cell takes part only if all its
basis sites lie inside the field of view shrunk by ``edge_margin``. Cells
*inside* the field of view that hold no column at all take part with the empty
composition (e.g. a metal vacancy next to a missing chalcogen column).

JSON contract (``Hierarchy.to_json``; stable, read by outside tools)::

    {"lattice": {"u": [r, c], "v": [r, c], ...} | null,
     "motif_cells": [{"id", "level", "count", "dominant", "composition",
                      "pattern", "locations", ...}, ...],
     "edges": [[lower_id, higher_id], ...], ...}

* ``id`` -- int, unique; 0 is the dominant (host) cell, then the minority
  single-cell compositions (level 1), then higher levels.
* ``level`` -- number of cells in the pattern.
* ``count`` -- number of connected components with exactly this pattern (up to
  rotation); a component is counted once, at its own level. For the dominant
  node it is the number of host cells. A level-1 minority node that only occurs
  inside larger components has count 0 (``n_cells`` says how many cells have it).
* ``dominant`` -- true only for the host-crystal cell.
* ``composition`` -- sorted list of ``[label, count]`` pairs: the multiset of
  column labels over all cells of the pattern (labels are the user's labels,
  as str or int).
* ``pattern`` -- list of ``[di, dj, composition_id]`` in canonical form
  (lattice mode): cell offsets from the pattern's bounding-box corner, sorted;
  ``composition_id`` is the ``id`` of the level-1 motif-cell with that cell's
  composition. In Voronoi mode offsets are pixel offsets ``[drow, dcol, id]``
  of one example occurrence and ``pattern_edges`` lists its adjacent pairs.
* ``locations`` -- one entry per occurrence: ``{"ij": [i, j]`` (smallest cell
  index of the occurrence; Voronoi mode: the column index), ``"px": [row, col]``
  (mean of its cell centres, pixels), ``"cells": [[i, j], ...]}``. Empty for
  the dominant node (every host cell would be listed).
"""
from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy import ndimage

from ._validation import check_positions
from .errors import InputFileError, MotifLabError
from .lattice import Lattice, find_lattice, index_cells

__all__ = [
    "CellCompositions",
    "MotifCell",
    "Hierarchy",
    "motif_cells",
    "build_hierarchy",
    "SQUARE_ROTATIONS",
    "canonical_pattern",
]

#: The four 90-degree rotations of the (i, j) index grid, as integer matrices.
SQUARE_ROTATIONS = [
    np.array([[1, 0], [0, 1]]),
    np.array([[0, -1], [1, 0]]),
    np.array([[-1, 0], [0, -1]]),
    np.array([[0, 1], [-1, 0]]),
]


# --------------------------------------------------------------------------- labels


def _encode_labels(labels, n: int):
    """Labels -> (names list of python scalars, codes int64)."""
    try:
        lab = np.asarray(labels)
    except Exception:  # pragma: no cover - ragged input
        raise MotifLabError("labels must be a 1-D sequence of class labels (ints or strings)") from None
    if lab.ndim != 1:
        raise MotifLabError(f"labels must be 1-D (one label per column), got shape {lab.shape}")
    if len(lab) != n:
        raise MotifLabError(
            f"labels and positions have different lengths ({len(lab)} vs {n}); give one "
            "label per column, in the same order as the positions"
        )
    if lab.dtype.kind in "iub":
        lab = lab.astype(np.int64)
    elif lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
            raise MotifLabError("float labels must be whole numbers; pass integer or string labels")
        lab = lab.astype(np.int64)
    else:
        lab = lab.astype(str)
    names, codes = np.unique(lab, return_inverse=True)
    names_py = [x.item() if hasattr(x, "item") else x for x in names]
    return names_py, codes.astype(np.int64)


# --------------------------------------------------------------------------- compositions


@dataclass
class CellCompositions:
    """Composition of every cell.

    Attributes
    ----------
    cells : ndarray (M, 2) int
        Cell indices ``(i, j)`` (one row per distinct cell).
    counts : ndarray (M, L) int
        Number of columns of each label in each cell.
    label_names : list
        The L labels (sorted).
    composition_id : ndarray (M,) int
        Row of ``compositions`` for each cell.
    compositions : ndarray (C, L) int
        Distinct compositions (count vectors), most frequent first.
    composition_counts : ndarray (C,) int
        Number of cells with each composition.
    host : int
        Composition id of the dominant (host) cell: 0.
    minority : ndarray (M,) bool
        Cell is not a host cell.
    column_cell : ndarray (N,) int
        Row of ``cells`` each column belongs to.
    """

    cells: np.ndarray
    counts: np.ndarray
    label_names: list
    composition_id: np.ndarray
    compositions: np.ndarray
    composition_counts: np.ndarray
    host: int
    minority: np.ndarray
    column_cell: np.ndarray

    def composition_list(self, cid: int) -> list:
        """Composition ``cid`` as a sorted list of ``[label, count]``."""
        row = self.compositions[cid]
        return [[self.label_names[k], int(c)] for k, c in enumerate(row) if c > 0]


def _unique_rows(counts: np.ndarray):
    """``np.unique(counts, axis=0, return_inverse, return_counts)``, fast for small counts.

    Rows of small non-negative counts are packed into one int64 key (mixed
    radix), which makes the unique a 1-D sort; falls back to the row-wise
    unique when the key would overflow.
    """
    if counts.size == 0:
        return counts[:0], np.zeros(len(counts), np.int64), np.zeros(0, np.int64)
    base = int(counts.max()) + 1
    n_lab = counts.shape[1]
    if n_lab * math.log2(max(base, 2)) < 62:
        w = base ** np.arange(n_lab - 1, -1, -1, dtype=np.int64)
        key = counts.astype(np.int64) @ w
        uk, first, inv, cnt = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        return counts[first], inv.reshape(-1), cnt
    comps, inv, cnt = np.unique(counts, axis=0, return_inverse=True, return_counts=True)
    return comps, inv.reshape(-1), cnt


def _rank_compositions(comps: np.ndarray, inv: np.ndarray, ccount: np.ndarray):
    """Reorder compositions most frequent first (ties by the count vector)."""
    order = np.lexsort(tuple(comps[:, ::-1].T) + (-ccount,))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return comps[order], rank[inv], ccount[order]


def _compositions_from_codes(key: np.ndarray, codes: np.ndarray, n_keys: int, n_labels: int):
    """Count matrix (n_keys, n_labels) and unique compositions, most frequent first."""
    counts = np.bincount(key * n_labels + codes, minlength=n_keys * n_labels).reshape(n_keys, n_labels)
    comps, inv, ccount = _unique_rows(counts)
    comps, cid, ccount = _rank_compositions(comps, inv, ccount)
    return counts, comps, cid, ccount


def motif_cells(cells_ij, labels) -> CellCompositions:
    """Classify cells by their composition (multiset of motif labels).

    Parameters
    ----------
    cells_ij : array_like, shape (N, 2) int
        Cell index of every column (e.g. from :func:`motiflab.lattice.index_cells`).
    labels : array_like, shape (N,)
        Motif label of every column (ints or strings).

    Returns
    -------
    CellCompositions
        Compositions per cell, the host composition (id 0, the most frequent)
        and the minority mask. Only cells that hold at least one column appear;
        :func:`build_hierarchy` also handles empty cells and the frame border.

    Raises
    ------
    MotifLabError
        If the inputs have different lengths or the wrong shape.
    """
    ij = np.asarray(cells_ij)
    if ij.ndim != 2 or ij.shape[1] != 2:
        raise MotifLabError(f"cells_ij must have shape (N, 2), got {ij.shape}")
    if ij.dtype.kind not in "iu":
        if not np.all(np.isfinite(ij)) or not np.all(ij == np.round(ij)):
            raise MotifLabError("cells_ij must hold integer cell indices")
        ij = ij.astype(np.int64)
    names, codes = _encode_labels(labels, len(ij))
    if len(ij) == 0:
        raise MotifLabError("no columns given: need at least one labelled column per cell")
    cells, col_cell = np.unique(ij.astype(np.int64), axis=0, return_inverse=True)
    col_cell = col_cell.reshape(-1)
    counts, comps, cid, ccount = _compositions_from_codes(col_cell, codes, len(cells), len(names))
    return CellCompositions(
        cells=cells,
        counts=counts,
        label_names=names,
        composition_id=cid,
        compositions=comps,
        composition_counts=ccount,
        host=0,
        minority=cid != 0,
        column_cell=col_cell,
    )


# --------------------------------------------------------------------------- canonical forms


def _rotation_set(rotations, lattice: Lattice | None) -> list[np.ndarray]:
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


def _canonicalise(sizes, member_cells, member_comp, rots):
    """Vectorised canonical classes for all components.

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


# --------------------------------------------------------------------------- result types


@dataclass
class MotifCell:
    """One node of the hierarchy (see the module docstring for field meanings)."""

    id: int
    level: int
    count: int
    dominant: bool
    composition: list
    pattern: list
    locations: list
    n_cells: int = 0
    pattern_edges: list | None = None

    def to_json(self, max_locations: int | None = None) -> dict:
        """JSON-ready dict (plain ints/floats/strings and lists)."""
        locs = self.locations if max_locations is None else self.locations[:max_locations]
        out = {
            "id": int(self.id),
            "level": int(self.level),
            "count": int(self.count),
            "dominant": bool(self.dominant),
            "composition": [[_py(a), int(b)] for a, b in self.composition],
            "pattern": [[_py(x) for x in row] for row in self.pattern],
            "locations": locs,
            "n_cells": int(self.n_cells),
        }
        if self.pattern_edges is not None:
            out["pattern_edges"] = [[int(a), int(b)] for a, b in self.pattern_edges]
        return out


def _py(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.str_):
        return str(x)
    return x


@dataclass
class Hierarchy:
    """Result of :func:`build_hierarchy`.

    Attributes
    ----------
    lattice : Lattice or None
        The lattice used (``None`` in Voronoi mode).
    motif_cells : list of MotifCell
        Nodes, ordered by id (host first, then level by level).
    edges : list of (int, int)
        ``(lower_id, higher_id)`` containment edges within the level gap.
    label_names : list
        Distinct column labels.
    cells : ndarray (M, 2) int
        Cells that took part (lattice mode: ``(i, j)``; Voronoi: ``(k, 0)``).
    cell_node : ndarray (M,) int
        Level-1 motif-cell id of each cell's composition.
    cell_component : ndarray (M,) int
        Component index of each minority cell, -1 for host cells.
    component_node : ndarray (n_components,) int
        Motif-cell id of each component.
    column_cell : ndarray (N,) int
        Row of ``cells`` of each input column; -1 where the column was ignored
        or its cell was cut by the frame.
    params : dict
        Options used.
    notes : list of str
        Warnings raised while building (also emitted with ``warnings.warn``).
    """

    lattice: Lattice | None
    motif_cells: list
    edges: list
    label_names: list
    cells: np.ndarray
    cell_node: np.ndarray
    cell_component: np.ndarray
    component_node: np.ndarray
    column_cell: np.ndarray
    params: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    _graph: object = field(default=None, repr=False)

    # -- accessors -----------------------------------------------------------------
    def node(self, node_id: int) -> MotifCell:
        """The motif-cell with this id."""
        return self.motif_cells[int(node_id)]

    @property
    def host(self) -> MotifCell:
        """The dominant (host-crystal) motif-cell."""
        return self.motif_cells[0]

    @property
    def levels(self) -> dict:
        """``{level: [ids]}``."""
        out: dict = {}
        for m in self.motif_cells:
            out.setdefault(m.level, []).append(m.id)
        return out

    def counts_by_pattern(self) -> dict:
        """``{tuple(map(tuple, pattern)): count}`` for all minority motif-cells with count > 0."""
        return {
            tuple(tuple(r) for r in m.pattern): m.count
            for m in self.motif_cells
            if not m.dominant and m.count > 0
        }

    def column_motif_cell(self) -> np.ndarray:
        """Motif-cell id of the component (0 for a host cell) each column belongs to; -1 if none."""
        out = np.full(len(self.column_cell), -1, np.int64)
        ok = self.column_cell >= 0
        cc = self.cell_component[self.column_cell[ok]]
        node = np.zeros(len(cc), np.int64)
        if len(self.component_node):
            node[cc >= 0] = self.component_node[cc[cc >= 0]]
        out[ok] = node
        return out

    @property
    def graph(self):
        """``networkx.DiGraph``: nodes are ids with attributes ``level``, ``count``,
        ``dominant``, ``composition``, ``pattern``, ``locations`` (up to 20 examples),
        ``n_cells`` and ``label``; edges lower -> higher with ``level_gap``."""
        if self._graph is None:
            import networkx as nx

            g = nx.DiGraph()
            for m in self.motif_cells:
                g.add_node(
                    m.id,
                    level=m.level,
                    count=m.count,
                    dominant=m.dominant,
                    composition=m.composition,
                    pattern=m.pattern,
                    locations=m.locations[:20],
                    n_cells=m.n_cells,
                    label=f"L{m.level} ({m.count})" + (" host" if m.dominant else ""),
                )
            for a, b in self.edges:
                g.add_edge(a, b, level_gap=self.motif_cells[b].level - self.motif_cells[a].level)
            self._graph = g
        return self._graph

    # -- export --------------------------------------------------------------------
    def to_json(self, max_locations: int | None = None) -> dict:
        """The stable JSON contract (see module docstring); every value is plain Python.

        Parameters
        ----------
        max_locations : int, optional
            Keep at most this many locations per motif-cell (default: all).
        """
        return {
            "format": "motiflab.hierarchy/1",
            "lattice": None if self.lattice is None else self.lattice.to_json(),
            "cells": self.params.get("cells", "lattice"),
            "rotations": self.params.get("rotations"),
            "neighborhood": self.params.get("neighborhood"),
            "max_level_gap": self.params.get("max_level_gap"),
            "labels": [_py(x) for x in self.label_names],
            "n_cells": int(len(self.cells)),
            "n_minority_cells": int(np.sum(self.cell_component >= 0)),
            "motif_cells": [m.to_json(max_locations) for m in self.motif_cells],
            "edges": [[int(a), int(b)] for a, b in self.edges],
            "notes": list(self.notes),
        }

    def save_json(self, path, max_locations: int | None = None, indent: int | None = 1,
                  overwrite: bool = False) -> None:
        """Write :meth:`to_json` to ``path`` atomically; an existing file only with ``overwrite``."""
        from .files import write_atomic

        doc = self.to_json(max_locations)
        try:
            write_atomic(path, lambda fh: json.dump(doc, fh, indent=indent), overwrite, binary=False)
        except InputFileError:
            raise
        except OSError as e:
            raise InputFileError(f"cannot write the hierarchy to {path!s}: {e}; check the folder exists and is writable") from None

    def summary(self, max_rows: int = 30) -> str:
        """Plain-text table of the motif-cells (id, level, count, composition)."""
        lines = [f"{'id':>4} {'level':>5} {'count':>6}  composition"]
        for m in self.motif_cells[:max_rows]:
            comp = ", ".join(f"{a}x{b}" for a, b in m.composition)
            tag = "  [host]" if m.dominant else ""
            lines.append(f"{m.id:>4} {m.level:>5} {m.count:>6}  {comp}{tag}")
        if len(self.motif_cells) > max_rows:
            lines.append(f"... {len(self.motif_cells) - max_rows} more")
        return "\n".join(lines)


# --------------------------------------------------------------------------- edges


@numba.njit(cache=True)
def _occurs_nb(pcs, pks, n_rot, s, q_grid):  # pragma: no cover - compiled
    """Numba core of :func:`_occurs_in`: rotations stacked as (n_rot * s, 2) / (n_rot * s,)."""
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


def _occurs_in(p_rots, q_grid) -> bool:
    """Does pattern P (under one of its rotations) occur in Q under a translation?

    ``p_rots``: (cells (n_rot * s, 2), comps (n_rot * s,), n_rot, s), each
    rotation normalised to a zero corner; ``q_grid``: dense array of Q's
    composition ids + 1 (0 = no cell). Candidate translations put P's first
    cell on a Q cell of the same composition.
    """
    pcs, pks, n_rot, s = p_rots
    return bool(_occurs_nb(pcs, pks, n_rot, s, q_grid))


def _lattice_edges(nodes, rots, max_level_gap, nearest):
    """Containment edges between minority motif-cells (lattice mode)."""
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


# --------------------------------------------------------------------------- main entry


def _site_spacing(lattice: Lattice) -> float:
    """Shortest distance between two sites of the lattice (basis sites and their images)."""
    basis = lattice.basis if len(lattice.basis) else np.zeros((1, 2))
    m = lattice.matrix
    best = min(lattice.lengths)
    shifts = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)], float)
    for x in basis:
        for y in basis:
            d = (y - x)[None, :] + shifts
            r = np.hypot(*(d @ m.T).T)
            r = r[r > 1e-9]
            if len(r):
                best = min(best, float(r.min()))
    return best


def _fov_bounds(fov, positions):
    if fov is None:
        lo = positions.min(axis=0)
        hi = positions.max(axis=0)
        return lo, hi
    f = np.asarray(fov, dtype=float).ravel()
    if f.size == 2:
        return np.array([-0.5, -0.5]), f - 0.5
    if f.size == 4:
        return f[:2], f[2:]
    raise MotifLabError(
        "fov must be the image shape (H, W) or bounds (row_min, col_min, row_max, col_max) in pixels"
    )


def build_hierarchy(
    positions,
    labels,
    lattice: Lattice | None = None,
    *,
    cells: str = "lattice",
    rotations: str = "square",
    neighborhood: str = "auto",
    max_level_gap: int | None = 1,
    nearest: bool = True,
    fov=None,
    edge_margin: float | None = None,
    ignore_labels=(),
    max_locations: int | None = None,
) -> Hierarchy:
    """Build the hierarchy of motif-cells from labelled columns.

    Parameters
    ----------
    positions : array_like, shape (N, 2)
        Column positions ``(row, col)`` in pixels.
    labels : array_like, shape (N,)
        Motif label of every column (ints or strings), e.g. the classes of the
        force-relaxed layout.
    lattice : Lattice, optional
        Cell lattice; found with :func:`motiflab.lattice.find_lattice` when omitted.
    cells : {"lattice", "voronoi"}
        Unit cells of the lattice, or one Voronoi cell per column (non-periodic
        samples).
    rotations : {"square", "lattice", "none"}
        Patterns are merged up to overall rotations: 90 degree steps of the
        ``(i, j)`` index grid (the paper's choice, for any lattice), the
        lattice's own rotations (60 degree steps for a hexagonal lattice, in
        lattice coordinates), or none. Voronoi mode always merges isomorphic
        labelled adjacency graphs.
    neighborhood : {"auto", "von_neumann", "lattice"}
        Which cells touch: ``(i±1, j), (i, j±1)`` (von Neumann, the paper's), or
        all shortest lattice vectors (adds ``±(u+v)`` or ``±(u-v)`` on a
        hexagonal lattice). ``"auto"``: von Neumann with ``rotations="square"``
        or ``"none"``, the lattice's neighbours with ``rotations="lattice"``.
    max_level_gap : int or None
        Keep containment edges whose level difference is at most this (None: all).
    nearest : bool
        A motif-cell with no contained pattern within ``max_level_gap`` is linked
        to the contained patterns at the closest lower level that has any, so
        no node is left dangling only because intermediate levels are absent.
    fov : (H, W) or (row_min, col_min, row_max, col_max), optional
        Field of view in pixels; default: bounding box of ``positions`` (i.e.
        the region in which columns were labelled).
    edge_margin : float, optional
        Cells whose sites lie within this many pixels of the field-of-view
        border are excluded. Default: half the nearest-neighbour distance.
    ignore_labels : sequence
        Labels to drop before composing cells (e.g. a "noise" class).
    max_locations : int, optional
        Keep at most this many locations per motif-cell.

    Returns
    -------
    Hierarchy

    Raises
    ------
    MotifLabError
        Mismatched lengths, too few cells, no lattice found (the message
        suggests ``cells="voronoi"``), invalid options.

    Warns
    -----
    UserWarning
        When every cell has the same composition (the hierarchy is just the
        host), or when the host covers less than half the cells.

    Notes
    -----
    Rotations act on the arrangement of cells and keep each cell's
    composition. A parallelogram cell pairs every column with particular
    neighbours (in a TMD each metal with one of its three chalcogens), so the
    same physical defect cluster seen in two orientations related by a crystal
    symmetry can give different cell patterns; rotation merging then joins
    only clusters whose *cell* patterns are rotations of each other, as in the
    paper. Counts per pattern and the total composition of each motif-cell do
    not depend on which pairing :func:`~motiflab.lattice.find_lattice` picks.

    Cost: cell indexing, compositions and components are vectorised
    (``numpy.bincount``, ``scipy.ndimage.label``); canonical forms are ranked
    with one ``numpy.unique`` per pattern size; containment tests are compiled
    with numba. About 0.15 s for 100k columns with a given lattice, ~1 s with
    lattice finding (2 cores).
    """
    if cells not in ("lattice", "voronoi"):
        raise MotifLabError(f"cells must be 'lattice' or 'voronoi', got {cells!r}")
    if neighborhood not in ("auto", "von_neumann", "lattice"):
        raise MotifLabError(f"neighborhood must be 'auto', 'von_neumann' or 'lattice', got {neighborhood!r}")
    if max_level_gap is not None and (not isinstance(max_level_gap, (int, np.integer)) or max_level_gap < 1):
        raise MotifLabError(f"max_level_gap must be a positive integer or None, got {max_level_gap!r}")
    p_all = check_positions(positions)
    names, codes = _encode_labels(labels, len(p_all))
    keep = np.ones(len(p_all), bool)
    ignore = list(ignore_labels) if ignore_labels is not None else []
    for lab in ignore:
        if lab in names:
            keep &= codes != names.index(lab)
    if cells == "voronoi":
        return _build_voronoi(p_all, names, codes, keep, max_level_gap, nearest, max_locations)
    if rotations not in ("square", "lattice", "none"):
        raise MotifLabError(f"rotations must be 'square', 'lattice' or 'none', got {rotations!r}")
    if lattice is None:
        if len(p_all) < 8:
            raise MotifLabError(
                f"too few columns ({len(p_all)}) to find a lattice and build cells; use a larger "
                "field of view (the hierarchy needs many cells to tell host from minority)"
            )
        lattice = find_lattice(p_all)
    elif not isinstance(lattice, Lattice):
        raise MotifLabError("lattice must be a motiflab.lattice.Lattice (see find_lattice) or None")
    notes: list[str] = []

    if neighborhood == "auto":
        neighborhood = "lattice" if rotations == "lattice" else "von_neumann"
    rots = _rotation_set(rotations, lattice)

    # --- cells that take part: every basis site inside the (shrunk) field of view ----
    lo, hi = _fov_bounds(fov, p_all)
    if edge_margin is None:
        edge_margin = 0.5 * _site_spacing(lattice)
    lo_in, hi_in = lo + edge_margin, hi - edge_margin
    ij_all = index_cells(p_all, lattice)
    ij = ij_all[keep]
    if len(ij) == 0:
        raise MotifLabError("no labelled columns left after ignore_labels; nothing to build")
    i0, j0 = ij.min(axis=0)
    i1, j1 = ij.max(axis=0)
    ni, nj = int(i1 - i0 + 1), int(j1 - j0 + 1)
    if ni * nj > 50_000_000:
        raise MotifLabError(
            f"the cell grid would have {ni}x{nj} cells; the lattice vectors look far too short for "
            "these positions. Check the lattice (find_lattice) or the position units"
        )
    gi, gj = np.meshgrid(np.arange(i0, i1 + 1), np.arange(j0, j1 + 1), indexing="ij")
    gcells = np.column_stack([gi.ravel(), gj.ravel()])
    if len(lattice.basis):
        sites = lattice.site_positions(gcells)
    else:
        corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
        sites = lattice.to_pixels((gcells[:, None, :] + corners[None]).reshape(-1, 2)).reshape(-1, 4, 2)
    inside = np.all((sites >= lo_in) & (sites <= hi_in), axis=(1, 2))
    if inside.sum() < 4:
        raise MotifLabError(
            f"too few complete cells ({int(inside.sum())}) inside the field of view to build a "
            "hierarchy; use a larger image (at least a few dozen unit cells), a smaller "
            "edge_margin, or check the lattice"
        )

    # --- compositions ------------------------------------------------------------------
    key = (ij[:, 0] - i0) * nj + (ij[:, 1] - j0)
    n_lab = len(names)
    counts = np.bincount(key * n_lab + codes[keep], minlength=ni * nj * n_lab).reshape(ni * nj, n_lab)
    # compositions over complete cells only (border cells are cut by the frame)
    comps_in, inv_in, ccount_in = _unique_rows(counts[inside])
    comps_in, cid_in, ccount_in = _rank_compositions(comps_in, inv_in, ccount_in)
    n_in = int(inside.sum())
    if len(ccount_in) > 1 and ccount_in[0] == ccount_in[1]:
        notes.append(
            f"two compositions are equally frequent ({int(ccount_in[0])} cells each); the host "
            "was picked by label order. Check the labels or the cell choice"
        )
    if ccount_in[0] < 0.5 * n_in:
        notes.append(
            f"the most frequent composition covers only {ccount_in[0] / n_in:.0%} of the cells; the "
            "sample may not be a crystal with isolated defects (try cells='voronoi' or check labels)"
        )
    if len(ccount_in) == 1:
        notes.append(
            f"all {n_in} cells have the same composition: there are no minority motif-cells, so the "
            "hierarchy is just the host cell. Check that the labels distinguish defect motifs"
        )

    grid_cid = np.full(ni * nj, -1, np.int64)
    grid_cid[np.flatnonzero(inside)] = cid_in
    grid_cid = grid_cid.reshape(ni, nj)
    minority = grid_cid > 0

    # level-1 ids: host 0, minority compositions 1..C-1 in order of frequency
    n_comp_types = len(ccount_in)

    # --- connected components ------------------------------------------------------------
    if neighborhood == "von_neumann":
        struct = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    else:
        struct = np.zeros((3, 3), int)
        struct[1, 1] = 1
        for di, dj in lattice.neighbor_offsets():
            struct[1 + di, 1 + dj] = 1
    comp_lab, n_components = ndimage.label(minority, structure=struct)
    mi, mj = np.nonzero(minority)
    mlab = comp_lab[mi, mj] - 1
    order = np.lexsort((mj, mi, mlab))
    mi, mj, mlab = mi[order], mj[order], mlab[order]
    sizes = np.bincount(mlab, minlength=n_components)
    member_cells = np.column_stack([mi, mj]).astype(np.int64)
    member_comp = grid_cid[mi, mj]
    class_of, patterns = _canonicalise(sizes, member_cells, member_comp, rots)

    # --- nodes ------------------------------------------------------------------------------
    cls_count = np.bincount(class_of, minlength=len(patterns)) if len(patterns) else np.zeros(0, int)
    levels = np.array([len(p) for p in patterns], dtype=np.int64)
    # level-1 classes map 1:1 to minority compositions
    single_count = np.zeros(n_comp_types, np.int64)
    single_class = {}
    for c, pat in enumerate(patterns):
        if len(pat) == 1:
            single_count[int(pat[0, 2])] = cls_count[c]
            single_class[int(pat[0, 2])] = c
    higher = [c for c in range(len(patterns)) if levels[c] >= 2]
    higher.sort(key=lambda c: (levels[c], -cls_count[c], patterns[c][:, :2].tolist(), patterns[c][:, 2].tolist()))
    class_node = np.full(len(patterns), -1, np.int64)
    for cid_, c in single_class.items():
        class_node[c] = cid_
    for k, c in enumerate(higher):
        class_node[c] = n_comp_types + k
    component_node = class_node[class_of] if n_components else np.zeros(0, np.int64)

    # locations per component
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if n_components else np.zeros(0, np.int64)
    abs_i = mi + i0
    abs_j = mj + j0
    centres = lattice.cell_centers(np.column_stack([abs_i, abs_j])) if len(mi) else np.zeros((0, 2))
    locs_by_node: dict = {}
    if n_components:
        ctr_all = np.add.reduceat(centres, starts, axis=0) / sizes[:, None]
        ai_l, aj_l, ctr_l = abs_i.tolist(), abs_j.tolist(), np.round(ctr_all, 3).tolist()
        for k, (s0, s) in enumerate(zip(starts.tolist(), sizes.tolist())):
            cells_k = [[a, b] for a, b in zip(ai_l[s0 : s0 + s], aj_l[s0 : s0 + s])]
            locs_by_node.setdefault(int(component_node[k]), []).append(
                {"ij": cells_k[0], "px": ctr_l[k], "cells": cells_k}
            )

    def comp_list(counts_vec):
        return [[names[k], int(c)] for k, c in enumerate(counts_vec) if c > 0]

    nodes: list[MotifCell] = []
    host_vec = comps_in[0]
    nodes.append(
        MotifCell(
            id=0, level=1, count=int(ccount_in[0]), dominant=True, composition=comp_list(host_vec),
            pattern=[[0, 0, 0]], locations=[], n_cells=int(ccount_in[0]),
        )
    )
    for c in range(1, n_comp_types):
        locs = locs_by_node.get(c, [])
        nodes.append(
            MotifCell(
                id=c, level=1, count=int(single_count[c]), dominant=False,
                composition=comp_list(comps_in[c]), pattern=[[0, 0, c]],
                locations=locs if max_locations is None else locs[:max_locations],
                n_cells=int(ccount_in[c]),
            )
        )
    for k, c in enumerate(higher):
        pat = patterns[c]
        tot = np.zeros(len(names), np.int64)
        for cc in pat[:, 2]:
            tot += comps_in[cc]
        locs = locs_by_node.get(n_comp_types + k, [])
        nodes.append(
            MotifCell(
                id=n_comp_types + k, level=int(levels[c]), count=int(cls_count[c]), dominant=False,
                composition=comp_list(tot), pattern=[[int(a), int(b), int(cc)] for a, b, cc in pat],
                locations=locs if max_locations is None else locs[:max_locations],
                n_cells=int(levels[c] * cls_count[c]),
            )
        )
    edges = _lattice_edges(nodes, rots, max_level_gap, nearest)

    # --- per-cell and per-column bookkeeping ------------------------------------------------------
    in_idx = np.flatnonzero(inside)
    cells_out = gcells[in_idx]
    cell_node = cid_in.astype(np.int64)
    comp_grid = (comp_lab - 1).ravel()
    cell_component = comp_grid[in_idx].astype(np.int64)
    grid_to_row = np.full(ni * nj, -1, np.int64)
    grid_to_row[in_idx] = np.arange(len(in_idx))
    key_all = (ij_all[:, 0] - i0) * nj + (ij_all[:, 1] - j0)
    okk = keep & (key_all >= 0) & (key_all < ni * nj) & (ij_all[:, 0] >= i0) & (ij_all[:, 1] >= j0) & (ij_all[:, 0] <= i1) & (ij_all[:, 1] <= j1)
    column_cell = np.full(len(p_all), -1, np.int64)
    column_cell[okk] = grid_to_row[key_all[okk]]

    for n_ in notes:
        warnings.warn(n_, UserWarning, stacklevel=2)
    return Hierarchy(
        lattice=lattice,
        motif_cells=nodes,
        edges=edges,
        label_names=names,
        cells=cells_out,
        cell_node=cell_node,
        cell_component=cell_component,
        component_node=component_node.astype(np.int64),
        column_cell=column_cell,
        params={
            "cells": "lattice",
            "rotations": rotations,
            "neighborhood": neighborhood,
            "max_level_gap": max_level_gap,
            "nearest": nearest,
            "edge_margin": float(edge_margin),
            "fov": [float(x) for x in np.concatenate([lo, hi])],
        },
        notes=notes,
    )


# --------------------------------------------------------------------------- Voronoi mode


def _build_voronoi(p_all, names, codes, keep, max_level_gap, nearest, max_locations):
    """Hierarchy on Voronoi cells: one cell per column, adjacency = shared Voronoi side.

    Duplicates are merged when their labelled adjacency graphs are isomorphic
    (Weisfeiler-Lehman hash, confirmed by an exact isomorphism test for
    components of up to 60 cells). Containment uses node-induced subgraph
    isomorphism (labels must match).
    """
    import networkx as nx
    from networkx.algorithms import isomorphism as iso
    from scipy.sparse.csgraph import connected_components

    from .lattice import voronoi_cells

    notes: list[str] = []
    idx = np.flatnonzero(keep)
    p = p_all[idx]
    c = codes[idx]
    if len(p) < 4:
        raise MotifLabError(f"too few columns ({len(p)}) for a Voronoi tessellation; need at least 4")
    vc = voronoi_cells(p, with_polygons=False)
    ccount = np.bincount(c, minlength=len(names))
    order = np.lexsort((np.arange(len(names)), -ccount))
    order = order[ccount[order] > 0]
    rank = np.full(len(names), -1, np.int64)
    rank[order] = np.arange(len(order))
    cid = rank[c]
    if len(order) == 1:
        notes.append(
            f"all {len(p)} Voronoi cells have the same label: the hierarchy is just the host cell"
        )
    minority = cid > 0
    e = vc.edges
    e = e[minority[e[:, 0]] & minority[e[:, 1]]]
    from scipy.sparse import coo_matrix

    n = len(p)
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    n_cc, lab = connected_components(adj, directed=False)
    comps = {}
    for k in np.flatnonzero(minority):
        comps.setdefault(int(lab[k]), []).append(int(k))
    edges_by_comp: dict = {}
    for a, b in e:
        edges_by_comp.setdefault(int(lab[a]), []).append((int(a), int(b)))
    classes: list[dict] = []
    by_hash: dict = {}
    comp_class = {}
    for key in sorted(comps, key=lambda k: (len(comps[k]), comps[k][0])):
        members = comps[key]
        g = nx.Graph()
        for m in members:
            g.add_node(m, comp=int(cid[m]))
        g.add_edges_from(edges_by_comp.get(key, []))
        h = (len(members), nx.weisfeiler_lehman_graph_hash(g, node_attr="comp", iterations=3))
        found = None
        for ci in by_hash.get(h, []):
            ref = classes[ci]["graph"]
            if len(members) > 60 or nx.is_isomorphic(
                ref, g, node_match=lambda a, b: a["comp"] == b["comp"]
            ):
                found = ci
                break
        if found is None:
            found = len(classes)
            classes.append({"graph": g, "members": members, "occ": []})
            by_hash.setdefault(h, []).append(found)
        classes[found]["occ"].append(members)
        comp_class[key] = found
    n_types = len(order)

    def comp_list_of(label_counts):
        return [[names[k], int(v)] for k, v in sorted(label_counts.items())]

    nodes = [
        MotifCell(
            id=0, level=1, count=int(ccount[order[0]]), dominant=True,
            composition=[[names[order[0]], 1]], pattern=[[0.0, 0.0, 0]], locations=[],
            n_cells=int(ccount[order[0]]), pattern_edges=[],
        )
    ]
    singles = {}
    for ci, cl in enumerate(classes):
        if len(cl["members"]) == 1:
            singles[int(cid[cl["members"][0]])] = ci
    for t in range(1, n_types):
        ci = singles.get(t)
        occ = classes[ci]["occ"] if ci is not None else []
        locs = [{"ij": [int(idx[o[0]]), 0], "px": [float(p[o[0], 0]), float(p[o[0], 1])], "cells": [[int(idx[o[0]]), 0]]} for o in occ]
        nodes.append(
            MotifCell(
                id=t, level=1, count=len(occ), dominant=False, composition=[[names[order[t]], 1]],
                pattern=[[0.0, 0.0, t]], locations=locs if max_locations is None else locs[:max_locations],
                n_cells=int(ccount[order[t]]), pattern_edges=[],
            )
        )
    higher = [ci for ci, cl in enumerate(classes) if len(cl["members"]) > 1]
    higher.sort(key=lambda ci: (len(classes[ci]["members"]), -len(classes[ci]["occ"]), classes[ci]["members"][0]))
    graphs = {}
    for k, ci in enumerate(higher):
        cl = classes[ci]
        mem = cl["members"]
        pos0 = p[mem[0]]
        local = {m: q for q, m in enumerate(mem)}
        pattern = [[round(float(p[m, 0] - pos0[0]), 3), round(float(p[m, 1] - pos0[1]), 3), int(cid[m])] for m in mem]
        pedges = [[local[a], local[b]] for a, b in cl["graph"].edges()]
        labs = Counter(int(c[m]) for m in mem)
        locs = []
        for o in cl["occ"]:
            ctr = p[o].mean(axis=0)
            locs.append({"ij": [int(idx[o[0]]), 0], "px": [round(float(ctr[0]), 3), round(float(ctr[1]), 3)],
                         "cells": [[int(idx[m]), 0] for m in o]})
        node_id = n_types + k
        nodes.append(
            MotifCell(
                id=node_id, level=len(mem), count=len(cl["occ"]), dominant=False,
                composition=comp_list_of(labs), pattern=pattern,
                locations=locs if max_locations is None else locs[:max_locations],
                n_cells=len(mem) * len(cl["occ"]), pattern_edges=pedges,
            )
        )
        graphs[node_id] = cl["graph"]
    for t in range(1, n_types):
        g = nx.Graph()
        g.add_node(0, comp=t)
        graphs[t] = g
    # containment edges via node-induced subgraph isomorphism
    edges = []
    by_level: dict = {}
    for m in nodes[1:]:
        by_level.setdefault(m.level, []).append(m.id)
    lv_sorted = sorted(by_level)
    nm = lambda a, b: a["comp"] == b["comp"]  # noqa: E731
    for q in nodes[1:]:
        if q.level < 2:
            continue
        found_any = False
        for lv in sorted([x for x in lv_sorted if x < q.level], reverse=True):
            gap = q.level - lv
            within = max_level_gap is None or gap <= max_level_gap
            if not within and not (nearest and not found_any):
                break
            hits = [
                pid for pid in by_level[lv]
                if iso.GraphMatcher(graphs[q.id], graphs[pid], node_match=nm).subgraph_is_isomorphic()
            ]
            edges += [(pid, q.id) for pid in hits]
            found_any = found_any or bool(hits)
            if not within and found_any:
                break
    cell_component = np.full(n, -1, np.int64)
    comp_index = {key: k for k, key in enumerate(sorted(comps))}
    component_node = np.zeros(len(comp_index), np.int64)
    node_of_class = {ci: n_types + k for k, ci in enumerate(higher)}
    for t, ci in singles.items():
        node_of_class[ci] = t
    for key, k in comp_index.items():
        for m in comps[key]:
            cell_component[m] = k
        component_node[k] = node_of_class[comp_class[key]]
    column_cell = np.full(len(p_all), -1, np.int64)
    column_cell[idx] = np.arange(len(idx))
    for n_ in notes:
        warnings.warn(n_, UserWarning, stacklevel=3)
    return Hierarchy(
        lattice=None,
        motif_cells=nodes,
        edges=sorted(set(edges)),
        label_names=names,
        cells=np.column_stack([idx, np.zeros(len(idx), np.int64)]),
        cell_node=cid.astype(np.int64),
        cell_component=cell_component,
        component_node=component_node,
        column_cell=column_cell,
        params={"cells": "voronoi", "rotations": "graph-isomorphism", "neighborhood": "voronoi",
                "max_level_gap": max_level_gap, "nearest": nearest},
        notes=notes,
    )
