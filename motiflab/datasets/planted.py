"""TMD images with planted defect clusters and their exact expected hierarchy.

:func:`make_planted` puts chalcogen-vacancy clusters (isolated vacancies,
adjacent pairs, triangles, straight lines) and metal vacancies into a clean
2H-TMD monolayer made by :func:`motiflab.datasets.make_tmd`, on a coarse grid
of slots so that no two clusters ever touch, and returns

* ``expected_counts`` -- how many clusters of each type were planted (the
  count the hierarchy must report for that type's motif-cell);
* ``expected_patterns`` -- for each type, the motif-cell it produces on the
  generator's own cells (``(i, j)`` of :class:`ColumnTruth`, composition =
  sorted ``(label, count)`` of the truth labels), read from the generator's
  truth table rather than from any motiflab analysis code;
* ``truth_lattice`` -- a :class:`motiflab.lattice.Lattice` whose cells are
  exactly the generator's cells (metal at fractional ``(1/3, 1/3)``, its
  chalcogen partner at ``(2/3, 2/3)``).

Spacing: cluster anchors sit on a square grid of ``spacing`` cells (default 7)
in ``(i, j)``; every footprint (defective sites plus the cells of all metals
next to them) spans at most 4 x 3 cells, so two footprints are separated by at
least ``spacing - 4 >= 3`` host cells along ``i`` and ``j`` and can touch neither
in the von Neumann nor in the hexagonal neighbourhood, and no metal column is
next to defects of two clusters. Footprints also stay at least two cells (plus
1.5 lattice constants) inside the frame.

Each defective chalcogen column loses one atom (``"Se2" -> "Se1"``); it stays
visible, as in ADF images of single chalcogen vacancies. The metals around it
become ``Mo#k`` in ``truth.fine`` (k = number of defective neighbours), which
is what makes single-column defects grow into multi-cell motif-cells.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..errors import MotifLabError
from ..lattice import Lattice
from ._synthetic_image import SyntheticImage
from .tmd import TMD_MATERIALS, make_tmd, tmd_neighbor_cells

__all__ = ["CLUSTER_TYPES", "PlantedSample", "make_planted", "pattern_key"]

#: Planted cluster types: list of (cell offset, sublattice) of the defective sites,
#: in make_tmd's cell coordinates (u along +col, v 60 degrees from u).
CLUSTER_TYPES: dict[str, list[tuple[tuple[int, int], str]]] = {
    # one chalcogen column missing an atom
    "vacancy": [((0, 0), "chalcogen")],
    # two nearest-neighbour chalcogen columns (distance a, along u)
    "pair": [((0, 0), "chalcogen"), ((1, 0), "chalcogen")],
    # the three chalcogen columns around the metal of cell (1, 1): a Mo#3 centre
    "triangle": [((1, 1), "chalcogen"), ((0, 1), "chalcogen"), ((1, 0), "chalcogen")],
    # three chalcogen columns in a straight row along u
    "line": [((0, 0), "chalcogen"), ((1, 0), "chalcogen"), ((2, 0), "chalcogen")],
    # an empty metal column (its neighbours keep their fine class)
    "metal_vacancy": [((0, 0), "metal")],
}


def pattern_key(cells, comps, rotations=None) -> tuple:
    """Rotation-canonical key of a pattern of cells (independent of motiflab.hierarchy).

    Parameters
    ----------
    cells : sequence of (int, int)
        Cell indices.
    comps : sequence of hashable
        The composition of each cell (e.g. a tuple of ``(label, count)``).
    rotations : sequence of 2x2 int matrices, optional
        Default: the four 90-degree rotations of the index grid.

    Returns
    -------
    tuple
        Smallest sorted, bounding-box-normalised ``((di, dj, comp), ...)``
        over the rotations (comps compared by ``repr`` so any hashable works).
    """
    if rotations is None:
        rotations = [((1, 0), (0, 1)), ((0, -1), (1, 0)), ((-1, 0), (0, -1)), ((0, 1), (-1, 0))]
    best = None
    for r in rotations:
        (a, b), (c, d) = r[0], r[1]
        rot = [(a * i + b * j, c * i + d * j) for i, j in cells]
        mi = min(x for x, _ in rot)
        mj = min(y for _, y in rot)
        t = tuple(sorted(((x - mi, y - mj, comp) for (x, y), comp in zip(rot, comps)), key=repr))
        if best is None or repr(t) < repr(best):
            best = t
    return best


@dataclass
class PlantedSample:
    """A TMD image with planted clusters and the hierarchy it must produce.

    Attributes
    ----------
    image : SyntheticImage
        The rendered sample (``image.truth`` is the full column truth).
    clusters : list of dict
        One per planted cluster: ``type``, ``anchor`` (cell), ``sites`` (list of
        ``((i, j), sublattice)``), ``cells`` (minority cells it produced).
    expected_counts : dict
        ``{type: number planted}``.
    expected_patterns : dict
        ``{type: [(di, dj, composition), ...]}`` in truth cell coordinates,
        composition = tuple of sorted ``(label, count)``; relative to the
        pattern's bounding-box corner.
    host_composition : tuple
        Composition of the host cell, e.g. ``(("Mo", 1), ("Se2", 1))``.
    truth_lattice : Lattice
        Lattice whose cells are the generator's cells.
    min_spacing_cells : int
        Smallest gap (host cells) between two footprints along i or j.
    connected : dict
        ``{type: bool}``: the type's minority cells form one von Neumann component.
    """

    image: SyntheticImage
    clusters: list
    expected_counts: dict
    expected_patterns: dict
    host_composition: tuple
    truth_lattice: Lattice
    min_spacing_cells: int
    connected: dict = field(default_factory=dict)

    def observed(self, jitter_px: float = 0.0, label_error: float = 0.0, labels: str = "fine", seed: int = 0):
        """Visible columns as an analysis would see them: positions and labels.

        Parameters
        ----------
        jitter_px : float
            Std of Gaussian localisation error added to each coordinate (px).
        label_error : float
            Probability that a column's label is replaced by another label
            (drawn uniformly from the other labels present).
        labels : {"fine", "species"}
            Which truth labels to use.
        seed : int
            Random seed for jitter and label errors.

        Returns
        -------
        positions : ndarray (N, 2)
        labels : ndarray (N,) str
        n_label_errors : int
        """
        if labels not in ("fine", "species"):
            raise MotifLabError(f"labels must be 'fine' or 'species', got {labels!r}")
        tr = self.image.truth
        vis = tr.visible
        rng = np.random.default_rng(seed)
        pos = tr.positions[vis].copy()
        if jitter_px > 0:
            pos += rng.normal(0.0, jitter_px, pos.shape)
        lab = np.asarray(getattr(tr, labels))[vis].astype(str).copy()
        n_err = 0
        if label_error > 0:
            names = np.unique(lab)
            flip = rng.random(len(lab)) < label_error
            for k in np.flatnonzero(flip):
                others = names[names != lab[k]]
                if len(others):
                    lab[k] = others[rng.integers(len(others))]
                    n_err += 1
        return pos, lab, n_err


def _truth_lattice(img: SyntheticImage) -> Lattice:
    tr = img.truth
    u, v = np.asarray(img.lattice_vectors[0], float), np.asarray(img.lattice_vectors[1], float)
    metal = tr.sublattice == "metal"
    m = np.column_stack([u, v])
    o = np.median(tr.positions[metal] - tr.cell[metal] @ m.T, axis=0)
    # cell corner a third of the cell diagonal before the metal: metal at (1/3, 1/3),
    # its partner chalcogen (metal + (u+v)/3) at (2/3, 2/3)
    return Lattice(u=u, v=v, origin=o - (u + v) / 3.0, basis=[[1 / 3, 1 / 3], [2 / 3, 2 / 3]], method="truth")


def _truth_cell_compositions(img: SyntheticImage, labels: str = "fine"):
    tr = img.truth
    comp: dict = {}
    for (i, j), lab, vis in zip(map(tuple, tr.cell), getattr(tr, labels), tr.visible):
        d = comp.setdefault((int(i), int(j)), Counter())
        if vis:
            d[str(lab)] += 1
    return {k: tuple(sorted(v.items())) for k, v in comp.items()}


def make_planted(
    material: str = "MoSe2",
    shape: tuple[int, int] = (1024, 1024),
    counts: dict | None = None,
    spacing: int = 7,
    chalcogen_species: str | None = None,
    seed: int = 0,
    **tmd_kwargs,
) -> PlantedSample:
    """Render a TMD monolayer with planted, well separated defect clusters.

    Parameters
    ----------
    material : str
        A key of :data:`motiflab.datasets.TMD_MATERIALS`.
    shape : (int, int)
        Image shape in pixels.
    counts : dict, optional
        ``{type: n}`` for types in :data:`CLUSTER_TYPES`; default: as many as
        fit, spread evenly over the five types.
    spacing : int
        Pitch of the slot grid in cells (>= 7 keeps footprints >= 3 host cells
        apart).
    chalcogen_species : str, optional
        Content of a defective chalcogen column; default one atom of the
        chalcogen (e.g. ``"Se1"``).
    seed : int
        Seed for slot assignment and for :func:`make_tmd`.
    **tmd_kwargs
        Passed to :func:`make_tmd` (``pixel_size``, ``dose``, ``strain``,
        ``drift``, ``rotation``, ...). Random defect rates must stay 0 so the
        planted clusters are the only defects.

    Returns
    -------
    PlantedSample

    Raises
    ------
    MotifLabError
        Unknown cluster type, more clusters than slots, ``spacing < 7``, or
        random defect rates given.
    """
    if material not in TMD_MATERIALS:
        raise MotifLabError(f"unknown material {material!r}; choose one of {sorted(TMD_MATERIALS)}")
    if int(spacing) != spacing or spacing < 7:
        raise MotifLabError(f"spacing must be an integer >= 7 cells so clusters never touch, got {spacing!r}")
    spacing = int(spacing)
    for k in ("chalcogen_vacancy_rate", "metal_vacancy_rate", "dopant_rate"):
        if tmd_kwargs.get(k, 0):
            raise MotifLabError(f"{k} must be 0 for planted samples: random defects would break the expected counts")
    chalc = TMD_MATERIALS[material]["chalcogen"]
    spec = chalcogen_species or f"{chalc}1"

    base = make_tmd(material, shape=shape, seed=seed, **{**tmd_kwargs, "dose": None, "scan_noise": 0.0})
    tr = base.truth
    h, w = base.shape
    a_px = float(np.hypot(*base.lattice_vectors[0]))
    margin = 1.5 * a_px
    pos_of = {}
    for (i, j), sub, p in zip(map(tuple, tr.cell), tr.sublattice, tr.positions):
        pos_of[(int(i), int(j), str(sub))] = p

    def footprint(anchor, sites):
        cells = set()
        for (di, dj), sub in sites:
            c = (anchor[0] + di, anchor[1] + dj)
            cells.add(c)
            for n in tmd_neighbor_cells(c, sub):
                cells.add(tuple(n))
        return cells

    def fits(anchor, sites):
        fp = footprint(anchor, sites)
        ii = [c[0] for c in fp]
        jj = [c[1] for c in fp]
        for i in range(min(ii) - 2, max(ii) + 3):
            for j in range(min(jj) - 2, max(jj) + 3):
                for sub in ("metal", "chalcogen"):
                    p = pos_of.get((i, j, sub))
                    if p is None or not (margin <= p[0] <= h - 1 - margin and margin <= p[1] <= w - 1 - margin):
                        return False
        return True

    ci = tr.cell[:, 0]
    cj = tr.cell[:, 1]
    slots = []
    for i in range(int(ci.min()), int(ci.max()) + 1, spacing):
        for j in range(int(cj.min()), int(cj.max()) + 1, spacing):
            # every type must fit, so the slot can take any of them
            if all(fits((i, j), s) for s in CLUSTER_TYPES.values()):
                slots.append((i, j))
    rng = np.random.default_rng(seed)
    if counts is None:
        per = len(slots) // len(CLUSTER_TYPES)
        counts = {t: per for t in CLUSTER_TYPES}
    for t, n in counts.items():
        if t not in CLUSTER_TYPES:
            raise MotifLabError(f"unknown cluster type {t!r}; choose from {sorted(CLUSTER_TYPES)}")
        if int(n) != n or n < 0:
            raise MotifLabError(f"counts[{t!r}] must be a non-negative integer, got {n!r}")
    total = int(sum(counts.values()))
    if total > len(slots):
        raise MotifLabError(
            f"{total} clusters requested but only {len(slots)} slots fit a {h}x{w} image at a "
            f"spacing of {spacing} cells; use a larger shape or fewer clusters"
        )
    order = rng.permutation(len(slots))[:total]
    types = [t for t, n in counts.items() for _ in range(int(n))]
    clusters = []
    defects = []
    for t, k in zip(types, order):
        anchor = slots[k]
        sites = [((anchor[0] + di, anchor[1] + dj), sub) for (di, dj), sub in CLUSTER_TYPES[t]]
        clusters.append({"type": t, "anchor": anchor, "sites": sites, "footprint": footprint(anchor, CLUSTER_TYPES[t])})
        for c, sub in sites:
            defects.append((c, sub, "vacancy" if sub == "metal" else spec))
    img = make_tmd(material, shape=shape, seed=seed, defects=defects, **tmd_kwargs)

    comps = _truth_cell_compositions(img)
    host = Counter(comps.values()).most_common(1)[0][0]
    minority = {c for c, v in comps.items() if v != host}
    claimed = set()
    expected_patterns: dict = {}
    connected: dict = {}
    for cl in clusters:
        cells = sorted(c for c in cl["footprint"] if c in minority)
        cl["cells"] = cells
        claimed.update(cells)
        i0 = min(c[0] for c in cells)
        j0 = min(c[1] for c in cells)
        pat = sorted((c[0] - i0, c[1] - j0, comps[c]) for c in cells)
        prev = expected_patterns.setdefault(cl["type"], pat)
        if prev != pat:  # pragma: no cover - the generator is translation invariant
            raise MotifLabError(f"planted {cl['type']} clusters produced different patterns; report this bug")
        # von Neumann connectivity of the produced cells
        todo, seen = [cells[0]], {cells[0]}
        cs = set(cells)
        while todo:
            a, b = todo.pop()
            for n in ((a + 1, b), (a - 1, b), (a, b + 1), (a, b - 1)):
                if n in cs and n not in seen:
                    seen.add(n)
                    todo.append(n)
        connected[cl["type"]] = len(seen) == len(cells)
    stray = minority - claimed
    # minority cells outside footprints can only be frame-cut border cells
    for c in stray:
        ps = [pos_of.get((c[0], c[1], s)) for s in ("metal", "chalcogen")]
        if all(p is not None and margin <= p[0] <= h - 1 - margin and margin <= p[1] <= w - 1 - margin for p in ps):
            raise MotifLabError(f"unexpected minority cell {c} away from any planted cluster; report this bug")
    for cl in clusters:
        del cl["footprint"]
    return PlantedSample(
        image=img,
        clusters=clusters,
        expected_counts={t: int(n) for t, n in counts.items() if n > 0},
        expected_patterns=expected_patterns,
        host_composition=host,
        truth_lattice=_truth_lattice(img),
        min_spacing_cells=spacing - 4,
        connected=connected,
    )
