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

The mixtures are fitted by EM on a 256-bin histogram, the starts of a fit
side by side, each iteration a few NumPy calls on the bins.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.special import expit

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
    # component 1 starts as the bins beyond the 10th and (the other start) below the 90th percentile
    lo, hi = np.quantile(v, (0.1, 0.9))
    starts = np.stack([x > lo, x < hi]).astype(np.float64)
    for ok, lw0, mu0, var0, lw1, mu1, var1 in _em_free(x, c, starts, (1e-3 * sd0) ** 2, n_iter, 1e-4):
        if not ok:
            continue
        gain = 2.0 * (_mixture_ll(x, c, lw0, mu0, var0, lw1, mu1, var1) - ll1) - 3.0 * np.log(n)
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
    starts = []
    for side in (1.0, -1.0):
        grp = side * (v - med) / s > 3.0
        if grp.sum() >= 2:
            starts.append((float(v[grp].mean()), max(float(v[grp].var()), (0.1 * s) ** 2), float(grp.mean())))
    for mu, var, pi in _em_tail(x, c, med, s, starts, n_iter, 1e-4):
        gain = 2.0 * (_mixture_ll(x, c, np.log1p(-pi), med, s * s, np.log(pi), mu, var) - ll1) - 3.0 * np.log(n)
        if gain < min_gain:
            if gain > best[0]:
                best = (gain, None)
            continue
        group = np.log(pi) + _log_normal(v, mu, var) > np.log1p(-pi) + _log_normal(v, med, s * s)
        if gain > best[0] and group.any():
            best = (gain, group)
    return best


# EM on the histogram. An iteration costs a few microseconds of arithmetic on 256 bins, so
# NumPy's cost is its calls: the starts of a fit run side by side, and each component is
# summed up by its moments (one product with [c, c·x, c·x²]), so that its log-density is
# a quadratic in x and the responsibilities one product and one expit. x is centred on the
# data's mean first, so that the variances from the moments lose little to cancellation.

def _centred_powers(x, c):
    """Total count, mean, ``[1, xc, xc²]`` (3, nb) and ``[c, c·xc, c·xc²]`` (nb, 3) with ``xc = x - mean``."""
    n = float(c.sum())
    mean = float(c @ x) / n
    xc = x - mean
    return n, mean, np.stack([np.ones_like(xc), xc, xc * xc]), np.stack([c, c * xc, c * xc * xc], 1)


def _mixture_ll(x, c, lw0, mu0, var0, lw1, mu1, var1):
    """Log-likelihood of the binned data (bin centres ``x``, counts ``c``) under a two-component mixture.

    ``lw``: log weight, ``mu``, ``var``: mean and variance of each component.
    """
    return float(c @ np.logaddexp(lw0 + _log_normal(x, mu0, var0), lw1 + _log_normal(x, mu1, var1)))


_NO_FIT = (False, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0)


def _em_free(x, c, r1, floor, n_iter, tol):
    """EM of two free Gaussians on binned data, from each row of starting responsibilities.

    Parameters
    ----------
    x, c : ndarray (nb,)
        Bin centres and counts.
    r1 : ndarray (k, nb)
        Responsibilities of component 1 to start from, one start per row.
    floor : float
        Smallest variance.
    n_iter : int
        Most iterations.
    tol : float
        A start stops once no responsibility moves by ``tol`` or more.

    Returns
    -------
    list of tuple
        Per start ``(ok, lw0, mu0, var0, lw1, mu1, var1)``: log weights, means and
        variances; ``ok`` False (and no fit) where a component lost all its weight
        (or ``n_iter`` < 1).
    """
    n, mean, powers, moments = _centred_powers(x, c)
    k, nb = r1.shape
    fits = [_NO_FIT] * k
    r = np.array(r1, np.float64)
    resp = np.empty((2 * k, nb))
    live = list(range(k))
    for _ in range(n_iter):
        m = len(live)
        rl = r[live] if m < k else r
        # rows: component 0 of each live start, then component 1
        np.subtract(1.0, rl, out=resp[:m])
        resp[m:2 * m] = rl
        sums = (resp[:2 * m] @ moments).tolist()
        coef, kept = [], []
        for i, start in enumerate(live):
            (w0, s0, q0), (w1, s1, q1) = sums[i], sums[m + i]
            if w0 < 1e-9 or w1 < 1e-9:
                fits[start] = _NO_FIT
                continue
            mu0, mu1 = s0 / w0, s1 / w1
            var0, var1 = max(q0 / w0 - mu0 * mu0, floor), max(q1 / w1 - mu1 * mu1, floor)
            lw0, lw1 = math.log(w0 / n), math.log(w1 / n)
            fits[start] = (True, lw0, mu0 + mean, var0, lw1, mu1 + mean, var1)
            # log odds of component 1 at xc: coefficients of 1, xc, xc²
            coef.append((lw1 - lw0 - 0.5 * math.log(var1 / var0) - 0.5 * (mu1 * mu1 / var1 - mu0 * mu0 / var0),
                         mu1 / var1 - mu0 / var0, 0.5 / var0 - 0.5 / var1))
            kept.append(i)
        if not kept:
            break
        if len(kept) < m:
            live = [live[i] for i in kept]
            rl = r[live]
        new = expit(np.array(coef) @ powers)
        change = np.abs(new - rl).max(axis=1).tolist()
        r[live] = new
        live = [start for start, ch in zip(live, change) if ch >= tol]
        if not live:
            break
    return fits


def _em_tail(x, c, med, s, starts, n_iter, tol):
    """EM of a group component beside a main body fixed at N(med, s²), on binned data, from each start.

    Parameters
    ----------
    x, c : ndarray (nb,)
        Bin centres and counts.
    med, s : float
        Centre and spread of the main body.
    starts : list of (float, float, float)
        The group's starting mean, variance and weight, one tuple per start.
    n_iter : int
        Most iterations.
    tol : float
        A start stops once its mean moves by less than ``tol * s``.

    Returns
    -------
    list of (float, float, float)
        Per start the group's mean, variance (at least ``(0.1 s)²``) and weight
        (at most 0.5); a start whose group holds less than one count keeps its
        last estimate.
    """
    n, mean, powers, moments = _centred_powers(x, c)
    vfloor = (0.1 * s) ** 2
    m0, v0 = med - mean, s * s
    state = [(mu - mean, var, pi) for mu, var, pi in starts]
    live = list(range(len(state)))
    for _ in range(n_iter):
        if not live:
            break
        coef = []
        for i in live:
            mu, var, pi = state[i]
            # log odds of the group against the main body at xc: coefficients of 1, xc, xc²
            coef.append((math.log(pi) - math.log1p(-pi) - 0.5 * math.log(var / v0)
                         - 0.5 * (mu * mu / var - m0 * m0 / v0), mu / var - m0 / v0, 0.5 / v0 - 0.5 / var))
        sums = (expit(np.array(coef) @ powers) @ moments).tolist()
        nxt = []
        for i, (w, sx, q) in zip(live, sums):
            if w < 1.0:
                continue
            mu = sx / w
            moved = abs(mu - state[i][0])
            state[i] = (mu, max(q / w - mu * mu, vfloor), min(max(w / n, 1.0 / n), 0.5))
            if moved >= tol * s:
                nxt.append(i)
        live = nxt
    return [(mu + mean, var, pi) for mu, var, pi in state]


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
