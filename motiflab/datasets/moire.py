"""Twisted-bilayer (moire) TMD images with domains of known, different statistics.

Geometry. The bottom layer is a 2H monolayer as in :func:`make_tmd` (metal at
``origin + i u + j v``, chalcogen pair column at ``+ (u + v) / 3``). The top
layer is the bottom layer rotated by ``180 + twist`` degrees about the image
centre (a metal site), which is how a 2H bilayer (180 degree stacking) with an
extra twist looks in projection. Locally the top layer is the bottom layer
rotated by 180 degrees about a centre that slides with position, so the local
stacking (registry) varies smoothly and repeats with the moire period
``a / (2 sin(twist / 2))``. Its three high-symmetry stackings are

* ``"AB'"`` -- metal over metal (rotation centre on a metal site),
* ``"A'B"`` -- chalcogen over chalcogen (centre on a chalcogen site),
* ``"AA'"`` -- metal over chalcogen and chalcogen over metal (centre on a
  hollow / bond-centre site), the bulk 2H stacking.

(Naming of these stackings differs between papers; the geometry above is
what the labels mean here.) Every column is assigned to its nearest domain
centre; ``domain_centers``/``domain_types`` list them.

Known differences. Domains listed in ``perturbed`` get, within
``perturb_radius`` of their centre, extra Gaussian position noise of
``perturb_jitter_px`` on every column and/or a fraction ``perturb_vacancy_rate``
of chalcogen columns with one atom missing. Everything else is identical, so
two unperturbed domains of one type differ only by sampling noise and a
perturbed one differs by exactly the planted amount.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import MotifLabError
from ._checks import check_positive, check_seed, check_shape
from ._elements import atomic_number
from ._optics import pad_for_probe, probe_params_px, render
from ._shot_noise import finish_image, rng_streams
from ._synthetic_image import ColumnTruth, SyntheticImage

__all__ = ["MoireImage", "make_moire", "REGISTRY_TYPES"]

#: Registry types and the fractional position (full-cell units) of the local
#: 180-degree rotation centre that produces them.
REGISTRY_TYPES = {"AB'": (0.0, 0.0), "AA'": (1 / 6, 1 / 6), "A'B": (1 / 3, 1 / 3)}


@dataclass
class MoireImage:
    """A twisted bilayer with its domain ground truth.

    Attributes
    ----------
    sample : SyntheticImage
        Image and per-column truth (``basis``: 0/1 bottom metal/chalcogen,
        2/3 top metal/chalcogen).
    domain_centers : ndarray (D, 2)
        High-symmetry stacking centres inside (or near) the frame, pixels.
    domain_types : ndarray (D,) str
        ``"AB'"``, ``"AA'"`` or ``"A'B"``.
    column_domain : ndarray (N,) int
        Nearest domain centre of each truth column.
    perturbed : ndarray (D,) bool
        Domains that received the planted perturbation.
    moire_period_px : float
        Distance between equivalent domain centres.
    params : dict
        Inputs.
    """

    sample: SyntheticImage
    domain_centers: np.ndarray
    domain_types: np.ndarray
    column_domain: np.ndarray
    perturbed: np.ndarray
    moire_period_px: float
    params: dict

    @property
    def image(self) -> np.ndarray:
        """The micrograph."""
        return self.sample.image

    def interior_domains(self, kind: str | None = None, margin: float | None = None) -> np.ndarray:
        """Indices of domains whose centre lies at least ``margin`` px inside the frame.

        Parameters
        ----------
        kind : str, optional
            Keep only this registry type.
        margin : float, optional
            Default: a third of the moire period.
        """
        h, w = self.sample.image.shape
        m = self.moire_period_px / 3 if margin is None else margin
        c = self.domain_centers
        ok = (c[:, 0] >= m) & (c[:, 0] <= h - 1 - m) & (c[:, 1] >= m) & (c[:, 1] <= w - 1 - m)
        if kind is not None:
            ok &= self.domain_types == kind
        return np.flatnonzero(ok)


def make_moire(
    shape: tuple[int, int] = (1024, 1024),
    pixel_size: float = 0.03,
    a_nm: float = 0.316,
    twist_deg: float = 3.15,
    metal: str = "Mo",
    chalcogen: str = "S",
    probe_fwhm: float = 0.1,
    dose: float | None = None,
    perturbed: Sequence[int] = (),
    perturb_radius: float | None = None,
    perturb_jitter_px: float = 0.0,
    perturb_vacancy_rate: float = 0.0,
    background: float = 0.05,
    seed: int | None = 0,
) -> MoireImage:
    """Render a twisted TMD bilayer with (optionally) perturbed domains.

    Parameters
    ----------
    shape : (int, int), default (1024, 1024)
        Image shape.
    pixel_size : float, default 0.03
        nm per pixel.
    a_nm : float, default 0.316
        Lattice constant of each layer (MoS2: 0.316 nm).
    twist_deg : float, default 3.15
        Extra twist of the top layer (paper: 3.15 degrees); must be in (0.5, 30).
    metal, chalcogen : str, default "Mo", "S"
        Element symbols (for the column intensities ``Z**1.7``).
    probe_fwhm : float, default 0.1
        FWHM of the Gaussian probe in nm.
    dose : float, optional
        Electrons per pixel (Poisson); ``None``: noise-free, mean 1.
    perturbed : sequence of int, default ()
        Indices into ``domain_centers`` to perturb (see ``interior_domains``;
        call once without perturbation to look at the centres -- they depend
        only on shape, pixel size, a and twist).
    perturb_radius : float, optional
        Radius (px) of the perturbed disc; default a quarter of the moire period.
    perturb_jitter_px : float, default 0
        Extra Gaussian position noise (px, per coordinate) in perturbed domains.
    perturb_vacancy_rate : float, default 0
        Fraction of chalcogen columns (both layers) missing one atom in perturbed domains.
    background : float, default 0.05
        Constant offset as a fraction of a metal column's peak.
    seed : int or None, default 0
        Random seed (structure perturbations and shot noise use independent streams).

    Returns
    -------
    MoireImage
    """
    h, w = check_shape(shape)
    pixel_size = check_positive("pixel_size", pixel_size)
    a_nm = check_positive("a_nm", a_nm)
    if not 0.5 < twist_deg < 30:
        raise MotifLabError(f"twist_deg must lie in (0.5, 30) degrees, got {twist_deg}")
    if not 0 <= perturb_vacancy_rate <= 1:
        raise MotifLabError(f"perturb_vacancy_rate must lie in [0, 1], got {perturb_vacancy_rate}")
    if perturb_jitter_px < 0:
        raise MotifLabError("perturb_jitter_px must be >= 0")
    seed = check_seed(seed)
    rng_struct, _, rng_noise = rng_streams(seed)
    a = a_nm / pixel_size
    if a < 4:
        raise MotifLabError(f"lattice constant is only {a:.1f} px; use a smaller pixel_size (< {a_nm / 4:.3f} nm)")
    c = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    u = a * np.array([0.0, 1.0])
    v = a * np.array([-math.sin(math.pi / 3), math.cos(math.pi / 3)])
    m = np.column_stack([u, v])
    # bottom layer sites covering the frame plus a margin
    diag = math.hypot(h, w) / 2 + 3 * a
    n = int(math.ceil(diag / (a * math.sin(math.pi / 3)))) + 2
    ii, jj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    ij = np.column_stack([ii.ravel(), jj.ravel()])
    metal_b = c + ij @ m.T
    chalc_b = metal_b + (u + v) / 3
    th = math.radians(180.0 + twist_deg)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    metal_t = c + (metal_b - c) @ rot.T
    chalc_t = c + (chalc_b - c) @ rot.T
    pos = np.vstack([metal_b, chalc_b, metal_t, chalc_t])
    basis = np.repeat(np.arange(4), len(ij))
    cells = np.tile(ij, (4, 1))
    keep = (pos[:, 0] > -3 * a) & (pos[:, 0] < h + 3 * a) & (pos[:, 1] > -3 * a) & (pos[:, 1] < w + 3 * a)
    pos, basis, cells = pos[keep], basis[keep], cells[keep]

    # domain centres: r = c + 2 (R_t - I)^-1 M (tau + k/2), R_t the pure twist (the top
    # layer near r is the bottom one turned 180 degrees about s(r) = c + (R_t - I)(r - c) / 2,
    # which must sit on a site of type tau)
    tw = math.radians(twist_deg)
    rt = np.array([[math.cos(tw), -math.sin(tw)], [math.sin(tw), math.cos(tw)]])
    amat = 2 * np.linalg.inv(rt - np.eye(2))
    period = float(a / (2 * math.sin(tw / 2)))
    kmax = int(math.ceil(2 * diag / period)) + 2
    centers, types = [], []
    for name, tau in REGISTRY_TYPES.items():
        k1, k2 = np.meshgrid(np.arange(-kmax, kmax + 1), np.arange(-kmax, kmax + 1), indexing="ij")
        kk = np.column_stack([k1.ravel(), k2.ravel()]) / 2.0 + np.array(tau)
        r = c + (kk @ m.T) @ amat.T
        ok = (r[:, 0] > -period / 2) & (r[:, 0] < h - 1 + period / 2) & (r[:, 1] > -period / 2) & (r[:, 1] < w - 1 + period / 2)
        # centres repeat every moire period; the k/2 lattice over-counts each one, keep distinct ones
        for p_ in r[ok]:
            centers.append(p_)
            types.append(name)
    centers = np.array(centers)
    types = np.array(types)
    # de-duplicate (several k map to one moire site)
    order = np.lexsort((centers[:, 1], centers[:, 0]))
    centers, types = centers[order], types[order]
    uniq_c, uniq_t = [], []
    for p_, t_ in zip(centers, types):
        if not any(np.hypot(*(p_ - q)) < 0.05 * period for q in uniq_c):
            uniq_c.append(p_)
            uniq_t.append(t_)
    centers = np.array(uniq_c)
    types = np.array(uniq_t)
    from scipy.spatial import cKDTree

    tree = cKDTree(centers)
    _, col_dom = tree.query(pos, k=1)
    pert = np.zeros(len(centers), bool)
    for d in perturbed:
        if not 0 <= int(d) < len(centers):
            raise MotifLabError(f"perturbed domain {d} does not exist (0..{len(centers) - 1})")
        pert[int(d)] = True
    radius = period / 4 if perturb_radius is None else float(perturb_radius)
    dist_c = np.hypot(*(pos - centers[col_dom]).T)
    in_pert = pert[col_dom] & (dist_c <= radius)

    zm = atomic_number(metal)
    zc = atomic_number(chalcogen)
    n_atoms = np.where(basis % 2 == 1, 2, 1)
    if perturb_vacancy_rate > 0:
        lose = in_pert & (basis % 2 == 1) & (rng_struct.random(len(pos)) < perturb_vacancy_rate)
        n_atoms = np.where(lose, 1, n_atoms)
    amp = np.where(basis % 2 == 0, zm**1.7, n_atoms * zc**1.7).astype(float)
    if perturb_jitter_px > 0:
        jit = rng_struct.normal(0.0, perturb_jitter_px, pos.shape)
        pos = pos + np.where(in_pert[:, None], jit, 0.0)
    probe = probe_params_px(probe_fwhm, 0.0, 0.3, pixel_size)
    sigma = probe["sigma_px"]
    pad = pad_for_probe(sigma, 0.0, 1.0, 0.0)
    raw = render(pos, amp, (h, w), pad, sigma, 0.0, 1.0)
    ref_peak = zm**1.7 / (2 * math.pi * sigma**2)
    img, scale = finish_image(raw, background * ref_peak, dose, rng_noise)
    inside = (pos[:, 0] >= -0.5) & (pos[:, 0] < h - 0.5) & (pos[:, 1] >= -0.5) & (pos[:, 1] < w - 0.5)
    sub = np.where(basis % 2 == 0, "metal", "chalcogen")
    species = np.where(basis % 2 == 0, metal, np.char.add(chalcogen, n_atoms.astype(str)))
    truth = ColumnTruth(positions=pos[inside], species=species[inside], fine=species[inside],
                        visible=np.ones(int(inside.sum()), bool), sublattice=sub[inside], cell=cells[inside],
                        intensity=amp[inside], basis=basis[inside])
    params = {"title": f"Synthetic twisted bilayer {metal}{chalcogen}2 ({twist_deg} deg)", "shape": [h, w],
              "pixel_size": pixel_size, "a_nm": a_nm, "twist_deg": twist_deg, "dose": dose,
              "perturbed": [int(x) for x in perturbed], "perturb_radius": radius,
              "perturb_jitter_px": perturb_jitter_px, "perturb_vacancy_rate": perturb_vacancy_rate,
              "seed": seed, "scale": scale}
    sample = SyntheticImage(image=img, pixel_size=pixel_size, truth=truth, lattice_vectors=np.vstack([u, v]),
                            params=params)
    return MoireImage(sample=sample, domain_centers=centers, domain_types=types,
                      column_domain=col_dom[inside].astype(np.int64), perturbed=pert,
                      moire_period_px=period, params=params)
