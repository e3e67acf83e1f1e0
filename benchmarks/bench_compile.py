"""First run ever: numba's compile time per stage, with an empty on-disk cache and with a full one.

numba compiles each kernel the first time it is called and caches the machine
code on disk, so a user waits for the compiler once per environment (a new
Binder, container or virtualenv), not once per process.  Each case runs in a
fresh process with its own ``NUMBA_CACHE_DIR`` (a temporary folder, so
third-party numba kernels are compiled afresh too): first with
the folder empty ("first run ever"), then again with the folder filled by that
run ("cached, new process": loading the cache).  The difference is the compile
time a new environment pays once (``motiflab warmup`` pays it ahead).

Cases: the whole pipeline on a small synthetic image (160² px, ~450 columns;
what the tutorials and the warm-up use), stage by stage; the kernels only
large inputs reach (the blocked Zernike transform of >= 2**22 pixels of >= 32² patches,
the approximate k-NN search; HDBSCAN of 4k layout points, which needs no JIT since the
hdbscan library replaced fast_hdbscan); and a
newcomer's first image, 2048² px (~35k columns): the whole analysis in a new
process with an empty cache ("first run ever"), the same again in that
process ("warm": nothing to compile or load), and in a new process with the
filled cache.  Its rows give first ÷ warm, the issue's measure (target ≤ 2),
and the ARI between the motifs of the first and the warm run (the compile
must not change a result).

``python benchmarks/bench_compile.py [--quick]`` prints the table (``--quick``
skips the 2048² case).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from _common import Row

_SMALL = r"""
import json, time
t0 = time.perf_counter()
import motiflab
from motiflab.datasets import make_tmd
out = {"import": time.perf_counter() - t0}
t = time.perf_counter()
sim = make_tmd("MoSe2", shape=(160, 160), chalcogen_vacancy_rate=0.05, dose=60, seed=0)
out["synthetic image"] = time.perf_counter() - t
an = motiflab.Analysis(sim.to_signal(), n_iter=20, seed=0)
for stage in ("columns", "patch_size", "patches", "features", "graph", "layout", "motifs"):
    t = time.perf_counter()
    an.get(stage)
    out[stage] = time.perf_counter() - t
out["n"] = len(an.positions)
print(json.dumps(out))
"""

_LARGE = r"""
import json, time
import numpy as np
import motiflab
from motiflab.motifs import cluster_layout
from motiflab.neighbors import knn_graph
from motiflab.zernike import zernike_moments
rng = np.random.default_rng(0)
out = {}
t = time.perf_counter()
zernike_moments(rng.random((4096, 32, 32), dtype=np.float32))
out["zernike, 4k x 32^2 (blocked D4 path)"] = time.perf_counter() - t
t = time.perf_counter()
centres = rng.normal(0, 20, (4, 2))
cluster_layout(centres[rng.integers(0, 4, 4000)] + rng.normal(size=(4000, 2)))
out["motifs, 4k layout points (hdbscan, no JIT)"] = time.perf_counter() - t
t = time.perf_counter()
knn_graph(rng.normal(size=(3000, 66)).astype(np.float32), 10, method="approx")
out["kNN approx, 3k x 66"] = time.perf_counter() - t
print(json.dumps(out))
"""


_IMAGE = r"""
import json, time
import numpy as np
t0 = time.perf_counter()
import motiflab
from motiflab.datasets import make_tmd
out = {"import": time.perf_counter() - t0}
sim = make_tmd("MoSe2", shape=(2048, 2048), chalcogen_vacancy_rate=0.05, dose=60, seed=0)
signal = sim.to_signal(include_truth=False)
labels = []
an = None
for run in ("analysis", "analysis again (same process)"):
    # the previous analysis is freed first: a warm run beside it pays ~0.5-1 s for fresh
    # memory (its 100 MB of patches and more), which is not what warm is meant to measure
    an = None
    t = time.perf_counter()
    an = motiflab.Analysis(signal, seed=0, progress=False).run()
    out[run] = time.perf_counter() - t
    labels.append(an.motifs.labels.tolist())
out["n"] = len(an.positions)
out["labels"] = labels
print(json.dumps(out))
"""


def image_rows() -> list[Row]:
    """The 2048² image: first run ever, warm (same process) and cached (new process)."""
    from sklearn.metrics import adjusted_rand_score

    with tempfile.TemporaryDirectory(prefix="motiflab-numba-cache-") as cache:
        first = _run(_IMAGE, cache)
        again = _run(_IMAGE, cache)
    case = f"2048² image ({first['n']} columns): whole analysis"
    ari = adjusted_rand_score(*first["labels"])
    warm = first["analysis again (same process)"]
    rows = [
        Row("first run", case, "motiflab, warm (same process)", warm, notes="nothing compiled or loaded"),
        Row("first run", case, "motiflab, cached (new process)", again["analysis"],
            ref="motiflab, warm (same process)", notes="loads the on-disk cache"),
        Row("first run", case, "motiflab, empty numba cache", first["analysis"], ref="motiflab, warm (same process)",
            quality=f"ARI first vs warm={ari:.3f}",
            notes=f"first ÷ warm {first['analysis'] / warm:.1f}× (target ≤ 2); import {first['import']:.1f} s"),
    ]
    return rows


def _run(code, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    text = subprocess.check_output([sys.executable, "-c", code], env=env, text=True)
    return json.loads(text.strip().splitlines()[-1])


def rows(quick: bool) -> list[Row]:
    out = []
    cases = [("small image 160²", _SMALL), ("large-input kernels", _LARGE)]
    for case, code in cases:
        with tempfile.TemporaryDirectory(prefix="motiflab-numba-cache-") as cache:
            first = _run(code, cache)
            again = _run(code, cache)
        n = first.pop("n", None)
        again.pop("n", None)
        note = f"{n} columns; " if n else ""
        # the cached row's "speed-up" is what the on-disk cache saves
        for stage, sec in first.items():
            out.append(Row("first run", f"{case}: {stage}", "motiflab, empty numba cache", sec,
                           notes=note + f"compile ~{max(sec - again[stage], 0):.1f} s"))
            out.append(Row("first run", f"{case}: {stage}", "motiflab, cached (new process)", again[stage],
                           ref="motiflab, empty numba cache"))
        total, total_again = sum(first.values()), sum(again.values())
        out.append(Row("first run", f"{case}: total", "motiflab, empty numba cache", total,
                       notes=note + "paid once per environment"))
        out.append(Row("first run", f"{case}: total", "motiflab, cached (new process)", total_again,
                       ref="motiflab, empty numba cache"))
    if not quick:
        out.extend(image_rows())
    return out


if __name__ == "__main__":
    import argparse

    from _common import finish, format_table, machine_notes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 2048² image")
    quick = ap.parse_args().quick
    print(machine_notes())
    print(format_table(finish(rows(quick))))
