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
    from . import _sites_kernels as _k

    pts = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
    t = np.asarray(translations, np.float64).reshape(-1, 2)
    n = len(pts)
    if n == 0 or len(t) == 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    side = _side_masks(t)
    zsum = np.empty((n, len(side) + 1))
    zcount = np.empty((n, len(side) + 1), np.int64)
    csum = np.empty(n)
    for_ranges(_k.side_sums, n, np.ascontiguousarray(zmap, np.float32), np.ascontiguousarray(cmap, np.float32), pts,
               np.ascontiguousarray(t[:, 0]), np.ascontiguousarray(t[:, 1]), side, zsum, zcount, csum, min_size=64)
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
    from . import _sites_kernels as _k

    h, w = img.shape
    hs, ws = h // factor, w // factor
    small = np.asarray(img, np.float32)[: hs * factor, : ws * factor]
    if factor > 1:
        small = small.reshape(hs, factor, ws, factor).mean(axis=(1, 3), dtype=np.float32)
    shifts = np.round(np.asarray(translations, float) / factor).astype(np.int64).reshape(-1, 2)
    out = np.empty((hs, ws), np.float32)
    for_ranges(_k.lattice_mean, hs, np.ascontiguousarray(small), np.ascontiguousarray(shifts[:, 0]),
               np.ascontiguousarray(shifts[:, 1]), out, min_size=8)
    return out


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
