"""The parameter spec: each parameter declared once, and everything generated from it agrees."""
import inspect
import json

import numpy as np
import pytest

from motiflab import parameters
from motiflab.analysis import PIPELINE, STAGES, Analysis
from motiflab.errors import MotifLabError
from motiflab.parameters import SPEC

#: the core function each stage hands its parameters to (their keywords must exist there)
STAGE_FUNCTIONS = {
    "columns": "motiflab.columns:find_columns",
    "patch_size": "motiflab.patches:estimate_patch_size",
    "patches": "motiflab.patches:extract_patches",
    "features": "motiflab.zernike:zernike_moments",
    "graph": "motiflab.neighbors:knn_graph",
    "motifs": "motiflab.motifs:find_motifs",
    "hierarchy": "motiflab.hierarchy:build_hierarchy",
}
#: parameters the analysis itself reads instead of passing them on
READ_BY_THE_STAGE = {"patch_size", "hierarchy_max_columns"}


def _function(path):
    import importlib

    mod, name = path.split(":")
    return getattr(importlib.import_module(mod), name)


def test_every_default_is_a_valid_value_of_its_own_parameter():
    for p in SPEC:
        assert p.validate(p.default) == p.default, p.name
        assert p.stage in STAGES, p.name
        assert p.doc and not p.doc.endswith('.'), p.name  # one line, shown inside sentences


def test_every_keyword_exists_in_its_stage_function():
    for p in SPEC:
        if p.stage == "layout" or p.name in READ_BY_THE_STAGE:
            continue
        sig = inspect.signature(_function(STAGE_FUNCTIONS[p.stage]))
        assert (p.keyword or p.name) in sig.parameters, f"{p.name} → {p.keyword or p.name} not in {p.stage}"


def test_layout_parameters_reach_the_estimator():
    from motiflab.stages import layout_estimator

    params = dict(parameters.DEFAULTS, n_iter=77, stage_split=0.3, negative_samples=3, snapshot_max_mb=1.0,
                  stage1_alpha=2.0, stage1_beta=3.0, stage1_n=0.5, stage1_m=4.0, stage1_lr=2.5,
                  stage2_alpha=6.0, stage2_beta=0.5, stage2_n=1.5, stage2_m=3.0, stage2_lr=0.7, seed=11)
    est = layout_estimator(params)
    assert (est.n_iter, est.stage_split, est.negative_samples, est.random_state) == (77, 0.3, 3, 11)
    assert est.snapshot_max_bytes == 2**20
    s1, s2 = est.stages
    assert (s1.alpha, s1.beta, s1.n, s1.m, s1.learning_rate) == (2.0, 3.0, 0.5, 4.0, 2.5)
    assert (s2.alpha, s2.beta, s2.n, s2.m, s2.learning_rate) == (6.0, 0.5, 1.5, 3.0, 0.7)


@pytest.mark.parametrize("name, value, words", [
    ("n_max", "abc", "n_max must be an integer"),
    ("n_neighbors", None, "n_neighbors must be an integer"),
    ("threshold", "abc", "threshold must be a number"),
    ("spacing", float("nan"), "finite"),
    ("smoothing_strength", float("inf"), "finite"),
    ("spacing", 1e6, "≤ 100000"),
    ("min_samples", 0, "≥ 1"),
    ("seed", 2**70, "≤ 4294967295"),
    ("seed", -1, "≥ 0"),
    ("n_max", 100, "≤ 40"),
    ("negative_samples", 10**6, "≤ 50"),
    ("n_iter", 10**7, "≤ 20000"),
    ("n_iter", 2.5, "whole number"),
    ("rotinv", "maybe", "True or False"),
    ("smoothing", "wavelet", "one of 'matched'"),
    ("lattice", 3, "one of 'auto', 'off'"),
    ("stage_split", 0.0, "> 0"),
    ("patch_size", [3], "'auto'"),
    ("threshold", True, "a number"),
])
def test_bad_values_are_refused_with_the_allowed_ones(name, value, words):
    with pytest.raises(MotifLabError, match=name) as info:
        parameters.validate(name, value)
    assert words in str(info.value)


@pytest.mark.parametrize("name, value, expected", [
    ("n_max", "8", 8), ("n_max", 8.0, 8), ("n_max", np.int64(8), 8), ("threshold", "4.5", 4.5),
    ("rotinv", "yes", True), ("rotinv", np.bool_(True), True), ("lattice", True, "auto"), ("lattice", False, "off"),
    ("smoothing", "SVD", "svd"), ("patch_size", None, "auto"), ("n_iter", "auto", None), ("refine", None, "none"),
    ("invert", False, False), ("invert", "auto", "auto"),
])
def test_good_values_are_converted_to_what_the_stage_takes(name, value, expected):
    out = parameters.validate(name, value)
    assert out == expected and type(out) is type(expected)


def test_every_parameter_is_a_command_line_option(capsys):
    from motiflab.cli import build_parser, main

    for command in ("run", "batch"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for p in SPEC:
            assert p.cli_flag in text, (command, p.name)
    args = build_parser().parse_args(["run", "--out", "x.npz", "--n-max", "8", "--no-rotinv", "--stage2-alpha",
                                      "3", "--lattice", "off", "--patch-size", "auto", "--invert", "true"])
    assert parameters.from_cli(args) == dict(n_max=8, rotinv=False, stage2_alpha=3.0, lattice="off",
                                             patch_size="auto", invert=True)


def test_a_bad_option_value_is_a_usage_error_naming_the_fix(capsys):
    from motiflab.cli import main

    assert main(["run", "--out", "x.npz", "--n-max", "abc"]) == 2
    assert "n_max must be an integer" in capsys.readouterr().err


def test_every_parameter_has_an_explorer_control(mose2_small_analysis):
    pytest.importorskip("ipywidgets")
    from motiflab.widgets.explorer import Explorer

    ex = Explorer(mose2_small_analysis.copy(), background=False)
    try:
        for p in SPEC:
            assert p.name in ex.controls, p.name
            tip = getattr(ex.controls[p.name], "tooltip", None) or ""
            assert p.doc in tip, p.name
    finally:
        ex.close()


# ----------------------------------------------------------------- each parameter changes its stage


#: a value other than the default that changes the stage's output on the small test image
CHANGES = {
    "smoothing": "gaussian", "smoothing_strength": 0.6, "threshold": 200.0, "refine": "com", "invert": True,
    "border": 40, "spacing": 6.0, "lattice": "off", "min_contrast": 0.6,
    "patch_size": 13, "patch_scale": 2.0,
    "patch_border": "reflect", "patch_subpixel": False,
    "n_max": 6, "rotinv": True,
    "n_neighbors": 6, "seed": 5,
    "negative_samples": 2, "n_iter": 30, "stage_split": 0.2,
    "stage1_alpha": 3.0, "stage1_beta": 3.0, "stage1_n": 1.0, "stage1_m": 3.0, "stage1_lr": 1.0,
    "stage2_alpha": 2.0, "stage2_beta": 3.0, "stage2_n": 1.0, "stage2_m": 3.0, "stage2_lr": 0.5,
    "snapshot_max_mb": 0.0,
    "min_cluster_size": 40, "min_samples": 30, "cluster_selection_epsilon": 3.0, "min_separation": 40.0,
    "hierarchy_cells": "voronoi", "hierarchy_max_columns": 10,
}


#: where a change first shows on this small image: below EXACT_MAX_POINTS the k-NN graph is
#: exact and the seed first moves the FR layout
SHOWS_IN = {"seed": "layout"}


def _fingerprint(an, stage):
    """A hashable summary of a stage's output (a refusal counts as an output)."""
    try:
        r = an.get(stage)
    except MotifLabError as exc:
        return ("refused", str(exc))
    if stage == "columns":
        return r.positions.round(3).tobytes()
    if stage == "patch_size":
        return r.patch_size
    if stage == "patches":
        return (r.patches.shape, r.patches.round(4).tobytes())
    if stage == "features":
        return r.X.round(4).tobytes()
    if stage == "graph":
        return (r.indices.tobytes(), r.data.round(5).tobytes())
    if stage == "layout":
        return (r.embedding.round(3).tobytes(), r.snapshots.shape)
    if stage == "motifs":
        return r.labels.tobytes()
    return json.dumps(r.to_json())


def test_the_spec_covers_every_parameter_once():
    assert sorted(CHANGES) == sorted(p.name for p in SPEC)
    assert len({p.name for p in SPEC}) == len(SPEC)


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in SPEC])
def test_each_parameter_changes_its_stage_and_recomputes_only_downstream(mose2_small_analysis, name):
    base = mose2_small_analysis
    stage = parameters.PARAM_STAGE[name]
    shows = SHOWS_IN.get(name, stage)
    an = base.copy()
    before = _fingerprint(an, shows)
    n0 = len(an.log)
    expected = [s for s in STAGES[STAGES.index(stage):] if an.is_cached(s)]
    stale = an.set(**{name: CHANGES[name]})
    assert stale == expected
    after = _fingerprint(an, shows)
    assert after != before, f"{name}={CHANGES[name]!r} did not change the {shows} stage"
    ran = [s for s, _ in an.log[n0:]]
    assert set(ran) <= set(STAGES[STAGES.index(stage):])  # nothing upstream was recomputed
    assert ran or after[0] == "refused"
    # the original is untouched by the copy's change (asked only where it has the stage: asking computes)
    if base.is_cached(shows):
        assert _fingerprint(base, shows) == before


def test_copy_is_independent(mose2_small_analysis):
    a = mose2_small_analysis.copy()
    b = a.copy()
    b.set(min_cluster_size=9)
    assert a.params["min_cluster_size"] is None and a.is_cached("motifs") and not b.is_cached("motifs")
    b.edits.append({"kind": "merge", "motifs": [0, 1]})
    assert a.edits == []


def test_run_computes_the_pipeline_and_the_hierarchy_on_demand(mose2_small_analysis):
    an = mose2_small_analysis.copy()
    assert all(an.is_cached(s) for s in PIPELINE)
    n0 = len(an.log)
    h = an.hierarchy
    assert [s for s, _ in an.log[n0:]] == ["hierarchy"]
    assert an.hierarchy is h  # cached
    assert an.set(min_separation=3.0) == ["motifs", "hierarchy"]


def test_a_refused_stage_stays_refused_until_its_input_changes(mose2_small_analysis):
    an = mose2_small_analysis.copy()
    an.set(hierarchy_max_columns=10)
    n0 = len(an.log)
    for _ in range(2):
        with pytest.raises(MotifLabError, match="hierarchy_max_columns"):
            an.hierarchy
    assert len(an.log) == n0  # the refusal was cached, not recomputed
    an.set(hierarchy_max_columns=10**6)
    assert len(an.hierarchy.cells) > 0


def test_work_estimated_to_take_hours_is_refused_before_it_starts(mose2_small_analysis):
    from motiflab import stages

    an = mose2_small_analysis.copy()
    an.set(n_iter=20_000, negative_samples=50, n_neighbors=100)
    old = stages.LAYOUT_SECONDS_PER_UPDATE
    stages.LAYOUT_SECONDS_PER_UPDATE = 1e-3  # as if on a machine a hundred thousand times slower
    try:
        with pytest.raises(MotifLabError, match="would take about .* use fewer iterations"):
            an.get("layout")
    finally:
        stages.LAYOUT_SECONDS_PER_UPDATE = old
