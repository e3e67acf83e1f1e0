"""Lattice sites: which candidate maxima sit on a periodic sublattice, and which sites hold no maximum.

At low dose a dim column (the S₂ of WS₂ next to W, at one count per W peak)
carries less than two noise units of signal: no threshold on a single peak
can tell it from the noise maxima in the empty hollows of the lattice. A
crystal, though, repeats that column at every lattice translation, so the
evidence for "a column here" is the signal summed over the translated copies
of the spot, not only the spot itself. This module measures that evidence.

* **Lattice translations** ``T`` are all ``i·u + j·v`` out to a few lattice
  constants (60 vectors for a hexagonal lattice, 48 for a square one), ``u, v`` found from the
  image's power spectrum and refined on the displacements between columns
  (:func:`refine_vectors`, to a few thousandths of a pixel per cell).
* **The unit-cell average** (:func:`cell_average`): every pixel carried into
  one cell, so a column is seen as the mean of all its copies (its width is
  fitted there at any dose).
* **Support** of a point ``p``: the significance map (smoothed image above its
  local background, in noise units) sampled at ``p + t`` for every ``t`` in
  ``T``, summed over each half-plane of translations and divided by the square
  root of their count — a z-score of the periodic signal on that side of
  ``p``. The support is the smallest of these over three directions 60° apart,
  both sides each: a true site is backed by the crystal all around it, while a point
  at the edge of a hole, a grain or the lattice is backed on one side only.
  Half-planes that leave the image are skipped, so columns at the image border
  keep the support of the side inside it.
* **Sites** are the maxima of the lattice average of the significance map
  (:func:`lattice_average`): the average crystal around each point, about
  eight times less noisy than the image. Every site of every sublattice is a maximum there,
  even where noise hid the column's own peak or the column is missing (a
  vacancy); a site is kept when its support says the crystal is really around it
  (:func:`lattice_sites`).
* **Is it a crystal at all?** (:func:`translations_occupied`): a spectrum
  shows periodicities in a glass or a hole too; a real lattice vector carries
  columns onto columns far more often than a control vector of the same length.

Points in the hollows of a lattice, where noise maxima sit, have no periodic
signal at their translations and get a support near or below zero.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._threads import for_ranges
from .peaks import disk_maxima, minus_laplacian

__all__ = ["LATTICE_SUPPORT", "lattice_translations", "refine_vectors", "cell_average", "lattice_evidence",
           "lattice_average", "subpixel_peaks", "translations_occupied", "lattice_sites"]

#: at least this many in-image translations on a side for that side to count
MIN_PER_SIDE = 4

#: Smallest lattice support (a z-score, see the module notes) that makes a
#: candidate a lattice site: the weakest side of the crystal around it must add up
#: to two noise units. In the hollows of a lattice the support stays below ~1.3
#: (95 % below 0.5); the S₂ sites of WS₂ and the O sites of ABF at one count per
#: brightest column reach 3-5.
LATTICE_SUPPORT = 2.0

#: A lattice site must hold this fraction of the average crystal's signal within about a
#: lattice constant around it (a vacancy holds ~85 %, the vacuum inside a hole ~0).
LOCAL_PRESENCE = 0.4


def lattice_translations(u, v, radius=None) -> np.ndarray:
    """All lattice vectors ``i·u + j·v`` with ``0 < |t| ≤ radius``, shortest first.

    Parameters
    ----------
    u, v : array_like, shape (2,)
        Primitive lattice vectors (row, col) in px.
    radius : float, optional
        Default: 4.05 × the longer of ``|u|, |v|`` (60 vectors of a hexagonal
        lattice, 48 of a square one): enough for a column of one noise unit to
        reach a support of ~3.5 on every side, near enough that a distortion
        of 1 % moves the farthest copy by under a pixel.

    Returns
    -------
    ndarray, shape (M, 2)
    """
    u = np.asarray(u, float)
    v = np.asarray(v, float)
    lu, lv = np.hypot(*u), np.hypot(*v)
    if radius is None:
        radius = 4.05 * max(lu, lv)
    area = abs(u[0] * v[1] - u[1] * v[0])
    if area <= 1e-9 * lu * lv:
        return np.zeros((0, 2))
    # index range large enough for any reduced or sheared basis
    n = int(np.ceil(radius * max(lu, lv) / area)) + 1
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    t = i.ravel()[:, None] * u + j.ravel()[:, None] * v
    d = np.hypot(*t.T)
    keep = (d > 1e-9) & (d <= radius)
    t, d = t[keep], d[keep]
    return t[np.argsort(d, kind="stable")]


def refine_vectors(points, u, v, min_pairs=30, max_origins=2000):
    """Lattice vectors refined by least squares on the displacements between columns.

    The power spectrum of a crop places ``u, v`` to about 1 %: enough for the
    lattice average's nearest copies, not for averaging every cell of the
    image (an error ε smears a cell average by ε × the image size). Each pair
    of points whose displacement is near a lattice vector ``i·u + j·v``
    measures the vectors. The pairs are taken at growing separations (1, 2, 4,
    8, … cells), each scale predicted well enough by the one before that its
    pairs are matched correctly, so that the longest pairs, across the image,
    set the precision: a few thousandths of a pixel per cell from points
    jittered by a pixel.

    Parameters
    ----------
    points : ndarray, shape (N, 2)
        Column positions (px), e.g. the confident peaks. Spurious points and
        other sublattices add pairs that match nothing or match symmetrically.
    u, v : array_like, shape (2,)
        Starting vectors, within ~5 % of the truth.
    min_pairs : int
        A scale with fewer matched pairs than this ends the refinement; with
        none usable, ``u, v`` come back unchanged.
    max_origins : int
        Pairs start from at most this many of the points (spread over the image).

    Returns
    -------
    u, v : ndarray, shape (2,)
    """
    from scipy.spatial import cKDTree

    u, v = np.asarray(u, float), np.asarray(v, float)
    p = np.asarray(points, float)
    if len(p) < 3:
        return u, v
    tree = cKDTree(p)
    # pairs start from at most max_origins points spread over the image (every k-th in
    # scan order) and end at any point: thousands of pairs per vector, a bounded cost
    origins = p[:: int(np.ceil(len(p) / max_origins))]
    B = np.vstack([u, v])
    lmin = min(np.hypot(*u), np.hypot(*v))
    tol = 0.2 * lmin
    extent = float(np.hypot(*np.ptp(p, axis=0)))
    steps = []
    n = 1
    while n * lmin < 0.7 * extent:
        steps.extend([(n, 0), (0, n), (n, n), (n, -n)])
        if n == 1:
            steps.extend([(2, 1), (1, 2), (2, -1), (1, -2)])
        # matched again around each new estimate: a pair is taken from a window centred
        # on the prediction, which pulls the estimate towards it, so a round moves only
        # part of the way; the fixed point, where the true pairs sit symmetrically in
        # their windows, is the truth
        ij = np.array(steps, float)
        for _ in range(3):
            idx, disp = [], []
            for a in ij:
                d, k = tree.query(origins + a @ B, distance_upper_bound=tol)
                ok = np.isfinite(d)
                idx.append(np.repeat(a[None], ok.sum(), axis=0))
                disp.append(p[k[ok]] - origins[ok])
            if sum(len(x) for x in idx[-4:]) < min_pairs:
                return B[0], B[1]
            A, D = np.vstack(idx), np.vstack(disp)
            B_new = np.linalg.lstsq(A, D, rcond=None)[0]
            step = float(np.abs(B_new - B).max())
            B = B_new
            if step < 2e-3:
                break
        n *= 2
    return B[0], B[1]


def cell_average(img, u, v, center, radius, step=0.5):
    """The image averaged over every unit cell, on a Cartesian grid around one point of the cell.

    Each pixel is carried by a lattice translation to within half a cell of
    ``center`` and binned by its displacement from it (``step`` px bins), so a
    column at ``center`` is seen as the mean of every cell's copy: a few
    hundred cells make it ten to twenty times less noisy than any single
    column, at any dose.

    Parameters
    ----------
    img : ndarray, shape (H, W)
    u, v : array_like, shape (2,)
        Lattice vectors (row, col) px, accurate to ~0.1 % (see
        :func:`refine_vectors`): an error ε drifts the far cells by ε × the image size.
    center : array_like, shape (2,)
        Any point of the crystal (row, col) px, e.g. a column.
    radius : float
        Half-width (px) of the returned window.
    step : float
        Bin size (px).

    Returns
    -------
    mean : ndarray, shape (M, M)
        The average, NaN in empty bins; bin ``k`` is centred at ``(k - (M-1)/2) · step``.
    count : ndarray, shape (M, M)
        Pixels per bin.
    """
    B = np.vstack([np.asarray(u, float), np.asarray(v, float)])
    if not (np.all(np.isfinite(B)) and abs(np.linalg.det(B)) > 1e-9 * max(np.abs(B).max(), 1e-300) ** 2):
        from .errors import MotifLabError

        raise MotifLabError(f"u = {B[0].tolist()} and v = {B[1].tolist()} do not span a lattice cell; "
                            "pass two non-parallel lattice vectors (px).")
    h, w = img.shape
    r = np.arange(h, dtype=np.float64)[:, None] - float(center[0])
    c = np.arange(w, dtype=np.float64)[None, :] - float(center[1])
    Binv = np.linalg.inv(B.T)  # fractional coordinates of a displacement d: Binv @ d
    # the nearest copy of the centre, in a reduced basis (outer sums: no (H·W, 2) temporaries)
    n0 = np.round(Binv[0, 0] * r + Binv[0, 1] * c)
    n1 = np.round(Binv[1, 0] * r + Binv[1, 1] * c)
    half = int(np.ceil(radius / step))
    k0 = np.round((r - (n0 * B[0, 0] + n1 * B[1, 0])) / step).astype(np.int64).ravel() + half
    k1 = np.round((c - (n0 * B[0, 1] + n1 * B[1, 1])) / step).astype(np.int64).ravel() + half
    m = 2 * half + 1
    ok = (k0 >= 0) & (k0 < m) & (k1 >= 0) & (k1 < m)
    flat = k0[ok] * m + k1[ok]
    count = np.bincount(flat, minlength=m * m).reshape(m, m)
    total = np.bincount(flat, weights=np.asarray(img, float).ravel()[ok], minlength=m * m).reshape(m, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return mean, count


def _side_masks(translations):
    """For three directions 60° apart (from the shortest lattice vector), the translations on each side.

    Returns a (6, M) bool array: rows 2k and 2k+1 are the two sides of direction k.
    """
    t = np.asarray(translations, float)
    d = np.hypot(*t.T)
    a0 = t[np.argmin(d)] / d.min()
    rows = []
    for ang in (0.0, np.pi / 3, 2 * np.pi / 3):
        c, s_ = np.cos(ang), np.sin(ang)
        a = np.array([c * a0[0] - s_ * a0[1], s_ * a0[0] + c * a0[1]])
        proj = t @ a / d
        # translations nearly perpendicular to the direction belong to neither side
        rows += [proj > 0.2, proj < -0.2]
    return np.array(rows)


def lattice_evidence(zmap, cmap, points, translations, min_per_side=MIN_PER_SIDE):
    """Lattice support and pooled contrast of each point.

    Parameters
    ----------
    zmap : ndarray (H, W)
        Significance map: height above the local background in noise units.
    cmap : ndarray (H, W)
        The same height in image units.
    points : ndarray (N, 2)
        (row, col) positions, sub-pixel allowed.
    translations : ndarray (M, 2)
        Lattice translations (:func:`lattice_translations`).
    min_per_side : int
        A side counts when at least this many of its translations land in the image.

    Returns
    -------
    support : ndarray (N,)
        The smallest one-sided z-score over three directions (see the module
        notes); NaN where no side has ``min_per_side`` samples in the image.
    pooled : ndarray (N,)
        Mean of ``cmap`` over the in-image translations: the brightness of the
        point's sublattice in the average crystal (NaN if none).
    """
    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
    t = np.asarray(translations, np.float64).reshape(-1, 2)
    n = len(pts)
    if n == 0 or len(t) == 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    side = _side_masks(t)
    zsum = np.empty((n, len(side) + 1))
    zcount = np.empty((n, len(side) + 1), np.int64)
    csum = np.empty(n)
    maps = (np.ascontiguousarray(zmap, np.float32), np.ascontiguousarray(cmap, np.float32))
    for_ranges(_side_sums, n, maps, pts, t, [np.flatnonzero(s) for s in side], zsum, zcount, csum,
               min_size=max(64, _CHUNK_SAMPLES // len(t)))
    score = zsum[:, :-1] / np.sqrt(np.maximum(zcount[:, :-1], 1))
    score[zcount[:, :-1] < min_per_side] = np.nan
    # per direction the weaker side where both are in the image, then the weakest direction
    per_dir = np.fmin(score[:, 0::2], score[:, 1::2])
    has = np.isfinite(per_dir).any(axis=1)
    support = np.full(n, np.nan)
    support[has] = np.nanmin(per_dir[has], axis=1)
    pooled = np.full(n, np.nan)
    inside = zcount[:, -1] > 0
    pooled[inside] = csum[inside] / zcount[inside, -1]
    return support, pooled


def lattice_average(img, translations, factor=1):
    """Mean of ``img`` over itself and its lattice translations, on a grid ``factor`` times coarser.

    The average crystal around every pixel: sites of every sublattice stand
    out ``sqrt(M + 1)`` times more clearly than in ``img`` (about eight times
    for 60 translations), vacancies are filled in, and the empty hollows stay empty.
    Translations are rounded to the grid; since ``T`` holds ``t`` and ``-t``,
    the rounding blurs the average symmetrically and moves no maximum. Near the
    border the mean is over the translations that stay inside the image.

    Parameters
    ----------
    img : ndarray (H, W)
    translations : ndarray (M, 2)
    factor : int
        Block-average the image by ``factor`` first (cheaper, for smooth maps).

    Returns
    -------
    ndarray (H // factor, W // factor) float32
    """
    h, w = img.shape
    hs, ws = h // factor, w // factor
    small = np.asarray(img, np.float32)[: hs * factor, : ws * factor]
    if factor > 1:
        small = small.reshape(hs, factor, ws, factor).mean(axis=(1, 3), dtype=np.float32)
    shifts = np.round(np.asarray(translations, float) / factor).astype(np.int64).reshape(-1, 2)
    out = np.empty((hs, ws), np.float32)
    for_ranges(_lattice_mean, hs, np.ascontiguousarray(small), shifts, out, min_size=8)
    return out


#: pixels of the lattice average summed at a time: a block stays in a core's L2 cache, and each
#: add is long enough (~0.1 ms) that threads seldom wait for the GIL between them
_BLOCK_PIXELS = 131072


def _lattice_mean(start, stop, img, shifts, out):
    """``out[y, x]`` for rows ``start..stop-1``: mean of ``img`` at ``(y, x)`` and at the ``(y, x) + shifts[k]`` inside.

    Each translation adds the overlapping part of ``img`` to a block of rows
    (NumPy releases the GIL for the adds, so ranges run in parallel); per
    pixel the terms are added in the order of ``shifts``. The number of terms
    at a pixel counts the translations that keep both its row and its column
    inside: with the translations sorted by row shift, those that keep row
    ``y`` inside are a contiguous run, so a running sum over them of the
    columns each keeps inside gives the count by one difference. No BLAS
    here: its calls from several threads at once run ten times slower.

    Parameters
    ----------
    start, stop : int
        Rows to compute.
    img : ndarray (H, W) float32
    shifts : ndarray (M, 2) int
        (row, col) translations.
    out : ndarray (H, W) float32
        Written in rows ``start..stop-1``.
    """
    h, w = img.shape
    by_row = shifts[np.argsort(shifts[:, 0], kind="stable")]
    x = np.arange(w)
    keeps_col = (x + by_row[:, 1:] >= 0) & (x + by_row[:, 1:] < w)
    runs = np.zeros((len(shifts) + 1, w), np.float32)  # counts up to M + 1: exact in float32
    np.cumsum(keeps_col, axis=0, out=runs[1:])
    moves = [(int(a), int(b)) for a, b in shifts]
    block = max(1, _BLOCK_PIXELS // w)
    for b0 in range(start, stop, block):
        b1 = min(stop, b0 + block)
        acc = out[b0:b1]
        acc[...] = img[b0:b1]
        for sy, sx in moves:
            y0, y1 = max(b0, -sy), min(b1, h - sy)
            x0, x1 = max(0, -sx), min(w, w - sx)
            if y1 > y0 and x1 > x0:
                acc[y0 - b0:y1 - b0, x0:x1] += img[y0 + sy:y1 + sy, x0 + sx:x1 + sx]
        y = np.arange(b0, b1)
        first = np.searchsorted(by_row[:, 0], -y, "left")
        last = np.searchsorted(by_row[:, 0], h - 1 - y, "right")
        count = runs[last] - runs[first]
        count += 1.0
        acc /= count


#: samples (points x translations) handled at a time by :func:`_side_sums`: its work arrays stay in
#: cache, and each NumPy call is long enough that threads seldom wait for the GIL between them
#: (at a quarter of this, two threads are slower than one)
_CHUNK_SAMPLES = 65536


def _side_sums(start, stop, maps, points, t, sides, zsum, zcount, csum):
    """Bilinear samples of two maps at every ``point + t``, summed per side, for points ``start..stop-1``.

    Chunks of points go through work arrays allocated once: allocating them
    per chunk can cost more than the arithmetic (the allocator hands their
    pages back to the system and faults them in again). Points whose every
    translation lands inside the image (most of them) skip the bounds checks.
    NumPy releases the GIL for the arithmetic, so ranges run in parallel; the
    samples of a point are added in the order of the translations.

    Parameters
    ----------
    start, stop : int
        Points to compute.
    maps : (ndarray (H, W) float32, ndarray (H, W) float32)
        ``zmap`` and ``cmap``.
    points : ndarray (N, 2) float64
    t : ndarray (M, 2) float64
        Translations.
    sides : list of ndarray int
        The translations on each side.
    zsum, zcount : ndarray (N, len(sides) + 1)
        Sum and number of the in-image ``zmap`` samples over each side's
        translations, and in the last column over all of them (written for
        the points computed).
    csum : ndarray (N,)
        Sum of the in-image ``cmap`` samples over all translations.
    """
    h, w = maps[0].shape
    p = points[start:stop]
    # adding the smallest and largest translation bounds every sample (addition is monotonic)
    interior = ((p[:, 0] + t[:, 0].min() >= 0.0) & (p[:, 0] + t[:, 0].max() < h - 1)
                & (p[:, 1] + t[:, 1].min() >= 0.0) & (p[:, 1] + t[:, 1].max() < w - 1))
    chunk = max(2, min(stop - start, _CHUNK_SAMPLES // len(t)))
    work = _SampleWork(len(t), chunk, max((len(r) for r in sides), default=0))
    for border in (False, True):
        todo = start + np.flatnonzero(~interior if border else interior)
        for lo in range(0, len(todo), chunk):
            idx = todo[lo:lo + chunk]
            if len(idx) == 1:  # NumPy sums a single column pairwise: give it two, so every sum adds in order
                idx = np.repeat(idx, 2)
            work.sums(maps, points[idx], t, sides, border, idx, zsum, zcount, csum)


class _SampleWork:
    """The work arrays of :func:`_side_sums` for chunks of up to ``n`` points, and the sums of one chunk."""

    def __init__(self, m, n, side):
        size = m * n
        self.f64 = [np.empty(size) for _ in range(7)]
        self.index = [np.empty(size, np.intp) for _ in range(2)]
        self.value = np.empty(size, np.float32)
        self.bools = [np.empty(size, bool) for _ in range(2)]
        self.side = np.empty(side * n)
        self.total = np.empty(n)

    def sums(self, maps, p, t, sides, border, idx, zsum, zcount, csum):
        """The sums of :func:`_side_sums` for the points ``p`` (rows ``idx`` of the outputs).

        ``border``: some samples may fall outside the image.
        """
        h, w = maps[0].shape
        m, n = len(t), len(p)

        def shaped(a, k=m):  # the first k*n elements of a work array, as (k, n)
            return a[: k * n].reshape(k, n)

        # (M, n): translations along the first axis; NumPy sums such an array (n > 1) over that
        # axis one row after another, so each point's samples are added in the order of the
        # translations, whatever the chunk
        fy, fx, gy, gx, top, bottom, part = (shaped(a) for a in self.f64)
        iy, ix = (shaped(a) for a in self.index)
        v = shaped(self.value)
        inside, outside = (shaped(a) for a in self.bools)
        total = self.total[:n]
        np.add(t[:, :1], p[:, 0], out=fy)
        np.add(t[:, 1:], p[:, 1], out=fx)
        if border:
            np.greater_equal(fy, 0.0, out=inside)
            inside &= np.greater_equal(fx, 0.0, out=outside)
            inside &= np.less_equal(fy, h - 1, out=outside)
            inside &= np.less_equal(fx, w - 1, out=outside)
            np.logical_not(inside, out=outside)
        # the cell: truncation is the floor inside, and a sample on the last row or column takes the cell before it
        np.copyto(iy, fy, casting="unsafe")
        np.copyto(ix, fx, casting="unsafe")
        if border:
            np.clip(iy, 0, h - 2, out=iy)
            np.clip(ix, 0, w - 2, out=ix)
        fy -= iy
        fx -= ix
        np.subtract(1.0, fy, out=gy)
        np.subtract(1.0, fx, out=gx)
        iy *= w
        iy += ix

        def sample(img):
            # the four corners are the map seen from four offsets ("clip": no buffered copy; all indices are valid)
            f = img.ravel()
            np.multiply(gx, np.take(f, iy, out=v, mode="clip"), out=top)
            np.add(top, np.multiply(fx, np.take(f[1:], iy, out=v, mode="clip"), out=part), out=top)
            np.multiply(gx, np.take(f[w:], iy, out=v, mode="clip"), out=bottom)
            np.add(bottom, np.multiply(fx, np.take(f[w + 1:], iy, out=v, mode="clip"), out=part), out=bottom)
            np.multiply(top, gy, out=top)
            np.multiply(bottom, fy, out=bottom)
            np.add(top, bottom, out=top)
            if border:
                np.copyto(top, 0.0, where=outside)
            return top

        z = sample(maps[0])
        for s, r in enumerate(sides):
            zsum[idx, s] = np.add.reduce(np.take(z, r, axis=0, out=shaped(self.side, len(r)), mode="clip"), axis=0,
                                         out=total)
            zcount[idx, s] = np.count_nonzero(inside[r], axis=0) if border else len(r)
        zsum[idx, -1] = np.add.reduce(z, axis=0, out=total)
        zcount[idx, -1] = np.count_nonzero(inside, axis=0) if border else m
        csum[idx] = np.add.reduce(sample(maps[1]), axis=0, out=total)


def subpixel_peaks(img, rows, cols):
    """Sub-pixel maxima of a smooth map: a parabola through each peak pixel and its neighbours, per axis."""
    h, w = img.shape
    r = np.clip(rows, 1, h - 2)
    c = np.clip(cols, 1, w - 2)
    out = np.column_stack([rows, cols]).astype(np.float64)
    for axis, (dm, dp) in enumerate((((r - 1, c), (r + 1, c)), ((r, c - 1), (r, c + 1)))):
        a, b, e = img[dm], img[r, c], img[dp]
        den = a - 2.0 * b + e
        off = np.where(den < 0, 0.5 * (a - e) / np.where(den < 0, den, -1.0), 0.0)
        out[:, axis] += np.clip(off, -0.5, 0.5)
    return out


def translations_occupied(pts, vectors, tol) -> bool:
    """Whether both lattice vectors map confident columns onto other confident columns.

    A real lattice translation carries a column onto a column; a vector read
    from the spectrum of an image without one (a glass, a nanoparticle, a hole)
    does so only as often as any other vector of that length. Compared with
    four such control vectors (u turned by ±17° and ±31°), so that a sparse
    set of confident columns at low dose is judged against its own density.
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(pts)
    starts = pts[:: int(np.ceil(len(pts) / 5000))]  # a fraction is plenty, spread over the image

    def occupancy(t):
        d1, _ = tree.query(starts + t, distance_upper_bound=tol)
        d2, _ = tree.query(starts - t, distance_upper_bound=tol)
        return float(np.mean(np.isfinite(d1) | np.isfinite(d2)))

    controls = []
    for ang in np.radians([17.0, -17.0, 31.0, -31.0]):
        c, s = np.cos(ang), np.sin(ang)
        controls.append(occupancy(np.array([c * vectors[0][0] - s * vectors[0][1],
                                            s * vectors[0][0] + c * vectors[0][1]])))
    baseline = float(np.mean(controls))
    return min(occupancy(t) for t in vectors) >= max(3.0 * baseline, baseline + 0.15)


def lattice_sites(zmap, cmap, translations, radius, border, min_level, reach):
    """Sites of the crystal: maxima of the lattice-averaged significance the crystal backs all round.

    ``reach`` (px, about a lattice constant) sets the neighbourhood in which a
    site must hold at least :data:`LOCAL_PRESENCE` of the average crystal's
    signal. Returns the sub-pixel site positions and their lattice support.
    """
    # the average crystal, and its peakedness (minus its Laplacian): a dim column on the
    # shoulders of bright neighbours (S₂ between three W, 1/7 of their height in noise
    # units) is a peak of the curvature even where the bright tails leave it no maximum.
    # The nearest 36-48 translations already lift sites 6-7x out of the noise; the site
    # support below uses them all
    near = translations[: max(8, min(len(translations), 48))]
    avg = lattice_average(zmap, near, 1)
    peaked = minus_laplacian(avg)
    h, w = zmap.shape
    rr, cc = np.nonzero(disk_maxima(peaked, radius) & (peaked > 0) & (avg > 0))
    inside = (rr >= border) & (rr < h - border) & (cc >= border) & (cc < w - border)
    rr, cc = rr[inside], cc[inside]
    if len(rr) == 0:
        return np.zeros((0, 2)), np.zeros(0)
    sites = subpixel_peaks(peaked, rr, cc)
    support, pooled = lattice_evidence(zmap, cmap, sites, translations)
    with np.errstate(invalid="ignore"):
        ok = (support >= LATTICE_SUPPORT) & (pooled >= min_level)
    # the crystal must be there: around a site the image holds a good part of the average
    # crystal's signal (a vacancy keeps its neighbours; vacuum a lattice constant inside a
    # hole has nothing, though the support from the crystal beyond can still be high)
    here, typical = _local_means([zmap, avg], sites[ok], reach)
    # ... unless the local mean is too noisy to say: a Gaussian mean of width `reach` over
    # a unit-noise map correlated over a column (~radius) varies by ~1.4 radius/reach
    noise = 1.4 * radius / reach
    with np.errstate(invalid="ignore", divide="ignore"):
        ok[np.flatnonzero(ok)] = (here >= LOCAL_PRESENCE * typical) | (here >= typical - 3.0 * noise)
    return sites[ok], support[ok]


def _local_means(maps, points, reach):
    """Gaussian-weighted means (width ``reach``) of each map at each point, on a coarse grid."""
    f = int(max(1, reach // 2))  # a Gaussian of width `reach` is well sampled every reach/2
    out = []
    for m in maps:
        h, w = (m.shape[0] // f) * f, (m.shape[1] // f) * f
        small = np.asarray(m[:h, :w], np.float32).reshape(h // f, f, w // f, f).mean(axis=(1, 3))
        sm = ndimage.gaussian_filter(small, reach / f, mode="nearest")
        q = (np.asarray(points, float) - 0.5 * (f - 1)) / f
        out.append(ndimage.map_coordinates(sm, q.T, order=1, mode="nearest") if len(q) else np.zeros(0))
    return out
