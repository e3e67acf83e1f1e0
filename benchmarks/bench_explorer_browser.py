"""Benchmark: explorer latency in a real browser — slider release until the new layout and motifs are drawn.

What is timed
-------------
A JupyterLab server is started the way the browser tests start it
(``tests/browser/conftest.py``: ``motiflab warmup`` first, so numba compiles
nothing during the measurement), and Debian's Chromium opens a notebook whose
one cell runs ``motiflab.explore`` with default options on a synthetic MoSe2
image of about 5k or 50k columns (the images of ``bench_explorer.py``). In the
page, the "stage split" slider of the Layout tab (a real ipywidgets slider that
recomputes the FR layout and then the motifs) is dragged with the mouse and
released; repetitions alternate between two values so every release recomputes.

Two times are measured per release, both in the page with ``performance.now()``
from the ``pointerup`` of the release:

* **release → layout drawn**: the embedding's Bokeh ``ColumnDataSource``
  (``"columns"``) holds new ``ex``/``ey``, its ranges (and, in datashaded mode,
  its raster) have arrived, the embedding figure has repainted after that, and
  one more animation frame has started (so the canvas was composited);
* **release → motifs drawn**: the same for the new point colours (embedding and
  micrograph) and the motif gallery's source, repainted and composited.

The explorer's debounce (``Explorer.debounce``, default of
:class:`motiflab.widgets.Explorer`, executed by ``widgets/scheduler.py``) is part
of both times and is reported on its own; the issue's targets are for the time
*beyond* it (5k: ≤ 0.3 s, 50k: ≤ 1.5 s), judged on the median.

Where the time goes: the notebook's cell also wraps three explorer entry points
(benchmark instrumentation only; the explorer's behaviour is unchanged) to stamp
wall-clock times in the kernel: the slider value arriving, the scheduler's run
starting (after the debounce) and ``ExplorerViews.update`` starting and ending.
Browser and kernel run on one machine, so ``performance.timeOrigin + now()``
and ``time.time()`` share a clock. The breakdown splits each release into:
value to kernel, debounce wait, kernel compute (FR layout + clustering),
view update in Python (serialising and sending), transfer until the page holds
the coordinates, and the page's share after that (later messages, script,
paint, composite), with the page's long tasks (main thread busy > 50 ms) in
that interval and the bytes the kernel sent to the page and the page sent back
to the kernel (all websocket messages from the release until the run is reported
ready).

One untimed warm-up release per size comes first (shown in the notes). Each
release starts from an idle explorer and a quiet page (no message and no long
task for 1.5 s).

Usage
-----
``python benchmarks/bench_explorer_browser.py [--quick] [--reps N] [--sizes 5000,50000] [--verbose] [--drop-echo]
[--profile]``

``--quick``: only ~5k columns, 3 repetitions. ``--verbose``: every release's
page events, kernel updates, large messages and long tasks (ms after the
release). ``--drop-echo``: an experiment that stops the page from sending the
kernel's own changes back to it (see :data:`JS_DROP_ECHO`), to measure what
that costs. ``--profile``: the page's JavaScript CPU profile (Chrome DevTools
protocol) of the last timed release of each size, from the release until the
motifs are drawn: the functions with the most time, self and inclusive (how the
whole-page relayout of the fifth pass in the README was found). Needs JupyterLab, jupyter_bokeh, Playwright (python) and a system
Chromium (``/usr/bin/chromium``). A full run takes about 5 minutes on a 2-core
machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.browser.conftest: the JupyterLab server and the page helpers

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM_ARGS, PageLog, chromium_path, jupyterlab_server, open_explorer)

#: the issue's targets, in seconds beyond the debounce, by column count
TARGETS = {5_000: 0.3, 50_000: 1.5}
#: the two stage-split values the slider alternates between (0.5 is the default)
VALUES = (0.45, 0.55)
IGNORED_CONSOLE = ("Failed to load resource", "net::ERR_INTERNET_DISCONNECTED", "api/news")

# The notebook's one cell. The stamps are the only addition to a user's cell: they wrap the
# instance's own callables (run, views.update) and add a second observer to the slider.
NOTEBOOK_CODE = """
import json, sys, time
sys.path.insert(0, {bench_dir!r})
import motiflab
from bench_explorer import tmd_image

img, side = tmd_image({n_target}, seed=0)
ex = motiflab.explore(img.to_signal())

_stamps = dict(updates=[])
ex.controls["stage_split"].observe(lambda ch: _stamps.setdefault("value", time.time()), names="value")
_run, _update = ex.scheduler._run, ex.views.update

def _timed_run(params):
    _stamps.setdefault("run_start", time.time())
    return _run(params)

def _timed_update(*args, **kwargs):
    t0 = time.time()
    out = _update(*args, **kwargs)
    _stamps["updates"].append((t0, time.time(), out))
    return out

ex.scheduler._run, ex.views.update = _timed_run, _timed_update

def _bench_report():
    run = ex.runs[-1]
    rep = dict(_stamps, run={{k: v for k, v in run.items() if k != "params"}}, params=run["params"],
               stage_seconds={{k: v for k, v in dict(ex.analysis.log).items() if k in run["stages"]}},
               n=len(ex.analysis.positions), side=side, large=ex.views.large, debounce=ex.debounce,
               n_runs=len(ex.runs))
    _stamps.clear()
    _stamps["updates"] = []
    return json.dumps(rep, default=str)

ex
"""

# Page instrumentation: a time stamp for every event of interest, in performance.now() ms.
JS_INSTRUMENT = """() => {
  const B = window._bench = {log: [], origin: performance.timeOrigin};
  const rec = (k) => B.log.push([k, performance.now()]);
  // capture phase on window: the release is stamped before any widget handles it
  window.addEventListener('pointerup', () => rec('release'), true);
  const cols = _ml.model('columns');
  B.ex = cols.data.ex; B.motif = cols.data.motif;
  // a new table replaces the arrays: a new array object is new data
  cols.properties.data.change.connect(() => {
    const d = cols.data;
    if (d.ex !== B.ex) { B.ex = d.ex; rec('ex'); }
    if (d.motif !== B.motif) { B.motif = d.motif; rec('color'); }
  });
  // an update of the same columns arrives as a patch, written into the arrays in place: compare
  // the values with a copy
  const copy = (a) => Array.from(a);
  B.exv = copy(cols.data.ex); B.motifv = copy(cols.data.motif);
  const differs = (a, b) => { if (a.length !== b.length) { return true; }
    for (let i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return true; } } return false; };
  cols.patching.connect(() => {
    const d = cols.data;
    if (differs(d.ex, B.exv)) { B.exv = copy(d.ex); rec('ex'); }
    if (differs(d.motif, B.motifv)) { B.motifv = copy(d.motif); rec('color'); }
  });
  for (const r of ['embedding_x_range', 'embedding_y_range']) { _ml.model(r).change.connect(() => rec('range')); }
  for (const s of ['embedding_raster', 'marker_raster', 'gallery']) {
    _ml.model(s).properties.data.change.connect(() => rec(s));
  }
  // a repaint draws into the canvas; the next animation frame starts after it was composited
  for (const [fig, key] of [['embedding', 'emb'], ['micrograph', 'mic'], ['gallery_fig', 'gal']]) {
    _ml.view(fig).repainted.connect(() => { rec(key + '_paint'); requestAnimationFrame(() => rec(key + '_frame')); });
  }
}"""

# Before the page's own scripts: stamp every large websocket message as the page receives it, and the
# page's long tasks (main thread busy > 50 ms), to tell transfer from the page's own work, and every
# message the page sends to the kernel and receives from it.
JS_PAGE_INIT = """(() => {
  window._ws = []; window._busy = []; window._sent = []; window._recv = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (d) {
    window._sent.push([performance.now(), typeof d === 'string' ? d.length : (d.byteLength || d.size || 0)]);
    return send.call(this, d);
  };
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        const d = e.data, n = typeof d === 'string' ? d.length : (d.byteLength || d.size || 0);
        window._recv.push([performance.now(), n]);
        if (n > 20000) { window._ws.push([performance.now(), n]); }
      });
    }
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { window._busy.push([e.startTime, e.duration]); }
  }).observe({type: 'longtask', buffered: true});
})();"""

# Experiment (--drop-echo), not the explorer's behaviour: jupyter_bokeh's view sends every change of
# its Bokeh document to the kernel, including the ones the kernel itself just sent (BokehJS marks
# those ``sync = false``; Bokeh's own server client filters them, jupyter_bokeh 4.1 does not). This
# filters them before jupyter_bokeh sees them, to measure what the echo costs.
JS_DROP_ECHO = """() => {
  const doc = _ml.doc();
  for (const [cb, batches] of [...doc._callbacks]) {
    doc._callbacks.delete(cb);
    doc._callbacks.set((ev) => { if (ev.sync !== false) { cb(ev); } }, batches);
  }
}"""

# Run code in the notebook's kernel (outside the notebook's cells) and return what it printed.
JS_KERNEL = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const f = k.requestExecute({code, silent: false, store_history: false});
  let out = '';
  f.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') { out += msg.content.text; }
    if (msg.header.msg_type === 'error') { out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue; }
  };
  await f.done;
  return out;
}"""


def _drawn_after(log, key, t):
    """Time of the first animation frame after the first ``key`` repaint at or after ``t`` (None: none)."""
    paint = next((s for k, s in log if k == f"{key}_paint" and s >= t), None)
    if paint is None:
        return None
    return next((s for k, s in log if k == f"{key}_frame" and s >= paint), None)


def _first(log, key, t0):
    return next((s for k, s in log if k == key and s >= t0), None)


def measure_release(log, large):
    """Release → layout drawn and release → motifs drawn (s) from one release's page log.

    Parameters
    ----------
    log : list of (str, float)
        The page's ``(event, performance.now() ms)`` stamps since before the release.
    large : bool
        Datashaded mode: the embedding and the markers are drawn from rasters.

    Returns
    -------
    dict
        ``release`` (ms), ``layout``, ``motifs`` (s after the release), ``ex_arrived``
        (ms) and what was seen (``events``).
    """
    t0 = _first(log, "release", 0.0)
    ex = _first(log, "ex", t0)
    if t0 is None or ex is None:
        raise RuntimeError(f"no release or no new coordinates in the page log: {sorted({k for k, _ in log})}")
    # the layout is complete when the coordinates, the last range change of the update (the ranges follow
    # the coordinates in the same view update) and, datashaded, the embedding raster are in the page
    ranges = [s for k, s in log if k == "range" and s >= t0]
    ready = max([ex] + ranges[-1:] + ([_first(log, "embedding_raster", t0)] if large else []))
    layout = _drawn_after(log, "emb", ready)
    # motifs: the colours on both point views (datashaded: in the rasters) and the gallery
    colour = _first(log, "color", t0)
    parts = []
    if large:
        parts += [_drawn_after(log, "emb", _first(log, "embedding_raster", t0)),
                  _drawn_after(log, "mic", _first(log, "marker_raster", t0) or t0)]
    elif colour is not None:
        parts += [_drawn_after(log, "emb", colour), _drawn_after(log, "mic", colour)]
    gal = _first(log, "gallery", t0)
    if gal is not None:  # same class averages and counts: Bokeh does not resend them
        parts.append(_drawn_after(log, "gal", gal))
    motifs = max(parts) if parts and None not in parts else None
    return dict(release=t0, ex_arrived=ex, layout=(layout - t0) / 1e3 if layout else float("nan"),
                motifs=(motifs - t0) / 1e3 if motifs else float("nan"), events=sorted({k for k, _ in log}))


def breakdown(m, rep, origin, busy):
    """Split one release into its steps (s), from the page's and the kernel's wall-clock stamps.

    ``busy`` is the page's long tasks ``(start, duration)`` in ms: their time between the new
    coordinates' arrival and the layout on screen is the page's own work in that interval.
    """
    release = (origin + m["release"]) / 1e3
    ex_arrived = (origin + m["ex_arrived"]) / 1e3
    upd0, upd1, _ = rep["updates"][0]
    return {"to kernel": rep["value"] - release, "debounce wait": rep["run_start"] - rep["value"],
            "compute": upd0 - rep["run_start"], "view update (py)": upd1 - upd0,
            "to page": ex_arrived - upd0, "page after data": m["layout"] - (ex_arrived - release),
            "of which page busy": _overlap(busy, m["ex_arrived"], m["release"] + 1e3 * m["layout"]) / 1e3}


def _overlap(spans, a, b):
    """Milliseconds of the ``(start, duration)`` spans inside [a, b]."""
    return sum(max(0.0, min(t + d, b) - max(t, a)) for t, d in spans)


def _slider(page):
    """The stage-split slider of the explorer's Layout tab (its tab opened)."""
    explorer = page.locator(".motiflab-explorer")
    explorer.locator(".lm-TabBar-tab").filter(has_text="Layout").first.click()
    slider = explorer.locator(".widget-slider").filter(has_text="stage split").first
    slider.scroll_into_view_if_needed()
    return slider


def release_at(page, slider, value, lo=0.05, hi=0.95):
    """Drag the slider's handle to ``value`` with the mouse and release it (the timed event)."""
    track = slider.locator(".noUi-target").first.bounding_box()
    handle = slider.locator(".noUi-handle").first.bounding_box()
    x0, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    x1 = track["x"] + (value - lo) / (hi - lo) * track["width"]
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, y, steps=3)
    page.mouse.move(x1, y, steps=3)
    page.mouse.up()
    return float(slider.locator(".widget-readout").inner_text().strip())


def _release(page, slider, value, origin):
    """One timed release: drag to ``value``, wait for the explorer's next run, collect both sides' stamps."""
    # start from an idle explorer (nothing pending or running) and a quiet page (no message, no long
    # task for 1.5 s: a large update keeps the page busy for seconds after the kernel is done)
    page.wait_for_function("""() => { const now = performance.now();
        const last = Math.max(0, ..._ws.map((w) => w[0]), ..._busy.map((b) => b[0] + b[1]));
        return now - last > 1500; }""", timeout=120000, polling=250)
    idle = "print(len(ex.runs) if ex.scheduler.idle() else -1)"
    deadline = time.monotonic() + 120
    while (n_runs := int(page.evaluate(JS_KERNEL, idle))) < 0 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    page.evaluate("() => { for (const a of [_bench.log, _ws, _busy, _sent, _recv]) { a.length = 0; } }")
    value = release_at(page, slider, value)
    # polled every 100 ms on textContent: innerText on every animation frame (Playwright's default)
    # forced a layout of the whole page per frame, ~14 ms of the page's time in the measured window
    page.wait_for_function(
        f"""() => new RegExp('ready · run {n_runs + 1}\\\\b').test(
            document.querySelector('.motiflab-explorer').textContent)""", timeout=180000, polling=100)
    page.wait_for_timeout(500)  # the gallery repaint may come a frame after the status line
    log = page.evaluate("() => window._bench.log.slice()")
    ws, busy, sent, recv = page.evaluate(
        "() => [window._ws.slice(), window._busy.slice(), window._sent.slice(), window._recv.slice()]")
    text = page.evaluate(JS_KERNEL, "print(_bench_report())")
    try:
        rep = json.loads(text)
    except ValueError as exc:
        raise RuntimeError(f"kernel report: {text!r}") from exc
    if abs(rep["params"].get("stage_split", -1.0) - value) > 1e-6 or rep["n_runs"] != n_runs + 1:
        raise RuntimeError(f"the run after the release was not the release's: {rep['params']}, run "
                           f"{rep['n_runs']} after {n_runs} (slider at {value})")
    try:
        m = measure_release(log, rep["large"])
    except RuntimeError as exc:
        t0 = next(t for k, t in log if k == "release")
        updates = [(round(a * 1e3 - origin - t0), c) for a, b, c in rep["updates"]]
        raise RuntimeError(f"{exc}; kernel updates at {updates} ms, messages received "
                           f"{[(round(t - t0), n) for t, n in ws]}") from None
    m.update(value=value, rep=rep, parts=breakdown(m, rep, origin, busy), log=log, ws=ws, busy=busy,
             sent_mb=sum(n for t, n in sent if t >= m["release"]) / 1e6,
             recv_mb=sum(n for t, n in recv if t >= m["release"]) / 1e6)
    return m


def profile_top(profile, t_from=None, t_to=None, n=15):
    """The ``n`` functions with the most self and inclusive time in a CDP ``Profiler.stop`` profile.

    ``t_from`` / ``t_to`` (the profile's microsecond clock) keep only the samples in between.
    Returns two lists of ``(milliseconds, "function file:line")``.
    """
    from collections import Counter

    nodes = {nd["id"]: nd for nd in profile["nodes"]}
    parent = {c: nd["id"] for nd in profile["nodes"] for c in nd.get("children", [])}

    def name(i):
        cf = nodes[i]["callFrame"]
        return f'{cf["functionName"] or "(anonymous)"} {cf["url"].rsplit("/", 1)[-1][:40]}:{cf["lineNumber"]}'

    own, incl = Counter(), Counter()
    t = profile["startTime"]
    for sid, dt in zip(profile["samples"], profile["timeDeltas"]):
        t += dt
        if t_from is not None and not t_from <= t <= t_to:
            continue
        own[name(sid)] += dt
        seen, i = set(), sid
        while i is not None:  # each function once per sample, however deep its recursion
            k = name(i)
            if k not in seen:
                incl[k] += dt
                seen.add(k)
            i = parent.get(i)
    skip = ("(root)", "(idle)", "(program)")
    top = lambda c: [(v / 1e3, k) for k, v in c.most_common() if not k.startswith(skip)][:n]  # noqa: E731
    return top(own), top(incl)


def _print_release(label, m, origin, verbose):
    print(f"  {label}: stage split → {m['value']}: layout drawn {m['layout']:.3f} s, motifs drawn "
          f"{m['motifs']:.3f} s; " + ", ".join(f"{k} {v:.3f}" for k, v in m["parts"].items())
          + f"; page received {m['recv_mb']:.1f} MB from the kernel, sent {m['sent_mb']:.1f} MB to it",
          file=sys.stderr, flush=True)
    if not verbose:
        return
    t0 = m["release"]
    seen = {}  # the page's events, ms after the release: first–last (count)
    for k, t in m["log"]:
        seen.setdefault(k, []).append(t - t0)
    print("    page events (ms): " + "; ".join(f"{k} {v[0]:.0f}–{v[-1]:.0f} ({len(v)})" for k, v in seen.items()),
          file=sys.stderr)
    print("    kernel view updates (ms): " + "; ".join(
        f"{a * 1e3 - origin - t0:.0f}–{b * 1e3 - origin - t0:.0f} {c}" for a, b, c in m["rep"]["updates"]),
        file=sys.stderr)
    print("    messages > 20 kB received (ms, kB): " + "; ".join(f"{t - t0:.0f} {n / 1e3:.0f}" for t, n in m["ws"]),
          file=sys.stderr)
    print("    page long tasks (ms, duration): " + "; ".join(f"{t - t0:.0f} {d:.0f}" for t, d in m["busy"]),
          file=sys.stderr)


def run_size(browser, server, n_target, reps, workdir, verbose=False, drop_echo=False, profile=False):
    """Open the explorer on a ~``n_target``-column image and time ``reps`` slider releases (after a warm-up).

    With ``drop_echo`` the page does not send the kernel's own changes back (an experiment, see
    :data:`JS_DROP_ECHO`).
    """
    import nbformat

    name = f"explorer_{n_target}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK_CODE.format(
        bench_dir=str(ROOT / "benchmarks"), n_target=n_target).strip())]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, str(workdir / name))

    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, device_scale_factor=1)
    ctx.add_init_script(JS_PAGE_INIT)
    page = ctx.new_page()
    plog = PageLog(page, ignore=IGNORED_CONSOLE)
    try:
        t_open = time.perf_counter()
        try:
            open_explorer(page, server, name, timeout=300000)
        except Exception:
            shot = Path(tempfile.gettempdir()) / f"bench_explorer_browser_{n_target}.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"  the explorer did not open; screenshot {shot}; server log:\n"
                  f"{server['log'].read_text()[-2000:]}", file=sys.stderr)
            raise
        t_open = time.perf_counter() - t_open
        page.evaluate(JS_INSTRUMENT)
        if drop_echo:
            page.evaluate(JS_DROP_ECHO)
        origin = page.evaluate("() => window._bench.origin")
        slider = _slider(page)
        page.evaluate("() => document.querySelector('.motiflab-explorer').scrollIntoView({block: 'start'})")
        page.evaluate(JS_KERNEL, "_bench_report()")  # drop the first run's stamps
        load0 = os.getloadavg()
        out = []
        failed = []
        cdp = None
        for i in range(reps + 1):  # release 0 is the warm-up
            if profile and i == reps:
                cdp = ctx.new_cdp_session(page)
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 250})
                cdp.send("Profiler.start")
            for _attempt in range(3):
                try:
                    out.append(_release(page, slider, VALUES[(i + len(failed)) % 2], origin))
                    break
                except RuntimeError as exc:  # counted and reported, never silently dropped
                    failed.append(str(exc))
                    print(f"  release {i} not measured: {exc}", file=sys.stderr)
            else:
                raise RuntimeError(f"three releases in a row not measured: {failed[-3:]}")
            _print_release("warm-up" if i == 0 else f"release {i}", out[-1], origin, verbose)
        # what the last release left on screen, to look at (the numbers say nothing of a blank figure)
        shot = Path(tempfile.gettempdir()) / f"bench_explorer_browser_{n_target}_last_release.png"
        page.screenshot(path=str(shot))
        print(f"  screenshot after the last release: {shot}", file=sys.stderr)
        if cdp is not None:
            t_end = page.evaluate("() => performance.now()")
            prof = cdp.send("Profiler.stop")["profile"]
            m = out[-1]
            # the profile's clock (µs) and performance.now() (ms) both stopped at about t_end
            t0 = prof["endTime"] - (t_end - m["release"]) * 1e3
            own, incl = profile_top(prof, t0, t0 + max(m["layout"], m["motifs"]) * 1e6)
            saved = Path(tempfile.gettempdir()) / f"bench_explorer_browser_{n_target}.cpuprofile"
            saved.write_text(json.dumps(dict(prof, window=[t0, t0 + max(m["layout"], m["motifs"]) * 1e6])))
            print(f"  page CPU profile, release → motifs drawn ({max(m['layout'], m['motifs']):.2f} s; "
                  f"saved to {saved} for Chromium's DevTools):", file=sys.stderr)
            for title, rows in (("self", own), ("inclusive", incl)):
                print(f"    {title}: " + "; ".join(f"{k} {v:.0f} ms" for v, k in rows), file=sys.stderr)
        load1 = os.getloadavg()
        if plog.errors:
            print(f"  console errors: {plog.errors[:5]}", file=sys.stderr)
        return dict(n_target=n_target, open_seconds=t_open, warm=out[0], runs=out[1:], load=(load0, load1),
                    errors=list(plog.errors), failed=failed)
    finally:
        ctx.close()


def _median_max(xs):
    return statistics.median(xs), max(xs)


def table(results):
    """The markdown table of :func:`run_size` results, and one breakdown line per size."""
    head = ("| columns | mode | debounce (s) | release → layout drawn, median / max (s) "
            "| release → motifs drawn, median / max (s) | beyond debounce, median (s) | target (s) "
            "| met (median / max) | load avg (1 min, start → end) |")
    lines = [head, "|---:|---|---:|---|---|---:|---:|---|---|"]
    notes = []
    for r in results:
        rep = r["runs"][0]["rep"]
        deb = rep["debounce"]
        lay = _median_max([m["layout"] for m in r["runs"]])
        mot = _median_max([m["motifs"] for m in r["runs"]])
        # the later of the two is what the user waits for
        done = _median_max([max(m["layout"], m["motifs"]) for m in r["runs"]])
        target = TARGETS[r["n_target"]]
        met = " / ".join("yes" if t - deb <= target else "no" for t in done)
        mode = "datashaded" if rep["large"] else "glyphs"
        (l0, _, _), (l1, _, _) = r["load"]
        lines.append(f"| {rep['n']:,} ({rep['side']}² px) | {mode} | {deb:.2f} | {lay[0]:.2f} / {lay[1]:.2f} "
                     f"| {mot[0]:.2f} / {mot[1]:.2f} | {done[0] - deb:.2f} | ≤ {target} | {met} "
                     f"| {l0:.2f} → {l1:.2f} |")
        parts = {k: statistics.median(m["parts"][k] for m in r["runs"]) for k in r["runs"][0]["parts"]}
        stages = {k: statistics.median(m["rep"]["stage_seconds"].get(k, 0.0) for m in r["runs"])
                  for k in ("layout", "motifs")}
        hier = statistics.median(m["rep"]["run"].get("hierarchy_seconds", 0.0) for m in r["runs"])
        notes.append(f"{rep['n']:,} columns, median of {len(r['runs'])} releases: "
                     + ", ".join(f"{k} {v:.3f} s" for k, v in parts.items())
                     + f" (compute = FR layout {stages['layout']:.3f} s + clustering {stages['motifs']:.3f} s; "
                       f"then the hierarchy {hier:.2f} s, not in the times); the page received "
                       f"{statistics.median(m['recv_mb'] for m in r['runs']):.1f} MB from the kernel and sent "
                       f"{statistics.median(m['sent_mb'] for m in r['runs']):.1f} MB back to it per "
                       f"release; warm-up release: layout "
                       f"{r['warm']['layout']:.2f} s, motifs {r['warm']['motifs']:.2f} s; explorer opened in "
                       f"{r['open_seconds']:.0f} s" + (f"; console errors: {r['errors'][:3]}" if r["errors"] else "")
                     + (f"; {len(r['failed'])} release(s) not measured (repeated): {r['failed']}"
                        if r["failed"] else ""))
    return "\n".join(lines), notes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only ~5k columns, 3 repetitions")
    ap.add_argument("--reps", type=int, default=None, help="timed releases per size (default 5; quick: 3)")
    ap.add_argument("--sizes", type=lambda t: tuple(int(x) for x in t.split(",")), default=None,
                    help=f"column counts to run, comma-separated, from {sorted(TARGETS)} (default: all; quick: 5000)")
    ap.add_argument("--drop-echo", action="store_true",
                    help="experiment: the page does not send the kernel's own changes back to it")
    ap.add_argument("--verbose", action="store_true", help="print each release's page events and kernel updates")
    ap.add_argument("--profile", action="store_true",
                    help="print the page's JavaScript CPU profile of the last release of each size")
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.quick else 5)
    sizes = args.sizes or ((5_000,) if args.quick else (5_000, 50_000))
    exe = chromium_path()
    if exe is None:
        sys.exit("Chromium not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import machine_notes

    results = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-explorer-browser-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            for n in sizes:
                # a server per size: the previous kernel stops, and JupyterLab's saved workspace does not
                # reopen the previous notebook beside this one
                root, home = Path(tmp) / f"root{n}", Path(tmp) / f"home{n}"
                root.mkdir()
                home.mkdir()
                print(f"~{n:,} columns ...", file=sys.stderr, flush=True)
                with jupyterlab_server(root, home) as server:
                    results.append(run_size(browser, server, n, reps, root, args.verbose, args.drop_echo,
                                            args.profile))
        finally:
            browser.close()
    text, notes = table(results)
    print(f"Machine: {machine_notes()}; Chromium {exe}")
    print(f"Mode: {'quick' if args.quick else 'full'}; {reps} timed releases per size; "
          f"total {time.perf_counter() - t0:.0f} s\n")
    print(text)
    print()
    for line in notes:
        print(f"- {line}")


if __name__ == "__main__":
    main()
