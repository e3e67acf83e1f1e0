"""The noise model: measured level dependence, correlation along the scan, stabilisation."""
import numpy as np
import pytest

from motiflab.errors import MotifLabError
from motiflab.noise import NoiseModel, estimate_noise


@pytest.mark.parametrize("peak_counts", [100.0, 10.0, 1.0, 0.3])
def test_poisson_counts_give_unit_slope_down_to_a_fraction_of_a_count(peak_counts):
    """Shot noise: variance = level, also where most pixels hold 0 counts (MAD-based estimates give 0 there)."""
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(384, 384), dose=peak_counts / 3.24, seed=1)
    nm = estimate_noise(sim.image, column_sigma=sim.params["sigma_px"])
    assert 0.85 < nm.slope < 1.2, nm
    # the variance at the darkest level of the image (the hollows, where the significance
    # test asks) within 20 %
    from motiflab.datasets import make_tmd as clean

    valley = float(clean("MoSe2", shape=(384, 384), dose=None, seed=1).image.min()) * sim.params["dose"]
    assert nm.variance(valley) == pytest.approx(valley, rel=0.2)


def test_gain_offset_and_read_noise_are_recovered():
    rng = np.random.default_rng(0)
    level = np.tile(np.linspace(10, 200, 256), (256, 1))
    counts = rng.poisson(level)
    # a detector: gain 5, offset 1000, read noise sd 3 (variance = 5 * (x - 1000) + 9)
    img = 5.0 * counts + 1000.0 + rng.normal(0, 3, level.shape)
    nm = estimate_noise(img)
    assert nm.slope == pytest.approx(5.0, rel=0.1)
    for x in (1100.0, 1900.0):
        assert nm.variance(x) == pytest.approx(5.0 * (x - 1000.0) + 9.0, rel=0.1)


def test_constant_noise_has_no_level_dependence():
    rng = np.random.default_rng(1)
    img = np.tile(np.linspace(0, 50, 256), (256, 1)) + rng.normal(0, 2.0, (256, 256))
    nm = estimate_noise(img)
    assert abs(nm.slope) < 0.05
    assert nm.variance(25.0) == pytest.approx(4.0, rel=0.1)


def _row_correlated(shape, sd, corr, seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    n = ndimage.gaussian_filter1d(rng.normal(size=shape), corr, axis=1)
    return n / n.std() * sd


def test_noise_correlated_along_the_fast_scan_is_measured():
    """A slow detector correlates the noise along rows; a column-wide filter passes more of it."""
    rng = np.random.default_rng(2)
    white = rng.normal(0, 1, (512, 512))
    corr = white + _row_correlated((512, 512), 1.0, 3.0, 3)
    sigma = 2.0
    gauss = lambda fy, fx: np.exp(-2 * np.pi**2 * sigma**2 * (fy**2 + fx**2))  # noqa: E731
    g_white = estimate_noise(white, column_sigma=sigma).correlation_gain(gauss)
    g_corr = estimate_noise(corr, column_sigma=sigma).correlation_gain(gauss)
    assert g_white == pytest.approx(1.0, abs=0.1)
    assert g_corr > 2.0
    # and the gain predicts the noise the filter actually leaves
    from scipy import ndimage

    nm = estimate_noise(corr, column_sigma=sigma)
    l2 = 1.0 / (4 * np.pi * sigma**2)
    predicted = float(nm.filtered_std(0.0, l2, g_corr))
    measured = float(ndimage.gaussian_filter(corr, sigma)[20:-20, 20:-20].std())
    assert predicted == pytest.approx(measured, rel=0.25)


def test_stabilised_image_has_unit_noise_at_every_level():
    rng = np.random.default_rng(4)
    level = np.tile(np.linspace(0.5, 300, 256), (256, 1))
    img = rng.poisson(level).astype(np.float32)
    nm = estimate_noise(img)
    y = nm.stabilize(img)
    # the spread of stabilised values around the stabilised level, at low and high levels
    for cols in (slice(0, 40), slice(200, 256)):
        resid = y[:, cols] - nm.stabilize(level[:, cols])
        assert resid.std() == pytest.approx(1.0, abs=0.15)


def test_in_frame_describes_the_same_noise():
    nm = NoiseModel(slope=2.0, intercept=5.0, floor=0.1)
    # measured on x' = -(x - 100): variance(x') -> variance(x)
    orig = nm.in_frame(scale=-1.0, offset=100.0)
    for x in (50.0, 90.0):
        assert orig.variance(x) == pytest.approx(nm.variance(-(x - 100.0)))


def test_detector_whose_line_crosses_zero_keeps_its_darkest_variance():
    """A gain-and-offset fit can cross zero above the darkest pixels (a pore, vacuum): held there."""
    rng = np.random.default_rng(5)
    level = np.tile(np.linspace(0, 60, 256), (256, 1))
    img = 50.0 * rng.poisson(level) + 1000.0 + rng.normal(0, 40, level.shape)
    img[100:140, 100:140] = 900.0 + rng.normal(0, 40, (40, 40))  # darker than any level the fit sees
    nm = estimate_noise(img)
    assert nm.variance(900.0) > 0.5 * nm.variance(1100.0) > 0


def test_noise_free_image_gets_a_tiny_positive_floor():
    from motiflab.datasets import make_tmd

    nm = estimate_noise(make_tmd("MoSe2", shape=(128, 128), dose=None).image, column_sigma=1.9)
    assert nm.floor > 0 and np.isfinite(nm.slope)


@pytest.mark.parametrize("bad", [np.zeros(100), np.zeros((8, 8)), np.full((32, 32), np.nan)])
def test_bad_input(bad):
    with pytest.raises(MotifLabError):
        estimate_noise(bad)
