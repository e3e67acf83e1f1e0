"""Basis sites and the least-squares lattice fit (steps 2-4 of :mod:`motiflab.lattice`).

Given approximate vectors ``u``, ``v``, :func:`fit_lattice` finds the basis
sites on the torus of fractional coordinates, gives every column integer
indices, solves ``p = origin + n_i u + n_j v + offset_k`` over all columns
(central disc first, then everywhere, dropping outliers each pass) and moves
the cell corner into the largest gap between sites so that no column sits on
a cell edge.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import MotifLabError
from .lattice_geometry import Lattice
from .lattice_vectors import NO_LATTICE_HINT, merge_close, reduce_basis

__all__ = ["fit_lattice"]


def fit_lattice(p: np.ndarray, u: np.ndarray, v: np.ndarray, d_nn: float, method: str) -> Lattice:
    """Refine approximate vectors on all columns and place the cells.

    Parameters
    ----------
    p : ndarray (N, 2)
        Column positions (px).
    u, v : ndarray (2,)
        Approximate reduced basis.
    d_nn : float
        Median nearest-neighbour distance (px); sets the site tolerance.
    method : str
        Recorded in the result (``"neighbors"`` or ``"fft"``).

    Returns
    -------
    Lattice
        Reduced ``u``, ``v``, ``origin`` in the largest gap between sites,
        ``basis`` most populated first, RMS ``residual_px`` and ``n_used``.

    Raises
    ------
    MotifLabError
        Fewer than half of the columns fit, or the residual is above a fifth of
        ``d_nn``.
    """
    o, u2, v2, sites, counts, rms, inl = _refine(p, u, v, d_nn)
    if len(sites) == 0 or inl.sum() < max(8, 0.5 * len(p)) or not np.isfinite(rms) or rms > 0.2 * d_nn:
        raise MotifLabError(
            f"no lattice found: only {int(inl.sum())} of {len(p)} columns fit a lattice "
            f"(RMS residual {rms:.2f} px vs nearest-neighbour distance {d_nn:.2f} px). " + NO_LATTICE_HINT
        )
    # keep the reduced convention after the fit (the fit keeps u, v's identity)
    u3, v3 = reduce_basis(u2, v2)
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
    sites = merge_close(sites[order], tol_px, metric=m)
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
    """Fractional differences wrapped to [-0.5, 0.5] (nearest periodic image)."""
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
