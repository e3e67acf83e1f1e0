"""Separation tests: merge what the noise cannot tell apart, split what the counts can."""
import numpy as np

from motiflab.separation import (centre_window, merge_indistinguishable, neighbour_table, pixel_weights,
                                 refine_motifs, segregation, separation, split_hidden)

P = 15
SPACING = 6.0
SIGMA = 1.5


def _patches(n, centre=1.0, neighbour=1.0, seed=0, noise=1.0):
    """Stabilised patches: a centre column and six neighbours at SPACING, unit pixel noise, matched-filtered."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:P, 0:P]
    c = (P - 1) / 2
    sites = [(c, c)] + [(c + SPACING * np.sin(t), c + SPACING * np.cos(t)) for t in np.arange(6) * np.pi / 3]
    amps = [centre] + [neighbour] * 6
    base = sum(a * 6.0 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * SIGMA**2)) for a, (y, x) in zip(amps, sites))
    X = base[None] + rng.normal(0, noise, (n, P, P))
    X = np.stack([ndimage.gaussian_filter(p, SIGMA) for p in X]) / 0.13  # back to ~unit noise
    return X.reshape(n, -1).astype(np.float32)


def test_separation_is_zero_within_one_population_and_grows_with_the_difference():
    a = _patches(400, seed=1)
    assert separation(a[:200], a[200:]) < 0.5
    for shift, lo in ((0.3, 1.0), (1.0, 4.0)):
        b = _patches(200, centre=1.0 - shift, seed=2)
        assert separation(a[:200], b) > lo


def test_leave_one_out_keeps_small_groups_from_separating_on_their_own_noise():
    a = _patches(300, seed=3)
    d = [separation(a[:6 + i], a[100:106 + i]) for i in range(0, 60, 10)]
    # without leaving each column out of its own mean, six-column groups would sit ~4 apart
    assert np.median(d) < 1.0


def test_pixel_weights_favour_quiet_pixels():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, P * P))
    X[:, :10] *= 5.0  # noisy pixels
    labels = np.zeros(500, int)
    w = pixel_weights(labels, X, np.ones(P * P))
    assert w[:10].max() < 0.1 * np.median(w[10:])


def test_merge_keeps_distinct_motifs_and_joins_noise_splits():
    a = _patches(600, seed=5)
    b = _patches(80, centre=0.4, seed=6)  # a dim-centre motif (a missing atom)
    X = np.vstack([a, b])
    labels = np.r_[np.repeat([0, 1, 2], 200), np.full(80, 3)]  # the big motif cut in three
    w = pixel_weights(labels, X, centre_window(P, SPACING).ravel())
    out = merge_indistinguishable(labels, X, w)
    assert len(np.unique(out[:600])) == 1
    assert len(set(out[600:])) == 1 and out[600] != out[0]
    # min_separation 0 leaves the layout's clusters alone
    assert len(np.unique(merge_indistinguishable(labels, X, w, 0.0))) == 4


def test_split_finds_a_hidden_group_with_one_dim_neighbour():
    a = _patches(900, seed=7)
    b = _patches(60, seed=8)
    # in the hidden group one neighbour column holds half its atoms
    from scipy import ndimage

    yy, xx = np.mgrid[0:P, 0:P]
    c = (P - 1) / 2
    dip = -0.5 * 6.0 * np.exp(-((yy - c) ** 2 + (xx - c - SPACING) ** 2) / (2 * SIGMA**2))
    b = b + (ndimage.gaussian_filter(dip, SIGMA) / 0.13).ravel()[None].astype(np.float32)
    X = np.vstack([a, b])
    labels = np.zeros(len(X), int)
    w = pixel_weights(labels, X, centre_window(P, SPACING).ravel())
    out = split_hidden(labels, X, P, SPACING, SIGMA, weights=w)
    assert len(np.unique(out)) == 2
    hidden = out[900:]
    assert (hidden == hidden[0]).mean() > 0.9 and (out[:900] != hidden[0]).mean() > 0.99


def test_split_finds_two_sublattices_that_differ_at_every_column_a_little():
    """Cation- and O-centred patches of an ABF perovskite at ~1 count: the columns sit at the
    same places, the centre is brighter in one and the neighbours in the other. No single
    column's counts split them clearly; their principal combination does."""
    from motiflab.metrics import clustering_scores

    a = _patches(500, centre=1.0, neighbour=0.75, seed=11, noise=2.0)
    b = _patches(500, centre=0.75, neighbour=1.0, seed=12, noise=2.0)
    X = np.vstack([a, b])
    labels = np.zeros(len(X), int)
    w = pixel_weights(labels, X, centre_window(P, SPACING).ravel())
    out = split_hidden(labels, X, P, SPACING, SIGMA, weights=w)
    assert len(np.unique(out)) == 2
    assert clustering_scores(np.repeat([0, 1], 500), out)["ari"] > 0.9


def test_split_leaves_a_single_population_alone():
    X = _patches(1500, seed=9)
    labels = np.zeros(len(X), int)
    w = pixel_weights(labels, X, centre_window(P, SPACING).ravel())
    assert len(np.unique(split_hidden(labels, X, P, SPACING, SIGMA, weights=w))) == 1


def test_segregation_tells_mixed_groups_from_separate_regions():
    yy, xx = np.mgrid[0:40, 0:40]
    pos = np.column_stack([yy.ravel(), xx.ravel()]).astype(float)
    nbr = neighbour_table(pos)
    mixed = np.random.default_rng(0).integers(0, 2, len(pos))
    halves = (pos[:, 1] >= 20).astype(int)
    assert segregation(mixed, 0, 1, nbr) < 0.1
    assert segregation(halves, 0, 1, nbr) > 0.8


def test_a_slow_gradient_split_in_two_regions_is_one_motif():
    """A distortion that grows across the field: the two halves differ, but keep to their own regions.

    Cut in two, a uniform gradient gives halves ~3 apart (3.46 without noise),
    as far as some real motifs; only where they are decides.
    """
    n = 1600
    yy, xx = np.divmod(np.arange(n), 40)
    pos = np.column_stack([yy, xx]).astype(float)
    drift = xx / 39.0  # 0 .. 1 across the field
    X = _patches(n, seed=11) + (drift[:, None] * 10.0 * (np.arange(P * P) % P > P // 2)).astype(np.float32)
    labels = (xx >= 20).astype(int)
    out = refine_motifs(labels, X, P, SPACING, SIGMA, positions=pos)
    assert len(np.unique(out)) == 1
    # without positions the two halves stand apart
    assert len(np.unique(refine_motifs(labels, X, P, SPACING, SIGMA))) == 2

