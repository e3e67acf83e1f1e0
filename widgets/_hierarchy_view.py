"""The motif-cell hierarchy diagram of :class:`~motiflab.widgets.views.ExplorerViews`.

Drawn in the visual language of the paper's Fig. 2D (Dan et al. 2022): every
motif-cell is shown as a *picture* of what it looks like, one labelled row per
level (level = number of unit cells), level 1 at the top and bigger motif-cells
below, and a line from a motif-cell down to each bigger one that contains it.

The picture of a motif-cell is the mean image of its occurrences, cut from the
micrograph, with the unit cells of its pattern outlined and its atom columns
drawn as dots in their motif colours (the same colours as everywhere else).
Only occurrences in the same orientation are averaged (a pattern counted "up to
rotation" occurs rotated too, and averaging those would blur it); at most
:data:`MAX_AVERAGED` of them, so a picture costs a few small crops however
common the motif-cell is. Without the analysis (no image) the picture is the
cell outlines alone.

Rows keep the :data:`MAX_PER_LEVEL` most frequent motif-cells of each level and
at most :data:`MAX_LEVELS` levels (the smallest ones); the row labels and the
title say how many are hidden. Nodes are placed with
:func:`networkx.multipartite_layout` (one layer per level) after a few
barycentre sweeps that order each row to reduce edge crossings (the ordering
step of a Sugiyama layout), so node boxes never overlap and the layout is
reproducible. Clicking a node selects every occurrence of that motif-cell in
all views (the browser does it with ``_link_tap``; in the notebook the Python
twin :meth:`HierarchyView.hierarchy_occurrences` gives the same columns).

Without a hierarchy the diagram shows one node per motif (its class average).
While the hierarchy of new motifs is being built (:data:`HIERARCHY_PENDING`)
the previous diagram stays where it is, faded and no longer clickable: its
figure keeps its size, so the page does not lay itself out twice and jump in
the meantime (in JupyterLab that relayout cost ~0.25 s before the new points
appeared). Everything is plain Bokeh data (``image_rgba`` pictures), so the
view works in the standalone HTML with no kernel and is updated in place.
"""
from __future__ import annotations

import html

import numpy as np

from motiflab.colors import UNASSIGNED, motif_colors

from ._hierarchy_layout import DUMMY_W, GAP_X, GAP_Y, LABEL_H, MARGIN_L, PAD, TILE, layers, order_rows, place_rows
from ._hierarchy_pictures import MAX_AVERAGED, NodePictures, render

__all__ = ["HierarchyView", "HierarchyPending", "HIERARCHY_PENDING", "hierarchy_columns", "hierarchy_diagram",
           "motif_nodes", "node_occurrences", "MAX_PER_LEVEL", "MAX_LEVELS", "MAX_AVERAGED"]

#: most frequent motif-cells drawn per level (the rest are counted in the row label)
MAX_PER_LEVEL = 6
#: levels drawn (the smallest ones; larger levels are counted in the title)
MAX_LEVELS = 10


class HierarchyPending(str):
    """The hierarchy of the shown motifs is being built: keep the previous diagram, faded (a ``str``: says why)."""


#: what the explorer shows as the hierarchy between new motifs and their hierarchy
HIERARCHY_PENDING = HierarchyPending("building the hierarchy…")


CAPTION = (
    "<b>How to read this diagram.</b> Each picture is a <i>motif-cell</i>: a group of neighbouring unit "
    "cells of the crystal that look alike wherever they occur. It shows the average image of its "
    "occurrences, with the unit cells outlined and every atom column as a dot in its motif's colour. "
    "Rows are <i>levels</i>: level <i>n</i> is made of <i>n</i> unit cells. Level 1 (top) holds single "
    "cells, the first one being the perfect crystal's own cell (<i>host</i>); the others are the "
    "defects. A line joins a motif-cell to a bigger one below that contains it. The number under a "
    "picture says how often it was found (level 1: how many cells have it). "
    "<b>Click a picture</b> to highlight its occurrences on the micrograph; hover for what it is made of."
)
CAPTION_NO_HIERARCHY = (
    "<b>No motif-cell hierarchy</b> for this image, so each node is one motif (its class average) with "
    "the number of columns it labels. <b>Click a picture</b> to highlight that motif's columns on the "
    "micrograph."
)

_EMPTY_NODES = dict(x=[], y=[], w=[], h=[], image=[], ix=[], iy=[], lx=[], ly=[], text=[], id=[], level=[],
                    count=[], n_cells=[], color=[], lw=[], title=[], made_of=[])


class HierarchyView:
    """Mixin of :class:`~motiflab.widgets.views.ExplorerViews` building the hierarchy diagram.

    Uses the host's ``width``, ``source`` and ``_link_tap``; sets ``hierarchy``
    (the figure with its caption below), ``hierarchy_fig``, ``hierarchy_caption``,
    ``hier_nodes``, ``hier_edges`` and ``hier_levels``.
    """

    def _build_hierarchy(self):
        from bokeh.layouts import column
        from bokeh.models import ColumnDataSource, Div, HoverTool, Label, LabelSet, Range1d, TapTool
        from bokeh.plotting import figure

        self.hier_nodes = ColumnDataSource(dict(_EMPTY_NODES), name="hierarchy_nodes")
        self.hier_edges = ColumnDataSource(dict(xs=[], ys=[]), name="hierarchy_edges")
        self.hier_levels = ColumnDataSource(dict(x=[], y=[], text=[]), name="hierarchy_levels")
        self._hier = None
        w = int(self.width * 0.8)
        fig = figure(frame_width=w, frame_height=200, title="Motif-cell hierarchy",
                     x_range=Range1d(0, w), y_range=Range1d(-200, 0), tools="pan,wheel_zoom,reset",
                     toolbar_location="right", name="hierarchy_fig", min_border=4)
        fig.toolbar.active_scroll = None  # scrolling the page must not zoom the diagram
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        fig.multi_line("xs", "ys", source=self.hier_edges, line_color="#8a8a8a", line_width=1.3, line_alpha=0.8,
                       name="hierarchy_edges_r")
        fig.image_rgba(image="image", x="ix", y="iy", dw=TILE, dh=TILE, source=self.hier_nodes,
                       name="hierarchy_pictures")
        # the clickable node: a frame around picture + count, drawn over the picture
        nodes = fig.rect("x", "y", width="w", height="h", source=self.hier_nodes, fill_color="white",
                         fill_alpha=0.0, line_color="color", line_width="lw",
                         selection_fill_alpha=0.0, selection_line_width=3.5, selection_line_color="#d62728",
                         nonselection_fill_alpha=0.0, nonselection_line_alpha=0.6, name="hierarchy_node_r")
        fig.add_layout(LabelSet(x="lx", y="ly", text="text", source=self.hier_nodes, text_font_size="9pt",
                                text_align="center", text_baseline="bottom", text_color="#222222",
                                name="hierarchy_counts"))
        fig.text("x", "y", text="text", source=self.hier_levels, text_font_size="9pt", text_align="left",
                 text_baseline="middle", text_color="#333333", text_font_style="bold", name="hierarchy_level_labels")
        # over the faded diagram while the new motifs' hierarchy is built (drawn on the canvas: showing it
        # changes no size on the page)
        self.hierarchy_pending_note = Label(
            x=4, y=-4, text="updating for the new motifs…", visible=False, text_baseline="top",  # top left
            text_font_size="11pt", text_font_style="italic", text_color="#333333", background_fill_color="white",
            background_fill_alpha=0.85, name="hierarchy_pending_note")
        fig.add_layout(self.hierarchy_pending_note)
        fig.add_tools(TapTool(renderers=[nodes]),
                      HoverTool(renderers=[nodes], tooltips=(
                          '<div style="max-width:320px"><b>@title</b><br>@made_of{safe}</div>')))
        self._link_tap(self.hier_nodes, "id", "hnode", "hcell")
        # the notebook twin of the browser-side click (no-op in a standalone page: no kernel)
        self.hier_nodes.selected.on_change("indices", self._hierarchy_tapped)
        self.hierarchy_caption = Div(text=CAPTION, width=w + 40, name="hierarchy_caption",
                                     styles={"font-size": "12px", "color": "#333", "line-height": "1.35"})
        self.hierarchy_fig = fig
        self.hierarchy = column(fig, self.hierarchy_caption, name="hierarchy_panel")

    def _set_hierarchy(self, hierarchy, mot, an=None):
        """Replace the diagram's data (the figure is kept: updated in place).

        Parameters
        ----------
        hierarchy : motiflab.hierarchy.Hierarchy or str or None
            The hierarchy, or why there is none (then one node per motif).
        mot : motiflab.motifs.Motifs
            The motifs (labels, colours, class averages).
        an : motiflab.Analysis, optional
            For the image and positions the pictures are cut from; without it
            the pictures show the cell outlines only.
        """
        from motiflab.hierarchy import Hierarchy

        self.hier_nodes.selected.indices = []
        if isinstance(hierarchy, HierarchyPending):
            self._fade_hierarchy(True)
            self._hier = None
            return
        self._fade_hierarchy(False)
        if isinstance(hierarchy, Hierarchy):
            image = positions = None
            if an is not None:
                image, positions = np.asarray(an.image), np.asarray(an.positions, dtype=np.float64)
            nodes, edges, title, levels, size = _diagram(hierarchy, mot, image, positions)
            self.hierarchy_caption.text = CAPTION
            self._hier = hierarchy
        else:
            nodes, edges, levels, size = _motif_diagram(mot)
            why = f" ({hierarchy})" if isinstance(hierarchy, str) and hierarchy else ""
            title = f"Motifs{why}"
            self.hierarchy_caption.text = CAPTION_NO_HIERARCHY
            self._hier = None
        self._hier_labels = np.asarray(mot.labels, dtype=np.int64)
        self.hier_nodes.data = nodes
        self.hier_edges.data = edges
        self.hier_levels.data = levels
        fig = self.hierarchy_fig
        fig.title.text = title
        w, h = size
        fig.frame_width, fig.frame_height = int(w), int(h)
        fig.x_range.start, fig.x_range.end = 0, w
        fig.y_range.start, fig.y_range.end = -h, 0
        fig.x_range.reset_start, fig.x_range.reset_end = 0, w
        fig.y_range.reset_start, fig.y_range.reset_end = -h, 0
        self.hierarchy_caption.width = int(w) + 40

    def _fade_hierarchy(self, faded):
        """Draw the diagram faded or not (repaints only: nothing that changes the page's layout)."""
        for r in self.hierarchy_fig.renderers:
            r.muted = bool(faded)  # each glyph's muted twin is drawn at alpha 0.2
        for a in self.hierarchy_fig.center:
            if getattr(a, "name", None) == "hierarchy_counts":
                a.text_alpha = 0.2 if faded else 1.0
        self.hierarchy_pending_note.visible = bool(faded)

    def hierarchy_occurrences(self, node_id):
        """Columns (indices into ``source``) a click on node ``node_id`` selects.

        The Python twin of the browser-side click: every column whose
        component (``hnode``) or own cell (``hcell``) is that motif-cell.
        """
        d = self.source.data
        a = np.asarray(d["hnode"], dtype=np.int64)
        b = np.asarray(d["hcell"], dtype=np.int64)
        return np.flatnonzero((a == int(node_id)) | (b == int(node_id)))

    def _hierarchy_tapped(self, attr, old, new):
        if not new:
            return
        ids = np.asarray(self.hier_nodes.data["id"], dtype=np.int64)[np.asarray(new, dtype=np.int64)]
        sel = np.unique(np.concatenate([self.hierarchy_occurrences(i) for i in ids]))
        if sorted(self.source.selected.indices) != sel.tolist():
            self.source.selected.indices = sel.tolist()


# ------------------------------------------------------------------------------ per-column keys
def hierarchy_columns(hierarchy, labels):
    """Per column: the hierarchy node of its component and of its own cell (motif label as fallback).

    int32, as the page holds them (int64 doubled the bytes sent with every new set of motifs).
    """
    from motiflab.hierarchy import Hierarchy

    if isinstance(hierarchy, HierarchyPending):  # no node to click: nothing maps to the faded diagram
        return np.full(len(labels), -2, np.int32), np.full(len(labels), -2, np.int32)
    if isinstance(hierarchy, Hierarchy) and len(hierarchy.column_cell) == len(labels):
        hnode = hierarchy.column_motif_cell()
        hcell = np.full(len(labels), -1, np.int32)
        ok = hierarchy.column_cell >= 0
        hcell[ok] = np.asarray(hierarchy.cell_node)[hierarchy.column_cell[ok]]
        return hnode.astype(np.int32), hcell
    return np.asarray(labels, np.int32).copy(), np.full(len(labels), -2, np.int32)


def node_occurrences(h, node_id):
    """Columns that belong to an occurrence of motif-cell ``node_id`` (what a click selects).

    Parameters
    ----------
    h : motiflab.hierarchy.Hierarchy
    node_id : int

    Returns
    -------
    ndarray of int
        Columns whose connected component is that motif-cell, or whose own
        cell has that (level-1) composition.
    """
    hnode, hcell = hierarchy_columns(h, np.zeros(len(h.column_cell), np.int64))
    return np.flatnonzero((hnode == int(node_id)) | (hcell == int(node_id)))


# ------------------------------------------------------------------------------ words
def _motif_name(label):
    return f"motif {label}"


def _made_of_html(composition, colors):
    """'made of: ■ motif 0 ×3, ■ motif 2 ×2' with each motif's colour."""
    parts = []
    for lab, n in composition:
        try:
            k = int(lab)
        except (TypeError, ValueError):
            k = -1
        col = colors[k] if 0 <= k < len(colors) else UNASSIGNED
        parts.append(f'<span style="color:{col};font-size:14px">&#9632;</span>&nbsp;'
                     f'{html.escape(_motif_name(lab))}&nbsp;&times;{int(n)}')
    return "made of: " + ", ".join(parts) if parts else "made of: no columns (an empty cell)"


def _level_name(level):
    return "level 1: single cells" if level == 1 else f"level {level}: {level} cells"


def _node_words(m):
    """(count label under the picture, hover title) of one motif-cell."""
    if m.level == 1:
        n = int(m.n_cells or m.count)
        label = f"{n} cell{'s' if n != 1 else ''}"
        kind = "host crystal cell" if m.dominant else "single cell"
        alone = "" if m.dominant else f" ({int(m.count)} alone, the rest inside bigger motif-cells)"
        title = f"motif-cell {m.id} · level 1 ({kind}) · found in {n} cells{alone}"
    else:
        label = f"found {int(m.count)}×"
        title = f"motif-cell {m.id} · level {m.level} ({m.level} cells) · found {int(m.count)} times"
    return label, title


# ------------------------------------------------------------------------------ which nodes, where
def _shown_nodes(h, max_per_level=MAX_PER_LEVEL, max_levels=MAX_LEVELS):
    """The drawn motif-cells by level, and how many of each level are hidden.

    Returns
    -------
    rows : dict level -> list of MotifCell (host first, then by frequency)
    hidden : dict level -> int
    hidden_levels : list of int
        Levels not drawn at all.
    """
    by_level: dict = {}
    for m in h.motif_cells:
        by_level.setdefault(int(m.level), []).append(m)
    levels = sorted(by_level)
    rows, hidden = {}, {}
    for lev in levels[:max_levels]:
        ms = sorted(by_level[lev], key=lambda m: (not m.dominant, -max(int(m.count), 0), -int(m.n_cells), m.id))
        rows[lev] = ms[:max_per_level]
        hidden[lev] = len(ms) - len(rows[lev])
    return rows, hidden, levels[max_levels:]


def _node_box(x, y):
    """(picture corner x, y, count-label x, y) of a node centred at (x, y)."""
    h = TILE + LABEL_H
    return x - TILE / 2.0, y - h / 2.0 + LABEL_H, x, y - h / 2.0 + 1


def _diagram(h, mot, image, positions, max_per_level=MAX_PER_LEVEL, max_levels=MAX_LEVELS):
    """Node, edge and row-label data of a hierarchy, its title and the frame size (px)."""
    rows, hidden, hidden_levels = _shown_nodes(h, max_per_level, max_levels)
    shown = {m.id: m for ms in rows.values() for m in ms}
    edges = [(int(a), int(b)) for a, b in h.edges if a in shown and b in shown]
    rows_of, chains = layers(rows, edges)
    order = order_rows(rows_of, chains, dominant={m.id for m in shown.values() if m.dominant})
    pos, (w, hgt) = place_rows(order)
    pics = NodePictures(h, mot, image, positions)
    colors = motif_colors(max(mot.n_motifs, 1))
    nodes = {k: [] for k in _EMPTY_NODES}
    for lev in sorted(order):
        for i in order[lev]:
            if isinstance(i, tuple):  # a dummy: where a long edge crosses this row
                continue
            m = shown[i]
            x, y = pos[i]
            ix, iy, lx, ly = _node_box(x, y)
            label, title = _node_words(m)
            nodes["x"].append(x)
            nodes["y"].append(y)
            nodes["w"].append(float(TILE))
            nodes["h"].append(float(TILE + LABEL_H))
            nodes["image"].append(pics.picture(m))
            nodes["ix"].append(ix)
            nodes["iy"].append(iy)
            nodes["lx"].append(lx)
            nodes["ly"].append(ly)
            nodes["text"].append(label)
            nodes["id"].append(int(m.id))
            nodes["level"].append(int(m.level))
            nodes["count"].append(int(m.count))
            nodes["n_cells"].append(int(m.n_cells))
            nodes["color"].append("#111111" if m.dominant else "#9a9a9a")
            nodes["lw"].append(3.0 if m.dominant else 1.5)
            nodes["title"].append(title)
            nodes["made_of"].append(_made_of_html(m.composition, colors))
    half = (TILE + LABEL_H) / 2.0
    xs, ys = [], []
    for chain in chains:  # from the bottom of the smaller motif-cell (above) to the top of the bigger one
        ex, ey = [], []
        for j, k in enumerate(chain):
            x, y = pos[k]
            if j > 0:             # enter a row at its top ...
                ex.append(x)
                ey.append(y + half)
            if j < len(chain) - 1:  # ... and leave it at its bottom (a dummy runs straight down the row)
                ex.append(x)
                ey.append(y - half)
        xs.append(ex)
        ys.append(ey)
    lv = dict(x=[], y=[], text=[])
    for lev in sorted(order):
        y = pos[order[lev][0]][1]
        more = f"\n+{hidden[lev]} more not shown" if hidden[lev] else ""
        if any(shown[k].dominant for k in order[lev] if not isinstance(k, tuple)):
            more = "\n(first, framed: the host\ncrystal's own cell)" + more
        lv["x"].append(PAD)
        lv["y"].append(y)
        lv["text"].append(_level_name(lev) + more)
    n_all = len(h.motif_cells)
    title = f"Motif-cell hierarchy: {n_all} motif-cells, {len(shown)} shown"
    if hidden_levels:
        title += f" (levels {hidden_levels[0]}–{hidden_levels[-1]} not drawn)"
    return nodes, dict(xs=xs, ys=ys), title, lv, (max(w, 240), max(hgt, 120))


def hierarchy_diagram(h, mot=None, image=None, positions=None, max_per_level=MAX_PER_LEVEL, max_levels=MAX_LEVELS):
    """Node/edge data of the hierarchy diagram, and its title.

    Parameters
    ----------
    h : motiflab.hierarchy.Hierarchy
    mot : motiflab.motifs.Motifs, optional
        For the motif colours of the columns (default: colours by label).
    image, positions : ndarray, optional
        The micrograph and column positions the pictures are cut from.
    max_per_level, max_levels : int
        How many nodes per level and levels are drawn.

    Returns
    -------
    nodes : dict
        ``hier_nodes`` columns (one row per drawn motif-cell).
    edges : dict
        ``xs``, ``ys`` of the containment edges between drawn nodes.
    title : str
    """
    if mot is None:
        from types import SimpleNamespace

        labels = np.zeros(len(h.column_cell), np.int64)
        n = len(h.label_names)
        mot = SimpleNamespace(labels=labels, n_motifs=n)
    nodes, edges, title, _, _ = _diagram(h, mot, image, positions, max_per_level, max_levels)
    return nodes, edges, title


def _motif_diagram(mot):
    """Fallback (no hierarchy): one node per motif, its class average as the picture."""
    k = int(mot.n_motifs)
    colors = motif_colors(max(k, 1))
    ncol = max(1, min(k, MAX_PER_LEVEL + 2))
    nrow = max(1, int(np.ceil(k / ncol)))
    pitch_x, pitch_y = TILE + GAP_X, TILE + LABEL_H + GAP_Y
    nodes = {c: [] for c in _EMPTY_NODES}
    for i in range(k):
        r, c = divmod(i, ncol)
        x = MARGIN_L + PAD + pitch_x * (c + 0.5)
        y = -(PAD + pitch_y * (r + 0.5))
        ix, iy, lx, ly = _node_box(x, y)
        a = np.asarray(mot.class_averages[i], dtype=np.float32)
        P = a.shape[0]
        frame = tuple(int(colors[i][j:j + 2], 16) for j in (1, 3, 5)) + (255,)
        nodes["x"].append(x)
        nodes["y"].append(y)
        nodes["w"].append(float(TILE))
        nodes["h"].append(float(TILE + LABEL_H))
        nodes["image"].append(render(a, (0, 0, P), [], [], frame))
        nodes["ix"].append(ix)
        nodes["iy"].append(iy)
        nodes["lx"].append(lx)
        nodes["ly"].append(ly)
        nodes["text"].append(f"{int(mot.counts[i])} columns")
        nodes["id"].append(i)
        nodes["level"].append(1)
        nodes["count"].append(int(mot.counts[i]))
        nodes["n_cells"].append(0)
        nodes["color"].append(colors[i])
        nodes["lw"].append(2.0)
        nodes["title"].append(f"motif {i} · {int(mot.counts[i])} columns")
        nodes["made_of"].append("its class average (the mean of its patches)")
    lv = dict(x=[PAD], y=[-(PAD + pitch_y / 2.0)], text=["motifs"]) if k else dict(x=[], y=[], text=[])
    size = (max(240, MARGIN_L + 2 * PAD + ncol * pitch_x), max(120, 2 * PAD + nrow * pitch_y))
    return nodes, dict(xs=[], ys=[]), lv, size


def motif_nodes(mot):
    """Node/edge data of the fallback diagram: one node per motif (class-average picture, count)."""
    nodes, edges, _, _ = _motif_diagram(mot)
    return nodes, edges
