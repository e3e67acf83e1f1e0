"""The analysis object: parameters plus cached stage results.

Data flows one way down the stages of the method::

    columns → patch_size → patches → features → graph → layout → motifs

Every parameter feeds exactly one stage. Changing a parameter with
:meth:`Analysis.set` drops the cached result of that stage and of every stage
after it; nothing upstream is recomputed. A force-schedule change therefore
re-runs only the layout and the clustering, which is what makes sliders in the
explorer feel instant. Both the command line and the widgets go through this
object, so they cannot disagree.

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

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MotifLabError

__all__ = ["Analysis", "STAGES", "DEFAULTS", "PARAM_STAGE", "analyze"]

STAGES = ("columns", "patch_size", "patches", "features", "graph", "layout", "motifs")

#: default value of every parameter, grouped by the stage it feeds
_STAGE_PARAMS = {
    "columns": dict(smoothing="matched", smoothing_strength=None, threshold=5.0, refine="gaussian",
                    invert="auto", border=2, spacing=None, lattice="auto", min_contrast=0.1),
    "patch_size": dict(patch_size="auto", patch_scale=1.3),
    "patches": dict(patch_border="drop", patch_subpixel=True),
    "features": dict(n_max=10, rotinv=False),
    "graph": dict(n_neighbors=10, seed=0),
    "layout": dict(negative_samples=5, n_iter=None, stage_split=None,
                   stage1_alpha=None, stage1_beta=None, stage1_n=None, stage1_m=None, stage1_lr=None,
                   stage2_alpha=None, stage2_beta=None, stage2_n=None, stage2_m=None, stage2_lr=None,
                   snapshot_max_mb=64),
    "motifs": dict(min_cluster_size=None, min_samples=None, cluster_selection_epsilon=0.0, min_separation=2.5),
}
PARAM_STAGE = {p: stage for stage, ps in _STAGE_PARAMS.items() for p in ps}
DEFAULTS = {p: v for ps in _STAGE_PARAMS.values() for p, v in ps.items()}


@dataclass
class Features:
    """Zernike features of the kept columns."""

    X: np.ndarray          # (N, J) float32
    n_max: int
    rotinv: bool


@dataclass
class Layout:
    """The FR layout with its recorded relaxation."""

    embedding: np.ndarray           # (N, 2) float32
    snapshots: np.ndarray           # (F, N, 2) float32
    snapshot_iterations: np.ndarray  # (F,)
    timings: dict


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
        self.image = validate_image(raw)
        self.progress = progress
        self._params = dict(DEFAULTS)
        self._check_names(params)
        self._params.update(params)
        self._cache: dict[str, object] = {}
        self.log: list[tuple[str, float]] = []
        self._callbacks = []
        #: curation edits (see :mod:`motiflab.curation`), replayed on every clustering so
        #: they survive re-running upstream stages, and saved with the result
        self.edits: list[dict] = []
        self._layout_callbacks = []

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def _check_names(params):
        bad = sorted(set(params) - set(DEFAULTS))
        if bad:
            raise MotifLabError(f"unknown parameter(s) {bad}; valid ones are: {', '.join(sorted(DEFAULTS))}.")

    @property
    def params(self) -> dict:
        """A copy of the current parameters."""
        return dict(self._params)

    def set(self, **params) -> list:
        """Change parameters; return the stages whose cached results were dropped.

        Only the stage a parameter feeds and the stages after it are dropped.
        Setting a parameter to its current value drops nothing.
        """
        self._check_names(params)
        changed = {k: v for k, v in params.items() if not _same(self._params[k], v)}
        if not changed:
            return []
        self._params.update(changed)
        first = min(STAGES.index(PARAM_STAGE[k]) for k in changed)
        stale = [s for s in STAGES[first:] if s in self._cache]
        for s in STAGES[first:]:
            self._cache.pop(s, None)
        return stale

    def is_cached(self, stage) -> bool:
        return stage in self._cache

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
        """The result of ``stage``, computing it (and any stale upstream stage) if needed."""
        if stage not in STAGES:
            raise MotifLabError(f"unknown stage {stage!r}; stages are {STAGES}.")
        if stage in self._cache:
            return self._cache[stage]
        todo = [s for s in STAGES[: STAGES.index(stage) + 1] if s not in self._cache]
        bar = None
        if self.progress and len(todo) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="motiflab", unit="stage")
        try:
            for s in todo:
                if bar is not None:
                    bar.set_postfix_str(s)
                t0 = time.perf_counter()
                self._cache[s] = getattr(self, f"_compute_{s}")()
                dt = time.perf_counter() - t0
                self.log.append((s, dt))
                for cb in self._callbacks:
                    cb(s, dt)
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
        return self._cache[stage]

    def run(self):
        """Compute every stage that is not cached; returns ``self``."""
        self.get(STAGES[-1])
        return self

    columns = property(lambda self: self.get("columns"), doc="Found columns (:class:`motiflab.columns.Columns`).")
    patch_size_estimate = property(lambda self: self.get("patch_size"), doc="Patch size and its RDF estimate.")
    patches = property(lambda self: self.get("patches"), doc="Extracted patches (:class:`motiflab.patches.Patches`).")
    features = property(lambda self: self.get("features"), doc="Zernike features (:class:`Features`).")
    graph = property(lambda self: self.get("graph"), doc="Fuzzy kNN graph (scipy CSR) of the features.")
    layout = property(lambda self: self.get("layout"), doc="FR layout with snapshots (:class:`Layout`).")
    motifs = property(lambda self: self.get("motifs"), doc="Motif classes (:class:`motiflab.motifs.Motifs`).")

    @property
    def patch_size(self) -> int:
        return int(self.get("patch_size").patch_size)

    @property
    def positions(self) -> np.ndarray:
        """(N, 2) positions of the analysed columns (those kept after patch extraction)."""
        cols = self.get("columns")
        return cols.positions[self.get("patches").index]

    # ------------------------------------------------------------------ stage implementations
    def _compute_columns(self):
        from .columns import find_columns

        p = self._params
        return find_columns(self.image, smoothing=p["smoothing"], strength=p["smoothing_strength"],
                            threshold=p["threshold"], refine=p["refine"], invert=p["invert"],
                            border=p["border"], spacing=p["spacing"], lattice=p["lattice"],
                            min_contrast=p["min_contrast"])

    def _compute_patch_size(self):
        from .patches import PatchSizeEstimate, estimate_patch_size

        p = self._params
        cols = self.get("columns")
        ps = p["patch_size"]
        if ps in (None, "auto"):
            if len(cols) < 3:
                raise MotifLabError(f"only {len(cols)} columns found; cannot estimate a patch size. "
                                    "Give patch_size explicitly or lower the column threshold.")
            est = estimate_patch_size(cols.positions, shape=self.image.shape, scale=p["patch_scale"])
        else:
            try:
                size = int(ps)
            except (TypeError, ValueError):
                raise MotifLabError(f"patch_size must be 'auto' or an integer number of pixels, got {ps!r}.")
            est = PatchSizeEstimate(patch_size=size, nn_distance=float(cols.spacing),
                                    repeat_distance=float("nan"), r=np.zeros(0), g=np.zeros(0))
        if est.patch_size > min(self.image.shape):
            raise MotifLabError(
                f"patch size {est.patch_size} px is larger than the image {self.image.shape}; "
                "use a smaller patch_size (or 'auto')."
            )
        return est

    def _compute_patches(self):
        from .patches import extract_patches

        img = self.image
        if self.get("columns").inverted:
            img = (img.max() - img).astype(np.float32)
        # scale-free features: intensities in units of the image's robust spread (read from
        # at most a million pixels: the same numbers to a few parts in a thousand)
        sample = img.ravel()[:: max(1, img.size // 1_000_000)]
        med = float(np.median(sample))
        spread = float(np.percentile(sample, 99.5) - med) or 1.0
        norm = ((img - med) / spread).astype(np.float32)
        cols = self.get("columns")
        kw = dict(border=self._params["patch_border"], subpixel=bool(self._params["patch_subpixel"]))
        pt = extract_patches(norm, cols.positions, self.patch_size, **kw)
        if len(pt.patches) == 0:
            raise MotifLabError("every column is too close to the border for the patch size; use a smaller "
                                "patch_size or patch_border='reflect'.")
        if cols.noise_model is not None:
            pt.evidence, pt.evidence_scale = self._evidence_patches(cols, pt)
        return pt

    def _evidence_patches(self, cols, pt):
        """The patches in units of the noise, for the motif stage's separation tests.

        Through the matched filter: a difference between motifs is column-sized,
        and pixel noise finer than a column only blurs the direction a small
        motif is told apart along (two motifs of 6 and 9 columns merged at
        d' 1.5 without it). The filtered image holds nothing finer than a column,
        so where a column is at least 1.5 px wide it is sampled at every second
        pixel (2x2 block means): a quarter of the data for every test.
        Returns the (M, Q, Q) stack and the pixels per evidence pixel.
        """
        from scipy import ndimage

        from .patches import extract_patches

        stab = cols.noise_model.stabilize(self.image)
        if cols.inverted:
            np.negative(stab, out=stab)
        sigma = float(cols.column_sigma) if np.isfinite(cols.column_sigma) else 0.0
        f = 2 if sigma >= 1.5 else 1
        pos = cols.positions[pt.index]
        if f > 1:
            h, w = (stab.shape[0] // f) * f, (stab.shape[1] // f) * f
            stab = stab[:h, :w]
            # block means by strided sums (a reshaped mean over two axes is several times slower)
            blocks = [stab[i::f, j::f] for i in range(f) for j in range(f)]
            stab = np.add.reduce(blocks, dtype=np.float32) / np.float32(f * f)
            # a small pixel covers f full pixels, its centre at f·i + (f - 1)/2
            pos = (pos - 0.5 * (f - 1)) / f
        if sigma > 0:
            # the matched filter, on the coarser grid (the block mean did a little of it)
            stab = ndimage.gaussian_filter(stab, float(np.sqrt(max(sigma**2 - (f**2 - 1) / 12.0, 0.25))) / f)
        size = self.patch_size // f
        size += 1 - size % 2  # odd: the column on the centre pixel
        ev = extract_patches(stab, pos, max(3, size), border="reflect", subpixel=True).patches
        return ev, float(f)

    def _compute_features(self):
        from .zernike import zernike_moments

        p = self._params
        X = zernike_moments(self.get("patches").patches, n_max=int(p["n_max"]), rotinv=bool(p["rotinv"]))
        return Features(X=np.ascontiguousarray(X, dtype=np.float32), n_max=int(p["n_max"]), rotinv=bool(p["rotinv"]))

    def _compute_graph(self):
        from .neighbors import fuzzy_graph, knn_graph

        p = self._params
        X = self.get("features").X
        k = int(p["n_neighbors"])
        if len(X) <= k + 1:
            raise MotifLabError(
                f"only {len(X)} columns were analysed; at least {k + 2} are needed for a {k}-nearest-"
                "neighbour graph (and many more to find motifs). Use a larger image or lower n_neighbors."
            )
        idx, dist = knn_graph(X, n_neighbors=k, random_state=p["seed"])
        return fuzzy_graph(idx, dist)

    def layout_estimator(self):
        """An unfitted :class:`motiflab.layout.FRLayout` configured from the parameters."""
        from .layout import PAPER_STAGES, FRLayout, ForceStage

        p = self._params
        stages = []
        for i, base in enumerate(PAPER_STAGES, start=1):
            kw = {}
            for f in ("alpha", "beta", "n", "m"):
                v = p[f"stage{i}_{f}"]
                kw[f] = getattr(base, f) if v is None else float(v)
            lr = p[f"stage{i}_lr"]
            kw["learning_rate"] = base.learning_rate if lr is None else float(lr)
            stages.append(ForceStage(**kw))
        kw = dict(n_neighbors=int(p["n_neighbors"]), negative_samples=int(p["negative_samples"]),
                  stages=tuple(stages), random_state=p["seed"],
                  snapshot_max_bytes=int(float(p["snapshot_max_mb"]) * 2**20))
        if p["n_iter"] is not None:
            kw["n_iter"] = int(p["n_iter"])
        if p["stage_split"] is not None:
            kw["stage_split"] = float(p["stage_split"])
        kw["verbose"] = bool(self.progress)
        if self._layout_callbacks:
            cbs = list(self._layout_callbacks)

            def callback(it, Y):
                for cb in cbs:
                    cb(it, Y)

            kw["callback"] = callback
        return FRLayout(**kw)

    def _compute_layout(self):
        est = self.layout_estimator()
        emb = est.fit_transform(self.get("features").X, graph=self.get("graph"))
        return Layout(embedding=np.asarray(emb, dtype=np.float32), snapshots=est.snapshots_,
                      snapshot_iterations=np.asarray(est.snapshot_iterations_), timings=dict(getattr(est, "timings_", {})))

    def _compute_motifs(self):
        from .motifs import find_motifs

        p = self._params
        pt = self.get("patches")
        cols = self.get("columns")
        feats = self.get("features")
        rotations = 1
        if feats.rotinv:
            from .lattice import rotation_order

            # orientation is what rotation invariance discards: the pixel-space
            # tests must not keep (or split) motifs by it; without a lattice, 12
            # rotations cover both square and hexagonal symmetry
            v = cols.lattice_vectors
            rotations = rotation_order(v[0], v[1]) if v is not None else 12
        motifs = find_motifs(self.get("layout").embedding, pt.patches,
                             min_cluster_size=p["min_cluster_size"], min_samples=p["min_samples"],
                             cluster_selection_epsilon=p["cluster_selection_epsilon"],
                             features=feats.X, evidence=pt.evidence,
                             spacing=cols.spacing / pt.evidence_scale, column_sigma=cols.column_sigma / pt.evidence_scale,
                             min_separation=float(p["min_separation"]),
                             positions=self.positions, rotations=rotations, random_state=p["seed"])
        if self.edits:
            from .curation import apply_edits

            motifs = apply_edits(motifs, self.edits, self)
        return motifs

    # ------------------------------------------------------------------ curation
    def edit(self, edit: dict):
        """Record a curation edit (assign / merge / split, see :mod:`motiflab.curation`) and apply it.

        Only the motifs stage is recomputed; the edit is replayed whenever the
        motifs are recomputed later (e.g. after a layout change).
        """
        from .curation import validate_edit

        self.edits.append(validate_edit(edit, self))
        self._cache.pop("motifs", None)
        return self.motifs

    def undo(self):
        """Undo the last curation edit; returns the motifs without it."""
        if not self.edits:
            raise MotifLabError("nothing to undo.")
        self.edits.pop()
        self._cache.pop("motifs", None)
        return self.motifs

    # ------------------------------------------------------------------ outputs
    def reconstruction(self) -> np.ndarray:
        """The micrograph rebuilt from class averages (normalised intensity units)."""
        from .motifs import reconstruct_image

        m = self.motifs
        return reconstruct_image(self.image.shape, self.positions, m.labels, m.class_averages)

    def result_arrays(self) -> dict:
        """The arrays of the ``motiflab run`` RESULT.npz contract (plus calibration extras)."""
        m = self.motifs
        return dict(
            positions=np.asarray(self.positions, dtype=np.float64),
            labels=np.asarray(m.labels, dtype=np.int64),
            features=np.asarray(self.features.X, dtype=np.float32),
            embedding=np.asarray(self.layout.embedding, dtype=np.float32),
            class_averages=np.asarray(m.class_averages, dtype=np.float32),
            patch_size=np.int64(self.patch_size),
            counts=np.asarray(m.counts, dtype=np.int64),
            pixel_size=np.float64(self.calibration.scale),
            units=np.str_(self.calibration.units),
            n_dropped=np.int64(self.patches.n_dropped),
            edits=np.str_(json.dumps(self.edits)),
            quality=np.asarray(self.columns.quality[self.patches.index], dtype=np.float32),
            detection=np.str_(json.dumps(self.detection_record())),
        )

    def detection_record(self) -> dict:
        """How the columns were found: smoothing used, thresholds, lattice, noise (JSON-ready)."""
        c = self.columns
        nm = c.noise_model
        return dict(
            smoothing=c.params.get("smoothing"),
            smoothing_params={k: (None if v is None else float(v)) for k, v in c.params.get("smoothing_params", {}).items()},
            threshold=float(c.params.get("threshold", float("nan"))),
            lattice=c.params.get("lattice"),
            lattice_vectors=None if c.lattice_vectors is None else np.asarray(c.lattice_vectors).tolist(),
            min_contrast=float(c.params.get("min_contrast", float("nan"))),
            inverted=bool(c.inverted),
            column_sigma_px=float(c.column_sigma),
            repeat_px=float(c.repeat),
            spacing_px=float(c.spacing),
            n_candidates=int(c.n_candidates),
            n_rejected=int(c.n_rejected),
            n_lattice_sites=int(np.count_nonzero(c.on_lattice)),
            noise=None if nm is None else dict(slope=float(nm.slope), intercept=float(nm.intercept),
                                               floor=float(nm.floor), correlated=not nm.white),
        )

    def save(self, path, overwrite=False) -> Path:
        """Write the RESULT.npz of the command-line contract; never overwrites unless asked.

        The write is atomic (:func:`motiflab.files.write_atomic`), and the input
        file is never an output.
        """
        from .files import check_writable, write_atomic

        check_writable(path, overwrite, inputs=self._inputs())
        arrays = self.result_arrays()
        return write_atomic(path, lambda f: np.savez_compressed(f, **arrays), overwrite, inputs=self._inputs())

    def _inputs(self):
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

    def summary(self) -> str:
        """A few lines describing the result, for terminals and logs."""
        m = self.motifs
        cal = self.calibration
        lines = [
            f"image {self.image.shape[0]}×{self.image.shape[1]} px"
            + (f" ({cal.scale:.4g} {cal.units}/px)" if cal.calibrated else ""),
            f"columns found {len(self.columns)}"
            + (f" ({int(np.count_nonzero(self.columns.on_lattice))} on lattice sites)"
               if self.columns.lattice_vectors is not None else "")
            + f", {self.columns.n_rejected} candidate{'' if self.columns.n_rejected == 1 else 's'} rejected as "
            f"background; analysed {len(self.positions)} "
            f"(dropped at border {self.patches.n_dropped}), patch size {self.patch_size} px",
            f"motifs {m.n_motifs}: " + ", ".join(f"#{i}: {c}" for i, c in enumerate(m.counts))
            + (f"; unassigned {m.n_unassigned}" if m.n_unassigned else ""),
        ]
        return "\n".join(lines)


def _same(a, b) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


def analyze(data, frame=None, progress=False, **params) -> Analysis:
    """Run the whole pipeline on ``data`` and return the computed :class:`Analysis`."""
    return Analysis(data, frame=frame, progress=progress, **params).run()
