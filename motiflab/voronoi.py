"""Voronoi cells of the columns, for samples without a lattice.

Every column is its own cell; two cells are neighbours when they share a
Voronoi side of non-zero length. Used by ``build_hierarchy(cells="voronoi")``
and re-exported by :mod:`motiflab.lattice`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_positions
from .errors import MotifLabError

__all__ = ["VoronoiCells", "voronoi_cells"]


@dataclass
class VoronoiCells:
    """Voronoi tessellation of the columns: one cell per column.

    Attributes
    ----------
    positions : ndarray (N, 2)
        The generating points.
    edges : ndarray (E, 2) int
        Pairs ``a < b`` of columns whose cells share a side of non-zero length,
        without the long pairs along the convex hull.
    regions : list of ndarray or None
        Polygon vertices ``(row, col)`` of each cell, ``None`` where the cell is
        unbounded (on the hull) or ``with_polygons=False``.
    areas : ndarray (N,)
        Polygon areas in px^2 (``nan`` for unbounded cells).
    bounded : ndarray (N,) bool
        Cell is closed and not on the convex hull.
    """

    positions: np.ndarray
    edges: np.ndarray
    regions: list
    areas: np.ndarray
    bounded: np.ndarray

    def adjacency(self):
        """Symmetric ``scipy.sparse.csr_matrix`` of the cell adjacency."""
        from scipy.sparse import coo_matrix

        n = len(self.positions)
        e = self.edges
        data = np.ones(2 * len(e), dtype=np.int8)
        return coo_matrix(
            (data, (np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]]))), shape=(n, n)
        ).tocsr()

    def neighbor_counts(self) -> np.ndarray:
        """Number of Voronoi neighbours of each cell."""
        return np.bincount(self.edges.ravel(), minlength=len(self.positions))


def voronoi_cells(positions, *, max_edge_factor: float = 2.0, with_polygons: bool = True) -> VoronoiCells:
    """Voronoi cells of the columns, for samples without a lattice.

    Parameters
    ----------
    positions : array_like, shape (N, 2)
        ``(row, col)`` pixels.
    max_edge_factor : float
        Neighbour pairs farther apart than this times the median neighbour
        distance are dropped (they are artefacts of the convex hull).
    with_polygons : bool
        Also compute each cell's polygon and area (slower for large N).

    Returns
    -------
    VoronoiCells

    Raises
    ------
    MotifLabError
        Fewer than 4 points, or all points collinear.
    """
    from scipy.spatial import Delaunay, QhullError, Voronoi

    p = check_positions(
        positions, min_n=4, why="A Voronoi tessellation needs at least 4 columns; use a larger field of view."
    )
    span = p.max(axis=0) - p.min(axis=0)
    if np.linalg.matrix_rank(p - p.mean(axis=0), tol=1e-9 * max(float(span.max()), 1e-12)) < 2:
        raise MotifLabError(
            "cannot tessellate the columns: they are collinear or coincide; give a 2-D set of positions"
        )
    try:
        vor = Voronoi(p)
        hull_idx = np.unique(Delaunay(p).convex_hull)
    except QhullError:
        raise MotifLabError(
            "cannot tessellate the columns: they are collinear or coincide; give a 2-D set of positions"
        ) from None
    n = len(p)
    # neighbours = pairs sharing a Voronoi side of non-zero length (a Delaunay
    # triangulation of a degenerate set -- e.g. a perfect honeycomb, whose
    # hexagons are cocircular -- would add arbitrary diagonals)
    rp = np.asarray(vor.ridge_points, dtype=np.int64)
    rv = vor.ridge_vertices
    ln_pts = np.hypot(*(p[rp[:, 0]] - p[rp[:, 1]]).T)
    scale = float(np.median(ln_pts))
    keep = np.ones(len(rp), bool)
    for k, verts in enumerate(rv):
        if -1 in verts:
            continue  # open side on the hull: judged by the point distance below
        a, b = vor.vertices[verts[0]], vor.vertices[verts[1]]
        if np.hypot(*(a - b)) <= 1e-6 * scale:
            keep[k] = False
    keep &= ln_pts <= max_edge_factor * scale
    e = np.sort(rp[keep], axis=1)
    e = np.unique(e, axis=0)
    hull = np.zeros(n, bool)
    hull[hull_idx] = True
    regions: list = [None] * n
    areas = np.full(n, np.nan)
    bounded = ~hull
    if with_polygons:
        for i, ridx in enumerate(vor.point_region):
            reg = vor.regions[ridx]
            if not reg or -1 in reg:
                bounded[i] = False
                continue
            poly = vor.vertices[reg]
            regions[i] = poly
            x, y = poly[:, 0], poly[:, 1]
            areas[i] = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return VoronoiCells(positions=p, edges=e.astype(np.int64), regions=regions, areas=areas, bounded=bounded)
