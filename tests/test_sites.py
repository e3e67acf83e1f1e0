"""Lattice-site evidence: translations, the lattice average, support at sites, hollows and hole edges."""
import numpy as np
import pytest

from motiflab.sites import lattice_average, lattice_evidence, lattice_translations, subpixel_peaks

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
