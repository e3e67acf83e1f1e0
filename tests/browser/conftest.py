"""Real-browser fixtures: Debian's Chromium driven by Playwright (headless, no sandbox).

A Playwright browser download does not work on offline machines, so the tests
use the system Chromium (``apt-get install chromium``; ``make test`` runs
``scripts/ensure-chromium.sh`` first). They are skipped, with the reason, only
when no Chromium executable can be found.

Helpers here locate Bokeh views in a page (by model name) and convert data
coordinates to page coordinates, so tests can drag, hover and click on real
glyphs.
"""
from __future__ import annotations

import os
import shutil

import pytest


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


@pytest.fixture(scope="session")
def artifacts(artifacts_dir):
    """Screenshot folder (the suite-wide ``artifacts_dir`` of tests/conftest.py)."""
    return os.path.abspath(artifacts_dir)


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.skip("Chromium not found (apt-get install chromium, or run `make test`, which installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'motiflab[test]')")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # pragma: no cover - broken chromium install
        pw.stop()
        pytest.fail(f"Chromium at {exe} did not start: {exc}")
    yield b
    b.close()
    pw.stop()


class PageLog:
    """Console errors, page errors and network requests of one page."""

    def __init__(self, page, ignore=()):
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.ignore = tuple(ignore)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("request", lambda req: self.requests.append(req.url))

    def _console(self, msg):
        if msg.type == "error" and not any(s in msg.text for s in self.ignore):
            self.errors.append(f"console.error: {msg.text}")


# JavaScript helpers: find the view of a named Bokeh model and map data -> page coordinates
JS_HELPERS = """
window._ml = {
  doc() {
    // standalone pages register their document in Bokeh.documents; jupyter_bokeh widgets only add
    // root views to Bokeh.index: look in both, newest first
    const docs = [...Bokeh.index.roots.map((r) => r.model.document), ...Bokeh.documents].reverse();
    for (const d of docs) { if (d && d.get_model_by_name('columns')) return d; }
    return null;
  },
  model(name) { const d = this.doc(); return d ? d.get_model_by_name(name) : null; },
  view(name) {
    const m = this.model(name);
    const find = (v) => {
      if (v.model === m) return v;
      for (const c of (v.child_views || [])) { const r = find(c); if (r) return r; }
      for (const c of (v.renderer_views ? v.renderer_views.values() : [])) { const r = find(c); if (r) return r; }
      return null;
    };
    for (const r of [...Bokeh.index.roots].reverse()) { const f = find(r); if (f) return f; }
    return null;
  },
  toPage(figName, xs, ys) {
    const v = this.view(figName);
    const r = v.canvas_view.el.getBoundingClientRect();
    return xs.map((x, i) => [r.left + v.frame.x_scale.compute(x), r.top + v.frame.y_scale.compute(ys[i])]);
  },
  toData(figName, px, py) {
    const v = this.view(figName);
    const r = v.canvas_view.el.getBoundingClientRect();
    return [v.frame.x_scale.invert(px - r.left), v.frame.y_scale.invert(py - r.top)];
  },
  frame(figName) {
    const v = this.view(figName);
    const r = v.canvas_view.el.getBoundingClientRect();
    const b = v.frame.bbox;
    return [r.left + b.left, r.top + b.top, b.width, b.height];
  },
};
"""


def install_helpers(page_or_frame):
    page_or_frame.evaluate(JS_HELPERS)
