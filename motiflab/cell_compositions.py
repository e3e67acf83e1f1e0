"""Cell compositions: which motif labels each cell holds (steps 2-3 of :mod:`motiflab.hierarchy`).

A cell's composition is the multiset of the motif labels of its columns,
stored as a count vector over the sorted labels. Compositions are ranked most
frequent first, so composition 0 is the host crystal's cell. Used by
:func:`motif_cells` (cells given by index) and by the lattice and Voronoi
modes of :func:`motiflab.hierarchy.build_hierarchy`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import MotifLabError

__all__ = ["CellCompositions", "motif_cells", "encode_labels", "count_matrix", "ranked_compositions"]


def encode_labels(labels, n: int):
    """Distinct labels and the code of every column's label.

    Parameters
    ----------
    labels : array_like (N,)
        Motif label of every column: ints, whole-number floats or strings.
    n : int
        Number of columns (positions) the labels must match.

    Returns
    -------
    names : list
        Sorted distinct labels as plain Python ints or strs.
    codes : ndarray (N,) int64
        Index into ``names`` of every column's label.

    Raises
    ------
    MotifLabError
        Not 1-D, a different length from the positions, or non-whole floats.
    """
    try:
        lab = np.asarray(labels)
    except Exception:  # pragma: no cover - ragged input
        raise MotifLabError("labels must be a 1-D sequence of class labels (ints or strings)") from None
    if lab.ndim != 1:
        raise MotifLabError(f"labels must be 1-D (one label per column), got shape {lab.shape}")
    if len(lab) != n:
        raise MotifLabError(
            f"labels and positions have different lengths ({len(lab)} vs {n}); give one "
            "label per column, in the same order as the positions"
        )
    if lab.dtype.kind in "iub":
        lab = lab.astype(np.int64)
    elif lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
            raise MotifLabError("float labels must be whole numbers; pass integer or string labels")
        lab = lab.astype(np.int64)
    else:
        lab = lab.astype(str)
    names, codes = np.unique(lab, return_inverse=True)
    names_py = [x.item() if hasattr(x, "item") else x for x in names]
    return names_py, codes.astype(np.int64)


@dataclass
class CellCompositions:
    """Composition of every cell.

    Attributes
    ----------
    cells : ndarray (M, 2) int
        Cell indices ``(i, j)`` (one row per distinct cell).
    counts : ndarray (M, L) int
        Number of columns of each label in each cell.
    label_names : list
        The L labels (sorted).
    composition_id : ndarray (M,) int
        Row of ``compositions`` for each cell.
    compositions : ndarray (C, L) int
        Distinct compositions (count vectors), most frequent first.
    composition_counts : ndarray (C,) int
        Number of cells with each composition.
    host : int
        Composition id of the dominant (host) cell: 0.
    minority : ndarray (M,) bool
        Cell is not a host cell.
    column_cell : ndarray (N,) int
        Row of ``cells`` each column belongs to.
    """

    cells: np.ndarray
    counts: np.ndarray
    label_names: list
    composition_id: np.ndarray
    compositions: np.ndarray
    composition_counts: np.ndarray
    host: int
    minority: np.ndarray
    column_cell: np.ndarray

    def composition_list(self, cid: int) -> list:
        """Composition ``cid`` as a sorted list of ``[label, count]``."""
        row = self.compositions[cid]
        return [[self.label_names[k], int(c)] for k, c in enumerate(row) if c > 0]


def _unique_rows(counts: np.ndarray):
    """``np.unique(counts, axis=0, return_inverse, return_counts)``, fast for small counts.

    Rows of small non-negative counts are packed into one int64 key (mixed
    radix), which makes the unique a 1-D sort; falls back to the row-wise
    unique when the key would overflow.
    """
    if counts.size == 0:
        return counts[:0], np.zeros(len(counts), np.int64), np.zeros(0, np.int64)
    base = int(counts.max()) + 1
    n_lab = counts.shape[1]
    if n_lab * math.log2(max(base, 2)) < 62:
        w = base ** np.arange(n_lab - 1, -1, -1, dtype=np.int64)
        key = counts.astype(np.int64) @ w
        uk, first, inv, cnt = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        return counts[first], inv.reshape(-1), cnt
    comps, inv, cnt = np.unique(counts, axis=0, return_inverse=True, return_counts=True)
    return comps, inv.reshape(-1), cnt


def _rank_compositions(comps: np.ndarray, inv: np.ndarray, ccount: np.ndarray):
    """Reorder compositions most frequent first (ties by the count vector)."""
    order = np.lexsort(tuple(comps[:, ::-1].T) + (-ccount,))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return comps[order], rank[inv], ccount[order]


def count_matrix(key: np.ndarray, codes: np.ndarray, n_keys: int, n_labels: int) -> np.ndarray:
    """Number of columns of each label in each cell.

    Parameters
    ----------
    key : ndarray (N,) int
        Cell of every column, ``0 <= key < n_keys``.
    codes : ndarray (N,) int
        Label code of every column, ``0 <= codes < n_labels``.
    n_keys, n_labels : int
        Number of cells and of labels.

    Returns
    -------
    ndarray (n_keys, n_labels) int
    """
    return np.bincount(key * n_labels + codes, minlength=n_keys * n_labels).reshape(n_keys, n_labels)


def ranked_compositions(counts: np.ndarray):
    """Distinct rows of a count matrix, most frequent first (ties by the count vector).

    Parameters
    ----------
    counts : ndarray (M, L) int
        One count vector per cell.

    Returns
    -------
    comps : ndarray (C, L) int
        Distinct compositions; row 0 is the most frequent (the host).
    cid : ndarray (M,) int
        Composition of each cell (row of ``comps``).
    ccount : ndarray (C,) int
        Number of cells with each composition.
    """
    comps, inv, ccount = _unique_rows(counts)
    return _rank_compositions(comps, inv, ccount)


def motif_cells(cells_ij, labels) -> CellCompositions:
    """Classify cells by their composition (multiset of motif labels).

    Parameters
    ----------
    cells_ij : array_like, shape (N, 2) int
        Cell index of every column (e.g. from :func:`motiflab.lattice.index_cells`).
    labels : array_like, shape (N,)
        Motif label of every column (ints or strings).

    Returns
    -------
    CellCompositions
        Compositions per cell, the host composition (id 0, the most frequent)
        and the minority mask. Only cells that hold at least one column appear;
        :func:`build_hierarchy` also handles empty cells and the frame border.

    Raises
    ------
    MotifLabError
        If the inputs have different lengths or the wrong shape.
    """
    ij = np.asarray(cells_ij)
    if ij.ndim != 2 or ij.shape[1] != 2:
        raise MotifLabError(f"cells_ij must have shape (N, 2), got {ij.shape}")
    if ij.dtype.kind not in "iu":
        if not np.all(np.isfinite(ij)) or not np.all(ij == np.round(ij)):
            raise MotifLabError("cells_ij must hold integer cell indices")
        ij = ij.astype(np.int64)
    names, codes = encode_labels(labels, len(ij))
    if len(ij) == 0:
        raise MotifLabError("no columns given: need at least one labelled column per cell")
    cells, col_cell = np.unique(ij.astype(np.int64), axis=0, return_inverse=True)
    col_cell = col_cell.reshape(-1)
    counts = count_matrix(col_cell, codes, len(cells), len(names))
    comps, cid, ccount = ranked_compositions(counts)
    return CellCompositions(
        cells=cells,
        counts=counts,
        label_names=names,
        composition_id=cid,
        compositions=comps,
        composition_counts=ccount,
        host=0,
        minority=cid != 0,
        column_cell=col_cell,
    )
