"""Tests for motiflab.zernike: basis, moments, invariance, reconstruction, symmetry."""
import numpy as np
import pytest
from scipy.ndimage import rotate

from motiflab.errors import MotifLabError
from motiflab.zernike import (
    ZernikeFeaturizer,
    reconstruct_patches,
    rotinv_indices,
    symmetry_energy,
    zernike_basis,
    zernike_indices,
    zernike_moments,
)


def blobs(P, angle_deg=0.0, k=6, radius=None, sigma=None, centre=True, amps=None):
    """Gaussian blobs on a ring (k of them, unequal, uneven spacing unless amps given) + a centre blob."""
    c = (P - 1) / 2
    yy, xx = np.mgrid[0:P, 0:P]
    y, x = c - yy, xx - c
    radius = radius or 0.3 * P
    sigma = sigma or 0.07 * P
    img = np.exp(-(x**2 + y**2) / (2 * sigma**2)) if centre else np.zeros((P, P))
    irregular = amps is None
    amps = amps if amps is not None else [1.0, 0.6, 0.8, 0.5, 0.9, 0.7, 0.4][:k]
    for i in range(k):
        t = np.deg2rad(angle_deg) + 2 * np.pi * i / k + (0.3 * (i % 2) if irregular else 0.0)
        img = img + amps[i] * np.exp(-((x - radius * np.cos(t)) ** 2 + (y - radius * np.sin(t)) ** 2) / (2 * sigma**2))
    return img


# --------------------------------------------------------------------------- basis
@pytest.mark.parametrize("P", [15, 16, 24, 32, 33])
def test_basis_orthonormal_float64(P):
    B = zernike_basis(P, 10, np.float64)
    assert B.shape == (P * P, 66)
    assert np.abs(B.T @ B - np.eye(66)).max() < 1e-6
    # zero outside the inscribed disk of radius P/2 around the patch centre
    c = (P - 1) / 2
    yy, xx = np.mgrid[0:P, 0:P]
    outside = np.hypot(yy - c, xx - c).ravel() > P / 2
    assert outside.any() and np.all(B[outside] == 0)


def test_basis_cached_readonly_and_float32_matches():
    B1 = zernike_basis(21, 10)
    assert B1 is zernike_basis(21, 10, "float32")
    assert B1.dtype == np.float32 and not B1.flags.writeable
    with pytest.raises(ValueError):
        B1[0, 0] = 1.0
    np.testing.assert_allclose(B1, zernike_basis(21, 10, np.float64), atol=1e-6)


def test_basis_is_close_to_continuous_zernike_for_large_patch():
    # Löwdin only corrects sampling errors: for P=64 it barely changes the
    # sampled polynomials (Z_2^0 = sqrt(3)(2 rho^2 - 1) checked directly).
    P = 64
    B = zernike_basis(P, 10, np.float64)
    n, m = zernike_indices(10)
    j = int(np.flatnonzero((n == 2) & (m == 0))[0])
    c = (P - 1) / 2
    yy, xx = np.mgrid[0:P, 0:P]
    rho = np.hypot(yy - c, xx - c) / (P / 2)
    z = np.where(rho <= 1, np.sqrt(3) * (2 * rho**2 - 1), 0).ravel()
    z /= np.linalg.norm(z)
    assert abs(z @ B[:, j]) > 0.995


def test_indices_order_and_counts():
    n, m = zernike_indices(10)
    assert n.size == 66
    # OSA/ANSI: j = (n(n+2)+m)/2
    assert np.array_equal((n * (n + 2) + m) // 2, np.arange(66))
    ni, mi = rotinv_indices(10)
    assert ni.size == 36 and np.all(mi >= 0)
    assert list(zip(*zernike_indices(1))) == [(0, 0), (1, -1), (1, 1)]


# --------------------------------------------------------------------------- invariance
@pytest.mark.parametrize("P", [24, 31])
def test_rotinv_exact_under_rot90_and_flips(P):
    rng = np.random.default_rng(0)
    X = rng.random((50, P, P)).astype(np.float32)
    f0 = zernike_moments(X, rotinv=True)
    scale = np.abs(f0).max()
    for k in (1, 2, 3):
        fk = zernike_moments(np.ascontiguousarray(np.rot90(X, k, axes=(1, 2))), rotinv=True)
        assert np.abs(fk - f0).max() / scale < 1e-5
    for ax in (1, 2):  # mirrors are in D4 too; magnitudes are invariant to them
        ff = zernike_moments(np.ascontiguousarray(np.flip(X, ax)), rotinv=True)
        assert np.abs(ff - f0).max() / scale < 1e-5
    # the signed moments do change: the invariance is not trivial
    s0 = zernike_moments(X)
    s1 = zernike_moments(np.ascontiguousarray(np.rot90(X, 1, axes=(1, 2))))
    assert np.abs(s1 - s0).max() / np.abs(s0).max() > 0.1


def test_rotinv_m0_keeps_sign():
    P = 21
    A = zernike_moments(-blobs(P, k=0)[None], rotinv=True)
    ni, mi = rotinv_indices(10)
    assert (ni[0], mi[0]) == (0, 0) and A[0, 0] < 0  # (0,0) of a negative blob is negative, not its magnitude


@pytest.mark.parametrize("P", [32, 33, 48])
def test_rotinv_near_invariant_under_arbitrary_rotation(P):
    # measured: max relative error 1.0-1.6 % over these angles (cubic-spline
    # rotation + pixel sampling), against a 72 % change of the signed moments
    p0 = blobs(P)
    f0 = zernike_moments(p0[None], rotinv=True)[0]
    s0 = zernike_moments(p0[None])[0]
    for ang in (10, 17, 30, 45, 77, 123, 200):
        pr = rotate(p0, ang, reshape=False, order=3, mode="constant")
        f = zernike_moments(pr[None], rotinv=True)[0]
        assert np.linalg.norm(f - f0) / np.linalg.norm(f0) < 0.03, ang
    s30 = zernike_moments(rotate(p0, 30, reshape=False, order=3)[None])[0]
    assert np.linalg.norm(s30 - s0) / np.linalg.norm(s0) > 0.5


# --------------------------------------------------------------------------- reconstruction
@pytest.mark.parametrize("P", [20, 27])
def test_reconstruct_exact_for_basis_combination(P):
    rng = np.random.default_rng(1)
    B = zernike_basis(P, 10, np.float64)
    coef = rng.standard_normal((7, 66))
    X = (coef @ B.T).reshape(7, P, P)
    A = zernike_moments(X)
    np.testing.assert_allclose(A, coef, atol=1e-5 * np.abs(coef).max())
    R = reconstruct_patches(A, P)
    assert R.shape == (7, P, P)
    assert np.abs(R - X).max() < 1e-5 * np.abs(X).max()
    # float64 moments reconstruct in float64
    R64 = reconstruct_patches(coef, P)
    assert R64.dtype == np.float64 and np.abs(R64 - X).max() < 1e-12


def test_reconstruction_error_decreases_with_n_max():
    P = 32
    p = blobs(P, k=3, sigma=0.1 * P)
    c = (P - 1) / 2
    yy, xx = np.mgrid[0:P, 0:P]
    disk = np.hypot(yy - c, xx - c) <= P / 2
    errs = []
    for nm in (2, 4, 6, 8, 10, 12):
        R = reconstruct_patches(zernike_moments(p[None], n_max=nm, out_dtype=np.float64), P, n_max=nm)[0]
        errs.append(np.linalg.norm((R - p)[disk]) / np.linalg.norm(p[disk]))
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.1 and errs[0] > 2 * errs[-1]


def test_energy_bounded_by_pixel_energy():
    # orthonormal basis: Bessel's inequality sum(A^2) <= sum(p^2)
    X = np.random.default_rng(2).random((20, 25, 25))
    A = zernike_moments(X, out_dtype=np.float64)
    assert np.all((A**2).sum(1) <= (X**2).sum((1, 2)) * (1 + 1e-6))


# --------------------------------------------------------------------------- noise
@pytest.mark.parametrize("P", [32, 33])
def test_high_frequency_noise_rejection(P):
    J = 66
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((300, P, P))
    ratio_white = (zernike_moments(noise, out_dtype=np.float64) ** 2).sum() / (noise**2).sum()
    # white noise keeps only its projection on 66 of P^2 dims: ~J/P^2 = 6.1-6.4 %
    assert ratio_white < 1.3 * J / P**2
    checker = (np.indices((P, P)).sum(0) % 2) * 2 - 1.0
    ratio_cb = (zernike_moments(checker[None], out_dtype=np.float64) ** 2).sum() / (checker**2).sum()
    assert ratio_cb < 0.03  # measured 1.7 % (P=32), 0.7 % (P=33)
    smooth = blobs(P)
    c = (P - 1) / 2
    yy, xx = np.mgrid[0:P, 0:P]
    smooth = smooth * (np.hypot(yy - c, xx - c) <= P / 2)
    ratio_smooth = (zernike_moments(smooth[None], out_dtype=np.float64) ** 2).sum() / (smooth**2).sum()
    assert ratio_smooth > 0.9  # measured 0.955 (P=32): smooth content is kept


# --------------------------------------------------------------------------- symmetry
@pytest.mark.parametrize("k", [3, 4, 6])
def test_symmetry_energy_peaks_at_fold(k):
    P = 33
    p = blobs(P, k=k, amps=[1.0] * k, angle_deg=11.0)
    E = symmetry_energy(zernike_moments(p[None]))
    assert E.shape == (1, 11)
    np.testing.assert_allclose(E.sum(1), 1.0, rtol=1e-6)
    assert int(np.argmax(E[0, 1:])) + 1 == k
    # energy sits on multiples of k only (up to float32 rounding)
    not_multiple = [mm for mm in range(1, 11) if mm % k]
    assert E[0, not_multiple].sum() < 1e-4
    # single moment vector works too
    assert symmetry_energy(zernike_moments(p[None])[0]).shape == (11,)


def test_symmetry_energy_zero_and_d4_patches():
    assert np.all(symmetry_energy(zernike_moments(np.zeros((2, 20, 20)))) == 0)
    # a constant patch has the full D4 symmetry of the grid: its (tiny) non-DC
    # energy can only sit at |m| = 0, 4, 8 -- true because Löwdin commutes with D4
    E = symmetry_energy(zernike_moments(np.ones((1, 20, 20)), out_dtype=np.float64))[0]
    assert E[[1, 2, 3, 5, 6, 7, 9, 10]].sum() < 1e-6 and E[[0, 4, 8]].sum() > 0.999


# --------------------------------------------------------------------------- dtypes / layouts
def test_float32_float64_and_views_agree():
    rng = np.random.default_rng(4)
    X = rng.random((300, 24, 24))
    A64 = zernike_moments(X)
    A32 = zernike_moments(X.astype(np.float32))
    assert np.abs(A64 - A32).max() < 1e-5 * np.abs(A64).max()
    Aflat = zernike_moments(X.astype(np.float32).reshape(300, -1))
    np.testing.assert_array_equal(Aflat, A32)
    big = rng.random((300, 30, 30)).astype(np.float32)
    view = big[:, 3:27, 3:27]  # non-contiguous view
    assert not view.flags.c_contiguous
    np.testing.assert_allclose(zernike_moments(view), zernike_moments(view.copy()), atol=1e-6)
    ints = (X * 1000).astype(np.uint16)
    np.testing.assert_allclose(zernike_moments(ints), zernike_moments(ints.astype(np.float32)), rtol=1e-6, atol=1e-3)
    assert zernike_moments(X, out_dtype=np.float64).dtype == np.float64


def test_float32_contiguous_input_is_not_copied(monkeypatch):
    # the product runs straight on the caller's buffer: patch its matmul input
    X = np.random.default_rng(5).random((10, 16, 16)).astype(np.float32)
    import motiflab.zernike as zm

    seen = {}
    orig = zm._project

    def spy(flat, B):
        seen["shares"] = np.shares_memory(flat, X)
        return orig(flat, B)

    monkeypatch.setattr(zm, "_project", spy)
    zm.zernike_moments(X)
    assert seen["shares"]


# --------------------------------------------------------------------------- featurizer
def test_featurizer_roundtrip():
    rng = np.random.default_rng(6)
    P = 21
    coef = rng.standard_normal((5, 66))
    X = (coef @ zernike_basis(P, 10, np.float64).T).reshape(5, P, P).astype(np.float32)
    zf = ZernikeFeaturizer().fit(X)
    assert zf.patch_size_ == P and zf.n_features_out_ == 66
    A = zf.transform(X)
    assert np.abs(zf.inverse_transform(A) - X).max() < 1e-5 * np.abs(X).max()
    zr = ZernikeFeaturizer(rotinv=True)
    assert zr.fit_transform(X).shape == (5, 36)
    with pytest.raises(MotifLabError, match="cannot be inverted"):
        zr.inverse_transform(A)
    with pytest.raises(MotifLabError, match="fitted on 21"):
        zf.transform(np.zeros((2, 15, 15)))
    with pytest.raises(MotifLabError, match="not fitted"):
        ZernikeFeaturizer().transform(X)


# --------------------------------------------------------------------------- errors
def test_bad_input_errors():
    X = np.zeros((3, 16, 16), np.float32)
    with pytest.raises(MotifLabError, match="n_max"):
        zernike_moments(X, n_max=-1)
    with pytest.raises(MotifLabError, match="n_max"):
        zernike_indices(2.5)
    with pytest.raises(MotifLabError, match="ndim=4"):
        zernike_moments(X[None])
    with pytest.raises(MotifLabError, match="ndim=1"):
        zernike_moments(np.zeros(256))
    with pytest.raises(MotifLabError, match="square"):
        zernike_moments(np.zeros((3, 16, 17)))
    with pytest.raises(MotifLabError, match="perfect square"):
        zernike_moments(np.zeros((3, 250)))
    with pytest.raises(MotifLabError, match="empty"):
        zernike_moments(np.zeros((0, 16, 16)))
    bad = X.copy()
    bad[2, 0, 0] = np.nan  # outside the disk, still caught
    with pytest.raises(MotifLabError, match="index 2"):
        zernike_moments(bad)
    bad64 = np.zeros((3, 16, 16))
    bad64[1, 8, 8] = np.inf
    with pytest.raises(MotifLabError, match="NaN or Inf"):
        zernike_moments(bad64)
    with pytest.raises(MotifLabError, match="larger patch"):
        zernike_basis(7, 10)
    with pytest.raises(MotifLabError, match="n_max=10 needs 66"):
        reconstruct_patches(np.zeros((2, 36)), 16)
    with pytest.raises(MotifLabError, match="n_max=2"):
        symmetry_energy(np.zeros((2, 6)), n_max=10)
    with pytest.warns(UserWarning, match="ill-conditioned"):
        zernike_basis(11, 10, np.float64)
    assert issubclass(MotifLabError, ValueError)


def test_memory_bounded_for_conversion_paths():
    # float64 input is read block by block (or converted in 16 MiB chunks on the
    # dense path), never as a full float32 copy
    import tracemalloc

    import motiflab.zernike as zm

    X = np.random.default_rng(7).random((8000, 32, 32))  # 64 MiB float64
    V = np.zeros((8000, 34, 34), np.float32)[:, 1:33, 1:33]  # strided float32 view, 32 MiB
    X32 = X.astype(np.float32)
    for warm in (X, V, X32):  # basis cache, numba compilation, per-thread work buffers
        zernike_moments(warm)
    # the per-thread work buffers are bounded, whatever N
    assert zm._tls.mem.nbytes <= zm._BLOCK_BYTES
    tracemalloc.start()
    try:
        zernike_moments(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.4 * X.nbytes  # a full float32 copy would be 0.5x
    tracemalloc.start()
    try:
        zernike_moments(V)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.8 * 8000 * 32 * 32 * 4  # chunked, not reshaped into a full copy
    tracemalloc.start()
    try:
        zernike_moments(X32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 8000 * 66 * 4  # only the (N, 66) result


# --------------------------------------------------------------------------- symmetry-adapted transform
def _force_d4(monkeypatch):
    import motiflab.zernike as zm

    monkeypatch.setattr(zm, "_D4_MIN_PIXELS", 0)
    monkeypatch.setattr(zm, "_D4_MIN_P", 0)
    return zm


def _reference(X, P, n_max):
    """float64 dense product with the float64 basis."""
    import motiflab.zernike as zm

    return X.reshape(len(X), -1).astype(np.float64) @ zm._basis64(P, n_max)[0]


def _basis_or_skip(P, n_max):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ill-conditioned small patches are still exact
        try:
            return zernike_basis(P, n_max, np.float64)
        except MotifLabError:
            pytest.skip(f"no basis for P={P}, n_max={n_max}")


@pytest.mark.parametrize("P", [9, 12, 16, 21, 32, 33, 64])
@pytest.mark.parametrize("n_max", range(13))
def test_d4_transform_matches_dense_product(P, n_max):
    import motiflab.zernike as zm

    _basis_or_skip(P, n_max)
    plan = zm._d4_plan(P, n_max)
    assert plan is not None
    J = (n_max + 1) * (n_max + 2) // 2
    rng = np.random.default_rng(P * 100 + n_max)
    X = rng.standard_normal((37, P, P)) * 50 + 100
    for dt in (np.float32, np.float64, np.int16, np.uint8):
        Xd = X.astype(dt)
        ref = _reference(Xd, P, n_max)
        A = zm._project_d4(Xd.reshape(37, -1), plan, P, J)
        assert A.dtype == np.float32 and A.shape == (37, J)
        err = np.abs(A - ref).max() / np.abs(ref).max()
        assert err < 1e-5, (dt, err)
    # and far fewer multiply-adds than the dense product (7x for large patches)
    if P >= 32 and n_max == 10:
        assert plan.flops * 6 < 2 * P * P * J


def test_d4_grouping_covers_each_function_once():
    import motiflab.zernike as zm

    for P, n_max in ((16, 10), (21, 10), (32, 10), (33, 12), (64, 10), (24, 0), (24, 3)):
        plan = zm._d4_plan(P, n_max)
        J = (n_max + 1) * (n_max + 2) // 2
        assert sorted(plan.order.tolist()) == list(range(J))  # each OSA column exactly once
        cols = []
        for g0, g1, parts in plan.groups:
            assert len(parts) == 1  # D4-symmetric basis: every function lives in one block
            blk, W = parts[0]
            assert W.shape == (plan.sizes[blk], g1 - g0)
            assert W.dtype == np.float32 and not W.flags.writeable
            cols += list(range(g0, g1))
        assert cols == list(range(J))  # the groups tile the grouped output
        if n_max >= 4:
            # the six component blocks (ee+, ee-, oo+, oo-, oe, eo) each feed their own group
            assert sorted(parts[0][0] for _, _, parts in plan.groups) == list(range(6))
        # the D4 orbits split the quadrant's inside points (diagonal counted once)
        n_orb, n_quad = plan.sizes[0], plan.sizes[4]
        diag = np.sum(plan.orb_a == plan.orb_b)
        assert 2 * n_orb - diag == n_quad == plan.h ** 2 - plan.q_out.size


@pytest.mark.parametrize("P", [16, 33])
def test_d4_block_usage_is_read_off_the_basis(monkeypatch, P):
    # nothing assumes which function is symmetric how: a basis function that
    # breaks the mirror symmetry is simply given more component blocks, and the
    # transform stays exact
    import motiflab.zernike as zm

    B, w = zm._basis64(P, 4)
    good = zm._d4_plan(P, 4)  # before the patch: run alone, the cache would be empty
    Bbad = B.copy()
    Bbad[(P // 2) * P + P // 2 + 1, 3] += 0.1  # one pixel inside the disk
    monkeypatch.setattr(zm, "_basis64", lambda P_, n_: (Bbad, w))
    bad = zm._d4_plan.__wrapped__(P, 4)
    assert bad.flops > good.flops and len(bad.groups) > len(good.groups)
    assert max(len(parts) for _, _, parts in bad.groups) > 1
    X = np.random.default_rng(11).standard_normal((20, P, P))
    ref = X.reshape(20, -1) @ Bbad
    assert np.abs(zm._project_d4(X.reshape(20, -1), bad, P, 15) - ref).max() < 1e-5 * np.abs(ref).max()


def test_d4_falls_back_to_dense_without_symmetry(monkeypatch):
    import motiflab.zernike as zm

    rho, theta, inside = zm._grid(16)
    lopsided = inside.copy()
    lopsided[0, 0] = True  # one corner pixel counted inside, its mirror images not
    monkeypatch.setattr(zm, "_grid", lambda P: (rho, theta, lopsided))
    with pytest.warns(RuntimeWarning, match="not D4-symmetric"):
        assert zm._d4_plan.__wrapped__(16, 4) is None


def test_d4_path_is_taken_and_agrees_with_dense(monkeypatch):
    import motiflab.zernike as zm

    X = np.random.default_rng(8).standard_normal((6000, 32, 32)).astype(np.float32)
    seen = {}
    orig = zm._project_d4

    def spy(*a):
        seen["d4"] = True
        return orig(*a)

    monkeypatch.setattr(zm, "_project_d4", spy)
    A = zernike_moments(X)
    assert seen.get("d4")  # large stacks take the symmetry-adapted path by default
    ref = _reference(X, 32, 10)
    assert np.abs(A - ref).max() < 1e-5 * np.abs(ref).max()
    # small stacks keep the dense product
    seen.clear()
    zernike_moments(X[:100])
    assert not seen


def test_d4_layouts_and_dtypes(monkeypatch):
    _force_d4(monkeypatch)
    rng = np.random.default_rng(9)
    big = (rng.random((301, 40, 40)) * 1000).astype(np.float64)
    X = big[:, 4:36, 4:36]  # strided 3-D view
    ref = _reference(np.ascontiguousarray(X), 32, 10)
    tol = 1e-5 * np.abs(ref).max()
    cases = {
        "view": X,
        "copy": np.ascontiguousarray(X),
        "float32 view": big.astype(np.float32)[:, 4:36, 4:36],
        "flipped": np.flip(X, axis=1)[:, ::-1],  # negative strides, same patches
        "2-D every other row": np.repeat(np.ascontiguousarray(X).reshape(301, -1), 2, axis=0)[::2],
        "2-D column slice": np.ascontiguousarray(np.concatenate([X.reshape(301, -1), X.reshape(301, -1)], 1))[:, :1024],
        "big-endian": np.ascontiguousarray(X).astype(">f8"),
        "int32": np.ascontiguousarray(X).astype(np.int32),
        "uint16": np.ascontiguousarray(X).astype(np.uint16),
        "float16": np.ascontiguousarray(X).astype(np.float16),
        "every other patch": np.repeat(np.ascontiguousarray(X), 2, axis=0)[::2],
    }
    for name, Y in cases.items():
        exact = _reference(np.asarray(Y, dtype=np.float64), 32, 10)
        A = zernike_moments(Y)
        assert np.abs(A - exact).max() < tol, name
    # a view and its copy take the same blocks: bit-identical results
    np.testing.assert_array_equal(zernike_moments(X), zernike_moments(np.ascontiguousarray(X)))
    np.testing.assert_array_equal(zernike_moments(X.astype(np.float32)),
                                  zernike_moments(X.astype(np.float32).reshape(301, -1)))


@pytest.mark.parametrize("P", [24, 31, 64])
def test_d4_rotinv_exact_under_rot90_and_flips(monkeypatch, P):
    _force_d4(monkeypatch)
    X = np.random.default_rng(10).random((40, P, P)).astype(np.float32)
    f0 = zernike_moments(X, rotinv=True)
    scale = np.abs(f0).max()
    for k in (1, 2, 3):
        fk = zernike_moments(np.ascontiguousarray(np.rot90(X, k, axes=(1, 2))), rotinv=True)
        assert np.abs(fk - f0).max() / scale < 1e-5
    fT = zernike_moments(np.ascontiguousarray(X.transpose(0, 2, 1)), rotinv=True)  # x <-> y mirror
    assert np.abs(fT - f0).max() / scale < 1e-5


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_d4_nan_and_inf_anywhere_are_caught(monkeypatch, dt):
    _force_d4(monkeypatch)
    P = 32
    X = np.zeros((50, P, P), dt)
    for idx, bad in (((3, 0, 0), np.nan), ((7, 0, 31), np.inf), ((11, 16, 16), -np.inf), ((13, 31, 2), np.nan),
                     ((17, 2, 16), np.inf)):
        Y = X.copy()
        Y[idx] = bad
        with pytest.raises(MotifLabError, match=f"index {idx[0]}"):
            zernike_moments(Y)
    # +inf and -inf that cancel in a butterfly still end up as NaN
    Y = X.copy()
    Y[5, 0, 0], Y[5, 31, 31] = np.inf, -np.inf
    with pytest.raises(MotifLabError, match="index 5"):
        zernike_moments(Y)


def test_d4_threads_and_blas_setting(monkeypatch):
    # concurrent callers get correct results, and the caller's BLAS thread count is restored
    import threading

    from threadpoolctl import threadpool_info

    _force_d4(monkeypatch)
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    rng = np.random.default_rng(12)
    stacks = [rng.standard_normal((500 + 37 * k, 32, 32)).astype(np.float32) for k in range(4)]
    refs = [_reference(X, 32, 10) for X in stacks]
    errs = []

    def run(k):
        for _ in range(3):
            A = zernike_moments(stacks[k])
            errs.append(np.abs(A - refs[k]).max() / np.abs(refs[k]).max())

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errs) == 12 and max(errs) < 1e-5
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before
