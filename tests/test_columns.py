"""Column finding: accuracy on ground truth, dim sublattices, dark columns, bad input."""
import numpy as np
import pytest

from motiflab import columns
from motiflab.errors import MotifLabError
from motiflab.metrics import match_columns

from .conftest import interior_visible


def _score(sim, **kw):
    cols = columns.find_columns(sim.image, **kw)
    mask = interior_visible(sim.truth, sim.image.shape)
    return cols, match_columns(cols.positions, sim.truth.positions, tol=1.0, true_mask=mask)


@pytest.mark.parametrize("material", ["MoSe2", "WS2"])
def test_good_dose_recall_precision_error(material):
    from motiflab.datasets import make_tmd

    sim = make_tmd(material, shape=(384, 384), chalcogen_vacancy_rate=0.03, dose=200, seed=11)
    cols, m = _score(sim)
    assert m.recall >= 0.99, m.recall
    assert m.precision >= 0.98, m.precision
    assert m.median_error <= 0.3, m.median_error


def test_ws2_dim_sulfur_sublattice_found():
    """S2 columns are ~15-20 % of W; a max-of-image threshold misses them all, ours must not."""
    from motiflab.datasets import make_tmd
    from skimage.feature import peak_local_max

    sim = make_tmd("WS2", shape=(320, 320), dose=200, seed=5)
    mask = interior_visible(sim.truth, sim.image.shape) & (sim.truth.sublattice == "chalcogen")
    cols = columns.find_columns(sim.image)
    m = match_columns(cols.positions, sim.truth.positions, tol=1.0, true_mask=mask)
    assert m.recall >= 0.99
    # the naive finder (relative threshold 0.3 of the maximum) indeed misses them
    naive = peak_local_max(sim.image.astype(float), min_distance=3, threshold_rel=0.3)
    mn = match_columns(naive, sim.truth.positions, tol=1.0, true_mask=mask)
    assert mn.recall < 0.2


def test_refinement_beats_integer_positions():
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(256, 256), dose=500, seed=2)
    _, m_int = _score(sim, refine="none")
    _, m_com = _score(sim, refine="com")
    _, m_gau = _score(sim, refine="gaussian")
    assert m_com.median_error < 0.75 * m_int.median_error
    assert m_gau.median_error < 0.75 * m_int.median_error


@pytest.mark.parametrize("smoothing", ["svd", "fft", "gaussian"])
def test_every_smoother_finds_the_lattice(smoothing):
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(256, 256), dose=300, seed=4)
    _, m = _score(sim, smoothing=smoothing)
    assert m.recall >= 0.98 and m.precision >= 0.97, (smoothing, m.recall, m.precision)


def test_svd_denoise_reduces_noise_keeps_signal():
    from motiflab.datasets import make_tmd

    clean = make_tmd("MoSe2", shape=(256, 256), seed=9)
    noisy = make_tmd("MoSe2", shape=(256, 256), dose=20, seed=9)
    ref = clean.image / clean.image.mean() * noisy.image.mean()
    den = columns.svd_denoise(noisy.image)
    err_raw = np.sqrt(np.mean((noisy.image - ref) ** 2))
    err_den = np.sqrt(np.mean((den - ref) ** 2))
    assert err_den < 0.5 * err_raw


def test_svd_kernel_equals_explicit_window_projection():
    """The convolution shortcut is exactly "project every window, average the overlaps".

    Checked on a periodic image (every pixel in k² windows) with an arbitrary
    rank-r projector, against the explicit construction.
    """
    rng = np.random.default_rng(0)
    h, w, k, r = 12, 14, 4, 3
    x = rng.normal(size=(h, w))
    V, _ = np.linalg.qr(rng.normal(size=(k * k, r)))
    Pm = V @ V.T
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            rows = (i + np.arange(k)) % h
            cols = (j + np.arange(k)) % w
            win = x[np.ix_(rows, cols)].ravel()
            out[np.ix_(rows, cols)] += (Pm @ win).reshape(k, k)
    explicit = out / (k * k)
    K = columns._kernel_from_projector(Pm, k)
    fast = np.zeros((h, w))
    for dy in range(-(k - 1), k):
        for dx in range(-(k - 1), k):
            fast += K[dy + k - 1, dx + k - 1] * np.roll(x, (-dy, -dx), axis=(0, 1))
    np.testing.assert_allclose(fast, explicit, atol=1e-12)


def test_svd_rank_follows_noise():
    """Automatic rank: more components survive at high SNR than at low SNR."""
    from motiflab.datasets import make_tmd

    hi = make_tmd("MoSe2", shape=(192, 192), dose=2000, seed=1).image.astype(np.float64)
    lo = make_tmd("MoSe2", shape=(192, 192), dose=5, seed=1).image.astype(np.float64)
    k_hi = columns._svd_kernel(hi, 15, None, columns._noise_sigma(hi))
    k_lo = columns._svd_kernel(lo, 15, None, columns._noise_sigma(lo))
    # a kernel keeping fewer components passes less white noise
    assert np.sqrt((k_lo**2).sum()) < np.sqrt((k_hi**2).sum())


def test_abf_dark_columns_detected_and_found():
    from motiflab.datasets import make_perovskite

    sim = make_perovskite(shape=(256, 256), mode="abf", dose=500, seed=1)
    assert columns.detect_inverted(sim.image)
    cols = columns.find_columns(sim.image)
    assert cols.inverted
    mask = interior_visible(sim.truth, sim.image.shape)
    m = match_columns(cols.positions, sim.truth.positions, tol=1.0, true_mask=mask)
    assert m.recall >= 0.97 and m.precision >= 0.95, (m.recall, m.precision)
    adf = make_perovskite(shape=(256, 256), mode="adf", dose=500, seed=1)
    assert not columns.detect_inverted(adf.image)


def test_estimate_spacing_matches_lattice():
    from motiflab.datasets import make_tmd

    sim = make_tmd("MoSe2", shape=(256, 256), seed=0)
    a = np.linalg.norm(sim.lattice_vectors[0])
    s = columns.estimate_spacing(sim.image)
    # the autocorrelation's first shell is either the metal–chalcogen or the metal–metal distance
    assert min(abs(s - a), abs(s - a / np.sqrt(3))) < 0.05 * a


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 32, 32)), "frame"),
        (np.zeros(100), "2-D"),
        (np.full((64, 64), 5.0), "constant"),
        (np.where(np.eye(64) > 0, np.nan, 1.0), "NaN"),
        (np.zeros((0, 0)), "at least"),
        (np.ones((4, 4)), "at least"),
    ],
)
def test_bad_images_give_clear_errors(bad, match):
    with pytest.raises(MotifLabError, match=match):
        columns.find_columns(bad)


def test_no_columns_found_message():
    rng = np.random.default_rng(0)
    flat = rng.normal(100, 1, (64, 64)).astype(np.float32)
    with pytest.raises(MotifLabError, match="threshold"):
        columns.find_columns(flat, threshold=1e6)


# --------------------------------------------------------------------------- fast filters
@pytest.mark.parametrize("shape", [(37, 53), (200, 131), (5, 300), (300, 4)])
def test_threaded_filters_equal_scipy(shape):
    from scipy import ndimage

    from motiflab.columns import _disk, _disk_maxima, _local_background

    x = np.random.default_rng(3).random(shape).astype(np.float32)
    for spacing in (1.0, 3.3, 8.0, 20.0):
        r = int(round(spacing * 1.25))
        ref = ndimage.minimum_filter(x, size=2 * r + 1, mode="nearest")
        assert np.array_equal(_local_background(x, spacing), ref)
    plateaus = np.round(x * 4).astype(np.float32)
    for img in (x, plateaus):
        for radius in (1.0, 1.5, 2.2, 4.7):
            ref = img == ndimage.maximum_filter(img, footprint=_disk(radius), mode="nearest")
            assert np.array_equal(_disk_maxima(img, radius), ref)


def test_fft_kernel_equals_direct_correlation():
    from scipy import ndimage

    from motiflab.columns import _apply_kernel

    rng = np.random.default_rng(4)
    img = rng.random((90, 70)).astype(np.float32)
    K = rng.random((11, 11))
    # np.pad "reflect" is ndimage's "mirror"; the filter acts on the mean-removed image
    mean = img.mean(dtype=np.float64)
    ref = ndimage.correlate(img - mean, K, mode="mirror") + mean
    got = _apply_kernel(img, K)
    assert np.abs(got - ref).max() < 1e-5 * np.abs(ref).max()
