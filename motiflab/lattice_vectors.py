"""Candidate lattice vectors: from neighbour statistics or from a power spectrum.

Step 1 of :func:`motiflab.lattice.find_lattice` (see its module notes): the
neighbour method clusters the vectors from every column to its nearest
neighbours and keeps those nearly every column has (translations, not
sublattice-to-sublattice vectors); the FFT method takes the two shortest
strong peaks of an image's power spectrum. Both end in the same reduced basis
convention (:func:`reduce_basis`). :func:`fft_lattice_vectors` is also used
by column finding, on the micrograph itself.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import MotifLabError
from .lattice_geometry import cross

__all__ = [
    "NO_LATTICE_HINT",
    "fft_lattice_vectors",
    "neighbor_lattice_vectors",
    "points_image",
    "reduce_basis",
    "merge_close",
    "source_columns",
]

#: Appended to every "no lattice" error: what to do when there is none.
NO_LATTICE_HINT = (
    "If the sample is not periodic (amorphous, quasicrystalline, a tiling without "
    "translation order), use motiflab.lattice.voronoi_cells(positions) or "
    "build_hierarchy(..., cells='voronoi') instead; if it is periodic, pass the "
    "lattice vectors yourself (Lattice(u=..., v=...)) or try method='fft' with the image."
)


# --------------------------------------------------------------------------- neighbour vectors


def source_columns(n_all: int, max_sources: int = 4000) -> np.ndarray:
    """Deterministic strided subset of column indices used for neighbour statistics.

    Parameters
    ----------
    n_all : int
        Number of columns.
    max_sources : int
        Most indices to return.

    Returns
    -------
    ndarray of int
        Every ``ceil(n_all / max_sources)``-th index.
    """
    step = max(1, int(math.ceil(n_all / max_sources)))
    return np.arange(0, n_all, step)


def _translation_candidates(p: np.ndarray, tree: cKDTree, d_nn: float, n_neighbors: int):
    """Cluster neighbour difference vectors; return (vectors, occupancies).

    Occupancy statistics from a few thousand columns are ample, so large inputs
    are strided (deterministically) down to a few thousand source columns.
    """
    n_all = len(p)
    srcs = source_columns(n_all)
    n = len(srcs)
    k = min(n_all - 1, n_neighbors)
    dist, idx = tree.query(p[srcs], k=k + 1)
    dist, idx = dist[:, 1:], idx[:, 1:]
    ok = np.isfinite(dist) & (dist > 0.05 * d_nn)
    src = np.broadcast_to(np.arange(n)[:, None], idx.shape)[ok]
    dvec = p[idx[ok]] - p[srcs][src]
    rmax = float(np.max(np.abs(dvec))) + d_nn
    w = d_nn / 8.0
    nb = min(int(math.ceil(2 * rmax / w)), 2048)
    hist, _, _ = np.histogram2d(dvec[:, 0], dvec[:, 1], bins=nb, range=[[-rmax, rmax], [-rmax, rmax]])
    sm = ndimage.uniform_filter(hist, size=3, mode="constant") * 9
    peaks = (sm == ndimage.maximum_filter(sm, size=5, mode="constant")) & (sm >= 0.15 * n)
    pk_idx = np.column_stack(np.nonzero(peaks))
    pk_val = sm[peaks]
    centres = -rmax + (pk_idx + 0.5) * (2 * rmax / nb)
    r_tol = 0.3 * d_nn
    # exact positions make plateaus (several equal maxima per cluster): keep the
    # strongest of each group before the (costly) refinement
    centres = merge_close(centres[np.argsort(-pk_val, kind="stable")], r_tol)
    vecs, occs = [], []
    for c in centres:
        mem = None
        for _ in range(3):  # refine the centre on the members it attracts
            dd = dvec - c
            mem = (dd[:, 0] ** 2 + dd[:, 1] ** 2) <= r_tol**2
            if not mem.any():
                break
            c = np.median(dvec[mem], axis=0)
        if mem is None or not mem.any() or np.hypot(*c) < 0.5 * d_nn:
            continue
        occ = len(np.unique(src[mem])) / n
        vecs.append(c)
        occs.append(occ)
    if not vecs:
        return np.zeros((0, 2)), np.zeros(0)
    vecs = np.array(vecs)
    occs = np.array(occs)
    # merge duplicates found from neighbouring histogram maxima
    order = np.argsort(-occs)
    keep: list[int] = []
    for i in order:
        if all(np.hypot(*(vecs[i] - vecs[j])) > r_tol for j in keep):
            keep.append(i)
    return vecs[keep], occs[keep]


def neighbor_lattice_vectors(p: np.ndarray, tree: cKDTree, d_nn: float, n_neighbors: int,
                             min_occupancy: float) -> tuple[np.ndarray, np.ndarray]:
    """Reduced basis from the translations nearly every column has a neighbour at.

    Parameters
    ----------
    p : ndarray (N, 2)
        Column positions (px).
    tree : scipy.spatial.cKDTree
        Tree over ``p``.
    d_nn : float
        Median nearest-neighbour distance (px).
    n_neighbors : int
        Neighbours per column whose difference vectors are clustered.
    min_occupancy : float
        Smallest fraction of columns that must carry a translation.

    Returns
    -------
    u, v : ndarray (2,)
        Reduced basis (:func:`reduce_basis`).

    Raises
    ------
    MotifLabError
        No vector is shared by enough columns, or all shared ones are parallel.
    """
    vecs, occs = _translation_candidates(p, tree, d_nn, n_neighbors)
    if len(vecs) == 0 or occs.max() < min_occupancy:
        best = 0.0 if len(occs) == 0 else float(occs.max())
        raise MotifLabError(
            f"no lattice found: no neighbour vector is shared by at least "
            f"{min_occupancy:.0%} of the {len(p)} columns (best {best:.0%}). " + NO_LATTICE_HINT
        )
    # translations: near the best occupancy; sublattice vectors sit at ~1/K of it
    keep = (occs >= min_occupancy) & (occs >= 0.7 * occs.max())
    u, v = _shortest_pair(vecs[keep])
    if v is None:
        raise MotifLabError(
            "no lattice found: the shared neighbour vectors are all parallel (a 1-D "
            "stripe pattern?). " + NO_LATTICE_HINT
        )
    return reduce_basis(u, v)


def _shortest_pair(vecs: np.ndarray):
    """The shortest vector and the shortest one clearly not parallel to it (``None`` if none).

    In 2-D these successive minima of a set of lattice translations form a
    primitive basis; "clearly" means the pair spans more than 0.3 of the
    product of their lengths (about 17 degrees apart).
    """
    lens = np.hypot(*vecs.T)
    order = np.argsort(lens)
    a = vecs[order[0]]
    for i in order[1:]:
        if abs(cross(a, vecs[i])) > 0.3 * lens[order[0]] * lens[i]:
            return a, vecs[i]
    return a, None


def merge_close(points: np.ndarray, radius: float, metric: np.ndarray | None = None) -> np.ndarray:
    """Greedy de-duplication: keep a point unless a kept one lies within ``radius``.

    Parameters
    ----------
    points : ndarray (N, 2)
        Candidates, best first (earlier points win).
    radius : float
        Distance below which a later point is a duplicate.
    metric : ndarray (2, 2), optional
        Maps the points to the space where distances are measured; with it,
        differences are also wrapped to [-0.5, 0.5) (periodic fractional
        coordinates).

    Returns
    -------
    ndarray (K, 2)
        The kept points, in input order.
    """
    kept: list[np.ndarray] = []
    for p in points:
        ok = True
        for q in kept:
            d = p - q
            if metric is not None:
                d = metric @ (d - np.rint(d))
            if d[0] * d[0] + d[1] * d[1] <= radius * radius:
                ok = False
                break
        if ok:
            kept.append(p)
    return np.array(kept).reshape(-1, 2)


def reduce_basis(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lagrange-Gauss reduction plus the sign/handedness convention of :mod:`motiflab.lattice`.

    Parameters
    ----------
    u, v : array_like (2,)
        Any basis of the lattice.

    Returns
    -------
    u, v : ndarray (2,)
        ``|u| <= |v|``, ``u . v <= 0``, ``cross(u, v) > 0``; among the
        equivalent reduced bases (square/hexagonal lattices have several) the
        one whose ``u`` points closest to the +col axis, so the choice is stable.
    """
    u, v = np.asarray(u, float).copy(), np.asarray(v, float).copy()
    for _ in range(100):
        if np.dot(v, v) < np.dot(u, u):
            u, v = v, u
        m = round(float(np.dot(u, v) / np.dot(u, u)))
        if m == 0:
            break
        v = v - m * u
    area = abs(cross(u, v))
    lu, lv = np.hypot(*u), np.hypot(*v)
    short = [s * w for w in (u, v, u + v, u - v) for s in (1, -1)]
    best = None
    for a in short:
        if abs(np.hypot(*a) - lu) > 0.02 * lu:
            continue
        for b in short:
            if abs(np.hypot(*b) - lv) > 0.02 * lv:
                continue
            c = cross(a, b)
            if c <= 0 or abs(c - area) > 1e-6 * area or np.dot(a, b) > 1e-9 * lu * lv:
                continue
            key = (round(abs(math.atan2(a[0], a[1])), 6), -a[1], np.dot(b, b))
            if best is None or key < best[0]:
                best = (key, a, b)
    if best is None:  # cannot happen for a reduced basis; keep a valid fallback
        if np.dot(u, v) > 0:
            v = -v
        if cross(u, v) < 0:
            u, v = -u, -v
        return u, v
    return best[1].copy(), best[2].copy()


# --------------------------------------------------------------------------- fft method


def fft_lattice_vectors(image, max_peaks: int = 40, max_period: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Real-space lattice basis from the two shortest strong peaks of an image's power spectrum.

    Parameters
    ----------
    image : array_like (H, W)
        Micrograph (or points rendered as an image), finite values.
    max_peaks : int
        Strongest local maxima of the (Hann-windowed) power spectrum
        considered; peaks below 8 % of the strongest are dropped.
    max_period : float, optional
        Ignore peaks of periods longer than this (px): a hole, a thickness
        gradient or contamination puts strong power at low frequencies that is
        no lattice.

    Returns
    -------
    u, v : ndarray (2,)
        Reduced basis ``(row, col)`` in pixels (``|u| <= |v|``, ``u . v <= 0``,
        right-handed; see :func:`reduce_basis`).

    Raises
    ------
    MotifLabError
        Fewer than two peaks, or no two non-collinear ones.
    """
    from ._validation import check_int, check_number
    from .image_checks import validate_image

    img = validate_image(image).astype(float)
    max_peaks = check_int(max_peaks, "max_peaks", low=2, high=10_000)
    if max_period is not None:
        max_period = check_number(max_period, "max_period", low=0.0, low_open=True)
    h, w = img.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    f = np.fft.fftshift(np.fft.fft2((img - img.mean()) * win))
    pw = np.abs(f) ** 2
    cy, cx = h // 2, w // 2
    ky = (np.arange(h) - cy) / h
    kx = (np.arange(w) - cx) / w
    kr = np.hypot(ky[:, None], kx[None, :])
    pw[kr < 4.0 / min(h, w)] = 0  # DC and the window's own leakage
    if max_period is not None and max_period > 0:
        pw[kr < 1.0 / max_period] = 0
    pk = (pw == ndimage.maximum_filter(pw, size=5)) & (pw > 0)
    rr, cc = np.nonzero(pk)
    vals = pw[rr, cc]
    order = np.argsort(-vals)[:max_peaks]
    rr, cc, vals = rr[order], cc[order], vals[order]
    strong = vals >= 0.08 * vals[0]
    rr, cc = rr[strong], cc[strong]
    gs = []
    for r0, c0 in zip(rr, cc):
        # sub-bin peak position: intensity-weighted centroid of the 3x3 neighbourhood
        r_lo, r_hi = max(r0 - 1, 0), min(r0 + 2, h)
        c_lo, c_hi = max(c0 - 1, 0), min(c0 + 2, w)
        patch = pw[r_lo:r_hi, c_lo:c_hi]
        yy, xx = np.mgrid[r_lo:r_hi, c_lo:c_hi]
        s = patch.sum()
        gy = ((yy * patch).sum() / s - cy) / h
        gx = ((xx * patch).sum() / s - cx) / w
        gs.append((gy, gx))
    gs = np.array(gs)
    if len(gs) < 2:
        raise MotifLabError("the image's power spectrum has fewer than two lattice peaks. " + NO_LATTICE_HINT)
    g1, g2 = _shortest_pair(gs)
    if g2 is None:
        raise MotifLabError("the image's power spectrum has no two non-collinear peaks. " + NO_LATTICE_HINT)
    gmat = np.vstack([g1, g2])  # rows g_a; real basis columns r_b with g_a . r_b = delta_ab
    m = np.linalg.inv(gmat)
    return reduce_basis(m[:, 0], m[:, 1])


def points_image(p: np.ndarray, d_nn: float):
    """Render points as small Gaussians (about 8 px per nearest-neighbour distance).

    For ``find_lattice(method="fft")`` without an image.

    Parameters
    ----------
    p : ndarray (N, 2)
        Positions (px).
    d_nn : float
        Median nearest-neighbour distance (px).

    Returns
    -------
    img : ndarray (H, W)
        The rendering (at most 4096 x 4096).
    scale : float
        Rendering pixels per input pixel: divide vectors found on ``img`` by it.
    """
    scale = 8.0 / d_nn
    lo = p.min(axis=0) - 2 * d_nn
    q = (p - lo) * scale
    shape = tuple(int(math.ceil(x)) + 1 for x in q.max(axis=0) + 2 * 8)
    if shape[0] * shape[1] > 4096 * 4096:
        scale *= math.sqrt(4096 * 4096 / (shape[0] * shape[1]))
        q = (p - lo) * scale
        shape = tuple(int(math.ceil(x)) + 1 for x in q.max(axis=0) + 16)
    img = np.zeros(shape)
    ij = np.rint(q).astype(int)
    np.add.at(img, (ij[:, 0], ij[:, 1]), 1.0)
    img = ndimage.gaussian_filter(img, 1.0)
    return img, scale
