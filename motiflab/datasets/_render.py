"""Former home of the generators' shared machinery, kept so its names still import from here.

The machinery now lives in modules named after what they do; new code should
import from those:

* :mod:`._elements` -- the periodic table and column content formulas
  (:data:`ELEMENTS`, :func:`atomic_number`, :func:`parse_column`, ...);
* :mod:`._synthetic_image` -- the result types :class:`ColumnTruth` and
  :class:`SyntheticImage`;
* :mod:`._checks` -- input validation (``check_*``);
* :mod:`._lattice_frame` -- lattice cells, drift and the shared
  :class:`~._lattice_frame.LatticeFrame` of the lattice generators;
* :mod:`._optics` -- the probe and the noise-free renderer;
* :mod:`._shot_noise` -- normalisation, Poisson counts and random streams.
"""
from __future__ import annotations

from . import _checks, _elements, _lattice_frame, _optics, _shot_noise, _synthetic_image
# A compatibility facade: each module's public names, through its __all__.
from ._checks import *  # noqa: F401,F403
from ._elements import *  # noqa: F401,F403
from ._lattice_frame import *  # noqa: F401,F403
from ._optics import *  # noqa: F401,F403
from ._shot_noise import *  # noqa: F401,F403
from ._synthetic_image import *  # noqa: F401,F403

__all__ = [
    name
    for module in (_checks, _elements, _lattice_frame, _optics, _shot_noise, _synthetic_image)
    for name in module.__all__
]
