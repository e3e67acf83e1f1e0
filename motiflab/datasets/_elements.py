"""Elements and column contents: the periodic table and the column formula strings.

A column's content is written as a formula such as ``"Se2"``, ``"SeTe"``, ``"W"``
or ``"vacancy"``; :func:`parse_column` reads it into ``[(element, count), ...]``,
:func:`column_name` writes it back in canonical form and :func:`column_weight`
turns it into an ADF/ABF rendering amplitude (a sum of ``Z**exponent``).
"""
from __future__ import annotations

import re

from ..errors import MotifLabError

__all__ = ["ELEMENTS", "VACANCY", "atomic_number", "parse_column", "column_name", "column_weight"]

# Element symbols in order of atomic number (Z = index + 1), H..U.
ELEMENTS: tuple[str, ...] = tuple(
    (
        "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni "
        "Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I "
        "Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt "
        "Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U"
    ).split()
)
_Z = {sym: z + 1 for z, sym in enumerate(ELEMENTS)}

#: Sentinel species name for an empty column.
VACANCY = "vacancy"

_FORMULA_RE = re.compile(r"([A-Z][a-z]?)(\d*)")


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol.

    Parameters
    ----------
    symbol : str
        Element symbol with standard capitalisation, e.g. ``"Mo"``.

    Returns
    -------
    int
        ``Z`` (1 for H up to 92 for U).

    Raises
    ------
    MotifLabError
        If the symbol is not an element between H and U.
    """
    try:
        return _Z[symbol]
    except (KeyError, TypeError):
        raise MotifLabError(
            f"unknown element symbol {symbol!r}; use a standard symbol with the usual "
            "capitalisation between H and U, e.g. 'W', 'Se', 'Re'"
        ) from None


def parse_column(formula: str, max_atoms: int) -> list[tuple[str, int]]:
    """Parse a column content string into ``[(element, count), ...]``.

    ``"Se2"`` -> ``[("Se", 2)]``, ``"Se1"`` or ``"Se"`` -> ``[("Se", 1)]``,
    ``"SeTe"`` -> ``[("Se", 1), ("Te", 1)]``, ``"vacancy"`` -> ``[]``.

    Parameters
    ----------
    formula : str
        Column content.
    max_atoms : int
        Most atoms the site can hold (per repeat along the beam).

    Returns
    -------
    list of (str, int)
        Elements and counts, in the order written.

    Raises
    ------
    MotifLabError
        If the string is not a formula of known elements or holds too many atoms.
    """
    if not isinstance(formula, str):
        raise MotifLabError(
            f"column species must be a string such as 'Se1', 'W' or 'vacancy', got {formula!r}"
        )
    if formula == VACANCY:
        return []
    parts = _FORMULA_RE.findall(formula)
    if not parts or "".join(s + n for s, n in parts) != formula:
        raise MotifLabError(
            f"cannot read column species {formula!r}; write element symbols with optional "
            "atom counts (e.g. 'Se2', 'Se1', 'SeTe', 'W') or 'vacancy'"
        )
    out: list[tuple[str, int]] = []
    for sym, n in parts:
        atomic_number(sym)  # validates the symbol
        out.append((sym, int(n) if n else 1))
    total = sum(n for _, n in out)
    if total < 1 or total > max_atoms:
        raise MotifLabError(
            f"column species {formula!r} holds {total} atoms but this site holds 1 to "
            f"{max_atoms}; use 'vacancy' for an empty column"
        )
    return out


def column_name(content: list[tuple[str, int]], always_count: bool) -> str:
    """Canonical species name for parsed column content (inverse of :func:`parse_column`)."""
    if not content:
        return VACANCY
    if len(content) == 1:
        sym, n = content[0]
        return f"{sym}{n}" if (always_count or n > 1) else sym
    return "".join(f"{s}{n if n > 1 else ''}" for s, n in content)


def column_weight(content: list[tuple[str, int]], exponent: float) -> float:
    """Sum of ``Z**exponent`` over the atoms of a column."""
    return float(sum(n * atomic_number(s) ** exponent for s, n in content))
