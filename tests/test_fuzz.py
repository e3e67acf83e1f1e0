"""A fuzzed front door (issue #16): hostile input to every public entry point.

Property-based (hypothesis) tests over the images, the parameters of
:data:`motiflab.parameters.SPEC`, every public function of the core modules,
files handed to :func:`motiflab.load` / ``motiflab run`` and output paths given
to ``motiflab run --out``. Every case must end in a result or in a clear error:
:class:`~motiflab.errors.MotifLabError` (or ``InputFileError``), ``TypeError``
or ``ValueError`` whose message names the argument — never ``IndexError``,
``ZeroDivisionError``, ``KeyError``, ``AttributeError``, ``OverflowError``,
``MemoryError``, a numba typing error, a scikit-learn ``InvalidParameterError``,
a crash or a hang (each call runs under a time limit).

The example budget is fixed and derandomized, so a run is reproducible; the
number of inputs tried is counted in :data:`FUZZ_INPUTS` and printed at the end
of the session by ``tests/conftest.py``. Set ``MOTIFLAB_FUZZ_SCALE=4`` to try
four times as many inputs.
"""
from __future__ import annotations

import contextlib
import faulthandler
import functools
import inspect
import io
import math
import os
import re
import resource
import signal
import stat
import sys
import tempfile
import threading
import warnings
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from motiflab import parameters  # noqa: E402
from motiflab.errors import InputFileError, MotifLabError  # noqa: E402

#: every input tried, by family (printed at the end of the session)
FUZZ_INPUTS = {}

_SCALE = float(os.environ.get("MOTIFLAB_FUZZ_SCALE", "1"))


def budget(n):
    """A fixed, reproducible example budget (no deadline: each call has its own time limit)."""
    return settings(max_examples=max(1, int(n * _SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=False)


@pytest.fixture(scope="module", autouse=True)
def _kernels_compiled():
    """Compile every numba kernel before the timed calls (a no-op with a filled cache).

    The time limits catch calls that hang; in a fresh environment the first
    call of a kernel also compiles it (``side_sums`` took over 10 s on a
    loaded CI machine), which is not what they are for.
    """
    from motiflab.warmup import warm_up

    warm_up(progress=False)


def _count(family):
    FUZZ_INPUTS[family] = FUZZ_INPUTS.get(family, 0) + 1


# ---------------------------------------------------------------------------- the referee


class Hang(BaseException):
    """A call ran past its time limit (BaseException: ``except Exception`` cannot swallow it)."""


@contextlib.contextmanager
def time_limit(seconds, what):
    """Interrupt a call that runs longer than ``seconds`` (and kill the process if it cannot be)."""
    # a numba kernel cannot be interrupted: the hard limit dumps every thread's stack and exits
    hard = sys.__stderr__ is not None
    if hard:
        faulthandler.dump_traceback_later(max(60.0, 6 * seconds), exit=True, file=sys.__stderr__)
    main = threading.current_thread() is threading.main_thread()
    old = None
    # an absurd allocation must become a MemoryError (a finding), not the kernel's OOM killer ending the run
    limit = _memory_limit()
    if main:
        def on_alarm(signum, frame):
            raise Hang(f"{what} ran for more than {seconds} s")

        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, limit)
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        if hard:
            faulthandler.cancel_dump_traceback_later()


def _memory_limit(headroom=6 * 2**30):
    """Cap the address space at what the process uses now plus ``headroom``; return the old limit."""
    try:
        with open("/proc/self/statm") as f:
            vm = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        old = resource.getrlimit(resource.RLIMIT_AS)
        cap = vm + headroom
        if old[1] != resource.RLIM_INFINITY:
            cap = min(cap, old[1])
        resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
        return old
    except (OSError, ValueError, AttributeError):
        return None


FORBIDDEN = (IndexError, ZeroDivisionError, KeyError, AttributeError, OverflowError, MemoryError,
             RecursionError, FloatingPointError, AssertionError, UnboundLocalError, NameError)


def _short(x, n=160):
    try:
        if isinstance(x, np.ndarray):
            s = f"ndarray(shape={x.shape}, dtype={x.dtype}"
            if x.size and x.dtype.kind in "fc":
                with np.errstate(all="ignore"):
                    s += f", finite={bool(np.isfinite(x).all())}, max|x|={np.nanmax(np.abs(x)) if x.size else 0:.3g}"
            return s + ")"
        s = repr(x)
    except Exception:  # noqa: BLE001
        s = f"<{type(x).__name__}>"
    return s if len(s) <= n else s[: n - 3] + "..."


def _words(names):
    return [re.compile(r"(?<![A-Za-z0-9])" + re.escape(n.lower()) + r"(?![a-z0-9])") for n in names if n]


#: set MOTIFLAB_FUZZ_COLLECT=path to write every finding there instead of failing at the first
_COLLECT = os.environ.get("MOTIFLAB_FUZZ_COLLECT")


def _fail(msg):
    if _COLLECT:
        with open(_COLLECT, "a") as f:
            f.write(msg.replace("\n", " ") + "\n")
        return
    pytest.fail(msg)


def check_error(exc, names, what):
    """Fail unless ``exc`` is a clear user error whose message names one of ``names``."""
    kind = f"{type(exc).__module__}.{type(exc).__name__}"
    msg = str(exc)
    if type(exc).__name__ == "InvalidParameterError" or type(exc).__module__.startswith(("sklearn", "numba")):
        return _fail(f"{what}: raised {kind} from inside a dependency: {msg[:300]}")
    if isinstance(exc, FORBIDDEN) and not isinstance(exc, MotifLabError):
        return _fail(f"{what}: raised {kind}: {msg[:300]}")
    if isinstance(exc, OSError) and not isinstance(exc, InputFileError):
        return _fail(f"{what}: raised {kind} (an OSError that is not InputFileError): {msg[:300]}")
    if not isinstance(exc, (TypeError, ValueError)):
        return _fail(f"{what}: raised {kind}: {msg[:300]}")
    low = msg.lower()
    if not any(w.search(low) for w in _words(names)):
        return _fail(f"{what}: the {kind} message names no argument: {msg[:300]!r}")
    return exc


def attempt(call, names, what, family, timeout=8.0):
    """Run ``call()`` under a time limit; return ``("ok", result)`` or ``("error", exc)`` (checked)."""
    _count(family)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            with time_limit(timeout, what):
                return "ok", call()
    except Hang as h:
        _fail(f"{what}: {h}")
        return "hang", h
    except Exception as exc:  # noqa: BLE001 — the referee looks at every kind
        return "error", check_error(exc, names, what) or exc


# ---------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=None)
def lattice_image(n=48, a=6.0, sigma=1.1, dose=200.0, seed=0):
    """A small square lattice of Gaussian columns with Poisson noise (float64, counts)."""
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    img = np.zeros((n, n))
    for r in np.arange(a / 2, n, a):
        for c in np.arange(a / 2, n, a):
            img += np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma**2))
    rng = np.random.default_rng(seed)
    out = rng.poisson(dose * img + 0.1 * dose).astype(float)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=None)
def lattice_positions(n=48, a=6.0):
    g = np.arange(a / 2, n, a)
    p = np.array([(r, c) for r in g for c in g], float)
    p.setflags(write=False)
    return p


DTYPES = ["uint8", "uint16", "int32", "int64", "float16", "float32", "float64", "complex128", "bool", "object"]
FILLS = ["random", "lattice", "const", "nan", "inf", "neg", "huge", "tiny", "offset", "ints"]


def make_array(shape, dtype, fill, seed):
    """An array of ``shape`` and ``dtype`` filled in one of the hostile ways of :data:`FILLS`."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape)) if len(shape) else 1
    if fill == "lattice" and len(shape) >= 2 and shape[-1] <= 48 and shape[-2] <= 48:
        base = np.broadcast_to(lattice_image()[: shape[-2], : shape[-1]], shape).astype(float)
    elif fill == "ints":
        base = rng.integers(-1, 4, size).reshape(shape).astype(float)
    else:
        base = rng.uniform(0, 47, size).reshape(shape)
    if fill == "const":
        base = np.full(shape, 3.0)
    elif fill == "nan" and size:
        base.flat[rng.integers(0, size)] = np.nan
    elif fill == "inf" and size:
        base.flat[rng.integers(0, size)] = -np.inf if seed % 2 else np.inf
    elif fill == "neg":
        base = -base
    elif fill == "huge":
        base = base * 1e35
    elif fill == "tiny":
        base = base * 1e-14
    elif fill == "offset":
        base = base + 1e8
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if dtype == "object":
            return base.astype(object)
        return np.asarray(base).astype(dtype)


def arrays(shapes, dtypes=DTYPES, fills=FILLS):
    return st.builds(make_array, st.sampled_from(shapes), st.sampled_from(dtypes), st.sampled_from(fills),
                     st.integers(0, 2**16))


#: values that are not arrays at all
JUNK = st.sampled_from([None, "abc", "", 3, -1, 0, 2**70, -(2**70), float("nan"), float("inf"), -float("inf"),
                        1e300, [], [[1.0, 2.0], [3.0]], {"a": 1}, 1 + 2j, True, b"\x00\x01", (1, 2, 3)])

#: scalars an integer or float parameter should refuse (mixed with fine ones)
HOSTILE_NUMBERS = st.one_of(
    st.sampled_from([0, 1, 2, 3, 5, 10, -1, -7, 2**31, 2**63, 2**70, -(2**70), 10**400, 0.5, 2.5, -0.5, 1e-300,
                     1e300, float("nan"), float("inf"), -float("inf"), np.float64("nan"), np.int64(4), np.uint8(200),
                     np.float32(3.0), "5", "auto", "nan", "", None, True, False, 1 + 0j, Decimal("NaN"),
                     Fraction(1, 3), [3], np.array([4]), np.array(5.0)]),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True),
)

SMALL_INT = st.one_of(st.integers(0, 12), HOSTILE_NUMBERS)
N_POINTS = [0, 1, 2, 3, 7, 30]


def positions_s():
    good = st.builds(lambda n, seed: np.random.default_rng(seed).uniform(2, 46, (n, 2)),
                     st.sampled_from(N_POINTS), st.integers(0, 999))
    lattice = st.builds(lambda seed: lattice_positions() + np.random.default_rng(seed).normal(0, 0.2, (64, 2)),
                        st.integers(0, 999))
    bad = arrays([(0,), (5,), (5, 3), (2, 5), (5, 2, 1), (), (1, 2), (3, 2), (0, 2), (30, 2)])
    return st.one_of(good, lattice, bad, JUNK)


def labels_s():
    good = st.builds(lambda n, seed: np.random.default_rng(seed).integers(-1, 3, n),
                     st.sampled_from(N_POINTS + [64]), st.integers(0, 999))
    return st.one_of(good, arrays([(0,), (5,), (30,), (64,), (5, 2), ()], fills=["ints", "nan", "huge", "neg"]), JUNK)


def features_s():
    good = st.builds(lambda n, j, seed: np.random.default_rng(seed).normal(size=(n, j)).astype(np.float32),
                     st.sampled_from(N_POINTS), st.sampled_from([1, 2, 3, 66]), st.integers(0, 999))
    return st.one_of(good, arrays([(0, 2), (30,), (30, 2), (30, 66), (2, 30), (30, 2, 2), (), (1, 1)]), JUNK)


def patches_s():
    good = st.builds(lambda n, p, seed: np.random.default_rng(seed).uniform(0, 1, (n, p, p)).astype(np.float32),
                     st.sampled_from([0, 1, 2, 30]), st.sampled_from([1, 2, 3, 9, 15]), st.integers(0, 999))
    return st.one_of(good, arrays([(5, 9), (5, 9, 7), (9, 9), (5, 81), (0, 9, 9), (3, 9, 9, 1), ()]), JUNK)


def image_s():
    return st.one_of(st.just(lattice_image()), arrays(SHAPES_SMALL), JUNK)


def shape_s():
    return st.one_of(st.just((48, 48)), st.sampled_from([(0, 0), (1, 1), (-5, 5), (48,), (48, 48, 3), (10**9, 10**9),
                                                        (2**70, 2), (1e9, 1e9), (48.5, 48), "48x48", None, 48,
                                                        (np.nan, 4)]))


SHAPES_SMALL = [(), (0,), (7,), (0, 0), (1, 1), (8, 8), (16, 16), (7, 9), (48, 48), (2, 400), (3, 16, 16),
                (1, 32, 32), (32, 32, 1), (4, 4, 4, 4)]
SHAPES_IMAGES = SHAPES_SMALL + [(96, 96), (2, 4000), (4000, 2), (40, 40), (64, 64)]


def choice_s(*good):
    return st.one_of(st.sampled_from(good), st.sampled_from(["", "bogus", None, 3, True, "AUTO ", b"x"]))


def lattice_s():
    from motiflab.lattice import Lattice

    return st.one_of(st.none(), st.just(Lattice(u=np.array([6.0, 0.0]), v=np.array([0.0, 6.0]),
                                                 origin=np.array([3.0, 3.0]))), JUNK)


# ---------------------------------------------------------------------------- 1. images


def _image_targets():
    from motiflab import columns, io, lattice, noise, smoothing

    return {
        "validate_image": lambda a: columns.validate_image(a),
        "detect_inverted": lambda a: columns.detect_inverted(a),
        "estimate_spacing": lambda a: columns.estimate_spacing(a),
        "estimate_noise": lambda a: noise.estimate_noise(a),
        "smooth": lambda a: smoothing.smooth(a),
        "fft_lattice_vectors": lambda a: lattice.fft_lattice_vectors(a),
        "load": lambda a: io.load(a),
        "find_columns": lambda a: columns.find_columns(a),
        "Analysis": lambda a: __import__("motiflab").Analysis(a),
    }


IMAGE_NAMES = ["image", "img", "smoothed", "columns", "column", "pixel", "pixels", "frame", "shape", "dtype", "signal",
               "data", "nan", "constant", "complex", "numeric", "peak", "peaks", "spacing", "lattice", "noise"]


@pytest.mark.parametrize("target", ["validate_image", "detect_inverted", "estimate_spacing", "estimate_noise",
                                    "smooth", "fft_lattice_vectors", "load", "find_columns", "Analysis"])
@budget(60)
@given(a=arrays(SHAPES_IMAGES))
def test_images_of_every_shape_and_dtype(target, a):
    fn = _image_targets()[target]
    attempt(lambda: fn(a), IMAGE_NAMES, f"{target}({_short(a)})", "images", timeout=10)


SCALES = [1e-14, 1e-8, 1e-3, 1.0, 1e3, 1e12, 1e35]


@functools.lru_cache(maxsize=None)
def _baseline_columns():
    from motiflab.columns import find_columns

    return len(find_columns(lattice_image()).positions)


@budget(24)
@given(scale=st.sampled_from(SCALES), offset=st.sampled_from([0.0, 1e8, -1e8, 1e4]),
       dtype=st.sampled_from(["float64", "float32"]))
def test_columns_do_not_depend_on_the_units_of_the_image(scale, offset, dtype):
    """Counts × 1e-14 or × 1e35, or a 1e8 detector offset: the same columns, or a message about the range."""
    from motiflab.columns import find_columns

    n0 = _baseline_columns()
    img = (lattice_image() * scale + offset).astype(dtype)
    what = f"find_columns(lattice × {scale:g} + {offset:g}, {dtype})"
    kind, out = attempt(lambda: find_columns(img), IMAGE_NAMES + ["range", "scale", "offset", "precision"], what,
                        "image units")
    # the signal has fewer than ~1000 distinct levels once stored in this dtype: the data itself is damaged
    lossy = abs(offset) * np.finfo(dtype).eps > 1e-3 * scale * np.ptp(lattice_image())
    if kind == "ok":
        assert lossy or abs(len(out.positions) - n0) <= max(2, n0 // 10), \
            f"{what}: {len(out.positions)} columns, not {n0}"
    elif np.ptp(img) == 0:
        assert "constant" in str(out), f"{what}: {out}"
    else:
        assert lossy or scale >= 1e15, f"{what}: refused a usable image: {out}"
        assert lossy or re.search(r"range|rescale|scale|precision", str(out)), f"{what}: unclear: {out}"
    if not lossy and scale < 1e15:  # the front door must not call it constant either (a float32 cast did)
        import motiflab

        k2, a2 = attempt(lambda: motiflab.Analysis(img), IMAGE_NAMES, f"Analysis({what[13:]}", "image units")
        assert k2 == "ok", f"Analysis({what[13:]}: {a2}"


# ---------------------------------------------------------------------------- 2. parameters

PARAM_NAMES = [p.name for p in parameters.SPEC]

HOSTILE_VALUES = st.one_of(
    HOSTILE_NUMBERS,
    st.text(max_size=12),
    st.sampled_from(["auto", "AUTO", " none ", "true", "yes", "off", "1e400", "-1e400", "0x10", "1_000", "5 px",
                     "matched", "svd", "gaussian", "lattice", "voronoi", "drop", "reflect", "com", "∞", "\x00"]),
    st.sampled_from([object(), type, print, {"x": 1}, (1,), set(), np.bool_(True), np.array([1.0, 2.0]),
                     np.datetime64("2020-01-01"), complex(1, 1), float("-0.0")]),
)


def _valid(p, v):
    """``v`` is what :meth:`Parameter.validate` may return for ``p``."""
    if p.has_auto and v == p.auto and type(v) is type(p.auto):
        return True
    if p.kind == "choice":
        return any(type(v) is type(c) and v == c for c in p.choices)
    if p.kind == "bool":
        return type(v) is bool
    if p.kind == "int" and type(v) is not int:
        return False
    if p.kind == "float" and type(v) is not float:
        return False
    if not math.isfinite(v):
        return False
    if p.low is not None and (v < p.low or (p.low_open and v == p.low)):
        return False
    return p.high is None or v <= p.high


@budget(900)
@given(name=st.sampled_from(PARAM_NAMES), value=HOSTILE_VALUES)
def test_every_parameter_refuses_what_it_cannot_use(name, value):
    p = parameters.get(name)
    kind, out = attempt(lambda: parameters.validate(name, value), [name], f"validate({name!r}, {_short(value)})",
                        "parameters")
    if kind == "ok":
        assert _valid(p, out), f"validate({name!r}, {_short(value)}) accepted it as {out!r}"
    else:
        assert isinstance(out, MotifLabError), f"{name}={_short(value)}: {type(out).__name__}: {out}"


@functools.lru_cache(maxsize=None)
def _an():
    import motiflab

    return motiflab.Analysis(lattice_image())


@budget(200)
@given(params=st.dictionaries(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=8)), HOSTILE_VALUES,
                              min_size=1, max_size=3))
def test_analysis_set_is_all_or_nothing(params):
    an = _an()
    before = an.params
    kind, out = attempt(lambda: an.set(**params), list(params) + ["parameter"], f"Analysis.set(**{_short(params)})",
                        "Analysis.set")
    if kind == "error":
        assert an.params == before, "a refused set() changed parameters"
    else:
        an._params = before  # back to the defaults for the next example (the cache was never computed)
        an._cache.clear()


@budget(60)
@given(name=st.sampled_from(PARAM_NAMES), value=HOSTILE_VALUES)
def test_the_command_line_refuses_bad_parameters(name, value):
    """``motiflab run`` with a bad value: exit code 2 and the option named on stderr."""
    from motiflab.cli import main

    p = parameters.get(name)
    text = value if isinstance(value, str) else str(value)
    with tempfile.TemporaryDirectory() as d:
        argv = ["run", os.path.join(d, "missing.npy"), "--out", os.path.join(d, "o.npz"), "-q",
                f"{p.cli_flag}={text}"]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            kind, code = attempt(lambda: main(argv), [name], f"motiflab {' '.join(argv[5:])}", "command line")
        assert kind == "ok" and code == 2, f"motiflab {argv[-1]} returned {code!r}"
        msg = err.getvalue()
        assert "motiflab: error:" in msg or "usage:" in msg, msg
        assert p.cli_flag in msg or "no such file" in msg, f"motiflab {argv[-1]}: {msg[-400:]}"
        assert not os.path.exists(os.path.join(d, "o.npz"))


@budget(8)
@given(params=st.fixed_dictionaries({}, optional={
    "patch_size": st.sampled_from([3, 4, 47, 48, 4097, "auto"]),
    "n_max": st.sampled_from([0, 1, 40]),
    "n_neighbors": st.sampled_from([2, 63, 64, 200]),
    "negative_samples": st.sampled_from([0, 100]),
    "n_iter": st.sampled_from([1, 2, 30]),
    "border": st.sampled_from([0, 23, 24, 10_000]),
    "spacing": st.sampled_from([2.0, 24.0, 100_000.0]),
    "min_cluster_size": st.sampled_from([2, 10_000_000]),
    "min_samples": st.sampled_from([1, 10_000_000]),
    "threshold": st.sampled_from([0.0, 1000.0]),
    "min_contrast": st.sampled_from([0.0, 0.99]),
    "smoothing": st.sampled_from(["svd", "fft", "none"]),
    "smoothing_strength": st.sampled_from([1e-9, 1000.0]),
    "stage1_alpha": st.sampled_from([0.0, 1000.0]),
    "stage2_lr": st.sampled_from([0.0, 100.0]),
    "snapshot_max_mb": st.sampled_from([0.0, 65536.0]),
    "cluster_selection_epsilon": st.sampled_from([0.0, 1e6]),
    "min_separation": st.sampled_from([0.0, 100.0]),
    "hierarchy_cells": st.sampled_from(["lattice", "voronoi"]),
    "hierarchy_max_columns": st.sampled_from([1, 10_000_000]),
}))
def test_full_runs_with_extreme_but_valid_parameters(params):
    import motiflab

    params.setdefault("n_iter", 30)

    def run():
        an = motiflab.Analysis(lattice_image(), **params)
        an.run()
        return an.hierarchy

    attempt(run, list(params) + IMAGE_NAMES + ["patch", "motif", "motifs", "hierarchy", "cells", "cell", "graph",
                                               "neighbours", "neighbors", "layout", "features", "zernike"],
            f"Analysis(lattice, **{params}).run()", "full runs", timeout=40)


# ---------------------------------------------------------------------------- 3. core functions


def _core():
    """Every public function of the core, with a strategy for each of its arguments."""
    from motiflab import assembly, columns, hierarchy, io as mio, lattice, layout, motifs, neighbors, noise, patches
    from motiflab import assembly_report, smoothing, variation, zernike

    img, pos, lab, feat, pat = image_s(), positions_s(), labels_s(), features_s(), patches_s()
    num = HOSTILE_NUMBERS
    grid = st.one_of(st.builds(lambda s: np.random.default_rng(s).integers(0, 3, (8, 8)), st.integers(0, 99)),
                     arrays([(8, 8), (1, 1), (0, 0), (3,), (2, 2, 2), (100, 1)], fills=["ints", "nan", "neg", "huge"]),
                     JUNK)
    counts = st.one_of(st.builds(lambda s: np.random.default_rng(s).integers(0, 9, 10), st.integers(0, 99)),
                       arrays([(0,), (5,), (5, 2), ()], fills=["ints", "nan", "neg", "huge", "const"]), JUNK)
    weights = st.one_of(st.builds(lambda n, s: np.random.default_rng(s).dirichlet([1, 1, 1], n),
                                  st.sampled_from(N_POINTS), st.integers(0, 99)),
                        arrays([(5, 3), (5, 2), (5,), (0, 3)]), JUNK)
    vec = st.one_of(st.sampled_from([np.array([6.0, 0.0]), np.array([0.0, 6.0]), np.array([3.0, 5.2])]),
                    arrays([(2,), (3,), (), (0,)], fills=["random", "const", "nan", "inf", "huge", "tiny"]), JUNK)

    def fr(X, n_neighbors, negative_samples, n_iter):
        return layout.FRLayout(n_neighbors=n_neighbors, negative_samples=negative_samples,
                               n_iter=n_iter).fit_transform(X)

    def knn_then_fuzzy(X, n_neighbors):
        ind, dist = neighbors.knn_graph(X, n_neighbors=n_neighbors)
        return neighbors.fuzzy_graph(ind, dist)

    def markers(positions, labels):
        return mio.to_markers(positions, labels)

    F = {
        # columns / smoothing / noise
        "estimate_column_width": (columns.estimate_column_width, [img, num]),
        "fft_lowpass": (columns.fft_lowpass, [img, num]),
        "svd_denoise": (columns.svd_denoise, [img, SMALL_INT, SMALL_INT]),
        "smooth": (columns.smooth, [img, choice_s("matched", "svd", "fft", "gaussian", "none"), num, num]),
        "matched_filter": (smoothing.matched_filter, [img, num]),
        "find_peaks": (columns.find_peaks, [img, num, num, SMALL_INT]),
        "refine_positions": (columns.refine_positions, [img, pos, num, choice_s("gaussian", "com", "none")]),
        "find_columns": (lambda image, threshold, border, spacing, smoothing: columns.find_columns(
                             image, threshold=threshold, border=border, spacing=spacing, smoothing=smoothing),
                         [img, num, SMALL_INT, num, choice_s("matched", "svd", "fft", "gaussian", "none")]),
        "nearest_neighbour_distance": (columns.nearest_neighbour_distance, [pos]),
        "estimate_noise": (noise.estimate_noise, [img, num]),
        # patches
        "radial_distribution": (patches.radial_distribution, [pos, num, num, shape_s()]),
        "estimate_patch_size": (patches.estimate_patch_size, [pos, shape_s(), num, num]),
        "patch_size_from_distance": (patches.patch_size_from_distance, [num, num]),
        "extract_patches": (lambda image, positions, patch_size, border, subpixel: patches.extract_patches(
                                image, positions, patch_size, border=border, subpixel=subpixel),
                            [img, pos, SMALL_INT, choice_s("drop", "reflect", "constant"),
                             st.one_of(st.booleans(), JUNK)]),
        "rotational_average": (patches.rotational_average, [pat, SMALL_INT]),
        # zernike
        "zernike_indices": (zernike.zernike_indices, [SMALL_INT]),
        "rotinv_indices": (zernike.rotinv_indices, [SMALL_INT]),
        "zernike_basis": (zernike.zernike_basis, [SMALL_INT, SMALL_INT]),
        "zernike_moments": (zernike.zernike_moments, [pat, SMALL_INT, st.one_of(st.booleans(), JUNK)]),
        "reconstruct_patches": (zernike.reconstruct_patches, [feat, SMALL_INT, SMALL_INT]),
        "symmetry_energy": (zernike.symmetry_energy, [feat, SMALL_INT]),
        "ZernikeFeaturizer": (lambda patches, n_max, rotinv: zernike.ZernikeFeaturizer(n_max, rotinv).fit_transform(patches),
                              [pat, SMALL_INT, st.one_of(st.booleans(), JUNK)]),
        # neighbours and layout
        "knn_graph": (lambda X, n_neighbors, method: neighbors.knn_graph(X, n_neighbors=n_neighbors, method=method),
                      [feat, SMALL_INT, choice_s("auto", "exact")]),
        "fuzzy_graph": (neighbors.fuzzy_graph, [features_s(), features_s()]),
        "knn_then_fuzzy": (knn_then_fuzzy, [feat, SMALL_INT]),
        "FRLayout.fit_transform": (fr, [feat, SMALL_INT, SMALL_INT, st.one_of(st.integers(1, 30), num)]),
        "ForceStage": (lambda alpha, beta, n, m: layout.ForceStage(alpha, beta, n, m), [num, num, num, num]),
        "pca_init": (layout.pca_init, [feat, num]),
        # motifs
        "cluster_layout": (motifs.cluster_layout, [feat, SMALL_INT, SMALL_INT, num]),
        "assign_noise": (motifs.assign_noise, [feat, lab]),
        "attach_noise": (motifs.attach_noise, [lab, feat, num]),
        "class_averages": (motifs.class_averages, [pat, lab]),
        "reconstruct_image": (motifs.reconstruct_image, [shape_s(), pos, lab, pat]),
        "default_min_cluster_size": (motifs.default_min_cluster_size, [num]),
        "find_motifs": (lambda embedding, patches, min_cluster_size: motifs.find_motifs(
            embedding, patches, min_cluster_size=min_cluster_size), [feat, pat, SMALL_INT]),
        # lattice and hierarchy
        "find_lattice": (lambda positions, method, image: lattice.find_lattice(positions, method=method, image=image),
                         [pos, choice_s("neighbors", "fft"), st.one_of(st.none(), img)]),
        "index_cells": (lattice.index_cells, [pos, lattice_s()]),
        "voronoi_cells": (lattice.voronoi_cells, [pos]),
        "lattice_equivalent": (lattice.lattice_equivalent, [vec, vec, vec, vec]),
        "rotation_order": (lattice.rotation_order, [vec, vec]),
        "fft_lattice_vectors": (lattice.fft_lattice_vectors, [img, SMALL_INT]),
        "build_hierarchy": (lambda positions, labels, lattice, cells: hierarchy.build_hierarchy(
            positions, labels, lattice, cells=cells),
                            [pos, lab, lattice_s(), choice_s("lattice", "voronoi")]),
        "motif_cells": (hierarchy.motif_cells, [st.one_of(pos, arrays([(5, 2), (64, 2)], fills=["ints"])), lab]),
        # assembly
        "square_motifs": (assembly.square_motifs, [grid, SMALL_INT]),
        "level2_codes": (assembly.level2_codes, [grid, SMALL_INT]),
        "decode": (assembly.decode, [num, SMALL_INT, SMALL_INT]),
        "encode": (assembly.encode, [grid, SMALL_INT]),
        "shannon_entropy": (assembly.shannon_entropy, [counts, choice_s(None, "miller-madow")]),
        "covering_set": (assembly.covering_set, [counts, num]),
        "entropy_null": (lambda grid, n_repeats: assembly.entropy_null(grid, n_repeats=n_repeats), [grid, st.one_of(st.integers(1, 3), num)]),
        "label_grid": (assembly.label_grid, [pos, lab, lattice_s()]),
        "checkerboard_parity": (assembly.checkerboard_parity, [grid]),
        "assembly_report": (lambda grid, n_repeats, top, seed, nulls: assembly_report.assembly_report(
            grid, n_repeats=n_repeats, top=top, seed=seed, nulls=nulls),
                            [grid, st.one_of(st.integers(1, 3), num), st.one_of(SMALL_INT, num), st.one_of(SMALL_INT, num),
                             st.one_of(choice_s("shuffled", "random", "blocks"), st.just(("shuffled", "blocks")), JUNK)]),
        # variation
        "anchors_from_labels": (variation.anchors_from_labels, [feat, lab, st.one_of(st.just([0, 1, 2]), JUNK)]),
        "anchor_distances": (variation.anchor_distances, [feat, feat]),
        "anchor_weights": (variation.anchor_weights, [feat, num]),
        "ternary_colors": (variation.ternary_colors, [weights]),
        "feature_bins": (lambda features, bins: variation.feature_bins(features, bins=bins), [feat, SMALL_INT]),
        "digitize_features": (variation.digitize_features, [feat, feat]),
        "kl_divergence": (lambda features_a, features_b, bins: variation.kl_divergence(features_a, features_b,
                                                                                       bins=bins), [feat, feat, SMALL_INT]),
        "compare_domains": (lambda features, domain_labels, n_boot: variation.compare_domains(
            features, domain_labels, n_boot=n_boot),
                            [feat, lab, st.one_of(st.integers(1, 5), num)]),
        "domains_from_centers": (variation.domains_from_centers, [pos, pos, num]),
        # io
        "to_markers": (markers, [pos, lab]),
        "label_map_signal": (mio.label_map_signal, [shape_s(), pos, lab]),
        "class_averages_signal": (mio.class_averages_signal, [pat]),
        "to_signal": (mio.to_signal, [img]),
    }
    return F


# words any clear message about these arguments may use besides the argument names
CORE_WORDS = ["image", "positions", "position", "labels", "label", "features", "patches", "patch", "patch_size",
              "n_max", "shape", "embedding", "lattice", "grid", "counts", "n_states", "spacing", "columns", "column",
              "n_neighbors", "width", "refinement", "graph", "moments", "weights", "anchors", "domains", "bins", "edges", "cells",
              "method", "points", "classes", "border", "seed", "n_iter", "negative_samples"]

CORE = sorted(_core())


@pytest.mark.parametrize("fname", CORE)
@budget(40)
@given(data=st.data())
def test_core_functions_refuse_wrong_arguments(fname, data):
    fn, strategies = _core()[fname]
    args = [data.draw(s) for s in strategies]
    target = getattr(fn, "__wrapped__", fn)
    try:
        names = list(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        names = []
    what = f"{fname}({', '.join(_short(a, 80) for a in args)})"
    attempt(lambda: fn(*args), names + CORE_WORDS, what, "core functions", timeout=10)


# ---------------------------------------------------------------------------- 4. files in


@functools.lru_cache(maxsize=None)
def _good_files():
    """Bytes of a valid .npy and .hspy image (made once)."""
    import hyperspy.api as hs

    img = lattice_image().astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, img)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.hspy")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hs.signals.Signal2D(img).save(p)
        hspy = Path(p).read_bytes()
    return buf.getvalue(), hspy


FILE_KINDS = ["truncated npy", "truncated hspy", "random bytes", "text as npy", "fifo", "directory",
              "dangling symlink", "empty", "object npy", "stack npy", "1-d npy", "complex npy", "valid npy",
              "symlink loop", "npz", "unreadable"]


def make_file(d, kind, ext, frac, seed):
    """Create a hostile input file of ``kind`` in folder ``d``; return its path."""
    rng = np.random.default_rng(seed)
    npy, hspy = _good_files()
    p = os.path.join(d, "x" + ext)
    if kind == "truncated npy":
        p = os.path.join(d, "x.npy")
        Path(p).write_bytes(npy[: int(len(npy) * frac)])
    elif kind == "truncated hspy":
        p = os.path.join(d, "x.hspy")
        Path(p).write_bytes(hspy[: int(len(hspy) * frac)])
    elif kind == "random bytes":
        Path(p).write_bytes(rng.integers(0, 256, int(4000 * frac) + 1, dtype=np.uint8).tobytes())
    elif kind == "text as npy":
        p = os.path.join(d, "x.npy")
        Path(p).write_text("hello, this is not an image\n" * 10)
    elif kind == "fifo":
        p = os.path.join(d, "x.npy")
        os.mkfifo(p)
    elif kind == "directory":
        os.mkdir(p)
    elif kind == "dangling symlink":
        os.symlink(os.path.join(d, "nowhere.npy"), p)
    elif kind == "symlink loop":
        os.symlink(p, p)
    elif kind == "empty":
        Path(p).write_bytes(b"")
    elif kind == "unreadable":
        p = os.path.join(d, "x.npy")
        Path(p).write_bytes(npy)
        os.chmod(p, 0)
    else:
        p = os.path.join(d, "x.npz" if kind == "npz" else "x.npy")
        arr = {"object npy": np.array([[1, None], [2, 3]], dtype=object), "stack npy": np.zeros((3, 16, 16)),
               "1-d npy": np.arange(5.0), "complex npy": lattice_image().astype(complex),
               "valid npy": lattice_image(), "npz": lattice_image()}[kind]
        with open(p, "wb") as f:
            (np.savez if kind == "npz" else lambda f, a: np.save(f, a, allow_pickle=True))(f, arr)
    return p


FILE_WORDS = ["file", "path", "read", "image", "folder", "shape", "frame", "stack", "complex", "numeric", "archive",
              "regular", "such", "dtype", "permission", "2-d"]


@budget(70)
@given(kind=st.sampled_from(FILE_KINDS), ext=st.sampled_from([".dm4", ".dm3", ".tif", ".hspy", ".npy", ".emd",
                                                               ".png", ".ser", ""]),
       frac=st.floats(0.0, 0.999), seed=st.integers(0, 999), cli=st.booleans())
def test_hostile_input_files(kind, ext, frac, seed, cli):
    import motiflab
    from motiflab.cli import main

    with tempfile.TemporaryDirectory() as d:
        p = make_file(d, kind, ext, frac, seed)
        what = f"load({kind} {os.path.basename(p)}, {frac:.2f})"
        if not cli:
            attempt(lambda: motiflab.load(p), FILE_WORDS, what, "input files", timeout=10)
            return
        out = os.path.join(d, "out.npz")
        err = io.StringIO()
        argv = ["run", p, "--out", out, "-q", "--n-iter", "10"]
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            k, code = attempt(lambda: main(argv), FILE_WORDS, "motiflab " + what, "input files", timeout=30)
        assert k == "ok", code
        if code == 0:
            assert kind == "valid npy" or (kind == "unreadable" and os.access(p, os.R_OK)), kind  # root reads all
            assert os.path.isfile(out)
        else:
            assert code == 2 and "motiflab: error:" in err.getvalue(), err.getvalue()[-500:]
            assert not os.path.exists(out)


# ---------------------------------------------------------------------------- 5. files out


def _snapshot(d):
    """Everything in folder ``d``: type, bytes and link target of each entry."""
    snap = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = os.path.join(root, name)
            st_ = os.lstat(p)
            if stat.S_ISLNK(st_.st_mode):
                snap[p] = ("link", os.readlink(p))
            elif stat.S_ISREG(st_.st_mode):
                snap[p] = ("file", Path(p).read_bytes() if st_.st_mode & 0o400 else st_.st_size)
            else:
                snap[p] = (stat.S_IFMT(st_.st_mode), None)
    return snap


OUT_KINDS = ["directory", "symlink to a user file", "dangling symlink", "fifo", "over-long name", "the input",
             "symlink to the input", "hard link to the input", "temporary-looking neighbour", "existing file",
             "missing folder", "empty", "fine", "same as --hierarchy"]


@budget(36)
@given(kind=st.sampled_from(OUT_KINDS), overwrite=st.booleans(), name=st.sampled_from(["r.npz", "r.hspy", "r"]))
def test_hostile_output_paths_change_nothing_a_user_had(kind, overwrite, name):
    from motiflab.cli import main

    with tempfile.TemporaryDirectory() as d:
        image = os.path.join(d, "image.npy")
        np.save(image, lattice_image())
        user = os.path.join(d, "precious.txt")
        Path(user).write_text("the user's own file\n")
        out = os.path.join(d, name)
        extra = []
        if kind == "directory":
            os.mkdir(out)
            Path(out, "inside.txt").write_text("keep me")
        elif kind == "symlink to a user file":
            os.symlink(user, out)
        elif kind == "dangling symlink":
            os.symlink(os.path.join(d, "nowhere"), out)
        elif kind == "fifo":
            os.mkfifo(out)
        elif kind == "over-long name":
            out = os.path.join(d, "r" * 300 + ".npz")
        elif kind == "the input":
            out = image
        elif kind == "symlink to the input":
            os.symlink(image, out)
        elif kind == "hard link to the input":
            os.link(image, out)
        elif kind == "temporary-looking neighbour":
            for tmp in (f".{name}.abc123.part.npz", f".{name}.part", f"{name}.tmp"):
                Path(d, tmp).write_text("not motiflab's")
        elif kind == "existing file":
            Path(out).write_text("an older result")
        elif kind == "missing folder":
            out = os.path.join(d, "no", "such", name)
        elif kind == "empty":
            out = ""
        elif kind == "same as --hierarchy":
            extra = ["--hierarchy", out]
        before = _snapshot(d)
        argv = ["run", image, "--out", out, "-q", "--n-iter", "10", *extra] + (["--overwrite"] if overwrite else [])
        err = io.StringIO()
        what = f"motiflab run --out <{kind}: {os.path.basename(out)[:20]}>{' --overwrite' if overwrite else ''}"
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            k, code = attempt(lambda: main(argv), ["out", "path", "file", "folder", "input", "name"], what,
                              "output paths", timeout=40)
        assert k == "ok", code
        after = _snapshot(d)
        may_change = set()
        if code == 0:
            may_change = {out}
            assert os.path.isfile(out) and not os.path.islink(out)
        else:
            assert code == 2 and "motiflab: error:" in err.getvalue(), (what, err.getvalue()[-500:])
        for p, v in before.items():
            if p not in may_change:
                assert after.get(p) == v, f"{what}: {p} changed"
        new = set(after) - set(before) - may_change
        assert not new, f"{what}: left {sorted(new)} behind"
        if kind in ("directory", "fifo", "over-long name", "the input", "symlink to the input",
                    "hard link to the input", "missing folder", "empty", "same as --hierarchy") or (
                kind in ("existing file", "symlink to a user file") and not overwrite):
            assert code == 2, f"{what} was accepted"


# ---------------------------------------------------------------------------- the count


def test_zz_the_fuzz_tried_enough_inputs():
    """Runs last in this file: the whole budget was spent (printed at the end of the session)."""
    total = sum(FUZZ_INPUTS.values())
    if total == 0:
        pytest.skip("the fuzz tests did not run (selected out)")
    if _SCALE >= 1 and len(FUZZ_INPUTS) >= 8:
        assert total >= 2000, FUZZ_INPUTS
