"""One process-wide switch to single-threaded BLAS, shared by the numeric kernels.

Several stages run many small matrix products next to their own threads (the
Zernike transform's per-block sgemms, the k-NN search's per-cell products).
Threaded BLAS is slower there, and its idle workers spin after each product and
take the cores from the threads that follow.  :func:`single_threaded_blas` limits
BLAS to one thread inside a ``with`` block; it is counted, so concurrent users
(e.g. a background explorer update) restore the caller's setting only once the
last of them is done.

Any thread may set and restore the limit.  OpenBLAS built with pthreads has one
process-wide thread pool, and threadpoolctl (from 3.8) lets only the first
thread that limited it change it later; other threads' limits are silently
ignored.  The limiter here is shared between threads under its own lock, so it
hands that control back after each change (:func:`_release_control`).
"""
from __future__ import annotations

import contextlib
import os
import threading

__all__ = ["single_threaded_blas"]

_blas = None
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextlib.contextmanager
def single_threaded_blas():
    """Run BLAS single-threaded inside the block (counted; see the module docstring).

    Measured on 2 cores: threaded BLAS on the Zernike per-block products is 2-40x
    slower than one thread per block; in the k-NN search the merge after each
    per-cell product went 0.44 s -> 0.12 s at 34k points.
    """
    global _blas, _blas_users, _blas_limiter
    with _blas_lock:
        if _blas is None:
            try:
                # numba's np.dot calls scipy's BLAS, which may be a library of its own:
                # load it before threadpoolctl looks for the libraries to limit
                import scipy.linalg.cython_blas  # noqa: F401
                from threadpoolctl import ThreadpoolController

                _blas = ThreadpoolController()
            except Exception:  # pragma: no cover - threadpoolctl comes with scikit-learn
                _blas = False
        if _blas_users == 0 and _blas:
            _release_control()
            _blas_limiter = _blas.limit(limits=1, user_api="blas")
            _release_control()
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _release_control()
                _blas_limiter.restore_original_limits()
                _release_control()
                _blas_limiter = None


def _release_control():
    """Let the next thread that sets OpenBLAS's limit have its way (threadpoolctl >= 3.8).

    Without it, the explorer's background thread ran every "single-threaded"
    product on all cores, and the idle OpenBLAS worker spun for ~0.1 s after each,
    taking a core from the FR layout that followed (5k columns: 0.045 s in the main
    thread, 0.073-0.11 s in a worker thread).
    """
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # pragma: no cover - older threadpoolctl: any thread may set limits
        return
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def _forget():  # a forked child has none of its parent's limiter state
    global _blas_users, _blas_limiter
    _blas_users, _blas_limiter = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
