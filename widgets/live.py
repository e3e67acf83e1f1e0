"""The live microscope view in JupyterLab: ``motiflab.live(folder, model)``.

>>> view = motiflab.live("/data/session_42", "M.hspy")   # doctest: +SKIP

One cell shows, while the acquisition runs:

* the latest frame with its columns coloured by motif (the colours of
  :func:`motiflab.colors.label_colors`; columns unlike every known motif, −2,
  in black) and the class-average strip of the model's motifs in that frame;
* the motif populations (fraction of each frame's columns) against the frame
  number, a plot that grows in place as frames arrive;
* an alert line: a motif's (or the new columns') fraction above the threshold
  the operator sets, or columns unlike every known motif;
* a "Refit on this frame" button: the latest frame becomes the new reference
  (a fresh motif model is fitted in a background thread) while the watcher
  keeps running; frames after it are classified with the new model.

All the work (watching, classifying, writing results, updating the views)
happens in the background threads of :class:`motiflab.live.Watcher` and of the
refit, so the kernel stays free for other cells. The Bokeh views reach the
page through jupyter_bokeh's ``BokehModel`` (BokehJS is loaded inline, so it
works offline).
"""
from __future__ import annotations

import threading
import time

import numpy as np

from motiflab.colors import label_colors, motif_colors
from motiflab.errors import MotifLabError
from motiflab.live import Watcher, check_alerts

__all__ = ["LiveView", "live", "NEW_COLOR"]

#: colour of columns unlike every motif of the model (label −2); the motif palette has no black
NEW_COLOR = "#000000"
#: the frame is sent to the page downsampled to at most this many pixels a side
MAX_SIDE = 512


def _colors(labels, k):
    c = label_colors(labels, k).astype(object)
    c[np.asarray(labels) == -2] = NEW_COLOR
    return c


def _strip(class_averages, gap=2):
    """The class averages side by side in one array (each scaled to its own 0..1), with NaN gaps."""
    ca = np.asarray(class_averages, dtype=np.float32)
    if ca.ndim != 3 or len(ca) == 0:
        return np.full((1, 1), np.nan, np.float32), 1
    k, p, _ = ca.shape
    out = np.full((p, k * p + (k - 1) * gap), np.nan, np.float32)
    for i, a in enumerate(ca):
        lo, hi = np.nanpercentile(a, [1, 99.5])
        out[:, i * (p + gap): i * (p + gap) + p] = np.clip((a - lo) / (hi - lo + 1e-12), 0, 1)
    return out, p


class LiveView:
    """Follow an acquisition folder in JupyterLab (see the module docs).

    Parameters
    ----------
    folder : str or Path
        The folder the microscope writes into.
    model : MotifModel, str or Path
        The motif model (or its ``.hspy`` file).
    thresholds : dict, optional
        Initial alert thresholds, ``{"new": 0.05}`` (fraction of the frame's columns).
    start : bool
        Start watching at once.
    **watch_options
        :class:`motiflab.live.Watcher` options (``out_dir``, ``pattern``,
        ``poll``, ``settle``, ``shape``, ``events``).

    Attributes
    ----------
    watcher : motiflab.live.Watcher
    alerts : list of str
        Every alert raised so far.
    widget : ipywidgets.VBox
    """

    def __init__(self, folder, model, thresholds=None, start=True, **watch_options):
        import ipywidgets as W
        from jupyter_bokeh import BokehModel

        self.watcher = Watcher(folder, model, on_frame=self._on_frame, keep_analysis=True, **watch_options)
        self.thresholds = dict(thresholds or {})
        self.alerts: list = []
        self.refits: list = []          # frame numbers where a refit model took over
        self._lock = threading.RLock()  # one view update at a time (watcher and refit threads)
        self._refit_thread = None
        self.n_shown = 0
        self._build_views()
        self.bokeh_widget = BokehModel(self.root)
        self.status = W.HTML(value="<b>waiting for the first frame…</b>")
        self.alert_box = W.HTML(value="")
        keys = self._population_keys()
        first = next(iter(self.thresholds), "new")
        self.alert_key = W.Dropdown(options=keys, value=first if first in keys else "new",
                                    description="alert when", layout=W.Layout(width="210px"))
        self.alert_value = W.BoundedFloatText(value=100 * float(self.thresholds.get(self.alert_key.value, 0.05)),
                                              min=0, max=100, step=0.5, description="% above",
                                              layout=W.Layout(width="150px"))
        self.thresholds.setdefault(self.alert_key.value, self.alert_value.value / 100)
        self.alert_key.observe(self._threshold_changed, "value")
        self.alert_value.observe(self._threshold_changed, "value")
        self.refit_button = W.Button(description="Refit on this frame", icon="refresh", button_style="warning",
                                     layout=W.Layout(width="190px"),
                                     tooltip="fit a fresh motif model on the latest frame; the watcher keeps running")
        self.refit_button.on_click(lambda _b: self.refit())
        self.stop_button = W.ToggleButton(value=False, description="Pause", icon="pause")
        self.stop_button.observe(self._toggle, "value")
        self.widget = W.VBox([W.HBox([self.status]), self.alert_box,
                              W.HBox([self.alert_key, self.alert_value, self.refit_button, self.stop_button]),
                              self.bokeh_widget])
        self.widget.add_class("motiflab-live")
        if start:
            self.watcher.start()

    # ------------------------------------------------------------------ views
    def _population_keys(self):
        return [f"motif {i}" for i in range(self.watcher.model.n_motifs)] + ["new", "unassigned"]

    def _build_views(self):
        from bokeh.layouts import column, row
        from bokeh.models import ColumnDataSource, HoverTool, Legend, LinearColorMapper, Span
        from bokeh.plotting import figure

        self.frame_source = ColumnDataSource(dict(image=[], dw=[], dh=[]), name="live_frame")
        self.column_source = ColumnDataSource(dict(x=[], y=[], color=[], label=[]), name="live_columns")
        fig = figure(width=420, height=440, match_aspect=True, title="latest frame", name="live_micrograph",
                     tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above",
                     x_axis_label="x (px)", y_axis_label="y (px)")
        fig.y_range.flipped = True  # image convention: row 0 at the top
        fig.image(image="image", x=0, y=0, dw="dw", dh="dh", source=self.frame_source,
                  color_mapper=LinearColorMapper(palette="Greys256", low=0, high=255))
        pts = fig.scatter("x", "y", source=self.column_source, size=6, fill_color="color", line_color="white",
                          line_width=0.6, fill_alpha=0.9, name="live_column_markers")
        fig.add_tools(HoverTool(renderers=[pts], tooltips=[("motif", "@label")]))
        fig.grid.visible = False
        self.micrograph = fig

        self.strip_source = ColumnDataSource(dict(image=[], dw=[], dh=[]), name="live_strip")
        self.strip_labels = ColumnDataSource(dict(x=[], y=[], text=[], color=[]), name="live_strip_labels")
        st = figure(width=380, height=130, title="class averages in this frame", name="live_class_averages",
                    toolbar_location=None, tools="", match_aspect=True)
        st.y_range.flipped = True
        st.image(image="image", x=0, y=0, dw="dw", dh="dh", source=self.strip_source,
                 color_mapper=LinearColorMapper(palette="Greys256", low=0, high=1, nan_color="white"))
        st.text("x", "y", text="text", source=self.strip_labels, text_color="color", text_font_size="11px",
                text_baseline="top", text_font_style="bold", background_fill_color="white",
                background_fill_alpha=0.85)
        st.axis.visible = False
        st.grid.visible = False
        self.strip = st

        self.pop_source = ColumnDataSource(dict(frame=[]), name="live_populations")
        pop = figure(width=380, height=310, title="motif populations", name="live_populations_plot",
                     x_axis_label="frame", y_axis_label="fraction of columns", tools="pan,wheel_zoom,reset,save",
                     toolbar_location="above")
        # the legend beside the plot, so the lines it names are never hidden under it
        pop.add_layout(Legend(label_text_font_size="10px", spacing=0, padding=4), "right")
        self.populations = pop
        self._lines = {}
        self._Span = Span
        self._ensure_lines(self._population_keys()[:-1])
        self.root = row(fig, column(st, pop), name="motiflab_live")

    def _ensure_lines(self, keys):
        """One line per population key; a refit model with more motifs adds lines (history NaN)."""
        k = sum(1 for key in keys if key.startswith("motif "))
        cols = motif_colors(max(k, 1))
        n = len(self.pop_source.data["frame"])
        new = {key: [float("nan")] * n for key in keys if key not in self.pop_source.data}
        if new:
            data = dict(self.pop_source.data)
            data.update(new)
            self.pop_source.data = data
        for key in keys:
            if key in self._lines:
                continue
            if key == "new":
                r = self.populations.line("frame", key, source=self.pop_source, color=NEW_COLOR, line_dash="dashed",
                                          line_width=2, legend_label="new (−2)")
            else:
                i = int(key.split()[1])
                r = self.populations.line("frame", key, source=self.pop_source, color=cols[i], line_width=2,
                                          legend_label=key)
            self._lines[key] = r

    # ------------------------------------------------------------------ updates (background threads)
    def _on_frame(self, res):
        if not res.ok:
            if res.error != "already has a result":
                with self._lock:
                    self.status.value = f"<b>skipped</b> {res.path.name}: {res.error[:200]}"
            return
        with self._lock:
            try:
                self._show(res)
            except Exception as exc:  # a display problem must never stop the watcher
                self.status.value = f"<b>display error</b>: {type(exc).__name__}: {exc}"

    def _show(self, res):
        from ._images import downsample_image, robust_uint8

        an, row = res.analysis, res.row
        img = np.asarray(an.image, dtype=np.float32)
        small, f = downsample_image(img, MAX_SIDE)
        h, w = img.shape
        labels = np.asarray(an.motifs.labels)
        k = self.watcher.model.n_motifs
        pos = np.asarray(an.positions)
        self.frame_source.data = dict(image=[robust_uint8(small, 0.5, 99.8)], dw=[w], dh=[h])
        self.column_source.data = dict(x=pos[:, 1], y=pos[:, 0], color=_colors(labels, k),
                                       label=np.where(labels == -2, "new", labels.astype(str)))
        self.micrograph.title.text = f"frame {row['frame']}: {res.path.name} ({row['n_columns']} columns)"
        strip, p = _strip(an.motifs.class_averages)
        self.strip_source.data = dict(image=[strip], dw=[strip.shape[1]], dh=[strip.shape[0]])
        cols = motif_colors(max(k, 1))
        self.strip_labels.data = dict(x=[i * (p + 2) + 1 for i in range(k)], y=[1] * k,
                                      text=[f"{i}: {row.get(f'motif {i}', 0)}" for i in range(k)], color=cols[:k])
        keys = [key for key in row if key.startswith("motif ")] + ["new"]
        self._ensure_lines(keys)
        n = max(int(row["n_columns"]), 1)
        new_row = {key: [float("nan")] for key in self.pop_source.data}
        new_row["frame"] = [row["frame"]]
        for key in keys:
            new_row[key] = [row[key] / n]
        self.pop_source.stream(new_row)
        self.n_shown += 1
        alerts = check_alerts(row, self.thresholds)
        self.alerts.extend(alerts)
        if alerts:
            self.alert_box.value = ("<div class='motiflab-live-alert' style='background:#fdecea;border-left:4px solid "
                                    "#d32f2f;padding:4px 8px'>⚠ " + "<br>⚠ ".join(alerts) + "</div>")
        else:
            self.alert_box.value = ""
        self.status.value = (f"<b>frame {row['frame']}</b> {res.path.name}: {row['n_columns']} columns, "
                             f"{100 * row['new'] / n:.1f} % new · classified in {row['seconds']:.2f} s · "
                             f"{len(self.watcher.errors)} files skipped · results in {self.watcher.out_dir}")

    def _threshold_changed(self, _change):
        self.thresholds = {self.alert_key.value: float(self.alert_value.value) / 100}

    def _toggle(self, change):
        if change["new"]:
            self.watcher.stop(timeout=0)
            self.stop_button.description, self.stop_button.icon = "Resume", "play"
        else:
            self.watcher.start()
            self.stop_button.description, self.stop_button.icon = "Pause", "pause"

    # ------------------------------------------------------------------ refit
    def refit(self, wait=False, **params):
        """Fit a fresh motif model on the latest frame and classify the next frames with it.

        Runs in a background thread (the watcher keeps running meanwhile).

        Parameters
        ----------
        wait : bool
            Block until the new model is in use (scripts, tests).
        **params
            Analysis parameters of the fit (default: the automatic ones, seed 0).

        Returns
        -------
        threading.Thread
        """
        latest = self.watcher.latest
        if latest is None or latest.analysis is None:
            raise MotifLabError("no frame yet to refit on; wait for the first frame.")
        if self._refit_thread is not None and self._refit_thread.is_alive():
            raise MotifLabError("a refit is already running; wait for it to finish.")
        image = np.asarray(latest.analysis.image, dtype=np.float32)
        name, frame = latest.path.name, latest.frame
        self.refit_button.disabled = True
        self.refit_button.description = "Refitting…"

        def work():
            from motiflab.analysis import Analysis

            try:
                t0 = time.perf_counter()
                model = Analysis(image, **{"seed": 0, **params}).run().model()
                self.watcher.set_model(model)
                with self._lock:
                    self.refits.append(frame)
                    self.populations.add_layout(self._Span(location=frame + 0.5, dimension="height",
                                                           line_color="#d32f2f", line_dash="dotted"))
                    self.alert_key.options = self._population_keys()
                    self.status.value = (f"<b>refit</b> on frame {frame} ({name}): {model.n_motifs} motifs, "
                                         f"{time.perf_counter() - t0:.1f} s; the next frames use it")
            except Exception as exc:  # reported in the view; the old model stays in use
                with self._lock:
                    self.status.value = f"<b>refit failed</b>: {type(exc).__name__}: {exc}"
            finally:
                self.refit_button.disabled = False
                self.refit_button.description = "Refit on this frame"

        self._refit_thread = threading.Thread(target=work, name="motiflab-refit", daemon=True)
        self._refit_thread.start()
        if wait:
            self._refit_thread.join()
        return self._refit_thread

    # ------------------------------------------------------------------ control
    def wait(self, frames, timeout=60.0) -> bool:
        """Block until ``frames`` frames have been shown (or ``timeout`` s); for scripts and notebooks' checks."""
        t_end = time.monotonic() + float(timeout)
        while self.n_shown < frames and time.monotonic() < t_end:
            time.sleep(0.05)
        return self.n_shown >= frames

    @property
    def rows(self):
        """The populations table so far (list of dicts; :func:`motiflab.live.read_populations` reads the CSV)."""
        return list(self.watcher.rows)

    def stop(self):
        """Stop watching (after the frame being classified)."""
        self.watcher.stop(timeout=60)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def live(folder, model, thresholds=None, **watch_options) -> LiveView:
    """Follow a microscope's output folder in JupyterLab: every new frame classified with ``model``, shown live.

    Parameters
    ----------
    folder : str or Path
    model : MotifModel, str or Path
    thresholds : dict, optional
        Alert thresholds, e.g. ``{"new": 0.05}`` or ``{"motif 2": 0.1}`` (fractions of the columns).
    **watch_options
        ``out_dir``, ``pattern``, ``poll``, ``settle``, ``shape``, ``events`` (see :class:`motiflab.live.Watcher`).

    Returns
    -------
    LiveView
        Displays itself; ``.stop()`` ends the watching, ``.refit()`` takes the latest frame as the new reference.
    """
    from .explorer import _load_bokehjs

    _load_bokehjs()  # BokehJS must be in the page before the BokehModel renders
    return LiveView(folder, model, thresholds=thresholds, **watch_options)
