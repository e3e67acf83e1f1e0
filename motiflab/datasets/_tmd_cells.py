"""Cell geometry of the 2H TMD lattice: neighbour cells and orientation-resolved classes.

In :func:`~motiflab.datasets.make_tmd`'s cells, a metal at ``origin + i*u + j*v``
has its three nearest chalcogen columns in cells ``(i, j)``, ``(i-1, j)`` and
``(i, j-1)``. :func:`tmd_neighbor_cells` answers "which cells are next to this
site" (for planting defects) and :func:`oriented_classes` uses the same
neighbourhood to say *which* neighbour of a partial ``Mo#k`` environment is
defective (for scoring rotation-sensitive classifications).
"""
from __future__ import annotations

import numpy as np

from ..errors import MotifLabError

__all__ = ["METAL_TO_CHALCOGEN", "SUBLATTICES", "tmd_neighbor_cells", "oriented_classes"]

#: Offsets (di, dj) from a metal's cell to the cells of its 3 nearest chalcogens.
METAL_TO_CHALCOGEN = ((0, 0), (-1, 0), (0, -1))
#: Sublattice names, in basis order (metal 0, chalcogen 1).
SUBLATTICES = ("metal", "chalcogen")


def tmd_neighbor_cells(cell: tuple[int, int], sublattice: str) -> list[tuple[int, int]]:
    """Cells holding the three nearest columns of the other sublattice.

    Parameters
    ----------
    cell : (int, int)
        Cell index ``(i, j)`` of the site.
    sublattice : {"metal", "chalcogen"}
        Sublattice of the site.

    Returns
    -------
    list of (int, int)
        For a metal: the cells of its 3 nearest chalcogen columns; for a
        chalcogen: the cells of its 3 nearest metal columns.

    Examples
    --------
    Plant a ``Mo#3`` (all three neighbouring Se columns missing one atom)::

        defects = [(c, "chalcogen", "Se1") for c in tmd_neighbor_cells((0, 0), "metal")]
        img = make_tmd("MoSe2", defects=defects)
    """
    i, j = int(cell[0]), int(cell[1])
    if sublattice == "metal":
        return [(i + di, j + dj) for di, dj in METAL_TO_CHALCOGEN]
    if sublattice == "chalcogen":
        return [(i - di, j - dj) for di, dj in METAL_TO_CHALCOGEN]
    raise MotifLabError(f"sublattice must be 'metal' or 'chalcogen', got {sublattice!r}")


def oriented_classes(truth) -> np.ndarray:
    """Fine classes with the orientation of partial environments made explicit.

    With signed (``rotinv=False``) Zernike moments, a metal next to one
    defective chalcogen looks different depending on *which* of its three
    neighbours is defective: the three orientations of ``Mo#1`` are three
    motifs (each is farther from the others than from pristine ``Mo``, since
    they differ at two neighbour sites instead of one). The same holds for
    ``Mo#2``. This returns ``truth.fine`` with a suffix naming the defective
    neighbour (``Mo#1`` → ``"Mo#1/a"``, ``"/b"``, ``"/c"``) or, for ``Mo#2``,
    the intact one, so rotation-sensitive classifications can be scored
    against the right ground truth. ``Mo#3`` and every other class are
    unchanged (they look the same from every orientation). Dopant metals next
    to defective chalcogens get the same refinement (``W`` → ``"W#2/b"``):
    they are as different from a plain dopant as ``Mo#k`` is from ``Mo``.

    Parameters
    ----------
    truth : ColumnTruth
        Truth table of a :func:`make_tmd` image.

    Returns
    -------
    ndarray of str, shape (N,)
    """
    fine = np.asarray(truth.fine).astype(object)
    chalc = truth.sublattice == "chalcogen"
    defective = {
        (int(i), int(j))
        for (i, j), sp, vis in zip(truth.cell[chalc], truth.species[chalc], truth.visible[chalc])
        if not str(sp).endswith("2")  # one or both atoms missing
    }
    names = "abc"
    host = {str(f).split("#")[0] for f in fine[truth.sublattice == "metal"] if "#" in str(f)}
    for row in np.flatnonzero((truth.sublattice == "metal") & truth.visible):
        f = str(fine[row])
        i, j = truth.cell[row]
        flags = [(int(i) + di, int(j) + dj) in defective for di, dj in METAL_TO_CHALCOGEN]
        k = sum(flags)
        if "#" not in f:
            # a dopant metal next to defective chalcogens is as different from a plain
            # dopant as Mo#k is from Mo: give it the same refinement
            if k == 0 or f in host:
                continue
            f = f"{f}#{k}"
        if f.endswith("#3"):
            fine[row] = f
            continue
        want = f.endswith("#1")
        # the odd neighbour may lie outside the frame (edge columns): orientation unknown
        fine[row] = f"{f}/{names[flags.index(want)]}" if want in flags else f"{f}/?"
    return fine.astype(str)
