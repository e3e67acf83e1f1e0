"""Plain-language warnings when a result looks wrong, with what to try.

A microscopist whose detection over- or under-shoots should not have to guess
which knob to turn. :func:`detection_warnings` reads what the stages already
measured (rejected candidates, lattice sites, each motif's share of columns
off the lattice) and returns sentences for the explorer's status line, the
command line summary and the report.
"""
from __future__ import annotations

import numpy as np

__all__ = ["detection_warnings"]

#: rejected candidates per accepted column above which the background is busy
REJECTED_SHARE = 0.25
#: a motif whose columns are mostly off the crystal's sites is suspect above this share
OFF_LATTICE_SHARE = 0.5


def detection_warnings(an) -> list:
    """Sentences naming what looks wrong in an analysis' columns and motifs, and what to try.

    Only stages already computed are read; nothing is computed here.

    Parameters
    ----------
    an : motiflab.Analysis

    Returns
    -------
    list of str
        Empty when nothing looks wrong.
    """
    out = []
    if not an.is_cached("columns"):
        return out
    cols = an.columns
    n = len(cols)
    threshold = an.params["threshold"]
    if n and cols.n_rejected > REJECTED_SHARE * n:
        out.append(f"{cols.n_rejected} peaks between the accepted columns ({cols.n_rejected / n:.0%} as many as "
                   f"columns) were rejected as noise or background: if columns are missing, lower the threshold "
                   f"(now {threshold:g} σ); if they are real, the image may hold a second phase.")
    lattice = cols.lattice_vectors is not None
    if not lattice and an.params["lattice"] == "auto" and n >= 20:
        out.append("no crystal lattice was found: every column stands on its own evidence. At low dose, faint "
                   "columns may be missing; give spacing= if the crystal repeat is known.")
    if lattice and an.is_cached("patches") and an.is_cached("motifs"):
        on = np.asarray(cols.on_lattice)[an.patches.index]
        labels = an.motifs.labels
        for k in range(an.motifs.n_motifs):
            member = labels == k
            off = 1.0 - float(on[member].mean()) if member.any() else 0.0
            if off > OFF_LATTICE_SHARE and member.sum() >= 3:
                out.append(f"motif #{k} ({int(member.sum())} columns): {off:.0%} of its columns are off the crystal's "
                           "lattice sites, so it may be noise or contamination; raise the threshold or "
                           "min_contrast, or merge it in the Curation tab.")
    return out
