"""The analysis object: parameters plus cached stage results.

Data flows one way down the stages of the method::

    columns → patch_size → patches → features → graph → layout → motifs → hierarchy

Every parameter is declared once, in :mod:`motiflab.parameters`, and feeds
exactly one stage; :mod:`motiflab.stages` says how each stage is computed. Changing a parameter with
:meth:`Analysis.set` drops the cached result of that stage and of every stage
after it; nothing upstream is recomputed. A force-schedule change therefore
re-runs only the layout and the clustering, which is what makes sliders in the
explorer feel instant. Both the command line and the widgets go through this
object (and read the hierarchy from it), so they cannot disagree.

Examples
--------
>>> import motiflab
>>> sample = motiflab.datasets.load_sample()
>>> an = motiflab.Analysis(sample.to_signal(), seed=0)
>>> labels = an.motifs.labels          # runs every stage once
>>> an.set(stage2_alpha=8.0)           # only layout and motifs become stale
['layout', 'motifs']
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import parameters
from .errors import MotifLabError
from .parameters import DEFAULTS, PARAM_STAGE, STAGES
from .stages import COMPUTE, Features, Layout, import_stage_modules, layout_estimator

__all__ = ["Analysis", "STAGES", "PIPELINE", "DEFAULTS", "PARAM_STAGE", "Features", "Layout", "analyze"]

#: the stages :meth:`Analysis.run` computes; the hierarchy after them is built when asked for
PIPELINE = STAGES[: STAGES.index("motifs") + 1]


class _Failed:
    """A stage that refused its inputs: the refusal is cached like a result, until they change."""

    def __init__(self, exc: MotifLabError):
        self.message = str(exc)


def check_save_suffix(path) -> str:
    """The suffix :meth:`Analysis.save` writes for ``path`` (``.hspy`` or ``.npz``); refuses any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".hspy", ".npz"):
        raise MotifLabError(f"save to .hspy (the whole analysis) or .npz (the RESULT arrays); got {str(path)!r}.")
    return suffix


class Analysis:
    """One micrograph's motif analysis: parameters + cached stage results.

    Parameters
    ----------
    data : str, Path, ndarray or hyperspy Signal2D
        The micrograph (anything :func:`motiflab.load` accepts).
    frame : int, optional
        Frame of a stack to analyse.
    progress : bool
        Show a tqdm progress bar over the stages (terminal and notebook).
    **params
        Any of :data:`DEFAULTS`; unknown names raise with the list of valid ones.

    Attributes
    ----------
    image : ndarray
        The image as float32 (as loaded; inversion for ABF happens inside
        column finding).
    calibration : motiflab.io.Calibration
    signal : hyperspy Signal2D
        The loaded signal (calibrated axes).
    log : list of (stage, seconds)
        Every stage computation, in order — what ran and how long it took.
    """

    def __init__(self, data, frame=None, progress=False, **params):
        from .columns import validate_image
        from .io import as_image

        raw, self.calibration, self.signal = as_image(data, frame=frame)
        #: the file the image was read from (None for arrays and signals); never written over
        self.source_path = str(data) if isinstance(data, (str, Path)) else None
        #: SHA-256 of that file as it was read (provenance of every result saved from this analysis)
        self.source_sha256 = None
        if self.source_path is not None:
            from .results import file_sha256

            self.source_sha256 = file_sha256(self.source_path)
        from .image_checks import power_of_two_gain

        #: the power of two the image was divided by (1 unless its values were beyond float32's
        #: comfortable range, above 1e9 or below 1e-20); positions do not depend on it
        self.image_gain = power_of_two_gain(raw)
        self.image = validate_image(np.asarray(raw, dtype=np.float64) / self.image_gain
                                    if self.image_gain != 1.0 else raw)
        self.progress = progress
        self._params = dict(DEFAULTS)
        self._params.update(parameters.validate_all(params))
        self._cache: dict[str, object] = {}
        self.log: list[tuple[str, float]] = []
        self._callbacks = []
        #: curation edits (see :mod:`motiflab.curation`), replayed on every clustering so
        #: they survive re-running upstream stages, and saved with the result
        self.edits: list[dict] = []
        self._layout_callbacks = []

    def copy(self) -> "Analysis":
        """A new analysis of the same image with the same parameters, edits and computed stages.

        The stage results are shared (they are never modified in place), so a
        copy is cheap; changing a parameter of the copy recomputes only the
        copy's stages. Callbacks (of an explorer) are not copied.
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._params = dict(self._params)
        new._cache = dict(self._cache)
        new._derived = dict(self.__dict__.get("_derived", {}))
        new.log = list(self.log)
        new.edits = [dict(e) for e in self.edits]
        new._callbacks, new._layout_callbacks = [], []
        return new

    # ------------------------------------------------------------------ parameters
    @property
    def params(self) -> dict:
        """A copy of the current parameters (auto values as ``None`` / ``"auto"``)."""
        return dict(self._params)

    def effective_params(self) -> dict:
        """The parameters with every auto value replaced by what the method uses.

        Values that depend on the data (spacing, patch size, smallest motif) are
        filled in from the stages computed so far, and stay auto until then.
        """
        out = {k: parameters.effective_value(k, v) for k, v in self._params.items()}
        cols = self._cache.get("columns")
        if cols is not None and not isinstance(cols, _Failed):
            if out["spacing"] is None:
                out["spacing"] = float(cols.spacing)
            if out["smoothing_strength"] is None:  # the Gaussian width, or the FFT's kept fraction
                used = [v for k, v in cols.params.get("smoothing_params", {}).items() if k in ("sigma", "keep")]
                out["smoothing_strength"] = float(used[0]) if used and used[0] is not None else None
        if "patch_size" in self._cache:
            out["patch_size"] = self.patch_size
        if "patches" in self._cache and out["min_cluster_size"] is None:
            from .motifs import default_min_cluster_size

            out["min_cluster_size"] = default_min_cluster_size(len(self._cache["patches"].index))
        return out

    def set(self, **params) -> list:
        """Change parameters; return the stages whose cached results were dropped.

        Every value is validated first (a bad one changes nothing and raises a
        :class:`~motiflab.errors.MotifLabError` naming the allowed values). Only
        the stage a parameter feeds and the stages after it are dropped. Setting
        a parameter to its current value drops nothing.
        """
        params = parameters.validate_all(params)
        changed = {k: v for k, v in params.items() if not _same(self._params[k], v)}
        if not changed:
            return []
        self._params.update(changed)
        first = min(STAGES.index(PARAM_STAGE[k]) for k in changed)
        return self._drop(STAGES[first:])

    def _drop(self, stages) -> list:
        stale = [s for s in stages if s in self._cache and not isinstance(self._cache[s], _Failed)]
        for s in stages:
            self._cache.pop(s, None)
        return stale

    def restore_stage(self, stage, result):
        """Cache ``result`` as the result of ``stage`` without computing it (an analysis opened from a file)."""
        if stage not in STAGES:
            raise MotifLabError(f"unknown stage {stage!r}; stages are {STAGES}.")
        self._cache[stage] = result

    def derived(self, stage, name, compute):
        """``compute()``, a value that depends on ``stage``'s result alone: computed once per result of it.

        Kept (under ``name``) until that stage is computed again, like the
        stage results themselves: the motifs stage asks for the columns'
        neighbour table, which a new layout of the same columns does not change.
        """
        import weakref

        result = self.get(stage)
        kept = self.__dict__.setdefault("_derived", {})
        hit = kept.get(name)
        if hit is not None and hit[0]() is result:
            return hit[1]
        value = compute()
        kept[name] = (weakref.ref(result), value)  # weak: a dropped stage result is not held here
        return value

    def is_cached(self, stage) -> bool:
        return stage in self._cache and not isinstance(self._cache[stage], _Failed)

    def on_stage(self, callback):
        """Register ``callback(stage, seconds)`` called after each stage computes (for UIs)."""
        self._callbacks.append(callback)

    def on_layout_progress(self, callback):
        """Register ``callback(iteration, embedding)``, called at every FR snapshot.

        An exception raised by the callback aborts the layout stage, which then
        stays uncomputed — this is how the explorer cancels a stale run.
        """
        self._layout_callbacks.append(callback)

    # ------------------------------------------------------------------ stage access
    def get(self, stage):
        """The result of ``stage``, computing it (and any stale upstream stage) if needed.

        A stage that refuses its inputs (too few columns, no lattice for the
        hierarchy…) raises its :class:`~motiflab.errors.MotifLabError` again on
        every call until a parameter it depends on changes.
        """
        if stage not in STAGES:
            raise MotifLabError(f"unknown stage {stage!r}; stages are {STAGES}.")
        upto = STAGES[: STAGES.index(stage) + 1]
        for s in upto:
            if isinstance(self._cache.get(s), _Failed):
                raise MotifLabError(self._cache[s].message)
        # the stages after the last one cached (a stage restored from a file or a model needs none of
        # its inputs computed again; a stage that does need an earlier one asks for it with get)
        todo = []
        for s in reversed(upto):
            if s in self._cache:
                break
            todo.insert(0, s)
        bar = None
        if self.progress and len(todo) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="motiflab", unit="stage")
        from . import warmup

        self._depth = getattr(self, "_depth", 0) + 1
        try:
            # in a new environment, compile kernels of the coming stages while the first ones compute
            warmup.compile_ahead(self, todo)
            for s in todo:
                if bar is not None:
                    # a new environment compiles numba kernels on first use: say why it waits
                    bar.set_postfix_str(s if warmup.is_warm(s) else f"{s} (compiling once)")
                t0 = time.perf_counter()
                # kernels a helper process is compiling: load them, do not compile again; while
                # it works, import what the coming stages need (scikit-learn, ~0.5 s)
                coming = todo[todo.index(s):]
                warmup.await_ahead(s, meanwhile=lambda: import_stage_modules(coming))
                try:
                    self._cache[s] = COMPUTE[s](self)
                except MotifLabError as exc:
                    self._cache[s] = _Failed(exc)
                    raise
                dt = time.perf_counter() - t0
                warmup.compile_ahead(self, todo[todo.index(s) + 1:])  # those the columns' number picks
                warmup.mark_warm(s)
                self.log.append((s, dt))
                for cb in self._callbacks:
                    cb(s, dt)
                if bar is not None:
                    bar.update()
        finally:
            self._depth -= 1
            if todo and not self._depth:
                warmup.release_helper()  # a compile helper exits once it has compiled what it was sent
            if bar is not None:
                bar.close()
        return self._cache[stage]

    def run(self):
        """Compute every stage of :data:`PIPELINE` that is not cached; returns ``self``.

        The hierarchy is built when first asked for (:attr:`hierarchy`).
        """
        self.get(PIPELINE[-1])
        return self

    columns = property(lambda self: self.get("columns"), doc="Found columns (:class:`motiflab.columns.Columns`).")
    patch_size_estimate = property(lambda self: self.get("patch_size"), doc="Patch size and its RDF estimate.")
    patches = property(lambda self: self.get("patches"), doc="Extracted patches (:class:`motiflab.patches.Patches`).")
    features = property(lambda self: self.get("features"), doc="Zernike features (:class:`Features`).")
    graph = property(lambda self: self.get("graph"), doc="Fuzzy kNN graph (scipy CSR) of the features.")
    layout = property(lambda self: self.get("layout"), doc="FR layout with snapshots (:class:`Layout`).")
    motifs = property(lambda self: self.get("motifs"), doc="Motif classes (:class:`motiflab.motifs.Motifs`).")
    hierarchy = property(lambda self: self.get("hierarchy"),
                         doc="Motif-cell hierarchy (:class:`motiflab.hierarchy.Hierarchy`) of the current motifs.")

    @property
    def patch_size(self) -> int:
        return int(self.get("patch_size").patch_size)

    @property
    def positions(self) -> np.ndarray:
        """(N, 2) positions of the analysed columns (those kept after patch extraction)."""
        cols = self.get("columns")
        return cols.positions[self.get("patches").index]

    def layout_estimator(self):
        """An unfitted :class:`motiflab.layout.FRLayout` configured from the parameters."""
        callback = None
        if self._layout_callbacks:
            cbs = list(self._layout_callbacks)

            def callback(it, Y):
                for cb in cbs:
                    cb(it, Y)

        return layout_estimator(self._params, callback=callback, verbose=self.progress)

    # ------------------------------------------------------------------ curation
    def edit(self, edit: dict):
        """Record a curation edit (assign / merge / split, see :mod:`motiflab.curation`) and apply it.

        Only the motifs stage is recomputed; the edit is replayed whenever the
        motifs are recomputed later (e.g. after a layout change).
        """
        from .curation import validate_edit

        self.edits.append(validate_edit(edit, self))
        self._drop(STAGES[STAGES.index("motifs"):])
        return self.motifs

    def undo(self):
        """Undo the last curation edit; returns the motifs without it."""
        if not self.edits:
            raise MotifLabError("nothing to undo.")
        self.edits.pop()
        self._drop(STAGES[STAGES.index("motifs"):])
        return self.motifs

    # ------------------------------------------------------------------ outputs
    def model(self, novelty_quantile=0.999):
        """The motifs of this analysis (curation included) as a saveable :class:`motiflab.model.MotifModel`.

        ``model.classify(image)`` classifies other images into the same motifs;
        see :mod:`motiflab.model`.
        """
        from .model import MotifModel

        return MotifModel.from_analysis(self, novelty_quantile=novelty_quantile, progress=self.progress)

    def reconstruction(self) -> np.ndarray:
        """The micrograph rebuilt from class averages (normalised intensity units)."""
        from .motifs import reconstruct_image

        m = self.motifs
        return reconstruct_image(self.image.shape, self.positions, m.labels, m.class_averages)

    def result_arrays(self) -> dict:
        """The arrays of the ``motiflab run`` RESULT.npz contract (see :func:`motiflab.results.result_arrays`)."""
        from .results import result_arrays

        return result_arrays(self)

    def detection_record(self) -> dict:
        """How the columns were found: smoothing used, thresholds, lattice, noise (JSON-ready)."""
        from .results import detection_record

        return detection_record(self)

    def provenance(self) -> dict:
        """Software versions, input file and its SHA-256, time (see :func:`motiflab.results.provenance`)."""
        from .results import provenance

        return provenance(self)

    def table(self):
        """One row per analysed column as a pandas DataFrame (see :func:`motiflab.results.column_table`)."""
        from .results import column_table

        return column_table(self)

    def save(self, path, overwrite=False) -> Path:
        """Save the analysis; never over an existing file unless ``overwrite``, never over its input.

        ``.hspy`` writes the whole analysis (image, parameters, every computed
        stage, curation history, provenance), which
        :func:`motiflab.open_analysis` opens again; ``.npz`` writes the RESULT
        arrays of the command-line contract (:func:`motiflab.open_result`).
        Every write is atomic (:func:`motiflab.files.write_atomic`).
        """
        from .files import check_writable, write_atomic

        suffix = check_save_suffix(path)
        if suffix == ".hspy":
            from .analysis_file import save_analysis

            return save_analysis(self, path, overwrite=overwrite)
        check_writable(path, overwrite, inputs=self.input_files())
        arrays = self.result_arrays()
        return write_atomic(path, lambda f: np.savez_compressed(f, **arrays), overwrite, inputs=self.input_files())

    def input_files(self) -> list:
        """The files this analysis read (never to be written over)."""
        return [self.source_path] if getattr(self, "source_path", None) else []

    def markers(self, size=10):
        """Column positions as HyperSpy markers coloured by motif (``signal.add_marker(...)``)."""
        from .io import to_markers

        return to_markers(self.positions, self.motifs.labels, self.calibration, size=size)

    def label_map(self):
        """Motif label map as a calibrated Signal2D."""
        from .io import label_map_signal

        return label_map_signal(self.image.shape, self.positions, self.motifs.labels, self.calibration)

    def class_averages_signal(self):
        """Class-average motif images as a Signal2D stack."""
        from .io import class_averages_signal

        return class_averages_signal(self.motifs.class_averages, self.calibration)

    def to_atomap(self, motif=None):
        """Motifs as Atomap sublattices (one motif: ``Sublattice``; all: ``Atom_Lattice``); see :func:`motiflab.io.to_atomap`."""
        from .io import to_atomap

        return to_atomap(self.image, self.positions, self.motifs.labels, motif, self.calibration)

    def summary(self) -> str:
        """A few lines describing the result, for terminals and logs."""
        from .results import summary

        return summary(self)


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


def analyze(data, frame=None, progress=False, **params) -> Analysis:
    """Run the whole pipeline on ``data`` and return the computed :class:`Analysis`."""
    return Analysis(data, frame=frame, progress=progress, **params).run()
