"""The noise of a micrograph, measured from the micrograph itself.

Column finding needs to know how large a bump noise alone makes, at the
brightness of the place where a bump is found. Two things set that, and both
are measured here rather than assumed:

* **How the noise variance grows with the signal level.** Shot noise (Poisson
  counts, down to a fraction of a count per pixel) has a variance equal to the
  mean; a scintillator/PMT detector adds an offset and a gain; read-out noise
  adds a constant. All of these are ``variance = slope * level + intercept``
  in the image's own units. The model is fitted to the per-pixel residuals of
  a local quadratic fit (which removes the columns' smooth shape), binned by the
  local level. Means of squares, not medians, so that images of a few counts
  per pixel, where most residuals are exactly 0, are measured right.
* **How the noise is correlated.** Scanned detectors are slow: the noise of a
  line is correlated along the fast-scan direction, so a smoothing filter
  removes less of it than white-noise arithmetic predicts (on a real ADF image,
  the noise power at low fast-scan frequencies is 2.5x that at high ones). The
  noise power spectrum is measured in the band of the spectrum that holds no
  signal (frequencies beyond what the probe transmits), as a separable profile
  along each scan axis.

:meth:`NoiseModel.filtered_std` combines the two: the standard deviation of any
linear smoothing of the image, at a given level.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from .errors import MotifLabError

__all__ = ["NoiseModel", "estimate_noise"]

#: radius (px) of the ring the local level is measured on, around the 5x5 fit window
_RING = 4


def _ring_kernel():
    """Unit-sum weights on the pixels 3-4 px from the centre (outside a 5x5 window)."""
    yy, xx = np.mgrid[-_RING:_RING + 1, -_RING:_RING + 1]
    ring = ((np.abs(yy) > 2) | (np.abs(xx) > 2)) & (yy**2 + xx**2 <= _RING**2 + 0.5)
    return ring / ring.sum()


@dataclass(frozen=True)
class NoiseModel:
    """Per-pixel noise of an image as a function of the local signal level.

    Attributes
    ----------
    slope, intercept : float
        ``variance(level) = slope * level + intercept`` (image units squared;
        ``slope`` is 1 for raw Poisson counts, the gain for scaled counts).
    floor : float
        Smallest variance the model returns: the variance at the darkest level
        measured (the line is not extrapolated below it, where it may cross
        zero), at least a thousandth of the median measured one.
    fast_profile, slow_profile : ndarray
        Relative noise power along the column (fast-scan) and row (slow-scan)
        frequency axes, sampled at ``numpy.fft.rfftfreq`` / ``fftfreq`` of
        ``profile_size``; 1 everywhere for white noise.
    profile_size : int
        The length the profiles are sampled for.
    """

    slope: float
    intercept: float
    floor: float
    fast_profile: np.ndarray = field(default_factory=lambda: np.ones(1))
    slow_profile: np.ndarray = field(default_factory=lambda: np.ones(1))
    profile_size: int = 1

    def variance(self, level):
        """Per-pixel noise variance at ``level`` (array or scalar, image units).

        float32 arrays stay float32 (maps of a whole image); anything else is float64.
        """
        lv = np.asarray(level)
        if lv.dtype == np.float32:
            v = np.float32(self.slope) * lv + np.float32(self.intercept)
            return np.maximum(v, np.float32(self.floor))
        v = self.slope * lv.astype(np.float64) + self.intercept
        return np.maximum(v, self.floor)

    @property
    def white(self) -> bool:
        """True when no correlation was measured (or there was no band to measure it in)."""
        return self.profile_size <= 1

    def correlation_gain(self, transfer) -> float:
        """How much more noise variance a filter passes than white-noise arithmetic predicts.

        Parameters
        ----------
        transfer : callable or ndarray
            The filter's frequency response (magnitude): ``transfer(fy, fx)``
            on a grid of frequencies in cycles per pixel, or an array already
            sampled on the ``numpy.fft.rfft2`` grid of a ``profile_size``
            square.

        Returns
        -------
        float
            ``Σ |K(f)|² s(f) / Σ |K(f)|²`` with ``s`` the measured relative noise
            spectrum: 1 for white noise, >1 when the noise is correlated at the
            frequencies the filter keeps.
        """
        if self.white:
            return 1.0
        n = self.profile_size
        if callable(transfer):
            k = transfer(sfft.fftfreq(n)[:, None], sfft.rfftfreq(n)[None, :])
        else:
            k = transfer
        k2 = np.asarray(k, dtype=np.float64) ** 2
        if k2.shape != (n, n // 2 + 1):
            raise MotifLabError(f"transfer sampled on a {k2.shape} grid; the noise model needs ({n}, {n // 2 + 1}).")
        s = self.slow_profile[:, None] * self.fast_profile[None, :]
        den = float(k2.sum())
        return float((k2 * s).sum() / den) if den > 0 else 1.0

    def in_frame(self, scale: float = 1.0, offset: float = 0.0) -> "NoiseModel":
        """The same noise described for the image ``x = scale * x' + offset`` in terms of ``x'``.

        :func:`motiflab.columns.find_columns` measures the noise on the image
        with its median removed (``offset``) and dark columns turned bright
        (``scale = -1``); this gives the model back in the units of the image
        it was handed.
        """
        return NoiseModel(slope=self.slope * scale, intercept=self.intercept + self.slope * offset,
                          floor=self.floor, fast_profile=self.fast_profile, slow_profile=self.slow_profile,
                          profile_size=self.profile_size)

    def stabilize(self, image) -> np.ndarray:
        """The image in units of its own noise (a generalised Anscombe transform).

        ``y = (2 / a) sqrt(a x + b + 3a²/8)`` for ``variance = a x + b``: every
        level then has noise of about 1, so a difference between two patches
        means the same whether it sits on a bright column or in a dim one
        (with shot noise a bright column is noisier in counts). With no level
        dependence (``a ≈ 0``) it is ``x / sqrt(b)``. Returns float32.
        """
        x = np.asarray(image)
        a, b, f = self.slope, self.intercept, self.floor
        med = float(np.median(x[:: max(1, x.shape[0] // 256)])) if x.size else 0.0
        if not (a > 0 and a * med >= 0.1 * float(self.variance(med))):
            # read noise only (the level sets under a tenth of the variance): a rescaling
            return (np.asarray(x, np.float64) / np.sqrt(float(self.variance(med)))).astype(np.float32)
        # y = ∫ dx / sqrt(variance): a square root where the line is above the floor
        # (Anscombe's 3/8 included), a straight continuation with the floor's slope below it
        # (the darkest places, where the fitted line would cross zero). float32 keeps seven
        # digits of a x + b, ~1e-6 of either term even on a 3e6-count detector offset.
        v = np.asarray(x, np.float32) * np.float32(a) + np.float32(b + 0.375 * a * a)
        root = np.sqrt(np.maximum(v, np.float32(f)))
        below = v < f
        y = root * np.float32(2.0 / a)
        if below.any():
            y[below] += (v[below] - np.float32(f)) / np.float32(a * np.sqrt(f))
        return y

    def filtered_std(self, level, kernel_l2: float, gain: float = 1.0):
        """Noise standard deviation after a linear filter, at ``level``.

        Parameters
        ----------
        level : array_like
            Local signal level (image units) where the noise is wanted.
        kernel_l2 : float
            Sum of the squared filter weights (``1 / (4 pi sigma²)`` for a
            unit-sum Gaussian of width ``sigma``).
        gain : float
            :meth:`correlation_gain` of the filter.
        """
        v = self.variance(level)
        return np.sqrt(v * v.dtype.type(float(kernel_l2) * float(gain))) if isinstance(v, np.ndarray) else \
            float(np.sqrt(v * float(kernel_l2) * float(gain)))


def _quadratic_fit_kernel(half: int = 2):
    """Centre weights of a least-squares quadratic surface fit on a (2·half+1)² window."""
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    y, x = yy.ravel().astype(float), xx.ravel().astype(float)
    A = np.column_stack([np.ones_like(x), y, x, y * y, x * y, x * x])
    # row of the hat matrix that gives the fitted value at the centre
    h = np.linalg.solve(A.T @ A, A.T)[0]
    return h.reshape(yy.shape)


def _counted(x) -> bool:
    """Whether ``x`` looks like raw electron counts: non-negative integers, the darkest near 0."""
    sample = np.asarray(x).ravel()[:: max(1, x.size // 20000)]
    if sample.size == 0 or sample.min() < 0 or not np.all(sample == np.round(sample)):
        return False
    return float(np.quantile(sample, 0.01)) <= 0.25 * float(np.median(sample))


def _level_variance_fit(level, sq, weights=None):
    """Weighted least-squares line ``sq ≈ a·level + b`` over bins.

    The slope may be negative: in an inverted (ABF) image the darkest places
    of the recorded image, which have the least shot noise, are the brightest.
    """
    w = np.ones_like(level) if weights is None else weights
    if np.ptp(level) <= 0:
        return 0.0, float(np.average(sq, weights=w))
    A = np.column_stack([level, np.ones_like(level)]) * np.sqrt(w)[:, None]
    (a, b), *_ = np.linalg.lstsq(A, sq * np.sqrt(w), rcond=None)
    return float(a), float(b)


def _noise_profiles(x: np.ndarray, f_cut: float, white_level: float, n_bins: int = 48):
    """Relative noise power along the fast (column) and slow (row) frequency axes.

    Measured in the part of the spectrum above ``f_cut`` along the *other*
    axis, where the image holds no signal; each profile is normalised to its
    mean above ``f_cut``. Returns None when there is no such band, or when it
    holds more power than the measured pixel noise explains (a nearly
    noise-free image, whose spectrum there is signal, not noise).
    """
    h, w = x.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    p = np.abs(sfft.rfft2((x - x.mean()) * win, workers=-1)) ** 2 / float((win**2).sum())
    fy = np.abs(sfft.fftfreq(h))
    fx = sfft.rfftfreq(w)
    quiet_rows = fy >= f_cut
    quiet_cols = fx >= f_cut
    if quiet_rows.sum() < 8 or quiet_cols.sum() < 8:
        return None
    corner = float(np.median(p[np.ix_(quiet_rows, quiet_cols)]))
    # white noise of variance s² has a flat periodogram of mean s² (median ln2·s²)
    if not (white_level > 0) or corner > 3.0 * white_level:
        return None
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])

    def profile(power_2d, freqs):
        # median over the quiet band of the other axis, then over neighbouring bins:
        # robust to the odd Bragg spot that reaches into the band
        med = np.median(power_2d, axis=0)
        idx = np.clip(np.digitize(freqs, edges) - 1, 0, n_bins - 1)
        prof = np.array([np.median(med[idx == i]) if np.any(idx == i) else np.nan for i in range(n_bins)])
        good = np.isfinite(prof)
        prof = ndimage.median_filter(np.interp(centres, centres[good], prof[good]), size=5, mode="nearest")
        ref = float(np.mean(prof[centres >= f_cut]))
        return np.clip(prof / ref, 0.25, 8.0) if ref > 0 else np.ones_like(prof)

    fast = profile(p[quiet_rows, :], fx)
    slow = profile(p[:, quiet_cols].T, fy)
    return centres, fast, slow


def estimate_noise(image, column_sigma: float | None = None, max_pixels: int = 768 * 768) -> NoiseModel:
    """Measure the noise of a micrograph: its level dependence and its correlation.

    Parameters
    ----------
    image : array_like
        2-D image in its own units (counts, detector units...).
    column_sigma : float, optional
        Gaussian width (px) of an atom column. Sets the band of the spectrum
        that carries no signal (above ``0.6 / column_sigma`` cycles/px), where
        the correlation of the noise is measured. Without it, or when that band
        is too narrow (columns under ~1.4 px wide), the noise is taken as white.
    max_pixels : int
        Larger images are measured on a central crop of this many pixels.

    Returns
    -------
    NoiseModel

    Raises
    ------
    MotifLabError
        If the image is not a finite 2-D array of at least 16×16 pixels.
    """
    x = np.asarray(image)
    if x.ndim != 2 or min(x.shape) < 16:
        raise MotifLabError(f"estimate_noise needs a 2-D image of at least 16×16 pixels, got shape {x.shape}.")
    h, w = x.shape
    if h * w > max_pixels:
        side = int(np.sqrt(max_pixels))
        ch, cw = min(h, side), min(w, max_pixels // min(h, side))
        r0, c0 = (h - ch) // 2, (w - cw) // 2
        x = x[r0:r0 + ch, c0:c0 + cw]
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise MotifLabError("estimate_noise: the image contains NaN or infinite pixels.")
    shift = float(np.median(x))
    x = x - shift  # keeps float precision for images with a large detector offset

    # residual of a local quadratic fit: the columns' smooth shape removed, the noise kept
    hk = _quadratic_fit_kernel(2)
    fitted = ndimage.correlate(x, hk, mode="reflect")
    r2 = ((x - fitted) ** 2 / (1.0 - hk[2, 2]))[_RING:-_RING, _RING:-_RING]
    # The pixels are binned by their surroundings' level, measured on a ring that leaves
    # out the 5x5 window of the fit, so that a pixel's own noise cannot sort it into a
    # bin; each bin's variance is then set against the mean of the raw pixel values in
    # it (unbiased for the true level). Binning by a level measured from the same noisy
    # pixels would sort noise into the bins and flatten the fitted line (at ~1 count per
    # column peak the slope came out 30 % low and the darkest bins showed no noise).
    ring = _ring_kernel()
    around = ndimage.correlate(x, ring, mode="reflect")[_RING:-_RING, _RING:-_RING]
    xv = x[_RING:-_RING, _RING:-_RING].ravel()
    lv, rv = around.ravel(), r2.ravel()
    # hot pixels and cosmic-ray spikes must not set the noise of a whole bin
    rv = np.minimum(rv, np.quantile(rv, 0.9995))
    # bins from the darkest places to well below the column peaks, where the curvature
    # of the columns (left over by the quadratic fit at high dose) would bias the residual
    qs = np.unique(np.quantile(lv, np.linspace(0.02, 0.85, 25)))
    bl = np.zeros(0)
    if len(qs) >= 3:
        idx = np.digitize(lv, qs) - 1
        ok = (idx >= 0) & (idx < len(qs) - 1)
        counts = np.bincount(idx[ok], minlength=len(qs) - 1)
        sums_v = np.bincount(idx[ok], rv[ok], minlength=len(qs) - 1)
        sums_x = np.bincount(idx[ok], xv[ok], minlength=len(qs) - 1)
        use = counts >= min(50, max(5, int(ok.sum()) // 100))
        bl = sums_x[use] / counts[use]
        bins_var = sums_v[use] / counts[use]
    if len(bl) >= 2:
        wts = counts[use] / (bins_var + bins_var.mean()) ** 2
        slope, intercept = _level_variance_fit(bl, bins_var, wts)
    else:  # too few pixels or levels to see a level dependence
        bins_var = np.array([float(np.mean(rv))])
        slope, intercept = 0.0, float(bins_var[0])
    intercept -= slope * shift  # back to the image's own level scale
    # below the darkest measured level the variance is held at its value there: a detector
    # with an offset and read noise can have a fitted line that crosses zero above the
    # darkest pixels (a pore, vacuum). Counted electrons are the exception: integer counts
    # near zero keep the line down to zero (0.02 counts, variance 0.02) where binning by
    # level cannot resolve the darkest places at a fraction of a count per pixel
    positive = bins_var[bins_var > 0]
    floor = 1e-3 * float(np.median(positive)) if positive.size else 0.0
    if len(bl) >= 2 and not _counted(x + shift):
        floor = max(floor, slope * float(np.min(bl)) + intercept + slope * shift)
    if floor <= 0:
        # a noise-free (simulated) image: a tiny floor keeps every ratio finite
        span = float(np.ptp(x)) or 1.0
        floor = (1e-6 * span) ** 2

    if column_sigma is not None and np.isfinite(column_sigma) and column_sigma > 0:
        mean_var = float(np.mean(np.maximum(slope * (x + shift) + intercept, floor)))
        prof = _noise_profiles(x, f_cut=min(0.5, 0.6 / float(column_sigma)), white_level=mean_var)
    else:
        prof = None
    if prof is None:
        return NoiseModel(slope=slope, intercept=intercept, floor=floor)
    centres, fast, slow = prof
    n = 256
    fast_s = np.interp(sfft.rfftfreq(n), centres, fast)
    slow_s = np.interp(np.abs(sfft.fftfreq(n)), centres, slow)
    return NoiseModel(slope=slope, intercept=intercept, floor=floor, fast_profile=fast_s,
                      slow_profile=slow_s, profile_size=n)
