"""Bokeh views over an :class:`motiflab.Analysis`, shared by the notebook explorer and the HTML export.

:class:`ExplorerViews` builds one Bokeh layout whose views all read one shared
``ColumnDataSource`` (one row per analysed column, named ``"columns"``), so a
selection in any view is the selection in all of them — in the notebook and in
the standalone HTML alike:

* the micrograph (calibrated axes, scale bar) with the column markers coloured by motif;
* the FR embedding, with client-side playback of the recorded relaxation;
* the motif gallery (class-average patch and count per motif; clicking a tile
  selects that motif's columns);
* the columns-per-motif bars and the motif-cell hierarchy diagram (clicking a
  node selects every occurrence);
* the mean patch of the current selection, hover thumbnails of single columns.

Everything a browser needs is shipped once: the playback frames as one float32
buffer swapped in place client-side, the patches as one uint8 buffer for the
selection mean. Nothing here needs a kernel, so the same layout works in
:func:`motiflab.widgets.report.write_report` files.

The views are built once and then *updated in place* by :meth:`ExplorerViews.update`
(only the columns of the data sources that changed are replaced), which is
what lets the notebook explorer push a new layout to the browser without
re-rendering the page.

Large data: above ``datashade_above`` columns the micrograph markers and the
embedding are drawn as datashader rasters (:mod:`motiflab.widgets.datashade`);
the per-column glyphs stay on the page fully transparent, so box/lasso selection
and hover still work and the selected columns are drawn on top of the raster.
"""
from __future__ import annotations

import base64
import html
import io

import numpy as np

from motiflab.colors import UNASSIGNED, label_colors, motif_colors  # noqa: F401  (label_colors used by callers)

GREY = UNASSIGNED
#: above this many columns the per-column hover thumbnails are left out (they would make the
#: page large); hover then shows the motif and column number only
MAX_THUMBNAILS = 20000
#: default column count above which markers and embedding are rasterised with datashader
DATASHADE_ABOVE = 50_000
#: the micrograph is shown downsampled to at most this many pixels on a side
MAX_IMAGE_SIDE = 1024

_TOOLS = "pan,wheel_zoom,box_select,lasso_select,tap,reset,save"


def motif_palette(k):
    """``k`` motif colours (:func:`motiflab.colors.motif_colors`, the same as the HyperSpy markers)."""
    return motif_colors(k)


def _robust_uint8(a, lo_pct=1.0, hi_pct=99.5):
    a = np.asarray(a, dtype=np.float32)
    lo, hi = np.percentile(a, [lo_pct, hi_pct])
    return (np.clip((a - lo) / (hi - lo + 1e-12), 0, 1) * 255).astype(np.uint8)


def png_data_url(arr):
    """A grayscale PNG data-URL of a 2-D array at its own size (robustly scaled to 0..255)."""
    from PIL import Image

    img = Image.fromarray(_robust_uint8(arr), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def thumbnails(patches):
    """One PNG data-URL per patch (native size; the tooltip scales them up pixelated)."""
    from PIL import Image

    p = np.asarray(patches, dtype=np.float32)
    n = len(p)
    if n == 0:
        return []
    # one robust scale per patch, vectorised
    lo = np.percentile(p.reshape(n, -1), 1, axis=1)[:, None, None]
    hi = np.percentile(p.reshape(n, -1), 99.5, axis=1)[:, None, None]
    u8 = (np.clip((p - lo) / (hi - lo + 1e-12), 0, 1) * 255).astype(np.uint8)
    out = []
    for a in u8:
        buf = io.BytesIO()
        Image.fromarray(a, mode="L").save(buf, format="PNG", compress_level=1)
        out.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    return out


def downsample_image(img, max_side=MAX_IMAGE_SIDE):
    """Block-mean downsample so the longer side is at most ``max_side``; returns (image, factor)."""
    img = np.asarray(img, dtype=np.float32)
    f = int(np.ceil(max(img.shape) / max_side))
    if f <= 1:
        return img, 1
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    return img[:h, :w].reshape(h // f, f, w // f, f).mean((1, 3)), f


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
_JS_PLAY_SWAP = """
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

_JS_PLAY = """
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

_JS_SELECTION_MEAN = """
// mean patch of the selection (all columns when nothing is selected), from the uint8 patch stack
const sel = src.selected.indices;
const info_text = (n, tot) => n ? (n + " of " + tot + " columns selected") : ("no selection (" + tot + " columns)");
const tot = src.get_length() || 0;
info.text = info_text(sel.length, tot);
const P = stack.data.P[0];
const flat = stack.data.p[0];
if (!flat || !P || flat.length === 0) { return; }
const n = flat.length / (P * P);
if (n !== tot) { return; }
const ids = sel.length ? sel : null;
const m = ids ? ids.length : n;
const acc = new Float64Array(P * P);
if (ids) { for (const i of ids) { const o = i * P * P; for (let j = 0; j < P * P; j++) acc[j] += flat[o + j]; } }
else { for (let i = 0; i < n; i++) { const o = i * P * P; for (let j = 0; j < P * P; j++) acc[j] += flat[o + j]; } }
// write in place into the P×P float32 image Python sent (row 0 drawn at the bottom: flip rows);
// an in-place change is redrawn by change.emit() and, in the notebook, not sent back to the kernel
const img = out.data.image[0];
if (!img || img.length !== P * P) { return; }
for (let r = 0; r < P; r++) { for (let c = 0; c < P; c++) { img[(P - 1 - r) * P + c] = acc[r * P + c] / m; } }
out.change.emit();
"""

_JS_SELECT_BY_KEY = """
// a click on a gallery tile / bar / hierarchy node selects every column with that key
const hit = tapped.selected.indices;
if (!hit.length) { return; }
const keys = new Set(hit.map((i) => tapped.data[key_col][i]));
const out = [];
const a = src.data[col_a];
const b = col_b ? src.data[col_b] : null;
for (let i = 0; i < a.length; i++) {
  if (keys.has(a[i]) || (b !== null && keys.has(b[i]))) { out.push(i); }
}
src.selected.indices = out;
"""


class ExplorerViews:
    """The linked Bokeh views of one analysis, updated in place.

    Parameters
    ----------
    image : ndarray (H, W)
        The micrograph (shown downsampled to at most :data:`MAX_IMAGE_SIDE` px).
    calibration : motiflab.io.Calibration
        Pixel size, units and offset for the calibrated axes and scale bar.
    datashade_above : int
        Above this many columns markers and embedding are rasterised with
        datashader (still selectable, see the module docstring).
    thumbnails : bool
        Per-column hover thumbnails (left out above :data:`MAX_THUMBNAILS` columns).
    frame_budget_mb : float
        Size limit of the playback frames shipped to the browser.
    stack_budget_mb : float
        Size limit of the uint8 patch stack used for the client-side selection
        mean; above it the mean is computed in Python (notebook only).
    width : int
        Width of the micrograph view in screen pixels; the others follow.

    Attributes
    ----------
    root : bokeh LayoutDOM
        The whole layout (embed it, or write it with :meth:`html`).
    source : ColumnDataSource
        The shared per-column source (``name="columns"``).
    large : bool
        Whether the last update used the datashaded rendering.
    stack_shipped : bool
        Whether the selection mean is computed client-side.
    """

    def __init__(self, image, calibration, *, datashade_above=DATASHADE_ABOVE, thumbnails=True,
                 frame_budget_mb=32.0, stack_budget_mb=32.0, width=520):
        from bokeh.models import ColumnDataSource

        self.calibration = calibration
        self.datashade_above = int(datashade_above)
        self.want_thumbnails = bool(thumbnails)
        self.frame_budget_mb = float(frame_budget_mb)
        self.stack_budget_mb = float(stack_budget_mb)
        self.width = int(width)
        self.large = False
        self.stack_shipped = False
        self._keys: dict = {}
        self._patch_stack = None  # float32 (N, P*P) kept for the Python-side selection mean
        self.image_shape = tuple(np.asarray(image).shape)

        empty = dict(x=np.zeros(0), y=np.zeros(0), ex=np.zeros(0), ey=np.zeros(0),
                     motif=np.zeros(0, np.int64), color=[], motif_name=[], idx=np.zeros(0, np.int64),
                     hnode=np.zeros(0, np.int64), hcell=np.zeros(0, np.int64), thumb=[])
        self.source = ColumnDataSource(empty, name="columns")
        self._build_micrograph(image)
        self._build_embedding()
        self._build_playback()
        self._build_gallery()
        self._build_counts()
        self._build_hierarchy()
        self._build_selection_mean()
        self._build_layout()

    # ------------------------------------------------------------------------------ building
    def _image_extent(self):
        cal = self.calibration
        h, w = self.image_shape
        x0, y0 = cal.offset[1] - 0.5 * cal.scale, cal.offset[0] - 0.5 * cal.scale
        return x0, y0, w * cal.scale, h * cal.scale

    def _build_micrograph(self, image):
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.plotting import figure

        cal = self.calibration
        x0, y0, dw, dh = self._image_extent()
        h, w = self.image_shape
        width = self.width
        fig = figure(width=width, height=max(200, int(width * h / w)), match_aspect=True, title="Micrograph",
                     x_range=(x0, x0 + dw), y_range=(y0 + dh, y0),  # image convention: row 0 at the top
                     tools=_TOOLS, active_scroll="wheel_zoom", active_drag="box_select",
                     x_axis_label=f"x ({cal.units})", y_axis_label=f"y ({cal.units})", name="micrograph")
        small, self.image_factor = downsample_image(image)
        self.image_source = ColumnDataSource(dict(image=[_robust_uint8(small, 0.5, 99.8)], x=[x0], y=[y0],
                                                  dw=[dw], dh=[dh]), name="micrograph_image")
        # with the reversed y range, row 0 of the array is drawn at y0, i.e. at the top
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.image_source,
                  palette="Greys256", level="image")
        self.marker_raster_source = ColumnDataSource(dict(image=[], x=[], y=[], dw=[], dh=[]), name="marker_raster")
        self.marker_raster = fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh",
                                            source=self.marker_raster_source, visible=False, name="marker_raster_r")
        self.markers = fig.scatter("x", "y", source=self.source, size=6, fill_color="color", line_color="black",
                                   line_width=0.3, fill_alpha=0.85, line_alpha=0.85, selection_fill_alpha=1.0,
                                   selection_line_alpha=1.0, selection_line_color="white",
                                   nonselection_fill_alpha=0.12, nonselection_line_alpha=0.12,
                                   name="columns_on_micrograph")
        self.micro_hover = HoverTool(renderers=[self.markers], tooltips=self._tooltip(True), name="micro_hover")
        fig.add_tools(self.micro_hover)
        # the candidates column finding rejected (noise maxima, faint ripple), off until asked for
        self.rejected_source = ColumnDataSource(dict(x=[], y=[], q=[]), name="rejected")
        self.rejected = fig.scatter("x", "y", source=self.rejected_source, marker="x", size=7, line_width=1.5,
                                    line_color="#ff00ff", visible=False, name="rejected_candidates")
        fig.add_tools(HoverTool(renderers=[self.rejected], name="rejected_hover",
                                tooltips='<div class="motiflab-tip">rejected candidate: @q{0.0} noise units '
                                         '(a column needs the peak-significance threshold, or a lattice site)</div>'))
        fig.grid.visible = False
        _add_scale_bar(fig, cal)
        self.micrograph = fig

    def _build_embedding(self):
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.plotting import figure

        w = int(self.width * 0.8)
        fig = figure(width=w, height=w, title="FR layout", match_aspect=True, tools=_TOOLS,
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
            code=_JS_PLAY_SWAP, name="playback_swap"))
        self.play_button.js_on_click(CustomJS(args=dict(slider=self.play_slider, button=self.play_button,
                                                        speed=self.speed), code=_JS_PLAY))

    def _build_gallery(self):
        from bokeh.models import ColumnDataSource, HoverTool, LabelSet, TapTool
        from bokeh.plotting import figure

        w = int(self.width * 0.8)
        self.gallery_source = ColumnDataSource(dict(image=[], x=[], y=[], cx=[], cy=[], lx=[], ly=[], motif=[],
                                                    text=[], color=[], count=[]), name="gallery")
        fig = figure(width=w, height=200, title="Motifs (class averages): click a tile to select its columns",
                     x_range=(0, 5), y_range=(-1, 0), tools="", toolbar_location=None, name="gallery_fig")
        fig.axis.visible = False
        fig.grid.visible = False
        fig.image(image="image", x="x", y="y", dw=0.9, dh=0.9, source=self.gallery_source, palette="Greys256")
        tiles = fig.rect("cx", "cy", width=0.94, height=0.94, source=self.gallery_source, fill_alpha=0.0,
                         line_color="color", line_width=2, selection_line_width=4, selection_fill_alpha=0.0,
                         nonselection_fill_alpha=0.0, nonselection_line_alpha=0.5, name="gallery_tiles")
        fig.add_layout(LabelSet(x="lx", y="ly", text="text", source=self.gallery_source, text_color="color",
                                text_font_size="9pt", text_font_style="bold", background_fill_color="white",
                                background_fill_alpha=0.75))
        fig.add_tools(TapTool(renderers=[tiles]), HoverTool(renderers=[tiles], tooltips="motif @motif: @count columns"))
        self._link_tap(self.gallery_source, "motif", "motif")
        self.gallery = fig

    def _build_counts(self):
        from bokeh.models import ColumnDataSource, HoverTool, TapTool
        from bokeh.plotting import figure

        w = int(self.width * 0.8)
        self.counts_source = ColumnDataSource(dict(name=[], count=[], color=[], motif=[]), name="counts")
        fig = figure(x_range=[], width=w, height=200, title="Columns per motif (click a bar to select)",
                     tools="", toolbar_location=None, name="counts_fig")
        bars = fig.vbar(x="name", top="count", width=0.8, color="color", source=self.counts_source,
                        nonselection_alpha=0.4, name="counts_bars")
        fig.add_tools(TapTool(renderers=[bars]), HoverTool(renderers=[bars], tooltips="motif @motif: @count"))
        fig.y_range.start = 0
        fig.xaxis.major_label_orientation = 1.0
        self._link_tap(self.counts_source, "motif", "motif")
        self.counts = fig

    def _build_hierarchy(self):
        from bokeh.models import ColumnDataSource, HoverTool, LabelSet, TapTool
        from bokeh.plotting import figure

        w = int(self.width * 0.8)
        self.hier_nodes = ColumnDataSource(dict(x=[], y=[], size=[], color=[], text=[], id=[], level=[],
                                                count=[], composition=[]), name="hierarchy_nodes")
        self.hier_edges = ColumnDataSource(dict(xs=[], ys=[]), name="hierarchy_edges")
        fig = figure(width=w, height=260, title="Motif-cell hierarchy (click a node to select its occurrences)",
                     tools="pan,wheel_zoom,reset", toolbar_location="right", name="hierarchy_fig")
        fig.axis.visible = False
        fig.grid.visible = False
        fig.x_range.range_padding = fig.y_range.range_padding = 0.25
        fig.multi_line("xs", "ys", source=self.hier_edges, line_color="#bbbbbb", line_width=1)
        nodes = fig.scatter("x", "y", size="size", fill_color="color", line_color="black", source=self.hier_nodes,
                            nonselection_fill_alpha=0.35, name="hierarchy_node_r")
        fig.add_layout(LabelSet(x="x", y="y", text="text", source=self.hier_nodes, text_font_size="8pt",
                                x_offset=6, y_offset=4))
        fig.add_tools(TapTool(renderers=[nodes]),
                      HoverTool(renderers=[nodes], tooltips="node @id, level @level, count @count<br>@composition"))
        self._link_tap(self.hier_nodes, "id", "hnode", "hcell")
        self.hierarchy = fig

    def _link_tap(self, tapped, key_col, col_a, col_b=""):
        from bokeh.models import CustomJS

        tapped.selected.js_on_change("indices", CustomJS(
            args=dict(tapped=tapped, src=self.source, key_col=key_col, col_a=col_a, col_b=col_b),
            code=_JS_SELECT_BY_KEY))

    def _build_selection_mean(self):
        from bokeh.models import ColumnDataSource, CustomJS, Div
        from bokeh.plotting import figure

        self.mean_source = ColumnDataSource(dict(image=[np.zeros((1, 1), np.float32)]), name="selection_mean")
        self.stack = ColumnDataSource(dict(p=[np.zeros(0, np.uint8)], P=[0]), name="patch_stack")
        self.info = Div(text="", width=200, name="selection_info")
        fig = figure(width=200, height=230, title="Mean patch of selection", x_range=(0, 1), y_range=(0, 1),
                     tools="", toolbar_location=None, name="selection_mean_fig")
        fig.axis.visible = False
        fig.grid.visible = False
        fig.image(image="image", x=0, y=0, dw=1, dh=1, source=self.mean_source, palette="Greys256")
        self.source.selected.js_on_change("indices", CustomJS(
            args=dict(src=self.source, out=self.mean_source, stack=self.stack, info=self.info),
            code=_JS_SELECTION_MEAN,
            name="selection_mean_js"))
        self.mean_fig = fig

    def _build_layout(self):
        from bokeh.layouts import column, row
        from bokeh.models import CustomJS, Div, Toggle

        self.summary = Div(text="", width=self.width + int(self.width * 0.8), name="summary")
        # a browser-side switch, so it works in the saved HTML as in the notebook
        self.rejected_toggle = Toggle(label="show rejected candidates (0)", active=False, width=self.width,
                                      name="rejected_toggle")
        self.rejected_toggle.js_on_change("active", CustomJS(args=dict(r=self.rejected),
                                                             code="r.visible = cb_obj.active;"))
        self.root = column(
            self.summary,
            row(column(self.micrograph, self.rejected_toggle),
                column(self.embedding, row(self.play_button, self.play_slider, self.speed), self.play_label)),
            row(self.gallery, column(self.mean_fig, self.info)),
            row(self.counts, self.hierarchy),
            name="motiflab_explorer",
        )

    @staticmethod
    def _tooltip(with_thumb):
        if with_thumb:
            return ('<div class="motiflab-tip"><img src="@thumb" width="72" height="72" '
                    'style="image-rendering:pixelated;border:1px solid #888">'
                    '<div>@motif_name (column @idx)</div></div>')
        return '<div class="motiflab-tip">@motif_name (column @idx)</div>'

    # ------------------------------------------------------------------------------ updating
    def update(self, an, hierarchy=None, summary=None, force=False):
        """Bring every view up to date with ``an``, sending only what changed.

        Parameters
        ----------
        an : motiflab.Analysis
            A computed analysis (its motifs stage is evaluated here).
        hierarchy : motiflab.hierarchy.Hierarchy or str, optional
            The motif-cell hierarchy of the current motifs; a string says why
            there is none (the diagram then shows one node per motif).
        summary : str, optional
            Text for the header (default ``an.summary()``).
        force : bool
            Resend everything.

        Returns
        -------
        list of str
            What was updated (``"columns"``, ``"layout"``, ``"motifs"``, ``"hierarchy"``).
        """
        patches = an.patches
        lay = an.layout
        mot = an.motifs
        # the stage results themselves are the keys (held, so an id can never be reused by a new object)
        keys = {"patches": patches, "layout": lay, "motifs": mot, "hierarchy": hierarchy}
        changed = [k for k in ("patches", "layout", "motifs", "hierarchy")
                   if force or k not in self._keys or self._keys[k] is not keys[k]]
        if not changed:
            return []
        n = len(an.positions)
        large = n > self.datashade_above
        data = {}
        new_n = force or "patches" in changed or len(self.source.data["x"]) != n
        if new_n:
            phys = an.calibration.to_physical(an.positions)
            data.update(x=phys[:, 1], y=phys[:, 0], idx=np.arange(n))
            thumbs = self.want_thumbnails and n <= MAX_THUMBNAILS
            data["thumb"] = thumbnails(patches.patches) if thumbs else [""] * n
            for hov in (self.micro_hover, self.emb_hover):
                hov.tooltips = self._tooltip(thumbs)
            self._set_stack(patches.patches)
        if new_n or "layout" in changed:
            emb = np.asarray(lay.embedding, dtype=np.float64)
            data.update(ex=emb[:, 0], ey=emb[:, 1])
        labels = np.asarray(mot.labels, dtype=np.int64)
        if new_n or "motifs" in changed:
            data.update(motif=labels, color=label_colors(labels, mot.n_motifs).tolist(),
                        motif_name=[f"motif {k}" if k >= 0 else "unassigned" for k in labels.tolist()])
        if new_n or "motifs" in changed or "hierarchy" in changed:
            hnode, hcell = _hierarchy_columns(hierarchy, labels)
            data.update(hnode=hnode, hcell=hcell)
        if new_n:
            cols = an.columns
            rej = an.calibration.to_physical(cols.rejected_positions) if cols.n_rejected else np.zeros((0, 2))
            self.rejected_source.data = dict(x=rej[:, 1], y=rej[:, 0],
                                             q=np.asarray(cols.rejected_quality, np.float64))
            self.rejected_toggle.label = f"show rejected candidates ({cols.n_rejected})"
            self.source.selected.indices = []
            self.source.data = data            # new columns: replace the whole table
        elif data:
            self.source.data.update(data)      # same columns: send only what changed
        if new_n or "layout" in changed:
            self._set_frames(lay)
        if new_n or "layout" in changed or "motifs" in changed or large != self.large:
            self._set_mode(large, an)
        if new_n or "motifs" in changed:
            self._set_gallery(mot)
            self._set_counts(mot)
        if new_n or "motifs" in changed or "hierarchy" in changed:
            self._set_hierarchy(hierarchy, mot)
        self.summary.text = _summary_html(summary if summary is not None else an.summary())
        k = len(self.source.selected.indices)
        self.info.text = f"{k} of {n} columns selected" if k else f"no selection ({n} columns)"
        self._keys = keys
        return ["columns" if k == "patches" else k for k in changed]

    def _set_stack(self, patches):
        p = np.asarray(patches, dtype=np.float32)
        n, P = p.shape[0], p.shape[1]
        flat = p.reshape(n, -1)
        self._patch_stack = flat
        self.stack_shipped = n * P * P <= self.stack_budget_mb * 2**20
        if self.stack_shipped:
            lo, hi = np.percentile(flat, [0.5, 99.5])
            self._stack_range = (float(lo), float(hi))
            u8 = (np.clip((flat - lo) / (hi - lo + 1e-12), 0, 1) * 255).astype(np.uint8)
            self.stack.data = dict(p=[u8.ravel()], P=[int(P)])
        else:
            self.stack.data = dict(p=[np.zeros(0, np.uint8)], P=[int(P)])
        self.mean_source.data = dict(image=[flat.mean(0).reshape(P, P)[::-1].astype(np.float32)])

    def selection_mean(self, indices=None):
        """Mean patch (P, P) of the given columns (all when empty) — the Python twin of the JS view."""
        flat = self._patch_stack
        if flat is None or len(flat) == 0:
            return None
        P = int(round(np.sqrt(flat.shape[1])))
        ids = np.asarray(indices if indices is not None else [], dtype=np.int64)
        sub = flat[ids] if len(ids) else flat
        return sub.mean(0).reshape(P, P)

    def show_selection_mean(self, indices):
        """Update the mean-patch view from Python (used when the stack is not shipped to the browser)."""
        m = self.selection_mean(indices)
        if m is not None:
            self.mean_source.data = dict(image=[m[::-1].astype(np.float32)])
            n = len(self._patch_stack)
            self.info.text = (f"{len(indices)} of {n} columns selected" if len(indices)
                              else f"no selection ({n} columns)")

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

    def _set_mode(self, large, an):
        """Switch between per-column glyphs and datashaded rasters (selection glyphs stay drawn)."""
        self.large = large
        for cb in self.play_slider.js_property_callbacks.get("change:value", []):
            cb.args = dict(cb.args, large=large)
        if large:
            from .datashade import rasterize_points

            mot = an.motifs
            labels = np.asarray(mot.labels)
            colors = label_colors(np.arange(mot.n_motifs), mot.n_motifs).tolist()
            x0, y0, dw, dh = self._image_extent()
            phys = an.calibration.to_physical(an.positions)
            h, w = self.image_shape
            f = max(1, int(np.ceil(max(h, w) / MAX_IMAGE_SIDE)))
            img = rasterize_points(phys[:, 1], phys[:, 0], labels, colors, (x0, x0 + dw), (y0, y0 + dh),
                                   w // f, h // f)
            self.marker_raster_source.data = dict(image=[img], x=[x0], y=[y0], dw=[dw], dh=[dh])
            emb = np.asarray(an.layout.embedding, dtype=np.float64)
            (ex0, ex1), (ey0, ey1) = _padded_range(emb[:, 0]), _padded_range(emb[:, 1])
            side = int(self.width * 0.8)
            img = rasterize_points(emb[:, 0], emb[:, 1], labels, colors, (ex0, ex1), (ey0, ey1), side, side)
            self.embedding_raster_source.data = dict(image=[img], x=[ex0], y=[ey0], dw=[ex1 - ex0], dh=[ey1 - ey0])
        for r, vis_alpha, non_alpha in ((self.markers, 0.85, 0.12), (self.points, 0.8, 0.08)):
            r.glyph.fill_alpha = 0.0 if large else vis_alpha
            r.glyph.line_alpha = 0.0 if large else vis_alpha
            r.nonselection_glyph.fill_alpha = 0.0 if large else non_alpha
            r.nonselection_glyph.line_alpha = 0.0 if large else non_alpha
        self.marker_raster.visible = large
        self.embedding_raster.visible = large
        self.play_points.visible = False
        self.embedding.output_backend = "webgl" if large else "canvas"
        self.micrograph.output_backend = "webgl" if large else "canvas"

    def rerasterize(self, an, which, x_range, y_range):
        """Re-rasterise the micrograph markers or the embedding for a zoomed range (large data only).

        Parameters
        ----------
        an : motiflab.Analysis
        which : {"micrograph", "embedding"}
        x_range, y_range : (float, float)
            The visible data range.

        Returns
        -------
        bool
            False when the views are not in datashaded mode (nothing to do).
        """
        if not self.large:
            return False
        from .datashade import rasterize_points

        mot = an.motifs
        colors = label_colors(np.arange(mot.n_motifs), mot.n_motifs).tolist()
        (x0, x1), (y0, y1) = sorted(map(float, x_range)), sorted(map(float, y_range))
        if not (x1 > x0 and y1 > y0):
            return False
        if which == "embedding":
            pts = np.asarray(an.layout.embedding, dtype=np.float64)
            fig, src = self.embedding, self.embedding_raster_source
        else:
            pts = an.calibration.to_physical(an.positions)[:, ::-1]
            fig, src = self.micrograph, self.marker_raster_source
        w, h = int(fig.width or 400), int(fig.height or 400)
        img = rasterize_points(pts[:, 0], pts[:, 1], np.asarray(mot.labels), colors, (x0, x1), (y0, y1), w, h)
        src.data = dict(image=[img], x=[x0], y=[y0], dw=[x1 - x0], dh=[y1 - y0])
        return True

    def _set_gallery(self, mot):
        k = mot.n_motifs
        ncol = min(max(k, 1), 5 if k <= 10 else 8)
        nrow = max(1, int(np.ceil(k / ncol)))
        tile = (self.width * 0.8) / ncol
        imgs, xs, ys, cx, cy, lx, ly, txt = [], [], [], [], [], [], [], []
        for i in range(k):
            r, c = divmod(i, ncol)
            a = np.asarray(mot.class_averages[i], dtype=np.float32)
            lo, hi = float(a.min()), float(a.max())
            imgs.append(((a - lo) / (hi - lo + 1e-12))[::-1].astype(np.float32))  # upright, own contrast
            xs.append(c + 0.05)
            ys.append(-(r + 1) + 0.05)
            cx.append(c + 0.5)
            cy.append(-(r + 0.5))
            lx.append(c + 0.06)
            ly.append(-(r + 1) + 0.07)
            txt.append(f"#{i}: {int(mot.counts[i])}")
        self.gallery_source.selected.indices = []
        self.gallery_source.data = dict(image=imgs, x=xs, y=ys, cx=cx, cy=cy, lx=lx, ly=ly, motif=list(range(k)),
                                        text=txt, color=motif_palette(k) if k else [],
                                        count=[int(c) for c in mot.counts])
        self.gallery.x_range.start, self.gallery.x_range.end = 0, ncol
        self.gallery.y_range.start, self.gallery.y_range.end = -nrow, 0
        self.gallery.height = int(min(tile * nrow, 900) + 40)

    def _set_counts(self, mot):
        names = [f"#{i}" for i in range(mot.n_motifs)]
        self.counts_source.selected.indices = []
        self.counts.x_range.factors = names
        self.counts_source.data = dict(name=names, count=[int(c) for c in mot.counts],
                                       color=motif_palette(mot.n_motifs) if names else [],
                                       motif=list(range(mot.n_motifs)))

    def _set_hierarchy(self, hierarchy, mot):
        from motiflab.hierarchy import Hierarchy

        self.hier_nodes.selected.indices = []
        if isinstance(hierarchy, Hierarchy):
            nodes, edges, title = _hierarchy_diagram(hierarchy)
        else:
            nodes, edges = _motif_nodes(mot)
            why = f" ({hierarchy})" if isinstance(hierarchy, str) and hierarchy else ""
            title = f"Motif counts{why}; click a node"
        self.hier_nodes.data = nodes
        self.hier_edges.data = edges
        self.hierarchy.title.text = title

    # ------------------------------------------------------------------------------ export
    def html(self, title="motiflab explorer"):
        """The layout as one self-contained HTML document (BokehJS inlined; works offline)."""
        from bokeh.embed import file_html
        from bokeh.resources import INLINE

        return file_html(self.root, resources=INLINE, title=title, suppress_callback_warning=True)


# ------------------------------------------------------------------------------------ helpers
def _add_scale_bar(fig, cal):
    from bokeh.models import Metric, ScaleBar

    if not cal.calibrated:
        return
    try:
        dim = Metric(base_unit="m") if cal.units in ("nm", "µm", "pm", "mm", "m") else Metric(base_unit=cal.units)
        fig.add_layout(ScaleBar(range=fig.x_range, unit=cal.units, dimensional=dim, location="bottom_right",
                                bar_length=0.2, name="scale_bar"))
    except Exception:  # exotic units Bokeh cannot scale: the axes stay calibrated without a bar
        pass


def _padded_range(v, pad=0.05):
    lo, hi = float(np.min(v)), float(np.max(v))
    d = (hi - lo) or 1.0
    return lo - pad * d, hi + pad * d


def _summary_html(text):
    return "<h3 style='margin:2px 0'>motiflab explorer</h3><p style='margin:2px 0'>" + \
        "<br>".join(html.escape(line) for line in str(text).splitlines()) + "</p>"


def _hierarchy_columns(hierarchy, labels):
    """Per column: the hierarchy node of its component and of its own cell (motif label as fallback)."""
    from motiflab.hierarchy import Hierarchy

    if isinstance(hierarchy, Hierarchy) and len(hierarchy.column_cell) == len(labels):
        hnode = hierarchy.column_motif_cell()
        hcell = np.full(len(labels), -1, np.int64)
        ok = hierarchy.column_cell >= 0
        hcell[ok] = np.asarray(hierarchy.cell_node)[hierarchy.column_cell[ok]]
        return hnode.astype(np.int64), hcell
    return np.asarray(labels, np.int64).copy(), np.full(len(labels), -2, np.int64)


def _motif_nodes(mot):
    k = mot.n_motifs
    counts = np.asarray(mot.counts, dtype=np.float64)
    size = (8 + 22 * np.sqrt(counts / counts.max())).tolist() if k else []
    nodes = dict(x=list(range(k)), y=[0.0] * k, size=size, color=motif_palette(k) if k else [],
                 text=[f"#{i}" for i in range(k)], id=list(range(k)), level=[1] * k,
                 count=[int(c) for c in mot.counts], composition=[f"motif {i}" for i in range(k)])
    return nodes, dict(xs=[], ys=[])


def _hierarchy_diagram(h, max_nodes=30, max_labels_per_level=8):
    """Node/edge coordinates of the hierarchy: one row per level (level 1 at the bottom, host first).

    At most ``max_nodes`` nodes are drawn (host, then the most frequent); only the
    ``max_labels_per_level`` most frequent nodes of a level are labelled (hover shows all).
    """
    cells = list(h.motif_cells)
    host = [m for m in cells if m.dominant]
    rest = sorted((m for m in cells if not m.dominant), key=lambda m: (-(m.count or 0), -m.n_cells, m.id))
    keep = host + rest[: max(0, max_nodes - len(host))]
    ids = {m.id for m in keep}
    by_level: dict = {}
    for m in sorted(keep, key=lambda m: (m.level, not m.dominant, -(m.count or 0), -m.n_cells, m.id)):
        by_level.setdefault(m.level, []).append(m)
    levels = sorted(by_level)
    pos, labelled = {}, set()
    for row_i, lev in enumerate(levels):
        ms = by_level[lev]
        for j, m in enumerate(ms):
            pos[m.id] = ((j + 0.5) / len(ms) * 10.0, float(row_i))
        every = int(np.ceil(len(ms) / max_labels_per_level))
        labelled |= {m.id for j, m in enumerate(ms) if j % every == 0}
    counts = np.array([max(m.count, m.n_cells, 1) for m in keep], dtype=np.float64)
    size = 8 + 18 * np.sqrt(counts / counts.max())
    pal = motif_palette(max(len(levels), 1))
    nodes = dict(
        x=[pos[m.id][0] for m in keep], y=[pos[m.id][1] for m in keep], size=size.tolist(),
        color=["#444444" if m.dominant else pal[levels.index(m.level) % len(pal)] for m in keep],
        text=[("host" if m.dominant else f"L{m.level}·{m.id}") if m.id in labelled else "" for m in keep],
        id=[int(m.id) for m in keep], level=[int(m.level) for m in keep], count=[int(m.count) for m in keep],
        composition=[", ".join(f"{a}×{b}" for a, b in m.composition) for m in keep],
    )
    xs, ys = [], []
    for a, b in h.edges:
        if a in ids and b in ids:
            xs.append([pos[a][0], pos[b][0]])
            ys.append([pos[a][1], pos[b][1]])
    title = f"Hierarchy: {len(cells)} motif-cells ({len(keep)} shown); click a node"
    return nodes, dict(xs=xs, ys=ys), title
