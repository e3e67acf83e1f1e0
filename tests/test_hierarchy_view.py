"""The hierarchy diagram (widgets/_hierarchy_view.py): pictures, counts, no overlaps, click → occurrences."""
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("bokeh")

from motiflab.widgets import _hierarchy_view as HV  # noqa: E402
from motiflab.widgets._hierarchy_view import HierarchyView, hierarchy_columns, node_occurrences  # noqa: E402
from motiflab.widgets._selection import JS_SELECT_BY_KEY, SelectionViews  # noqa: E402


class Host(HierarchyView, SelectionViews):
    """The two mixins the diagram needs, without the rest of ExplorerViews (kept independent of it)."""

    def __init__(self, n_columns=0, width=520):
        from bokeh.models import ColumnDataSource

        self.width = width
        self.source = ColumnDataSource(dict(hnode=np.zeros(n_columns, np.int64), hcell=np.zeros(n_columns, np.int64)),
                                       name="columns")
        self._build_hierarchy()

    def show(self, hierarchy, mot, an=None):
        hnode, hcell = hierarchy_columns(hierarchy, np.asarray(mot.labels))
        self.source.data = dict(hnode=hnode, hcell=hcell)
        self._set_hierarchy(hierarchy, mot, an)


@pytest.fixture(scope="module")
def sample():
    import motiflab

    an = motiflab.Analysis(motiflab.datasets.load_sample().to_signal()).run()
    assert isinstance(an.hierarchy, motiflab.hierarchy.Hierarchy)
    return an


@pytest.fixture(scope="module")
def many():
    """A 200 × 200-cell lattice with 20 % of the columns relabelled at random: ~700 motif-cells."""
    from motiflab.hierarchy import build_hierarchy
    from motiflab.lattice import Lattice

    n, a = 200, 10.0
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pos = np.column_stack([ii.ravel() * a + a / 2, jj.ravel() * a + a / 2])
    rng = np.random.default_rng(1)
    labels = np.where(rng.random(len(pos)) < 0.2, rng.integers(1, 9, len(pos)), 0)
    lat = Lattice(u=np.array([a, 0.0]), v=np.array([0.0, a]), origin=np.zeros(2), basis=np.array([[0.5, 0.5]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = build_hierarchy(pos, labels, lattice=lat)
    img = (rng.normal(size=(n * int(a), n * int(a))) + 1.0).astype(np.float32)
    an = SimpleNamespace(image=img, positions=pos)
    mot = SimpleNamespace(labels=labels, n_motifs=9)
    return h, mot, an


def _boxes(nodes):
    x, y = np.asarray(nodes["x"], float), np.asarray(nodes["y"], float)
    w, h = np.asarray(nodes["w"], float), np.asarray(nodes["h"], float)
    return np.column_stack([x - w / 2, x + w / 2, y - h / 2, y + h / 2])


def assert_readable(v):
    """Node boxes pairwise disjoint, inside the frame, right of the row labels; labels fit their box."""
    nodes = v.hier_nodes.data
    b = _boxes(nodes)
    n = len(b)
    assert n >= 1
    for i in range(n):
        for j in range(i + 1, n):
            apart = b[i, 1] <= b[j, 0] or b[j, 1] <= b[i, 0] or b[i, 3] <= b[j, 2] or b[j, 3] <= b[i, 2]
            assert apart, f"nodes {nodes['id'][i]} and {nodes['id'][j]} overlap: {b[i]} {b[j]}"
    fig = v.hierarchy_fig
    assert b[:, 0].min() >= HV.MARGIN_L and b[:, 1].max() <= fig.x_range.end
    assert b[:, 2].min() >= fig.y_range.start and b[:, 3].max() <= 0
    # data units are screen pixels (frame size = range), so pictures are square on screen
    assert fig.frame_width == fig.x_range.end - fig.x_range.start
    assert fig.frame_height == fig.y_range.end - fig.y_range.start
    for i in range(n):  # the count label sits inside its node and is not wider than the node's slot
        assert b[i, 0] <= nodes["lx"][i] <= b[i, 1] and b[i, 2] <= nodes["ly"][i] <= b[i, 3]
        assert len(nodes["text"][i]) * 6.5 <= HV.TILE + HV.GAP_X, nodes["text"][i]
    lv = v.hier_levels.data
    assert all(x < HV.MARGIN_L for x in lv["x"])


def assert_pictures(v):
    nodes = v.hier_nodes.data
    for img, text, count in zip(nodes["image"], nodes["text"], nodes["count"]):
        img = np.asarray(img)
        assert img.shape == (HV.TILE, HV.TILE) and img.dtype == np.uint32
        rgba = img.view(np.uint8).reshape(HV.TILE, HV.TILE, 4)
        assert (rgba[..., 3] == 255).all()
        assert rgba[..., :3].std() > 5, "a picture is blank"
        assert any(ch.isdigit() for ch in text) and isinstance(count, int)


def test_sample_diagram_pictures_counts_and_no_overlap(sample):
    h, mot = sample.hierarchy, sample.motifs
    v = Host(len(sample.positions))
    v.show(h, mot, sample)
    assert_readable(v)
    assert_pictures(v)
    nodes = v.hier_nodes.data
    assert nodes["id"][0] == h.host.id and nodes["lw"][0] > 1.5      # host first, framed
    assert "cells" in nodes["text"][0]
    # every drawn motif-cell row is labelled in words
    assert v.hier_levels.data["text"][0].startswith("level 1: single cells")
    assert "motif-cell" in v.hierarchy_fig.title.text
    # levels read top to bottom (level 1 at the top, as in the paper's Fig. 2D)
    ys = {lev: y for lev, y in zip(nodes["level"], nodes["y"])}
    assert [ys[k] for k in sorted(ys)] == sorted(ys.values(), reverse=True)


def test_edges_mean_contains_and_run_between_rows(sample):
    h = sample.hierarchy
    v = Host(len(sample.positions))
    v.show(h, sample.motifs, sample)
    nodes = v.hier_nodes.data
    shown = set(nodes["id"])
    want = [(a, b) for a, b in h.edges if a in shown and b in shown]
    assert len(v.hier_edges.data["xs"]) == len(want) > 0
    b = _boxes(nodes)
    for xs, ys in zip(v.hier_edges.data["xs"], v.hier_edges.data["ys"]):
        # every vertex of an edge lies in a gap between rows, never inside a picture
        for x, y in zip(xs, ys):
            inside = (b[:, 0] < x) & (x < b[:, 1]) & (b[:, 2] < y) & (y < b[:, 3])
            assert not inside.any()


def test_hover_is_plain_language_with_motif_colours(sample):
    from motiflab.colors import motif_colors

    v = Host(len(sample.positions))
    v.show(sample.hierarchy, sample.motifs, sample)
    nodes = v.hier_nodes.data
    cols = motif_colors(sample.motifs.n_motifs)
    for i, m_id in enumerate(nodes["id"]):
        m = sample.hierarchy.node(m_id)
        assert nodes["title"][i].startswith(f"motif-cell {m_id} · level {m.level}")
        assert "found" in nodes["title"][i]
        made = nodes["made_of"][i]
        assert made.startswith("made of: ")
        for lab, n in m.composition:
            assert f"motif {lab}&nbsp;&times;{n}" in made and cols[int(lab)] in made


def test_clicking_a_node_selects_exactly_its_occurrences(sample):
    h = sample.hierarchy
    v = Host(len(sample.positions))
    v.show(h, sample.motifs, sample)
    # the browser-side link is wired to the node ids and both per-column keys
    cbs = v.hier_nodes.selected.js_property_callbacks["change:indices"]
    assert any(cb.code == JS_SELECT_BY_KEY and cb.args["key_col"] == "id" and cb.args["col_a"] == "hnode"
               and cb.args["col_b"] == "hcell" for cb in cbs)
    cell_of_column = {}
    ok = h.column_cell >= 0
    for c in np.flatnonzero(ok):
        cell_of_column[c] = tuple(int(t) for t in h.cells[h.column_cell[c]])
    for j, node in enumerate(v.hier_nodes.data["id"]):
        v.source.selected.indices = []
        v.hier_nodes.selected.indices = [j]
        got = sorted(v.source.selected.indices)
        m = h.node(node)
        # the truth from the hierarchy itself: cells of its occurrences, and cells with its composition
        cells = {tuple(c) for loc in m.locations for c in loc["cells"]}
        cells |= {tuple(int(t) for t in h.cells[r]) for r in np.flatnonzero(np.asarray(h.cell_node) == node)}
        want = sorted(c for c, ij in cell_of_column.items() if ij in cells)
        assert got == want == node_occurrences(h, node).tolist(), f"node {node}"
        assert len(got) > 0


def test_many_motif_cells_top_n_per_level_fast_and_disjoint(many):
    h, mot, an = many
    assert len(h.motif_cells) > 500
    v = Host(len(an.positions))
    t = time.perf_counter()
    v.show(h, mot, an)
    dt = time.perf_counter() - t
    assert dt < 5.0, f"diagram of {len(h.motif_cells)} motif-cells took {dt:.2f} s"
    assert_readable(v)
    assert_pictures(v)
    nodes = v.hier_nodes.data
    per_level = np.bincount(nodes["level"])
    assert per_level.max() <= HV.MAX_PER_LEVEL
    assert len(set(nodes["level"])) <= HV.MAX_LEVELS
    # what is hidden is said: per row, and the levels not drawn in the title
    assert any("more not shown" in t for t in v.hier_levels.data["text"])
    assert f"{len(h.motif_cells)} motif-cells, {len(nodes['id'])} shown" in v.hierarchy_fig.title.text
    # the drawn ones are the most frequent of their level
    for lev in set(nodes["level"]):
        drawn = [h.node(i) for i, L in zip(nodes["id"], nodes["level"]) if L == lev]
        rest = [m for m in h.motif_cells if m.level == lev and m.id not in set(nodes["id"])]
        if rest and not any(m.dominant for m in drawn):
            assert min(m.count for m in drawn) >= max(m.count for m in rest)


def test_no_hierarchy_shows_one_picture_per_motif(sample):
    mot = sample.motifs
    v = Host(len(sample.positions))
    v.show("no hierarchy: no lattice", mot)
    assert_readable(v)
    assert_pictures(v)
    nodes = v.hier_nodes.data
    assert nodes["id"] == list(range(mot.n_motifs))
    assert nodes["count"] == [int(c) for c in mot.counts]
    assert v.hier_edges.data["xs"] == []
    assert "no lattice" in v.hierarchy_fig.title.text
    assert "No motif-cell hierarchy" in v.hierarchy_caption.text
    v.hier_nodes.selected.indices = [1]
    assert sorted(v.source.selected.indices) == np.flatnonzero(np.asarray(mot.labels) == 1).tolist()


def test_caption_says_how_to_read_and_to_click(sample):
    v = Host(len(sample.positions))
    v.show(sample.hierarchy, sample.motifs, sample)
    cap = v.hierarchy_caption.text
    assert "How to read" in cap and "Click a picture" in cap and "micrograph" in cap
    assert v.hierarchy_caption in v.hierarchy.children and v.hierarchy_fig in v.hierarchy.children


def test_updates_in_place(sample, many):
    v = Host(len(sample.positions))
    objs = (v.hierarchy, v.hierarchy_fig, v.hier_nodes, v.hier_edges, v.hier_levels, v.hierarchy_caption)
    v.show(sample.hierarchy, sample.motifs, sample)
    n1 = len(v.hier_nodes.data["id"])
    h, mot, an = many
    v.show(h, mot, an)
    v.show("no hierarchy", sample.motifs)
    v.show(sample.hierarchy, sample.motifs, sample)
    assert (v.hierarchy, v.hierarchy_fig, v.hier_nodes, v.hier_edges, v.hier_levels, v.hierarchy_caption) == objs
    assert len(v.hier_nodes.data["id"]) == n1


def test_without_the_image_pictures_are_the_cell_outlines(sample):
    v = Host(len(sample.positions))
    v.show(sample.hierarchy, sample.motifs)  # no analysis: nothing to cut pictures from
    assert_readable(v)
    assert_pictures(v)


def test_report_views_draw_the_diagram(sample):
    """Through ExplorerViews.update, as the report and the explorer call it."""
    from motiflab.widgets.report import build_report

    v = build_report(sample)
    assert v.hierarchy_fig.name == "hierarchy_fig" and v.hier_nodes.name == "hierarchy_nodes"
    assert len(v.hier_nodes.data["id"]) >= 10
    assert_readable(v)
    assert_pictures(v)
    j = v.hier_nodes.data["id"].index(2)
    v.hier_nodes.selected.indices = [j]
    assert sorted(v.source.selected.indices) == node_occurrences(sample.hierarchy, 2).tolist()
