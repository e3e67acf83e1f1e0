"""Square compositions of disordered samples (motiflab.assembly) against brute force."""
import math
from collections import Counter

import numpy as np
import pytest

from motiflab.assembly import (
    checkerboard_parity,
    covering_set,
    decode,
    encode,
    entropy_null,
    label_grid,
    shannon_entropy,
    square_motifs,
)
from motiflab.datasets.tilings import (
    PREFERRED_LEVEL2,
    make_pentagon_tiling,
    make_square_units,
    preferred_level2_probs,
)
from motiflab.errors import MotifLabError


def brute_force(grid, windows="all", parity=0):
    """Level-2 and level-3 pattern counters with plain loops (tuples of unit labels)."""
    h, w = grid.shape

    def ok2(i, j):
        if windows == "checkerboard" and (i + j) % 2 != parity:
            return False
        if windows == "disjoint" and (i % 2 or j % 2):
            return False
        return all(grid[i + a, j + b] >= 0 for a in (0, 1) for b in (0, 1))

    l2, l3 = Counter(), Counter()
    for i in range(h - 1):
        for j in range(w - 1):
            if ok2(i, j):
                l2[tuple(int(grid[i + a, j + b]) for a in (0, 1) for b in (0, 1))] += 1
    for i in range(h - 3):
        for j in range(w - 3):
            if windows == "disjoint" and (i % 4 or j % 4):
                continue
            if all(ok2(i + a, j + b) for a in (0, 2) for b in (0, 2)):
                l3[tuple(int(grid[i + a, j + b]) for a in range(4) for b in range(4))] += 1
    return l2, l3


def as_counter(stats):
    out = Counter()
    for c, n in zip(stats.codes, stats.counts):
        out[tuple(decode(c, stats.level, stats.n_states).ravel().tolist())] = int(n)
    return out


def brute_entropy(counter):
    n = sum(counter.values())
    return -sum(c / n * math.log2(c / n) for c in counter.values())


@pytest.mark.parametrize("windows", ["all", "checkerboard", "disjoint"])
@pytest.mark.parametrize("n_states", [2, 3])
def test_counts_and_entropy_equal_brute_force(windows, n_states):
    rng = np.random.default_rng(n_states)
    grid = rng.integers(0, n_states, (37, 41))
    grid[rng.random(grid.shape) < 0.03] = -1  # missing units
    a = square_motifs(grid, n_states, windows=windows, parity=1 if windows == "checkerboard" else 0)
    l2, l3 = brute_force(grid, windows, 1 if windows == "checkerboard" else 0)
    assert as_counter(a.level2) == l2
    assert as_counter(a.level3) == l3
    assert a.level2.n_windows == sum(l2.values()) and a.level3.n_windows == sum(l3.values())
    assert a.level2.entropy_bits == pytest.approx(brute_entropy(l2), abs=1e-12)
    assert a.level3.entropy_bits == pytest.approx(brute_entropy(l3), abs=1e-12)
    assert a.level2.max_entropy_bits == pytest.approx(4 * math.log2(n_states))
    assert a.level3.n_possible == n_states**16


def test_decode_encode_roundtrip_and_rotation_classes():
    rng = np.random.default_rng(0)
    for _ in range(50):
        b2 = rng.integers(0, 3, (2, 2))
        b4 = rng.integers(0, 3, (4, 4))
        assert np.array_equal(decode(encode(b2, 3), 2, 3), b2)
        assert np.array_equal(decode(encode(b4, 3), 3, 3), b4)
    # all 16 binary 2x2 patterns on a grid: 6 classes up to rotation
    grid = np.zeros((2, 32), int)
    for k in range(16):
        grid[:, 2 * k : 2 * k + 2] = decode(k, 2, 2)
    a = square_motifs(grid, 2, windows="disjoint", merge_rotations=True)
    assert len(a.level2.codes) == 6
    assert sorted(a.level2.counts.tolist()) == [1, 1, 2, 4, 4, 4]


def test_uniform_random_grid_entropy_at_maximum():
    u = make_square_units((200, 200), probs=np.full(16, 1 / 16), seed=1)
    a = square_motifs(u.grid, 2)
    null = entropy_null(u.grid, 2, n_repeats=30, seed=2)
    # level 2: within sampling error of the 4-bit maximum
    assert abs(a.level2.entropy_mm_bits - 4.0) < 4 * null[2]["std"] + 1e-4
    assert abs(a.level2.entropy_bits - null[2]["mean"]) < 4 * null[2]["std"]
    assert 4.0 - null[2]["mean"] < 5e-4
    # level 3 (65 536 states, ~39 000 windows): the plug-in cannot reach 16 bits; it
    # agrees with the null of uniform grids of the same size instead
    assert abs(a.level3.entropy_bits - null[3]["mean"]) < 4 * null[3]["std"]
    assert a.level3.entropy_bits < 16


def test_preferred_assembly_recovered():
    probs = preferred_level2_probs()
    u = make_square_units((160, 160), probs=probs, seed=3)
    a = square_motifs(u.grid, 2, windows="disjoint")
    n = a.level2.n_windows
    # the six planted motifs are the six most frequent and cover >= 83 % (paper: > 83 % in six)
    assert set(a.level2.codes[:6].tolist()) == set(PREFERRED_LEVEL2)
    codes, covered = a.level2.cover(0.83)
    assert len(codes) <= 6 and covered >= 0.83
    # empirical entropy = exact entropy of the planted distribution within sampling error
    assert abs(a.level2.entropy_mm_bits - u.entropy_level2_bits) < 4 * a.level2.entropy_std_bits + 2e-3
    assert u.entropy_level2_bits < 3.5 < 4.0  # clearly below the uniform maximum
    # observed frequencies match the planted probabilities (chi-square, 15 dof, p ~ 1e-4 cut)
    obs = np.zeros(16)
    obs[a.level2.codes] = a.level2.counts
    chi2 = ((obs - n * probs) ** 2 / (n * probs)).sum()
    assert chi2 < 45
    # level 3: independent blocks, so H3 = 4 H2 in the limit; with 1600 blocks the
    # plug-in is biased low, but sits far below the 16-bit maximum and above 3 H2
    assert 3 * u.entropy_level2_bits < a.level3.entropy_mm_bits < 16
    # and is lower than for uniform units with the same number of windows
    null = entropy_null(u.grid, 2, windows="disjoint", n_repeats=10, seed=0)
    assert a.level2.entropy_bits < null[2]["mean"] - 10 * null[2]["std"]
    obs_null = entropy_null(u.grid, 2, windows="disjoint", unit_probs="observed", n_repeats=10, seed=0)
    assert a.level2.entropy_bits < obs_null[2]["mean"] - 10 * obs_null[2]["std"]


def test_pentagon_tiling_from_positions():
    t = make_pentagon_tiling((40, 40), rotation_deg=9.0, jitter_px=1.0, seed=4)
    labs, cnt = np.unique(t.labels, return_counts=True)
    frac = dict(zip(labs, cnt / cnt.sum()))
    assert 0.02 < frac["V"] < 0.07 and 0.30 < frac["filled"] < 0.45
    ug = label_grid(t.positions, t.labels, subdivide=(2, 2), states=["empty", "filled"], ignore=["V"])
    assert ug.grid.shape == (40, 40) and ug.n_duplicates == 0
    par = checkerboard_parity(ug.positions)
    # the recovered grid is the truth grid up to a symmetry of the square (lattice
    # vectors are chosen by convention): find it and compare the checkerboard counts
    truth = t.units.binary_grid
    ref = square_motifs(truth, 2, windows="checkerboard", parity=t.square_parity)
    got = square_motifs(ug.grid, 2, windows="checkerboard", parity=par)
    assert sorted(got.level2.counts.tolist()) == sorted(ref.level2.counts.tolist())
    assert got.level2.entropy_bits == pytest.approx(ref.level2.entropy_bits, abs=1e-12)
    assert got.level3.entropy_bits == pytest.approx(ref.level3.entropy_bits, abs=1e-12)
    matches = [np.array_equal(np.rot90(g, k), truth) for g in (ug.grid, ug.grid.T) for k in range(4)]
    assert any(matches)


def test_coverage_and_anchors():
    u = make_square_units((64, 64), seed=5)
    a = square_motifs(u.grid, 2, windows="disjoint")
    top = a.level2.codes[:6]
    cov = a.coverage_fraction(2, top)
    # disjoint windows tile the grid, so unit coverage equals window coverage
    assert cov == pytest.approx(a.level2.counts[:6].sum() / a.level2.n_windows)
    anc = a.anchors(2, int(top[0]))
    assert len(anc) == a.level2.counts[0]
    assert np.all(anc % 2 == 0)
    assert a.level2.top(3)[0]["block"].shape == (2, 2)


def test_shannon_and_covering_set():
    assert shannon_entropy([5, 5, 5, 5]) == pytest.approx(2.0)
    assert shannon_entropy([3, 0, 0]) == 0.0
    assert shannon_entropy([10, 10], "miller-madow") == pytest.approx(1 + 1 / (40 * math.log(2)))
    idx, cov = covering_set([1, 50, 30, 19], 0.8)
    assert idx.tolist() == [1, 2] and cov == pytest.approx(0.8)
    idx, cov = covering_set([1, 50, 30, 19], 0.81)
    assert idx.tolist() == [1, 2, 3]


def test_bad_inputs():
    with pytest.raises(MotifLabError, match="2-D"):
        square_motifs(np.zeros(10, int))
    with pytest.raises(MotifLabError, match="too small"):
        square_motifs(np.zeros((1, 5), int))
    with pytest.raises(MotifLabError, match="n_states"):
        square_motifs(np.full((4, 4), 3), n_states=2)
    with pytest.raises(MotifLabError, match="integer"):
        square_motifs(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(MotifLabError, match="no complete"):
        square_motifs(np.array([[0, -1], [-1, 0]]), 2)
    with pytest.raises(MotifLabError, match="windows"):
        square_motifs(np.zeros((4, 4), int), windows="diagonal")
    with pytest.raises(MotifLabError, match="different lengths"):
        label_grid(np.random.default_rng(0).uniform(0, 9, (10, 2)), ["a"] * 9)
    with pytest.raises(MotifLabError, match="probs"):
        make_square_units((8, 8), probs=np.ones(16))
    with pytest.raises(MotifLabError, match="fraction"):
        covering_set([1, 2], 0.0)
