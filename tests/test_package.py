"""The package itself: cheap import, and the process settings it makes."""
import os
import subprocess
import sys


def _run(code, **env):
    e = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, check=True).stdout


def test_import_sets_passive_openmp_wait_unless_user_chose():
    code = "import os, motiflab; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert _run(code).strip() == "PASSIVE"
    assert _run(code, OMP_WAIT_POLICY="ACTIVE").strip() == "ACTIVE"


def test_import_is_lazy():
    code = "import sys, motiflab; print(any(m in sys.modules for m in ('numba', 'hyperspy', 'sklearn')))"
    assert _run(code).strip() == "False"
