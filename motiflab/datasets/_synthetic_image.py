"""The result types of the generators: a synthetic image and its per-column truth.

* :class:`ColumnTruth` -- one row per column site in the frame (position, species,
  environment class, sublattice, cell, rendering amplitude, basis index);
* :class:`SyntheticImage` -- the micrograph, its pixel size, lattice vectors and
  generator parameters, with the truth; converts to a HyperSpy ``Signal2D``.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import MotifLabError

__all__ = ["ColumnTruth", "SyntheticImage", "metadata_safe"]


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
        sig.metadata.set_item("Synthetic", metadata_safe(self.params))
        sig.metadata.set_item("Synthetic.lattice_vectors_px", np.asarray(self.lattice_vectors))
        if include_truth:
            for key, arr in self.truth.to_table().items():
                sig.metadata.set_item(f"Truth.{key}", arr)
        return sig


def metadata_safe(params: dict[str, Any]) -> dict[str, Any]:
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
