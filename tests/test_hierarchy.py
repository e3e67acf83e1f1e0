"""Hierarchy of motif-cells (motiflab.hierarchy) against planted and brute-force ground truth."""
import itertools
import json
import warnings
from collections import Counter, deque

import numpy as np
import pytest

from motiflab.datasets.planted import make_planted, pattern_key
from motiflab.errors import MotifLabError
from motiflab.hierarchy import build_hierarchy, motif_cells
from motiflab.lattice import Lattice


# --------------------------------------------------------------------------- helpers


def node_comp(h, node_id):
    return tuple((str(a), int(b)) for a, b in h.node(node_id).composition)


def node_key(h, m, rotations=None):
    """Independent canonical key of a node's pattern with compositions spelled out."""
    cells = [(r[0], r[1]) for r in m.pattern]
    comps = [node_comp(h, r[2]) for r in m.pattern]
    return pattern_key(cells, comps, rotations)


def minority_counts(h):
    return {node_key(h, m): m.count for m in h.motif_cells if not m.dominant and m.count > 0}


def expected_keys(sample):
    out = {}
    for t, pat in sample.expected_patterns.items():
        out[pattern_key([(a, b) for a, b, _ in pat], [c for _, _, c in pat])] = sample.expected_counts[t]
    return out


def total_composition(pat):
    c = Counter()
    for *_, comp in pat:
        for lab, n in comp:
            c[lab] += n
    return tuple(sorted(c.items()))


@pytest.fixture(scope="module")
def planted():
    return make_planted(shape=(1024, 1024), seed=1)


# --------------------------------------------------------------------------- planted clusters


def test_planted_generator_ground_truth(planted):
    assert set(planted.expected_counts) == {"vacancy", "pair", "triangle", "line", "metal_vacancy"}
    assert all(n >= 10 for n in planted.expected_counts.values())
    assert all(planted.connected.values())
    assert planted.min_spacing_cells >= 3
    # no two planted footprints within 3 cells of each other
    cells = [np.array(c["cells"]) for c in planted.clusters]
    for a, b in itertools.combinations(cells, 2):
        d = np.abs(a[:, None, :] - b[None, :, :]).max(axis=2).min()
        assert d >= 3
    assert planted.expected_patterns["vacancy"][0][2] in {(("Mo#1", 1), ("Se1", 1)), (("Mo#1", 1), ("Se2", 1))}


def test_planted_exact_counts_on_generator_cells(planted):
    pos, lab, _ = planted.observed(jitter_px=0.5, seed=0)
    h = build_hierarchy(pos, lab, lattice=planted.truth_lattice)
    assert node_comp(h, 0) == planted.host_composition
    assert minority_counts(h) == expected_keys(planted)


@pytest.mark.parametrize("jitter", [0.0, 0.5])
def test_planted_exact_counts_with_found_lattice(planted, jitter):
    # find_lattice may pair each metal with a different neighbouring chalcogen than the
    # generator, which changes the cell patterns but not the counts or the total
    # composition of each motif-cell
    pos, lab, _ = planted.observed(jitter_px=jitter, seed=3)
    h = build_hierarchy(pos, lab)
    got = sorted((tuple((str(a), int(b)) for a, b in m.composition), m.count)
                 for m in h.motif_cells if not m.dominant and m.count > 0)
    want = sorted((total_composition(planted.expected_patterns[t]), n) for t, n in planted.expected_counts.items())
    assert got == want


@pytest.mark.slow
def test_planted_exact_counts_at_realistic_dose():
    from scipy.spatial import cKDTree

    from motiflab.columns import find_columns

    s = make_planted(shape=(768, 768), dose=100, seed=4)
    cols = find_columns(s.image.image)
    tr = s.image.truth
    vis = tr.visible
    d, i = cKDTree(tr.positions[vis]).query(cols.positions)
    ok = d < 2.0
    assert ok.sum() >= vis.sum() - 2  # every visible column found
    lab = tr.fine[vis][i[ok]]
    h = build_hierarchy(cols.positions[ok], lab, lattice=s.truth_lattice)
    assert minority_counts(h) == expected_keys(s)
    h2 = build_hierarchy(cols.positions[ok], lab)
    assert sorted(m.count for m in h2.motif_cells if not m.dominant and m.count > 0) == sorted(
        s.expected_counts.values())


def test_label_errors_bound_false_positives(planted):
    # with a fraction e of wrong labels, each wrong label creates at most one spurious
    # component and spoils at most one planted one: the stated false-positive rate is
    # at most (number of wrong labels) / (number of cells) ~ 2 e per cell
    pos, lab, n_err = planted.observed(jitter_px=0.3, label_error=0.002, seed=7)
    assert n_err > 5
    h = build_hierarchy(pos, lab, lattice=planted.truth_lattice)
    got = minority_counts(h)
    want = expected_keys(planted)
    spurious = sum(n for k, n in got.items() if k not in want)
    assert spurious <= n_err
    assert spurious / len(h.cells) <= 2 * 0.002 * 1.5
    for k, n in want.items():
        assert n - n_err <= got.get(k, 0) <= n
    assert sum(n - got.get(k, 0) for k, n in want.items()) <= n_err


# --------------------------------------------------------------------------- brute force


def _grid_sample(shape, density, n_types, seed, lattice):
    rng = np.random.default_rng(seed)
    comp = np.zeros(shape, int)
    m = rng.random(shape) < density
    comp[m] = rng.integers(1, n_types + 1, m.sum())
    ij = np.argwhere(np.ones(shape, bool))
    pos = lattice.cell_centers(ij)
    labels = np.array([f"t{c}" for c in comp.ravel()])
    return comp, pos, labels


def _brute_force(comp, offsets, rotations):
    """BFS components of non-zero cells and their rotation-canonical keys (no motiflab code)."""
    h, w = comp.shape
    # cells on the border of the grid are excluded by build_hierarchy (edge margin); mimic it
    inner = np.zeros_like(comp, bool)
    inner[1:-1, 1:-1] = True
    seen = np.zeros_like(comp, bool)
    out = Counter()
    for s in zip(*np.nonzero((comp > 0) & inner)):
        if seen[s]:
            continue
        q, cells = deque([s]), []
        seen[s] = True
        while q:
            a, b = q.popleft()
            cells.append((a, b))
            for da, db in offsets:
                n = (a + da, b + db)
                if inner[n] if 0 <= n[0] < h and 0 <= n[1] < w else False:
                    if comp[n] > 0 and not seen[n]:
                        seen[n] = True
                        q.append(n)
        out[pattern_key(cells, [((f"t{comp[c]}", 1),) for c in cells], rotations)] += 1
    return out


def _gram_rotations(lat):
    """All integer unimodular matrices (entries -1..1) preserving the lattice metric."""
    g = lat.matrix.T @ lat.matrix
    rots = []
    for e in itertools.product((-1, 0, 1), repeat=4):
        r = np.array(e).reshape(2, 2)
        if round(np.linalg.det(r)) == 1 and np.allclose(r.T @ g @ r, g, rtol=1e-6, atol=1e-6):
            rots.append(tuple(map(tuple, r)))
    return rots


@pytest.mark.parametrize("rotations", ["square", "none"])
def test_canonical_forms_match_brute_force_square(rotations):
    lat = Lattice(u=[0.0, 10.0], v=[10.0, 0.0], origin=[0.0, 0.0], basis=[[0.5, 0.5]])
    comp, pos, labels = _grid_sample((70, 70), 0.12, 3, seed=11, lattice=lat)
    h = build_hierarchy(pos, labels, lattice=lat, rotations=rotations, edge_margin=0.0,
                        fov=(5.0 + 0.01, 5.0 + 0.01, 695.0 - 0.01, 695.0 - 0.01))
    rots = None if rotations == "square" else [((1, 0), (0, 1))]
    want = _brute_force(comp, [(1, 0), (-1, 0), (0, 1), (0, -1)], rots)
    got = {node_key(h, m, rots): m.count for m in h.motif_cells if not m.dominant and m.count > 0}
    assert got == dict(want)
    assert sum(want.values()) > 300  # many components of many shapes
    assert max(len(k) for k in want) >= 5


def test_canonical_forms_match_brute_force_hexagonal():
    lat = Lattice(u=[0.0, 10.0], v=[-8.660254037844386, -5.0], origin=[0.0, 0.0], basis=[[0.5, 0.5]])
    comp, pos, labels = _grid_sample((60, 60), 0.10, 2, seed=5, lattice=lat)
    c = lat.cell_centers(np.array([[1, 1], [58, 58], [1, 58], [58, 1]]))
    h = build_hierarchy(pos, labels, lattice=lat, rotations="lattice", edge_margin=0.0,
                        fov=(c[:, 0].min() - 0.1, c[:, 1].min() - 0.1, c[:, 0].max() + 0.1, c[:, 1].max() + 0.1))
    rots = _gram_rotations(lat)
    assert len(rots) == 6
    # the third shortest lattice vector of this 120-degree basis is u + v
    offsets = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)]
    # restrict brute force to the cells build_hierarchy kept (inside the parallelogram fov)
    keep = np.zeros(comp.shape, bool)
    keep[h.cells[:, 0], h.cells[:, 1]] = True
    comp2 = np.where(keep, comp, 0)
    pad = np.zeros((62, 62), int)
    pad[1:-1, 1:-1] = comp2
    want = _brute_force(pad, offsets, rots)
    got = {node_key(h, m, rots): m.count for m in h.motif_cells if not m.dominant and m.count > 0}
    assert got == dict(want)


def test_rotation_merging_of_trominoes():
    lat = Lattice(u=[0.0, 10.0], v=[10.0, 0.0], basis=[[0.5, 0.5]])
    comp = np.zeros((30, 30), int)
    ells = [[(0, 0), (1, 0), (1, 1)], [(0, 0), (0, 1), (1, 0)], [(0, 0), (0, 1), (1, 1)], [(0, 1), (1, 0), (1, 1)]]
    for k, shape in enumerate(ells):
        for a, b in shape:
            comp[5 + 6 * k + a, 5 + b] = 1
    ij = np.argwhere(np.ones(comp.shape, bool))
    labels = np.where(comp.ravel() > 0, "d", "h")
    h = build_hierarchy(lat.cell_centers(ij), labels, lattice=lat)
    lvl3 = [m for m in h.motif_cells if m.level == 3]
    assert len(lvl3) == 1 and lvl3[0].count == 4
    h_none = build_hierarchy(lat.cell_centers(ij), labels, lattice=lat, rotations="none")
    assert sorted(m.count for m in h_none.motif_cells if m.level == 3) == [1, 1, 1, 1]


def _chain_sample():
    lat = Lattice(u=[0.0, 10.0], v=[10.0, 0.0], basis=[[0.5, 0.5]])
    comp = np.zeros((30, 30), int)
    shapes = {
        "domino": [(0, 0), (0, 1)],
        "ell": [(0, 0), (1, 0), (1, 1)],
        "line4": [(0, 0), (0, 1), (0, 2), (0, 3)],
        "single": [(0, 0)],
    }
    for k, (name, cells) in enumerate(shapes.items()):
        for a, b in cells:
            comp[4 + 6 * k + a, 4 + b] = 1
    ij = np.argwhere(np.ones(comp.shape, bool))
    labels = np.where(comp.ravel() > 0, "d", "h")
    return lat, lat.cell_centers(ij), labels


def test_edges_levels_and_graph():
    lat, pos, labels = _chain_sample()
    h = build_hierarchy(pos, labels, lattice=lat, max_level_gap=1, nearest=False)
    by_level = {m.level: m for m in h.motif_cells if not m.dominant}
    single, dom, ell, line4 = by_level[1], by_level[2], by_level[3], by_level[4]
    assert {m.count for m in (single, dom, ell, line4)} == {1}
    assert (single.id, dom.id) in h.edges and (dom.id, ell.id) in h.edges
    assert all(b != line4.id for _, b in h.edges)  # nothing at level 3 fits in a straight line of 4
    h2 = build_hierarchy(pos, labels, lattice=lat, max_level_gap=1, nearest=True)
    l4 = [m for m in h2.motif_cells if m.level == 4][0]
    assert {a for a, b in h2.edges if b == l4.id} == {[m for m in h2.motif_cells if m.level == 2][0].id}
    h3 = build_hierarchy(pos, labels, lattice=lat, max_level_gap=None)
    assert (single.id, line4.id) in h3.edges
    g = h.graph
    assert g.number_of_nodes() == len(h.motif_cells)
    assert g.nodes[ell.id]["level"] == 3 and g.nodes[ell.id]["count"] == 1
    assert g.nodes[ell.id]["locations"][0]["cells"]
    assert all(g.edges[e]["level_gap"] == 1 for e in g.edges)


def test_json_contract(planted, tmp_path):
    pos, lab, _ = planted.observed(jitter_px=0.3, seed=1)
    h = build_hierarchy(pos, lab)
    js = h.to_json()
    text = json.dumps(js)  # plain types only
    back = json.loads(text)
    assert set(back) >= {"lattice", "motif_cells", "edges"}
    assert set(back["lattice"]) >= {"u", "v"} and len(back["lattice"]["u"]) == 2
    ids = [m["id"] for m in back["motif_cells"]]
    assert ids == list(range(len(ids)))
    level1 = {m["id"] for m in back["motif_cells"] if m["level"] == 1}
    assert [m["dominant"] for m in back["motif_cells"]].count(True) == 1 and back["motif_cells"][0]["dominant"]
    for m in back["motif_cells"]:
        assert set(m) >= {"id", "level", "count", "dominant", "composition", "pattern", "locations"}
        assert len(m["pattern"]) == m["level"]
        assert all(isinstance(x, int) for row in m["pattern"] for x in row)
        assert all(row[2] in level1 for row in m["pattern"])
        assert all(isinstance(c, list) and len(c) == 2 and isinstance(c[1], int) for c in m["composition"])
        if not m["dominant"]:
            assert len(m["locations"]) == m["count"]
            for loc in m["locations"]:
                assert len(loc["cells"]) == m["level"] and len(loc["px"]) == 2
    lv = {m["id"]: m["level"] for m in back["motif_cells"]}
    assert back["edges"] and all(lv[a] < lv[b] for a, b in back["edges"])
    path = tmp_path / "h.json"
    h.save_json(path)
    assert json.loads(path.read_text())["motif_cells"] == back["motif_cells"]
    # column bookkeeping: every planted defect column maps to a non-host motif-cell
    node = h.column_motif_cell()
    assert node.shape == (len(pos),)
    assert np.all(node[lab == "Se1"] > 0)


def test_motif_cells_function():
    cells = np.array([[0, 0], [0, 0], [0, 1], [0, 1], [1, 0], [1, 0], [1, 1]])
    labels = ["a", "b", "a", "b", "a", "b", "a"]
    cc = motif_cells(cells, labels)
    assert cc.composition_list(cc.host) == [["a", 1], ["b", 1]]
    assert cc.minority.tolist() == [False, False, False, True]
    assert cc.composition_counts.tolist() == [3, 1]


def test_bad_inputs():
    lat = Lattice(u=[0.0, 10.0], v=[10.0, 0.0], basis=[[0.5, 0.5]])
    pos = lat.cell_centers(np.argwhere(np.ones((10, 10), bool)))
    with pytest.raises(MotifLabError, match="different lengths"):
        build_hierarchy(pos, ["a"] * 99, lattice=lat)
    with pytest.raises(MotifLabError, match="too few"):
        build_hierarchy(pos[:5], ["a"] * 5)
    with pytest.raises(MotifLabError, match="too few complete cells"):
        build_hierarchy(pos[:3], ["a"] * 3, lattice=lat)
    rng = np.random.default_rng(0)
    with pytest.raises(MotifLabError, match="voronoi"):
        build_hierarchy(rng.uniform(0, 300, (900, 2)), ["a"] * 900)
    with pytest.raises(MotifLabError, match="rotations"):
        build_hierarchy(pos, ["a"] * 100, lattice=lat, rotations="hex")
    with pytest.raises(MotifLabError, match="max_level_gap"):
        build_hierarchy(pos, ["a"] * 100, lattice=lat, max_level_gap=0)
    with pytest.raises(MotifLabError, match="cells"):
        build_hierarchy(pos, ["a"] * 100, cells="hexagons")
    with pytest.warns(UserWarning, match="same composition"):
        h = build_hierarchy(pos, ["a"] * 100, lattice=lat)
    assert len(h.motif_cells) == 1 and h.motif_cells[0].dominant and h.edges == []
    assert json.loads(json.dumps(h.to_json()))["notes"]


def test_voronoi_mode_counts_planted_graphs():
    rng = np.random.default_rng(3)
    g = np.argwhere(np.ones((48, 48), bool)).astype(float) * 10.0
    g += rng.normal(0, 1.0, g.shape)
    lab = np.full(len(g), "h", dtype=object)
    idx = {tuple(k): n for n, k in enumerate(np.argwhere(np.ones((48, 48), bool)))}
    shapes = {"single": [(0, 0)], "pair": [(0, 0), (0, 1)], "row3": [(0, 0), (0, 1), (0, 2)]}
    want = Counter()
    slots = [(a, b) for a in range(3, 44, 6) for b in range(3, 44, 6)]
    for k, s in enumerate(slots):
        name = list(shapes)[k % 3]
        for da, db in shapes[name]:
            lab[idx[(s[0] + da, s[1] + db)]] = "d"
        want[len(shapes[name])] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = build_hierarchy(g, lab.astype(str), cells="voronoi")
    got = {m.level: m.count for m in h.motif_cells if not m.dominant and m.count > 0}
    assert got == dict(want)
    row3 = [m for m in h.motif_cells if m.level == 3][0]
    assert len(row3.pattern_edges) == 2  # a path, not a triangle
    assert h.lattice is None and json.loads(json.dumps(h.to_json()))["lattice"] is None
    assert any(h.node(b).level == 3 for a, b in h.edges)
