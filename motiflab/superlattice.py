"""Motifs that hide a superlattice: sites of one lattice that alternate between two kinds of column.

The column lattice the image shows is not always the crystal's. In an ABF image
of an ABO3 perovskite along [001], Sr and Ti-O columns sit on one centred
square lattice and differ only in how dark they are; at ~1 count per peak a
single column's patch tells them apart by a d' of ~1, so the layout, and the
evidence tests that compare single columns (:mod:`motiflab.separation`), see
one cation motif. The lattice tells them apart: Sr and Ti-O alternate on it,
so their lattice indices have opposite parity.

:func:`split_by_superlattice` tests, within each motif, its main site of the cell
against the others (when it holds columns of several sites), else the three ways to halve
a lattice by parity (along the first vector, the second, or their sum: the
2×1, 1×2 and checkerboard superlattices). The two halves are defined by the
columns' places, not by their noise, so a difference of their means can be
tested without the selection bias that makes noise look like two groups: each
half of the members (a seeded random split) estimates the direction in which
the parity groups differ (linear discriminant of the counts at the motif's
atom columns and at its lattice neighbours), and the other half measures the
difference along it (Welch's t). A motif is split when the two cross-fitted t
values (their mean) pass :data:`MIN_T` and the difference is not negligible
(d' ≥ :data:`MIN_DPRIME` per column, so slow systematic effects of a real
detector do not split a motif only because thousands of columns make a tiny
difference significant). A split motif is tested again, so a 2×2 superlattice
gives four motifs.
"""
from __future__ import annotations

import numpy as np

from .column_counts import column_sites, site_counts
from .discriminant import centre_window, pixel_weights
from .separation import MIN_SEPARATION, merge_indistinguishable

__all__ = ["MIN_T", "MIN_DPRIME", "split_by_superlattice", "parity_contrast"]

#: cross-fitted t a parity split must reach (one-sided; about N(0, 1) without a
#: difference, with heavier tails; 300 null trials of 400 members reached 2.9)
MIN_T = 6.0

#: smallest difference, in single-column noise units along the discriminant,
#: that a parity split must show
MIN_DPRIME = 0.5

# fraction of a motif's members that must sit on lattice sites (within a
# quarter cell) for its parity to mean anything
_ON_SITE = 0.9


def _lattice_sites(mean_patch, spacing, sigma, vectors_px):
    """Matched-filter sites of a motif: its atom columns and its same-site lattice neighbours."""
    P = mean_patch.shape[0]
    c = (P - 1) / 2.0
    sites = [column_sites(mean_patch, spacing, sigma)]
    if vectors_px is not None:
        v1, v2 = vectors_px
        off = np.array([v1, v2, v1 + v2, v1 - v2])
        off = np.vstack([off, -off]) + c
        inside = ((off >= 1.5 * sigma) & (off <= P - 1 - 1.5 * sigma)).all(1)
        sites.append(off[inside])
    return np.vstack(sites)


def parity_contrast(counts, group, half):
    """Cross-fitted difference between two groups of members along their discriminant.

    Parameters
    ----------
    counts : ndarray (n, K)
        Each member's counts at the motif's sites.
    group : ndarray (n,) bool
        The parity split under test.
    half : ndarray (n,) bool
        A random half of the members: each half estimates the direction, the
        other measures along it.

    Returns
    -------
    t : float
        The mean of the two halves' Welch t values: about N(0, 1) when the
        groups do not differ (with somewhat heavier tails: each is a product of
        two independent mean differences), large and positive when they do.
    dprime : float
        The measured difference in units of the within-group spread (the mean
        of the two halves).
    """
    ts, ds = [], []
    K = counts.shape[1]
    for h in (False, True):
        train, test = half != h, half == h
        a, b = counts[train & group], counts[train & ~group]
        ta, tb = counts[test & group], counts[test & ~group]
        if min(len(a), len(b), len(ta), len(tb)) < 3:
            return 0.0, 0.0
        resid = np.vstack([a - a.mean(0), b - b.mean(0)])
        S = resid.T @ resid / max(len(resid) - 2, 1)
        S += np.eye(K) * (1e-6 * np.trace(S) / K + 1e-12)
        d = np.linalg.solve(S, a.mean(0) - b.mean(0))
        za, zb = ta @ d, tb @ d
        va, vb = za.var(ddof=1), zb.var(ddof=1)
        se = np.sqrt(va / len(za) + vb / len(zb))
        if not se > 0:
            return 0.0, 0.0
        diff = za.mean() - zb.mean()
        ts.append(diff / se)
        ds.append(diff / np.sqrt(0.5 * (va + vb)))
    # the two halves' t share the bilinear form (mean difference of one half through the
    # other's): they are strongly correlated, so their mean, not their sum over sqrt(2), is
    # the one about N(0, 1) under the null
    return float(np.mean(ts)), float(np.mean(ds))


def _circular_mean(f):
    """Mean of fractional cell coordinates on the torus, in [0, 1)."""
    ang = 2 * np.pi * np.asarray(f)
    return np.mod(np.arctan2(np.sin(ang).mean(0), np.cos(ang).mean(0)) / (2 * np.pi), 1.0)


def _main_site(f, bins=10, radius=0.2):
    """Members at the most populated site of the cell (within ``radius`` cells of it, on the torus)."""
    frac = np.mod(f, 1.0)
    b = np.minimum((frac * bins).astype(np.int64), bins - 1)
    hist = np.bincount(b[:, 0] * bins + b[:, 1], minlength=bins * bins).reshape(bins, bins)
    i, j = np.unravel_index(int(np.argmax(hist)), hist.shape)
    near = ((np.abs(((b[:, 0] - i + bins // 2) % bins) - bins // 2) <= 1)
            & (np.abs(((b[:, 1] - j + bins // 2) % bins) - bins // 2) <= 1))
    centre = _circular_mean(frac[near])
    d = np.mod(frac - centre + 0.5, 1.0) - 0.5
    return np.abs(d).max(1) <= radius


def _site_signatures(labels, pos, Vinv):
    """Per motif: its site in the cell, and its value in each parity partition it keeps to.

    Returns ``{motif: (site, parities)}``: ``site`` in cell fractions, ``parities`` holds, for the
    partitions along the first vector, the second and their sum, 0 or 1 when
    at least :data:`_ON_SITE` of the members share it, else None.
    """
    ok = np.flatnonzero(labels >= 0)
    if not len(ok):
        return {}
    f = (pos - pos[ok[0]]) @ Vinv
    out = {}
    for c in np.unique(labels[ok]):
        m = labels == c
        site = _circular_mean(f[m][_main_site(f[m])])
        n = np.rint(f[m] - site).astype(np.int64)
        parities = []
        for g in (n[:, 0] & 1, n[:, 1] & 1, (n[:, 0] + n[:, 1]) & 1):
            share = g.mean()
            parities.append(1 if share >= _ON_SITE else 0 if share <= 1 - _ON_SITE else None)
        out[int(c)] = (site, tuple(parities))
    return out


def _merge_same_sites(labels, X, patch_size, spacing, pos, Vinv, min_separation):
    """Merge motifs of one site and parity class that the noise cannot tell apart.

    The layout may cut one kind of column across two clusters that the
    parity splits then leave as two motifs (a few O columns of one
    orientation that sat with the other orientation's cluster); motifs of
    different parity are never merged here, so the splits stand.
    """
    sig = _site_signatures(labels, pos, Vinv)
    groups = []  # [(site, parities, motifs)]: one site (within a tenth of the cell, on the torus) and parity
    for c, (site, parities) in sig.items():
        if all(p is None for p in parities):
            continue  # only motifs a parity split made
        for g_site, g_par, members in groups:
            if g_par == parities and (np.abs(np.mod(site - g_site + 0.5, 1.0) - 0.5) <= 0.1).all():
                members.append(c)
                break
        else:
            groups.append((site, parities, [c]))
    for _site, _parities, members in groups:
        if len(members) < 2:
            continue
        sub = np.full(len(labels), -1, np.int64)
        for i, c in enumerate(members):
            sub[labels == c] = i
        w = pixel_weights(sub, X, centre_window(patch_size, spacing).ravel())
        merged = merge_indistinguishable(sub, X, w, min_separation, pos)
        for i, c in enumerate(members):
            # each merged group takes the smallest motif number among its parts
            target = members[int(merged[sub == i][0])]
            labels[labels == c] = target
    return labels


def split_by_superlattice(labels, X, patch_size, spacing, sigma, positions, lattice_vectors, scale=1.0,
                          min_size=5, min_t=MIN_T, min_dprime=MIN_DPRIME, max_motifs=64, seed=0,
                          min_separation=MIN_SEPARATION):
    """Split motifs whose members alternate between two kinds of column on the lattice (see module notes).

    Parameters
    ----------
    labels, X, patch_size, spacing, sigma
        As in :func:`motiflab.separation.split_hidden` (``spacing`` and
        ``sigma`` in patch px).
    positions : ndarray (N, 2)
        Column positions in image px.
    lattice_vectors : ndarray (2, 2)
        The column lattice's vectors in image px, (row, col) like ``positions``.
    scale : float
        Image px per patch px.
    min_size : int
        Each half of a split must have at least this many columns.
    min_t, min_dprime : float
        See :data:`MIN_T`, :data:`MIN_DPRIME`.
    max_motifs : int
        Stop splitting beyond this many motifs.
    seed : int
        Seed of the random halves of the cross-fitting.
    min_separation : float
        After a split, motifs of one site and parity class closer than this
        (:func:`motiflab.separation.merge_indistinguishable`) become one.

    Returns
    -------
    ndarray (N,) int
        Labels with new motifs numbered after the existing ones (not renumbered).
    """
    labels = np.asarray(labels).copy()
    V = np.asarray(lattice_vectors, np.float64) if lattice_vectors is not None else None
    if V is None or V.shape != (2, 2) or not np.isfinite(V).all():
        return labels
    area = abs(np.linalg.det(V))
    if not area > 1e-6 * max(float((V**2).sum()), 1e-30):
        return labels
    Vinv = np.linalg.inv(V)
    pos = np.asarray(positions, np.float64)
    P = int(patch_size)
    queue = sorted(int(c) for c in np.unique(labels) if c >= 0)
    next_label = int(labels.max()) + 1 if len(labels) else 0
    rng = np.random.default_rng(seed)
    split = False
    while queue and next_label < max_motifs:
        c = queue.pop(0)
        idx = np.flatnonzero(labels == c)
        if len(idx) < 4 * max(int(min_size), 3):
            continue
        f = (pos[idx] - pos[idx[0]]) @ Vinv
        at_main = _main_site(f)
        if (~at_main).sum() >= max(int(min_size), 0.1 * len(idx)):
            # members on two or more sites of the cell (cation and O columns lumped):
            # the main site against the others is a partition by place as well
            partitions = [at_main]
        else:
            site = _circular_mean(f[at_main])
            n = np.rint(f - site)
            if np.mean(np.abs(f - site - n).max(1) <= 0.25) < _ON_SITE:
                continue  # the motif is not one site of this lattice: its parity says nothing
            n = n.astype(np.int64)
            partitions = [(n[:, 0] & 1) == 1, (n[:, 1] & 1) == 1, ((n[:, 0] + n[:, 1]) & 1) == 1]
        Xc = X[idx]
        sites = _lattice_sites(Xc.mean(0, dtype=np.float64).reshape(P, P), spacing, sigma, V / float(scale))
        yy, xx = np.mgrid[0:P, 0:P]
        # float32 product (the motif step runs on one BLAS thread: the same sums for any thread count)
        counts = site_counts(Xc, sites, sigma, yy, xx)
        half = rng.random(len(idx)) < 0.5
        best = None
        for g in partitions:
            if g.sum() < min_size or (~g).sum() < min_size:
                continue
            t, dp = parity_contrast(counts, g, half)
            if t >= min_t and dp >= min_dprime and (best is None or t > best[0]):
                best = (t, g)
        if best is None:
            continue
        labels[idx[best[1]]] = next_label
        queue += [c, next_label]
        next_label += 1
        split = True
    if split:
        labels = _merge_same_sites(labels, X, P, spacing, pos, Vinv, min_separation)
    return labels
