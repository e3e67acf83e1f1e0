"""The FR layout's force schedule: the stages' forces and how the learning rate relaxes within a stage.

:class:`ForceStage` holds one stage's attraction/repulsion strengths and decay
exponents (the paper's ``{alpha, beta, n, m}``) and its largest learning rate;
:data:`PAPER_STAGES` are the paper's two stages; :func:`schedule_factors` gives
the per-iteration learning-rate factors of a stage. :mod:`motiflab.layout`
(the estimator) and :mod:`motiflab.placement` (out-of-sample points) use them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import MotifLabError

#: How pair forces are applied unless a layout says otherwise: along the pair's difference
#: vector (``"unit"``: along the unit vector); see :class:`motiflab.layout.FRLayout`.
DEFAULT_FORCE_FORM = "vector"
#: The paper's iterations of the FR layout (200) and the fraction of them in stage 1 (0.5).
DEFAULT_N_ITER = 200
DEFAULT_STAGE_SPLIT = 0.5

__all__ = ["ForceStage", "PAPER_STAGES", "schedule_factors"]


@dataclass(frozen=True)
class ForceStage:
    """Force parameters of one stage of the FR layout.

    Parameters
    ----------
    alpha : float
        Attraction strength (>= 0).
    beta : float
        Repulsion strength (>= 0).
    n : float
        Attraction decay exponent: coefficient ``alpha / (1 + d**n)``.
        ``n = 0`` gives linear springs, ``n = 2`` a short-ranged pull.
    m : float
        Repulsion decay exponent: coefficient ``beta / (1 + d**m)``.
        Small ``m`` is long-ranged (global dilation), large ``m`` short-ranged.
    learning_rate : float, default 1.0
        Maximum learning rate (step multiplier) of this stage; it is relaxed
        (decayed) within the stage by ``FRLayout.learning_rate_schedule``.
        A synchronous step moves a point ``learning_rate * c`` of the way to
        its neighbours' weighted mean, ``c`` being the short-range attraction
        coefficient (``alpha / 2`` for ``n = 0``, ``alpha`` for ``n > 0``);
        above ~1 the step overshoots.  Starting a stage above that and
        decaying below it works like annealing (fragments of one class merge
        before the layout freezes); ``FRLayout.max_step`` bounds every move.
    """

    alpha: float
    beta: float
    n: float
    m: float
    learning_rate: float = 1.0


#: The paper's defaults (Materials and Methods, "FR clustering"):
#: repulsion-dominated ``{alpha=1, beta=1, n=0, m=2}`` then attraction-dominated
#: ``{alpha=5, beta=1, n=2, m=5}``.  The maximum learning rates (4 and 1.5) are
#: ours, chosen by experiment for the synchronous update: on imbalanced 66-D
#: mixtures they were the most robust of {1, 2, 4} x {0.6, 1, 1.5} (HDBSCAN
#: ARI >= 0.99 on six 3 000-point mixtures from 100 iterations on, and on
#: 20 000 / 100 000 points at 200); smaller second-stage rates left large
#: classes in several fragments.
PAPER_STAGES = (
    ForceStage(1.0, 1.0, 0.0, 2.0, learning_rate=4.0),
    ForceStage(5.0, 1.0, 2.0, 5.0, learning_rate=1.5),
)


def schedule_factors(schedule, n):
    """Learning-rate factors (max 1) for the ``n`` iterations of one stage."""
    if n <= 0:
        return np.zeros(0)
    t = np.arange(n, dtype=np.float64) / n  # progress within the stage, [0, 1)
    if callable(schedule):
        f = np.array([float(schedule(float(x))) for x in t])
    elif schedule == "linear":
        f = 1.0 - t
    elif schedule == "cosine":
        f = 0.5 * (1.0 + np.cos(np.pi * t))
    elif schedule == "constant":
        f = np.ones(n)
    else:
        raise MotifLabError(
            f"learning_rate_schedule must be 'linear', 'cosine', 'constant' or a callable "
            f"progress -> factor; got {schedule!r}."
        )
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        raise MotifLabError("learning_rate_schedule must return finite, non-negative factors.")
    return f
