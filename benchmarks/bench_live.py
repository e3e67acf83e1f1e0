"""Benchmark of issue #18: latency of live microscope mode.

Latency is the time from a 1024² frame landing in the watched folder (its
writer closing the file) to its RESULT.npz and populations row being written
by :class:`motiflab.live.Watcher`, which runs in a background thread as in
``motiflab watch``. Frames are written in place, one at a time, the next one
only after the previous result (so the figure is latency, not a queue), by
the benchmark's main thread.

Prints one table: median, 95th percentile and maximum latency over
``--frames`` frames, split into *waiting* (until the watcher takes the file
up: event delivery, or the settle time when polling) and *processing*
(classification and writing), plus the columns per frame and the machine's
load average (the 2-core machines are shared, so the load is part of the
result).

With ``--view`` the frames are followed by the JupyterLab live view
(:class:`motiflab.widgets.live.LiveView`, no browser attached) and latency
ends when the view has taken the frame in: the micrograph, columns, class
averages, populations row and alerts updated in its Bokeh document.

Usage: ``python benchmarks/bench_live.py [--frames 100] [--size 1024] [--no-events] [--view] [--quick]``.
Every random step is seeded (frame seeds = index, layout seed 0).
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

DOSE = 100 / 3.237  # electrons per px giving ~100 counts at the Mo peak (as bench_model)


def _npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, np.asarray(a, np.float32))
    return buf.getvalue()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100, help="frames measured (after 3 warm-up frames)")
    ap.add_argument("--size", type=int, default=1024, help="frame side in pixels")
    ap.add_argument("--distinct", type=int, default=6, help="distinct synthetic frames cycled through")
    ap.add_argument("--no-events", action="store_true", help="poll only (the network-share path)")
    ap.add_argument("--poll", type=float, default=0.5)
    ap.add_argument("--view", action="store_true", help="until the JupyterLab live view has shown the frame")
    ap.add_argument("--quick", action="store_true", help="10 frames of 512² (a smoke run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.frames, args.size = 10, 512

    import motiflab
    from motiflab.datasets import make_tmd
    from motiflab.live import Watcher

    train = make_tmd("MoSe2", shape=(320, 320), dose=DOSE, seed=11)
    model = motiflab.Analysis(train.image, seed=0).run().model()
    frames = [_npy_bytes(make_tmd("MoSe2", shape=(args.size, args.size), chalcogen_vacancy_rate=0.005 * i,
                                  dose=DOSE, seed=i).image) for i in range(args.distinct)]

    done = {}
    cond = threading.Condition()

    def on_frame(res):
        with cond:
            done[res.path.stem] = (time.monotonic(), res)
            cond.notify_all()

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "acq"
        src.mkdir()
        if args.view:
            from motiflab.widgets.live import LiveView

            class TimedView(LiveView):
                def _on_frame(self, res):
                    super()._on_frame(res)  # the view has the frame: then the clock stops
                    on_frame(res)

            view = TimedView(src, model, out_dir=Path(tmp) / "res", poll=args.poll, events=not args.no_events,
                             start=False)
            w = view.watcher
        else:
            w = Watcher(src, model, out_dir=Path(tmp) / "res", poll=args.poll, events=not args.no_events,
                        on_frame=on_frame)
        w.start()
        load0 = os.getloadavg()
        lat, proc, cols = [], [], []
        warm = 3
        for i in range(warm + args.frames):
            stem = f"frame_{i:04d}"
            with open(src / f"{stem}.npy", "wb") as f:  # in place, as acquisition software writes
                f.write(frames[i % len(frames)])
            landed = time.monotonic()
            with cond:
                ok = cond.wait_for(lambda: stem in done, timeout=120)
            if not ok:
                raise SystemExit(f"{stem}: no result after 120 s")
            t, res = done.pop(stem)
            if not res.ok:
                raise SystemExit(f"{stem}: {res.error}")
            if i >= warm:
                lat.append(t - landed)
                proc.append(res.row["seconds"])
                cols.append(res.row["n_columns"])
            time.sleep(0.1)
        w.stop(timeout=60)
        load1 = os.getloadavg()

    lat, proc = np.array(lat), np.array(proc)
    wait = lat - proc
    mode = "polling" if args.no_events else "events + polling"
    print(f"\nlive latency{' (live view)' if args.view else ''}, {args.size}² frames, {mode} every {args.poll:g} s, {len(lat)} frames "
          f"(~{int(np.median(cols))} columns each), {os.cpu_count()} cores, load average "
          f"{load0[0]:.1f} → {load1[0]:.1f}")
    print("| | median | 95th percentile | max |")
    print("|---|---:|---:|---:|")
    end = "result written and shown" if args.view else "result written"
    for name, v in ((f"landed → {end} (s)", lat), ("waiting for the file" + (" + updating the view" if args.view else "") + " (s)", wait),
                    ("processing (s)", proc)):
        print(f"| {name} | {np.median(v):.2f} | {np.percentile(v, 95):.2f} | {v.max():.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
