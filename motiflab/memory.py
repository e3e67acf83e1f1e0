"""Guards: refuse an allocation that cannot fit, or work that would run for hours, before starting it.

A patch stack, a neighbour graph or a playback buffer is sized from the
image and the parameters, so its size is known before it is allocated. When it
would not fit in the memory available now, the stage refuses with a message
that says how large it would be and what to do instead, rather than swapping
the machine to a halt or dying with a bare ``MemoryError``.
"""
from __future__ import annotations

from .errors import MotifLabError

__all__ = ["available_bytes", "check_fits", "check_duration", "MAX_SECONDS"]

#: longest a single stage may be estimated to take before it is refused (a typo, not a plan)
MAX_SECONDS = 600.0

#: share of the available memory one allocation may take (the rest is for the copies around it)
FRACTION = 0.8


def available_bytes() -> int:
    """Memory available to this process now (bytes)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_fits(nbytes: float, what: str, advice: str, available: int | None = None) -> None:
    """Raise a :class:`MotifLabError` when ``nbytes`` would not fit in the available memory.

    Parameters
    ----------
    nbytes : float
        Estimated size of the allocation.
    what : str
        What is being allocated, in words ("2 011 patches of 17×17 px").
    advice : str
        What the user can do instead.
    available : int, optional
        Bytes available (default: asked of the operating system).
    """
    avail = available_bytes() if available is None else int(available)
    if nbytes > FRACTION * avail:
        raise MotifLabError(f"{what} need about {_human(nbytes)} but only {_human(avail)} of memory is available; "
                            f"{advice}.")


def check_duration(seconds: float, what: str, advice: str, limit: float = MAX_SECONDS) -> None:
    """Refuse work estimated to take longer than ``limit`` seconds, before starting it.

    The estimates are deliberately rough (a factor of a few): they catch an
    extra zero in a parameter, not a long but sensible run.
    """
    if seconds > limit:
        took = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
        raise MotifLabError(f"{what} would take about {took} (estimated; the limit is {limit / 60:.0f} min); "
                            f"{advice}.")
