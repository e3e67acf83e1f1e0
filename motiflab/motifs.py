"""Motif classes from the FR layout: clusters, class averages, reconstruction (METHOD.md §4).

The FR layout's attraction stage pulls each motif into a compact, well
separated blob, so a density clustering of the 2-D layout (HDBSCAN) finds the
motif classes without being told how many there are. Points HDBSCAN calls
noise get label −1 ("unassigned"); :func:`assign_noise` can attach them to the
nearest class when a complete labelling is wanted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from ._blas import single_threaded_blas
from .errors import MotifLabError
from .separation import MIN_SEPARATION

__all__ = ["Motifs", "canonical_labels", "cluster_layout", "assign_noise", "attach_noise", "class_averages",
           "reconstruct_image", "default_min_cluster_size", "find_motifs"]

@dataclass
class Motifs:
    """Motif classes of a set of columns.

    Attributes
    ----------
    labels : ndarray, shape (N,) int
        Motif of each column, 0..K−1 in order of decreasing size, ties in the order of
        each motif's smallest column index (:func:`canonical_labels`); −1 = unassigned.
    class_averages : ndarray, shape (K, P, P) float32
        Mean patch of each motif.
    counts : ndarray, shape (K,) int
        Number of columns in each motif.
    n_unassigned : int
        Columns with label −1.
    """

    labels: np.ndarray
    class_averages: np.ndarray
    counts: np.ndarray
    n_unassigned: int
    params: dict = field(default_factory=dict)

    @property
    def n_motifs(self) -> int:
        return len(self.counts)


def default_min_cluster_size(n: int) -> int:
    """Smallest motif class HDBSCAN may report by default: 0.1 % of the columns, at least 5.

    Rare defect motifs (a metal next to three chalcogen vacancies) can be a
    handful of columns in a whole image, so the floor stays small; the FR
    layout keeps such classes compact enough that small floors do not split
    the big lattice classes.
    """
    from ._validation import check_int

    n = check_int(n, "n", low=0)
    return int(max(5, round(0.001 * n)))


def canonical_labels(labels):
    """Renumber motif labels canonically: 0..K−1 by decreasing size, ties by the smallest column index.

    The numbers then depend on the partition alone, not on how a clustering
    happened to number its groups: the same partition always gets the same
    numbers (labels −1 stay −1).

    Parameters
    ----------
    labels : ndarray (N,) int
        Any integer labels, −1 (or any negative) for unassigned.

    Returns
    -------
    ndarray (N,) int64
    """
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, dtype=np.int64)
    ok = np.flatnonzero(labels >= 0)
    if len(ok) == 0:
        return out
    _, first, inv, counts = np.unique(labels[ok], return_index=True, return_inverse=True, return_counts=True)
    # ``first`` indexes labels[ok], whose order is the column order: the key is the smallest column index
    order = np.lexsort((first, -counts))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    out[ok] = rank[inv.ravel()]
    return out


_relabel_by_size = canonical_labels  # the old private name


#: above this many points HDBSCAN runs on a seeded subsample, and the other points take
#: the majority label of their nearest subsample points. Chosen with scikit-learn's HDBSCAN
#: (Prim's tree, quadratic) on the FR layout of bench_pipeline's 2048² image (35k columns),
#: best of 3: 0.33 s for a 10k subsample, 0.22 s for 8k, 0.15 s for 6k, with the same 20
#: motifs and ARI 0.960-0.961 against the truth at every size (the hdbscan library used
#: now clusters 6k layout points in ~0.05 s)
MAX_CLUSTER_POINTS = 6_000


def cluster_layout(embedding, min_cluster_size=None, min_samples=None, cluster_selection_epsilon=0.0,
                   max_points=MAX_CLUSTER_POINTS, random_state=0):
    """Motif labels from a 2-D layout by HDBSCAN.

    Parameters
    ----------
    embedding : ndarray, shape (N, 2)
        The FR layout.
    min_cluster_size : int, optional
        Granularity knob: the smallest group of columns that may form its own
        motif. Default :func:`default_min_cluster_size`.
    min_samples : int, optional
        HDBSCAN's density smoothing, counting the point itself (as in
        scikit-learn); default = min_cluster_size, capped at 15 (larger values
        call more points noise).
    cluster_selection_epsilon : float
        Merge clusters closer than this in the layout (layout units).
    max_points : int
        Above this many points, HDBSCAN clusters a random subsample of this
        size (with ``min_cluster_size`` scaled by the same fraction, so the
        granularity is unchanged) and every other point takes the majority
        label of its 5 nearest subsample points in the layout.
    random_state : int
        Seed of the subsample.

    Returns
    -------
    ndarray, shape (N,) int
        Labels 0..K−1 by decreasing size (:func:`canonical_labels`), −1 for noise.
    """
    from ._validation import check_int, check_matrix

    Y = check_matrix(embedding, "embedding", min_rows=0)
    if Y.ndim != 2 or Y.shape[1] != 2:
        raise MotifLabError(f"embedding must have shape (N, 2), got {Y.shape}.")
    n = len(Y)
    if min_cluster_size is None:
        min_cluster_size = default_min_cluster_size(n)
    min_cluster_size = check_int(min_cluster_size, "min_cluster_size", low=2)
    if min_cluster_size < 2:
        raise MotifLabError("min_cluster_size must be at least 2.")
    if n < max(2 * min_cluster_size, 10):
        raise MotifLabError(
            f"only {n} columns: too few to cluster into motifs with min_cluster_size={min_cluster_size}. "
            "Use a larger image (or a smaller patch so fewer border columns are dropped), or lower "
            "min_cluster_size."
        )
    if not np.isfinite(Y).all():
        raise MotifLabError("the layout contains NaN/inf; re-run the layout with a smaller learning rate.")
    if min_samples is None:
        min_samples = min(min_cluster_size, 15)
    sub = None
    if max_points and n > max_points:
        sub = np.sort(np.random.default_rng(random_state).choice(n, int(max_points), replace=False))
        frac = max_points / n
        min_cluster_size = max(5, int(round(min_cluster_size * frac)))
        min_samples = max(1, min(int(min_samples), min_cluster_size))
    hdb = hdbscan_estimator(min_cluster_size, int(min_samples), float(cluster_selection_epsilon))
    if sub is None:
        labels = hdb.fit_predict(Y)
    else:
        labels = _spread_labels(Y, sub, hdb.fit_predict(Y[sub]))
    if (labels < 0).all():
        # HDBSCAN refuses to call everything one cluster; a pure crystal is one motif per sublattice
        labels = np.zeros(n, dtype=np.int64)
    return canonical_labels(labels)


def hdbscan_estimator(min_cluster_size, min_samples, cluster_selection_epsilon):
    """The HDBSCAN* estimator: the ``hdbscan`` library's, Borůvka on a kd-tree, for any number of points.

    Compiled ahead (Cython), so no first run waits for a JIT, and near-linear
    on a 2-D layout: 1.7-1.9x faster than scikit-learn's Prim's tree at the
    5-6k points the explorer clusters (0.041 vs 0.070 s, 0.046 vs 0.085 s),
    and faster than the numba fast_hdbscan it replaces above that, with the
    same motifs (ARI 0.9993-1.0 against the previous labels on the benchmark
    images; ``benchmarks/README.md``).
    The minimum spanning tree is exact (``approx_min_span_tree=False``) and
    the core distances are computed on one thread (the same result on any
    machine, no worker start-up). ``cluster_selection_epsilon > 0`` works
    too (scikit-learn's failed inside its Cython tree code with current NumPy).

    ``min_samples`` counts the point itself (scikit-learn's convention, used by
    our defaults and tests); the library counts neighbours only, hence its -1.
    """
    from hdbscan import HDBSCAN

    return HDBSCAN(min_cluster_size=min_cluster_size, min_samples=max(1, min_samples - 1),
                   cluster_selection_epsilon=cluster_selection_epsilon, algorithm="boruvka_kdtree",
                   approx_min_span_tree=False, core_dist_n_jobs=1)


def _spread_labels(Y, sub, sub_labels, k=5):
    """Label every point by majority vote of its ``k`` nearest subsample points (−1 if most are noise)."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(Y[sub]).query(Y, k=k, workers=-1)
    votes = sub_labels[idx]  # (N, k)
    kmax = int(sub_labels.max()) + 2
    rows = np.repeat(np.arange(len(Y)), k)
    # vote counts per (point, label); column 0 = noise
    counts = np.bincount(rows * kmax + votes.ravel() + 1, minlength=len(Y) * kmax).reshape(len(Y), kmax)
    labels = counts.argmax(1) - 1
    labels[sub] = sub_labels  # sampled points keep their own label
    return labels


def assign_noise(embedding, labels):
    """Give every unassigned (−1) point the label of its nearest assigned neighbour in the layout."""
    from scipy.spatial import cKDTree

    from ._validation import check_labels, check_matrix

    embedding = check_matrix(embedding, "embedding", min_rows=0, cols=2)
    labels = check_labels(labels, len(embedding), what="layout points").copy()
    noise = labels < 0
    if noise.any() and (~noise).any():
        _, idx = cKDTree(embedding[~noise]).query(embedding[noise])
        labels[noise] = labels[~noise][idx]
    return labels


def class_averages(patches, labels, n_classes=None):
    """Mean patch of each class (one sparse × dense product, no Python loop).

    Parameters
    ----------
    patches : ndarray, shape (N, P, P)
    labels : ndarray, shape (N,) int, −1 ignored
    n_classes : int, optional
        Defaults to ``labels.max() + 1``.

    Returns
    -------
    averages : ndarray, shape (K, P, P) float32
    counts : ndarray, shape (K,) int
    """
    from ._validation import check_int, check_labels

    patches = np.asarray(patches) if not isinstance(patches, (str, bytes, dict)) else np.asarray(None)
    if patches.dtype.kind not in "fiub" or patches.ndim != 3:
        raise MotifLabError(f"patches must be an (N, P, P) numeric stack, got "
                            f"{f'dtype {patches.dtype}' if patches.dtype.kind not in 'fiub' else f'shape {patches.shape}'}.")
    labels = check_labels(labels)
    if len(patches) != len(labels):
        raise MotifLabError(f"{len(patches)} patches but {len(labels)} labels; they must match one to one.")
    if n_classes is not None:
        n_classes = check_int(n_classes, "n_classes", low=0, high=max(len(labels), 1))
    elif not labels.size:
        raise MotifLabError("labels is empty: there are no patches to average; give n_classes for an empty result.")
    k = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    n, p = patches.shape[0], patches.shape[1:]
    ok = labels >= 0
    onehot = sparse.csr_matrix(
        (np.ones(int(ok.sum()), np.float32), (labels[ok], np.nonzero(ok)[0])), shape=(max(k, 1), n)
    )
    counts = np.bincount(labels[ok], minlength=k)[:k]
    sums = onehot @ patches.reshape(n, -1).astype(np.float32, copy=False)
    avg = sums[:k] / np.maximum(counts, 1)[:, None]
    return np.asarray(avg, dtype=np.float32).reshape((k,) + p), counts


def reconstruct_image(shape, positions, labels, averages, window="disk"):
    """Rebuild a micrograph by placing each column's class average at its position.

    Overlapping patches are blended with a smooth window so the result has no
    seams; pixels no patch covers stay at the background (the minimum of the
    class averages). Unassigned columns (−1) are left out.

    Parameters
    ----------
    shape : tuple
        (H, W) of the output image.
    positions : ndarray, shape (N, 2)
        (row, col) positions.
    labels : ndarray, shape (N,)
    averages : ndarray, shape (K, P, P)
    window : {"disk", "flat"}
        Blending weights: a raised-cosine disk (default) or uniform.

    Returns
    -------
    ndarray, shape (H, W) float32
    """
    from ._validation import check_labels, check_positions, check_shape

    h, w = check_shape(shape)
    averages = np.asarray(averages) if not isinstance(averages, (str, bytes, dict)) else np.asarray(None)
    if averages.dtype.kind not in "fiub" or averages.ndim != 3 or len(averages) == 0 or \
            averages.shape[1] != averages.shape[2]:
        raise MotifLabError("averages must hold at least one square class average, shape (K, P, P); got "
                            f"{averages.shape if averages.dtype.kind in 'fiub' else averages.dtype}.")
    averages = averages.astype(np.float32, copy=False)
    P = averages.shape[1]
    pos = check_positions(positions, min_n=0)
    labels = check_labels(labels, len(pos))
    if labels.size and labels.max() >= len(averages):
        raise MotifLabError(f"labels go up to {int(labels.max())} but there are only {len(averages)} class "
                            "averages; give one average per motif (motiflab.motifs.class_averages).")
    ok = labels >= 0
    pos, labels = pos[ok], labels[ok]
    c = (P - 1) / 2.0
    yy, xx = np.mgrid[0:P, 0:P]
    r = np.hypot(yy - c, xx - c) / (P / 2.0)
    wgt = (0.5 + 0.5 * np.cos(np.pi * np.clip(r, 0, 1))) if window == "disk" else np.ones((P, P))
    wgt = (wgt + 1e-6).astype(np.float32)
    # top-left corner consistent with motiflab.patches: the centre pixel is the rounded position
    top = np.round(pos).astype(np.int64) - P // 2
    rows = top[:, 0, None, None] + yy[None]
    cols = top[:, 1, None, None] + xx[None]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = (rows * w + cols)[inside]
    vals = (averages[labels] * wgt[None])[inside]
    wts = np.broadcast_to(wgt[None], inside.shape)[inside]
    num = np.bincount(flat, weights=vals, minlength=h * w)
    den = np.bincount(flat, weights=wts, minlength=h * w)
    bg = float(averages.min())
    out = np.where(den > 1e-3, num / np.maximum(den, 1e-12), bg)
    return out.reshape(h, w).astype(np.float32)


def _class_means(labels, X, k):
    """(k, J) mean of the rows of ``X`` in each class 0..k-1 (label −1 ignored; empty class → 0)."""
    ok = labels >= 0
    onehot = sparse.csr_matrix((np.ones(int(ok.sum())), (labels[ok], np.flatnonzero(ok))),
                               shape=(k, len(labels)))
    counts = np.bincount(labels[ok], minlength=k)
    # float64 product (a float32 X is converted row block by row block inside scipy)
    return np.asarray(onehot @ X, dtype=np.float64) / np.maximum(counts, 1)[:, None]


def attach_noise(labels, X, quantile=0.99):
    """Give unassigned columns to the nearest motif (in feature space) when they fit inside it.

    A column joins a motif when its distance to the motif's mean feature is
    within that motif's own ``quantile`` member distance; columns that fit no
    motif stay −1 (genuinely odd columns, or spurious feature points).
    """
    from ._validation import check_labels, check_matrix, check_number

    labels = check_labels(labels).copy()
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and len(X) == len(labels)):
        X = check_matrix(X, "X", min_rows=0)
        if len(X) != len(labels):
            raise MotifLabError(f"X has {len(X)} rows but there are {len(labels)} labels; give one row each.")
    quantile = check_number(quantile, "quantile", low=0.0, high=1.0)
    noise = labels < 0
    k = int(labels.max()) + 1 if labels.size else 0
    if not noise.any() or k == 0:
        return labels
    X = np.asarray(X)
    ok = ~noise
    cent = _class_means(labels, X, k)
    if X.dtype == np.float32:
        cent = cent.astype(np.float32)  # keep the (N, J) temporaries in float32
    member_d = np.linalg.norm(X[ok] - cent[labels[ok]], axis=1)
    radius = np.array([np.quantile(member_d[labels[ok] == c], quantile) if (labels[ok] == c).any() else 0.0
                       for c in range(k)])
    d = np.linalg.norm(X[noise][:, None, :] - cent[None], axis=2)
    best = d.argmin(1)
    fits = d[np.arange(len(best)), best] <= radius[best]
    idx = np.flatnonzero(noise)
    labels[idx[fits]] = best[fits]
    return labels


def find_motifs(embedding, patches, min_cluster_size=None, min_samples=None, cluster_selection_epsilon=0.0,
                features=None, evidence=None, spacing=None, column_sigma=None, min_separation=MIN_SEPARATION,
                positions=None, rotations=1, random_state=0, lattice_vectors=None, evidence_scale=1.0,
                neighbours=None):
    """Cluster a layout into motifs, keep as many as the evidence supports, and average the patches of each.

    Parameters
    ----------
    embedding : ndarray (N, 2)
        The FR layout.
    patches : ndarray (N, P, P)
        The patches (class averages are their means).
    min_cluster_size, min_samples, cluster_selection_epsilon
        See :func:`cluster_layout`.
    features : ndarray (N, J), optional
        The features behind the layout; when given, HDBSCAN's unassigned
        columns that fit a motif join it (:func:`attach_noise`).
    evidence : ndarray (N, P, P), optional
        The patches in noise units (variance-stabilised). When given, motifs the
        noise cannot tell apart are merged and motifs whose column counts fall
        into two clearly separated groups are split
        (:mod:`motiflab.separation`), so the count follows the evidence: fewer,
        broader motifs at lower dose.
    spacing : float, optional
        Nearest-neighbour distance of the columns in px (needed with ``evidence``).
    column_sigma : float, optional
        Gaussian width of a column in px (default spacing/5).
    min_separation : float
        Smallest separation between two motifs, in single-column noise units
        (default 2.5). This is the granularity knob: larger → fewer, broader
        motifs; 0 keeps the layout's clusters as they are.
    positions : ndarray (N, 2), optional
        Column positions: groups that keep to separate parts of the image
        (a slowly varying distortion or thickness) stay one motif unless
        twice ``min_separation`` apart.
    rotations : int
        With rotation-invariant features, the order of the lattice's rotation
        group (:func:`motiflab.lattice.rotation_order`): the evidence is
        averaged over those rotations first (:func:`motiflab.patches.rotational_average`),
        so motifs that differ only in orientation are neither kept apart nor
        split. 1 (default) compares the patches as they are.
    random_state : int
        Seed for the subsample of large layouts (see :func:`cluster_layout`)
        and of the superlattice test's random halves.
    lattice_vectors : ndarray (2, 2), optional
        The column lattice in image px, (row, col) like ``positions``: with
        ``evidence``, ``positions`` and ``rotations == 1``, motifs whose members
        alternate between two kinds of column on it are split
        (:func:`motiflab.superlattice.split_by_superlattice`).
    evidence_scale : float
        Image px per evidence-patch px (``spacing`` and ``column_sigma`` are in
        evidence-patch px).
    neighbours : ndarray (N, k) int, optional
        :func:`motiflab.separation.neighbour_table` of ``positions``, when the
        caller keeps it (:class:`motiflab.Analysis` does while the columns stay:
        a new layout of the same columns does not query it again).

    Returns
    -------
    Motifs
    """
    labels = cluster_layout(embedding, min_cluster_size, min_samples, cluster_selection_epsilon,
                            random_state=random_state)
    mcs = int(min_cluster_size) if min_cluster_size is not None else default_min_cluster_size(len(labels))
    if evidence is not None and min_separation > 0:
        from .separation import refine_motifs

        ev = np.asarray(evidence)
        if len(ev) != len(labels):
            raise MotifLabError(f"{len(ev)} evidence patches but {len(labels)} layout points; they must match.")
        P = ev.shape[1]
        if spacing is None or not np.isfinite(spacing) or spacing <= 0:
            raise MotifLabError("the separation tests need the columns' nearest-neighbour spacing (px).")
        sigma = float(column_sigma) if column_sigma is not None and np.isfinite(column_sigma) else spacing / 5.0
        if int(rotations) > 1:
            from .patches import rotational_average

            ev = rotational_average(ev, int(rotations))
        # One BLAS thread: the separation tests' float32 products (group sums over all
        # members, every member against every group mean) change in the last bit with
        # the BLAS thread count, and a d' near a threshold may then flip a merge or a
        # split; single-threaded, they are the same for any thread count.
        with single_threaded_blas():
            labels = refine_motifs(labels, ev.reshape(len(ev), -1), P, spacing, sigma, min_separation,
                                   min_size=mcs, positions=positions, neighbours=neighbours)
            if lattice_vectors is not None and positions is not None and int(rotations) == 1:
                from .superlattice import split_by_superlattice

                labels = split_by_superlattice(labels, ev.reshape(len(ev), -1), P, spacing, sigma, positions,
                                               lattice_vectors, scale=float(evidence_scale), min_size=mcs,
                                               seed=random_state, min_separation=min_separation)
    if features is not None:
        labels = attach_noise(canonical_labels(labels), features)
    # canonical numbers: the same partition always gets the same numbers
    labels = canonical_labels(labels)
    k = int(labels.max()) + 1
    avgs, counts = class_averages(patches, labels, k)
    return Motifs(labels=labels, class_averages=avgs, counts=counts,
                  n_unassigned=int((labels < 0).sum()),
                  params=dict(min_cluster_size=min_cluster_size, min_samples=min_samples,
                              cluster_selection_epsilon=cluster_selection_epsilon,
                              min_separation=min_separation if evidence is not None else None,
                              rotations=int(rotations)))
