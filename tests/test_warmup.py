"""``motiflab warmup``: every kernel of the default pipeline compiled (and cached) ahead of use."""
import motiflab._layout_kernels
import motiflab.columns
import motiflab.layout
import motiflab.neighbors
import motiflab.zernike
from motiflab.cli import main


def test_warmup_compiles_the_kernels_of_small_and_large_inputs(capsys):
    assert main(["warmup", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("numba kernels compiled and cached in ")
    assert "pipeline" in out and "large inputs" in out
    # kernels called from Python (callees are compiled into them); a cache hit also
    # registers the signature, so this holds whether or not they were cached before
    from motiflab import _columns_kernels, _patches_kernels

    for kernel in (_columns_kernels.com_refine, _columns_kernels.gauss2d_fit,
                   _patches_kernels.gather_bilinear, _patches_kernels.rotate_average,
                   motiflab.layout._fr_step, motiflab._layout_kernels.fr_step_int,
                   motiflab.neighbors._fuzzy_weights, motiflab.zernike._d4_block):
        assert kernel.signatures, kernel.py_func.__qualname__


def test_compile_ahead_compiles_the_specialisations_the_run_then_uses(monkeypatch):
    """The kernels compiled on the background thread are the ones the stages call: no second specialisation."""
    from motiflab import Analysis, _columns_kernels, _layout_kernels, _neighbors_kernels, _patches_kernels, warmup
    from motiflab.datasets import make_tmd

    monkeypatch.setenv("MOTIFLAB_COMPILE_AHEAD", "thread")  # in this process, where the signatures show
    monkeypatch.setattr(warmup, "is_warm", lambda stage: False)
    monkeypatch.setattr(warmup, "_AHEAD_STARTED", set())
    sim = make_tmd("MoSe2", shape=(320, 320), chalcogen_vacancy_rate=0.05, dose=60, seed=0)
    an = Analysis(sim.to_signal(), n_iter=6, n_neighbors=6, seed=0, progress=False)
    # before the columns: what needs no column count (a small image: not the FR driver)
    warmup.compile_ahead(an, ["columns", "patches", "graph", "layout"]).join(timeout=600)
    assert _columns_kernels.gauss2d_fit.signatures and _neighbors_kernels.finalize.signatures
    assert warmup._AHEAD_STARTED == {"columns", "patches", "graph"}
    an.get("columns")
    assert len(an.positions) >= 600  # the FR driver is only compiled ahead from 100 k points
    warmup.compile_ahead(an, ["patches", "graph", "layout"]).join(timeout=600)
    kernels = (_columns_kernels.gauss2d_fit, _patches_kernels.gather_bilinear, _neighbors_kernels.push_block,
               _neighbors_kernels.finalize, _neighbors_kernels.fuzzy_weights, _layout_kernels.fr_step_int)
    ahead = {k: list(k.signatures) for k in kernels}
    assert all(len(s) >= 1 for s in ahead.values())
    assert warmup.compile_ahead(an, ["graph", "layout"]) is None  # started once per process
    an.run()
    assert {k: list(k.signatures) for k in kernels} == ahead


def test_compile_ahead_does_nothing_where_the_stages_ran_before(monkeypatch):
    from motiflab import Analysis, warmup
    from motiflab.datasets import make_tmd

    monkeypatch.setattr(warmup, "is_warm", lambda stage: True)
    monkeypatch.setattr(warmup, "_AHEAD_STARTED", set())
    an = Analysis(make_tmd("MoSe2", shape=(96, 96), seed=0).to_signal(), n_iter=4, seed=0, progress=False)
    assert warmup.compile_ahead(an, ["columns", "patches", "graph", "layout"]) is None
    an.get("columns")
    assert warmup.compile_ahead(an, ["patches", "graph", "layout"]) is None


_HELPER_RUN = r"""
import json, sys
from motiflab import Analysis, warmup
from motiflab import _layout_kernels, _neighbors_kernels, _patches_kernels
from motiflab.datasets import make_tmd

sim = make_tmd("MoSe2", shape=(320, 320), chalcogen_vacancy_rate=0.05, dose=60, seed=0)
an = Analysis(sim.to_signal(), n_iter=6, n_neighbors=6, seed=0, progress=False).run()
helper = warmup._HELPER[0]
helper.proc.wait(timeout=600)  # released at the end of the run: it exits once done
kernels = {k.py_func.__name__: k for k in (_patches_kernels.gather_bilinear, _neighbors_kernels.push_block,
           _neighbors_kernels.finalize, _neighbors_kernels.fuzzy_weights, _layout_kernels.fr_step_int)}
print(json.dumps({"n": len(an.positions), "returncode": helper.proc.returncode, "groups": helper.groups,
                  "stats": {name: [sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]
                            for name, k in kernels.items()}}))
"""


def test_a_helper_process_compiles_what_the_stages_then_load(tmp_path):
    """A first run in a new environment: the k-NN, patch and FR kernels are compiled by the helper
    process and loaded from numba's cache by the stages (cache hits, no compile of their own)."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), MOTIFLAB_COMPILE_AHEAD="process")
    out = subprocess.run([sys.executable, "-c", _HELPER_RUN], env=env, capture_output=True, text=True,
                         timeout=900, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    assert res["n"] >= 600  # enough points (100 * n_neighbors) for the FR driver to be compiled ahead
    assert res["returncode"] == 0
    assert {"patches", "graph", "layout"} <= set(res["groups"])
    for name, (hits, misses) in res["stats"].items():
        assert hits >= 1 and misses == 0, (name, hits, misses)


def test_compile_ahead_falls_back_to_a_thread_when_no_helper_starts(monkeypatch):
    import sys

    from motiflab import Analysis, _patches_kernels, warmup
    from motiflab.datasets import make_tmd

    monkeypatch.setenv("MOTIFLAB_COMPILE_AHEAD", "process")
    monkeypatch.setattr(warmup, "is_warm", lambda stage: False)
    monkeypatch.setattr(warmup, "_AHEAD_STARTED", set())
    monkeypatch.setattr(warmup, "_HELPER", [])
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    an = Analysis(make_tmd("MoSe2", shape=(96, 96), seed=0).to_signal(), n_iter=4, seed=0, progress=False)
    handle = warmup.compile_ahead(an, ["columns", "patches"])
    handle.join(timeout=600)
    assert handle.groups == () and _patches_kernels.gather_bilinear.signatures


def test_the_helper_reports_a_group_that_fails_to_compile(monkeypatch, capsys):
    import io

    from motiflab import warmup

    monkeypatch.setattr("sys.stdin", io.StringIO('["odd", "no such kind", null]\n["patches", "gather", null]\n'))
    warmup._helper_main()
    assert sorted(capsys.readouterr().out.split()) == ["odd", "patches"]


def test_the_helper_compiles_the_earliest_stage_first(monkeypatch, capsys):
    import io

    from motiflab import warmup

    monkeypatch.setattr(warmup, "_compile_spec", lambda kind, arg: None)
    lines = "".join(f'["{g}", "x", null]\n' for g in ("layout", "graph, approximate", "features", "odd"))
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    warmup._helper_main()
    out = [g for g in capsys.readouterr().out.split("\n") if g]
    assert sorted(out) == sorted(["layout", "graph, approximate", "features", "odd"])
    # the first group may start before the others have arrived; the rest go in stage order
    assert out[1:] == sorted(out[1:], key=warmup._stage_rank)
    assert out[0] == "layout" or out == ["features", "graph, approximate", "layout", "odd"]


_NO_SKLEARN_BEFORE_COLUMNS = r"""
import json, sys
from motiflab import Analysis, warmup
from motiflab.analysis import PIPELINE
from motiflab.datasets import make_tmd

an = Analysis(make_tmd("MoSe2", shape=(1024, 1024), seed=0).to_signal(), seed=0, progress=False)
groups = warmup._ahead_groups(an, list(PIPELINE))
print(json.dumps({"groups": sorted(groups), "layout": groups.get("layout"),
                  "imported": sorted(m for m in ("sklearn", "motiflab.layout") if m in sys.modules)}))
"""


def test_planning_the_compile_ahead_imports_no_scikit_learn():
    """The kernels a run will need are worked out before its first stage without importing the
    estimator's module (scikit-learn and the scipy.stats it imports: ~0.5 s before any work)."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _NO_SKLEARN_BEFORE_COLUMNS], capture_output=True, text=True,
                         timeout=600, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    assert res["imported"] == []
    assert "layout" in res["groups"] and res["layout"] == ["driver", [True]]


def test_the_layout_kernel_plan_matches_the_estimator():
    from motiflab import Analysis
    from motiflab.datasets import make_tmd
    from motiflab.stages import layout_kernel_flags

    for params in ({}, {"stage2_m": 1.5}, {"n_neighbors": 6}):
        an = Analysis(make_tmd("MoSe2", shape=(64, 64), seed=0).to_signal(), seed=0, progress=False, **params)
        for n in (10, 5000):
            assert layout_kernel_flags(an.params, n) == an.layout_estimator().kernel_flags(n), (params, n)


def test_waiting_for_the_helper_imports_the_coming_stages(monkeypatch):
    """Time spent waiting for a helper's compile imports what the next stages need; no wait, no call."""
    import threading

    from motiflab import warmup

    calls = []
    done = threading.Event()
    monkeypatch.setattr(warmup, "_AHEAD_EVENTS", {"graph": done, "layout": threading.Event()})
    warmup._AHEAD_EVENTS["layout"].set()
    warmup.await_ahead("layout", meanwhile=lambda: calls.append("layout"))
    assert calls == []
    threading.Timer(0.05, done.set).start()
    warmup.await_ahead("graph", meanwhile=lambda: calls.append("graph"))
    assert calls == ["graph"] and done.is_set()


def test_every_stage_module_named_for_the_wait_imports():
    """A misspelt name in STAGE_MODULES would fail an analysis the moment it waits for the helper."""
    from motiflab.parameters import STAGES
    from motiflab.stages import STAGE_MODULES, import_stage_modules

    import_stage_modules(STAGES)
    assert set(STAGE_MODULES) == set(STAGES)
