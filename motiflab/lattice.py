"""Lattice vectors, cell indexing and Voronoi cells (METHOD.md §5, step 1).

The hierarchy of motif-cells needs a tessellation of the field of view into
cells. For a quasi-periodic sample that is the unit-cell grid of the crystal:
:func:`find_lattice` finds the two primitive translation vectors ``u`` and
``v`` from the columns themselves and :func:`index_cells` gives every column
the integer index ``(i, j)`` of the cell it sits in. For samples without a
lattice, :func:`voronoi_cells` makes every column its own (Voronoi) cell.

How the lattice is found
------------------------
1. **Translation candidates.** For every column, the vectors to its ~24
   nearest neighbours are collected and clustered (2-D histogram, then a
   refined mean per cluster). A *translation* of the crystal is a vector that
   nearly every column has a neighbour at; a vector between two sublattices
   (e.g. metal -> chalcogen in a TMD) is carried by one sublattice only, so its
   *occupancy* (fraction of columns that have it) is ~1/K for a K-site basis
   instead of ~1. Clusters with occupancy >= ``min_occupancy`` and >= 70 % of
   the best one are translations; ``u`` is the shortest, ``v`` the shortest
   that is not collinear with it (in 2-D these successive minima always form a
   primitive basis). ``method="fft"`` takes the two shortest strong peaks of
   the image's power spectrum instead (or of a rendering of the points).
2. **Basis sites.** The fractional coordinates of all columns modulo 1 cluster
   at the K basis sites of the cell (found on a periodic 2-D histogram).
3. **Least squares.** Every column gets integer indices ``n = round(f - b_k)``
   and the linear model ``p = origin + n_i u + n_j v + offset_k`` is solved for
   ``origin``, ``u``, ``v`` and the site offsets over *all* columns, first in a
   central disc and then everywhere, dropping outliers (interstitials,
   spurious peaks) at each pass. A uniform strain or a linear scan drift is an
   affine map, so the result is the effective (strained/sheared) lattice.
4. **Cell boundaries.** The cell origin is shifted, along each axis, into the
   middle of the largest gap between basis sites, so no column sits near a
   cell edge and jitter cannot move a column into the wrong cell.

Conventions: positions and vectors are ``(row, col)`` pixels; the reduced
basis satisfies ``|u| <= |v|``, ``u . v <= 0`` (angle 90-120 degrees, e.g. 120
degrees for a hexagonal lattice) and ``u_row v_col - u_col v_row > 0``.
A cell ``(i, j)`` is the parallelogram ``origin + s u + t v`` with
``i <= s < i + 1`` and ``j <= t < j + 1``.

Where things live: :class:`Lattice`, :func:`lattice_equivalent` and
:func:`rotation_order` in :mod:`motiflab.lattice_geometry`; step 1 (and
:func:`fft_lattice_vectors`) in :mod:`motiflab.lattice_vectors`; steps 2-4 in
:mod:`motiflab.lattice_fit`; :func:`voronoi_cells` in :mod:`motiflab.voronoi`.
All are importable from here.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ._validation import check_positions, median_nn_distance
from .errors import MotifLabError
from .lattice_fit import fit_lattice
from .lattice_geometry import Lattice, lattice_equivalent, rotation_order
from .lattice_vectors import fft_lattice_vectors, neighbor_lattice_vectors, points_image, source_columns
from .voronoi import VoronoiCells, voronoi_cells

__all__ = [
    "Lattice",
    "find_lattice",
    "index_cells",
    "VoronoiCells",
    "voronoi_cells",
    "lattice_equivalent",
    "rotation_order",
    "fft_lattice_vectors",
]

# find_lattice needs a few cells' worth of columns; say what to do instead
_TOO_FEW_FOR_LATTICE = (
    "That is too few columns to find a lattice: use a larger field of view, or give the "
    "lattice vectors yourself (Lattice(u=..., v=...))."
)


def find_lattice(
    positions=None,
    *,
    method: str = "neighbors",
    image=None,
    n_neighbors: int = 24,
    min_occupancy: float = 0.4,
    refine: bool = True,
) -> Lattice:
    """Find the primitive lattice vectors of a quasi-periodic set of columns.

    Parameters
    ----------
    positions : array_like, shape (N, 2)
        Column positions ``(row, col)`` in pixels. May be ``None`` only with
        ``method="fft"`` and an ``image`` (then no origin/basis is fitted).
    method : {"neighbors", "fft"}
        ``"neighbors"``: cluster nearest-neighbour difference vectors (robust to
        missing columns and a few % of spurious ones). ``"fft"``: the two
        shortest strong peaks of the power spectrum of ``image`` (or of the
        points rendered as an image when no image is given).
    image : array_like, optional
        Micrograph for ``method="fft"``, in the same pixel frame as ``positions``.
    n_neighbors : int
        Neighbours per column whose difference vectors are clustered; must reach
        the second shell of a basis (24 covers bases of up to ~4 sites).
    min_occupancy : float
        Smallest fraction of columns that must carry a translation vector.
    refine : bool
        Least-squares refinement over all columns (recommended).

    Returns
    -------
    Lattice
        With ``u``, ``v`` (reduced, see module notes), ``origin`` placed so
        columns sit well inside cells, fractional ``basis`` sites and the fit's
        RMS ``residual_px``.

    Raises
    ------
    MotifLabError
        Too few columns, non-finite positions, or no lattice (the columns are not
        periodic, or too disordered) -- the message suggests Voronoi cells.
    """
    if method not in ("neighbors", "fft"):
        raise MotifLabError(f"method must be 'neighbors' or 'fft', got {method!r}")
    if positions is None:
        if method != "fft" or image is None:
            raise MotifLabError("give the column positions (N, 2), or method='fft' with an image")
        u, v = fft_lattice_vectors(_check_image(image))
        return Lattice(u=u, v=v, method="fft")
    p = check_positions(positions, min_n=8, why=_TOO_FEW_FOR_LATTICE)
    tree = cKDTree(p)
    d_nn = median_nn_distance(p[source_columns(len(p))], tree)
    if not np.isfinite(d_nn):
        raise MotifLabError("all positions coincide; there is nothing to index")
    if method == "fft" and image is not None:
        u, v = fft_lattice_vectors(_check_image(image))
    elif method == "fft":
        img, scale = points_image(p, d_nn)
        u, v = fft_lattice_vectors(img)
        u, v = u / scale, v / scale
    else:
        u, v = neighbor_lattice_vectors(p, tree, d_nn, n_neighbors, min_occupancy)
    if not refine:
        return Lattice(u=u, v=v, origin=np.median(p, axis=0), method=method)
    return fit_lattice(p, u, v, d_nn, method)


def _check_image(image) -> np.ndarray:
    """``image`` as a finite 2-D float array, or a clear error."""
    img = np.asarray(image, dtype=float)
    if img.ndim != 2 or not np.all(np.isfinite(img)):
        raise MotifLabError("image must be a finite 2-D array")
    return img


def index_cells(positions, lattice: Lattice) -> np.ndarray:
    """Integer cell index ``(i, j)`` of every position.

    Parameters
    ----------
    positions : array_like, shape (N, 2)
        ``(row, col)`` pixels.
    lattice : Lattice
        From :func:`find_lattice` (or built by hand).

    Returns
    -------
    ndarray, shape (N, 2), int64
        ``floor`` of the fractional coordinates relative to ``lattice.origin``.
    """
    if not isinstance(lattice, Lattice):
        raise MotifLabError("lattice must be a motiflab.lattice.Lattice (see find_lattice)")
    p = check_positions(positions)
    return np.floor(lattice.to_fractional(p)).astype(np.int64)
