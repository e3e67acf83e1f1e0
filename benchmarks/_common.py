"""Shared helpers for the benchmark scripts: timing, peak memory and one table.

Every benchmark module exposes ``rows(quick: bool) -> list[Row]``; ``run_all.py``
collects them into one printed table so all rows are measured in the same run
on the same machine. Peers (motif-learn, umap-learn) are measured side by side
and every motiflab row carries its ratio to the peer it is compared with.
"""
from __future__ import annotations

import gc
import os
import platform
import threading
import time
import tracemalloc
from dataclasses import dataclass, field


@dataclass
class Row:
    """One line of the benchmark table."""

    section: str          # e.g. "zernike", "layout", "end-to-end"
    case: str             # e.g. "N=100k P=32 float32"
    impl: str             # e.g. "motiflab", "motif-learn", "sklearn PCA", "floor"
    seconds: float
    peak_mb: float | None = None
    ref: str | None = None        # impl of the row this one is compared with
    quality: str = ""             # e.g. "ARI=0.97"
    notes: str = ""
    ratio: float | None = field(default=None)  # filled in by ``finish``


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss / 2**20
    except Exception:  # pragma: no cover - psutil is in the bench extra
        return float("nan")


class PeakRSS:
    """Sample the process RSS in a thread; report the peak above the start (MB).

    tracemalloc does not see memory allocated by BLAS or numba, so resident
    set size sampling is the honest number for array-heavy code.
    """

    def __init__(self, interval=0.005):
        self.interval = interval

    def __enter__(self):
        gc.collect()
        self.start = _rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())
        self.mb = self.peak - self.start


#: Idle time before every timed call, in seconds. OpenBLAS leaves its worker
#: threads spinning for 0.1-0.15 s after a threaded product (measured on this
#: machine), and a spinning worker takes a core from whatever runs next: a 10k x
#: 32^2 Zernike transform timed right after the previous row's threaded sgemm
#: took 1.3-1.6x as long as after a pause. Every implementation, motiflab and
#: peers alike, starts its timed calls after the same pause.
SETTLE_S = 0.3


def settle():
    """Let the previous call's BLAS workers go back to sleep before timing the next one."""
    gc.collect()
    time.sleep(SETTLE_S)


def timeit(fn, repeat=3, warmup=1):
    """Best-of-``repeat`` wall time of ``fn()`` after ``warmup`` calls; returns (seconds, peak_mb, result).

    Each timed call starts after :func:`settle`.
    """
    result = None
    for _ in range(warmup):
        result = fn()
    best = float("inf")
    peak = 0.0
    for _ in range(repeat):
        settle()
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            result = fn()
            dt = time.perf_counter() - t0
        best = min(best, dt)
        peak = max(peak, mem.mb)
    return best, peak, result


def machine_notes() -> str:
    import numpy as np

    try:
        import numba

        nb = numba.__version__
        threads = numba.config.NUMBA_NUM_THREADS
    except Exception:  # pragma: no cover
        nb, threads = "n/a", "n/a"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}; {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"NumPy {np.__version__}; numba {nb} ({threads} threads)"
    )


def finish(rows: list[Row]) -> list[Row]:
    """Fill in each row's ratio = peer seconds / this row's seconds (>1 means faster than the peer)."""
    for r in rows:
        if r.ref is None:
            continue
        peers = [p for p in rows if p.section == r.section and p.case == r.case and p.impl == r.ref]
        if peers and r.seconds > 0:
            r.ratio = peers[0].seconds / r.seconds
    return rows


def format_table(rows: list[Row]) -> str:
    """Markdown table, one row per measurement."""
    head = "| section | case | impl | time (s) | vs | speed-up | peak MB | quality | notes |"
    sep = "|---|---|---|---:|---|---:|---:|---|---|"
    out = [head, sep]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        peak = f"{r.peak_mb:.0f}" if r.peak_mb is not None else ""
        out.append(
            f"| {r.section} | {r.case} | {r.impl} | {r.seconds:.4g} | {r.ref or ''} | {ratio} | {peak} | {r.quality} | {r.notes} |"
        )
    return "\n".join(out)
