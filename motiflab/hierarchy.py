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

Where things live: compositions and :func:`motif_cells` in
:mod:`motiflab.cell_compositions`; rotations, canonical forms and containment
in :mod:`motiflab.cell_patterns`; :class:`MotifCell` and :class:`Hierarchy`
in :mod:`motiflab.hierarchy_result`; the lattice-mode steps in
:mod:`motiflab.hierarchy_lattice` and Voronoi mode in
:mod:`motiflab.hierarchy_voronoi`. All public names are importable from here.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._validation import check_positions
from .cell_compositions import CellCompositions, encode_labels, motif_cells
from .cell_patterns import SQUARE_ROTATIONS, canonical_pattern, containment_edges, rotation_set
from .errors import MotifLabError
from .hierarchy_lattice import cell_bookkeeping, cell_grid, grid_compositions, lattice_nodes, minority_components
from .hierarchy_result import Hierarchy, MotifCell
from .hierarchy_voronoi import build_voronoi_hierarchy
from .lattice import Lattice, find_lattice, index_cells  # noqa: F401 - importable from here as before

__all__ = [
    "CellCompositions",
    "MotifCell",
    "Hierarchy",
    "motif_cells",
    "build_hierarchy",
    "SQUARE_ROTATIONS",
    "canonical_pattern",
]


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
    _check_options(cells, neighborhood, max_level_gap)
    p_all = check_positions(positions)
    names, codes = encode_labels(labels, len(p_all))
    keep = _kept_columns(names, codes, ignore_labels)
    if cells == "voronoi":
        h = build_voronoi_hierarchy(p_all, names, codes, keep, max_level_gap, nearest, max_locations)
        _warn(h.notes)
        return h
    if rotations not in ("square", "lattice", "none"):
        raise MotifLabError(f"rotations must be 'square', 'lattice' or 'none', got {rotations!r}")
    lattice = _resolve_lattice(lattice, p_all)
    if neighborhood == "auto":
        neighborhood = "lattice" if rotations == "lattice" else "von_neumann"
    rots = rotation_set(rotations, lattice)

    grid = cell_grid(p_all, keep, lattice, fov, edge_margin)
    gc = grid_compositions(grid, codes[keep], len(names))
    comp = minority_components(gc.grid_cid, neighborhood, lattice, rots)
    nodes, component_node = lattice_nodes(gc, comp, grid, lattice, names, max_locations)
    edges = containment_edges(nodes, rots, max_level_gap, nearest)
    per_cell = cell_bookkeeping(grid, gc, comp, keep)

    _warn(gc.notes)
    return Hierarchy(
        lattice=lattice,
        motif_cells=nodes,
        edges=edges,
        label_names=names,
        component_node=component_node.astype(np.int64),
        params={
            "cells": "lattice",
            "rotations": rotations,
            "neighborhood": neighborhood,
            "max_level_gap": max_level_gap,
            "nearest": nearest,
            "edge_margin": float(grid.edge_margin),
            "fov": [float(x) for x in np.concatenate([grid.lo, grid.hi])],
        },
        notes=gc.notes,
        **per_cell,
    )


def _check_options(cells, neighborhood, max_level_gap) -> None:
    """Reject option values build_hierarchy does not know, naming the valid ones."""
    if cells not in ("lattice", "voronoi"):
        raise MotifLabError(f"cells must be 'lattice' or 'voronoi', got {cells!r}")
    if neighborhood not in ("auto", "von_neumann", "lattice"):
        raise MotifLabError(f"neighborhood must be 'auto', 'von_neumann' or 'lattice', got {neighborhood!r}")
    if max_level_gap is not None and (not isinstance(max_level_gap, (int, np.integer)) or max_level_gap < 1):
        raise MotifLabError(f"max_level_gap must be a positive integer or None, got {max_level_gap!r}")


def _kept_columns(names: list, codes: np.ndarray, ignore_labels) -> np.ndarray:
    """Mask of the columns whose label is not in ``ignore_labels``."""
    keep = np.ones(len(codes), bool)
    ignore = list(ignore_labels) if ignore_labels is not None else []
    for lab in ignore:
        if lab in names:
            keep &= codes != names.index(lab)
    return keep


def _resolve_lattice(lattice, p_all: np.ndarray) -> Lattice:
    """The given lattice, or one found from the columns."""
    if lattice is None:
        if len(p_all) < 8:
            raise MotifLabError(
                f"too few columns ({len(p_all)}) to find a lattice and build cells; use a larger "
                "field of view (the hierarchy needs many cells to tell host from minority)"
            )
        return find_lattice(p_all)
    if not isinstance(lattice, Lattice):
        raise MotifLabError("lattice must be a motiflab.lattice.Lattice (see find_lattice) or None")
    return lattice


def _warn(notes: list) -> None:
    """Emit the build notes as warnings at the caller of build_hierarchy."""
    for n_ in notes:
        warnings.warn(n_, UserWarning, stacklevel=3)
