"""Lattice-mode steps of :func:`motiflab.hierarchy.build_hierarchy`, one function per step.

In the order ``build_hierarchy`` calls them:

1. :func:`cell_grid` -- the box of cells ``(i, j)`` the labelled columns fall
   in, and which of them lie wholly inside the field of view;
2. :func:`grid_compositions` -- each complete cell's composition, ranked
   (0 = host), with notes on doubtful hosts;
3. :func:`minority_components` -- touching minority cells grown into
   components, each with its canonical pattern class;
4. :func:`lattice_nodes` -- one :class:`~motiflab.hierarchy_result.MotifCell`
   per composition and per higher pattern, with counts and locations;
5. (containment edges: :func:`motiflab.cell_patterns.containment_edges`);
6. :func:`cell_bookkeeping` -- per-cell and per-column arrays of the result.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from .cell_compositions import count_matrix, ranked_compositions
from .cell_patterns import canonical_classes
from .errors import MotifLabError
from .hierarchy_result import MotifCell
from .lattice import Lattice, index_cells

__all__ = [
    "CellGrid",
    "GridCompositions",
    "Components",
    "cell_grid",
    "grid_compositions",
    "minority_components",
    "lattice_nodes",
    "cell_bookkeeping",
]


# --------------------------------------------------------------------------- 1. cells that take part


class CellGrid(NamedTuple):
    """The box of cells spanned by the kept columns (step 1).

    Attributes
    ----------
    ij_all : ndarray (N, 2) int
        Cell of every input column.
    ij : ndarray (n_kept, 2) int
        Cell of every kept column.
    i0, j0, i1, j1 : int
        Smallest and largest cell indices of the kept columns.
    ni, nj : int
        Box size in cells.
    gcells : ndarray (ni * nj, 2) int
        Every cell of the box, row-major.
    inside : ndarray (ni * nj,) bool
        Cell lies wholly inside the field of view shrunk by ``edge_margin``.
    lo, hi : ndarray (2,)
        Field-of-view bounds (px).
    edge_margin : float
        Margin used (px).
    """

    ij_all: np.ndarray
    ij: np.ndarray
    i0: int
    j0: int
    i1: int
    j1: int
    ni: int
    nj: int
    gcells: np.ndarray
    inside: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    edge_margin: float


def cell_grid(p_all: np.ndarray, keep: np.ndarray, lattice: Lattice, fov, edge_margin) -> CellGrid:
    """Cells of the kept columns and which of them are complete.

    A cell takes part only if all its basis sites (its corners when the
    lattice has no basis) lie inside the field of view shrunk by
    ``edge_margin``: a cell cut by the frame has an incomplete composition.

    Parameters
    ----------
    p_all : ndarray (N, 2)
        All column positions (px).
    keep : ndarray (N,) bool
        Columns not dropped by ``ignore_labels``.
    lattice : Lattice
    fov : (H, W) or (row_min, col_min, row_max, col_max) or None
        See :func:`motiflab.hierarchy.build_hierarchy`.
    edge_margin : float or None
        Default: half the shortest site spacing.

    Returns
    -------
    CellGrid

    Raises
    ------
    MotifLabError
        No kept column, an implausibly large grid, or fewer than 4 complete cells.
    """
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
    return CellGrid(ij_all, ij, i0, j0, i1, j1, ni, nj, gcells, inside, lo, hi, edge_margin)


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
    """``(lo, hi)`` pixel bounds of the field of view; the positions' bounding box by default."""
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


# --------------------------------------------------------------------------- 2. compositions


class GridCompositions(NamedTuple):
    """Compositions of the complete cells (step 2).

    Attributes
    ----------
    comps : ndarray (C, L) int
        Distinct compositions, most frequent first (0 = host).
    cid : ndarray (n_inside,) int
        Composition of each complete cell.
    ccount : ndarray (C,) int
        Number of complete cells with each composition.
    grid_cid : ndarray (ni, nj) int
        Composition per cell of the box, -1 for cells cut by the frame.
    notes : list of str
        Doubts about the host (ties, low coverage, no minority cells).
    """

    comps: np.ndarray
    cid: np.ndarray
    ccount: np.ndarray
    grid_cid: np.ndarray
    notes: list


def grid_compositions(grid: CellGrid, kept_codes: np.ndarray, n_labels: int) -> GridCompositions:
    """Composition of every complete cell, ranked so that 0 is the host.

    Parameters
    ----------
    grid : CellGrid
    kept_codes : ndarray (n_kept,) int
        Label code of every kept column (same order as ``grid.ij``).
    n_labels : int

    Returns
    -------
    GridCompositions
    """
    key = (grid.ij[:, 0] - grid.i0) * grid.nj + (grid.ij[:, 1] - grid.j0)
    counts = count_matrix(key, kept_codes, grid.ni * grid.nj, n_labels)
    # compositions over complete cells only (border cells are cut by the frame)
    comps, cid, ccount = ranked_compositions(counts[grid.inside])
    grid_cid = np.full(grid.ni * grid.nj, -1, np.int64)
    grid_cid[np.flatnonzero(grid.inside)] = cid
    grid_cid = grid_cid.reshape(grid.ni, grid.nj)
    return GridCompositions(comps, cid, ccount, grid_cid, _host_notes(ccount, int(grid.inside.sum())))


def _host_notes(ccount: np.ndarray, n_in: int) -> list[str]:
    """Warnings when the most frequent composition is a doubtful host."""
    notes = []
    if len(ccount) > 1 and ccount[0] == ccount[1]:
        notes.append(
            f"two compositions are equally frequent ({int(ccount[0])} cells each); the host "
            "was picked by label order. Check the labels or the cell choice"
        )
    if ccount[0] < 0.5 * n_in:
        notes.append(
            f"the most frequent composition covers only {ccount[0] / n_in:.0%} of the cells; the "
            "sample may not be a crystal with isolated defects (try cells='voronoi' or check labels)"
        )
    if len(ccount) == 1:
        notes.append(
            f"all {n_in} cells have the same composition: there are no minority motif-cells, so the "
            "hierarchy is just the host cell. Check that the labels distinguish defect motifs"
        )
    return notes


# --------------------------------------------------------------------------- 3. components


class Components(NamedTuple):
    """Connected components of minority cells (step 3).

    Attributes
    ----------
    comp_lab : ndarray (ni, nj) int
        ``scipy.ndimage.label`` output: component + 1, 0 for host/absent cells.
    n_components : int
    mi, mj : ndarray int
        Box indices of the minority cells, grouped by component.
    sizes : ndarray (n_components,) int
        Cells per component.
    class_of : ndarray (n_components,) int
        Canonical pattern class of each component.
    patterns : list of ndarray (s, 3) int
        Canonical pattern ``[di, dj, comp]`` of each class.
    """

    comp_lab: np.ndarray
    n_components: int
    mi: np.ndarray
    mj: np.ndarray
    sizes: np.ndarray
    class_of: np.ndarray
    patterns: list


def minority_components(grid_cid: np.ndarray, neighborhood: str, lattice: Lattice, rots) -> Components:
    """Grow touching minority cells into components and classify their patterns.

    Parameters
    ----------
    grid_cid : ndarray (ni, nj) int
        Composition per cell (0 host, -1 cut by the frame).
    neighborhood : {"von_neumann", "lattice"}
        Which cells touch (see :func:`motiflab.hierarchy.build_hierarchy`).
    lattice : Lattice
        Gives the neighbour offsets for ``"lattice"``.
    rots : list of ndarray (2, 2) int
        Rotations under which patterns are merged.

    Returns
    -------
    Components
    """
    if neighborhood == "von_neumann":
        struct = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    else:
        struct = np.zeros((3, 3), int)
        struct[1, 1] = 1
        for di, dj in lattice.neighbor_offsets():
            struct[1 + di, 1 + dj] = 1
    minority = grid_cid > 0
    comp_lab, n_components = ndimage.label(minority, structure=struct)
    mi, mj = np.nonzero(minority)
    mlab = comp_lab[mi, mj] - 1
    # cells grouped by component, in (i, j) order within each
    order = np.lexsort((mj, mi, mlab))
    mi, mj, mlab = mi[order], mj[order], mlab[order]
    sizes = np.bincount(mlab, minlength=n_components)
    member_cells = np.column_stack([mi, mj]).astype(np.int64)
    member_comp = grid_cid[mi, mj]
    class_of, patterns = canonical_classes(sizes, member_cells, member_comp, rots)
    return Components(comp_lab, n_components, mi, mj, sizes, class_of, patterns)


# --------------------------------------------------------------------------- 4. nodes


def lattice_nodes(gc: GridCompositions, comp: Components, grid: CellGrid, lattice: Lattice, names: list,
                  max_locations: int | None) -> tuple[list, np.ndarray]:
    """Motif-cells: the host, one per minority composition, then the higher patterns.

    Parameters
    ----------
    gc : GridCompositions
    comp : Components
    grid : CellGrid
    lattice : Lattice
        For the pixel centres of the locations.
    names : list
        Label names.
    max_locations : int or None
        Keep at most this many locations per motif-cell.

    Returns
    -------
    nodes : list of MotifCell
        Ordered by id: host 0, minority compositions ``1..C-1`` in order of
        frequency, then higher patterns by level, count and pattern.
    component_node : ndarray (n_components,) int
        Motif-cell id of each component.
    """
    n_comp_types = len(gc.ccount)
    patterns = comp.patterns
    cls_count = np.bincount(comp.class_of, minlength=len(patterns)) if len(patterns) else np.zeros(0, int)
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
    component_node = class_node[comp.class_of] if comp.n_components else np.zeros(0, np.int64)
    locs_by_node = _component_locations(comp, component_node, grid, lattice)

    def comp_list(counts_vec):
        return [[names[k], int(c)] for k, c in enumerate(counts_vec) if c > 0]

    def some(locs):
        return locs if max_locations is None else locs[:max_locations]

    nodes: list[MotifCell] = [
        MotifCell(
            id=0, level=1, count=int(gc.ccount[0]), dominant=True, composition=comp_list(gc.comps[0]),
            pattern=[[0, 0, 0]], locations=[], n_cells=int(gc.ccount[0]),
        )
    ]
    for c in range(1, n_comp_types):
        nodes.append(
            MotifCell(
                id=c, level=1, count=int(single_count[c]), dominant=False,
                composition=comp_list(gc.comps[c]), pattern=[[0, 0, c]],
                locations=some(locs_by_node.get(c, [])), n_cells=int(gc.ccount[c]),
            )
        )
    for k, c in enumerate(higher):
        pat = patterns[c]
        tot = np.zeros(len(names), np.int64)
        for cc in pat[:, 2]:
            tot += gc.comps[cc]
        nodes.append(
            MotifCell(
                id=n_comp_types + k, level=int(levels[c]), count=int(cls_count[c]), dominant=False,
                composition=comp_list(tot), pattern=[[int(a), int(b), int(cc)] for a, b, cc in pat],
                locations=some(locs_by_node.get(n_comp_types + k, [])),
                n_cells=int(levels[c] * cls_count[c]),
            )
        )
    return nodes, component_node


def _component_locations(comp: Components, component_node: np.ndarray, grid: CellGrid, lattice: Lattice) -> dict:
    """``{node id: [location, ...]}``, one location (``ij``, ``px``, ``cells``) per component."""
    locs_by_node: dict = {}
    if not comp.n_components:
        return locs_by_node
    starts = np.concatenate([[0], np.cumsum(comp.sizes)[:-1]])
    abs_i = comp.mi + grid.i0
    abs_j = comp.mj + grid.j0
    centres = lattice.cell_centers(np.column_stack([abs_i, abs_j])) if len(comp.mi) else np.zeros((0, 2))
    ctr_all = np.add.reduceat(centres, starts, axis=0) / comp.sizes[:, None]
    ai_l, aj_l, ctr_l = abs_i.tolist(), abs_j.tolist(), np.round(ctr_all, 3).tolist()
    for k, (s0, s) in enumerate(zip(starts.tolist(), comp.sizes.tolist())):
        cells_k = [[a, b] for a, b in zip(ai_l[s0 : s0 + s], aj_l[s0 : s0 + s])]
        locs_by_node.setdefault(int(component_node[k]), []).append(
            {"ij": cells_k[0], "px": ctr_l[k], "cells": cells_k}
        )
    return locs_by_node


# --------------------------------------------------------------------------- 6. bookkeeping


def cell_bookkeeping(grid: CellGrid, gc: GridCompositions, comp: Components, keep: np.ndarray) -> dict:
    """Per-cell and per-column arrays of the :class:`~motiflab.hierarchy_result.Hierarchy`.

    Parameters
    ----------
    grid : CellGrid
    gc : GridCompositions
    comp : Components
    keep : ndarray (N,) bool
        Columns not dropped by ``ignore_labels``.

    Returns
    -------
    dict
        ``cells``, ``cell_node``, ``cell_component`` (one row per complete
        cell) and ``column_cell`` (row of ``cells`` per column, -1 if none).
    """
    ni, nj, i0, j0 = grid.ni, grid.nj, grid.i0, grid.j0
    in_idx = np.flatnonzero(grid.inside)
    comp_grid = (comp.comp_lab - 1).ravel()
    grid_to_row = np.full(ni * nj, -1, np.int64)
    grid_to_row[in_idx] = np.arange(len(in_idx))
    ij_all = grid.ij_all
    key_all = (ij_all[:, 0] - i0) * nj + (ij_all[:, 1] - j0)
    in_box = (ij_all[:, 0] >= i0) & (ij_all[:, 1] >= j0) & (ij_all[:, 0] <= grid.i1) & (ij_all[:, 1] <= grid.j1)
    okk = keep & (key_all >= 0) & (key_all < ni * nj) & in_box
    column_cell = np.full(len(ij_all), -1, np.int64)
    column_cell[okk] = grid_to_row[key_all[okk]]
    return {
        "cells": grid.gcells[in_idx],
        "cell_node": gc.cid.astype(np.int64),
        "cell_component": comp_grid[in_idx].astype(np.int64),
        "column_cell": column_cell,
    }
