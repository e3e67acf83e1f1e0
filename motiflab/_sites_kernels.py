"""numba kernels of the lattice-site evidence (:mod:`motiflab.sites`).

Both gather a map at every lattice translation of a point: one for every
pixel (the lattice average), one for a list of points, summed per side for the
support. Each works on a range of rows / points and releases the GIL
(:func:`motiflab._threads.for_ranges` runs the ranges on the threads); each
range writes only its own outputs, so results do not depend on the number of threads.
"""
import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def lattice_mean(start, stop, img, dy, dx, out):
    """``out[y, x]`` = mean of ``img`` at ``(y, x)`` and ``(y + dy[k], x + dx[k])`` that lie inside.

    Row by row: each translation adds a contiguous run of a source row (SIMD),
    and the number of terms per pixel comes from a difference array over the
    row, so the interior costs one add per pixel and translation.
    """
    h, w = img.shape
    m = dy.size
    acc = np.empty(w, np.float32)
    cnt = np.empty(w + 1, np.float32)
    for y in range(start, stop):
        # element loops: a slice assignment compiles numba's shape-mismatch error path (~1.5 s)
        for x in range(w):
            acc[x] = img[y, x]
            cnt[x] = 0.0
        cnt[w] = 0.0
        for k in range(m):
            yy = y + dy[k]
            if yy < 0 or yy >= h:
                continue
            lo = max(0, -dx[k])
            hi = min(w, w - dx[k])
            if hi <= lo:
                continue
            d = dx[k]
            for x in range(lo, hi):
                acc[x] += img[yy, x + d]
            cnt[lo] += 1.0
            cnt[hi] -= 1.0
        c = 1.0
        for x in range(w):
            if x > 0:
                c += cnt[x]
            else:
                c = 1.0 + cnt[0]
            out[y, x] = acc[x] / c


@numba.njit(cache=True, nogil=True)
def side_sums(start, stop, zmap, cmap, points, ty, tx, side, zsum, zcount, csum):
    """Bilinear samples of ``zmap`` / ``cmap`` at every ``point + t``.

    ``zsum[i, s]`` / ``zcount[i, s]``: sum and number of the in-image ``zmap``
    samples of point ``i`` whose translation lies on side ``s``
    (``side[s, k]``); ``csum[i]``: sum of the ``cmap`` samples over all
    in-image translations (their number is ``zcount[i, n_sides]``).
    """
    h, w = zmap.shape
    m = ty.size
    n_sides = side.shape[0]
    for i in range(start, stop):
        for s in range(n_sides + 1):
            zsum[i, s] = 0.0
            zcount[i, s] = 0
        csum[i] = 0.0
        for k in range(m):
            y = points[i, 0] + ty[k]
            x = points[i, 1] + tx[k]
            if y < 0.0 or x < 0.0 or y > h - 1 or x > w - 1:
                continue
            y0 = min(int(y), h - 2)
            x0 = min(int(x), w - 2)
            fy = y - y0
            fx = x - x0
            z = ((1 - fy) * ((1 - fx) * zmap[y0, x0] + fx * zmap[y0, x0 + 1])
                 + fy * ((1 - fx) * zmap[y0 + 1, x0] + fx * zmap[y0 + 1, x0 + 1]))
            c = ((1 - fy) * ((1 - fx) * cmap[y0, x0] + fx * cmap[y0, x0 + 1])
                 + fy * ((1 - fx) * cmap[y0 + 1, x0] + fx * cmap[y0 + 1, x0 + 1]))
            for s in range(n_sides):
                if side[s, k]:
                    zsum[i, s] += z
                    zcount[i, s] += 1
            zsum[i, n_sides] += z
            zcount[i, n_sides] += 1
            csum[i] += c
