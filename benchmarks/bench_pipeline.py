"""End to end (image → labels), cold and warm, against the pipeline a user would assemble today.

Rows:
- ``import motiflab`` time (fresh interpreter);
- motiflab per stage and total, warm (kernels compiled, in this process; best of ``REPS``
  runs at 2048²) and cold (a fresh process: includes imports and loading numba's on-disk
  cache, no compilation after the first run ever);
- the peer: the same columns and patches → Zernike moments (motif-learn ``ZPs``) → umap-learn
  ``UMAP`` (seeded, hence single-threaded) → HDBSCAN, best of ``REPS`` runs as well;
- slider response: one force-schedule change → new layout + labels through the cached analysis.

Run: ``python benchmarks/bench_pipeline.py [--quick]``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import PeakRSS, Row, finish, format_table, machine_notes, settle  # noqa: E402

#: warm runs of each pipeline at 2048² (ours and the peer alike); the best counts
REPS = 3


def _image(side, seed=0):
    from motiflab.datasets import make_tmd

    return make_tmd("MoSe2", shape=(side, side), chalcogen_vacancy_rate=0.04, metal_vacancy_rate=0.003,
                    dopant="W", dopant_rate=0.01, dose=60, seed=seed)


def _ari(sim, an, labels):
    from motiflab.datasets import oriented_classes
    from motiflab.metrics import clustering_scores, match_columns

    m = match_columns(an.positions, sim.truth.positions, 1.5)
    ok = m.found_to_true >= 0
    truth = oriented_classes(sim.truth)[m.found_to_true[ok]]
    return clustering_scores(truth, np.asarray(labels)[ok])["ari"]


def import_time():
    code = "import time; t=time.perf_counter(); import motiflab; print(time.perf_counter()-t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(3)]
    return min(runs)


def cold_run(path):
    """A fresh process: import + run the whole pipeline on the saved image."""
    code = (
        "import time; t=time.perf_counter(); import numpy as np, motiflab; "
        f"an=motiflab.Analysis(np.load({path!r})); an.run(); print(time.perf_counter()-t)"
    )
    return float(subprocess.check_output([sys.executable, "-c", code], text=True).strip().splitlines()[-1])


def peer_pipeline(an, seed=0):
    """Zernike (motif-learn) + umap-learn (seeded) + HDBSCAN on motiflab's columns/patches."""
    import umap
    from mtflearn.features import ZPs
    from sklearn.cluster import HDBSCAN

    patches = an.patches.patches
    P = patches.shape[1]
    t = {}
    t0 = time.perf_counter()
    X = np.asarray(ZPs(n_max=10, size=P).fit_transform(patches).data)
    t["zernike"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = umap.UMAP(n_neighbors=10, random_state=seed).fit_transform(X)
    t["umap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = HDBSCAN(min_cluster_size=max(5, int(0.001 * len(X))), copy=True).fit_predict(emb)
    t["hdbscan"] = time.perf_counter() - t0
    return t, labels


def rows(quick=False):
    import motiflab

    out = [Row("startup", "import motiflab (fresh process)", "motiflab", import_time(), notes="target < 1 s")]
    sides = [768] if quick else [2048, 4096]
    for side in sides:
        sim = _image(side)
        case = f"{side}² image"
        # warm: compile once on a small image so kernels are in memory
        motiflab.Analysis(_image(256, 1).image, n_iter=20).run()
        # best of REPS runs, here and for the peer: the machine is shared and noise only adds time
        reps = REPS if side <= 2048 else 1
        total = np.inf
        for _ in range(reps):
            settle()
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                a = motiflab.Analysis(sim.image).run()
                dt = time.perf_counter() - t0
            if dt < total:
                total, an = dt, a
        n = len(an.positions)
        case = f"{side}² image, {n // 1000}k columns"
        ari = _ari(sim, an, an.motifs.labels)
        stages = ", ".join(f"{s} {dt:.2f}" for s, dt in an.log)
        out.append(Row("end-to-end", case, "motiflab (warm)", total, mem.mb, quality=f"ARI={ari:.3f}",
                       notes=stages + f" (best of {reps})"))
        path = f"/tmp/motiflab_bench_{side}.npy"
        np.save(path, sim.image)
        out.append(Row("end-to-end", case, "motiflab (cold process)", cold_run(path),
                       notes="fresh interpreter: imports + on-disk numba cache, no compile"))
        if side <= 2048:
            peer_total = np.inf
            for _ in range(reps):
                settle()
                with PeakRSS() as mem:
                    t0 = time.perf_counter()
                    tpr, lab = peer_pipeline(an)
                    dt = time.perf_counter() - t0
                if dt < peer_total:
                    peer_total, tp, labels = dt, tpr, lab
            # the peer reuses motiflab's columns/patches: add their time for a fair total
            shared = sum(dt for s, dt in an.log if s in ("columns", "patch_size", "patches"))
            out.append(Row("end-to-end", case, "Zernike+UMAP+HDBSCAN", peer_total + shared, mem.mb,
                           quality=f"ARI={_ari(sim, an, labels):.3f}",
                           notes=", ".join(f"{k} {v:.2f}" for k, v in tp.items()) + f", columns+patches {shared:.2f}"
                           + f" (best of {reps})"))
            out[-3].ref = "Zernike+UMAP+HDBSCAN"
    # slider response through the cached analysis
    for side in ([640] if quick else [768, 2300]):
        sim = _image(side, 3)
        an = motiflab.Analysis(sim.image).run()
        n = len(an.positions)
        best_layout = best_all = np.inf
        for alpha in (6.0, 5.0, 7.0, 5.5, 6.5):
            t0 = time.perf_counter()
            an.set(stage2_alpha=alpha)
            an.get("layout")
            t1 = time.perf_counter()
            an.get("motifs")
            t2 = time.perf_counter()
            best_layout = min(best_layout, t1 - t0)
            best_all = min(best_all, t2 - t0)
        target = "; target ≤ 0.3 s at 5k" if n < 8000 else ""
        out.append(Row("slider", f"force change → new layout, N={n}", "motiflab", best_layout,
                       notes="Analysis.set(stage2_alpha) → layout stage only (graph cached)" + target))
        out.append(Row("slider", f"force change → new layout + labels, N={n}", "motiflab", best_all,
                       notes="… then the motifs stage (HDBSCAN, merge, class averages)"))
    return finish(out)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(machine_notes())
    print(format_table(rows(quick)))
