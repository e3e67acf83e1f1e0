"""A memory guard: refuse an allocation that cannot fit, before making it.

A patch stack, a neighbour graph or a playback buffer is sized from the
image and the parameters, so its size is known before it is allocated. When it
would not fit in the memory available now, the stage refuses with a message
that says how large it would be and what to do instead, rather than swapping
the machine to a halt or dying with a bare ``MemoryError``.
"""
from __future__ import annotations

from .errors import MotifLabError

__all__ = ["available_bytes", "check_fits"]

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
