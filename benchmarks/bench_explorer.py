"""Benchmark: explorer responsiveness — a force-schedule change until the new layout is in the Bokeh source.

For synthetic MoSe2 images with about 5k and 50k analysed columns the
upstream stages (columns … graph) are computed once; then the stage-2
attraction α is changed through the explorer's control logic
(``Explorer._on_param_change(..., sync=True)``, the same code path a slider
takes after its debounce) and the clock stops when the shared Bokeh
``ColumnDataSource`` holds the new coordinates and colours, the frames for the
playback and the rebuilt gallery/hierarchy. The time to paint in the browser
is not included (it is measured by eye in the JupyterLab test's screenshots;
Bokeh redraws a 50k-point canvas in well under a second). The breakdown column
shows layout / clustering / hierarchy + view update.

A third case times only the view update (datashaded rasters, no thumbnails)
for 200k columns with a stand-in analysis, the "stays responsive at 200k"
claim of the large-data mode.

Run ``python benchmarks/bench_explorer.py [--quick]`` to print the table.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, Row, finish, format_table, machine_notes  # noqa: E402


def tmd_image(n_target, seed=0):
    """A synthetic MoSe2 image with about ``n_target`` analysed columns; returns ``(image, side)``.

    Also used by ``bench_explorer_browser.py``, so both benchmarks time the same images.
    """
    from motiflab.datasets import make_tmd

    # the built-in sample's density: ~2000 analysed columns in 512² px at 0.02 nm/px
    side = int(512 * np.sqrt(n_target / 2000))
    return make_tmd("MoSe2", shape=(side, side), chalcogen_vacancy_rate=0.03, dose=60, seed=seed), side


def _explorer(n_target, seed=0):
    from motiflab.analysis import Analysis
    from motiflab.widgets import Explorer

    img, side = tmd_image(n_target, seed)
    t0 = time.perf_counter()
    an = Analysis(img.to_signal(), seed=0).run()
    setup = time.perf_counter() - t0
    ex = Explorer(an, background=False)
    return ex, side, setup


def _schedule_change(ex, alpha):
    an = ex.analysis
    n_log = len(an.log)
    t0 = time.perf_counter()
    ran = ex._on_param_change("stage2_alpha", alpha, sync=True)
    total = time.perf_counter() - t0
    assert ran == ["layout", "motifs"], ran
    np.testing.assert_array_equal(ex.views.source.data["ex"], an.layout.embedding[:, 0].astype(np.float64))
    return total, dict(an.log[n_log:]), ex.runs[-1]


def _stub(n, P=9, K=12, frames=40, seed=0):
    """A stand-in analysis with n columns (only what the views read)."""
    from motiflab.io import Calibration
    from motiflab.motifs import class_averages

    rng = np.random.default_rng(seed)
    side = int(np.sqrt(n) * 5.5)
    pos = rng.uniform(5, side - 5, (n, 2))
    lab = rng.integers(-1, K, n)
    centres = rng.normal(0, 10, (K + 1, 2))
    emb = (centres[lab + 1] + rng.normal(0, 0.6, (n, 2))).astype(np.float32)
    snaps = np.stack([emb * (f / (frames - 1)) for f in range(frames)]).astype(np.float32)
    patches = rng.random((n, P, P), dtype=np.float32)
    avg, counts = class_averages(patches, lab, K)
    return SimpleNamespace(
        image=rng.random((side, side), dtype=np.float32), calibration=Calibration(0.02, "nm"), positions=pos,
        patches=SimpleNamespace(patches=patches),
        layout=SimpleNamespace(embedding=emb, snapshots=snaps, snapshot_iterations=np.arange(frames) * 5),
        motifs=SimpleNamespace(labels=lab, n_motifs=K, counts=counts, class_averages=avg),
        summary=lambda: f"stand-in analysis, {n} columns",
    )


def rows(quick: bool = False) -> list[Row]:
    from motiflab.widgets.views import ExplorerViews

    out: list[Row] = []
    for n_target in ((5_000,) if quick else (5_000, 50_000)):
        ex, side, setup = _explorer(n_target)
        n = len(ex.analysis.positions)
        mode = "datashaded" if ex.views.large else "glyphs"
        case = f"MoSe2 {side}² px, N={n} columns ({mode})"
        times = []
        peak = 0.0
        for alpha in ((6.0,) if (quick or n_target > 10_000) else (6.0, 4.0, 5.5)):
            with PeakRSS() as mem:
                times.append(_schedule_change(ex, alpha))
            peak = max(peak, mem.mb)
        total, st, run = min(times, key=lambda t: t[2]["first_paint_seconds"])
        first = run["first_paint_seconds"]
        out.append(Row("explorer", case, "stage2 α change → new layout in Bokeh source", first, peak,
                       notes=f"layout {st.get('layout', 0):.2f} s + clustering {st.get('motifs', 0):.2f} s + "
                             f"views {first - st.get('layout', 0) - st.get('motifs', 0):.2f} s; "
                             f"upstream setup {setup:.0f} s (untimed)"))
        out.append(Row("explorer", case, "… then hierarchy diagram updated", total, notes=(
            f"hierarchy {run.get('hierarchy_seconds', 0):.2f} s after the layout is shown (cancellable)")))
        t0 = time.perf_counter()
        ex.views.update(ex.analysis, hierarchy=ex.hierarchy, force=True)
        out.append(Row("explorer", case, "full view rebuild (new columns)", time.perf_counter() - t0,
                       notes="thumbnails, patch stack, frames, gallery, hierarchy diagram"))
        ex.close()

    n = 60_000 if quick else 200_000
    from motiflab.widgets.datashade import rasterize_points

    t0 = time.perf_counter()  # datashader's first call imports pandas/xarray and JIT-compiles its kernels
    rasterize_points(np.zeros(3), np.zeros(3), np.zeros(3, int), ["#000000"], (-1, 1), (-1, 1), 8, 8)
    warm = time.perf_counter() - t0
    an = _stub(n)
    v = ExplorerViews(an.image, an.calibration)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        v.update(an, hierarchy="stand-in", force=True)
        t = time.perf_counter() - t0
    out.append(Row("explorer", f"stand-in analysis N={n // 1000}k columns", "view update (datashaded)", t, mem.mb,
                   notes=f"datashader first call {warm:.1f} s (once per kernel, not included); "
                         f"large={v.large}; rasters {v.embedding_raster_source.data['image'][0].shape}, "
                         f"{len(v.frames.data['it'][0])} playback frames"))
    an.layout = SimpleNamespace(embedding=an.layout.embedding * 1.1, snapshots=an.layout.snapshots,
                                snapshot_iterations=an.layout.snapshot_iterations)
    t0 = time.perf_counter()
    v.update(an, hierarchy="stand-in")
    out.append(Row("explorer", f"stand-in analysis N={n // 1000}k columns", "new layout → source + rasters",
                   time.perf_counter() - t0, notes="what a force-schedule change costs the views at this size"))
    return finish(out)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(machine_notes())
    print(format_table(rows(quick)))
