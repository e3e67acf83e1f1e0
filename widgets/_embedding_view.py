"""The FR embedding view of :class:`~motiflab.widgets.views.ExplorerViews` and its playback.

The embedding scatter reads the shared ``"columns"`` source (columns ``ex``,
``ey``). Playback ships the recorded relaxation once, as one float32 buffer of
the selected frames, and replays it entirely in the browser.

Why playback draws into its own source
--------------------------------------
In the notebook, jupyter_bokeh sends every browser-side property change of a
model to the kernel. A player that moved the frame slider and rewrote the
shared ``"columns"`` source at every frame made one kernel round trip per
frame: ~5 frames/s in JupyterLab, with the kernel busy. Here the timer keeps
the frame number in the page, copies each frame *in place* into the arrays of
a separate ``"playback"`` source (drawn by its own renderer, shown only while
a frame other than the last is on screen) and writes the iteration into a text
label on the canvas. An in-place change followed by ``change.emit()`` redraws
the plot without creating a document event, and the ``"playback"`` source, the
iteration label, the slider, the button and the caption are ``syncable=False``:
whatever changes them in the page, the kernel never hears of it (Python never
needs to). Only the visibility flips at the start and the end of a run reach
the kernel.

Frames on demand in a live explorer
-----------------------------------
The frames are 6 MB at 5k columns and ~33 MB at 55k, and jupyter_bokeh sends
every kernel change back to the kernel: shipping them with every layout made
each slider release move three times that. With ``lazy_frames`` (the notebook
explorer) a layout keeps its frames in Python (:attr:`EmbeddingView.kept_frames`)
and leaves the ``"frames"`` source empty; the Play button or the frame slider,
finding it empty, writes a request counter into the source's ``tags`` (synced:
a few bytes to the kernel), whose Python callback calls
:meth:`EmbeddingView.load_frames`; the player starts when the frames arrive
and the caption says "loading frames…" meanwhile. They are sent once per
layout: a new layout empties the source again. Without ``lazy_frames`` (the
report, scripts) every layout fills the source as before, and
:meth:`~motiflab.widgets.views.ExplorerViews.html` always fills it before
writing, so a standalone page plays back with no kernel.
"""
from __future__ import annotations

import time

import numpy as np

from ._micrograph_view import HOVER_LIMIT, TOOLS, wheel_zoom_on_click

__all__ = ["EmbeddingView", "select_frames"]


def select_frames(n_frames, n_points, budget_mb=32.0, max_frames=150):
    """Indices of the snapshots shipped to the browser: evenly spread, first and last kept.

    The number is limited by ``max_frames`` and by ``budget_mb`` of float32 (x, y) data.
    """
    if n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    per = max(n_points, 1) * 8
    m = int(min(max_frames, n_frames, max(2, budget_mb * 2**20 // per)))
    if m >= n_frames:
        return np.arange(n_frames)
    return np.unique(np.round(np.linspace(0, n_frames - 1, m)).astype(np.int64))


# ------------------------------------------------------------------------------------------ JS
#: show frame ``k`` (a global, shared by the slider and the player): copy it in place into the
#: playback source and the on-canvas iteration text; the last frame is the layout itself
JS_SHOW_FRAME = """
// are the frames of the layout on screen in the page? (a live explorer sends them on request)
window._motiflab_frames_ready = window._motiflab_frames_ready || function (a) {
  const its = a.frames.data.it && a.frames.data.it[0], n = a.frames.data.n && a.frames.data.n[0];
  return its != null && its.length > 0 && a.play.data.px != null && n === a.play.data.px.length;
};
// ask the kernel for the frames (once per layout) and call `then` when they have arrived
window._motiflab_request_frames = window._motiflab_request_frames || function (a, then) {
  const key = "_motiflab_frames_wait_" + a.frames.id;
  window[key] = then;   // the latest request wins
  if (!window[key + "_connected"]) {
    window[key + "_connected"] = true;
    a.frames.properties.data.change.connect(() => {
      const f = window[key];
      if (f && window._motiflab_frames_ready(a)) { window[key] = null; f(); }
    });
  }
  a.label.text = "FR relaxation: loading frames…";
  // a synced property: the kernel's callback sends the frames (tags of the frames source, a counter)
  const ask = () => { const t = a.frames.tags; a.frames.tags = [((t && t.length ? t[0] : 0) | 0) + 1]; };
  ask();
  // a request (or its answer) can be lost: ask again every few seconds until the frames are here
  let tries = 0;
  const again = () => {
    if (window[key] !== then || window._motiflab_frames_ready(a) || ++tries > 8) { return; }
    ask();
    setTimeout(again, 4000);
  };
  setTimeout(again, 4000);
};
window._motiflab_show_frame = window._motiflab_show_frame || function (a, k, playing) {
  const xy = a.frames.data.xy[0], N = a.frames.data.n[0], its = a.frames.data.it[0];
  const d = a.play.data;
  const usable = window._motiflab_frames_ready(a) && xy != null;
  if (usable && (k < 0 || k >= its.length)) { return; }
  // without frames (a new layout emptied them mid-run) the layout itself is shown
  const last = !usable || k >= its.length - 1;
  if (usable) {
    const px = d.px, py = d.py, off = k * N * 2;
    for (let i = 0; i < N; i++) { px[i] = xy[off + 2 * i]; py[i] = xy[off + 2 * i + 1]; }
  }
  a.iter_label.text = last ? "" : ("iteration " + its[k] + " / " + its[its.length - 1]);
  // visibility is a synced property: touch it only when it flips (start and end of a run)
  if (a.play_r.visible === last) { a.play_r.visible = !last; }
  if (a.points_r.visible !== last) { a.points_r.visible = last; }
  if (a.large && a.raster_r.visible !== last) { a.raster_r.visible = last; }
  if (usable) { a.play.change.emit(); }
  // the caption is a Div: changing its text re-lays out the whole page (slow in JupyterLab), so
  // while playing only the on-canvas label shows the iteration
  if (!playing && usable) {
    a.label.text = "FR relaxation: iteration " + its[k] + " / " + its[its.length - 1];
  }
};
"""

JS_PLAY_SWAP = JS_SHOW_FRAME + """
// the slider moved (by hand, or by the player when it stops): show that frame
if (window["_motiflab_play_" + slider.id]) { return; }   // the player drives the frames itself
// live explorer, frames not sent yet: ask for them, unless the slider is at the end (the layout
// itself, which is on screen; a new layout from the kernel puts it there)
if (!window._motiflab_frames_ready(args_) && (slider.value | 0) < (slider.end | 0)) {
  window._motiflab_request_frames(args_, () => window._motiflab_show_frame(args_, slider.value | 0));
  return;
}
window._motiflab_show_frame(args_, slider.value | 0);
"""

JS_PLAY = JS_SHOW_FRAME + """
// play / pause: a browser timer shows frame after frame at `speed` frames per second. The frame
// number lives in the page; the slider (syncable=False) follows it. In a live explorer whose
// frames have not been sent yet, the player first asks the kernel for them and starts when they
// arrive (pressing the button again meanwhile cancels).
const key = "_motiflab_play_" + slider.id;
const stats = window["_motiflab_play_stats_" + slider.id] = window["_motiflab_play_stats_" + slider.id] || {};
const stop = (gone) => {
  const st = window[key]; if (!st) { return; }
  clearTimeout(st.timer); window[key] = null;
  button.label = "▶ Play";
  if (st.waiting) { args_.label.text = st.text; return; }   // cancelled before the frames came
  stats.frames = st.shown; stats.seconds = (performance.now() - st.t0) / 1000;
  stats.fps = stats.frames / Math.max(stats.seconds, 1e-6);
  if (gone) { st.k = slider.end | 0; }   // on the layout: moving the slider back would ask for frames again
  slider.value = st.k;
  window._motiflab_show_frame(args_, st.k);
};
if (window[key]) { stop(); return; }
button.label = "❚❚ Pause";
const start = () => {
  const end = slider.end | 0;
  const st = window[key] = {k: (slider.value | 0) >= end ? 0 : (slider.value | 0), shown: 0, t0: performance.now()};
  const tick = () => {
    if (window[key] !== st) { return; }
    if (!window._motiflab_frames_ready(args_)) { stop(true); return; }   // a new layout replaced them
    window._motiflab_show_frame(args_, st.k, true);
    slider.value = st.k;   // progress on the slider: it is not synced, so this costs no kernel message
    st.shown += 1;
    if (st.k >= end) { stop(); return; }
    st.k += 1;
    // schedule against the clock, so drawing time does not slow the requested rate
    const due = st.t0 + st.shown * 1000 / Math.max(1, speed.value);
    st.timer = setTimeout(tick, Math.max(0, due - performance.now()));
  };
  tick();
};
if (window._motiflab_frames_ready(args_)) {
  start();
} else {
  const wait = window[key] = {waiting: true, text: args_.label.text};
  window._motiflab_request_frames(args_, () => {
    if (window[key] !== wait) { return; }
    window[key] = null;
    args_.label.text = "FR relaxation: playing";   // not "loading frames…" for the whole playback
    start();
  });
}
"""


#: a page that asks again for frames it was sent this recently is still receiving them
FRAMES_RESEND_SECONDS = 6.0

#: The embedding's ranges hold the replayed frames robustly: the 0.5-99.5 % percentiles of an
#: evenly strided sample of at most this many frame points (the final layout is held whole).
RANGE_SAMPLE = 200_000


class EmbeddingView:
    """Mixin of :class:`~motiflab.widgets.views.ExplorerViews` building the embedding and playback.

    Uses the host's ``width``, ``source``, ``frame_budget_mb``, ``lazy_frames`` and
    ``_tooltip``; sets ``embedding`` (the figure), ``embedding_raster_source``,
    ``embedding_raster``, ``points``, ``play_source``, ``play_points``,
    ``play_iteration``, ``emb_hover``, ``frames``, ``play_slider``,
    ``play_button``, ``speed``, ``play_label`` and ``_play_callbacks``.

    With ``lazy_frames`` the frames of a layout stay in Python until
    :meth:`load_frames` (the page asks for them through the ``"frames"``
    source's ``tags``; see the module docstring).
    """

    #: the ``"frames"`` source's content when it holds no frames
    @staticmethod
    def _no_frames():
        return dict(xy=[np.zeros(0, np.float32)], it=[np.zeros(0, np.int32)], n=[0])

    @property
    def kept_frames(self):
        """The current layout's frames, kept for :meth:`load_frames` (None before the first layout)."""
        return self._frames_kept

    @property
    def frames_loaded(self) -> bool:
        """Whether the ``"frames"`` source holds the current layout's frames (what the page plays)."""
        return self._frames_kept is not None and self.frames.data.get("xy", [None])[0] is self._frames_kept["xy"][0]

    def load_frames(self, resend=False) -> bool:
        """Put the current layout's frames into the ``"frames"`` source (sent once per layout).

        Parameters
        ----------
        resend : bool
            Send them again if they were sent already: the page asks only when it
            does not have them (its request or the answer was lost). At most once
            per :data:`FRAMES_RESEND_SECONDS`, so a slow answer is not sent twice.

        Returns
        -------
        bool
            True when they were sent now; False when already loaded or there is no layout yet.
        """
        if self._frames_kept is None:
            return False
        if self.frames_loaded:
            if not resend or time.monotonic() - self._frames_sent_at < FRAMES_RESEND_SECONDS:
                return False
            self.frames.data = self._no_frames()   # an equal value would not be sent again
        self.frames.data = dict(self._frames_kept)
        self._frames_sent_at = time.monotonic()
        return True

    def _build_embedding(self):
        from bokeh.models import ColumnDataSource, HoverTool, Label, Range1d
        from bokeh.plotting import figure
        from bokeh.transform import transform

        from ._motif_views import motif_label_formatter

        w = int(self.width * 0.9)
        # fixed ranges, set from the frames by _set_frames: auto-ranging followed the points at every
        # frame of a replay, and each range change was a message to the kernel
        fig = figure(width=w, height=w + 20, title="FR layout",
                     x_range=Range1d(-1.0, 1.0, name="embedding_x_range"),
                     y_range=Range1d(-1.0, 1.0, name="embedding_y_range"),
                     tools=TOOLS, active_drag="box_select", toolbar_location="above", name="embedding",
                     x_axis_label="FR layout x (arbitrary units)", y_axis_label="FR layout y (arbitrary units)")
        wheel_zoom_on_click(fig)
        self.embedding_raster_source = ColumnDataSource(dict(image=[], x=[], y=[], dw=[], dh=[]),
                                                        name="embedding_raster")
        self.embedding_raster = fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh",
                                               source=self.embedding_raster_source, visible=False,
                                               name="embedding_raster_r")
        self.points = fig.scatter("ex", "ey", source=self.source, size=5,
                                  fill_color=transform("motif", self.motif_mapper), line_color=None,
                                  fill_alpha=0.8, selection_fill_alpha=1.0, nonselection_fill_alpha=0.08,
                                  name="embedding_points")
        # playback draws here (see the module docstring); never synced back to the kernel
        self.play_source = ColumnDataSource(dict(px=np.zeros(0), py=np.zeros(0), motif=np.zeros(0, np.int32)),
                                            name="playback", syncable=False)
        self.play_points = fig.scatter("px", "py", source=self.play_source, size=5,
                                       fill_color=transform("motif", self.motif_mapper),
                                       line_color=None, fill_alpha=0.8, visible=False, name="playback_points")
        self.play_iteration = Label(x=8, y=8, x_units="screen", y_units="screen", text="", text_font_size="12px",
                                    background_fill_color="white", background_fill_alpha=0.8,
                                    name="playback_iteration", syncable=False)
        fig.add_layout(self.play_iteration)
        self.emb_hover = HoverTool(renderers=[self.points], tooltips=self._tooltip(True), name="emb_hover",
                                   limit=HOVER_LIMIT, formatters={"@motif": motif_label_formatter()})
        fig.add_tools(self.emb_hover)
        self.embedding = fig

    def _build_playback(self):
        from bokeh.models import Button, ColumnDataSource, CustomJS, Div, Slider

        w = int(self.width * 0.9)
        self._frames_kept = None
        self._frames_sent_at = -float("inf")
        self.frames = ColumnDataSource(self._no_frames(), name="frames")
        # syncable=False: moving them in the page never sends anything to the kernel
        self.play_slider = Slider(start=0, end=1, value=1, step=1, title="frame", width=w - 180,
                                  name="playback_slider", show_value=False, syncable=False)
        self.play_button = Button(label="▶ Play", width=80, name="playback_button", syncable=False)
        self.speed = Slider(start=1, end=60, value=20, step=1, title="frames/s", width=90, name="playback_speed",
                            syncable=False)
        self.play_label = Div(text="FR relaxation", width=w, name="playback_label", syncable=False)
        args = dict(frames=self.frames, play=self.play_source, play_r=self.play_points, points_r=self.points,
                    raster_r=self.embedding_raster, label=self.play_label, iter_label=self.play_iteration,
                    large=False)
        bundle = "const args_ = {frames, play, play_r, points_r, raster_r, label, iter_label, large};\n"
        self._play_callbacks = [
            CustomJS(args=dict(args, slider=self.play_slider), code=bundle + JS_PLAY_SWAP, name="playback_swap"),
            CustomJS(args=dict(args, slider=self.play_slider, button=self.play_button, speed=self.speed),
                     code=bundle + JS_PLAY, name="playback_play"),
        ]
        self.play_slider.js_on_change("value", self._play_callbacks[0])
        self.play_button.js_on_click(self._play_callbacks[1])

    def _set_frames(self, lay):
        snaps = np.asarray(lay.snapshots, dtype=np.float32)
        its = np.asarray(lay.snapshot_iterations)
        n = snaps.shape[1] if snaps.ndim == 3 else 0
        if snaps.ndim != 3 or len(snaps) == 0:
            snaps = np.asarray(lay.embedding, dtype=np.float32)[None]
            its = np.zeros(1, np.int64)
            n = snaps.shape[1]
        keep = select_frames(len(snaps), n, self.frame_budget_mb)
        sub = np.ascontiguousarray(snaps[keep])
        self._frames_kept = dict(xy=[sub.ravel()], it=[its[keep].astype(np.int32)], n=[int(n)])
        if not self.lazy_frames:
            self.frames.data = dict(self._frames_kept)
        elif len(self.frames.data["it"][0]):
            self.frames.data = self._no_frames()   # the old layout's frames: the page asks again on Play
        final = np.asarray(lay.embedding, dtype=np.float64)
        self._set_embedding_ranges(sub.reshape(len(keep), -1, 2), final)
        motif = np.asarray(self.source.data.get("motif", []), dtype=np.int32)
        self.play_source.data = dict(px=final[:, 0].astype(np.float32), py=final[:, 1].astype(np.float32),
                                     motif=motif.copy() if len(motif) == len(final)
                                     else np.full(len(final), -1, np.int32))
        self.play_slider.end = max(1, len(keep) - 1)
        self.play_slider.value = self.play_slider.end   # the layout itself (the page asks for no frames there)
        self.play_slider.disabled = len(keep) < 2
        self.play_label.text = (f"FR relaxation: {len(keep)} frames of {len(snaps)} recorded "
                                f"(iterations 0–{int(its[-1])}); press Play"
                                + (f" (loads {sub.nbytes / 2**20:.1f} MB)" if self.lazy_frames and len(keep) > 1
                                   else ""))

    def _set_embedding_ranges(self, frames, final, pad=0.06):
        """Square ranges holding the final layout and (robustly) the replayed frames.

        Parameters
        ----------
        frames : ndarray (F, N, 2)
        final : ndarray (N, 2)
        pad : float
            Margin, as a fraction of the span, on each side.
        """
        if final.size == 0:
            return
        lo, hi = final.min(0), final.max(0)
        if frames.size:
            flat = frames.reshape(-1, 2)
            # the percentiles of an evenly strided sample of <= RANGE_SAMPLE points: over all 4M
            # points of 55k columns' frames they took 0.09 s of every update, before the clustering
            flat = flat[:: len(flat) // RANGE_SAMPLE + 1]
            p_lo, p_hi = np.percentile(flat, [0.5, 99.5], axis=0)
            lo, hi = np.minimum(lo, p_lo), np.maximum(hi, p_hi)
        c, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6) * (1 + 2 * pad)
        for rng, ci in ((self.embedding.x_range, c[0]), (self.embedding.y_range, c[1])):
            rng.start, rng.end = float(ci - half), float(ci + half)
            rng.reset_start, rng.reset_end = rng.start, rng.end  # the reset tool comes back here
