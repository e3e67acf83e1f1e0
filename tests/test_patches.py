"""Tests for motiflab.patches: RDF, patch-size rule and patch extraction."""
import math

import numpy as np
import pytest

from motiflab.errors import MotifLabError
from motiflab.patches import (
    Patches,
    estimate_patch_size,
    extract_patches,
    patch_size_from_distance,
    radial_distribution,
    rotational_average,
)


def hex_lattice(a, n, jitter=0.0, seed=0, origin=10.0):
    """n x n triangular (hexagonal close-packed) lattice, spacing a, (row, col) coordinates."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    col = a * (j + 0.5 * (i % 2))
    row = a * np.sqrt(3) / 2 * i
    p = np.c_[row.ravel(), col.ravel()] + origin
    return p + np.random.default_rng(seed).normal(0, jitter, p.shape)


def naive_patch(img, p, P):
    """Reference: explicit loops, following the documented geometry."""
    if P % 2:
        r0 = int(math.floor(p[0] + 0.5)) - (P - 1) // 2
        c0 = int(math.floor(p[1] + 0.5)) - (P - 1) // 2
    else:
        r0 = int(math.floor(p[0])) - P // 2 + 1
        c0 = int(math.floor(p[1])) - P // 2 + 1
    out = np.empty((P, P))
    for a in range(P):
        for b in range(P):
            out[a, b] = img[r0 + a, c0 + b]
    return out, (r0, c0)


# --------------------------------------------------------------------------- RDF / patch size
@pytest.mark.parametrize("a", [4.6, 7.3, 12.0])
@pytest.mark.parametrize("jitter", [0.0, 0.05])
def test_rdf_first_peak_hexagonal(a, jitter):
    p = hex_lattice(a, 50, jitter * a, seed=1)
    est = estimate_patch_size(p)
    assert abs(est.nn_distance - a) / a < 0.02
    # second shell of a triangular lattice at sqrt(3) a
    assert abs(est.repeat_distance - np.sqrt(3) * a) / (np.sqrt(3) * a) < 0.02
    assert est.patch_size == patch_size_from_distance(est.nn_distance)
    assert est.patch_size % 2 == 1 and est.patch_size >= 2 * 1.3 * a
    # the histogram peak itself (before refinement) is within a bin of a
    r, g = est.r, est.g
    first = r[np.argmax(g * (r < 1.3 * a))]
    assert abs(first - a) <= max(0.25, 0.05 * a) + 1e-9


def test_rdf_normalisation_tends_to_one():
    # g -> 1 at large r for a jittered lattice; g ~ 0 below the nn distance
    p = hex_lattice(10.0, 60, 1.5, seed=2)
    r, g = radial_distribution(p, r_max=80, bin_width=0.5)
    assert abs(g[r > 60].mean() - 1) < 0.05
    assert g[r < 4].max() < 0.05
    # with the image shape the window is the image: g still normalised
    shape = (int(p[:, 0].max()) + 6, int(p[:, 1].max()) + 6)
    r2, g2 = radial_distribution(p, r_max=80, bin_width=0.5, shape=shape)
    assert abs(g2[r2 > 60].mean() - 1) < 0.1


def test_rdf_random_points_flat_and_no_peak():
    p = np.random.default_rng(3).uniform(0, 600, (4000, 2))
    r, g = radial_distribution(p, r_max=40, bin_width=1.0, shape=(600, 600))
    assert abs(g[r > 5].mean() - 1) < 0.05
    with pytest.raises(MotifLabError, match="no clear nearest-neighbour peak"):
        estimate_patch_size(p)


def test_rdf_honeycomb_nn_and_repeat():
    # honeycomb (e.g. MoSe2 in projection): nn = a/sqrt(3), repeat shell at a
    a = 9.0
    base = hex_lattice(a, 40)
    p = np.vstack([base, base + [a / np.sqrt(3), 0.0]])
    est = estimate_patch_size(p)
    assert abs(est.nn_distance - a / np.sqrt(3)) / (a / np.sqrt(3)) < 0.02
    assert abs(est.repeat_distance - a) / a < 0.02


def test_rdf_robust_to_spurious_points():
    # column finders over-count a little on purpose: 10 % extra points near columns
    rng = np.random.default_rng(6)
    p = hex_lattice(8.0, 50, 0.3, seed=1)
    k = len(p) // 10
    extra = p[rng.choice(len(p), k)] + rng.uniform(-3, 3, (k, 2))
    est = estimate_patch_size(np.vstack([p, extra]))
    assert abs(est.nn_distance - 8.0) / 8.0 < 0.02


def test_patch_size_rule():
    assert patch_size_from_distance(10.0) == 27  # 2*ceil(13)+1
    assert patch_size_from_distance(10.1) == 29  # 2*ceil(13.13)+1
    assert patch_size_from_distance(1.0) == 5
    assert patch_size_from_distance(10.0, scale=1.0) == 21
    assert patch_size_from_distance(0.1) == 3
    with pytest.raises(MotifLabError):
        patch_size_from_distance(-1)


def test_rdf_errors():
    with pytest.raises(MotifLabError, match="at least 2"):
        estimate_patch_size(np.zeros((1, 2)))
    with pytest.raises(MotifLabError, match="NaN"):
        radial_distribution(np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0]]))
    with pytest.raises(MotifLabError, match="r_max"):
        radial_distribution(hex_lattice(5, 10), r_max=1000)
    with pytest.raises(MotifLabError, match=r"\(N, 2\)"):
        radial_distribution(np.zeros((5, 3)))


# --------------------------------------------------------------------------- extraction
@pytest.mark.parametrize("P", [3, 7, 8, 15])
def test_extract_matches_naive_loop(P):
    rng = np.random.default_rng(4)
    img = rng.random((60, 70))
    pos = rng.uniform(0, [59, 69], (300, 2))
    res = extract_patches(img, pos, P)
    assert isinstance(res, Patches) and res.patches.flags.c_contiguous
    assert res.patches.dtype == np.float32 and res.patch_size == P
    kept = 0
    for i, p in enumerate(pos):
        try:
            ref, (r0, c0) = naive_patch(img, p, P)
            ok = r0 >= 0 and c0 >= 0 and r0 + P <= 60 and c0 + P <= 70
        except IndexError:
            ok = False
        if not ok:
            assert i not in set(res.index.tolist())
            continue
        k = int(np.searchsorted(res.index, i))
        assert res.index[k] == i
        np.testing.assert_array_equal(res.patches[k], ref.astype(np.float32))
        assert tuple(res.centers[k]) == (r0 + P // 2, c0 + P // 2)
        kept += 1
    assert kept == len(res) and res.n_dropped == 300 - kept


def test_centre_convention():
    img = np.zeros((21, 21))
    img[10, 10] = 1.0
    odd = extract_patches(img, [[10.4, 9.6]], 5).patches[0]
    assert odd[2, 2] == 1.0  # rounded position is the centre pixel
    even = extract_patches(img, [[10.2, 10.7]], 6).patches[0]
    # even P: geometric centre = corner floor(p)+0.5 = (10.5, 10.5); pixel (10,10) is upper-left of the 4 central ones
    assert even[2, 2] == 1.0
    assert tuple(extract_patches(img, [[10.2, 10.7]], 6).centers[0]) == (11, 11)


def test_border_policies():
    rng = np.random.default_rng(5)
    img = rng.random((40, 50)).astype(np.float32)
    P = 9
    pos = np.array([[20.0, 25.0], [2.0, 25.0], [20.0, 48.7], [0.0, 0.0], [39.4, 49.4], [45.0, 10.0], [-0.6, 3.0]])
    drop = extract_patches(img, pos, P)
    assert drop.index.tolist() == [0] and drop.n_dropped == 6
    for mode in ("reflect", "constant"):
        res = extract_patches(img, pos, P, border=mode, cval=-1.0)
        # only the two positions that do not round into the image are dropped
        assert res.index.tolist() == [0, 1, 2, 3, 4] and res.n_dropped == 2
        np.testing.assert_array_equal(res.patches[0], drop.patches[0])
    refl = extract_patches(img, pos, P, border="reflect")
    padded = np.pad(img, P, mode="reflect")
    np.testing.assert_array_equal(refl.patches[3], padded[P - 4 : P + 5, P - 4 : P + 5])
    const = extract_patches(img, pos, P, border="constant", cval=-1.0)
    assert np.all(const.patches[3][:4] == -1.0) and np.all(const.patches[3][4:, 4:] == img[:5, :5])


def test_extract_dtypes():
    img = (np.arange(400).reshape(20, 20) % 251).astype(np.uint8)
    res = extract_patches(img, [[10, 10]], 5, dtype=np.float64)
    assert res.patches.dtype == np.float64
    np.testing.assert_array_equal(res.patches[0], img[8:13, 8:13])
    for odd in (img.astype(np.float16), img.astype(">f8"), img > 100, img.T):  # half, big-endian, bool, F-order
        out = extract_patches(odd, [[10, 10]], 5).patches[0]
        np.testing.assert_array_equal(out, np.asarray(odd[8:13, 8:13], dtype=np.float32))


def test_constant_cval_on_integer_image():
    img = np.full((12, 12), 7, dtype=np.uint8)
    res = extract_patches(img, [[0, 0]], 5, border="constant", cval=-1.5)
    assert res.patches[0, 0, 0] == -1.5 and res.patches[0, 2, 2] == 7


def test_extract_errors():
    img = np.zeros((30, 40))
    pos = np.array([[10.0, 10.0]])
    with pytest.raises(MotifLabError, match="2-D"):
        extract_patches(np.zeros((3, 30, 40)), pos, 5)
    with pytest.raises(MotifLabError, match="minimum 3"):
        extract_patches(img, pos, 2)
    with pytest.raises(MotifLabError, match="30 x 40 px image"):
        extract_patches(img, pos, 31)
    with pytest.raises(MotifLabError, match="empty"):
        extract_patches(img, np.zeros((0, 2)), 5)
    with pytest.raises(MotifLabError, match="NaN"):
        extract_patches(img, [[np.nan, 3.0]], 5)
    with pytest.raises(MotifLabError, match="border"):
        extract_patches(img, pos, 5, border="wrap")
    with pytest.raises(MotifLabError, match="integer"):
        extract_patches(img, pos, 5.5)


@pytest.mark.parametrize("P", [9, 10])
def test_subpixel_patches_are_bilinear_samples_centred_on_the_position(P):
    from scipy import ndimage

    rng = np.random.default_rng(1)
    img = rng.random((60, 70)).astype(np.float32)
    pos = rng.uniform(12, 48, (40, 2))
    pt = extract_patches(img, pos, P, subpixel=True)
    c = (P - 1) / 2
    yy, xx = np.mgrid[0:P, 0:P] - c
    ref = np.stack([
        ndimage.map_coordinates(img.astype(float), [p[0] + yy.ravel(), p[1] + xx.ravel()], order=1).reshape(P, P)
        for p in pos[pt.index]
    ])
    np.testing.assert_allclose(pt.patches, ref, atol=1e-6)
    # same kept set as integer extraction
    np.testing.assert_array_equal(pt.index, extract_patches(img, pos, P).index)


def test_subpixel_removes_shift_variation():
    """Two copies of one blob at different sub-pixel offsets give (nearly) identical patches."""
    yy, xx = np.mgrid[0:40, 0:80]
    pos = np.array([[20.0, 20.0], [20.4, 60.45]])
    img = sum(np.exp(-((yy - p[0]) ** 2 + (xx - p[1]) ** 2) / (2 * 2.0**2)) for p in pos).astype(np.float32)
    rounded = extract_patches(img, pos, 11).patches
    exact = extract_patches(img, pos, 11, subpixel=True).patches
    d_round = np.abs(rounded[0] - rounded[1]).max()
    d_exact = np.abs(exact[0] - exact[1]).max()
    assert d_exact < 0.4 * d_round  # measured 0.33: the rest is bilinear blur


def _spot(P, y, x, s=1.5):
    yy, xx = np.mgrid[0:P, 0:P]
    return np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s**2))


@pytest.mark.parametrize("n_fold", [3, 4, 6])
def test_rotational_average_makes_rotated_copies_equal(n_fold):
    P, r = 21, 6.0
    c = (P - 1) / 2
    t = 2 * np.pi / n_fold
    a = _spot(P, c, c + r) + 0.5 * _spot(P, c + 3, c - 2)
    # the same pattern turned by one step of the group (rotating the points about the centre)
    def turned(y, x):
        dy, dx = y - c, x - c
        return c + np.cos(t) * dy + np.sin(t) * dx, c - np.sin(t) * dy + np.cos(t) * dx
    b = _spot(P, *turned(c, c + r)) + 0.5 * _spot(P, *turned(c + 3, c - 2))
    out = rotational_average(np.stack([a, b]), n_fold)
    assert out.dtype == np.float32 and out.shape == (2, P, P)
    # equal up to bilinear interpolation: a tenth of the difference there was
    assert np.abs(out[0] - out[1]).max() < 0.1 * np.abs(a - b).max()
    # an n-fold symmetric pattern is left as it is
    sym = sum(_spot(P, c + r * np.sin(k * t), c + r * np.cos(k * t)) for k in range(n_fold))
    assert np.abs(rotational_average(sym[None], n_fold)[0] - sym).max() < 0.08 * sym.max()  # bilinear blur


def test_rotational_average_exact_for_quarter_turns_and_errors():
    x = np.random.default_rng(0).normal(size=(5, 9, 9)).astype(np.float32)
    four = rotational_average(x, 4)
    assert np.allclose(four, np.rot90(four, 1, axes=(1, 2)), atol=1e-6)
    assert np.array_equal(rotational_average(x, 1), x)
    with pytest.raises(MotifLabError, match="n_fold"):
        rotational_average(x, 0)
    with pytest.raises(MotifLabError, match="N, P, P"):
        rotational_average(x[0], 4)
