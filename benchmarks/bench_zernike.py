"""Zernike moments of a patch stack: motiflab vs motif-learn vs PCA vs the hardware floor.

Rows per case (N patches of P x P, float32 or float64 input):

* ``motiflab``     ``zernike_moments(X)`` (66 moments, n_max=10), ref = motif-learn;
  its notes give the speed-up over sklearn PCA and the distance to the floor.
* ``motif-learn``  ``mtflearn.features.ZPs(n_max=10, size=P).transform(X)`` with
  the (N, P, P) stack (its 3-D input path: one dot product with float64
  polynomials, so float32 stacks are promoted to float64).
* ``sklearn PCA``  ``PCA(66).fit_transform(X.reshape(N, P*P))`` (the paper's
  comparison; skipped where its 10k time predicts > 60 s at 100k).
* ``floor (memory)``  bytes of the stack / measured read bandwidth (the faster of
  a single-thread ``np.sum`` and a BLAS sgemv over a 256 MiB array).
* ``floor (sgemm)``   FLOP floor of the *dense* product ``X @ basis`` (what
  motiflab computed before, and what motif-learn computes):
  2 N P^2 J / measured sgemm rate (3072^2 ``np.dot``).
* ``floor (D4 sgemm)`` FLOP floor of the symmetry-adapted transform motiflab
  uses for these stacks (see ``motiflab.zernike``): its per-patch
  multiply-adds (``_d4_plan(P, 10).flops``, ~7x fewer than the dense
  product) at the same square-sgemm rate. motiflab can run below the dense
  floor because it does not do the dense product; its real cost on top of
  this floor is the folding kernel and the small, less efficient sgemms.
  All floors are re-measured for every case (the machine is shared).
  The floor rows carry ref = motiflab, so their "speed-up" column reads
  motiflab time / floor time (1.0 = at the floor).

motiflab and motif-learn are timed best of the same number of calls (10 for
N <= 10k, 3 above), each after a pause (``_common.settle``).

Peak MB is the RSS growth during the call (psutil sampling), i.e. the extra
memory each implementation needs on top of the patch stack it is given.

Run: ``python benchmarks/bench_zernike.py [--quick]``.
"""
from __future__ import annotations

import gc
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import Row, finish, format_table, machine_notes, timeit  # noqa: E402

from motiflab.zernike import _d4_plan, zernike_basis, zernike_moments  # noqa: E402

SECTION = "zernike"
J = 66
N_MAX = 10
PEER_LIMIT_S = 60.0


def measure_bandwidth(nbytes: int = 512 * 2**20) -> float:
    """Read bandwidth in bytes/s: best of single-thread sum and multi-thread sgemv."""
    a = np.ones((nbytes // 4 // 1024, 1024), dtype=np.float32)
    v = np.ones(1024, dtype=np.float32)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        a @ v
        best = min(best, time.perf_counter() - t0)
    del a
    return nbytes / best


def measure_sgemm(n: int = 4096) -> float:
    """sgemm rate in FLOP/s from a square float32 product."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def _mtflearn():
    try:
        from mtflearn.features import ZPs

        return ZPs
    except Exception:  # pragma: no cover - peer not installed
        return None


def _pca_fit_transform(X2d):
    from sklearn.decomposition import PCA

    return PCA(J, random_state=0).fit_transform(X2d)


def _case_rows(N, P, dtype, quick, ZPs, pca_times, repeat):
    rows = []
    case = f"N={N // 1000}k P={P} {np.dtype(dtype).name}"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, P, P), dtype=np.float32)
    if dtype == np.float64:
        X = X.astype(np.float64)
    gc.collect()

    t_ml, m_ml, A = timeit(lambda: zernike_moments(X, N_MAX), repeat=repeat)
    # quality: the float32 product against a float64 product on a few patches
    sub = X[:256].reshape(256, -1).astype(np.float64) @ zernike_basis(P, N_MAX, np.float64)
    err = float(np.abs(A[:256] - sub).max() / np.abs(sub).max())
    ml = Row(SECTION, case, "motiflab", t_ml, m_ml, ref="motif-learn", quality=f"max rel err {err:.1e}")
    rows.append(ml)
    del A

    if ZPs is not None:
        zps = ZPs(n_max=N_MAX, size=P)
        t, m, res = timeit(lambda: zps.transform(X), repeat=repeat)
        data = np.asarray(getattr(res, "data", res))
        rows.append(Row(SECTION, case, "motif-learn", t, m, notes=f"ZPs 3-D dot path, out {data.dtype}"))
        del res, data

    key = (P, np.dtype(dtype).name)
    pred = pca_times.get(key, 0.0) * N / 10_000 if key in pca_times else 0.0
    if pred > PEER_LIMIT_S:
        rows.append(Row(SECTION, case, "sklearn PCA", float("nan"), None,
                        notes=f"skipped: predicted {pred:.0f} s from the 10k row"))
    else:
        X2 = X.reshape(N, P * P)
        t, m, _ = timeit(lambda: _pca_fit_transform(X2), repeat=1, warmup=0)
        pca_times[key] = t * 10_000 / N if N != 10_000 else t
        rows.append(Row(SECTION, case, "sklearn PCA", t, m))
        ml.notes += f"{t / t_ml:.0f}x faster than PCA; "

    # floors measured per case, next to the rows they bound: the machine is shared
    # and its sgemm rate / bandwidth drift between cases
    bw = measure_bandwidth(128 * 2**20 if quick else 256 * 2**20)
    flops = measure_sgemm(2048 if quick else 3072)
    t_bw = X.nbytes / bw
    t_fl = 2.0 * N * P * P * J / flops
    d4_flop = float(N * _d4_plan(P, N_MAX).flops)
    t_d4 = d4_flop / flops
    rows.append(Row(SECTION, case, "floor (memory)", t_bw, None, ref="motiflab",
                    notes=f"{X.nbytes / 2**20:.0f} MiB at {bw / 1e9:.1f} GB/s"))
    rows.append(Row(SECTION, case, "floor (sgemm)", t_fl, None, ref="motiflab",
                    notes=f"dense product: {2 * N * P * P * J / 1e9:.1f} GFLOP at {flops / 1e9:.0f} GFLOP/s"))
    rows.append(Row(SECTION, case, "floor (D4 sgemm)", t_d4, None, ref="motiflab",
                    notes=f"symmetry-adapted: {d4_flop / 1e9:.2f} GFLOP at {flops / 1e9:.0f} GFLOP/s"))
    ml.notes += (f"{t_ml / t_fl:.2f}x the dense sgemm floor, {t_ml / max(t_bw, t_d4):.1f}x its own "
                 f"(memory / D4 FLOPs); stack {X.nbytes / 2**20:.0f} MiB")
    del X
    gc.collect()
    return rows


def rows(quick: bool = False) -> list[Row]:
    """Benchmark rows; ``quick`` uses N = 2k and 10k instead of 10k and 100k."""
    ZPs = _mtflearn()
    Ns = (2_000, 10_000) if quick else (10_000, 100_000)
    out: list[Row] = []
    pca_times: dict = {}
    for P in (32, 64):
        for dtype in (np.float32, np.float64):
            for N in Ns:
                # best of 10 for the ~10-40 ms calls (one noisy repeat moves their ratio
                # by 0.5), of 3 above; the same count for motiflab and motif-learn
                out += _case_rows(N, P, dtype, quick, ZPs, pca_times, repeat=10 if N <= 10_000 else 3)
    return finish(out)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(machine_notes())
    print(format_table(rows(quick)))
