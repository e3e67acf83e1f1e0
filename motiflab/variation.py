"""Continuous variation: anchor motifs and domain comparison (METHOD.md §6).

When the layout does not break into discrete clusters (the paper's twisted
bilayer MoS2), two tools still quantify the structure:

* **Anchor motifs.** Pick a few reference motifs -- class averages of chosen
  classes (:func:`anchors_from_labels`) or features of user-given reference
  patches -- and measure every column's feature distance to each.
  :func:`anchor_weights` turns distances into weights that sum to one, so three
  anchors give a ternary (RGB) colour per column (:func:`ternary_colors`).
* **Domain comparison.** For chosen domains (sets of columns), histogram each
  feature dimension with *identical bins* for all domains, compute the
  Kullback-Leibler divergence per dimension and average over dimensions
  (:func:`kl_divergence`); :func:`compare_domains` gives the pairwise matrix
  together with a **bootstrap null**: both domains are pooled and resampled
  (with replacement, keeping their sizes) to show the divergence expected from
  sampling noise alone when the two really share one distribution. A
  divergence above the null's 99th percentile is a real difference. The
  spread of the observed value itself comes from resampling each domain on
  its own (``kl_std``), like the paper's "0.184 +- 0.025".

Features are plain arrays ``(N, J)`` -- typically Zernike moments from
:mod:`motiflab.zernike` -- so any feature set works.

Caveat: resampling treats columns as independent. Neighbouring columns share
pixels (overlapping patches), so the null is somewhat narrower than the true
noise; prefer domains of at least a few hundred columns and compare
divergences between equally sized domains.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import MotifLabError

__all__ = [
    "anchors_from_labels",
    "anchor_distances",
    "anchor_weights",
    "ternary_colors",
    "feature_bins",
    "digitize_features",
    "kl_divergence",
    "DomainComparison",
    "compare_domains",
    "domains_from_centers",
]


def _check_features(features, name="features") -> np.ndarray:
    try:
        x = np.asarray(features, dtype=float)
    except (TypeError, ValueError):
        raise MotifLabError(f"{name} must be a numeric (N, J) array") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise MotifLabError(f"{name} must be a 2-D (N, J) array of feature vectors, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise MotifLabError(f"{name} holds NaN or inf values; drop those columns first")
    return x


# --------------------------------------------------------------------------- anchors


def anchors_from_labels(features, labels, classes) -> np.ndarray:
    """Anchor feature vectors as the mean feature of chosen classes.

    Parameters
    ----------
    features : array_like (N, J)
    labels : array_like (N,)
        Class of every column.
    classes : sequence
        Classes to use as anchors, in order.

    Returns
    -------
    ndarray (K, J)
    """
    x = _check_features(features)
    lab = np.asarray(labels)
    if lab.shape != (len(x),):
        raise MotifLabError(f"labels and features have different lengths ({lab.shape[0] if lab.ndim else 0} vs {len(x)})")
    out = []
    for c in classes:
        m = lab == c
        if not m.any():
            raise MotifLabError(f"class {c!r} has no columns; pick anchors among {sorted(set(lab.tolist()), key=str)}")
        out.append(x[m].mean(axis=0))
    return np.array(out)


def anchor_distances(features, anchors, metric: str = "euclidean") -> np.ndarray:
    """Distance of every feature vector to every anchor.

    Parameters
    ----------
    features : array_like (N, J)
    anchors : array_like (K, J)
        E.g. :func:`anchors_from_labels` or features of reference patches.
    metric : {"euclidean", "cosine"}

    Returns
    -------
    ndarray (N, K)
    """
    x = _check_features(features)
    a = _check_features(anchors, "anchors")
    if a.shape[1] != x.shape[1]:
        raise MotifLabError(
            f"anchors have {a.shape[1]} features but the columns have {x.shape[1]}; compute both "
            "with the same feature settings (e.g. the same Zernike order and rotinv mode)"
        )
    if metric == "euclidean":
        d2 = (x**2).sum(1)[:, None] + (a**2).sum(1)[None, :] - 2 * x @ a.T
        return np.sqrt(np.maximum(d2, 0.0))
    if metric == "cosine":
        xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
        an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)
        return np.clip(1.0 - xn @ an.T, 0.0, 2.0)
    raise MotifLabError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


def anchor_weights(distances, power: float = 2.0) -> np.ndarray:
    """Normalised closeness to each anchor: ``w_k ~ d_k^-power``, rows summing to 1.

    A column exactly on an anchor gets weight 1 for it (0 for the others); a
    column equidistant from all anchors gets equal weights.

    Parameters
    ----------
    distances : array_like (N, K)
    power : float
        Sharpness (larger: colours saturate faster near the anchors).

    Returns
    -------
    ndarray (N, K)
    """
    from ._validation import check_number

    d = _check_features(distances, "distances")
    power = check_number(power, "power", low=0.0, low_open=True, high=1e3)
    if d.size == 0:
        return d.copy()
    if np.any(d < 0):
        raise MotifLabError("distances must be non-negative")
    if power <= 0:
        raise MotifLabError(f"power must be positive, got {power}")
    zero = d <= 1e-12 * max(float(d.max()), 1e-300)
    with np.errstate(divide="ignore"):
        w = np.where(zero, 0.0, d ** (-power))
    hit = zero.any(axis=1)
    w[hit] = zero[hit].astype(float)
    return w / w.sum(axis=1, keepdims=True)


def ternary_colors(weights, palette=None) -> np.ndarray:
    """RGB colour (N, 3) in [0, 1] from anchor weights.

    Parameters
    ----------
    weights : array_like (N, K)
        From :func:`anchor_weights`.
    palette : array_like (K, 3), optional
        Colour of each anchor; default red, green, blue for K = 3 (required
        otherwise).

    Returns
    -------
    ndarray (N, 3)
    """
    w = _check_features(weights, "weights")
    if palette is None:
        if w.shape[1] != 3:
            raise MotifLabError(f"give a palette of {w.shape[1]} RGB colours (the default is for 3 anchors)")
        palette = np.eye(3)
    pal = np.asarray(palette, dtype=float)
    if pal.shape != (w.shape[1], 3):
        raise MotifLabError(f"palette must have shape ({w.shape[1]}, 3), got {pal.shape}")
    return np.clip(w @ pal, 0.0, 1.0)


# --------------------------------------------------------------------------- histograms and KL


def feature_bins(*feature_sets, bins: int = 32, quantiles=(0.005, 0.995)) -> np.ndarray:
    """Identical bin edges per feature dimension for several sets of features.

    The range of each dimension is taken from robust quantiles of all sets
    pooled, so every domain (and every bootstrap replicate) is histogrammed on
    the same bins; values outside fall into the end bins.

    Parameters
    ----------
    *feature_sets : array_like (N_d, J)
    bins : int
        Bins per dimension.
    quantiles : (float, float)
        Pooled quantiles defining the range.

    Returns
    -------
    ndarray (J, bins + 1)
    """
    if not feature_sets:
        raise MotifLabError("give at least one feature array")
    from ._validation import check_int

    xs = [_check_features(f) for f in feature_sets]
    bins = check_int(bins, "bins", low=1, high=100_000)
    if any(len(x) == 0 for x in xs):
        raise MotifLabError("features is empty: at least one feature vector is needed to place the bins.")
    j = xs[0].shape[1]
    if any(x.shape[1] != j for x in xs):
        raise MotifLabError("all feature sets must have the same number of dimensions")
    if int(bins) < 2:
        raise MotifLabError(f"bins must be at least 2, got {bins}")
    pooled = np.vstack(xs)
    lo = np.quantile(pooled, quantiles[0], axis=0)
    hi = np.quantile(pooled, quantiles[1], axis=0)
    same = hi <= lo
    span = np.where(same, 1.0, hi - lo)
    lo = np.where(same, lo - 0.5, lo)
    hi = lo + span
    t = np.linspace(0.0, 1.0, int(bins) + 1)
    return lo[:, None] + span[:, None] * t[None, :]


def digitize_features(features, edges) -> np.ndarray:
    """Bin index (N, J) of every value on the given per-dimension edges (clipped to the end bins)."""
    from ._validation import check_matrix

    x = _check_features(features)
    e = check_matrix(edges, "edges", min_rows=0)
    if e.ndim != 2 or e.shape[0] != x.shape[1]:
        raise MotifLabError(f"edges must have shape (J={x.shape[1]}, bins+1), got {e.shape}")
    nb = e.shape[1] - 1
    lo = e[:, 0]
    w = (e[:, -1] - e[:, 0]) / nb
    idx = np.floor((x - lo) / w).astype(np.int64)
    return np.clip(idx, 0, nb - 1)


def _hist_from_bins(b: np.ndarray, nb: int) -> np.ndarray:
    """Counts (J, nb) from bin indices (N, J)."""
    j = b.shape[1]
    flat = (b + nb * np.arange(j)[None, :]).ravel()
    return np.bincount(flat, minlength=j * nb).reshape(j, nb).astype(float)


def _kl_from_counts(ca: np.ndarray, cb: np.ndarray, pseudocount: float, symmetric: bool) -> float:
    pa = ca + pseudocount
    pb = cb + pseudocount
    pa /= pa.sum(axis=1, keepdims=True)
    pb /= pb.sum(axis=1, keepdims=True)
    kl = (pa * np.log(pa / pb)).sum(axis=1)
    if symmetric:
        kl = 0.5 * (kl + (pb * np.log(pb / pa)).sum(axis=1))
    return float(kl.mean())


def kl_divergence(features_a, features_b, *, edges=None, bins: int = 32, pseudocount: float = 0.5,
                  symmetric: bool = False) -> float:
    """Mean over feature dimensions of KL(P_a || P_b) between per-dimension histograms.

    Parameters
    ----------
    features_a, features_b : array_like (N_a, J), (N_b, J)
    edges : ndarray (J, bins + 1), optional
        Shared bins; default :func:`feature_bins` of both sets.
    bins : int
        Bins per dimension when ``edges`` is not given.
    pseudocount : float
        Added to every bin (0.5: Jeffreys prior) so empty bins give finite values.
    symmetric : bool
        Average of both directions (Jeffreys divergence / 2) instead of KL(a || b).

    Returns
    -------
    float
        Divergence in nats, averaged over the J dimensions.
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise MotifLabError(f"the two domains have {a.shape[1]} and {b.shape[1]} features; they must match")
    if len(a) < 2 or len(b) < 2:
        raise MotifLabError("each domain needs at least 2 columns to histogram")
    if pseudocount < 0:
        raise MotifLabError("pseudocount must be >= 0")
    e = feature_bins(a, b, bins=bins) if edges is None else np.asarray(edges, float)
    nb = e.shape[1] - 1
    return _kl_from_counts(_hist_from_bins(digitize_features(a, e), nb),
                           _hist_from_bins(digitize_features(b, e), nb), pseudocount, symmetric)


@dataclass
class DomainComparison:
    """Pairwise KL divergences between domains with their noise level.

    Attributes
    ----------
    domains : list
        Domain labels, in matrix order.
    sizes : ndarray (D,)
        Columns per domain.
    kl : ndarray (D, D)
        Observed divergence ``KL(row || col)`` (nats, mean over dimensions).
    kl_std : ndarray (D, D)
        Bootstrap standard deviation of the observed divergence (each domain
        resampled on its own).
    null_mean, null_std, null_q99 : ndarray (D, D)
        Mean, standard deviation and 99th percentile of the divergence under
        the null (pooled resampling: both domains from one distribution). The
        null mean is the finite-sample bias: two samples of one distribution
        never give exactly 0.
    p_value : ndarray (D, D)
        Fraction of null replicates >= the observed divergence (with the usual
        +1 correction).
    edges : ndarray (J, bins + 1)
        The shared bins.
    """

    domains: list
    sizes: np.ndarray
    kl: np.ndarray
    kl_std: np.ndarray
    null_mean: np.ndarray
    null_std: np.ndarray
    null_q99: np.ndarray
    p_value: np.ndarray
    edges: np.ndarray

    @property
    def kl_excess(self) -> np.ndarray:
        """Observed divergence minus the null mean: ``0 +- null_std`` for domains that do not differ."""
        return self.kl - self.null_mean

    def significant(self, level: float = 0.01) -> np.ndarray:
        """Boolean (D, D): divergence above the null's ``1 - level`` quantile (diagonal False)."""
        out = self.p_value < level
        np.fill_diagonal(out, False)
        return out

    def to_dict(self) -> dict:
        """JSON-ready dict of all matrices."""
        f = lambda m: np.asarray(m, float).round(6).tolist()  # noqa: E731
        return {"domains": [d.item() if hasattr(d, "item") else d for d in self.domains],
                "sizes": [int(s) for s in self.sizes], "kl": f(self.kl), "kl_std": f(self.kl_std),
                "null_mean": f(self.null_mean),
                "null_std": f(self.null_std), "null_q99": f(self.null_q99), "p_value": f(self.p_value)}


def compare_domains(features, domain_labels, domains=None, *, bins: int = 32, pseudocount: float = 0.5,
                    symmetric: bool = False, n_boot: int = 200, seed: int = 0,
                    min_size: int = 20) -> DomainComparison:
    """Pairwise KL divergence between domains, with a bootstrap null.

    Parameters
    ----------
    features : array_like (N, J)
        Per-column features (e.g. Zernike moments).
    domain_labels : array_like (N,)
        Domain of every column; columns whose label is not in ``domains`` (or
        is -1 / None) are ignored.
    domains : sequence, optional
        Which domains to compare (default: all labels except -1 and None).
    bins, pseudocount, symmetric
        As for :func:`kl_divergence`; the bins are shared by all domains.
    n_boot : int
        Bootstrap replicates for the null and for the spread.
    seed : int
        Random seed.
    min_size : int
        Smallest accepted domain.

    Returns
    -------
    DomainComparison
    """
    x = _check_features(features)
    lab = np.asarray(domain_labels, dtype=object)
    if lab.shape != (len(x),):
        raise MotifLabError(
            f"domain_labels and features have different lengths ({lab.shape[0] if lab.ndim else 0} vs {len(x)})"
        )
    if domains is None:
        domains = sorted({d for d in lab.tolist() if d is not None and d != -1}, key=str)
    domains = list(domains)
    if len(domains) < 2:
        raise MotifLabError("need at least two domains to compare; label the columns of each domain")
    if int(n_boot) < 20:
        raise MotifLabError("n_boot must be at least 20 for a usable 99th percentile (100+ recommended)")
    members = [np.flatnonzero(lab == d) for d in domains]
    for d, m in zip(domains, members):
        if len(m) < min_size:
            raise MotifLabError(
                f"domain {d!r} has only {len(m)} columns (< {min_size}); histograms of so few values are "
                "noise. Enlarge the domain or lower min_size"
            )
    edges = feature_bins(*[x[m] for m in members], bins=bins)
    nb = edges.shape[1] - 1
    b_all = [digitize_features(x[m], edges) for m in members]
    counts = [_hist_from_bins(b, nb) for b in b_all]
    rng = np.random.default_rng(seed)
    nd = len(domains)
    kl = np.zeros((nd, nd))
    kl_std = np.zeros((nd, nd))
    null_mean = np.zeros((nd, nd))
    null_std = np.zeros((nd, nd))
    null_q99 = np.zeros((nd, nd))
    pval = np.ones((nd, nd))
    for a in range(nd):
        for b in range(a + 1, nd):
            # both directions share the same replicates (histograms are the costly part)
            kl[a, b] = _kl_from_counts(counts[a], counts[b], pseudocount, symmetric)
            kl[b, a] = _kl_from_counts(counts[b], counts[a], pseudocount, symmetric)
            na, nb_ = len(b_all[a]), len(b_all[b])
            pooled = np.vstack([b_all[a], b_all[b]])
            null = np.empty((int(n_boot), 2))
            spread = np.empty((int(n_boot), 2))
            for r in range(int(n_boot)):
                ha = _hist_from_bins(pooled[rng.integers(0, na + nb_, na)], nb)
                hb = _hist_from_bins(pooled[rng.integers(0, na + nb_, nb_)], nb)
                null[r] = (_kl_from_counts(ha, hb, pseudocount, symmetric),
                           _kl_from_counts(hb, ha, pseudocount, symmetric))
                sa = _hist_from_bins(b_all[a][rng.integers(0, na, na)], nb)
                sb = _hist_from_bins(b_all[b][rng.integers(0, nb_, nb_)], nb)
                spread[r] = (_kl_from_counts(sa, sb, pseudocount, symmetric),
                             _kl_from_counts(sb, sa, pseudocount, symmetric))
            for k, (r_, c_) in enumerate(((a, b), (b, a))):
                kl_std[r_, c_] = float(np.std(spread[:, k], ddof=1))
                null_mean[r_, c_] = float(null[:, k].mean())
                null_std[r_, c_] = float(null[:, k].std(ddof=1))
                null_q99[r_, c_] = float(np.quantile(null[:, k], 0.99))
                pval[r_, c_] = (1 + np.sum(null[:, k] >= kl[r_, c_])) / (1 + len(null))
    return DomainComparison(domains=domains, sizes=np.array([len(m) for m in members]), kl=kl, kl_std=kl_std,
                            null_mean=null_mean, null_std=null_std, null_q99=null_q99, p_value=pval, edges=edges)


def domains_from_centers(positions, centers, radius: float) -> np.ndarray:
    """Domain label of every column: index of the centre within ``radius`` (nearest), else -1.

    Parameters
    ----------
    positions : array_like (N, 2)
        Column positions (pixels).
    centers : array_like (D, 2)
        Domain centres (pixels), e.g. hand-picked motif locations.
    radius : float
        Domain radius in pixels.

    Returns
    -------
    ndarray (N,) int
    """
    from scipy.spatial import cKDTree

    p = _check_features(positions, "positions")
    c = _check_features(centers, "centers")
    if p.shape[1] != 2 or c.shape[1] != 2:
        raise MotifLabError("positions and centers must be (N, 2) pixel coordinates")
    if radius <= 0:
        raise MotifLabError(f"radius must be positive, got {radius}")
    d, i = cKDTree(c).query(p, k=1)
    return np.where(d <= radius, i, -1).astype(np.int64)
