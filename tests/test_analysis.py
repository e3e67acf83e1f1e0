"""The analysis object: stage caching and invalidation (the contract the widgets rely on)."""
import numpy as np
import pytest

from motiflab.analysis import PIPELINE, Analysis
from motiflab.errors import MotifLabError


@pytest.fixture(scope="module")
def small():
    from motiflab.datasets import make_tmd

    return make_tmd("MoSe2", shape=(192, 192), chalcogen_vacancy_rate=0.05, dose=100, seed=7)


def _ran(an, start):
    return [s for s, _ in an.log[start:]]


def test_first_run_computes_each_stage_once(small):
    an = Analysis(small.image, n_iter=60)
    an.run()
    assert _ran(an, 0) == list(PIPELINE)
    an.run()
    assert _ran(an, 0) == list(PIPELINE)  # nothing recomputed


@pytest.mark.parametrize(
    "param, value, expected",
    [
        ("min_cluster_size", 7, ["motifs"]),
        ("stage2_alpha", 8.0, ["layout", "motifs"]),
        ("n_iter", 40, ["layout", "motifs"]),
        ("n_neighbors", 8, ["graph", "layout", "motifs"]),
        ("rotinv", True, ["features", "graph", "layout", "motifs"]),
        ("n_max", 8, ["features", "graph", "layout", "motifs"]),
        ("patch_size", 21, ["patch_size", "patches", "features", "graph", "layout", "motifs"]),
        ("threshold", 6.0, list(PIPELINE)),
    ],
)
def test_a_change_recomputes_exactly_the_downstream_stages(small, param, value, expected):
    an = Analysis(small.image, n_iter=60).run()
    n0 = len(an.log)
    stale = an.set(**{param: value})
    assert stale == expected
    an.run()
    assert _ran(an, n0) == expected


def test_setting_the_same_value_drops_nothing(small):
    an = Analysis(small.image, n_iter=60).run()
    assert an.set(n_max=10, rotinv=False) == []


def test_unknown_parameter_lists_valid_ones(small):
    with pytest.raises(MotifLabError, match="valid ones"):
        Analysis(small.image, smoothness=3)
    an = Analysis(small.image)
    with pytest.raises(MotifLabError, match="unknown parameter"):
        an.set(alpha=1)


def test_result_arrays_follow_the_cli_contract(small):
    an = Analysis(small.image, n_iter=60).run()
    r = an.result_arrays()
    n = len(r["positions"])
    assert r["positions"].shape == (n, 2) and r["positions"].dtype == np.float64
    assert r["labels"].shape == (n,) and np.issubdtype(r["labels"].dtype, np.integer)
    assert r["features"].shape == (n, 66) and r["features"].dtype == np.float32
    assert r["embedding"].shape == (n, 2) and r["embedding"].dtype == np.float32
    P = int(r["patch_size"])
    assert r["class_averages"].shape[1:] == (P, P)
    assert r["class_averages"].shape[0] == r["labels"].max() + 1
    # additions: every column's significance, and how the columns were found
    assert r["quality"].shape == (n,) and r["quality"].dtype == np.float32
    np.testing.assert_array_equal(r["quality"], an.columns.quality[an.patches.index])
    import json

    det = json.loads(str(r["detection"]))
    assert det["smoothing"] == "matched" and det["threshold"] == 5.0
    assert det["n_rejected"] == an.columns.n_rejected and det["noise"]["slope"] > 0


def test_calibration_is_carried_through(small):
    an = Analysis(small.to_signal(), n_iter=60)
    assert an.calibration.units == "nm"
    assert an.calibration.scale == pytest.approx(small.pixel_size)
    lm = an.label_map()
    assert lm.axes_manager.signal_axes[0].units == "nm"
    assert lm.axes_manager.signal_axes[0].scale == pytest.approx(small.pixel_size)
    ca = an.class_averages_signal()
    assert ca.data.shape[0] == an.motifs.n_motifs
    mk = an.markers()
    assert len(mk.kwargs["offsets"]) == len(an.positions)
    # marker offsets are in nm (x, y)
    np.testing.assert_allclose(mk.kwargs["offsets"][:, 0], an.positions[:, 1] * small.pixel_size)


def test_reconstruction_resembles_the_image(small):
    an = Analysis(small.image, n_iter=60).run()
    rec = an.reconstruction()
    assert rec.shape == small.image.shape
    inner = (slice(20, -20), slice(20, -20))
    clean = small.image.astype(float)
    assert np.corrcoef(rec[inner].ravel(), clean[inner].ravel())[0, 1] > 0.8


def test_same_seed_same_result(small):
    a = Analysis(small.image, n_iter=60, seed=3).run()
    b = Analysis(small.image, n_iter=60, seed=3).run()
    np.testing.assert_array_equal(a.layout.embedding, b.layout.embedding)
    np.testing.assert_array_equal(a.motifs.labels, b.motifs.labels)


def test_too_few_columns_is_a_clear_error():
    from motiflab.datasets import make_tmd

    tiny = make_tmd("MoSe2", shape=(40, 40), seed=1)
    with pytest.raises(MotifLabError, match="columns"):
        Analysis(tiny.image, patch_size=15).run()


def test_patch_larger_than_image(small):
    with pytest.raises(MotifLabError, match="larger than the image"):
        Analysis(small.image, patch_size=500).run()


@pytest.mark.parametrize("scale, offset", [(1e-25, 0.0), (1e35, 0.0), (1e12, 0.0), (0.37, 0.0), (1.0, 1e8),
                                           (1e-14, 1e-9)])
def test_any_positive_scale_or_offset_gives_the_same_columns_and_motifs(small, scale, offset):
    """Units do not matter: a constant factor or offset changes no column and no motif."""
    img = small.image.astype(np.float64)
    ref = Analysis(img, n_iter=60, seed=0).run()
    an = Analysis(img * scale + offset, n_iter=60, seed=0).run()
    assert len(an.positions) == len(ref.positions)
    np.testing.assert_allclose(an.positions, ref.positions, atol=1e-3)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(ref.motifs.labels, an.motifs.labels) == 1.0
    # the table reports intensities in the units given (up to the offset the discs add)
    if offset == 0.0:
        np.testing.assert_allclose(an.table()["intensity"], ref.table()["intensity"] * scale, rtol=1e-3)


def test_a_restored_stage_needs_none_of_its_inputs_recomputed(small):
    """Layout and motifs from elsewhere (a model, a file): the RESULT needs columns, patches and
    features, never the kNN graph or a new layout."""
    base = Analysis(small.image, n_iter=60).run()
    an = Analysis(small.image, n_iter=60)
    an.restore_stage("layout", base.layout)
    an.restore_stage("motifs", base.motifs)
    r = an.result_arrays()
    assert [s for s, _ in an.log] == ["columns", "patch_size", "patches", "features"]
    np.testing.assert_array_equal(r["labels"], base.motifs.labels)


def test_the_columns_neighbour_table_is_queried_once_per_set_of_columns(small, monkeypatch):
    """A new layout of the same columns reuses their neighbour table (Analysis.derived); new columns do not,
    and the motifs are those of a table computed afresh."""
    from motiflab import separation
    from motiflab.motifs import find_motifs
    from motiflab.stages import stage_kwargs

    queried = []
    original = separation.neighbour_table
    monkeypatch.setattr(separation, "neighbour_table", lambda pos, k=12: queried.append(len(pos)) or original(pos, k))
    an = Analysis(small.image, n_iter=60).run()
    assert len(queried) == 1
    an.set(stage2_alpha=8.0)
    an.run()
    assert len(queried) == 1  # the same columns: the kept table
    pt, cols = an.get("patches"), an.get("columns")
    fresh = find_motifs(an.layout.embedding, pt.patches, **stage_kwargs(an.params, "motifs"), features=an.features.X,
                        evidence=pt.evidence, spacing=cols.spacing / pt.evidence_scale,
                        column_sigma=cols.column_sigma / pt.evidence_scale, positions=an.positions,
                        random_state=an.params["seed"], lattice_vectors=cols.lattice_vectors,
                        evidence_scale=pt.evidence_scale)
    assert len(queried) == 2  # find_motifs without a table queries its own
    np.testing.assert_array_equal(fresh.labels, an.motifs.labels)
    an.set(threshold=6.0)
    an.run()
    assert len(queried) == 3  # new columns: a new table
