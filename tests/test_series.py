"""Series classified frame by frame with one model (issue #15): Dask schedulers, failing frames, bounded memory."""
import os
import resource
import warnings

import numpy as np
import pytest

import motiflab
from motiflab import Analysis
from motiflab.datasets import make_tmd
from motiflab.series import classify_series

DOSE = 100 / 3.237


def _frame(i, n=128, dtype=np.float32):
    """Frame ``i`` of a synthetic in-situ series: the Se vacancy rate grows with time."""
    return make_tmd("MoSe2", shape=(n, n), chalcogen_vacancy_rate=0.0004 * i, dose=DOSE, seed=i).image.astype(dtype)


@pytest.fixture(scope="module")
def model():
    sim = make_tmd("MoSe2", shape=(384, 384), chalcogen_vacancy_rate=0.04, dose=DOSE, seed=21)
    return Analysis(sim.image, seed=0).run().model()


def _lazy_series(n_frames, n=128, dtype=np.float32):
    """A series that exists only as a Dask graph: each frame is made when a worker needs it."""
    import dask
    import dask.array as da

    return da.stack([da.from_delayed(dask.delayed(_frame)(i, n, dtype), (n, n), dtype) for i in range(n_frames)])


def test_series_frame_by_frame_with_a_failing_frame(model, tmp_path):
    frames = np.stack([_frame(i) for i in range(8)])
    frames[3] = 0.0  # a blank frame: reported and skipped
    with pytest.warns(UserWarning, match="1 of 8 frames failed"):
        res = classify_series(frames, model, scheduler="threads", progress=False)
    df = res.populations
    assert list(df.index) == list(range(8)) and df.loc[3, "error"].startswith("MotifLabError")
    assert df.drop(index=3)["error"].isna().all() and (df.drop(index=3)["n_columns"] > 20).all()
    # the same labels as classifying the frame alone
    assert np.array_equal(res.records[5]["labels"], model.classify(frames[5]).motifs.labels)
    ax = res.plot_populations()
    assert len(ax.lines) == model.n_motifs + 1
    maps = res.label_maps()
    assert maps._lazy and maps.data.shape == (8, 128, 128)
    maps.save(tmp_path / "labels.zspy")
    import hyperspy.api as hs

    back = hs.load(tmp_path / "labels.zspy", lazy=True)  # a .zspy store is a folder
    got = np.asarray(back.data[5].compute())
    assert got.dtype == np.int16 and set(np.unique(got)) <= set(range(-2, model.n_motifs))
    assert (got == np.asarray(maps.data[5].compute())).all() and (np.asarray(back.data[3]) == -1).all()
    # motiflab.load opens the store too (lazily, a frame at a time)
    assert motiflab.load(tmp_path / "labels.zspy", lazy=True).axes_manager.navigation_shape == (8,)
    assert np.array_equal(np.asarray(motiflab.load(tmp_path / "labels.zspy", frame=5).data), got)


def test_lazy_file_stack_is_not_loaded(model, tmp_path):
    from hyperspy.signals import Signal2D

    path = tmp_path / "movie.hspy"
    Signal2D(np.stack([_frame(i) for i in range(4)])).save(path, chunks=(1, 128, 128))
    s = motiflab.load(path, lazy=True)
    assert s._lazy and s.axes_manager.navigation_shape == (4,)
    with pytest.raises(motiflab.MotifLabError, match="stack of 4"):
        motiflab.load(path)  # an eager load still asks for a frame
    res = classify_series(str(path), model, scheduler="synchronous", progress=False, frames=[0, 2])
    assert list(res.populations.index) == [0, 2]
    with pytest.raises(motiflab.MotifLabError, match="frames must lie"):
        classify_series(s, model, progress=False, frames=[9])


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _memory_mb():
    """This process's resident and peak resident memory (MiB) since the last `_reset_peak`."""
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {key: int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def _reset_peak():
    """Restart the kernel's peak-RSS count (Linux `clear_refs` 5), so compile-time peaks don't count."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _warm(model):
    # the first frame in a fresh environment compiles every numba kernel inside the worker (LLVM
    # alone takes hundreds of MiB, more on some machines): that happens once and is not the
    # frames' memory
    model.classify(_frame(0))


def _run_on_cluster(model, n_frames, n, dtype, memory_limit, warm=False):
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=memory_limit,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            before = None
            if warm:
                client.run(_warm, model)
                client.run(_reset_peak)
                before = client.run(_memory_mb)
            res = classify_series(_lazy_series(n_frames, n, dtype), model, scheduler=client, progress=False)
            peaks = client.run(_memory_mb) if warm else client.run(_peak_rss_mb)
    return res, peaks, before


def test_200_frames_on_a_local_cluster_with_bounded_memory(model):
    """200 frames through two worker processes: every frame done; after the one-off compile each
    worker's memory stays flat (its peak over the 200 frames barely above its resident memory before them)."""
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux /proc/self/clear_refs to measure a peak after the compile")
    res, after, before = _run_on_cluster(model, 200, 128, np.float32, "3GiB", warm=True)
    df = res.populations
    summary = {w: (round(before[w]["VmRSS"]), round(after[w]["VmHWM"]), round(after[w]["VmRSS"])) for w in after}
    print(f"200 frames of 128² in {res.seconds:.1f} s; per worker (RSS before, peak during, RSS after) MiB: {summary}")
    assert len(df) == 200 and df["error"].isna().all()
    for w in after:
        # 200 frames of 64 KiB each: keeping every frame would add 12 MiB, keeping every result
        # far more; the bound allows for allocator slack and the tasks in flight
        assert after[w]["VmHWM"] - before[w]["VmRSS"] < 150, summary
        assert after[w]["VmRSS"] - before[w]["VmRSS"] < 100, summary
    # vacancies accumulate: the most common motif's share falls, new columns appear
    first, last = df.iloc[:20], df.iloc[-20:]
    assert (last["motif 0"] / last["n_columns"]).mean() < (first["motif 0"] / first["n_columns"]).mean()


@pytest.mark.heavy
def test_series_larger_than_the_worker_memory_limit_completes_with_bounded_memory(model):
    """200 frames of 640² float64 (656 MB in all) on workers limited to 600 MiB each."""
    n, limit = 640, 600
    total_mb = 200 * n * n * 8 / 2**20
    assert total_mb > limit
    res, peaks, _ = _run_on_cluster(model, 200, n, np.float64, f"{limit}MiB")
    print(f"{total_mb:.0f} MiB series in {res.seconds:.1f} s; worker peak RSS {sorted(peaks.values())} MiB "
          f"(limit {limit} MiB)")
    assert res.populations["error"].isna().all()
    assert max(peaks.values()) < limit


def test_batch_with_a_model_on_a_scheduler_address(model, tmp_path):
    """`motiflab batch FILES --model M --scheduler tcp://...`: one motif numbering, run on the given cluster."""
    distributed = pytest.importorskip("distributed")
    from motiflab.cli import main

    files = []
    for i in (40, 120):
        files.append(tmp_path / f"f{i}.npy")
        np.save(files[-1], _frame(i, 192))
    m = model.save(tmp_path / "M.hspy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
            code = main(["batch", *map(str, files), "--out-dir", str(tmp_path / "out"), "--model", str(m),
                         "--scheduler", cluster.scheduler_address, "-q"])
    assert code == 0
    for f in files:
        got = np.load(tmp_path / "out" / f"{f.stem}.npz")["labels"]
        assert np.array_equal(got, model.classify(str(f)).motifs.labels)
    with pytest.raises(motiflab.MotifLabError, match="scheduler must be"):
        classify_series(np.stack([_frame(0)]), model, scheduler=42, progress=False)
