"""The exported explorer HTML in a real, offline Chromium: selection, hover, playback, no errors."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

from motiflab.colors import label_colors

from .conftest import open_offline

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small analysis exported with ``Explorer.save_html``, plus the data it shows."""
    from motiflab.datasets import make_tmd
    from motiflab.widgets import Explorer

    img = make_tmd("MoSe2", shape=(224, 224), chalcogen_vacancy_rate=0.05, dose=100, seed=11).to_signal()
    ex = Explorer(img, background=False, n_iter=80, seed=0)
    path = tmp_path_factory.mktemp("export") / "explorer.html"
    # the live explorer sends the playback frames only when its page asks; the file must hold them
    assert len(ex.views.frames.data["it"][0]) == 0
    ex.save_html(path)
    an = ex.analysis
    phys = an.calibration.to_physical(an.positions)
    return dict(path=path, ex=ex, emb=np.asarray(an.layout.embedding, dtype=np.float64), xy=phys[:, ::-1],
                labels=np.asarray(an.motifs.labels), colors=label_colors(an.motifs.labels, an.motifs.n_motifs).tolist(),
                patch=an.patch_size, n_frames=len(ex.views.kept_frames["it"][0]))


def _open(browser, path):
    ctx, pg, log, blocked = open_offline(browser, path, 1600, 1000,
                                         "() => _ml.view('embedding') && _ml.view('micrograph')")
    pg.wait_for_timeout(300)
    return ctx, pg, log, blocked


@pytest.fixture()
def page(browser, exported):
    ctx, pg, log, blocked = _open(browser, exported["path"])
    yield pg, log, blocked
    ctx.close()


def _pixels(png_bytes):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB")).astype(int)


def _hex(c):
    c = c.lstrip("#")
    return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)])


def _pick_box(emb, labels):
    """A data rectangle around one motif's blob whose edges are clear of every point."""
    k = int(np.bincount(labels[labels >= 0]).argmax())
    c = np.median(emb[labels == k], axis=0)
    span = emb.max(0) - emb.min(0)
    for grow in (0.06, 0.08, 0.1, 0.12, 0.05, 0.14):
        lo, hi = c - grow * span, c + grow * span
        # no point within 1.5 % of the span of any edge: screen rounding cannot flip one
        tol = 0.015 * span
        near = ((np.abs(emb[:, 0] - lo[0]) < tol[0]) | (np.abs(emb[:, 0] - hi[0]) < tol[0])
                | (np.abs(emb[:, 1] - lo[1]) < tol[1]) | (np.abs(emb[:, 1] - hi[1]) < tol[1]))
        inside = (emb[:, 0] >= lo[0]) & (emb[:, 0] <= hi[0]) & (emb[:, 1] >= lo[1]) & (emb[:, 1] <= hi[1])
        if inside.sum() >= 3 and not near.any():
            return lo, hi
    return c - 0.07 * span, c + 0.07 * span


def _box_select(pg, emb, labels):
    """Drag a box over one motif's blob in the embedding; return (expected indices, selected indices)."""
    lo, hi = _pick_box(emb, labels)
    (x0, y0), (x1, y1) = pg.evaluate("([a, b]) => _ml.toPage('embedding', a, b)",
                                     [[lo[0], hi[0]], [hi[1], lo[1]]])
    # the rectangle that is dragged, in data units (pixel rounding included); taken
    # before the drag: measured after it, the page-to-data mapping had moved (1.6 data
    # units in x on one layout) while Bokeh had selected exactly the dragged box
    d0 = pg.evaluate("([x, y]) => _ml.toData('embedding', x, y)", [x0, y0])
    d1 = pg.evaluate("([x, y]) => _ml.toData('embedding', x, y)", [x1, y1])
    pg.mouse.move(x0, y0)
    pg.mouse.down()
    pg.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    pg.mouse.move(x1, y1, steps=4)
    pg.mouse.up()
    pg.wait_for_timeout(400)
    bx = sorted([d0[0], d1[0]])
    by = sorted([d0[1], d1[1]])
    expected = np.flatnonzero((emb[:, 0] >= bx[0]) & (emb[:, 0] <= bx[1]) & (emb[:, 1] >= by[0]) & (emb[:, 1] <= by[1]))
    assert len(expected) >= 3
    got = pg.evaluate("() => Array.from(_ml.model('columns').selected.indices)")
    return expected, got


def _click_data(pg, fig, x, y):
    """Click the page at data point (x, y) of figure ``fig``, scrolling it into the 1600×1000 view first."""
    (px, py), = pg.evaluate(f"([a, b]) => _ml.toPage('{fig}', a, b)", [[x], [y]])
    if not 0 <= py < 1000:
        pg.evaluate(f"() => window.scrollBy(0, {py - 500})")
        pg.wait_for_timeout(200)
        (px, py), = pg.evaluate(f"([a, b]) => _ml.toPage('{fig}', a, b)", [[x], [y]])
    pg.mouse.click(px, py)


def test_box_selection_in_embedding_highlights_exactly_those_markers(page, exported, artifacts):
    pg, log, blocked = page
    emb, labels = exported["emb"], exported["labels"]
    pg.screenshot(path=os.path.join(artifacts, "export_before_selection.png"), full_page=True)
    expected, got = _box_select(pg, emb, labels)
    assert sorted(got) == expected.tolist()
    # the micrograph's markers are drawn from the same source: its renderer shows that selection
    same = pg.evaluate("""() => { const v = _ml.view('micrograph');
        const r = v.model.renderers.find((r) => r.name === 'columns_on_micrograph');
        return r.data_source === _ml.model('columns') ? Array.from(r.data_source.selected.indices) : null; }""")
    assert same is not None and sorted(same) == expected.tolist()
    # ... and on screen: selected markers are drawn in their motif colour, the others faded
    shot = _pixels(pg.screenshot(full_page=True))
    xy = exported["xy"]
    pts = pg.evaluate("([a, b]) => _ml.toPage('micrograph', a, b)", [xy[:, 0].tolist(), xy[:, 1].tolist()])
    pts = np.rint(np.asarray(pts)).astype(int)
    cols = np.array([_hex(c) for c in exported["colors"]])
    dist = np.linalg.norm(shot[pts[:, 1], pts[:, 0]] - cols, axis=1)
    sel = np.zeros(len(xy), bool)
    sel[expected] = True
    assert np.mean(dist[sel] < 40) > 0.9, dist[sel]
    assert np.mean(dist[~sel] < 40) < 0.25
    pg.screenshot(path=os.path.join(artifacts, "export_after_box_selection.png"), full_page=True)
    # the mean-patch view reports the selection
    info = pg.evaluate("() => _ml.model('selection_info').text")
    assert info.startswith(f"{len(expected)} of {len(emb)} columns selected")
    assert log.errors == []
    assert blocked == [] and not [u for u in log.requests if u.startswith(("http:", "https:", "ws:"))]


def test_hover_shows_the_columns_own_thumbnail(page, exported, artifacts):
    pg, log, _ = page
    emb = exported["emb"]
    scr = np.asarray(pg.evaluate("([a, b]) => _ml.toPage('embedding', a, b)", [emb[:, 0].tolist(), emb[:, 1].tolist()]))
    # the most isolated point on screen, so the tooltip names only that column
    d = np.linalg.norm(scr[:, None] - scr[None], axis=2)
    np.fill_diagonal(d, np.inf)
    i = int(np.argmax(d.min(1)))
    pg.mouse.move(scr[i, 0] + 5, scr[i, 1] + 5)
    pg.mouse.move(scr[i, 0], scr[i, 1], steps=3)
    tips = pg.locator(".bk-tooltip-content .motiflab-tip")
    tips.first.wait_for(state="visible", timeout=5000)
    # FR blobs are tight (on this layout every point has a neighbour within ~1 px): the tooltip
    # lists the columns under the cursor, at most HOVER_LIMIT of them, each with its own patch
    shown = tips.all()
    assert 1 <= len(shown) <= 3
    import re

    for tip in shown:
        j = int(re.search(r"\(column (\d+)\)", tip.inner_text()).group(1))
        # the motif's name, formatted in the page from the column's label
        lab = int(exported["labels"][j])
        assert (f"motif {lab} (column {j})" if lab >= 0 else f"unassigned (column {j})") in tip.inner_text()
        assert np.linalg.norm(scr[j] - scr[i]) < 6  # a column under the cursor
        img = tip.locator("img").first
        src = img.get_attribute("src")
        assert src.startswith("data:image/png;base64,")
        wh = pg.evaluate("(el) => [el.naturalWidth, el.naturalHeight, el.complete]", img.element_handle())
        assert wh == [exported["patch"], exported["patch"], True]
        # it is this column's own patch: the same PNG the source holds for row j
        assert src == pg.evaluate("(j) => _ml.model('columns').data.thumb[j]", j)
    pg.screenshot(path=os.path.join(artifacts, "export_hover_thumbnail.png"), full_page=True)
    assert log.errors == []


def test_playback_moves_the_points_and_ends_on_the_final_layout(page, exported, artifacts):
    pg, log, _ = page
    final = np.asarray(pg.evaluate("() => Array.from(_ml.model('columns').data.ex)"))
    assert np.allclose(final, exported["emb"][:, 0], atol=1e-4)
    frame = pg.evaluate("() => _ml.frame('embedding')")
    clip = dict(x=frame[0], y=frame[1], width=frame[2], height=frame[3])
    before = _pixels(pg.screenshot(clip=clip))
    # the file holds every frame (no kernel to ask): Play starts at once, with no "loading frames…"
    assert exported["n_frames"] > 10
    assert pg.evaluate("() => _ml.model('frames').data.it[0].length") == exported["n_frames"]
    pg.evaluate("""() => { window._ml_labels = []; const lab = _ml.model('playback_label');
        lab.properties.text.change.connect(() => window._ml_labels.push(lab.text)); }""")
    pg.evaluate("() => { _ml.model('playback_speed').value = 30; }")
    pg.get_by_role("button", name="▶ Play").click()
    assert not any("loading" in t for t in pg.evaluate("() => window._ml_labels"))
    # the player keeps its frame in the page and draws into the separate "playback" source
    pg.wait_for_function("() => _ml.model('playback_iteration').text.startsWith('iteration ')", timeout=5000)
    pg.wait_for_timeout(150)
    mid = np.asarray(pg.evaluate("() => Array.from(_ml.model('playback').data.px)"))
    mid_px = _pixels(pg.screenshot(clip=clip))
    pg.screenshot(path=os.path.join(artifacts, "export_playback_midway.png"), full_page=True)
    assert pg.evaluate("() => _ml.model('playback_points').visible && !_ml.model('embedding_points').visible")
    assert np.abs(mid - final).max() > 0.1, "points did not move"
    assert np.abs(mid_px - before).sum(axis=2).astype(bool).mean() > 0.005, "the canvas did not change"
    # the shared per-column source (selection, hover) is never rewritten by the player
    assert np.allclose(pg.evaluate("() => Array.from(_ml.model('columns').data.ex)"), final, atol=1e-6)
    end = exported["n_frames"] - 1
    pg.wait_for_function(f"() => _ml.model('playback_slider').value == {end} && "
                         "_ml.model('playback_button').label.startsWith('▶')", timeout=15000)
    pg.wait_for_timeout(200)
    after = np.asarray(pg.evaluate("() => Array.from(_ml.model('playback').data.px)"))
    assert np.allclose(after, final, atol=1e-4)
    assert pg.evaluate("() => !_ml.model('playback_points').visible && _ml.model('embedding_points').visible")
    assert pg.evaluate("() => _ml.model('playback_button').label") == "▶ Play"
    assert pg.evaluate("() => _ml.model('playback_label').text").startswith("FR relaxation: iteration")
    fps = pg.evaluate("() => window['_motiflab_play_stats_' + _ml.model('playback_slider').id].fps")
    print(f"standalone playback: {fps:.1f} frames/s (30 asked)")
    assert fps >= 20
    assert log.errors == []


def test_wheel_scrolls_the_page_until_the_plot_is_clicked(page, exported):
    pg, log, _ = page
    fx, fy, fw, fh = pg.evaluate("() => _ml.frame('embedding')")
    rng = "() => [_ml.model('embedding').x_range.start, _ml.model('embedding').x_range.end]"
    r0 = pg.evaluate(rng)
    pg.mouse.move(fx + fw / 2, fy + fh / 2)
    pg.mouse.wheel(0, 300)
    pg.wait_for_timeout(300)
    assert pg.evaluate(rng) == r0, "the wheel zoomed a plot the user had not clicked"
    assert pg.evaluate("() => window.scrollY") > 0, "the page did not scroll"
    pg.evaluate("() => window.scrollTo(0, 0)")
    pg.wait_for_timeout(200)
    fx, fy, fw, fh = pg.evaluate("() => _ml.frame('embedding')")
    pg.mouse.click(fx + 3, fy + 3)  # a click on an empty corner: activates the wheel zoom
    pg.wait_for_timeout(200)
    pg.mouse.move(fx + fw / 2, fy + fh / 2)
    pg.mouse.wheel(0, -200)
    pg.wait_for_timeout(300)
    assert pg.evaluate(rng) != r0, "a click on the plot did not hand it the wheel"
    assert log.errors == []


def test_hover_in_a_tight_cluster_shows_at_most_three_thumbnails(page, exported, artifacts):
    pg, log, _ = page
    emb = exported["emb"]
    scr = np.asarray(pg.evaluate("([a, b]) => _ml.toPage('embedding', a, b)", [emb[:, 0].tolist(), emb[:, 1].tolist()]))
    # the densest spot on screen: the point with the most neighbours within 4 px
    d = np.linalg.norm(scr[:, None] - scr[None], axis=2)
    i = int(np.argmax((d < 4).sum(1)))
    assert (d[i] < 4).sum() > 3  # more points under the cursor than the tooltip may list
    pg.mouse.move(scr[i, 0] + 6, scr[i, 1] + 6)
    pg.mouse.move(scr[i, 0], scr[i, 1], steps=3)
    pg.locator(".bk-tooltip-content .motiflab-tip").first.wait_for(state="visible", timeout=5000)
    n = pg.locator(".bk-tooltip-content .motiflab-tip img").count()
    pg.screenshot(path=os.path.join(artifacts, "export_hover_cluster.png"))
    assert 1 <= n <= 3, n
    assert log.errors == []


def test_a_selection_elsewhere_clears_the_gallery_highlight(page, exported):
    pg, log, _ = page
    labels = exported["labels"]
    k = 1 if labels.max() >= 1 else 0
    cx, cy = pg.evaluate(f"() => {{ const g = _ml.model('gallery'); return [g.data.cx[{k}], g.data.cy[{k}]]; }}")
    (px, py), = pg.evaluate("([a, b]) => _ml.toPage('gallery_fig', a, b)", [[cx], [cy]])
    pg.mouse.click(px, py)
    pg.wait_for_timeout(300)
    sel = "(n) => Array.from(_ml.model(n).selected.indices)"
    assert pg.evaluate(sel, "gallery") == [k] and pg.evaluate(sel, "counts") == [k]
    # now a box in the layout: the gallery and bars follow the new selection
    expected, got = _box_select(pg, exported["emb"], labels)
    whole = [m for m in range(labels.max() + 1)
             if np.isin(np.flatnonzero(labels == m), got).all() and (labels == m).any()]
    assert pg.evaluate(sel, "gallery") == whole and pg.evaluate(sel, "counts") == whole
    assert k not in whole or np.isin(np.flatnonzero(labels == k), got).all()
    assert log.errors == []


def test_clicking_a_motif_tile_selects_its_columns(page, exported):
    pg, log, _ = page
    labels = exported["labels"]
    k = 1 if labels.max() >= 1 else 0
    cx, cy = pg.evaluate(f"""() => {{ const g = _ml.model('gallery');
        return [g.data.cx[{k}], g.data.cy[{k}]]; }}""")
    (px, py), = pg.evaluate("([a, b]) => _ml.toPage('gallery_fig', a, b)", [[cx], [cy]])
    pg.mouse.click(px, py)
    pg.wait_for_timeout(300)
    got = pg.evaluate("() => Array.from(_ml.model('columns').selected.indices)")
    assert sorted(got) == np.flatnonzero(labels == k).tolist()
    assert log.errors == []


def test_hierarchy_node_click_highlights_every_occurrence(page, exported):
    pg, log, _ = page
    nodes = pg.evaluate("() => { const d = _ml.model('hierarchy_nodes').data; return [Array.from(d.x), Array.from(d.y), Array.from(d.id)]; }")
    xs, ys, ids = nodes
    j = int(np.argmin(ys)) if len(ids) > 1 else 0
    _click_data(pg, "hierarchy_fig", xs[j], ys[j])
    pg.wait_for_timeout(300)
    got = pg.evaluate("() => Array.from(_ml.model('columns').selected.indices)")
    d = exported["ex"].views.source.data
    node = ids[j]
    want = np.flatnonzero((np.asarray(d["hnode"]) == node) | (np.asarray(d["hcell"]) == node))
    assert len(want) > 0 and sorted(got) == want.tolist()
    assert log.errors == []


def test_datashaded_export_stays_selectable(browser, exported, tmp_path, artifacts):
    """Large-data rendering (forced on a small image): rasters drawn, box selection still exact."""
    from motiflab.widgets.report import hierarchy_of
    from motiflab.widgets.views import ExplorerViews

    an = exported["ex"].analysis
    v = ExplorerViews(an.image, an.calibration, datashade_above=10)
    v.update(an, hierarchy=hierarchy_of(an))
    assert v.large
    path = tmp_path / "large.html"
    path.write_text(v.html(), encoding="utf-8")
    ctx, pg, log, blocked = _open(browser, path)
    try:
        assert pg.evaluate("() => _ml.model('embedding_raster_r').visible && _ml.model('marker_raster_r').visible")
        expected, got = _box_select(pg, exported["emb"], exported["labels"])
        assert len(expected) >= 3 and sorted(got) == expected.tolist()
        pg.screenshot(path=os.path.join(artifacts, "export_datashaded_selection.png"), full_page=True)
        assert log.errors == [] and blocked == []
    finally:
        ctx.close()
