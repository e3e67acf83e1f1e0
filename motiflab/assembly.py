"""Assembly statistics of disordered samples: square compositions (METHOD.md §5, POM).

For samples with no host crystal (the paper's Mo-V-Te-Nb oxide), the level-1
motifs are labelled *units* on a grid (e.g. filled / empty pentagons of a
pentagonal tiling, which is topologically a square grid). Higher levels are
squares of lower ones:

* **level 2** -- the pattern of the four units on the corners of a unit
  square (``n**4`` possible patterns; 16 for binary units);
* **level 3** -- the pattern of four level-2 squares on the corners of a larger
  square two units apart, i.e. a 4 x 4 block of units (``n**16``; 65 536 for
  binary units).

Their counts, Shannon (configurational) entropy against the uniform
distribution and the smallest set of motifs that covers a given fraction of
the windows tell preferred from frustrated assembly.

Codes. A level-2 pattern with units ``TL, TR, BL, BR`` (reading order, row
first) has code ``TL n^3 + TR n^2 + BL n + BR``; a level-3 pattern made of
level-2 codes ``TL, TR, BL, BR`` has code ``TL B^3 + TR B^2 + BL B + BR`` with
``B = n^4``. :func:`decode` turns a code back into its 2 x 2 / 4 x 4 block.

Windows. ``"all"`` counts every 2 x 2 window (each unit in four of them);
``"checkerboard"`` only windows whose anchor ``(i, j)`` has ``(i + j) % 2 ==
parity`` -- the squares of a snub-square / Cairo-pentagon tiling, where every
unit is a corner of exactly two squares (the paper's POM case); ``"disjoint"``
tiles the grid with non-overlapping 2 x 2 blocks (level 3: non-overlapping
4 x 4 blocks). Level-3 windows are built from level-2 windows of the same
kind. A window is skipped if any of its units is invalid (negative label,
e.g. an omitted V-centred pentagon or a missing unit).

Entropy. ``entropy_bits`` is the plug-in estimate ``-sum p log2 p``;
``entropy_mm_bits`` adds the Miller-Madow correction ``(K - 1) / (2 N ln 2)``.
When ``N`` is not much larger than the number of possible patterns (always
the case at level 3) even a perfectly uniform grid falls well short of the
maximum, so compare against :func:`entropy_null`: the same statistic on random
grids of the same shape, mask and windows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_positions
from .errors import MotifLabError
from .lattice import Lattice, find_lattice

__all__ = [
    "LevelStats",
    "SquareAssembly",
    "square_motifs",
    "level2_codes",
    "level3_codes",
    "decode",
    "encode",
    "shannon_entropy",
    "covering_set",
    "entropy_null",
    "UnitGrid",
    "label_grid",
    "checkerboard_parity",
]

_WINDOWS = ("all", "checkerboard", "disjoint")


# --------------------------------------------------------------------------- validation


def _check_grid(grid, n_states=None) -> tuple[np.ndarray, int]:
    g = np.ma.asarray(grid)
    mask = np.ma.getmaskarray(g)
    data = np.asarray(g.data)
    if data.ndim != 2:
        raise MotifLabError(f"grid must be a 2-D array of unit labels, got shape {data.shape}")
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data)
        mask = mask | bad
        d2 = np.where(bad, -1, data)
        if not np.all(d2 == np.round(d2)):
            raise MotifLabError("grid values must be whole numbers (unit labels 0..n-1; negative = missing)")
        data = d2.astype(np.int64)
    elif data.dtype.kind in "iub":
        data = data.astype(np.int64)
    else:
        raise MotifLabError(
            f"grid must hold integer unit labels (0..n-1, negative = missing), got dtype {data.dtype}; "
            "map string labels to integers first (see label_grid)"
        )
    data = np.where(mask, -1, data)
    valid = data >= 0
    if n_states is None:
        n_states = int(data[valid].max()) + 1 if valid.any() else 0
        n_states = max(n_states, 2)
    n_states = int(n_states)
    if n_states < 2:
        raise MotifLabError(f"n_states must be at least 2, got {n_states}")
    if valid.any() and data[valid].max() >= n_states:
        raise MotifLabError(
            f"grid holds label {int(data[valid].max())} but n_states={n_states}; labels must be 0..n_states-1"
        )
    if n_states**16 >= 2**63:
        raise MotifLabError(
            f"n_states={n_states} is too many for level-3 codes (n^16 must fit in 64 bits); use at most 15 states"
        )
    if data.shape[0] < 2 or data.shape[1] < 2:
        raise MotifLabError(f"grid {data.shape} is too small: need at least 2 x 2 units for level 2")
    return data, n_states


def _window_mask(shape, windows, parity, step):
    """Boolean mask of allowed anchors for windows of a given step (1: level 2, 2: level 3)."""
    if windows not in _WINDOWS:
        raise MotifLabError(f"windows must be one of {_WINDOWS}, got {windows!r}")
    ii, jj = np.indices(shape)
    if windows == "all":
        return np.ones(shape, bool)
    if windows == "checkerboard":
        return (ii + jj) % 2 == parity
    # disjoint: level 2 anchors on even (i, j) (+ offset), level 3 on multiples of 4
    oi, oj = (parity, parity) if np.isscalar(parity) else parity
    block = 2 * step
    return ((ii - oi) % block == 0) & ((jj - oj) % block == 0)


# --------------------------------------------------------------------------- codes


def level2_codes(grid, n_states=None, windows: str = "all", parity=0) -> np.ndarray:
    """Level-2 code of every 2 x 2 window.

    Parameters
    ----------
    grid : array_like (H, W) int
        Unit labels ``0..n_states-1``; negative (or masked / NaN) = missing.
    n_states : int, optional
        Number of unit states (default: ``max + 1``, at least 2).
    windows : {"all", "checkerboard", "disjoint"}
        Which windows count (see module notes).
    parity : int or (int, int)
        Checkerboard colour, or the block offset for ``"disjoint"``.

    Returns
    -------
    ndarray (H - 1, W - 1) int64
        Code at each window anchor (top-left unit); -1 where the window is not
        selected or touches a missing unit.
    """
    g, n = _check_grid(grid, n_states)
    tl, tr, bl, br = g[:-1, :-1], g[:-1, 1:], g[1:, :-1], g[1:, 1:]
    code = ((tl * n + tr) * n + bl) * n + br
    ok = (tl >= 0) & (tr >= 0) & (bl >= 0) & (br >= 0) & _window_mask(code.shape, windows, parity, 1)
    return np.where(ok, code, -1)


def level3_codes(code2, n_states: int, windows: str = "all", parity=0) -> np.ndarray:
    """Level-3 code of every 4 x 4 block, from a level-2 code map.

    Parameters
    ----------
    code2 : ndarray (H - 1, W - 1) int
        Output of :func:`level2_codes` (with the same ``windows``/``parity``).
    n_states : int
        Number of unit states.
    windows, parity
        As for :func:`level2_codes`.

    Returns
    -------
    ndarray (H - 3, W - 3) int64
        Code at each anchor; -1 where not selected or incomplete.
    """
    c = np.asarray(code2, dtype=np.int64)
    if c.shape[0] < 3 or c.shape[1] < 3:
        return np.full((max(c.shape[0] - 2, 0), max(c.shape[1] - 2, 0)), -1, np.int64)
    b = n_states**4
    tl, tr, bl, br = c[:-2, :-2], c[:-2, 2:], c[2:, :-2], c[2:, 2:]
    code = ((tl * b + tr) * b + bl) * b + br
    ok = (tl >= 0) & (tr >= 0) & (bl >= 0) & (br >= 0) & _window_mask(code.shape, windows, parity, 2)
    return np.where(ok, code, -1)


def decode(code: int, level: int, n_states: int) -> np.ndarray:
    """Unit block of a code: (2, 2) for level 2, (4, 4) for level 3."""
    code = int(code)
    if level == 2:
        digits = []
        for _ in range(4):
            digits.append(code % n_states)
            code //= n_states
        return np.array(digits[::-1], dtype=np.int64).reshape(2, 2)
    if level == 3:
        b = n_states**4
        quads = []
        for _ in range(4):
            quads.append(code % b)
            code //= b
        tl, tr, bl, br = (decode(q, 2, n_states) for q in quads[::-1])
        return np.block([[tl, tr], [bl, br]])
    raise MotifLabError(f"level must be 2 or 3, got {level}")


def encode(block, n_states: int) -> int:
    """Code of a (2, 2) or (4, 4) unit block (inverse of :func:`decode`)."""
    a = np.asarray(block, dtype=np.int64)
    if a.shape == (2, 2):
        tl, tr, bl, br = (int(x) for x in a.ravel())
        return ((tl * n_states + tr) * n_states + bl) * n_states + br
    if a.shape == (4, 4):
        b = n_states**4
        q = [encode(a[r : r + 2, c : c + 2], n_states) for r in (0, 2) for c in (0, 2)]
        return ((q[0] * b + q[1]) * b + q[2]) * b + q[3]
    raise MotifLabError(f"block must be 2x2 or 4x4, got shape {a.shape}")


def _canonical_rotation(codes: np.ndarray, level: int, n: int) -> np.ndarray:
    """Smallest code over the four 90-degree rotations of each block."""
    out = np.empty_like(codes)
    cache: dict = {}
    for k, c in enumerate(codes.tolist()):
        if c not in cache:
            blk = decode(c, level, n)
            cache[c] = min(encode(np.rot90(blk, r), n) for r in range(4))
        out[k] = cache[c]
    return out


# --------------------------------------------------------------------------- statistics


def shannon_entropy(counts, correction: str | None = None) -> float:
    """Shannon entropy (bits) of a count vector.

    Parameters
    ----------
    counts : array_like
        Non-negative counts (zeros are ignored).
    correction : {None, "miller-madow"}
        Plug-in estimate, or plus ``(K_observed - 1) / (2 N ln 2)``.

    Returns
    -------
    float
    """
    c = np.asarray(counts, dtype=float)
    c = c[c > 0]
    n = c.sum()
    if n == 0:
        return 0.0
    p = c / n
    h = float(-(p * np.log2(p)).sum())
    if correction is None:
        return h
    if correction in ("miller-madow", "mm"):
        return h + (len(c) - 1) / (2 * n * math.log(2))
    raise MotifLabError(f"correction must be None or 'miller-madow', got {correction!r}")


def covering_set(counts, fraction: float) -> tuple[np.ndarray, float]:
    """Smallest set of motifs whose windows make up at least ``fraction`` of all windows.

    Parameters
    ----------
    counts : array_like (K,)
        Count of each motif.
    fraction : float
        Target fraction in (0, 1].

    Returns
    -------
    indices : ndarray
        Indices into ``counts``, most frequent first (ties by index).
    covered : float
        Fraction actually covered.
    """
    if not 0 < fraction <= 1:
        raise MotifLabError(f"fraction must lie in (0, 1], got {fraction}")
    c = np.asarray(counts, dtype=float)
    if c.sum() == 0:
        return np.zeros(0, np.int64), 0.0
    order = np.lexsort((np.arange(len(c)), -c))
    cum = np.cumsum(c[order]) / c.sum()
    k = int(np.searchsorted(cum, fraction - 1e-12)) + 1
    k = min(k, len(c))
    return order[:k], float(cum[k - 1])


@dataclass
class LevelStats:
    """Counts and entropy of one level.

    Attributes
    ----------
    level : int
        2 or 3.
    codes : ndarray (K,)
        Observed codes, most frequent first (ties by code).
    counts : ndarray (K,)
        Number of windows with each code.
    n_windows : int
        Total counted windows.
    n_possible : int
        ``n_states ** 4`` (level 2) or ``** 16`` (level 3) (fewer with
        ``merge_rotations``: still reported as the unmerged number).
    entropy_bits, entropy_mm_bits, entropy_std_bits : float
        Plug-in entropy, with the Miller-Madow correction, and the plug-in's
        delta-method standard error ``sqrt(Var(log2 p) / N)``.
    max_entropy_bits : float
        ``log2(n_possible)``: the entropy of the uniform distribution.
    """

    level: int
    n_states: int
    codes: np.ndarray
    counts: np.ndarray
    n_windows: int
    n_possible: int
    entropy_bits: float
    entropy_mm_bits: float
    entropy_std_bits: float
    max_entropy_bits: float

    @property
    def probabilities(self) -> np.ndarray:
        """Observed frequency of each code (same order as ``codes``)."""
        return self.counts / max(self.n_windows, 1)

    def cover(self, fraction: float) -> tuple[np.ndarray, float]:
        """Codes of the smallest motif set covering ``fraction`` of the windows, and the fraction covered."""
        idx, covered = covering_set(self.counts, fraction)
        return self.codes[idx], covered

    def top(self, k: int = 10) -> list[dict]:
        """The ``k`` most frequent motifs: code, count, fraction and unit block."""
        out = []
        for c, n in zip(self.codes[:k], self.counts[:k]):
            out.append({"code": int(c), "count": int(n), "fraction": float(n / max(self.n_windows, 1)),
                        "block": decode(int(c), self.level, self.n_states)})
        return out

    def to_dict(self) -> dict:
        """JSON-ready summary (codes and counts as lists)."""
        return {
            "level": self.level, "n_windows": int(self.n_windows), "n_possible": int(self.n_possible),
            "n_observed": int(len(self.codes)), "entropy_bits": self.entropy_bits,
            "entropy_mm_bits": self.entropy_mm_bits, "entropy_std_bits": self.entropy_std_bits,
            "max_entropy_bits": self.max_entropy_bits,
            "codes": [int(c) for c in self.codes], "counts": [int(c) for c in self.counts],
        }


def _level_stats(code_map: np.ndarray, level: int, n: int, merge_rotations: bool) -> LevelStats:
    v = code_map[code_map >= 0]
    if merge_rotations and len(v):
        uniq, inv = np.unique(v, return_inverse=True)
        v = _canonical_rotation(uniq, level, n)[inv.reshape(-1)]
    codes, counts = np.unique(v, return_counts=True)
    order = np.lexsort((codes, -counts))
    codes, counts = codes[order], counts[order]
    nw = int(counts.sum())
    units = 4 if level == 2 else 16
    n_possible = n**units
    h = shannon_entropy(counts)
    if nw:
        p = counts / nw
        lp = np.log2(p)
        var = float((p * lp**2).sum() - ((p * lp).sum()) ** 2)
        std = math.sqrt(max(var, 0.0) / nw)
    else:
        std = float("nan")
    return LevelStats(
        level=level, n_states=n, codes=codes, counts=counts, n_windows=nw, n_possible=n_possible,
        entropy_bits=h, entropy_mm_bits=shannon_entropy(counts, "miller-madow"),
        entropy_std_bits=std, max_entropy_bits=units * math.log2(n),
    )


@dataclass
class SquareAssembly:
    """Level-2 and level-3 square motifs of a unit grid (see :func:`square_motifs`)."""

    grid: np.ndarray
    n_states: int
    windows: str
    parity: object
    merge_rotations: bool
    code2: np.ndarray
    code3: np.ndarray
    level2: LevelStats
    level3: LevelStats
    notes: list = field(default_factory=list)

    def level(self, k: int) -> LevelStats:
        """Stats of level 2 or 3."""
        if k == 2:
            return self.level2
        if k == 3:
            return self.level3
        raise MotifLabError(f"level must be 2 or 3, got {k}")

    def coverage_fraction(self, level: int, codes) -> float:
        """Fraction of valid units lying in at least one window with one of ``codes``.

        This is the "fraction of the field of view" a set of motifs occupies.
        With ``merge_rotations`` the codes are canonical (rotation-merged) codes.
        """
        cmap = self.code2 if level == 2 else self.code3
        size = 2 if level == 2 else 4
        sel = np.isin(self._canon_map(cmap, level), np.asarray(list(codes), dtype=np.int64)) & (cmap >= 0)
        cov = np.zeros(self.grid.shape, bool)
        for di in range(size):
            for dj in range(size):
                cov[di : di + sel.shape[0], dj : dj + sel.shape[1]] |= sel
        valid = self.grid >= 0
        return float((cov & valid).sum() / max(valid.sum(), 1))

    def anchors(self, level: int, code: int) -> np.ndarray:
        """Top-left unit ``(i, j)`` of every window with this (canonical) code."""
        cmap = self.code2 if level == 2 else self.code3
        return np.argwhere((self._canon_map(cmap, level) == int(code)) & (cmap >= 0))

    def _canon_map(self, cmap, level):
        if not self.merge_rotations:
            return cmap
        out = cmap.copy()
        ok = cmap >= 0
        if ok.any():
            uniq, inv = np.unique(cmap[ok], return_inverse=True)
            out[ok] = _canonical_rotation(uniq, level, self.n_states)[inv.reshape(-1)]
        return out

    def to_dict(self) -> dict:
        """JSON-ready summary of both levels."""
        return {"n_states": self.n_states, "windows": self.windows, "merge_rotations": self.merge_rotations,
                "grid_shape": list(self.grid.shape), "level2": self.level2.to_dict(),
                "level3": self.level3.to_dict(), "notes": list(self.notes)}


def square_motifs(grid, n_states=None, *, windows: str = "all", parity=0, merge_rotations: bool = False) -> SquareAssembly:
    """Count level-2 (2 x 2) and level-3 (4 x 4) square motifs of a unit grid.

    Parameters
    ----------
    grid : array_like (H, W) int
        Unit labels ``0..n_states-1``; negative / masked / NaN = missing unit.
        Build it from positions with :func:`label_grid`.
    n_states : int, optional
        Number of unit states (default ``max + 1``).
    windows : {"all", "checkerboard", "disjoint"}
        Which windows count (module notes). Use ``"checkerboard"`` with the
        parity from :func:`checkerboard_parity` for pentagon (Cairo) tilings.
    parity : int or (int, int)
        Checkerboard colour (0/1), or the (row, col) offset of disjoint blocks.
    merge_rotations : bool
        Count patterns up to 90-degree rotations of the block.

    Returns
    -------
    SquareAssembly

    Raises
    ------
    MotifLabError
        Non-integer labels, labels >= n_states, grid smaller than 2 x 2, or no
        complete window.
    """
    g, n = _check_grid(grid, n_states)
    if windows == "checkerboard" and parity not in (0, 1):
        raise MotifLabError(f"checkerboard parity must be 0 or 1, got {parity!r}")
    c2 = level2_codes(g, n, windows, parity)
    c3 = level3_codes(c2, n, windows, parity)
    if not (c2 >= 0).any():
        raise MotifLabError(
            "no complete 2x2 window: every window touches a missing unit; check the grid (negative = missing)"
        )
    notes = []
    l2 = _level_stats(c2, 2, n, merge_rotations)
    l3 = _level_stats(c3, 3, n, merge_rotations)
    if l3.n_windows == 0:
        notes.append("no complete 4x4 block: level 3 is empty; use a larger grid")
    return SquareAssembly(grid=g, n_states=n, windows=windows, parity=parity, merge_rotations=merge_rotations,
                          code2=c2, code3=c3, level2=l2, level3=l3, notes=notes)


def entropy_null(grid, n_states=None, *, windows: str = "all", parity=0, merge_rotations: bool = False,
                 unit_probs="uniform", n_repeats: int = 20, seed: int = 0) -> dict:
    """Entropy of random grids with the same shape, missing units and windows.

    Parameters
    ----------
    grid : array_like (H, W) int
        The observed grid (only its shape and missing units are used, plus the
        unit frequencies when ``unit_probs="observed"``).
    n_states, windows, parity, merge_rotations
        As for :func:`square_motifs`.
    unit_probs : "uniform", "observed" or array_like (n_states,)
        Distribution of independent units: uniform (the paper's reference:
        every pattern equally likely), the observed unit frequencies (tests for
        correlations beyond the unit composition), or given.
    n_repeats : int
        Number of random grids.
    seed : int
        Random seed.

    Returns
    -------
    dict
        ``{2: {"mean", "std", "samples"}, 3: {...}}`` of the plug-in entropy (bits).
    """
    g, n = _check_grid(grid, n_states)
    valid = g >= 0
    if isinstance(unit_probs, str):
        if unit_probs == "uniform":
            probs = np.full(n, 1.0 / n)
        elif unit_probs == "observed":
            probs = np.bincount(g[valid], minlength=n).astype(float)
            probs /= probs.sum()
        else:
            raise MotifLabError(f"unit_probs must be 'uniform', 'observed' or an array, got {unit_probs!r}")
    else:
        probs = np.asarray(unit_probs, dtype=float)
        if probs.shape != (n,) or np.any(probs < 0) or not np.isclose(probs.sum(), 1):
            raise MotifLabError(f"unit_probs must be {n} non-negative numbers summing to 1")
    if int(n_repeats) < 2:
        raise MotifLabError("n_repeats must be at least 2 to estimate a spread")
    rng = np.random.default_rng(seed)
    out = {2: [], 3: []}
    for _ in range(int(n_repeats)):
        r = rng.choice(n, size=g.shape, p=probs)
        r[~valid] = -1
        a = square_motifs(r, n, windows=windows, parity=parity, merge_rotations=merge_rotations)
        out[2].append(a.level2.entropy_bits)
        out[3].append(a.level3.entropy_bits)
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)), "samples": np.array(v)}
            for k, v in out.items()}


# --------------------------------------------------------------------------- from positions


@dataclass
class UnitGrid:
    """Units placed on an integer grid.

    Attributes
    ----------
    grid : ndarray (H, W) int
        State of each grid node (index into ``states``); -1 = no unit / ignored.
    states : list
        Label of each state.
    index : ndarray (N, 2) int
        Grid node of every input unit (``-1, -1`` if dropped as a duplicate).
    positions : ndarray (H, W, 2) float
        Position of the unit at each node (NaN where empty).
    lattice : Lattice
        Lattice used to index the units.
    n_duplicates : int
        Units dropped because another unit was closer to the same node.
    """

    grid: np.ndarray
    states: list
    index: np.ndarray
    positions: np.ndarray
    lattice: Lattice
    n_duplicates: int = 0


def label_grid(positions, labels, lattice: Lattice | None = None, *, subdivide=(1, 1), states=None,
               ignore=()) -> UnitGrid:
    """Put labelled units (e.g. pentagon centres) on an integer grid.

    Parameters
    ----------
    positions : array_like (N, 2)
        Unit centres ``(row, col)`` in pixels.
    labels : array_like (N,)
        Unit labels (e.g. "empty" / "filled").
    lattice : Lattice, optional
        Translation lattice of the units (found when omitted). For a
        snub-square / Cairo arrangement the translation cell holds 2 x 2 units:
        pass ``subdivide=(2, 2)``.
    subdivide : (int, int)
        Grid nodes per lattice vector along ``u`` and ``v``.
    states : sequence, optional
        Labels in state order (state k = ``states[k]``); default sorted labels
        (minus ``ignore``).
    ignore : sequence
        Labels whose units count as missing (-1), e.g. the paper's V-centred
        pentagons.

    Returns
    -------
    UnitGrid
    """
    p = check_positions(
        positions, min_n=4, why="Too few units to place on a grid (or to find their lattice); use a larger field of view."
    )
    lab = np.asarray(labels)
    if lab.shape != (len(p),):
        raise MotifLabError(
            f"labels and positions have different lengths ({lab.shape[0] if lab.ndim else 0} vs {len(p)}); "
            "give one label per unit"
        )
    si, sj = (int(x) for x in subdivide)
    if si < 1 or sj < 1:
        raise MotifLabError(f"subdivide must be positive integers, got {subdivide!r}")
    if lattice is None:
        lattice = find_lattice(p)
    frac = lattice.to_fractional(p)
    ref = lattice.basis[0] if len(lattice.basis) else np.zeros(2)
    q = (frac - ref) * np.array([si, sj])
    g = np.rint(q).astype(np.int64)
    err = np.hypot(*(q - g).T)
    g -= g.min(axis=0)
    shape = tuple(int(x) + 1 for x in g.max(axis=0))
    if shape[0] * shape[1] > 20_000_000:
        raise MotifLabError(f"grid of {shape} nodes is implausibly large; check the lattice and subdivide")
    ign = set(ignore or ())
    if states is None:
        states = sorted({x.item() if hasattr(x, "item") else x for x in lab} - ign, key=str)
    states = list(states)
    smap = {s: k for k, s in enumerate(states)}
    code = np.array([smap.get(x.item() if hasattr(x, "item") else x, -1) for x in lab], dtype=np.int64)
    unknown = [x for x in set(lab.tolist()) if x not in smap and x not in ign]
    if unknown:
        raise MotifLabError(f"labels {sorted(map(str, unknown))} are neither in states nor in ignore")
    grid = np.full(shape, -1, np.int64)
    best = np.full(shape, np.inf)
    posg = np.full(shape + (2,), np.nan)
    order = np.argsort(err, kind="stable")  # closest first wins each node
    index = np.full((len(p), 2), -1, np.int64)
    dup = 0
    for k in order:
        a, b = g[k]
        if np.isfinite(best[a, b]):
            dup += 1
            continue
        best[a, b] = err[k]
        grid[a, b] = code[k]
        posg[a, b] = p[k]
        index[k] = (a, b)
    return UnitGrid(grid=grid, states=states, index=index, positions=posg, lattice=lattice, n_duplicates=dup)


def checkerboard_parity(positions_grid) -> int:
    """Checkerboard colour whose 2 x 2 plaquettes are closest to squares.

    In a snub-square arrangement (centres of a Cairo pentagon tiling) one
    colour of plaquettes are true squares (equal diagonals) and the other are
    pairs of triangles (unequal diagonals); the squares are the paper's
    level-2 motifs.

    Parameters
    ----------
    positions_grid : ndarray (H, W, 2)
        Unit positions per grid node (NaN where empty), e.g. ``UnitGrid.positions``.

    Returns
    -------
    int
        0 or 1.
    """
    pg = np.asarray(positions_grid, dtype=float)
    if pg.ndim != 3 or pg.shape[2] != 2 or pg.shape[0] < 2 or pg.shape[1] < 2:
        raise MotifLabError("positions_grid must have shape (H, W, 2) with H, W >= 2")
    d1 = np.hypot(*(pg[1:, 1:] - pg[:-1, :-1]).transpose(2, 0, 1))
    d2 = np.hypot(*(pg[1:, :-1] - pg[:-1, 1:]).transpose(2, 0, 1))
    asym = np.abs(d1 - d2) / (d1 + d2)
    ii, jj = np.indices(asym.shape)
    score = []
    for par in (0, 1):
        m = ((ii + jj) % 2 == par) & np.isfinite(asym)
        score.append(np.mean(asym[m]) if m.any() else np.inf)
    return int(np.argmin(score))
