"""The FR embedding view of :class:`~motiflab.widgets.views.ExplorerViews` and its playback.

The embedding scatter reads the shared ``"columns"`` source (columns ``ex``,
``ey``). Playback ships the recorded relaxation once, as one float32 buffer of
the selected frames, and a slider swaps the coordinates in place client-side,
so replaying needs no kernel.
"""
from __future__ import annotations

import numpy as np

from ._micrograph_view import TOOLS

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
JS_PLAY_SWAP = """
// swap the embedding coordinates in place from the one float32 frame buffer (no copy to the kernel)
const k = slider.value | 0;
const xy = frames.data.xy[0];
const N = frames.data.n[0];
const its = frames.data.it[0];
const d = src.data;
if (!xy || !its || d.ex == null || d.ex.length !== N || k >= its.length) { return; }
const ex = d.ex, ey = d.ey, off = k * N * 2;
for (let i = 0; i < N; i++) { ex[i] = xy[off + 2 * i]; ey[i] = xy[off + 2 * i + 1]; }
const last = k >= its.length - 1;
if (large) { play_r.visible = !last; raster_r.visible = last; }
src.change.emit();
label.text = "FR relaxation: iteration " + its[k] + " / " + its[its.length - 1];
"""

JS_PLAY = """
// play / pause: a timer advances the frame slider at `speed` frames per second
const key = "_motiflab_play_" + slider.id;
const stop = () => { clearTimeout(window[key]); window[key] = null; button.label = "▶ Play"; };
if (window[key]) { stop(); return; }
button.label = "❚❚ Pause";
if (slider.value >= slider.end) { slider.value = 0; }
const tick = () => {
  if (slider.value >= slider.end) { stop(); return; }
  slider.value = slider.value + 1;
  window[key] = setTimeout(tick, 1000 / Math.max(1, speed.value));
};
window[key] = setTimeout(tick, 1000 / Math.max(1, speed.value));
"""


class EmbeddingView:
    """Mixin of :class:`~motiflab.widgets.views.ExplorerViews` building the embedding and playback.

    Uses the host's ``width``, ``source``, ``frame_budget_mb`` and ``_tooltip``;
    sets ``embedding`` (the figure), ``embedding_raster_source``,
    ``embedding_raster``, ``points``, ``play_points``, ``emb_hover``,
    ``frames``, ``play_slider``, ``play_button``, ``speed`` and ``play_label``.
    """

    def _build_embedding(self):
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.plotting import figure

        w = int(self.width * 0.8)
        fig = figure(width=w, height=w, title="FR layout", match_aspect=True, tools=TOOLS,
                     active_scroll="wheel_zoom", active_drag="box_select", name="embedding")
        self.embedding_raster_source = ColumnDataSource(dict(image=[], x=[], y=[], dw=[], dh=[]),
                                                        name="embedding_raster")
        self.embedding_raster = fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh",
                                               source=self.embedding_raster_source, visible=False,
                                               name="embedding_raster_r")
        self.points = fig.scatter("ex", "ey", source=self.source, size=5, fill_color="color", line_color=None,
                                  fill_alpha=0.8, selection_fill_alpha=1.0, nonselection_fill_alpha=0.08,
                                  name="embedding_points")
        # large data: the points are drawn only while the relaxation is replayed
        self.play_points = fig.scatter("ex", "ey", source=self.source, size=2, fill_color="color",
                                       line_color=None, fill_alpha=0.5, visible=False, name="playback_points")
        self.emb_hover = HoverTool(renderers=[self.points], tooltips=self._tooltip(True), name="emb_hover")
        fig.add_tools(self.emb_hover)
        self.embedding = fig

    def _build_playback(self):
        from bokeh.models import Button, ColumnDataSource, CustomJS, Div, Slider

        w = int(self.width * 0.8)
        self.frames = ColumnDataSource(dict(xy=[np.zeros(0, np.float32)], it=[np.zeros(0, np.int32)], n=[0]),
                                       name="frames")
        self.play_slider = Slider(start=0, end=1, value=1, step=1, title="frame", width=w - 180,
                                  name="playback_slider", show_value=False)
        self.play_button = Button(label="▶ Play", width=80, name="playback_button")
        self.speed = Slider(start=1, end=60, value=20, step=1, title="frames/s", width=90, name="playback_speed")
        self.play_label = Div(text="FR relaxation", width=w, name="playback_label")
        self.play_slider.js_on_change("value", CustomJS(
            args=dict(src=self.source, frames=self.frames, slider=self.play_slider, label=self.play_label,
                      play_r=self.play_points, raster_r=self.embedding_raster, large=False),
            code=JS_PLAY_SWAP, name="playback_swap"))
        self.play_button.js_on_click(CustomJS(args=dict(slider=self.play_slider, button=self.play_button,
                                                        speed=self.speed), code=JS_PLAY))

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
        self.frames.data = dict(xy=[sub.ravel()], it=[its[keep].astype(np.int32)], n=[int(n)])
        self.play_slider.end = max(1, len(keep) - 1)
        self.play_slider.value = len(keep) - 1
        self.play_slider.disabled = len(keep) < 2
        self.play_label.text = (f"FR relaxation: {len(keep)} frames of {len(snaps)} recorded "
                                f"(iterations 0–{int(its[-1])}); press Play")
