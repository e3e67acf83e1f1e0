"""Compile every numba kernel once, ahead of the first analysis (``motiflab warmup``).

numba compiles a kernel the first time it runs and caches the machine code on
disk (``cache=True``, next to the module, or in ``NUMBA_CACHE_DIR``), so only the
first analysis in a new environment waits for the compiler (a few seconds on two
cores: the FR layout, the k-NN search, the Zernike transform of large stacks
of large patches, the columns' Gaussian fit; more for
fast_hdbscan, used only for unsubsampled inputs above 10 000 points or
``cluster_selection_epsilon > 0``; ``benchmarks/bench_compile.py``), and
:func:`compile_ahead` lets the compiler work on a background thread while the
first stages compute. The progress bar of an analysis says
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

__all__ = ["warm_up", "is_warm", "mark_warm", "compile_ahead"]


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


def _ahead_groups(an, stages):
    """The kernel groups ``stages`` of ``an`` will run that can be compiled now: {group: compile function}."""
    groups = {}
    cols = an._cache.get("columns")
    n = len(cols.positions) if getattr(cols, "positions", None) is not None else None
    if "columns" in stages:
        from ._columns_kernels import compile_gauss2d_fit

        groups["columns"] = compile_gauss2d_fit
    if "patches" in stages:
        from ._patches_kernels import compile_gather_bilinear

        groups["patches"] = compile_gather_bilinear
    big = np.prod(np.shape(an.image)[:2]) >= 1024**2
    P = getattr(an._cache.get("patch_size"), "patch_size", None)
    if "features" in stages and n is not None and P is not None:
        from .zernike import takes_d4, zernike_moments

        if takes_d4(n, int(P)):
            # the symmetry-adapted Zernike transform of large stacks of large patches:
            # run it once on such a stack (~10 ms warm)
            groups["features"] = lambda: zernike_moments(np.zeros((4096, 32, 32), np.float32))
    if "graph" in stages:
        from ._neighbors_kernels import compile_search
        from .neighbors import EXACT_MAX_POINTS

        # the approximate search's extra kernel (cheap) for images that may well have more
        # than EXACT_MAX_POINTS columns, before the FR driver takes the compiler for seconds
        large = n > EXACT_MAX_POINTS if n is not None else big
        groups["graph"] = lambda: compile_search(approx=large)
        if n is not None and n > EXACT_MAX_POINTS:
            groups["graph, approximate"] = lambda: compile_search(approx=True)
    if n is None:
        # the rest depends on the number of columns, except that an image of 1024² px or more
        # nearly always has enough (>= 1 000) for the FR driver of large inputs: compile that
        # one now, its compile being the longest, rather than in the short wait after the columns
        if "layout" in stages and big:
            estimator = an.layout_estimator()
            groups["layout"] = lambda: estimator.compile_kernels(10**9)
        return groups
    if "layout" in stages:
        estimator = an.layout_estimator()
        groups["layout"] = lambda: estimator.compile_kernels(n)
    return groups


def compile_ahead(an, stages) -> threading.Thread | None:
    """Compile the numba kernels of ``stages`` of ``an`` on a background thread; returns it (or None).

    In an environment that has not run a stage yet (:func:`is_warm`), its
    kernels are compiled while the stages before it compute, instead of when
    it starts: the compiler (numba holds one lock for all compiles, so one
    kernel at a time) works beside the smoothing, the column finder's filters
    and the k-NN search, which spend their time in NumPy, SciPy and BLAS.
    Covered: from the start, in the order the stages need them, the
    columns' Gaussian fit, the sub-pixel patch gather and the k-NN search
    and fuzzy graph (and, for images of 1024² px or more, the FR driver of
    large inputs); once the columns are found (their number picks the
    kernels), the approximate search and the FR driver of the layout; once
    the patch size is known, the Zernike transform of large stacks where it
    will run (:func:`motiflab.zernike.takes_d4`).  Each group is started once per
    process.  A kernel that fails to compile here is left for its stage,
    which then raises the error.
    """
    stages = [s for s in stages if not is_warm(s)]
    with _AHEAD_LOCK:
        todo = {g: f for g, f in _ahead_groups(an, stages).items() if g not in _AHEAD_STARTED}
        _AHEAD_STARTED.update(todo)
    if not todo:
        return None

    def work():
        for compile_group in todo.values():
            try:
                compile_group()
            except Exception:  # noqa: BLE001  (the stage compiles again, and reports, when it runs)
                pass

    thread = threading.Thread(target=work, name="motiflab-compile-ahead", daemon=True)
    thread.start()
    return thread


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
    from .motifs import SKLEARN_MAX_POINTS, hdbscan_estimator
    from .neighbors import knn_graph
    from .zernike import zernike_moments

    rng = np.random.default_rng(0)
    # the FR kernel copy with the paper stages' exponents as literals (above ~800 points)
    FRLayout(n_iter=4, random_state=0).fit_transform(rng.normal(size=(1500, 8)).astype(np.float32))
    # the symmetry-adapted Zernike transform of large stacks of large patches (>= 2**22 pixels, >= 32²)
    zernike_moments(rng.random((4096, 32, 32), dtype=np.float32))
    # the approximate k-NN search used above EXACT_MAX_POINTS columns
    knn_graph(rng.normal(size=(3000, 66)).astype(np.float32), 10, method="approx")
    # fast_hdbscan, used above SKLEARN_MAX_POINTS unsubsampled layout points and for
    # cluster_selection_epsilon > 0 (the same compiled code for any size)
    centres = rng.normal(0, 20, (4, 2))
    Y = centres[rng.integers(0, 4, 600)] + rng.normal(size=(600, 2))
    hdbscan_estimator(SKLEARN_MAX_POINTS + 1, 10, 10, 0.0).fit_predict(Y)


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
        Zernike transform, approximate k-NN, fast_hdbscan).  Seconds,
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
