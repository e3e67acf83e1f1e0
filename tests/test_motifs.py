"""Motif classes: clustering of the layout, merging, class averages, reconstruction."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from motiflab.errors import MotifLabError
from motiflab.motifs import (attach_noise, canonical_labels, class_averages, cluster_layout, find_motifs,
                             reconstruct_image)


def _blobs(n, seed=0, rare=0.002):
    rng = np.random.default_rng(seed)
    p = np.r_[[0.4, 0.4], np.full(9, 0.02), [rare]]
    p /= p.sum()
    centres = np.array([[30 * np.cos(t), 30 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 13)[:-1]])
    lab = rng.choice(12, n, p=p)
    return centres[lab] + rng.normal(0, 0.5, (n, 2)), lab


@pytest.mark.parametrize("n, rare", [(3000, 0.005), (30000, 0.002)])
def test_cluster_layout_recovers_blobs_including_a_rare_one(n, rare):
    Y, lab = _blobs(n, rare=rare)
    labels = cluster_layout(Y)
    assert adjusted_rand_score(lab, labels) > 0.99
    rare = labels[lab == 11]
    assert (rare == np.bincount(rare[rare >= 0]).argmax()).mean() > 0.9
    # labels ordered by decreasing size
    counts = np.bincount(labels[labels >= 0])
    assert np.all(np.diff(counts) <= 0)


@pytest.mark.parametrize("n", [2500, 12000])
def test_hdbscan_finds_the_classes_of_scikit_learns_reference(n):
    """The hdbscan library's Borůvka tree gives scikit-learn's HDBSCAN* clusters (same min_samples convention)."""
    from sklearn.cluster import HDBSCAN

    from motiflab.motifs import default_min_cluster_size

    Y, lab = _blobs(n, seed=3, rare=0.01)
    ours = cluster_layout(Y, max_points=None)
    mcs = default_min_cluster_size(n)
    ref = HDBSCAN(min_cluster_size=mcs, min_samples=min(mcs, 15), copy=True).fit_predict(Y)
    assert adjusted_rand_score(lab, ours) > 0.99
    assert adjusted_rand_score(ref, ours) > 0.999
    assert abs(int((ours < 0).sum()) - int((ref < 0).sum())) <= max(3, n // 1000)


def test_cluster_selection_epsilon_merges_close_clusters():
    """epsilon > 0 works (scikit-learn's own failed inside its Cython tree code with current NumPy)."""
    rng = np.random.default_rng(0)
    Y = np.concatenate([rng.normal((0, 0), 0.3, (300, 2)), rng.normal((3, 0), 0.3, (300, 2)),
                        rng.normal((40, 0), 0.3, (300, 2))])
    apart = cluster_layout(Y, min_cluster_size=50)
    merged = cluster_layout(Y, min_cluster_size=50, cluster_selection_epsilon=10.0)
    assert len(set(apart[apart >= 0])) == 3
    assert len(set(merged[merged >= 0])) == 2


def test_subsampled_clustering_is_seeded():
    Y, _ = _blobs(25000, seed=2)
    np.testing.assert_array_equal(cluster_layout(Y, random_state=1), cluster_layout(Y, random_state=1))


def test_find_motifs_follows_the_evidence_not_the_layout():
    """Two layout clusters of one population become one motif; a distinct small group stays apart."""
    from .test_separation import P, SPACING, SIGMA, _patches

    ev = np.vstack([_patches(800, seed=1), _patches(60, centre=0.3, seed=2)])
    rng = np.random.default_rng(0)
    # the layout cut the big population in two blobs and put the defect in a third
    Y = np.vstack([rng.normal((0, 0), 0.5, (400, 2)), rng.normal((10, 0), 0.5, (400, 2)),
                   rng.normal((0, 10), 0.5, (60, 2))])
    patches = ev.reshape(-1, P, P)
    m = find_motifs(Y, patches, evidence=patches, spacing=SPACING, column_sigma=SIGMA)
    assert m.n_motifs == 2
    assert len(np.unique(m.labels[:800])) == 1 and len(np.unique(m.labels[800:])) == 1
    # min_separation=0 keeps the layout's three clusters
    m0 = find_motifs(Y, patches, evidence=patches, spacing=SPACING, column_sigma=SIGMA, min_separation=0)
    assert m0.n_motifs == 3
    with pytest.raises(MotifLabError, match="spacing"):
        find_motifs(Y, patches, evidence=patches)


def _oriented_patches(n, dim=None, seed=0):
    """Stabilised patches of a column with six neighbours; neighbour ``dim`` (0-5) at a third of the brightness."""
    from scipy import ndimage

    from .test_separation import P, SIGMA, SPACING

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:P, 0:P]
    c = (P - 1) / 2
    sites = [(c, c)] + [(c + SPACING * np.sin(t), c + SPACING * np.cos(t)) for t in np.arange(6) * np.pi / 3]
    amps = [1.0] + [0.3 if k == dim else 1.0 for k in range(6)]
    base = sum(a * 6.0 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * SIGMA**2)) for a, (y, x) in zip(amps, sites))
    X = base[None] + rng.normal(0, 1.0, (n, P, P))
    return (np.stack([ndimage.gaussian_filter(p, SIGMA) for p in X]) / 0.13).astype(np.float32)


def test_rotations_fold_orientation_variants_into_one_motif():
    """One defect in three orientations: three motifs as the patches are, one when compared up to rotation."""
    from .test_separation import SIGMA, SPACING

    ev = np.concatenate([_oriented_patches(600, seed=1)]
                        + [_oriented_patches(80, dim=k, seed=2 + k) for k in (0, 2, 4)])
    rng = np.random.default_rng(0)
    Y = np.vstack([rng.normal((0, 0), 0.5, (600, 2))] + [rng.normal((10 * k, 10), 0.5, (80, 2)) for k in (1, 2, 3)])
    signed = find_motifs(Y, ev, evidence=ev, spacing=SPACING, column_sigma=SIGMA)
    folded = find_motifs(Y, ev, evidence=ev, spacing=SPACING, column_sigma=SIGMA, rotations=6)
    truth = np.r_[np.zeros(600, int), np.repeat([1, 2, 3], 80)]
    assert signed.n_motifs == 4 and adjusted_rand_score(truth, signed.labels) > 0.99
    assert folded.n_motifs == 2 and adjusted_rand_score(truth > 0, folded.labels) > 0.99
    assert folded.params["rotations"] == 6


def test_attach_noise_only_inside_a_class():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 1, (200, 5)), rng.normal(20, 1, (200, 5)), [[0.1] * 5, [500.0] * 5]])
    labels = np.r_[np.zeros(200, int), np.ones(200, int), -1, -1]
    out = attach_noise(labels, X)
    assert out[-2] == 0 and out[-1] == -1


def test_class_averages_equal_a_loop():
    rng = np.random.default_rng(0)
    patches = rng.random((300, 7, 7)).astype(np.float32)
    labels = rng.integers(-1, 4, 300)
    avg, counts = class_averages(patches, labels)
    for k in range(4):
        np.testing.assert_allclose(avg[k], patches[labels == k].mean(0), rtol=1e-5)
        assert counts[k] == (labels == k).sum()


def test_reconstruction_places_averages_at_positions():
    P = 9
    avg = np.zeros((2, P, P), np.float32)
    avg[0, 4, 4] = 1.0
    avg[1, 4, 4] = 2.0
    pos = np.array([[20.0, 20.0], [40.0, 10.0], [5.0, 5.0]])
    rec = reconstruct_image((60, 60), pos, np.array([0, 1, -1]), avg, window="flat")
    assert rec[20, 20] == pytest.approx(1.0) and rec[40, 10] == pytest.approx(2.0)
    assert rec[5, 5] == pytest.approx(0.0)  # unassigned columns are left out


def test_find_motifs_end_to_end_small():
    Y, lab = _blobs(2000, seed=3)
    patches = np.repeat(lab[:, None, None].astype(np.float32), 5, 1).repeat(5, 2)
    m = find_motifs(Y, patches)
    assert m.n_motifs == len(m.counts) == m.class_averages.shape[0]
    assert m.counts.sum() + m.n_unassigned == len(Y)


def test_too_few_points_to_cluster():
    with pytest.raises(MotifLabError, match="too few"):
        cluster_layout(np.zeros((6, 2)))
    with pytest.raises(MotifLabError, match=r"\(N, 2\)"):
        cluster_layout(np.zeros((60, 3)))


def test_canonical_labels_depend_on_the_partition_only():
    """Largest first, equal sizes in the order of their smallest column index, −1 kept."""
    lab = np.array([7, 3, 3, -1, 7, 5, 5, 5, 9, 3, 7, -1, 9])
    out = canonical_labels(lab)
    # sizes: 7 → 3 (first at 0), 3 → 3 (first at 1), 5 → 3 (first at 5), 9 → 2
    np.testing.assert_array_equal(out, [0, 1, 1, -1, 0, 2, 2, 2, 3, 1, 0, -1, 3])
    # any renaming of the groups gives the same numbers
    rng = np.random.default_rng(0)
    for _ in range(5):
        names = rng.permutation(50)[:10]
        renamed = np.where(lab >= 0, names[np.maximum(lab, 0)], -1)
        np.testing.assert_array_equal(canonical_labels(renamed), out)
    assert canonical_labels(np.full(4, -1)).tolist() == [-1] * 4
    assert canonical_labels(np.zeros(0, int)).shape == (0,)


def test_find_motifs_numbers_equal_sized_motifs_by_first_column():
    """Two motifs of the same size: the one holding the smaller column index is numbered first."""
    rng = np.random.default_rng(4)
    sizes, centres = (300, 100, 100), ((0, 0), (20, 0), (0, 20))
    Y = np.vstack([rng.normal(c, 0.5, (n, 2)) for c, n in zip(centres, sizes)])
    truth = np.repeat([0, 1, 2], sizes)
    patches = np.repeat(truth[:, None, None].astype(np.float32), 5, 1).repeat(5, 2)
    for perm in (np.arange(len(Y)), rng.permutation(len(Y))):
        m = find_motifs(Y[perm], patches[perm])
        assert adjusted_rand_score(truth[perm], m.labels) == 1.0
        assert m.counts.tolist() == [300, 100, 100]
        first = [np.flatnonzero(m.labels == k).min() for k in (1, 2)]
        assert first[0] < first[1]
        # class averages follow the numbers
        for k in range(3):
            assert m.class_averages[k, 0, 0] == truth[perm][m.labels == k][0]
