"""Smoothers and the noise they let through; the SVD denoiser against correlated detector noise."""
import numpy as np
import pytest

from motiflab import columns
from motiflab.errors import MotifLabError
from motiflab.noise import NoiseModel, estimate_noise
from motiflab.smoothing import _apply_kernel, _kernel_from_projector, _svd_kernel, smooth, smooth_image, svd_denoise


def test_svd_denoise_reduces_noise_keeps_signal():
    from motiflab.datasets import make_tmd

    clean = make_tmd("MoSe2", shape=(256, 256), seed=9)
    noisy = make_tmd("MoSe2", shape=(256, 256), dose=20, seed=9)
    ref = clean.image / clean.image.mean() * noisy.image.mean()
    den = svd_denoise(noisy.image)
    err_raw = np.sqrt(np.mean((noisy.image - ref) ** 2))
    err_den = np.sqrt(np.mean((den - ref) ** 2))
    assert err_den < 0.5 * err_raw


def test_svd_kernel_equals_explicit_window_projection():
    """The convolution shortcut is exactly "project every window, average the overlaps".

    Checked on a periodic image (every pixel in k² windows) with an arbitrary
    (also oblique) rank-r projector, against the explicit construction.
    """
    rng = np.random.default_rng(0)
    h, w, k, r = 12, 14, 4, 3
    x = rng.normal(size=(h, w))
    V, _ = np.linalg.qr(rng.normal(size=(k * k, r)))
    L = np.eye(k * k) + 0.1 * rng.normal(size=(k * k, k * k))
    for Pm in (V @ V.T, L @ V @ V.T @ np.linalg.inv(L)):
        out = np.zeros((h, w))
        for i in range(h):
            for j in range(w):
                rows = (i + np.arange(k)) % h
                cols = (j + np.arange(k)) % w
                win = x[np.ix_(rows, cols)].ravel()
                out[np.ix_(rows, cols)] += (Pm @ win).reshape(k, k)
        explicit = out / (k * k)
        K = _kernel_from_projector(Pm, k)
        fast = np.zeros((h, w))
        for dy in range(-(k - 1), k):
            for dx in range(-(k - 1), k):
                fast += K[dy + k - 1, dx + k - 1] * np.roll(x, (-dy, -dx), axis=(0, 1))
        np.testing.assert_allclose(fast, explicit, atol=1e-12)


def test_svd_rank_follows_noise():
    """Automatic rank: more components carry more signal than noise at high dose than at low."""
    from motiflab.datasets import make_tmd

    hi = make_tmd("MoSe2", shape=(192, 192), dose=2000, seed=1).image.astype(np.float64)
    lo = make_tmd("MoSe2", shape=(192, 192), dose=5, seed=1).image.astype(np.float64)
    k_hi = _svd_kernel(hi, 15, None, estimate_noise(hi, 1.9))
    k_lo = _svd_kernel(lo, 15, None, estimate_noise(lo, 1.9))
    # a kernel keeping fewer components passes less white noise
    assert np.sqrt((k_lo**2).sum()) < np.sqrt((k_hi**2).sum())


def _streaky(seed=0):
    """MoSe2 at a good dose plus detector noise correlated along the fast scan (rows)."""
    from scipy import ndimage

    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(320, 320), dose=300, seed=seed)
    rng = np.random.default_rng(seed)
    streaks = ndimage.gaussian_filter1d(rng.normal(size=sim.image.shape), 4.0, axis=1)
    img = sim.image + streaks / streaks.std() * 0.5 * sim.image.std()
    return sim, img.astype(np.float32)


def test_svd_components_are_chosen_against_the_measured_noise():
    """Against white noise the scan streaks look like signal; against the measured noise they do not.

    This is why the SVD denoiser invented maxima along scan lines on real images:
    the window components of the streaks stood above the white-noise floor, so
    the filter kept them. Judged against the measured noise it keeps fewer and
    lands closer to the clean image.
    """
    from motiflab.datasets import make_tmd

    sim, img = _streaky()
    clean = make_tmd("MoSe2", shape=(320, 320), seed=0).image
    ref = clean / clean.mean() * sim.image.mean()
    measured = estimate_noise(img, column_sigma=sim.params["sigma_px"])
    white = NoiseModel(slope=measured.slope, intercept=measured.intercept, floor=measured.floor)
    assert not measured.white

    def error(noise):
        out = _apply_kernel(img, _svd_kernel(img.astype(np.float64), 9, None, noise))
        return float(np.sqrt(((out - ref)[10:-10, 10:-10] ** 2).mean()))

    assert error(measured) < 0.75 * error(white)


def test_svd_finds_columns_on_streaky_images():
    from motiflab.metrics import match_columns

    from .conftest import interior_visible

    sim, img = _streaky(1)
    cols = columns.find_columns(img, smoothing="svd")
    m = match_columns(cols.positions, sim.truth.positions, tol=1.5,
                      true_mask=interior_visible(sim.truth, img.shape))
    assert m.recall >= 0.98 and m.precision >= 0.98, (m.recall, m.precision)


@pytest.mark.parametrize("method", ["matched", "gaussian", "fft", "svd", "none"])
def test_reported_noise_gain_matches_the_noise_left(method):
    """Σ K² (and the correlation gain) predict the noise each smoother leaves in white noise."""
    rng = np.random.default_rng(3)
    img = rng.normal(100.0, 5.0, (256, 256)).astype(np.float32)
    nm = estimate_noise(img, column_sigma=1.8)
    sm = smooth_image(img, method, None, spacing=9.0, column_sigma=1.8, noise=nm)
    measured = float(sm.image[16:-16, 16:-16].std())
    predicted = float(sm.noise_std(nm, 100.0))
    assert predicted == pytest.approx(measured, rel=0.15), (method, predicted, measured)


def test_smooth_public_function_and_bad_method():
    from motiflab.datasets import make_tmd

    img = make_tmd("MoSe2", shape=(128, 128), dose=50).image
    for method in ("matched", "fft", "gaussian", "svd", "none"):
        out = smooth(img, method=method)
        assert out.shape == img.shape and out.dtype == np.float32
    with pytest.raises(MotifLabError, match="unknown smoothing"):
        smooth(img, method="median")
    with pytest.raises(MotifLabError, match="positive"):
        smooth_image(columns.validate_image(img), "gaussian", strength=-1.0, spacing=9.0)


def test_fft_kernel_equals_direct_correlation():
    from scipy import ndimage

    rng = np.random.default_rng(4)
    img = rng.random((90, 70)).astype(np.float32)
    K = rng.random((11, 11))
    # np.pad "reflect" is ndimage's "mirror"; the filter acts on the mean-removed image
    mean = img.mean(dtype=np.float64)
    ref = ndimage.correlate(img - mean, K, mode="mirror") + mean
    got = _apply_kernel(img, K)
    assert np.abs(got - ref).max() < 1e-5 * np.abs(ref).max()
