"""When the explorer recomputes: debounce, generations and cancellation, without any widget.

A slider sends a value many times a second while it is dragged. The
:class:`Scheduler` collects the values, waits until none arrived for
``debounce`` seconds, and then hands them all at once to ``run(params)`` in a
background thread. Every new value bumps a *generation*; the running job calls
:meth:`Scheduler.check_cancel` between stages (and at every FR snapshot), which
raises :class:`Cancelled` as soon as a newer value is waiting, so a stale
computation stops early and the next run reuses every stage it finished.

Tests and scripts use ``background=False`` (or :meth:`Scheduler.run_now`) to
run the same logic synchronously in the calling thread.
"""
from __future__ import annotations

import threading
import time

__all__ = ["Cancelled", "Scheduler"]


class Cancelled(Exception):
    """A newer value arrived; the running computation is stale."""


class Scheduler:
    """Debounced, cancellable recomputation in one background worker.

    Parameters
    ----------
    run : callable
        ``run(params)`` applies a dict of pending values and recomputes; it
        should call :meth:`check_cancel` between steps. Its return value is
        returned by :meth:`run_now`.
    debounce : float
        Seconds without a new value before ``run`` is called.
    background : bool
        Run in a worker thread; ``False`` runs in the caller's thread.
    on_error : callable, optional
        ``on_error(exc)`` for an exception ``run`` raised in the worker (the
        worker itself never dies).

    Attributes
    ----------
    cancelled : int
        Runs abandoned because a newer value arrived.
    """

    def __init__(self, run, debounce=0.4, background=True, on_error=None):
        self._run = run
        self.debounce = float(debounce)
        self.background = bool(background)
        self._on_error = on_error
        self.cancelled = 0
        self._pending: dict = {}
        self._gen = 0
        self._current_gen = 0
        self._last_change = 0.0
        self._cond = threading.Condition()
        self._run_lock = threading.RLock()
        self.busy = False
        self._worker = None
        self._closed = False

    # ------------------------------------------------------------------ feeding values
    def submit(self, params: dict, debounce=True):
        """Record new values (a later value of the same name wins) and schedule a run."""
        with self._cond:
            self._pending.update(params)
            self._gen += 1
            self._last_change = time.monotonic() if debounce else 0.0
            self._cond.notify_all()
        if self.background:
            self._ensure_worker()

    def run_now(self):
        """Run the pending values now, in this thread; returns what ``run`` returned (None if cancelled)."""
        with self._run_lock:
            with self._cond:
                params, self._pending = self._pending, {}
                self._current_gen = self._gen
            self.busy = True
            try:
                return self._run(params)
            except Cancelled:
                self.cancelled += 1
                return None
            finally:
                self.busy = False

    def check_cancel(self):
        """Raise :class:`Cancelled` when a newer value is waiting (call it between steps)."""
        if self._gen != self._current_gen:
            raise Cancelled()

    def pause(self, seconds):
        """Wait ``seconds`` in a background run, then :meth:`check_cancel` (a newer value ends the wait at once).

        Does not wait when runs are in the caller's thread (``background=False``).
        """
        if self.background and seconds > 0:
            end = time.monotonic() + seconds
            with self._cond:
                while self._gen == self._current_gen and not self._closed and (left := end - time.monotonic()) > 0:
                    self._cond.wait(left)
        self.check_cancel()

    @property
    def current_generation(self) -> int:
        return self._current_gen

    def locked(self, timeout=-1):
        """The lock held while a run is in progress (acquire it to act between runs)."""
        return self._run_lock.acquire(timeout=timeout)

    def unlock(self):
        self._run_lock.release()

    # ------------------------------------------------------------------ the worker
    def _ensure_worker(self):
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="motiflab-explorer", daemon=True)
            self._worker.start()

    def _work(self):
        while True:
            with self._cond:
                while not self._closed and self._gen == self._current_gen and not self._pending:
                    self._cond.wait()
                if self._closed:
                    return
                while True:  # debounce: wait until the values stop changing
                    left = self._last_change + self.debounce - time.monotonic()
                    if left <= 0 or self._closed:
                        break
                    self._cond.wait(left)
                if self._closed:
                    return
            try:
                self.run_now()
            except Exception as exc:  # never let the worker die silently
                if self._on_error is not None:
                    self._on_error(exc)

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and self._gen == self._current_gen and not self.busy

    def wait(self, timeout=120.0) -> bool:
        """Block until nothing is pending or running; True when idle within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.idle() and self._run_lock.acquire(blocking=False):
                self._run_lock.release()
                if self.idle():
                    return True
            time.sleep(0.02)
        return False

    def close(self):
        """Stop the worker (a running job finishes its current step)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
