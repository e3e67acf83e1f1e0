"""The live microscope view in a real JupyterLab: frames arrive, the view follows them.

Like ``test_jupyterlab.py``, the test starts its own JupyterLab server
(127.0.0.1, free port, token disabled, temporary root and settings folders)
and drives Debian's Chromium with Playwright. Its notebook fits a motif model,
starts a background thread that writes a synthetic frame every 0.7 s into a
folder, and opens ``motiflab.live`` on that folder. The test then checks, in
the page, that the shown frame changes and that the populations plot gains
points while frames arrive, and that no console error was logged; a screenshot
goes to ``test-artifacts/live_view.png``.
"""
from __future__ import annotations

import os

import pytest

from .conftest import PageLog, jupyterlab_server, require_jupyterlab, run_notebook

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("jupyterlab")]

IGNORED_CONSOLE = ("Failed to load resource", "net::ERR_INTERNET_DISCONNECTED", "api/news")

N_FRAMES = 20
NOTEBOOK_CODE = f"""
import io, threading, time, tempfile
from pathlib import Path
import numpy as np
import motiflab
from motiflab.datasets import make_tmd

acq = Path(tempfile.mkdtemp(prefix="live-browser-"))
model = motiflab.Analysis(make_tmd("MoSe2", shape=(192, 192), dose=60, seed=11).image, seed=0).run().model()

def microscope():
    time.sleep(2.0)  # the view is on the page before the first frame lands
    for t in range({N_FRAMES}):
        img = make_tmd("MoSe2", shape=(160, 160), chalcogen_vacancy_rate=0.008 * t, dose=60, seed=100 + t).image
        np.save(acq / f"frame_{{t:03d}}.npy", img)
        time.sleep(0.7)

threading.Thread(target=microscope, daemon=True).start()
view = motiflab.live(acq, model, thresholds={{"new": 0.10}}, poll=0.2)
view
"""

# the Bokeh models of the live view, found by name in whichever document jupyter_bokeh made
JS_STATE = """() => {
  if (!window.Bokeh || !Bokeh.index) return null;
  const docs = [...Bokeh.index.roots.map((r) => r.model.document), ...(Bokeh.documents || [])].reverse();
  const doc = docs.find((d) => d && d.get_model_by_name('live_populations'));
  if (!doc) return null;
  const pop = doc.get_model_by_name('live_populations');
  const cols = doc.get_model_by_name('live_columns');
  const fig = doc.get_model_by_name('live_micrograph');
  const frame = doc.get_model_by_name('live_frame');
  const el = document.querySelector('.motiflab-live');
  return {points: pop.data.frame.length, frames: Array.from(pop.data.frame),
          columns: cols.data.x.length, colors: [...new Set(cols.data.color)].length,
          title: fig.title.text, image: frame.data.image.length,
          text: el ? el.innerText : ''};
}"""


@pytest.fixture(scope="module")
def live_lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with the live notebook in its root; stopped at the end."""
    require_jupyterlab()
    nbformat = pytest.importorskip("nbformat")
    root = tmp_path_factory.mktemp("livelab")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK_CODE.strip())]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, str(root / "live.ipynb"))
    with jupyterlab_server(root, tmp_path_factory.mktemp("livelabhome")) as server:
        yield server


def test_live_view_follows_frames_as_they_arrive(browser, live_lab, artifacts):
    ctx = browser.new_context(viewport={"width": 1300, "height": 1100}, device_scale_factor=1)
    page = ctx.new_page()
    log = PageLog(page, ignore=IGNORED_CONSOLE)
    try:
        run_notebook(page, live_lab, "live.ipynb")
        page.locator(".motiflab-live").wait_for(state="visible", timeout=120000)
        try:
            page.wait_for_function(f"() => {{ const s = ({JS_STATE})(); return s && s.points >= 2; }}",
                                   timeout=90000)
        except Exception as exc:
            outputs = page.evaluate("() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
                                    ".map(e => e.innerText)")
            raise AssertionError(f"no frames reached the live view: {outputs}\n"
                                 f"{live_lab['log'].read_text()[-3000:]}") from exc
        first = page.evaluate(JS_STATE)
        page.screenshot(path=os.path.join(artifacts, "live_view_early.png"), full_page=True)
        # while the 'microscope' keeps writing, the page keeps changing without any action of ours
        page.wait_for_function(f"() => {{ const s = ({JS_STATE})(); return s && s.points >= {first['points']} + 4; }}",
                               timeout=60000)
        later = page.evaluate(JS_STATE)
        page.wait_for_function(f"() => {{ const s = ({JS_STATE})(); return s && s.points >= {N_FRAMES}; }}",
                               timeout=90000)
        page.wait_for_timeout(500)
        last = page.evaluate(JS_STATE)
        shot = os.path.join(artifacts, "live_view.png")
        page.screenshot(path=shot, full_page=True)
        print(f"\nlive view: {first['points']} → {later['points']} → {last['points']} points; "
              f"title {first['title']!r} → {last['title']!r}; screenshot {shot}")

        assert later["points"] > first["points"] and last["points"] == N_FRAMES
        assert last["frames"] == list(range(N_FRAMES))      # each frame once, in order
        assert first["title"] != last["title"] and last["title"].startswith(f"frame {N_FRAMES - 1}:")
        assert last["image"] == 1 and last["columns"] > 50
        assert last["colors"] >= 3                         # two motifs and the new (black) columns
        assert "frame 19" in last["text"]
        assert "unlike every known motif" in last["text"] or "new is" in last["text"]  # the alert line
        assert not log.errors, log.errors
    finally:
        ctx.close()
