"""Whole-analysis files (.hspy) and RESULT.npz: round trips, refusals, and writes that survive a kill."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import motiflab
from motiflab.analysis import PIPELINE
from motiflab.errors import InputFileError


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """A computed analysis with its hierarchy and two curation edits, saved once; and its reopened twin."""
    from motiflab.analysis import Analysis
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(192, 192), chalcogen_vacancy_rate=0.05, dose=100, seed=7)
    src = tmp_path_factory.mktemp("af") / "mose2.hspy"
    sim.to_signal(include_truth=False).save(src)
    an = Analysis(str(src), n_iter=60, seed=0).run()
    an.edit({"kind": "assign", "columns": [2, 3, 5], "motif": "new"})
    an.edit({"kind": "merge", "motifs": [0, 1]})
    an.hierarchy
    path = src.parent / "analysis.hspy"
    an.save(path)
    return an, motiflab.open_analysis(path), path


def _arrays(obj, prefix=""):
    """Every array of a stage result, by dotted field name."""
    out = {}
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if not f.name.startswith("_"):
                out.update(_arrays(getattr(obj, f.name), f"{prefix}.{f.name}" if prefix else f.name))
    elif hasattr(obj, "tocsr"):
        for k in ("data", "indices", "indptr"):
            out[f"{prefix}.{k}" if prefix else k] = getattr(obj.tocsr(), k)
    return out


STORED = [(stage, name) for stage, names in {
    "columns": ["positions", "intensity", "prominence", "quality", "support", "on_lattice", "rejected_positions",
                "rejected_quality", "lattice_vectors", "noise_model.fast_profile", "noise_model.slow_profile"],
    "patch_size": ["r", "g"],
    "patches": ["patches", "index", "centers", "evidence"],
    "features": ["X"],
    "graph": ["data", "indices", "indptr"],
    "layout": ["embedding", "snapshots", "snapshot_iterations"],
    "motifs": ["labels", "class_averages", "counts"],
    "hierarchy": ["cells", "cell_node", "cell_component", "component_node", "column_cell", "lattice.u", "lattice.v",
                  "lattice.origin", "lattice.basis"],
}.items() for name in names]


@pytest.mark.parametrize("stage, field", STORED, ids=[f"{s}.{f}" for s, f in STORED])
def test_every_stored_array_comes_back_identical(curated, stage, field):
    an, opened, _ = curated
    assert opened.is_cached(stage)
    a, b = _arrays(an.get(stage)).get(field), _arrays(opened.get(stage)).get(field)
    assert a is not None, f"{stage} has no array {field}"
    assert b.dtype == a.dtype and b.shape == a.shape
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


@pytest.mark.parametrize("stage", ["columns", "patch_size", "patches", "features", "layout", "motifs", "hierarchy"])
def test_every_stored_scalar_and_record_comes_back_equal(curated, stage):
    an, opened, _ = curated
    a, b = an.get(stage), opened.get(stage)
    for f in dataclasses.fields(a):
        if f.name.startswith("_"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or dataclasses.is_dataclass(x) or x is None:
            continue
        if isinstance(x, float) and np.isnan(x):
            assert np.isnan(y), f.name
        elif stage == "hierarchy" and f.name == "motif_cells":
            assert [m.to_json() for m in x] == [m.to_json() for m in y]
        else:
            assert x == y, f.name


def test_parameters_edits_image_calibration_and_provenance(curated):
    an, opened, path = curated
    assert opened.params == an.params
    assert opened.edits == an.edits and len(opened.edits) == 2
    assert np.array_equal(opened.image, an.image) and opened.image.dtype == np.float32
    assert opened.calibration == an.calibration
    assert opened.source_sha256 == an.source_sha256 and len(an.source_sha256) == 64
    prov = opened.saved_provenance
    assert prov["motiflab"] == motiflab.__version__ and prov["input"]["name"] == "mose2.hspy"
    assert set(prov["versions"]) >= {"numpy", "scipy", "numba", "scikit-learn", "hyperspy"}
    assert [s for s, _ in opened.log] == [s for s, _ in an.log]


def test_an_opened_analysis_recomputes_nothing_and_its_undo_history_works(curated):
    an, opened, _ = curated
    twin = opened.copy()
    n0 = len(twin.log)
    assert twin.hierarchy.to_json() == an.hierarchy.to_json() and twin.summary() == an.summary()
    assert len(twin.log) == n0
    twin.undo()  # the merge
    fresh = an.copy()
    fresh.undo()
    assert np.array_equal(twin.motifs.labels, fresh.motifs.labels)
    assert [s for s, _ in twin.log[n0:]] == ["motifs"]
    twin.undo()
    assert twin.edits == []


def test_hyperspy_opens_it_as_the_calibrated_image(curated):
    import hyperspy.api as hs

    an, _, path = curated
    s = hs.load(path)
    assert s.data.shape == an.image.shape
    assert s.axes_manager.signal_axes[0].units == an.calibration.units


def test_files_that_are_not_analyses_are_refused_clearly(tmp_path, curated):
    an, _, path = curated
    image_only = tmp_path / "image.hspy"
    an.signal.save(image_only)
    with pytest.raises(InputFileError, match="no motiflab analysis"):
        motiflab.open_analysis(image_only)
    truncated = tmp_path / "cut.hspy"
    truncated.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    before = truncated.read_bytes()
    with pytest.raises(InputFileError, match="could not read"):
        motiflab.open_analysis(truncated)
    assert truncated.read_bytes() == before  # left as it was
    with pytest.raises(InputFileError, match="no such file"):
        motiflab.open_analysis(tmp_path / "missing.hspy")


def _tampered(path, out, item, value):
    """A copy of the saved analysis at ``path`` with one metadata item changed."""
    import hyperspy.api as hs

    s = hs.load(path)
    s.metadata.set_item(item, value)
    s.save(out)
    return out


@pytest.mark.parametrize("item, value, words", [
    ("motiflab.format_version", json.dumps(99), "format version 99.*update motiflab"),
    ("motiflab.stages.motifs.motiflab_type", "os.system", "unknown result type"),  # never built from a file
])
def test_a_changed_format_or_a_foreign_class_is_refused(tmp_path, curated, item, value, words):
    bad = _tampered(curated[2], tmp_path / "bad.hspy", item, value)
    with pytest.raises(InputFileError, match=words):
        motiflab.open_analysis(bad)


def test_save_refuses_an_existing_file_and_unknown_suffixes(tmp_path, curated):
    an, _, path = curated
    with pytest.raises(InputFileError, match="already exists"):
        an.save(path)
    with pytest.raises(motiflab.MotifLabError, match=".hspy"):
        an.save(tmp_path / "x.json")
    with pytest.raises(InputFileError, match="input"):
        an.save(an.source_path, overwrite=True)


# ------------------------------------------------------------------------------ RESULT.npz


def test_result_npz_opens_with_its_parameters_and_provenance(tmp_path, curated):
    an, _, _ = curated
    out = an.save(tmp_path / "r.npz")
    r = motiflab.open_result(out)
    assert np.array_equal(r["labels"], an.motifs.labels)
    assert r["params"] == json.loads(json.dumps(an.params)) and r["edits"] == json.loads(json.dumps(an.edits))
    assert r["provenance"]["input"]["sha256"] == an.source_sha256 and r["result_format"] == 2
    with pytest.raises(InputFileError, match="motiflab.open_result"):
        motiflab.load(out)  # not an image: the message says how to open it


def test_result_readers_refuse_truncated_pickled_and_foreign_npz(tmp_path, curated):
    an, _, _ = curated
    out = an.save(tmp_path / "r.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(out.read_bytes()[:-200])
    with pytest.raises(InputFileError, match="truncated or corrupt"):
        motiflab.open_result(cut)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, positions=np.array([object()], dtype=object), labels=np.zeros(1))
    with pytest.raises(InputFileError):
        motiflab.open_result(pickled)  # never unpickled
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(InputFileError, match="not a motiflab result"):
        motiflab.open_result(foreign)


def test_table_coordinates_are_positions_times_calibration(curated):
    an, opened, _ = curated
    t = opened.table()
    assert len(t) == len(an.positions)
    cal = an.calibration
    np.testing.assert_allclose(t["x"], an.positions[:, 1] * cal.scale + cal.offset[1])
    np.testing.assert_allclose(t["y"], an.positions[:, 0] * cal.scale + cal.offset[0])
    assert (t["motif"].to_numpy() == an.motifs.labels).all()
    assert set(t.columns) >= {"quality", "intensity", "nn_distance", "motif_cell"}
    assert (t["motif_cell"] >= 0).mean() > 0.5 and (t["intensity"] > 0).all()


# ------------------------------------------------------------------------------ kill test

# the write path of Analysis.save, without paying for an analysis in every killed process
_WRITER = """
import sys, numpy as np
from motiflab.files import write_atomic
with np.load(sys.argv[2], allow_pickle=False) as z:
    arrays = {k: z[k] for k in z.files}
print("ready", flush=True)
while True:
    write_atomic(sys.argv[1], lambda f: np.savez_compressed(f, **arrays), overwrite=True)
"""


@pytest.mark.slow
def test_a_save_killed_at_any_moment_leaves_a_readable_file(tmp_path, curated):
    """SIGKILL a process saving over an existing result, at random moments: the file is always whole."""
    src = curated[0].save(tmp_path / "source.npz")
    out = tmp_path / "r.npz"
    rng = np.random.default_rng(0)
    kills = 0
    while kills < 24:
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out), str(src)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.3)))  # a save takes about 0.1 s: anywhere in the first few
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if out.exists():
            r = motiflab.open_result(out)
            assert r["positions"].shape[1] == 2
    assert out.exists()
    leftovers = [p for p in tmp_path.iterdir() if p not in (out, src)]
    assert all(".part" in p.name for p in leftovers)  # only our own unique temporary names, never a half result
    assert len(leftovers) >= 12  # most kills landed in the middle of a write (what the test is about)


def test_a_fresh_process_opens_the_same_analysis(tmp_path, curated):
    """Saved here, opened in a new interpreter: the same arrays, parameters and undo history."""
    an, _, path = curated
    out = tmp_path / "from_fresh.npz"
    code = ("import sys, motiflab; a = motiflab.open_analysis(sys.argv[1]); n = len(a.log); "
            "assert a.hierarchy is not None and len(a.log) == n; a.save(sys.argv[2]); "
            "a.undo(); print(a.motifs.n_motifs, len(a.edits))")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(out)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    fresh = motiflab.open_result(out)
    mine = an.result_arrays()
    for k in ("positions", "labels", "features", "embedding", "class_averages", "counts", "quality"):
        assert np.array_equal(fresh[k], mine[k]), k
    assert fresh["params"] == json.loads(json.dumps(an.params))
    undone = an.copy()
    undone.undo()
    assert done.stdout.split() == [str(undone.motifs.n_motifs), "1"]
