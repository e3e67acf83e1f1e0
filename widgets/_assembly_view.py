"""A view of a disordered sample's square motifs and their configurational entropy (paper, Fig. 4F-G).

Drawn in the language of the hierarchy diagram (:mod:`._hierarchy_view`): one
labelled row per level, each square motif as a *picture* -- its 2 x 2 (level 2)
or 4 x 4 (level 3) block of units as coloured squares, one colour per unit
state -- with its share of the windows under it, most frequent first. Motifs
framed in black together make up half of all windows (the covering set).

Below, one entropy panel per level: the sample's entropy (a black diamond and a
dashed line) against each null model (the entropy of every scrambled grid as a
grey dot, their mean ± one standard deviation as a bar), with the verdict in
words from :func:`motiflab.assembly_report.assembly_report`.

The science is all in :mod:`motiflab.assembly_report`; this module only draws.
Everything is plain Bokeh data, so the layout works in a standalone HTML file
(``bokeh.embed.file_html`` with ``bokeh.resources.INLINE``) and, displayed as a
cell's result, in JupyterLab through ``jupyter_bokeh`` like the explorer.
"""
from __future__ import annotations

import html

import numpy as np

from motiflab.colors import motif_colors, text_color

__all__ = ["assembly_view", "TILE", "CAPTION"]

#: side of a motif picture (screen px)
TILE = 64
_GAP_X, _GAP_Y, _LABEL_H, _MARGIN_L, _PAD = 22, 18, 34, 190, 10
#: colour of each null model's bar (observed is black)
_NULL_COLORS = {"shuffled": "#1f77b4", "random": "#ff7f0e", "blocks": "#2ca02c"}

CAPTION = (
    "<b>How to read this view.</b> Every unit of the sample (for example a pentagon that is empty or filled) is "
    "one small coloured square, in the colours of the legend above. <b>Top rows:</b> the most common ways in which "
    "units sit together &mdash; four units around a square (<i>level 2</i>, 2&nbsp;&times;&nbsp;2 units) and four "
    "such squares around a larger square (<i>level 3</i>, 4&nbsp;&times;&nbsp;4 units) &mdash; most common first. "
    "The number under a picture is the share of all squares (or blocks) that look exactly like it. The pictures "
    "framed in black together make up half of them: few framed pictures mean a few arrangements dominate. "
    "<b>Bottom panels:</b> <i>entropy</i> measures how varied the arrangements are: 0 bits if every square looks "
    "the same, more bits the more different arrangements occur with similar frequency. The black diamond and "
    "dashed line are this sample. Each grey dot is the same measurement on a scrambled copy of the sample "
    "(shuffled units: the same units moved to random places; random units: each unit's kind decided by a coin "
    "toss; shuffled 2&times;2 blocks: the same squares moved to random places), and the coloured bar spans their "
    "average &plusmn; one standard deviation. <b>A diamond well to the left of a bar</b> means the units prefer "
    "some arrangements: order that chance does not produce. A diamond on the bar means the arrangement is as "
    "random as the scrambled copies."
)


def _tile_words(entry, level, rank, n_windows, in_cover, states):
    """(label under the picture, hover text) of one motif."""
    word = "squares" if level == 2 else "blocks"
    label = (f"{100 * entry.fraction:.1f} %", f"({entry.count:,})")
    rows = " / ".join(" ".join(states[int(s)] for s in r) for r in entry.block) if level == 2 else ""
    title = (f"level-{level} motif #{rank + 1} (code {entry.code}): {entry.count:,} of {n_windows:,} {word} "
             f"({100 * entry.fraction:.1f} %)")
    if rows:
        title += f" · rows: {rows}"
    if in_cover:
        title += " · in the set making up half of all " + word
    return label, title


def _level_label(lr):
    side = "2 × 2" if lr.level == 2 else "4 × 4"
    word = "squares" if lr.level == 2 else "blocks"
    lines = [f"level {lr.level}: {side} units", f"{lr.n_windows:,} {word}, {lr.n_observed:,} of",
             f"{lr.n_possible:,} motifs seen"]
    for f, (k, _) in sorted(lr.cover.items()):
        lines.append(f"{k:,} make up {100 * f:.0f} %")
    if lr.n_hidden:
        lines.append(f"(+{lr.n_hidden:,} not shown)")
    return "\n".join(lines)


def _motif_data(report, colors):
    """Unit squares, picture frames and row labels of the motif rows, and the frame size (px)."""
    units = dict(x=[], y=[], size=[], color=[], state=[])
    tiles = dict(x=[], y=[], w=[], h=[], lx=[], ly=[], ly2=[], text=[], text2=[], title=[], level=[], rank=[],
                 code=[], count=[],
                 fraction=[], line_color=[], line_width=[])
    rows = dict(x=[], y=[], text=[])
    quads = dict(xs=[], ys=[])  # a level-3 block is four level-2 squares: a thin cross shows where they meet
    pitch_x, pitch_y = TILE + _GAP_X, TILE + _LABEL_H + _GAP_Y
    n_cols = 1
    for r, lev in enumerate(sorted(report.levels)):
        lr = report.levels[lev]
        top_y = -(_PAD + r * pitch_y)
        half = min((k for f, (k, _) in lr.cover.items() if f >= 0.5), default=0)
        n_cols = max(n_cols, len(lr.top))
        for i, e in enumerate(lr.top):
            x0 = _MARGIN_L + i * pitch_x
            side = e.block.shape[0]
            cell = TILE / side
            for a in range(side):
                for b in range(side):
                    s = int(e.block[a, b])
                    units["x"].append(x0 + (b + 0.5) * cell)
                    units["y"].append(top_y - (a + 0.5) * cell)
                    units["size"].append(cell)
                    units["color"].append(colors[s])
                    units["state"].append(report.states[s])
            if side == 4:
                xm, ym = x0 + TILE / 2, top_y - TILE / 2
                quads["xs"] += [[xm, xm], [x0, x0 + TILE]]
                quads["ys"] += [[top_y, top_y - TILE], [ym, ym]]
            in_cover = i < half
            label, title = _tile_words(e, lev, i, lr.n_windows, in_cover, report.states)
            tiles["x"].append(x0 + TILE / 2)
            tiles["y"].append(top_y - TILE / 2)
            tiles["w"].append(float(TILE))
            tiles["h"].append(float(TILE))
            tiles["lx"].append(x0 + TILE / 2)
            tiles["ly"].append(top_y - TILE - 3)
            tiles["ly2"].append(top_y - TILE - 3 - _LABEL_H / 2)
            tiles["text"].append(label[0])
            tiles["text2"].append(label[1])
            tiles["title"].append(title)
            tiles["level"].append(lev)
            tiles["rank"].append(i + 1)
            tiles["code"].append(str(e.code))  # level-3 codes exceed JavaScript's exact integers
            tiles["count"].append(e.count)
            tiles["fraction"].append(e.fraction)
            tiles["line_color"].append("#111111" if in_cover else "#9a9a9a")
            tiles["line_width"].append(3.0 if in_cover else 1.0)
        rows["x"].append(_PAD)
        rows["y"].append(top_y)
        rows["text"].append(_level_label(lr))
    w = _MARGIN_L + n_cols * pitch_x + _PAD
    h = _PAD + len(report.levels) * pitch_y
    return units, tiles, rows, quads, (w, h)


def _motif_figure(report, colors):
    from bokeh.models import ColumnDataSource, HoverTool, LabelSet
    from bokeh.plotting import figure

    units, tiles, rows, quads, (w, h) = _motif_data(report, colors)
    fig = figure(frame_width=int(w), frame_height=int(h), x_range=(0, w), y_range=(-h, 0), tools="save",
                 toolbar_location=None, name="assembly_motifs", title="Most frequent square motifs, by level")
    fig.axis.visible = False
    fig.grid.visible = False
    fig.outline_line_color = None
    src_units = ColumnDataSource(units, name="assembly_units")
    src_tiles = ColumnDataSource(tiles, name="assembly_tiles")
    fig.rect("x", "y", width="size", height="size", source=src_units, fill_color="color", line_color="white",
             line_width=1, name="assembly_unit_squares")
    fig.multi_line("xs", "ys", source=ColumnDataSource(quads, name="assembly_quadrants"), line_color="#222222",
                   line_width=2, name="assembly_quadrant_lines")
    frames = fig.rect("x", "y", width="w", height="h", source=src_tiles, fill_alpha=0.0, line_color="line_color",
                      line_width="line_width", name="assembly_tile_frames")
    fig.add_layout(LabelSet(x="lx", y="ly", text="text", source=src_tiles, text_font_size="9pt",
                            text_align="center", text_baseline="top", text_color="#222222", name="assembly_counts"))
    fig.add_layout(LabelSet(x="lx", y="ly2", text="text2", source=src_tiles, text_font_size="8pt",
                            text_align="center", text_baseline="top", text_color="#555555",
                            name="assembly_counts_n"))
    fig.text("x", "y", text="text", source=ColumnDataSource(rows, name="assembly_rows"), text_font_size="9pt",
             text_align="left", text_baseline="top", text_color="#333333", name="assembly_level_labels")
    fig.add_tools(HoverTool(renderers=[frames], tooltips='<div style="max-width:320px">@title</div>'))
    return fig


def _entropy_figure(lr, width):
    """Observed entropy of one level against its null models."""
    from bokeh.models import ColumnDataSource, FixedTicker, HoverTool, Span
    from bokeh.plotting import figure

    names = ["this sample"] + [n.label for n in lr.nulls]
    ys = {name: -float(i) for i, name in enumerate(names)}
    dots = dict(x=[], y=[], null=[])
    bars = dict(x0=[], x1=[], y=[], mean=[], std=[], color=[], label=[], description=[], sentence=[])
    for n in lr.nulls:
        s = np.asarray(n.samples, dtype=np.float64)
        y = ys[n.label]
        dots["x"].extend(s.tolist())
        # a fixed vertical spread, so dots with equal entropy stay visible and the picture is reproducible
        dots["y"].extend((y + 0.25 * np.sin(np.arange(len(s)) * 2.4)).tolist())
        dots["null"].extend([n.label] * len(s))
        bars["x0"].append(n.mean - n.std)
        bars["x1"].append(n.mean + n.std)
        bars["y"].append(y)
        bars["mean"].append(n.mean)
        bars["std"].append(n.std)
        bars["color"].append(_NULL_COLORS.get(n.kind, "#555555"))
        bars["label"].append(n.label)
        bars["description"].append(n.description)
        bars["sentence"].append(n.sentence)
    xs = [lr.entropy_bits] + dots["x"]
    lo, hi = float(min(xs)), float(max(xs))
    pad = max(0.08 * (hi - lo), 0.05)
    side = "2 × 2 squares" if lr.level == 2 else "4 × 4 blocks"
    verdicts = {n.verdict for n in lr.nulls}
    head = ("ordered beyond chance" if verdicts == {"ordered"} else
            "no more ordered than chance" if verdicts == {"chance"} else
            "compared with chance" if verdicts else "no null model")
    fig = figure(frame_width=int(width), frame_height=int(46 * len(names) + 20), x_range=(lo - pad, hi + pad),
                 y_range=(-len(names) + 0.5, 0.5), tools="save", toolbar_location=None,
                 name=f"assembly_entropy_{lr.level}", title=f"Level {lr.level} ({side}): {head}")
    fig.xaxis.axis_label = "configurational entropy (bits); lower = more ordered"
    fig.yaxis.axis_label = "measured on"
    fig.yaxis.ticker = FixedTicker(ticks=list(ys.values()))
    fig.yaxis.major_label_overrides = {v: k for k, v in ys.items()}
    fig.ygrid.visible = False
    fig.scatter("x", "y", source=ColumnDataSource(dots, name=f"assembly_null_samples_{lr.level}"), size=5,
                color="#7f7f7f", alpha=0.55, name=f"assembly_null_dots_{lr.level}")
    src = ColumnDataSource(bars, name=f"assembly_nulls_{lr.level}")
    fig.segment("x0", "y", "x1", "y", source=src, line_color="color", line_width=7, line_alpha=0.75,
                name=f"assembly_null_bars_{lr.level}")
    means = fig.scatter("mean", "y", source=src, size=9, color="color", line_color="black",
                        name=f"assembly_null_means_{lr.level}")
    fig.add_layout(Span(location=lr.entropy_bits, dimension="height", line_color="black", line_dash="dashed",
                        line_width=1.2))
    obs = fig.scatter([lr.entropy_bits], [0.0], marker="diamond", size=16, color="black",
                      name=f"assembly_observed_{lr.level}")
    fig.add_tools(HoverTool(renderers=[means], tooltips=(
        '<div style="max-width:300px"><b>@label</b>: @mean{0.000} ± @std{0.000} bits<br>@description<br>'
        '<i>@sentence</i></div>')),
        HoverTool(renderers=[obs], tooltips=f"this sample: {lr.entropy_bits:.3f} bits"))
    return fig


def _verdict_html(report):
    parts = []
    for lev in sorted(report.levels):
        lr = report.levels[lev]
        items = "".join(f"<li>{html.escape(n.sentence)}</li>" for n in lr.nulls)
        note = f"<br><i>{html.escape(lr.note)}</i>" if lr.note else ""
        parts.append(f"<b>Level {lev}</b>: entropy {lr.entropy_bits:.2f} bits "
                     f"(a uniform choice among all {lr.n_possible:,} motifs would give {lr.max_entropy_bits:.0f} "
                     f"bits with unlimited data).<ul style='margin:2px 0 6px 0'>{items}</ul>{note}")
    return "".join(parts)


def _header_html(report, colors, title):
    chips = " &nbsp; ".join(
        f'<span style="display:inline-block;width:12px;height:12px;background:{c};border:1px solid #555;'
        f'vertical-align:middle"></span>&nbsp;{html.escape(s)} ({int(k):,} units)'
        for s, c, k in zip(report.states, colors, report.unit_counts))
    g = report.grid
    return (f"<div style='font-size:14px'><b>{html.escape(title)}</b></div>"
            f"<div style='font-size:12px;color:#333'>{int(report.unit_counts.sum()):,} units on a "
            f"{g.shape[0]} × {g.shape[1]} grid ({html.escape(report.windows)} windows; "
            f"{report.n_repeats} scrambled copies per null model, seed {report.seed}). &nbsp; {chips}</div>")


def assembly_view(data, n_states=None, *, states=None, colors=None, windows: str = "all", parity=0,
                  merge_rotations: bool = False, levels=(2, 3), nulls=("shuffled", "random"), n_repeats: int = 20,
                  top: int = 8, seed: int = 0, title: str = "Square motifs and configurational entropy"):
    """Bokeh view of the square motifs of a unit grid and their entropy against null models.

    Parameters
    ----------
    data : AssemblyReport, UnitGrid or array_like (H, W) int
        A report from :func:`motiflab.assembly_report.assembly_report`, or a
        unit grid to make one from (with the options below).
    n_states, states, windows, parity, merge_rotations, levels, nulls, n_repeats, top, seed
        Passed to :func:`~motiflab.assembly_report.assembly_report` when
        ``data`` is not a report already.
    colors : sequence of str, optional
        Colour of each unit state (default: the motif colours of
        :func:`motiflab.colors.motif_colors`, state ``k`` in motif ``k``'s
        colour); pass the motif colours of the units' motifs to match the
        other views.
    title : str

    Returns
    -------
    bokeh.models.Column
        The layout (named ``"assembly_view"``). As a cell's result in
        JupyterLab it shows itself through ``jupyter_bokeh``; save it with
        ``bokeh.embed.file_html(view, bokeh.resources.INLINE)``. The report it
        draws is ``view._motiflab_report``.
    """
    from bokeh.layouts import column, row
    from bokeh.models import Div

    from motiflab.assembly_report import AssemblyReport, assembly_report
    from motiflab.errors import MotifLabError

    if isinstance(data, AssemblyReport):
        report = data
    else:
        report = assembly_report(data, n_states, states=states, windows=windows, parity=parity,
                                 merge_rotations=merge_rotations, levels=levels, nulls=nulls, n_repeats=n_repeats,
                                 top=top, seed=seed)
    n = report.n_states
    if colors is None:
        colors = motif_colors(n)
    colors = [str(c) for c in colors]
    if len(colors) < n:
        raise MotifLabError(f"colors has {len(colors)} colours for {n} unit states; give one per state")
    motifs = _motif_figure(report, colors)
    width = max(300, int(motifs.frame_width) // max(len(report.levels), 1) - 40)
    panels = [_entropy_figure(report.levels[lev], width) for lev in sorted(report.levels)]
    full = int(motifs.frame_width) + 40
    header = Div(text=_header_html(report, colors, title), width=full, name="assembly_header")
    verdicts = Div(text=_verdict_html(report), width=full, name="assembly_verdicts",
                   styles={"font-size": "12px", "color": "#222"})
    caption = Div(text=CAPTION, width=full, name="assembly_caption",
                  styles={"font-size": "12px", "color": "#333", "line-height": "1.35"})
    layout = column(header, motifs, row(*panels, name="assembly_entropy"), verdicts, caption, name="assembly_view")
    layout._motiflab_report = report
    layout._repr_mimebundle_ = _Display(layout, report)
    return layout


class _Display:
    """``_repr_mimebundle_`` of the layout: a jupyter_bokeh widget in JupyterLab, the summary elsewhere."""

    def __init__(self, layout, report):
        self.layout, self.report, self.widget = layout, report, None

    def __call__(self, include=None, exclude=None, **kwargs):
        text = self.report.summary()
        plain = {"text/plain": text,
                 "text/html": "<pre style='white-space:pre-wrap'>" + html.escape(text) + "</pre>"}
        try:
            from IPython import get_ipython
            from jupyter_bokeh import BokehModel
        except ImportError:  # pragma: no cover - jupyter_bokeh is in the interactive extra
            return plain
        ip = get_ipython()
        if ip is None or not hasattr(ip, "kernel"):
            return plain
        from . import explorer

        if not explorer._BOKEH_LOADED:
            explorer._load_bokehjs()  # BokehJS (inline, offline) must be in the page before the widget renders
        if self.widget is None:  # one widget per layout: a Bokeh model lives in one document
            self.widget = BokehModel(self.layout)
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        if isinstance(bundle, tuple):
            bundle = bundle[0]
        bundle = dict(bundle)
        bundle.update(plain)  # static renderers (nbviewer, a stripped widget state) show the words
        return bundle
