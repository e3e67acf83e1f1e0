"""The square-motif view (widgets/_assembly_view.py): pictures, entropy panels, caption, standalone HTML."""
import numpy as np
import pytest

pytest.importorskip("bokeh")

from motiflab.assembly import encode  # noqa: E402
from motiflab.assembly_report import assembly_report  # noqa: E402
from motiflab.colors import motif_colors  # noqa: E402
from motiflab.errors import MotifLabError  # noqa: E402
from motiflab.widgets import assembly_view  # noqa: E402


@pytest.fixture(scope="module")
def report():
    g = np.random.default_rng(0).choice(2, size=(32, 32), p=[0.6, 0.4])
    return assembly_report(g, states=["empty", "filled"], nulls=("shuffled", "random", "blocks"), n_repeats=8,
                           top=6)


def by_name(layout, name):
    found = list(layout.select({"name": name}))
    assert len(found) == 1, (name, len(found))
    return found[0]


def test_pictures_counts_and_colours(report):
    v = assembly_view(report)
    assert v.name == "assembly_view"
    tiles = by_name(v, "assembly_tiles").data
    units = by_name(v, "assembly_units").data
    n2, n3 = len(report.level(2).top), len(report.level(3).top)
    assert (n2, n3) == (6, 6)
    assert len(tiles["x"]) == n2 + n3
    assert len(units["x"]) == 4 * n2 + 16 * n3  # one coloured square per unit of every picture
    # the unit squares of each picture spell its block, in the state colours
    colors = motif_colors(2)
    first = report.level(2).top[0]
    assert units["color"][:4] == [colors[int(s)] for s in first.block.ravel()]
    assert tiles["text"][0] == f"{100 * first.fraction:.1f} %" and tiles["text2"][0] == f"({first.count:,})"
    assert tiles["code"][n2] == str(report.level(3).top[0].code)  # level-3 codes as text: beyond 2**53
    # the covering set for half of the windows is framed in black
    k50 = report.level(2).cover[0.5][0]
    assert tiles["line_color"][:n2] == ["#111111"] * min(k50, n2) + ["#9a9a9a"] * (n2 - min(k50, n2))
    # a level-3 picture shows its four level-2 squares: one cross each
    assert len(by_name(v, "assembly_quadrants").data["xs"]) == 2 * n3
    labels = by_name(v, "assembly_rows").data["text"]
    assert labels[0].startswith("level 2: 2 × 2 units") and labels[1].startswith("level 3: 4 × 4 units")


def test_entropy_panels_show_sample_and_every_null(report):
    v = assembly_view(report)
    for lev, kinds in ((2, ["shuffled units", "random units"]), (3, ["shuffled units", "random units",
                                                                      "shuffled 2×2 blocks"])):
        fig = by_name(v, f"assembly_entropy_{lev}")
        assert "configurational entropy (bits)" in fig.xaxis[0].axis_label
        assert fig.title.text.startswith(f"Level {lev}")
        assert list(fig.yaxis[0].major_label_overrides.values()) == ["this sample"] + kinds
        bars = by_name(v, f"assembly_nulls_{lev}").data
        assert bars["label"] == kinds
        assert len(by_name(v, f"assembly_null_samples_{lev}").data["x"]) == 8 * len(kinds)
        lr = report.level(lev)
        x0, x1 = fig.x_range.start, fig.x_range.end
        assert x0 < lr.entropy_bits < x1 and all(x0 < m < x1 for m in bars["mean"])
    caption = by_name(v, "assembly_caption").text
    assert "How to read this view" in caption and "diamond" in caption and "scrambled" in caption
    verdicts = by_name(v, "assembly_verdicts").text
    assert "Level 2" in verdicts and "for shuffled units" in verdicts


def test_standalone_html_is_offline_and_text_display_without_kernel(report):
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    v = assembly_view(report)
    page = file_html(v, INLINE, "assembly")
    assert "cdn.bokeh.org" not in page and "assembly_motifs" in page
    bundle = v._repr_mimebundle_()  # no IPython kernel here: the words only
    assert bundle["text/plain"] == report.summary()
    assert "application/vnd.jupyter.widget-view+json" not in bundle


def test_grid_input_and_options():
    ordered = np.tile(np.array([[0, 1], [1, 1]]), (6, 6))
    v = assembly_view(ordered, states=["a", "b"], windows="disjoint", colors=["#000000", "#ffffff"], n_repeats=4)
    rep = v._motiflab_report
    assert rep.level(2).top[0].code == encode(np.array([[0, 1], [1, 1]]), 2)
    assert set(by_name(v, "assembly_units").data["color"]) <= {"#000000", "#ffffff"}
    assert "ordered beyond chance" in by_name(v, "assembly_entropy_2").title.text
    header = by_name(v, "assembly_header").text
    assert "a (36 units)" in header and "b (108 units)" in header
    with pytest.raises(MotifLabError, match="one per state"):
        assembly_view(ordered, colors=["#000000"], n_repeats=4)
    with pytest.raises(MotifLabError, match="only 'state 0' units"):
        assembly_view(np.zeros((6, 6), int))
    v2 = assembly_view(ordered, levels=(2,), n_repeats=3)
    assert not list(v2.select({"name": "assembly_entropy_3"}))
