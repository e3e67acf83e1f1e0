"""The square-motif view (motiflab.widgets.assembly_view) as a standalone page in a real, offline Chromium.

Saves ``test-artifacts/assembly_view.png`` (the whole view) for a person to look at.
"""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

from .conftest import open_offline

pytestmark = [pytest.mark.browser]

# the page coordinates of a data point of a named figure (the document has no 'columns' model: no _ml here)
JS_TO_PAGE = """([name, x, y]) => {
  const find = (v) => {
    if (v.model && v.model.name === name) return v;
    for (const c of (v.child_views || [])) { const r = find(c); if (r) return r; }
    return null;
  };
  for (const root of Bokeh.index.roots) {
    const v = find(root);
    if (v) { const r = v.canvas_view.el.getBoundingClientRect();
             return [r.left + v.frame.x_scale.compute(x), r.top + v.frame.y_scale.compute(y)]; }
  }
  return null;
}"""


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from motiflab.assembly_report import assembly_report
    from motiflab.widgets import assembly_view

    rng = np.random.default_rng(4)
    g = rng.choice(2, size=(40, 40), p=[0.6, 0.4])
    g[::4, ::4] = 1  # some order: a filled unit every four sites
    rep = assembly_report(g, states=["empty", "filled"], nulls=("shuffled", "random"), n_repeats=10, top=8)
    colors = ["#1f77b4", "#ff7f0e"]
    path = tmp_path_factory.mktemp("assembly") / "assembly.html"
    path.write_text(file_html(assembly_view(rep, colors=colors), INLINE, "assembly view"), encoding="utf-8")
    return path, rep, colors


def _pixels(png):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_view_renders_offline_with_pictures_panels_and_caption(browser, page_file, artifacts):
    path, rep, colors = page_file
    ctx, pg, log, blocked = open_offline(
        browser, path, 1200, 1500,
        "() => Bokeh.documents.length > 0 && Bokeh.documents[0].get_model_by_name('assembly_motifs') !== null")
    try:
        pg.wait_for_timeout(600)
        shot = _pixels(pg.screenshot(full_page=True))
        # every picture is drawn: at the middle of each unit square, the state's colour
        d = pg.evaluate("() => { const d = Bokeh.documents[0].get_model_by_name('assembly_units').data;"
                        " return [Array.from(d.x), Array.from(d.y), Array.from(d.color)]; }")
        n_units = 4 * len(rep.level(2).top) + 16 * len(rep.level(3).top)
        assert len(d[0]) == n_units
        for x, y, c in list(zip(*d))[::7]:
            px, py = np.rint(pg.evaluate(JS_TO_PAGE, ["assembly_motifs", x, y])).astype(int)
            want = np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])
            assert np.abs(shot[py, px] - want).max() <= 12, (x, y, c, shot[py, px])
        # the entropy panels: the sample's black diamond is drawn where its entropy is
        for lev in (2, 3):
            px, py = np.rint(pg.evaluate(JS_TO_PAGE, [f"assembly_entropy_{lev}",
                                                      rep.level(lev).entropy_bits, 0.0])).astype(int)
            assert shot[py - 2:py + 3, px - 2:px + 3].max() < 60, f"level {lev}: no diamond at the sample's entropy"
        # the caption and verdicts are on the page (Bokeh Divs render in a shadow root)
        text = pg.evaluate("""() => { const out = [];
            const walk = (v) => { if (v.model && v.model.name && v.model.name.startsWith('assembly_') && v.el
                                      && v.el.shadowRoot) out.push(v.el.shadowRoot.textContent);
                                  for (const c of (v.child_views || [])) walk(c); };
            for (const r of Bokeh.index.roots) walk(r);
            return out.join(' '); }""")
        assert "How to read this view" in text and "for shuffled units" in text
        pg.screenshot(path=os.path.join(artifacts, "assembly_view.png"), full_page=True)
        assert log.errors == [] and blocked == []
    finally:
        ctx.close()
