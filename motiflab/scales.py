"""The scales of a micrograph: lattice repeat, column width and lattice vectors.

* From the whole image (:func:`image_scales`): the repeat is the first
  maximum of the radially averaged autocorrelation (:func:`estimate_spacing`)
  and the column width σ the width of its central peak
  (:func:`estimate_column_width`). Every pixel contributes, so both hold at a
  fraction of a count per pixel.
* The lattice vectors from the power spectrum of the same crop
  (:func:`lattice_vectors_from_spectrum`).
* Refined before the full-size pass: on a crystal, the vectors from the
  displacements between columns and σ from the average unit cell
  (:func:`crystal_scales`); without one, σ from the mean profile of the most
  significant peaks (:func:`width_from_peaks`).
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from .errors import MotifLabError
from .image_checks import validate_image
from .peaks import disk_maxima
from .sites import cell_average, refine_vectors, subpixel_peaks

__all__ = ["estimate_spacing", "estimate_column_width", "image_scales", "lattice_vectors_from_spectrum",
           "crystal_scales", "width_from_peaks"]

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

def image_scales(img, spacing=None):
    """Lattice repeat and column width σ (px), both from one autocorrelation of ``img``.

    Parameters
    ----------
    img : ndarray
        A validated 2-D image (:func:`motiflab.image_checks.validate_image`).
    spacing : float, optional
        The repeat, when the caller knows it; σ is then fitted inside a third of it.

    Returns
    -------
    repeat : float
    sigma : float
    crop : ndarray
        The central crop (at most 768²) the autocorrelation was measured on;
        :func:`lattice_vectors_from_spectrum` reads the lattice from the same crop.
    """
    prof, rr, ac, crop = _autocorrelation(img)
    repeat = float(spacing) if spacing is not None else _repeat_from_profile(prof)
    return repeat, _width_from_autocorrelation(rr, ac, repeat), crop


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
    from ._validation import check_number

    img = validate_image(image)
    if spacing is not None:
        spacing = check_number(spacing, "spacing", low=0.0, low_open=True, high=float(max(img.shape)))
    return image_scales(img, spacing)[1]


def lattice_vectors_from_spectrum(crop, repeat=None):
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



def width_from_peaks(img, peaks, z, sigma0, n_max=400):
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


def crystal_scales(img, vectors, sigma0, repeat):
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

    h, w = img.shape
    area = abs(vectors[0][0] * vectors[1][1] - vectors[0][1] * vectors[1][0])
    s = int(np.clip(np.sqrt(1000.0 * area), 512, 1024))
    r0, c0 = max(0, (h - s) // 2), max(0, (w - s) // 2)
    crop = np.asarray(img[r0:r0 + s, c0:c0 + s], np.float32)
    sm = ndimage.gaussian_filter(crop, sigma0)
    rr, cc = np.nonzero(disk_maxima(sm, max(1.0, min(repeat / 4.0, sigma0))))
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

