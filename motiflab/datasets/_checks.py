"""Input validation shared by the generators, with messages that say how to fix the input.

Each ``check_*`` returns the value converted to a plain Python type (so results
and ``params`` hold floats and ints, not numpy scalars or strings) or raises
:class:`~motiflab.errors.MotifLabError`.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from ..errors import MotifLabError

__all__ = [
    "check_shape",
    "check_positive",
    "check_nonneg",
    "check_rate",
    "check_real",
    "check_seed",
    "check_drift",
    "check_probe",
]


def check_shape(shape: Any, min_side: int = 16) -> tuple[int, int]:
    """Validate an image shape and return it as ``(H, W)`` ints."""
    try:
        h, w = (int(s) for s in shape)
        ok = all(float(s) == int(s) for s in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or h < min_side or w < min_side:
        raise MotifLabError(
            f"shape must be two integers (rows, cols) of at least {min_side} pixels, "
            f"got {shape!r}"
        )
    return h, w


def check_positive(name: str, value: Any, allow_none: bool = False) -> float | None:
    """Validate a strictly positive finite number."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or float(value) <= 0
    ):
        hint = " or None" if allow_none else ""
        raise MotifLabError(f"{name} must be a positive finite number{hint}, got {value!r}")
    return float(value)


def check_nonneg(name: str, value: Any) -> float:
    """Validate a non-negative finite number."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or float(value) < 0
    ):
        raise MotifLabError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)


def check_rate(name: str, value: Any) -> float:
    """Validate a probability in [0, 1]."""
    v = check_nonneg(name, value)
    if v > 1:
        raise MotifLabError(f"{name} is a probability and must lie in [0, 1], got {value!r}")
    return v


def check_real(name: str, value: Any) -> float:
    """Validate a finite real number."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise MotifLabError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int | None:
    """Validate a seed (non-negative int or None)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise MotifLabError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def check_drift(drift: Any, shape: tuple[int, int]) -> tuple[float, float]:
    """Validate a ``(row, col)`` drift in pixels across the frame."""
    try:
        dr, dc = (check_real("drift", float(d)) for d in drift)
    except (TypeError, ValueError):
        raise MotifLabError(
            f"drift must be two numbers (row, col) in pixels, got {drift!r}"
        ) from None
    if abs(dr) >= shape[0] / 2:
        raise MotifLabError(
            f"drift row component {dr} px is at least half the frame height {shape[0]}; "
            "use a smaller drift"
        )
    return dr, dc


def check_probe(probe_fwhm: Any, tail_fraction: Any, tail_width: Any) -> tuple[float, float, float]:
    """Validate probe parameters (nm, fraction, nm)."""
    fwhm = check_positive("probe_fwhm", probe_fwhm)
    tf = check_rate("tail_fraction", tail_fraction)
    tw = check_positive("tail_width", tail_width)
    return fwhm, tf, tw  # type: ignore[return-value]
