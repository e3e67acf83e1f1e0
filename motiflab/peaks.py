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

The numba kernels behind them live in :mod:`motiflab._columns_kernels`.
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
    """Minimum over the (2r+1)² window around every pixel (edges repeated), float32."""
    img = np.ascontiguousarray(img, dtype=np.float32)
    tmp = np.empty_like(img)
    out = np.empty_like(img)
    for_ranges(_k.min_rows, img.shape[0], img, int(r), tmp, min_size=16)
    for_ranges(_k.min_cols, -(-img.shape[1] // _k.MIN_COLS_CHUNK), tmp, int(r), out)
    return out

def disk_maxima(img, radius):
    """``img == maximum_filter(img, footprint=disk_footprint(radius), mode="nearest")``, as a bool mask."""
    fp = disk_footprint(radius)
    c = fp.shape[0] // 2
    dy, dx = np.nonzero(fp)
    dy, dx = dy - c, dx - c
    # the 4-neighbours first: they reject almost every pixel after one or two reads
    order = np.lexsort((np.abs(dx) + np.abs(dy) > 1, dy * dy + dx * dx))
    dy, dx = dy[order], dx[order]
    keep = (dy != 0) | (dx != 0)
    out = np.empty(img.shape, np.bool_)
    for_ranges(_k.disk_max, img.shape[0], np.ascontiguousarray(img, dtype=np.float32), dy[keep].astype(np.int64),
               dx[keep].astype(np.int64), out, min_size=16)
    return out


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
    """−∇² of ``img`` after a 3×3 binomial blur (a Laplacian of Gaussian of width ~0.7 px), edges zero (float32)."""
    img = np.ascontiguousarray(img, np.float32)
    out = np.zeros_like(img)
    if img.ndim == 2 and min(img.shape) >= 3:
        for_ranges(_k.minus_laplacian, img.shape[0], img, out, min_size=16)
    return out
