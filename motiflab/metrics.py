"""Scoring against ground truth: column matching, clustering agreement, per-class F1.

Used by the test suite, the benchmarks and the tutorials, so that "accuracy"
means the same thing everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ColumnMatch", "match_columns", "clustering_scores", "best_match_f1"]


@dataclass
class ColumnMatch:
    """One-to-one matching of found columns to true columns.

    Attributes
    ----------
    found_to_true : ndarray (M,) int
        Index of the matched true column for each found column, −1 if unmatched.
    recall, precision : float
    median_error : float
        Median distance (px) of matched pairs.
    """

    found_to_true: np.ndarray
    recall: float
    precision: float
    median_error: float
    errors: np.ndarray


def match_columns(found, true, tol=1.0, true_mask=None) -> ColumnMatch:
    """Match found positions to true positions within ``tol`` px, one to one (nearest first).

    Parameters
    ----------
    found : ndarray (M, 2)
    true : ndarray (N, 2)
    tol : float
        Matching radius in pixels.
    true_mask : ndarray (N,) bool, optional
        The true columns that should be found (e.g. visible and away from the
        border); recall is computed over these, and found columns matching a
        true column outside the mask are neither hits nor false positives.
    """
    from scipy.spatial import cKDTree

    found = np.asarray(found, float)
    true = np.asarray(true, float)
    if true_mask is None:
        true_mask = np.ones(len(true), bool)
    d, j = cKDTree(true).query(found, k=1, distance_upper_bound=tol)
    f2t = np.where(np.isfinite(d), j, -1)
    # resolve duplicates: keep the closest found column per true column
    order = np.argsort(np.where(np.isfinite(d), d, np.inf), kind="stable")
    taken = np.zeros(len(true), bool)
    out = np.full(len(found), -1, np.int64)
    for i in order:
        t = f2t[i]
        if t >= 0 and not taken[t]:
            taken[t] = True
            out[i] = t
    matched_in = (out >= 0) & true_mask[np.maximum(out, 0)]
    ignored = (out >= 0) & ~true_mask[np.maximum(out, 0)]
    recall = float(taken[true_mask].mean()) if true_mask.any() else float("nan")
    denom = len(found) - int(ignored.sum())
    precision = float(matched_in.sum() / denom) if denom > 0 else float("nan")
    err = np.linalg.norm(found[matched_in] - true[out[matched_in]], axis=1)
    return ColumnMatch(out, recall, precision, float(np.median(err)) if len(err) else float("nan"), err)


def clustering_scores(true_labels, labels) -> dict:
    """ARI, Fowlkes–Mallows and adjusted mutual information of two labellings."""
    from sklearn import metrics

    t = np.asarray(true_labels)
    p = np.asarray(labels)
    return dict(
        ari=float(metrics.adjusted_rand_score(t, p)),
        fmi=float(metrics.fowlkes_mallows_score(t, p)),
        ami=float(metrics.adjusted_mutual_info_score(t, p)),
    )


def best_match_f1(true_labels, labels, cls) -> tuple[float, int]:
    """F1 of the predicted cluster that best matches true class ``cls``; returns (f1, cluster)."""
    t = np.asarray(true_labels) == cls
    p = np.asarray(labels)
    best, arg = 0.0, -1
    n_true = int(t.sum())
    if n_true == 0:
        return float("nan"), -1
    for c in np.unique(p[t]):
        if c < 0:
            continue
        pred = p == c
        tp = int((pred & t).sum())
        f1 = 2 * tp / (int(pred.sum()) + n_true)
        if f1 > best:
            best, arg = f1, int(c)
    return best, arg
