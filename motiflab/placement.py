"""Out-of-sample placement: new columns in a fitted FR layout, the training layout fixed.

:meth:`motiflab.layout.FRLayout.place` / ``transform`` call :func:`place`: each
new point is joined to its nearest training features (:func:`query_knn`, exact),
starts at the membership-weighted mean of their layout positions, and relaxes
under the last stage's forces against the fixed training points.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from .errors import MotifLabError

__all__ = ["Placement", "QUERY_BLOCK", "query_knn", "place"]


class Placement(NamedTuple):
    """New points placed into a fitted layout (:meth:`FRLayout.place`)."""

    embedding: np.ndarray   # (M, 2) float32
    neighbors: np.ndarray   # (M, k) int64, training indices, nearest first
    distances: np.ndarray   # (M, k) float32 feature distances
    weights: np.ndarray     # (M, k) float32 fuzzy memberships
    exact: np.ndarray       # (M,) bool: features equal to a training point's


#: most rows of new points per block of the exact neighbour search; fewer
#: when the training set is large, so a block of products stays ~32 MB
QUERY_BLOCK = 2048


def query_knn(Xfit, X, k):
    """The ``k`` nearest rows of ``Xfit`` for every row of ``X`` (exact, Euclidean).

    Candidates come from blocked BLAS products (``|x|^2 + |y|^2 - 2 x.y``,
    the ``k + 4`` smallest of a row picked in one pass); their distances are
    then recomputed directly in float64, so an exact copy of a training row is at distance 0 exactly and
    the order does not suffer from the cancellation of the product form.

    Returns
    -------
    indices : ndarray of int64, shape (m, k), nearest first
    distances : ndarray of float32, shape (m, k)
    """
    from ._neighbors_kernels import smallest_k
    from ._placement_kernels import rerank_exact
    from ._threads import for_ranges

    Xfit = np.ascontiguousarray(Xfit, dtype=np.float32)
    X = np.ascontiguousarray(X, dtype=np.float32)
    n, m = len(Xfit), len(X)
    k = int(min(k, n))
    kc = min(n, k + 4)
    sq = np.einsum("ij,ij->i", Xfit, Xfit)
    idx = np.empty((m, k), np.int64)
    dist = np.empty((m, k), np.float32)
    cand = np.empty((m, kc), np.int64)
    block = int(np.clip(2**23 // max(n, 1), 64, QUERY_BLOCK))
    for a in range(0, m, block):
        q = X[a:a + block]
        if kc < n:
            # one pass per row picks the candidates (argpartition's per-row overhead dominated)
            for_ranges(smallest_k, len(q), sq[None, :] - 2.0 * (q @ Xfit.T), cand[a:a + len(q)], min_size=256)
        else:
            cand[a:a + len(q)] = np.arange(n)
    cand.sort(axis=1)  # ties go to the lower training index, whatever the partition did
    for_ranges(rerank_exact, m, Xfit, X, cand, k, idx, dist, min_size=256)
    return idx, dist


def place(layout, X):
    """New points ``X`` placed into the fitted ``layout`` (see :meth:`motiflab.layout.FRLayout.place`)."""
    from ._layout_kernels import int_exponent
    from ._placement_kernels import place_points, row_keys
    from ._threads import for_ranges
    from .neighbors import memberships
    from .layout import resolve_seed, schedule_factors

    Xfit = getattr(layout, "fit_X_", None)
    Yfit = getattr(layout, "embedding_", None)
    if Xfit is None or Yfit is None:
        raise MotifLabError("this FRLayout is not fitted yet; call fit (or fit_transform) before transform.")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != Xfit.shape[1]:
        raise MotifLabError(f"transform needs features of shape (n, {Xfit.shape[1]}) like the training "
                            f"features; got {X.shape}.")
    if len(X) == 0:
        z = np.zeros((0, 2), np.float32)
        k0 = min(int(layout.n_neighbors), len(Xfit))
        return Placement(z, np.zeros((0, k0), np.int64), np.zeros((0, k0), np.float32),
                         np.zeros((0, k0), np.float32), np.zeros(0, bool))
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise MotifLabError(f"Features must be real numbers; got dtype {X.dtype}.")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        raise MotifLabError("Features contain NaN or infinite values; drop or repair those rows first.")
    k = min(int(layout.n_neighbors), len(Xfit))
    idx, dist = query_knn(Xfit, X, k)
    w = memberships(dist, math.log2(k) if k > 1 else 1.0)
    exact = dist[:, 0] == 0.0
    Y = np.einsum("ik,ikd->id", w.astype(np.float64), Yfit[idx].astype(np.float64))
    Y /= w.sum(axis=1, dtype=np.float64)[:, None]
    Y = np.ascontiguousarray(Y, dtype=np.float32)
    Y[exact] = Yfit[idx[exact, 0]]
    stage = tuple(layout.stages)[-1]
    t = layout.transform_iter
    if t is None:
        t = int(getattr(layout, "stage_iterations_", (100,))[-1])
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
        raise MotifLabError(f"transform_iter must be None or a non-negative integer; got {t!r}.")
    lrs = (float(stage.learning_rate) * schedule_factors(layout.learning_rate_schedule, int(t))).astype(np.float32)
    kneg = int(layout.negative_samples)
    wsum = w.sum(axis=1, dtype=np.float64)
    n_neg = np.maximum(np.rint(kneg * wsum), 1 if kneg > 0 else 0).astype(np.int64)
    keys = np.empty(len(X), np.uint64)
    for_ranges(row_keys, len(X), X.view(np.uint32), np.uint64(resolve_seed(layout.random_state)), keys,
               min_size=256)
    for_ranges(place_points, len(X), Y, np.ascontiguousarray(Yfit, dtype=np.float32), idx, w, exact, keys, n_neg,
               np.float32(stage.alpha), float(stage.n), int_exponent(stage.n),
               np.float32(stage.beta), float(stage.m), int_exponent(stage.m), float(kneg), lrs,
               float(layout.max_step), layout.force_form == "unit", min_size=64)
    return Placement(Y, idx, dist, w, exact)
