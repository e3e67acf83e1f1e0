"""Patch extraction (stage 2): a patch around every column, and their rotational average.

The patch size comes from :mod:`motiflab.patch_size` (its names are
re-exported here).

Coordinates
-----------
``positions`` are ``(N, 2)`` arrays of ``(row, col)`` pixel coordinates (the
NumPy indexing order, ``y`` then ``x``; sub-pixel values allowed), with pixel
``(i, j)`` centred at ``(i, j)``.

Patch geometry
--------------
A patch of side ``P`` around a position ``p`` covers the pixels
``start .. start + P - 1`` along each axis, where

* odd ``P``: ``start = round(p) - (P - 1) // 2``; the rounded position is the
  centre pixel (index ``P // 2``) of the patch;
* even ``P``: ``start = floor(p) - P // 2 + 1``; the geometric centre of the
  patch is the pixel corner ``floor(p) + 0.5`` nearest to ``p`` (there are four
  central pixels and no centre pixel).

In both cases the geometric centre of the patch (``start + (P - 1) / 2``) is
where :mod:`motiflab.zernike` centres its disk, and :attr:`Patches.centers`
reports the pixel at patch index ``(P // 2, P // 2)``: the centre pixel for odd
``P``, the lower-right of the four central pixels for even ``P`` (the
geometric centre is then ``centers - 0.5``). ``round`` rounds halves up
(``floor(p + 0.5)``), so results do not depend on banker's rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._patches_kernels import gather, gather_bilinear, rotate_average
from ._threads import for_ranges
from ._validation import check_positions
from .errors import MotifLabError
from .patch_size import PatchSizeEstimate, estimate_patch_size, patch_size_from_distance, radial_distribution

__all__ = [
    "PatchSizeEstimate",
    "Patches",
    "radial_distribution",
    "estimate_patch_size",
    "patch_size_from_distance",
    "extract_patches",
    "rotational_average",
]


@dataclass
class Patches:
    """Patches cut around column positions.

    Attributes
    ----------
    patches : ndarray, shape (M, P, P)
        C-contiguous stack, one patch per kept position.
    index : ndarray of intp, shape (M,)
        Row of ``positions`` each patch belongs to (increasing).
    n_dropped : int
        Positions without a patch: with ``border="drop"`` those whose patch
        leaves the image; with any policy those whose rounded position lies
        outside the image.
    centers : ndarray of int64, shape (M, 2)
        ``(row, col)`` of the pixel at patch index ``(P//2, P//2)`` (see the
        module docstring for even ``P``).
    evidence : ndarray, shape (M, Q, Q), optional
        The same columns' patches cut from the variance-stabilised,
        matched-filtered image (every pixel with noise 1,
        :meth:`motiflab.noise.NoiseModel.stabilize`): what the motif stage
        weighs differences against (:mod:`motiflab.separation`). Set by
        :class:`motiflab.Analysis`.
    evidence_scale : float
        Image pixels per pixel of ``evidence`` (2 when the filtered image is
        sampled at every second pixel).
    """

    patches: np.ndarray
    index: np.ndarray
    n_dropped: int
    centers: np.ndarray
    evidence: np.ndarray | None = None
    evidence_scale: float = 1.0

    @property
    def patch_size(self) -> int:
        """Side ``P`` of the patches."""
        return int(self.patches.shape[1])

    def __len__(self) -> int:
        return int(self.patches.shape[0])


_BORDERS = ("drop", "reflect", "constant")


def extract_patches(
    image,
    positions,
    patch_size: int,
    border: str = "drop",
    dtype=np.float32,
    cval: float = 0.0,
    subpixel: bool = False,
) -> Patches:
    """Cut a ``P x P`` patch around every column position.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The micrograph (any real dtype).
    positions : array_like, shape (N, 2)
        ``(row, col)`` column positions in px.
    patch_size : int
        Side ``P`` of the square patch, 3 <= P <= min(H, W). Odd sizes put the
        column on the centre pixel; see the module docstring for even sizes.
        :func:`estimate_patch_size` gives a default.
    border : {"drop", "reflect", "constant"}, default "drop"
        What to do with columns whose patch leaves the image. ``"drop"``: skip
        them (counted in ``n_dropped``; ``index`` says which were kept).
        ``"reflect"``: mirror the image about its edge pixels
        (``np.pad(mode="reflect")``, the edge pixel is not repeated).
        ``"constant"``: pad with ``cval``.
    dtype : dtype, default float32
        dtype of the patch stack (float32 is what :func:`zernike_moments`
        multiplies without a copy).
    cval : float, default 0.0
        Fill value for ``border="constant"``.
    subpixel : bool, default False
        Centre every patch exactly on its sub-pixel position by bilinear
        interpolation instead of on the nearest pixel. Without it, patches of
        the same motif differ by up to half a pixel of shift, which at high
        signal-to-noise is a visible, spurious variation in their Zernike
        moments. Which patches are kept is decided exactly as without it.

    Returns
    -------
    Patches

    Raises
    ------
    MotifLabError
        Image not 2-D, bad patch size (< 3 or larger than the image), empty or
        NaN positions, unknown border policy.

    Notes
    -----
    Vectorised: one parallel numba gather over all patches, one contiguous row
    copy per patch row (no Python loop over columns). Measured on 2 cores for
    100k 32 x 32 patches of a 4k image: 0.05-0.10 s, vs 0.09-0.18 s for NumPy
    fancy indexing of a ``sliding_window_view`` and 0.8 s for a flat-index
    ``take`` (the lower figures for raster-ordered positions, which is how
    column finders return them).
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise MotifLabError(
            f"image must be 2-D (rows, cols), got ndim={img.ndim} with shape {img.shape}; "
            "for a stack or RGB image pass one 2-D frame/channel."
        )
    if img.dtype.kind not in "fiub":
        raise MotifLabError(f"image must be numeric, got dtype {img.dtype}.")
    H, W = img.shape
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)):
        raise MotifLabError(f"patch_size must be an integer number of px, got {patch_size!r}.")
    P = int(patch_size)
    if P < 3:
        raise MotifLabError(
            f"patch_size={P} is too small (minimum 3 px); use estimate_patch_size(positions) for a default."
        )
    if P > min(H, W):
        raise MotifLabError(
            f"patch_size={P} is larger than the {H} x {W} px image; use a patch of at most {min(H, W)} px, "
            "or let estimate_patch_size(positions) choose one."
        )
    if border not in _BORDERS:
        raise MotifLabError(f"border must be one of {_BORDERS}, got {border!r}.")
    pos = check_positions(positions)

    half_lo = (P - 1) // 2 if P % 2 else P // 2 - 1  # pixels before the reference pixel
    if P % 2:
        ref = np.floor(pos + 0.5).astype(np.int64)  # rounded position = centre pixel
    else:
        ref = np.floor(pos).astype(np.int64)  # corner floor(p)+0.5 = geometric centre
    start = ref - half_lo
    # a position belongs to the image if it rounds to one of its pixels
    rp = np.floor(pos + 0.5)
    inside = (rp[:, 0] >= 0) & (rp[:, 0] < H) & (rp[:, 1] >= 0) & (rp[:, 1] < W)
    if border == "drop":
        keep = inside & np.all(start >= 0, axis=1) & (start[:, 0] + P <= H) & (start[:, 1] + P <= W)
        src, off = img, 0
    else:
        keep = inside
        off = P  # enough for any patch whose centre is in the image
        work = img.astype(dtype, copy=False)  # so cval is not cast to an integer image type
        if border == "reflect":
            src = np.pad(work, off, mode="reflect")
        else:
            src = np.pad(work, off, mode="constant", constant_values=cval)
    index = np.flatnonzero(keep)
    st = start[index] + off
    out = np.empty((index.size, P, P), dtype=dtype)
    if subpixel and index.size:
        # exact top-left sample coordinate; the integer part starts the 2x2 stencil
        top = pos[index] - (P - 1) / 2.0 + P + 1  # + padding (P + 1 below)
        base = np.floor(top).astype(np.int64)
        frac = top - base
        work = img.astype(np.float64 if out.dtype == np.float64 else np.float32, copy=False)
        mode = "constant" if border == "constant" else "reflect"
        kw = dict(constant_values=cval) if mode == "constant" else {}
        padded = np.ascontiguousarray(np.pad(work, P + 1, mode=mode, **kw))
        for_ranges(gather_bilinear, index.size, padded, np.ascontiguousarray(base[:, 0]),
                   np.ascontiguousarray(base[:, 1]), np.ascontiguousarray(frac[:, 0]),
                   np.ascontiguousarray(frac[:, 1]), P, out, min_size=256)
    elif index.size:
        # convert the (small) image once rather than every (much larger) patch
        # stack: one kernel signature per output dtype, and float16, bool or
        # big-endian images need no special case in numba
        src = np.ascontiguousarray(src, dtype=out.dtype)
        for_ranges(gather, index.size, src, np.ascontiguousarray(st[:, 0]), np.ascontiguousarray(st[:, 1]), P, out,
                   min_size=256)
    centers = start[index] + P // 2
    return Patches(out, index, int(pos.shape[0] - index.size), centers)


def rotational_average(patches, n_fold: int) -> np.ndarray:
    """Average every patch over the ``n_fold`` rotations by ``360° / n_fold`` about its centre.

    Two patches that differ only by one of those rotations become the same
    patch; this is what rotation invariance means for the pixel-space tests of
    :mod:`motiflab.separation` (the rotation-invariant Zernike moments already
    mean it for the features). The cost is the one rotation invariance always
    has: a change at one neighbour is spread over ``n_fold`` of them.

    Parameters
    ----------
    patches : ndarray, shape (N, P, P)
    n_fold : int
        Order of the rotation group (>= 1; 1 returns a float32 copy). Use the
        lattice's (:func:`motiflab.lattice.rotation_order`).

    Returns
    -------
    ndarray, shape (N, P, P), float32
        Rotations by multiples of 90° are exact; others are bilinear.
    """
    x = np.asarray(patches)
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise MotifLabError(f"patches must be an (N, P, P) stack, got shape {x.shape}.")
    from ._validation import check_int

    n = check_int(n_fold, "n_fold", low=1, high=360)
    if n < 1:
        raise MotifLabError(f"n_fold must be >= 1, got {n_fold}.")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if n == 1 or len(x) == 0:
        return x.copy()
    if n in (2, 4):
        return np.mean([np.rot90(x, k, axes=(1, 2)) for k in range(0, 4, 4 // n)], axis=0, dtype=np.float32)
    angles = 2.0 * np.pi * np.arange(n) / n
    out = np.empty_like(x)
    for_ranges(rotate_average, len(x), x, np.cos(angles), np.sin(angles), out, min_size=64)
    return out
