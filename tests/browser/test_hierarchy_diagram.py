"""The report's hierarchy diagram in a real, offline Chromium: pictures drawn, hover in words, click → occurrences.

Saves ``test-artifacts/hierarchy_diagram.png`` (the diagram and its caption) for a person to look at.
"""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

from .conftest import open_offline

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The standalone report of the built-in sample (what ``motiflab demo`` writes)."""
    import motiflab
    from motiflab.widgets.report import write_report

    an = motiflab.Analysis(motiflab.datasets.load_sample().to_signal()).run()
    path = tmp_path_factory.mktemp("hier") / "demo.html"
    write_report(an, path)
    return path, an


@pytest.fixture()
def page(browser, report):
    # tall enough that the whole page is in the viewport: page and viewport coordinates agree
    ctx, pg, log, requests = open_offline(
        browser, report[0], 1500, 3200,
        "() => _ml.view('hierarchy_fig') && _ml.model('hierarchy_nodes').data.id.length > 0")
    pg.wait_for_timeout(500)
    yield pg, log, requests
    ctx.close()


def _pixels(png):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_diagram_renders_pictures_and_caption(page, report, artifacts):
    pg, log, requests = page
    an = report[1]
    d = pg.evaluate("""() => { const d = _ml.model('hierarchy_nodes').data;
        return {id: Array.from(d.id), ix: Array.from(d.ix), iy: Array.from(d.iy), text: Array.from(d.text),
                n_img: d.image.length}; }""")
    n = len(d["id"])
    assert n >= 10 and d["n_img"] == n
    tile = 68
    # the middle of every picture, in page pixels
    cx = [x + tile / 2 for x in d["ix"]]
    cy = [y + tile / 2 for y in d["iy"]]
    pts = np.rint(np.asarray(pg.evaluate("([a, b]) => _ml.toPage('hierarchy_fig', a, b)", [cx, cy]))).astype(int)
    shot = _pixels(pg.screenshot(full_page=True))
    for (px, py), node in zip(pts, d["id"]):
        patch = shot[py - 20:py + 20, px - 20:px + 20]
        # a micrograph picture: dark background, bright columns, coloured dots -- not the white page
        assert patch.std() > 20 and patch.mean() < 200, f"node {node}: no picture drawn"
    # the caption is on the page, below the diagram
    cap = pg.evaluate("() => { const v = _ml.view('hierarchy_caption'); return v.el.innerText || v.el.shadowRoot.textContent; }")
    assert "How to read" in cap and "Click a picture" in cap
    # the screenshot a person looks at: the diagram and its caption
    r = pg.evaluate("""() => { const v = _ml.view('hierarchy_panel'); const r = v.el.getBoundingClientRect();
        return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }""")
    pg.screenshot(path=os.path.join(artifacts, "hierarchy_diagram.png"), full_page=True,
                  clip=dict(x=r[0], y=r[1], width=r[2], height=r[3]))
    assert log.errors == [] and requests == []


def test_hover_is_plain_language(page, report):
    pg, log, _ = page
    h = report[1].hierarchy
    d = pg.evaluate("() => { const d = _ml.model('hierarchy_nodes').data; return [Array.from(d.x), Array.from(d.y), Array.from(d.id), Array.from(d.level)]; }")
    j = int(np.argmax(np.asarray(d[3]) > 1))  # a higher-level motif-cell
    (px, py), = pg.evaluate("([a, b]) => _ml.toPage('hierarchy_fig', a, b)", [[d[0][j]], [d[1][j]]])
    pg.mouse.move(px, py)
    pg.wait_for_timeout(400)
    tip = pg.evaluate("""() => Array.from(document.querySelectorAll('*')).map((e) => e.shadowRoot)
        .filter((s) => s).map((s) => Array.from(s.querySelectorAll('.bk-Tooltip, .bk-tooltip-content'))
        .map((t) => t.innerText).join(' ')).join(' ')""")
    m = h.node(d[2][j])
    assert f"motif-cell {m.id} · level {m.level}" in tip and f"found {m.count} times" in tip, tip
    lab, cnt = m.composition[0]
    assert f"motif {lab} ×{cnt}" in tip.replace("\xa0", " "), tip
    assert log.errors == []


def test_clicking_each_picture_selects_its_occurrences(page, report):
    from motiflab.widgets._hierarchy_view import node_occurrences

    pg, log, _ = page
    h = report[1].hierarchy
    d = pg.evaluate("() => { const d = _ml.model('hierarchy_nodes').data; return [Array.from(d.x), Array.from(d.y), Array.from(d.id)]; }")
    for j in range(len(d[2])):
        (px, py), = pg.evaluate("([a, b]) => _ml.toPage('hierarchy_fig', a, b)", [[d[0][j]], [d[1][j] + 10]])
        pg.wait_for_timeout(450)  # two quick clicks would be one double-tap, which the tap tool ignores
        pg.mouse.click(px, py)
        pg.wait_for_timeout(150)
        got = pg.evaluate("() => Array.from(_ml.model('columns').selected.indices)")
        want = node_occurrences(h, d[2][j])
        assert len(want) > 0 and sorted(got) == want.tolist(), f"node {d[2][j]}"
    assert log.errors == []
