"""How many motifs the evidence supports: merge groups the noise cannot tell apart, split groups it can.

The force-relaxed layout (like UMAP) separates any group of columns that are
more alike among themselves than to the rest, however small the difference,
and at low dose it lumps together groups whose difference is buried in the
noise of a single patch even where the counts still tell them apart. A fixed
distance threshold in feature units follows the brightest columns, not the
evidence (a missing atom in a dim column is a small distance next to the shot
noise of its bright neighbours). Both decisions here are made in the units
of the noise instead: the patches are variance-stabilised
(:meth:`motiflab.noise.NoiseModel.stabilize`), so every pixel has noise 1.

* **Separation of two groups** (:func:`separation`): each column is scored
  along the direction in which the two groups' mean patches differ, over the
  disc through the nearest neighbours (:func:`centre_window`) and with each
  pixel weighted by how quiet it is within a motif (:func:`pixel_weights`:
  the centre of a dim column weighs most); the separation ``d'`` is the
  difference of the two groups' mean scores over the spread of a single
  column's score. Each column's direction leaves the column itself out of its
  group's mean, so a group of five is not separated by its own noise. Two
  groups with ``d' < min_separation`` cannot be told apart column by column:
  they are one motif (:func:`merge_indistinguishable`). The test itself lives
  in :mod:`motiflab.discriminant`.
* **A hidden group** (:func:`split_hidden`): within a motif, each atom column
  its class average shows (the centre and the neighbours) gives every member a
  count (a matched filter at that column). If one column's counts, or the
  principal combination of all of them (two sublattices whose columns sit
  at the same places, brighter at the centre in one and at the neighbours
  in the other), fall into two groups (two Gaussians, or a robust main body and a group beyond it)
  much more likely than into one (Bayesian information criterion), and the
  two groups' patches are at least ``min_separation`` apart by the same test
  that merges, the motif is split (the counts and the mixture fits live in
  :mod:`motiflab.column_counts`). This is how a single-Se column (22 ± 4
  counts in a 4-px disc at one count per Mo peak) is told from a full one
  (52 ± 7) where the layout alone lumps them.

A pair counts as separated when ``d'`` clears ``min_separation`` by its own
standard error (``sqrt(1/n_a + 1/n_b)``): small groups scatter more. The
default of 2.5 lies between the largest separation of groups the layout
carves out of one true class (≤ 2.4 for groups of 20 or more on MoSe₂, WS₂
and perovskites at any dose with a window of 1.15 spacings; ≤ 1.0 with the
present window, re-measured at 1-100 counts on 384-512² images) and the
smallest between true classes the counts distinguish (≥ 2.7); see
``benchmarks/bench_detection.py``.
"""
from __future__ import annotations

import numpy as np

from .column_counts import (column_counts, column_sites, count_histogram, fit_tail_group, fit_two_gaussians,
                            looks_mixed, principal_combination)
from .discriminant import (centre_window, group_indicator, leave_one_out_coefficients, pixel_weights, separation,
                           separation_of_split, weighted_squares)

__all__ = ["MIN_SEPARATION", "centre_window", "pixel_weights", "separation", "neighbour_table", "segregation",
           "merge_indistinguishable", "column_sites", "split_hidden", "refine_motifs"]

#: Default smallest separation (single-column noise units) between two motifs.
MIN_SEPARATION = 2.5

#: A split needs the two-group description of the counts to beat the one-group one by
#: this much in BIC ("very strong" evidence on Kass & Raftery's scale).
MIN_BIC_GAIN = 10.0


def neighbour_table(positions, k=12):
    """Each column's ``k`` nearest columns (indices), for :func:`segregation`.

    Twelve reach a column's own sublattice in a honeycomb (three neighbours
    of the other sublattice at the nearest distance, six of its own next).
    """
    from scipy.spatial import cKDTree

    pts = np.asarray(positions, float).reshape(-1, 2)
    k = int(min(k, len(pts) - 1))
    if k < 1:
        return np.zeros((len(pts), 0), np.int64)
    return cKDTree(pts).query(pts, k=k + 1, workers=-1)[1][:, 1:]


def segregation(labels, a, b, neighbours, members=None) -> float:
    """How much motifs ``a`` and ``b`` keep to their own parts of the image (0 mixed, 1 apart).

    Among the nearest columns (``neighbours``, :func:`neighbour_table`) of
    each member that belong to either motif, the fraction in its own motif,
    rescaled so that random mixing gives 0 and two separate regions give 1.
    ``members`` may give the two motifs' member indices, when known.
    """
    labels = np.asarray(labels)
    if members is None:
        ia, ib = np.flatnonzero(labels == a), np.flatnonzero(labels == b)
    else:
        ia, ib = members
    na, nb = len(ia), len(ib)
    if na < 2 or nb < 2 or neighbours.shape[1] == 0:
        return 0.0
    nl_a = labels[neighbours[ia]]
    nl_b = labels[neighbours[ib]]
    same = float((nl_a == a).sum() + (nl_b == b).sum())
    total = same + float((nl_a == b).sum() + (nl_b == a).sum())
    if total == 0:
        return 0.0
    expected = (na**2 + nb**2) / (na + nb) ** 2
    return float(np.clip((same / total - expected) / max(1.0 - expected, 1e-9), 0.0, 1.0))


#: Groups this segregated (see :func:`segregation`) are one motif seen under a slowly
#: varying condition unless they are twice ``min_separation`` apart
SEGREGATED = 0.5


def _separated(d, na, nb, min_separation, segregated=lambda: 0.0):
    """Whether two groups at separation ``d`` (sizes na, nb) are two motifs (see module notes).

    ``segregated`` is called (only when it matters) for the groups' :func:`segregation`.
    """
    d = d - _margin(na, nb)
    if d < min_separation:
        return False
    return d >= 2.0 * min_separation or segregated() < SEGREGATED


def _margin(na, nb) -> float:
    """The standard error of a separation between groups of na and nb columns (~sqrt(1/na + 1/nb))."""
    return float(np.sqrt(1.0 / max(na, 1) + 1.0 / max(nb, 1)))


def merge_indistinguishable(labels, X, weights, min_separation=MIN_SEPARATION, positions=None, *,
                            squares=None, neighbours=None):
    """Merge motifs, closest first, until every pair is at least ``min_separation`` apart.

    Parameters
    ----------
    labels : ndarray (N,) int
        Motif labels 0..K-1, -1 unassigned (left alone).
    X : ndarray (N, D)
        Variance-stabilised, flattened patches.
    weights : ndarray (D,)
        :func:`pixel_weights`.
    min_separation : float
        Pairs whose separation does not clear this by its standard error are merged.
    positions : ndarray (N, 2), optional
        Column positions; with them, two groups that keep to separate parts of
        the image merge unless they are twice ``min_separation`` apart (see
        module notes).
    squares, neighbours : ndarray, optional
        ``(X * X) @ weights`` per row and :func:`neighbour_table` of the
        positions, when the caller has them already.

    Returns
    -------
    ndarray (N,) int
        Labels with merged motifs sharing one label (not renumbered).
    """
    labels = np.asarray(labels).copy()
    k = int(labels.max()) + 1 if labels.size else 0
    if k < 2 or min_separation <= 0:
        return labels
    X = np.asarray(X, np.float32)
    q32 = np.asarray(weights, np.float32).ravel()
    oh = group_indicator(labels, k)
    n = oh.sum(1, dtype=np.float64)
    means = (oh @ X) / np.maximum(n, 1)[:, None].astype(np.float32)
    # every member's product with every group's weighted mean, in one matrix product; a
    # merged group's column is the count-weighted mean of the two (the product is linear)
    G = (X @ (means * q32).T).astype(np.float64)
    st = weighted_squares(X, q32) if squares is None else np.asarray(squares, np.float64)
    # per group g, the sums over its members of G, G Gᵀ, st, st² and st G: every pair's
    # leave-one-out scores have their mean and variance in these, and merging two groups
    # only adds and mixes them, so no pass over the members is needed after this one
    ok = np.flatnonzero(labels >= 0)
    order = ok[np.argsort(labels[ok], kind="stable")]
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    members = {c: order[bounds[c]:bounds[c + 1]] for c in range(k)}
    S1 = np.zeros((k, k))
    S2 = np.zeros((k, k, k))
    U = np.zeros((k, k))
    T1 = np.zeros(k)
    T2 = np.zeros(k)
    for g in range(k):
        rows, sq = G[members[g]], st[members[g]]
        S1[g] = rows.sum(0)
        S2[g] = rows.T @ rows
        U[g] = sq @ rows
        T1[g] = sq.sum()
        T2[g] = sq @ sq
    # contacts[a, b]: how many of the nearest neighbours of group a's members belong to
    # group b; the segregation of any pair follows, and merging adds rows and columns
    contacts = [None]

    def contact_matrix():
        if contacts[0] is None and (neighbours is not None or positions is not None):
            table = neighbours if neighbours is not None else neighbour_table(positions)
            li = np.repeat(labels, table.shape[1])
            lj = labels[table.ravel()]
            ok = (li >= 0) & (lj >= 0)
            contacts[0] = np.bincount(li[ok] * k + lj[ok], minlength=k * k).reshape(k, k).astype(np.float64)
        return contacts[0]

    def segregated(a, b):
        C = contact_matrix()
        if C is None:
            return 0.0
        na, nb = n[a], n[b]
        total = C[a, a] + C[a, b] + C[b, a] + C[b, b]
        if total == 0 or na < 2 or nb < 2:
            return 0.0
        expected = (na**2 + nb**2) / (na + nb) ** 2
        return float(np.clip(((C[a, a] + C[b, b]) / total - expected) / max(1.0 - expected, 1e-9), 0.0, 1.0))

    def dprime_row(a, bs):
        """Separation of group ``a`` from each group in ``bs`` (vectorised over ``bs``)."""
        na, nb = n[a], n[bs]
        aa, ba = leave_one_out_coefficients(na)
        ab, bb = leave_one_out_coefficients(nb)
        # group a's members: s = aa G_a - ba st - G_b + const; group b's: s = G_a - ab G_b + bb st + const
        m_a = (aa * S1[a, a] - ba * T1[a] - S1[a, bs]) / na
        e2_a = (aa**2 * S2[a, a, a] + ba**2 * T2[a] + S2[a, bs, bs]
                - 2 * aa * ba * U[a, a] - 2 * aa * S2[a, a, bs] + 2 * ba * U[a, bs]) / na
        m_b = (S1[bs, a] - ab * S1[bs, bs] + bb * T1[bs]) / nb
        e2_b = (S2[bs, a, a] + ab**2 * S2[bs, bs, bs] + bb**2 * T2[bs]
                - 2 * ab * S2[bs, a, bs] + 2 * bb * U[bs, a] - 2 * ab * bb * U[bs, bs]) / nb
        var_a = np.maximum(e2_a - m_a**2, 0.0) * na / (na - 1)
        var_b = np.maximum(e2_b - m_b**2, 0.0) * nb / (nb - 1)
        # the midpoint terms: constant within a group, so only the means move
        maa, mbb = S1[a, a] / na, S1[bs, bs] / nb
        m_a = m_a - 0.5 * (na**2 * maa / (na - 1) ** 2 - mbb)
        m_b = m_b - 0.5 * (maa - nb**2 * mbb / (nb - 1) ** 2)
        pooled = np.sqrt(((na - 1) * var_a + (nb - 1) * var_b) / (na + nb - 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.abs(m_a - m_b) / pooled
        return np.where(pooled > 0, d, np.where(m_a != m_b, np.inf, 0.0))

    def gap_row(a, bs):
        """How far each pair (a, b) clears the test; < 0 means one motif (merge)."""
        d = dprime_row(a, bs)
        excess = d - np.sqrt(1.0 / n[a] + 1.0 / n[bs]) - min_separation
        # between one and two min_separation apart, groups that keep to their own parts
        # of the image are one motif under a slowly varying condition (module notes)
        out = excess.copy()
        for i in np.flatnonzero((excess >= 0) & (excess < min_separation)):
            if segregated(a, bs[i]) >= SEGREGATED:
                out[i] = -1e-9
        return out

    alive = np.flatnonzero(n >= 2)
    gaps = np.full((k, k), np.inf)
    for i, a in enumerate(alive[:-1]):
        bs = alive[i + 1:]
        gaps[a, bs] = gaps[bs, a] = gap_row(a, bs)
    while len(alive) > 1:
        flat = int(np.argmin(gaps))
        a, b = divmod(flat, k)
        if gaps[a, b] >= 0:
            break
        a, b = min(a, b), max(a, b)
        lam, mu = n[a] / (n[a] + n[b]), n[b] / (n[a] + n[b])
        # the merged group's column of G (and of every sum built on it) is the mix of a and b
        S1[:, a] = lam * S1[:, a] + mu * S1[:, b]
        U[:, a] = lam * U[:, a] + mu * U[:, b]
        S2[:, a, :] = lam * S2[:, a, :] + mu * S2[:, b, :]
        S2[:, :, a] = lam * S2[:, :, a] + mu * S2[:, :, b]
        # and its members are both groups' members
        for arr in (S1, S2, U):
            arr[a] += arr[b]
        T1[a] += T1[b]
        T2[a] += T2[b]
        n[a] += n[b]
        if contacts[0] is not None:
            C = contacts[0]
            C[a] += C[b]
            C[:, a] += C[:, b]
            C[b] = C[:, b] = 0.0
        labels[members[b]] = a
        members[a] = np.concatenate([members[a], members[b]])
        alive = alive[alive != b]
        gaps[b, :] = gaps[:, b] = np.inf
        others = alive[alive != a]
        if len(others):
            gaps[a, others] = gaps[others, a] = gap_row(a, others)
    return labels



def split_hidden(labels, X, patch_size, spacing, sigma, min_separation=MIN_SEPARATION, min_size=5,
                 max_motifs=64, weights=None, positions=None, *, squares=None, neighbours=None):
    """Split motifs whose column counts fall into two clearly separated groups (see module notes).

    Parameters
    ----------
    labels : ndarray (N,) int
        Motif labels, -1 unassigned (left alone).
    X : ndarray (N, P*P)
        Variance-stabilised, flattened patches.
    patch_size : int
    spacing : float
        Nearest-neighbour distance in px.
    sigma : float
        Gaussian width of a column in px (the matched filter for the counts).
    min_separation : float
        The two groups' patches must be this far apart (as in
        :func:`merge_indistinguishable`).
    min_size : int
        Each group must have at least this many columns (the smallest motif).
    max_motifs : int
        Stop splitting beyond this many motifs.
    weights : ndarray (P*P,), optional
        :func:`pixel_weights` for the separation test (default: uniform).
    positions : ndarray (N, 2), optional
        Column positions, for the segregation rule (as in :func:`merge_indistinguishable`).
    squares, neighbours : ndarray, optional
        As in :func:`merge_indistinguishable`.

    Returns
    -------
    ndarray (N,) int
        Labels with new motifs numbered after the existing ones (not renumbered).
    """
    labels = np.asarray(labels).copy()
    P = int(patch_size)
    yy, xx = np.mgrid[0:P, 0:P]
    q = np.ones(P * P) if weights is None else np.asarray(weights, np.float64).ravel()
    st_all = weighted_squares(X, q) if squares is None else np.asarray(squares, np.float64)
    nbr = [neighbours]

    def neighbours_table():
        if nbr[0] is None and positions is not None:
            nbr[0] = neighbour_table(positions)
        return nbr[0]

    queue = [c for c in range(int(labels.max()) + 1 if labels.size else 0)]
    next_label = len(queue)
    while queue and next_label < max_motifs:
        c = queue.pop(0)
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2 * min_size:
            continue
        Xc = np.asarray(X[idx], np.float32)
        counts = principal_combination(column_counts(Xc, P, spacing, sigma, yy, xx))
        best = None
        for j in np.flatnonzero(looks_mixed(counts)):
            h = count_histogram(counts[:, j])
            for gain, small in (fit_two_gaussians(counts[:, j], h=h, min_gain=MIN_BIC_GAIN),
                                fit_tail_group(counts[:, j], h=h, min_gain=MIN_BIC_GAIN)):
                if small is None or gain < MIN_BIC_GAIN or min(small.sum(), (~small).sum()) < min_size:
                    continue
                if best is not None and gain <= best[0]:
                    continue
                # a proposal from one column's counts must pass the same test that merges:
                # the two groups' whole patches at least min_separation apart
                d = separation_of_split(Xc, small, q, st_all[idx])

                def segregated(small=small):
                    table = neighbours_table()
                    if table is None:
                        return 0.0
                    trial = labels.copy()
                    trial[idx[small]] = next_label
                    return segregation(trial, c, next_label, table, (idx[~small], idx[small]))

                if _separated(d, int(small.sum()), int((~small).sum()), min_separation, segregated):
                    best = (gain, small)
        if best is None:
            continue
        labels[idx[best[1]]] = next_label
        queue += [c, next_label]
        next_label += 1
    return labels


def refine_motifs(labels, X, patch_size, spacing, sigma, min_separation=MIN_SEPARATION, min_size=5,
                  positions=None, neighbours=None):
    """Merge what the noise cannot tell apart, then split what the counts can (see module notes).

    Parameters
    ----------
    labels : ndarray (N,) int
        The layout's clusters (-1 unassigned).
    X : ndarray (N, P*P)
        Variance-stabilised, flattened patches.
    patch_size : int
    spacing, sigma : float
        Nearest-neighbour distance and column width in px.
    min_separation : float
        See :func:`merge_indistinguishable`.
    min_size : int
        Smallest motif a split may create.
    positions : ndarray (N, 2), optional
        Column positions, for the segregation rule.
    neighbours : ndarray (N, k) int, optional
        :func:`neighbour_table` of ``positions``, when the caller has it
        (it depends on the positions only); computed here otherwise.

    Returns
    -------
    ndarray (N,) int
        Labels (not renumbered).
    """
    X = np.asarray(X)
    w = pixel_weights(labels, X, centre_window(patch_size, spacing).ravel())
    squares = weighted_squares(X, w)
    table = neighbours if neighbours is not None or positions is None else neighbour_table(positions)
    labels = merge_indistinguishable(labels, X, w, min_separation, positions, squares=squares, neighbours=table)
    # relabel densely and canonically first (by size, ties by smallest column index): the
    # split visits motifs in number order and numbers new motifs after the existing ones
    from .motifs import canonical_labels

    labels = canonical_labels(labels)
    return split_hidden(labels, X, patch_size, spacing, sigma, min_separation, min_size, weights=w,
                        positions=positions, squares=squares, neighbours=table)
