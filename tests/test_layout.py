"""Tests for motiflab.layout: the two-stage force-relaxed (FR) layout."""
import warnings

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import HDBSCAN
from sklearn.metrics import adjusted_rand_score

from motiflab.errors import MotifLabError
from motiflab.layout import PAPER_STAGES, ForceStage, FRLayout, pca_init


from motiflab.datasets.mixtures import make_mixture  # noqa: E402


def hdbscan_labels(Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return HDBSCAN(min_cluster_size=15, copy=True).fit_predict(Y)


@pytest.fixture(scope="module")
def mixture():
    return make_mixture()


@pytest.fixture(scope="module")
def fitted(mixture):
    X, _ = mixture
    return FRLayout(random_state=0).fit(X)


@pytest.fixture(scope="module")
def small():
    X, y = make_mixture(n=600, seed=3, weights=(0.5, 0.3, 0.2))
    return X, y


def test_defaults_separate_imbalanced_mixture(mixture, fitted):
    X, y = mixture
    Y = fitted.embedding_
    assert Y.shape == (3000, 2) and Y.dtype == np.float32
    labels = hdbscan_labels(Y)
    ari = adjusted_rand_score(y, labels)
    assert ari >= 0.95, ari
    # the 1 % class (30 points) gets its own cluster
    rare = y == 4
    lab, cnt = np.unique(labels[rare], return_counts=True)
    top = lab[np.argmax(cnt)]
    assert top >= 0 and cnt.max() >= 0.8 * rare.sum()
    assert np.mean(y[labels == top] == 4) >= 0.8
    # the same clustering on the PCA start fails: the layout does the work
    assert adjusted_rand_score(y, hdbscan_labels(fitted.snapshots_[0])) < 0.6


def test_stage_two_compacts_without_global_contraction(mixture, fitted):
    X, y = mixture
    its = fitted.snapshot_iterations_
    split = fitted.stage_iterations_[0]
    mid = fitted.snapshots_[np.searchsorted(its, split)]
    end = fitted.embedding_

    def spread_and_gap(Y):
        cents = np.array([Y[y == c].mean(0) for c in range(4)])  # the four big classes
        spread = np.mean([np.sqrt(((Y[y == c] - cents[c]) ** 2).sum(1).mean()) for c in range(4)])
        gap = min(np.linalg.norm(cents[a] - cents[b]) for a in range(4) for b in range(a + 1, 4))
        return spread, gap

    s_mid, g_mid = spread_and_gap(mid)
    s_end, g_end = spread_and_gap(end)
    assert g_end >= 0.7 * g_mid  # no global contraction in the attraction stage
    assert s_end <= 0.5 * s_mid  # ... but classes coalesce
    assert s_end <= 0.1 * g_end  # compact, well separated blobs
    # stage 1 dilates the PCA start
    assert np.ptp(mid, axis=0).max() > 2 * np.ptp(fitted.snapshots_[0], axis=0).max()


@pytest.mark.parametrize(
    "data, params",
    [
        # 600 points: negative samples are checked against the graph (generic kernel)
        ("small", {}),
        # 3000 points, paper stages: the integer-exponent kernel both stages share
        ("mixture", {}),
        # other exponents and the unit force form: the generic kernel
        ("mixture", {"stages": (ForceStage(1, 1, 1, 3, 2.0), ForceStage(4, 1, 2.5, 4)), "force_form": "unit"}),
    ],
    ids=["checked-samples", "paper-stages", "generic-exponents"],
)
def test_same_seed_identical_and_thread_independent(data, params, request, monkeypatch):
    import motiflab.layout as layout_mod

    X, _ = request.getfixturevalue(data)

    def fit(seed=7, **kw):
        return FRLayout(n_iter=60, random_state=seed, **params, **kw).fit_transform(X)

    monkeypatch.setattr(layout_mod, "SERIAL_MAX_POINTS", 0)  # split the vertices between threads
    a = fit()
    b = fit()
    assert np.array_equal(a, b)
    c = fit(seed=8)
    assert not np.array_equal(a, c)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = fit()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = fit()
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(one, a) and np.array_equal(two, a)
    # n_jobs sets the threads for the fit only and does not change the result
    d = fit(n_jobs=1)
    assert np.array_equal(d, a)
    assert numba.get_num_threads() == old
    # the single chunk used for small inputs gives the same bits
    monkeypatch.setattr(layout_mod, "SERIAL_MAX_POINTS", 10**9)
    e = fit()
    assert np.array_equal(e, a)


def test_snapshots_bounded_first_and_last(small):
    X, _ = small
    n = X.shape[0]
    frame = n * 2 * 4
    bound = 7 * frame + 100
    L = FRLayout(n_iter=50, snapshot_max_bytes=bound, random_state=1).fit(X)
    S, its = L.snapshots_, L.snapshot_iterations_
    assert S.dtype == np.float32 and S.shape[1:] == (n, 2)
    assert S.nbytes <= bound and 2 <= S.shape[0] <= 7
    assert its[0] == 0 and its[-1] == 50 and np.all(np.diff(its) > 0)
    np.testing.assert_array_equal(S[0], pca_init(X, 10.0))
    np.testing.assert_array_equal(S[-1], L.embedding_)
    # unbounded: every iteration
    L2 = FRLayout(n_iter=50, random_state=1).fit(X)
    assert L2.snapshots_.shape[0] == 51
    np.testing.assert_array_equal(L2.snapshots_[its], S)
    # explicit interval that does not fit is enlarged, with a warning
    with pytest.warns(UserWarning, match="snapshot_max_bytes"):
        L3 = FRLayout(n_iter=50, snapshot_every=1, snapshot_max_bytes=bound, random_state=1).fit(X)
    assert L3.snapshots_.nbytes <= bound
    # explicit interval that fits, not dividing n_iter: final frame still there
    L4 = FRLayout(n_iter=50, snapshot_every=20, random_state=1).fit(X)
    np.testing.assert_array_equal(L4.snapshot_iterations_, [0, 20, 40, 50])
    # disabled
    L5 = FRLayout(n_iter=50, snapshot_every=0, random_state=1).fit(X)
    assert L5.snapshots_.shape == (0, n, 2)
    np.testing.assert_array_equal(L5.embedding_, L.embedding_)
    with pytest.raises(MotifLabError, match="snapshot_max_bytes"):
        FRLayout(n_iter=5, snapshot_max_bytes=frame).fit(X)


def test_precomputed_graph_reuse(small):
    X, _ = small
    L = FRLayout(n_iter=40, random_state=2).fit(X)
    assert sp.isspmatrix_csr(L.graph_) and L.graph_.shape == (600, 600)
    again = FRLayout(n_iter=40, random_state=2).fit(X, graph=L.graph_)
    assert np.array_equal(again.embedding_, L.embedding_)
    assert again.timings_["knn"] == 0.0 and L.timings_["knn"] > 0.0
    assert set(L.timings_) == {"knn", "graph", "init", "layout"}
    # a changed force schedule on the cached graph runs and differs
    other = FRLayout(n_iter=40, random_state=2, stage_split=0.3).fit(X, graph=L.graph_)
    assert not np.array_equal(other.embedding_, L.embedding_)


def test_callback_progress_and_schedules(small):
    X, _ = small
    seen = []
    L = FRLayout(n_iter=30, snapshot_every=10, callback=lambda it, Y: seen.append((it, Y.copy())),
                 random_state=0).fit(X)
    assert [s[0] for s in seen] == [0, 10, 20, 30]
    np.testing.assert_array_equal(seen[-1][1], L.embedding_)
    assert L.n_iter_ == 30 and L.stage_iterations_ == (15, 15)
    # each schedule reaches the kernels: a callable that is always 1 is "constant"; a zero
    # schedule never moves a point from its initial layout; the others differ from each other
    runs = {name: FRLayout(n_iter=20, learning_rate_schedule=sched, random_state=0).fit(X)
            for name, sched in [("linear", "linear"), ("cosine", "cosine"), ("constant", "constant"),
                                ("ones", lambda t: 1.0), ("zero", lambda t: 0.0)]}
    assert np.array_equal(runs["ones"].embedding_, runs["constant"].embedding_)
    assert not np.array_equal(runs["linear"].embedding_, runs["cosine"].embedding_)
    assert not np.array_equal(runs["linear"].embedding_, runs["constant"].embedding_)
    frozen = runs["zero"]
    np.testing.assert_array_equal(frozen.embedding_, frozen.snapshots_[0])
    # three stages with explicit fractions; unit-vector forces; user init
    st = PAPER_STAGES + (ForceStage(1.0, 0.5, 1.0, 3.0, 0.5),)
    Y = FRLayout(n_iter=30, stages=st, stage_split=[0.4, 0.4, 0.2], force_form="unit",
                 init=np.zeros((600, 2)) + np.arange(600)[:, None] * 0.01).fit_transform(X)
    assert np.isfinite(Y).all()


def test_schedule_factors_have_their_documented_shapes():
    from motiflab.layout import schedule_factors as _schedule_factors

    lin, cos, const = (_schedule_factors(s, 10) for s in ("linear", "cosine", "constant"))
    np.testing.assert_allclose(lin, 1 - np.arange(10) / 10)
    assert cos[0] == 1.0 and np.all(np.diff(cos) < 0) and cos[5] == pytest.approx(0.5)
    np.testing.assert_array_equal(const, np.ones(10))
    np.testing.assert_allclose(_schedule_factors(lambda t: (1 - t) ** 2, 4), [1, 0.5625, 0.25, 0.0625])
    with pytest.raises(MotifLabError, match="non-negative"):
        _schedule_factors(lambda t: -1.0, 3)


def test_clipping_keeps_huge_forces_finite(small):
    X, _ = small
    st = (ForceStage(1e6, 1e6, 0.0, 0.5, learning_rate=100.0),)
    L = FRLayout(n_iter=20, stages=st, max_step=0.5, random_state=0).fit(X)
    steps = np.linalg.norm(np.diff(L.snapshots_, axis=0), axis=-1)
    assert np.isfinite(L.embedding_).all() and steps.max() <= 0.5 + 1e-4


def test_sklearn_api(small):
    X, _ = small
    L = FRLayout(n_neighbors=5, n_iter=10)
    assert L.get_params()["n_neighbors"] == 5
    assert L.set_params(n_iter=12).n_iter == 12
    with pytest.raises(MotifLabError, match="not fitted"):
        L.transform(X)
    assert L.fit(X).transform(X).shape == (len(X), 2)


@pytest.mark.parametrize(
    "kwargs, X, match",
    [
        ({}, "nan", "NaN"),
        ({}, "few", "at least n_neighbors \\+ 1 = 11"),
        ({}, "1d", "2-D"),
        ({"stage_split": 0.0}, None, "strictly between 0 and 1"),
        ({"stage_split": 1.5}, None, "strictly between 0 and 1"),
        ({"stage_split": [0.5, 0.5, 0.5]}, None, "stage_split"),
        ({"stages": PAPER_STAGES + (PAPER_STAGES[0],), "stage_split": 0.5}, None, "3 stages"),
        ({"stages": ()}, None, "non-empty"),
        ({"stages": ((1, 1, 0, 2),)}, None, "ForceStage"),
        ({"stages": (ForceStage(-1, 1, 0, 2),)}, None, "non-negative"),
        ({"n_iter": 0}, None, "n_iter"),
        ({"n_iter": 3, "stage_split": 0.1}, None, "no iteration"),
        ({"learning_rate_schedule": "exp"}, None, "learning_rate_schedule"),
        ({"init": "spectral"}, None, "init"),
        ({"init": np.zeros((3, 2))}, None, "shape"),
        ({"force_form": "radial"}, None, "force_form"),
        ({"max_step": 0}, None, "max_step"),
        ({"negative_samples": -1}, None, "negative_samples"),
        ({"random_state": -3}, None, "random_state"),
        ({"snapshot_every": -2}, None, "snapshot_every"),
    ],
)
def test_bad_input(small, kwargs, X, match):
    Xs, _ = small
    if X == "nan":
        X = Xs.copy()
        X[5, 3] = np.nan
    elif X == "few":
        X = Xs[:8]
    elif X == "1d":
        X = Xs[:, 0]
    else:
        X = Xs
    with pytest.raises(MotifLabError, match=match):
        FRLayout(**{"n_iter": 10, **kwargs}).fit(X)


def test_bad_graph(small):
    X, _ = small
    with pytest.raises(MotifLabError, match="shape"):
        FRLayout(n_iter=5).fit(X, graph=sp.identity(10, format="csr"))
    with pytest.raises(MotifLabError, match="scipy.sparse"):
        FRLayout(n_iter=5).fit(X, graph=np.eye(600))


def test_blas_before_the_relaxation_runs_on_one_thread(monkeypatch, small):
    # An idle OpenBLAS worker spins for ~0.1 s after its last product and takes a core
    # from the layout threads; the PCA start and a small exact k-NN search (the BLAS
    # work right before the relaxation) must therefore run BLAS on one thread, and the
    # caller's BLAS setting must be back afterwards.
    import contextlib

    from threadpoolctl import threadpool_info

    import motiflab._blas as blas
    import motiflab.layout as layout_mod
    import motiflab.neighbors as neighbors_mod

    entered = []
    real = blas.single_threaded_blas

    @contextlib.contextmanager
    def recording():
        with real():
            entered.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
            yield

    monkeypatch.setattr(layout_mod, "single_threaded_blas", recording)
    monkeypatch.setattr(neighbors_mod, "single_threaded_blas", recording)
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    X, _ = small
    L = FRLayout(n_iter=10, random_state=0).fit(X)
    assert len(entered) == 2  # exact k-NN search, PCA start
    assert all(set(t) <= {1} for t in entered)
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before
    np.testing.assert_array_equal(pca_init(X), L.snapshots_[0])


@pytest.mark.parametrize("unit", [False, True])
def test_pair_force_coefficient_matches_its_formula(unit):
    """coef / (1 + d**e) (divided by d if unit), clipped to ms / d; integer exponents by selects."""
    from motiflab.layout import _int_exponent, _pair_coef

    coef, ms = 1.7, 4.0
    for d in (0.05, 0.3, 1.0, 1.7, 6.0):
        for e in list(range(10)) + [2.5, 12.0]:
            want = coef / (1.0 + d ** e)
            if unit:
                want /= d
            want = min(want, ms / d)
            e_int = _int_exponent(e)
            got = _pair_coef(np.float32(d * d), np.float32(coef), e_int, float(e), np.float32(ms), unit, False)
            assert got == pytest.approx(want, rel=2e-6), (d, e)
            if e_int >= 0:  # the integer-exponent kernel's copy, without the pow branch
                got = _pair_coef(np.float32(d * d), np.float32(coef), e_int, float(e), np.float32(ms), unit, True)
                assert got == pytest.approx(want, rel=2e-6), (d, e)


# --------------------------------------------------------------------------
# out-of-sample placement (transform)
# --------------------------------------------------------------------------
def test_transform_places_held_back_points_in_their_cluster(mixture):
    """Fit on 80 %, place the other 20 %: each lands among training points of its own class."""
    from scipy.spatial import cKDTree

    X, y = mixture
    rng = np.random.default_rng(0)
    test = rng.random(len(X)) < 0.2
    L = FRLayout(random_state=0).fit(X[~test])
    Y = L.transform(X[test])
    assert Y.shape == (test.sum(), 2) and Y.dtype == np.float32 and np.isfinite(Y).all()
    _, nb = cKDTree(L.embedding_).query(Y, k=5)
    votes = y[~test][nb]
    pred = np.array([np.bincount(v).argmax() for v in votes])
    acc = np.mean(pred == y[test])
    assert acc >= 0.98, acc


def test_transform_reproduces_training_points_and_leaves_fit_alone(small):
    X, _ = small
    L = FRLayout(n_iter=60, random_state=0).fit(X)
    ref = FRLayout(n_iter=60, random_state=0).fit_transform(X)
    emb = L.embedding_.copy()
    np.testing.assert_array_equal(L.transform(X), emb)  # exact copies keep their place
    np.testing.assert_array_equal(L.embedding_, emb)      # transform never moves the fit
    np.testing.assert_array_equal(emb, ref)
    # nearly identical features land next to their training point
    Xp = X + 1e-4 * np.random.default_rng(1).standard_normal(X.shape).astype(X.dtype)
    shift = np.linalg.norm(L.transform(Xp) - emb, axis=1)
    spread = np.linalg.norm(emb - emb.mean(0), axis=1).mean()
    assert np.median(shift) < 0.05 * spread


def test_transform_of_a_point_does_not_depend_on_its_batch(small):
    X, _ = small
    L = FRLayout(n_iter=60, random_state=0).fit(X[:400])
    new = X[400:] + np.float32(0.01)
    Y = L.transform(new)
    perm = np.random.default_rng(2).permutation(len(new))
    np.testing.assert_array_equal(L.transform(new[perm]), Y[perm])
    np.testing.assert_array_equal(L.transform(new[5:6]), Y[5:6])
    np.testing.assert_array_equal(L.transform(new[:0]).shape, (0, 2))
    assert not np.array_equal(FRLayout(n_iter=60, random_state=1).fit(X[:400]).transform(new), Y)


def test_transform_refuses_bad_features(small):
    X, _ = small
    L = FRLayout(n_iter=20, random_state=0).fit(X)
    with pytest.raises(MotifLabError, match="shape"):
        L.transform(X[:, :3])
    bad = X[:3].copy()
    bad[0, 0] = np.nan
    with pytest.raises(MotifLabError, match="NaN"):
        L.transform(bad)
    with pytest.raises(MotifLabError, match="transform_iter"):
        FRLayout(n_iter=20, transform_iter=-1).fit(X).transform(X[:2])
