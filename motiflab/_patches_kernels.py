"""Numba kernels behind :mod:`motiflab.patches` (gathering patches, averaging them over rotations).

Each works on patches ``start..stop-1`` and releases the GIL;
:func:`motiflab._threads.for_ranges` runs the ranges on the threads.
"""
import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def gather(start, stop, img, r0, c0, P, out):
    # one patch per iteration; each patch row is a contiguous run of the image row
    for i in range(start, stop):
        r = r0[i]
        c = c0[i]
        for a in range(P):
            out[i, a, :] = img[r + a, c : c + P]


@numba.njit(cache=True, nogil=True)
def gather_bilinear(start, stop, img, r0, c0, fr, fc, P, out):
    # every pixel of a patch shares the same fractional offset, so the four
    # bilinear weights are computed once per patch
    for i in range(start, stop):
        r = r0[i]
        c = c0[i]
        w00 = (1.0 - fr[i]) * (1.0 - fc[i])
        w01 = (1.0 - fr[i]) * fc[i]
        w10 = fr[i] * (1.0 - fc[i])
        w11 = fr[i] * fc[i]
        for a in range(P):
            for b in range(P):
                out[i, a, b] = (w00 * img[r + a, c + b] + w01 * img[r + a, c + b + 1]
                                + w10 * img[r + a + 1, c + b] + w11 * img[r + a + 1, c + b + 1])


@numba.njit(cache=True, nogil=True)
def rotate_average(start, stop, patches, cosines, sines, out):
    # out[i] = mean over k of patches[i] rotated by the k-th angle about the patch
    # centre, bilinear; a pixel whose rotated source leaves the patch is averaged
    # over the rotations that stay inside (the corners of a square patch)
    P = patches.shape[1]
    c0 = (P - 1) / 2.0
    K = cosines.shape[0]
    for i in range(start, stop):
        for a in range(P):
            for b in range(P):
                y = a - c0
                x = b - c0
                acc = 0.0
                n = 0
                for k in range(K):
                    sr = c0 + cosines[k] * y - sines[k] * x
                    sc = c0 + sines[k] * y + cosines[k] * x
                    r = int(np.floor(sr))
                    c = int(np.floor(sc))
                    if r < 0 or c < 0 or r > P - 1 or c > P - 1:
                        continue
                    fr = sr - r
                    fc = sc - c
                    r1 = min(r + 1, P - 1)
                    c1 = min(c + 1, P - 1)
                    acc += ((1.0 - fr) * (1.0 - fc) * patches[i, r, c] + (1.0 - fr) * fc * patches[i, r, c1]
                            + fr * (1.0 - fc) * patches[i, r1, c] + fr * fc * patches[i, r1, c1])
                    n += 1
                out[i, a, b] = acc / n if n > 0 else patches[i, a, b]


def compile_gather_bilinear():
    """Compile (or load from numba's cache) :func:`gather_bilinear` for float32 images, running it on nothing.

    The argument types are those :func:`motiflab.patches.extract_patches` passes
    for sub-pixel patches of a float32 stack.  For :func:`motiflab.warmup.compile_ahead`.
    """
    i64 = np.zeros(1, np.int64)
    f64 = np.zeros(1, np.float64)
    gather_bilinear(0, 0, np.zeros((1, 1), np.float32), i64, i64, f64, f64, 1, np.zeros((1, 1, 1), np.float32))
