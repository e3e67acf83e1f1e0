"""Same input, parameters and seed → bit-identical results for any numba or BLAS thread count.

Each configuration runs in a fresh interpreter, since numba's and OpenBLAS's
thread pools are sized when they load: the built-in sample (2 019 columns,
above the layout's serial threshold, so two numba threads really split the
FR iterations) through the whole pipeline, plus a stack large enough for the
Zernike transform's threaded symmetry-adapted path. Positions, features,
layout, labels and class averages must be equal bit for bit (``np.array_equal``),
not merely close: before the fixes a threaded float32 sgemm changed 47 910 of
the sample's 133 254 moments in the last bit, the layout moved by up to 0.13
and 5 columns changed motif.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

_RUN = r"""
import sys
import numpy as np
import motiflab
from motiflab.datasets import load_sample
from motiflab.zernike import zernike_moments

an = motiflab.Analysis(load_sample().image, seed=0).run()
m = an.motifs
# the symmetry-adapted Zernike path (N * P * P >= 2**22): blocks depend on the thread count
stack = np.random.default_rng(1).standard_normal((1100, 64, 64)).astype(np.float32)
np.savez(sys.argv[1], positions=an.positions, features=an.features.X, embedding=an.layout.embedding,
         labels=m.labels, counts=m.counts, averages=m.class_averages, d4=zernike_moments(stack))
"""

#: (numba threads, BLAS/OpenMP threads): (1, 1) → (1, 2) changes only BLAS, (1, 2) → (2, 2) only numba
CONFIGS = [(1, 1), (1, 2), (2, 2)]
KEYS = ("positions", "features", "embedding", "labels", "counts", "averages", "d4")


def _run(tmp_path, numba_threads, blas_threads):
    out = tmp_path / f"run_{numba_threads}_{blas_threads}.npz"
    env = dict(os.environ, NUMBA_NUM_THREADS=str(numba_threads))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(blas_threads)
    proc = subprocess.run([sys.executable, "-c", _RUN, str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as f:
        return {k: f[k] for k in KEYS}


@pytest.mark.slow
def test_results_are_bit_identical_for_any_thread_count(tmp_path):
    runs = {cfg: _run(tmp_path, *cfg) for cfg in CONFIGS}
    ref = runs[CONFIGS[0]]
    assert len(np.unique(ref["labels"][ref["labels"] >= 0])) >= 3  # a real motif partition, not a trivial one
    for cfg in CONFIGS[1:]:
        for key in KEYS:
            a, b = ref[key], runs[cfg][key]
            assert a.dtype == b.dtype and np.array_equal(a, b), (
                f"{key} differs between numba/BLAS threads {CONFIGS[0]} and {cfg}"
                + (f": {int(np.sum(a != b))} of {a.size} entries" if a.shape == b.shape else f": {a.shape} vs {b.shape}"))
