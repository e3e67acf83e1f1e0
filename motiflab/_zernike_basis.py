"""The sampled Zernike polynomials and their Löwdin orthonormalisation (float64).

:func:`basis64` is the orthonormal basis behind :func:`motiflab.zernike.zernike_basis`
(see that module's docstring for the geometry and the conventions);
:func:`osa_indices` the ``(n, m)`` order of its columns. The checks of the
arguments, and the warning for an ill-conditioned basis, are the caller's.
This module is private, so its names carry no underscore.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .errors import MotifLabError

# Below this smallest eigenvalue of the Gram matrix (columns pre-normalised to
# ~unit norm) the sampled polynomials are close to linearly dependent: the
# Löwdin basis is still orthonormal but no longer looks like Zernike
# polynomials, so we warn. Below SINGULAR it cannot be orthonormalised at all.
ILL_CONDITIONED = 1e-2
SINGULAR = 1e-8


def osa_indices(n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Radial order ``n`` and azimuthal frequency ``m`` of each column, OSA/ANSI order (unchecked ``n_max``)."""
    n = [k for k in range(n_max + 1) for _ in range(-k, k + 1, 2)]
    m = [mm for k in range(n_max + 1) for mm in range(-k, k + 1, 2)]
    return np.asarray(n, dtype=np.int64), np.asarray(m, dtype=np.int64)


def radial(n: int, am: int, rho: np.ndarray) -> np.ndarray:
    """Zernike radial polynomial R_n^|m|(rho), explicit sum, float64."""
    out = np.zeros_like(rho)
    for k in range((n - am) // 2 + 1):
        c = (-1) ** k * math.factorial(n - k) / (
            math.factorial(k) * math.factorial((n + am) // 2 - k) * math.factorial((n - am) // 2 - k)
        )
        out += c * rho ** (n - 2 * k)
    return out


def grid(P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rho, theta and the inscribed-disk mask of the P x P pixel centres (see the module docstring)."""
    c = (P - 1) / 2.0
    idx = np.arange(P, dtype=np.float64)
    y = (c - idx)[:, None] * np.ones((1, P))
    x = np.ones((P, 1)) * (idx - c)[None, :]
    rho = np.hypot(x, y) / (P / 2.0)
    return rho, np.arctan2(y, x), rho <= 1.0


def raw_basis(P: int, n_max: int) -> np.ndarray:
    """Sampled OSA-normalised polynomials, columns scaled to ~unit pixel-space norm (float64)."""
    rho, theta, inside = grid(P)
    n, m = osa_indices(n_max)
    B = np.zeros((P * P, n.size), dtype=np.float64)
    # ∫_disk Z^2 dA = pi with OSA normalisation; a pixel has area (2/P)^2 in unit-disk
    # units, so sum(Z^2) ≈ pi P^2 / 4 and this scale brings every column close to norm 1
    # (Löwdin then only applies a small correction for reasonable P).
    scale = 1.0 / (P * math.sqrt(math.pi) / 2.0)
    rad_cache = {}
    for j, (nn, mm) in enumerate(zip(n.tolist(), m.tolist())):
        am = abs(mm)
        if (nn, am) not in rad_cache:
            rad_cache[(nn, am)] = radial(nn, am, rho) * math.sqrt((2 - (mm == 0)) * (nn + 1))
        ang = np.cos(mm * theta) if mm >= 0 else np.sin(am * theta)
        B[:, j] = np.where(inside, rad_cache[(nn, am)] * ang, 0.0).ravel() * scale
    return B


def max_ok_n_max(P: int, n_max: int) -> int:
    """Largest n <= n_max whose sampled basis is well conditioned on a P x P patch."""
    for k in range(n_max, -1, -1):
        B = raw_basis(P, k)
        if np.linalg.eigvalsh(B.T @ B).min() >= ILL_CONDITIONED:
            return k
    return 0


@functools.lru_cache(maxsize=64)
def basis64(P: int, n_max: int) -> tuple[np.ndarray, float]:
    B = raw_basis(P, n_max)
    G = B.T @ B
    w, V = np.linalg.eigh(G)
    if w.min() < SINGULAR * w.max():
        ok = max_ok_n_max(P, n_max)
        raise MotifLabError(
            f"patch_size={P} has too few pixels inside its disk for the {B.shape[1]} Zernike "
            f"polynomials of n_max={n_max} (they are linearly dependent on this grid); use "
            f"n_max<={ok} or a larger patch."
        )
    # Löwdin: B (B^T B)^(-1/2). A matrix function of G commutes with every orthogonal
    # map that commutes with G, in particular with the D4 action on the moments.
    S = (V / np.sqrt(w)) @ V.T
    Bo = B @ S
    Bo.flags.writeable = False
    return Bo, float(w.min())


@functools.lru_cache(maxsize=64)
def basis_cached(P: int, n_max: int, dtype: np.dtype) -> np.ndarray:
    B = basis64(P, n_max)[0]
    if dtype != np.float64:
        B = np.ascontiguousarray(B, dtype=dtype)
        B.flags.writeable = False
    return B
