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
from typing import Any, Iterable

import numpy as np

from ..errors import MotifLabError
from ._render import (
    VACANCY,
    ColumnTruth,
    SyntheticImage,
    atomic_number,
    check_drift,
    check_nonneg,
    check_positive,
    check_probe,
    check_rate,
    check_real,
    check_seed,
    check_shape,
    column_name,
    column_weight,
    drift_matrix,
    finish_image,
    lattice_cells,
    pad_for_probe,
    parse_column,
    probe_params_px,
    probe_peak,
    render,
    rng_streams,
    sites_in_image,
)

__all__ = ["make_perovskite"]

_ADF_EXPONENT = 1.7
_ABF_EXPONENT = 1.0 / 3.0
# (fractional offset along u, along v, sublattice)
_BASIS = ((0.0, 0.0, "A"), (0.5, 0.5, "B"), (0.5, 0.0, "O"), (0.0, 0.5, "O"))


def _normalise_defects(defects: Any) -> list[tuple[tuple[int, int], int, str]]:
    """Accept ``((i, j), site, species)`` with site ``"A"``, ``"B"``, ``"O"``
    (both O columns of the cell), ``"O1"`` / ``"O2"`` (basis 2 / 3) or a basis index."""
    if defects is None:
        return []
    if isinstance(defects, (dict, str)) or not isinstance(defects, Iterable):
        raise MotifLabError(
            "defects must be a list of ((i, j), site, species) tuples or dicts with keys "
            "'cell', 'sublattice', 'species'"
        )
    names = {"A": [0], "B": [1], "O": [2, 3], "O1": [2], "O2": [3], 0: [0], 1: [1], 2: [2], 3: [3]}
    out = []
    for k, d in enumerate(defects):
        if isinstance(d, dict):
            cell, site, spec = d.get("cell"), d.get("sublattice", d.get("site")), d.get("species")
        else:
            try:
                cell, site, spec = d
            except (TypeError, ValueError):
                raise MotifLabError(f"defects[{k}] = {d!r} is not a ((i, j), site, species) triple") from None
        try:
            i, j = cell
            if int(i) != i or int(j) != j:
                raise ValueError
        except (TypeError, ValueError):
            raise MotifLabError(f"defects[{k}]: cell must be two integers (i, j), got {cell!r}") from None
        if site not in names:
            raise MotifLabError(
                f"defects[{k}]: site must be 'A', 'B', 'O', 'O1', 'O2' or a basis index 0-3, got {site!r}"
            )
        for b in names[site]:
            out.append(((int(i), int(j)), b, spec))
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
    h, w = check_shape(shape)
    pixel_size = check_positive("pixel_size", pixel_size)
    a = check_positive("lattice_constant", lattice_constant)
    atomic_number(A)
    atomic_number(B)
    if mode not in ("adf", "abf"):
        raise MotifLabError(f"mode must be 'adf' or 'abf', got {mode!r}")
    probe_fwhm, tail_fraction, tail_width = check_probe(probe_fwhm, tail_fraction, tail_width)
    dose = check_positive("dose", dose, allow_none=True)
    seed = check_seed(seed)
    rotation = check_real("rotation", rotation)
    strain = check_real("strain", strain)
    if not -0.5 < strain < 1.0:
        raise MotifLabError(f"strain must lie in (-0.5, 1), got {strain}; it is a fraction (0.02 = 2 %)")
    background = check_nonneg("background", background)
    abf_contrast = check_rate("abf_contrast", abf_contrast)
    if mode == "abf" and abf_contrast >= 1:
        raise MotifLabError("abf_contrast must be below 1 so the ABF image stays positive")
    scan_noise = check_nonneg("scan_noise", scan_noise)
    drift = check_drift(drift, (h, w))
    defect_list = _normalise_defects(defects)
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

    _, rng_scan, rng_noise = rng_streams(seed)
    probe = probe_params_px(probe_fwhm, tail_fraction, tail_width, pixel_size)
    sigma, gamma = probe["sigma_px"], probe["tail_gamma_px"]
    pad = pad_for_probe(sigma, tail_fraction, gamma, scan_noise)
    expo = _ADF_EXPONENT if mode == "adf" else _ABF_EXPONENT

    th = math.radians(rotation)
    u = a_px * np.array([-math.sin(th), math.cos(th)])
    v = a_px * np.array([-math.cos(th), -math.sin(th)])  # u rotated +90 deg on screen
    dmat = drift_matrix(drift, h)
    lo, hi = np.array([-pad - a_px, -pad - a_px]), np.array([h + pad + a_px, w + pad + a_px])
    dinv = np.linalg.inv(dmat)
    box = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]]) @ dinv.T
    i_rng, j_rng = lattice_cells(u, v, origin_true, box.min(axis=0), box.max(axis=0))
    ni, nj = len(i_rng), len(j_rng)
    ii, jj = np.meshgrid(i_rng, j_rng, indexing="ij")
    corner = origin_true + ii[..., None] * u + jj[..., None] * v

    # Per-basis column content: (parsed content, species name) on an (ni, nj) grid.
    default = {
        0: ([(A, 1)], A),
        1: ([(B, 1), ("O", 1)], B),
        2: ([("O", 1)], "O"),
        3: ([("O", 1)], "O"),
    }
    names = {b: np.full((ni, nj), default[b][1], dtype=object) for b in range(4)}
    weights = {b: np.full((ni, nj), column_weight(default[b][0], expo)) for b in range(4)}
    for (ci, cj), b, spec in defect_list:
        ki, kj = ci - i_rng[0], cj - j_rng[0]
        if not (0 <= ki < ni and 0 <= kj < nj):
            raise MotifLabError(
                f"defect cell {(ci, cj)} lies outside the rendered lattice (i in "
                f"[{i_rng[0]}, {i_rng[-1]}], j in [{j_rng[0]}, {j_rng[-1]}]); cell (0, 0) "
                "is at the image centre unless origin= is given"
            )
        content = parse_column(spec, max_atoms=1)
        nm = column_name(content, False)
        if b == 1 and content:
            content = content + [("O", 1)]  # the B column keeps its oxygen
        names[b][ki, kj] = nm
        weights[b][ki, kj] = column_weight(content, expo)

    pos_l, spec_l, sub_l, basis_l, cell_l, amp_l = [], [], [], [], [], []
    cells = np.column_stack([ii.ravel(), jj.ravel()])
    for b, (fu, fv, sub) in enumerate(_BASIS):
        p = (corner + fu * u + fv * v).reshape(-1, 2) @ dmat.T
        pos_l.append(p)
        spec_l.append(names[b].ravel())
        sub_l.append(np.full(ni * nj, sub))
        basis_l.append(np.full(ni * nj, b))
        cell_l.append(cells)
        amp_l.append(weights[b].ravel())
    pos = np.concatenate(pos_l)
    species = np.concatenate(spec_l)
    amp = np.concatenate(amp_l)

    on_canvas = (pos[:, 0] >= -pad) & (pos[:, 0] < h + pad) & (pos[:, 1] >= -pad) & (pos[:, 1] < w + pad)
    row_shifts = rng_scan.normal(0.0, scan_noise, size=h + 2 * pad) if scan_noise > 0 else None
    raw = render(pos[on_canvas], amp[on_canvas], (h, w), pad, sigma, tail_fraction, gamma, row_shifts)
    peak = probe_peak(sigma, tail_fraction, gamma)
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

    inside, pos_in = sites_in_image(pos, (h, w), row_shifts, pad, sigma)
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
        "shape": (h, w),
        "pixel_size": pixel_size,
        "lattice_constant": a,
        "rotation": rotation,
        "strain": strain,
        "probe_fwhm": probe_fwhm,
        "tail_fraction": tail_fraction,
        "tail_width": tail_width,
        "dose": dose,
        "background": background,
        "abf_contrast": abf_contrast,
        "scan_noise": scan_noise,
        "drift": drift,
        "defects": [(c, b, s) for c, b, s in defect_list],
        "seed": seed,
        "origin": tuple(origin_true.tolist()),
        "z_exponent": expo,
        "sigma_px": sigma,
        "tail_gamma_px": gamma,
        "lattice_origin_px": tuple((dmat @ origin_true).tolist()),
        "normalisation": scale,
        "background_level": level,
    }
    return SyntheticImage(
        image=image,
        pixel_size=pixel_size,
        truth=truth,
        lattice_vectors=np.stack([dmat @ u, dmat @ v]),
        params=params,
    )
