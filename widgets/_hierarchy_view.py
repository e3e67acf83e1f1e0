"""The motif-cell hierarchy diagram of :class:`~motiflab.widgets.views.ExplorerViews`.

One row of nodes per level (level 1 at the bottom, the host first); clicking a
node selects every occurrence of that motif-cell. Without a hierarchy the
diagram shows one node per motif.
"""
from __future__ import annotations

import numpy as np

from ._motif_views import motif_palette

__all__ = ["HierarchyView", "hierarchy_columns", "hierarchy_diagram", "motif_nodes"]


class HierarchyView:
    """Mixin of :class:`~motiflab.widgets.views.ExplorerViews` building the hierarchy diagram.

    Uses the host's ``width`` and ``_link_tap``; sets ``hierarchy`` (the figure),
    ``hier_nodes`` and ``hier_edges``.
    """

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

    def _set_hierarchy(self, hierarchy, mot):
        from motiflab.hierarchy import Hierarchy

        self.hier_nodes.selected.indices = []
        if isinstance(hierarchy, Hierarchy):
            nodes, edges, title = hierarchy_diagram(hierarchy)
        else:
            nodes, edges = motif_nodes(mot)
            why = f" ({hierarchy})" if isinstance(hierarchy, str) and hierarchy else ""
            title = f"Motif counts{why}; click a node"
        self.hier_nodes.data = nodes
        self.hier_edges.data = edges
        self.hierarchy.title.text = title


def hierarchy_columns(hierarchy, labels):
    """Per column: the hierarchy node of its component and of its own cell (motif label as fallback)."""
    from motiflab.hierarchy import Hierarchy

    if isinstance(hierarchy, Hierarchy) and len(hierarchy.column_cell) == len(labels):
        hnode = hierarchy.column_motif_cell()
        hcell = np.full(len(labels), -1, np.int64)
        ok = hierarchy.column_cell >= 0
        hcell[ok] = np.asarray(hierarchy.cell_node)[hierarchy.column_cell[ok]]
        return hnode.astype(np.int64), hcell
    return np.asarray(labels, np.int64).copy(), np.full(len(labels), -2, np.int64)


def motif_nodes(mot):
    """Node/edge data of the fallback diagram: one node per motif, sized by its count."""
    k = mot.n_motifs
    counts = np.asarray(mot.counts, dtype=np.float64)
    size = (8 + 22 * np.sqrt(counts / counts.max())).tolist() if k else []
    nodes = dict(x=list(range(k)), y=[0.0] * k, size=size, color=motif_palette(k) if k else [],
                 text=[f"#{i}" for i in range(k)], id=list(range(k)), level=[1] * k,
                 count=[int(c) for c in mot.counts], composition=[f"motif {i}" for i in range(k)])
    return nodes, dict(xs=[], ys=[])


def hierarchy_diagram(h, max_nodes=30, max_labels_per_level=8):
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
