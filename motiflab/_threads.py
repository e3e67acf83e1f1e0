"""One pool of worker threads for the numba kernels that release the GIL.

The kernels are compiled ``nogil=True`` without ``parallel=True`` and take the
range of rows (or points) they work on as their first two arguments;
:func:`for_ranges` cuts the work into one contiguous range per thread and runs
the ranges at once.  numba's ``parallel=True`` would do the same, but it
compiles every ``prange`` loop a second time as a separate "gufunc" (about
0.5–1.5 s per kernel on the first run ever in an environment, ~6 s of a 2048²
image's 22 s of compiling), and a range is what these loops were anyway.

The number of threads is numba's (``NUMBA_NUM_THREADS``,
``numba.set_num_threads``), so the existing knobs keep working; a kernel's
result never depends on it, because each range writes only its own outputs.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba

__all__ = ["executor", "for_ranges", "n_threads", "ranges"]

_pool = None
_pool_lock = threading.Lock()
_local = threading.local()


def _mark_worker():
    _local.worker = True


def executor() -> ThreadPoolExecutor:
    """The shared pool (created on first use; the calling thread is the extra worker)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1),
                                       thread_name_prefix="motiflab-kernels", initializer=_mark_worker)
        return _pool


def _forget_pool():  # a forked child has none of its parent's threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def n_threads() -> int:
    """Threads a kernel may use: numba's setting for the calling thread."""
    return max(1, int(numba.get_num_threads()))


def ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """At most ``parts`` contiguous ranges of equal length (the last shorter) covering ``0..n``."""
    n = int(n)
    if n <= 0:
        return [(0, 0)]
    parts = max(1, min(int(parts), n))
    chunk = -(-n // parts)
    return [(lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]


def for_ranges(kernel, n: int, *args, min_size: int = 1, threads: int | None = None) -> None:
    """Call ``kernel(start, stop, *args)`` on ranges covering ``0..n``, in parallel; return when all are done.

    Parameters
    ----------
    kernel : numba dispatcher compiled with ``nogil=True``, or a Python function
        whose work is NumPy calls that release the GIL (the column finder's
        filters, :mod:`motiflab.peaks`). Works on items ``start..stop-1`` and
        writes only their outputs.
    n : int
        Number of items.
    *args
        The kernel's other arguments.
    min_size : int
        Fewest items worth a thread of their own (below ``2 * min_size`` the
        caller does everything).
    threads : int, optional
        Default :func:`n_threads`.
    """
    parts = min(threads or n_threads(), max(1, int(n) // max(1, int(min_size))))
    if parts <= 1 or getattr(_local, "worker", False):  # a worker waiting on the pool could wait forever
        kernel(0, n, *args)
        return
    work = ranges(n, parts)
    pool = executor()
    futures = [pool.submit(kernel, lo, hi, *args) for lo, hi in work[1:]]
    try:
        kernel(work[0][0], work[0][1], *args)
    finally:
        for f in futures:
            f.result()
