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

__all__ = ["TMD_MATERIALS", "make_tmd", "load_sample", "tmd_neighbor_cells"]

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

# Offsets (di, dj) from a metal's cell to the cells of its 3 nearest chalcogens.
_METAL_TO_CHALC = ((0, 0), (-1, 0), (0, -1))
_SUBLATTICES = ("metal", "chalcogen")


def tmd_neighbor_cells(cell: tuple[int, int], sublattice: str) -> list[tuple[int, int]]:
    """Cells holding the three nearest columns of the other sublattice.

    Parameters
    ----------
    cell : (int, int)
        Cell index ``(i, j)`` of the site.
    sublattice : {"metal", "chalcogen"}
        Sublattice of the site.

    Returns
    -------
    list of (int, int)
        For a metal: the cells of its 3 nearest chalcogen columns; for a
        chalcogen: the cells of its 3 nearest metal columns.

    Examples
    --------
    Plant a ``Mo#3`` (all three neighbouring Se columns missing one atom)::

        defects = [(c, "chalcogen", "Se1") for c in tmd_neighbor_cells((0, 0), "metal")]
        img = make_tmd("MoSe2", defects=defects)
    """
    i, j = int(cell[0]), int(cell[1])
    if sublattice == "metal":
        return [(i + di, j + dj) for di, dj in _METAL_TO_CHALC]
    if sublattice == "chalcogen":
        return [(i - di, j - dj) for di, dj in _METAL_TO_CHALC]
    raise MotifLabError(f"sublattice must be 'metal' or 'chalcogen', got {sublattice!r}")


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
    if defects is None:
        return []
    if isinstance(defects, (dict, str)) or not isinstance(defects, Iterable):
        raise MotifLabError(
            "defects must be a list of ((i, j), sublattice, species) tuples or of dicts "
            "with keys 'cell', 'sublattice', 'species'"
        )
    out = []
    for k, d in enumerate(defects):
        if isinstance(d, dict):
            try:
                cell, sub, spec = d["cell"], d.get("sublattice", d.get("site")), d["species"]
            except KeyError:
                raise MotifLabError(
                    f"defects[{k}] = {d!r} needs keys 'cell', 'sublattice' and 'species'"
                ) from None
        else:
            try:
                cell, sub, spec = d
            except (TypeError, ValueError):
                raise MotifLabError(
                    f"defects[{k}] = {d!r} is not a ((i, j), sublattice, species) triple"
                ) from None
        try:
            i, j = cell
            if int(i) != i or int(j) != j:
                raise ValueError
            cell = (int(i), int(j))
        except (TypeError, ValueError):
            raise MotifLabError(
                f"defects[{k}]: cell must be two integers (i, j), got {cell!r}"
            ) from None
        if sub not in _SUBLATTICES:
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
    h, w = check_shape(shape)
    pixel_size = check_positive("pixel_size", pixel_size)
    a = props["a"] if lattice_constant is None else check_positive("lattice_constant", lattice_constant)
    rotation = check_real("rotation", rotation)
    probe_fwhm, tail_fraction, tail_width = check_probe(probe_fwhm, tail_fraction, tail_width)
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
    scan_noise = check_nonneg("scan_noise", scan_noise)
    drift = check_drift(drift, (h, w))
    strain = check_real("strain", strain)
    if not -0.5 < strain < 1.0:
        raise MotifLabError(f"strain must lie in (-0.5, 1), got {strain}; it is a fraction (0.02 = 2 %)")
    seed = check_seed(seed)
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

    rng_struct, rng_scan, rng_noise = rng_streams(seed)
    probe = probe_params_px(probe_fwhm, tail_fraction, tail_width, pixel_size)
    sigma, gamma = probe["sigma_px"], probe["tail_gamma_px"]
    pad = pad_for_probe(sigma, tail_fraction, gamma, scan_noise)

    # --- lattice -------------------------------------------------------------
    th = math.radians(rotation)
    u = a_px * np.array([-math.sin(th), math.cos(th)])
    v = a_px * np.array([-math.sin(th + math.pi / 3), math.cos(th + math.pi / 3)])
    dmat = drift_matrix(drift, h)
    # Cells whose apparent sites can fall on the padded canvas; pull the bounds
    # back through the (invertible) drift map so the block is large enough.
    lo, hi = np.array([-pad - a_px, -pad - a_px]), np.array([h + pad + a_px, w + pad + a_px])
    dinv = np.linalg.inv(dmat)
    box = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]]) @ dinv.T
    i_rng, j_rng = lattice_cells(u, v, origin_true, box.min(axis=0), box.max(axis=0))
    ni, nj = len(i_rng), len(j_rng)
    ii, jj = np.meshgrid(i_rng, j_rng, indexing="ij")
    metal_true = origin_true + ii[..., None] * u + jj[..., None] * v
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
    for (ci, cj), sub, spec in defect_list:
        ki, kj = ci - i_rng[0], cj - j_rng[0]
        if not (0 <= ki < ni and 0 <= kj < nj):
            raise MotifLabError(
                f"defect cell {(ci, cj)} lies outside the rendered lattice (i in "
                f"[{i_rng[0]}, {i_rng[-1]}], j in [{j_rng[0]}, {j_rng[-1]}]); cell (0, 0) "
                "is at the image centre unless origin= is given"
            )
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
    pos = np.concatenate([metal_true.reshape(-1, 2), chalc_true.reshape(-1, 2)]) @ dmat.T
    species_code = np.concatenate([metal_code.ravel(), chalc_code.ravel()])
    fine_code = np.concatenate([metal_fine.ravel(), chalc_code.ravel()])
    sub_arr = np.repeat(np.array(_SUBLATTICES), ni * nj)
    basis = np.repeat(np.array([0, 1]), ni * nj)
    cells = np.tile(np.column_stack([ii.ravel(), jj.ravel()]), (2, 1))
    amp = np.asarray(vweight)[species_code]

    on_canvas = (
        (pos[:, 0] >= -pad) & (pos[:, 0] < h + pad) & (pos[:, 1] >= -pad) & (pos[:, 1] < w + pad)
    )
    row_shifts = None
    if scan_noise > 0:
        # One random shift per scan line of the padded canvas, drawn top to bottom.
        row_shifts = rng_scan.normal(0.0, scan_noise, size=h + 2 * pad)
    raw = render(pos[on_canvas], amp[on_canvas], (h, w), pad, sigma, tail_fraction, gamma, row_shifts)

    ref_amp = max(vweight[c_host], vweight[c_ch[2]])
    ref_peak = ref_amp * probe_peak(sigma, tail_fraction, gamma)
    image, scale = finish_image(raw, background * ref_peak, dose, rng_noise)

    # --- truth: sites whose apparent centre is in the image --------------------
    inside, pos_in = sites_in_image(pos, (h, w), row_shifts, pad, sigma)
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

    lattice_vectors = np.stack([dmat @ u, dmat @ v])
    params: dict[str, Any] = {
        "generator": "motiflab.datasets.make_tmd",
        "title": f"Synthetic {name} ADF-STEM"
        + ("" if dose is None else f" ({dose:g} e/px)"),
        "material": name,
        "metal": metal,
        "chalcogen": chalc,
        "shape": (h, w),
        "pixel_size": pixel_size,
        "lattice_constant": a,
        "rotation": rotation,
        "probe_fwhm": probe_fwhm,
        "tail_fraction": tail_fraction,
        "tail_width": tail_width,
        "chalcogen_vacancy_rate": p_chalc,
        "metal_vacancy_rate": p_mvac,
        "dopant": dopant,
        "dopant_rate": p_dop,
        "defects": [(c, s, sp) for c, s, sp in defect_list],
        "dose": dose,
        "background": background,
        "scan_noise": scan_noise,
        "drift": drift,
        "strain": strain,
        "seed": seed,
        "origin": tuple(origin_true.tolist()),
        # derived
        "z_exponent": Z_EXPONENT,
        "sigma_px": sigma,
        "tail_gamma_px": gamma,
        "lattice_origin_px": tuple((dmat @ origin_true).tolist()),
        "chalcogen_offset": "(u + v) / 3",
        "normalisation": scale,
        "background_level": background * ref_peak * scale,
        "nn_distance_px": a_px / math.sqrt(3.0),
    }
    return SyntheticImage(
        image=image,
        pixel_size=pixel_size,
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


def oriented_classes(truth) -> np.ndarray:
    """Fine classes with the orientation of partial environments made explicit.

    With signed (``rotinv=False``) Zernike moments, a metal next to one
    defective chalcogen looks different depending on *which* of its three
    neighbours is defective: the three orientations of ``Mo#1`` are three
    motifs (each is farther from the others than from pristine ``Mo``, since
    they differ at two neighbour sites instead of one). The same holds for
    ``Mo#2``. This returns ``truth.fine`` with a suffix naming the defective
    neighbour (``Mo#1`` → ``"Mo#1/a"``, ``"/b"``, ``"/c"``) or, for ``Mo#2``,
    the intact one, so rotation-sensitive classifications can be scored
    against the right ground truth. ``Mo#3`` and every other class are
    unchanged (they look the same from every orientation). Dopant metals next
    to defective chalcogens get the same refinement (``W`` → ``"W#2/b"``):
    they are as different from a plain dopant as ``Mo#k`` is from ``Mo``.

    Parameters
    ----------
    truth : ColumnTruth
        Truth table of a :func:`make_tmd` image.

    Returns
    -------
    ndarray of str, shape (N,)
    """
    fine = np.asarray(truth.fine).astype(object)
    chalc = truth.sublattice == "chalcogen"
    defective = {
        (int(i), int(j))
        for (i, j), sp, vis in zip(truth.cell[chalc], truth.species[chalc], truth.visible[chalc])
        if not str(sp).endswith("2")  # one or both atoms missing
    }
    names = "abc"
    host = {str(f).split("#")[0] for f in fine[truth.sublattice == "metal"] if "#" in str(f)}
    for row in np.flatnonzero((truth.sublattice == "metal") & truth.visible):
        f = str(fine[row])
        i, j = truth.cell[row]
        flags = [(int(i) + di, int(j) + dj) in defective for di, dj in _METAL_TO_CHALC]
        k = sum(flags)
        if "#" not in f:
            # a dopant metal next to defective chalcogens is as different from a plain
            # dopant as Mo#k is from Mo: give it the same refinement
            if k == 0 or f in host:
                continue
            f = f"{f}#{k}"
        if f.endswith("#3"):
            fine[row] = f
            continue
        want = f.endswith("#1")
        # the odd neighbour may lie outside the frame (edge columns): orientation unknown
        fine[row] = f"{f}/{names[flags.index(want)]}" if want in flags else f"{f}/?"
    return fine.astype(str)
