"""Shared machinery for the synthetic ADF/ABF-STEM generators.

Holds the result containers (:class:`ColumnTruth`, :class:`SyntheticImage`),
the periodic table used for ``Z``, input validation helpers and the renderer:

1. column amplitudes are splatted onto a padded pixel grid with bilinear weights
   (this keeps each column's centroid exactly at its sub-pixel position);
2. the grid is convolved with the probe (Gaussian core plus a weak, broad
   Lorentzian-like tail) as one real FFT product, with the probe's transfer
   function written analytically in Fourier space (no truncated kernel);
3. optional per-scan-line jitter shifts each image row by a random amount
   (Fourier shift), as fast-scan instabilities do;
4. the noise-free image is normalised to a mean of 1 and, if a dose is given,
   replaced by Poisson counts with mean ``dose`` electrons per pixel.

The cost is linear in the number of pixels (two FFTs) plus linear in the number
of columns, so 4096 x 4096 frames stay cheap.
"""
from __future__ import annotations

import functools
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import scipy.fft as sfft

from ..errors import MotifLabError

__all__ = [
    "ColumnTruth",
    "SyntheticImage",
    "ELEMENTS",
    "atomic_number",
    "parse_column",
]

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


# --------------------------------------------------------------------------
# Result containers
# --------------------------------------------------------------------------


@dataclass
class ColumnTruth:
    """Ground truth for every lattice column site whose centre lies in the image.

    One row per site, including invisible (empty) ones. Positions are where the
    column *appears* in the image (after strain, rotation, drift and scan jitter),
    in pixels, with pixel ``(r, c)`` centred at coordinate ``(r, c)``; a site is
    "in the image" when ``-0.5 <= row < H - 0.5`` and ``-0.5 <= col < W - 0.5``.

    Attributes
    ----------
    positions : ndarray, shape (N, 2), float64
        ``(row, col)`` in pixels, sub-pixel exact.
    species : ndarray, shape (N,), str
        Column content, e.g. ``"Mo"``, ``"W"`` (a dopant), ``"Se2"``, ``"Se1"``,
        ``"vacancy"``.
    fine : ndarray, shape (N,), str
        Species refined by environment: a host-metal column next to ``k >= 1``
        defective chalcogen columns is ``"Mo#k"``; otherwise equal to ``species``.
    visible : ndarray, shape (N,), bool
        ``False`` where the column is empty.
    sublattice : ndarray, shape (N,), str
        ``"metal"`` / ``"chalcogen"`` (TMD) or ``"A"`` / ``"B"`` / ``"O"`` (perovskite).
    cell : ndarray, shape (N, 2), int
        Lattice-cell index ``(i, j)``: position ~ ``origin + i*u + j*v + basis offset``.
    intensity : ndarray, shape (N,), float
        Rendering amplitude of the column: sum of ``Z**1.7`` over its atoms for ADF
        (``Z**(1/3)`` for the dark ABF contrast).
    basis : ndarray, shape (N,), int
        Index of the site within the unit cell (TMD: 0 metal, 1 chalcogen;
        perovskite: 0 A, 1 B, 2 O at (1/2, 0), 3 O at (0, 1/2)).
    """

    positions: np.ndarray
    species: np.ndarray
    fine: np.ndarray
    visible: np.ndarray
    sublattice: np.ndarray
    cell: np.ndarray
    intensity: np.ndarray
    basis: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.basis is None:
            self.basis = np.zeros(len(self.positions), dtype=np.int64)

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def to_table(self) -> dict[str, np.ndarray]:
        """Plain column dictionary (e.g. for ``pandas.DataFrame`` or ``np.savez``).

        Returns
        -------
        dict of str to ndarray
            Keys ``row, col, species, fine, visible, sublattice, cell_i, cell_j,
            basis, intensity``; string columns are unicode arrays.
        """
        return {
            "row": self.positions[:, 0].copy(),
            "col": self.positions[:, 1].copy(),
            "species": self.species.astype(str),
            "fine": self.fine.astype(str),
            "visible": self.visible.copy(),
            "sublattice": self.sublattice.astype(str),
            "cell_i": self.cell[:, 0].copy(),
            "cell_j": self.cell[:, 1].copy(),
            "basis": self.basis.copy(),
            "intensity": self.intensity.copy(),
        }

    def index(self, cell: tuple[int, int], sublattice: str, basis: int | None = None) -> int:
        """Row of the truth table for site ``(cell, sublattice)``.

        Parameters
        ----------
        cell : (int, int)
            Lattice-cell index ``(i, j)``.
        sublattice : str
            ``"metal"``/``"chalcogen"`` or ``"A"``/``"B"``/``"O"``.
        basis : int, optional
            Basis index, needed only where a cell has several sites on the same
            sublattice (perovskite ``"O"``: 2 or 3).

        Returns
        -------
        int
            Row index, or ``-1`` if the site is not in the image.
        """
        m = (
            (self.cell[:, 0] == cell[0])
            & (self.cell[:, 1] == cell[1])
            & (self.sublattice == sublattice)
        )
        if basis is not None:
            m &= self.basis == basis
        hits = np.flatnonzero(m)
        if len(hits) > 1:
            raise MotifLabError(
                f"cell {tuple(cell)} has {len(hits)} {sublattice!r} sites; pass basis= "
                f"(one of {sorted(set(self.basis[hits].tolist()))}) to pick one"
            )
        return int(hits[0]) if len(hits) else -1

    def subset(self, mask: np.ndarray) -> "ColumnTruth":
        """New truth holding only the rows selected by a boolean mask or index array."""
        return ColumnTruth(
            positions=self.positions[mask],
            species=self.species[mask],
            fine=self.fine[mask],
            visible=self.visible[mask],
            sublattice=self.sublattice[mask],
            cell=self.cell[mask],
            intensity=self.intensity[mask],
            basis=self.basis[mask],
        )


@dataclass
class SyntheticImage:
    """A synthetic micrograph and everything needed to score an analysis of it.

    Attributes
    ----------
    image : ndarray, shape (H, W), float32
        Detected counts (Poisson, mean ``dose`` per pixel) when a dose was given,
        else the noise-free image normalised to a mean of exactly 1.
    pixel_size : float
        nm per pixel.
    truth : ColumnTruth
        One row per column site in the image.
    lattice_vectors : ndarray, shape (2, 2)
        Effective ``u`` (row 0) and ``v`` (row 1) in pixels, ``(row, col)``
        components, after strain, rotation and (mean) drift shear.
    params : dict
        All inputs plus derived quantities (probe sigma in px, lattice origin,
        normalisation), for reproducibility and metadata.
    """

    image: np.ndarray
    pixel_size: float
    truth: ColumnTruth
    lattice_vectors: np.ndarray
    params: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(H, W)``."""
        return tuple(self.image.shape)  # type: ignore[return-value]

    def to_signal(self, include_truth: bool = True):
        """Wrap the image as a calibrated HyperSpy ``Signal2D``.

        Parameters
        ----------
        include_truth : bool, default True
            Store the truth table under ``metadata.Truth`` (one array per column of
            :meth:`ColumnTruth.to_table`) so it travels with the signal.

        Returns
        -------
        hyperspy.signals.Signal2D
            Axes ``x`` (columns) and ``y`` (rows), ``scale = pixel_size``,
            ``units = "nm"``; ``metadata.General.title`` names the sample and the
            generator parameters are under ``metadata.Synthetic``.
        """
        import hyperspy.api as hs  # heavy import: only when asked for

        sig = hs.signals.Signal2D(self.image.copy())
        for ax, name in zip(sig.axes_manager.signal_axes, ("x", "y")):
            ax.name = name
            ax.scale = float(self.pixel_size)
            ax.offset = 0.0
            ax.units = "nm"
        sig.metadata.General.title = str(self.params.get("title", "Synthetic STEM image"))
        sig.metadata.set_item(
            "Signal.quantity",
            "Counts" if self.params.get("dose") is not None else "Intensity (normalised)",
        )
        sig.metadata.set_item("Signal.signal_origin", "simulation")
        sig.metadata.set_item("Synthetic", _metadata_safe(self.params))
        sig.metadata.set_item("Synthetic.lattice_vectors_px", np.asarray(self.lattice_vectors))
        if include_truth:
            for key, arr in self.truth.to_table().items():
                sig.metadata.set_item(f"Truth.{key}", arr)
        return sig


def _metadata_safe(params: dict[str, Any]) -> dict[str, Any]:
    """Params with values HyperSpy metadata (and .hspy files) can hold."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None:
            out[k] = "None"
        elif isinstance(v, (bool, int, float, str, np.integer, np.floating)):
            out[k] = v
        elif isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
            out[k] = v
        elif isinstance(v, (tuple, list)) and all(
            isinstance(x, numbers.Number) for x in v
        ):
            out[k] = np.asarray(v)
        else:
            out[k] = repr(v)
    return out


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------


def lattice_cells(
    u: np.ndarray, v: np.ndarray, origin: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Index ranges ``i, j`` of all cells whose origin can fall inside a rectangle.

    Parameters
    ----------
    u, v : ndarray, shape (2,)
        Lattice vectors (row, col) in pixels.
    origin : ndarray, shape (2,)
        Position of cell (0, 0).
    lo, hi : ndarray, shape (2,)
        Rectangle corners (row, col).

    Returns
    -------
    i_range, j_range : ndarray of int
        Consecutive integer ranges (a rectangular block of cells, inclusive).
    """
    m = np.column_stack([u, v])  # position = origin + m @ (i, j)
    minv = np.linalg.inv(m)
    corners = np.array(
        [[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]], dtype=float
    )
    ij = (corners - origin) @ minv.T
    i0, j0 = np.floor(ij.min(axis=0)).astype(int) - 2
    i1, j1 = np.ceil(ij.max(axis=0)).astype(int) + 2
    return np.arange(i0, i1 + 1), np.arange(j0, j1 + 1)


def drift_matrix(drift: tuple[float, float], height: int) -> np.ndarray:
    """Linear map from true to apparent positions for a linear drift.

    The slow scan runs down the rows over one frame time. A sample that drifts by
    ``drift`` pixels over the frame is seen at row ``r'`` displaced by
    ``drift * r' / H``; solving ``r' = r + d_r r'/H`` gives an exact linear map
    (a shear plus a row stretch), anchored at row 0.
    """
    dr, dc = drift
    s = 1.0 / (1.0 - dr / height)
    return np.array([[s, 0.0], [dc / height * s, 1.0]])


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def probe_params_px(
    probe_fwhm: float, tail_fraction: float, tail_width: float, pixel_size: float
) -> dict[str, float]:
    """Probe parameters in pixels: core sigma, tail fraction and tail scale gamma."""
    sigma = probe_fwhm * _FWHM_TO_SIGMA / pixel_size
    gamma = tail_width / pixel_size
    return {"sigma_px": sigma, "tail_fraction": tail_fraction, "tail_gamma_px": gamma}


def probe_peak(sigma: float, tail_fraction: float, gamma: float) -> float:
    """Typical brightest-pixel value of an isolated unit-amplitude column.

    The continuous probe peak, with the Gaussian core broadened by the pixel
    grid: the bilinear splat adds ``f(1-f)`` (mean 1/6) and reading the nearest
    pixel instead of the true centre another ~1/12 per axis, so ``sigma**2 + 1/4``.
    Used as the reference for ``background`` (and ABF contrast).
    """
    s2 = sigma**2 + 0.25
    return (1 - tail_fraction) / (2 * math.pi * s2) + tail_fraction / (2 * math.pi * gamma**2)


@functools.lru_cache(maxsize=8)
def probe_transfer(shape: tuple[int, int], sigma: float, tail_fraction: float, gamma: float) -> np.ndarray:
    """Real-FFT transfer function of the probe intensity on a grid (float32, cached).

    The probe is ``(1 - t) * G_sigma + t * L_gamma`` with ``G`` a unit 2-D Gaussian
    and ``L(r) = gamma / (2 pi (r^2 + gamma^2)^(3/2))`` a unit-integral
    Lorentzian-like tail (its 2-D Fourier transform is ``exp(-2 pi gamma |k|)``),
    the shape of the slowly decaying skirt aberrations leave around a corrected
    probe. Both have closed-form transforms, so no kernel is truncated.
    """
    ky = sfft.fftfreq(shape[0])
    kx = sfft.rfftfreq(shape[1])
    c = -2.0 * math.pi**2 * sigma**2
    # The Gaussian is separable: an outer product of two 1-D factors is cheap.
    h = np.multiply.outer(
        ((1.0 - tail_fraction) * np.exp(c * ky**2)).astype(np.float32),
        np.exp(c * kx**2).astype(np.float32),
    )
    if tail_fraction > 0:
        k = np.sqrt(np.add.outer(ky.astype(np.float32) ** 2, kx.astype(np.float32) ** 2))
        k *= np.float32(-2.0 * math.pi * gamma)
        np.exp(k, out=k)
        h += np.float32(tail_fraction) * k
    h.flags.writeable = False
    return h


def splat_bilinear(positions: np.ndarray, amplitudes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Deposit point amplitudes on a grid with bilinear weights.

    The first moment of the deposited weights equals the sub-pixel position
    exactly, so a symmetric probe convolved afterwards keeps each column's
    centroid where it should be. Positions must satisfy
    ``0 <= row < H - 1`` and ``0 <= col < W - 1``.
    """
    h, w = shape
    r0 = np.floor(positions[:, 0]).astype(np.int64)
    c0 = np.floor(positions[:, 1]).astype(np.int64)
    fr = positions[:, 0] - r0
    fc = positions[:, 1] - c0
    idx = r0 * w + c0
    a = np.asarray(amplitudes, dtype=np.float64)
    # One bincount over the four corners (one pass over the grid, not four).
    idx4 = np.concatenate([idx, idx + 1, idx + w, idx + w + 1])
    wt4 = np.concatenate(
        [a * (1 - fr) * (1 - fc), a * (1 - fr) * fc, a * fr * (1 - fc), a * fr * fc]
    )
    return np.bincount(idx4, wt4, minlength=h * w)[: h * w].reshape(h, w)


def pad_for_probe(sigma: float, tail_fraction: float, gamma: float, jitter: float) -> int:
    """Canvas margin (px) so that FFT wrap-around never reaches the image."""
    reach = 5.0 * sigma
    if tail_fraction > 0:
        reach = max(reach, 3.0 * gamma)
    return int(math.ceil(reach + 6.0 * jitter)) + 4


def render(
    positions: np.ndarray,
    amplitudes: np.ndarray,
    shape: tuple[int, int],
    pad: int,
    sigma: float,
    tail_fraction: float,
    gamma: float,
    row_shifts: np.ndarray | None = None,
) -> np.ndarray:
    """Noise-free column image (before background and normalisation).

    Parameters
    ----------
    positions : ndarray, shape (N, 2)
        Column positions (row, col) in image pixels; sites may lie in the margin
        ``[-pad, H + pad)``, which is rendered and then cropped so the edges look
        like the lattice continues.
    amplitudes : ndarray, shape (N,)
        Integrated intensity of each column.
    shape : (int, int)
        Output image shape.
    pad : int
        Margin rendered around the image.
    sigma, tail_fraction, gamma : float
        Probe (see :func:`probe_transfer`), in pixels.
    row_shifts : ndarray, shape (H + 2*pad,), optional
        Horizontal shift in pixels of each canvas row (scan-line jitter).

    Returns
    -------
    ndarray, shape ``shape``, float32
        A view into the padded canvas.
    """
    h, w = shape
    ch = sfft.next_fast_len(h + 2 * pad, real=True)
    cw = sfft.next_fast_len(w + 2 * pad, real=True)
    p = positions + pad
    keep = (p[:, 0] >= 0) & (p[:, 0] < ch - 1) & (p[:, 1] >= 0) & (p[:, 1] < cw - 1)
    # Single precision is ample for an image (relative error ~1e-6) and halves FFT time.
    grid = splat_bilinear(p[keep], np.asarray(amplitudes)[keep], (ch, cw)).astype(np.float32)
    spec = sfft.rfft2(grid, workers=-1)
    del grid
    spec *= probe_transfer((ch, cw), float(sigma), float(tail_fraction), float(gamma))
    if row_shifts is not None and np.any(row_shifts):
        # Shifting every row is a per-row phase ramp along the fast-scan axis: go
        # back to real space along rows only, apply the ramp, then finish along cols.
        rows_spec = sfft.ifft(spec, axis=0, workers=-1, overwrite_x=True)
        shifts = np.zeros(ch)
        shifts[: min(ch, len(row_shifts))] = row_shifts[:ch]
        phase = np.multiply.outer(
            (-2.0 * math.pi * shifts).astype(np.float32), sfft.rfftfreq(cw).astype(np.float32)
        )
        ramp = np.empty(phase.shape, dtype=np.complex64)
        np.cos(phase, out=ramp.real)
        np.sin(phase, out=ramp.imag)
        rows_spec *= ramp
        out = sfft.irfft(rows_spec, n=cw, axis=1, workers=-1, overwrite_x=True)
    else:
        out = sfft.irfft2(spec, s=(ch, cw), workers=-1, overwrite_x=True)
    return out[pad : pad + h, pad : pad + w]


def jitter_position_shift(rows: np.ndarray, row_shifts: np.ndarray, pad: int, sigma: float) -> np.ndarray:
    """Apparent horizontal displacement of columns under per-row jitter.

    A column spans several scan lines; its apparent centre moves by the jitter of
    those lines weighted by the probe core's row profile at the column.
    """
    k = int(math.ceil(4 * sigma)) + 1
    offs = np.arange(-k, k + 1)
    base = np.rint(rows).astype(np.int64)
    r = base[:, None] + offs[None, :]  # image rows
    wts = np.exp(-0.5 * ((r - rows[:, None]) / sigma) ** 2)
    idx = np.clip(r + pad, 0, len(row_shifts) - 1)
    return (wts * row_shifts[idx]).sum(axis=1) / wts.sum(axis=1)


def sites_in_image(
    pos: np.ndarray, shape: tuple[int, int], row_shifts: np.ndarray | None, pad: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and apparent positions of the sites whose centre lies in the image.

    "In the image" means ``-0.5 <= row < H - 0.5`` and ``-0.5 <= col < W - 0.5``
    (pixel ``(r, c)`` covers ``[r - 0.5, r + 0.5)``), judged on the apparent
    position, i.e. after scan-line jitter when ``row_shifts`` is given.
    """
    h, w = shape
    slack = 1.0 if row_shifts is None else 1.0 + 8.0 * float(np.abs(row_shifts).max())
    near = np.flatnonzero(
        (pos[:, 0] >= -0.5) & (pos[:, 0] < h - 0.5)
        & (pos[:, 1] >= -0.5 - slack) & (pos[:, 1] < w - 0.5 + slack)
    )
    p = pos[near].astype(np.float64)
    if row_shifts is not None:
        p[:, 1] += jitter_position_shift(p[:, 0], row_shifts, pad, sigma)
    ok = (p[:, 1] >= -0.5) & (p[:, 1] < w - 0.5)
    return near[ok], p[ok]


def finish_image(
    raw: np.ndarray, offset: float, dose: float | None, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Add the constant offset, normalise to mean 1 and apply Poisson shot noise.

    Returns the float32 image and the factor ``s`` with
    ``normalised = s * (raw + offset)``.
    """
    total = raw + np.float32(offset)
    mean = float(total.mean(dtype=np.float64))
    if not mean > 0:
        raise MotifLabError(
            "the rendered image has no positive intensity to normalise; raise background "
            "or add columns"
        )
    scale = 1.0 / mean
    total *= np.float32(scale)
    np.clip(total, 0.0, None, out=total)  # FFT round-off can dip a hair below 0
    if dose is None:
        return total.astype(np.float32, copy=False), scale
    key = np.uint64(rng.integers(0, 2**63 - 1, dtype=np.int64))
    return poisson_counts(total, float(dose), key), scale


# --------------------------------------------------------------------------
# Shot noise: a counter-based Poisson sampler
# --------------------------------------------------------------------------
# numpy's Generator.poisson is serial (~150 ns/sample, 0.6 s for a 2048^2 frame).
# Here every pixel gets its own random stream, hashed from (key, pixel index), so
# the result is identical whatever the number of threads, and pixels are sampled
# in parallel: inversion for small means, Hoermann's (1993) transformed rejection
# (PTRS) for means >= 10.

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _uniform(state):
    """Next (state, u) of a splitmix64 stream; u uniform in [0, 1)."""
    state = state + _GOLDEN
    return state, float(_mix64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


_LOG_FACT_SMALL = np.array([math.lgamma(k + 1.0) for k in range(16)])


@numba.njit(cache=True, inline="always")
def _log_factorial(k):
    """log(k!) from a table below 16, else Stirling's series (error < 1e-12)."""
    if k < 16.0:
        return _LOG_FACT_SMALL[int(k)]
    x = k + 1.0
    ix2 = 1.0 / (x * x)
    return ((x - 0.5) * math.log(x) - x + 0.9189385332046728
            + (1.0 / 12.0 - ix2 * (1.0 / 360.0 - ix2 / 1260.0)) / x)


@numba.njit(cache=True, inline="always")
def _poisson_one(lam, state):
    if lam <= 0.0:
        return 0.0
    if lam < 10.0:
        # Inversion: walk up the CDF (about lam steps).
        state, u = _uniform(state)
        p = math.exp(-lam)
        cdf = p
        k = 0
        while u > cdf and k < 200:
            k += 1
            p *= lam / k
            cdf += p
        return float(k)
    # PTRS: transformed rejection with squeeze (Hoermann 1993).
    b = 0.931 + 2.53 * math.sqrt(lam)
    a = -0.059 + 0.02483 * b
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        state, u = _uniform(state)
        state, v = _uniform(state)
        u -= 0.5
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= v_r:
            return k
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
        lhs = math.log(v * inv_alpha / (a / (us * us) + b))
        if lhs <= -lam + k * math.log(lam) - _log_factorial(k):
            return k


@numba.njit(cache=True, parallel=True)
def _poisson_image(mean_img, dose, key):
    h, w = mean_img.shape
    out = np.empty((h, w), dtype=np.float32)
    for r in numba.prange(h):
        for c in range(w):
            state = _mix64(key ^ _mix64(np.uint64(r * w + c) + _GOLDEN))
            out[r, c] = _poisson_one(dose * float(mean_img[r, c]), state)
    return out


def poisson_counts(mean_img: np.ndarray, dose: float, key: np.uint64) -> np.ndarray:
    """Poisson counts with per-pixel mean ``dose * mean_img`` (float32 result).

    Parameters
    ----------
    mean_img : ndarray, shape (H, W)
        Non-negative normalised intensity.
    dose : float
        Multiplier (electrons per pixel at ``mean_img == 1``).
    key : numpy.uint64
        Stream key; the same key gives the same counts, independent of threading.

    Returns
    -------
    ndarray, float32
    """
    m = np.ascontiguousarray(mean_img)
    if not np.all(np.isfinite(m)) or (m.size and m.min() < 0):
        raise MotifLabError("Poisson means must be finite and non-negative")
    return _poisson_image(m, float(dose), np.uint64(key))


def rng_streams(seed: int | None) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for structure, scan jitter and shot noise.

    Separate streams mean the same seed gives the same defects and jitter at any
    dose, so dose series share one ground truth.
    """
    ss = np.random.SeedSequence(seed)
    a, b, c = ss.spawn(3)
    return np.random.default_rng(a), np.random.default_rng(b), np.random.default_rng(c)
