"""The tutorial notebooks: executed headless top to bottom, and stored stripped.

* ``test_notebook_executes`` (marker ``notebooks``) runs every ``notebooks/*.ipynb`` with nbclient in a fresh
  ``python3`` kernel, with ``notebooks/`` as the working directory, and fails on the first cell error. The
  figure-reproducing notebooks assert their headline results in cells, so a silent regression fails here.
  Time and the kernel's peak memory (RSS, children included) are reported at the end of the run and written to
  ``test-artifacts/notebook_times.json``; the executed notebook of a failure is kept in
  ``test-artifacts/notebooks/`` for inspection.
* The fast structural tests (no marker, part of the core tier) check that notebooks are stored without outputs,
  stay small, name the right kernel, open with what the reader will learn and end with exercises.

``notebooks/explorer_smoke.ipynb`` belongs to the browser tests (it needs a live widget frontend), so it is
not executed here; it is still checked for size.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
ARTIFACTS = ROOT / "test-artifacts"
NOT_EXECUTED = {"explorer_smoke.ipynb"}  # driven by tests/browser (needs a widget frontend)
ALL = sorted(NB_DIR.glob("*.ipynb"))
TUTORIALS = [p for p in ALL if p.name not in NOT_EXECUTED]
CELL_TIMEOUT = 300  # s per cell; each notebook takes well under a minute on 2 cores
MAX_FILE_BYTES = 100_000
MAX_OUTPUT_BYTES = 20_000

sys.path.insert(0, str(ROOT / "scripts"))


def _ids(p):
    return p.stem


def test_there_are_tutorials():
    names = {p.stem.split("_")[0] for p in TUTORIALS}
    assert {f"{i:02d}" for i in range(1, 10)} <= names, sorted(names)


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids)
def test_tutorial_is_stored_stripped(path):
    from strip_notebooks import needs_strip

    assert not needs_strip(path), f"{path.name} has outputs; run `python scripts/strip_notebooks.py`"


@pytest.mark.parametrize("path", ALL, ids=_ids)
def test_notebook_is_small(path):
    nbformat = pytest.importorskip("nbformat")
    assert path.stat().st_size < MAX_FILE_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    nb = nbformat.read(str(path), as_version=4)
    out = sum(len(json.dumps(c.get("outputs", []))) for c in nb.cells if c.cell_type == "code")
    assert out < MAX_OUTPUT_BYTES, f"{path.name} stores {out} bytes of outputs"


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids)
def test_tutorial_structure(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and "What you will learn" in first.source, path.name
    assert last.cell_type == "markdown" and "Exercises" in last.source, path.name
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "assert" in code, f"{path.name} asserts nothing: its headline result must be checked in a cell"
    assert "urlretrieve" not in code and "requests." not in code, "tutorials must not download anything"


def _peak_rss_sampler(kernel_pid, stop, peak):
    """Sample the kernel's RSS (with its child processes) until ``stop`` is set."""
    try:
        import psutil
    except ImportError:  # optional: memory is then not reported
        return
    try:
        proc = psutil.Process(kernel_pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss
            for ch in proc.children(recursive=True):
                try:
                    rss += ch.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], rss)
        except psutil.Error:
            return
        stop.wait(0.25)


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebooks")
@pytest.mark.parametrize("path", TUTORIALS, ids=_ids)
def test_notebook_executes(path, monkeypatch, record_property, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    # the kernel inherits this environment: skip the interactive explorer cell, keep numba's pool small
    monkeypatch.setenv("MOTIFLAB_HEADLESS", "1")
    monkeypatch.setenv("NUMBA_NUM_THREADS", os.environ.get("NUMBA_NUM_THREADS", "2"))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' temporary folders land in pytest's tmp dirs
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(NB_DIR)}})
    stop, peak = threading.Event(), [0]
    t0 = time.perf_counter()
    error = None
    with client.setup_kernel():
        pid = getattr(client.km, "provisioner", None)
        pid = getattr(getattr(pid, "process", None), "pid", None)
        sampler = None
        if pid:
            sampler = threading.Thread(target=_peak_rss_sampler, args=(pid, stop, peak), daemon=True)
            sampler.start()
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except CellExecutionError as exc:
            error = exc
        finally:
            stop.set()
            if sampler is not None:
                sampler.join(timeout=2)
    seconds = time.perf_counter() - t0
    mib = peak[0] / 2**20 if peak[0] else None
    record_property("notebook", path.name)
    record_property("notebook_seconds", round(seconds, 1))
    record_property("kernel_peak_mib", None if mib is None else round(mib))
    _write_timing(path.name, seconds, mib, error is None)
    if error is not None:
        out = ARTIFACTS / "notebooks"
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(out / path.name))
        pytest.fail(f"{path.name} failed after {seconds:.1f} s (executed copy: {out / path.name}):\n{error}",
                    pytrace=False)


def _write_timing(name, seconds, mib, ok):
    """Merge one notebook's time into test-artifacts/notebook_times.json (safe across xdist workers)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "notebook_times.json"
    lock = ARTIFACTS / ".notebook_times.lock"
    for _ in range(200):  # a tiny spin lock: workers write at different times anyway
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL)
            break
        except FileExistsError:
            time.sleep(0.05)
    else:
        fd = None
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = {"seconds": round(seconds, 1), "kernel_peak_mib": None if mib is None else round(mib), "ok": ok}
        path.write_text(json.dumps(data, indent=1, sort_keys=True))
    finally:
        if fd is not None:
            os.close(fd)
            os.unlink(lock)
