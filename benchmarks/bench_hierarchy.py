"""Benchmark: lattice finding, motif-cell hierarchy, square assembly statistics, KL domains.

The issue's target: the hierarchy of a 100k-column image in a few seconds on 2
cores. Columns come from the synthetic MoSe2 generator (truth positions with
0.2 px localisation noise, ``truth.fine`` labels, 1 % chalcogen and 0.2 % metal
vacancies). There is no peer package for hierarchies (motif-learn has none), so
the square-assembly row is compared with a plain-Python loop count of the same
grid, which is also what the tests use as the brute-force reference.

Run ``python benchmarks/bench_hierarchy.py [--quick]`` to print the table.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, finish, format_table, machine_notes, timeit  # noqa: E402


def _tmd_columns(n_target: int, seed: int = 3):
    from motiflab.datasets import make_tmd

    # MoSe2 at 0.04 nm/px: ~29 px^2 per column
    side = int(np.sqrt(n_target * 29.3))
    img = make_tmd("MoSe2", shape=(side, side), pixel_size=0.04, chalcogen_vacancy_rate=0.01,
                   metal_vacancy_rate=0.002, seed=seed)
    tr = img.truth
    vis = tr.visible
    rng = np.random.default_rng(seed)
    pos = tr.positions[vis] + rng.normal(0, 0.2, (int(vis.sum()), 2))
    return pos, tr.fine[vis]


def _python_square_counts(grid):
    h, w = grid.shape
    c2, c3 = Counter(), Counter()
    for i in range(h - 1):
        for j in range(w - 1):
            c2[(grid[i, j], grid[i, j + 1], grid[i + 1, j], grid[i + 1, j + 1])] += 1
    for i in range(h - 3):
        for j in range(w - 3):
            c3[tuple(grid[i : i + 4, j : j + 4].ravel().tolist())] += 1
    return c2, c3


def rows(quick: bool = False) -> list[Row]:
    from motiflab.assembly import square_motifs
    from motiflab.datasets.tilings import make_square_units
    from motiflab.hierarchy import build_hierarchy
    from motiflab.lattice import find_lattice
    from motiflab.variation import compare_domains

    out: list[Row] = []
    n_cols = 20_000 if quick else 100_000
    pos, lab = _tmd_columns(n_cols)
    case = f"MoSe2 N={len(pos) // 1000}k columns"
    t, mb, lat = timeit(lambda: find_lattice(pos), repeat=2 if quick else 3)
    out.append(Row("hierarchy", case, "find_lattice", t, mb, notes=f"|u|={lat.lengths[0]:.3f}px, rms {lat.residual_px:.2f}px"))
    t, mb, h = timeit(lambda: build_hierarchy(pos, lab, lattice=lat), repeat=2 if quick else 3)
    n_nodes = len(h.motif_cells)
    out.append(Row("hierarchy", case, "build_hierarchy (lattice given)", t, mb,
                   quality=f"{n_nodes} motif-cells, {len(h.edges)} edges",
                   notes=f"{len(h.cells)} cells, {int((h.cell_component >= 0).sum())} minority"))
    t, mb, h = timeit(lambda: build_hierarchy(pos, lab), repeat=2 if quick else 3)
    out.append(Row("hierarchy", case, "build_hierarchy (finds lattice)", t, mb, quality=f"{len(h.motif_cells)} motif-cells"))
    t, mb, js = timeit(lambda: h.to_json(), repeat=3)
    out.append(Row("hierarchy", case, "Hierarchy.to_json", t, mb))

    side = 200 if quick else 400
    units = make_square_units((side, side), seed=0).grid
    gcase = f"binary grid {side}x{side}"
    t, mb, a = timeit(lambda: square_motifs(units, 2), repeat=3)
    out.append(Row("assembly", gcase, "square_motifs", t, mb, ref="python loops",
                   quality=f"H2={a.level2.entropy_bits:.3f} H3={a.level3.entropy_bits:.2f} bits"))
    t, mb, _ = timeit(lambda: _python_square_counts(units), repeat=1, warmup=0)
    out.append(Row("assembly", gcase, "python loops", t, mb, notes="brute-force reference"))

    rng = np.random.default_rng(0)
    n_dom = 300 if quick else 700
    feats = np.vstack([rng.standard_gamma(2.0, (n_dom, 66)) * s for s in (1.0, 1.0, 1.2, 1.0)])
    dl = np.repeat(np.arange(4), n_dom)
    nb = 100 if quick else 200
    t, mb, c = timeit(lambda: compare_domains(feats, dl, n_boot=nb, seed=0), repeat=1)
    out.append(Row("variation", f"4 domains x {n_dom} x 66 features, {nb} boots", "compare_domains", t, mb,
                   quality=f"{int(c.significant().sum())}/6 pairs significant (expected 6)"))
    return finish(out)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(machine_notes())
    print(format_table(rows(quick)))
