"""Synthetic atomic-resolution STEM images with per-column ground truth.

* :func:`make_tmd` - 2H transition-metal dichalcogenide monolayers (MoSe2, WS2, ...)
  with chalcogen / metal vacancies, substitutional dopants and explicitly planted
  defects; truth includes the environment classes ``Mo#1..3`` of Dan et al. (2022).
* :func:`make_perovskite` - ABO3 perovskites along [001] in ADF or ABF contrast.
* :func:`load_sample` - the fixed built-in MoSe2 sample (motiflab's default input).

Every generator returns a :class:`SyntheticImage` (image, pixel size, lattice
vectors, parameters) whose :class:`ColumnTruth` lists every column site in the
frame. Images with a ``dose`` are Poisson counts with mean ``dose`` electrons per
pixel; without one they are noise-free and normalised to a mean of 1.
"""
from ._elements import ELEMENTS, atomic_number
from ._synthetic_image import ColumnTruth, SyntheticImage
from .perovskite import make_perovskite
from .mixtures import make_mixture
from .moire import MoireImage, make_moire
from .planted import CLUSTER_TYPES, PlantedSample, make_planted, pattern_key
from .tilings import PentagonTiling, SquareUnits, make_pentagon_tiling, make_square_units, preferred_level2_probs
from .tmd import TMD_MATERIALS, load_sample, make_tmd, oriented_classes, tmd_neighbor_cells

__all__ = [
    "CLUSTER_TYPES",
    "MoireImage",
    "PentagonTiling",
    "PlantedSample",
    "SquareUnits",
    "make_mixture",
    "make_moire",
    "make_pentagon_tiling",
    "make_planted",
    "make_square_units",
    "pattern_key",
    "preferred_level2_probs",
    "ColumnTruth",
    "SyntheticImage",
    "ELEMENTS",
    "TMD_MATERIALS",
    "atomic_number",
    "load_sample",
    "make_perovskite",
    "make_tmd",
    "oriented_classes",
    "tmd_neighbor_cells",
]
