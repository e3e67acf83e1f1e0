"""numba kernels of column finding: the sub-pixel fits of :func:`motiflab.peaks.refine_positions`.

Kept apart from the public module so that it reads as the method; each kernel
is called from one place there, which validates its inputs first.  Each works
on a range ``start..stop`` of positions and releases the GIL;
:func:`motiflab._threads.for_ranges` runs the ranges on the threads.  (The
peak finder's filters are NumPy, in :mod:`motiflab.peaks`: they need no
compiling and run as fast.)
"""
import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def disc_pixels(img, cy, cx, r, r2, ys, xs, d2, val):
    """Gather the pixels of ``img`` within ``sqrt(r2)`` of (cy, cx); return how many.

    The window is the (2r+1)² square around the nearest pixel, clipped to the
    image, read row by row; each pixel in the disc leaves its row, column,
    squared distance and value in the buffers (of at least (2r+1)² each), in
    that order, so sums over them add up exactly as a loop over the image would.
    """
    h, w = img.shape
    iy = int(np.floor(cy + 0.5))
    ix = int(np.floor(cx + 0.5))
    n = 0
    for y in range(max(iy - r, 0), min(iy + r + 1, h)):
        for x in range(max(ix - r, 0), min(ix + r + 1, w)):
            ey = y - cy
            ex = x - cx
            dd = ey * ey + ex * ex
            if dd <= r2:
                ys[n] = y
                xs[n] = x
                d2[n] = dd
                val[n] = img[y, x]
                n += 1
    return n


@numba.njit(cache=True, inline="always")
def disc_buffers(r):
    """Buffers for :func:`disc_pixels` with window half-width ``r``: rows, columns, squared distances, values."""
    m = (2 * r + 1) ** 2
    return np.empty(m), np.empty(m), np.empty(m), np.empty(m)


@numba.njit(cache=True, nogil=True)
def com_refine(start, stop, img, pos, radius, n_iter, bg, out):
    r = int(np.ceil(radius))
    r2 = radius * radius
    inv2s2 = 1.0 / (2.0 * (0.5 * radius) ** 2)
    ys, xs, d2, val = disc_buffers(r)
    for i in range(start, stop):
        cy = pos[i, 0]
        cx = pos[i, 1]
        for _ in range(n_iter):
            s = 0.0
            sy = 0.0
            sx = 0.0
            for t in range(disc_pixels(img, cy, cx, r, r2, ys, xs, d2, val)):
                v = val[t] - bg[i]
                if v <= 0:
                    continue
                # a smooth window centred on the current estimate: with a hard pixel
                # disk the pixel set stops changing and the iteration stalls short
                # of the peak; the smooth window's fixed point is the peak centre
                v *= np.exp(-d2[t] * inv2s2)
                s += v
                sy += v * ys[t]
                sx += v * xs[t]
            if s <= 0:
                break
            ny = sy / s
            nx = sx / s
            # never wander more than a radius from the peak pixel
            if abs(ny - pos[i, 0]) > radius or abs(nx - pos[i, 1]) > radius:
                break
            moved = abs(ny - cy) + abs(nx - cx)
            cy = ny
            cx = nx
            if moved < 1e-3:
                break
        out[i, 0] = cy
        out[i, 1] = cx


@numba.njit(cache=True, nogil=True)
def gauss2d_fit(start, stop, img, pos, sigma, radius, n_iter, out, ok):
    """Least-squares fit of ``A exp(-|x - p|² / 2σ²) + B`` (σ fixed) around each position.

    Gauss-Newton on (A, B, p_row, p_col) over the pixels within ``radius`` of
    the current estimate; a step is halved until it lowers the residual, and
    the position may not leave the disc of ``radius`` around the start.
    ``ok[i]`` is False where the fit failed (no positive amplitude, singular
    system); ``out[i]`` then keeps the start.
    """
    r = int(np.ceil(radius))
    r2 = radius * radius
    inv2s2 = 1.0 / (2.0 * sigma * sigma)
    ys, xs, d2, val = disc_buffers(r)
    gauss = np.empty(len(d2))
    for i in range(start, stop):
        y0 = pos[i, 0]
        x0 = pos[i, 1]
        py = y0
        px = x0
        out[i, 0] = y0
        out[i, 1] = x0
        ok[i] = False
        A = 0.0
        B = 0.0
        good = True
        for it in range(n_iter):
            k = disc_pixels(img, py, px, r, r2, ys, xs, d2, val)
            # first solve A, B for this position (linear least squares)
            s_gg = 0.0
            s_g = 0.0
            s_gv = 0.0
            s_v = 0.0
            for t in range(k):
                gv = np.exp(-d2[t] * inv2s2)
                gauss[t] = gv
                s_gg += gv * gv
                s_g += gv
                s_gv += gv * val[t]
                s_v += val[t]
            s_1 = float(k)
            det = s_gg * s_1 - s_g * s_g
            if s_1 < 5 or det <= 0:
                good = False
                break
            A = (s_gv * s_1 - s_g * s_v) / det
            B = (s_gg * s_v - s_g * s_gv) / det
            if A <= 0:
                good = False
                break
            # Gauss-Newton for the position with A, B held (the two decouple near the optimum)
            jyy = 0.0
            jyx = 0.0
            jxx = 0.0
            gy = 0.0
            gx = 0.0
            for t in range(k):
                ey = ys[t] - py
                ex = xs[t] - px
                gv = A * gauss[t]
                res = val[t] - (gv + B)
                # d model / d p = gv * (x - p) / σ²
                jy = gv * ey * 2.0 * inv2s2
                jx = gv * ex * 2.0 * inv2s2
                jyy += jy * jy
                jyx += jy * jx
                jxx += jx * jx
                gy += jy * res
                gx += jx * res
            dj = jyy * jxx - jyx * jyx
            if dj <= 0:
                good = False
                break
            sy = (jxx * gy - jyx * gx) / dj
            sx = (jyy * gx - jyx * gy) / dj
            step = np.sqrt(sy * sy + sx * sx)
            if step > 0.5 * sigma:  # damp large steps
                sy *= 0.5 * sigma / step
                sx *= 0.5 * sigma / step
            py += sy
            px += sx
            if (py - y0) ** 2 + (px - x0) ** 2 > r2:
                good = False
                break
            if abs(sy) + abs(sx) < 1e-3:
                break
        if good:
            out[i, 0] = py
            out[i, 1] = px
            ok[i] = True


def compile_gauss2d_fit():
    """Compile (or load from numba's cache) :func:`gauss2d_fit`, running it on nothing.

    The argument types are those :func:`motiflab.peaks.refine_positions` passes
    (a float32 image, float64 positions); for :func:`motiflab.warmup.compile_ahead`.
    """
    pos = np.zeros((1, 2), np.float64)
    gauss2d_fit(0, 0, np.zeros((1, 1), np.float32), pos, 1.0, 1.0, 1, pos, np.zeros(1, np.bool_))
