"""Benchmark of issue #15: a motif model applied to new data.

Prints one table:

* ``transform``: seconds per 1 000 new columns placed into a fitted layout
  and labelled (:meth:`motiflab.model.MotifModel.predict`, features given);
* ``series``: frames per second of :func:`motiflab.series.classify_series`
  on a synthetic series of ``--size``² frames on a ``LocalCluster`` of 1 and 2
  single-threaded worker processes (cluster start excluded; a first pass
  warms the workers' numba caches), with each worker's peak RSS;
* ``tiles``: not measured — tiled classification of one large image is not
  implemented yet (issue #15 part 4).

Usage: ``python benchmarks/bench_model.py [--frames 16] [--size 1024] [--quick]``.
Every random step is seeded (image seeds = frame index, layout seed 0).
"""
from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np

DOSE = 100 / 3.237


def _frame(i, n):
    from motiflab.datasets import make_tmd

    return make_tmd("MoSe2", shape=(n, n), chalcogen_vacancy_rate=0.01 + 0.0005 * i, dose=DOSE,
                    seed=i).image.astype(np.float32)


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_model(n=512):
    from motiflab import Analysis
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(n, n), chalcogen_vacancy_rate=0.04, dose=DOSE, seed=21)
    return Analysis(sim.image, seed=0).run().model()


def bench_transform(model, n_new=20_000):
    """Seconds per 1 000 columns: new features = training features plus noise of their own spread."""
    rng = np.random.default_rng(0)
    X = model.features
    idx = rng.integers(0, len(X), n_new)
    new = X[idx] + 0.5 * X.std(axis=0) * rng.standard_normal((n_new, X.shape[1])).astype(np.float32)
    model.predict(new[:10])  # compile
    t0 = time.perf_counter()
    model.predict(new)
    return (time.perf_counter() - t0) / n_new * 1000


def bench_series(model, n_frames, size, workers):
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from motiflab.series import classify_series

    arr = da.stack([da.from_delayed(dask.delayed(_frame)(i, size), (size, size), np.float32)
                    for i in range(n_frames)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit="4GiB",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            classify_series(arr[:workers], model, scheduler=client, progress=False)  # warm the workers
            t0 = time.perf_counter()
            res = classify_series(arr, model, scheduler=client, progress=False)
            dt = time.perf_counter() - t0
            peaks = client.run(_peak_rss_mb)
    assert res.populations["error"].isna().all()
    return n_frames / dt, max(peaks.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--quick", action="store_true", help="8 frames of 256² (a smoke run)")
    a = ap.parse_args(argv)
    if a.quick:
        a.frames, a.size = 8, 256
    model = train_model()
    rows = [("transform", f"{len(model.features)} training columns", f"{bench_transform(model):.3f} s / 1 000 columns",
             "")]
    for w in (1, 2):
        fps, peak = bench_series(model, a.frames, a.size, w)
        rows.append(("series", f"{a.frames} frames of {a.size}², {w} worker(s)", f"{fps:.2f} frames/s",
                     f"worker peak RSS {peak:.0f} MiB"))
    rows.append(("tiles", "4096² tiled vs in-memory", "not measured", "tiling not implemented yet"))
    print(f"{'bench':10} | {'case':36} | {'result':26} | notes")
    print("-" * 100)
    for r in rows:
        print(f"{r[0]:10} | {r[1]:36} | {r[2]:26} | {r[3]}")


if __name__ == "__main__":
    main()
