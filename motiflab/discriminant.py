"""The separation ``d'`` of two groups of patches, in units of one column's noise.

Each column is scored along the direction in which the two groups' mean
patches differ, over the disc through the nearest neighbours
(:func:`centre_window`) and with each pixel weighted by how quiet it is within
a motif (:func:`pixel_weights`); ``d'`` is the difference of the two groups'
mean scores over the spread of a single column's score, with each column left
out of its own group's mean (:func:`separation`). The patches are
variance-stabilised (every pixel has noise 1), so ``d'`` is in the units the
motif decisions of :mod:`motiflab.separation` are made in.
"""
from __future__ import annotations

import numpy as np

__all__ = ["centre_window", "pixel_weights", "separation", "separation_of_split", "weighted_squares",
           "group_indicator", "leave_one_out_coefficients"]

#: rows per block when a pass over all patches needs a temporary
_BLOCK = 8192


def centre_window(patch_size: int, spacing: float) -> np.ndarray:
    """The part of a patch the separation test looks at: a disc through the nearest neighbours.

    1 out to one nearest-neighbour distance, with a one-pixel soft edge, 0
    beyond (the second shell, whose environment belongs to other motifs). The
    tails of second-shell columns still reach in: at a good dose (~200
    counts per column, columns located to a tenth of a pixel) a disc of 1.15
    spacings let a missing atom 1.7 spacings away split MoSe₂'s Se₂ host
    motif by the direction of that atom (d' 2.7-2.9, ARI against the truth
    0.96 -> 0.74 at 2048²); through the nearest neighbours' centres, the host
    stays one motif.

    Parameters
    ----------
    patch_size : int
    spacing : float
        Nearest-neighbour distance in px.

    Returns
    -------
    ndarray (P, P) float64
    """
    P = int(patch_size)
    c = (P - 1) / 2.0
    yy, xx = np.mgrid[0:P, 0:P]
    return np.clip(spacing + 0.5 - np.hypot(yy - c, xx - c), 0.0, 1.0)


def group_indicator(labels, k):
    """Dense (k, N) float32 indicator of the labels (-1 rows stay empty): group sums by BLAS.

    Parameters
    ----------
    labels : ndarray (N,) int
        Groups 0..k-1, -1 for none.
    k : int
        Number of groups.
    """
    oh = np.zeros((k, len(labels)), np.float32)
    ok = labels >= 0
    oh[labels[ok], np.flatnonzero(ok)] = 1.0
    return oh


def weighted_squares(X, q):
    """``(X * X) @ q`` row by row, in blocks (no N x D temporary).

    Parameters
    ----------
    X : ndarray (N, D)
        Flattened patches.
    q : ndarray (D,)
        Pixel weights.

    Returns
    -------
    ndarray (N,) float64
    """
    out = np.empty(len(X), np.float64)
    q32 = np.asarray(q, np.float32)
    for a in range(0, len(X), _BLOCK):
        b = np.asarray(X[a:a + _BLOCK], np.float32)
        out[a:a + _BLOCK] = (b * b) @ q32
    return out


def pixel_weights(labels, X, window) -> np.ndarray:
    """Weights of the separation test: the window over each pixel's variance within the motifs.

    A diagonal discriminant: a pixel counts in proportion to how quiet it is
    among the columns of one motif. The centre of a dim column, where a
    missing atom shows, is the quietest part of its patch and weighs most;
    the flanks of bright columns, where sub-pixel position jitter moves steep
    intensity, weigh least. (A fixed centre emphasis instead halved the
    separation of motifs that differ at a neighbour: 3.6 against 6.0 for two
    W sites missing different S atoms.)

    Parameters
    ----------
    labels : ndarray (N,) int
        Current motifs (-1 unassigned, ignored).
    X : ndarray (N, D)
        Variance-stabilised, flattened patches.
    window : ndarray (D,)
        :func:`centre_window`, flattened.

    Returns
    -------
    ndarray (D,) float64
    """
    labels = np.asarray(labels)
    ok = labels >= 0
    k = int(labels.max()) + 1 if ok.any() else 0
    w = np.asarray(window, np.float64).ravel()
    if k == 0 or ok.sum() <= k:
        return w
    oh = group_indicator(labels, k)
    counts = oh.sum(1, dtype=np.float64)
    means = (oh @ np.asarray(X, np.float32)).astype(np.float64) / np.maximum(counts, 1)[:, None]
    # deviations from each member's own motif mean, in float64 blocks (sums of squares
    # minus squared sums lose the variance to rounding where the mean is large)
    sq = np.zeros(X.shape[1])
    rows = np.flatnonzero(ok)
    m32 = means.astype(np.float32)
    for a in range(0, len(rows), _BLOCK):
        r = rows[a:a + _BLOCK]
        d = np.asarray(X[r], np.float32) - m32[labels[r]]
        sq += np.einsum("ij,ij->j", d, d, dtype=np.float64)
    var = sq / max(int(ok.sum()) - k, 1)
    med = float(np.median(var[w > 0])) if np.any(w > 0) else float(np.median(var))
    return w / np.maximum(var, 1e-3 * max(med, 1e-300))



def _dprime(sa, sb):
    na, nb = len(sa), len(sb)
    if na < 2 or nb < 2:
        return 0.0
    pooled = np.sqrt(((na - 1) * sa.var(ddof=1) + (nb - 1) * sb.var(ddof=1)) / max(na + nb - 2, 1))
    if not pooled > 0:
        return np.inf if sa.mean() != sb.mean() else 0.0
    return float(abs(sa.mean() - sb.mean()) / pooled)


def _loo_dprime(Ga_a, Ga_b, st_a, Gb_a, Gb_b, st_b):
    """Leave-one-out discriminant separation of groups a and b.

    ``Gx_y``: the members of group x against group y's weighted mean
    (``x_i · (q ⊙ m_y)``); ``st_x``: their ``x_i · (q ⊙ x_i)``. A member's
    score is its nearest-mean discriminant with itself left out of its own
    mean, ``(x_i − c) · q ⊙ d`` with ``d`` the difference of the two means
    and ``c`` their midpoint, so it needs no pass over the patches. Centring
    on the midpoint keeps the score translation-invariant: without it, the
    bright common part of the patches leaks into a small group's scores
    through the left-out member (a spread ~|mean| / n instead of ~|d|).
    """
    na, nb = len(Ga_a), len(Gb_b)
    if na < 2 or nb < 2:
        return 0.0
    maa, mbb = Ga_a.mean(), Gb_b.mean()  # m_a · q m_a and m_b · q m_b
    ca, cb = leave_one_out_coefficients(na), leave_one_out_coefficients(nb)
    sa = ca[0] * Ga_a - ca[1] * st_a - Ga_b - 0.5 * (na**2 * maa / (na - 1) ** 2 - mbb)
    sb = Gb_a - cb[0] * Gb_b + cb[1] * st_b - 0.5 * (maa - nb**2 * mbb / (nb - 1) ** 2)
    return _dprime(sa, sb)


def leave_one_out_coefficients(n):
    """Coefficients of ``x·q m_own`` and ``x·q x`` in the centred leave-one-out score of a member of a group of ``n``.

    See ``_loo_dprime``; :func:`motiflab.separation.merge_indistinguishable`
    uses them to update the scores of merged groups without a pass over the patches.
    """
    return n / (n - 1) + n / (n - 1) ** 2, 1.0 / (n - 1) + 0.5 / (n - 1) ** 2


def separation_of_split(X, in_b, q, st):
    """:func:`separation` of the rows of ``X`` outside / inside the mask ``in_b`` (no copies of X).

    Parameters
    ----------
    X : ndarray (N, D) float32
        Variance-stabilised, flattened patches.
    in_b : ndarray (N,) bool
        The second group; the rest is the first.
    q : ndarray (D,)
        Pixel weights (:func:`pixel_weights`).
    st : ndarray (N,)
        :func:`weighted_squares` of ``X`` with ``q``.
    """
    in_a = ~in_b
    na, nb = int(in_a.sum()), int(in_b.sum())
    if na < 2 or nb < 2:
        return 0.0
    q32 = np.asarray(q, np.float32)
    ma = (in_a.astype(np.float32) @ X) / na
    mb = (in_b.astype(np.float32) @ X) / nb
    Ga = (X @ (q32 * ma)).astype(np.float64)
    Gb = (X @ (q32 * mb)).astype(np.float64)
    return _loo_dprime(Ga[in_a], Gb[in_a], st[in_a], Ga[in_b], Gb[in_b], st[in_b])


def separation(Xa, Xb, weights=None) -> float:
    """Separation ``d'`` of two groups of (variance-stabilised, flattened) patches.

    Parameters
    ----------
    Xa, Xb : ndarray (n_a, D), (n_b, D)
        Patches of the two groups, in noise units.
    weights : ndarray (D,), optional
        Per-pixel weights (:func:`pixel_weights`); default 1.

    Returns
    -------
    float
        Difference of the groups' mean leave-one-out discriminant scores in
        units of one column's score spread; 0 when a group has fewer than 2
        members.
    """
    X = np.vstack([np.asarray(Xa, np.float32), np.asarray(Xb, np.float32)])
    q = np.ones(X.shape[1]) if weights is None else np.asarray(weights, np.float64).ravel()
    in_b = np.zeros(len(X), bool)
    in_b[len(Xa):] = True
    return separation_of_split(X, in_b, q, weighted_squares(X, q))
