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

import contextlib

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


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_jupyterlab():
    """Skip unless JupyterLab, jupyter_bokeh and a 'python3' kernel are installed."""
    pytest.importorskip("jupyterlab")
    pytest.importorskip("jupyter_bokeh")
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("no 'python3' kernel: python -m ipykernel install --sys-prefix --name python3")


@contextlib.contextmanager
def jupyterlab_server(root, home):
    """A JupyterLab server on 127.0.0.1 serving ``root`` (token off, free port, settings in ``home``).

    The numba kernels are compiled first (as Binder's postBuild does), so a notebook's kernel does not
    spend its first minute compiling. Yields ``dict(url, root, log)``; the server and its kernels are
    stopped at the end.
    """
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    env = dict(os.environ)
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               NUMBA_NUM_THREADS=env.get("NUMBA_NUM_THREADS", "2"), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.open_browser=False",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.news_url=None", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    # compile and cache the numba kernels first, as Binder's postBuild does: on a fresh
    # clone the notebook's kernel would otherwise spend its first minute compiling
    warm = subprocess.run([sys.executable, "-m", "motiflab.cli", "warmup", "-q"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr[-3000:]
    # comm messages on the main shell, not on JupyterLab 4.6's per-comm-target kernel subshells:
    # ipykernel 7.4 drops messages addressed to a subshell deleted in the meantime (when a target's
    # last comm closes), so once in ~6 full runs every control of the explorer went dead
    # ("Cannot handle comm_msg ...: Unknown subshell_id" in the server log; ipykernel#1557)
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "kernels-settings.jupyterlab-settings").write_text('{"commsOverSubshells": "disabled"}')
    log_path = home / "jupyterlab.log"
    logf = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=str(root), env=env, stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start in 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield dict(url=url, root=root, log=log_path)
    finally:
        # stop the server we started (its kernels die with it), by its own process group
        try:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
        logf.close()


def open_offline(browser, path, width, height, ready):
    """A page showing the HTML file ``path`` with the network off, once Bokeh has rendered and ``ready`` holds.

    Returns ``(context, page, log, blocked)``: ``blocked`` lists every request that tried to leave the
    machine (a self-contained file makes none).
    """
    ctx = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    ctx.set_offline(True)  # the file must work with the network disabled
    blocked = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    pg = ctx.new_page()
    log = PageLog(pg)
    pg.goto(path.as_uri())
    pg.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.index.roots.length > 0",
                         timeout=20000)
    install_helpers(pg)
    pg.wait_for_function(ready, timeout=20000)
    return ctx, pg, log, blocked


def run_notebook(page, server, name):
    """Open notebook ``name`` of a :func:`jupyterlab_server` in ``page``, wait for its kernel, run every cell."""
    page.goto(f"{server['url']}/lab/tree/{name}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60000)
    page.wait_for_function("""() => { const w = window.jupyterapp.shell.currentWidget;
        return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel
            && w.sessionContext.session.kernel.status === 'idle'; }""", timeout=60000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def open_explorer(page, server, name, timeout=180000):
    """Open notebook ``name`` (whose cell shows an explorer), run it, wait for the first run and the Bokeh views.

    The ``_ml`` page helpers are installed on return. ``timeout`` (ms) bounds the explorer's first run.
    """
    run_notebook(page, server, name)
    page.locator(".motiflab-explorer").wait_for(state="visible", timeout=60000)
    page.wait_for_function("""() => { const e = document.querySelector('.motiflab-explorer');
        return e && /ready · run 1\\b/.test(e.innerText); }""", timeout=timeout)
    page.wait_for_function("() => window.Bokeh && Bokeh.index && Bokeh.index.roots.length > 0", timeout=30000)
    install_helpers(page)
    page.wait_for_function("""() => { const m = _ml.model('columns'); const v = _ml.view('embedding');
        return m && v && m.data.ex && m.data.ex.length > 0; }""", timeout=30000)
    page.wait_for_timeout(800)
