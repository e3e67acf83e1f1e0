"""HTML motiflab writes in a real, offline Chromium: a hostile title stays text, a reopened analysis looks the same."""
from __future__ import annotations

import pytest

from .conftest import PageLog, install_helpers

pytestmark = [pytest.mark.browser]

HOSTILE = ("<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
           "<svg onload=\"window.__pwned = 3\"></svg>")


@pytest.fixture(scope="module")
def analyses(tmp_path_factory):
    """An analysis of an image file whose title is hostile markup, and the same analysis saved and reopened."""
    import motiflab
    from motiflab.analysis import Analysis
    from motiflab.datasets import make_tmd

    d = tmp_path_factory.mktemp("hostile")
    s = make_tmd("MoSe2", shape=(160, 160), chalcogen_vacancy_rate=0.05, dose=100, seed=4).to_signal(include_truth=False)
    s.metadata.General.title = HOSTILE
    s.metadata.set_item("Acquisition_instrument.TEM.operator", HOSTILE)
    src = d / "hostile.hspy"
    s.save(src)
    an = Analysis(str(src), n_iter=40, seed=0).run()
    an.hierarchy
    an.save(d / "saved.hspy")
    return an, motiflab.open_analysis(d / "saved.hspy"), d


def _render(browser, path):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1600})
    ctx.set_offline(True)
    page = ctx.new_page()
    log = PageLog(page, ignore=("net::ERR_INTERNET_DISCONNECTED", "ERR_FILE_NOT_FOUND", "Failed to load resource"))
    page.goto(path.as_uri())
    page.wait_for_function("() => window.Bokeh && Bokeh.index.roots.length > 0", timeout=20000)
    install_helpers(page)
    page.wait_for_function("() => _ml.model('summary') && _ml.model('summary').text.length > 0", timeout=20000)
    page.wait_for_timeout(500)
    return ctx, page, log


def test_a_hostile_title_is_shown_as_text_and_never_runs(browser, analyses, artifacts_dir):
    import os

    from motiflab.widgets.report import write_report

    an, _, d = analyses
    out = write_report(an, d / "report.html", title=f"report of {HOSTILE}")
    ctx, page, _ = _render(browser, out)
    try:
        page.screenshot(path=os.path.join(artifacts_dir, "hostile_title_report.png"))
        assert page.evaluate("() => window.__pwned") is None
        header = page.evaluate("() => _ml.model('summary').text")
        assert "&lt;script&gt;" in header and "<script>" not in header
        # shown, as text, inside Bokeh's shadow DOM
        text = page.evaluate("""() => { const out = [];
            const walk = (root) => { root.querySelectorAll('*').forEach(e => {
                if (e.shadowRoot) walk(e.shadowRoot); }); out.push(root.textContent || ''); };
            walk(document); return out.join(' '); }""")
        assert "window.__pwned = 1" in text
        assert page.title().startswith("report of <script>")  # the page title is text too
    finally:
        ctx.close()


def test_a_reopened_analysis_shows_the_same_views(browser, analyses):
    from motiflab.widgets.report import write_report

    an, opened, d = analyses
    n0 = len(opened.log)
    first = write_report(an, d / "first.html")
    again = write_report(opened, d / "again.html")
    seen = []
    for path in (first, again):
        ctx, page, log = _render(browser, path)
        try:
            seen.append(page.evaluate("""() => ({
                ex: Array.from(_ml.model('columns').data.ex), motif: Array.from(_ml.model('columns').data.motif),
                gallery: _ml.model('gallery').data.text.slice(), summary: _ml.model('summary').text,
                frames: _ml.model('frames') ? _ml.model('frames').data.it[0].length : 0 })"""))
            assert not log.errors, log.errors
        finally:
            ctx.close()
    # the same analysis, but two files written at different moments: the "written" date may differ
    import re

    for v in seen:
        v["summary"] = re.sub(r"written</th><td>[^<]*", "written</th><td>", v["summary"])
    assert seen[0] == seen[1]
    assert len(opened.log) == n0  # shown from the file: nothing was recomputed
