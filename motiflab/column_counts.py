"""The counts at a motif's atom columns, and whether they fall into two groups.

Within a motif, each atom column its class average shows (:func:`column_sites`:
the centre and the neighbours) gives every member a count, a matched filter at
that column (:func:`column_counts`); the first principal component of all of
them joins as one more count (:func:`principal_combination`). Counts that
depart from one Gaussian (:func:`looks_mixed`) are fitted with two 1-D
mixtures: two free Gaussians (:func:`fit_two_gaussians`) and a small group
beyond a robust main body (:func:`fit_tail_group`), each scored by how much it
beats one Gaussian in BIC. :func:`motiflab.separation.split_hidden` decides
with these which motifs hide two.

The EM iterations run in numba (:mod:`motiflab._separation_kernels`).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import _separation_kernels as _k

__all__ = ["column_sites", "column_counts", "site_counts", "principal_combination", "looks_mixed", "count_histogram",
           "fit_two_gaussians", "fit_tail_group"]


def column_sites(mean_patch, spacing, sigma):
    """Atom columns a class average shows: its centre and its peaks within 1.2 spacings.

    Parameters
    ----------
    mean_patch : ndarray (P, P)
    spacing : float
        Nearest-neighbour distance in px.
    sigma : float
        Gaussian width of a column in px.

    Returns
    -------
    ndarray (K, 2)
        (row, col) in patch pixels; row 0 is the centre.
    """
    P = mean_patch.shape[0]
    c = (P - 1) / 2.0
    sm = ndimage.gaussian_filter(np.asarray(mean_patch, np.float64), max(0.5, 0.5 * sigma))
    size = max(3, int(round(0.6 * spacing)) | 1)
    yy, xx = np.mgrid[0:P, 0:P]
    r = np.hypot(yy - c, xx - c)
    peak = (sm == ndimage.maximum_filter(sm, size=size, mode="nearest")) & (r <= 1.2 * spacing) & (r > 0.4 * spacing)
    # only peaks that stand out: above the patch's median level
    peak &= sm > np.median(sm)
    pts = np.argwhere(peak).astype(np.float64)
    return np.vstack([[c, c], pts])


# --------------------------------------------------------------------------- 1-D mixtures
# The counts of one column over a motif's members are binned (256 bins) and the
# mixtures fitted to the histogram: the cost no longer grows with the number of
# columns (a motif of 17 000 columns took 35 ms per fit unbinned).

_BINS = 256


def count_histogram(v):
    """Bin centres and counts (empty bins dropped) of ``v`` in 256 bins; None when ``v`` is constant."""
    lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        return None
    counts, edges = np.histogram(v, bins=_BINS, range=(lo, hi))
    keep = counts > 0
    return 0.5 * (edges[1:] + edges[:-1])[keep], counts[keep].astype(np.float64)


def _log_normal(x, mu, var):
    return -0.5 * np.log(2 * np.pi * var) - 0.5 * (x - mu) ** 2 / var


def fit_two_gaussians(v, n_iter=60, h=None, min_gain=-np.inf):
    """Two free Gaussians, by EM from a low-tail and a high-tail start.

    ``h``: :func:`count_histogram` of ``v``, when the caller has it. Returns (BIC gain
    over one Gaussian, mask of the smaller group) or (-inf, None); the mask is
    None for a gain below ``min_gain`` (not worth a pass over ``v``).
    """
    n = len(v)
    sd0 = float(v.std())
    h = count_histogram(v) if h is None else h
    if h is None or not sd0 > 0:
        return -np.inf, None
    x, c = h
    ll1 = -0.5 * n * (np.log(2 * np.pi * sd0**2) + 1.0)
    best = (-np.inf, None)
    for q, cut in zip((0.1, 0.9), np.quantile(v, (0.1, 0.9))):
        r1 = ((x > cut) if q < 0.5 else (x < cut)).astype(np.float64)
        ok, lw0, mu0, var0, lw1, mu1, var1 = _k.em_free(x, c, r1, (1e-3 * sd0) ** 2, n_iter, 1e-4)
        if not ok:
            continue
        gain = 2.0 * (_k.mixture_ll(x, c, lw0, mu0, var0, lw1, mu1, var1) - ll1) - 3.0 * np.log(n)
        if gain > best[0]:
            if gain < min_gain:
                best = (gain, None)
                continue
            p0, p1 = lw0 + _log_normal(v, mu0, var0), lw1 + _log_normal(v, mu1, var1)
            best = (gain, p1 > p0 if lw1 < lw0 else p0 > p1)
    return best


def fit_tail_group(v, n_iter=60, h=None, min_gain=-np.inf):
    """A small group beyond the main body of ``v``: the main body fixed at the median and MAD.

    Real images give the counts of one motif a heavier tail than noise alone
    (thickness, contamination, a sublattice of substituted columns), which a
    free two-Gaussian fit spends its second component on; with the main body
    held at its robust centre and spread, the second component can only take
    what the main body leaves over. Tried on each side; returns (BIC gain over
    one Gaussian, mask of the group) for the better side, or (-inf, None); as
    :func:`fit_two_gaussians` for a gain below ``min_gain``.
    """
    n = len(v)
    med = float(np.median(v))
    s = 1.4826 * float(np.median(np.abs(v - med)))
    sd0 = float(v.std())
    h = count_histogram(v) if h is None else h
    if h is None or not (s > 0 and sd0 > 0):
        return -np.inf, None
    x, c = h
    ll1 = -0.5 * n * (np.log(2 * np.pi * sd0**2) + 1.0)
    best = (-np.inf, None)
    for side in (1.0, -1.0):
        grp = side * (v - med) / s > 3.0
        if grp.sum() < 2:
            continue
        mu, var, pi = _k.em_tail(x, c, med, s, float(v[grp].mean()), max(float(v[grp].var()), (0.1 * s) ** 2),
                                 float(grp.mean()), n_iter, 1e-4)
        gain = 2.0 * (_k.mixture_ll(x, c, np.log1p(-pi), med, s * s, np.log(pi), mu, var) - ll1) - 3.0 * np.log(n)
        if gain < min_gain:
            if gain > best[0]:
                best = (gain, None)
            continue
        group = np.log(pi) + _log_normal(v, mu, var) > np.log1p(-pi) + _log_normal(v, med, s * s)
        if gain > best[0] and group.any():
            best = (gain, group)
    return best



def looks_mixed(V) -> np.ndarray:
    """For each column of ``V``, whether it departs from one Gaussian at all (Jarque-Bera > 6).

    Two groups that a mixture could tell apart with strong evidence also skew
    or flatten the distribution; columns that pass this (most of a motif's)
    are not worth fitting.
    """
    n = len(V)
    if n < 8:
        return np.zeros(V.shape[1], bool)
    sd = V.std(0)
    z = (V - V.mean(0)) / np.where(sd > 0, sd, 1.0)
    z2 = z * z
    skew = (z2 * z).mean(0)
    kurt = (z2 * z2).mean(0) - 3.0
    return (sd > 0) & (n / 6.0 * (skew**2 + 0.25 * kurt**2) > 6.0)


def column_counts(Xc, P, spacing, sigma, yy, xx):
    """Each member's count (a matched filter) at every atom column of the class average.

    Parameters
    ----------
    Xc : ndarray (n, P*P) float32
        The motif's flattened, variance-stabilised patches.
    P : int
        Patch side.
    spacing, sigma : float
        Nearest-neighbour distance and column width in px.
    yy, xx : ndarray (P, P)
        Pixel rows and columns of a patch (``np.mgrid[0:P, 0:P]``).

    Returns
    -------
    ndarray (n, K) float64
        One column per atom column of :func:`column_sites`.
    """
    sites = column_sites(Xc.mean(0, dtype=np.float64).reshape(P, P), spacing, sigma)
    return site_counts(Xc, sites, sigma, yy, xx)


def site_counts(Xc, sites, sigma, yy, xx):
    """Each member's matched-filter count at each of ``sites`` ((K, 2) patch px): a unit-norm Gaussian of width ``sigma``.

    Returns
    -------
    ndarray (n, K) float64
    """
    G = np.exp(-0.5 * ((yy[None] - sites[:, 0, None, None]) ** 2 + (xx[None] - sites[:, 1, None, None]) ** 2)
               / sigma**2).reshape(len(sites), -1)
    G /= np.sqrt((G**2).sum(1, keepdims=True))
    return (np.asarray(Xc, np.float32) @ G.T.astype(np.float32)).astype(np.float64)


def principal_combination(counts) -> np.ndarray:
    """The counts at each column, plus their first principal component as one more column.

    Two sublattices that the layout lumps (an ABF perovskite at ~1 count:
    cation-centred and O-centred patches have their columns at the same
    places) differ at the centre and, the other way round, at every
    neighbour; each column alone separates them by a d' of ~2, too little
    for a clear two-group fit, while the combination that carries most of
    the variance adds the differences up.
    """
    if counts.shape[1] < 2 or len(counts) < 3:
        return counts
    sd = counts.std(0)
    z = (counts - counts.mean(0)) / np.where(sd > 0, sd, 1.0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    return np.column_stack([counts, z @ vt[0]])
