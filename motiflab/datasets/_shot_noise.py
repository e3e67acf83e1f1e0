"""Dose and shot noise: normalisation, Poisson counts and the generators' random streams.

:func:`finish_image` adds the constant background, normalises the noise-free
image to a mean of 1 and, if a dose is given, replaces it by Poisson counts
with mean ``dose`` electrons per pixel (:func:`poisson_counts`, a parallel,
counter-based sampler). :func:`rng_streams` splits one seed into independent
streams for structure, scan jitter and noise.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .._random_kernels import GOLDEN, mix64, uniform
from ..errors import MotifLabError

__all__ = ["finish_image", "poisson_counts", "rng_streams"]


def finish_image(
    raw: np.ndarray, offset: float, dose: float | None, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Add the constant offset, normalise to mean 1 and apply Poisson shot noise.

    Returns the float32 image and the factor ``s`` with
    ``normalised = s * (raw + offset)``.
    """
    total = raw + np.float32(offset)
    mean = float(total.mean(dtype=np.float64))
    if not mean > 0:
        raise MotifLabError(
            "the rendered image has no positive intensity to normalise; raise background "
            "or add columns"
        )
    scale = 1.0 / mean
    total *= np.float32(scale)
    np.clip(total, 0.0, None, out=total)  # FFT round-off can dip a hair below 0
    if dose is None:
        return total.astype(np.float32, copy=False), scale
    key = np.uint64(rng.integers(0, 2**63 - 1, dtype=np.int64))
    return poisson_counts(total, float(dose), key), scale


# --------------------------------------------------------------------------
# Shot noise: a counter-based Poisson sampler
# --------------------------------------------------------------------------
# numpy's Generator.poisson is serial (~150 ns/sample, 0.6 s for a 2048^2 frame).
# Here every pixel gets its own random stream, hashed from (key, pixel index), so
# the result is identical whatever the number of threads, and pixels are sampled
# in parallel: inversion for small means, Hoermann's (1993) transformed rejection
# (PTRS) for means >= 10. The stream generator (splitmix64) is the one the FR
# layout's kernels use, from motiflab._random_kernels.

_LOG_FACT_SMALL = np.array([math.lgamma(k + 1.0) for k in range(16)])


@numba.njit(cache=True, inline="always")
def _log_factorial(k):
    """log(k!) from a table below 16, else Stirling's series (error < 1e-12)."""
    if k < 16.0:
        return _LOG_FACT_SMALL[int(k)]
    x = k + 1.0
    ix2 = 1.0 / (x * x)
    return ((x - 0.5) * math.log(x) - x + 0.9189385332046728
            + (1.0 / 12.0 - ix2 * (1.0 / 360.0 - ix2 / 1260.0)) / x)


@numba.njit(cache=True, inline="always")
def _poisson_one(lam, state):
    """One Poisson draw of mean ``lam`` from the stream ``state`` (returned as a float)."""
    if lam <= 0.0:
        return 0.0
    if lam < 10.0:
        # Inversion: walk up the CDF (about lam steps).
        state, u = uniform(state)
        p = math.exp(-lam)
        cdf = p
        k = 0
        while u > cdf and k < 200:
            k += 1
            p *= lam / k
            cdf += p
        return float(k)
    # PTRS: transformed rejection with squeeze (Hoermann 1993).
    b = 0.931 + 2.53 * math.sqrt(lam)
    a = -0.059 + 0.02483 * b
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        state, u = uniform(state)
        state, v = uniform(state)
        u -= 0.5
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= v_r:
            return k
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
        lhs = math.log(v * inv_alpha / (a / (us * us) + b))
        if lhs <= -lam + k * math.log(lam) - _log_factorial(k):
            return k


@numba.njit(cache=True, nogil=True)
def _poisson_rows(start, stop, mean_img, dose, key, out):
    """Rows ``start..stop-1`` of Poisson counts of mean ``dose * mean_img``, one private stream per pixel."""
    w = mean_img.shape[1]
    for r in range(start, stop):
        for c in range(w):
            state = mix64(key ^ mix64(np.uint64(r * w + c) + GOLDEN))
            out[r, c] = _poisson_one(dose * float(mean_img[r, c]), state)


def poisson_counts(mean_img: np.ndarray, dose: float, key: np.uint64) -> np.ndarray:
    """Poisson counts with per-pixel mean ``dose * mean_img`` (float32 result).

    Parameters
    ----------
    mean_img : ndarray, shape (H, W)
        Non-negative normalised intensity.
    dose : float
        Multiplier (electrons per pixel at ``mean_img == 1``).
    key : numpy.uint64
        Stream key; the same key gives the same counts, independent of threading.

    Returns
    -------
    ndarray, float32
    """
    m = np.ascontiguousarray(mean_img)
    if not np.all(np.isfinite(m)) or (m.size and m.min() < 0):
        raise MotifLabError("Poisson means must be finite and non-negative")
    from .._threads import for_ranges

    out = np.empty(m.shape, dtype=np.float32)
    for_ranges(_poisson_rows, m.shape[0], m, float(dose), np.uint64(key), out, min_size=8)
    return out


def rng_streams(seed: int | None) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for structure, scan jitter and shot noise.

    Separate streams mean the same seed gives the same defects and jitter at any
    dose, so dose series share one ground truth.
    """
    ss = np.random.SeedSequence(seed)
    a, b, c = ss.spawn(3)
    return np.random.default_rng(a), np.random.default_rng(b), np.random.default_rng(c)
