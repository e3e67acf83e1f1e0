"""The :class:`Lattice` type and comparisons of lattices.

A :class:`Lattice` is two primitive vectors ``u``, ``v``, a cell origin and
the fractional basis sites, all in ``(row, col)`` pixels; it converts between
pixels and lattice coordinates and knows its own rotations and shortest
neighbour offsets. :func:`lattice_equivalent` tells whether two bases span
the same lattice and :func:`rotation_order` which rotations map one onto
itself. How a lattice is found from columns is in :mod:`motiflab.lattice`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import MotifLabError

__all__ = ["Lattice", "lattice_equivalent", "rotation_order", "cross"]


def cross(a, b) -> float:
    """z-component of the cross product of two 2-vectors.

    Parameters
    ----------
    a, b : array_like, shape (2,)

    Returns
    -------
    float
        ``a[0] * b[1] - a[1] * b[0]``: the signed area they span.
    """
    return float(a[0] * b[1] - a[1] * b[0])


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
        if abs(cross(self.u, self.v)) < 1e-6 * max(1e-12, np.dot(self.u, self.u) + np.dot(self.v, self.v)):
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
        return float(abs(cross(self.u, self.v)))

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
    from ._validation import check_vector2

    u1, v1, u2, v2 = (check_vector2(x, n) for x, n in ((u1, "u1"), (v1, "v1"), (u2, "u2"), (v2, "v2")))
    cands = [s * w for w in (u2, v2, u2 + v2, u2 - v2) for s in (1, -1)]
    worst_l = worst_a = 0.0
    for w in (np.asarray(u1, float), np.asarray(v1, float)):
        best = min(cands, key=lambda c: float(np.hypot(*(c - w))))
        rel = abs(np.hypot(*w) - np.hypot(*best)) / np.hypot(*best)
        ang = abs(math.degrees(math.atan2(cross(best, w), float(np.dot(best, w)))))
        worst_l, worst_a = max(worst_l, rel), max(worst_a, ang)
    return bool(worst_l <= rtol and worst_a <= atol_deg), float(worst_l), float(worst_a)


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
    from ._validation import check_vector2

    B = np.column_stack([check_vector2(u, "u"), check_vector2(v, "v")])
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
