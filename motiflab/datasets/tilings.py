"""Binary-unit tilings with a known, deliberately non-uniform level-2 distribution.

A synthetic stand-in for the paper's Mo-V-Te-Nb oxide (POM): units ("empty"
or "filled" pentagons, plus a few "V"-centred ones) on a square grid whose
2 x 2 blocks are drawn independently from a chosen distribution over the 16
block patterns. Because the blocks are independent, the ground truth is exact:

* the distribution of non-overlapping ("disjoint") level-2 windows is
  ``level2_probs``, with entropy ``entropy_level2_bits``;
* non-overlapping level-3 blocks (2 x 2 of level-2 blocks) are products of
  four independent level-2 blocks, so their entropy is exactly
  ``4 * entropy_level2_bits``.

The default distribution puts 85 % of the mass on six "preferred" patterns
(the four single-filled blocks and the two diagonal pairs) and spreads the
rest evenly: 6 motifs then cover >= 83 % of the level-2 windows as in the
paper's Fig. 4F, and about 37 % of the units are filled (paper: 36.3 %
filled, 59.4 % empty, 4.3 % V).

Geometry (:func:`make_pentagon_tiling`): unit ``(a, b)`` of the grid sits at
``spacing * (a, b)`` displaced as in a snub-square tiling -- the plaquettes
with ``(i + j)`` even are squares rotated alternately by ``±theta``, and with
``theta = 15`` degrees the others become pairs of equilateral triangles. The
Voronoi cells of these centres are the pentagons of a Cairo (type-4
monohedral) pentagonal tiling, the tiling the paper reports. The whole
arrangement is rotated by ``rotation`` degrees and positions can be jittered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..assembly import shannon_entropy
from ..errors import MotifLabError
from ._checks import check_seed
from ._optics import render as render_columns  # make_pentagon_tiling has a `render` flag
from ._shot_noise import finish_image
from ._synthetic_image import ColumnTruth, SyntheticImage

__all__ = [
    "PREFERRED_LEVEL2",
    "preferred_level2_probs",
    "SquareUnits",
    "make_square_units",
    "PentagonTiling",
    "make_pentagon_tiling",
    "snub_positions",
]

#: The six default preferred 2x2 patterns (codes TL*8 + TR*4 + BL*2 + BR, 1 = filled):
#: one filled corner (8, 4, 2, 1) or a filled diagonal (9 = TL+BR, 6 = TR+BL).
PREFERRED_LEVEL2 = (8, 4, 2, 1, 9, 6)


def preferred_level2_probs(preferred=PREFERRED_LEVEL2, mass: float = 0.85) -> np.ndarray:
    """Level-2 distribution with ``mass`` spread evenly over ``preferred`` codes.

    Parameters
    ----------
    preferred : sequence of int
        Codes (0..15) of the preferred binary 2x2 patterns.
    mass : float
        Total probability of the preferred patterns, in [0, 1].

    Returns
    -------
    ndarray (16,)
        Probabilities summing to 1.
    """
    pref = sorted({int(c) for c in preferred})
    if not pref or min(pref) < 0 or max(pref) > 15:
        raise MotifLabError("preferred codes must be integers in 0..15")
    if not 0 <= mass <= 1:
        raise MotifLabError(f"mass must lie in [0, 1], got {mass}")
    p = np.full(16, (1 - mass) / (16 - len(pref)) if len(pref) < 16 else 0.0)
    p[pref] = mass / len(pref)
    return p / p.sum()


@dataclass
class SquareUnits:
    """A grid of binary units made of independent 2x2 blocks.

    Attributes
    ----------
    grid : ndarray (H, W) int
        0 = empty, 1 = filled, 2 = V (an extra, rare state), -1 never used.
    level2_probs : ndarray (16,)
        True distribution of each disjoint 2x2 block (before V replacement).
    blocks : ndarray (H/2, W/2) int
        The drawn level-2 code of every block.
    entropy_level2_bits, entropy_level3_bits : float
        Exact entropies of disjoint level-2 / level-3 blocks.
    p_v : float
        Fraction of units turned into V.
    """

    grid: np.ndarray
    level2_probs: np.ndarray
    blocks: np.ndarray
    entropy_level2_bits: float
    entropy_level3_bits: float
    p_v: float

    @property
    def binary_grid(self) -> np.ndarray:
        """Grid with V units marked missing (-1), as the paper's analysis omits them."""
        g = self.grid.copy()
        g[g == 2] = -1
        return g


def make_square_units(shape=(64, 64), probs=None, p_v: float = 0.0, seed: int | None = 0) -> SquareUnits:
    """Binary unit grid from independent 2x2 blocks with a known distribution.

    Parameters
    ----------
    shape : (int, int)
        Grid shape in units; both even and >= 4.
    probs : array_like (16,), optional
        Distribution of block codes ``TL*8 + TR*4 + BL*2 + BR``; default
        :func:`preferred_level2_probs`. Use ``np.full(16, 1/16)`` for a uniform
        random grid.
    p_v : float
        Probability that a unit is replaced by the rare third state 2 ("V").
    seed : int
        Random seed.

    Returns
    -------
    SquareUnits
    """
    try:
        h, w = (int(x) for x in shape)
    except (TypeError, ValueError):
        raise MotifLabError(f"shape must be two integers, got {shape!r}") from None
    if h < 4 or w < 4 or h % 2 or w % 2:
        raise MotifLabError(f"shape must be even and at least 4 x 4 units, got {shape!r}")
    p = preferred_level2_probs() if probs is None else np.asarray(probs, dtype=float)
    if p.shape != (16,) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise MotifLabError("probs must be 16 non-negative numbers summing to 1")
    if not 0 <= p_v < 1:
        raise MotifLabError(f"p_v must lie in [0, 1), got {p_v}")
    rng = np.random.default_rng(check_seed(seed))
    blocks = rng.choice(16, size=(h // 2, w // 2), p=p / p.sum())
    grid = np.empty((h, w), np.int64)
    grid[0::2, 0::2] = (blocks >> 3) & 1
    grid[0::2, 1::2] = (blocks >> 2) & 1
    grid[1::2, 0::2] = (blocks >> 1) & 1
    grid[1::2, 1::2] = blocks & 1
    if p_v > 0:
        grid[rng.random((h, w)) < p_v] = 2
    h2 = shannon_entropy(p)
    return SquareUnits(grid=grid, level2_probs=p, blocks=blocks, entropy_level2_bits=h2,
                       entropy_level3_bits=4 * h2, p_v=float(p_v))


@dataclass
class PentagonTiling:
    """Units of a Cairo pentagon tiling with labels, geometry and (optionally) an image.

    Attributes
    ----------
    units : SquareUnits
        The label grid and its exact statistics.
    positions : ndarray (N, 2)
        Unit centres ``(row, col)`` in pixels (one per grid node inside the frame).
    labels : ndarray (N,) str
        ``"empty"``, ``"filled"`` or ``"V"``.
    grid_index : ndarray (N, 2) int
        Grid node ``(a, b)`` of every unit.
    square_parity : int
        Checkerboard colour of the true squares (0: anchors with ``a + b`` even).
    spacing_px, theta_deg, rotation_deg : float
        Geometry.
    image : SyntheticImage or None
        Rendered image when ``render=True``.
    """

    units: SquareUnits
    positions: np.ndarray
    labels: np.ndarray
    grid_index: np.ndarray
    square_parity: int
    spacing_px: float
    theta_deg: float
    rotation_deg: float
    image: SyntheticImage | None = None


def snub_positions(shape, spacing: float, theta_deg: float = 15.0) -> np.ndarray:
    """Snub-square displacement of a square grid of unit centres.

    Parameters
    ----------
    shape : (int, int)
        Grid shape.
    spacing : float
        Grid pitch.
    theta_deg : float
        Rotation of the squares (15 degrees: exact snub-square tiling).

    Returns
    -------
    ndarray (H, W, 2)
        Positions relative to node (0, 0).
    """
    h, w = shape
    a, b = np.indices((h, w))
    sign = np.where(a % 2 == 0, 1.0, -1.0)
    even = (a + b) % 2 == 0
    # corner offset of the unit in its "own" square: TL (-.5, -.5) when a + b is even, TR (-.5, +.5) otherwise
    o_r = np.full((h, w), -0.5)
    o_c = np.where(even, -0.5, 0.5)
    t = math.tan(math.radians(theta_deg))
    # rotating the square by theta and scaling by 1/cos(theta) moves a corner by tan(theta) * perp(offset)
    d_r = sign * t * (-o_c)
    d_c = sign * t * o_r
    return spacing * np.stack([a + d_r, b + d_c], axis=-1)


def make_pentagon_tiling(
    shape=(48, 48),
    spacing_px: float = 20.0,
    theta_deg: float = 15.0,
    rotation_deg: float = 0.0,
    probs=None,
    p_v: float = 0.043,
    jitter_px: float = 0.0,
    render: bool = False,
    dose: float | None = None,
    pixel_size: float = 0.05,
    seed: int | None = 0,
) -> PentagonTiling:
    """POM-like Cairo pentagon tiling of filled / empty / V units with exact statistics.

    Parameters
    ----------
    shape : (int, int)
        Units along rows and columns (even).
    spacing_px : float
        Grid pitch (distance between neighbouring unit centres) in pixels.
    theta_deg : float
        Snub rotation of the squares (15: exact snub square / Cairo tiling).
    rotation_deg : float
        Overall rotation of the arrangement.
    probs : array_like (16,), optional
        Level-2 block distribution (default :func:`preferred_level2_probs`).
    p_v : float
        Fraction of V-centred units (paper: 4.3 %).
    jitter_px : float
        Std of Gaussian noise added to the positions.
    render : bool
        Also render an ADF-like image: every unit is a pentagon of five columns,
        filled units have a bright central column, V units a dim one.
    dose : float, optional
        Electrons per pixel for Poisson noise (``render=True`` only).
    pixel_size : float
        nm per pixel, stored with the image.
    seed : int
        Random seed.

    Returns
    -------
    PentagonTiling
    """
    units = make_square_units(shape, probs=probs, p_v=p_v, seed=seed)
    if spacing_px <= 0:
        raise MotifLabError(f"spacing_px must be positive, got {spacing_px}")
    if not 0 <= theta_deg < 30:
        raise MotifLabError(f"theta_deg must lie in [0, 30), got {theta_deg}")
    h, w = units.grid.shape
    rng = np.random.default_rng(None if seed is None else seed + 1)
    pos = snub_positions((h, w), spacing_px, theta_deg).reshape(-1, 2)
    th = math.radians(rotation_deg)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    pos = pos @ rot.T
    pos -= pos.min(axis=0) - 1.5 * spacing_px
    if jitter_px > 0:
        pos = pos + rng.normal(0, jitter_px, pos.shape)
    idx = np.column_stack([g.ravel() for g in np.indices((h, w))])
    names = np.array(["empty", "filled", "V"])
    labels = names[units.grid.ravel()]
    image = None
    if render:
        image = _render_tiling(pos, labels, idx, spacing_px, dose, pixel_size, rng, theta_deg, rot)
    return PentagonTiling(units=units, positions=pos, labels=labels, grid_index=idx, square_parity=0,
                          spacing_px=float(spacing_px), theta_deg=float(theta_deg),
                          rotation_deg=float(rotation_deg), image=image)


def _render_tiling(pos, labels, idx, spacing, dose, pixel_size, rng, theta_deg, rot):
    shape = tuple(int(math.ceil(x + 1.5 * spacing)) for x in pos.max(axis=0))
    ring_r = 0.28 * spacing
    cols, amps, owner, kind = [], [], [], []
    for k, (p, lab, (a, b)) in enumerate(zip(pos, labels, idx)):
        # pentagon orientation alternates with the sublattice, as in a Cairo tiling
        phase = math.radians(90 * ((a + 2 * b) % 4) / 1.0 + theta_deg)
        for q in range(5):
            ang = phase + 2 * math.pi * q / 5
            cols.append(p + ring_r * np.array([math.sin(ang), math.cos(ang)]))
            amps.append(1.0)
            owner.append(k)
            kind.append("ring")
        if lab != "empty":
            cols.append(p)
            amps.append(1.6 if lab == "filled" else 0.6)
            owner.append(k)
            kind.append("centre")
    cols = np.array(cols)
    amps = np.array(amps)
    sigma = max(0.9, 0.06 * spacing)
    raw = render_columns(cols, amps, shape, pad=int(4 * sigma) + 4, sigma=sigma, tail_fraction=0.0, gamma=1.0)
    img, scale = finish_image(raw, 0.05 * amps.max() / (2 * math.pi * sigma**2), dose, rng)
    cells = np.asarray(idx)[owner]
    truth = ColumnTruth(
        positions=cols, species=np.array(kind), fine=np.array([labels[o] for o in owner]),
        visible=np.ones(len(cols), bool), sublattice=np.array(kind), cell=cells, intensity=amps,
    )
    return SyntheticImage(image=img, pixel_size=float(pixel_size), truth=truth,
                          lattice_vectors=np.array([[0.0, 2 * spacing], [2 * spacing, 0.0]]) @ rot.T,
                          params={"title": "Synthetic Cairo pentagon tiling (POM-like)", "spacing_px": spacing,
                                  "theta_deg": theta_deg, "dose": dose, "scale": scale})
