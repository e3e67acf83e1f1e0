"""Finding atom columns ("feature points"), METHOD.md §1.

:func:`find_columns` runs, in order:

1. **Scales from the whole image.** The lattice repeat and the width of a
   column come from the image's autocorrelation (:func:`estimate_spacing`,
   :func:`estimate_column_width`): every pixel contributes, so both hold at a
   fraction of a count per pixel, where a first pass of peak finding would
   measure the spacing of noise maxima.
2. **The noise, measured** (:mod:`motiflab.noise`): how its variance grows with
   the signal level (shot noise) and how it is correlated along the scan.
3. **Smoothing** (:mod:`motiflab.smoothing`): by default the matched filter, a
   Gaussian as wide as a column; the paper's FFT and SVD smoothers are options.
4. **Candidates**: every local maximum of the smoothed image. This over-counts
   on purpose (METHOD §1); the next step removes the spurious ones.
5. **Scores.** Each candidate's significance ``quality``: its height above the
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
7. **Sub-pixel refinement** (centre of mass or a Gaussian fit).

Why the threshold is relative to noise and local background: a global
"fraction of the maximum" threshold, which most peak finders use, misses dim
sublattices next to bright ones (the S₂ columns of WS₂ are ~15–20 % of W).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from . import _columns_kernels as _k
from .errors import MotifLabError
from .noise import NoiseModel, estimate_noise
from .smoothing import METHODS, fft_lowpass, smooth, smooth_image, svd_denoise

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
]

#: Smallest lattice support (a z-score, see :mod:`motiflab.sites`) that makes a
#: candidate a lattice site: the weakest side of the crystal around it must add up
#: to two noise units. In the hollows of a lattice the support stays below ~1.3
#: (95 % below 0.5); the S₂ sites of WS₂ and the O sites of ABF at one count per
#: brightest column reach 3-5.
LATTICE_SUPPORT = 2.0

#: A lattice site must hold this fraction of the average crystal's signal within about a
#: lattice constant around it (a vacancy holds ~85 %, the vacuum inside a hole ~0).
LOCAL_PRESENCE = 0.4

#: Default ``min_contrast``: columns fainter than this fraction of the brightest
#: columns are background. WS₂'s S₂ columns are ~0.15 of W in ADF (kept); O
#: columns in an ADF image of SrTiO₃ ~0.04-0.07 of Sr (not columns to a
#: microscopist, and the source of "background maxima between the columns").
MIN_CONTRAST = 0.1


# --------------------------------------------------------------------------- validation


def validate_image(image, name="image", min_size=8, center=False) -> np.ndarray:
    """Check that ``image`` is a usable 2-D micrograph and return it as float32.

    Parameters
    ----------
    image : array_like
        Candidate image.
    name : str
        How to call it in error messages.
    min_size : int
        Smallest accepted side length in pixels.
    center : bool
        Subtract the median (in float64) before the cast to float32, so that
        a large detector offset (1e8 counts) does not use up float32's seven
        digits and erase the signal.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 copy-or-view of the image.

    Raises
    ------
    MotifLabError
        If the image is not 2-D (with a hint to pick one frame of a stack),
        is too small, contains NaN/inf, or is constant.
    """
    return _validate(image, name, min_size, center)[0]


def _validate(image, name="image", min_size=8, center=False):
    """:func:`validate_image`, also returning the median it removed (0 without ``center``)."""
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise MotifLabError(f"{name} must be a numeric array, got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise MotifLabError(f"{name} is complex; pass its modulus (np.abs) or real part instead.")
    if arr.ndim != 2:
        squeezed = np.squeeze(arr)
        if squeezed.ndim == 2:
            arr = squeezed
        elif arr.ndim > 2:
            raise MotifLabError(
                f"{name} has shape {arr.shape}, but motiflab analyses one 2-D micrograph at a time. "
                f"Pick one frame of the stack, e.g. image[0] (or motiflab.load(path, frame=0)), "
                "or sum the frames after aligning them."
            )
        else:
            raise MotifLabError(f"{name} has shape {arr.shape}; a 2-D image (rows, columns) is needed.")
    if arr.size == 0 or min(arr.shape) < min_size:
        raise MotifLabError(
            f"{name} has shape {arr.shape}; at least {min_size}×{min_size} pixels are needed "
            "to find atom columns."
        )
    offset = _median_offset(arr) if center else 0.0
    if offset:
        arr = arr - offset
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int((~finite).sum())
        raise MotifLabError(
            f"{name} contains {bad} NaN or infinite pixel(s). Replace them before analysis, e.g. "
            "image = np.nan_to_num(image, nan=np.nanmedian(image)), or crop them away."
        )
    if float(arr.max()) == float(arr.min()):
        raise MotifLabError(
            f"{name} is constant (every pixel equals {float(arr.flat[0])!r}); there are no columns to "
            "find. Check that the right file/frame was loaded."
        )
    return arr, offset


def _median_offset(arr) -> float:
    """The median :func:`validate_image` removes with ``center=True`` (0 for narrow or non-finite data)."""
    if arr.dtype.kind in "fiu" and arr.dtype.itemsize >= 4:
        # a centre for float32 precision, not a statistic: a sample of ~half a million pixels
        # gives it as well as all of them
        wide = np.asarray(arr.ravel()[:: max(1, arr.size // 500_000)], np.float64)
        if np.isfinite(wide).all():
            return float(np.median(wide))
    return 0.0


# --------------------------------------------------------------------------- scales


_AC_CROP = 768


def _autocorrelation(img):
    """Radial profiles of the image's autocorrelation: raw, and after a 1-px Gaussian blur.

    Computed on a central crop of at most 768² (plenty of repeats, bounded
    cost). Returns ``(prof_blurred, r_raw, ac_raw, crop)``, the profile over
    integer radii, and the raw autocorrelation within one third of the crop as
    flat (radius, value) arrays.
    """
    h, w = img.shape
    ch, cw = min(h, _AC_CROP), min(w, _AC_CROP)
    r0, c0 = (h - ch) // 2, (w - cw) // 2
    crop = img[r0 : r0 + ch, c0 : c0 + cw]
    sub = crop.astype(np.float64)
    sub = sub - sub.mean()
    # zero padding ≥ the lags used (rmax < ch/3) avoids wrap-around; a fast length
    # keeps pocketfft off its slow prime-factor path for odd crop sizes
    sy = sfft.next_fast_len(ch + ch // 2, real=True)
    sx = sfft.next_fast_len(cw + cw // 2, real=True)
    f = sfft.rfft2(sub, s=(sy, sx), workers=-1)
    power = f.real**2 + f.imag**2
    # a 1-px blur (applied to the spectrum) keeps pixel noise, a delta at lag 0,
    # from dominating the profile the repeat is read from
    fy = sfft.fftfreq(sy)[:, None]
    fx = sfft.rfftfreq(sx)[None, :]
    blur = np.exp(-4.0 * np.pi**2 * (fy**2 + fx**2))  # |FT of a σ=1 Gaussian|²
    rmax = int(min(ch, cw) // 3)
    yy, xx = np.indices((2 * rmax + 1, 2 * rmax + 1))
    rr = np.hypot(yy - rmax, xx - rmax)
    rbin = np.round(rr).astype(int).ravel()
    counts = np.maximum(np.bincount(rbin), 1)
    out = []
    for spec in (power * blur, power):
        ac = sfft.irfft2(spec, s=(sy, sx), workers=-1)
        ac = np.roll(ac, (rmax, rmax), axis=(0, 1))[: 2 * rmax + 1, : 2 * rmax + 1]
        out.append(ac)
    prof = (np.bincount(rbin, out[0].ravel()) / counts)[: rmax + 1]
    return prof, rr.ravel(), out[1].ravel(), crop


def _repeat_from_profile(prof) -> float:
    # first local maximum after the profile has started rising again
    for r in range(2, len(prof) - 1):
        if prof[r] >= prof[r - 1] and prof[r] > prof[r + 1] and prof[r] > prof[r - 2]:
            # parabolic interpolation of the maximum
            a, b, c = prof[r - 1], prof[r], prof[r + 1]
            den = a - 2 * b + c
            off = 0.5 * (a - c) / den if den != 0 else 0.0
            return float(max(3.0, r + off))
    # no periodicity: fall back to the width of the central peak
    half = np.nonzero(prof < prof[0] / 2)[0]
    return float(max(3.0, 2 * (half[0] if len(half) else 3)))


def _width_from_autocorrelation(rr, ac, repeat) -> float:
    """Gaussian width of a column from the autocorrelation's central peak.

    The autocorrelation of Gaussian columns of width σ is, near lag 0, a
    Gaussian of width σ√2 on a baseline; white noise adds only at lag 0, which
    is left out. Fitted on 0.5 < r ≤ 0.35·repeat (inside the nearest
    neighbour), it gives σ within ~10 % at any dose.
    """
    from scipy import optimize

    m = (rr > 0.5) & (rr <= max(2.5, 0.35 * repeat))
    r, a = rr[m], ac[m]
    fallback = max(0.7, repeat / 8.0)
    if len(r) < 6:
        return fallback

    def model(r, amp, s, c):
        return amp * np.exp(-(r**2) / (4.0 * s * s)) + c

    try:
        p, _ = optimize.curve_fit(model, r, a, p0=[float(a.max() - a.min()), fallback, float(a.min())],
                                  maxfev=2000)
    except (RuntimeError, ValueError, optimize.OptimizeWarning):
        return fallback
    s = abs(float(p[1]))
    if not np.isfinite(s) or p[0] <= 0:
        return fallback
    return float(np.clip(s, 0.5, repeat / 3.0))


def _image_scales(img):
    """(lattice repeat, column width σ) in px, both from one autocorrelation of ``img``."""
    prof, rr, ac, _ = _autocorrelation(img)
    repeat = _repeat_from_profile(prof)
    return repeat, _width_from_autocorrelation(rr, ac, repeat)


def estimate_spacing(image) -> float:
    """Estimate the repeat distance between columns (pixels) from the autocorrelation.

    The radially averaged autocorrelation of the (mean-removed) image has its
    first maximum beyond the central peak at the shortest strong repeat: the
    nearest-neighbour distance in most structures, the lattice constant in
    some (in a honeycomb the metal–chalcogen pairs alternate with
    metal–hollow pairs at the same distance and cancel). Every pixel
    contributes, so the estimate holds at any dose. :func:`find_columns`
    measures the nearest-neighbour distance of the columns it finds.

    Parameters
    ----------
    image : array_like
        2-D image.

    Returns
    -------
    float
        Spacing in pixels (at least 3).
    """
    return _repeat_from_profile(_autocorrelation(validate_image(image))[0])


def estimate_column_width(image, spacing=None) -> float:
    """Gaussian width σ (px) of an atom column, from the image's autocorrelation.

    Parameters
    ----------
    image : array_like
        2-D image (columns bright or dark).
    spacing : float, optional
        Lattice repeat in px (measured when not given); the fit stays inside
        a third of it.

    Returns
    -------
    float
        σ in pixels (the probe's width convolved with the column's own), the
        width of the matched filter.
    """
    prof, rr, ac, _ = _autocorrelation(validate_image(image))
    repeat = float(spacing) if spacing is not None else _repeat_from_profile(prof)
    return _width_from_autocorrelation(rr, ac, repeat)


# --------------------------------------------------------------------------- polarity


def detect_inverted(image) -> bool:
    """Guess whether columns are dark on a bright background (ABF/BF images).

    ADF images are sparse bright peaks on a dark background, so their pixel
    histogram has a long bright tail (positive skew); ABF/BF images are the
    mirror image. Returns True when the skewness of the lightly smoothed image
    is negative.
    """
    # smoothed (2x2 block means, then a 1-px Gaussian: ~2 px at full size) so that the
    # skew of shot noise itself (1/sqrt(counts) per pixel, positive) stays below that of
    # the columns, at a quarter of the pixels; float32 values, float64 moments
    img = validate_image(image)
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    if h >= 16 and w >= 16:
        img = (img[0:h:2, 0:w:2] + img[1:h:2, 0:w:2] + img[0:h:2, 1:w:2] + img[1:h:2, 1:w:2]) * np.float32(0.25)
    img = ndimage.gaussian_filter(img, 1.0, output=np.float32)
    d = img - np.float32(img.mean(dtype=np.float64))
    sd = float(np.sqrt(np.mean(np.square(d), dtype=np.float64)))
    if sd == 0:
        return False
    skew = float(np.mean(d * d * d, dtype=np.float64)) / sd**3
    return skew < 0


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


# --------------------------------------------------------------------------- peaks


def _disk(radius: float) -> np.ndarray:
    r = int(np.floor(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy**2 + xx**2) <= radius**2 + 1e-9


def find_peaks(smoothed, spacing, threshold=5.0, border=2, noise=None, min_distance=None):
    """Maximum-filter peaks with a local-prominence significance threshold.

    Parameters
    ----------
    smoothed : ndarray
        Smoothed 2-D image (columns bright).
    spacing : float
        Nearest-neighbour column distance in px; sets the windows.
    threshold : float
        Minimum prominence in units of ``noise`` (default 5).
    border : int
        Peaks closer than this to the image edge are dropped (partial columns
        at the edge have biased positions).
    noise : float, optional
        Noise level of ``smoothed``; estimated if not given.
    min_distance : float, optional
        Radius of the (disk-shaped) maximum filter. Default spacing/4, i.e. a
        window of about half the nearest-neighbour distance (METHOD §1). A
        larger window lets the tails of bright neighbours hide dim columns.

    Returns
    -------
    peaks : ndarray, shape (M, 2) int
    prominence : ndarray, shape (M,)
        In units of noise.
    n_candidates : int
    """
    img = np.asarray(smoothed, dtype=np.float32)
    if min_distance is None:
        min_distance = max(1.0, spacing / 4.0)
    is_max = _disk_maxima(img, min_distance)
    local_bg = _local_background(img, spacing)
    if noise is None:
        noise = float(np.sqrt(estimate_noise(img).variance(float(np.median(local_bg)))))
    noise = max(float(noise), 1e-12 * max(1.0, float(np.abs(img).max())))
    rr, cc = np.nonzero(is_max)
    n_candidates = len(rr)
    prom = (img[rr, cc] - local_bg[rr, cc]) / noise
    keep = prom > threshold
    h, w = img.shape
    if border > 0:
        keep &= (rr >= border) & (rr < h - border) & (cc >= border) & (cc < w - border)
    rr, cc, prom = rr[keep], cc[keep], prom[keep]
    peaks = np.column_stack([rr, cc]).astype(np.int64)
    keep = _suppress_close(peaks, prom, 0.5 * spacing)
    return peaks[keep], prom[keep].astype(np.float32), n_candidates


def _local_background(img, spacing):
    """Minimum over a window reaching past the nearest neighbours: the dark gap between columns."""
    return _local_background_r(img, int(round(spacing * 1.25)))


def _local_background_r(img, r):
    img = np.ascontiguousarray(img, dtype=np.float32)
    tmp = np.empty_like(img)
    out = np.empty_like(img)
    _k.min_rows(img, int(r), tmp)
    _k.min_cols(tmp, int(r), out)
    return out


def _disk_maxima(img, radius):
    """``img == maximum_filter(img, footprint=_disk(radius), mode="nearest")``, as a bool mask."""
    fp = _disk(radius)
    c = fp.shape[0] // 2
    dy, dx = np.nonzero(fp)
    dy, dx = dy - c, dx - c
    # the 4-neighbours first: they reject almost every pixel after one or two reads
    order = np.lexsort((np.abs(dx) + np.abs(dy) > 1, dy * dy + dx * dx))
    dy, dx = dy[order], dx[order]
    keep = (dy != 0) | (dx != 0)
    out = np.empty(img.shape, np.bool_)
    _k.disk_max(np.ascontiguousarray(img, dtype=np.float32), dy[keep].astype(np.int64),
                dx[keep].astype(np.int64), out)
    return out


def _suppress_close(peaks, prom, radius):
    """Keep the most prominent of peaks closer than ``radius`` (plateaus, split maxima)."""
    n = len(peaks)
    keep = np.ones(n, bool)
    if n < 2 or radius <= 0:
        return keep
    from scipy.spatial import cKDTree

    pairs = cKDTree(peaks.astype(np.float64)).query_pairs(r=radius, output_type="ndarray")
    if len(pairs) == 0:
        return keep
    # greedy non-maximum suppression in order of decreasing prominence; only the few
    # peaks involved in close pairs are visited
    order = np.argsort(-prom, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    pairs = pairs[np.argsort(np.minimum(rank[pairs[:, 0]], rank[pairs[:, 1]]), kind="stable")]
    for a, b in pairs:
        if keep[a] and keep[b]:
            if rank[a] < rank[b]:
                keep[b] = False
            else:
                keep[a] = False
    return keep


def nearest_neighbour_distance(positions) -> float:
    """Median distance from each point to its nearest neighbour (px)."""
    from scipy.spatial import cKDTree

    pts = np.asarray(positions, dtype=np.float64)
    if len(pts) < 2:
        return float("nan")
    d, _ = cKDTree(pts).query(pts, k=2, workers=-1)
    return float(np.median(d[:, 1]))


def refine_positions(image, peaks, spacing, method="gaussian", n_iter=20, sigma=None, smoothed=None):
    """Sub-pixel refinement of peak positions.

    Parameters
    ----------
    image : ndarray
        2-D image, columns bright (the raw image for ``"gaussian"``; a
        smoothed one for ``"com"``).
    peaks : ndarray, shape (N, 2)
        Initial (row, col) positions.
    spacing : float
        Nearest-neighbour column distance in px; the centre-of-mass disk has
        radius spacing/3.5 so it never reaches a neighbouring column.
    method : {"gaussian", "com", "none"}
        ``"gaussian"``: a 2-D Gaussian of the column's width ``sigma`` plus a
        constant background, fitted to ``image`` by least squares within 2σ of
        the column (as Atomap does); where the fit fails (no peak there), the
        centre of mass. ``"com"``: iterated, background-subtracted centre of
        mass in a disk, weighted by a Gaussian window re-centred at every
        iteration (on ``smoothed`` when given). ``"none"``: the positions as given.
    n_iter : int
        Maximum iterations of either.
    sigma : float, optional
        Gaussian width of a column in px (default spacing/5).
    smoothed : ndarray, optional
        Smoothed image for the centre of mass (default ``image``).

    Returns
    -------
    ndarray, shape (N, 2) float64
    """
    pos = np.ascontiguousarray(peaks, dtype=np.float64)
    if method in (None, "none") or len(pos) == 0:
        return pos
    if method not in ("com", "gaussian"):
        raise MotifLabError(f"unknown refinement {method!r}; choose 'gaussian', 'com' or 'none'.")
    img = np.ascontiguousarray(image, dtype=np.float32)
    sm = img if smoothed is None else np.ascontiguousarray(smoothed, dtype=np.float32)
    # stay well inside half the nearest-neighbour distance so the bright tails of
    # neighbours do not pull dim columns towards them
    radius = float(max(1.5, spacing / 3.5))

    def com(p):
        local_bg = _local_background(sm, spacing)
        ip = np.clip(np.round(p).astype(np.int64), 0, np.array(sm.shape) - 1)
        bg = local_bg[ip[:, 0], ip[:, 1]].astype(np.float64)
        return _k.com_refine(sm, p, radius, int(n_iter), bg)

    if method == "com":
        return com(pos)
    sigma = float(sigma) if sigma is not None else max(0.7, spacing / 5.0)
    fit_radius = float(min(max(1.5, 2.0 * sigma), 0.5 * spacing))
    out = np.empty_like(pos)
    ok = np.empty(len(pos), np.bool_)
    _k.gauss2d_fit(img, pos, sigma, fit_radius, int(n_iter), out, ok)
    if not ok.all():
        out[~ok] = com(pos[~ok])
    return out


# --------------------------------------------------------------------------- significance


def _window_minimum(img, r, translations=None, factor=1):
    """Local minimum over a (2r+1)² window, of ``img`` or of its lattice average, at full size."""
    if translations is None:
        return _local_background_r(img, r)
    from .sites import lattice_average

    avg = lattice_average(img, translations, factor)
    small = _local_background_r(avg, max(1, int(round(r / factor))))
    full = np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)
    h, w = img.shape
    if full.shape != (h, w):  # the rows/columns the coarse grid left out repeat the last ones
        full = np.pad(full, ((0, h - full.shape[0]), (0, w - full.shape[1])), mode="edge")
    return full


def _background_bias(sm, r: int) -> float:
    """How far below the true background the local minimum of the smoothed noise lies, in noise units.

    The local background is the minimum of the smoothed image over a window;
    the minimum of a noisy field sits below its mean by an amount that grows
    with the window and shrinks with the smoothing (~2 noise units for a
    matched filter and a window of 2.5 lattice spacings). Measured by running
    the same filter and window over a field of unit white noise (seeded, so
    reproducible).
    """
    m = int(min(768, max(128, 6 * (2 * r + 1))))
    noise = np.random.default_rng(0).standard_normal((m, m)).astype(np.float32)
    f = np.asarray(sm.apply(noise), np.float32)
    inner = f[r:-r, r:-r] if m > 4 * r else f
    sd = float(inner.std())
    if not sd > 0:
        return 0.0
    mins = _local_background_r(f / np.float32(sd), r)
    inner = mins[r:-r, r:-r] if m > 4 * r else mins
    return float(max(0.0, -inner.mean()))


def _significance(sm, noise: NoiseModel, repeat: float, translations=None, factor=1):
    """Maps of each pixel's height above the local background: in noise units and in image units.

    The background is the local minimum of the lattice average, on a crystal
    (about eight times less noisy), or of the image itself, raised by its
    noise bias. The noise is
    that of the background level (the null hypothesis: no column here), and
    with shot noise the level sets the noise, so the two are solved together
    (a fixed point, reached in three rounds).
    """
    S = sm.image
    r = int(round(1.25 * repeat))
    bmin = _window_minimum(S, r, translations, factor)
    # on a crystal every hollow in the window is a translate of the same averaged hollow:
    # the minimum then samples one place of a map eight times less noisy, and has no bias
    # to speak of (a flat-field estimate put the hollows 0.45 noise units below zero)
    bias = np.float32(0.0 if translations is not None else _background_bias(sm, r))
    floor = np.float32(1e-12 * max(1.0, float(np.abs(S).max())))
    background = bmin
    for _ in range(3 if bias else 1):
        sig = np.maximum(np.asarray(sm.noise_std(noise, background), np.float32), floor)
        background = bmin + bias * sig
    contrast = S - background
    return contrast / sig, contrast, sig


def _lattice_vectors(crop, repeat=None):
    """Primitive translations (u, v) from the power spectrum of a crop (at most 768²), or None.

    With the repeat measured by the autocorrelation, periods beyond 2.5 repeats are
    not considered.
    """
    from .lattice import fft_lattice_vectors as _fft_vectors

    h, w = crop.shape
    side = 768
    if h > side or w > side:
        r0, c0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
        crop = crop[r0:r0 + side, c0:c0 + side]
    try:
        u, v = _fft_vectors(crop, max_period=None if repeat is None else 2.5 * repeat)
    except MotifLabError:
        return None
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(v))):
        return None
    return np.vstack([u, v])


def _minus_laplacian(img):
    """−∇² of ``img`` after a 3×3 binomial blur (a Laplacian of Gaussian of width ~0.7 px), edges zero (float32)."""
    img = np.ascontiguousarray(img, np.float32)
    out = np.zeros_like(img)
    if img.ndim == 2 and min(img.shape) >= 3:
        _k.minus_laplacian(img, out)
    return out


def _width_from_peaks(img, peaks, z, sigma0, n_max=400):
    """Gaussian width σ of the columns from the mean profile around the most significant peaks.

    Parameters
    ----------
    img : ndarray
        The image (columns bright).
    peaks : ndarray (N, 2) int
        Candidate peaks, all significant.
    z : ndarray (N,)
        Their significance; the ``n_max`` strongest are averaged.
    sigma0 : float
        The starting guess (from the autocorrelation), returned if the fit fails.
    """
    from scipy import optimize
    from scipy.spatial import cKDTree

    order = np.argsort(-z)[:n_max]
    pk = np.asarray(peaks, np.int64)[order]
    # out to half the distance to the nearest other peak, so neighbours stay out
    d, _ = cKDTree(peaks).query(pk, k=2)
    R = int(np.clip(np.floor(0.5 * np.median(d[:, 1])), 2, max(2, int(np.ceil(4 * sigma0)))))
    h, w = img.shape
    ok = (pk[:, 0] >= R) & (pk[:, 0] < h - R) & (pk[:, 1] >= R) & (pk[:, 1] < w - R)
    pk = pk[ok]
    if len(pk) < 10:
        return sigma0
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1]
    mean = np.mean([img[r - R:r + R + 1, c - R:c + R + 1] for r, c in pk], axis=0, dtype=np.float64)
    r = np.hypot(yy, xx).ravel()
    v = mean.ravel()

    def model(r, amp, s, c):
        return amp * np.exp(-0.5 * (r / s) ** 2) + c

    try:
        p, _ = optimize.curve_fit(model, r, v, p0=[float(v.max() - v.min()), sigma0, float(v.min())], maxfev=2000)
    except (RuntimeError, ValueError, optimize.OptimizeWarning):
        return sigma0
    s_fit = abs(float(p[1]))
    # the mean of peaks found on the pixel grid is blurred by their ±0.5 px offsets (1/12 px²)
    s_fit = float(np.sqrt(max(s_fit**2 - 1.0 / 12.0, 0.25)))
    return s_fit if (np.isfinite(s_fit) and p[0] > 0 and 0.5 <= s_fit <= 2.0 * R) else sigma0


def _crystal_scales(img, vectors, sigma0, repeat):
    """Lattice vectors and column width σ refined on a central crop, before any full-size pass.

    The power spectrum gives the vectors to ~1 %, the autocorrelation σ to
    ±10 % at a good dose and ±40 % at ~1 count (ABF: 1.2-2.8 px for 1.9). On
    a crop of about a thousand cells (512²-1024²): the maxima of the image
    smoothed at ``sigma0`` (the brighter half; noise maxima only add pairs
    that match nothing) refine the vectors (:func:`motiflab.sites.refine_vectors`),
    and a Gaussian fitted to the brightest column of the average of every
    unit cell (:func:`motiflab.sites.cell_average`), ten to twenty times less
    noisy than one column, gives σ.

    Returns
    -------
    vectors : ndarray (2, 2)
    sigma : float
        ``sigma0`` where a fit fails.
    """
    from scipy import optimize

    from .sites import cell_average, refine_vectors, subpixel_peaks

    h, w = img.shape
    area = abs(vectors[0][0] * vectors[1][1] - vectors[0][1] * vectors[1][0])
    s = int(np.clip(np.sqrt(1000.0 * area), 512, 1024))
    r0, c0 = max(0, (h - s) // 2), max(0, (w - s) // 2)
    crop = np.asarray(img[r0:r0 + s, c0:c0 + s], np.float32)
    sm = ndimage.gaussian_filter(crop, sigma0)
    rr, cc = np.nonzero(_disk_maxima(sm, max(1.0, min(repeat / 4.0, sigma0))))
    if len(rr) < 20:
        return vectors, sigma0
    bright = sm[rr, cc] >= np.median(sm[rr, cc])
    vectors = np.vstack(refine_vectors(subpixel_peaks(sm, rr[bright], cc[bright]), *vectors))
    u, v = vectors
    # the brightest place of the whole cell average (coarse bins, lightly smoothed) is
    # the centre of the brightest column
    reach = float(max(np.hypot(*u), np.hypot(*v)))
    mean, count = cell_average(crop, u, v, (0.0, 0.0), reach, 1.0)
    mean = np.where(count > 0, mean, np.nan)
    if not np.isfinite(mean).any():
        return vectors, sigma0
    filled = np.where(np.isfinite(mean), mean, np.nanmin(mean))
    k = np.unravel_index(np.argmax(ndimage.gaussian_filter(filled, 1.0)), mean.shape)
    center = np.array(k, float) - (mean.shape[0] - 1) / 2.0
    step = 0.5
    R = float(np.clip(0.3 * min(np.hypot(*u), np.hypot(*v)), 2.0, 6.0 * sigma0))

    def model(yx, amp, y0, x0, sg, c):
        return amp * np.exp(-0.5 * ((yx[0] - y0) ** 2 + (yx[1] - x0) ** 2) / sg**2) + c

    for _ in range(2):
        mean, count = cell_average(crop, u, v, center, R, step)
        m = mean.shape[0]
        g = (np.arange(m) - (m - 1) / 2) * step
        yy, xx = np.meshgrid(g, g, indexing="ij")
        ok = np.isfinite(mean) & (count > 0) & (np.hypot(yy, xx) <= R)
        if ok.sum() < 12:
            return vectors, sigma0
        y, x, val = yy[ok], xx[ok], mean[ok]
        p0 = [float(val.max() - val.min()), 0.0, 0.0, sigma0, float(val.min())]
        try:
            p, _ = optimize.curve_fit(model, np.vstack([y, x]), val, p0=p0, maxfev=4000)
        except (RuntimeError, ValueError, optimize.OptimizeWarning):
            return vectors, sigma0
        if not (np.all(np.isfinite(p)) and p[0] > 0) or np.hypot(p[1], p[2]) > R:
            return vectors, sigma0
        center = center + p[1:3]
        if np.hypot(p[1], p[2]) < 0.25:
            break
    # the bins blur by step²/12; the lattice vectors' residual error, far less
    sg = float(np.sqrt(max(p[3] ** 2 - step**2 / 12.0, 0.25)))
    return vectors, (sg if 0.5 <= sg <= R else sigma0)


def _translations_occupied(pts, vectors, tol) -> bool:
    """Whether both lattice vectors map confident columns onto other confident columns.

    A real lattice translation carries a column onto a column; a vector read
    from the spectrum of an image without one (a glass, a nanoparticle, a hole)
    does so only as often as any other vector of that length. Compared with
    four such control vectors (u turned by ±17° and ±31°), so that a sparse
    set of confident columns at low dose is judged against its own density.
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(pts)
    starts = pts[:: int(np.ceil(len(pts) / 5000))]  # a fraction is plenty, spread over the image

    def occupancy(t):
        d1, _ = tree.query(starts + t, distance_upper_bound=tol)
        d2, _ = tree.query(starts - t, distance_upper_bound=tol)
        return float(np.mean(np.isfinite(d1) | np.isfinite(d2)))

    controls = []
    for ang in np.radians([17.0, -17.0, 31.0, -31.0]):
        c, s = np.cos(ang), np.sin(ang)
        controls.append(occupancy(np.array([c * vectors[0][0] - s * vectors[0][1],
                                            s * vectors[0][0] + c * vectors[0][1]])))
    baseline = float(np.mean(controls))
    return min(occupancy(t) for t in vectors) >= max(3.0 * baseline, baseline + 0.15)


def _lattice_sites(zmap, cmap, translations, radius, border, min_level, reach):
    """Sites of the crystal: maxima of the lattice-averaged significance the crystal backs all round.

    ``reach`` (px, about a lattice constant) sets the neighbourhood in which a
    site must hold at least :data:`LOCAL_PRESENCE` of the average crystal's
    signal. Returns the sub-pixel site positions and their lattice support.
    """
    from .sites import lattice_average, lattice_evidence, subpixel_peaks

    # the average crystal, and its peakedness (minus its Laplacian): a dim column on the
    # shoulders of bright neighbours (S₂ between three W, 1/7 of their height in noise
    # units) is a peak of the curvature even where the bright tails leave it no maximum.
    # The nearest 36-48 translations already lift sites 6-7x out of the noise; the site
    # support below uses them all
    near = translations[: max(8, min(len(translations), 48))]
    avg = lattice_average(zmap, near, 1)
    peaked = _minus_laplacian(avg)
    h, w = zmap.shape
    rr, cc = np.nonzero(_disk_maxima(peaked, radius) & (peaked > 0) & (avg > 0))
    inside = (rr >= border) & (rr < h - border) & (cc >= border) & (cc < w - border)
    rr, cc = rr[inside], cc[inside]
    if len(rr) == 0:
        return np.zeros((0, 2)), np.zeros(0)
    sites = subpixel_peaks(peaked, rr, cc)
    support, pooled = lattice_evidence(zmap, cmap, sites, translations)
    with np.errstate(invalid="ignore"):
        ok = (support >= LATTICE_SUPPORT) & (pooled >= min_level)
    # the crystal must be there: around a site the image holds a good part of the average
    # crystal's signal (a vacancy keeps its neighbours; vacuum a lattice constant inside a
    # hole has nothing, though the support from the crystal beyond can still be high)
    here, typical = _local_means([zmap, avg], sites[ok], reach)
    # ... unless the local mean is too noisy to say: a Gaussian mean of width `reach` over
    # a unit-noise map correlated over a column (~radius) varies by ~1.4 radius/reach
    noise = 1.4 * radius / reach
    with np.errstate(invalid="ignore", divide="ignore"):
        ok[np.flatnonzero(ok)] = (here >= LOCAL_PRESENCE * typical) | (here >= typical - 3.0 * noise)
    return sites[ok], support[ok]


def _local_means(maps, points, reach):
    """Gaussian-weighted means (width ``reach``) of each map at each point, on a coarse grid."""
    f = int(max(1, reach // 2))  # a Gaussian of width `reach` is well sampled every reach/2
    out = []
    for m in maps:
        h, w = (m.shape[0] // f) * f, (m.shape[1] // f) * f
        small = np.asarray(m[:h, :w], np.float32).reshape(h // f, f, w // f, f).mean(axis=(1, 3))
        sm = ndimage.gaussian_filter(small, reach / f, mode="nearest")
        q = (np.asarray(points, float) - 0.5 * (f - 1)) / f
        out.append(ndimage.map_coordinates(sm, q.T, order=1, mode="nearest") if len(q) else np.zeros(0))
    return out


def _check_finder_params(smoothing, threshold, border, spacing, lattice, min_contrast, refine):
    if not isinstance(smoothing, str) or smoothing.lower() not in METHODS:
        raise MotifLabError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(METHODS)}.")
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise MotifLabError(f"threshold must be a number of noise units, got {threshold!r}.") from None
    if not (np.isfinite(threshold) and threshold >= 0):
        raise MotifLabError(f"threshold must be ≥ 0 (noise units), got {threshold}.")
    try:
        min_contrast = float(min_contrast)
    except (TypeError, ValueError):
        raise MotifLabError(f"min_contrast must be a fraction between 0 and 1, got {min_contrast!r}.") from None
    if not (0.0 <= min_contrast < 1.0):
        raise MotifLabError(f"min_contrast must be a fraction in [0, 1), got {min_contrast}.")
    try:
        border = int(border)
    except (TypeError, ValueError):
        raise MotifLabError(f"border must be a whole number of pixels, got {border!r}.") from None
    if border < 0:
        raise MotifLabError(f"border must be ≥ 0 px, got {border}.")
    if spacing is not None:
        try:
            spacing = float(spacing)
        except (TypeError, ValueError):
            raise MotifLabError(f"spacing must be a number of pixels (or None to measure it), got {spacing!r}.") from None
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

    Returns
    -------
    Columns

    Raises
    ------
    MotifLabError
        For a bad image or parameter, or when no column is found.
    """
    from scipy.spatial import cKDTree

    from .sites import lattice_evidence, lattice_translations

    method, threshold, border, spacing, use_lattice, min_contrast = _check_finder_params(
        smoothing, threshold, border, spacing, lattice, min_contrast, refine)
    img, offset = _validate(image, center=True)
    inverted = detect_inverted(img) if invert == "auto" else bool(invert)
    if inverted:
        img = np.negative(img)

    prof, rr_ac, ac, crop = _autocorrelation(img)
    repeat = float(spacing) if spacing is not None else _repeat_from_profile(prof)
    sigma_c = _width_from_autocorrelation(rr_ac, ac, repeat)
    # the noise band starts at 0.6/σ cycles/px; measured with the autocorrelation's σ (with
    # the cell average's, closer to the truth, SVD smoothing of a streaky image lost 7 %
    # precision: its components are chosen against this noise)
    noise = estimate_noise(img, column_sigma=sigma_c)
    h, w = img.shape
    # the crystal's translations, when it is one: the background is then read from the
    # lattice-averaged image, about eight times less noisy than the image itself
    vectors = _lattice_vectors(crop, repeat) if use_lattice else None
    T = None if vectors is None else lattice_translations(vectors[0], vectors[1])
    if T is not None and len(T) < 8:
        vectors, T = None, None
    if T is not None:
        # vectors to a few thousandths of a pixel per cell (the lattice average's far
        # copies then land on the columns, not beside them: with the spectrum's 1 %,
        # ABF at 1 count had false maxima on the columns' shoulders), and σ from the
        # average cell, before the full-size pass
        refined, sigma_cell = _crystal_scales(img, vectors, sigma_c, repeat)
        if np.all(np.abs(refined - vectors).sum(axis=1) < 0.05 * np.hypot(*vectors.T)):
            vectors = refined
            T = lattice_translations(vectors[0], vectors[1])
            if strength is None:
                sigma_c = sigma_cell

    def candidates(sigma, T):
        sm = smooth_image(img, method, strength, repeat, sigma, noise)
        # the background is smooth: read it from a grid as coarse as a column is wide
        factor = int(np.clip(round(sigma), 2, 4)) if sigma >= 1.0 else 1
        zmap, cmap, _ = _significance(sm, noise, repeat, T, factor)
        # every local maximum (over-counting on purpose, METHOD §1). The maximum filter is
        # no wider than a column: a wider one lets the tails of bright neighbours hide a
        # dim column (WS₂'s S₂ at 9 px from W, 1/5 as bright)
        r_max = max(1.0, min(repeat / 4.0, sigma))
        rr, cc = np.nonzero(_disk_maxima(sm.image, r_max))
        inside = (rr >= border) & (rr < h - border) & (cc >= border) & (cc < w - border)
        return sm, zmap, cmap, r_max, rr[inside], cc[inside], len(rr)

    sm, zmap, cmap, r_max, rr, cc, n_candidates = candidates(sigma_c, T)
    # without a lattice, the autocorrelation's width is checked against the mean profile
    # of the most significant peaks, and the smoothing redone if they disagree by over 15 %
    strongest = zmap[rr, cc] >= min(threshold, 3.0)
    if T is None and strength is None and strongest.sum() >= 20:
        sigma_peaks = _width_from_peaks(img, np.column_stack([rr, cc])[strongest], zmap[rr, cc][strongest], sigma_c)
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
    if T is not None:
        support_c, pooled_c = lattice_evidence(zmap, cmap, pts[confident], T)
        if confident.sum() >= 8 and np.nanmedian(support_c) >= LATTICE_SUPPORT and \
                _translations_occupied(pts[confident], vectors, 0.5 * r_max + 1.0):
            # the brightest columns' contrast read from the average crystal, free of the
            # noise that lifts the 90th percentile of single peaks at low dose
            ref = float(np.nanpercentile(pooled_c, 90))
        else:
            # no lattice after all: score again against the plain local background
            vectors, T = None, None
            zmap, cmap, sig = _significance(sm, noise, repeat)
            rr, cc, z, c = score(rr0, cc0)
            pts = np.column_stack([rr, cc]).astype(np.float64)
            own = z >= threshold
            confident = z >= min(threshold, 3.0)
    if T is None:
        if not own.any():
            raise no_columns()
        # "as bright as the brightest columns": the 90th percentile of the significant peaks
        ref = float(np.percentile(c[own], 90))
    accepted = own & (c >= min_contrast * ref)

    pos = pts[accepted]
    quality = z[accepted]
    # windows from the columns' own nearest-neighbour distance: never wider than the
    # repeat, never narrower than the peak separation the maximum filter allows
    nn = nearest_neighbour_distance(pos)
    nn = float(np.clip(nn, 2.0 * r_max, 1.05 * repeat)) if np.isfinite(nn) else repeat
    keep = _suppress_close(pos, quality, 0.5 * nn)
    pos, quality = pos[keep], quality[keep]
    supp = np.full(len(pos), np.nan)
    on = np.zeros(len(pos), bool)
    from_lattice = np.zeros(len(pos), bool)  # placed at the lattice site, not at a peak of its own
    site_of = np.full((len(pos), 2), np.nan)  # the lattice site a column sits on
    matched = np.zeros(len(pts), bool)  # candidates that turned out to be a lattice site

    if T is not None:
        sites, site_support = _lattice_sites(zmap, cmap, T, r_max, border, min_contrast * ref, 0.6 * repeat)
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
        nn_all = nearest_neighbour_distance(pos)
        if np.isfinite(nn_all):
            nn = float(np.clip(nn_all, 2.0 * r_max, 1.05 * repeat))

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
    # the typical background level, for the noise reported: every second pixel is plenty
    bg_level = float(np.median(_local_background_r(sm.image[::2, ::2], max(1, int(round(0.625 * repeat))))))
    return Columns(
        positions=refined,
        intensity=intensity.astype(np.float32),
        prominence=quality.astype(np.float32),
        spacing=nn,
        inverted=inverted,
        noise=float(sm.noise_std(noise, bg_level)),
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
