"""Tests for motiflab.datasets: synthetic ADF/ABF-STEM images with ground truth."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import ndimage, stats
from scipy.spatial import cKDTree

from motiflab.datasets import (
    TMD_MATERIALS,
    ColumnTruth,
    SyntheticImage,
    load_sample,
    make_perovskite,
    make_tmd,
    tmd_neighbor_cells,
)
from motiflab.datasets._render import poisson_counts
from motiflab.errors import MotifLabError


def sample_at(img: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Bilinear image values at sub-pixel positions."""
    return ndimage.map_coordinates(img.astype(np.float64), pos.T, order=1)


def centroids(img: np.ndarray, pos: np.ndarray, radius: float = 4.0, n_iter: int = 15) -> np.ndarray:
    """Iterated local centre of mass in a disk that follows the estimate.

    Starts at the rounded truth position (so it only knows the pixel), then
    re-centres the disk on the running estimate; the local minimum is subtracted.
    """
    yy, xx = np.mgrid[-6:7, -6:7].astype(float)
    keep = yy**2 + xx**2 <= radius**2
    yy, xx = yy[keep], xx[keep]
    est = np.round(pos).astype(float)
    for _ in range(n_iter):
        coords = np.stack([est[:, :1] + yy[None], est[:, 1:] + xx[None]])
        v = ndimage.map_coordinates(img.astype(float), coords.reshape(2, -1), order=1)
        v = v.reshape(len(est), -1)
        v = v - v.min(axis=1, keepdims=True)
        est = est + np.stack([(v * yy).sum(1), (v * xx).sum(1)], 1) / v.sum(1, keepdims=True)
    return est


def interior(truth: ColumnTruth, shape, margin: float = 10.0) -> np.ndarray:
    p = truth.positions
    return (p.min(axis=1) > margin) & (p[:, 0] < shape[0] - 1 - margin) & (p[:, 1] < shape[1] - 1 - margin)


# ---------------------------------------------------------------------------
# determinism and containers
# ---------------------------------------------------------------------------


def test_same_seed_same_arrays_and_different_seed_differs():
    kw = dict(shape=(128, 160), chalcogen_vacancy_rate=0.05, metal_vacancy_rate=0.02,
              dose=30, scan_noise=0.4, rotation=11)
    a, b = make_tmd(seed=5, **kw), make_tmd(seed=5, **kw)
    c = make_tmd(seed=6, **kw)
    assert a.image.dtype == np.float32 and a.image.shape == (128, 160)
    np.testing.assert_array_equal(a.image, b.image)
    for k, v in a.truth.to_table().items():
        np.testing.assert_array_equal(v, b.truth.to_table()[k])
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.truth.species, c.truth.species)


def test_dose_series_shares_structure_and_jitter():
    kw = dict(shape=(128, 128), chalcogen_vacancy_rate=0.1, scan_noise=0.3, seed=3)
    clean, noisy = make_tmd(**kw), make_tmd(dose=5, **kw)
    np.testing.assert_array_equal(clean.truth.species, noisy.truth.species)
    np.testing.assert_array_equal(clean.truth.positions, noisy.truth.positions)
    # Counts scatter around dose * clean image.
    assert abs(np.corrcoef(clean.image.ravel(), noisy.image.ravel())[0, 1]) > 0.5


def test_truth_table_and_len():
    s = make_tmd(shape=(64, 64), chalcogen_vacancy_rate=0.2, seed=1)
    t = s.truth
    tab = t.to_table()
    assert set(tab) == {"row", "col", "species", "fine", "visible", "sublattice", "cell_i",
                        "cell_j", "basis", "intensity"}
    assert all(len(v) == len(t) for v in tab.values())
    assert t.positions.dtype == np.float64 and t.cell.dtype.kind == "i"
    # every site centre lies in the image; invisible exactly where empty
    p = t.positions
    assert p.min() >= -0.5 and p[:, 0].max() < 63.5 and p[:, 1].max() < 63.5
    np.testing.assert_array_equal(t.visible, t.species != "vacancy")
    # index() round trip
    k = 17
    assert t.index(tuple(t.cell[k]), t.sublattice[k]) == k


# ---------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("material", sorted(TMD_MATERIALS))
def test_hexagonal_geometry_and_coverage(material):
    ps, rot, strain = 0.025, 23.0, 0.02
    s = make_tmd(material, shape=(150, 170), pixel_size=ps, rotation=rot, strain=strain)
    a_px = TMD_MATERIALS[material]["a"] * (1 + strain) / ps
    u, v = s.lattice_vectors
    assert np.linalg.norm(u) == pytest.approx(a_px, rel=1e-12)
    assert np.linalg.norm(v) == pytest.approx(a_px, rel=1e-12)
    assert np.degrees(np.arccos(u @ v / a_px**2)) == pytest.approx(60.0, abs=1e-9)
    # u at +rot degrees counter-clockwise on screen (row axis points down)
    assert np.degrees(math.atan2(-u[0], u[1])) == pytest.approx(rot, abs=1e-9)
    t = s.truth
    met, cha = t.positions[t.sublattice == "metal"], t.positions[t.sublattice == "chalcogen"]
    assert abs(len(met) - len(cha)) <= 0.1 * len(met)
    # each metal has 3 chalcogen columns at a/sqrt(3), none closer
    d, _ = cKDTree(cha).query(met, k=4)
    inner = interior(t, s.shape, margin=a_px)[t.sublattice == "metal"]
    np.testing.assert_allclose(d[inner, :3], a_px / math.sqrt(3), rtol=1e-9)
    assert np.all(d[inner, 3] > 1.9 * a_px / math.sqrt(3))
    # lattice covers the whole frame, corners included
    yy, xx = np.mgrid[0:150:3, 0:170:3]
    pts = np.column_stack([yy.ravel(), xx.ravel()]).astype(float)
    dmin, _ = cKDTree(t.positions).query(pts)
    nn = a_px / math.sqrt(3)
    far_from_edge = (pts.min(axis=1) >= nn) & (pts[:, 0] <= 149 - nn) & (pts[:, 1] <= 169 - nn)
    assert dmin[far_from_edge].max() <= nn + 1e-9  # hexagon centres are the farthest points
    assert dmin.max() <= a_px  # edges and corners: sites up to the border are kept
    # cell (0, 0)'s metal sits at the image centre
    k = t.index((0, 0), "metal")
    np.testing.assert_allclose(t.positions[k], [(150 - 1) / 2, (170 - 1) / 2])
    np.testing.assert_allclose(
        t.positions[t.index((0, 0), "chalcogen")] - t.positions[k], (u + v) / 3, atol=1e-9
    )


def test_drift_makes_lattice_affine_and_truth_follows():
    s = make_tmd(shape=(200, 200), drift=(8.0, -12.0), rotation=30)
    s0 = make_tmd(shape=(200, 200), rotation=30)
    t = s.truth
    # apparent positions: exactly the affine map of the cell indices
    metal = t.sublattice == "metal"
    pred = np.asarray(s.params["lattice_origin_px"]) + t.cell[metal] @ s.lattice_vectors
    np.testing.assert_allclose(t.positions[metal], pred, atol=1e-9)
    assert not np.allclose(s.lattice_vectors, s0.lattice_vectors)
    # column displacement grows down the frame: bottom rows moved by ~drift
    k = t.index((0, 0), "metal")
    k0 = s0.truth.index((0, 0), "metal")
    shift = t.positions[k] - s0.truth.positions[k0]
    assert shift[1] == pytest.approx(-12.0 * s.truth.positions[k, 0] / 200, rel=1e-9)


# ---------------------------------------------------------------------------
# intensities
# ---------------------------------------------------------------------------


def test_mose2_se2_brighter_than_mo_and_intensity_is_z17():
    s = make_tmd("MoSe2", shape=(160, 160), chalcogen_vacancy_rate=0.08, seed=2)
    t = s.truth
    se2 = sample_at(s.image, t.positions[t.species == "Se2"])
    mo = sample_at(s.image, t.positions[t.species == "Mo"])
    se1 = sample_at(s.image, t.positions[t.species == "Se1"])
    assert se2.min() > mo.max() > mo.min() > se1.max()
    np.testing.assert_allclose(t.intensity[t.species == "Se2"], 2 * 34**1.7)
    np.testing.assert_allclose(t.intensity[t.species == "Mo"], 42**1.7)
    np.testing.assert_allclose(t.intensity[t.species == "Se1"], 34**1.7)
    # the measured peak ratio follows the Z^1.7 ratio (probe overlap small)
    bg = s.params["background_level"]
    ratio = (np.median(se2) - bg) / (np.median(mo) - bg)
    assert ratio == pytest.approx(2 * 34**1.7 / 42**1.7, rel=0.08)


def test_ws2_sulphur_to_tungsten_peak_ratio():
    s = make_tmd("WS2", shape=(160, 160), rotation=7)
    t, bg = s.truth, s.params["background_level"]
    w = np.median(sample_at(s.image, t.positions[t.species == "W"])) - bg
    s2 = np.median(sample_at(s.image, t.positions[t.species == "S2"])) - bg
    assert 0.12 <= s2 / w <= 0.25
    assert s2 / w == pytest.approx(2 * 16**1.7 / 74**1.7, rel=0.1)


def test_background_fraction_of_brightest_peak():
    s = make_tmd("MoSe2", shape=(200, 200), background=0.2, tail_fraction=0.0,
                 lattice_constant=1.2, rotation=13)  # sparse lattice: background between columns
    bg = s.params["background_level"]
    assert s.image.min() == pytest.approx(bg, rel=1e-3)
    # brightest pixel of each (brightest-kind) Se2 column
    peaks = ndimage.maximum_filter(s.image, 3)[
        tuple(np.round(s.truth.positions[s.truth.species == "Se2"]).astype(int).T)]
    assert bg / (np.median(peaks) - bg) == pytest.approx(0.2, rel=0.03)


# ---------------------------------------------------------------------------
# defects and fine classes
# ---------------------------------------------------------------------------


def test_random_defect_counts_match_rates():
    p_ch, p_mv, p_dop = 0.07, 0.03, 0.05
    s = make_tmd("WS2", shape=(400, 400), pixel_size=0.03, chalcogen_vacancy_rate=p_ch,
                 metal_vacancy_rate=p_mv, dopant="Re", dopant_rate=p_dop, seed=11)
    t = s.truth
    sp = Counter(t.species[t.sublattice == "chalcogen"])
    n_col = sum(sp.values())
    missing = sp["S1"] + 2 * sp["vacancy"]

    def within(k, n, p, z=4.5):
        return abs(k - n * p) <= z * math.sqrt(n * p * (1 - p))

    assert within(missing, 2 * n_col, p_ch)
    assert within(sp["vacancy"], n_col, p_ch**2, z=5)
    mt = Counter(t.species[t.sublattice == "metal"])
    n_m = sum(mt.values())
    assert within(mt["vacancy"], n_m, p_mv)
    assert within(mt["Re"], n_m, p_dop)
    assert set(mt) == {"W", "Re", "vacancy"} and set(sp) == {"S2", "S1", "vacancy"}
    # dopants keep their own symbol as fine class
    np.testing.assert_array_equal(t.fine[t.species == "Re"], "Re")
    np.testing.assert_array_equal(t.intensity[t.species == "Re"], 75**1.7)


def test_fine_classes_against_brute_force_neighbour_count():
    s = make_tmd("MoSe2", shape=(300, 300), chalcogen_vacancy_rate=0.15, metal_vacancy_rate=0.02,
                 dopant="W", dopant_rate=0.05, rotation=13, scan_noise=0.0, seed=4)
    t = s.truth
    nn = np.linalg.norm(s.lattice_vectors[0]) / math.sqrt(3)
    metal = np.flatnonzero(t.sublattice == "metal")
    chal = np.flatnonzero(t.sublattice == "chalcogen")
    tree = cKDTree(t.positions[chal])
    neigh = tree.query_ball_point(t.positions[metal], r=1.05 * nn)
    checked = Counter()
    for m, nb in zip(metal, neigh):
        if len(nb) != 3:
            continue  # a neighbour lies outside the frame
        k = int(np.sum(t.species[chal[nb]] != "Se2"))
        if t.species[m] == "Mo":
            expect = "Mo" if k == 0 else f"Mo#{k}"
        else:
            expect = t.species[m]  # W dopants and vacancies keep their species
        assert t.fine[m] == expect
        checked[expect] += 1
    assert checked["Mo#1"] > 50 and checked["Mo#2"] > 20 and checked["Mo#3"] >= 1
    # chalcogen fine == species
    np.testing.assert_array_equal(t.fine[chal], t.species[chal])


def test_explicit_defects_plant_and_override():
    mo3 = tmd_neighbor_cells((0, 0), "metal")
    assert mo3 == [(0, 0), (-1, 0), (0, -1)]
    assert tmd_neighbor_cells((0, 0), "chalcogen") == [(0, 0), (1, 0), (0, 1)]
    defects = [(c, "chalcogen", "Se1") for c in mo3]
    defects += [((3, 2), "metal", "vacancy"), ((-4, 1), "metal", "W"),
                {"cell": (5, -5), "sublattice": "chalcogen", "species": "vacancy"},
                ((2, -6), "chalcogen", "SeTe")]
    s = make_tmd("MoSe2", shape=(200, 200), defects=defects)
    t = s.truth
    assert t.fine[t.index((0, 0), "metal")] == "Mo#3"
    for c in mo3:
        assert t.species[t.index(c, "chalcogen")] == "Se1"
    k = t.index((3, 2), "metal")
    assert t.species[k] == "vacancy" and not t.visible[k] and t.intensity[k] == 0
    assert t.species[t.index((-4, 1), "metal")] == "W"
    assert t.species[t.index((5, -5), "chalcogen")] == "vacancy"
    k = t.index((2, -6), "chalcogen")
    assert t.species[k] == "SeTe" and t.intensity[k] == pytest.approx(34**1.7 + 52**1.7)
    # a substitution is not a missing atom: its metal neighbours stay "Mo"
    for c in tmd_neighbor_cells((2, -6), "chalcogen"):
        assert t.fine[t.index(c, "metal")] == "Mo"
    # neighbours of the double vacancy are Mo#1
    for c in tmd_neighbor_cells((5, -5), "chalcogen"):
        assert t.fine[t.index(c, "metal")] == "Mo#1"
    # exactly the planted sites differ from pristine
    # 6 metals around the Mo#3 share one Se1 each, 3 touch the double vacancy
    assert Counter(t.species)["Se1"] == 3 and Counter(t.fine)["Mo#1"] == 6 + 3
    # explicit defects override the random ones
    r = make_tmd("MoSe2", shape=(100, 100), chalcogen_vacancy_rate=1.0,
                 defects=[((0, 0), "chalcogen", "Se2"), ((1, 1), "metal", "vacancy")])
    assert r.truth.species[r.truth.index((0, 0), "chalcogen")] == "Se2"
    assert Counter(r.truth.species[r.truth.sublattice == "chalcogen"])["Se2"] == 1
    # planted vacancy is dark in the noise-free image
    img = s.image
    kv = t.index((3, 2), "metal")
    mo = sample_at(img, t.positions[t.species == "Mo"])
    assert sample_at(img, t.positions[kv:kv + 1])[0] < 0.2 * np.median(mo)


def test_generic_names_for_other_materials():
    s = make_tmd("WS2", shape=(200, 200), defects=[(c, "chalcogen", "S1")
                                                   for c in tmd_neighbor_cells((0, 0), "metal")])
    t = s.truth
    assert t.fine[t.index((0, 0), "metal")] == "W#3"
    assert set(t.species) == {"W", "S2", "S1"}


# ---------------------------------------------------------------------------
# positions and noise
# ---------------------------------------------------------------------------


def test_isolated_column_centroid_is_exact():
    s = make_tmd("MoSe2", shape=(160, 160), lattice_constant=1.0, tail_fraction=0.0, rotation=17)
    t = s.truth
    m = interior(t, s.shape) & t.visible
    err = np.linalg.norm(centroids(s.image, t.positions[m], radius=6.0) - t.positions[m], axis=1)
    assert err.max() < 1e-3


@pytest.mark.parametrize("kw", [dict(), dict(drift=(6.0, -9.0))])
def test_truth_matches_rendered_peaks(kw):
    s = make_tmd("MoSe2", shape=(200, 200), rotation=17, **kw)
    t = s.truth
    m = interior(t, s.shape) & (t.sublattice == "metal")
    err = np.linalg.norm(centroids(s.image, t.positions[m]) - t.positions[m], axis=1)
    assert err.max() < 0.1


def test_scan_noise_truth_is_apparent_position():
    kw = dict(shape=(200, 200), rotation=17, seed=9)
    jit = make_tmd(scan_noise=0.6, **kw)
    ref = make_tmd(**kw)
    t = jit.truth
    m = np.flatnonzero(interior(t, jit.shape) & (t.sublattice == "metal"))
    ideal = ref.truth.positions[[ref.truth.index(tuple(t.cell[k]), "metal") for k in m]]
    found = centroids(jit.image, t.positions[m])
    err = np.linalg.norm(found - t.positions[m], axis=1)
    err_ideal = np.linalg.norm(found - ideal, axis=1)
    # scan lines are shifted only horizontally
    np.testing.assert_allclose(t.positions[m, 0], ideal[:, 0])
    assert np.mean(err) < 0.06 and np.mean(err_ideal) > 3 * np.mean(err)


@pytest.mark.parametrize("dose", [0.5, 20.0, 1000.0])
def test_dose_gives_poisson_counts_with_mean_dose(dose):
    clean = make_tmd(shape=(256, 256), chalcogen_vacancy_rate=0.02)
    assert clean.image.mean(dtype=np.float64) == pytest.approx(1.0, rel=1e-5)
    s = make_tmd(shape=(256, 256), chalcogen_vacancy_rate=0.02, dose=dose)
    img = s.image.astype(np.float64)
    assert np.all(img == np.round(img)) and img.min() >= 0
    assert img.mean() == pytest.approx(dose, abs=5 * math.sqrt(dose / img.size))
    # variance of (counts - expected) equals the expected counts (Poisson)
    resid = img - dose * clean.image
    assert resid.var() == pytest.approx(dose, rel=0.03)


@pytest.mark.parametrize("lam", [0.3, 4.0, 9.99, 10.0, 35.0, 800.0])
def test_poisson_sampler_matches_distribution(lam):
    x = poisson_counts(np.full((400, 500), 1.0, np.float32), lam, np.uint64(12345))
    k = np.arange(int(lam + 10 * math.sqrt(lam) + 10))
    obs = np.bincount(x.astype(np.int64).ravel(), minlength=len(k))[: len(k)]
    exp = stats.poisson.pmf(k, lam) * x.size
    sel = exp > 5
    chi2 = ((obs[sel] - exp[sel]) ** 2 / exp[sel]).sum()
    assert stats.chi2.sf(chi2, sel.sum() - 1) > 1e-4
    # deterministic per key
    np.testing.assert_array_equal(x, poisson_counts(np.full((400, 500), 1.0, np.float32), lam,
                                                    np.uint64(12345)))


def test_poisson_counts_independent_of_thread_count():
    import numba

    lam = np.random.default_rng(0).random((300, 200)).astype(np.float32) * 3
    n0 = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = poisson_counts(lam, 20.0, np.uint64(99))
    finally:
        numba.set_num_threads(n0)
    np.testing.assert_array_equal(one, poisson_counts(lam, 20.0, np.uint64(99)))
    assert not np.array_equal(one, poisson_counts(lam, 20.0, np.uint64(100)))


# ---------------------------------------------------------------------------
# perovskite
# ---------------------------------------------------------------------------


def test_perovskite_sites_and_adf_contrast():
    s = make_perovskite(shape=(200, 220), rotation=9)
    t = s.truth
    cnt = Counter(t.sublattice)
    a_px = 0.3905 / 0.02
    assert cnt["A"] == pytest.approx(200 * 220 / a_px**2, rel=0.08)
    assert cnt["O"] == pytest.approx(2 * cnt["A"], rel=0.05)
    assert set(t.species) == {"Sr", "Ti", "O"}
    np.testing.assert_allclose(t.intensity[t.species == "Ti"], 22**1.7 + 8**1.7)
    u, v = s.lattice_vectors
    assert abs(u @ v) < 1e-9 and np.linalg.norm(u) == pytest.approx(a_px)
    k = t.index((0, 0), "A")
    np.testing.assert_allclose(t.positions[t.index((0, 0), "B")] - t.positions[k], (u + v) / 2)
    np.testing.assert_allclose(t.positions[t.index((0, 0), "O", basis=2)] - t.positions[k], u / 2)
    with pytest.raises(MotifLabError, match="basis"):
        t.index((0, 0), "O")
    val = {sp: np.median(sample_at(s.image, t.positions[t.species == sp])) for sp in ("Sr", "Ti", "O")}
    assert val["Sr"] > val["Ti"] > val["O"] > s.params["background_level"]


def test_perovskite_abf_columns_dark_including_oxygen():
    s = make_perovskite(shape=(200, 200), mode="abf", rotation=4)
    t, level = s.truth, s.params["background_level"]
    val = {sp: np.median(sample_at(s.image, t.positions[t.species == sp])) for sp in ("Sr", "Ti", "O")}
    assert level > np.percentile(s.image, 99) - 0.02
    assert val["O"] < 0.95 * level  # oxygen visible as a dip
    assert val["Ti"] < val["Sr"] < val["O"] < level  # Z^(1/3): TiO > Sr > O
    np.testing.assert_allclose(t.intensity[t.species == "O"], 8 ** (1 / 3))


def test_perovskite_defects_and_dose():
    s = make_perovskite(shape=(128, 128), dose=50, seed=1,
                        defects=[((0, 0), "A", "La"), ((1, 0), "O1", "vacancy"), ((0, 1), "B", "Nb")])
    t = s.truth
    assert t.species[t.index((0, 0), "A")] == "La"
    assert t.species[t.index((1, 0), "O", basis=2)] == "vacancy"
    assert t.species[t.index((1, 0), "O", basis=3)] == "O"
    assert t.intensity[t.index((0, 1), "B")] == pytest.approx(41**1.7 + 8**1.7)
    assert s.image.mean() == pytest.approx(50, abs=0.2)


# ---------------------------------------------------------------------------
# HyperSpy, sample, validation
# ---------------------------------------------------------------------------


def test_to_signal_calibration():
    s = make_tmd(shape=(64, 80), pixel_size=0.025, dose=10)
    sig = s.to_signal()
    ax = sig.axes_manager.signal_axes
    assert [a.name for a in ax] == ["x", "y"]
    assert [a.size for a in ax] == [80, 64]
    assert all(a.scale == pytest.approx(0.025) and a.units == "nm" for a in ax)
    assert "MoSe2" in sig.metadata.General.title
    np.testing.assert_array_equal(sig.data, s.image)
    np.testing.assert_array_equal(sig.metadata.Truth.species, s.truth.species)
    assert sig.metadata.Synthetic.seed == 0


def test_load_sample_contents():
    s = load_sample()
    assert isinstance(s, SyntheticImage) and s.image.shape == (512, 512)
    fine = Counter(s.truth.fine)
    assert fine["Mo#1"] > 50 and fine["Mo#2"] >= 5 and fine["Mo#3"] >= 3
    assert fine["Se1"] > 30 and fine["Mo"] > 500 and fine["Se2"] > 500
    t = s.truth
    assert np.sum((t.sublattice == "metal") & ~t.visible) >= 2
    assert s.image.mean() == pytest.approx(40, rel=0.01)
    np.testing.assert_array_equal(s.image, load_sample().image)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(material="MoXe2"), "MoSe2"),
        (dict(shape=(8, 8)), "shape"),
        (dict(shape=(20, 20), pixel_size=0.01), "unit cells"),
        (dict(pixel_size=0), "pixel_size"),
        (dict(pixel_size=-0.1), "pixel_size"),
        (dict(chalcogen_vacancy_rate=-0.1), "chalcogen_vacancy_rate"),
        (dict(metal_vacancy_rate=1.5), r"\[0, 1\]"),
        (dict(metal_vacancy_rate=0.6, dopant="W", dopant_rate=0.6), "exceeds 1"),
        (dict(dopant_rate=0.1), "dopant"),
        (dict(dopant="Xx", dopant_rate=0.1), "element"),
        (dict(dopant="Mo", dopant_rate=0.1), "host metal"),
        (dict(dose=0), "dose"),
        (dict(dose=float("nan")), "dose"),
        (dict(probe_fwhm=-1), "probe_fwhm"),
        (dict(background=-0.1), "background"),
        (dict(scan_noise=-1), "scan_noise"),
        (dict(drift=(1,)), "drift"),
        (dict(seed=-3), "seed"),
        (dict(defects=[((0, 0), "metal", "Se2")]), "holds 2 atoms"),
        (dict(defects=[((0, 0), "interstitial", "Mo")]), "sublattice"),
        (dict(defects=[((999, 0), "metal", "vacancy")]), "outside"),
        (dict(defects=[((0, 0), "chalcogen", "se1")]), "cannot read"),
        (dict(defects=[((0.5, 0), "metal", "W")]), "two integers"),
    ],
)
def test_bad_input_raises_motiflab_error(kw, match):
    base = dict(shape=(64, 64))
    base.update(kw)
    with pytest.raises(MotifLabError, match=match):
        make_tmd(**base)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(mode="bf"), "mode"),
        (dict(A="Qq"), "element"),
        (dict(lattice_constant=0), "lattice_constant"),
        (dict(mode="abf", abf_contrast=1.0), "abf_contrast"),
        (dict(defects=[((0, 0), "C", "La")]), "site"),
    ],
)
def test_bad_perovskite_input(kw, match):
    with pytest.raises(MotifLabError, match=match):
        make_perovskite(shape=(64, 64), **kw)


def test_load_sample_at_a_fraction_of_the_dose():
    full, low = load_sample(), load_sample(dose_scale=1 / 50)
    assert low.params["dose"] == pytest.approx(full.params["dose"] / 50)
    np.testing.assert_array_equal(low.truth.positions, full.truth.positions)  # the same crystal
    assert low.image.mean() == pytest.approx(full.image.mean() / 50, rel=0.05)
    with pytest.raises(MotifLabError, match="dose_scale"):
        load_sample(dose_scale=0)
