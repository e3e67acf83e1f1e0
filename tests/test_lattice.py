"""Lattice vectors, cell indexing and Voronoi cells (motiflab.lattice)."""
import numpy as np
import pytest

from motiflab.datasets import make_perovskite, make_tmd
from motiflab.errors import MotifLabError
from motiflab.lattice import (
    Lattice,
    find_lattice,
    index_cells,
    lattice_equivalent,
    voronoi_cells,
)


def _observed(img, jitter=0.3, seed=0):
    tr = img.truth
    vis = tr.visible
    rng = np.random.default_rng(seed)
    return tr.positions[vis] + rng.normal(0, jitter, (vis.sum(), 2)), vis


@pytest.fixture(scope="module")
def strained():
    # 2 % biaxial strain and a linear drift of 2 % of the frame, a rotated lattice
    return make_tmd("MoSe2", shape=(640, 640), strain=0.02, drift=(12.8, 12.8), rotation=17.0,
                    chalcogen_vacancy_rate=0.03, dose=300, seed=5)


def test_recovers_strained_drifted_lattice_from_columns(strained):
    p, _ = _observed(strained, jitter=0.3)
    lat = find_lattice(p)
    ok, rel, ang = lattice_equivalent(lat.u, lat.v, *strained.lattice_vectors, rtol=0.005, atol_deg=0.2)
    assert ok, (rel, ang)
    # far inside the required 0.5 % / 0.2 degrees with ~4000 columns
    assert rel < 5e-4 and ang < 0.05
    assert lat.kind == "hexagonal"
    assert len(lat.basis) == 2
    # residual is the localisation noise: sqrt(2) * 0.3 px
    assert lat.residual_px == pytest.approx(0.3 * np.sqrt(2), rel=0.15)


def test_recovers_lattice_from_image_fft(strained):
    lat = find_lattice(None, method="fft", image=strained.image)
    ok, rel, ang = lattice_equivalent(lat.u, lat.v, *strained.lattice_vectors, rtol=0.005, atol_deg=0.2)
    assert ok, (rel, ang)
    # fft start refined by least squares on the columns
    p, _ = _observed(strained)
    lat2 = find_lattice(p, method="fft", image=strained.image)
    ok2, rel2, ang2 = lattice_equivalent(lat2.u, lat2.v, *strained.lattice_vectors)
    assert ok2 and rel2 < 5e-4 and ang2 < 0.05
    # fft of the points themselves (no image)
    lat3 = find_lattice(p, method="fft")
    assert lattice_equivalent(lat3.u, lat3.v, *strained.lattice_vectors)[0]


def test_robust_to_missing_and_spurious_columns(strained):
    p, _ = _observed(strained)
    rng = np.random.default_rng(1)
    p = p[rng.random(len(p)) > 0.05]  # 5 % missed columns
    extra = rng.uniform(0, 640, (len(p) // 20, 2))  # 5 % spurious points
    lat = find_lattice(np.vstack([p, extra]))
    ok, rel, ang = lattice_equivalent(lat.u, lat.v, *strained.lattice_vectors)
    assert ok, (rel, ang)
    assert lat.n_used >= 0.95 * len(p)


def test_reduced_basis_convention(strained):
    p, _ = _observed(strained)
    lat = find_lattice(p)
    u, v = lat.u, lat.v
    assert np.hypot(*u) <= np.hypot(*v) * 1.0001
    assert np.dot(u, v) <= 1e-9
    assert u[0] * v[1] - u[1] * v[0] > 0
    assert 119.0 < lat.angle_deg < 121.0


def test_cells_pair_one_metal_with_one_chalcogen():
    img = make_tmd("MoSe2", shape=(400, 400), seed=2, drift=(4, -6), strain=-0.015)
    p, vis = _observed(img, jitter=0.4)
    lat = find_lattice(p)
    ij = index_cells(p, lat)
    sub = img.truth.sublattice[vis]
    cells, inv = np.unique(ij, axis=0, return_inverse=True)
    inv = inv.ravel()
    n_metal = np.bincount(inv, weights=(sub == "metal"))
    n_chalc = np.bincount(inv, weights=(sub == "chalcogen"))
    full = (n_metal + n_chalc) == 2
    assert full.mean() > 0.85  # the rest are cut by the frame
    assert np.all(n_metal[full] == 1) and np.all(n_chalc[full] == 1)
    # the found cells are an integer affine map of the generator's cells (same lattice)
    metal = sub == "metal"
    t = img.truth.cell[vis][metal].astype(float)
    a = np.column_stack([t, np.ones(len(t))])
    coef, *_ = np.linalg.lstsq(a, ij[metal].astype(float), rcond=None)
    assert np.allclose(coef, np.round(coef), atol=1e-6)
    assert abs(round(np.linalg.det(np.round(coef[:2])))) == 1


def test_square_lattice_and_rotations():
    img = make_perovskite(shape=(384, 384), seed=0)
    p, vis = _observed(img, jitter=0.2)
    a_sites = img.truth.sublattice[vis] == "A"
    lat = find_lattice(p[a_sites])
    assert lat.kind == "square"
    assert len(lat.rotations()) == 4
    ok, rel, ang = lattice_equivalent(lat.u, lat.v, *img.lattice_vectors)
    assert ok, (rel, ang)
    # without species, A, B and O columns together form a square lattice of period a/2
    lat2 = find_lattice(p)
    ok2, rel2, ang2 = lattice_equivalent(lat2.u, lat2.v, *(np.asarray(img.lattice_vectors) / 2))
    assert ok2, (rel2, ang2)
    hexa = Lattice(u=[0, 10], v=[-8.660254, -5])
    rots = hexa.rotations()
    assert len(rots) == 6
    # a 60 degree rotation in index space maps u to a shortest lattice vector
    for r in rots:
        w = hexa.matrix @ r @ np.array([1, 0])
        assert np.hypot(*w) == pytest.approx(10, rel=1e-6)
    assert len(hexa.neighbor_offsets()) == 6
    assert len(Lattice(u=[0, 10], v=[7, 0]).rotations()) == 2


def test_no_lattice_message_suggests_voronoi():
    rng = np.random.default_rng(0)
    with pytest.raises(MotifLabError, match="no lattice found.*voronoi"):
        find_lattice(rng.uniform(0, 500, (2000, 2)))


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.zeros((5, 2)) + np.arange(5)[:, None], "too few columns"),
        (np.full((20, 2), np.nan), "NaN"),
        (np.zeros((20, 3)), "shape"),
        ("abc", "numeric"),
    ],
)
def test_bad_positions(bad, msg):
    with pytest.raises(MotifLabError, match=msg):
        find_lattice(bad)


def test_bad_lattice_and_method():
    with pytest.raises(MotifLabError, match="collinear"):
        Lattice(u=[0, 1], v=[0, 2])
    with pytest.raises(MotifLabError, match="method"):
        find_lattice(np.random.default_rng(0).uniform(0, 9, (20, 2)), method="magic")
    with pytest.raises(MotifLabError, match="Lattice"):
        index_cells(np.zeros((3, 2)), lattice=None)


def test_index_cells_and_fractional_roundtrip():
    lat = Lattice(u=[0.0, 10.0], v=[-8.0, -5.0], origin=[3.0, 4.0])
    ij = np.array([[0, 0], [2, -1], [-3, 5]])
    centres = lat.cell_centers(ij)
    assert np.array_equal(index_cells(centres, lat), ij)
    assert np.allclose(lat.to_fractional(lat.to_pixels(ij)), ij)
    js = lat.to_json()
    assert js["u"] == [0.0, 10.0] and isinstance(js["angle_deg"], float)


def test_voronoi_cells_neighbours():
    # honeycomb: every interior cell has 3 Voronoi neighbours; square grid: 4
    img = make_tmd("MoSe2", shape=(300, 300), seed=0)
    p = img.truth.positions
    vc = voronoi_cells(p)
    nb = vc.neighbor_counts()
    centre = np.all(np.abs(p - 150) < 100, axis=1)
    assert np.all(nb[centre] == 3)
    g = np.stack(np.meshgrid(np.arange(20), np.arange(20), indexing="ij"), -1).reshape(-1, 2) * 10.0
    g += np.random.default_rng(0).normal(0, 0.3, g.shape)
    vg = voronoi_cells(g)
    inner = np.all((g > 25) & (g < 165), axis=1)
    # a jittered square grid is 4-connected plus occasional diagonals from the jitter
    assert np.median(vg.neighbor_counts()[inner]) >= 4
    ok = vg.bounded & inner
    assert np.allclose(vg.areas[ok], 100, rtol=0.15)
    assert vg.adjacency().nnz == 2 * len(vg.edges)
    with pytest.raises(MotifLabError, match="collinear"):
        voronoi_cells(np.column_stack([np.arange(10.0), np.arange(10.0)]))


def test_rotation_order_of_common_lattices():
    from motiflab.lattice import rotation_order

    assert rotation_order([10, 0], [-5, 5 * np.sqrt(3)]) == 6
    assert rotation_order([0, 7], [7, 0]) == 4
    assert rotation_order([10, 0], [0, 13]) == 2
    # a few % of scan distortion does not break the symmetry, a rectangle of 1:1.2 does
    assert rotation_order([10, 0], [-5, 5 * np.sqrt(3) * 1.03]) == 6
    assert rotation_order([10, 0], [0, 12]) == 2
    with pytest.raises(MotifLabError, match="non-collinear"):
        rotation_order([1, 0], [2, 0])
