"""The square-motif report (motiflab.assembly_report) on grids whose answer is known."""
import json

import numpy as np
import pytest

from motiflab.assembly import covering_set, decode, encode, label_grid, square_motifs
from motiflab.assembly_report import assembly_report, shuffle_blocks, shuffle_units
from motiflab.errors import MotifLabError


def checkerboard(h=12, w=12):
    ii, jj = np.indices((h, w))
    return (ii + jj) % 2


def ordered_phase(size=64, fraction=0.25, seed=1):
    """Notebook 06, section 4: i.i.d. preferred level-2 squares, a quarter of the 4x4 blocks replaced by A or B."""
    from motiflab.datasets import make_square_units, preferred_level2_probs

    rng = np.random.default_rng(seed)
    g = make_square_units((size, size), probs=preferred_level2_probs(), seed=7).grid.copy()
    a = np.block([[decode(8, 2, 2), decode(4, 2, 2)], [decode(2, 2, 2), decode(1, 2, 2)]])
    b = np.block([[decode(9, 2, 2), decode(6, 2, 2)], [decode(6, 2, 2), decode(9, 2, 2)]])
    for bi in range(size // 4):
        for bj in range(size // 4):
            if rng.random() < fraction:
                g[4 * bi:4 * bi + 4, 4 * bj:4 * bj + 4] = a if rng.random() < 0.75 else b
    return g, a, b


@pytest.mark.parametrize("parity", [0, 1])
def test_periodic_grid_has_one_motif_per_parity_and_zero_entropy(parity):
    g = checkerboard()
    r = assembly_report(g, windows="checkerboard", parity=parity, n_repeats=10)
    for lev in (2, 3):
        lr = r.level(lev)
        assert lr.n_observed == 1 and lr.entropy_bits == 0.0 and lr.n_hidden == 0
        assert lr.top[0].fraction == 1.0 and lr.top[0].count == lr.n_windows
        assert all(k == 1 for k, _ in lr.cover.values())
        # against scrambled copies a perfect crystal is as ordered as it gets
        assert [n.verdict for n in lr.nulls] == ["ordered", "ordered"]
        assert all(n.frac_below == 0.0 and n.mean > 0.5 for n in lr.nulls)
    # the one motif is the block anchored on that parity
    assert np.array_equal(r.level(2).top[0].block, g[0:2, parity:parity + 2])
    assert np.array_equal(r.level(3).top[0].block, g[0:4, parity:parity + 4])


def test_periodic_grid_all_windows_two_motifs_one_bit():
    r = assembly_report(checkerboard(), windows="all", n_repeats=5)
    lr = r.level(2)
    assert lr.n_observed == 2 and lr.entropy_bits == pytest.approx(1.0, abs=1e-3)  # 61 : 60 windows
    assert {m.code for m in lr.top} == {encode(np.array([[0, 1], [1, 0]]), 2), encode(np.array([[1, 0], [0, 1]]), 2)}
    assert lr.cover[0.5][0] == 1 and lr.cover[0.9][0] == 2


def test_random_grid_matches_its_nulls():
    g = np.random.default_rng(3).choice(2, size=(48, 48))
    r = assembly_report(g, n_repeats=30, seed=2)
    for lev in (2, 3):
        for n in r.level(lev).nulls:
            assert n.verdict == "chance", n.sentence
            assert abs(n.z) < 3, n.sentence
            assert 0.0 < n.frac_below < 1.0
        assert "no more ordered than chance" in r.level(lev).summary().lower()


def test_preferred_assembly_is_ordered_at_level2_and_the_phase_at_level3():
    g, a, b = ordered_phase()
    r = assembly_report(g, 2, states=["empty", "filled"], windows="disjoint",
                        nulls=("shuffled", "random", "blocks"), n_repeats=20, seed=0)
    l2, l3 = r.level(2), r.level(3)
    assert [n.kind for n in l2.nulls] == ["shuffled", "random"]  # blocks keep level 2: not a level-2 null
    assert [n.kind for n in l3.nulls] == ["shuffled", "random", "blocks"]
    assert all(n.verdict == "ordered" for n in l2.nulls + l3.nulls)
    assert {l3.top[0].code, l3.top[1].code} == {encode(a, 2), encode(b, 2)}
    blocks = [n for n in l3.nulls if n.kind == "blocks"][0]
    assert blocks.sentence.startswith("ordered beyond chance: entropy")
    assert "shuffled 2×2 blocks" in blocks.sentence


def test_top_motifs_agree_with_square_motifs():
    g = np.random.default_rng(0).choice(3, size=(20, 20), p=[0.6, 0.3, 0.1])
    g[5, 5] = -1
    r = assembly_report(g, top=5, fractions=(0.5, 0.9, 1.0), n_repeats=4)
    sq = square_motifs(g)
    for lev in (2, 3):
        lr, st = r.level(lev), sq.level(lev)
        assert [m.code for m in lr.top] == st.codes[:5].tolist()
        assert [m.count for m in lr.top] == st.counts[:5].tolist()
        for m in lr.top:
            assert encode(m.block, 3) == m.code
            assert m.fraction == pytest.approx(m.count / st.n_windows)
        for f, (k, covered) in lr.cover.items():
            idx, cov = covering_set(st.counts, f)
            assert (k, covered) == (len(idx), pytest.approx(cov))
        assert lr.n_hidden == len(st.codes) - 5
    assert r.unit_counts.tolist() == np.bincount(g[g >= 0], minlength=3).tolist()
    json.dumps(r.to_dict())  # JSON-ready


def test_seeded_and_each_null_its_own_stream():
    g = np.random.default_rng(1).choice(2, size=(24, 24))
    a = assembly_report(g, n_repeats=6, seed=11)
    b = assembly_report(g, n_repeats=6, seed=11)
    c = assembly_report(g, n_repeats=6, seed=12)
    only = assembly_report(g, n_repeats=6, seed=11, nulls=("random",))
    for lev in (2, 3):
        for x, y, z in zip(a.level(lev).nulls, b.level(lev).nulls, c.level(lev).nulls):
            assert np.array_equal(x.samples, y.samples)
            assert not np.array_equal(x.samples, z.samples)
        # asking for fewer nulls does not change the others' draws
        assert np.array_equal(only.level(lev).nulls[0].samples, a.level(lev).nulls[1].samples)


def test_null_grids_keep_what_they_promise():
    rng = np.random.default_rng(0)
    g = rng.choice(2, size=(16, 16))
    g[3, 4] = g[9, 1] = -1
    s = shuffle_units(g, rng)
    assert np.array_equal(s < 0, g < 0)
    assert np.bincount(s[s >= 0]).tolist() == np.bincount(g[g >= 0]).tolist()
    b = shuffle_blocks(g, rng)
    before = square_motifs(g, 2, windows="disjoint").level2
    after = square_motifs(b, 2, windows="disjoint").level2
    assert dict(zip(before.codes.tolist(), before.counts.tolist())) == dict(zip(after.codes.tolist(),
                                                                                 after.counts.tolist()))
    assert not np.array_equal(b, g)


def test_unit_grid_gives_state_names_and_a_note_when_every_block_differs():
    ii, jj = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
    pos = np.column_stack([ii.ravel() * 10.0, jj.ravel() * 10.0])
    labels = np.where(np.random.default_rng(2).random(len(pos)) < 0.4, "filled", "empty")
    ug = label_grid(pos, labels)
    r = assembly_report(ug, windows="disjoint", n_repeats=4)
    assert r.states == ["empty", "filled"]
    assert "empty" in r.summary() and "filled" in r.summary()
    l3 = r.level(3)
    assert l3.n_observed == l3.n_windows and "too few" in l3.note


@pytest.mark.parametrize("grid, kwargs, words", [
    (np.zeros((0, 0), int), {}, "too small"),
    (np.zeros((8, 8), int), {}, "only 'state 0' units"),
    (np.full((8, 8), -1), {}, "no units at all"),
    (checkerboard(3, 3), {}, "no complete 4 × 4 block"),
    (checkerboard(4, 4), dict(windows="disjoint", parity=1), "no complete 4 × 4 block"),
    (checkerboard(), dict(nulls=("bogus",)), "null model names"),
    (checkerboard(), dict(levels=(4,)), "levels"),
    (checkerboard(), dict(levels=()), "at least one level"),
    (checkerboard(), dict(n_repeats=1), "n_repeats"),
    (checkerboard(), dict(seed=-1), "seed"),
    (checkerboard(), dict(top=0), "top"),
    (checkerboard(), dict(fractions=(0.0,)), "fractions"),
    (checkerboard(), dict(fractions=None), "fractions"),
    (checkerboard(), dict(states=["a"]), "one name per state"),
    (checkerboard(), dict(windows="diagonal"), "windows"),
    ("not a grid", {}, "grid"),
])
def test_bad_input_is_refused_clearly(grid, kwargs, words):
    with pytest.raises(MotifLabError, match=words.replace("(", r"\(")):
        assembly_report(grid, **kwargs)


def test_level2_only_works_on_a_grid_too_small_for_level3():
    r = assembly_report(checkerboard(3, 6), levels=(2,), n_repeats=3)
    assert sorted(r.levels) == [2]
    with pytest.raises(MotifLabError, match="not in this report"):
        r.level(3)
