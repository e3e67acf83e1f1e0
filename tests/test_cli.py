"""The command line contract: motiflab run / demo / batch."""
import json
import subprocess
import sys

import numpy as np
import pytest

import motiflab

from motiflab.cli import main


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(192, 192), chalcogen_vacancy_rate=0.05, dose=100, seed=2)
    p = tmp_path_factory.mktemp("cli") / "mose2.hspy"
    sim.to_signal(include_truth=False).save(p)
    return p


def test_run_writes_the_contract(tmp_path, image_file):
    out = tmp_path / "result.npz"
    rc = main(["run", str(image_file), "--out", str(out), "--seed", "0", "--n-iter", "80", "-q"])
    assert rc == 0
    r = np.load(out)
    n = len(r["positions"])
    for key, shape in [("positions", (n, 2)), ("labels", (n,)), ("features", (n, 66)), ("embedding", (n, 2))]:
        assert r[key].shape == shape, key
    assert r["features"].dtype == np.float32 and r["embedding"].dtype == np.float32
    P = int(r["patch_size"])
    assert r["class_averages"].shape[1:] == (P, P)


def test_run_options(tmp_path, image_file):
    out = tmp_path / "r.npz"
    assert main(["run", str(image_file), "--out", str(out), "--patch-size", "19", "--n-max", "6",
                 "--rotinv", "--n-iter", "60", "-q"]) == 0
    r = np.load(out)
    assert int(r["patch_size"]) == 19
    assert r["features"].shape[1] == 16  # rotation-invariant features for n_max = 6


def test_never_overwrites_without_flag(tmp_path, image_file, capsys):
    out = tmp_path / "r.npz"
    out.write_bytes(b"keep me")
    assert main(["run", str(image_file), "--out", str(out), "-q"]) == 2
    assert out.read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err


def test_bad_inputs_exit_2_with_a_message(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.dm4"), "--out", str(tmp_path / "x.npz"), "-q"]) == 2
    assert "no such file" in capsys.readouterr().err
    nan = tmp_path / "nan.npy"
    a = np.ones((64, 64))
    a[3, 3] = np.nan
    np.save(nan, a)
    assert main(["run", str(nan), "--out", str(tmp_path / "y.npz"), "-q"]) == 2
    assert "NaN" in capsys.readouterr().err
    assert main(["run", str(nan), "--out", str(tmp_path / "z.npz"), "--patch-size", "big", "-q"]) == 2


def test_hierarchy_json_contract(tmp_path, image_file):
    out, hier = tmp_path / "r.npz", tmp_path / "h.json"
    assert main(["run", str(image_file), "--out", str(out), "--hierarchy", str(hier), "--n-iter", "80", "-q"]) == 0
    h = json.loads(hier.read_text())
    assert set(h) >= {"lattice", "motif_cells", "edges"}
    assert len(h["lattice"]["u"]) == 2 and len(h["lattice"]["v"]) == 2
    for mc in h["motif_cells"]:
        assert set(mc) >= {"id", "level", "count", "dominant", "composition", "pattern", "locations"}
    assert sum(mc["dominant"] for mc in h["motif_cells"]) == 1
    ids = {mc["id"] for mc in h["motif_cells"]}
    assert all(a in ids and b in ids for a, b in h["edges"])


def test_demo_writes_offline_html(tmp_path):
    out = tmp_path / "demo.html"
    assert main(["demo", "--out", str(out), "-q"]) == 0
    html = out.read_text()
    assert "cdn.bokeh.org" not in html  # resources inlined: works offline
    assert "Bokeh" in html and len(html) > 500_000


def test_entry_point_installed():
    r = subprocess.run([sys.executable, "-m", "motiflab.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "run" in r.stdout and "demo" in r.stdout


def test_batch_with_dask(tmp_path, image_file):
    import shutil

    a = tmp_path / "a.hspy"
    b = tmp_path / "b.hspy"
    shutil.copy(image_file, a)
    shutil.copy(image_file, b)
    outdir = tmp_path / "out"
    rc = main(["batch", str(a), str(b), str(tmp_path / "missing.dm4"), "--out-dir", str(outdir),
               "--n-iter", "60", "--workers", "2", "-q"])
    assert rc == 1  # one file failed, the others were written
    assert (outdir / "a.npz").exists() and (outdir / "b.npz").exists()


def test_cli_explorer_and_report_show_the_same_hierarchy(tmp_path, image_file):
    """One hierarchy, whichever door: ``run --hierarchy``, the explorer and the HTML report."""
    pytest.importorskip("ipywidgets")
    from motiflab.analysis import Analysis
    from motiflab.widgets.explorer import Explorer
    from motiflab.widgets.report import hierarchy_of

    hier = tmp_path / "h.json"
    assert main(["run", str(image_file), "--out", str(tmp_path / "r.npz"), "--hierarchy", str(hier),
                 "--n-iter", "80", "-q"]) == 0
    from_cli = json.loads(hier.read_text())
    an = Analysis(str(image_file), n_iter=80)
    ex = Explorer(an, background=False)
    try:
        from_explorer = json.loads(json.dumps(ex.hierarchy.to_json()))
    finally:
        ex.close()
    from_report = json.loads(json.dumps(hierarchy_of(an).to_json()))
    assert from_cli == from_explorer == from_report
    assert from_cli["motif_cells"]


def test_an_input_is_never_an_output(tmp_path, image_file, capsys):
    import shutil

    img = tmp_path / "img.hspy"
    shutil.copy(image_file, img)
    before = img.read_bytes()
    for extra in (["--out", str(img)], ["--out", str(tmp_path / "r.npz"), "--report", str(img)],
                  ["--out", str(tmp_path / "r.npz"), "--hierarchy", str(img)]):
        assert main(["run", str(img), *extra, "--overwrite", "-q"]) == 2
        assert "input" in capsys.readouterr().err
    assert img.read_bytes() == before


def test_two_outputs_with_one_name_are_refused(tmp_path, image_file, capsys):
    out = tmp_path / "x.npz"
    assert main(["run", str(image_file), "--out", str(out), "--report", str(out), "--overwrite", "-q"]) == 2
    assert "same file" in capsys.readouterr().err and not out.exists()


def test_an_output_of_the_wrong_kind_is_refused_before_the_work(tmp_path, image_file, capsys, monkeypatch):
    # the suffix of --out was checked only when saving, after the whole analysis had run
    def no_run(self):
        raise AssertionError("the analysis ran")

    monkeypatch.setattr(motiflab.Analysis, "run", no_run)
    assert main(["run", str(image_file), "--out", str(tmp_path / "result"), "-q"]) == 2
    err = capsys.readouterr().err
    assert ".hspy" in err and ".npz" in err and "result" in err


@pytest.mark.parametrize("case", ["directory", "symlink", "long", "temporary"])
def test_hostile_output_paths(tmp_path, image_file, capsys, case):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    if case == "directory":
        out = tmp_path / "adir"
        out.mkdir()
        assert main(["run", str(image_file), "--out", str(out), "--overwrite", "-q", "--n-iter", "20"]) == 2
        assert "folder" in capsys.readouterr().err and out.is_dir()
    elif case == "symlink":  # the write replaces the link, never the file it points to
        out = tmp_path / "link.npz"
        out.symlink_to(victim)
        assert main(["run", str(image_file), "--out", str(out), "--overwrite", "-q", "--n-iter", "20"]) == 0
        assert victim.read_text() == "keep me" and not out.is_symlink()
    elif case == "long":
        out = tmp_path / ("x" * 300 + ".npz")
        assert main(["run", str(image_file), "--out", str(out), "-q"]) == 2
        assert "long" in capsys.readouterr().err
    else:  # files that look like our temporary names are never touched
        out = tmp_path / "r.npz"
        for name in ("r.npz.tmp.npz", ".r.npz.tmp", "r.npz.tmp"):
            (tmp_path / name).write_text("mine")
        assert main(["run", str(image_file), "--out", str(out), "-q", "--n-iter", "20"]) == 0
        assert all((tmp_path / n).read_text() == "mine" for n in ("r.npz.tmp.npz", ".r.npz.tmp", "r.npz.tmp"))
        assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_run_writes_the_column_table(tmp_path, image_file):
    import pandas as pd

    out, table = tmp_path / "r.npz", tmp_path / "columns.csv"
    assert main(["run", str(image_file), "--out", str(out), "--table", str(table), "--n-iter", "40", "-q"]) == 0
    t = pd.read_csv(table, index_col="column")
    r = motiflab.open_result(out)
    assert len(t) == len(r["positions"])
    np.testing.assert_allclose(t["x"], r["positions"][:, 1] * r["pixel_size"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(t["y"], r["positions"][:, 0] * r["pixel_size"], rtol=1e-9, atol=1e-12)
    assert (t["motif"].to_numpy() == r["labels"]).all()
