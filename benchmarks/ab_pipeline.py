"""Two checkouts of motiflab timed on the same 2048² image, alternating, each run in a fresh process.

The machines are shared and noisy: a difference between two versions is only
worth quoting when they run in turns, in one session, on the same image. Each
turn is a fresh interpreter that imports the checkout it is given, warms its
kernels on a small image, then times ``Analysis(image).run()`` (best of 3),
like the warm 2048² row of ``bench_pipeline.py``.

Run: ``python benchmarks/ab_pipeline.py OLD_CHECKOUT NEW_CHECKOUT [--pairs 4]``
(e.g. ``git worktree add /tmp/old <commit>`` for the old one).
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {here!r})
import numpy as np
import motiflab
assert motiflab.__file__.startswith({repo!r}), motiflab.__file__
from bench_pipeline import _ari, _image
from _common import settle
motiflab.Analysis(_image(256, 1).image, n_iter=20).run()
sim = _image(2048)
best = np.inf
for _ in range(3):
    settle()
    t0 = time.perf_counter()
    a = motiflab.Analysis(sim.image).run()
    dt = time.perf_counter() - t0
    if dt < best:
        best, an = dt, a
stages = ", ".join(f"{{s}} {{d:.2f}}" for s, d in an.log)
print(f"{{best:.4f}}|{{_ari(sim, an, an.motifs.labels):.3f}}|{{an.motifs.n_motifs}}|{{stages}}")
"""


def run(repo):
    code = CHILD.format(repo=os.path.abspath(repo), here=HERE)
    out = subprocess.check_output([sys.executable, "-c", code], text=True).strip().splitlines()[-1]
    t, ari, k, stages = out.split("|")
    return float(t), float(ari), int(k), stages


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    old, new = argv[0], argv[1]
    pairs = int(argv[argv.index("--pairs") + 1]) if "--pairs" in argv else 4
    print("| pair | old (s) | new (s) | new / old |\n|---|---:|---:|---:|")
    ratios, to, tn = [], [], []
    for i in range(pairs):
        a, b = run(old), run(new)
        to.append(a[0])
        tn.append(b[0])
        ratios.append(b[0] / a[0])
        print(f"| {i + 1} | {a[0]:.2f} | {b[0]:.2f} | {ratios[-1]:.2f} |", flush=True)
    print(f"| median | {np.median(to):.2f} | {np.median(tn):.2f} | {np.median(ratios):.2f} |")
    print(f"\nold: ARI {a[1]:.3f}, {a[2]} motifs; {a[3]}\nnew: ARI {b[1]:.3f}, {b[2]} motifs; {b[3]}")


if __name__ == "__main__":
    main(sys.argv[1:])
