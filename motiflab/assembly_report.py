"""Everything a view of a disordered sample's square motifs needs, in one result (METHOD.md §5, POM).

:func:`assembly_report` runs :func:`motiflab.assembly.square_motifs` on a unit
grid and gathers, per level (2: 2 x 2 units, 3: 4 x 4 units):

* the most frequent square motifs -- code, unit block, count and fraction;
* how many motifs it takes to cover e.g. 50 % and 90 % of the windows
  (:func:`motiflab.assembly.covering_set`);
* the configurational (Shannon) entropy and the same statistic on null grids,
  with a plain-language verdict such as "ordered beyond chance: entropy
  2.10 bits vs 3.40 ± 0.10 for shuffled units (-13 σ)".

Null models (all keep the grid's shape, its missing units and its windows, so
the finite-sample bias of the plug-in entropy is the same on both sides):

``"shuffled"``
    The observed units permuted among the occupied nodes: exactly the same
    number of each unit state, no arrangement. Observed entropy below it means
    the units prefer some neighbourhoods over others.
``"random"``
    Independent units, every state equally likely (the paper's uniform
    reference): asks whether the squares are less varied than a fair coin would
    make them, composition included.
``"blocks"`` (level 3 only)
    The 2 x 2 blocks of units permuted among the block positions of the
    ``"disjoint"`` registration: keeps every level-2 square (exactly so with
    ``windows="disjoint"``) and destroys how squares sit next to each other,
    so it asks "is there order beyond level 2?" (notebook 06, section 4).

Every null draws from its own random stream derived from ``seed`` and the
null's name, so adding or removing a null does not change the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_int, check_number
from .assembly import covering_set, decode, entropy_null, square_motifs
from .assembly_codes import check_grid
from .errors import MotifLabError

__all__ = ["NULL_KINDS", "MotifEntry", "NullEntropy", "LevelReport", "AssemblyReport", "assembly_report",
           "shuffle_units", "shuffle_blocks"]

#: null models: name -> (short label, what it keeps and what it destroys)
NULL_KINDS = {
    "shuffled": ("shuffled units",
                 "the same units shuffled among the same places: keeps how many of each kind, "
                 "removes any preferred arrangement"),
    "random": ("random units",
               "units drawn at random, every kind equally likely (the paper's uniform reference)"),
    "blocks": ("shuffled 2×2 blocks",
               "the same 2×2 squares shuffled among themselves: keeps the level-2 motifs, "
               "removes how squares sit next to each other"),
}
# a fixed number per null: its random stream must not depend on which other nulls were asked for
_STREAM = {"shuffled": 1, "random": 2, "blocks": 3}
#: |z| beyond which the observed entropy is called different from a null's
Z_THRESHOLD = 3.0


@dataclass
class MotifEntry:
    """One square motif: its code, unit block, count and share of the windows."""

    code: int
    block: np.ndarray
    count: int
    fraction: float


@dataclass
class NullEntropy:
    """Entropy of one null model at one level, and how the observed entropy compares.

    Attributes
    ----------
    kind : str
        Key of :data:`NULL_KINDS`.
    label, description : str
        Short name and plain-language meaning of the null.
    mean, std : float
        Mean and sample standard deviation of the null entropies (bits).
    samples : ndarray
        Entropy of every null grid (bits).
    z : float
        ``(observed - mean) / std`` (±inf when every null grid scored the same
        and the observation differs).
    frac_below : float
        Share of null grids whose entropy is at most the observed one.
    verdict : {"ordered", "chance", "varied"}
        Lower than every null grid *and* by more than :data:`Z_THRESHOLD`
        standard deviations; higher than every null grid and by as much; or
        neither. Both conditions, because the entropy of overlapping level-3
        windows has a long low tail (a few repeated blocks pull it down), so
        the normal approximation alone cries "order" too often.
    sentence : str
        The comparison in words.
    """

    kind: str
    label: str
    description: str
    mean: float
    std: float
    samples: np.ndarray
    z: float
    frac_below: float
    verdict: str
    sentence: str


@dataclass
class LevelReport:
    """What the view shows of one level (see :func:`assembly_report`).

    Attributes
    ----------
    level : int
        2 (2 x 2 units) or 3 (4 x 4 units).
    n_windows, n_observed, n_possible : int
        Counted windows, distinct motifs seen, motifs possible.
    entropy_bits, entropy_std_bits, max_entropy_bits : float
        Plug-in entropy, its standard error and ``log2(n_possible)``.
    top : list of MotifEntry
        Most frequent motifs first.
    n_hidden : int
        Observed motifs not in ``top``.
    cover : dict
        ``fraction -> (number of motifs, fraction actually covered)``: the
        smallest set of motifs making up at least that share of the windows.
    nulls : list of NullEntropy
    note : str
        A caveat in words ("" if none), e.g. when every window is different
        and the entropy cannot tell order from chance.
    """

    level: int
    n_windows: int
    n_observed: int
    n_possible: int
    entropy_bits: float
    entropy_std_bits: float
    max_entropy_bits: float
    top: list
    n_hidden: int
    cover: dict
    nulls: list = field(default_factory=list)
    note: str = ""

    @property
    def unit_name(self) -> str:
        """"square" (level 2) or "block" (level 3), for sentences."""
        return "square" if self.level == 2 else "block"

    def summary(self) -> str:
        """Two or three sentences on this level."""
        side = "2 × 2" if self.level == 2 else "4 × 4"
        cov = "; ".join(f"{k} motif{'s' if k != 1 else ''} make{'s' if k == 1 else ''} up {100 * f:.0f} %"
                        for f, (k, _) in sorted(self.cover.items()))
        out = (f"Level {self.level} ({side} units): {self.n_windows} {self.unit_name}s, {self.n_observed} of "
               f"{self.n_possible} possible motifs seen; {cov}. Entropy {self.entropy_bits:.2f} bits.")
        if self.nulls:
            out += " " + " ".join(n.sentence[0].upper() + n.sentence[1:] + "." for n in self.nulls)
        if self.note:
            out += " " + self.note
        return out

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "level": self.level, "n_windows": self.n_windows, "n_observed": self.n_observed,
            "n_possible": self.n_possible, "entropy_bits": self.entropy_bits,
            "entropy_std_bits": self.entropy_std_bits, "max_entropy_bits": self.max_entropy_bits,
            "top": [{"code": m.code, "block": m.block.tolist(), "count": m.count, "fraction": m.fraction}
                    for m in self.top],
            "n_hidden": self.n_hidden,
            "cover": {str(f): {"n_motifs": k, "covered": c} for f, (k, c) in self.cover.items()},
            "nulls": [{"kind": n.kind, "mean": n.mean, "std": n.std, "z": n.z, "frac_below": n.frac_below,
                       "verdict": n.verdict, "sentence": n.sentence, "samples": n.samples.tolist()}
                      for n in self.nulls],
            "note": self.note,
        }


@dataclass
class AssemblyReport:
    """Square motifs of a unit grid with their entropy against null models (:func:`assembly_report`).

    Attributes
    ----------
    assembly : motiflab.assembly.SquareAssembly
        The full counts (code maps, every motif).
    states : list of str
        Name of each unit state.
    unit_counts : ndarray (n_states,)
        Number of units of each state.
    levels : dict
        ``2`` / ``3`` -> :class:`LevelReport` (the levels asked for).
    windows, parity, seed, n_repeats
        The settings used.
    """

    assembly: object
    states: list
    unit_counts: np.ndarray
    levels: dict
    windows: str
    parity: object
    seed: int
    n_repeats: int

    @property
    def n_states(self) -> int:
        """Number of unit states."""
        return len(self.states)

    @property
    def grid(self) -> np.ndarray:
        """The unit grid (-1 = missing)."""
        return self.assembly.grid

    def level(self, k: int) -> LevelReport:
        """The report of level ``k``."""
        if k not in self.levels:
            raise MotifLabError(f"level {k!r} is not in this report (levels: {sorted(self.levels)})")
        return self.levels[k]

    def summary(self) -> str:
        """The whole report in a few sentences."""
        units = ", ".join(f"{int(c)} {s}" for s, c in zip(self.states, self.unit_counts))
        head = f"{int(self.unit_counts.sum())} units on a {self.grid.shape[0]} × {self.grid.shape[1]} grid ({units})."
        return "\n".join([head] + [self.levels[k].summary() for k in sorted(self.levels)])

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {"states": list(self.states), "unit_counts": [int(c) for c in self.unit_counts],
                "grid_shape": list(self.grid.shape), "windows": self.windows, "parity": self.parity,
                "seed": self.seed, "n_repeats": self.n_repeats,
                "levels": {str(k): v.to_dict() for k, v in self.levels.items()}}


# --------------------------------------------------------------------------- null grids


def shuffle_units(grid, rng) -> np.ndarray:
    """The grid with its units permuted among the occupied nodes (missing units stay missing).

    Parameters
    ----------
    grid : ndarray (H, W) int
        Unit labels, -1 = missing.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray (H, W) int64
    """
    g = np.array(grid, dtype=np.int64)
    ok = g >= 0
    g[ok] = rng.permutation(g[ok])
    return g


def shuffle_blocks(grid, rng, offset=(0, 0)) -> np.ndarray:
    """The grid with its disjoint 2 x 2 blocks permuted among the block positions.

    Parameters
    ----------
    grid : ndarray (H, W) int
    rng : numpy.random.Generator
    offset : (int, int)
        Top-left unit of the first block (the ``"disjoint"`` registration);
        rows and columns outside whole blocks are kept as they are.

    Returns
    -------
    ndarray (H, W) int64
    """
    g = np.array(grid, dtype=np.int64)
    oi, oj = offset
    h2, w2 = (g.shape[0] - oi) // 2, (g.shape[1] - oj) // 2
    if h2 * w2 < 2:
        return g
    sub = g[oi:oi + 2 * h2, oj:oj + 2 * w2]
    blocks = sub.reshape(h2, 2, w2, 2).transpose(0, 2, 1, 3).reshape(-1, 2, 2)
    blocks = blocks[rng.permutation(len(blocks))]
    g[oi:oi + 2 * h2, oj:oj + 2 * w2] = blocks.reshape(h2, w2, 2, 2).transpose(0, 2, 1, 3).reshape(2 * h2, 2 * w2)
    return g


def _compare(observed, samples, kind) -> NullEntropy:
    label, description = NULL_KINDS[kind]
    mean, std = float(np.mean(samples)), float(np.std(samples, ddof=1))
    diff = observed - mean
    if std > 0:
        z = diff / std
    else:  # every null grid scored the same: any difference is beyond chance
        z = 0.0 if abs(diff) < 1e-9 else float(np.copysign(np.inf, diff))
    samples = np.asarray(samples, dtype=np.float64)
    below = float(np.mean(samples <= observed + 1e-12))
    if z < -Z_THRESHOLD and observed < samples.min() - 1e-12:
        verdict, words = "ordered", "ordered beyond chance"
    elif z > Z_THRESHOLD and observed > samples.max() + 1e-12:
        verdict, words = "varied", "more varied than chance"
    else:
        verdict, words = "chance", "no more ordered than chance"
    zs = f"{z:+.1f} σ" if np.isfinite(z) else ("below every null grid" if z < 0 else "above every null grid")
    d = 2 if std >= 0.01 or std == 0 else 3  # a spread of 0.004 should not read as "± 0.00"
    sentence = f"{words}: entropy {observed:.{d}f} bits vs {mean:.{d}f} ± {std:.{d}f} for {label} ({zs})"
    return NullEntropy(kind=kind, label=label, description=description, mean=mean, std=std,
                       samples=samples, z=float(z), frac_below=below, verdict=verdict, sentence=sentence)


# --------------------------------------------------------------------------- validation


def _check_choices(value, name, allowed, what):
    items = [value] if isinstance(value, (str, int, np.integer)) else value
    try:
        items = list(items)
    except TypeError:
        raise MotifLabError(f"{name} must be a list of {what} from {list(allowed)}, got {value!r}") from None
    out = []
    for x in items:
        if isinstance(x, (bool, np.bool_)) or x not in allowed:
            raise MotifLabError(f"{name} must be a list of {what} from {list(allowed)}, got {value!r}")
        if x not in out:
            out.append(x)
    return out


def _unwrap(grid, states):
    """Grid array and state names from an array or a :class:`motiflab.unit_grid.UnitGrid`."""
    from .unit_grid import UnitGrid

    if isinstance(grid, UnitGrid):
        return grid.grid, (list(grid.states) if states is None else states)
    return grid, states


# --------------------------------------------------------------------------- the report


def assembly_report(grid, n_states=None, *, states=None, windows: str = "all", parity=0,
                    merge_rotations: bool = False, levels=(2, 3), nulls=("shuffled", "random"),
                    n_repeats: int = 20, top: int = 8, fractions=(0.5, 0.9), seed: int = 0) -> AssemblyReport:
    """Square motifs of a unit grid, their covering sets and entropy against null models.

    Parameters
    ----------
    grid : array_like (H, W) int or motiflab.unit_grid.UnitGrid
        Unit states ``0..n_states-1``, negative = missing (see
        :func:`motiflab.assembly.label_grid`). A ``UnitGrid`` also gives the
        state names.
    n_states : int, optional
        Number of unit states (default ``max + 1``).
    states : sequence of str, optional
        Name of each state (default: the ``UnitGrid``'s, else "state 0", ...).
    windows, parity, merge_rotations
        As for :func:`motiflab.assembly.square_motifs`.
    levels : sequence of {2, 3}
        Levels to report; level 3 needs complete 4 x 4 blocks.
    nulls : sequence of {"shuffled", "random", "blocks"}
        Null models (module notes); ``"blocks"`` applies to level 3 only.
    n_repeats : int
        Null grids per model (at least 2, for a spread).
    top : int
        Most frequent motifs kept per level.
    fractions : sequence of float
        Shares of the windows (in (0, 1]) to report covering-set sizes for.
    seed : int
        Seed of every random step (the null grids).

    Returns
    -------
    AssemblyReport

    Raises
    ------
    MotifLabError
        Bad labels or settings, fewer than two unit states present, no
        complete 2 x 2 window, or no complete 4 x 4 block when level 3 is asked.
    """
    grid, states = _unwrap(grid, states)
    g, n = check_grid(grid, n_states)
    levels = sorted(_check_choices(levels, "levels", (2, 3), "levels"))
    if not levels:
        raise MotifLabError("levels must name at least one level (2 and/or 3)")
    nulls = _check_choices(nulls, "nulls", tuple(NULL_KINDS), "null model names")
    n_repeats = check_int(n_repeats, "n_repeats", low=2, high=10_000, hint="At least 2 null grids estimate a spread.")
    top = check_int(top, "top", low=1, high=256)
    seed = check_int(seed, "seed", low=0, hint="Use a non-negative whole number.")
    if isinstance(fractions, (int, float, np.number)):
        fractions = [fractions]
    try:
        fractions = sorted({check_number(f, "fractions", low=0.0, high=1.0, low_open=True) for f in fractions})
    except TypeError:
        raise MotifLabError(f"fractions must be numbers in (0, 1], got {fractions!r}") from None
    if states is None:
        states = [f"state {k}" for k in range(n)]
    states = [str(s) for s in states]
    if len(states) != n:
        raise MotifLabError(f"states has {len(states)} names but the grid has n_states={n} unit states; "
                            "give one name per state")
    valid = g >= 0
    unit_counts = np.bincount(g[valid], minlength=n)
    present = np.flatnonzero(unit_counts)
    if len(present) < 2:
        what = f"only '{states[present[0]]}' units" if len(present) else "no units at all"
        raise MotifLabError(f"the grid holds {what}: every square is then the same, so there is no assembly to "
                            "measure. Check the labels (two unit types merged into one?) and the missing units.")
    sq = square_motifs(g, n, windows=windows, parity=parity, merge_rotations=merge_rotations)
    if 3 in levels and sq.level3.n_windows == 0:
        raise MotifLabError(
            f"no complete 4 × 4 block of units in this {g.shape[0]} × {g.shape[1]} grid "
            f"({int((~valid).sum())} missing units, windows={windows!r}): level 3 needs a larger grid "
            "(with disjoint windows, at least 4 × 4 units in register); pass levels=(2,) for level 2 only")
    null_samples = _null_entropies(g, n, levels, nulls, windows, parity, merge_rotations, n_repeats, seed)
    reports = {}
    for lev in levels:
        st = sq.level(lev)
        entries = [MotifEntry(code=int(c), block=decode(int(c), lev, n), count=int(k),
                              fraction=float(k / st.n_windows)) for c, k in zip(st.codes[:top], st.counts[:top])]
        cover = {}
        for f in fractions:
            idx, covered = covering_set(st.counts, f)
            cover[f] = (int(len(idx)), float(covered))
        cmp = [_compare(st.entropy_bits, s, kind) for kind, s in null_samples.get(lev, {}).items()]
        note = ""
        if len(st.codes) == st.n_windows and st.n_windows < st.n_possible:
            word = "square" if lev == 2 else "block"
            note = (f"Every {word} is different: {st.n_windows} {word}s are too few for the entropy to tell order "
                    f"from chance at level {lev} (use a larger field of view, or windows='all').")
        reports[lev] = LevelReport(
            level=lev, n_windows=int(st.n_windows), n_observed=int(len(st.codes)), n_possible=int(st.n_possible),
            entropy_bits=float(st.entropy_bits), entropy_std_bits=float(st.entropy_std_bits),
            max_entropy_bits=float(st.max_entropy_bits), top=entries, n_hidden=int(max(len(st.codes) - top, 0)),
            cover=cover, nulls=cmp, note=note)
    return AssemblyReport(assembly=sq, states=states, unit_counts=unit_counts, levels=reports, windows=windows,
                          parity=parity, seed=seed, n_repeats=n_repeats)


def _null_entropies(g, n, levels, nulls, windows, parity, merge_rotations, n_repeats, seed):
    """``{level: {kind: samples}}`` of the plug-in entropy on ``n_repeats`` null grids per kind."""
    out: dict = {lev: {} for lev in levels}
    offset = (0, 0)
    if windows == "disjoint":
        offset = (parity, parity) if np.isscalar(parity) else tuple(int(p) for p in parity)
    for kind in nulls:
        stream = int(np.random.SeedSequence([seed, _STREAM[kind]]).generate_state(1)[0])
        if kind == "random":  # independent uniform units: what entropy_null already draws
            res = entropy_null(g, n, windows=windows, parity=parity, merge_rotations=merge_rotations,
                               unit_probs="uniform", n_repeats=n_repeats, seed=stream)
            for lev in levels:
                out[lev][kind] = res[lev]["samples"]
            continue
        if kind == "blocks" and 3 not in levels:
            continue  # keeps every level-2 square: nothing to compare at level 2
        rng = np.random.default_rng(stream)
        s2, s3 = [], []
        for _ in range(n_repeats):
            r = shuffle_units(g, rng) if kind == "shuffled" else shuffle_blocks(g, rng, offset)
            a = square_motifs(r, n, windows=windows, parity=parity, merge_rotations=merge_rotations)
            s2.append(a.level2.entropy_bits)
            s3.append(a.level3.entropy_bits)
        for lev, s in ((2, s2), (3, s3)):
            if lev in levels and not (kind == "blocks" and lev == 2):
                out[lev][kind] = np.asarray(s)
    return out
