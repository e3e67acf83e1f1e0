"""Finding atom columns ("feature points"), METHOD.md §1: :func:`find_columns` and its result.

:func:`find_columns` runs, in order (the steps live in the modules named):

1. **Scales from the whole image.** The lattice repeat and the width of a
   column come from the image's autocorrelation (:func:`estimate_spacing`,
   :func:`estimate_column_width`, :mod:`motiflab.scales`): every pixel contributes, so both hold at a
   fraction of a count per pixel, where a first pass of peak finding would
   measure the spacing of noise maxima.
2. **The noise, measured** (:mod:`motiflab.noise`): how its variance grows with
   the signal level (shot noise) and how it is correlated along the scan.
3. **Smoothing** (:mod:`motiflab.smoothing`): by default the matched filter, a
   Gaussian as wide as a column; the paper's FFT and SVD smoothers are options.
4. **Candidates** (:mod:`motiflab.peaks`): every local maximum of the smoothed image. This over-counts
   on purpose (METHOD §1); the next step removes the spurious ones.
5. **Scores** (:mod:`motiflab.significance`). Each candidate's significance ``quality``: its height above the
   local background (the dark gap between columns) in units of the noise the
   smoother left there, with the background's own noise bias removed. On a
   crystal each candidate also gets a **lattice support** (:mod:`motiflab.sites`):
   the signal found at all its lattice translations, as a z-score.
6. **Acceptance.** A candidate is a column when its own peak is significant
   (``quality ≥ threshold``), or when it sits on a sublattice the crystal
   repeats all around it (support ≥ :data:`LATTICE_SUPPORT`); in both cases it
   must be at least ``min_contrast`` as bright as the brightest columns, so the
   faint periodic ripple between bright columns (oxygen in an ADF image of a
   perovskite, probe tails) is not taken for columns. Lattice sites next to
   accepted ones that hold no candidate (noise hid the peak, or a vacancy) are
   added. Everything rejected is kept in :attr:`Columns.rejected_positions`.
7. **Sub-pixel refinement** (centre of mass or a Gaussian fit, :func:`refine_positions`).

The input checks (:func:`validate_image`, :func:`detect_inverted`) live in
:mod:`motiflab.image_checks`. Every name this module exported before the split
is still importable from it.

Why the threshold is relative to noise and local background: a global
"fraction of the maximum" threshold, which most peak finders use, misses dim
sublattices next to bright ones (the S₂ columns of WS₂ are ~15–20 % of W).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ._validation import median_nn_distance
from .errors import MotifLabError
from .image_checks import detect_inverted, validate_image, validate_image_and_offset
from .noise import NoiseModel, estimate_noise
from .peaks import (disk_footprint, disk_maxima, find_peaks, local_background, local_minimum, minus_laplacian,
                    refine_positions, suppress_close)
from .scales import (crystal_scales, estimate_column_width, estimate_spacing, image_scales,
                     lattice_vectors_from_spectrum, width_from_peaks)
from .significance import significance_maps
from .sites import LOCAL_PRESENCE  # noqa: F401  (re-exported: defined here before the split)
from .sites import LATTICE_SUPPORT, lattice_evidence, lattice_sites, lattice_translations, translations_occupied
from .smoothing import METHODS, fft_lowpass, smooth, smooth_image, svd_denoise

# the private names tests import from here, kept from before the finder was split up
_disk, _disk_maxima, _local_background, _minus_laplacian = disk_footprint, disk_maxima, local_background, minus_laplacian

__all__ = [
    "Columns",
    "LATTICE_SUPPORT",
    "validate_image",
    "estimate_spacing",
    "estimate_column_width",
    "fft_lowpass",
    "svd_denoise",
    "smooth",
    "detect_inverted",
    "find_peaks",
    "refine_positions",
    "find_columns",
    "nearest_neighbour_distance",
    "ColumnScales",
    "column_scales",
]

#: Default ``min_contrast``: columns fainter than this fraction of the brightest
#: columns are background. WS₂'s S₂ columns are ~0.15 of W in ADF (kept); O
#: columns in an ADF image of SrTiO₃ ~0.04-0.07 of Sr (not columns to a
#: microscopist, and the source of "background maxima between the columns").
MIN_CONTRAST = 0.1


# --------------------------------------------------------------------------- result


@dataclass
class Columns:
    """Atom columns found in an image, with the candidates that were rejected.

    Attributes
    ----------
    positions : ndarray, shape (N, 2)
        Sub-pixel (row, col) positions in pixels.
    intensity : ndarray, shape (N,)
        Smoothed-image value at each column above the local background.
    prominence : ndarray, shape (N,)
        Same as :attr:`quality` (kept for code written against older versions).
    spacing : float
        Nearest-neighbour distance of the columns (px); sets the refinement and
        de-duplication windows.
    inverted : bool
        Whether the image was inverted (dark columns) before finding.
    noise : float
        Noise standard deviation of the smoothed image at the median background
        level (image units).
    n_candidates : int
        Local maxima before any was accepted or rejected.
    params : dict
        The settings used, with the smoothing method resolved.
    quality : ndarray, shape (N,)
        Significance of each column's own peak: height above the local
        background in units of the noise there (a vacancy site the lattice
        fills in has a quality near 0).
    support : ndarray, shape (N,)
        Lattice support (z-score of the signal at the column's lattice
        translations, see :mod:`motiflab.sites`); NaN without a lattice.
    on_lattice : ndarray, shape (N,) bool
        Accepted because the lattice supports the site (else by its own quality).
    rejected_positions : ndarray, shape (M, 2)
        Candidates that were not accepted (noise maxima, background ripple).
    rejected_quality : ndarray, shape (M,)
        Their quality.
    repeat : float
        Lattice repeat from the autocorrelation (px).
    column_sigma : float
        Gaussian width of a column (px), the matched filter's width.
    lattice_vectors : ndarray, shape (2, 2) or None
        The lattice translations ``u, v`` (rows, px) used for the support, or
        None when the image showed no lattice (or ``lattice="off"``).
    noise_model : NoiseModel or None
        The measured noise (:mod:`motiflab.noise`), as a function of the level
        of the image that was passed in.
    """

    positions: np.ndarray
    intensity: np.ndarray
    prominence: np.ndarray
    spacing: float
    inverted: bool
    noise: float
    n_candidates: int
    params: dict = field(default_factory=dict)
    quality: np.ndarray | None = None
    support: np.ndarray | None = None
    on_lattice: np.ndarray | None = None
    rejected_positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    rejected_quality: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    repeat: float = float("nan")
    column_sigma: float = float("nan")
    lattice_vectors: np.ndarray | None = None
    noise_model: NoiseModel | None = field(default=None, repr=False)

    def __post_init__(self):
        n = len(self.positions)
        if self.quality is None:
            self.quality = np.asarray(self.prominence, np.float32)
        if self.support is None:
            self.support = np.full(n, np.nan, np.float32)
        if self.on_lattice is None:
            self.on_lattice = np.zeros(n, bool)

    def __len__(self):
        return len(self.positions)

    @property
    def n_rejected(self) -> int:
        return len(self.rejected_positions)


@dataclass(frozen=True)
class ColumnScales:
    """The image-wide decisions of :func:`find_columns`, measured once and given to every tile.

    :func:`find_columns` reads these from the whole image; a tiled run
    (:mod:`motiflab.tiles`) measures them once (:func:`column_scales`) and
    passes them to the finder of every tile (``find_columns(tile, scales=...)``),
    so each tile makes the decisions the whole image would.

    Attributes
    ----------
    offset : float
        The median removed before the float32 work (0 for narrow dtypes).
    inverted : bool
        Dark columns (ABF/BF).
    repeat : float
        Lattice repeat (px).
    column_sigma : float
        Column width, the matched filter's σ (px), after every refinement.
    noise : NoiseModel
        The measured noise, in the centred (and inverted) frame the finder works in.
    lattice_vectors : ndarray (2, 2) or None
        The crystal's translations when the lattice was confirmed, else None.
    ref : float
        Contrast of "the brightest columns" (``min_contrast`` is a fraction of it).
    nn_peaks : float
        Window for merging close peaks and matching lattice sites to peaks (px).
    spacing : float
        Final nearest-neighbour distance (px): the refinement window and :attr:`Columns.spacing`.
    noise_std : float
        :attr:`Columns.noise` (noise of the smoothed image at the background level).
    """

    offset: float
    inverted: bool
    repeat: float
    column_sigma: float
    noise: NoiseModel
    lattice_vectors: np.ndarray | None
    ref: float
    nn_peaks: float
    spacing: float
    noise_std: float


def column_scales(image, **params):
    """Run :func:`find_columns` on ``image`` and return ``(columns, scales)`` (:class:`ColumnScales`).

    ``image`` is the representative region the image-wide steps are measured on;
    ``params`` are :func:`find_columns`' settings.
    """
    out = {}
    cols = find_columns(image, _record=out, **params)
    return cols, out["scales"]


# --------------------------------------------------------------------------- the finder


def nearest_neighbour_distance(positions) -> float:
    """Median distance from each point to its nearest other point (px); NaN for fewer than two.

    :func:`motiflab._validation.median_nn_distance` under the name this module
    has always exported: coincident points (distance 0) are left out, which
    column positions, at least a fraction of a spacing apart, never are.
    """
    from ._validation import check_positions

    return median_nn_distance(check_positions(positions, min_n=0))


def _as_number(value, convert, expected):
    """``convert(value)``, or a :class:`MotifLabError` saying what was ``expected`` and what came."""
    try:
        return convert(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        raise MotifLabError(f"{expected}, got {value!r}.") from None


def _check_finder_params(smoothing, threshold, border, spacing, lattice, min_contrast, refine):
    """:func:`find_columns`' settings, checked and normalised, before any work on the image."""
    if not isinstance(smoothing, str) or smoothing.lower() not in METHODS:
        raise MotifLabError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(METHODS)}.")
    threshold = _as_number(threshold, float, "threshold must be a number of noise units")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise MotifLabError(f"threshold must be ≥ 0 (noise units), got {threshold}.")
    min_contrast = _as_number(min_contrast, float, "min_contrast must be a fraction between 0 and 1")
    if not (0.0 <= min_contrast < 1.0):
        raise MotifLabError(f"min_contrast must be a fraction in [0, 1), got {min_contrast}.")
    border = _as_number(border, int, "border must be a whole number of pixels")
    if border < 0:
        raise MotifLabError(f"border must be ≥ 0 px, got {border}.")
    if spacing is not None:
        spacing = _as_number(spacing, float, "spacing must be a number of pixels (or None to measure it)")
        if not (np.isfinite(spacing) and spacing >= 2.0):
            raise MotifLabError(f"spacing must be a finite distance of at least 2 px, got {spacing}.")
    if lattice not in ("auto", "off", True, False):
        raise MotifLabError(f"lattice must be 'auto' (use the crystal's periodicity when there is one) or 'off', "
                            f"got {lattice!r}.")
    if refine not in ("com", "gaussian", "none", None):
        raise MotifLabError(f"unknown refinement {refine!r}; choose 'com', 'gaussian' or 'none'.")
    return smoothing.lower(), threshold, border, spacing, lattice in ("auto", True), min_contrast


def find_columns(
    image,
    smoothing="matched",
    strength=None,
    threshold=5.0,
    refine="gaussian",
    invert="auto",
    border=2,
    spacing=None,
    lattice="auto",
    min_contrast=MIN_CONTRAST,
    *,
    scales: ColumnScales | None = None,
    _record: dict | None = None,
) -> Columns:
    """Find atom columns in an ADF (bright) or ABF/BF (dark) image.

    Parameters
    ----------
    image : array_like
        2-D micrograph, in any units (counts, detector units).
    smoothing : {"matched", "svd", "fft", "gaussian", "none"}
        Smoothing before peak finding (:mod:`motiflab.smoothing`). The default
        matched filter (a Gaussian as wide as the columns) found every column
        with precision ≥ 0.98 on real ADF images and down to one count per
        column peak (``benchmarks/bench_detection.py``); ``"svd"`` and
        ``"fft"`` are the paper's smoothers.
    strength : float, optional
        Smoothing strength (see :func:`motiflab.smoothing.smooth`).
    threshold : float
        Significance a column's own peak needs, in units of the noise left by
        the smoother at the local background (default 5). Noise maxima stay
        below ~4. Lattice sites do not need it: the crystal's repetition is
        their evidence (see ``lattice``).
    refine : {"gaussian", "com", "none"}
        Sub-pixel refinement (see :func:`refine_positions`). The Gaussian fit
        is unbiased by bright neighbours (median error 0.07 px against 0.25 px
        for the centre of mass on MoSe₂ at a good dose).
    invert : {"auto", True, False}
        Treat dark columns as peaks. ``"auto"`` inverts when the image looks
        like ABF/BF (see :func:`detect_inverted`).
    border : int
        Columns closer than this many pixels to the edge are dropped.
    spacing : float, optional
        Lattice repeat in px. Measured from the autocorrelation when omitted;
        the nearest-neighbour distance of the found columns is measured either way.
    lattice : {"auto", "off"}
        ``"auto"``: when the image is a crystal, accept candidates on sites the
        crystal repeats around them even when their own peak is too faint (dim
        sublattices at low dose), and add such sites that have no peak;
        ``"off"``: every column on its own evidence.
    min_contrast : float
        Columns fainter than this fraction of the brightest columns are taken
        as background (default 0.1; see :data:`MIN_CONTRAST`). 0 keeps every
        significant peak.
    scales : ColumnScales, optional
        The image-wide decisions (offset, inversion, repeat, column width,
        noise, lattice, contrast reference, windows), measured elsewhere
        (:func:`column_scales`): with them ``image`` is one tile of a larger
        image (:mod:`motiflab.tiles`), and ``invert`` and ``spacing`` are not
        used. Default: measured from ``image``.

    Returns
    -------
    Columns

    Raises
    ------
    MotifLabError
        For a bad image or parameter, or when no column is found.
    """
    from scipy.spatial import cKDTree

    method, threshold, border, spacing, use_lattice, min_contrast = _check_finder_params(
        smoothing, threshold, border, spacing, lattice, min_contrast, refine)
    if scales is None:
        img, offset = validate_image_and_offset(image, center=True)
    else:
        # the same float32 subtraction as the whole image's, pixel for pixel
        offset = float(scales.offset)
        raw = np.asarray(image)
        img, _ = validate_image_and_offset(raw - offset if offset else raw)
    if spacing is not None and spacing > max(img.shape) / 2:
        # the windows reach ~1.25 spacings: 1e300 px tried to allocate every byte of the machine
        raise MotifLabError(f"spacing {spacing:g} px is more than half the image {img.shape}; give the distance "
                            "between neighbouring columns in pixels, or None to measure it.")
    if scales is not None:
        inverted = bool(scales.inverted)
    else:
        inverted = detect_inverted(img) if invert == "auto" else bool(invert)
    if inverted:
        img = np.negative(img)

    h, w = img.shape
    if scales is not None:
        repeat, sigma_c, noise = float(scales.repeat), float(scales.column_sigma), scales.noise
        vectors = None if scales.lattice_vectors is None else np.asarray(scales.lattice_vectors, float)
        T = None if vectors is None else lattice_translations(vectors[0], vectors[1])
    else:
        repeat, sigma_c, crop = image_scales(img, spacing)
        # the noise band starts at 0.6/σ cycles/px; measured with the autocorrelation's σ (with
        # the cell average's, closer to the truth, SVD smoothing of a streaky image lost 7 %
        # precision: its components are chosen against this noise)
        noise = estimate_noise(img, column_sigma=sigma_c)
        # the crystal's translations, when it is one: the background is then read from the
        # lattice-averaged image, about eight times less noisy than the image itself
        vectors = lattice_vectors_from_spectrum(crop, repeat) if use_lattice else None
        T = None if vectors is None else lattice_translations(vectors[0], vectors[1])
        if T is not None and len(T) < 8:
            vectors, T = None, None
        if T is not None:
            # vectors to a few thousandths of a pixel per cell (the lattice average's far
            # copies then land on the columns, not beside them: with the spectrum's 1 %,
            # ABF at 1 count had false maxima on the columns' shoulders), and σ from the
            # average cell, before the full-size pass
            refined, sigma_cell = crystal_scales(img, vectors, sigma_c, repeat)
            if np.all(np.abs(refined - vectors).sum(axis=1) < 0.05 * np.hypot(*vectors.T)):
                vectors = refined
                T = lattice_translations(vectors[0], vectors[1])
                if strength is None:
                    sigma_c = sigma_cell

    def candidates(sigma, T):
        sm = smooth_image(img, method, strength, repeat, sigma, noise)
        # the background is smooth: read it from a grid as coarse as a column is wide
        factor = int(np.clip(round(sigma), 2, 4)) if sigma >= 1.0 else 1
        zmap, cmap, _ = significance_maps(sm, noise, repeat, T, factor)
        # every local maximum (over-counting on purpose, METHOD §1). The maximum filter is
        # no wider than a column: a wider one lets the tails of bright neighbours hide a
        # dim column (WS₂'s S₂ at 9 px from W, 1/5 as bright)
        r_max = max(1.0, min(repeat / 4.0, sigma))
        rr, cc = np.nonzero(disk_maxima(sm.image, r_max))
        inside = (rr >= border) & (rr < h - border) & (cc >= border) & (cc < w - border)
        return sm, zmap, cmap, r_max, rr[inside], cc[inside], len(rr)

    sm, zmap, cmap, r_max, rr, cc, n_candidates = candidates(sigma_c, T)
    # without a lattice, the autocorrelation's width is checked against the mean profile
    # of the most significant peaks, and the smoothing redone if they disagree by over 15 %
    strongest = zmap[rr, cc] >= min(threshold, 3.0)
    if scales is None and T is None and strength is None and strongest.sum() >= 20:
        sigma_peaks = width_from_peaks(img, np.column_stack([rr, cc])[strongest], zmap[rr, cc][strongest], sigma_c)
        if abs(sigma_peaks / sigma_c - 1.0) > 0.15:
            sigma_c = sigma_peaks
            sm, zmap, cmap, r_max, rr, cc, n_candidates = candidates(sigma_c, T)

    def score(rr, cc):
        # candidates at least one noise unit above the background; fainter ones cannot be
        # columns on their own evidence, and lattice sites among them come from the sites
        z = zmap[rr, cc]
        keep = z > 1.0
        return rr[keep], cc[keep], z[keep], cmap[rr[keep], cc[keep]]

    rr0, cc0 = rr, cc
    rr, cc, z, c = score(rr0, cc0)
    pts = np.column_stack([rr, cc]).astype(np.float64)
    def no_columns():
        others = " or ".join([repr(m) for m in ("matched", "gaussian", "fft") if m != method][:2])
        return MotifLabError(
            f"no atom columns found: no peak stands {threshold:g} noise units above its background "
            f"({n_candidates} candidate maxima, the strongest at {float(z.max()) if len(z) else 0.0:.1f}) "
            f"and no lattice repeats faint ones. Lower `threshold`, try smoothing={others}, "
            "or check `invert` (columns dark on a bright background need invert=True)."
        )

    # the confident peaks (3 noise units and up) decide whether the image is a crystal and
    # what "as bright as the brightest columns" means; a column on its own needs `threshold`
    own = z >= threshold
    confident = z >= min(threshold, 3.0)
    if not confident.any():
        raise no_columns()
    if scales is not None:
        ref = float(scales.ref)  # the whole image's "brightest columns" and lattice decision
    elif T is not None:
        support_c, pooled_c = lattice_evidence(zmap, cmap, pts[confident], T)
        if confident.sum() >= 8 and np.nanmedian(support_c) >= LATTICE_SUPPORT and \
                translations_occupied(pts[confident], vectors, 0.5 * r_max + 1.0):
            # the brightest columns' contrast read from the average crystal, free of the
            # noise that lifts the 90th percentile of single peaks at low dose
            ref = float(np.nanpercentile(pooled_c, 90))
        else:
            # no lattice after all: score again against the plain local background
            vectors, T = None, None
            zmap, cmap, sig = significance_maps(sm, noise, repeat)
            rr, cc, z, c = score(rr0, cc0)
            pts = np.column_stack([rr, cc]).astype(np.float64)
            own = z >= threshold
            confident = z >= min(threshold, 3.0)
    if T is None and scales is None:
        if not own.any():
            raise no_columns()
        # "as bright as the brightest columns": the 90th percentile of the significant peaks
        ref = float(np.percentile(c[own], 90))
    accepted = own & (c >= min_contrast * ref)

    pos = pts[accepted]
    quality = z[accepted]
    # windows from the columns' own nearest-neighbour distance: never wider than the
    # repeat, never narrower than the peak separation the maximum filter allows
    if scales is not None:
        nn = float(scales.nn_peaks)
    else:
        nn = nearest_neighbour_distance(pos)
        nn = float(np.clip(nn, 2.0 * r_max, 1.05 * repeat)) if np.isfinite(nn) else repeat
    nn_peaks = nn
    keep = suppress_close(pos, quality, 0.5 * nn)
    pos, quality = pos[keep], quality[keep]
    supp = np.full(len(pos), np.nan)
    on = np.zeros(len(pos), bool)
    from_lattice = np.zeros(len(pos), bool)  # placed at the lattice site, not at a peak of its own
    site_of = np.full((len(pos), 2), np.nan)  # the lattice site a column sits on
    matched = np.zeros(len(pts), bool)  # candidates that turned out to be a lattice site

    if T is not None:
        sites, site_support = lattice_sites(zmap, cmap, T, r_max, border, min_contrast * ref, 0.6 * repeat)
        if len(sites):
            # a site and a significant peak within half a spacing are the same column: keep
            # the peak's position (its own evidence) and mark it as a lattice site
            tree = cKDTree(pos) if len(pos) else None
            d, j = tree.query(sites, distance_upper_bound=0.5 * nn) if tree is not None else (
                np.full(len(sites), np.inf), np.zeros(len(sites), int))
            hit = np.isfinite(d)
            on[j[hit]] = True
            supp[j[hit]] = site_support[hit]
            site_of = np.full((len(pos), 2), np.nan)
            site_of[j[hit]] = sites[hit]
            new = sites[~hit]
            # the sites without a significant peak: a candidate there is that column
            if len(new):
                dc, jc = cKDTree(pts).query(new, distance_upper_bound=0.5 * nn)
                matched[jc[np.isfinite(dc)]] = True
                zq = ndimage.map_coordinates(zmap, new.T, order=1, mode="nearest")
                pos = np.vstack([pos, new])
                site_of = np.vstack([site_of, new])
                quality = np.concatenate([quality, zq])
                supp = np.concatenate([supp, site_support[~hit]])
                on = np.concatenate([on, np.ones(len(new), bool)])
                from_lattice = np.concatenate([from_lattice, np.ones(len(new), bool)])
        nn_all = nearest_neighbour_distance(pos) if scales is None else np.nan
        if np.isfinite(nn_all):
            nn = float(np.clip(nn_all, 2.0 * r_max, 1.05 * repeat))
    if scales is not None:
        nn = float(scales.spacing)

    if len(pos) == 0:
        raise no_columns()

    # sub-pixel positions: peaks refined on the smoothed image; lattice sites whose own
    # peak is too faint keep the lattice average's (sub-pixel) maximum, which the noise
    # of one column cannot move; a lattice site with a peak of its own gets both,
    # weighted by their precision (a peak of significance z is located to ~3σ/z, the
    # average crystal to ~0.15 σ, the part real displacements may differ by). Patches are
    # centred on these positions: the centring noise of a dim column next to bright ones
    # (S₂ between W, 0.3 px at a good dose) would otherwise shift the bright neighbours
    # inside its patch and split one motif into several
    refined = pos.copy()
    peaks = ~from_lattice
    refined[peaks] = refine_positions(img, pos[peaks], nn, method=refine or "none", sigma=sigma_c,
                                      smoothed=sm.image)
    if T is not None and len(pos):
        both = peaks & np.isfinite(site_of[:, 0])
        # precision of a fitted peak of significance z: ~3σ/z (measured against the
        # Cramér-Rao bound with background); of the average crystal's site: ~0.15σ
        w_own = (np.maximum(quality[both], 0.0) / 20.0) ** 2
        refined[both] = (w_own[:, None] * refined[both] + site_of[both]) / (1.0 + w_own[:, None])
    ip = np.clip(np.round(refined).astype(np.int64), 0, np.array([h - 1, w - 1]))
    intensity = cmap[ip[:, 0], ip[:, 1]]
    rejected = ~accepted & ~matched
    if scales is not None:
        noise_std = float(scales.noise_std)
    else:
        # the typical background level, for the noise reported: every second pixel is plenty
        bg_level = float(np.median(local_minimum(sm.image[::2, ::2], max(1, int(round(0.625 * repeat))))))
        noise_std = float(sm.noise_std(noise, bg_level))
    if _record is not None:
        # what a tiled run needs: the image-wide decisions, and per column the pixel it was found
        # at (peaks first, then lattice-only sites, each in row-major order: the finder's order)
        _record["scales"] = ColumnScales(offset=float(offset), inverted=bool(inverted), repeat=float(repeat),
                                         column_sigma=float(sigma_c), noise=noise, lattice_vectors=vectors,
                                         ref=float(ref), nn_peaks=float(nn_peaks), spacing=float(nn),
                                         noise_std=noise_std)
        _record["seed_pixels"] = np.round(np.where(from_lattice[:, None], site_of, pos)).astype(np.int64)
        _record["from_lattice"] = from_lattice.copy()
    return Columns(
        positions=refined,
        intensity=intensity.astype(np.float32),
        prominence=quality.astype(np.float32),
        spacing=nn,
        inverted=inverted,
        noise=noise_std,
        n_candidates=int(n_candidates),
        params=dict(smoothing=sm.method, smoothing_params=dict(sm.params), strength=strength, threshold=threshold,
                    refine=refine, invert=invert, border=border, lattice="auto" if use_lattice else "off",
                    min_contrast=min_contrast),
        quality=quality.astype(np.float32),
        support=supp.astype(np.float32),
        on_lattice=on,
        rejected_positions=pts[rejected],
        rejected_quality=z[rejected].astype(np.float32),
        repeat=repeat,
        column_sigma=sigma_c,
        lattice_vectors=vectors,
        noise_model=noise.in_frame(scale=-1.0 if inverted else 1.0, offset=(1.0 if inverted else -1.0) * offset),
    )
