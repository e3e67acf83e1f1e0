"""A crystal lattice imaged in one scanned frame: geometry, probe and scan shared by the generators.

* :func:`lattice_cells` and :func:`drift_matrix` -- which cells cover a rectangle
  and how a linear drift maps true to apparent positions;
* :class:`LatticeFrame` -- the validated frame, lattice scale, rotation, drift,
  probe and scan jitter of one image, with the steps every lattice generator
  (:func:`~motiflab.datasets.make_tmd`, :func:`~motiflab.datasets.make_perovskite`)
  runs the same way: the block of cells to populate, rendering the columns on
  the padded canvas and finding the sites that appear in the image;
* :func:`defect_entries` and :func:`block_index` -- reading explicit defects
  (cell, site, species) and finding their cells in the populated block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..errors import MotifLabError
from ._checks import check_drift, check_nonneg, check_positive, check_probe, check_real, check_shape
from ._optics import pad_for_probe, probe_params_px, probe_peak, render, sites_in_image

__all__ = ["lattice_cells", "drift_matrix", "LatticeFrame", "defect_entries", "block_index"]


def lattice_cells(
    u: np.ndarray, v: np.ndarray, origin: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Index ranges ``i, j`` of all cells whose origin can fall inside a rectangle.

    Parameters
    ----------
    u, v : ndarray, shape (2,)
        Lattice vectors (row, col) in pixels.
    origin : ndarray, shape (2,)
        Position of cell (0, 0).
    lo, hi : ndarray, shape (2,)
        Rectangle corners (row, col).

    Returns
    -------
    i_range, j_range : ndarray of int
        Consecutive integer ranges (a rectangular block of cells, inclusive).
    """
    m = np.column_stack([u, v])  # position = origin + m @ (i, j)
    minv = np.linalg.inv(m)
    corners = np.array(
        [[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]], dtype=float
    )
    ij = (corners - origin) @ minv.T
    i0, j0 = np.floor(ij.min(axis=0)).astype(int) - 2
    i1, j1 = np.ceil(ij.max(axis=0)).astype(int) + 2
    return np.arange(i0, i1 + 1), np.arange(j0, j1 + 1)


def drift_matrix(drift: tuple[float, float], height: int) -> np.ndarray:
    """Linear map from true to apparent positions for a linear drift.

    The slow scan runs down the rows over one frame time. A sample that drifts by
    ``drift`` pixels over the frame is seen at row ``r'`` displaced by
    ``drift * r' / H``; solving ``r' = r + d_r r'/H`` gives an exact linear map
    (a shear plus a row stretch), anchored at row 0.
    """
    dr, dc = drift
    s = 1.0 / (1.0 - dr / height)
    return np.array([[s, 0.0], [dc / height * s, 1.0]])


@dataclass(frozen=True)
class LatticeFrame:
    """One image of a lattice: validated geometry, probe and scan, in pixels.

    Build it with :meth:`from_inputs`, which checks the arguments the lattice
    generators share and derives the pixel quantities.

    Attributes
    ----------
    shape : (int, int)
        Image ``(H, W)``.
    pixel_size : float
        nm per pixel.
    a_px : float
        Lattice constant in pixels, strain included.
    rotation : float
        Lattice rotation in degrees, counter-clockwise as displayed.
    strain : float
        Uniform biaxial strain (a fraction).
    drift : (float, float)
        Drift ``(row, col)`` in pixels over the frame.
    dmat : ndarray, shape (2, 2)
        True-to-apparent position map of the drift (:func:`drift_matrix`).
    origin : ndarray, shape (2,)
        True (pre-drift) position of cell (0, 0) in pixels.
    probe_fwhm, tail_fraction, tail_width : float
        Probe core FWHM (nm), tail fraction and tail scale (nm), as given.
    sigma, gamma : float
        Probe core sigma and tail scale in pixels.
    scan_noise : float
        Std (px) of the per-scan-line jitter.
    pad : int
        Margin rendered around the image so edges look like the lattice goes on.
    """

    shape: tuple[int, int]
    pixel_size: float
    a_px: float
    rotation: float
    strain: float
    drift: tuple[float, float]
    dmat: np.ndarray
    origin: np.ndarray
    probe_fwhm: float
    tail_fraction: float
    tail_width: float
    sigma: float
    gamma: float
    scan_noise: float
    pad: int

    @classmethod
    def from_inputs(
        cls,
        shape: Any,
        pixel_size: Any,
        a: float,
        strain: Any,
        rotation: Any,
        probe_fwhm: Any,
        tail_fraction: Any,
        tail_width: Any,
        scan_noise: Any,
        drift: Any,
        origin: Any,
    ) -> "LatticeFrame":
        """Validate the shared generator inputs and derive the frame.

        Parameters
        ----------
        shape, pixel_size, strain, rotation, probe_fwhm, tail_fraction, tail_width, scan_noise, drift, origin
            As documented for :func:`~motiflab.datasets.make_tmd`.
        a : float
            Validated, unstrained lattice constant in nm.

        Returns
        -------
        LatticeFrame

        Raises
        ------
        MotifLabError
            For an invalid input or a frame smaller than 1.5 unit cells.
        """
        h, w = check_shape(shape)
        pixel_size = check_positive("pixel_size", pixel_size)
        rotation = check_real("rotation", rotation)
        probe_fwhm, tail_fraction, tail_width = check_probe(probe_fwhm, tail_fraction, tail_width)
        scan_noise = check_nonneg("scan_noise", scan_noise)
        drift = check_drift(drift, (h, w))
        strain = check_real("strain", strain)
        if not -0.5 < strain < 1.0:
            raise MotifLabError(f"strain must lie in (-0.5, 1), got {strain}; it is a fraction (0.02 = 2 %)")
        a_px = a * (1 + strain) / pixel_size
        if min(h, w) < a_px * 1.5:
            raise MotifLabError(
                f"a {h}x{w} frame at {pixel_size} nm/px is {min(h, w) * pixel_size:.3f} nm across, "
                f"smaller than 1.5 unit cells (a = {a * (1 + strain):.4f} nm); use a larger shape "
                "or a larger pixel_size"
            )
        if origin is None:
            origin_true = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
        else:
            origin_true = np.array([check_real("origin", float(o)) for o in origin])
        probe = probe_params_px(probe_fwhm, tail_fraction, tail_width, pixel_size)
        sigma, gamma = probe["sigma_px"], probe["tail_gamma_px"]
        return cls(
            shape=(h, w), pixel_size=pixel_size, a_px=a_px, rotation=rotation, strain=strain, drift=drift,
            dmat=drift_matrix(drift, h), origin=origin_true, probe_fwhm=probe_fwhm,
            tail_fraction=tail_fraction, tail_width=tail_width, sigma=sigma, gamma=gamma,
            scan_noise=scan_noise, pad=pad_for_probe(sigma, tail_fraction, gamma, scan_noise),
        )

    def params(self) -> dict[str, Any]:
        """The frame's inputs and derived pixel quantities, for a generator's ``params``.

        Returns
        -------
        dict
            ``shape, pixel_size, rotation, strain, probe_fwhm, tail_fraction,
            tail_width, scan_noise, drift, origin`` (inputs) and ``sigma_px,
            tail_gamma_px, lattice_origin_px`` (derived; the lattice origin after drift).
        """
        return {
            "shape": self.shape,
            "pixel_size": self.pixel_size,
            "rotation": self.rotation,
            "strain": self.strain,
            "probe_fwhm": self.probe_fwhm,
            "tail_fraction": self.tail_fraction,
            "tail_width": self.tail_width,
            "scan_noise": self.scan_noise,
            "drift": self.drift,
            "origin": tuple(self.origin.tolist()),
            "sigma_px": self.sigma,
            "tail_gamma_px": self.gamma,
            "lattice_origin_px": tuple((self.dmat @ self.origin).tolist()),
        }

    def lattice_vector(self, angle: float) -> np.ndarray:
        """Vector of length ``a_px`` at ``angle`` radians from +col, counter-clockwise as displayed."""
        return self.a_px * np.array([-math.sin(angle), math.cos(angle)])

    def cell_block(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The block of cells whose apparent sites can fall on the padded canvas.

        Parameters
        ----------
        u, v : ndarray, shape (2,)
            True (pre-drift) lattice vectors in pixels.

        Returns
        -------
        i_rng, j_rng : ndarray of int
            Consecutive cell indices along ``u`` and ``v``.
        ii, jj : ndarray of int, shape (len(i_rng), len(j_rng))
            Their ``"ij"`` mesh.
        """
        h, w = self.shape
        pad, a_px = self.pad, self.a_px
        # Pull the canvas (plus a cell) back through the invertible drift map so the
        # block is large enough for the apparent positions.
        lo, hi = np.array([-pad - a_px, -pad - a_px]), np.array([h + pad + a_px, w + pad + a_px])
        dinv = np.linalg.inv(self.dmat)
        box = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]]) @ dinv.T
        i_rng, j_rng = lattice_cells(u, v, self.origin, box.min(axis=0), box.max(axis=0))
        ii, jj = np.meshgrid(i_rng, j_rng, indexing="ij")
        return i_rng, j_rng, ii, jj

    def probe_peak(self) -> float:
        """Brightest-pixel value of an isolated unit-amplitude column (see :func:`probe_peak`)."""
        return probe_peak(self.sigma, self.tail_fraction, self.gamma)

    def render_columns(
        self, pos: np.ndarray, amp: np.ndarray, rng_scan: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Noise-free image of the columns at apparent positions ``pos``, with scan jitter.

        Parameters
        ----------
        pos : ndarray, shape (N, 2)
            Apparent (post-drift) positions in pixels; sites off the canvas are dropped.
        amp : ndarray, shape (N,)
            Column amplitudes.
        rng_scan : numpy.random.Generator
            The scan-jitter stream (drawn only when ``scan_noise > 0``).

        Returns
        -------
        raw : ndarray, shape ``shape``, float32
            Before background and normalisation.
        row_shifts : ndarray or None
            Shift (px) of each canvas row, for :meth:`sites_in_image`.
        """
        h, w = self.shape
        pad = self.pad
        on_canvas = (pos[:, 0] >= -pad) & (pos[:, 0] < h + pad) & (pos[:, 1] >= -pad) & (pos[:, 1] < w + pad)
        row_shifts = None
        if self.scan_noise > 0:
            # One random shift per scan line of the padded canvas, drawn top to bottom.
            row_shifts = rng_scan.normal(0.0, self.scan_noise, size=h + 2 * pad)
        raw = render(pos[on_canvas], amp[on_canvas], (h, w), pad, self.sigma, self.tail_fraction, self.gamma,
                     row_shifts)
        return raw, row_shifts

    def sites_in_image(self, pos: np.ndarray, row_shifts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and apparent positions of the sites whose centre is in the image (:func:`sites_in_image`)."""
        return sites_in_image(pos, self.shape, row_shifts, self.pad, self.sigma)


def defect_entries(defects: Any, site: str = "sublattice") -> list[tuple[int, tuple[int, int], Any, Any]]:
    """Read explicit defects given as ``((i, j), site, species)`` triples or as dicts.

    Parameters
    ----------
    defects : list or None
        Each entry a triple or a dict with keys ``"cell"``, ``"sublattice"``
        (or ``"site"``) and ``"species"``.
    site : str
        What the generator calls the middle item (for error messages).

    Returns
    -------
    list of (int, (int, int), object, object)
        Index in ``defects``, cell, site and species of every entry. The cell is
        checked here; the caller checks site and species, which differ per lattice.

    Raises
    ------
    MotifLabError
        If ``defects`` is not a list of such entries or a cell is not two integers.
    """
    if defects is None:
        return []
    if isinstance(defects, (dict, str)) or not isinstance(defects, Iterable):
        raise MotifLabError(
            f"defects must be a list of ((i, j), {site}, species) tuples or of dicts "
            "with keys 'cell', 'sublattice', 'species'"
        )
    out = []
    for k, d in enumerate(defects):
        if isinstance(d, dict):
            try:
                cell, where, spec = d["cell"], d.get("sublattice", d.get("site")), d["species"]
            except KeyError:
                raise MotifLabError(
                    f"defects[{k}] = {d!r} needs keys 'cell', 'sublattice' and 'species'"
                ) from None
        else:
            try:
                cell, where, spec = d
            except (TypeError, ValueError):
                raise MotifLabError(
                    f"defects[{k}] = {d!r} is not a ((i, j), {site}, species) triple"
                ) from None
        out.append((k, _defect_cell(k, cell), where, spec))
    return out


def _defect_cell(k: int, cell: Any) -> tuple[int, int]:
    """The cell ``(i, j)`` of ``defects[k]`` as two ints (or a clear error)."""
    try:
        i, j = cell
        if int(i) != i or int(j) != j:
            raise ValueError
    except (TypeError, ValueError):
        raise MotifLabError(f"defects[{k}]: cell must be two integers (i, j), got {cell!r}") from None
    return int(i), int(j)


def block_index(cell: tuple[int, int], i_rng: np.ndarray, j_rng: np.ndarray) -> tuple[int, int]:
    """Position of a cell in the populated block (see :meth:`LatticeFrame.cell_block`).

    Raises
    ------
    MotifLabError
        If the cell lies outside the block.
    """
    ci, cj = cell
    ki, kj = ci - i_rng[0], cj - j_rng[0]
    if not (0 <= ki < len(i_rng) and 0 <= kj < len(j_rng)):
        raise MotifLabError(
            f"defect cell {(ci, cj)} lies outside the rendered lattice (i in "
            f"[{i_rng[0]}, {i_rng[-1]}], j in [{j_rng[0]}, {j_rng[-1]}]); cell (0, 0) "
            "is at the image centre unless origin= is given"
        )
    return ki, kj
