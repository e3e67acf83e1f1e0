"""The explorer's Python logic: controls → stages, background runs, curation, views, export, HyperSpy."""
import threading
import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("jupyter_bokeh")

from motiflab.analysis import PIPELINE, Analysis  # noqa: E402
from motiflab.errors import MotifLabError  # noqa: E402
from motiflab.widgets import Explorer  # noqa: E402
from motiflab.widgets import views as V  # noqa: E402


@pytest.fixture(scope="module")
def image():
    from motiflab.datasets import make_tmd

    return make_tmd("MoSe2", shape=(192, 192), chalcogen_vacancy_rate=0.05, dose=100, seed=7)


@pytest.fixture(scope="module")
def base(image):
    return Analysis(image.to_signal(), n_iter=60, seed=0).run()


@pytest.fixture()
def ex(base):
    e = Explorer(base.copy(), background=False)
    yield e
    e.close()


# ------------------------------------------------------------------------ controls → stages
DOWN = {s: list(PIPELINE[i:]) for i, s in enumerate(PIPELINE)}

CONTROL_CASES = [
    # (control, new widget value, parameter, expected value, first stage recomputed)
    ("min_cluster_size_auto", False, "min_cluster_size", 5, "motifs"),
    ("min_cluster_size", 7, "min_cluster_size", 7, "motifs"),
    ("stage2_alpha", 6.0, "stage2_alpha", 6.0, "layout"),
    ("stage1_m", 2.5, "stage1_m", 2.5, "layout"),
    ("stage_split", 0.6, "stage_split", 0.6, "layout"),
    ("n_iter", 50, "n_iter", 50, "layout"),
    ("negative_samples", 4, "negative_samples", 4, "layout"),
    ("n_neighbors", 8, "n_neighbors", 8, "graph"),
    ("seed", 3, "seed", 3, "graph"),
    ("n_max", 8, "n_max", 8, "features"),
    ("rotinv", True, "rotinv", True, "features"),
    ("patch_size", 21, "patch_size", 21, "patch_size"),
    ("threshold", 6.0, "threshold", 6.0, "columns"),
    ("smoothing", "gaussian", "smoothing", "gaussian", "columns"),
    ("smoothing_strength", 1.5, "smoothing_strength", 1.5, "columns"),     # a value unticks "auto"
    ("smoothing_strength_auto", True, "smoothing_strength", None, "columns"),
    ("lattice", "off", "lattice", "off", "columns"),
    ("min_separation", 4.0, "min_separation", 4.0, "motifs"),
]


@pytest.mark.slow
def test_each_control_recomputes_exactly_the_downstream_stages(base):
    ex = Explorer(base.copy(), background=False)
    for control, value, param, expected, first in CONTROL_CASES:
        n = len(ex.runs)
        ex.controls[control].value = value
        assert ex.analysis.params[param] == expected, control
        assert len(ex.runs) == n + 1, control
        assert ex.runs[-1]["stages"] == DOWN[first], control
        assert ex.runs[-1]["params"] == {param: expected}
        auto = ex.controls.get(f"{param}_auto")
        if auto is not None:  # the auto box shows whether the method chooses
            assert auto.value == (expected is None), control
    # the same value again recomputes nothing
    assert ex._on_param_change("n_max", 8, sync=True) == []
    ex.close()


def test_on_param_change_sync_returns_the_stages(ex):
    assert ex._on_param_change("stage2_beta", 1.5, sync=True) == ["layout", "motifs"]
    assert ex._on_param_change("min_cluster_size", 6, sync=True) == ["motifs"]
    with pytest.raises(MotifLabError, match="unknown parameter"):
        ex._on_param_change("alpha2", 1.0, sync=True)


def test_patch_size_auto_box_uses_the_rdf_estimate(ex):
    ex.controls["patch_size"].value = 17
    assert ex.analysis.patch_size == 17
    assert ex.controls["patch_size_auto"].value is False  # moving the slider chose a size
    ex.controls["patch_size_auto"].value = True
    assert ex.analysis.params["patch_size"] == "auto"
    est = ex.analysis.patch_size_estimate.patch_size
    assert ex.controls["patch_size"].value == est  # the slider shows the estimate
    assert ex.runs[-1]["stages"] == DOWN["patch_size"]
    assert len(ex.runs) == 3  # showing the estimate did not trigger another run


def test_bad_value_shows_the_error_and_recovers(ex):
    assert ex._on_param_change("patch_size", 1000, sync=True) == []
    assert "larger than the image" in ex.error
    assert "error" in ex.status.value and "patch_size=1000" in ex.status.value
    assert ex._on_param_change("patch_size", 19, sync=True) == DOWN["patch_size"]
    assert ex.error is None and ex.status.value.startswith("ready")


def test_debounce_collapses_quick_changes_into_one_background_run(base):
    ex = Explorer(base.copy(), background=True, debounce=0.3)
    assert ex.wait(30)
    n = len(ex.runs)
    for v in (2.0, 3.0, 4.0):
        ex._on_param_change("stage2_alpha", v)
    ex._on_param_change("min_cluster_size", 6)
    assert ex.wait(60)
    assert len(ex.runs) == n + 1
    assert ex.runs[-1]["params"] == {"stage2_alpha": 4.0, "min_cluster_size": 6}
    assert ex.runs[-1]["stages"] == ["layout", "motifs"]
    ex.close()


def test_a_newer_value_cancels_the_stale_layout_run(base):
    ex = Explorer(base.copy(), background=True, debounce=0.05)
    assert ex.wait(30)
    n = len(ex.runs)
    in_layout = threading.Event()
    ex.analysis.on_stage(lambda s, dt: None)
    orig = ex._layout_progress

    def spy(it, emb):
        if it > 0:
            in_layout.set()
        return orig(it, emb)

    ex._layout_progress = spy
    t0 = time.perf_counter()
    ex._on_param_change("n_iter", 20000)          # a long layout ...
    assert in_layout.wait(30)
    ex._on_param_change("n_iter", 40)             # ... superseded while it runs
    assert ex.wait(60)
    elapsed = time.perf_counter() - t0
    assert ex.cancelled >= 1
    assert [r["params"] for r in ex.runs[n:]] == [{"n_iter": 40}]
    assert ex.analysis.layout.snapshot_iterations[-1] == 40
    assert elapsed < 30  # 20000 iterations were not run to the end
    ex.close()


def test_layout_progress_is_shown_a_few_times_a_second_not_per_snapshot(base, monkeypatch):
    """Each status update is a widget message; one per 2 % slowed a 0.05 s layout 2.7x in JupyterLab."""
    import motiflab.widgets.explorer as explorer_mod

    interval = 0.05  # the 3000-iteration layout below takes ~0.5 s here: about 10 updates (one per 2 %: 50)
    monkeypatch.setattr(explorer_mod, "PROGRESS_INTERVAL", interval)
    ex = Explorer(base.copy(), background=False)
    shown = []
    ex.status.observe(lambda ch: shown.append(time.perf_counter()) if "FR layout: iteration" in ch["new"] else None,
                      names="value")
    ex._on_param_change("n_iter", 3000, sync=True)  # every iteration is a snapshot here
    assert len(ex.analysis.layout.snapshot_iterations) == 3001
    assert len(shown) >= 1
    assert np.diff(shown).min(initial=interval) >= 0.9 * interval, np.diff(shown)
    ex.close()


# ------------------------------------------------------------------------ views
def test_views_update_in_place_sending_only_changed_columns(ex):
    src = ex.views.source
    doc = ex.views.root.document
    assert doc is not None  # attached to the BokehModel's document
    events = []
    doc.on_change(lambda e: events.append(e))
    thumbs = src.data["thumb"]
    ex._on_param_change("stage2_alpha", 7.0, sync=True)
    assert ex.views.source is src
    np.testing.assert_allclose(src.data["ex"], ex.analysis.layout.embedding[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(src.data["motif"], ex.analysis.motifs.labels)
    assert src.data["thumb"] is thumbs
    cols = set()
    for e in events:
        if getattr(e, "model", None) is src:
            # patches, not a change of `data`: the page (jupyter_bokeh) sends a `data` change back to
            # the kernel as the whole table, thumbnails included; a patch as itself
            assert type(e).__name__ == "ColumnsPatchedEvent", e
            cols |= set(e.patches)
    assert {"ex", "ey", "motif"} <= cols
    assert "color" not in src.data  # colours are mapped from the labels in the page
    assert not cols & {"thumb", "x", "y"}  # unchanged columns are not re-sent
    # the old motifs' labels were patched in the table's own copy, not in the analysis's arrays
    assert src.data["motif"] is not ex.analysis.motifs.labels


@pytest.mark.parametrize("datashade_above", [None, 50], ids=["glyphs", "datashaded"])
def test_a_new_layout_is_shown_before_its_motifs_are_computed(base, monkeypatch, datashade_above):
    """A layout parameter: the points move first (old colours), the motifs follow in the same run."""
    if datashade_above:
        pytest.importorskip("datashader")
    import motiflab.widgets.explorer as explorer_mod

    monkeypatch.setattr(explorer_mod, "EARLY_LAYOUT_ABOVE", 0)  # done from 20k columns; this image has ~300
    kw = {} if datashade_above is None else {"datashade_above": datashade_above}
    ex = Explorer(base.copy(), background=False, **kw)
    v, an = ex.views, ex.analysis
    seen = []
    orig = v.update_layout

    def spy(a):
        colors, raster = list(v.source.data["motif"]), v.embedding_raster_source.data.get("image")
        shown = orig(a)
        seen.append(dict(shown=shown, motifs_cached=a.is_cached("motifs"), ex=np.array(v.source.data["ex"]),
                         same_colors=colors == list(v.source.data["motif"]),
                         new_raster=v.embedding_raster_source.data.get("image") is not raster))
        return shown

    monkeypatch.setattr(v, "update_layout", spy)
    ex._on_param_change("stage2_alpha", 7.0, sync=True)
    assert len(seen) == 1
    first = seen[0]
    assert first["shown"] and not first["motifs_cached"] and first["same_colors"]
    np.testing.assert_allclose(first["ex"], an.layout.embedding[:, 0], rtol=1e-6)
    assert first["new_raster"] == bool(datashade_above)
    # then the motifs of that layout, in the same run
    np.testing.assert_array_equal(v.source.data["motif"], an.motifs.labels)
    assert ex.runs[-1]["stages"] == ["layout", "motifs"]
    # a change that leaves the layout as it is shows no early layout, nor does a small input by default
    ex._on_param_change("min_separation", 4.0, sync=True)
    assert len(seen) == 1
    monkeypatch.setattr(explorer_mod, "EARLY_LAYOUT_ABOVE", 20_000)
    ex._on_param_change("stage2_alpha", 6.0, sync=True)
    assert len(seen) == 1 and ex.runs[-1]["stages"] == ["layout", "motifs"]
    ex.close()


def _frames_events(ex):
    """Record the document events that change the frames source's data (what would reach the page)."""
    events = []
    ex.views.root.document.on_change(
        lambda e: events.append(e) if getattr(e, "model", None) is ex.views.frames
        and getattr(e, "attr", None) == "data" else None)
    return events


def test_layout_updates_do_not_send_the_playback_frames_until_the_page_asks(ex):
    v = ex.views
    assert v.lazy_frames
    # after the first layout: the frames are kept in Python, the source the page plays from is empty
    assert len(v.frames.data["it"][0]) == 0 and v.frames.data["n"][0] == 0 and not v.frames_loaded
    kept = v.kept_frames
    assert kept is not None and len(kept["it"][0]) > 1
    assert v.play_slider.end == len(kept["it"][0]) - 1 and "press Play" in v.play_label.text
    events = _frames_events(ex)
    ex._on_param_change("stage2_alpha", 7.0, sync=True)   # a new layout
    assert events == [] and len(v.frames.data["it"][0]) == 0
    assert v.kept_frames is not kept                       # the new layout's frames, still not sent
    np.testing.assert_array_equal(v.kept_frames["xy"][0].reshape(-1, v.kept_frames["n"][0], 2)[-1],
                                  ex.analysis.layout.snapshots[-1])


def test_play_request_sends_the_frames_once_as_one_float32_buffer(ex):
    import motiflab.widgets._embedding_view as VE

    v = ex.views
    events = _frames_events(ex)
    # what the page does on Play (or moving the frame slider): bump the frames source's tags
    v.frames.tags = [1]
    assert len(events) == 1 and v.frames_loaded
    fr = v.frames.data
    xy, its, n = fr["xy"][0], np.asarray(fr["it"][0]), fr["n"][0]
    lay = ex.analysis.layout
    assert xy.dtype == np.float32 and n == len(ex.analysis.positions)
    assert xy.size == len(its) * n * 2
    k = len(its) - 1
    np.testing.assert_array_equal(xy.reshape(-1, n, 2)[k], lay.snapshots[-1])
    assert its[0] == 0 and its[-1] == lay.snapshot_iterations[-1]
    assert v.play_slider.end == k
    v.frames.tags = [2]                      # asked again at once: they are still on their way
    assert len(events) == 1
    # asked again later: the page does not have them (its request or the answer was lost), so
    # they are sent again (an equal value would not be: emptied first)
    v._frames_sent_at -= VE.FRAMES_RESEND_SECONDS + 1
    v.frames.tags = [2.5]
    assert len(events) == 3 and v.frames_loaded and len(v.frames.data["it"][0]) == k + 1
    # a new layout empties the source (the old frames are stale); the next request sends the new ones
    ex._on_param_change("stage2_alpha", 7.0, sync=True)
    assert len(events) == 4 and len(v.frames.data["it"][0]) == 0 and not v.frames_loaded
    v.frames.tags = [3]
    assert len(events) == 5 and v.frames_loaded
    np.testing.assert_array_equal(v.frames.data["xy"][0].reshape(-1, n, 2)[-1], ex.analysis.layout.snapshots[-1])
    # a change of the motifs only keeps the loaded frames (same layout)
    ex._on_param_change("min_cluster_size", 7, sync=True)
    assert len(events) == 5 and v.frames_loaded


def test_frames_requested_during_a_run_are_sent_after_it(ex):
    v = ex.views
    held, release = threading.Event(), threading.Event()

    def run():                               # a run in progress (on the worker) holds the views
        with ex.scheduler._run_lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert held.wait(10)
        ex._frames_requested("tags", [], [1])
        ex._frames_requested("tags", [1], [2])   # the page asked again: still one thread to answer
        assert sum(t.name == "motiflab-frames" for t in threading.enumerate()) == 1
        time.sleep(0.2)
        assert not v.frames_loaded           # not while the run holds the views
    finally:
        release.set()
        t.join()
    t_end = time.monotonic() + 10
    while not v.frames_loaded and time.monotonic() < t_end:
        time.sleep(0.02)
    assert v.frames_loaded


def test_report_views_send_the_frames_with_every_layout(base):
    v = V.ExplorerViews(base.image, base.calibration)
    assert not v.lazy_frames
    v.update(base)
    assert v.frames_loaded and v.frames.data["xy"][0].dtype == np.float32


def test_select_frames_respects_budget():
    keep = V.select_frames(301, 200_000, budget_mb=32, max_frames=150)
    assert keep[0] == 0 and keep[-1] == 300 and len(keep) * 200_000 * 8 <= 32 * 2**20
    assert len(V.select_frames(50, 100)) == 50


def test_gallery_counts_and_thumbnails_match_the_analysis(ex):
    m = ex.analysis.motifs
    g = ex.views.gallery_source.data
    assert g["count"] == m.counts.tolist() and len(g["image"]) == m.n_motifs
    P = ex.analysis.patch_size
    assert g["image"][0].shape == (P, P)
    # tile image = class average, flipped upright, own contrast
    a = m.class_averages[0]
    np.testing.assert_allclose(g["image"][0][::-1], (a - a.min()) / (a.max() - a.min()), atol=1e-5)
    thumbs = ex.views.source.data["thumb"]
    assert len(thumbs) == len(ex.analysis.positions) and thumbs[0].startswith("data:image/png;base64,")
    assert ex.views.counts_source.data["count"] == m.counts.tolist()


def test_selection_mean_matches_numpy(ex):
    sel = [0, 4, 9, 30]
    np.testing.assert_allclose(ex.views.selection_mean(sel), ex.analysis.patches.patches[sel].mean(0), rtol=1e-5)
    ex.select(sel)
    assert ex.selection.tolist() == sel
    assert "4 columns selected" in ex.selection_label.value


def test_hierarchy_node_columns(ex):
    from motiflab.hierarchy import Hierarchy

    d = ex.views.source.data
    nodes = ex.views.hier_nodes.data
    assert len(nodes["id"]) >= 1
    if isinstance(ex.hierarchy, Hierarchy):
        assert np.array_equal(d["hnode"], ex.hierarchy.column_motif_cell())
        assert set(nodes["id"]) <= {m.id for m in ex.hierarchy.motif_cells}
    else:  # fallback: one node per motif, keyed by the motif label
        assert np.array_equal(d["hnode"], ex.analysis.motifs.labels)


@pytest.mark.slow
def test_large_data_renders_through_datashader_and_stays_selectable(base):
    pytest.importorskip("datashader")
    ex = Explorer(base.copy(), background=False, datashade_above=50)
    v = ex.views
    assert v.large
    for src in (v.marker_raster_source, v.embedding_raster_source):
        img = src.data["image"][0]
        assert img.dtype == np.uint32 and img.ndim == 2 and (img != 0).any()
    assert v.marker_raster.visible and v.embedding_raster.visible
    assert v.markers.glyph.fill_alpha == 0 and v.markers.nonselection_glyph.fill_alpha == 0
    assert v.markers.selection_glyph.fill_alpha == 1.0  # selected columns drawn over the raster
    assert v.points.data_source is v.source and v.markers.data_source is v.source
    # zooming re-rasterises the visible range
    x = v.source.data["ex"]
    assert v.rerasterize(ex.analysis, "embedding", (x.min(), np.median(x)), (-5, 5))
    assert v.embedding_raster_source.data["dw"][0] == pytest.approx(np.median(x) - x.min())
    ex.close()
    # the raster: mean motif colour per pixel, opaque where densest, empty pixels transparent
    from motiflab.widgets.datashade import rasterize_points

    img = rasterize_points(np.array([0.5, 8.5, 8.5]), np.array([0.5, 3.5, 3.5]), np.array([0, 1, 1]),
                           ["#ff0000", "#0000ff"], (0, 10), (0, 10), 10, 10, spread=0)
    rgba = img.view(np.uint8).reshape(10, 10, 4)
    assert rgba[0, 0, :3].tolist() == [255, 0, 0] and rgba[3, 8, :3].tolist() == [0, 0, 255]
    assert rgba[3, 8, 3] == 255 and 0 < rgba[0, 0, 3] < 255  # two points vs one
    assert (rgba[..., 3] > 0).sum() == 2
    small = Explorer(base.copy(), background=False)
    assert not small.views.large and not small.views.marker_raster.visible
    small.close()


def test_selection_mean_in_python_when_the_stack_is_too_big(base):
    ex = Explorer(base.copy(), background=False)
    ex.views.stack_budget_mb = 0.0
    ex.views.update(ex.analysis, hierarchy=ex.hierarchy, force=True)
    assert not ex.views.stack_shipped and len(ex.views.stack.data["p"][0]) == 0
    ex.select([1, 2])
    img = ex.views.mean_source.data["image"][0]
    np.testing.assert_allclose(img[::-1], ex.analysis.patches.patches[[1, 2]].mean(0), rtol=1e-5)
    ex.close()


# ------------------------------------------------------------------------ curation through the explorer
def test_curation_buttons_edit_persist_and_undo(ex):
    an = ex.analysis
    l0 = an.motifs.labels.copy()
    ex.select([2, 3, 5])
    ex.assign_target.value = "new"
    ex.curation_buttons["assign"].click()
    assert len(an.edits) == 1 and ex.runs[-1]["stages"] == ["motifs"]
    lab = an.motifs.labels[[2, 3, 5]]
    assert len(set(lab.tolist())) == 1 and int(np.sum(an.motifs.labels == lab[0])) == 3
    assert ex.views.gallery_source.data["count"] == an.motifs.counts.tolist()
    # a layout change re-runs clustering; the edit is replayed
    ex._on_param_change("stage2_alpha", 6.5, sync=True)
    lab = an.motifs.labels[[2, 3, 5]]
    assert len(set(lab.tolist())) == 1 and int(np.sum(an.motifs.labels == lab[0])) == 3
    # merge and split through the dropdowns
    k = an.motifs.n_motifs
    ex.merge_b.value, ex.merge_a.value = 0, 1
    ex.curation_buttons["merge"].click()
    assert an.motifs.n_motifs == k - 1
    ex.split_m.value, ex.split_n.value = 0, 2
    ex.curation_buttons["split"].click()
    assert an.motifs.n_motifs == k and len(an.edits) == 3
    assert "3 edits recorded" in ex.edits_label.value
    for _ in range(3):
        ex.curation_buttons["undo"].click()
    assert an.edits == []
    ex._on_param_change("stage2_alpha", None, sync=True)
    assert np.array_equal(an.motifs.labels, l0)


def test_assign_with_nothing_selected_says_what_to_do(ex):
    ex.select([])
    ex.curation_buttons["assign"].click()
    assert "nothing is selected" in ex.status.value


# ------------------------------------------------------------------------ export and HyperSpy
def test_save_html_is_self_contained(ex, tmp_path):
    assert not ex.views.frames_loaded        # the live explorer has not sent them
    p = ex.save_html(tmp_path / "ex.html")
    text = p.read_text()
    assert ex.views.frames_loaded            # the file plays back offline: the frames are in it
    assert "cdn.bokeh.org" not in text and '<script type="text/javascript" src=' not in text
    assert "Bokeh.embed" in text or "embed_items" in text
    for name in ("columns", "frames", "gallery", "patch_stack", "playback_button", "hierarchy_nodes"):
        assert f'"name":"{name}"' in text.replace(" ", "")
    with pytest.raises(MotifLabError, match="already exists"):
        ex.save_html(p)
    assert ex.save_html(p, overwrite=True) == p


def test_write_report_for_the_cli(base, tmp_path):
    from motiflab.widgets.report import write_report

    p = write_report(base, tmp_path / "demo.html")
    assert p.exists() and p.stat().st_size > 100_000 and "cdn.bokeh.org" not in p.read_text()
    with pytest.raises(MotifLabError):
        write_report(base, p)


def test_hyperspy_round_trip(ex, image):
    import matplotlib

    matplotlib.use("Agg")
    an = ex.analysis
    s = image.to_signal()
    m = ex.markers()
    xy = an.calibration.to_physical(an.positions)[:, ::-1]
    np.testing.assert_allclose(np.asarray(m.kwargs["offsets"]), xy)
    ex.add_markers(s)
    assert len(s.metadata.Markers) == 1
    s.plot()  # shows the markers on the original signal
    import matplotlib.pyplot as plt

    plt.close("all")
    lm = ex.label_map()
    assert lm.data.shape == an.image.shape
    assert lm.axes_manager.signal_axes[0].scale == pytest.approx(an.calibration.scale)
    r, c = np.round(an.positions[0]).astype(int)
    assert lm.data[r, c] == an.motifs.labels[0]
    ca = ex.class_averages()
    assert ca.data.shape == an.motifs.class_averages.shape


def test_explore_displays_a_widget(base, monkeypatch):
    import motiflab

    e = motiflab.explore(base.copy(), background=False)
    bundle = e._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    from jupyter_bokeh import BokehModel

    assert isinstance(e.bokeh_widget, BokehModel)
    e.close()


def test_while_the_hierarchy_is_built_the_previous_diagram_stays_faded_and_unclickable(ex):
    """New motifs first reach the page without resizing the diagram (a resize relaid the whole page out)."""
    from motiflab.widgets.views import HIERARCHY_PENDING

    v, an = ex.views, ex.analysis
    fig = v.hierarchy_fig
    before = dict(size=(fig.frame_width, fig.frame_height), title=fig.title.text, caption=v.hierarchy_caption.text,
                  nodes=list(v.hier_nodes.data["id"]), header=v.summary.text)
    assert len(before["nodes"]) > 0 and not any(r.muted for r in fig.renderers)
    an.set(stage2_alpha=7.7)
    an.get("motifs")
    v.update(an, hierarchy=HIERARCHY_PENDING)
    assert (fig.frame_width, fig.frame_height) == before["size"]
    assert fig.title.text == before["title"] and v.hierarchy_caption.text == before["caption"]
    assert v.summary.text == before["header"]  # follows with the hierarchy
    assert list(v.hier_nodes.data["id"]) == before["nodes"]
    assert all(r.muted for r in fig.renderers)
    assert v.hierarchy_pending_note.visible and "updating" in v.hierarchy_pending_note.text
    assert (np.asarray(v.source.data["hnode"]) == -2).all() and (np.asarray(v.source.data["hcell"]) == -2).all()
    # the new motifs themselves are shown at once
    np.testing.assert_array_equal(v.source.data["motif"], an.motifs.labels)
    from motiflab.widgets.report import hierarchy_of

    h = hierarchy_of(an)
    v.update(an, hierarchy=h)
    assert not any(r.muted for r in fig.renderers) and not v.hierarchy_pending_note.visible
    assert v.summary.text != before["header"]
    hnode = np.asarray(v.source.data["hnode"])
    assert (hnode >= 0).any() if not isinstance(h, str) else (hnode == an.motifs.labels).all()


def test_a_view_update_reaches_the_page_as_one_bokeh_message(ex, monkeypatch):
    """jupyter_bokeh sends each change on its own; the page then applied and repainted between them."""
    import json

    w = ex.bokeh_widget
    sent = []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append((content, buffers)))

    def patch_docs():
        heads = [json.loads(c["payload"]) for c, b in sent if not b and '"msgtype"' in c.get("payload", "")]
        return [h for h in heads if h.get("msgtype") == "PATCH-DOC"]

    ex._on_param_change("stage2_alpha", 7.3, sync=True)
    docs = patch_docs()
    contents = [json.loads(c["payload"]) for c, b in sent if not b and '"events"' in c.get("payload", "")]
    # one message for the view update (layout, colours, ranges, gallery), one for the hierarchy after it
    assert len(docs) == 2, [h["msgtype"] for h in docs]
    assert len(contents) == 2 and len(contents[0]["events"]) > 5
    kinds = {e["kind"] for e in contents[0]["events"]}
    assert "ColumnsPatched" in kinds and "ModelChanged" in kinds
    attrs = {e.get("attr") for e in contents[0]["events"]}
    assert {"start", "end"} <= attrs  # the axis ranges travel with the points
    # outside an update every change still goes on its own, at once
    sent.clear()
    ex.views.source.selected.indices = [1, 2]
    assert len(patch_docs()) == 1


def test_tested_versions_are_installed():
    from importlib.metadata import version

    from motiflab.widgets import TESTED_VERSIONS

    for pkg, v in TESTED_VERSIONS.items():
        assert version(pkg) == v, f"{pkg} {version(pkg)} installed, the explorer was tested with {v}"


def test_curation_dropdowns_always_hold_valid_motifs(ex):
    k = ex.analysis.motifs.n_motifs
    assert (ex.merge_b.value, ex.merge_a.value, ex.split_m.value) == (0, 1, 0)
    assert ex.assign_target.value == "new"
    ex.merge_b.value, ex.merge_a.value = 0, k - 1
    ex.curation_buttons["merge"].click()
    # the merged-away motif number no longer exists: the dropdown falls back to a valid one
    vals = [v for _, v in ex.merge_a.options]
    assert len(vals) == k - 1 and ex.merge_a.value in vals and ex.merge_b.value == 0


# ------------------------------------------------------------------------ issue #14: page, colours, provenance
def test_hover_lists_at_most_three_columns_and_wheel_zoom_waits_for_a_click(ex):
    from bokeh.events import Tap
    from bokeh.models import WheelZoomTool

    v = ex.views
    assert V.HOVER_LIMIT == 3
    assert v.micro_hover.limit == 3 and v.emb_hover.limit == 3
    for fig in (v.micrograph, v.embedding):
        assert fig.toolbar.active_scroll is None  # the wheel scrolls the page
        assert any(isinstance(t, WheelZoomTool) for t in fig.tools)  # ... until the tool is chosen
        assert fig.js_event_callbacks.get(Tap.event_name)  # ... or the plot clicked
    assert v.embedding.xaxis[0].axis_label == "FR layout x (arbitrary units)"
    assert v.embedding.yaxis[0].axis_label == "FR layout y (arbitrary units)"


def test_micrograph_has_an_intensity_colour_bar(ex):
    bar = ex.views.intensity_bar
    img = ex.analysis.image
    assert bar in ex.views.micrograph.below
    lo, hi = bar.color_mapper.low, bar.color_mapper.high
    assert img.min() <= lo < hi <= img.max()


@pytest.mark.parametrize("units, scale, span_px", [("nm", 0.02, 256), ("nm", 0.002, 256), ("pm", 20.0, 256),
                                                   ("µm", 0.05, 512)])
def test_scale_bar_speaks_the_axes_units_and_sits_below_the_image(units, scale, span_px):
    from motiflab.io import Calibration
    from motiflab.widgets._micrograph_view import SCALE_TICKS, scale_bar_length

    cal = Calibration(scale=scale, units=units)
    v = V.ExplorerViews(np.zeros((span_px, span_px), np.float32), cal)
    (bar,) = [r for r in v.micrograph.center if r.name == "scale_bar"]
    assert bar.unit == units and bar.dimensional.base_unit == units
    assert bar.dimensional.include == [units]  # never another prefix: "750 pm" on nm axes is gone
    assert bar.dimensional.ticks == SCALE_TICKS
    assert v.micrograph.xaxis[0].axis_label == f"x ({units})"
    # the y range reaches past the image's bottom edge: the bar is drawn in that blank strip
    x0, y0, dw, dh = v._image_extent()
    assert v.micrograph.y_range.start > y0 + dh * 1.05
    length = scale_bar_length(dw)
    assert length in SCALE_TICKS and 0.2 * dw <= length <= dw


def test_uncalibrated_image_has_no_scale_bar():
    from motiflab.io import Calibration

    v = V.ExplorerViews(np.zeros((64, 64), np.float32), Calibration())
    assert not [r for r in v.micrograph.center if r.name == "scale_bar"]


def test_highlight_rule_of_tiles_bars_and_nodes():
    from motiflab.widgets._selection import highlighted

    labels = np.array([0, 0, 1, 1, 2, -1])
    assert highlighted([0, 1, 2], [], labels) == []                 # no selection: nothing highlighted
    assert highlighted([0, 1, 2], [0, 1], labels) == [0]            # motif 0 wholly selected
    assert highlighted([0, 1, 2], [0, 1, 2], labels) == [0]         # motif 1 only half: not highlighted
    assert highlighted([0, 1, 2], [4], labels) == [2]
    cell = np.array([5, 5, 5, 7, -2, -2])
    assert highlighted([5, 7], [0, 1, 2], labels, cell) == [0]       # node 5 = column 0..2 (via the cell)


def test_views_keep_every_highlight_on_the_column_selection(ex):
    v = ex.views
    (cb,) = [c for c in v.source.selected.js_property_callbacks["change:indices"]
             if c.name == "selection_highlight_sync"]
    targets = {t[0].name for t in cb.args["targets"]}
    assert targets >= {"gallery", "counts", "hierarchy_nodes"}


@pytest.mark.parametrize("k", [0, 1, 3, 16, 40])
def test_point_colours_are_mapped_from_the_motif_labels_as_everywhere_else(k):
    """The page bins each label with the mapper (BokehJS LinearColorMapper): the same colours as label_colors."""
    from motiflab.colors import label_colors
    from motiflab.widgets._motif_views import motif_color_mapper, set_motif_colors

    m = motif_color_mapper(3)
    set_motif_colors(m, k)
    labels = np.arange(-1, k)
    pal, lo, hi = list(m.palette), m.low, m.high
    # BokehJS: index = floor((x - low) / (high - low) * N), clipped to N - 1
    idx = np.clip(np.floor((labels - lo) / (hi - lo) * len(pal)).astype(int), 0, len(pal) - 1)
    assert [pal[i] for i in idx] == label_colors(labels, k).tolist()


def test_gallery_labels_are_readable(ex):
    from motiflab.colors import text_color

    g = ex.views.gallery_source.data
    assert g["text_color"] == [text_color(c) for c in g["color"]]


def test_playback_never_talks_to_the_kernel(ex):
    v = ex.views
    for m in (v.play_source, v.play_slider, v.play_button, v.speed, v.play_label, v.play_iteration):
        assert m.syncable is False
    # the player draws into its own source, not the shared "columns" one
    assert v.play_points.data_source is v.play_source
    np.testing.assert_allclose(v.play_source.data["px"], ex.analysis.layout.embedding[:, 0])
    assert list(v.play_source.data["motif"]) == list(v.source.data["motif"])
    assert v.play_points.glyph.fill_color.transform is v.motif_mapper
    for cb in v._play_callbacks:
        assert "src.data" not in cb.code and "slider.value = slider.value + 1" not in cb.code


def test_every_html_records_how_it_was_made(ex, base, tmp_path):
    import motiflab
    from motiflab.widgets.report import write_report

    ex.set(min_cluster_size=7)
    p = ex.save_html(tmp_path / "ex.html")
    text = p.read_text()
    assert "How this was made" in text and "motiflab version" in text and motiflab.__version__ in text
    assert "min_cluster_size" in text and "written" in text
    for name in ex.analysis.params:
        assert name in text
    r = write_report(base, tmp_path / "r.html").read_text()
    assert "How this was made" in r and "Curation edits" in r
    header = V.provenance_html(base)
    assert "in-memory image" in header  # base came from an array: it says so instead of a file name


def test_provenance_of_a_file_names_it_and_its_checksum(tmp_path, image):
    from motiflab.analysis import Analysis

    s = image.to_signal(include_truth=False)
    s.metadata.General.title = "<script>alert(1)</script>"
    path = tmp_path / "x <b>.hspy"
    s.save(path)
    an = Analysis(str(path), n_iter=20, seed=0)
    an.edits.append({"op": "<img src=x onerror=alert(1)>"})  # hostile strings stay text
    h = V.provenance_html(an)
    assert an.source_sha256 in h and "x &lt;b&gt;.hspy" in h and str(tmp_path) in h
    assert "<img" not in h and "&lt;img src=x" in h and "<script>" not in h


def test_the_status_says_when_a_stage_compiles_once(base, monkeypatch):
    """In a new environment (no stage run before) the status says why the first run waits."""
    import motiflab.widgets.explorer as explorer_mod

    said = []
    monkeypatch.setattr(explorer_mod, "is_warm", lambda stage: stage in ("columns", "patch_size"))
    ex = Explorer(base.copy(), background=False)
    monkeypatch.setattr(ex, "_set_status", lambda text, **kw: said.append(text))
    ex._on_param_change("threshold", 6.0, sync=True)
    assert any("compiles numba kernels once" in t for t in said if t.startswith("computing columns"))
    assert any(t.startswith("patch_size done") and t.endswith("computing patches (compiling once)…") for t in said)
    assert any(t.startswith("columns done") and t.endswith("computing patch_size…") for t in said)
    monkeypatch.setattr(explorer_mod, "is_warm", lambda stage: True)
    said.clear()
    ex._on_param_change("threshold", 5.5, sync=True)
    assert said and not any("compil" in t for t in said)
    ex.close()


def test_the_scheduler_pause_waits_and_a_newer_value_ends_it():
    """Scheduler.pause: the wait before the hierarchy, cut short (Cancelled) by a newer control value."""
    from motiflab.widgets.scheduler import Cancelled, Scheduler

    sch = Scheduler(lambda params: None, background=True)
    t0 = time.monotonic()
    sch.pause(0.2)
    assert 0.19 <= time.monotonic() - t0 < 2.0
    threading.Timer(0.05, sch.submit, args=({"x": 1},)).start()  # runs after the 0.4 s debounce
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        sch.pause(5.0)
    assert time.monotonic() - t0 < 2.0
    sch.close()
    fg = Scheduler(lambda params: None, background=False)
    t0 = time.monotonic()
    fg.pause(5.0)  # runs in the caller's thread (tests, scripts): no wait
    assert time.monotonic() - t0 < 0.5


def test_an_inline_patch_message_carries_its_arrays_and_applies_to_a_copy_of_the_document():
    """_bokeh_patch's PATCH-DOC has no binary buffers (3 comm messages, not 3 + 2 per array) and still
    brings a replica of the document to the kernel's state, arrays and dtypes included."""
    from bokeh.document import Document
    from bokeh.models import ColumnDataSource

    from motiflab.widgets._bokeh_patch import _inline_patch

    doc = Document()
    src = ColumnDataSource(dict(ex=np.zeros(500, np.float32), motif=np.zeros(500, np.int32)))
    doc.add_root(src)
    replica = Document.from_json(doc.to_json())
    events = []
    doc.on_change(events.append)
    ex = np.linspace(0, 1, 500, dtype=np.float32)
    src.patch({"ex": [(slice(None), ex)], "motif": [(slice(None), np.arange(500, dtype=np.int32))]})
    msg = _inline_patch(events)
    assert msg.buffers == []
    msg.apply_to_document(replica)
    got = replica.get_model_by_id(src.id).data
    np.testing.assert_array_equal(np.asarray(got["ex"]), ex)
    np.testing.assert_array_equal(np.asarray(got["motif"]), np.arange(500))
