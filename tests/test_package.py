"""The package itself: cheap import, and the process settings it makes."""
import os
import subprocess
import sys


def _run(code, **env):
    e = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, check=True).stdout


def test_import_sets_a_short_openmp_spin_unless_user_chose():
    code = "import os, motiflab; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('KMP_BLOCKTIME'))"
    assert _run(code).split() == ["10000", "1"]
    assert _run(code, GOMP_SPINCOUNT="5").split() == ["5", "1"]
    assert _run(code, OMP_WAIT_POLICY="PASSIVE").split() == ["None", "None"]


def test_import_is_lazy():
    code = "import sys, motiflab; print(any(m in sys.modules for m in ('numba', 'hyperspy', 'sklearn')))"
    assert _run(code).strip() == "False"
