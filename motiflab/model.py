"""A learned motif model: the motifs of one curated analysis, applied to new images.

A microscopist curates the motifs once, on a good image; :meth:`motiflab.Analysis.model`
freezes that into a :class:`MotifModel`, which then classifies columns of other
images (frames of a series, tiles of a mosaic, other samples) into the *same*
motifs, with the same numbers:

* detection settings: the training analysis' parameters, with the column
  spacing and the patch size fixed to the values measured on the training
  image (a model describes motifs at one magnification);
* the Zernike settings (radial order, rotation invariance);
* the training features and their FR layout (with the layout's parameters), so
  new columns are placed into that layout by :meth:`motiflab.layout.FRLayout.place`;
* the motif labels of the training columns *after* curation, the edits that
  made them, and the class averages;
* a novelty threshold per motif.

Labels of new columns
---------------------
A new column's label is the majority among the ``n_neighbors`` training columns
nearest to its place in the layout (the motifs are clusters of that layout);
``confidence`` is the winning fraction.  A column unlike every known motif is
not forced into the nearest class: its *novelty* is the distance from its
features to the nearest training feature, divided by that motif's threshold,
the ``novelty_quantile`` (default 0.999) of the same nearest-neighbour distance
among the motif's own training columns (leave-one-out; motifs with fewer than
:data:`MIN_CLASS_SIZE` columns use the quantile over all columns).  Above 1 the
column is flagged new: label :data:`NEW` (−2) and ``novel`` True.  On a
defect-free training image at 100 counts per peak, 0.1-0.2 % of the columns of
another defect-free image are flagged; the columns flagged in a defective
image are the defects and the columns whose patch holds a defect.

Files
-----
:meth:`MotifModel.save` writes HyperSpy's HDF5 (``.hspy``): the class averages
are the signal (HyperSpy opens the file as the motif images) and everything
else sits under ``metadata.motiflab_model`` as arrays and JSON text, with the
versions of the software that made the model and that saved it.
:func:`load_model` reads it back through an allow-list; nothing is unpickled.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import InputFileError, MotifLabError

__all__ = ["MotifModel", "Prediction", "load_model", "NEW", "MODEL_FORMAT_VERSION"]

#: label of a column unlike every motif of the model
NEW = -2
#: version of the layout under ``metadata.motiflab_model``
MODEL_FORMAT_VERSION = 1
#: motifs with fewer training columns take the novelty threshold of all columns
MIN_CLASS_SIZE = 20
#: FRLayout parameters a model keeps (the rest are display or run-time settings)
_LAYOUT_KEYS = ("n_neighbors", "negative_samples", "stage_split", "n_iter", "learning_rate_schedule", "init_scale",
                "max_step", "force_form", "knn_method", "random_state", "transform_iter")


class Prediction(NamedTuple):
    """Columns classified by a :class:`MotifModel`."""

    embedding: np.ndarray   # (M, 2) float32: place in the model's layout
    labels: np.ndarray      # (M,) int64: motif, −1 unassigned, NEW (−2) unlike every motif
    novel: np.ndarray       # (M,) bool
    confidence: np.ndarray  # (M,) float32: fraction of the layout neighbours that voted for the label
    novelty: np.ndarray     # (M,) float32: nearest-feature distance / the motif's threshold (> 1: new)


@dataclass
class MotifModel:
    """The motifs of a curated analysis, ready to classify new images (see the module docs).

    Build one with :meth:`motiflab.Analysis.model` (or :meth:`from_analysis`),
    load one with :func:`load_model`.

    Attributes
    ----------
    params : dict
        Analysis parameters for new images (spacing and patch size fixed).
    layout_params : dict
        The FR layout's parameters, including its force stages.
    features : ndarray (N, J) float32
        Training features.
    embedding : ndarray (N, 2) float32
        Their fitted FR layout.
    stage_iterations : tuple of int
        Iterations of each layout stage in the fit.
    labels : ndarray (N,) int64
        Motif of every training column, after curation (−1 unassigned).
    class_averages : ndarray (K, P, P) float32
    counts : ndarray (K,) int64
    thresholds : ndarray (K + 1,) float64
        Novelty threshold of each motif; the last entry is for all columns
        (used for motifs under :data:`MIN_CLASS_SIZE` and unassigned votes).
    novelty_quantile : float
    edits : list of dict
        The curation edits behind ``labels``.
    detection : dict
        How the training columns were found (:meth:`motiflab.Analysis.detection_record`).
    provenance : dict
        Software versions and input of the training analysis.
    """

    params: dict
    layout_params: dict
    features: np.ndarray
    embedding: np.ndarray
    stage_iterations: tuple
    labels: np.ndarray
    class_averages: np.ndarray
    counts: np.ndarray
    thresholds: np.ndarray
    novelty_quantile: float = 0.999
    edits: list = field(default_factory=list)
    detection: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_analysis(cls, an, novelty_quantile=0.999, progress=False) -> "MotifModel":
        """Freeze the motifs of ``an`` (computing its stages if needed) into a model.

        Parameters
        ----------
        an : motiflab.Analysis
        novelty_quantile : float in (0, 1]
            Quantile of the training columns' nearest-neighbour feature distance
            that bounds each motif (see the module docs).
        progress : bool
            Progress bar over the analysis' stages (when they are not computed yet).
        """
        from .results import detection_record, provenance

        q = float(novelty_quantile)
        if not 0.0 < q <= 1.0:
            raise MotifLabError(f"novelty_quantile must lie in (0, 1]; got {novelty_quantile!r}.")
        old = an.progress
        an.progress = bool(progress) or old
        try:
            an.run()
        finally:
            an.progress = old
        motifs = an.motifs
        if motifs.n_motifs == 0:
            raise MotifLabError("the analysis found no motif; a model needs at least one.")
        est = an.layout_estimator()
        params = dict(an.params)
        params["spacing"] = float(an.columns.spacing)
        params["patch_size"] = int(an.patch_size)
        lp = {k: v for k, v in est.get_params().items() if k in _LAYOUT_KEYS}
        lp["stages"] = [dict(alpha=s.alpha, beta=s.beta, n=s.n, m=s.m, learning_rate=s.learning_rate)
                        for s in est.stages]
        layout = an.layout
        stage_iterations = tuple(est._stage_plan()[1])
        X = np.ascontiguousarray(an.features.X, dtype=np.float32)
        labels = np.asarray(motifs.labels, dtype=np.int64)
        return cls(params=params, layout_params=lp, features=X,
                   embedding=np.ascontiguousarray(layout.embedding, dtype=np.float32),
                   stage_iterations=stage_iterations, labels=labels,
                   class_averages=np.asarray(motifs.class_averages, dtype=np.float32),
                   counts=np.asarray(motifs.counts, dtype=np.int64),
                   thresholds=novelty_thresholds(X, labels, motifs.n_motifs, q), novelty_quantile=q,
                   edits=[dict(e) for e in an.edits], detection=detection_record(an), provenance=provenance(an))

    # ------------------------------------------------------------------ properties
    @property
    def n_motifs(self) -> int:
        return len(self.counts)

    @property
    def patch_size(self) -> int:
        return int(self.params["patch_size"])

    def layout(self):
        """The fitted :class:`motiflab.layout.FRLayout` (rebuilt from the stored state, no refit)."""
        lay = self.__dict__.get("_layout")
        if lay is None:
            from .layout import FRLayout, ForceStage

            kw = {k: v for k, v in self.layout_params.items() if k != "stages"}
            lay = FRLayout(stages=tuple(ForceStage(**s) for s in self.layout_params["stages"]), **kw)
            lay.fit_X_ = self.features
            lay.embedding_ = self.embedding
            lay.stage_iterations_ = tuple(int(i) for i in self.stage_iterations)
            self.__dict__["_layout"] = lay
        return lay

    def _tree(self):
        tree = self.__dict__.get("_ktree")
        if tree is None:
            from scipy.spatial import cKDTree

            tree = self.__dict__["_ktree"] = cKDTree(self.embedding)
        return tree

    # ------------------------------------------------------------------ classifying
    def predict(self, X) -> Prediction:
        """Classify feature vectors (Zernike features computed like the training ones).

        Parameters
        ----------
        X : array-like (M, J)

        Returns
        -------
        Prediction
            Each column's place in the layout, label, novelty flag, vote
            confidence and novelty score. An exact copy of a training feature
            gets that column's place and label, so ``predict(features)`` gives
            back the fitted labels.
        """
        placed = self.layout().place(X)
        m = len(placed.embedding)
        k = min(int(self.layout_params["n_neighbors"]), len(self.labels))
        labels = np.empty(m, np.int64)
        confidence = np.ones(m, np.float32)
        if m:
            _, nb = self._tree().query(placed.embedding, k=k)
            nb = nb.reshape(m, k)
            votes = self.labels[nb]  # nearest first
            shift = votes + 1  # −1 (unassigned) votes too
            tally = np.zeros((m, int(shift.max()) + 1), np.int64)
            np.add.at(tally, (np.repeat(np.arange(m), k), shift.ravel()), 1)
            best = tally.max(axis=1)
            # ties go to the label of the nearest voter among the tied ones
            tied = tally[np.arange(m)[:, None], shift] == best[:, None]
            labels = votes[np.arange(m), tied.argmax(axis=1)]
            confidence = (best / k).astype(np.float32)
            ex = placed.exact
            labels[ex] = self.labels[placed.neighbors[ex, 0]]
            confidence[ex] = 1.0
        thr = self.thresholds[np.where(labels >= 0, labels, self.n_motifs)]
        novelty = (placed.distances[:, 0] / np.maximum(thr, 1e-30)).astype(np.float32) if m else np.zeros(0, np.float32)
        novel = novelty > 1.0
        labels = np.where(novel, NEW, labels)
        return Prediction(placed.embedding, labels, novel, confidence, novelty)

    def analyse(self, data, frame=None, progress=False):
        """Columns, patches and features of ``data`` under the model's settings, then :meth:`predict`.

        Returns ``(analysis, prediction)``; the analysis has its layout and
        motifs stages filled from the model and its graph stage not computed
        (what :meth:`classify` adds). The lean path of series and tiles.
        """
        from .analysis import Analysis

        an = Analysis(data, frame=frame, progress=progress, **self.params)
        feats = an.features
        if feats.X.shape[1] != self.features.shape[1]:  # pragma: no cover - same params give the same width
            raise MotifLabError(f"the image gives {feats.X.shape[1]} features per column; the model has "
                                f"{self.features.shape[1]}.")
        pred = self.predict(feats.X)
        self._restore(an, pred)
        return an, pred

    def classify(self, data, frame=None, progress=False):
        """Classify the columns of an image into the model's motifs.

        Parameters
        ----------
        data : str, Path, ndarray or hyperspy Signal2D
            Anything :class:`motiflab.Analysis` accepts.
        frame : int, optional
            Frame of a stack.
        progress : bool
            Progress bar over the stages.

        Returns
        -------
        motiflab.Analysis
            An analysis of ``data`` whose columns, patches and features are
            computed with the model's settings and whose ``layout`` (the
            columns placed into the model's layout) and ``motifs`` (the
            model's motif numbers, :data:`NEW` for columns unlike every motif;
            class averages from this image's patches) come from the model.
            ``an.prediction`` holds the :class:`Prediction` (novelty,
            confidence) and ``an.novel`` the mask of new columns.
            Changing a parameter of the result re-runs the ordinary analysis.
        """
        an, _ = self.analyse(data, frame=frame, progress=progress)
        an.get("graph")  # a complete analysis: every stage the pipeline has is there
        return an

    def _restore(self, an, pred):
        from .motifs import Motifs, class_averages
        from .stages import Layout

        pt = an.patches
        k = self.n_motifs
        avgs, counts = class_averages(pt.patches, pred.labels, k)
        empty = counts == 0
        if empty.any() and self.class_averages.shape[1:] == avgs.shape[1:]:
            avgs[empty] = self.class_averages[empty]  # a motif absent here keeps its training image
        an.restore_stage("layout", Layout(embedding=pred.embedding, snapshots=pred.embedding[None].copy(),
                                          snapshot_iterations=np.zeros(1, np.int64), timings={}))
        an.restore_stage("motifs", Motifs(labels=pred.labels, class_averages=avgs, counts=counts.astype(np.int64),
                                          n_unassigned=int((pred.labels < 0).sum()),
                                          params=dict(model=True, n_new=int(pred.novel.sum()),
                                                      novelty_quantile=self.novelty_quantile)))
        an.prediction = pred
        an.novel = pred.novel

    # ------------------------------------------------------------------ files
    def save(self, path, overwrite=False) -> Path:
        """Write the model to ``path`` (``.hspy``, HyperSpy's HDF5), atomically.

        Never over an existing file unless ``overwrite``. The file opens in
        HyperSpy as the stack of class averages.
        """
        from .analysis_file import json_ready
        from .files import check_writable, write_atomic
        from .io import class_averages_signal
        from .results import provenance

        p = Path(path)
        if p.suffix.lower() != ".hspy":
            raise MotifLabError(f"a motif model is saved as .hspy (HyperSpy's HDF5); got {p.name!r}.")
        check_writable(p, overwrite)
        s = class_averages_signal(self.class_averages)
        s.metadata.General.title = "motiflab motif model (class averages)"

        class _Now:  # provenance() reads these three attributes of an analysis
            source_path = None
            signal = None

        record = {
            "format_version": json.dumps(MODEL_FORMAT_VERSION),
            "params": json.dumps(json_ready(self.params)),
            "layout_params": json.dumps(json_ready(self.layout_params)),
            "stage_iterations": json.dumps([int(i) for i in self.stage_iterations]),
            "novelty_quantile": json.dumps(float(self.novelty_quantile)),
            "edits": json.dumps(json_ready(self.edits)),
            "detection": json.dumps(json_ready(self.detection)),
            "provenance": json.dumps(json_ready(self.provenance)),
            "saved_with": json.dumps(provenance(_Now())),
            "features": np.ascontiguousarray(self.features, dtype=np.float32),
            "embedding": np.ascontiguousarray(self.embedding, dtype=np.float32),
            "labels": np.asarray(self.labels, dtype=np.int64),
            "counts": np.asarray(self.counts, dtype=np.int64),
            "thresholds": np.asarray(self.thresholds, dtype=np.float64),
        }
        s.metadata.set_item("motiflab_model", record)
        return write_atomic(p, lambda tmp: s.save(tmp, overwrite=True, file_format="HSPY"), overwrite, by_name=True)


def novelty_thresholds(X, labels, k, quantile=0.999):
    """Per-motif novelty thresholds: a quantile of each training column's nearest-other-column feature distance.

    Returns ``(k + 1,)`` float64: one per motif, then the quantile over all
    columns (motifs under :data:`MIN_CLASS_SIZE` columns take that one).
    """
    from .layout import query_knn

    X = np.ascontiguousarray(X, dtype=np.float32)
    if len(X) < 2:
        raise MotifLabError("a model needs at least 2 training columns.")
    idx, dist = query_knn(X, X, 2)
    # leave-one-out: the nearest column that is not the column itself (duplicates stay at 0)
    d1 = np.where(idx[:, 0] == np.arange(len(X)), dist[:, 1], dist[:, 0]).astype(np.float64)
    pooled = float(np.quantile(d1, quantile))
    out = np.full(k + 1, pooled)
    for c in range(k):
        member = labels == c
        if member.sum() >= MIN_CLASS_SIZE:
            out[c] = float(np.quantile(d1[member], quantile))
    return out


def load_model(path) -> MotifModel:
    """Open a model saved with :meth:`MotifModel.save`.

    Raises
    ------
    InputFileError
        A missing, unreadable or damaged file, a file without a motif model,
        or a model format this motiflab cannot read.
    """
    from .analysis_file import from_json_ready
    from .io import import_hyperspy

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"no model file {str(p)!r} (or it is not a regular file); check the path.")
    try:
        sig = import_hyperspy().load(str(p))
    except Exception as exc:  # any reader error becomes one clear message
        raise InputFileError(f"could not read {str(p)!r} as HyperSpy HDF5 ({type(exc).__name__}: {exc}).") from exc
    if isinstance(sig, list) or not hasattr(sig, "metadata"):
        raise InputFileError(f"{str(p)!r} holds several signals; a motif model file holds one.")
    rec = sig.metadata.get_item("motiflab_model")
    if rec is None:
        raise InputFileError(f"{str(p)!r} holds no motiflab model; save one with an.model().save(path) or "
                             "`motiflab run IMAGE --save-model M.hspy`.")
    rec = rec.as_dictionary()
    try:
        version = int(json.loads(rec["format_version"]))
        if version != MODEL_FORMAT_VERSION:
            raise InputFileError(f"{str(p)!r} holds a motif model in format version {version}; this motiflab reads "
                                 f"version {MODEL_FORMAT_VERSION}" + ("; update motiflab." if version > MODEL_FORMAT_VERSION
                                                                       else "."))
        arr = {}
        for name, kind in (("features", "f"), ("embedding", "f"), ("labels", "i"), ("counts", "i"),
                           ("thresholds", "f")):
            a = rec[name]
            if not isinstance(a, np.ndarray) or a.dtype.kind != kind:
                raise TypeError(f"{name} is not a {kind!r} array")
            arr[name] = a
        ca = np.asarray(sig.data, dtype=np.float32)
        if ca.ndim == 2:
            ca = ca[None]
        X, Y, lab = arr["features"].astype(np.float32), arr["embedding"].astype(np.float32), arr["labels"]
        k = len(arr["counts"])
        if (X.ndim != 2 or Y.shape != (len(X), 2) or lab.shape != (len(X),) or ca.shape[0] != k
                or arr["thresholds"].shape != (k + 1,) or (lab.size and lab.max() >= k)):
            raise ValueError("array shapes do not agree")
        model = MotifModel(
            params=from_json_ready(json.loads(rec["params"])),
            layout_params=from_json_ready(json.loads(rec["layout_params"])),
            features=np.ascontiguousarray(X), embedding=np.ascontiguousarray(Y),
            stage_iterations=tuple(int(i) for i in json.loads(rec["stage_iterations"])),
            labels=lab.astype(np.int64), class_averages=ca, counts=arr["counts"].astype(np.int64),
            thresholds=arr["thresholds"].astype(np.float64),
            novelty_quantile=float(json.loads(rec["novelty_quantile"])),
            edits=from_json_ready(json.loads(rec.get("edits", "[]"))),
            detection=from_json_ready(json.loads(rec.get("detection", "{}"))),
            provenance=from_json_ready(json.loads(rec.get("provenance", "{}"))),
        )
        model.saved_with = json.loads(rec.get("saved_with", "{}"))
        from .parameters import DEFAULTS

        model.params = {k2: v for k2, v in model.params.items() if k2 in DEFAULTS}  # a retired parameter is dropped
    except InputFileError:
        raise
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise InputFileError(f"{str(p)!r} has a damaged motif model ({type(exc).__name__}: {exc}); the file was "
                             "left as it is.") from None
    return model
