"""The explorer's Curation and Export tabs (buttons only; the work is done by the explorer's methods)."""
from __future__ import annotations

__all__ = ["curation_panel", "export_panel"]


def curation_panel(ex, W):
    """The Curation tab: assign the selection, merge, split, undo (buttons call the explorer's methods)."""
    ex.assign_target = W.Dropdown(options=[("new motif", "new")], value="new", description="assign to",
                                  layout=W.Layout(width="260px"))
    assign = W.Button(description="Assign selection", button_style="primary", layout=W.Layout(width="150px"))
    ex.merge_a = W.Dropdown(options=[], description="merge", layout=W.Layout(width="200px"))
    ex.merge_b = W.Dropdown(options=[], description="into", layout=W.Layout(width="200px"))
    merge = W.Button(description="Merge", layout=W.Layout(width="100px"))
    ex.split_m = W.Dropdown(options=[], description="split", layout=W.Layout(width="200px"))
    ex.split_n = W.BoundedIntText(value=2, min=2, max=20, description="parts", layout=W.Layout(width="150px"))
    split = W.Button(description="Split", layout=W.Layout(width="100px"))
    undo = W.Button(description="Undo", icon="undo", layout=W.Layout(width="100px"))
    ex.edits_label = W.HTML("no edits")
    assign.on_click(lambda _b: ex.act(ex.assign_selection, ex.assign_target.value))
    merge.on_click(lambda _b: ex.act(ex.merge, ex.merge_b.value, ex.merge_a.value))
    split.on_click(lambda _b: ex.act(ex.split, ex.split_m.value, ex.split_n.value))
    undo.on_click(lambda _b: ex.act(ex.undo))
    ex.curation_buttons = dict(assign=assign, merge=merge, split=split, undo=undo)
    return W.VBox([W.HBox([ex.assign_target, assign]), W.HBox([ex.merge_a, ex.merge_b, merge]),
                   W.HBox([ex.split_m, ex.split_n, split]), W.HBox([undo, ex.edits_label])])


def export_panel(ex, W):
    """The Export tab: the whole analysis (.hspy), the views as offline HTML, the columns as HyperSpy markers."""
    ex.analysis_path = W.Text(value="motiflab-analysis.hspy", description="analysis file",
                              layout=W.Layout(width="360px"),
                              tooltip="everything: image, parameters, every stage, your curation; reopen it with "
                                      "motiflab.open_analysis(path)")
    save_analysis = W.Button(description="Save analysis", layout=W.Layout(width="110px"), button_style="primary")
    save_analysis.on_click(lambda _b: ex.act(lambda: f"saved {ex.analysis.save(ex.analysis_path.value)}"))
    ex.export_path = W.Text(value="motiflab-explorer.html", description="HTML file", layout=W.Layout(width="360px"))
    save = W.Button(description="Save HTML", layout=W.Layout(width="110px"))
    markers = W.Button(description="Markers → signal", tooltip="add the columns as HyperSpy markers to the signal",
                       layout=W.Layout(width="150px"))
    save.on_click(lambda _b: ex.act(
        lambda: f"wrote {ex.save_html(ex.export_path.value, overwrite=True).resolve()}"))
    markers.on_click(lambda _b: ex.act(lambda: (ex.add_markers(), "markers added to explorer.analysis.signal")[1]))
    return W.VBox([W.HBox([ex.analysis_path, save_analysis]), W.HBox([ex.export_path, save]), markers,
                   W.HTML("<small>In Python, with <code>ex = motiflab.explore(...)</code> (the explorer "
                          "<code>explore</code> returns): <code>ex.analysis.save(path)</code>, "
                          "<code>ex.save_html(path)</code>, "
                          "<code>ex.analysis.table()</code>, <code>ex.markers()</code>, <code>ex.label_map()</code>, "
                          "<code>ex.class_averages()</code>. Existing files are never replaced.</small>")])
