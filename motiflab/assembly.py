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

Where things live: codes, :func:`decode` / :func:`encode` and the grid checks
in :mod:`motiflab.assembly_codes`; :func:`label_grid` and
:func:`checkerboard_parity` in :mod:`motiflab.unit_grid`; the statistics
here. All are importable from here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .assembly_codes import canonical_rotation, check_grid, decode, encode, level2_codes, level3_codes
from .errors import MotifLabError
from .lattice import Lattice, find_lattice  # noqa: F401 - importable from here as before
from .unit_grid import UnitGrid, checkerboard_parity, label_grid

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
    from ._validation import check_matrix

    c = check_matrix(counts, "counts", min_rows=0, ndim=1)
    if np.any(c < 0):
        raise MotifLabError("counts must be non-negative (how often each code occurs).")
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
    from ._validation import check_matrix, check_number

    fraction = check_number(fraction, "fraction", low=0.0, low_open=True, high=1.0)
    if not 0 < fraction <= 1:
        raise MotifLabError(f"fraction must lie in (0, 1], got {fraction}")
    c = check_matrix(counts, "counts", min_rows=0, ndim=1)
    if np.any(c < 0):
        raise MotifLabError("counts must be non-negative (how often each code occurs).")
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
        v = canonical_rotation(uniq, level, n)[inv.reshape(-1)]
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
            out[ok] = canonical_rotation(uniq, level, self.n_states)[inv.reshape(-1)]
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
    g, n = check_grid(grid, n_states)
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
    g, n = check_grid(grid, n_states)
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
    from ._validation import check_int

    n_repeats = check_int(n_repeats, "n_repeats", low=2, high=100_000, hint="At least 2 estimate a spread.")
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
