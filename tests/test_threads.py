"""The kernels' thread pool (motiflab._threads): ranges, results independent of the thread count, errors."""
import threading

import numba
import numpy as np
import pytest

from motiflab._threads import executor, for_ranges, ranges


@numba.njit(nogil=True)
def _square_into(start, stop, x, out):
    for i in range(start, stop):
        out[i] = x[i] * x[i]


@numba.njit(nogil=True)
def _fail_from(start, stop, bad):
    if start <= bad < stop:
        raise ValueError("bad item")


@pytest.mark.parametrize("n, parts", [(0, 3), (1, 4), (10, 3), (10, 10), (7, 100)])
def test_ranges_cover_every_item_once_in_order(n, parts):
    rs = ranges(n, parts)
    assert len(rs) <= max(1, min(parts, n))
    covered = [i for lo, hi in rs for i in range(lo, hi)]
    assert covered == list(range(n))


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_result_does_not_depend_on_the_thread_count(threads):
    x = np.random.default_rng(0).random(10_001)
    out = np.full_like(x, np.nan)
    for_ranges(_square_into, len(x), x, out, threads=threads)
    np.testing.assert_array_equal(out, x * x)


def test_small_inputs_stay_on_the_calling_thread():
    seen = []

    def kernel(start, stop):
        seen.append((threading.current_thread().name, start, stop))

    for_ranges(kernel, 50, min_size=64, threads=4)
    assert seen == [(threading.current_thread().name, 0, 50)]


def test_an_error_in_any_range_reaches_the_caller():
    with pytest.raises(ValueError, match="bad item"):
        for_ranges(_fail_from, 1000, 900, threads=3)    # raised in a pool thread
    with pytest.raises(ValueError, match="bad item"):
        for_ranges(_fail_from, 1000, 10, threads=3)     # raised on the calling thread


def test_a_pool_worker_runs_its_ranges_itself():
    # a worker that waited on the pool could wait forever (every worker waiting)
    def outer():
        seen = []
        for_ranges(lambda a, b: seen.append(threading.current_thread().name), 1000, threads=4)
        return seen

    names = executor().submit(outer).result(timeout=10)
    assert len(names) == 1 and names[0].startswith("motiflab-kernels")
