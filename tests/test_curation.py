"""Curation edits: assign / merge / split, undo, replay after upstream changes, saving."""
import copy
import json

import numpy as np
import pytest

from motiflab.analysis import Analysis
from motiflab.curation import apply_edits, match_positions, resolve_motif, validate_edit
from motiflab.errors import MotifLabError
from motiflab.motifs import class_averages


@pytest.fixture(scope="module")
def image():
    from motiflab.datasets import make_tmd

    return make_tmd("MoSe2", shape=(192, 192), chalcogen_vacancy_rate=0.05, dose=100, seed=7).image


@pytest.fixture(scope="module")
def base(image):
    return Analysis(image, n_iter=60, seed=0).run()


@pytest.fixture()
def an(base):
    """A fresh analysis sharing the module's computed stages (computing them takes seconds)."""
    a = copy.copy(base)
    a._params, a._cache, a.log, a.edits, a._callbacks = (dict(base._params), dict(base._cache), list(base.log),
                                                         [], [])
    return a


def _consistent(an):
    """Counts and class averages agree with the labels."""
    m = an.motifs
    k = m.n_motifs
    assert m.labels.max() == k - 1
    assert np.array_equal(m.counts, np.bincount(m.labels[m.labels >= 0], minlength=k))
    assert (m.counts > 0).all()  # compacted: no empty motif
    avg, _ = class_averages(an.patches.patches, m.labels, k)
    np.testing.assert_allclose(m.class_averages, avg, atol=1e-6)
    assert m.n_unassigned == int((m.labels < 0).sum())


def test_assign_to_a_new_motif(an):
    k0 = an.motifs.n_motifs
    cols = [3, 5, 8, 13, 21]
    m = an.edit({"kind": "assign", "columns": cols, "motif": "new"})
    assert m.n_motifs == k0 + 1 or m.n_motifs == k0  # k0 when the edit emptied a motif
    lab = m.labels[cols]
    assert len(set(lab.tolist())) == 1
    assert np.flatnonzero(m.labels == lab[0]).tolist() == cols  # the new motif is exactly those columns
    np.testing.assert_allclose(m.class_averages[lab[0]], an.patches.patches[cols].mean(0), atol=1e-5)
    _consistent(an)


def test_assign_to_an_existing_motif_and_unassign(an):
    before = an.motifs.labels.copy()
    target = int(before[0])
    other = np.flatnonzero((before != target) & (before >= 0))[:4]
    n_target = int(np.sum(before == target))
    m = an.edit({"kind": "assign", "columns": other.tolist(), "motif": target})
    # numbers of motifs above an emptied one shift down; resolve the target by its first member
    t_now = m.labels[0]
    assert (m.labels[other] == t_now).all()
    assert int(np.sum(m.labels == t_now)) == n_target + len(other)
    m = an.edit({"kind": "assign", "columns": other[:2].tolist(), "motif": -1})
    assert (m.labels[other[:2]] == -1).all()
    _consistent(an)


def test_merge_adds_the_counts_and_removes_one_motif(an):
    m0 = an.motifs
    k0 = m0.n_motifs
    a, b = 0, k0 - 1
    members = np.flatnonzero((m0.labels == a) | (m0.labels == b))
    m = an.edit({"kind": "merge", "motifs": [a, b]})
    assert m.n_motifs == k0 - 1
    assert len(set(m.labels[members].tolist())) == 1
    assert int(np.sum(m.labels == m.labels[members[0]])) == len(members)
    # motifs other than a and b keep their members
    rest = (m0.labels >= 0) & (m0.labels != a) & (m0.labels != b)
    old_to_new = {}
    for o, n in zip(m0.labels[rest], m.labels[rest]):
        assert old_to_new.setdefault(int(o), int(n)) == int(n)
    _consistent(an)


def test_split_partitions_a_motif_deterministically(an):
    m0 = an.motifs
    k0 = m0.n_motifs
    a = 0
    members = np.flatnonzero(m0.labels == a)
    m = an.edit({"kind": "split", "motif": a, "n": 3, "seed": 1})
    assert m.n_motifs == k0 + 2
    parts = set(m.labels[members].tolist())
    assert len(parts) == 3 and a in parts
    # nothing else moved into or out of the split motif's parts
    assert sorted(np.flatnonzero(np.isin(m.labels, list(parts))).tolist()) == members.tolist()
    # the largest part keeps the number
    sizes = {p: int(np.sum(m.labels == p)) for p in parts}
    assert sizes[a] == max(sizes.values())
    labels_1 = m.labels.copy()
    an.undo()
    assert np.array_equal(an.edit({"kind": "split", "motif": a, "n": 3, "seed": 1}).labels, labels_1)
    _consistent(an)


def test_undo_restores_the_labels_exactly(an):
    l0 = an.motifs.labels.copy()
    an.edit({"kind": "assign", "columns": [1, 2, 3], "motif": "new"})
    l1 = an.motifs.labels.copy()
    an.edit({"kind": "merge", "motifs": [0, 1]})
    assert len(an.edits) == 2
    assert np.array_equal(an.undo().labels, l1)
    assert np.array_equal(an.undo().labels, l0)
    with pytest.raises(MotifLabError, match="nothing to undo"):
        an.undo()


def test_edits_survive_a_new_layout_and_a_new_patch_size(an):
    cols = [10, 11, 12, 40, 41]
    pos = an.positions[cols].copy()
    an.edit({"kind": "assign", "columns": cols, "motif": "new"})
    an.set(stage2_alpha=6.0)  # layout and clustering re-run; the edit is replayed
    m = an.motifs
    assert an.log[-2][0] == "layout"
    idx = match_positions(pos, an.positions)
    assert len(idx) == len(cols)
    lab = m.labels[idx]
    assert len(set(lab.tolist())) == 1 and np.flatnonzero(m.labels == lab[0]).tolist() == sorted(idx.tolist())
    # a new patch size drops other border columns: indices change, positions do not
    an.set(patch_size=21)
    m = an.motifs
    idx = match_positions(pos, an.positions)
    kept = len(idx)
    assert kept >= 1
    lab = m.labels[idx]
    assert len(set(lab.tolist())) == 1
    assert int(np.sum(m.labels == lab[0])) == kept
    rep = m.params["curation"]
    assert rep[0]["kind"] == "assign" and rep[0]["applied"] and rep[0]["matched"] == kept


def test_merge_replays_through_anchors_after_upstream_change(an):
    m0 = an.motifs
    a_pos = an.positions[m0.labels == 0]
    b_pos = an.positions[m0.labels == 1]
    an.edit({"kind": "merge", "motifs": [0, 1]})
    an.set(n_max=8)  # features, graph, layout and motifs re-run
    m = an.motifs
    ia, ib = match_positions(a_pos, an.positions), match_positions(b_pos, an.positions)
    # the anchors' majority motifs are the same motif now
    la = np.bincount(m.labels[ia][m.labels[ia] >= 0]).argmax()
    lb = np.bincount(m.labels[ib][m.labels[ib] >= 0]).argmax()
    assert la == lb
    assert m.params["curation"][0]["applied"] or m.params["curation"][0]["note"]


def test_edits_are_saved_and_replay_on_a_fresh_analysis(an, image, tmp_path):
    an.edit({"kind": "assign", "columns": [4, 9, 16], "motif": "new"})
    an.edit({"kind": "split", "motif": 0, "n": 2})
    p = an.save(tmp_path / "r.npz")
    with np.load(p) as z:
        saved = json.loads(str(z["edits"]))
        labels = z["labels"]
    assert saved == an.edits
    fresh = Analysis(image, n_iter=60, seed=0)
    fresh.edits = saved
    assert np.array_equal(fresh.motifs.labels, labels)


def test_stored_form_is_json_and_positions(an):
    e = validate_edit({"kind": "assign", "columns": [0, 1], "motif": 2}, an)
    assert json.loads(json.dumps(e)) == e
    np.testing.assert_allclose(e["positions"], an.positions[[0, 1]], atol=0.01)
    assert e["target"]["motif"] == 2 and len(e["target"]["anchor"]) == min(256, int(np.sum(an.motifs.labels == 2)))
    assert resolve_motif(e["target"], an.motifs.labels, an.positions) == 2
    # a stored edit validates to itself
    assert validate_edit(e, an) == e


def test_apply_edits_reports_vanished_columns(an):
    far = [[-100.0, -100.0], [-200.0, -50.0]]
    out = apply_edits(an.motifs, [{"kind": "assign", "positions": far, "target": "new"}], an)
    assert np.array_equal(out.labels, an.motifs.labels)
    assert out.params["curation"][0] == {"kind": "assign", "applied": False, "matched": 0, "stored": 2,
                                         "note": "none of the stored columns exists any more"}


@pytest.mark.parametrize("edit, msg", [
    ({"kind": "recolour"}, "unknown edit kind"),
    ("merge", "must be a dict"),
    ({"kind": "assign"}, "needs 'columns'"),
    ({"kind": "assign", "columns": []}, "non-empty"),
    ({"kind": "assign", "columns": [10**6]}, "column indices must be in"),
    ({"kind": "assign", "columns": [1], "motif": 999}, "does not exist"),
    ({"kind": "merge", "motifs": [0]}, "at least two"),
    ({"kind": "merge", "motifs": [1, 1]}, "two different"),
    ({"kind": "split"}, "needs 'motif'"),
    ({"kind": "split", "motif": 0, "n": 1}, "integer ≥ 2"),
    ({"kind": "split", "motif": 0, "on": "colour"}, "'features' or 'layout'"),
    ({"kind": "split", "motif": 0, "n": 10**5}, "too few"),
])
def test_bad_edits_raise_clear_errors(an, edit, msg):
    with pytest.raises(MotifLabError, match=msg):
        an.edit(edit)
    assert an.edits == []
