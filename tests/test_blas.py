"""motiflab._blas: single-threaded BLAS inside the block, from any thread, restored after the last user."""
import threading

import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads():
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def _in_thread(fn):
    out, err = [], []

    def run():
        try:
            out.append(fn())
        except BaseException as e:  # pragma: no cover - reported below
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def test_limit_holds_in_a_worker_thread_after_the_main_thread_used_it():
    """The explorer computes in a background thread after the main thread ran an analysis.

    With threadpoolctl >= 3.8 the first thread to limit OpenBLAS used to keep
    control, so the worker's limit was silently ignored (2 threads inside the block).
    """
    from motiflab._blas import single_threaded_blas

    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library that threadpoolctl can control")
    with single_threaded_blas():
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before

    def inside():
        with single_threaded_blas():
            return _blas_threads()

    assert set(_in_thread(inside)) == {1}
    assert _blas_threads() == before
    with single_threaded_blas():  # and the main thread still can, after the worker
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before


def test_limit_is_restored_only_when_the_last_concurrent_user_leaves():
    from motiflab._blas import single_threaded_blas

    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library that threadpoolctl can control")
    entered, leave, seen = threading.Event(), threading.Event(), []

    def worker():
        with single_threaded_blas():
            entered.set()
            leave.wait(10)
            seen.append(_blas_threads())

    t = threading.Thread(target=worker)
    t.start()
    assert entered.wait(10)
    with single_threaded_blas():
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {1}  # the worker is still inside
    leave.set()
    t.join()
    assert set(seen[0]) == {1}
    assert _blas_threads() == before
