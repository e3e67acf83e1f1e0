"""Lattice-site evidence: translations, the lattice average, support at sites, hollows and hole edges."""
import numpy as np
import pytest

from motiflab.sites import (
    cell_average,
    lattice_average,
    lattice_evidence,
    lattice_translations,
    refine_vectors,
    subpixel_peaks,
)

HEX_U = np.array([0.0, 16.0])
HEX_V = np.array([-16.0 * np.sqrt(3) / 2, 8.0])


def test_translations_are_symmetric_shells():
    T = lattice_translations(HEX_U, HEX_V)
    assert len(T) == 60
    # t and -t both present; sorted by length; first shell has six vectors of |u|
    assert np.allclose(np.sort(np.round(T, 6), axis=0), np.sort(np.round(-T, 6), axis=0))
    d = np.hypot(*T.T)
    assert np.all(np.diff(d) >= -1e-9)
    assert np.sum(np.isclose(d, 16.0)) == 6
    assert len(lattice_translations([0, 19.5], [19.5, 0])) == 48
    assert len(lattice_translations([0, 1], [0, 2])) == 0  # degenerate basis


def test_lattice_average_of_a_periodic_image_is_the_image():
    yy, xx = np.mgrid[0:120, 0:120]
    img = (np.cos(2 * np.pi * xx / 10) + np.cos(2 * np.pi * yy / 12)).astype(np.float32)
    T = lattice_translations([12, 0], [0, 10], radius=30)
    avg = lattice_average(img, T)
    np.testing.assert_allclose(avg, img, atol=1e-5)
    # and noise is averaged down about sqrt(M + 1) times
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(200, 200)).astype(np.float32)
    avg_noise = lattice_average(noise, T)[40:-40, 40:-40]
    assert avg_noise.std() == pytest.approx(1 / np.sqrt(len(T) + 1), rel=0.15)


def _z_lattice(shape=(200, 200), amp=1.0, hole=None):
    """A unit-noise z-map with a Gaussian column at every lattice site (sites of basis 0 only)."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=shape).astype(np.float32)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    c = np.array(shape, float) / 2
    n = int(max(shape) / 12)
    sites = [c + i * HEX_U + j * HEX_V for i in range(-n, n + 1) for j in range(-n, n + 1)]
    sites = np.array([s for s in sites if -5 < s[0] < shape[0] + 5 and -5 < s[1] < shape[1] + 5])
    for s in sites:
        if hole is not None and np.hypot(*(s - hole[0])) < hole[1]:
            continue
        z += amp * np.exp(-((yy - s[0]) ** 2 + (xx - s[1]) ** 2) / (2 * 1.8**2))
    return z, sites


def test_faint_sites_have_support_and_hollows_do_not():
    z, sites = _z_lattice(amp=1.0)  # one noise unit per column: invisible one by one
    T = lattice_translations(HEX_U, HEX_V)
    inner = sites[(sites > 30).all(1) & (sites < 170).all(1)]
    hollows = inner + (HEX_U + HEX_V) / 2
    s_sites, pooled = lattice_evidence(z, z, inner, T)
    s_holl, _ = lattice_evidence(z, z, hollows, T)
    assert np.median(s_sites) > 4 and np.percentile(s_sites, 5) > 2.5
    assert np.percentile(s_holl, 95) < 1.5
    assert pooled.mean() == pytest.approx(1.0, abs=0.2)


def test_a_site_inside_a_hole_is_not_backed_all_round():
    """Vacuum wider than the lattice average reaches: its empty sites get no support from the far side.

    (A pore narrower than that, a few missing unit cells, is filled in as
    vacancy sites, which is what it is.)
    """
    hole = (np.array([180.0, 180.0]), 100.0)
    z, sites = _z_lattice(shape=(360, 360), amp=4.0, hole=hole)
    T = lattice_translations(HEX_U, HEX_V)
    r = np.hypot(*(sites - hole[0]).T)
    inside = sites[(r < hole[1] - 16)]  # empty sites more than a lattice constant inside
    far = sites[(r > hole[1] + 10) & (sites > 20).all(1) & (sites < 340).all(1)]
    s_in, _ = lattice_evidence(z, z, inside, T)
    s_far, _ = lattice_evidence(z, z, far, T)
    assert np.all(s_in < 2.5) and np.median(s_far) > 2.5


def test_points_whose_translations_all_leave_the_image_have_no_support():
    z = np.zeros((50, 50), np.float32)
    T = lattice_translations([0, 60], [60, 0])
    s, pooled = lattice_evidence(z, z, np.array([[25.0, 25.0]]), T)
    assert np.isnan(s[0]) and np.isnan(pooled[0])


def test_subpixel_peak_of_a_smooth_map():
    yy, xx = np.mgrid[0:30, 0:30]
    img = np.exp(-((yy - 12.3) ** 2 + (xx - 17.6) ** 2) / (2 * 2.5**2))
    p = subpixel_peaks(img, np.array([12]), np.array([18]))
    assert np.allclose(p[0], [12.3, 17.6], atol=0.06)


def _two_sublattice_points(u, v, shape, jitter, n_spurious, seed):
    """Points of a honeycomb-like crystal (two sublattices), jittered, plus uniform spurious ones."""
    rng = np.random.default_rng(seed)
    n = int(max(shape) / min(np.hypot(*u), np.hypot(*v))) + 3
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    base = np.column_stack([i.ravel(), j.ravel()]) @ np.vstack([u, v]) + np.array(shape) / 2
    pts = np.vstack([base, base + (u + v) / 3.0])
    pts = pts[(pts >= 0).all(axis=1) & (pts < np.array(shape)).all(axis=1)]
    pts = pts + rng.normal(0.0, jitter, pts.shape)
    return np.vstack([pts, rng.uniform(0, 1, (n_spurious, 2)) * shape])


@pytest.mark.parametrize("jitter, spurious", [(0.0, 0), (0.7, 0), (0.7, 1.0)])
def test_refine_vectors_reaches_the_true_lattice_from_a_one_percent_guess(jitter, spurious):
    u, v = HEX_U * 0.97, HEX_V * 0.97  # 15.5 px, off-grid
    pts = _two_sublattice_points(u, v, (400, 400), jitter, 0, seed=1)
    pts = np.vstack([pts, np.random.default_rng(2).uniform(0, 400, (int(spurious * len(pts)), 2))])
    guess_u, guess_v = u * 1.01 + [0.1, 0.0], v * 0.99
    ru, rv = refine_vectors(pts, guess_u, guess_v)
    # the far cells (12 away) then land within ~0.1 px: what a cell average needs
    assert np.abs(np.vstack([ru, rv]) - np.vstack([u, v])).max() < 0.01, (ru, rv)


def test_refine_vectors_without_enough_pairs_returns_the_guess():
    u, v = refine_vectors(np.array([[0.0, 0.0], [5.0, 5.0], [40.0, 3.0]]), HEX_U, HEX_V)
    np.testing.assert_array_equal(u, HEX_U)
    np.testing.assert_array_equal(v, HEX_V)


def test_cell_average_recovers_a_column_at_one_count():
    """Gaussian columns (σ 1.9 px) of ~1 count at the peak in Poisson noise: one column is lost in
    the noise, the average of every cell is a clean Gaussian of the right width."""
    from scipy import optimize

    u, v = np.array([0.3, 13.9]), np.array([-12.2, 6.8])
    h = w = 300
    i, j = np.meshgrid(np.arange(-30, 31), np.arange(-30, 31), indexing="ij")
    centres = np.column_stack([i.ravel(), j.ravel()]) @ np.vstack([u, v]) + [150.3, 149.6]
    centres = centres[(centres > -10).all(axis=1) & (centres < 310).all(axis=1)]
    yy, xx = np.mgrid[0:h, 0:w]
    lam = np.full((h, w), 0.2)
    for r, c in centres:
        lam += np.exp(-0.5 * ((yy - r) ** 2 + (xx - c) ** 2) / 1.9**2)
    img = np.random.default_rng(3).poisson(lam).astype(float)
    mean, count = cell_average(img, u, v, [150.3, 149.6], radius=5.0, step=0.5)
    g = (np.arange(21) - 10) * 0.5
    gy, gx = np.meshgrid(g, g, indexing="ij")
    ok = np.hypot(gy, gx) <= 5.0
    assert mean.shape == count.shape == (21, 21) and count[ok].min() > 100

    def model(yx, a, s, c):
        return a * np.exp(-0.5 * (yx[0] ** 2 + yx[1] ** 2) / s**2) + c

    p, _ = optimize.curve_fit(model, np.vstack([gy[ok], gx[ok]]), mean[ok], p0=[1.0, 1.5, 0.2])
    sigma = np.sqrt(p[1] ** 2 - 0.5**2 / 12)
    assert abs(sigma - 1.9) < 0.1 and abs(p[0] - 1.0) < 0.1, p


def test_cell_average_refuses_parallel_vectors():
    from motiflab.errors import MotifLabError

    with pytest.raises(MotifLabError, match="non-parallel"):
        cell_average(np.zeros((32, 32)), [0.0, 4.0], [0.0, 8.0], (16, 16), 3.0)
