"""Feature-space test data: imbalanced Gaussian mixtures for layouts and clustering."""
from __future__ import annotations

import numpy as np

__all__ = ["make_mixture"]


def make_mixture(n=3000, d=66, weights=(0.55, 0.24, 0.12, 0.08, 0.01), sep=7.0, rare_sep=11.0,
                 nuisance=5.0, seed=0):
    """Imbalanced, anisotropic Gaussian mixture that PCA alone cannot separate.

    Each class has its own random rotation and per-axis variances in
    [0.3, 3]; all classes share a 3-D nuisance subspace (std ``nuisance`` ×
    (1, 0.8, 0.6) — think dose or contrast drift) that dominates the top
    principal components. Class centres lie ``sep`` from the origin (the last,
    rarest class ``rare_sep``), so k-NN purity is high but not trivially 1.

    Parameters
    ----------
    n : int
        Number of points.
    d : int
        Dimension (66 = Zernike moments up to n_max = 10).
    weights : sequence of float
        Class proportions (normalised); the last one is the rare class.
    sep, rare_sep, nuisance : float
        Geometry, see above.
    seed : int
        Random seed.

    Returns
    -------
    X : ndarray (n, d) float32
    y : ndarray (n,) int
    """
    rng = np.random.default_rng(seed)
    w = np.asarray(weights, float) / np.sum(weights)
    counts = np.maximum(1, np.round(w * n).astype(int))
    counts[0] += n - counts.sum()
    U, _ = np.linalg.qr(rng.normal(size=(d, 3)))
    X, y = [], []
    for c, nc in enumerate(counts):
        mu = rng.normal(size=d)
        mu *= (rare_sep if c == len(counts) - 1 else sep) / np.linalg.norm(mu)
        Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        s = np.exp(rng.uniform(np.log(0.3), np.log(3.0), size=d))
        Z = (rng.normal(size=(nc, d)) * np.sqrt(s)) @ Q.T
        Z += (rng.normal(size=(nc, 3)) * nuisance * np.array([1.0, 0.8, 0.6])) @ U.T
        X.append(mu + Z)
        y.append(np.full(nc, c))
    X = np.concatenate(X).astype(np.float32)
    y = np.concatenate(y)
    p = rng.permutation(n)
    return X[p], y[p]
