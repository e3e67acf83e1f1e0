"""Lattice vectors, cell indexing and Voronoi cells (METHOD.md §5, step 1).

The hierarchy of motif-cells needs a tessellation of the field of view into
cells. For a quasi-periodic sample that is the unit-cell grid of the crystal:
:func:`find_lattice` finds the two primitive translation vectors ``u`` and
``v`` from the columns themselves and :func:`index_cells` gives every column
the integer index ``(i, j)`` of the cell it sits in. For samples without a
lattice, :func:`voronoi_cells` makes every column its own (Voronoi) cell.

How the lattice is found
------------------------
1. **Translation candidates.** For every column, the vectors to its ~24
   nearest neighbours are collected and clustered (2-D histogram, then a
   refined mean per cluster). A *translation* of the crystal is a vector that
   nearly every column has a neighbour at; a vector between two sublattices
   (e.g. metal -> chalcogen in a TMD) is carried by one sublattice only, so its
   *occupancy* (fraction of columns that have it) is ~1/K for a K-site basis
   instead of ~1. Clusters with occupancy >= ``min_occupancy`` and >= 70 % of
   the best one are translations; ``u`` is the shortest, ``v`` the shortest
   that is not collinear with it (in 2-D these successive minima always form a
   primitive basis). ``method="fft"`` takes the two shortest strong peaks of
   the image's power spectrum instead (or of a rendering of the points).
2. **Basis sites.** The fractional coordinates of all columns modulo 1 cluster
   at the K basis sites of the cell (found on a periodic 2-D histogram).
3. **Least squares.** Every column gets integer indices ``n = round(f - b_k)``
   and the linear model ``p = origin + n_i u + n_j v + offset_k`` is solved for
   ``origin``, ``u``, ``v`` and the site offsets over *all* columns, first in a
   central disc and then everywhere, dropping outliers (interstitials,
   spurious peaks) at each pass. A uniform strain or a linear scan drift is an
   affine map, so the result is the effective (strained/sheared) lattice.
4. **Cell boundaries.** The cell origin is shifted, along each axis, into the
   middle of the largest gap between basis sites, so no column sits near a
   cell edge and jitter cannot move a column into the wrong cell.

Conventions: positions and vectors are ``(row, col)`` pixels; the reduced
basis satisfies ``|u| <= |v|``, ``u . v <= 0`` (angle 90-120 degrees, e.g. 120
degrees for a hexagonal lattice) and ``u_row v_col - u_col v_row > 0``.
A cell ``(i, j)`` is the parallelogram ``origin + s u + t v`` with
``i <= s < i + 1`` and ``j <= t < j + 1``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import MotifLabError

__all__ = [
    "Lattice",
    "find_lattice",
    "index_cells",
    "VoronoiCells",
    "voronoi_cells",
    "lattice_equivalent",
    "rotation_order",
]

_NO_LATTICE_HINT = (
    "If the sample is not periodic (amorphous, quasicrystalline, a tiling without "
    "translation order), use motiflab.lattice.voronoi_cells(positions) or "
    "build_hierarchy(..., cells='voronoi') instead; if it is periodic, pass the "
    "lattice vectors yourself (Lattice(u=..., v=...)) or try method='fft' with the image."
)


# --------------------------------------------------------------------------- data class


@dataclass
class Lattice:
    """A 2-D Bravais lattice with a basis, in pixel coordinates.

    Parameters
    ----------
    u, v : ndarray, shape (2,)
        Primitive translation vectors ``(row, col)`` in pixels.
    origin : ndarray, shape (2,)
        Corner of cell ``(0, 0)`` in pixels.
    basis : ndarray, shape (K, 2), optional
        Fractional coordinates (in ``[0, 1)``, relative to ``origin``) of the K
        sites of the cell, most populated first. Empty when unknown.
    residual_px : float
        Root-mean-square residual of the least-squares fit (pixels); ``nan`` if
        the lattice was not fitted to positions.
    n_used : int
        Number of columns that entered the final fit.
    method : str
        How the lattice was found (``"neighbors"``, ``"fft"``, ``"given"``).
    """

    u: np.ndarray
    v: np.ndarray
    origin: np.ndarray = field(default_factory=lambda: np.zeros(2))
    basis: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    residual_px: float = float("nan")
    n_used: int = 0
    method: str = "given"

    def __post_init__(self) -> None:
        self.u = np.asarray(self.u, dtype=float).reshape(2)
        self.v = np.asarray(self.v, dtype=float).reshape(2)
        self.origin = np.asarray(self.origin, dtype=float).reshape(2)
        self.basis = np.asarray(self.basis, dtype=float).reshape(-1, 2)
        if not (np.all(np.isfinite(self.u)) and np.all(np.isfinite(self.v))):
            raise MotifLabError("lattice vectors u and v must be finite numbers (pixels)")
        if abs(_cross(self.u, self.v)) < 1e-6 * max(1e-12, np.dot(self.u, self.u) + np.dot(self.v, self.v)):
            raise MotifLabError(
                f"lattice vectors u={self.u.tolist()} and v={self.v.tolist()} are collinear; "
                "give two non-parallel vectors"
            )

    # -- geometry -----------------------------------------------------------------
    @property
    def matrix(self) -> np.ndarray:
        """2x2 matrix with columns ``u`` and ``v``: ``position = origin + matrix @ (s, t)``."""
        return np.column_stack([self.u, self.v])

    @property
    def lengths(self) -> tuple[float, float]:
        """``(|u|, |v|)`` in pixels."""
        return float(np.hypot(*self.u)), float(np.hypot(*self.v))

    @property
    def angle_deg(self) -> float:
        """Angle between ``u`` and ``v`` in degrees."""
        c = np.dot(self.u, self.v) / (np.hypot(*self.u) * np.hypot(*self.v))
        return float(np.degrees(np.arccos(np.clip(c, -1, 1))))

    @property
    def cell_area(self) -> float:
        """Area of one cell in pixels squared."""
        return float(abs(_cross(self.u, self.v)))

    @property
    def kind(self) -> str:
        """``"hexagonal"``, ``"square"``, ``"rectangular"`` or ``"oblique"`` (5 % / 3 degree tolerance)."""
        a, b = self.lengths
        ang = self.angle_deg
        same = abs(a - b) <= 0.05 * max(a, b)
        if same and (abs(ang - 60) < 3 or abs(ang - 120) < 3):
            return "hexagonal"
        if abs(ang - 90) < 3:
            return "square" if same else "rectangular"
        return "oblique"

    def to_fractional(self, positions) -> np.ndarray:
        """Fractional lattice coordinates ``(s, t)`` of pixel positions (N, 2)."""
        p = np.asarray(positions, dtype=float).reshape(-1, 2)
        return (p - self.origin) @ np.linalg.inv(self.matrix).T

    def to_pixels(self, st) -> np.ndarray:
        """Pixel positions of fractional (or integer) lattice coordinates (N, 2)."""
        st = np.asarray(st, dtype=float).reshape(-1, 2)
        return self.origin + st @ self.matrix.T

    def cell_centers(self, ij) -> np.ndarray:
        """Pixel centres of cells ``(i, j)`` (N, 2)."""
        return self.to_pixels(np.asarray(ij, dtype=float).reshape(-1, 2) + 0.5)

    def site_positions(self, ij) -> np.ndarray:
        """Expected pixel positions of all basis sites of cells ``ij``; shape (N, K, 2)."""
        ij = np.asarray(ij, dtype=float).reshape(-1, 2)
        basis = self.basis if len(self.basis) else np.array([[0.5, 0.5]])
        st = ij[:, None, :] + basis[None, :, :]
        return self.origin + st @ self.matrix.T

    def rotations(self, tol: float = 0.05) -> list[np.ndarray]:
        """Rotations of the lattice that map it onto itself, in index coordinates.

        Parameters
        ----------
        tol : float
            Relative tolerance on ``M R M^-1`` being a proper rotation (covers a
            few % strain).

        Returns
        -------
        list of ndarray (2, 2) int
            Integer matrices ``R`` acting on ``(di, dj)`` column vectors, one per
            rotation angle in ``0, 60, 90, ... 300`` degrees that is a symmetry of
            the (metric of the) lattice: 6 for hexagonal, 4 for square, 2 otherwise.
        """
        m = self.matrix
        minv = np.linalg.inv(m)
        out = []
        for ang in (0, 60, 90, 120, 180, 240, 270, 300):
            t = math.radians(ang)
            rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
            r_int = np.rint(minv @ rot @ m)
            back = m @ r_int @ minv
            if np.max(np.abs(back - rot)) <= tol * 2 and round(np.linalg.det(r_int)) == 1:
                out.append(r_int.astype(np.int64))
        return out

    def neighbor_offsets(self, tol: float = 0.05) -> list[tuple[int, int]]:
        """Index offsets ``(di, dj)`` of the shortest lattice vectors (within ``tol``).

        Four (``±u, ±v``) for square/rectangular/oblique lattices, six for a
        hexagonal one (adds ``±(u + v)`` or ``±(u - v)``, whichever is short).
        """
        cands = [(1, 0), (0, 1), (1, 1), (1, -1)]
        lens = [float(np.hypot(*(a * self.u + b * self.v))) for a, b in cands]
        lmin = min(lens[:2])
        keep = [(a, b) for (a, b), ln in zip(cands, lens) if ln <= lmin * (1 + tol) or (a, b) in ((1, 0), (0, 1))]
        out = []
        for a, b in keep:
            out += [(a, b), (-a, -b)]
        return out

    def to_json(self) -> dict:
        """JSON-ready dictionary (plain floats and lists)."""
        return {
            "u": [float(x) for x in self.u],
            "v": [float(x) for x in self.v],
            "origin": [float(x) for x in self.origin],
            "basis": [[float(a), float(b)] for a, b in self.basis],
            "lengths_px": [float(x) for x in self.lengths],
            "angle_deg": float(self.angle_deg),
            "kind": self.kind,
            "residual_px": None if not np.isfinite(self.residual_px) else float(self.residual_px),
            "method": self.method,
        }


def _cross(a, b) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def lattice_equivalent(u1, v1, u2, v2, rtol: float = 0.005, atol_deg: float = 0.2) -> tuple[bool, float, float]:
    """Whether two bases span the same lattice, with the worst length / angle error.

    Each vector of the first basis is matched to the nearest of ``±u2, ±v2,
    ±(u2 + v2), ±(u2 - v2)``.

    Parameters
    ----------
    u1, v1, u2, v2 : array_like, shape (2,)
        The two bases.
    rtol : float
        Largest accepted relative length error.
    atol_deg : float
        Largest accepted direction error in degrees.

    Returns
    -------
    ok : bool
        Both vectors matched within the tolerances.
    worst_rel_length : float
        Largest relative length difference among the matched pairs.
    worst_angle_deg : float
        Largest direction difference (degrees) among the matched pairs.
    """
    u2 = np.asarray(u2, float)
    v2 = np.asarray(v2, float)
    cands = [s * w for w in (u2, v2, u2 + v2, u2 - v2) for s in (1, -1)]
    worst_l = worst_a = 0.0
    for w in (np.asarray(u1, float), np.asarray(v1, float)):
        best = min(cands, key=lambda c: float(np.hypot(*(c - w))))
        rel = abs(np.hypot(*w) - np.hypot(*best)) / np.hypot(*best)
        ang = abs(math.degrees(math.atan2(_cross(best, w), float(np.dot(best, w)))))
        worst_l, worst_a = max(worst_l, rel), max(worst_a, ang)
    return bool(worst_l <= rtol and worst_a <= atol_deg), float(worst_l), float(worst_a)


# --------------------------------------------------------------------------- validation


def rotation_order(u, v, tol: float = 0.06) -> int:
    """Largest ``n`` in (6, 4, 3, 2) whose rotation by ``360° / n`` maps the lattice onto itself.

    Parameters
    ----------
    u, v : array_like, shape (2,)
        Two lattice vectors (px, any basis of the lattice).
    tol : float
        Allowed misfit of the rotated vectors, as a fraction of ``|u|`` and in
        lattice coordinates (a few % of strain or scan distortion still counts).

    Returns
    -------
    int
        6 for a hexagonal lattice, 4 for a square one, 2 otherwise (every
        lattice has the 180° rotation).
    """
    B = np.column_stack([np.asarray(u, float), np.asarray(v, float)])
    if B.shape != (2, 2) or not np.all(np.isfinite(B)) or abs(np.linalg.det(B)) < 1e-9:
        raise MotifLabError(f"u and v must be two non-collinear 2-vectors, got {u!r} and {v!r}.")
    Binv = np.linalg.inv(B)
    for n in (6, 4, 3):
        a = 2.0 * np.pi / n
        R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        frac = Binv @ R @ B  # the rotated basis in lattice coordinates: integers if a symmetry
        if np.max(np.abs(frac - np.round(frac))) < tol:
            return n
    return 2


def _check_positions(positions, name="positions", min_n=1) -> np.ndarray:
    try:
        p = np.asarray(positions, dtype=float)
    except (TypeError, ValueError):
        raise MotifLabError(f"{name} must be a numeric (N, 2) array of (row, col) pixels") from None
    if p.ndim != 2 or p.shape[1] != 2:
        raise MotifLabError(
            f"{name} must have shape (N, 2) with (row, col) pixel coordinates, got shape {p.shape}"
        )
    if not np.all(np.isfinite(p)):
        bad = int(np.sum(~np.all(np.isfinite(p), axis=1)))
        raise MotifLabError(f"{name} has {bad} rows with NaN or inf; drop them before indexing")
    if len(p) < min_n:
        raise MotifLabError(
            f"too few columns ({len(p)}) to find a lattice: need at least {min_n}. Use a larger "
            "field of view, or give the lattice vectors yourself (Lattice(u=..., v=...))."
        )
    return p


# --------------------------------------------------------------------------- neighbour vectors


def _nn_distance(tree: cKDTree, p: np.ndarray) -> float:
    d, _ = tree.query(p, k=2)
    d1 = d[:, 1]
    d1 = d1[d1 > 1e-9]
    if len(d1) == 0:
        raise MotifLabError("all positions coincide; there is nothing to index")
    return float(np.median(d1))


def _sources(n_all: int, max_sources: int = 4000) -> np.ndarray:
    """Deterministic strided subset of column indices used for neighbour statistics."""
    step = max(1, int(math.ceil(n_all / max_sources)))
    return np.arange(0, n_all, step)


def _translation_candidates(p: np.ndarray, tree: cKDTree, d_nn: float, n_neighbors: int):
    """Cluster neighbour difference vectors; return (vectors, occupancies).

    Occupancy statistics from a few thousand columns are ample, so large inputs
    are strided (deterministically) down to a few thousand source columns.
    """
    n_all = len(p)
    srcs = _sources(n_all)
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
    centres = _merge_close(centres[np.argsort(-pk_val, kind="stable")], r_tol)
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


def _merge_close(points: np.ndarray, radius: float, metric: np.ndarray | None = None) -> np.ndarray:
    """Greedy de-duplication: keep a point unless a kept one lies within ``radius``.

    ``metric`` (2x2) maps the points to the space where distances are measured;
    with it, differences are also wrapped to [-0.5, 0.5) (periodic fractional
    coordinates).
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


def _reduce_basis(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lagrange-Gauss reduction plus the sign/handedness convention of the module.

    Result: ``|u| <= |v|``, ``u . v <= 0``, ``cross(u, v) > 0``; among the
    equivalent reduced bases (square/hexagonal lattices have several) the one
    whose ``u`` points closest to the +col axis, so the choice is stable.
    """
    u, v = np.asarray(u, float).copy(), np.asarray(v, float).copy()
    for _ in range(100):
        if np.dot(v, v) < np.dot(u, u):
            u, v = v, u
        m = round(float(np.dot(u, v) / np.dot(u, u)))
        if m == 0:
            break
        v = v - m * u
    area = abs(_cross(u, v))
    lu, lv = np.hypot(*u), np.hypot(*v)
    short = [s * w for w in (u, v, u + v, u - v) for s in (1, -1)]
    best = None
    for a in short:
        if abs(np.hypot(*a) - lu) > 0.02 * lu:
            continue
        for b in short:
            if abs(np.hypot(*b) - lv) > 0.02 * lv:
                continue
            c = _cross(a, b)
            if c <= 0 or abs(c - area) > 1e-6 * area or np.dot(a, b) > 1e-9 * lu * lv:
                continue
            key = (round(abs(math.atan2(a[0], a[1])), 6), -a[1], np.dot(b, b))
            if best is None or key < best[0]:
                best = (key, a, b)
    if best is None:  # cannot happen for a reduced basis; keep a valid fallback
        if np.dot(u, v) > 0:
            v = -v
        if _cross(u, v) < 0:
            u, v = -u, -v
        return u, v
    return best[1].copy(), best[2].copy()


# --------------------------------------------------------------------------- basis sites and fit


def _find_sites(frac: np.ndarray, m: np.ndarray, tol_px: float, nbins: int = 24):
    """Basis sites from fractional coordinates modulo 1 (periodic histogram)."""
    f = frac - np.floor(frac)
    hist, _, _ = np.histogram2d(f[:, 0], f[:, 1], bins=nbins, range=[[0, 1], [0, 1]])
    sm = ndimage.uniform_filter(hist, size=3, mode="wrap") * 9
    pk = (sm == ndimage.maximum_filter(sm, size=5, mode="wrap")) & (sm >= 0.25 * sm.max())
    idx = np.column_stack(np.nonzero(pk))
    sites = (idx + 0.5) / nbins
    counts = sm[pk]
    order = np.argsort(-counts, kind="stable")
    sites = _merge_close(sites[order], tol_px, metric=m)
    # refine each site by the wrapped mean of the points near it, merge close ones
    refined: list[np.ndarray] = []
    for s in sites:
        for _ in range(3):
            d = f - s
            d -= np.rint(d)
            dist = np.hypot(*(d @ m.T).T)
            near = dist < tol_px
            if not np.any(near):
                break
            s = (s + d[near].mean(axis=0)) % 1.0
        if not any(np.hypot(*(_wrap(s - r) @ m.T)) < tol_px for r in refined):
            refined.append(s)
    return np.array(refined).reshape(-1, 2)


def _wrap(d: np.ndarray) -> np.ndarray:
    return d - np.rint(d)


def _assign_sites(frac: np.ndarray, sites: np.ndarray, m: np.ndarray, tol_px: float):
    """Nearest basis site of each point (torus metric in pixels); -1 when too far."""
    best = np.full(len(frac), -1, dtype=np.int64)
    bestd = np.full(len(frac), np.inf)
    for k, s in enumerate(sites):
        d = _wrap(frac - s) @ m.T
        dist = np.hypot(d[:, 0], d[:, 1])
        better = dist < bestd
        best[better] = k
        bestd[better] = dist[better]
    best[bestd > tol_px] = -1
    return best, bestd


def _lsq_fit(p: np.ndarray, n_idx: np.ndarray, site: np.ndarray, n_sites: int):
    """Solve p = o + n_i u + n_j v + offset_site (offset_0 = 0) by linear least squares."""
    cols = [np.ones(len(p)), n_idx[:, 0].astype(float), n_idx[:, 1].astype(float)]
    for k in range(1, n_sites):
        cols.append((site == k).astype(float))
    a = np.column_stack(cols)
    beta, *_ = np.linalg.lstsq(a, p, rcond=None)
    resid = p - a @ beta
    o, u, v = beta[0], beta[1], beta[2]
    offsets = np.vstack([np.zeros(2), beta[3:]]) if n_sites > 1 else np.zeros((1, 2))
    return o, u, v, offsets, resid


def _refine(p: np.ndarray, u: np.ndarray, v: np.ndarray, d_nn: float):
    """Basis detection + staged, outlier-rejecting least squares over all columns."""
    tol_px = 0.3 * d_nn
    centre = np.median(p, axis=0)
    r = np.hypot(*(p - centre).T)
    # start near the middle, then use everything: a small error in the initial
    # vectors cannot accumulate into a wrong integer index far from the centre
    r_stage = max(12 * max(np.hypot(*u), np.hypot(*v)), float(np.sort(r)[min(len(r) - 1, 200)]))
    o = p[np.argmin(r)].copy()
    everyone = np.ones(len(p), bool)
    stages = [r <= r_stage, everyone, everyone]
    inl = everyone.copy()
    sites = np.zeros((0, 2))
    site = np.full(len(p), -1, np.int64)
    rn = np.full(len(p), np.inf)
    for s_i, stage in enumerate(stages):
        m = np.column_stack([u, v])
        frac = (p - o) @ np.linalg.inv(m).T
        use = stage & inl
        cand = _find_sites(frac[use], m, tol_px)
        if len(cand) == 0:
            break
        site_c, _ = _assign_sites(frac, cand, m, tol_px)
        n_idx = np.rint(frac - cand[np.maximum(site_c, 0)]).astype(np.int64)
        use = stage & (site_c >= 0) & (inl if s_i > 0 else everyone)
        if use.sum() < 3 + len(cand):
            break
        sites, site = cand, site_c
        o, u, v, offs, _ = _lsq_fit(p[use], n_idx[use], site[use], len(sites))
        m = np.column_stack([u, v])
        # residual of every column under the fitted model (outliers included)
        resid = p - (o + n_idx @ m.T + offs[np.maximum(site, 0)])
        rn = np.hypot(resid[:, 0], resid[:, 1])
        rms = float(np.sqrt(np.mean(rn[use] ** 2)))
        inl = (site >= 0) & (rn <= max(3 * rms, 0.05 * d_nn)) & (rn <= tol_px)
        # site offsets as fractions relative to o (site 0 sits at o)
        sites = (offs @ np.linalg.inv(m).T) % 1.0
    rms = float(np.sqrt(np.mean(rn[inl] ** 2))) if inl.any() else float("inf")
    counts = np.array([np.sum(inl & (site == k)) for k in range(len(sites))])
    return o, u, v, sites, counts, rms, inl


def _place_origin(o, u, v, sites, p):
    """Shift the cell corner into the largest gap between basis sites on each axis."""
    shift = np.zeros(2)
    for ax in range(2):
        vals = np.sort(sites[:, ax] % 1.0)
        if len(vals) == 0:
            shift[ax] = 0.5
            continue
        gaps = np.diff(np.concatenate([vals, vals[:1] + 1.0]))
        g = int(np.argmax(gaps))
        shift[ax] = (vals[g] + gaps[g] / 2.0) % 1.0
    m = np.column_stack([u, v])
    origin = o + m @ shift
    basis = (sites - shift) % 1.0
    # integer shift so that the smallest cell index over the columns is (0, 0)
    frac = (p - origin) @ np.linalg.inv(m).T
    lo = np.floor(frac.min(axis=0))
    origin = origin + m @ lo
    return origin, basis


# --------------------------------------------------------------------------- fft method


def _fft_vectors(image: np.ndarray, max_peaks: int = 40, max_period: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Real-space basis from the two shortest strong reciprocal peaks of an image.

    ``max_period`` (px) ignores peaks of longer periods: a hole, a thickness
    gradient or contamination puts strong power at low frequencies that is no
    lattice.
    """
    img = np.asarray(image, dtype=float)
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
        raise MotifLabError("the image's power spectrum has fewer than two lattice peaks. " + _NO_LATTICE_HINT)
    gl = np.hypot(*gs.T)
    order = np.argsort(gl)
    g1 = gs[order[0]]
    g2 = None
    for i in order[1:]:
        if abs(_cross(g1, gs[i])) > 0.3 * gl[order[0]] * gl[i]:
            g2 = gs[i]
            break
    if g2 is None:
        raise MotifLabError("the image's power spectrum has no two non-collinear peaks. " + _NO_LATTICE_HINT)
    gmat = np.vstack([g1, g2])  # rows g_a; real basis columns r_b with g_a . r_b = delta_ab
    m = np.linalg.inv(gmat)
    return _reduce_basis(m[:, 0], m[:, 1])


def _points_image(p: np.ndarray, d_nn: float):
    """Render points as small Gaussians (about 8 px per nearest-neighbour distance)."""
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


# --------------------------------------------------------------------------- public API


def find_lattice(
    positions=None,
    *,
    method: str = "neighbors",
    image=None,
    n_neighbors: int = 24,
    min_occupancy: float = 0.4,
    refine: bool = True,
) -> Lattice:
    """Find the primitive lattice vectors of a quasi-periodic set of columns.

    Parameters
    ----------
    positions : array_like, shape (N, 2)
        Column positions ``(row, col)`` in pixels. May be ``None`` only with
        ``method="fft"`` and an ``image`` (then no origin/basis is fitted).
    method : {"neighbors", "fft"}
        ``"neighbors"``: cluster nearest-neighbour difference vectors (robust to
        missing columns and a few % of spurious ones). ``"fft"``: the two
        shortest strong peaks of the power spectrum of ``image`` (or of the
        points rendered as an image when no image is given).
    image : array_like, optional
        Micrograph for ``method="fft"``, in the same pixel frame as ``positions``.
    n_neighbors : int
        Neighbours per column whose difference vectors are clustered; must reach
        the second shell of a basis (24 covers bases of up to ~4 sites).
    min_occupancy : float
        Smallest fraction of columns that must carry a translation vector.
    refine : bool
        Least-squares refinement over all columns (recommended).

    Returns
    -------
    Lattice
        With ``u``, ``v`` (reduced, see module notes), ``origin`` placed so
        columns sit well inside cells, fractional ``basis`` sites and the fit's
        RMS ``residual_px``.

    Raises
    ------
    MotifLabError
        Too few columns, non-finite positions, or no lattice (the columns are not
        periodic, or too disordered) -- the message suggests Voronoi cells.
    """
    if method not in ("neighbors", "fft"):
        raise MotifLabError(f"method must be 'neighbors' or 'fft', got {method!r}")
    if positions is None:
        if method != "fft" or image is None:
            raise MotifLabError("give the column positions (N, 2), or method='fft' with an image")
        img = np.asarray(image, dtype=float)
        if img.ndim != 2 or not np.all(np.isfinite(img)):
            raise MotifLabError("image must be a finite 2-D array")
        u, v = _fft_vectors(img)
        return Lattice(u=u, v=v, method="fft")
    p = _check_positions(positions, min_n=8)
    tree = cKDTree(p)
    d_nn = _nn_distance(tree, p[_sources(len(p))])
    if method == "fft":
        if image is not None:
            img = np.asarray(image, dtype=float)
            if img.ndim != 2 or not np.all(np.isfinite(img)):
                raise MotifLabError("image must be a finite 2-D array")
            u, v = _fft_vectors(img)
        else:
            img, scale = _points_image(p, d_nn)
            u, v = _fft_vectors(img)
            u, v = u / scale, v / scale
    else:
        vecs, occs = _translation_candidates(p, tree, d_nn, n_neighbors)
        if len(vecs) == 0 or occs.max() < min_occupancy:
            best = 0.0 if len(occs) == 0 else float(occs.max())
            raise MotifLabError(
                f"no lattice found: no neighbour vector is shared by at least "
                f"{min_occupancy:.0%} of the {len(p)} columns (best {best:.0%}). " + _NO_LATTICE_HINT
            )
        keep = (occs >= min_occupancy) & (occs >= 0.7 * occs.max())
        t = vecs[keep]
        tl = np.hypot(*t.T)
        order = np.argsort(tl)
        u = t[order[0]]
        v = None
        for i in order[1:]:
            if abs(_cross(u, t[i])) > 0.3 * tl[order[0]] * tl[i]:
                v = t[i]
                break
        if v is None:
            raise MotifLabError(
                "no lattice found: the shared neighbour vectors are all parallel (a 1-D "
                "stripe pattern?). " + _NO_LATTICE_HINT
            )
        u, v = _reduce_basis(u, v)
    if not refine:
        return Lattice(u=u, v=v, origin=np.median(p, axis=0), method=method)
    o, u2, v2, sites, counts, rms, inl = _refine(p, u, v, d_nn)
    if len(sites) == 0 or inl.sum() < max(8, 0.5 * len(p)) or not np.isfinite(rms) or rms > 0.2 * d_nn:
        raise MotifLabError(
            f"no lattice found: only {int(inl.sum())} of {len(p)} columns fit a lattice "
            f"(RMS residual {rms:.2f} px vs nearest-neighbour distance {d_nn:.2f} px). " + _NO_LATTICE_HINT
        )
    # keep the reduced convention after the fit (the fit keeps u, v's identity)
    u3, v3 = _reduce_basis(u2, v2)
    if not (np.allclose(u3, u2) and np.allclose(v3, v2)):
        # express site offsets in the new basis
        m_old = np.column_stack([u2, v2])
        m_new = np.column_stack([u3, v3])
        sites = ((sites @ m_old.T) @ np.linalg.inv(m_new).T) % 1.0
        u2, v2 = u3, v3
    order = np.argsort(-counts, kind="stable")
    sites = sites[order]
    origin, basis = _place_origin(o, u2, v2, sites, p[inl])
    return Lattice(
        u=u2, v=v2, origin=origin, basis=basis, residual_px=rms, n_used=int(inl.sum()), method=method
    )


def index_cells(positions, lattice: Lattice) -> np.ndarray:
    """Integer cell index ``(i, j)`` of every position.

    Parameters
    ----------
    positions : array_like, shape (N, 2)
        ``(row, col)`` pixels.
    lattice : Lattice
        From :func:`find_lattice` (or built by hand).

    Returns
    -------
    ndarray, shape (N, 2), int64
        ``floor`` of the fractional coordinates relative to ``lattice.origin``.
    """
    if not isinstance(lattice, Lattice):
        raise MotifLabError("lattice must be a motiflab.lattice.Lattice (see find_lattice)")
    p = _check_positions(positions)
    return np.floor(lattice.to_fractional(p)).astype(np.int64)


# --------------------------------------------------------------------------- Voronoi


@dataclass
class VoronoiCells:
    """Voronoi tessellation of the columns: one cell per column.

    Attributes
    ----------
    positions : ndarray (N, 2)
        The generating points.
    edges : ndarray (E, 2) int
        Pairs ``a < b`` of columns whose cells share a side of non-zero length,
        without the long pairs along the convex hull.
    regions : list of ndarray or None
        Polygon vertices ``(row, col)`` of each cell, ``None`` where the cell is
        unbounded (on the hull) or ``with_polygons=False``.
    areas : ndarray (N,)
        Polygon areas in px^2 (``nan`` for unbounded cells).
    bounded : ndarray (N,) bool
        Cell is closed and not on the convex hull.
    """

    positions: np.ndarray
    edges: np.ndarray
    regions: list
    areas: np.ndarray
    bounded: np.ndarray

    def adjacency(self):
        """Symmetric ``scipy.sparse.csr_matrix`` of the cell adjacency."""
        from scipy.sparse import coo_matrix

        n = len(self.positions)
        e = self.edges
        data = np.ones(2 * len(e), dtype=np.int8)
        return coo_matrix(
            (data, (np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]]))), shape=(n, n)
        ).tocsr()

    def neighbor_counts(self) -> np.ndarray:
        """Number of Voronoi neighbours of each cell."""
        return np.bincount(self.edges.ravel(), minlength=len(self.positions))


def voronoi_cells(positions, *, max_edge_factor: float = 2.0, with_polygons: bool = True) -> VoronoiCells:
    """Voronoi cells of the columns, for samples without a lattice.

    Parameters
    ----------
    positions : array_like, shape (N, 2)
        ``(row, col)`` pixels.
    max_edge_factor : float
        Neighbour pairs farther apart than this times the median neighbour
        distance are dropped (they are artefacts of the convex hull).
    with_polygons : bool
        Also compute each cell's polygon and area (slower for large N).

    Returns
    -------
    VoronoiCells

    Raises
    ------
    MotifLabError
        Fewer than 4 points, or all points collinear.
    """
    from scipy.spatial import Delaunay, QhullError, Voronoi

    p = _check_positions(positions, min_n=4)
    span = p.max(axis=0) - p.min(axis=0)
    if np.linalg.matrix_rank(p - p.mean(axis=0), tol=1e-9 * max(float(span.max()), 1e-12)) < 2:
        raise MotifLabError(
            "cannot tessellate the columns: they are collinear or coincide; give a 2-D set of positions"
        )
    try:
        vor = Voronoi(p)
        hull_idx = np.unique(Delaunay(p).convex_hull)
    except QhullError:
        raise MotifLabError(
            "cannot tessellate the columns: they are collinear or coincide; give a 2-D set of positions"
        ) from None
    n = len(p)
    # neighbours = pairs sharing a Voronoi side of non-zero length (a Delaunay
    # triangulation of a degenerate set -- e.g. a perfect honeycomb, whose
    # hexagons are cocircular -- would add arbitrary diagonals)
    rp = np.asarray(vor.ridge_points, dtype=np.int64)
    rv = vor.ridge_vertices
    ln_pts = np.hypot(*(p[rp[:, 0]] - p[rp[:, 1]]).T)
    scale = float(np.median(ln_pts))
    keep = np.ones(len(rp), bool)
    for k, verts in enumerate(rv):
        if -1 in verts:
            continue  # open side on the hull: judged by the point distance below
        a, b = vor.vertices[verts[0]], vor.vertices[verts[1]]
        if np.hypot(*(a - b)) <= 1e-6 * scale:
            keep[k] = False
    keep &= ln_pts <= max_edge_factor * scale
    e = np.sort(rp[keep], axis=1)
    e = np.unique(e, axis=0)
    hull = np.zeros(n, bool)
    hull[hull_idx] = True
    regions: list = [None] * n
    areas = np.full(n, np.nan)
    bounded = ~hull
    if with_polygons:
        for i, ridx in enumerate(vor.point_region):
            reg = vor.regions[ridx]
            if not reg or -1 in reg:
                bounded[i] = False
                continue
            poly = vor.vertices[reg]
            regions[i] = poly
            x, y = poly[:, 0], poly[:, 1]
            areas[i] = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return VoronoiCells(positions=p, edges=e.astype(np.int64), regions=regions, areas=areas, bounded=bounded)
