"""The motif gallery and the columns-per-motif bars of :class:`~motiflab.widgets.views.ExplorerViews`.

The gallery shows each motif's class-average patch and count; clicking a tile
or a bar selects that motif's columns (through the host's ``_link_tap``).
Tile labels sit on a box of the motif's colour with black or white text,
whichever contrasts more (:func:`motiflab.colors.text_color`): coloured text on
a white box was unreadable for the light colours (pink, cyan, yellow).
"""
from __future__ import annotations

import numpy as np

from motiflab.colors import UNASSIGNED, motif_colors, text_color

__all__ = ["MotifViews", "motif_color_mapper", "motif_label_formatter", "motif_palette", "set_motif_colors"]


def motif_palette(k):
    """``k`` motif colours (:func:`motiflab.colors.motif_colors`, the same as the HyperSpy markers)."""
    return motif_colors(k)


def motif_color_mapper(k):
    """A Bokeh colour mapper from a motif label (−1 … k−1) to its colour, for ``transform("motif", mapper)``.

    Each integer label falls in a bin of its own: the palette is the unassigned
    grey followed by the ``k`` motif colours, over −1.5 … k−0.5.
    """
    from bokeh.models import LinearColorMapper

    mapper = LinearColorMapper(palette=[UNASSIGNED, UNASSIGNED], low=-1.5, high=0.5, name="motif_colors")
    set_motif_colors(mapper, k)
    return mapper


def set_motif_colors(mapper, k):
    """Point ``mapper`` (:func:`motif_color_mapper`) at ``k`` motifs (nothing is sent when ``k`` is unchanged)."""
    k = max(int(k), 0)
    palette = [UNASSIGNED] + motif_colors(k) if k else [UNASSIGNED, UNASSIGNED]
    if list(mapper.palette) != palette:
        mapper.palette = palette
    high = (k - 0.5) if k else 0.5
    if mapper.high != high:
        mapper.high = high


def motif_label_formatter():
    """Hover text of a motif label: "motif 3", or "unassigned" for −1 (``@motif{custom}``)."""
    from bokeh.models import CustomJSHover

    return CustomJSHover(code="return value < 0 ? 'unassigned' : 'motif ' + value;", name="motif_label")


class MotifViews:
    """Mixin of :class:`~motiflab.widgets.views.ExplorerViews` building the gallery and the bars.

    Uses the host's ``width`` and ``_link_tap``; sets ``gallery`` /
    ``gallery_source`` and ``counts`` / ``counts_source``.
    """

    def _build_gallery(self):
        from bokeh.models import ColumnDataSource, HoverTool, LabelSet, TapTool
        from bokeh.plotting import figure

        w = int(self.width * 0.8)
        self.gallery_source = ColumnDataSource(dict(image=[], x=[], y=[], cx=[], cy=[], lx=[], ly=[], motif=[],
                                                    text=[], color=[], text_color=[], count=[]), name="gallery")
        fig = figure(width=w, height=200, title="Motifs (class averages; click to select)",
                     x_range=(0, 5), y_range=(-1, 0), tools="", toolbar_location=None, name="gallery_fig")
        fig.axis.visible = False
        fig.grid.visible = False
        fig.image(image="image", x="x", y="y", dw=0.9, dh=0.9, source=self.gallery_source, palette="Greys256")
        tiles = fig.rect("cx", "cy", width=0.94, height=0.94, source=self.gallery_source, fill_alpha=0.0,
                         line_color="color", line_width=2, selection_line_width=4, selection_fill_alpha=0.0,
                         nonselection_fill_alpha=0.0, nonselection_line_alpha=0.5, name="gallery_tiles")
        fig.add_layout(LabelSet(x="lx", y="ly", text="text", source=self.gallery_source, text_color="text_color",
                                text_font_size="9pt", text_font_style="bold", background_fill_color="color",
                                background_fill_alpha=1.0, border_line_color="black", border_line_alpha=0.4,
                                name="gallery_labels"))
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
                                        text_color=[text_color(c) for c in motif_palette(k)],
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
