"""Peaks of a smoothed image: local maxima, the local background, and sub-pixel positions.

The building blocks of column finding (:func:`motiflab.columns.find_columns`):

* :func:`disk_maxima`: every pixel that is the maximum of a disc around it
  (the candidates, METHOD §1);
* :func:`local_background`: the minimum over a window reaching past the
  nearest neighbours, the dark gap between columns;
* :func:`find_peaks`: both together with a significance threshold, the
  stand-alone peak finder;
* :func:`suppress_close`: one peak per plateau or split maximum;
* :func:`refine_positions`: sub-pixel positions by a Gaussian fit or the
  centre of mass;
* :func:`minus_laplacian`: the peakedness of an image, whose maxima show dim
  columns on the shoulders of bright ones.

The filters are NumPy: minima and maxima over runs of pixels by doubling
(:func:`_runs`), exact, so equal bit for bit to ``scipy.ndimage``'s filters of
mode ``"nearest"`` and faster than them, in blocks of rows on the threads of
:mod:`motiflab._threads`.  The sub-pixel fits are numba kernels, in
:mod:`motiflab._columns_kernels`.
"""
from __future__ import annotations

import numpy as np

from . import _columns_kernels as _k
from ._threads import for_ranges
from .errors import MotifLabError
from .noise import estimate_noise

__all__ = ["disk_footprint", "disk_maxima", "local_background", "local_minimum", "find_peaks", "suppress_close",
           "refine_positions", "minus_laplacian"]


def disk_footprint(radius: float) -> np.ndarray:
    """Boolean footprint of the pixels within ``radius`` of the centre (side 2⌊radius⌋ + 1)."""
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
    from ._validation import check_image_array, check_int, check_number

    img = check_image_array(smoothed, "smoothed")
    spacing = check_number(spacing, "spacing", low=0.0, low_open=True, high=4.0 * max(img.shape),
                           hint="Give the column spacing in px.")
    threshold = check_number(threshold, "threshold")
    border = check_int(border, "border", low=0)
    if min_distance is not None:
        min_distance = check_number(min_distance, "min_distance", low=0.0, low_open=True, high=float(max(img.shape)))
    if min_distance is None:
        min_distance = max(1.0, spacing / 4.0)
    is_max = disk_maxima(img, min_distance)
    local_bg = local_background(img, spacing)
    if noise is None:
        noise = float(np.sqrt(estimate_noise(img).variance(float(np.median(local_bg)))))
    noise = max(float(noise), 1e-12 * float(np.abs(img).max()), 1e-30)
    rr, cc = np.nonzero(is_max)
    n_candidates = len(rr)
    prom = (img[rr, cc] - local_bg[rr, cc]) / noise
    keep = prom > threshold
    h, w = img.shape
    if border > 0:
        keep &= (rr >= border) & (rr < h - border) & (cc >= border) & (cc < w - border)
    rr, cc, prom = rr[keep], cc[keep], prom[keep]
    peaks = np.column_stack([rr, cc]).astype(np.int64)
    keep = suppress_close(peaks, prom, 0.5 * spacing)
    return peaks[keep], prom[keep].astype(np.float32), n_candidates


def local_background(img, spacing):
    """Minimum over a window reaching past the nearest neighbours: the dark gap between columns."""
    return local_minimum(img, int(round(spacing * 1.25)))


def local_minimum(img, r):
    """Minimum over the (2r+1)² window around every pixel (edges repeated), float32.

    Equal to ``scipy.ndimage.minimum_filter(img, 2r+1, mode="nearest")``
    (a minimum is exact, so bit for bit): along the rows, then down the
    columns (:func:`_runs`), in blocks of rows on the threads (2 ms for
    1024², r = 11, on two threads; ndimage's filter 26 ms).  A NaN is left
    out of the windows.
    """
    img = np.ascontiguousarray(img, dtype=np.float32)
    r = int(r)
    tmp = np.empty_like(img)
    out = np.empty_like(img)
    if img.size:
        for_ranges(_min_along_rows, img.shape[0], img, r, tmp, min_size=16)
        for_ranges(_min_down_columns, img.shape[0], tmp, r, out, min_size=16)
    return out


def _block_rows(width, r=0):
    """Rows per block of the filters: ~256 kB of float32 per block (stays in cache), at least 2r."""
    return max(8, 2 * r, (1 << 16) // max(1, width))


def _runs(p, length, op, axis):
    """``op`` (``np.fmin``/``np.fmax``) over every run of ``length`` consecutive elements of ``p`` along ``axis``.

    Doubling: runs of 2, 4, … w ≤ ``length`` elements, each from two of half
    the length, then two overlapping runs of w cover one of ``length``:
    log2(length) + 1 passes over contiguous memory, whatever the length.
    The result has ``p.shape[axis] - length + 1`` elements along ``axis``.
    """
    def cut(a, lo, hi):
        return a[lo:hi] if axis == 0 else a[:, lo:hi]

    n = p.shape[axis]
    w = 1
    while 2 * w <= length:
        p = op(cut(p, 0, n - w), cut(p, w, n))
        n -= w
        w *= 2
    m = n - (length - w)
    return op(cut(p, 0, m), cut(p, length - w, n))


def _min_along_rows(start, stop, src, r, out):
    """Rows ``start..stop-1`` of ``out`` = minimum of ``src`` over 2r+1 columns (edges repeated)."""
    w = src.shape[1]
    step = _block_rows(w + 2 * r)
    for lo in range(start, stop, step):
        hi = min(stop, lo + step)
        p = np.empty((hi - lo, w + 2 * r), np.float32)
        p[:, r : r + w] = src[lo:hi]
        p[:, :r] = src[lo:hi, :1]
        p[:, r + w :] = src[lo:hi, w - 1 :]
        out[lo:hi] = _runs(p, 2 * r + 1, np.fmin, 1)


def _min_down_columns(start, stop, src, r, out):
    """Rows ``start..stop-1`` of ``out`` = minimum of ``src`` over 2r+1 rows (edges repeated)."""
    h, w = src.shape
    step = _block_rows(w, r)
    for lo in range(start, stop, step):
        hi = min(stop, lo + step)
        out[lo:hi] = _runs(src[np.clip(np.arange(lo - r, hi + r), 0, h - 1)], 2 * r + 1, np.fmin, 0)


def disk_maxima(img, radius):
    """``img == maximum_filter(img, footprint=disk_footprint(radius), mode="nearest")``, as a bool mask.

    The disc's maximum is the maximum of its rows, each a run of pixels along
    an image row (:func:`_runs`, shared by the rows of equal length); in blocks
    of rows on the threads.  A NaN is no pixel's neighbour and a maximum itself.
    """
    fp = disk_footprint(radius)
    out = np.ones(np.shape(img), np.bool_)
    if out.size:
        for_ranges(_disk_max_rows, out.shape[0], np.ascontiguousarray(img, dtype=np.float32),
                   fp.sum(axis=1) // 2, out, min_size=16)
    return out


def _disk_max_rows(start, stop, img, half, out):
    """Rows ``start..stop-1`` of :func:`disk_maxima`; ``half[k]`` is the half-width of the disc's row ``k``."""
    h, w = img.shape
    r = len(half) // 2
    a = int(half.max())
    step = _block_rows(w + 2 * a, r)
    for lo in range(start, stop, step):
        hi = min(stop, lo + step)
        x = img[np.clip(np.arange(lo - r, hi + r), 0, h - 1)]  # block rows with r above and below
        p = np.empty((len(x), w + 2 * a), np.float32)
        p[:, a : a + w] = x
        p[:, :a] = x[:, :1]
        p[:, a + w :] = x[:, w - 1 :]
        row_max = {int(b): _runs(p[:, a - b : a + b + w], 2 * b + 1, np.fmax, 1) for b in set(half.tolist())}
        m = row_max[int(half[0])][: hi - lo].copy()
        for k in range(1, len(half)):
            np.fmax(m, row_max[int(half[k])][k : k + hi - lo], out=m)
        np.greater(m, x[r : r + hi - lo], out=out[lo:hi])
        np.logical_not(out[lo:hi], out=out[lo:hi])


def suppress_close(peaks, prom, radius):
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
    from ._validation import check_image_array, check_int, check_number, check_positions

    pos = np.ascontiguousarray(check_positions(peaks, "peaks", min_n=0), dtype=np.float64)
    if method in (None, "none") or len(pos) == 0:
        return pos
    if method not in ("com", "gaussian"):
        raise MotifLabError(f"unknown refinement {method!r}; choose 'gaussian', 'com' or 'none'.")
    img = check_image_array(image, "image")
    spacing = check_number(spacing, "spacing", low=0.0, low_open=True, high=4.0 * max(img.shape),
                           hint="Give the column spacing in px.")
    n_iter = check_int(n_iter, "n_iter", low=0, high=10_000)
    if sigma is not None:
        sigma = check_number(sigma, "sigma", low=0.0, low_open=True, high=float(max(img.shape)))
    if smoothed is not None and np.shape(smoothed) != img.shape:
        raise MotifLabError(f"smoothed has shape {np.shape(smoothed)} but image has {img.shape}; they must match.")
    sm = img if smoothed is None else np.ascontiguousarray(smoothed, dtype=np.float32)
    # stay well inside half the nearest-neighbour distance so the bright tails of
    # neighbours do not pull dim columns towards them
    radius = float(max(1.5, spacing / 3.5))

    def com(p):
        local_bg = local_background(sm, spacing)
        ip = np.clip(np.round(p).astype(np.int64), 0, np.array(sm.shape) - 1)
        bg = local_bg[ip[:, 0], ip[:, 1]].astype(np.float64)
        out = p.copy()
        for_ranges(_k.com_refine, len(p), sm, p, radius, int(n_iter), bg, out, min_size=64)
        return out

    if method == "com":
        return com(pos)
    sigma = float(sigma) if sigma is not None else max(0.7, spacing / 5.0)
    fit_radius = float(min(max(1.5, 2.0 * sigma), 0.5 * spacing))
    out = np.empty_like(pos)
    ok = np.empty(len(pos), np.bool_)
    for_ranges(_k.gauss2d_fit, len(pos), img, pos, sigma, fit_radius, int(n_iter), out, ok, min_size=64)
    if not ok.all():
        out[~ok] = com(pos[~ok])
    return out


def minus_laplacian(img):
    """−∇² of ``img`` after a 3×3 binomial blur (a Laplacian of Gaussian of width ~0.7 px), edges zero (float32).

    The blur's first and last rows and columns are left unblurred across the
    edge; in blocks of rows on the threads.
    """
    img = np.ascontiguousarray(img, np.float32)
    out = np.zeros_like(img)
    if img.ndim == 2 and min(img.shape) >= 3:
        for_ranges(_minus_laplacian_rows, img.shape[0], img, out, min_size=16)
    return out


def _minus_laplacian_rows(start, stop, img, out):
    """Rows ``start..stop-1`` of :func:`minus_laplacian` (its first and last rows stay zero)."""
    h, w = img.shape
    q, half = np.float32(0.25), np.float32(0.5)
    step = _block_rows(w)
    for lo in range(max(start, 1), min(stop, h - 1), step):
        hi = min(stop, h - 1, lo + step)
        # rows lo-1..hi blurred down the columns (the image's first and last rows as they are),
        # then along the rows; float32 in the order (a/4 + b/2) + c/4 throughout
        b = img[lo - 1 : hi + 1].copy()
        y0, y1 = max(lo - 1, 1), min(hi, h - 2) + 1  # the rows blurred, y0..y1-1
        t = b[y0 - lo + 1 : y1 - lo + 1]
        np.multiply(img[y0 - 1 : y1 - 1], q, out=t)
        t += img[y0:y1] * half
        t += img[y0 + 1 : y1 + 1] * q
        c = b.copy()
        t = c[:, 1:-1]
        np.multiply(b[:, :-2], q, out=t)
        t += b[:, 1:-1] * half
        t += b[:, 2:] * q
        t = out[lo:hi, 1:-1]
        np.multiply(c[1:-1, 1:-1], np.float32(4.0), out=t)
        t -= c[:-2, 1:-1]
        t -= c[2:, 1:-1]
        t -= c[1:-1, :-2]
        t -= c[1:-1, 2:]
