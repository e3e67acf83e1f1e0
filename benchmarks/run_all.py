"""Run every benchmark and print one table (all rows measured in this one run, on this machine).

Usage: ``python benchmarks/run_all.py [--quick] [--only zernike,layout,detection,...]``
Peers come from the ``bench`` extra: ``pip install -e ".[bench]"`` (``make bench`` does it).
"""
from __future__ import annotations

import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import finish, format_table, machine_notes  # noqa: E402

MODULES = ["bench_zernike", "bench_layout", "bench_pipeline", "bench_hierarchy", "bench_explorer", "bench_compile",
           "bench_detection"]


def main(argv):
    quick = "--quick" in argv
    only = None
    if "--only" in argv:
        only = set(argv[argv.index("--only") + 1].split(","))
    rows = []
    t0 = time.perf_counter()
    for name in MODULES:
        if only and name.replace("bench_", "") not in only:
            continue
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(mod.rows(quick))
    print(f"Machine: {machine_notes()}")
    print(f"Mode: {'quick' if quick else 'full'}; total benchmark time {time.perf_counter() - t0:.0f} s\n")
    print(format_table(finish(rows)))


if __name__ == "__main__":
    main(sys.argv[1:])
