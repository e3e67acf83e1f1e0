"""The interactive explorer: ipywidgets controls + linked Bokeh views over a cached analysis.

>>> import motiflab
>>> s = motiflab.load("MoSe2.dm4")      # doctest: +SKIP
>>> ex = motiflab.explore(s)            # doctest: +SKIP

One cell shows everything: the parameter controls (generated from
:mod:`motiflab.parameters` by :mod:`motiflab.widgets.controls`, a tab per group
of stages), a status line with a progress bar, and the linked Bokeh views of
:class:`motiflab.widgets.views.ExplorerViews` embedded with jupyter_bokeh's
``BokehModel`` so that Python-side updates reach the browser.

How a control change is handled
-------------------------------
1. :meth:`Explorer._on_param_change` hands the new value to the
   :class:`~motiflab.widgets.scheduler.Scheduler` — nothing else happens on
   the widget thread.
2. The scheduler's worker waits until no change arrived for ``debounce``
   seconds and calls :meth:`Explorer._recompute` with all pending values, which
   applies them with :meth:`motiflab.Analysis.set` (dropping only the stage they
   feed and the stages after it) and recomputes the stale stages.
3. Between stages, and at every FR snapshot inside the layout, the run checks
   for a newer value, which cancels it; the next run reuses every stage the
   stale one already finished.
4. The views are updated in place (only the changed data columns are sent);
   the hierarchy (:attr:`motiflab.Analysis.hierarchy`) follows.

The FR playback frames (6 MB at 5k columns) are not part of an update: the
page asks for them when Play is pressed or the frame slider moved, once per
layout (:meth:`Explorer._frames_requested`; ``lazy_frames`` in
:mod:`motiflab.widgets._embedding_view`), and the player then runs in the page.

Tests and scripts call ``_on_param_change(name, value, sync=True)`` (or build
the explorer with ``background=False``) to run the same logic synchronously.
"""
from __future__ import annotations

import threading
import time
import warnings

import numpy as np

from motiflab.analysis import PIPELINE, Analysis
from motiflab.errors import MotifLabError
from motiflab.parameters import validate_all
from motiflab.warmup import is_warm

from . import views as _views
from .report import hierarchy_of, write_html
from .panels import curation_panel, export_panel
from .scheduler import Cancelled, Scheduler

#: Above this many columns a new layout is drawn before its motifs are computed. Browser
#: benchmark, alternated runs: at 55k columns the layout appeared 0.5-1.2 s sooner and the
#: motifs no later (within noise); at 5k it appeared 0.2 s sooner but the motifs 0.1 s
#: later (the page was still drawing the layout when they arrived), so small inputs wait.
EARLY_LAYOUT_ABOVE = 20_000

#: Seconds between two progress updates of the FR layout in the status line.
PROGRESS_INTERVAL = 0.25

#: Seconds the explorer waits, after sending new points and motifs, before it builds their
#: hierarchy (a newer control value ends the wait). On two cores the hierarchy's computation
#: and its "building…" status line took the CPU and a page layout from the browser while it
#: drew the points: browser benchmark at 5k columns, page time 0.119 -> 0.096 s and release ->
#: motifs drawn 0.31-0.34 -> 0.29 s beyond the debounce; the hierarchy comes this much later.
DRAW_PAUSE = 0.12

__all__ = ["Explorer", "explore"]


class Explorer:
    """Interactive motif explorer over an :class:`motiflab.Analysis`.

    Parameters
    ----------
    data : Analysis, str, Path, ndarray or hyperspy Signal2D
        A ready analysis, or anything :func:`motiflab.load` accepts.
    background : bool
        Compute in a background thread (notebook use). ``False`` computes
        synchronously in the calling thread (tests, scripts).
    debounce : float
        Seconds without a new control value before recomputing.
    datashade_above : int
        Column count above which markers and embedding are rasterised.
    hierarchy_max_columns : int, optional
        Largest column count for which the motif-cell hierarchy is built (the
        analysis parameter of that name; kept here for older notebooks).
    width : int
        Width of the micrograph view (px).
    **params
        Analysis parameters (see :mod:`motiflab.parameters`), used when
        ``data`` is not already an Analysis (or set on it when it is).

    Attributes
    ----------
    analysis : Analysis
    views : ExplorerViews
    widget : ipywidgets.VBox
        The whole explorer (displayed when the object is the cell's result).
    runs : list of dict
        One entry per completed recomputation: ``{"params", "stages", "seconds", "views_seconds"}``.
    """

    def __init__(self, data, *, background=True, debounce=0.4, datashade_above=_views.DATASHADE_ABOVE,
                 hierarchy_max_columns=None, width=400, **params):
        if hierarchy_max_columns is not None:
            params["hierarchy_max_columns"] = hierarchy_max_columns
        if isinstance(data, Analysis):
            if params:
                data.set(**params)
            self.analysis = data
        else:
            self.analysis = Analysis(data, **params)
        an = self.analysis
        self.background = bool(background)
        self.runs: list[dict] = []
        self.error: str | None = None
        self.hierarchy = None
        self._hierarchy_of = None  # the motifs object the hierarchy was shown for
        #: seconds of the last refresh: "views" (layout, colours, gallery on screen), "hierarchy"
        self.timings: dict = {}
        self._stage_todo: list = []
        self.scheduler = Scheduler(self._recompute, debounce=debounce, background=background,
                                   on_error=lambda exc: self._set_error(f"{type(exc).__name__}: {exc}"))
        # lazy_frames: the playback frames go to the page only when it asks (Play), not with each layout
        self.views = _views.ExplorerViews(an.image, an.calibration, datashade_above=datashade_above, width=width,
                                          lazy_frames=True)
        self._frames_lock = threading.Lock()
        self._frames_waiting = False
        self._progress_shown = 0.0
        self._widgets_ok = self._build_widgets()
        an.on_stage(self._stage_done)
        # progress and cancellation inside the FR layout: this runs at every FR snapshot
        # (Cancelled raised from it aborts the stage, which then stays uncomputed)
        an.on_layout_progress(lambda it, Y: self._layout_progress(it, Y))
        self.scheduler.submit({}, debounce=False)  # the first run
        if not self.background:
            self.scheduler.run_now()

    @property
    def cancelled(self) -> int:
        """Runs abandoned because a newer value arrived."""
        return self.scheduler.cancelled

    @property
    def debounce(self) -> float:
        return self.scheduler.debounce

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self):
        try:
            import ipywidgets as W
        except ImportError:  # views and logic still work (scripts, export)
            self.controls, self.widget = {}, None
            return False
        from .controls import ParameterControls

        an = self.analysis
        h, w = an.image.shape
        self.parameter_controls = ParameterControls(
            self._control_changed, an.params, self._shown(),
            limits={"patch_size": (5, int(max(7, min(121, min(h, w) // 2))))})
        #: parameter name → its control ("<name>_auto" → its auto checkbox)
        self.controls = self.parameter_controls.widgets
        tabs = dict(self.parameter_controls.tabs)
        tabs["Curation"] = curation_panel(self, W)
        tabs["Export"] = export_panel(self, W)
        tab = W.Tab(children=list(tabs.values()))
        for i, t in enumerate(tabs):
            tab.set_title(i, t)
        tab.selected_index = 0  # the first stage: where a new image usually needs a look
        self.tabs = tab
        self.status = W.HTML(value="<b>starting…</b>", layout=W.Layout(width="auto"))
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=W.Layout(width="240px"),
                                        description="", bar_style="info")
        self.selection_label = W.HTML(value="")
        #: plain-language warnings about the detection and the motifs (motiflab.diagnostics)
        self.warnings = W.HTML(value="")
        try:
            from ._bokeh_patch import bokeh_widget

            self.bokeh_widget = bokeh_widget(self.views.root)
        except ImportError:  # pragma: no cover - jupyter_bokeh is in the interactive extra
            self.bokeh_widget = W.HTML("jupyter_bokeh is not installed: pip install 'motiflab[interactive]'")
        self.views.source.selected.on_change("indices", self._selection_changed)
        # the page asks for the playback frames by bumping the frames source's tags
        self.views.frames.on_change("tags", self._frames_requested)
        try:  # large data: sharper rasters when zooming (needs the kernel; the export keeps the overview)
            from bokeh.events import RangesUpdate

            self.views.embedding.on_event(RangesUpdate, lambda ev: self._on_ranges("embedding", ev))
            self.views.micrograph.on_event(RangesUpdate, lambda ev: self._on_ranges("micrograph", ev))
        except ImportError:  # pragma: no cover - old bokeh
            pass
        # the controls beside the views, so a change and its effect are on one laptop screen
        controls = W.VBox([tab, self.selection_label], layout=W.Layout(width="385px", flex="0 0 385px"))
        self.widget = W.VBox([W.HBox([self.progress, self.status]), self.warnings,
                              W.HBox([controls, self.bokeh_widget],
                                     layout=W.Layout(width="100%", align_items="flex-start"))],
                             layout=W.Layout(width="100%"))
        self.widget.add_class("motiflab-explorer")
        # six tab titles in a 385 px column: let them shrink to their text instead of being cut off
        self.widget.children = (W.HTML("<style>.motiflab-explorer .widget-tab .lm-TabBar-tab{min-width:0 !important;"
                                       "flex:0 1 auto !important;padding:0 6px !important}</style>"),
                                ) + tuple(self.widget.children)
        return True

    def act(self, fn, *args):
        """Run a button action; show its outcome (or error) in the status line."""
        try:
            msg = fn(*args)
            if isinstance(msg, str):
                self._set_status(msg)
        except MotifLabError as exc:
            self._set_status(f"<span style='color:#b00'>{exc}</span>", raw=True)

    # ------------------------------------------------------------------ control values
    def _shown(self) -> dict:
        """What each control shows: the parameters, with auto values resolved where known."""
        shown = self.analysis.effective_params()
        if shown["patch_size"] == "auto":
            shown["patch_size"] = 15  # until the RDF estimate exists
        return shown

    def _sync_controls(self):
        """Show the analysis' current values in the controls without triggering recomputation."""
        if not self._widgets_ok:
            return
        self.parameter_controls.show(self.analysis.params, self._shown())
        mot = self.analysis.motifs if self.analysis.is_cached("motifs") else None
        if mot is not None:
            opts = [(f"motif {i} ({c})", i) for i, c in enumerate(mot.counts)]
            old = self.assign_target.value
            self.assign_target.options = [("new motif", "new"), ("unassigned", -1)] + opts
            self.assign_target.value = old if old in ["new", -1] + [v for _, v in opts] else "new"
            vals = [v for _, v in opts]
            for dd, default in ((self.merge_b, 0), (self.merge_a, 1), (self.split_m, 0)):
                old = dd.value
                dd.options = opts
                if old in vals:
                    dd.value = old
                elif vals:
                    dd.value = vals[min(default, len(vals) - 1)]
        n = len(self.analysis.edits)
        self.edits_label.value = f"{n} edit{'s' if n != 1 else ''} recorded" if n else "no edits"

    def _control_changed(self, name, value):
        self._on_param_change(name, value)

    # ------------------------------------------------------------------ recomputation
    def _on_param_change(self, name, value, sync=False):
        """Record a new parameter value and schedule the recomputation of the stale stages.

        Parameters
        ----------
        name : str
            Analysis parameter (see :mod:`motiflab.parameters`).
        value
            Its new value.
        sync : bool
            Recompute now, in the calling thread, and return the stages that ran.
            Otherwise the background worker recomputes after the debounce delay.

        Returns
        -------
        list of str or None
            With ``sync=True``, the stages that were computed.
        """
        return self.set(sync=sync, **{name: value})

    def set(self, sync=True, **params):
        """Change several parameters at once (one recomputation); returns the stages that ran when ``sync``."""
        validate_all(params)  # unknown names and impossible values raise here, before any work
        self.scheduler.submit(params)
        if sync or not self.background:
            return self.scheduler.run_now() or []
        self._set_status(", ".join(f"{k} → {v!r}" for k, v in params.items()) + ": waiting for more changes…")
        return None

    def _recompute(self, params):
        """Apply pending values and compute every stale stage; then refresh the views.

        Called by the scheduler. Returns the list of stages computed (empty when failed).
        """
        an = self.analysis
        sched = self.scheduler
        t0 = time.perf_counter()
        n_log = len(an.log)
        try:
            if params:
                an.set(**params)
            self._stage_todo = [s for s in PIPELINE if not an.is_cached(s)]
            if self._stage_todo:
                cold = [s for s in self._stage_todo if not is_warm(s)]
                once = " (the first run in this environment compiles numba kernels once)" if cold else ""
                self._set_status(f"computing {', '.join(self._stage_todo)}{once}…", progress=0.0)
            for s in PIPELINE:
                sched.check_cancel()
                an.get(s)
                if (s == "layout" and "layout" in self._stage_todo and not an.is_cached("motifs")
                        and len(an.positions) > EARLY_LAYOUT_ABOVE):
                    # the new layout goes to the page now, the motifs (a clustering later) after it
                    sched.check_cancel()
                    self.views.update_layout(an)
            sched.check_cancel()
            t1 = time.perf_counter()
            ran = [s for s, _ in an.log[n_log:]]
            self._refresh(ran)
            t2 = time.perf_counter()
        except Cancelled:
            self._set_status("superseded by a newer value…")
            raise
        except MotifLabError as exc:
            self._set_error(str(exc), params)
            return []
        self.error = None
        self.runs.append(dict(params=params, stages=ran, seconds=t1 - t0, views_seconds=t2 - t1,
                              gen=sched.current_generation,
                              **{f"{k}_seconds": v for k, v in self.timings.items() if k != "views"},
                              first_paint_seconds=t1 - t0 + self.timings.get("views", 0.0)))
        first = len(self.runs) == 1
        done = f"ready · run {len(self.runs)}: " + (f"recomputed {', '.join(ran)} in {t1 - t0:.2f} s" if ran else
                                                     "showing the results computed earlier" if first else
                                                     "nothing to recompute")
        self._set_status(done + f" · views {t2 - t1:.2f} s", progress=1.0, style="success")
        self._show_warnings()
        return ran

    def _refresh(self, ran):
        """Update the Bokeh views; then, when the motifs changed, show the analysis' hierarchy.

        The layout, colours and gallery reach the browser first; the motif-cell
        hierarchy (seconds for tens of thousands of columns) follows, and a newer
        control value cancels it.
        """
        an = self.analysis
        t0 = time.perf_counter()
        stale = self._hierarchy_of is not an.motifs
        if stale:
            self.hierarchy = _views.HIERARCHY_PENDING  # the previous diagram stays, faded
        self.views.update(an, hierarchy=self.hierarchy)
        self._sync_controls()
        self.timings = {"views": time.perf_counter() - t0}
        if stale:
            # the browser draws the points and gallery before the hierarchy takes the CPU
            self.scheduler.pause(DRAW_PAUSE)
            self._set_status("building the motif-cell hierarchy…")
            t1 = time.perf_counter()
            self.hierarchy = hierarchy_of(an)
            self.scheduler.check_cancel()
            self._hierarchy_of = an.motifs
            self.views.update(an, hierarchy=self.hierarchy)
            self.timings["hierarchy"] = time.perf_counter() - t1

    def _stage_done(self, stage, seconds):
        todo = self._stage_todo or [stage]
        done = todo.index(stage) + 1 if stage in todo else len(todo)
        nxt = todo[done] if done < len(todo) else None
        once = "" if nxt is None or is_warm(nxt) else " (compiling once)"
        self._set_status(f"{stage} done in {seconds:.2f} s" + (f"; computing {nxt}{once}…" if nxt else ""),
                         progress=done / len(todo))

    def _layout_progress(self, iteration, embedding):
        if not self.scheduler.busy:  # another explorer on the same analysis is computing
            return
        self.scheduler.check_cancel()
        todo = self._stage_todo or ["layout"]
        now = time.perf_counter()
        if iteration == 0:
            self._progress_shown = now
        # a few updates a second, not one per 2 %: each is a widget message whose sending takes the
        # GIL from the layout's threads (5k columns in JupyterLab: ~100 messages made a 0.05 s layout
        # take 0.13 s); a layout shorter than the interval shows none
        if "layout" in todo and self._widgets_ok and now - self._progress_shown >= PROGRESS_INTERVAL:
            self._progress_shown = now
            n_iter = self.analysis.effective_params()["n_iter"]
            i = todo.index("layout")
            self.progress.value = (i + min(1.0, iteration / max(1, n_iter))) / len(todo)
            self.status.value = f"FR layout: iteration {iteration} / {n_iter}…"

    def _show_warnings(self):
        """Say what looks wrong with the detection or the motifs, and what to try (below the status)."""
        from motiflab.diagnostics import detection_warnings

        if not self._widgets_ok:
            return
        notes = detection_warnings(self.analysis)
        self.warnings.value = "".join(f"<div style='color:#8a5300'>⚠ {_esc(w)}</div>" for w in notes)

    def _set_status(self, text, progress=None, style=None, raw=False):
        if not self._widgets_ok:
            return
        import html as _html

        self.status.value = text if raw else _html.escape(text).replace("·", "&middot;")
        if progress is not None:
            self.progress.value = float(progress)
        if style is not None:
            self.progress.bar_style = style
        elif progress is not None and progress < 1:
            self.progress.bar_style = "info"

    def _set_error(self, msg, params=None):
        self.error = msg
        what = f" (after setting {', '.join(f'{k}={v!r}' for k, v in params.items())})" if params else ""
        self._set_status(f"<span style='color:#b00'><b>error</b>{_esc(what)}: {_esc(msg)}</span>", raw=True,
                         progress=1.0, style="danger")

    def wait(self, timeout=120.0) -> bool:
        """Block until no computation is pending or running (scripts/tests); True when idle."""
        return self.scheduler.wait(timeout)

    def close(self):
        """Stop the background worker and close the widgets."""
        self.scheduler.close()
        if self._widgets_ok and self.widget is not None:
            self.widget.close()

    def _on_ranges(self, which, ev):
        if not self.views.large or not self.scheduler.locked(timeout=0):
            return
        try:
            self.views.rerasterize(self.analysis, which, (ev.x0, ev.x1), (ev.y0, ev.y1))
        finally:
            self.scheduler.unlock()

    def _frames_requested(self, attr, old, new):
        """The page asks for the playback frames (Play or the frame slider): send the current layout's.

        Between runs they are sent at once; while a run holds the views, a thread
        sends them when it is done (then the new layout's, if it made one).
        """
        if self.scheduler.locked(timeout=0):
            try:
                self.views.load_frames(resend=True)
            finally:
                self.scheduler.unlock()
            return
        with self._frames_lock:  # repeated requests during one run: one thread answers them all
            if self._frames_waiting:
                return
            self._frames_waiting = True
        threading.Thread(target=self._load_frames_after_run, name="motiflab-frames", daemon=True).start()

    def _load_frames_after_run(self):
        self.scheduler.locked()
        try:
            with self._frames_lock:
                self._frames_waiting = False
            self.views.load_frames(resend=True)
        finally:
            self.scheduler.unlock()

    # ------------------------------------------------------------------ selection
    @property
    def selection(self) -> np.ndarray:
        """Indices (into ``analysis.positions``) of the selected columns."""
        return np.asarray(self.views.source.selected.indices, dtype=np.int64)

    def select(self, indices):
        """Select columns from Python (all views highlight them)."""
        self.views.source.selected.indices = [int(i) for i in np.asarray(indices).ravel()]

    def _selection_changed(self, attr, old, new):
        n = len(new)
        if not self.views.stack_shipped:
            self.views.show_selection_mean(list(new))
        if self._widgets_ok:
            self.selection_label.value = (f"{n} column{'s' if n != 1 else ''} selected — use the Curation tab "
                                          "to assign them" if n else "")

    # ------------------------------------------------------------------ curation
    def _edit(self, fn, *args):
        if not self.scheduler.locked(timeout=0.5):
            raise MotifLabError("a computation is running; wait until the status says ready, then try again.")
        try:
            an = self.analysis
            an.get("motifs")
            n_log = len(an.log)
            fn(*args)
            ran = [s for s, _ in an.log[n_log:]]  # the analysis stages (the hierarchy follows in _refresh)
            self._refresh(["motifs"])
            self.runs.append(dict(params={}, stages=ran, seconds=0.0, views_seconds=0.0,
                                  gen=self.scheduler.current_generation))
        finally:
            self.scheduler.unlock()
        return f"ready · {len(self.analysis.edits)} edit(s); {self.analysis.motifs.n_motifs} motifs"

    def assign_selection(self, motif="new", columns=None):
        """Assign the selected columns (or ``columns``) to motif ``motif`` ("new", −1 or a number)."""
        cols = self.selection if columns is None else np.asarray(columns, dtype=np.int64)
        if len(cols) == 0:
            raise MotifLabError("nothing is selected: select columns with the box or lasso tool first.")
        return self._edit(self.analysis.edit, {"kind": "assign", "columns": cols.tolist(), "motif": motif})

    def merge(self, a, b):
        """Merge motif ``b`` into motif ``a``."""
        return self._edit(self.analysis.edit, {"kind": "merge", "motifs": [a, b]})

    def split(self, motif, n=2, on="features"):
        """Split ``motif`` into ``n`` parts by re-clustering its members (k-means)."""
        return self._edit(self.analysis.edit, {"kind": "split", "motif": motif, "n": int(n), "on": on})

    def undo(self):
        """Undo the last curation edit."""
        return self._edit(self.analysis.undo)

    # ------------------------------------------------------------------ export and HyperSpy round trip
    def save_html(self, path, overwrite=False, title="motiflab explorer"):
        """Write the views as one self-contained HTML file (works offline, no kernel).

        Linked selection, hover thumbnails, the selection mean, clicking motifs and
        hierarchy nodes and the FR playback keep working in the file.
        """
        from motiflab.files import check_writable

        check_writable(path, overwrite)
        self.scheduler.locked()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the notebook's Python callbacks are simply not exported
                doc = self.views.html(title=title)
        finally:
            self.scheduler.unlock()
        return write_html(doc, path, overwrite=overwrite)

    def markers(self, size=10):
        """Column positions as HyperSpy point markers coloured by motif."""
        return self.analysis.markers(size=size)

    def add_markers(self, signal=None, size=10, permanent=True):
        """Add the markers to ``signal`` (default: the analysed signal) so ``signal.plot()`` shows them."""
        sig = self.analysis.signal if signal is None else signal
        sig.add_marker(self.markers(size=size), permanent=permanent, plot_marker=False)
        return sig

    def label_map(self):
        """Motif label map as a calibrated HyperSpy Signal2D."""
        return self.analysis.label_map()

    def class_averages(self):
        """Class-average motif images as a HyperSpy Signal2D stack."""
        return self.analysis.class_averages_signal()

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        if self.widget is None:
            return {"text/plain": repr(self)}
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self):
        return f"<motiflab Explorer: {len(self.runs)} runs, {len(self.analysis.edits)} edits>"


def _esc(s):
    import html as _html

    return _html.escape(str(s))


_BOKEH_LOADED = False


def _load_bokehjs():
    """Load BokehJS (inline: works offline) into the notebook page, before a BokehModel renders."""
    global _BOKEH_LOADED
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:  # pragma: no cover
        return
    if ip is None or not hasattr(ip, "kernel"):
        return
    from bokeh.io import output_notebook
    from bokeh.resources import INLINE

    output_notebook(INLINE, hide_banner=True)
    _BOKEH_LOADED = True


def explore(data, **kwargs):
    """Open the interactive explorer on a micrograph (or an existing Analysis).

    Parameters
    ----------
    data : Analysis, str, Path, ndarray or hyperspy Signal2D
        What to analyse (anything :func:`motiflab.load` accepts).
    **kwargs
        :class:`Explorer` options (``background``, ``debounce``, ``datashade_above``,
        ``width``) and analysis parameters.

    Returns
    -------
    Explorer
        Display it (make it the cell's last expression) to see the explorer.
    """
    _load_bokehjs()
    return Explorer(data, **kwargs)
