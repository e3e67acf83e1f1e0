"""The probe and the noise-free column image: how column sites become pixels.

1. column amplitudes are splatted onto a padded pixel grid with bilinear weights
   (this keeps each column's centroid exactly at its sub-pixel position);
2. the grid is convolved with the probe (Gaussian core plus a weak, broad
   Lorentzian-like tail) as one real FFT product, with the probe's transfer
   function written analytically in Fourier space (no truncated kernel);
3. optional per-scan-line jitter shifts each image row by a random amount
   (Fourier shift), as fast-scan instabilities do; :func:`sites_in_image`
   reports where the columns then *appear*.

The cost is linear in the number of pixels (two FFTs) plus linear in the number
of columns, so 4096 x 4096 frames stay cheap. Normalisation and shot noise
follow in :mod:`motiflab.datasets._shot_noise`.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft as sfft

__all__ = [
    "probe_params_px",
    "probe_peak",
    "probe_transfer",
    "splat_bilinear",
    "pad_for_probe",
    "render",
    "jitter_position_shift",
    "sites_in_image",
]

# A Gaussian's FWHM is 2 sqrt(2 ln 2) sigma.
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def probe_params_px(
    probe_fwhm: float, tail_fraction: float, tail_width: float, pixel_size: float
) -> dict[str, float]:
    """Probe parameters in pixels: core sigma, tail fraction and tail scale gamma."""
    sigma = probe_fwhm * _FWHM_TO_SIGMA / pixel_size
    gamma = tail_width / pixel_size
    return {"sigma_px": sigma, "tail_fraction": tail_fraction, "tail_gamma_px": gamma}


def probe_peak(sigma: float, tail_fraction: float, gamma: float) -> float:
    """Typical brightest-pixel value of an isolated unit-amplitude column.

    The continuous probe peak, with the Gaussian core broadened by the pixel
    grid: the bilinear splat adds ``f(1-f)`` (mean 1/6) and reading the nearest
    pixel instead of the true centre another ~1/12 per axis, so ``sigma**2 + 1/4``.
    Used as the reference for ``background`` (and ABF contrast).
    """
    s2 = sigma**2 + 0.25
    return (1 - tail_fraction) / (2 * math.pi * s2) + tail_fraction / (2 * math.pi * gamma**2)


@functools.lru_cache(maxsize=8)
def probe_transfer(shape: tuple[int, int], sigma: float, tail_fraction: float, gamma: float) -> np.ndarray:
    """Real-FFT transfer function of the probe intensity on a grid (float32, cached).

    The probe is ``(1 - t) * G_sigma + t * L_gamma`` with ``G`` a unit 2-D Gaussian
    and ``L(r) = gamma / (2 pi (r^2 + gamma^2)^(3/2))`` a unit-integral
    Lorentzian-like tail (its 2-D Fourier transform is ``exp(-2 pi gamma |k|)``),
    the shape of the slowly decaying skirt aberrations leave around a corrected
    probe. Both have closed-form transforms, so no kernel is truncated.
    """
    ky = sfft.fftfreq(shape[0])
    kx = sfft.rfftfreq(shape[1])
    c = -2.0 * math.pi**2 * sigma**2
    # The Gaussian is separable: an outer product of two 1-D factors is cheap.
    h = np.multiply.outer(
        ((1.0 - tail_fraction) * np.exp(c * ky**2)).astype(np.float32),
        np.exp(c * kx**2).astype(np.float32),
    )
    if tail_fraction > 0:
        k = np.sqrt(np.add.outer(ky.astype(np.float32) ** 2, kx.astype(np.float32) ** 2))
        k *= np.float32(-2.0 * math.pi * gamma)
        np.exp(k, out=k)
        h += np.float32(tail_fraction) * k
    h.flags.writeable = False
    return h


def splat_bilinear(positions: np.ndarray, amplitudes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Deposit point amplitudes on a grid with bilinear weights.

    The first moment of the deposited weights equals the sub-pixel position
    exactly, so a symmetric probe convolved afterwards keeps each column's
    centroid where it should be. Positions must satisfy
    ``0 <= row < H - 1`` and ``0 <= col < W - 1``.
    """
    h, w = shape
    r0 = np.floor(positions[:, 0]).astype(np.int64)
    c0 = np.floor(positions[:, 1]).astype(np.int64)
    fr = positions[:, 0] - r0
    fc = positions[:, 1] - c0
    idx = r0 * w + c0
    a = np.asarray(amplitudes, dtype=np.float64)
    # One bincount over the four corners (one pass over the grid, not four).
    idx4 = np.concatenate([idx, idx + 1, idx + w, idx + w + 1])
    wt4 = np.concatenate(
        [a * (1 - fr) * (1 - fc), a * (1 - fr) * fc, a * fr * (1 - fc), a * fr * fc]
    )
    return np.bincount(idx4, wt4, minlength=h * w)[: h * w].reshape(h, w)


def pad_for_probe(sigma: float, tail_fraction: float, gamma: float, jitter: float) -> int:
    """Canvas margin (px) so that FFT wrap-around never reaches the image."""
    reach = 5.0 * sigma
    if tail_fraction > 0:
        reach = max(reach, 3.0 * gamma)
    return int(math.ceil(reach + 6.0 * jitter)) + 4


def render(
    positions: np.ndarray,
    amplitudes: np.ndarray,
    shape: tuple[int, int],
    pad: int,
    sigma: float,
    tail_fraction: float,
    gamma: float,
    row_shifts: np.ndarray | None = None,
) -> np.ndarray:
    """Noise-free column image (before background and normalisation).

    Parameters
    ----------
    positions : ndarray, shape (N, 2)
        Column positions (row, col) in image pixels; sites may lie in the margin
        ``[-pad, H + pad)``, which is rendered and then cropped so the edges look
        like the lattice continues.
    amplitudes : ndarray, shape (N,)
        Integrated intensity of each column.
    shape : (int, int)
        Output image shape.
    pad : int
        Margin rendered around the image.
    sigma, tail_fraction, gamma : float
        Probe (see :func:`probe_transfer`), in pixels.
    row_shifts : ndarray, shape (H + 2*pad,), optional
        Horizontal shift in pixels of each canvas row (scan-line jitter).

    Returns
    -------
    ndarray, shape ``shape``, float32
        A view into the padded canvas.
    """
    h, w = shape
    ch = sfft.next_fast_len(h + 2 * pad, real=True)
    cw = sfft.next_fast_len(w + 2 * pad, real=True)
    p = positions + pad
    keep = (p[:, 0] >= 0) & (p[:, 0] < ch - 1) & (p[:, 1] >= 0) & (p[:, 1] < cw - 1)
    # Single precision is ample for an image (relative error ~1e-6) and halves FFT time.
    grid = splat_bilinear(p[keep], np.asarray(amplitudes)[keep], (ch, cw)).astype(np.float32)
    spec = sfft.rfft2(grid, workers=-1)
    del grid
    spec *= probe_transfer((ch, cw), float(sigma), float(tail_fraction), float(gamma))
    if row_shifts is not None and np.any(row_shifts):
        # Shifting every row is a per-row phase ramp along the fast-scan axis: go
        # back to real space along rows only, apply the ramp, then finish along cols.
        rows_spec = sfft.ifft(spec, axis=0, workers=-1, overwrite_x=True)
        shifts = np.zeros(ch)
        shifts[: min(ch, len(row_shifts))] = row_shifts[:ch]
        phase = np.multiply.outer(
            (-2.0 * math.pi * shifts).astype(np.float32), sfft.rfftfreq(cw).astype(np.float32)
        )
        ramp = np.empty(phase.shape, dtype=np.complex64)
        np.cos(phase, out=ramp.real)
        np.sin(phase, out=ramp.imag)
        rows_spec *= ramp
        out = sfft.irfft(rows_spec, n=cw, axis=1, workers=-1, overwrite_x=True)
    else:
        out = sfft.irfft2(spec, s=(ch, cw), workers=-1, overwrite_x=True)
    return out[pad : pad + h, pad : pad + w]


def jitter_position_shift(rows: np.ndarray, row_shifts: np.ndarray, pad: int, sigma: float) -> np.ndarray:
    """Apparent horizontal displacement of columns under per-row jitter.

    A column spans several scan lines; its apparent centre moves by the jitter of
    those lines weighted by the probe core's row profile at the column.
    """
    k = int(math.ceil(4 * sigma)) + 1
    offs = np.arange(-k, k + 1)
    base = np.rint(rows).astype(np.int64)
    r = base[:, None] + offs[None, :]  # image rows
    wts = np.exp(-0.5 * ((r - rows[:, None]) / sigma) ** 2)
    idx = np.clip(r + pad, 0, len(row_shifts) - 1)
    return (wts * row_shifts[idx]).sum(axis=1) / wts.sum(axis=1)


def sites_in_image(
    pos: np.ndarray, shape: tuple[int, int], row_shifts: np.ndarray | None, pad: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and apparent positions of the sites whose centre lies in the image.

    "In the image" means ``-0.5 <= row < H - 0.5`` and ``-0.5 <= col < W - 0.5``
    (pixel ``(r, c)`` covers ``[r - 0.5, r + 0.5)``), judged on the apparent
    position, i.e. after scan-line jitter when ``row_shifts`` is given.
    """
    h, w = shape
    slack = 1.0 if row_shifts is None else 1.0 + 8.0 * float(np.abs(row_shifts).max())
    near = np.flatnonzero(
        (pos[:, 0] >= -0.5) & (pos[:, 0] < h - 0.5)
        & (pos[:, 1] >= -0.5 - slack) & (pos[:, 1] < w - 0.5 + slack)
    )
    p = pos[near].astype(np.float64)
    if row_shifts is not None:
        p[:, 1] += jitter_position_shift(p[:, 0], row_shifts, pad, sigma)
    ok = (p[:, 1] >= -0.5) & (p[:, 1] < w - 0.5)
    return near[ok], p[ok]
