"""Two-stage force-relaxed (FR) layout of feature vectors (Dan et al. 2022).

The FR layout is the paper's replacement for t-SNE/UMAP when classifying
Zernike features into motifs.  Starting from the 2-D PCA projection of the
features ``X``, every point is pulled towards its k nearest neighbours in
feature space (k = 10, weights = fuzzy similarities, see
:mod:`motiflab.neighbors`) and pushed away from randomly drawn non-neighbours
(k' = 5 per attracting pair, negative sampling as in LargeVis/UMAP).  With
``d`` the 2-D distance of a pair, the force *coefficients* are

* attraction ``alpha / (1 + d**n)``,
* repulsion  ``beta / (1 + d**m)``,

applied along the difference vector of the pair (``force_form="vector"``, the
authors' own convention, in which the force magnitude is ``coefficient * d``;
``force_form="unit"`` applies them along the unit vector instead).  The
iterations run in stages, by default the paper's two:

1. a repulsion-dominated stage ``{alpha=1, beta=1, n=0, m=2}``: linear springs
   along the graph against a long-ranged (~1/d) repulsion dilate the layout and
   rough class boundaries appear while k-neighbours stay together;
2. an attraction-dominated stage ``{alpha=5, beta=1, n=2, m=5}``: short-ranged
   repulsion and strong short-range attraction make each class coalesce into a
   compact blob without a global contraction.

Within each stage the learning rate is relaxed from the stage's maximum (linear
decay by default) for numerical stability.

Implementation
--------------
Each iteration is one synchronous update of all vertices by a threaded numba
kernel, with negative samples from a counter-based generator, so the layout is
bit-identical for any number of threads; the kernels and the loop that drives
them are in :mod:`motiflab._layout_kernels`.  Snapshots of the relaxation are
written into a preallocated float32 buffer bounded by ``snapshot_max_bytes``.
"""
from __future__ import annotations

import math
import numbers
import time
import warnings

import numba
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._blas import single_threaded_blas
from ._layout_kernels import relax
from .errors import MotifLabError
from .neighbors import check_features, check_graph, fuzzy_graph, knn_graph

# The old names of what moved out, still importable from here (tests, warmup
# checks and benchmarks import some of them).
from ._layout_kernels import (  # noqa: E402,F401,I001
    FLOAT_FLAGS as _FLOAT_FLAGS, GOLDEN as _GOLDEN, SAMPLE_BLOCK as _SAMPLE_BLOCK, fr_step as _fr_step,
    int_exponent as _int_exponent, is_neighbour as _is_neighbour, pad8 as _pad8, pair_coef as _pair_coef,
    pair_sum as _pair_sum, sample_sum as _sample_sum, update_block as _update_block,
)
from ._random_kernels import mix64 as _mix64  # noqa: E402,F401,I001
from .neighbors import check_features as _check_X, check_graph as _check_graph  # noqa: E402,F401,I001
from .placement import QUERY_BLOCK, Placement, query_knn  # noqa: E402,F401,I001  (their home was here)

from .forces import PAPER_STAGES, ForceStage, schedule_factors  # noqa: E402  (re-exported: their home was here)
from .forces import DEFAULT_FORCE_FORM, DEFAULT_N_ITER, DEFAULT_STAGE_SPLIT  # noqa: E402,I001

__all__ = ["ForceStage", "PAPER_STAGES", "FRLayout", "Placement", "pca_init", "query_knn", "schedule_factors",
           "resolve_seed"]


#: Below this many points one iteration is a fraction of a millisecond and one
#: chunk on one thread beats splitting the vertices between threads.
SERIAL_MAX_POINTS = 2000


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def pca_init(X, scale=10.0):
    """2-D PCA projection of ``X``, standardised to a fixed spread.

    Parameters
    ----------
    X : ndarray, shape (n_points, n_features)
        Finite features.
    scale : float, default 10.0
        The projection is centred and multiplied so that the standard
        deviation along the first principal axis equals ``scale / 3``, i.e.
        the bulk (three standard deviations) of the data spans about
        ``[-scale, scale]`` -- the spread of the authors' initial layout
        (max |coordinate| = 10) but insensitive to single outliers.  The
        second axis keeps its relative variance.

    Returns
    -------
    ndarray of float32, shape (n_points, 2)

    Notes
    -----
    Computed from the 66 x 66 covariance (eigendecomposition) in float64, so
    memory stays O(N d).  Signs are fixed (largest loading positive) to make
    the result deterministic.
    """
    from ._validation import check_matrix, check_number

    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype.kind not in "fiu" or len(X) == 0:
        check_matrix(X, "X", min_rows=1)  # the clear message for a wrong X (the common case skips it)
    X = np.asarray(X)
    scale = check_number(scale, "scale", low=0.0, low_open=True)
    mu = X.mean(axis=0, dtype=np.float64)
    Xc = X.astype(np.float64, copy=False) - mu if X.dtype == np.float64 else X - mu.astype(X.dtype)
    # One BLAS thread: the relaxation starts right after, and an idle OpenBLAS
    # worker spins for ~0.1 s after its last product, taking a core from the
    # layout threads (5k points: the first ~90 iterations ran 2.4x slower).
    with single_threaded_blas():
        C = (Xc.T @ Xc).astype(np.float64) / max(1, X.shape[0] - 1)
        evals, evecs = np.linalg.eigh(C)
        order = np.argsort(evals)[::-1]
        V = evecs[:, order[:2]]
        if V.shape[1] < 2:  # a single feature: second axis is zero
            V = np.concatenate([V, np.zeros((V.shape[0], 1))], axis=1)
        for c in range(V.shape[1]):
            if V[np.argmax(np.abs(V[:, c])), c] < 0:
                V[:, c] = -V[:, c]
        P = np.asarray(Xc @ V.astype(Xc.dtype), dtype=np.float64)
    sd = P[:, 0].std()
    if not np.isfinite(sd) or sd <= 0:
        sd = 1.0
    return (P * (scale / 3.0 / sd)).astype(np.float32)


_schedule_factors = schedule_factors  # the old private name (schedule_factors lives in forces.py)


# --------------------------------------------------------------------------
# estimator
# --------------------------------------------------------------------------
def resolve_seed(rs) -> int:
    """The integer seed of a ``random_state`` (int, None, RandomState or Generator)."""
    if rs is None:
        return int(np.random.default_rng().integers(0, 2**63 - 1))
    if isinstance(rs, np.random.RandomState):
        return int(rs.randint(0, 2**31 - 1))
    if isinstance(rs, np.random.Generator):
        return int(rs.integers(0, 2**63 - 1))
    if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and rs >= 0:
        return int(rs)
    raise MotifLabError(f"random_state must be a non-negative int (or None); got {rs!r}.")


class FRLayout(TransformerMixin, BaseEstimator):
    """Two-stage force-relaxed 2-D layout of feature vectors (Dan et al. 2022).

    Parameters
    ----------
    n_neighbors : int, default 10
        k of the k-NN graph (paper: 10).
    negative_samples : int, default 5
        k', non-neighbours repelled per attracting pair (paper: 5).  Drawn per
        vertex as ``round(k' * W_i)`` samples, ``W_i`` being the vertex's total
        edge weight, i.e. each pair's repulsion is scaled by its weight.
    stages : sequence of ForceStage, default PAPER_STAGES
        Force parameters, applied in order.
    stage_split : float or sequence of float, default 0.5
        With two stages, the fraction of iterations spent in the first.  With
        more stages, a sequence of fractions (one per stage, summing to 1).
    n_iter : int, default 200
        Total number of iterations over all stages.  100 already separates
        the test mixtures; 200 leaves a margin for larger, harder data.
    learning_rate_schedule : {"linear", "cosine", "constant"} or callable, default "linear"
        How the learning rate is relaxed within each stage from the stage's
        ``learning_rate``: linear decay to ~0, half-cosine decay, none, or
        ``f(progress) -> factor`` with progress in [0, 1).
    init : "pca" or ndarray of shape (n_points, 2), default "pca"
        Initial layout: the 2-D PCA projection (see :func:`pca_init`) or
        user coordinates (used as given).
    init_scale : float, default 10.0
        Spread of the PCA initial layout (see :func:`pca_init`).  The forces
        have a natural length of 1, so this sets how crowded the start is.
    max_step : float, default 4.0
        Length cap for every pair force and every per-iteration displacement.
    force_form : {"vector", "unit"}, default "vector"
        ``"vector"``: force = coefficient x difference vector (authors' code,
        UMAP's gradient convention; the paper's "inversely proportional to
        their mutual separation" for n = 2); ``"unit"``: coefficient x unit
        vector (weaker long-range pull; it split classes more often in our
        tests).
    knn_method : {"auto", "exact", "approx", "nndescent"}, default "auto"
        Passed to :func:`motiflab.neighbors.knn_graph`.
    snapshot_every : int or None, default None
        Record the layout every this many iterations (0 disables snapshots).
        ``None`` chooses the smallest interval whose buffer fits in
        ``snapshot_max_bytes``.  The initial and final layouts are always
        recorded.  An explicit interval that would exceed the bound is
        enlarged (with a warning).
    snapshot_max_bytes : int, default 64 MiB
        Upper bound on the snapshot buffer (float32, ``frames * N * 8`` bytes).
    random_state : int or None, default 0
        Seed of the negative sampling (and of the approximate k-NN search
        used for large N).  None draws a fresh seed.
    n_jobs : int or None, default None
        numba threads used during ``fit`` (None: numba's current setting).
        The result does not depend on it.
    verbose : bool, default False
        Show a tqdm progress bar.
    callback : callable or None, default None
        ``callback(iteration, embedding)`` called at every snapshot
        (iteration 0 .. n_iter) with a float32 copy of the current layout;
        a hook for interactive displays.
    transform_iter : int or None, default None
        Iterations :meth:`transform` relaxes new points for, under the last
        stage's forces (None: as many as the last stage had in ``fit``).

    Attributes
    ----------
    embedding_ : ndarray of float32, shape (n_points, 2)
        Final layout.
    snapshots_ : ndarray of float32, shape (n_frames, n_points, 2)
        Recorded layouts, first = initial, last = final.
    snapshot_iterations_ : ndarray of int, shape (n_frames,)
        Iteration number of each snapshot (0 = initial layout).
    graph_ : scipy.sparse.csr_matrix
        Symmetric fuzzy k-NN graph used for the attraction.
    knn_indices_, knn_distances_ : ndarray or None
        The k-NN lists (None when ``graph`` was passed to ``fit``).
    n_iter_ : int
        Iterations run.
    stage_iterations_ : tuple of int
        Iterations spent in each stage.
    timings_ : dict
        Seconds spent in ``"knn"``, ``"graph"``, ``"init"`` and ``"layout"``.
    fit_X_ : ndarray of float32, shape (n_points, n_features)
        The training features, kept for :meth:`transform`.

    Examples
    --------
    >>> from motiflab.layout import FRLayout
    >>> Y = FRLayout(random_state=0).fit_transform(features)   # doctest: +SKIP
    """

    def __init__(self, n_neighbors=10, negative_samples=5, stages=PAPER_STAGES, stage_split=DEFAULT_STAGE_SPLIT,
                 n_iter=DEFAULT_N_ITER, learning_rate_schedule="linear", init="pca", init_scale=10.0,
                 max_step=4.0, force_form=DEFAULT_FORCE_FORM, knn_method="auto", snapshot_every=None,
                 snapshot_max_bytes=64 * 2**20, random_state=0, n_jobs=None, verbose=False,
                 callback=None, transform_iter=None):
        self.n_neighbors = n_neighbors
        self.negative_samples = negative_samples
        self.stages = stages
        self.stage_split = stage_split
        self.n_iter = n_iter
        self.learning_rate_schedule = learning_rate_schedule
        self.init = init
        self.init_scale = init_scale
        self.max_step = max_step
        self.force_form = force_form
        self.knn_method = knn_method
        self.snapshot_every = snapshot_every
        self.snapshot_max_bytes = snapshot_max_bytes
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.callback = callback
        self.transform_iter = transform_iter

    # ---------------------------------------------------------------- checks
    def _stage_plan(self):
        """Validate stages/stage_split/n_iter; return (stages, iterations per stage)."""
        n_iter = self.n_iter
        if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or not 1 <= n_iter <= 10**7:
            raise MotifLabError(f"n_iter must be a positive integer (at most 10,000,000); got {n_iter!r}.")
        stages = tuple(self.stages) if self.stages is not None else ()
        if not stages or not all(isinstance(s, ForceStage) for s in stages):
            raise MotifLabError(
                "stages must be a non-empty sequence of ForceStage(alpha, beta, n, m, learning_rate); "
                f"got {self.stages!r}."
            )
        for s in stages:
            vals = (s.alpha, s.beta, s.n, s.m, s.learning_rate)
            if not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in vals):
                raise MotifLabError(f"ForceStage values must be finite numbers; got {s!r}.")
            if s.alpha < 0 or s.beta < 0 or s.n < 0 or s.m < 0 or s.learning_rate < 0:
                raise MotifLabError(f"ForceStage values must be non-negative; got {s!r}.")
        split = self.stage_split
        k = len(stages)
        if k == 1:
            fr = np.array([1.0])
        elif k == 2 and isinstance(split, numbers.Real):
            if not (0.0 < float(split) < 1.0):
                raise MotifLabError(
                    f"stage_split must be a fraction strictly between 0 and 1 (iterations in the "
                    f"first stage); got {split!r}."
                )
            fr = np.array([float(split), 1.0 - float(split)])
        else:
            try:
                fr = np.asarray(split, dtype=np.float64).ravel()
            except (TypeError, ValueError):
                fr = np.zeros(0)
            if fr.shape != (k,) or np.any(~np.isfinite(fr)) or np.any(fr <= 0) or abs(fr.sum() - 1) > 1e-6:
                raise MotifLabError(
                    f"With {k} stages, stage_split must be {k} positive fractions summing to 1; "
                    f"got {split!r}."
                )
        counts = np.floor(fr * n_iter + 1e-9).astype(int)
        counts[-1] = n_iter - counts[:-1].sum()
        if np.any(counts < 1):
            raise MotifLabError(
                f"stage_split {split!r} with n_iter={n_iter} leaves a stage with no iteration; "
                "increase n_iter or move the split away from 0/1."
            )
        return stages, [int(c) for c in counts]

    def _snapshot_interval(self, n_points, n_iter):
        """Interval between snapshots so that the buffer respects ``snapshot_max_bytes``."""
        every = self.snapshot_every
        if every is not None and (isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 0):
            raise MotifLabError(f"snapshot_every must be None, 0 or a positive integer; got {every!r}.")
        if every == 0:
            return 0
        frame = n_points * 2 * 4
        max_frames = int(self.snapshot_max_bytes // frame)
        if max_frames < 2:
            raise MotifLabError(
                f"snapshot_max_bytes={self.snapshot_max_bytes} cannot hold the initial and final "
                f"layouts of {n_points} points ({2 * frame} bytes needed); raise it or set "
                "snapshot_every=0 to disable snapshots."
            )

        def frames(s):
            return n_iter // s + 1 + (1 if n_iter % s else 0)

        s = 1 if every is None else int(every)
        s0 = s
        while frames(s) > max_frames:
            s += 1 if s < 16 else max(1, s // 8)
        if every is not None and s != s0:
            warnings.warn(
                f"snapshot_every={s0} would need {frames(s0)} frames of {frame} bytes; using "
                f"{s} to stay within snapshot_max_bytes={self.snapshot_max_bytes}.",
                stacklevel=3,
            )
        return s

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None, graph=None):
        """Compute the layout of ``X``.

        Parameters
        ----------
        X : array-like, shape (n_points, n_features)
            Feature vectors (finite).  Used for the k-NN graph (unless
            ``graph`` is given) and for the PCA initial layout.
        y : ignored
        graph : scipy.sparse matrix, shape (n_points, n_points), optional
            Precomputed symmetric similarity graph (e.g. ``self.graph_`` of an
            earlier fit, or :func:`motiflab.neighbors.fuzzy_graph`), reused so
            a change of forces or schedule does not recompute the k-NN search.

        Returns
        -------
        self
        """
        stages, counts = self._stage_plan()
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise MotifLabError(f"n_neighbors must be a positive integer; got {k!r}.")
        kneg = self.negative_samples
        if isinstance(kneg, bool) or not isinstance(kneg, numbers.Integral) or kneg < 0:
            raise MotifLabError(f"negative_samples must be a non-negative integer; got {kneg!r}.")
        if self.force_form not in ("vector", "unit"):
            raise MotifLabError(f"force_form must be 'vector' or 'unit'; got {self.force_form!r}.")
        if not (isinstance(self.max_step, numbers.Real) and self.max_step > 0 and math.isfinite(self.max_step)):
            raise MotifLabError(f"max_step must be a positive number; got {self.max_step!r}.")
        X = check_features(X, k if graph is None else 1)
        n = X.shape[0]
        if n < 2:
            raise MotifLabError("Need at least 2 points for a layout.")
        factors = [schedule_factors(self.learning_rate_schedule, c) for c in counts]
        every = self._snapshot_interval(n, self.n_iter)
        seed = self._seed()

        old_threads = numba.get_num_threads()
        if self.n_jobs is not None:
            nj = int(self.n_jobs)
            nj = numba.config.NUMBA_NUM_THREADS if nj < 0 else max(1, min(nj, numba.config.NUMBA_NUM_THREADS))
            numba.set_num_threads(nj)
        try:
            timings = {"knn": 0.0, "graph": 0.0, "init": 0.0, "layout": 0.0}
            # ---- graph
            if graph is None:
                t0 = time.perf_counter()
                idx, dist = knn_graph(X, k, random_state=seed, method=self.knn_method)
                timings["knn"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                g = fuzzy_graph(idx, dist)
                timings["graph"] = time.perf_counter() - t0
                self.knn_indices_, self.knn_distances_ = idx, dist
            else:
                t0 = time.perf_counter()
                g = check_graph(graph, n)
                timings["graph"] = time.perf_counter() - t0
                self.knn_indices_ = self.knn_distances_ = None
            # ---- initial layout
            t0 = time.perf_counter()
            Y = self._initial_layout(X)
            timings["init"] = time.perf_counter() - t0
            # ---- relaxation
            t0 = time.perf_counter()
            Y, snaps, snap_it = self._relax(Y, g, stages, counts, factors, every, seed, kneg)
            timings["layout"] = time.perf_counter() - t0
        finally:
            if self.n_jobs is not None:
                numba.set_num_threads(old_threads)
        self.graph_ = g
        self.embedding_ = Y
        self.fit_X_ = X
        self.snapshots_ = snaps
        self.snapshot_iterations_ = snap_it
        self.n_iter_ = int(sum(counts))
        self.stage_iterations_ = tuple(counts)
        self.timings_ = timings
        return self

    def fit_transform(self, X, y=None, graph=None):
        """Fit and return the final layout (float32, shape (n_points, 2)); see :meth:`fit`."""
        return self.fit(X, y=y, graph=graph).embedding_

    def transform(self, X):
        """Place new points into the fitted layout; see :meth:`place`.

        Parameters
        ----------
        X : array-like, shape (n_new, n_features)
            Features of the same kind (and scaling) as the training features.

        Returns
        -------
        ndarray of float32, shape (n_new, 2)
        """
        return self.place(X).embedding

    def place(self, X):
        """Out-of-sample placement: new points in the fitted layout, training points fixed.

        Each new point is joined to its ``n_neighbors`` nearest training
        features (exact search) with UMAP-style directed memberships (the
        same fuzzy weights as :func:`motiflab.neighbors.fuzzy_graph` before
        symmetrisation), starts at the membership-weighted mean of their
        layout positions, and is relaxed under the **last** stage's forces
        (the attraction-dominated stage that shaped the final clusters; the
        first stage's global dilation has no meaning once the layout is
        fixed) for ``transform_iter`` iterations with the fit's learning-rate
        schedule.  Training points do not move and new points do not act on
        each other, so a point's place does not depend on what else is
        placed with it; its negative samples are keyed by its own feature
        values and ``random_state``, so it is reproducible in any batch,
        order or thread count.  A point whose features equal a training
        point's exactly takes that point's place (``transform(X_train)``
        gives back ``embedding_``).

        Parameters
        ----------
        X : array-like, shape (n_new, n_features)

        Returns
        -------
        Placement
            ``embedding`` (n_new, 2) float32, ``neighbors`` (n_new, k) training
            indices nearest first, ``distances`` (n_new, k) float32 feature
            distances, ``weights`` (n_new, k) memberships, ``exact`` (n_new,)
            bool.

        Raises
        ------
        MotifLabError
            When the layout is not fitted, or ``X`` is not finite 2-D data
            with the training features' width.
        """
        from .placement import place

        return place(self, X)

    # -------------------------------------------------------------- internals
    def _seed(self):
        return resolve_seed(self.random_state)

    def _initial_layout(self, X):
        init = self.init
        n = X.shape[0]
        if isinstance(init, str):
            if init != "pca":
                raise MotifLabError(f"init must be 'pca' or an (n_points, 2) array; got {init!r}.")
            if not (isinstance(self.init_scale, numbers.Real) and self.init_scale > 0):
                raise MotifLabError(f"init_scale must be a positive number; got {self.init_scale!r}.")
            return pca_init(X, float(self.init_scale))
        Y = np.asarray(init)
        if Y.shape != (n, 2) or not np.issubdtype(Y.dtype, np.number):
            raise MotifLabError(f"init array must have shape ({n}, 2); got {Y.shape}.")
        if not np.isfinite(Y).all():
            raise MotifLabError("init array contains NaN or infinite values.")
        return np.array(Y, dtype=np.float32, order="C", copy=True)

    def kernel_flags(self, n_points):
        """Which FR drivers a fit of ``n_points`` will run: the ``fast`` flags of :func:`compile_driver`.

        For :func:`motiflab.warmup.compile_ahead`, which compiles them before
        the fit.  Below ``100 * n_neighbors`` points, where the driver depends
        on the graph's density, none (an empty list).
        """
        from ._layout_kernels import driver_flags

        stages = self.stages if self.stages is not None else PAPER_STAGES
        return driver_flags(stages, self.force_form, self.n_neighbors, n_points)

    def _relax(self, Y, g, stages, counts, factors, every, seed, kneg):
        # SERIAL_MAX_POINTS is read here, at fit time, so it can be changed on this module
        return relax(Y, g, stages, counts, factors, every, seed, kneg, max_step=self.max_step,
                     unit=self.force_form == "unit", serial_max_points=SERIAL_MAX_POINTS,
                     callback=self.callback, verbose=self.verbose)
