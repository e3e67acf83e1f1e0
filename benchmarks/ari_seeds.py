"""FR vs umap-learn layout quality over several data seeds (not part of ``run_all``).

The layout benchmark measures one data seed per size; the ARI differences between
FR and UMAP there (a few thousandths) are of the order of the seed-to-seed spread.
This script repeats the benchmark's mixture for several data seeds and prints, per
seed, the ARI of the benchmark's HDBSCAN on each layout and the number of points
HDBSCAN leaves as noise (noise counts as its own cluster in the ARI), then the
means and the paired difference FR - UMAP (k = 10, seeded).

Usage::

    python benchmarks/ari_seeds.py [N] [n_seeds]      # defaults: 5000 8 (~8 min here)
"""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_layout import N_ITER, SEED, make_mixture  # noqa: E402

from motiflab.layout import FRLayout  # noqa: E402


def _labels(Y, n):
    from sklearn.cluster import HDBSCAN

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HDBSCAN(min_cluster_size=max(15, n // 2000), copy=True).fit_predict(np.asarray(Y, np.float64))


def main(N: int = 5000, n_seeds: int = 8) -> None:
    import umap
    from sklearn.metrics import adjusted_rand_score

    layouts = {
        "FR": lambda X: FRLayout(n_iter=N_ITER, random_state=SEED).fit_transform(X),
        "UMAP k=10 seeded": lambda X: umap.UMAP(n_neighbors=10, n_epochs=N_ITER, random_state=SEED).fit_transform(X),
        "UMAP k=10 unseeded": lambda X: umap.UMAP(n_neighbors=10, n_epochs=N_ITER).fit_transform(X),
        "UMAP k=15 seeded": lambda X: umap.UMAP(n_epochs=N_ITER, random_state=SEED).fit_transform(X),
        "UMAP k=15 unseeded": lambda X: umap.UMAP(n_epochs=N_ITER).fit_transform(X),
    }
    ari = {k: [] for k in layouts}
    print(f"N = {N}, {N_ITER} iterations; cells: ARI (HDBSCAN noise points)\n")
    print("| data seed | " + " | ".join(layouts) + " |")
    print("|---" * (len(layouts) + 1) + "|")
    for seed in range(n_seeds):
        X, y = make_mixture(N, seed=seed)[:2]
        cells = []
        for name, fit in layouts.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lab = _labels(fit(X), N)
            ari[name].append(adjusted_rand_score(y, lab))
            cells.append(f"{ari[name][-1]:.4f} ({int((lab == -1).sum())})")
        print(f"| {seed} | " + " | ".join(cells) + " |", flush=True)
    print("| mean | " + " | ".join(f"{np.mean(v):.4f}" for v in ari.values()) + " |")
    d = np.subtract(ari["FR"], ari["UMAP k=10 seeded"])
    sd = d.std(ddof=1) if d.size > 1 else float("nan")
    print(f"\nFR - UMAP (k=10, seeded), paired over data seeds: mean {d.mean():+.4f}, "
          f"SD {sd:.5f}, standard error {sd / np.sqrt(d.size):.5f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
