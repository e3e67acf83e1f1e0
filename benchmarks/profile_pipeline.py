"""Where the time goes: a cProfile of every pipeline stage on the benchmark image.

Prints, per stage of ``motiflab.Analysis``, the stage time and the functions with
the most *own* time (numba kernels and BLAS calls show up as the Python function
that launches them). Use it to see what bounds a benchmark row before optimising.

Run: ``python benchmarks/profile_pipeline.py [--side 2048] [--top 8]``.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_notes  # noqa: E402
from bench_pipeline import _image  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=2048, help="image side in px (default 2048)")
    ap.add_argument("--top", type=int, default=8, help="functions listed per stage (default 8)")
    args = ap.parse_args(argv)

    import motiflab
    from motiflab.analysis import STAGES

    sim = _image(args.side)
    motiflab.Analysis(_image(256, 1).image, n_iter=20).run()  # warm: kernels loaded/compiled
    an = motiflab.Analysis(sim.image)
    print(machine_notes())
    print(f"\n{args.side}² image")
    total = 0.0
    for stage in STAGES:
        prof = cProfile.Profile()
        prof.enable()
        an.get(stage)
        prof.disable()
        dt = an.log[-1][1]
        total += dt
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf).sort_stats("tottime")
        rows = []
        for (fname, line, func), (_, ncalls, tottime, _, _) in st.stats.items():
            where = f"{os.path.basename(fname)}:{line}({func})" if line else func
            rows.append((tottime, ncalls, where))
        rows.sort(reverse=True)
        print(f"\n## {stage}: {dt:.3f} s" + (f"  (N = {len(an.positions)} columns)" if stage == "patches" else ""))
        for tottime, ncalls, where in rows[: args.top]:
            if tottime < 0.005:
                break
            print(f"  {tottime:7.3f} s  {ncalls:6d} calls  {where}")
    print(f"\ntotal {total:.2f} s")


if __name__ == "__main__":
    main()
