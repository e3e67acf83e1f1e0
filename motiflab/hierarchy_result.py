"""Result types of :func:`motiflab.hierarchy.build_hierarchy`: :class:`MotifCell` and :class:`Hierarchy`.

A :class:`Hierarchy` holds the motif-cells (nodes), their containment edges,
the per-cell and per-column bookkeeping, and writes the stable JSON contract
described in :mod:`motiflab.hierarchy`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .errors import InputFileError
from .lattice import Lattice

__all__ = ["MotifCell", "Hierarchy"]


@dataclass
class MotifCell:
    """One node of the hierarchy (see the module docstring for field meanings)."""

    id: int
    level: int
    count: int
    dominant: bool
    composition: list
    pattern: list
    locations: list
    n_cells: int = 0
    pattern_edges: list | None = None

    def to_json(self, max_locations: int | None = None) -> dict:
        """JSON-ready dict (plain ints/floats/strings and lists)."""
        locs = self.locations if max_locations is None else self.locations[:max_locations]
        out = {
            "id": int(self.id),
            "level": int(self.level),
            "count": int(self.count),
            "dominant": bool(self.dominant),
            "composition": [[_py(a), int(b)] for a, b in self.composition],
            "pattern": [[_py(x) for x in row] for row in self.pattern],
            "locations": locs,
            "n_cells": int(self.n_cells),
        }
        if self.pattern_edges is not None:
            out["pattern_edges"] = [[int(a), int(b)] for a, b in self.pattern_edges]
        return out


def _py(x):
    """Numpy scalar -> plain Python int, float or str (anything else unchanged), for JSON."""
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.str_):
        return str(x)
    return x


@dataclass
class Hierarchy:
    """Result of :func:`build_hierarchy`.

    Attributes
    ----------
    lattice : Lattice or None
        The lattice used (``None`` in Voronoi mode).
    motif_cells : list of MotifCell
        Nodes, ordered by id (host first, then level by level).
    edges : list of (int, int)
        ``(lower_id, higher_id)`` containment edges within the level gap.
    label_names : list
        Distinct column labels.
    cells : ndarray (M, 2) int
        Cells that took part (lattice mode: ``(i, j)``; Voronoi: ``(k, 0)``).
    cell_node : ndarray (M,) int
        Level-1 motif-cell id of each cell's composition.
    cell_component : ndarray (M,) int
        Component index of each minority cell, -1 for host cells.
    component_node : ndarray (n_components,) int
        Motif-cell id of each component.
    column_cell : ndarray (N,) int
        Row of ``cells`` of each input column; -1 where the column was ignored
        or its cell was cut by the frame.
    params : dict
        Options used.
    notes : list of str
        Warnings raised while building (also emitted with ``warnings.warn``).
    """

    lattice: Lattice | None
    motif_cells: list
    edges: list
    label_names: list
    cells: np.ndarray
    cell_node: np.ndarray
    cell_component: np.ndarray
    component_node: np.ndarray
    column_cell: np.ndarray
    params: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    _graph: object = field(default=None, repr=False)

    # -- accessors -----------------------------------------------------------------
    def node(self, node_id: int) -> MotifCell:
        """The motif-cell with this id."""
        return self.motif_cells[int(node_id)]

    @property
    def host(self) -> MotifCell:
        """The dominant (host-crystal) motif-cell."""
        return self.motif_cells[0]

    @property
    def levels(self) -> dict:
        """``{level: [ids]}``."""
        out: dict = {}
        for m in self.motif_cells:
            out.setdefault(m.level, []).append(m.id)
        return out

    def counts_by_pattern(self) -> dict:
        """``{tuple(map(tuple, pattern)): count}`` for all minority motif-cells with count > 0."""
        return {
            tuple(tuple(r) for r in m.pattern): m.count
            for m in self.motif_cells
            if not m.dominant and m.count > 0
        }

    def column_motif_cell(self) -> np.ndarray:
        """Motif-cell id of the component (0 for a host cell) each column belongs to; -1 if none."""
        out = np.full(len(self.column_cell), -1, np.int64)
        ok = self.column_cell >= 0
        cc = self.cell_component[self.column_cell[ok]]
        node = np.zeros(len(cc), np.int64)
        if len(self.component_node):
            node[cc >= 0] = self.component_node[cc[cc >= 0]]
        out[ok] = node
        return out

    @property
    def graph(self):
        """``networkx.DiGraph``: nodes are ids with attributes ``level``, ``count``,
        ``dominant``, ``composition``, ``pattern``, ``locations`` (up to 20 examples),
        ``n_cells`` and ``label``; edges lower -> higher with ``level_gap``."""
        if self._graph is None:
            import networkx as nx

            g = nx.DiGraph()
            for m in self.motif_cells:
                g.add_node(
                    m.id,
                    level=m.level,
                    count=m.count,
                    dominant=m.dominant,
                    composition=m.composition,
                    pattern=m.pattern,
                    locations=m.locations[:20],
                    n_cells=m.n_cells,
                    label=f"L{m.level} ({m.count})" + (" host" if m.dominant else ""),
                )
            for a, b in self.edges:
                g.add_edge(a, b, level_gap=self.motif_cells[b].level - self.motif_cells[a].level)
            self._graph = g
        return self._graph

    # -- export --------------------------------------------------------------------
    def to_json(self, max_locations: int | None = None) -> dict:
        """The stable JSON contract (see module docstring); every value is plain Python.

        Parameters
        ----------
        max_locations : int, optional
            Keep at most this many locations per motif-cell (default: all).
        """
        return {
            "format": "motiflab.hierarchy/1",
            "lattice": None if self.lattice is None else self.lattice.to_json(),
            "cells": self.params.get("cells", "lattice"),
            "rotations": self.params.get("rotations"),
            "neighborhood": self.params.get("neighborhood"),
            "max_level_gap": self.params.get("max_level_gap"),
            "labels": [_py(x) for x in self.label_names],
            "n_cells": int(len(self.cells)),
            "n_minority_cells": int(np.sum(self.cell_component >= 0)),
            "motif_cells": [m.to_json(max_locations) for m in self.motif_cells],
            "edges": [[int(a), int(b)] for a, b in self.edges],
            "notes": list(self.notes),
        }

    def save_json(self, path, max_locations: int | None = None, indent: int | None = 1,
                  overwrite: bool = False) -> None:
        """Write :meth:`to_json` to ``path`` atomically; an existing file only with ``overwrite``."""
        from .files import write_atomic

        doc = self.to_json(max_locations)
        try:
            write_atomic(path, lambda fh: json.dump(doc, fh, indent=indent), overwrite, binary=False)
        except InputFileError:
            raise
        except OSError as e:
            raise InputFileError(f"cannot write the hierarchy to {path!s}: {e}; check the folder exists and is writable") from None

    def summary(self, max_rows: int = 30) -> str:
        """Plain-text table of the motif-cells (id, level, count, composition)."""
        lines = [f"{'id':>4} {'level':>5} {'count':>6}  composition"]
        for m in self.motif_cells[:max_rows]:
            comp = ", ".join(f"{a}x{b}" for a, b in m.composition)
            tag = "  [host]" if m.dominant else ""
            lines.append(f"{m.id:>4} {m.level:>5} {m.count:>6}  {comp}{tag}")
        if len(self.motif_cells) > max_rows:
            lines.append(f"... {len(self.motif_cells) - max_rows} more")
        return "\n".join(lines)
