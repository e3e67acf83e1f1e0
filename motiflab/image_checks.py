"""The input micrograph: is it a usable 2-D image, and are its columns dark (ABF/BF)?

:func:`validate_image` is the one check every entry point runs on an image,
so the same mistake (a stack, NaNs, a constant frame) gets the same advice
wherever it is made; :func:`detect_inverted` tells ADF (bright columns) from
ABF/BF (dark columns) images.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import MotifLabError

__all__ = ["validate_image", "validate_image_and_offset", "detect_inverted", "power_of_two_gain"]


def power_of_two_gain(image) -> float:
    """A power of two that brings an image's values near 1000 when float32 could not hold them well (else 1).

    float32 squares overflow above ~1e19 and lose precision below ~1e-30; a
    constant factor does not change the columns, and dividing by a power of two
    is exact, so :class:`motiflab.Analysis` divides an image in such units by
    this gain (and records it) instead of refusing it. Images with values
    between 1e-20 and 1e15 (every detector's counts) get 1: they are analysed
    exactly as given (float32 cubes, in the skewness of :func:`detect_inverted`, overflow above ~1e12).
    """
    arr = np.asarray(image)
    if arr.dtype.kind not in "fiu" or arr.size == 0:
        return 1.0
    with np.errstate(all="ignore"):
        lo, hi = float(np.min(arr)), float(np.max(arr))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 1.0
    # the spread, not the values: a large offset is removed before the float32 cast anyway
    span = hi - lo
    top = max(abs(lo), abs(hi))
    if 1e-20 <= top <= 1e9 or span <= 0:
        return 1.0
    return float(2.0 ** np.round(np.log2(span / 1000.0)))


def validate_image(image, name="image", min_size=8, center=False) -> np.ndarray:
    """Check that ``image`` is a usable 2-D micrograph and return it as float32.

    Parameters
    ----------
    image : array_like
        Candidate image.
    name : str
        How to call it in error messages.
    min_size : int
        Smallest accepted side length in pixels.
    center : bool
        Subtract the median (in float64) before the cast to float32, so that
        a large detector offset (1e8 counts) does not use up float32's seven
        digits and erase the signal.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 copy-or-view of the image.

    Raises
    ------
    MotifLabError
        If the image is not 2-D (with a hint to pick one frame of a stack),
        is too small, contains NaN/inf, or is constant.
    """
    return validate_image_and_offset(image, name, min_size, center)[0]




def validate_image_and_offset(image, name="image", min_size=8, center=False):
    """:func:`validate_image`, also returning the median it removed (0 without ``center``).

    :func:`motiflab.columns.find_columns` adds the median back when it reports
    the noise model in the units of the image it was given.
    """
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise MotifLabError(f"{name} must be a numeric array, got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise MotifLabError(f"{name} is complex; pass its modulus (np.abs) or real part instead.")
    if arr.ndim != 2:
        squeezed = np.squeeze(arr)
        if squeezed.ndim == 2:
            arr = squeezed
        elif arr.ndim > 2:
            raise MotifLabError(
                f"{name} has shape {arr.shape}, but motiflab analyses one 2-D micrograph at a time. "
                f"Pick one frame of the stack, e.g. image[0] (or motiflab.load(path, frame=0)), "
                "or sum the frames after aligning them."
            )
        else:
            raise MotifLabError(f"{name} has shape {arr.shape}; a 2-D image (rows, columns) is needed.")
    if arr.size == 0 or min(arr.shape) < min_size:
        raise MotifLabError(
            f"{name} has shape {arr.shape}; at least {min_size}×{min_size} pixels are needed "
            "to find atom columns."
        )
    if not center and arr.dtype.kind in "fiu" and arr.dtype.itemsize >= 4 and arr.size:
        # a wide image whose offset dwarfs its signal (1e8 counts + a few): the float32 cast keeps
        # few levels of it, or none ("constant"); the median comes off first. From an offset of 16
        # times the signal's range the cast's rounding (2^-24 of the offset) reaches a millionth of
        # the signal, enough to move a column between two motifs
        with np.errstate(all="ignore"):
            lo, hi = float(np.min(arr)), float(np.max(arr))
        center = np.isfinite(lo) and np.isfinite(hi) and hi > lo and max(abs(lo), abs(hi)) > 16.0 * (hi - lo)
    offset = _median_offset(arr) if center else 0.0
    if offset:
        arr = arr - offset
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int((~finite).sum())
        raise MotifLabError(
            f"{name} contains {bad} NaN or infinite pixel(s). Replace them before analysis, e.g. "
            "image = np.nan_to_num(image, nan=np.nanmedian(image)), or crop them away."
        )
    top = max(abs(float(arr.max())), abs(float(arr.min())))
    if top > 1e15 or 0 < top < 1e-30:
        raise MotifLabError(
            f"{name} values reach {top:.3g}; motiflab computes in float32, whose squares overflow above ~1e19 "
            "and lose precision below ~1e-30. Rescale the image first (a constant factor does not change the "
            "columns), e.g. image = image / np.abs(image).max() * 1000."
        )
    if float(arr.max()) == float(arr.min()):
        raise MotifLabError(
            f"{name} is constant (every pixel equals {float(arr.flat[0])!r}); there are no columns to "
            "find. Check that the right file/frame was loaded."
        )
    return arr, offset


def _median_offset(arr) -> float:
    """The median :func:`validate_image` removes with ``center=True`` (0 for narrow or non-finite data)."""
    if arr.dtype.kind in "fiu" and arr.dtype.itemsize >= 4:
        # a centre for float32 precision, not a statistic: a sample of ~half a million pixels
        # gives it as well as all of them
        wide = np.asarray(arr.ravel()[:: max(1, arr.size // 500_000)], np.float64)
        if np.isfinite(wide).all():
            return float(np.median(wide))
    return 0.0


def detect_inverted(image) -> bool:
    """Guess whether columns are dark on a bright background (ABF/BF images).

    ADF images are sparse bright peaks on a dark background, so their pixel
    histogram has a long bright tail (positive skew); ABF/BF images are the
    mirror image. Returns True when the skewness of the lightly smoothed image
    is negative.
    """
    # smoothed (2x2 block means, then a 1-px Gaussian: ~2 px at full size) so that the
    # skew of shot noise itself (1/sqrt(counts) per pixel, positive) stays below that of
    # the columns, at a quarter of the pixels; float32 values, float64 moments
    img = validate_image(image)
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    if h >= 16 and w >= 16:
        img = (img[0:h:2, 0:w:2] + img[1:h:2, 0:w:2] + img[0:h:2, 1:w:2] + img[1:h:2, 1:w:2]) * np.float32(0.25)
    img = ndimage.gaussian_filter(img, 1.0, output=np.float32)
    # the moments in float64 and in units of the spread: float32 cubes overflow from ~1e12 up
    d = img.astype(np.float64) - img.mean(dtype=np.float64)
    sd = float(np.sqrt(np.mean(np.square(d))))
    if not sd > 0:
        return False
    skew = float(np.mean((d / sd) ** 3))
    return skew < 0
