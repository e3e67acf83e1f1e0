"""Checks of the arguments and results of :mod:`motiflab.zernike`, one message each.

Patch stacks (:func:`as_flat_patches`), ``n_max`` and ``patch_size``, moment
matrices (:func:`check_moments`), and the NaN/Inf check of the result
(:func:`raise_nonfinite`). This module is private, so its names carry no underscore.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import MotifLabError

#: highest radial order accepted: J = 861 moments, far past what a patch of a few hundred pixels
#: resolves (the paper uses 10); the basis grows as n_max² and its sampling as n_max³
N_MAX_LIMIT = 40
#: largest patch side accepted (px), as :data:`motiflab.parameters.SPEC` allows
PATCH_SIZE_LIMIT = 4097


def check_n_max(n_max) -> int:
    if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)):
        raise MotifLabError(
            f"n_max must be a non-negative integer, got {n_max!r}; the paper uses n_max=10 (66 moments)."
        )
    if n_max < 0:
        raise MotifLabError(
            f"n_max must be >= 0, got {n_max}; the paper uses n_max=10 (66 moments)."
        )
    if n_max > N_MAX_LIMIT:
        raise MotifLabError(
            f"n_max must be at most {N_MAX_LIMIT}, got {n_max}; higher orders sample nothing a patch "
            "resolves (and take hours). The paper uses n_max=10 (66 moments)."
        )
    return int(n_max)


def check_patch_size(patch_size) -> int:
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)) or patch_size < 1:
        raise MotifLabError(
            f"patch_size must be a positive integer (side of the square patch in px), got {patch_size!r}."
        )
    if patch_size > PATCH_SIZE_LIMIT:
        raise MotifLabError(
            f"patch_size must be at most {PATCH_SIZE_LIMIT} px, got {patch_size}; a patch is a few column "
            "spacings wide (motiflab.patches.estimate_patch_size chooses one)."
        )
    return int(patch_size)


def as_flat_patches(patches) -> tuple[np.ndarray, int]:
    """View ``patches`` as (N, P*P) without copying; return it and P."""
    if not isinstance(patches, np.ndarray):
        patches = np.asarray(patches)
    if patches.dtype.kind not in "fiu":
        raise MotifLabError(
            f"patches must be a numeric array, got dtype {patches.dtype}; convert to float32 first."
        )
    if patches.ndim == 3:
        N, H, W = patches.shape
        if H != W:
            raise MotifLabError(
                f"patches must be square, got {H} x {W}; extract them with "
                "motiflab.patches.extract_patches(image, positions, patch_size)."
            )
        P = H
        # a free view for C-contiguous stacks; other layouts stay 3-D and are
        # converted chunk by chunk by the caller (reshape would copy the whole stack)
        flat = patches.reshape(N, P * P) if patches.flags.c_contiguous else patches
    elif patches.ndim == 2:
        N, K = patches.shape
        P = math.isqrt(K)
        if P * P != K:
            raise MotifLabError(
                f"flattened patches must have P*P columns, got {K} (not a perfect square); pass the "
                "(N, P, P) stack instead. A single P x P patch must be passed as patch[None]."
            )
        flat = patches
    else:
        raise MotifLabError(
            f"patches must be an (N, P, P) stack or (N, P*P) matrix, got an array with ndim={patches.ndim} "
            f"and shape {patches.shape}; for a single patch use patch[None]."
        )
    if N == 0:
        raise MotifLabError("patches is empty (N=0); there is nothing to describe.")
    return flat, P


def raise_nonfinite(A: np.ndarray) -> None:
    # NaN/Inf anywhere in a patch reaches its moments (NaN*0 is NaN), so checking the
    # small (N, J) result is as strict as checking the big input and ~P^2/J times cheaper:
    # 0.2 ms for 35k x 66 moments. (A numba pass without the boolean array saved 0.1 ms of
    # that and cost a compile of ~0.05 s on the first run in every new environment.)
    bad = ~np.isfinite(A).all(axis=1)
    if bad.any():
        idx = np.flatnonzero(bad)
        raise MotifLabError(
            f"{idx.size} patch(es) contain NaN or Inf (first: index {idx[0]}); drop those columns "
            "or fill the image (e.g. np.nan_to_num) before computing Zernike moments."
        )


def n_max_from_J(J: int) -> int | None:
    n = (math.isqrt(8 * J + 1) - 3) // 2
    return n if (n + 1) * (n + 2) // 2 == J else None


def check_moments(moments, n_max: int) -> tuple[np.ndarray, bool]:
    n_max = check_n_max(n_max)
    A = np.asarray(moments)
    single = A.ndim == 1
    if single:
        A = A[None]
    if A.ndim != 2:
        raise MotifLabError(
            f"moments must be an (N, J) array of signed Zernike moments, got ndim={np.ndim(moments)}."
        )
    J = (n_max + 1) * (n_max + 2) // 2
    if A.shape[1] != J:
        guess = n_max_from_J(A.shape[1])
        hint = f" (that is n_max={guess})" if guess is not None else ""
        raise MotifLabError(
            f"moments have {A.shape[1]} columns{hint} but n_max={n_max} needs {J}; pass the matching "
            "n_max, and signed moments (rotinv=False), not rotation-invariant ones."
        )
    if A.dtype.kind not in "fiu":
        raise MotifLabError(f"moments must be numeric, got dtype {A.dtype}.")
    if not np.isfinite(A).all():
        raise MotifLabError("moments contain NaN or Inf; recompute them from finite patches.")
    return A, single
