"""Parity splits of motifs on the column lattice (motiflab.superlattice)."""
import numpy as np
import pytest

from motiflab import Analysis
from motiflab.datasets import make_perovskite, make_tmd
from motiflab.metrics import clustering_scores, match_columns
from motiflab.superlattice import MIN_T, parity_contrast, split_by_superlattice


def _truth(an, sim):
    m = match_columns(an.positions, sim.truth.positions, tol=2.0)
    ok = m.found_to_true >= 0
    cls = np.array([f"{s}{b}" for s, b in zip(sim.truth.sublattice, sim.truth.basis)])
    return ok, cls[np.maximum(m.found_to_true, 0)]


def _abf_scores(counts, seed):
    sim = make_perovskite(shape=(320, 320), mode="abf", dose=counts / (1.024 / 10), seed=seed)
    an = Analysis(sim.image, seed=0).run()
    ok, truth = _truth(an, sim)
    return an.motifs.n_motifs, clustering_scores(truth[ok], an.motifs.labels[ok])["ari"]


def test_abf_perovskite_keeps_four_column_kinds_at_3_counts():
    """Sr, Ti-O and the two O orientations alternate on one centred lattice: one motif each."""
    for seed in (3, 4):
        n, ari = _abf_scores(3.0, seed)
        assert n == 4 and ari > 0.95, (seed, n, ari)


def test_abf_perovskite_at_1_count_over_eight_images():
    """At ~1 count the four kinds are at the edge of what the counts can tell apart.

    The layout lumps the columns into two motifs (cations, O; ARI ~0.44). The lattice
    split of one of them is clear (cross-fitted t = 10-14), that of the other sits at
    the detection limit (t = 5.6 +- 0.9 over 23 images against MIN_T = 6), so whether an
    image ends with 3 or 4 motifs is decided by the floating-point sums of the layout
    (a CPU, a kernel's compiled form, the layout seed). Over images 3-26 and layout seeds
    0-2, 4 motifs in 12, 11, 15 of 23 images with the FR kernel of literal exponents and
    in 4, 13, 17 with the one of run-time exponents (38 vs 34 of 69), mean ARI 0.62-0.71.
    Asserted, over eight images, what holds for every one of those runs: never lumped
    into two motifs nor split beyond five, and ARI well above the lumped 0.44.
    """
    runs = [_abf_scores(1.0, seed) for seed in range(3, 11)]
    assert all(3 <= n <= 5 for n, _ in runs), runs
    aris = sorted(a for _, a in runs)
    assert aris[0] > 0.5 and aris[len(aris) // 2] > 0.55, runs


def test_no_split_when_the_parity_classes_do_not_differ():
    """A pure MoSe2 crystal at ~1 count: Mo and Se2 stay one motif each, labels untouched by the test."""
    sim = make_tmd("MoSe2", shape=(320, 320), dose=1 / 3.237, seed=3)
    an = Analysis(sim.image, seed=0).run()
    cols, pt = an.columns, an.patches
    labels = an.motifs.labels
    ev = pt.evidence.reshape(len(pt.evidence), -1)
    out = split_by_superlattice(labels, ev, pt.evidence.shape[1], cols.spacing / pt.evidence_scale,
                                cols.column_sigma / pt.evidence_scale, an.positions, cols.lattice_vectors,
                                scale=pt.evidence_scale)
    assert np.array_equal(out, labels) and an.motifs.n_motifs == 2


def test_parity_contrast_is_unbiased_noise_under_the_null():
    """No difference between the parity groups: the cross-fitted t is about N(0, 1), never near MIN_T."""
    rng = np.random.default_rng(0)
    ts = []
    for _ in range(300):
        counts = rng.normal(size=(400, 9)) @ rng.normal(size=(9, 9))  # correlated counts
        group = rng.random(400) < 0.5
        half = rng.random(400) < 0.5
        ts.append(parity_contrast(counts, group, half)[0])
    ts = np.array(ts)
    assert abs(ts.mean()) < 0.25 and 0.7 < ts.std() < 1.4 and ts.max() < MIN_T - 2


def test_a_real_difference_is_found_and_sized():
    rng = np.random.default_rng(1)
    counts = rng.normal(size=(400, 5))
    group = np.arange(400) % 2 == 1
    counts[group, 0] += 1.0  # d' = 1 at one site
    t, dp = parity_contrast(counts, group, rng.random(400) < 0.5)
    assert t > MIN_T and 0.6 < dp < 1.4


@pytest.mark.parametrize("vectors", [None, np.zeros((2, 2)), [[1.0, 0.0], [2.0, 0.0]], [[np.nan, 1], [1, 0]],
                                     np.eye(3)])
def test_no_usable_lattice_leaves_the_labels(vectors):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200)
    out = split_by_superlattice(labels, rng.normal(size=(200, 81)), 9, 4.0, 1.0, rng.random((200, 2)) * 100, vectors)
    assert np.array_equal(out, labels)
