"""Anchor motifs and KL domain comparison (motiflab.variation)."""
import numpy as np
import pytest

from motiflab.datasets.moire import REGISTRY_TYPES, make_moire
from motiflab.errors import MotifLabError
from motiflab.variation import (
    anchor_distances,
    anchor_weights,
    anchors_from_labels,
    compare_domains,
    digitize_features,
    domains_from_centers,
    feature_bins,
    kl_divergence,
    ternary_colors,
)


def test_anchor_weights_and_colours():
    rng = np.random.default_rng(0)
    anchors = rng.normal(size=(3, 8))
    x = np.vstack([anchors, anchors.mean(0, keepdims=True), rng.normal(size=(50, 8))])
    d = anchor_distances(x, anchors)
    assert d.shape == (54, 3)
    assert np.allclose(np.diag(d[:3]), 0, atol=1e-6)
    w = anchor_weights(d)
    assert np.allclose(w.sum(1), 1)
    assert np.allclose(w[:3], np.eye(3))  # a column on an anchor is that anchor's colour
    d_eq = np.array([[2.0, 2.0, 2.0]])
    assert np.allclose(anchor_weights(d_eq), 1 / 3)
    # closer anchor -> larger weight, monotone
    w2 = anchor_weights(np.array([[1.0, 2.0, 4.0]]))
    assert w2[0, 0] > w2[0, 1] > w2[0, 2]
    rgb = ternary_colors(w)
    assert rgb.shape == (54, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert np.allclose(rgb[:3], np.eye(3))
    c = anchor_distances(x, anchors, metric="cosine")
    assert np.all((c >= 0) & (c <= 2))


def test_anchors_from_labels():
    x = np.array([[0.0, 0], [2, 0], [10, 10], [12, 10]])
    a = anchors_from_labels(x, ["a", "a", "b", "b"], ["b", "a"])
    assert np.allclose(a, [[11, 10], [1, 0]])
    with pytest.raises(MotifLabError, match="no columns"):
        anchors_from_labels(x, ["a", "a", "b", "b"], ["c"])


def test_shared_bins():
    a = np.random.default_rng(0).normal(size=(100, 3))
    b = a + 100
    e = feature_bins(a, b, bins=10)
    assert e.shape == (3, 11)
    ia, ib = digitize_features(a, e), digitize_features(b, e)
    assert ia.max() < 10 and ib.min() >= 0
    assert np.median(ia) < np.median(ib)
    # constant feature: still valid edges
    assert np.all(np.diff(feature_bins(np.ones((5, 2)), bins=4), axis=1) > 0)


def _gamma_domains(sizes, scales, seed):
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.standard_gamma(2.0, (n, 20)) * s for n, s in zip(sizes, scales)])
    lab = np.repeat(np.arange(len(sizes)), sizes)
    return x, lab


def test_kl_zero_for_identical_and_positive_for_different():
    x, lab = _gamma_domains([800, 800], [1.0, 1.3], 0)
    assert kl_divergence(x[lab == 0], x[lab == 0]) == pytest.approx(0.0, abs=1e-12)
    assert kl_divergence(x[lab == 0], x[lab == 1]) > 0.05
    sym = kl_divergence(x[lab == 0], x[lab == 1], symmetric=True)
    assert sym == pytest.approx(kl_divergence(x[lab == 1], x[lab == 0], symmetric=True))


def test_compare_domains_null_separates_real_differences():
    # domains 0, 1, 3 from one distribution; domain 2 scaled by 20 %
    x, lab = _gamma_domains([700, 700, 700, 700], [1.0, 1.0, 1.2, 1.0], 1)
    c = compare_domains(x, lab, n_boot=200, seed=0)
    same = [(0, 1), (0, 3), (1, 3)]
    for a, b in same:
        for r, s in ((a, b), (b, a)):
            assert c.p_value[r, s] > 0.01
            assert abs(c.kl_excess[r, s]) < 3 * c.null_std[r, s]
    for o in (0, 1, 3):
        assert c.kl[2, o] > c.null_q99[2, o] and c.kl[o, 2] > c.null_q99[o, 2]
    assert c.significant().sum() == 6
    assert np.all(c.kl_std[~np.eye(4, dtype=bool)] > 0)
    d = c.to_dict()
    assert len(d["kl"]) == 4 and d["sizes"] == [700] * 4


def test_moire_domains_with_zernike_features():
    zernike = pytest.importorskip("motiflab.zernike")
    probe = make_moire(shape=(768, 768), seed=0)
    ab = probe.interior_domains("A'B")
    assert len(ab) >= 4
    perturbed = int(ab[1])
    m = make_moire(shape=(768, 768), seed=0, dose=200, perturbed=[perturbed], perturb_jitter_px=0.7)
    tr = m.sample.truth
    pts = tr.positions[tr.basis < 2]  # one patch per bottom-layer column
    dom = domains_from_centers(pts, m.domain_centers[ab[:4]], m.moire_period_px / 4)
    keep = dom >= 0
    pts, dom = pts[keep], dom[keep]
    img = m.image.astype(np.float32)
    h = 10
    ip = np.rint(pts).astype(int)
    patches = np.stack([img[a - h : a + h + 1, b - h : b + h + 1] for a, b in ip])
    feats = zernike.zernike_moments(patches, 10, rotinv=True)
    c = compare_domains(feats, dom, n_boot=200, seed=0)
    for a in (0, 2, 3):
        assert c.kl[1, a] > c.null_q99[1, a] and c.kl[a, 1] > c.null_q99[a, 1]
    for a, b in ((0, 2), (0, 3), (2, 3)):
        assert c.p_value[a, b] > 0.01 and c.p_value[b, a] > 0.01


def test_moire_registry_geometry():
    from scipy.spatial import cKDTree

    m = make_moire(shape=(512, 512), seed=0)
    assert set(m.domain_types) == set(REGISTRY_TYPES)
    assert m.moire_period_px == pytest.approx(0.316 / 0.03 / (2 * np.sin(np.radians(3.15 / 2))))
    tr = m.sample.truth
    trees = {k: cKDTree(tr.positions[tr.basis == k]) for k in range(4)}
    a = 0.316 / 0.03
    for k in m.interior_domains(margin=40):
        c, t = m.domain_centers[k], m.domain_types[k]
        # at each centre, the expected pair of columns sits on top of each other
        if t == "AB'":
            top, bottom = 2, 0  # metal over metal
        elif t == "A'B":
            top, bottom = 3, 1  # chalcogen over chalcogen
        else:
            top, bottom = 2, 1  # metal over chalcogen
        _, i = trees[top].query(c)
        d, _ = trees[bottom].query(tr.positions[tr.basis == top][i])
        assert d < 0.25 * a


def test_bad_inputs():
    x = np.zeros((10, 3))
    with pytest.raises(MotifLabError, match="different lengths"):
        compare_domains(x, [0] * 9)
    with pytest.raises(MotifLabError, match="at least two domains"):
        compare_domains(x, [0] * 10)
    with pytest.raises(MotifLabError, match="only 5 columns"):
        compare_domains(x, [0] * 5 + [1] * 5)
    with pytest.raises(MotifLabError, match="features"):
        anchor_distances(np.zeros((4, 3)), np.zeros((2, 5)))
    with pytest.raises(MotifLabError, match="NaN"):
        kl_divergence(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(MotifLabError, match="must match"):
        kl_divergence(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(MotifLabError, match="palette"):
        ternary_colors(np.ones((3, 4)) / 4)
    with pytest.raises(MotifLabError, match="radius"):
        domains_from_centers(np.zeros((3, 2)), np.zeros((1, 2)), 0)
