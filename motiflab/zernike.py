"""Zernike moments of square image patches (stage 3 of the method).

Every patch is described by its projections onto the real Zernike polynomials
:math:`Z_n^m` up to radial order ``n_max`` (66 moments for ``n_max=10``),
sampled on the disk inscribed in the patch. The moments are the matrix product
``patches.reshape(N, P*P) @ basis``; for large stacks it is computed by a
symmetry-adapted transform with ~7x fewer multiply-adds (see *Computation*),
which is what makes the features cheap enough for 10^5 columns.

Conventions
-----------
Index order
    OSA/ANSI single index ``j = (n*(n+2) + m) // 2``: ordered by ``n`` and,
    within one ``n``, by ``m = -n, -n+2, ..., n``. See :func:`zernike_indices`.
Geometry
    Pixel ``(row, col)`` of a ``P x P`` patch has its centre at
    ``x = col - (P-1)/2`` and ``y = (P-1)/2 - row`` (``y`` points *up*, as the
    patch is displayed), so the disk is centred on the geometric centre of the
    patch (the centre pixel for odd ``P``, the corner shared by the four
    central pixels for even ``P``). Coordinates are scaled by ``P/2`` so the unit
    disk has a radius of ``P/2`` px; pixels whose centre lies outside it are 0
    in every basis function. ``theta = atan2(y, x)`` runs counter-clockwise, so
    ``np.rot90(patch)`` (a counter-clockwise turn of the displayed patch) adds
    90 degrees to ``theta``.
Real polynomials
    ``Z_n^m = R_n^|m|(rho) cos(m theta)`` for ``m >= 0`` and
    ``R_n^|m|(rho) sin(|m| theta)`` for ``m < 0``.
Discrete orthonormality
    The sampled polynomials are only approximately orthogonal on a pixel grid
    (badly so for small patches). They are made *exactly* orthonormal in pixel
    space with the symmetric (Löwdin) orthonormalisation
    ``B (B^T B)^(-1/2)``, computed in float64. Unlike Gram-Schmidt, Löwdin
    treats all functions alike and commutes with the D4 symmetry of the square
    pixel grid, so under a 90 degree rotation each ``(n, m), (n, -m)`` pair still
    rotates into itself and the rotation-invariant magnitudes stay exactly
    invariant. Because the basis is orthonormal, the moments of a patch are its
    coordinates in the basis: ``sum(A**2) <= sum(patch**2)`` with equality for
    patches inside the span, and :func:`reconstruct_patches` is a projection.

Computation
-----------
The moments are the product ``patches.reshape(N, P*P) @ basis``. The pixel
grid, the disk and the Löwdin basis are invariant under the 8 symmetries D4 of
the square, so each basis function has a definite parity in ``x`` and ``y``;
for large stacks a numba kernel folds every patch into its symmetry components
and a few small sgemms finish the job with ~7x fewer multiply-adds
(:mod:`motiflab._zernike_d4`). Small stacks and patches below 16 x 16 keep the
dense product. Both agree to float32 rounding.
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from . import _zernike_d4
from ._blas import single_threaded_blas
from ._zernike_d4 import build_plan
from .errors import MotifLabError

# The helpers keep their old private names here: the code below, tests and
# benchmarks use them, and monkeypatching them on this module still takes effect.
from ._zernike_basis import (  # noqa: E402,F401,I001
    ILL_CONDITIONED as _ILL_CONDITIONED, SINGULAR as _SINGULAR, basis64 as _basis64,
    basis_cached as _basis_cached, grid as _grid, max_ok_n_max as _max_ok_n_max, osa_indices as _osa_indices,
    radial as _radial, raw_basis as _raw_basis,
)
from ._zernike_checks import (  # noqa: E402,F401,I001
    as_flat_patches as _as_flat_patches, check_moments as _check_moments,
    check_n_max as _check_n_max, check_patch_size as _check_patch_size, n_max_from_J as _n_max_from_J,
    raise_nonfinite as _raise_nonfinite,
)
from ._zernike_d4 import (  # noqa: E402,F401,I001
    BLOCK_BYTES as _BLOCK_BYTES, KERNEL_DTYPES as _KERNEL_DTYPES, SUB_BYTES as _SUB_BYTES, T4 as _T4, T8 as _T8,
    D4Plan as _D4Plan, block_moments as _d4_block, butterfly_coefs as _butterfly_coefs,
    n_images as _n_images, no_plan as _no_plan, patch_components as _d4_components,
    project as _project_d4, tls as _tls, work_buffers as _work_buffers,
)

__all__ = [
    "zernike_indices",
    "rotinv_indices",
    "zernike_basis",
    "zernike_moments",
    "reconstruct_patches",
    "symmetry_energy",
    "ZernikeFeaturizer",
]

# Size of the float32 buffer when the input must be converted first (float64,
# integers, strided views): 16 MiB stays in a 32 MiB L3 between the conversion
# and the sgemm that reads it. Measured (2-core EPYC, 10k x 64^2 float64):
# 16 MiB 0.16 s, 64 MiB 0.18 s, 4 MiB 0.26 s (BLAS call overhead), dgemm 0.22 s.
_CHUNK_BYTES = 16 * 2**20



# --------------------------------------------------------------------------- #
# indices
# --------------------------------------------------------------------------- #
def zernike_indices(n_max: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Radial order ``n`` and azimuthal frequency ``m`` of each moment.

    Parameters
    ----------
    n_max : int, default 10
        Highest radial order.

    Returns
    -------
    n, m : ndarray of int64, shape (J,)
        ``J = (n_max + 1) * (n_max + 2) / 2`` (66 for ``n_max=10``), in the
        OSA/ANSI single-index order ``j = (n*(n+2) + m) // 2``, i.e. sorted by
        ``n`` and then by ``m = -n, -n+2, ..., n``.

    Examples
    --------
    >>> n, m = zernike_indices(2)
    >>> list(zip(n.tolist(), m.tolist()))
    [(0, 0), (1, -1), (1, 1), (2, -2), (2, 0), (2, 2)]
    """
    return _osa_indices(_check_n_max(n_max))


def rotinv_indices(n_max: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(n, m)`` of each rotation-invariant feature (``m >= 0``).

    Parameters
    ----------
    n_max : int, default 10
        Highest radial order, as for :func:`zernike_indices`.

    Returns
    -------
    n, m : ndarray of int64, shape (K,)
        The signed moments with ``m >= 0`` in OSA/ANSI order (36 features for
        ``n_max=10``). Feature ``k`` is ``|A_{n,m}| = sqrt(A_{n,m}^2 + A_{n,-m}^2)``
        for ``m > 0`` and the signed ``A_{n,0}`` for ``m = 0``.
    """
    n, m = zernike_indices(n_max)
    keep = m >= 0
    return n[keep], m[keep]


@functools.lru_cache(maxsize=None)
def _pair_index(n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``A_{n,m}`` and ``A_{n,-m}`` (``-1`` for ``m = 0``) of each invariant feature."""
    n, m = zernike_indices(n_max)
    pos = np.flatnonzero(m >= 0)
    neg = np.where(m[pos] > 0, pos - m[pos], -1)  # within one n, (n,-m) sits m columns before (n,m)
    return pos, neg


# --------------------------------------------------------------------------- #
# basis
# --------------------------------------------------------------------------- #
def zernike_basis(patch_size: int, n_max: int = 10, dtype=np.float32) -> np.ndarray:
    """Discrete orthonormal Zernike basis for ``patch_size x patch_size`` patches.

    Parameters
    ----------
    patch_size : int
        Side ``P`` of the square patch in px (odd or even), at most 4097.
    n_max : int, default 10
        Highest radial order; ``J = (n_max+1)(n_max+2)/2`` polynomials. At
        most 40 (861 polynomials): higher orders are refused rather than
        computed for hours.
    dtype : dtype, default float32
        dtype of the returned basis. It is always computed in float64 and cast.

    Returns
    -------
    ndarray, shape (P*P, J), read-only
        Column ``j`` is polynomial ``j`` (OSA/ANSI order, see
        :func:`zernike_indices`) sampled on the row-major flattened patch, zero
        outside the inscribed disk. ``B.T @ B`` is the identity (to ~1e-12 in
        float64). Cached per ``(P, n_max, dtype)``; do not modify (the array is
        read-only; copy it if you must).

    Raises
    ------
    MotifLabError
        If ``n_max`` or ``patch_size`` is invalid, or the patch has too few
        pixels inside its disk for ``J`` independent polynomials.

    Warns
    -----
    UserWarning
        If the sampled polynomials are nearly dependent (e.g. ``P <= 13`` with
        ``n_max=10``): the basis is still orthonormal but high orders are
        distorted.

    Notes
    -----
    See the module docstring for the geometry and the Löwdin
    orthonormalisation.
    """
    P = _check_patch_size(patch_size)
    n_max = _check_n_max(n_max)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise MotifLabError(f"dtype must be float32 or float64, got {dt}.")
    wmin = _basis64(P, n_max)[1]
    if wmin < _ILL_CONDITIONED:  # outside the cache so every caller hears it
        warnings.warn(
            f"Zernike basis for patch_size={P}, n_max={n_max} is ill-conditioned on the pixel grid "
            f"(smallest Gram eigenvalue {wmin:.2g}); high orders will not look like Zernike "
            f"polynomials. Prefer n_max<={_max_ok_n_max(P, n_max)} or a larger patch.",
            UserWarning,
            stacklevel=2,
        )
    return _basis_cached(P, n_max, dt)


# --------------------------------------------------------------------------- #
# symmetry-adapted transform
# --------------------------------------------------------------------------- #
# The dense sgemm stays faster for small stacks (a stack that fits in L3 is read
# at cache speed by BLAS) and for small patches. Measured break-even on 2 cores,
# float32: ~2k patches of 32^2, ~500 of 64^2, ~8k of 16^2-24^2 (float64 input
# breaks even earlier). Below 32^2 the dense product is kept all the same: the
# symmetry-adapted kernel is numba code, 2.3 s to compile on a first run, and
# there it saves little (35k patches of 27^2, a 2048^2 image: 15 ms against
# 39 ms); from 32^2 on its saving grows with P^2 (20k of 40^2: 16 against 48 ms).
_D4_MIN_PIXELS = 2**22
_D4_MIN_P = 32


def takes_d4(n_patches: int, patch_size: int) -> bool:
    """Whether :func:`zernike_moments` of ``n_patches`` patches of ``patch_size``² takes the numba D4 path."""
    return patch_size >= _D4_MIN_P and n_patches * patch_size**2 >= _D4_MIN_PIXELS


@functools.lru_cache(maxsize=64)
def _d4_plan(P: int, n_max: int) -> _D4Plan | None:
    """The symmetry-adapted transform of ``_basis64(P, n_max)``, built once per ``(P, n_max)``.

    See :func:`motiflab._zernike_d4.build_plan`; None means the dense product.
    """
    return build_plan(_basis64(P, n_max)[0], _grid(P)[2], P, n_max)


# --------------------------------------------------------------------------- #
# moments
# --------------------------------------------------------------------------- #
def _project(flat: np.ndarray, B32: np.ndarray) -> np.ndarray:
    """flat (N, K) or (N, P, P) @ B32 (K, J) in float32, never copying the whole stack.

    Large stacks take the symmetry-adapted transform (:func:`_project_d4`, same
    result to float32 rounding), small ones the dense product.
    """
    N = flat.shape[0]
    K, J = B32.shape
    P = math.isqrt(K)
    if takes_d4(N, P):
        n_max = _n_max_from_J(J)
        plan = None if n_max is None else _d4_plan(P, n_max)
        if plan is not None:
            return _project_d4(flat, plan, P, J)
    # One BLAS thread: a threaded sgemm splits the work by thread count and its
    # result changes in the last bit with it (2019 x 729 x 66: 47910 of 133k moments
    # differed between 1 and 2 OpenBLAS threads); one thread gives every row the
    # same result for any thread count and any row chunking, and was as fast or
    # faster on 2 cores (2019 x 729: 6.6 ms against 10.5 ms threaded).
    with single_threaded_blas():
        return _project_dense(flat, B32)


def _project_dense(flat: np.ndarray, B32: np.ndarray) -> np.ndarray:
    N = flat.shape[0]
    K = B32.shape[0]
    if flat.ndim == 2 and flat.dtype == np.float32 and flat.flags.c_contiguous:
        return flat @ B32  # one sgemm straight on the caller's memory
    # Anything else (float64, integers, strided views): convert a block of rows
    # at a time so the extra memory is one bounded chunk, not a second stack.
    # Reading the float64 data costs the same either way; sgemm then does the
    # FLOPs at twice the dgemm rate, so chunked conversion + sgemm beats one
    # dgemm over the float64 stack (1.2-2x measured) with bounded extra memory.
    out = np.empty((N, B32.shape[1]), dtype=np.float32)
    rows = max(1, _CHUNK_BYTES // (4 * K))
    buf = np.empty((min(rows, N), K), dtype=np.float32)
    for i in range(0, N, rows):
        j = min(i + rows, N)
        b = buf[: j - i]
        np.copyto(b.reshape(flat[i:j].shape), flat[i:j], casting="unsafe")
        np.matmul(b, B32, out=out[i:j])
    return out


def _rotinv(A: np.ndarray, n_max: int) -> np.ndarray:
    pos, neg = _pair_index(n_max)
    out = A[:, pos]
    has = neg >= 0
    out[:, has] = np.hypot(out[:, has], A[:, neg[has]])
    return out


def zernike_moments(
    patches: np.ndarray,
    n_max: int = 10,
    rotinv: bool = False,
    out_dtype=np.float32,
) -> np.ndarray:
    """Zernike moments of a stack of square patches.

    Parameters
    ----------
    patches : ndarray, shape (N, P, P) or (N, P*P)
        Patches (e.g. ``extract_patches(...).patches``), any real dtype.
        C-contiguous float32, float64, uint8, uint16 and int16 stacks are read
        in place (no copy); other dtypes and layouts are converted to float32
        block by block, so the extra memory stays bounded (a few MiB per
        thread).
    n_max : int, default 10
        Highest radial order (66 moments for 10).
    rotinv : bool, default False
        ``False``: the J signed moments (orientation-sensitive, "rotinv:off").
        ``True``: the rotation-invariant features of :func:`rotinv_indices`:
        ``sqrt(A_{n,m}^2 + A_{n,-m}^2)`` per ``(n, m>0)`` and the signed
        ``A_{n,0}`` ("rotinv:on"). Invariant to 90 degree rotations up to
        float32 rounding; approximately invariant to other angles (interpolation).
    out_dtype : dtype, default float32
        dtype of the result. The computation itself is always float32.

    Returns
    -------
    ndarray, shape (N, J) or (N, K)
        ``A[i, j] = sum(patch_i * basis[:, j])`` with the orthonormal basis of
        :func:`zernike_basis`, in OSA/ANSI order.

    Raises
    ------
    MotifLabError
        Bad ``n_max``, wrong ndim, non-square patches, empty input, or patches
        containing NaN/Inf.

    Notes
    -----
    The float32 computation has a relative error of ~1e-6 for patches of a few
    thousand pixels, far below shot noise in any micrograph. The NaN check is
    done on the (N, J) result instead of the input (NaN and Inf anywhere in a
    patch, inside the disk or not, propagate to its moments), which costs
    nothing next to the product. Large stacks use the symmetry-adapted
    transform of the module docstring and all numba threads
    (``numba.set_num_threads``).
    """
    n_max = _check_n_max(n_max)
    flat, P = _as_flat_patches(patches)
    B = zernike_basis(P, n_max, np.float32)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf are reported below
        A = _project(flat, B)
    _raise_nonfinite(A)
    if rotinv:
        A = _rotinv(A, n_max)
    return A if A.dtype == np.dtype(out_dtype) else A.astype(out_dtype)


def reconstruct_patches(moments: np.ndarray, patch_size: int, n_max: int = 10) -> np.ndarray:
    """Patches rebuilt from signed Zernike moments.

    Parameters
    ----------
    moments : ndarray, shape (N, J) or (J,)
        Signed moments (``rotinv=False``) from :func:`zernike_moments`.
    patch_size : int
        Side ``P`` of the patches the moments came from.
    n_max : int, default 10
        Radial order the moments were computed with.

    Returns
    -------
    ndarray, shape (N, P, P) or (P, P)
        ``moments @ basis.T``: the orthogonal projection of the original patch
        onto the span of the basis (zero outside the inscribed disk). float64
        if ``moments`` is float64, else float32.
    """
    P = _check_patch_size(patch_size)
    A, single = _check_moments(moments, n_max)
    dt = np.float64 if A.dtype == np.float64 else np.float32
    B = zernike_basis(P, n_max, dt)
    out = (A.astype(dt, copy=False) @ B.T).reshape(-1, P, P)
    return out[0] if single else out


def symmetry_energy(moments: np.ndarray, n_max: int = 10) -> np.ndarray:
    """Fraction of each patch's non-DC Zernike energy at each angular frequency ``|m|``.

    Parameters
    ----------
    moments : ndarray, shape (N, J) or (J,)
        Signed moments (``rotinv=False``).
    n_max : int, default 10
        Radial order the moments were computed with.

    Returns
    -------
    ndarray, shape (N, n_max + 1) or (n_max + 1,)
        Column ``k`` is ``sum_n (A_{n,k}^2 + A_{n,-k}^2)`` divided by the total
        energy without the DC term ``A_{0,0}^2`` (the patch mean), so each row
        sums to 1 (all zeros for a constant patch). Column 0 holds the
        radially symmetric (ring-like) part.

    Notes
    -----
    This is the n-fold symmetry signature of a patch: a pattern with k-fold
    rotational symmetry has energy only at ``|m|`` = multiples of k (plus
    ``m = 0``), so ``argmax(E[:, 1:]) + 1`` is its dominant fold (e.g. 6 for a
    hexagonal neighbourhood, 4 for a square one, 3 for a honeycomb
    sub-lattice site). Mirror symmetries do not show here; they show in the
    sign pattern of the signed moments.
    """
    A, single = _check_moments(moments, n_max)
    A = A.astype(np.float64, copy=False)
    _, m = zernike_indices(n_max)
    E = np.zeros((A.shape[0], n_max + 1))
    sq = A * A
    sq[:, 0] = 0.0  # drop DC (n=0, m=0): the mean says nothing about symmetry
    np.add.at(E.T, np.abs(m), sq.T)  # E[:, |m_j|] += sq[:, j]
    tot = E.sum(axis=1, keepdims=True)
    np.divide(E, tot, out=E, where=tot > 0)
    E[tot[:, 0] <= 0] = 0.0
    return E[0] if single else E


def __getattr__(name):
    if name == "ZernikeFeaturizer":  # its home was here; imported on use (it imports this module)
        from .zernike_featurizer import ZernikeFeaturizer

        return ZernikeFeaturizer
    # the D4 thread pool's state, read live from the module that owns it
    if name in ("_pool", "_pool_lock"):
        return getattr(_zernike_d4, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
