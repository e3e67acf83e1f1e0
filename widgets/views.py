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
:func:`motiflab.widgets.report.write_report` files. In the notebook explorer
(``lazy_frames=True``) the frames are sent only when the page asks for them
(Play, or the frame slider), once per layout; :meth:`ExplorerViews.html` always
writes them.

The views are built once and then *updated in place* by :meth:`ExplorerViews.update`
(only the columns of the data sources that changed are replaced), which is
what lets the notebook explorer push a new layout to the browser without
re-rendering the page.

Large data: above ``datashade_above`` columns the micrograph markers and the
embedding are drawn as datashader rasters (:mod:`motiflab.widgets.datashade`);
the per-column glyphs stay on the page fully transparent, so box/lasso selection
and hover still work and the selected columns are drawn on top of the raster.

Each view is built by a mixin in its own module: the micrograph
(:mod:`._micrograph_view`), the embedding and playback (:mod:`._embedding_view`),
the gallery and bars (:mod:`._motif_views`), the hierarchy diagram
(:mod:`._hierarchy_view`) and the selection mean / click-to-select
(:mod:`._selection`); image helpers are in :mod:`._images`. This module keeps
:class:`ExplorerViews` (building order, the layout, updating, datashaded mode,
export) and re-exports the helpers other code imports from here.
"""
from __future__ import annotations

import html

import numpy as np

from motiflab.colors import UNASSIGNED, label_colors, motif_colors  # re-exported for callers

from ._bokeh_patch import one_patch
from ._embedding_view import EmbeddingView, select_frames
from ._hierarchy_view import HIERARCHY_PENDING, HierarchyPending, HierarchyView, hierarchy_columns
from ._images import MAX_IMAGE_SIDE, downsample_image, padded_range, png_data_url, thumbnails
from ._micrograph_view import HOVER_LIMIT, MicrographView
from ._motif_views import MotifViews, motif_color_mapper, motif_palette, set_motif_colors
from ._selection import SelectionViews

__all__ = [
    "ExplorerViews",
    "HIERARCHY_PENDING",
    "GREY",
    "MAX_THUMBNAILS",
    "HOVER_LIMIT",
    "DATASHADE_ABOVE",
    "MAX_IMAGE_SIDE",
    "motif_palette",
    "png_data_url",
    "thumbnails",
    "downsample_image",
    "select_frames",
    "UNASSIGNED",
    "label_colors",
    "motif_colors",
    "provenance_line",
    "provenance_html",
]

GREY = UNASSIGNED
#: above this many columns the per-column hover thumbnails are left out (they would make the
#: page large); hover then shows the motif and column number only
MAX_THUMBNAILS = 20000
#: default column count above which markers and embedding are rasterised with datashader
DATASHADE_ABOVE = 50_000


class ExplorerViews(MicrographView, EmbeddingView, MotifViews, HierarchyView, SelectionViews):
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
    lazy_frames : bool
        Keep each layout's playback frames in Python until the page asks for
        them (:meth:`load_frames`; the live explorer) instead of sending them
        with every layout update. :meth:`html` writes them either way.
    stack_budget_mb : float
        Size limit of the uint8 patch stack used for the client-side selection
        mean; above it the mean is computed in Python (notebook only).
    width : int
        Width of the micrograph view in screen pixels; the others follow.
    responsive : bool
        Lay the views out to fill the page's width (the standalone report)
        instead of at fixed sizes (the notebook, where the controls sit beside
        them).

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
                 frame_budget_mb=32.0, stack_budget_mb=32.0, width=520, responsive=False, lazy_frames=False):
        from bokeh.models import ColumnDataSource

        self.calibration = calibration
        self.datashade_above = int(datashade_above)
        self.want_thumbnails = bool(thumbnails)
        self.frame_budget_mb = float(frame_budget_mb)
        self.lazy_frames = bool(lazy_frames)
        self.stack_budget_mb = float(stack_budget_mb)
        self.width = int(width)
        self.responsive = bool(responsive)
        self._header = None  # (summary text, image title, analysis): the header is redrawn when exported
        self.large = False
        self.stack_shipped = False
        self._keys: dict = {}
        self._patch_stack = None  # float32 (N, P*P) kept for the Python-side selection mean
        self.image_shape = tuple(np.asarray(image).shape)

        empty = dict(x=np.zeros(0), y=np.zeros(0), ex=np.zeros(0), ey=np.zeros(0),
                     motif=np.zeros(0, np.int32), idx=np.zeros(0, np.int64),
                     hnode=np.zeros(0, np.int64), hcell=np.zeros(0, np.int64), thumb=[])
        self.source = ColumnDataSource(empty, name="columns")
        # the points' colours are mapped from their motif label in the page: a new clustering sends
        # one int32 per column, not a colour string (and a name) per column (at 55k columns, 1.8 MB
        # of strings to the page and the same back as jupyter_bokeh's echo)
        self.motif_mapper = motif_color_mapper(0)
        self._build_micrograph(image)
        self._build_embedding()
        self._build_playback()
        self._build_gallery()
        self._build_counts()
        self._build_hierarchy()
        self._build_selection_mean()
        self._build_highlight_sync()
        self._build_layout()

    # ------------------------------------------------------------------------------ building
    def _build_layout(self):
        from bokeh.layouts import column, row
        from bokeh.models import CustomJS, Div, Toggle

        self.summary = Div(text="", width=self.width + int(self.width * 0.8), name="summary")
        # a browser-side switch, so it works in the saved HTML as in the notebook
        self.rejected_toggle = Toggle(label="show rejected candidates (0)", active=False, width=self.width,
                                      name="rejected_toggle")
        self.rejected_toggle.js_on_change("active", CustomJS(args=dict(r=self.rejected),
                                                             code="r.visible = cb_obj.active;"))
        micrograph = column(self.micrograph, self.rejected_toggle)
        embedding = column(self.embedding, row(self.play_button, self.play_slider, self.speed), self.play_label)
        selection = column(self.mean_fig, self.info)
        if self.responsive:
            # the report: the image, the layout and the motifs side by side across the page, the
            # statistics below. The two point views scale with the page width (keeping their aspect);
            # the gallery column keeps its size
            for fig in (self.micrograph, self.embedding):
                fig.sizing_mode = "scale_width"
            for m in (self.summary, self.rejected_toggle, self.play_label):
                m.sizing_mode = "stretch_width"
            self.counts.sizing_mode = "stretch_width"
            micrograph = column(self.micrograph, self.rejected_toggle, sizing_mode="stretch_width")
            embedding = column(self.embedding, row(self.play_button, self.play_slider, self.speed),
                               self.play_label, sizing_mode="stretch_width")
            self.root = column(
                self.summary,
                row(micrograph, embedding, column(self.gallery, selection), sizing_mode="stretch_width"),
                row(self.counts, self.hierarchy, sizing_mode="stretch_width"),
                name="motiflab_explorer", sizing_mode="stretch_width",
            )
        else:
            # the hierarchy diagram gets a row of its own: beside the bars, a diagram with four or more
            # motif-cells in a row ran past the notebook cell's edge and was cut off
            self.root = column(
                self.summary,
                row(micrograph, embedding),
                row(column(self.gallery, self.counts), selection),
                self.hierarchy,
                name="motiflab_explorer",
            )

    @staticmethod
    def _tooltip(with_thumb):
        if with_thumb:
            return ('<div class="motiflab-tip"><img src="@thumb" width="72" height="72" '
                    'style="image-rendering:pixelated;border:1px solid #888">'
                    '<div>@motif{custom} (column @idx)</div></div>')
        return '<div class="motiflab-tip">@motif{custom} (column @idx)</div>'

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
            :data:`HIERARCHY_PENDING`: it is being built; the previous diagram
            stays, faded, and the header waits for the update that brings it.
        summary : str, optional
            Text for the header (default ``an.summary()``).
        force : bool
            Resend everything.

        Returns
        -------
        list of str
            What was updated (``"columns"``, ``"layout"``, ``"motifs"``, ``"hierarchy"``).
        """
        # one message for the whole update (one change per model and property): sent one by one,
        # the changes each made the page repaint, 8-10 times per figure and update
        with one_patch(self.source.document):
            return self._update(an, hierarchy, summary, force)

    def update_layout(self, an) -> bool:
        """Show ``an``'s new layout before its motifs are computed; True if it was shown.

        The points move at once and keep their current colours (the same
        columns, coloured by the motifs of the previous layout) until
        :meth:`update` brings the new motifs: after a change of a layout
        parameter the user sees the new layout a clustering earlier.  Nothing
        is sent when the columns changed or the layout is the one shown.
        """
        lay = an.layout
        old = self._keys.get("motifs")
        if (old is None or self._keys.get("patches") is not an.patches or self._keys.get("layout") is lay
                or len(self.source.data["x"]) != len(an.positions)):
            return False
        with one_patch(self.source.document):
            emb = np.asarray(lay.embedding, dtype=np.float64)
            emb32 = np.asarray(lay.embedding, dtype=np.float32)  # the layout's own precision: half the bytes to send
            self.source.patch({"ex": [(slice(None), emb32[:, 0])], "ey": [(slice(None), emb32[:, 1])]})
            self._set_frames(lay)
            if self.large:
                self._raster_embedding(emb, np.asarray(old.labels), old.n_motifs)
            self._keys = dict(self._keys, layout=lay)
        return True

    def _raster_embedding(self, emb, labels, n_motifs):
        from .datashade import rasterize_points

        colors = label_colors(np.arange(n_motifs), n_motifs).tolist()
        (ex0, ex1), (ey0, ey1) = padded_range(emb[:, 0]), padded_range(emb[:, 1])
        side = int(self.width * 0.8)
        img = rasterize_points(emb[:, 0], emb[:, 1], labels, colors, (ex0, ex1), (ey0, ey1), side, side)
        self.embedding_raster_source.data = dict(image=[img], x=[ex0], y=[ey0], dw=[ex1 - ex0], dh=[ey1 - ey0])

    def _update(self, an, hierarchy, summary, force):
        patches = an.patches
        lay = an.layout
        mot = an.motifs
        # the stage results themselves are the keys (held, so an id can never be reused by a new object)
        keys = {"patches": patches, "layout": lay, "motifs": mot, "hierarchy": hierarchy}
        changed = [k for k in ("patches", "layout", "motifs", "hierarchy")
                   if force or k not in self._keys or self._keys[k] is not keys[k]]
        self._header = (summary, image_title(an), an)
        if not changed:
            self._set_header()  # parameters or edits may have changed without a stage changing
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
            # float32, the layout's own precision (float64 doubled the bytes sent per update)
            emb = np.asarray(lay.embedding, dtype=np.float32)
            data.update(ex=emb[:, 0], ey=emb[:, 1])
        labels = np.asarray(mot.labels, dtype=np.int64)
        if new_n or "motifs" in changed:
            data.update(motif=labels.astype(np.int32))
            set_motif_colors(self.motif_mapper, mot.n_motifs)
        if new_n or "motifs" in changed or "hierarchy" in changed:
            hnode, hcell = hierarchy_columns(hierarchy, labels)
            data.update(hnode=hnode, hcell=hcell)
        if new_n:
            cols = an.columns
            rej = an.calibration.to_physical(cols.rejected_positions) if cols.n_rejected else np.zeros((0, 2))
            self.rejected_source.data = dict(x=rej[:, 1], y=rej[:, 0],
                                             q=np.asarray(cols.rejected_quality, np.float64))
            self.rejected_toggle.label = f"show rejected candidates ({cols.n_rejected})"
            self.source.selected.indices = []
            # new columns: replace the whole table, with arrays of its own (a patch writes into them)
            self.source.data = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in data.items()}
        elif data:
            # same columns: patch the changed ones whole. An update of ``data`` reaches the page as a
            # change of the whole table, thumbnails included, and jupyter_bokeh sends every change the
            # kernel made back to it (10.6 MB per slider release at 5k columns); a patch goes back as
            # itself
            self.source.patch({k: [(slice(None), v)] for k, v in data.items()})
        if new_n or "layout" in changed:
            self._set_frames(lay)
        if new_n or "layout" in changed or "motifs" in changed or large != self.large:
            self._set_mode(large, an)
        if new_n or "motifs" in changed:
            self._set_gallery(mot)
            self._set_counts(mot)
        if new_n or "motifs" in changed or "hierarchy" in changed:
            self._set_hierarchy(hierarchy, mot, an)
        if "motifs" in changed and not (new_n or "layout" in changed):
            self.play_source.patch({"motif": [(slice(None), np.asarray(self.source.data["motif"]))]})
        if new_n or not isinstance(hierarchy, HierarchyPending):
            # the header (a Div) makes the page lay itself out again: it changes with the update that
            # brings the hierarchy, after the points and the gallery are on screen
            self._set_header()
        k = len(self.source.selected.indices)
        self.info.text = f"{k} of {n} columns selected" if k else f"no selection ({n} columns)"
        self._keys = keys
        return ["columns" if k == "patches" else k for k in changed]

    def _set_header(self, written=None):
        """The header: title, summary and the collapsible "How this was made" provenance."""
        if self._header is None:
            return
        summary, title, an = self._header
        self.summary.text = _summary_html(summary if summary is not None else an.summary(), title,
                                          provenance_line(an), provenance_html(an, written=written))

    def _set_mode(self, large, an):
        """Switch between per-column glyphs and datashaded rasters (selection glyphs stay drawn)."""
        self.large = large
        for cb in self._play_callbacks:
            cb.args = dict(cb.args, large=large)
        self.play_points.glyph.size = 2 if large else 5
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
            self._raster_embedding(np.asarray(an.layout.embedding, dtype=np.float64), labels, mot.n_motifs)
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

    # ------------------------------------------------------------------------------ export
    def html(self, title="motiflab explorer"):
        """The layout as one self-contained HTML document (BokehJS inlined; works offline).

        The header's "How this was made" section records the parameters, the
        curation edits, the input file and its SHA-256, the motiflab version and
        when this file was written. The playback frames are always written (with
        ``lazy_frames`` they are loaded first, and stay loaded).
        """
        import datetime

        from bokeh.embed import file_html
        from bokeh.resources import INLINE

        self.load_frames()  # no kernel behind the file: the page cannot ask for them
        self._set_header(written=datetime.datetime.now().astimezone())
        try:
            return file_html(self.root, resources=INLINE, title=title, suppress_callback_warning=True)
        finally:
            self._set_header()


# ------------------------------------------------------------------------------------ helpers
def image_title(an) -> str:
    """The image's own title (from its file's metadata), or ''."""
    meta = getattr(an.signal, "metadata", None)
    try:
        return str(meta.get_item("General.title", "") or "") if meta is not None else ""
    except Exception:  # metadata of an unexpected shape: no title rather than no page
        return ""


def provenance_line(an) -> str:
    """Where the result came from, in one line: input file, its SHA-256, motiflab version."""
    import motiflab

    parts = []
    if getattr(an, "source_path", None):
        from pathlib import Path

        sha = getattr(an, "source_sha256", None)
        parts.append(f"input {Path(an.source_path).name}" + (f" (SHA-256 {sha[:12]}…)" if sha else ""))
    parts.append(f"motiflab {motiflab.__version__}")
    return " · ".join(parts)


def provenance_html(an, written=None) -> str:
    """A collapsible "How this was made" section: everything needed to reproduce the result.

    The parameters (:attr:`motiflab.Analysis.params`), the curation edits
    (:attr:`motiflab.Analysis.edits`, in order), the input file's name, full
    path and SHA-256, the motiflab version and the date. Every value is
    escaped: paths, titles and edit fields come from the user's files.

    Parameters
    ----------
    an : motiflab.Analysis
    written : datetime.datetime, optional
        When the HTML file is written (default: now, as "updated").

    Returns
    -------
    str
        An HTML ``<details>`` element.
    """
    import datetime
    import json

    import motiflab

    esc = html.escape
    when = written or datetime.datetime.now().astimezone()
    rows = []
    path = getattr(an, "source_path", None)
    if path:
        from pathlib import Path

        rows.append(("input file", f"{Path(path).name} ({path})"))
        rows.append(("input SHA-256", getattr(an, "source_sha256", None) or "not recorded"))
    else:
        rows.append(("input", "an in-memory image (no file: no checksum)"))
    rows.append(("motiflab version", motiflab.__version__))
    rows.append(("written" if written else "updated", when.isoformat(timespec="seconds")))
    cells = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
                    for k, v in rows)
    params = getattr(an, "params", {}) or {}
    prow = "".join(f"<tr><td>{esc(str(k))}</td><td><code>{esc(json.dumps(v, default=str))}</code></td></tr>"
                   for k, v in sorted(params.items()))
    edits = list(getattr(an, "edits", []) or [])
    erows = "".join(f"<li><code>{esc(json.dumps(e, default=str, sort_keys=True))}</code></li>" for e in edits)
    again = ("motiflab.Analysis(<input file>, **params), then the edits in order "
             "(or motiflab.open_analysis on the saved .hspy)")
    return ("<details class='motiflab-provenance' style='margin:4px 0'>"
            "<summary style='cursor:pointer'><b>How this was made</b> (parameters, edits, input, version)</summary>"
            f"<table style='font-size:90%'>{cells}</table>"
            f"<p style='margin:4px 0'><b>Parameters</b> ({len(params)})</p>"
            f"<table style='font-size:85%;columns:2'>{prow}</table>"
            f"<p style='margin:4px 0'><b>Curation edits</b> ({len(edits)})</p>"
            + (f"<ol style='font-size:85%'>{erows}</ol>" if edits else "<p style='font-size:85%'>none</p>")
            + f"<p style='font-size:85%'>To redo it: {esc(again)}.</p></details>")


def _summary_html(text, title="", provenance="", details=""):
    """The header: the image's title, the analysis summary, its provenance line and details, every line escaped.

    Titles and metadata come from the user's file: they are text, never markup
    (``details`` is :func:`provenance_html`, which escapes its own values).
    """
    head = "motiflab explorer" + (f": {title}" if title else "")
    lines = str(text).splitlines() + ([provenance] if provenance else [])
    return (f"<h3 style='margin:2px 0'>{html.escape(head)}</h3><p style='margin:2px 0'>"
            + "<br>".join(html.escape(line) for line in lines) + "</p>" + details)
