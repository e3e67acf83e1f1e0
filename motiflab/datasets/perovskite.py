"""Synthetic ADF / ABF-STEM images of an ABO3 perovskite in [001] projection.

Square lattice of constant ``a``; ``u`` along +col at ``rotation = 0``, ``v``
90 degrees counter-clockwise as displayed (towards -row). Cell ``(i, j)`` holds

* basis 0, sublattice ``"A"``: the A column at the corner ``origin + i*u + j*v``;
* basis 1, sublattice ``"B"``: the B-O column at ``+ (u + v)/2`` (one B and one
  O atom per repeat along the beam; species named by the B element, e.g. ``"Ti"``);
* basis 2 and 3, sublattice ``"O"``: O-only columns at ``+ u/2`` and ``+ v/2``.

ADF: columns bright, amplitude ``sum Z**1.7``. ABF: columns dark on a bright
background, ``image = level - sum_k c_k * probe(r - r_k)`` with ``c_k = sum Z**(1/3)``
over the column's atoms, so the light O columns stay visible.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import MotifLabError
from ._checks import check_nonneg, check_positive, check_rate, check_seed
from ._elements import VACANCY, atomic_number, column_name, column_weight, parse_column
from ._lattice_frame import LatticeFrame, block_index, defect_entries
from ._shot_noise import finish_image, rng_streams
from ._synthetic_image import ColumnTruth, SyntheticImage

__all__ = ["make_perovskite"]

_ADF_EXPONENT = 1.7
_ABF_EXPONENT = 1.0 / 3.0
# (fractional offset along u, along v, sublattice)
_BASIS = ((0.0, 0.0, "A"), (0.5, 0.5, "B"), (0.5, 0.0, "O"), (0.0, 0.5, "O"))


def _normalise_defects(defects: Any) -> list[tuple[tuple[int, int], int, str]]:
    """Accept ``((i, j), site, species)`` with site ``"A"``, ``"B"``, ``"O"``
    (both O columns of the cell), ``"O1"`` / ``"O2"`` (basis 2 / 3) or a basis index."""
    names = {"A": [0], "B": [1], "O": [2, 3], "O1": [2], "O2": [3], 0: [0], 1: [1], 2: [2], 3: [3]}
    out = []
    for k, cell, site, spec in defect_entries(defects, "site"):
        if site not in names:
            raise MotifLabError(
                f"defects[{k}]: site must be 'A', 'B', 'O', 'O1', 'O2' or a basis index 0-3, got {site!r}"
            )
        for b in names[site]:
            out.append((cell, b, spec))
    return out


def make_perovskite(
    shape: tuple[int, int] = (512, 512),
    pixel_size: float = 0.02,
    lattice_constant: float = 0.3905,
    A: str = "Sr",
    B: str = "Ti",
    mode: str = "adf",
    probe_fwhm: float = 0.09,
    dose: float | None = None,
    seed: int | None = 0,
    *,
    rotation: float = 0.0,
    strain: float = 0.0,
    background: float = 0.05,
    abf_contrast: float = 0.3,
    scan_noise: float = 0.0,
    drift: tuple[float, float] = (0.0, 0.0),
    defects: list | None = None,
    origin: tuple[float, float] | None = None,
    tail_fraction: float = 0.05,
    tail_width: float = 0.3,
) -> SyntheticImage:
    """Synthetic ADF or ABF image of an ABO3 perovskite along [001], with ground truth.

    Parameters
    ----------
    shape : (int, int), default (512, 512)
        Image size (rows, cols) in pixels.
    pixel_size : float, default 0.02
        nm per pixel.
    lattice_constant : float, default 0.3905
        Cubic lattice constant ``a`` in nm (SrTiO3).
    A, B : str, default "Sr", "Ti"
        Element symbols of the A and B cations.
    mode : {"adf", "abf"}, default "adf"
        ``"adf"``: bright columns, amplitude ``sum Z**1.7``. ``"abf"``: dark columns
        on a bright background with contrast ``sum Z**(1/3)``.
    probe_fwhm : float, default 0.09
        FWHM of the probe core in nm (used for both modes).
    dose : float, optional
        Mean detected electrons per pixel; the noise-free image is normalised to a
        mean of 1 and the result is ``Poisson(dose * normalised)``. ``None``: the
        noise-free normalised image.
    seed : int or None, default 0
        Random seed (scan jitter and shot noise; independent streams).
    rotation : float, default 0
        Lattice rotation in degrees, counter-clockwise as displayed.
    strain : float, default 0
        Uniform biaxial strain.
    background : float, default 0.05
        ADF: constant offset as a fraction of the peak of an isolated column of the
        brightest kind. Ignored for ABF.
    abf_contrast : float, default 0.3
        ABF: depth of the darkest isolated column's dip as a fraction of the bright
        background level (must be < 1).
    scan_noise : float, default 0
        Std (px) of per-scan-line horizontal jitter (see :func:`make_tmd`).
    drift : (float, float), default (0, 0)
        Drift (row, col) in pixels over the frame (see :func:`make_tmd`).
    defects : list, optional
        Explicit column changes ``((i, j), site, species)``, site ``"A"``, ``"B"``,
        ``"O"`` (both O columns of the cell), ``"O1"``/``"O2"`` (the column at
        ``+u/2`` / ``+v/2``); species an element symbol (substitution, e.g.
        ``"La"`` on A; on B the column keeps its O) or ``"vacancy"``.
    origin : (float, float), optional
        True position of cell (0, 0)'s A column in px; default image centre.
    tail_fraction, tail_width : float
        Probe tail (fraction, scale in nm); see :func:`make_tmd`.

    Returns
    -------
    SyntheticImage
        Truth ``sublattice`` is ``"A"``, ``"B"`` or ``"O"``; ``species`` is the
        A symbol, the B symbol (for the B-O column) or ``"O"``; ``intensity`` is the
        amplitude used for rendering (``Z**1.7`` sums in ADF, ``Z**(1/3)`` in ABF).

    Raises
    ------
    MotifLabError
        For bad elements, mode, sizes or a frame smaller than one cell.
    """
    a = check_positive("lattice_constant", lattice_constant)
    atomic_number(A)
    atomic_number(B)
    if mode not in ("adf", "abf"):
        raise MotifLabError(f"mode must be 'adf' or 'abf', got {mode!r}")
    frame = LatticeFrame.from_inputs(shape, pixel_size, a, strain, rotation, probe_fwhm, tail_fraction,
                                     tail_width, scan_noise, drift, origin)
    dose = check_positive("dose", dose, allow_none=True)
    seed = check_seed(seed)
    background = check_nonneg("background", background)
    abf_contrast = check_rate("abf_contrast", abf_contrast)
    if mode == "abf" and abf_contrast >= 1:
        raise MotifLabError("abf_contrast must be below 1 so the ABF image stays positive")
    defect_list = _normalise_defects(defects)

    _, rng_scan, rng_noise = rng_streams(seed)
    expo = _ADF_EXPONENT if mode == "adf" else _ABF_EXPONENT

    th = math.radians(frame.rotation)
    u = frame.lattice_vector(th)
    v = frame.a_px * np.array([-math.cos(th), -math.sin(th)])  # u rotated +90 deg on screen
    i_rng, j_rng, ii, jj = frame.cell_block(u, v)
    ni, nj = len(i_rng), len(j_rng)
    corner = frame.origin + ii[..., None] * u + jj[..., None] * v

    # Per-basis column content: (parsed content, species name) on an (ni, nj) grid.
    default = {
        0: ([(A, 1)], A),
        1: ([(B, 1), ("O", 1)], B),
        2: ([("O", 1)], "O"),
        3: ([("O", 1)], "O"),
    }
    names = {b: np.full((ni, nj), default[b][1], dtype=object) for b in range(4)}
    weights = {b: np.full((ni, nj), column_weight(default[b][0], expo)) for b in range(4)}
    for cell, b, spec in defect_list:
        ki, kj = block_index(cell, i_rng, j_rng)
        content = parse_column(spec, max_atoms=1)
        nm = column_name(content, False)
        if b == 1 and content:
            content = content + [("O", 1)]  # the B column keeps its oxygen
        names[b][ki, kj] = nm
        weights[b][ki, kj] = column_weight(content, expo)

    pos_l, spec_l, sub_l, basis_l, cell_l, amp_l = [], [], [], [], [], []
    cells = np.column_stack([ii.ravel(), jj.ravel()])
    for b, (fu, fv, sub) in enumerate(_BASIS):
        p = (corner + fu * u + fv * v).reshape(-1, 2) @ frame.dmat.T
        pos_l.append(p)
        spec_l.append(names[b].ravel())
        sub_l.append(np.full(ni * nj, sub))
        basis_l.append(np.full(ni * nj, b))
        cell_l.append(cells)
        amp_l.append(weights[b].ravel())
    pos = np.concatenate(pos_l)
    species = np.concatenate(spec_l)
    amp = np.concatenate(amp_l)

    raw, row_shifts = frame.render_columns(pos, amp, rng_scan)
    peak = frame.probe_peak()
    ref_amp = max(column_weight(default[b][0], expo) for b in range(4))
    if mode == "adf":
        image, scale = finish_image(raw, background * ref_amp * peak, dose, rng_noise)
        level = background * ref_amp * peak * scale
    else:
        # Dark-field dips on a flat bright level: the darkest isolated column dips by
        # abf_contrast of the level.
        level_raw = ref_amp * peak / abf_contrast
        image, scale = finish_image(-raw, level_raw, dose, rng_noise)
        level = level_raw * scale

    inside, pos_in = frame.sites_in_image(pos, row_shifts)
    species_s = species[inside].astype(str)
    truth = ColumnTruth(
        positions=pos_in,
        species=species_s,
        fine=species_s.copy(),
        visible=species_s != VACANCY,
        sublattice=np.concatenate(sub_l)[inside],
        cell=np.concatenate(cell_l)[inside].astype(np.int64),
        intensity=amp[inside].astype(np.float64),
        basis=np.concatenate(basis_l)[inside].astype(np.int64),
    )
    params: dict[str, Any] = {
        "generator": "motiflab.datasets.make_perovskite",
        "title": f"Synthetic {A}{B}O3 [001] {mode.upper()}-STEM"
        + ("" if dose is None else f" ({dose:g} e/px)"),
        "material": f"{A}{B}O3",
        "A": A,
        "B": B,
        "mode": mode,
        **frame.params(),
        "lattice_constant": a,
        "dose": dose,
        "background": background,
        "abf_contrast": abf_contrast,
        "defects": [(c, b, s) for c, b, s in defect_list],
        "seed": seed,
        "z_exponent": expo,
        "normalisation": scale,
        "background_level": level,
    }
    return SyntheticImage(
        image=image,
        pixel_size=frame.pixel_size,
        truth=truth,
        lattice_vectors=np.stack([frame.dmat @ u, frame.dmat @ v]),
        params=params,
    )
