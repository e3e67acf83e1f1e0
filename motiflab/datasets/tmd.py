"""Synthetic ADF-STEM images of 2H transition-metal dichalcogenide monolayers.

Geometry ([001] projection, pixels, ``(row, col)``): a hexagonal lattice with
``u`` along +col at ``rotation = 0`` and ``v`` 60 degrees counter-clockwise from
``u`` as displayed (row axis pointing down). Cell ``(i, j)`` has

* a metal column at ``origin + i*u + j*v`` (basis 0), and
* a chalcogen column (two stacked chalcogen atoms) at that point
  ``+ (u + v)/3`` (basis 1),

so each metal has its three nearest chalcogen columns, at ``a/sqrt(3)``, in
cells ``(i, j)``, ``(i-1, j)`` and ``(i, j-1)`` (see :func:`tmd_neighbor_cells`).
Cell ``(0, 0)``'s metal sits at ``origin`` (default: the image centre), so explicit
defects can be placed by cell index without knowing the image size.
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
from ._tmd_cells import SUBLATTICES, oriented_classes, tmd_neighbor_cells

# oriented_classes and tmd_neighbor_cells live with the cell geometry; they are
# part of this module's API.
__all__ = ["TMD_MATERIALS", "make_tmd", "load_sample", "oriented_classes", "tmd_neighbor_cells"]

#: 2H monolayers: metal, chalcogen and in-plane lattice constant ``a`` (nm).
TMD_MATERIALS: dict[str, dict[str, Any]] = {
    "MoSe2": {"metal": "Mo", "chalcogen": "Se", "a": 0.3288},
    "MoS2": {"metal": "Mo", "chalcogen": "S", "a": 0.3160},
    "WS2": {"metal": "W", "chalcogen": "S", "a": 0.3153},
    "WSe2": {"metal": "W", "chalcogen": "Se", "a": 0.3282},
    "MoTe2": {"metal": "Mo", "chalcogen": "Te", "a": 0.3522},
}

#: ADF contrast exponent: column intensity ~ sum of Z**Z_EXPONENT.
Z_EXPONENT = 1.7

def _resolve_material(material: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(material, str):
        for name, props in TMD_MATERIALS.items():
            if name.lower() == material.lower():
                return name, props
    raise MotifLabError(
        f"unknown material {material!r}; choose one of {sorted(TMD_MATERIALS)} "
        "(case-insensitive)"
    )


def _normalise_defects(defects: Any) -> list[tuple[tuple[int, int], str, str]]:
    """Accept tuples ``((i, j), sublattice, species)`` or dicts with those keys."""
    out = []
    for k, cell, sub, spec in defect_entries(defects, "sublattice"):
        if sub not in SUBLATTICES:
            raise MotifLabError(
                f"defects[{k}]: sublattice must be 'metal' or 'chalcogen', got {sub!r}"
            )
        out.append((cell, sub, spec))
    return out


def make_tmd(
    material: str = "MoSe2",
    shape: tuple[int, int] = (512, 512),
    pixel_size: float = 0.02,
    lattice_constant: float | None = None,
    rotation: float = 0.0,
    probe_fwhm: float = 0.09,
    chalcogen_vacancy_rate: float = 0.0,
    metal_vacancy_rate: float = 0.0,
    dopant: str | None = None,
    dopant_rate: float = 0.0,
    defects: list | None = None,
    dose: float | None = None,
    background: float = 0.05,
    scan_noise: float = 0.0,
    drift: tuple[float, float] = (0.0, 0.0),
    strain: float = 0.0,
    seed: int | None = 0,
    *,
    origin: tuple[float, float] | None = None,
    tail_fraction: float = 0.05,
    tail_width: float = 0.3,
) -> SyntheticImage:
    """Synthetic ADF-STEM image of a 2H TMD monolayer, with per-column ground truth.

    Parameters
    ----------
    material : str, default "MoSe2"
        One of :data:`TMD_MATERIALS` (``MoSe2, MoS2, WS2, WSe2, MoTe2``).
    shape : (int, int), default (512, 512)
        Image size (rows, cols) in pixels.
    pixel_size : float, default 0.02
        nm per pixel.
    lattice_constant : float, optional
        In-plane lattice constant ``a`` in nm; defaults to the material's.
    rotation : float, default 0
        Lattice rotation in degrees, counter-clockwise as displayed.
    probe_fwhm : float, default 0.09
        FWHM of the probe's Gaussian core in nm.
    chalcogen_vacancy_rate : float, default 0
        Probability that each chalcogen *atom* is missing, independently: a column
        loses one atom (``"Se1"``) with probability ``2p(1-p)`` and both
        (``"vacancy"``) with ``p**2``.
    metal_vacancy_rate : float, default 0
        Probability that a metal column is empty.
    dopant : str, optional
        Element substituting on metal sites (e.g. ``"W"`` in MoSe2, ``"V"`` or
        ``"Re"`` in WS2).
    dopant_rate : float, default 0
        Probability that a metal site holds the dopant (exclusive with a metal
        vacancy; ``metal_vacancy_rate + dopant_rate <= 1``).
    defects : list, optional
        Explicit defects applied after, and overriding, the random ones. Each is
        ``((i, j), sublattice, species)`` or ``{"cell": (i, j), "sublattice": ...,
        "species": ...}``; sublattice ``"metal"`` takes an element symbol or
        ``"vacancy"``; ``"chalcogen"`` takes up to two atoms: ``"Se2"``,
        ``"Se1"``, ``"vacancy"``, or substitutions such as ``"SeTe"``/``"Te2"``.
        Cells must lie in the rendered area (image plus a margin); cells outside
        the image are allowed and change their neighbours' fine classes.
    dose : float, optional
        Mean detected electrons per pixel. The noise-free image (columns plus
        background) is scaled to a mean of exactly 1 over the frame and the
        returned image is ``Poisson(dose * normalised)``, so ``image.mean() ~= dose``.
        ``None`` returns the normalised noise-free image.
    background : float, default 0.05
        Constant (amorphous support / detector) offset, as a fraction of the peak of
        an isolated pristine column of the brightest kind in the material.
    scan_noise : float, default 0
        Std (px) of a random horizontal shift of each scan line (fast-scan
        jitter). The rendered image's rows are shifted, so columns look ragged;
        ``truth.positions`` hold each column's apparent centre (its position plus
        the jitter of the lines it spans, weighted by the probe core profile).
    drift : (float, float), default (0, 0)
        Sample drift (row, col) in pixels over the whole frame (slow scan runs down
        the rows). Makes the lattice affine (shear + row stretch), anchored at row 0.
    strain : float, default 0
        Uniform biaxial strain: ``a -> a (1 + strain)``.
    seed : int or None, default 0
        Random seed. Defects, scan jitter and shot noise use independent streams,
        so the same seed at different doses gives the same structure.
    origin : (float, float), optional
        True (pre-drift) position of cell (0, 0)'s metal, in px; default image centre.
    tail_fraction : float, default 0.05
        Fraction of probe intensity in the broad tail.
    tail_width : float, default 0.3
        Scale ``gamma`` (nm) of the tail ``~ (r^2 + gamma^2)^(-3/2)``.

    Returns
    -------
    SyntheticImage
        ``truth`` has one row per metal and chalcogen site whose centre lies in
        the image. ``truth.fine`` marks host-metal columns next to ``k`` defective
        chalcogen columns (missing at least one atom) as e.g. ``"Mo#k"``; dopants
        keep their symbol, empty sites are ``"vacancy"``.

    Raises
    ------
    MotifLabError
        For an unknown material, a frame smaller than one cell, rates outside
        [0, 1], non-positive sizes or dose, or malformed defects.

    Notes
    -----
    Column intensity is ``sum(Z**1.7)`` over the atoms in the column (incoherent
    ADF). Rendering: bilinear splat + analytic-FFT probe convolution; cost is
    linear in the number of pixels.
    """
    name, props = _resolve_material(material)
    a = props["a"] if lattice_constant is None else check_positive("lattice_constant", lattice_constant)
    frame = LatticeFrame.from_inputs(shape, pixel_size, a, strain, rotation, probe_fwhm, tail_fraction,
                                     tail_width, scan_noise, drift, origin)
    p_chalc = check_rate("chalcogen_vacancy_rate", chalcogen_vacancy_rate)
    p_mvac = check_rate("metal_vacancy_rate", metal_vacancy_rate)
    p_dop = check_rate("dopant_rate", dopant_rate)
    if p_mvac + p_dop > 1:
        raise MotifLabError(
            f"metal_vacancy_rate + dopant_rate = {p_mvac + p_dop} exceeds 1; a metal site "
            "holds either a vacancy or a dopant, so lower one of them"
        )
    metal, chalc = props["metal"], props["chalcogen"]
    if dopant is not None:
        atomic_number(dopant)
        if dopant == metal:
            raise MotifLabError(
                f"dopant {dopant!r} is the host metal of {name}; pick another element"
            )
    elif p_dop > 0:
        raise MotifLabError("dopant_rate > 0 needs a dopant element, e.g. dopant='W'")
    dose = check_positive("dose", dose, allow_none=True)
    background = check_nonneg("background", background)
    seed = check_seed(seed)
    defect_list = _normalise_defects(defects)
    rng_struct, rng_scan, rng_noise = rng_streams(seed)

    # --- lattice -------------------------------------------------------------
    th = math.radians(frame.rotation)
    u = frame.lattice_vector(th)
    v = frame.lattice_vector(th + math.pi / 3)
    i_rng, j_rng, ii, jj = frame.cell_block(u, v)
    ni, nj = len(i_rng), len(j_rng)
    metal_true = frame.origin + ii[..., None] * u + jj[..., None] * v
    chalc_true = metal_true + (u + v) / 3.0

    # --- column vocabulary: every distinct column content gets an integer code ---
    vocab: list[str] = []
    vweight: list[float] = []
    vatoms: list[int] = []  # atoms in the column (the Mo#k rule needs chalcogen counts)

    def code(content: list[tuple[str, int]], always_count: bool) -> int:
        nm = column_name(content, always_count)
        if nm not in vocab:
            vocab.append(nm)
            vweight.append(column_weight(content, Z_EXPONENT))
            vatoms.append(sum(n for _, n in content))
        return vocab.index(nm)

    c_host = code([(metal, 1)], False)
    c_dop = code([(dopant, 1)], False) if dopant is not None else c_host
    c_mvac = code([], False)
    c_ch = [code([(chalc, n)] if n else [], True) for n in (0, 1, 2)]

    # --- random defects (fixed draw order => deterministic) -------------------
    um = rng_struct.random((ni, nj))
    metal_code = np.full((ni, nj), c_host, dtype=np.int64)
    metal_code[um < p_mvac + p_dop] = c_dop
    metal_code[um < p_mvac] = c_mvac
    missing = rng_struct.random((ni, nj, 2)) < p_chalc
    chalc_code = np.asarray(c_ch)[2 - missing.sum(axis=2)]

    # --- explicit defects override -------------------------------------------
    for cell, sub, spec in defect_list:
        ki, kj = block_index(cell, i_rng, j_rng)
        if sub == "metal":
            metal_code[ki, kj] = code(parse_column(spec, max_atoms=1), False)
        else:
            chalc_code[ki, kj] = code(parse_column(spec, max_atoms=2), True)

    # --- fine classes: count defective chalcogen neighbours of each metal ------
    defective = np.asarray(vatoms)[chalc_code] < 2  # missing at least one atom
    padded = np.zeros((ni + 1, nj + 1), dtype=np.int64)  # outside the block: pristine
    padded[1:, 1:] = defective
    k_def = padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1]  # (i,j), (i-1,j), (i,j-1)
    n_vocab = len(vocab)
    fine_vocab = vocab + [f"{metal}#{k}" for k in (1, 2, 3)]
    metal_fine = metal_code.copy()
    host = metal_code == c_host
    metal_fine[host & (k_def > 0)] = n_vocab - 1 + k_def[host & (k_def > 0)]

    # --- apparent positions and amplitudes -----------------------------------
    pos = np.concatenate([metal_true.reshape(-1, 2), chalc_true.reshape(-1, 2)]) @ frame.dmat.T
    species_code = np.concatenate([metal_code.ravel(), chalc_code.ravel()])
    fine_code = np.concatenate([metal_fine.ravel(), chalc_code.ravel()])
    sub_arr = np.repeat(np.array(SUBLATTICES), ni * nj)
    basis = np.repeat(np.array([0, 1]), ni * nj)
    cells = np.tile(np.column_stack([ii.ravel(), jj.ravel()]), (2, 1))
    amp = np.asarray(vweight)[species_code]

    raw, row_shifts = frame.render_columns(pos, amp, rng_scan)

    ref_amp = max(vweight[c_host], vweight[c_ch[2]])
    ref_peak = ref_amp * frame.probe_peak()
    image, scale = finish_image(raw, background * ref_peak, dose, rng_noise)

    # --- truth: sites whose apparent centre is in the image --------------------
    inside, pos_in = frame.sites_in_image(pos, row_shifts)
    species_s = np.asarray(vocab)[species_code[inside]]
    truth = ColumnTruth(
        positions=pos_in,
        species=species_s,
        fine=np.asarray(fine_vocab)[fine_code[inside]],
        visible=species_s != VACANCY,
        sublattice=sub_arr[inside],
        cell=cells[inside].astype(np.int64),
        intensity=amp[inside].astype(np.float64),
        basis=basis[inside].astype(np.int64),
    )

    lattice_vectors = np.stack([frame.dmat @ u, frame.dmat @ v])
    params: dict[str, Any] = {
        "generator": "motiflab.datasets.make_tmd",
        "title": f"Synthetic {name} ADF-STEM"
        + ("" if dose is None else f" ({dose:g} e/px)"),
        "material": name,
        "metal": metal,
        "chalcogen": chalc,
        **frame.params(),
        "lattice_constant": a,
        "chalcogen_vacancy_rate": p_chalc,
        "metal_vacancy_rate": p_mvac,
        "dopant": dopant,
        "dopant_rate": p_dop,
        "defects": [(c, s, sp) for c, s, sp in defect_list],
        "dose": dose,
        "background": background,
        "seed": seed,
        # derived
        "z_exponent": Z_EXPONENT,
        "chalcogen_offset": "(u + v) / 3",
        "normalisation": scale,
        "background_level": background * ref_peak * scale,
        "nn_distance_px": frame.a_px / math.sqrt(3.0),
    }
    return SyntheticImage(
        image=image,
        pixel_size=frame.pixel_size,
        truth=truth,
        lattice_vectors=lattice_vectors,
        params=params,
    )


# Fixed planted defects of the built-in sample, relative to cell (0, 0) at the
# image centre: three Mo#3 (all three Se neighbours with one Se missing), two Mo#2,
# a double Se vacancy and metal vacancies.
_SAMPLE_MO3 = [(-6, 5), (4, -7), (9, 6)]
_SAMPLE_MO2 = [(-10, -3), (2, 10)]


def _sample_defects() -> list[tuple[tuple[int, int], str, str]]:
    d: list[tuple[tuple[int, int], str, str]] = []
    for c in _SAMPLE_MO3:
        d += [(n, "chalcogen", "Se1") for n in tmd_neighbor_cells(c, "metal")]
    for c in _SAMPLE_MO2:
        d += [(n, "chalcogen", "Se1") for n in tmd_neighbor_cells(c, "metal")[:2]]
    d += [((-3, -12), "chalcogen", "vacancy"), ((13, -2), "metal", "vacancy"),
          ((-13, 9), "metal", "vacancy")]
    return d


def load_sample(dose_scale: float = 1.0) -> SyntheticImage:
    """The built-in MoSe2 sample used as motiflab's default input.

    A fixed 512 x 512 ADF-STEM image of monolayer MoSe2 at 0.02 nm/px (about
    10 x 10 nm, ~1100 unit cells), rotated by 8 degrees, with 3 % of Se atoms
    missing at random (plus planted sites so every class is populated: ``Mo``,
    ``Mo#1``, ``Mo#2``, at least three ``Mo#3``, ``Se2``, ``Se1``, Se-column
    vacancies and a few Mo vacancies), mild scan-line jitter (0.25 px) and a
    moderate dose of 40 electrons per pixel. Regenerated on every call
    (deterministic, well under a second), so callers may modify the result freely.

    Parameters
    ----------
    dose_scale : float
        The same crystal and noise seed at this fraction of the dose (the
        paper's low-dose test is ``dose_scale=1/50``, ~2.6 counts at a Mo peak).

    Returns
    -------
    SyntheticImage
        Image in counts plus the per-column ground truth.
    """
    dose_scale = float(dose_scale)
    if not (np.isfinite(dose_scale) and dose_scale > 0):
        raise MotifLabError(f"dose_scale must be a positive number, got {dose_scale}.")
    return make_tmd(
        "MoSe2",
        shape=(512, 512),
        pixel_size=0.02,
        rotation=8.0,
        chalcogen_vacancy_rate=0.03,
        metal_vacancy_rate=0.002,
        defects=_sample_defects(),
        dose=40.0 * dose_scale,
        background=0.05,
        scan_noise=0.25,
        seed=2022,
    )
