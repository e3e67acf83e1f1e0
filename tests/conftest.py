"""Shared fixtures: small synthetic images with ground truth, made once per session."""
import os

import numpy as np
import pytest

# keep numba's thread pool small and results independent of the machine
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "test-artifacts")


@pytest.fixture(scope="session")
def artifacts_dir():
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def mose2_clean():
    from motiflab.datasets import make_tmd

    return make_tmd("MoSe2", shape=(384, 384), chalcogen_vacancy_rate=0.05, seed=3)


@pytest.fixture(scope="session")
def sample():
    from motiflab.datasets import load_sample

    return load_sample()


def interior_visible(truth, shape, margin=3):
    p = truth.positions
    h, w = shape
    return truth.visible & (p[:, 0] >= margin) & (p[:, 0] < h - margin) & (p[:, 1] >= margin) & (p[:, 1] < w - margin)


@pytest.fixture(scope="session")
def mose2_small_analysis():
    """A computed analysis of a small MoSe2 image with vacancies (copy it before changing it)."""
    from motiflab.analysis import Analysis
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(192, 192), chalcogen_vacancy_rate=0.05, dose=100, seed=7)
    return Analysis(sim.image, n_iter=60).run()


# ---- tests/test_fuzz.py counts the inputs it tries; the total is printed at the end of the session
# (under pytest-xdist each worker reports its count to the controller, which prints the sum)
def _fuzz_inputs():
    import sys

    mod = next((m for name, m in list(sys.modules.items()) if name.endswith("test_fuzz")), None)
    return dict(getattr(mod, "FUZZ_INPUTS", {}) or {})


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["fuzz_inputs"] = _fuzz_inputs()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    total = node.config.__dict__.setdefault("_fuzz_inputs", {})
    for k, v in getattr(node, "workeroutput", {}).get("fuzz_inputs", {}).items():
        total[k] = total.get(k, 0) + v


def pytest_terminal_summary(terminalreporter, config):
    counts = config.__dict__.get("_fuzz_inputs") or _fuzz_inputs()
    if counts:
        terminalreporter.write_line(f"fuzz: {sum(counts.values())} inputs tried ("
                                    + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")")
