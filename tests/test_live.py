"""Live microscope mode (motiflab.live, ``motiflab watch``): soak, restart and command-line tests.

The soak test is the issue's, at full scale: 500 small frames written at 5
frames/s (100 s) while the watcher runs, with frames truncated mid-write (some
finished later, some never), corrupt files, frames of the wrong shape and
stacks mixed in.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import motiflab
from motiflab.datasets import make_tmd
from motiflab.errors import MotifLabError
from motiflab.live import POPULATIONS, Watcher, check_alerts, have_watchdog, read_populations

SHAPE = (128, 128)


@pytest.fixture(scope="module")
def model():
    train = make_tmd("MoSe2", shape=(192, 192), dose=60, seed=11)
    return motiflab.Analysis(train.image, seed=0).run().model()


@pytest.fixture(scope="module")
def frames():
    # a few distinct frames with rising damage, reused: what matters here is the file handling
    return [make_tmd("MoSe2", shape=SHAPE, chalcogen_vacancy_rate=0.01 * i, dose=60, seed=200 + i).image
            for i in range(6)]


def _npy_bytes(a):
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(a, np.float32))
    return buf.getvalue()


def _rss_mb():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _table(out):
    with open(Path(out) / POPULATIONS, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.skipif(not have_watchdog(), reason="watchdog not installed (the polling path is tested below)")
def test_soak_every_good_frame_once_bad_ones_reported_nothing_overwritten(tmp_path, model, frames):
    src, out = tmp_path / "acq", tmp_path / "res"
    src.mkdir()
    out.mkdir()
    # a result from an earlier session: its frame must be left alone
    np.save(src / "old_0000.npy", frames[0])
    model.classify(str(src / "old_0000.npy")).save(out / "old_0000.npz")
    before_old = (out / "old_0000.npz").read_bytes()

    written = {}      # result path -> (inode, mtime_ns) when it first appeared
    results = []

    def on_frame(res):
        results.append(res)
        if res.ok:
            st = res.result_path.stat()
            assert res.result_path not in written, "a result was written twice"
            written[res.result_path] = (st.st_ino, st.st_mtime_ns)

    w = Watcher(src, model, out_dir=out, poll=0.1, shape=SHAPE, events=True, on_frame=on_frame)
    w.start()
    rss = [_rss_mb()]
    good, bad = [], []
    n, rate = 500, 5.0  # frames, frames per second
    t0 = time.monotonic()
    rng = np.random.default_rng(0)
    for i in range(n):
        name = f"f_{i:04d}"
        kind = ("truncated" if i % 25 == 7 else "slow" if i % 25 == 12 else "corrupt" if i % 25 == 17
                else "shape" if i % 25 == 21 else "stack" if i % 50 == 23 else "good")
        data = _npy_bytes(frames[i % len(frames)])
        if kind == "good":
            (src / f"{name}.npy").write_bytes(data)
            good.append(name)
        elif kind == "slow":  # written in two parts, 0.15 s apart: read only once complete
            with open(src / f"{name}.npy", "wb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                time.sleep(0.15)
                f.write(data[len(data) // 2:])
            good.append(name)
        elif kind == "truncated":  # the writer died half-way
            (src / f"{name}.npy").write_bytes(data[: len(data) // 2])
            bad.append(name)
        elif kind == "corrupt":
            (src / f"{name}.tif").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
            bad.append(name)
        elif kind == "shape":
            (src / f"{name}.npy").write_bytes(_npy_bytes(frames[0][:96, :100]))
            bad.append(name)
        else:
            (src / f"{name}.npy").write_bytes(_npy_bytes(np.stack([frames[0]] * 3)))
            bad.append(name)
        if i == 20:
            rss.append(_rss_mb())  # warm: kernels loaded, first frames done
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if {r.path.stem for r in results if r.ok} >= set(good) and {e[0].split(".")[0] for e in w.errors} >= set(bad):
            break
        time.sleep(0.2)
    time.sleep(0.5)  # anything processed twice would show up now
    w.stop(timeout=30)
    rss.append(_rss_mb())
    print(f"\nsoak: {n} files in {time.monotonic() - t0:.1f} s; {len(good)} good, {len(bad)} bad; "
          f"RSS start {rss[0]:.0f} MB, after 20 frames {rss[1]:.0f} MB, end {rss[2]:.0f} MB")
    assert not w.running

    ok = [r.path.stem for r in results if r.ok]
    assert sorted(ok) == sorted(good), "every good frame exactly once"
    reported = [e[0].split(".")[0] for e in w.errors]
    assert set(reported) == set(bad), (set(reported) ^ set(bad))
    assert sorted(p.stem for p in out.glob("*.npz")) == sorted(good + ["old_0000"])
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file left"
    for p, sig in written.items():  # nothing written over
        st = p.stat()
        assert (st.st_ino, st.st_mtime_ns) == sig
    assert (out / "old_0000.npz").read_bytes() == before_old
    rows = _table(out)
    # the earlier session's result had no table row: the watcher added it from the result, first
    assert rows[0]["file"] == "old_0000.npy"
    assert sorted(r["file"] for r in rows[1:]) == sorted(f"{g}.npy" for g in good)
    assert [int(r["frame"]) for r in rows] == list(range(len(good) + 1))
    res = motiflab.open_result(out / f"{good[-1]}.npz")
    assert len(res["labels"]) == int(rows[-1]["n_columns"])
    # memory stays flat once warm (nothing of a frame is kept but its table row)
    assert rss[2] - rss[1] < 150, rss


def test_restart_processes_only_unfinished_frames(tmp_path, model, frames):
    src, out = tmp_path / "acq", tmp_path / "res"
    src.mkdir()
    for i in range(24):
        np.save(src / f"f_{i:03d}.npy", frames[i % len(frames)])
    first = []

    def stop_after_8(res):
        if res.ok:
            first.append(res.path.stem)
            if len(first) == 8:
                w1.stop()  # from the watcher's own thread: ends after this frame

    # polling only: the path network shares take
    w1 = Watcher(src, model, out_dir=out, poll=0.05, settle=0.05, events=False, on_frame=stop_after_8)
    w1.run(timeout=60)
    assert len(first) == 8
    # a crash between writing a result and its table row: the restart adds the row from the result
    rows = _table(out)
    with open(out / POPULATIONS, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows[:-1])
    (out / ".f_999.npz.abc.part.npz").write_bytes(b"half")  # a temporary file of a killed write is no result

    second = []
    w2 = Watcher(src, model, out_dir=out, poll=0.05, settle=0.05, events=False,
                 on_frame=lambda r: second.append(r.path.stem) if r.ok else None)
    assert len(w2.rows) == 8
    w2.run(max_frames=16, timeout=60)
    assert not set(first) & set(second), "a finished frame was processed again"
    assert sorted(first + second) == [f"f_{i:03d}" for i in range(24)]
    rows = _table(out)
    assert len(rows) == 24 and sorted(int(r["frame"]) for r in rows) == list(range(24))
    assert sorted(r["file"] for r in rows) == [f"f_{i:03d}.npy" for i in range(24)]
    df = read_populations(out)
    assert (df["n_columns"] > 0).all()


def test_bad_file_retried_when_it_changes(tmp_path, model, frames):
    src = tmp_path / "acq"
    src.mkdir()
    data = _npy_bytes(frames[1])
    (src / "late.npy").write_bytes(data[:1000])
    w = Watcher(src, model, poll=0.05, settle=0.05, events=False)
    for _ in range(12):
        w.step()
        time.sleep(0.05)
    assert [e[0] for e in w.errors] == ["late.npy"]  # reported once, not at every poll
    assert not w.rows
    (src / "late.npy").write_bytes(data)  # the writer finished after all
    for _ in range(12):
        w.step()
        time.sleep(0.05)
    assert [r["file"] for r in w.rows] == ["late.npy"]
    assert (src / "motiflab" / "late.npz").is_file()


def test_refit_swaps_model_without_stopping(tmp_path, model, frames):
    src = tmp_path / "acq"
    src.mkdir()
    w = Watcher(src, model, poll=0.05, settle=0.05, events=False)
    np.save(src / "a.npy", frames[0])
    time.sleep(0.1)
    w.step(); time.sleep(0.1); w.step()
    new = motiflab.Analysis(frames[5], seed=0).run().model()
    w.set_model(new)
    np.save(src / "b.npy", frames[1])
    time.sleep(0.1)
    w.step(); time.sleep(0.1); w.step()
    assert [r["file"] for r in w.rows] == ["a.npy", "b.npy"]
    assert w.model is new


def test_alerts():
    row = {"frame": 3, "n_columns": 200, "motif 0": 100, "motif 1": 80, "new": 20, "unassigned": 0}
    assert check_alerts(row, {"new": 0.05})[0].startswith("frame 3: new is 10.0 %")
    assert check_alerts(row, {"motif 1": 0.5}) == ["frame 3: 20 columns unlike every known motif"]
    assert check_alerts(dict(row, new=0)) == []
    with pytest.raises(MotifLabError, match="no 'motif 7'"):
        check_alerts(row, {"motif 7": 0.1})


def test_watcher_refuses_bad_arguments(tmp_path, model):
    with pytest.raises(MotifLabError, match="not a folder"):
        Watcher(tmp_path / "missing", model)
    (tmp_path / "f").write_text("x")
    with pytest.raises(MotifLabError, match="not a folder"):
        Watcher(tmp_path, model, out_dir=tmp_path / "f")
    with pytest.raises(MotifLabError, match="poll"):
        Watcher(tmp_path, model, poll=0)
    with pytest.raises(MotifLabError, match="MotifModel"):
        Watcher(tmp_path, object())


def test_cli_watch_max_frames_ctrl_c_and_resume(tmp_path, model, frames):
    src, out = tmp_path / "acq", tmp_path / "res"
    src.mkdir()
    mpath = model.save(tmp_path / "M.hspy")
    for i in range(3):
        np.save(src / f"f_{i}.npy", frames[i])
    (src / "broken.npy").write_bytes(b"\x93NUMPY not really")
    from motiflab.cli import main

    assert main(["watch", str(src), "--model", str(mpath), "--out-dir", str(out), "--poll", "0.05",
                 "--max-frames", "3", "--timeout", "60"]) == 0
    assert sorted(p.name for p in out.glob("*.npz")) == ["f_0.npz", "f_1.npz", "f_2.npz"]
    assert main(["watch", str(src), "--model", str(mpath), "--shape", "12"]) == 2  # usage error, clear message

    # a separate process, ended with Ctrl-C (SIGINT) while it waits: exits cleanly, and a restart resumes
    np.save(src / "f_3.npy", frames[3])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "motiflab.cli", "watch", str(src), "--model", str(mpath), "--out-dir", str(out),
           "--poll", "0.05", "--timeout", "120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines, err_lines = [], []  # both pipes drained as they fill, so the child never blocks writing
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    err_reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    reader.start()
    err_reader.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (out / "f_3.npz").exists():
        time.sleep(0.1)
    assert (out / "f_3.npz").exists()
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=30)
    reader.join(5)
    err_reader.join(5)
    err = "".join(err_lines)
    assert rc == 0, err
    assert "stopping after the current frame" in err
    text = "".join(lines)
    assert "3 frames already done" in text and "f_3.npy" in text and "f_0.npy" not in text.split("Ctrl-C")[1]
    assert "broken.npy" in err and "Traceback" not in err
    assert len(_table(out)) == 4


def test_cli_watch_alerts(tmp_path, model, frames, capsys):
    """--alert 'motif K > P%' prints one ALERT line per frame over the threshold; bad alerts are usage errors."""
    src, out = tmp_path / "acq", tmp_path / "res"
    src.mkdir()
    mpath = model.save(tmp_path / "M.hspy")
    for i in range(2):
        np.save(src / f"f_{i}.npy", frames[i])
    from motiflab.cli import main
    from motiflab.live import parse_alert

    assert parse_alert("motif 2 > 5%") == ("motif 2", 0.05) and parse_alert("NEW>0.5 %") == ("new", 0.005)
    capsys.readouterr()
    assert main(["watch", str(src), "--model", str(mpath), "--out-dir", str(out), "--poll", "0.05",
                 "--max-frames", "2", "--timeout", "60", "--alert", "motif 0 > 1%", "--alert", "motif 1 > 100%",
                 "--no-new-alert"]) == 0
    cap = capsys.readouterr()
    rows = _table(out)
    alerts = [line for line in cap.err.splitlines() if "ALERT" in line]
    assert "alerts: motif 0 > 1 %; motif 1 > 100 %" in cap.out
    assert len(alerts) == 2 and all("motif 0 is" in a and "threshold 1.0 %" in a for a in alerts), cap.err
    share = 100 * int(rows[0]["motif 0"]) / int(rows[0]["n_columns"])
    assert any(f"{share:.1f} %" in a for a in alerts)
    for bad, says in [("motif 2 5%", "reads like"), (f"motif {model.n_motifs} > 5%", "has motifs 0 to"),
                      ("new > 150%", "at most 100")]:
        assert main(["watch", str(src), "--model", str(mpath), "--out-dir", str(out), "--alert", bad,
                     "--max-frames", "1", "--timeout", "5"]) == 2
        assert says in capsys.readouterr().err


def test_live_view_without_a_browser_follows_frames_and_refits(tmp_path, model, frames):
    pytest.importorskip("ipywidgets")
    pytest.importorskip("jupyter_bokeh")
    src = tmp_path / "acq"
    src.mkdir()
    assert callable(motiflab.live)  # the module is also the notebook entry point
    view = motiflab.live(src, model, thresholds={"new": 0.05}, poll=0.05, settle=0.05)
    try:
        for i in range(4):
            np.save(src / f"f_{i}.npy", frames[i + 2])
        assert view.wait(4, timeout=60), view.status.value
        assert list(view.pop_source.data["frame"]) == [0, 1, 2, 3]
        assert len(view.column_source.data["x"]) == view.rows[-1]["n_columns"]
        assert "#000000" in set(view.column_source.data["color"])  # new columns drawn black
        assert view.alerts and "new is" in view.alert_box.value
        view.refit(wait=True)
        assert "refit" in view.status.value and view.watcher.model is not model
        np.save(src / "f_after.npy", frames[5])
        assert view.wait(5, timeout=60)
        assert view.rows[-1]["file"] == "f_after.npy"
    finally:
        view.stop()
    assert not view.watcher.running
