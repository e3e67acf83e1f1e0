"""Benchmark of issue #15: a motif model applied to new data.

Prints one table:

* ``transform``: seconds per 1 000 new columns placed into a fitted layout
  and labelled (:meth:`motiflab.model.MotifModel.predict`, features given);
* ``series``: frames per second of :func:`motiflab.series.classify_series`
  on a synthetic series of ``--size``² frames on a ``LocalCluster`` of 1 and 2
  single-threaded worker processes (cluster start excluded; a first pass
  warms the workers' numba caches), with each worker's peak RSS;
* ``tiles``: one ``--tile-image``² synthetic MoSe₂ image (``.npy`` on disk),
  analysed in memory (:class:`motiflab.Analysis`, the whole file loaded) and in
  tiles of ``--tile``² (:func:`motiflab.tiles.analyse_tiled` on a memory-mapped
  Dask array, default threaded scheduler, layout fitted on the central 1024²):
  wall time and peak RSS of each, in its own fresh process (numba caches warm),
  and how far the two agree (same columns, positions, motif accuracy against
  the simulation's truth).

Usage: ``python benchmarks/bench_model.py [--frames 16] [--size 1024] [--tile-image 4096] [--tile 1024] [--quick]``.
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


def _tiles_worker(mode, folder, tile):
    """One side of the tiles benchmark, in a fresh process: prints its JSON result line."""
    import json
    from pathlib import Path

    import motiflab
    from motiflab.datasets import oriented_classes  # noqa: F401  (imported before the clock, like motiflab)

    folder = Path(folder)
    t0 = time.perf_counter()
    if mode == "memory":
        an = motiflab.Analysis(np.load(folder / "image.npy"), seed=0).run()
        pos, labels, cols = an.positions, an.motifs.labels, an.columns.positions
    else:
        import dask.array as da

        from motiflab.tiles import analyse_tiled

        lazy = da.from_array(np.load(folder / "image.npy", mmap_mode="r"), chunks=(tile, tile))
        res = analyse_tiled(lazy, tile=tile, seed=0)
        pos, labels, cols = res.positions, res.labels, res.columns.positions
    dt = time.perf_counter() - t0
    np.savez(folder / f"{mode}.npz", pos=pos, labels=labels, cols=cols)
    print(json.dumps(dict(seconds=dt, peak_mb=_peak_rss_mb())))


def _accuracy(truth_pos, truth_cls, pos, labels):
    from motiflab.metrics import match_columns

    m = match_columns(pos, truth_pos, tol=2.0)
    ok = m.found_to_true >= 0
    truth, lab = truth_cls[m.found_to_true[ok]], labels[ok]
    return sum(np.unique(truth[lab == k], return_counts=True)[1].max() for k in np.unique(lab)) / max(len(lab), 1)


def bench_tiles(size, tile):
    """Tiled vs in-memory on one ``size``² image: rows for the table."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from scipy.spatial import cKDTree

    from motiflab.datasets import make_tmd, oriented_classes

    with tempfile.TemporaryDirectory() as d:
        sim = make_tmd("MoSe2", shape=(size, size), chalcogen_vacancy_rate=0.05, dose=DOSE, seed=7)
        np.save(Path(d) / "image.npy", sim.image.astype(np.float32))
        truth_pos, truth_cls = sim.truth.positions, oriented_classes(sim.truth)
        del sim
        out = {}
        for mode in ("memory", "tiled"):
            r = subprocess.run([sys.executable, __file__, "--tiles-worker", mode, d, str(tile)], check=True,
                               capture_output=True, text=True)
            out[mode] = json.loads(r.stdout.strip().splitlines()[-1])
            out[mode].update(np.load(Path(d) / f"{mode}.npz"))
    m, t = out["memory"], out["tiled"]
    dist, _ = cKDTree(t["cols"]).query(m["cols"])
    same = dist < 0.05
    acc_m = _accuracy(truth_pos, truth_cls, m["pos"], m["labels"])
    acc_t = _accuracy(truth_pos, truth_cls, t["pos"], t["labels"])
    return [("tiles", f"{size}² in memory", f"{m['seconds']:.1f} s", f"peak RSS {m['peak_mb']:.0f} MiB; "
             f"{len(m['cols'])} columns, motif accuracy {acc_m:.4f}"),
            ("tiles", f"{size}² in tiles of {tile}² (mmap, Dask)", f"{t['seconds']:.1f} s",
             f"peak RSS {t['peak_mb']:.0f} MiB; {len(t['cols'])} columns ({same.sum()} within 0.05 px of an "
             f"in-memory one, max {dist.max():.2g} px), motif accuracy {acc_t:.4f}")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tile-image", type=int, default=4096, help="side of the tiles benchmark's image")
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--only-tiles", action="store_true", help="run only the tiles benchmark")
    ap.add_argument("--quick", action="store_true", help="8 frames of 256², a 1024² tiled image (a smoke run)")
    ap.add_argument("--tiles-worker", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.tiles_worker:
        return _tiles_worker(a.tiles_worker[0], a.tiles_worker[1], int(a.tiles_worker[2]))
    if a.quick:
        a.frames, a.size, a.tile_image, a.tile = 8, 256, 1024, 512
    if a.only_tiles:
        _print(bench_tiles(a.tile_image, a.tile))
        return
    model = train_model()
    rows = [("transform", f"{len(model.features)} training columns", f"{bench_transform(model):.3f} s / 1 000 columns",
             "")]
    for w in (1, 2):
        fps, peak = bench_series(model, a.frames, a.size, w)
        rows.append(("series", f"{a.frames} frames of {a.size}², {w} worker(s)", f"{fps:.2f} frames/s",
                     f"worker peak RSS {peak:.0f} MiB"))
    rows += bench_tiles(a.tile_image, a.tile)
    _print(rows)


def _print(rows):
    print(f"{'bench':10} | {'case':36} | {'result':26} | notes")
    print("-" * 100)
    for r in rows:
        print(f"{r[0]:10} | {r[1]:36} | {r[2]:26} | {r[3]}")


if __name__ == "__main__":
    main()
