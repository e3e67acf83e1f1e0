"""Tests for motiflab.neighbors: exact/approximate k-NN and the fuzzy graph."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from motiflab.errors import MotifLabError
from motiflab.neighbors import EXACT_MAX_POINTS, fuzzy_graph, knn_graph, memberships


def _clustered(n=1200, d=24, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(6, d))
    lab = rng.integers(0, 6, n)
    return (centres[lab] + rng.normal(size=(n, d))).astype(np.float32)


def test_exact_knn_matches_sklearn():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(700, 30)).astype(np.float32)
    idx, dist = knn_graph(X, n_neighbors=10, method="exact")
    assert idx.shape == (700, 10) and idx.dtype == np.int32
    assert dist.shape == (700, 10) and dist.dtype == np.float32
    D, I = NearestNeighbors(n_neighbors=11).fit(X.astype(np.float64)).kneighbors(X.astype(np.float64))
    # continuous data: no ties, so the neighbour lists must agree exactly
    np.testing.assert_array_equal(idx, I[:, 1:])
    np.testing.assert_allclose(dist, D[:, 1:], rtol=1e-5, atol=1e-5)
    assert not np.any(idx == np.arange(700)[:, None])  # self excluded
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_exact_knn_is_blocked_and_deterministic(monkeypatch):
    """Force tiny row blocks (as for a large N) and check the answer does not change."""
    import motiflab.neighbors as nb

    X = _clustered(900)
    ref = knn_graph(X, 7, method="exact")
    monkeypatch.setattr(nb, "_BLOCK_BYTES", 4 * 900 * 50)  # 50 rows per block
    got = knn_graph(X, 7, method="exact")
    np.testing.assert_array_equal(ref[0], got[0])
    np.testing.assert_array_equal(ref[1], got[1])


def test_exact_knn_duplicates_exclude_self_by_index():
    X = np.repeat(np.arange(20, dtype=np.float32)[:, None], 3, axis=0)  # each value 3 times
    idx, dist = knn_graph(X, 2, method="exact")
    assert not np.any(idx == np.arange(60)[:, None])
    np.testing.assert_array_equal(dist, 0.0)  # both neighbours are the twin copies
    np.testing.assert_array_equal(X[idx[:, 0], 0], X[:, 0])


def test_auto_uses_exact_for_small_inputs():
    X = _clustered(500)
    assert 500 <= EXACT_MAX_POINTS
    a = knn_graph(X, 5, method="auto")
    b = knn_graph(X, 5, method="exact")
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.slow
def test_nndescent_recall_and_seed():
    X = _clustered(3000, d=20)
    exact, _ = knn_graph(X, 10, method="exact")
    a, da = knn_graph(X, 10, method="nndescent", random_state=3)
    b, db = knn_graph(X, 10, method="nndescent", random_state=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da, db)
    assert not np.any(a == np.arange(3000)[:, None])
    recall = np.mean([len(set(p) & set(q)) / 10 for p, q in zip(a, exact)])
    assert recall > 0.9


def test_fuzzy_weights_calibration_and_range():
    X = _clustered(800)
    idx, dist = knn_graph(X, 10)
    w = memberships(dist, math.log2(10))
    assert np.all(w > 0) and np.all(w <= 1)
    np.testing.assert_array_equal(w[:, 0], 1.0)  # nearest neighbour: exp(0)
    # sigma was found so each row sums to log2(k)
    np.testing.assert_allclose(w.sum(axis=1), math.log2(10), atol=1e-3)
    assert np.all(np.diff(w, axis=1) <= 0)  # farther -> weaker


def test_fuzzy_graph_symmetric_union():
    X = _clustered(600)
    idx, dist = knn_graph(X, 10)
    G = fuzzy_graph(idx, dist)
    assert sp.isspmatrix_csr(G) and G.shape == (600, 600) and G.dtype == np.float32
    assert abs(G - G.T).max() == 0.0
    assert G.data.min() > 0 and G.data.max() <= 1.0
    assert G.diagonal().max() == 0
    assert G.nnz <= 2 * 10 * 600
    # fuzzy union: w_ij = a + b - ab with a, b the directed memberships
    a = memberships(dist, math.log2(10))
    A = sp.csr_matrix((a.ravel(), (np.repeat(np.arange(600), 10), idx.ravel())), shape=(600, 600)).toarray()
    expect = A + A.T - A * A.T
    np.testing.assert_allclose(G.toarray(), expect, rtol=1e-6, atol=1e-7)
    # every point keeps all of its own k neighbours
    assert np.all(np.diff(G.indptr) >= 10)


def test_fuzzy_graph_handles_all_zero_distances():
    X = np.zeros((12, 3), dtype=np.float32)
    idx, dist = knn_graph(X, 4)
    G = fuzzy_graph(idx, dist)
    np.testing.assert_array_equal(G.data, 1.0)


@pytest.mark.parametrize(
    "X, k, match",
    [
        (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), 1, "NaN"),
        (np.zeros((5, 3)), 10, "at least n_neighbors \\+ 1 = 11 points"),
        (np.zeros(20), 3, "2-D"),
        (np.zeros((4, 4, 4)), 2, "2-D"),
        (np.zeros((20, 3)), 0, "positive integer"),
        (np.array([["a", "b"], ["c", "d"]]), 1, "real numbers"),
    ],
)
def test_knn_bad_input(X, k, match):
    with pytest.raises(MotifLabError, match=match):
        knn_graph(X, k)


def test_knn_bad_method():
    with pytest.raises(MotifLabError, match="method"):
        knn_graph(np.zeros((20, 3)), 3, method="kdtree")


def test_fuzzy_graph_bad_input():
    idx = np.array([[1, 2], [0, 2], [0, 1]])
    dist = np.ones((3, 2), dtype=np.float32)
    with pytest.raises(MotifLabError, match="same shape"):
        fuzzy_graph(idx, dist[:, :1])
    with pytest.raises(MotifLabError, match="own neighbour"):
        fuzzy_graph(np.array([[0, 2], [0, 2], [0, 1]]), dist)
    with pytest.raises(MotifLabError, match="lie in"):
        fuzzy_graph(np.array([[1, 5], [0, 2], [0, 1]]), dist)
    with pytest.raises(MotifLabError, match="non-negative"):
        fuzzy_graph(idx, -dist)


def test_approx_knn_recall_and_thread_independence():
    import numba

    X = _clustered(3000, d=40, seed=2)
    exact, _ = knn_graph(X, 10, method="exact")
    a, da = knn_graph(X, 10, method="approx", random_state=5)
    assert a.shape == (3000, 10) and a.dtype == np.int32
    assert not np.any(a == np.arange(3000)[:, None])
    assert np.all(np.diff(da, axis=1) >= 0)
    recall = (exact[:, :, None] == a[:, None, :]).any(-1).mean()
    assert recall > 0.9
    # distances are the true distances of the returned neighbours
    np.testing.assert_allclose(da, np.linalg.norm(X[a] - X[:, None], axis=-1), rtol=1e-5, atol=1e-5)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b, db = knn_graph(X, 10, method="approx", random_state=5)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da, db)


def test_smallest_k_matches_argsort():
    from motiflab._threads import for_ranges
    from motiflab.neighbors import _smallest_k

    D = np.random.default_rng(5).random((3000, 50)).astype(np.float32)
    for k in (1, 7, 50):
        out = np.empty((3000, k), np.int64)
        for_ranges(_smallest_k, len(D), D, out, min_size=100, threads=3)  # ranges of 1000 rows
        assert np.array_equal(out, np.argsort(D, axis=1, kind="stable")[:, :k])
