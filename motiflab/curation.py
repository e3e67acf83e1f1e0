"""Curation of motif classes: assign, merge and split, replayable after re-computation.

A person looking at the motif classes often knows better than the clustering:
two classes are one motif, one class mixes two, a handful of defect columns
belong together. :meth:`motiflab.Analysis.edit` records such edits and
:meth:`~motiflab.Analysis.undo` removes the last one. The edits are *replayed*
every time the motifs are recomputed, so they survive re-running any upstream
stage (a new FR schedule, a new patch size, even re-found columns), and they are
saved with the result (``edits`` in RESULT.npz, as JSON).

Why positions, not indices
--------------------------
Column indices and motif numbers are not stable: a new column threshold finds
a different set of columns, and HDBSCAN numbers its clusters by size, so
"motif 3" after a layout change may be another class. An edit therefore stores
*where* its columns are (their (row, col) pixel positions) and identifies a motif
by an **anchor**: the positions of (up to :data:`ANCHOR_MAX`) of its member
columns at the time of the edit. On replay every stored position is mapped to
the nearest current column within ``0.5 ×`` the median nearest-neighbour
distance (columns that vanished are skipped), and a motif is resolved as the
most common current label among its anchor's columns.

Edit kinds (the dict given to :meth:`motiflab.Analysis.edit`)
--------------------------------------------------------------
``{"kind": "assign", "columns": [i, ...], "motif": k | "new" | -1}``
    Put these columns (indices into ``analysis.positions``; or ``"positions":
    [[row, col], ...]``) into motif ``k``, into a new motif, or make them
    unassigned (−1). Stored: the columns' positions and the target's anchor. On
    replay the target resolves through its anchor; if none of the anchor
    columns still carries a label, the columns form a new motif.
``{"kind": "merge", "motifs": [a, b, ...]}``
    Merge motifs ``b, ...`` into ``a``. Stored: one anchor per motif. On replay
    each anchor resolves to its current motif; motifs that already coincide
    (the clustering merged them itself) make the edit a no-op.
``{"kind": "split", "motif": a, "n": 2, "seed": 0, "on": "features"}``
    Split motif ``a`` into ``n`` by k-means on its members' Zernike features
    (``on="features"``, default) or FR layout coordinates (``on="layout"``).
    A split is stored as a *rule* — "split the motif at this anchor into n" —
    and re-evaluated on the motif's current members at replay; with unchanged
    members it gives exactly the same parts (fixed ``seed``). The largest part
    keeps the motif's number; the others become new motifs.

After every edit motif numbers are kept in order and compacted (an emptied
motif is removed, the numbers above it shift down by one); new motifs get the
next free number. :func:`validate_edit` turns the user's dict into the stored,
JSON-ready form; :func:`apply_edits` replays a list of stored edits on freshly
clustered motifs.

Examples
--------
>>> an.edit({"kind": "assign", "columns": [10, 11, 12], "motif": "new"})  # doctest: +SKIP
>>> an.edit({"kind": "merge", "motifs": [0, 3]})                          # doctest: +SKIP
>>> an.undo()                                                             # doctest: +SKIP
"""
from __future__ import annotations

import numbers

import numpy as np

from .errors import MotifLabError

__all__ = ["KINDS", "ANCHOR_MAX", "validate_edit", "apply_edits", "match_positions", "resolve_motif"]

KINDS = ("assign", "merge", "split")
#: at most this many member positions identify a motif (evenly spread over its members)
ANCHOR_MAX = 256
#: decimals kept for stored positions (pixels): 0.01 px is far below any column shift that matters
_DECIMALS = 2


# --------------------------------------------------------------------------- helpers
def _positions_list(pos) -> list:
    return np.round(np.asarray(pos, dtype=np.float64), _DECIMALS).reshape(-1, 2).tolist()


def _anchor(labels, positions, k) -> dict:
    members = np.flatnonzero(labels == k)
    if len(members) > ANCHOR_MAX:
        members = members[np.linspace(0, len(members) - 1, ANCHOR_MAX).round().astype(int)]
    return {"motif": int(k), "anchor": _positions_list(positions[members])}


def _check_motif_number(k, n_motifs, what, allow=()):
    if isinstance(k, str) and k in allow:
        return k
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise MotifLabError(f"{what} must be a motif number 0..{n_motifs - 1}"
                            + (f" or one of {list(allow)}" if allow else "") + f"; got {k!r}.")
    k = int(k)
    if not 0 <= k < n_motifs:
        raise MotifLabError(f"{what} {k} does not exist: there are {n_motifs} motifs (0..{n_motifs - 1}). "
                            "Look at analysis.motifs.counts for the current numbers.")
    return k


def _check_stored_anchor(spec, what):
    if not (isinstance(spec, dict) and "anchor" in spec):
        raise MotifLabError(f"{what} must be a motif number (or a stored {{'motif', 'anchor'}} dict); got {spec!r}.")
    a = np.asarray(spec["anchor"], dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or not np.isfinite(a).all():
        raise MotifLabError(f"{what}: anchor must be a list of [row, col] positions; got shape {a.shape}.")
    return {"motif": int(spec.get("motif", -1)), "anchor": _positions_list(a)}


def _nn_tolerance(positions) -> float:
    from ._validation import median_nn_distance

    nn = median_nn_distance(positions)
    return 0.5 * nn if np.isfinite(nn) else 1.0


def match_positions(stored, positions, tree=None, tol=None) -> np.ndarray:
    """Indices of the current columns nearest to stored positions (unique, sorted).

    Parameters
    ----------
    stored : array_like, shape (M, 2)
        (row, col) pixel positions recorded in an edit.
    positions : ndarray, shape (N, 2)
        Current column positions.
    tree : scipy.spatial.cKDTree, optional
        Prebuilt tree of ``positions``.
    tol : float, optional
        Largest accepted distance (px); default half the median
        nearest-neighbour distance, so a stored position never maps onto a
        neighbouring column.

    Returns
    -------
    ndarray of int
        Matched column indices; stored positions with no column within ``tol``
        (the column vanished) are skipped.
    """
    from scipy.spatial import cKDTree

    stored = np.asarray(stored, dtype=np.float64).reshape(-1, 2)
    if len(stored) == 0 or len(positions) == 0:
        return np.zeros(0, dtype=np.int64)
    tree = cKDTree(positions) if tree is None else tree
    tol = _nn_tolerance(positions) if tol is None else tol
    d, idx = tree.query(stored, distance_upper_bound=tol)
    return np.unique(idx[np.isfinite(d)]).astype(np.int64)


def resolve_motif(spec, labels, positions, tree=None, tol=None):
    """Current motif number of a stored motif anchor, or None when it has no labelled column left.

    The most common label among the anchor's current columns wins (ties: the
    smaller number); unassigned columns (−1) do not vote.
    """
    idx = match_positions(spec["anchor"], positions, tree, tol)
    labs = labels[idx]
    labs = labs[labs >= 0]
    if len(labs) == 0:
        return None
    return int(np.argmax(np.bincount(labs)))


def _compact(labels):
    """Renumber labels 0..K−1 keeping their order (emptied motifs disappear)."""
    out = labels.copy()
    ok = labels >= 0
    if ok.any():
        uniq, inv = np.unique(labels[ok], return_inverse=True)
        out[ok] = inv
    return out


# --------------------------------------------------------------------------- public API
def validate_edit(edit, analysis) -> dict:
    """Check a curation edit against the current motifs; return its stored (JSON-ready) form.

    Parameters
    ----------
    edit : dict
        ``{"kind": "assign" | "merge" | "split", ...}``, see the module
        docstring. Column indices and motif numbers refer to the analysis'
        *current* state (``analysis.positions`` and ``analysis.motifs``,
        including earlier edits). An edit already in stored form (from a saved
        result) is accepted too.
    analysis : motiflab.Analysis

    Returns
    -------
    dict
        Positions and motif anchors instead of indices and numbers, so the
        edit can be replayed after upstream stages changed.

    Raises
    ------
    MotifLabError
        Unknown kind, missing fields, indices or motif numbers out of range.
    """
    if not isinstance(edit, dict):
        raise MotifLabError(f"an edit must be a dict with a 'kind' ({', '.join(KINDS)}); got {type(edit).__name__}.")
    kind = edit.get("kind")
    if kind not in KINDS:
        raise MotifLabError(f"unknown edit kind {kind!r}; use one of {', '.join(KINDS)} (see motiflab.curation).")
    motifs = analysis.motifs
    labels = np.asarray(motifs.labels)
    positions = np.asarray(analysis.positions, dtype=np.float64)
    K = motifs.n_motifs

    def motif_spec(value, what):
        if isinstance(value, dict):
            return _check_stored_anchor(value, what)
        k = _check_motif_number(value, K, what)
        return _anchor(labels, positions, k)

    if kind == "assign":
        if "positions" in edit:
            pos = np.asarray(edit["positions"], dtype=np.float64)
            if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0 or not np.isfinite(pos).all():
                raise MotifLabError("assign: 'positions' must be a non-empty list of [row, col] pixel positions.")
        elif "columns" in edit:
            cols = np.asarray(edit["columns"])
            if cols.ndim != 1 or len(cols) == 0 or not np.issubdtype(cols.dtype, np.integer):
                raise MotifLabError("assign: 'columns' must be a non-empty list of column indices "
                                    "(e.g. the current selection); select some columns first.")
            if cols.min() < 0 or cols.max() >= len(positions):
                raise MotifLabError(f"assign: column indices must be in 0..{len(positions) - 1}; "
                                    f"got {int(cols.min())}..{int(cols.max())}.")
            pos = positions[np.unique(cols)]
        else:
            raise MotifLabError("assign needs 'columns' (indices) or 'positions' ([row, col] list).")
        target = edit.get("motif", edit.get("target", "new"))
        if isinstance(target, numbers.Integral) and not isinstance(target, bool) and int(target) == -1:
            target = "unassigned"
        if target in ("new", "unassigned"):
            tspec = target
        else:
            tspec = motif_spec(target, "assign: 'motif'")
        return {"kind": "assign", "positions": _positions_list(pos), "target": tspec}

    if kind == "merge":
        ms = edit.get("motifs")
        if not isinstance(ms, (list, tuple)) or len(ms) < 2:
            raise MotifLabError("merge needs 'motifs': a list of at least two motif numbers, e.g. [0, 3].")
        specs = [motif_spec(m, "merge: motif") for m in ms]
        nums = [s["motif"] for s in specs]
        if not any(isinstance(m, dict) for m in ms) and len(set(nums)) < 2:
            raise MotifLabError(f"merge needs two different motifs; got {list(ms)}.")
        return {"kind": "merge", "motifs": specs}

    # split
    if "motif" not in edit:
        raise MotifLabError("split needs 'motif': the number of the motif to split.")
    spec = motif_spec(edit["motif"], "split: 'motif'")
    n = edit.get("n", 2)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise MotifLabError(f"split: 'n' (number of parts) must be an integer ≥ 2; got {n!r}.")
    on = edit.get("on", "features")
    if on not in ("features", "layout"):
        raise MotifLabError(f"split: 'on' must be 'features' or 'layout'; got {on!r}.")
    if not isinstance(edit["motif"], dict):
        size = int(np.sum(labels == spec["motif"]))
        if size < int(n):
            raise MotifLabError(f"split: motif {spec['motif']} has {size} columns, too few for {n} parts.")
    seed = edit.get("seed", analysis.params.get("seed", 0))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise MotifLabError(f"split: 'seed' must be a non-negative integer; got {seed!r}.")
    return {"kind": "split", "motif": spec, "n": int(n), "seed": int(seed), "on": on}


def _split_parts(X, n, seed):
    """k-means labels of ``X`` into ``n`` parts, numbered by decreasing size (deterministic)."""
    from sklearn.cluster import KMeans

    X = np.asarray(X, dtype=np.float64)
    # scale-free: features of different orders have different spreads
    sd = X.std(0)
    X = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    # one thread (OpenMP and BLAS): scikit-learn's k-means sums its centres per thread,
    # so with two threads they differ in the last bit from one thread's (and the parts
    # may too, near a tie); single-threaded, a split is the same for any thread count
    # (and faster on small machines: 8.7k members, 0.04 s against 0.7 s on 2 cores)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=int(n), n_init=4, random_state=int(seed)).fit(X)
    lab = km.labels_
    counts = np.bincount(lab, minlength=n)
    order = np.lexsort((np.arange(n), -counts))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank[lab]


def apply_edits(motifs, edits, analysis):
    """Replay stored edits on freshly clustered motifs.

    Parameters
    ----------
    motifs : motiflab.motifs.Motifs
        The clustering's motifs (no edits applied).
    edits : list of dict
        Stored edits (:func:`validate_edit` output), applied in order.
    analysis : motiflab.Analysis
        Supplies the current positions, patches, features and layout.

    Returns
    -------
    motiflab.motifs.Motifs
        New labels, class averages and counts; ``params["curation"]`` reports
        for each edit whether it applied and how many stored columns were found
        (``{"kind", "applied", "matched", "stored", "note"}``).
    """
    from scipy.spatial import cKDTree

    from .motifs import Motifs, class_averages

    positions = np.asarray(analysis.positions, dtype=np.float64)
    labels = np.asarray(motifs.labels, dtype=np.int64).copy()
    if len(labels) != len(positions):
        raise MotifLabError(f"{len(labels)} labels but {len(positions)} columns; motifs and analysis do not match.")
    tree = cKDTree(positions)
    tol = _nn_tolerance(positions)
    report = []
    for e in edits:
        kind = e.get("kind")
        rep = {"kind": kind, "applied": False, "matched": 0, "stored": 0, "note": ""}
        if kind == "assign":
            idx = match_positions(e["positions"], positions, tree, tol)
            rep.update(matched=int(len(idx)), stored=len(e["positions"]))
            t = e["target"]
            if t == "unassigned":
                k = -1
            elif t == "new":
                k = int(labels.max()) + 1
            else:
                k = resolve_motif(t, labels, positions, tree, tol)
                if k is None:
                    k = int(labels.max()) + 1
                    rep["note"] = "target motif not found; the columns form a new motif"
            if len(idx):
                labels[idx] = k
                rep["applied"] = True
            else:
                rep["note"] = "none of the stored columns exists any more"
        elif kind == "merge":
            ks = [resolve_motif(s, labels, positions, tree, tol) for s in e["motifs"]]
            found = [k for k in ks if k is not None]
            rep.update(matched=len(found), stored=len(ks))
            if len(set(found)) >= 2:
                dst = found[0]
                for k in found[1:]:
                    labels[labels == k] = dst
                rep["applied"] = True
            else:
                rep["note"] = "the motifs already coincide or were not found"
        elif kind == "split":
            a = resolve_motif(e["motif"], labels, positions, tree, tol)
            n = int(e["n"])
            members = np.flatnonzero(labels == a) if a is not None else np.zeros(0, int)
            rep.update(matched=int(len(members)), stored=len(e["motif"]["anchor"]))
            if a is None:
                rep["note"] = "motif not found"
            elif len(members) < n:
                rep["note"] = f"motif has {len(members)} columns, too few for {n} parts"
            else:
                X = analysis.features.X[members] if e.get("on", "features") == "features" \
                    else analysis.layout.embedding[members]
                part = _split_parts(X, n, e.get("seed", 0))
                nxt = int(labels.max()) + 1
                for p in range(1, n):
                    labels[members[part == p]] = nxt + p - 1
                rep["applied"] = True
        else:
            raise MotifLabError(f"stored edit of unknown kind {kind!r}; edits must be made with validate_edit.")
        labels = _compact(labels)
        report.append(rep)
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    avgs, counts = class_averages(analysis.patches.patches, labels, k)
    params = dict(getattr(motifs, "params", {}) or {})
    params["curation"] = report
    return Motifs(labels=labels, class_averages=avgs, counts=np.asarray(counts, dtype=np.int64),
                  n_unassigned=int((labels < 0).sum()), params=params)
