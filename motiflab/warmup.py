"""Compile every numba kernel once, ahead of the first analysis (``motiflab warmup``).

numba compiles a kernel the first time it runs and caches the machine code on
disk (``cache=True``, next to the module, or in ``NUMBA_CACHE_DIR``), so only the
first analysis in a new environment waits for the compiler (a few seconds on two
cores: the FR layout, the k-NN search, the Zernike transform of large stacks
of large patches, the columns' Gaussian fit; ``benchmarks/bench_compile.py``), and
:func:`compile_ahead` lets the compiler work while the first stages compute:
the kernels needed at once on a background thread, the others in a helper
Python process that writes the on-disk cache the stages then load (numba
compiles one kernel at a time and holds the GIL while it types and lowers, so
on a thread it slows the stages beside it; ``MOTIFLAB_COMPILE_AHEAD=thread``
or ``=off`` overrides). The progress bar of an analysis says
"compiling once" on a stage whose kernels this environment has not run yet
(:func:`is_warm`). :func:`warm_up` runs every kernel on
small inputs so that this happens now, once: Binder's ``postBuild`` calls it,
and so should a container build, or a cluster job before it starts many Dask
workers that would otherwise all compile the same kernels at the same time.

Examples
--------
>>> from motiflab.warmup import warm_up
>>> seconds = warm_up()          # doctest: +SKIP
"""
from __future__ import annotations

import threading
import time

import numpy as np

__all__ = ["warm_up", "is_warm", "mark_warm", "compile_ahead", "await_ahead", "release_helper"]


def _marker(stage) -> str:
    """A file that says this environment has run ``stage``'s kernels (beside numba's own cache)."""
    import os

    import numba

    import motiflab

    root = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(os.path.dirname(motiflab.__file__), "__pycache__")
    return os.path.join(root, f"motiflab-{motiflab.__version__}-numba-{numba.__version__}-{stage}.warm")


def is_warm(stage) -> bool:
    """Whether ``stage`` has run in this environment before (its numba kernels are cached)."""
    import os

    return os.path.exists(_marker(stage))


def mark_warm(stage) -> None:
    """Record that ``stage`` ran (and numba cached its kernels); silently skipped where nothing can be written."""
    import os

    try:
        path = _marker(stage)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a"):
            pass
    except OSError:
        pass


#: kernel groups :func:`compile_ahead` has started compiling in this process
_AHEAD_STARTED: set = set()
_AHEAD_LOCK = threading.Lock()
#: group -> Event set when a helper process has compiled (and cached) it
_AHEAD_EVENTS: dict = {}
#: stages whose kernels a helper process may compile
_HELPER_STAGES = frozenset({"patches", "features", "graph", "layout"})

#: Where :func:`compile_ahead` compiles the kernels that are not needed at once:
#: ``"process"`` (a helper Python process writing numba's on-disk cache, which
#: the stages then load: numba compiles one kernel at a time and holds the GIL
#: while it types and lowers, so on a thread it slows the stages it runs beside)
#: or ``"thread"``.  ``MOTIFLAB_COMPILE_AHEAD=thread`` or ``=off`` overrides.
AHEAD_MODE = "process"

#: seconds a stage waits for a helper process before compiling its kernels itself
_AHEAD_TIMEOUT = 600.0


def _ahead_groups(an, stages):
    """The kernel groups ``stages`` of ``an`` will run that can be compiled now: {group: spec}.

    A spec is ``(kind, argument)`` for :func:`_compile_spec`, so it can be run
    on a thread or sent to a helper process.
    """
    groups = {}
    cols = an._cache.get("columns")
    n = len(cols.positions) if getattr(cols, "positions", None) is not None else None
    if "columns" in stages:
        groups["columns"] = ("gauss2d", None)
    if "patches" in stages:
        groups["patches"] = ("gather", None)
    big = np.prod(np.shape(an.image)[:2]) >= 1024**2
    P = getattr(an._cache.get("patch_size"), "patch_size", None)
    if "features" in stages and n is not None and P is not None:
        from .zernike import takes_d4

        if takes_d4(n, int(P)):
            # the symmetry-adapted Zernike transform of large stacks of large patches
            groups["features"] = ("d4", None)
    if "graph" in stages:
        from .neighbors import EXACT_MAX_POINTS

        groups["graph"] = ("search", False)
        # the approximate search's extra kernel (cheap), from the start for images that may
        # well have more than EXACT_MAX_POINTS columns, before the FR driver's long compile
        if (n > EXACT_MAX_POINTS) if n is not None else big:
            groups["graph, approximate"] = ("search", True)
    if "layout" in stages and (n is not None or big):
        # before the columns, an image of 1024² px or more nearly always has enough
        # (>= 1 000) for the FR driver of large inputs: compile that one now, its
        # compile being the longest, rather than in the short wait after the columns
        from .stages import layout_kernel_flags

        flags = layout_kernel_flags(an._params, n if n is not None else 10**9)
        if flags:
            groups["layout"] = ("driver", flags)
    return groups


def _compile_spec(kind, arg):
    """Compile (or load from numba's cache) the kernels of one group spec (see :func:`_ahead_groups`)."""
    if kind == "gauss2d":
        from ._columns_kernels import compile_gauss2d_fit

        compile_gauss2d_fit()
    elif kind == "gather":
        from ._patches_kernels import compile_gather_bilinear

        compile_gather_bilinear()
    elif kind == "d4":
        from .zernike import zernike_moments

        zernike_moments(np.zeros((4096, 32, 32), np.float32))  # ~10 ms warm
    elif kind == "search":
        from ._neighbors_kernels import compile_search

        # False: the kernels every search uses; True: the approximate search's own
        compile_search(approx=bool(arg), exact=not arg)
    elif kind == "driver":
        from ._layout_kernels import compile_driver

        for flag in arg:
            compile_driver(bool(flag))
    else:
        raise ValueError(f"unknown kernel group {kind!r}")


def _helper_main():
    """Entry point of the helper process: compile the groups read from stdin, print each name when cached.

    Of the groups waiting, the one whose stage runs first goes first: the
    Zernike kernel, known only once the patch size is, must not queue behind
    the FR driver sent at the start.
    """
    import json
    import sys

    pending, ended = [], []
    cond = threading.Condition()

    def read():
        for line in sys.stdin:
            with cond:
                pending.append(json.loads(line))
                cond.notify()
        with cond:
            ended.append(True)
            cond.notify()

    threading.Thread(target=read, daemon=True).start()
    while True:
        with cond:
            while not pending and not ended:
                cond.wait()
            if not pending:
                return
            item = min(pending, key=lambda it: _stage_rank(it[0]))
            pending.remove(item)
        group, kind, arg = item
        try:
            _compile_spec(kind, arg)
        except Exception:  # noqa: BLE001  (the stage compiles again, and reports, when it runs)
            pass
        sys.stdout.write(group + "\n")
        sys.stdout.flush()


def _stage_rank(group) -> int:
    order = ("columns", "patches", "features", "graph", "layout")
    stage = group.split(",")[0]
    return order.index(stage) if stage in order else len(order)


def _ahead_mode():
    import os
    import sys

    mode = os.environ.get("MOTIFLAB_COMPILE_AHEAD", AHEAD_MODE)
    if mode == "process" and not (sys.executable and _cache_writable()):
        mode = "thread"  # a helper's compile would not reach this process
    return mode


def _cache_writable() -> bool:
    """Whether numba's cache (where the markers live too) can be written here."""
    import os

    root = os.path.dirname(_marker("columns"))
    try:
        os.makedirs(root, exist_ok=True)
    except OSError:
        return False
    return os.access(root, os.W_OK)


class _Ahead:
    """What :func:`compile_ahead` started: a thread compiling here and the groups sent to the helper.

    ``join(timeout)`` waits for both.
    """

    thread = None
    groups = ()

    def join(self, timeout=None):
        if self.thread is not None:
            self.thread.join(timeout)
        for g in self.groups:
            _AHEAD_EVENTS[g].wait(timeout)


class _Helper:
    """A helper Python process that compiles the kernel groups sent to it (one JSON line each).

    Of the groups waiting, the earliest stage's goes first (:func:`_helper_main`).

    It writes numba's on-disk cache; a group's :class:`threading.Event` (in
    ``_AHEAD_EVENTS``) is set when the helper has cached it, or has ended.
    """

    closed = False

    def __init__(self):
        import os
        import subprocess
        import sys

        import motiflab

        env = dict(os.environ)
        # the helper must import this very motiflab (a source tree or a test path may not be installed)
        root = os.path.dirname(os.path.dirname(os.path.abspath(motiflab.__file__)))
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        code = "from motiflab.warmup import _helper_main; _helper_main()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
        self.groups = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, name="motiflab-compile-ahead-reader", daemon=True).start()

    def _read(self):
        try:
            for line in self.proc.stdout:
                event = _AHEAD_EVENTS.get(line.strip())
                if event is not None:
                    event.set()
        finally:
            with self._lock:
                self.closed = True
                for g in self.groups:  # the helper ended (or died): nobody waits any longer
                    _AHEAD_EVENTS[g].set()
            self.proc.wait()

    def send(self, group, spec) -> bool:
        """Queue ``group``; False if the helper has ended (the caller compiles it itself)."""
        import json

        with self._lock:
            if self.closed or self.proc.poll() is not None:
                return False
            _AHEAD_EVENTS[group] = threading.Event()
            self.groups.append(group)
            try:
                self.proc.stdin.write(json.dumps([group, *spec]) + "\n")
                self.proc.stdin.flush()
            except (OSError, ValueError):
                _AHEAD_EVENTS[group].set()
                return False
        return True

    def close(self):
        """No more groups: the helper exits once it has compiled those queued."""
        self.closed = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # numba writes its cache files atomically: nothing half-written stays


_HELPER: list = []  # the live helper of this process, if any


def _get_helper():
    """The live helper process (started now if there is none), or None if none can start."""
    import atexit

    if _HELPER and not _HELPER[0].closed and _HELPER[0].proc.poll() is None:
        return _HELPER[0]
    try:
        helper = _Helper()
    except OSError:
        return None
    if not _HELPER:
        atexit.register(_stop_helper)
    _HELPER[:] = [helper]
    return helper


def _stop_helper():
    for helper in _HELPER:
        helper.stop()


def release_helper() -> None:
    """Let the helper process exit once it has compiled what it was sent (end of an analysis's stages)."""
    if _HELPER:
        _HELPER[0].close()


def await_ahead(stage, meanwhile=None) -> None:
    """Wait until a helper process has compiled the kernels of ``stage`` (if one is compiling them).

    :meth:`motiflab.Analysis.get` calls it before each stage, so the stage
    loads the helper's cached machine code instead of compiling the same
    kernels a second time.  ``meanwhile``, if given, is called first when
    there is something to wait for (the analysis imports the coming stages'
    modules then).
    """
    events = [event for group, event in list(_AHEAD_EVENTS.items()) if group.split(",")[0] == stage]
    if meanwhile is not None and not all(event.is_set() for event in events):
        meanwhile()
    for event in events:
        event.wait(_AHEAD_TIMEOUT)


def compile_ahead(an, stages):
    """Compile the numba kernels of ``stages`` of ``an`` in the background; returns a handle (or None).

    In an environment that has not run a stage yet (:func:`is_warm`), its
    kernels are compiled while the stages before it compute, instead of when
    it starts.  The columns' Gaussian fit, needed within a second, compiles
    on a background thread; the others in a helper Python process
    (:data:`AHEAD_MODE`), which writes numba's on-disk cache for the stages
    to load (:func:`await_ahead`), so the compiler runs on the other core
    without taking this process's GIL.  Covered: from the start, in the
    order the stages need them, the columns' Gaussian fit, the sub-pixel
    patch gather and the k-NN search and fuzzy graph (and, for images of
    1024² px or more, the FR driver of large inputs); once the columns are
    found (their number picks the kernels), the approximate search and the
    FR driver of the layout; once the patch size is known, the Zernike
    transform of large stacks where it will run
    (:func:`motiflab.zernike.takes_d4`).  Each group is started once per
    process.  A kernel that fails to compile here is left for its stage,
    which then raises the error.  The handle's ``join(timeout)`` waits for
    the thread and the helper's groups.
    """
    mode = _ahead_mode()
    if mode == "off":
        return None
    stages = [s for s in stages if not is_warm(s)]
    if not stages:
        return None
    helper = None
    if mode == "process" and set(stages) & _HELPER_STAGES:
        helper = _get_helper()  # first: it imports numba while the groups are worked out here
    with _AHEAD_LOCK:
        todo = {g: spec for g, spec in _ahead_groups(an, stages).items() if g not in _AHEAD_STARTED}
        _AHEAD_STARTED.update(todo)
    if not todo:
        return None
    handle = _Ahead()
    # the columns' fit is needed within a second: compiled on a thread of this process
    handle.groups = tuple(g for g in todo if helper is not None and g != "columns" and helper.send(g, todo[g]))
    here = [spec for g, spec in todo.items() if g not in handle.groups]
    if here:
        def work():
            for kind, arg in here:
                try:
                    _compile_spec(kind, arg)
                except Exception:  # noqa: BLE001  (the stage compiles again, and reports, when it runs)
                    pass

        handle.thread = threading.Thread(target=work, name="motiflab-compile-ahead", daemon=True)
        handle.thread.start()
    return handle


def _pipeline():
    from .analysis import Analysis
    from .datasets import make_tmd

    # columns, patches, exact k-NN, the layout's run-time kernel copy
    # (used below ~800 columns; the paper stages' copy is in _large_inputs), motifs
    sim = make_tmd("MoSe2", shape=(160, 160), chalcogen_vacancy_rate=0.05, dose=60, seed=0)
    an = Analysis(sim.to_signal(), n_iter=20, seed=0).run()
    an.hierarchy
    # the kernels only some images reach: centre-of-mass refinement (where a Gaussian fit
    # fails), the rotational average of rotation-invariant runs
    from .columns import refine_positions
    from .patches import rotational_average

    refine_positions(an.image, an.positions[:8], 9.0, method="com")
    rotational_average(an.patches.patches[:4], 6)


def _large_inputs():
    from .layout import FRLayout
    from .neighbors import knn_graph
    from .zernike import zernike_moments

    rng = np.random.default_rng(0)
    # the FR kernel copy with the paper stages' exponents as literals (above ~800 points)
    FRLayout(n_iter=4, random_state=0).fit_transform(rng.normal(size=(1500, 8)).astype(np.float32))
    # the symmetry-adapted Zernike transform of large stacks of large patches (>= 2**22 pixels, >= 32²)
    zernike_moments(rng.random((4096, 32, 32), dtype=np.float32))
    # the approximate k-NN search used above EXACT_MAX_POINTS columns
    knn_graph(rng.normal(size=(3000, 66)).astype(np.float32), 10, method="approx")


def warm_up(progress=True) -> dict:
    """Run every numba kernel of motiflab once on small inputs, so later runs start compiled.

    Parameters
    ----------
    progress : bool, default True
        Show a progress bar (tqdm) over the two parts.

    Returns
    -------
    dict
        Seconds spent on ``"pipeline"`` (the whole analysis of a small
        synthetic image and its hierarchy) and ``"large_inputs"`` (the kernels
        only large images use: the FR driver of the paper's stages, the blocked
        Zernike transform, approximate k-NN).  Seconds,
        not minutes, mean the kernels were already cached.
    """
    from tqdm.auto import tqdm

    parts = {"pipeline": _pipeline, "large_inputs": _large_inputs}
    seconds = {}
    with tqdm(total=len(parts), desc="compiling numba kernels", unit="part", disable=not progress) as bar:
        for name, fn in parts.items():
            t0 = time.perf_counter()
            fn()
            seconds[name] = time.perf_counter() - t0
            bar.update(1)
    return seconds
