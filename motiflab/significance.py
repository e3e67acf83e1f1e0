"""How far each pixel of a smoothed image stands above its local background, in noise units.

The background is the local minimum of the smoothed image (or, on a crystal,
of its lattice average, about eight times less noisy), corrected for how far
below the true background the minimum of noise lies; the noise is that of the
background level, from the measured noise model (:mod:`motiflab.noise`) and
the smoother's gain (:class:`motiflab.smoothing.Smoothed`).
"""
from __future__ import annotations

import numpy as np

from .noise import NoiseModel
from .peaks import local_minimum
from .sites import lattice_average

__all__ = ["significance_maps"]


def _window_minimum(img, r, translations=None, factor=1):
    """Local minimum over a (2r+1)² window, of ``img`` or of its lattice average, at full size."""
    if translations is None:
        return local_minimum(img, r)
    avg = lattice_average(img, translations, factor)
    small = local_minimum(avg, max(1, int(round(r / factor))))
    full = np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)
    h, w = img.shape
    if full.shape != (h, w):  # the rows/columns the coarse grid left out repeat the last ones
        full = np.pad(full, ((0, h - full.shape[0]), (0, w - full.shape[1])), mode="edge")
    return full


def _background_bias(sm, r: int) -> float:
    """How far below the true background the local minimum of the smoothed noise lies, in noise units.

    The local background is the minimum of the smoothed image over a window;
    the minimum of a noisy field sits below its mean by an amount that grows
    with the window and shrinks with the smoothing (~2 noise units for a
    matched filter and a window of 2.5 lattice spacings). Measured by running
    the same filter and window over a field of unit white noise (seeded, so
    reproducible).
    """
    m = int(min(768, max(128, 6 * (2 * r + 1))))
    noise = np.random.default_rng(0).standard_normal((m, m)).astype(np.float32)
    f = np.asarray(sm.apply(noise), np.float32)
    inner = f[r:-r, r:-r] if m > 4 * r else f
    sd = float(inner.std())
    if not sd > 0:
        return 0.0
    mins = local_minimum(f / np.float32(sd), r)
    inner = mins[r:-r, r:-r] if m > 4 * r else mins
    return float(max(0.0, -inner.mean()))


def significance_maps(sm, noise: NoiseModel, repeat: float, translations=None, factor=1):
    """Maps of each pixel's height above the local background: in noise units and in image units.

    The background is the local minimum of the lattice average, on a crystal
    (about eight times less noisy), or of the image itself, raised by its
    noise bias. The noise is that of the background level (the null
    hypothesis: no column here), and with shot noise the level sets the
    noise, so the two are solved together (a fixed point, reached in three
    rounds).

    Parameters
    ----------
    sm : motiflab.smoothing.Smoothed
        The smoothed image, with the gain its filter applies to the noise.
    noise : NoiseModel
        The image's measured noise.
    repeat : float
        Lattice repeat in px; the background window reaches 1.25 repeats.
    translations : ndarray (T, 2), optional
        Lattice translations (:func:`motiflab.sites.lattice_translations`);
        with them the background is read from the lattice average.
    factor : int
        Coarse-grid step of the lattice average (the background is smooth).

    Returns
    -------
    z : ndarray
        Height above the background in noise units.
    contrast : ndarray
        Height above the background in image units.
    sigma : ndarray
        The noise standard deviation at the background level.
    """
    S = sm.image
    r = int(round(1.25 * repeat))
    bmin = _window_minimum(S, r, translations, factor)
    # on a crystal every hollow in the window is a translate of the same averaged hollow:
    # the minimum then samples one place of a map eight times less noisy, and has no bias
    # to speak of (a flat-field estimate put the hollows 0.45 noise units below zero)
    bias = np.float32(0.0 if translations is not None else _background_bias(sm, r))
    floor = np.float32(max(1e-12 * float(np.abs(S).max()), 1e-37))
    background = bmin
    for _ in range(3 if bias else 1):
        sig = np.maximum(np.asarray(sm.noise_std(noise, background), np.float32), floor)
        background = bmin + bias * sig
    contrast = S - background
    return contrast / sig, contrast, sig
