"""Issue #15 part 4: a large image in tiles equals the in-memory analysis (motiflab.tiles)."""
import numpy as np
import pytest

import motiflab
from motiflab import tiles
from motiflab.datasets import make_tmd, oriented_classes
from motiflab.errors import MotifLabError
from motiflab.metrics import clustering_scores, match_columns


@pytest.fixture(scope="module")
def mosaic():
    """1024² MoSe₂ with 5 % Se vacancies at ~100 counts per Mo peak, and its in-memory analysis."""
    sim = make_tmd("MoSe2", shape=(1024, 1024), chalcogen_vacancy_rate=0.05, dose=100 / 3.237, seed=5)
    an = motiflab.Analysis(sim.image, seed=0).run()
    return sim, an


def _seam_columns(pos, tile, shape, reach):
    """Columns within ``reach`` px of an inner tile boundary."""
    near = np.zeros(len(pos), bool)
    for axis in (0, 1):
        for b in range(tile, shape[axis], tile):
            near |= np.abs(pos[:, axis] - b) < reach
    return near


def _accuracy(sim, pos, labels):
    """Fraction of matched columns whose motif's majority true class is their own (orientation-resolved)."""
    m = match_columns(pos, sim.truth.positions, tol=2.0)
    ok = m.found_to_true >= 0
    truth = oriented_classes(sim.truth)[m.found_to_true[ok]]
    lab = labels[ok]
    correct = sum(np.unique(truth[lab == k], return_counts=True)[1].max() for k in np.unique(lab))
    return correct / len(lab), ok.mean()


def test_tiled_run_equals_in_memory_run(mosaic):
    """4 tiles of 512² + halo: same columns (none lost or doubled at the seams), positions within 0.05 px,
    and, with the layout fitted in memory on those columns, labels identical up to permutation."""
    sim, an = mosaic
    res = tiles.analyse_tiled(sim.image, tile=512, fit_region=1024, seed=0, scheduler="threads")
    assert res.halo >= res.model.patch_size
    ref, got = an.columns.positions, res.columns.positions
    # the same columns in the same order (the in-memory finder's), each once
    assert got.shape == ref.shape
    diff = np.abs(got - ref).max(axis=1)
    assert diff.max() < 0.05, diff.max()
    # ... including the columns on the seams (within a lattice repeat of a tile boundary)
    seam = _seam_columns(ref, 512, sim.image.shape, an.columns.repeat)
    assert seam.sum() > 300
    assert diff[seam].max() < 0.05
    np.testing.assert_array_equal(res.columns.on_lattice, an.columns.on_lattice)
    assert len(res.columns.rejected_positions) == len(an.columns.rejected_positions)
    # motifs fitted in memory on the same columns: every label agrees up to permutation
    np.testing.assert_allclose(res.positions, an.positions, atol=0.05)
    assert clustering_scores(an.motifs.labels, res.labels)["ari"] == 1.0
    assert res.n_motifs == an.motifs.n_motifs
    assert res.class_averages.shape == an.motifs.class_averages.shape
    np.testing.assert_array_equal(np.sort(res.counts), np.sort(an.motifs.counts))


def test_sampled_layout_and_transform_keep_motif_accuracy(mosaic):
    """Layout fitted on the central 512² (a quarter of the columns), the rest placed with transform: ≥ 0.98."""
    sim, an = mosaic
    res = tiles.analyse_tiled(sim.image, tile=512, fit_region=512, seed=0)
    assert res.fit_region == (256, 768, 256, 768)
    assert len(res.model.labels) < 0.35 * len(res.labels)
    acc, matched = _accuracy(sim, res.positions, res.labels)
    assert matched > 0.99
    assert acc >= 0.98, acc
    mem_acc, _ = _accuracy(sim, an.positions, an.motifs.labels)
    assert acc >= mem_acc - 0.01


def test_lazy_input_and_columns_only(mosaic):
    """A Dask array (any chunks) is read window by window and gives the same columns as a NumPy array."""
    da = pytest.importorskip("dask.array")
    sim, an = mosaic
    lazy = da.from_array(sim.image, chunks=(300, 300))
    res = tiles.find_columns_tiled(lazy, tile=512, scheduler="synchronous")
    assert res.labels is None
    assert res.columns.positions.shape == an.columns.positions.shape
    assert np.abs(res.columns.positions - an.columns.positions).max() < 0.05


def test_default_finder_unchanged_and_scales_reproduce_it():
    """find_columns with the scales it measured itself is the in-memory finder, bit for bit."""
    from motiflab.columns import column_scales, find_columns
    from motiflab.datasets import load_sample

    img = load_sample().image
    cols, scales = column_scales(img)
    again = find_columns(img, scales=scales)
    np.testing.assert_array_equal(cols.positions, again.positions)
    np.testing.assert_array_equal(find_columns(img).positions, cols.positions)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 64, 64)), "2-D image"),
    ("image.tif", "motiflab.load"),
    (np.array([["a"]]), "numeric"),
])
def test_bad_input_is_refused(bad, match):
    with pytest.raises(MotifLabError, match=match):
        tiles.analyse_tiled(bad)


def test_bad_tile_and_halo_are_refused(mosaic):
    sim, _ = mosaic
    with pytest.raises(MotifLabError, match="tile"):
        tiles.find_columns_tiled(sim.image, tile=10)
    with pytest.raises(MotifLabError, match="halo"):
        tiles.find_columns_tiled(sim.image, tile=512, halo=8)
