"""Every analysis parameter, declared once.

Each :class:`Parameter` says which stage it feeds, its type, default, bounds or
choices, what "auto" means for it, one line of documentation, its unit, the
keyword of the stage function it becomes, and the range a slider should offer.
Everything else is generated from :data:`SPEC`:

* validation (:func:`validate`, used by :class:`motiflab.Analysis` on every
  ``set``): a wrongly typed, non-finite or out-of-range value is refused up front
  with a message naming the parameter, the allowed values and the fix, instead
  of failing deep inside NumPy, scikit-learn or numba;
* :data:`DEFAULTS` and :data:`PARAM_STAGE`, and the effective value of an
  "auto" parameter (:func:`effective_value`);
* the command line options of ``motiflab run`` / ``batch``
  (:func:`add_cli_options`, :func:`from_cli`);
* the explorer's controls, grouped by stage (``motiflab.widgets.controls``).

Add a parameter here, give its stage function the keyword, and it appears in
all of them. Bounds are what the method can use, not what the hardware can
hold: they also keep a typo (``n_iter=10**7``) from running for hours.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from .errors import MotifLabError

__all__ = ["Parameter", "SPEC", "STAGES", "DEFAULTS", "PARAM_STAGE", "STAGE_TITLES", "validate",
           "validate_all", "effective_value", "add_cli_options", "from_cli", "cli_type", "get"]

#: the stages, in the order data flows through them
STAGES = ("columns", "patch_size", "patches", "features", "graph", "layout", "motifs", "hierarchy")

#: how the explorer and ``--help`` title each stage's parameters
STAGE_TITLES = {
    "columns": "Columns", "patch_size": "Patch size", "patches": "Patches", "features": "Features",
    "graph": "Neighbour graph", "layout": "FR layout", "motifs": "Motifs", "hierarchy": "Hierarchy",
}

_AUTO = object()  # "no auto value" marker (None itself is an auto value)


@dataclass(frozen=True)
class Parameter:
    """One analysis parameter.

    Attributes
    ----------
    name : str
        The name users write (``Analysis(..., name=value)``, ``--name-with-dashes``).
    stage : str
        The stage it feeds (one of :data:`STAGES`).
    kind : {"int", "float", "bool", "choice"}
    default
        The default value.
    doc : str
        One line: what it does, in a microscopist's words.
    low, high : float, optional
        Inclusive bounds (``low_open``: ``low`` itself excluded).
    choices : tuple, optional
        The allowed values of a ``"choice"`` parameter.
    aliases : dict, optional
        Other spellings accepted for a choice (e.g. ``True`` → ``"auto"``).
    auto : object
        The value meaning "let the method choose" (``None`` or ``"auto"``);
        both ``None`` and ``"auto"`` are accepted for it. Absent when the
        parameter always needs a value.
    auto_doc : str
        What the method chooses when the value is auto.
    unit : str
        Unit of the value (``"px"``, ``"σ"`` for noise units, …).
    keyword : str, optional
        The stage function's keyword, when it differs from ``name``.
    ui : tuple, optional
        ``(min, max, step)`` of the explorer's slider; default: the bounds.
    label : str, optional
        Short label for the explorer control; default: the name.
    """

    name: str
    stage: str
    kind: str
    default: object
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple = ()
    aliases: dict = field(default_factory=dict)
    auto: object = _AUTO
    auto_doc: str = ""
    unit: str = ""
    keyword: str | None = None
    ui: tuple | None = None
    label: str | None = None

    @property
    def has_auto(self) -> bool:
        return self.auto is not _AUTO

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> str:
        """The allowed values, in words (used in messages and ``--help``)."""
        if self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "bool":
            text = "True or False"
        else:
            what = "an integer" if self.kind == "int" else "a number"
            lo = None if self.low is None else f"{'>' if self.low_open else '≥'} {_fmt(self.low)}"
            hi = None if self.high is None else f"≤ {_fmt(self.high)}"
            rng = " and ".join(x for x in (lo, hi) if x)
            text = what + (f" {rng}" if rng else "") + (f" {self.unit}" if self.unit and self.unit != "σ" else "")
        if self.has_auto and self.kind != "choice":
            text += " or 'auto'"
        return text

    def validate(self, value):
        """The value as the stage expects it, or a :class:`MotifLabError` that names the fix."""
        if self.has_auto and (value is None or (isinstance(value, str) and value.strip().lower() == "auto")):
            return self.auto
        if self.kind == "choice":
            return self._choice(value)
        if self.kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
                return _BOOL_WORDS[value.strip().lower()]
            raise self._error(value)
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
            raise self._error(value)
        try:
            x = float(value) if isinstance(value, str) else value
            finite = math.isfinite(x)
        except (TypeError, ValueError, OverflowError):
            raise self._error(value) from None
        if not finite:
            raise self._error(value, "it must be finite")
        if self.kind == "int":
            if not isinstance(x, numbers.Integral) and not float(x).is_integer():
                raise self._error(value, "it must be a whole number")
            x = int(x)
        else:
            x = float(x)
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            raise self._error(value)
        if self.high is not None and x > self.high:
            raise self._error(value)
        return x

    def _choice(self, value):
        for alias, target in self.aliases.items():
            if type(value) is type(alias) and value == alias:
                return target
        if isinstance(value, np.bool_):
            value = bool(value)
        for c in self.choices:
            if isinstance(c, bool) or isinstance(value, bool):
                if type(value) is type(c) and value == c:
                    return c
            elif isinstance(value, str) and isinstance(c, str) and value.strip().lower() == c:
                return c
        word = value.strip().lower() if isinstance(value, str) else None
        if word in _BOOL_WORDS and _BOOL_WORDS[word] in [c for c in self.choices if isinstance(c, bool)]:
            return _BOOL_WORDS[word]  # "true" on the command line
        raise self._error(value)

    def _error(self, value, why=""):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        auto = f" ('auto': {self.auto_doc})" if self.has_auto and self.auto_doc else ""
        return MotifLabError(f"{self.name} must be {self.allowed()}{auto}; got {shown}"
                             + (f" ({why})" if why else "") + f". {self.name}: {self.doc}")


_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _fmt(x):
    return f"{int(x)}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _force(stage, f, what, default_word):
    """The four force parameters and the learning rate of one FR stage."""
    i = stage
    return Parameter(f"stage{i}_{f}", "layout", "float", None, f"stage {i} ({default_word}): {what}",
                     low=0.0, high=1000.0 if f != "lr" else 100.0, auto=None,
                     auto_doc="the paper's value", ui=(0.0, 20.0, 0.1) if f != "lr" else (0.1, 10.0, 0.1),
                     label=f"stage {i} {dict(alpha='α', beta='β', n='n', m='m', lr='learning rate')[f]}")


_FORCES = dict(alpha="attraction strength α", beta="repulsion strength β",
               n="attraction decay exponent n (0: linear springs)",
               m="repulsion decay exponent m (small: long-ranged)", lr="largest learning rate (step multiplier)")

#: every parameter, in the order of the stages
SPEC = (
    # ---- columns
    Parameter("smoothing", "columns", "choice", "matched",
              "smoothing before peak finding: matched (a Gaussian as wide as a column, best from 1 count per "
              "peak up), or the paper's svd / fft, a plain gaussian, none",
              choices=("matched", "svd", "fft", "gaussian", "none")),
    Parameter("smoothing_strength", "columns", "float", None,
              "strength of the smoothing (Gaussian σ in px; SVD components; FFT cut-off fraction)",
              low=0.0, low_open=True, high=1000.0, auto=None, auto_doc="from the measured column width",
              keyword="strength", ui=(0.1, 10.0, 0.1), label="strength"),
    Parameter("threshold", "columns", "float", 5.0,
              "significance a column's own peak needs above the dark gap around it, in noise units",
              low=0.0, high=1000.0, unit="σ", ui=(0.5, 20.0, 0.5), label="peak signif. (σ)"),
    Parameter("refine", "columns", "choice", "gaussian",
              "sub-pixel refinement of each column: a Gaussian fit, centre of mass, or none",
              choices=("gaussian", "com", "none"), aliases={None: "none"}),
    Parameter("invert", "columns", "choice", "auto",
              "treat dark columns as peaks (ABF/BF images); auto decides from the image",
              choices=("auto", True, False)),
    Parameter("border", "columns", "int", 2, "columns closer than this to the image edge are not searched",
              low=0, high=10_000, unit="px", ui=(0, 50, 1), label="edge margin (px)"),
    Parameter("spacing", "columns", "float", None, "nearest-neighbour column spacing",
              low=2.0, high=100_000.0, unit="px", auto=None, auto_doc="measured from the image",
              ui=(2.0, 100.0, 0.5)),
    Parameter("lattice", "columns", "choice", "auto",
              "auto: on a crystal, also accept faint columns on the sites its lattice repeats, and fill in sites "
              "hidden by noise; off: every column on its own evidence",
              choices=("auto", "off"), aliases={True: "auto", False: "off"}, label="lattice sites"),
    Parameter("min_contrast", "columns", "float", 0.1,
              "columns fainter than this fraction of the brightest are background (e.g. O in ADF of SrTiO₃)",
              low=0.0, high=0.99, ui=(0.0, 0.5, 0.01), label="min contrast"),
    # ---- patch size
    Parameter("patch_size", "patch_size", "int", "auto", "side of the square patch around each column",
              low=3, high=4097, unit="px", auto="auto",
              auto_doc="from the radial distribution function (the paper's rule)", ui=(5, 121, 1),
              label="patch size (px)"),
    Parameter("patch_scale", "patch_size", "float", 1.3,
              "auto patch size = this × the repeat distance of the radial distribution function",
              low=0.25, high=8.0, keyword="scale", ui=(0.5, 3.0, 0.05), label="patch scale"),
    # ---- patches
    Parameter("patch_border", "patches", "choice", "drop",
              "columns whose patch leaves the image: drop them, or pad by reflection / zeros",
              choices=("drop", "reflect", "constant"), keyword="border", label="at the border"),
    Parameter("patch_subpixel", "patches", "bool", True,
              "centre each patch on the column's sub-pixel position (interpolated)",
              keyword="subpixel", label="sub-pixel patches"),
    # ---- features
    Parameter("n_max", "features", "int", 10,
              "highest Zernike radial order (10 → 66 moments, the paper's choice)",
              low=0, high=40, ui=(2, 20, 1), label="Zernike n_max"),
    Parameter("rotinv", "features", "bool", False,
              "rotation-invariant features (motifs that differ only by orientation merge)",
              label="rotation invariant"),
    # ---- graph
    Parameter("n_neighbors", "graph", "int", 10, "k of the k-nearest-neighbour graph of the features",
              low=2, high=100, ui=(2, 50, 1), label="k (neighbours)"),
    Parameter("seed", "graph", "int", 0, "random seed: the same seed gives the same result",
              low=0, high=2**32 - 1, keyword="random_state", label="seed"),
    # ---- layout
    Parameter("negative_samples", "layout", "int", 5, "random non-neighbours each point is pushed from per step",
              low=0, high=50, ui=(0, 30, 1), label="k′ (negatives)"),
    Parameter("n_iter", "layout", "int", None, "iterations of the force-relaxed layout",
              low=1, high=20_000, auto=None, auto_doc="200", ui=(10, 2000, 10), label="iterations"),
    Parameter("stage_split", "layout", "float", None, "fraction of the iterations spent in stage 1",
              low=0.0, high=1.0, low_open=True, auto=None, auto_doc="0.5", ui=(0.05, 0.95, 0.05),
              label="stage split"),
    *(_force(1, f, what, "repulsion-dominated") for f, what in _FORCES.items()),
    *(_force(2, f, what, "attraction-dominated") for f, what in _FORCES.items()),
    Parameter("snapshot_max_mb", "layout", "float", 64.0,
              "memory for the recorded relaxation (playback frames); 0 keeps only the final layout",
              low=0.0, high=65536.0, unit="MB", ui=(0.0, 512.0, 8.0), label="playback memory (MB)"),
    # ---- motifs
    Parameter("min_cluster_size", "motifs", "int", None, "smallest motif class (HDBSCAN min_cluster_size)",
              low=2, high=10_000_000, auto=None, auto_doc="0.1 % of the columns, at least 5",
              ui=(2, 500, 1), label="granularity"),
    Parameter("min_samples", "motifs", "int", None, "HDBSCAN min_samples: larger leaves more points unassigned",
              low=1, high=10_000_000, auto=None, auto_doc="min_cluster_size, at most 15", ui=(1, 100, 1)),
    Parameter("cluster_selection_epsilon", "motifs", "float", 0.0,
              "HDBSCAN: clusters closer than this in the layout are merged", low=0.0, high=1e6,
              ui=(0.0, 10.0, 0.1), label="merge distance"),
    Parameter("min_separation", "motifs", "float", 2.5,
              "two motifs stay apart only if single columns tell them apart by this many noise units; "
              "larger gives fewer, broader motifs, 0 keeps the layout's clusters",
              low=0.0, high=100.0, unit="σ", ui=(0.0, 8.0, 0.25), label="separation (σ)"),
    # ---- hierarchy
    Parameter("hierarchy_cells", "hierarchy", "choice", "lattice",
              "cells of the hierarchy: the crystal's unit cells, or one Voronoi cell per column (non-periodic "
              "samples)", choices=("lattice", "voronoi"), keyword="cells", label="cells"),
    Parameter("hierarchy_max_columns", "hierarchy", "int", 100_000,
              "the hierarchy is built up to this many columns (it is a whole-image analysis)",
              low=1, high=10_000_000, keyword=None, ui=(1000, 1_000_000, 1000), label="max columns"),
)

_BY_NAME = {p.name: p for p in SPEC}
#: default value of every parameter
DEFAULTS = {p.name: p.default for p in SPEC}
#: the stage each parameter feeds
PARAM_STAGE = {p.name: p.stage for p in SPEC}

assert all(p.stage in STAGES for p in SPEC)
assert all(p.validate(p.default) == p.default or p.default is None for p in SPEC)


def get(name) -> Parameter:
    """The :class:`Parameter` called ``name`` (an unknown name lists the valid ones)."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise MotifLabError(f"unknown parameter {name!r}; valid ones are: {', '.join(sorted(_BY_NAME))}.") from None


def validate(name, value):
    """``value`` checked and converted for parameter ``name``."""
    return get(name).validate(value)


def validate_all(params: dict) -> dict:
    """Every item of ``params`` validated (unknown names raise, listing the valid ones)."""
    unknown = sorted(k for k in params if k not in _BY_NAME)
    if unknown:
        raise MotifLabError(f"unknown parameter(s) {unknown}; valid ones are: {', '.join(sorted(_BY_NAME))}.")
    return {k: _BY_NAME[k].validate(v) for k, v in params.items()}


def effective_value(name, value):
    """What the method uses for ``value`` when it is auto: the defaults an estimator fills in.

    Only values that do not depend on the data are resolved (the FR layout's
    iterations, stage split and forces); data-dependent ones (spacing, patch
    size, …) stay auto.
    """
    p = get(name)
    if not p.has_auto or value != p.auto or p.stage != "layout":
        return value
    # the estimator's defaults, from the module it takes them from (motiflab.layout imports scikit-learn)
    from .forces import DEFAULT_N_ITER, DEFAULT_STAGE_SPLIT, PAPER_STAGES

    if name in ("n_iter", "stage_split"):
        return {"n_iter": DEFAULT_N_ITER, "stage_split": DEFAULT_STAGE_SPLIT}[name]
    i, f = int(name[5]) - 1, name[7:]
    return float(getattr(PAPER_STAGES[i], "learning_rate" if f == "lr" else f))


# ---------------------------------------------------------------------- command line


def cli_type(name):
    """An ``argparse`` type that validates the text as parameter ``name``."""
    p = name if isinstance(name, Parameter) else get(name)

    def parse(text):
        try:
            return p.validate(text)
        except MotifLabError as exc:
            import argparse

            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = p.kind  # argparse names the type in its messages
    return parse


def add_cli_options(parser, exclude=()):
    """Add one option per parameter to an ``argparse`` parser, grouped by stage.

    Every option defaults to "not given" so that the analysis keeps its own
    default; ``--help`` shows that default and the allowed values.
    """
    import argparse

    for stage in STAGES:
        params = [p for p in SPEC if p.stage == stage and p.name not in exclude]
        if not params:
            continue
        group = parser.add_argument_group(f"{STAGE_TITLES[stage].lower()} parameters")
        for p in params:
            default = p.default if not p.has_auto or p.default != p.auto else "auto"
            text = f"{p.doc} ({p.allowed()}; default {default!s})".replace("%", "%%")
            if p.kind == "bool":
                group.add_argument(p.cli_flag, dest=p.name, action=argparse.BooleanOptionalAction,
                                   default=None, help=text)
            else:
                metavar = "{" + ",".join(str(c).lower() for c in p.choices) + "}" if p.kind == "choice" else None
                group.add_argument(p.cli_flag, dest=p.name, type=cli_type(p), default=None, metavar=metavar,
                                   help=text)


def from_cli(args) -> dict:
    """The parameters given on the command line (those left out keep their defaults)."""
    return {p.name: getattr(args, p.name) for p in SPEC
            if getattr(args, p.name, None) is not None}
