"""The motif colours: one map shared by HyperSpy markers, the explorer and the HTML report.

Motif ``k`` has the same colour everywhere it is drawn, and unassigned columns
(label −1) are the same grey.
"""
from __future__ import annotations

import numpy as np

__all__ = ["UNASSIGNED", "motif_colors", "label_colors"]

#: colour of unassigned columns (label −1)
UNASSIGNED = "#9e9e9e"

# categorical, distinguishable on a grey micrograph; none of them grey
_BASE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
         "#17becf", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
         "#3182bd", "#e6550d", "#31a354", "#756bb1", "#5254a3", "#9c9ede")


def motif_colors(n: int) -> list:
    """Hex colours of motifs ``0 .. n-1`` (they repeat after 20)."""
    return [_BASE[i % len(_BASE)] for i in range(int(n))]


def label_colors(labels, k: int | None = None) -> np.ndarray:
    """Hex colour of each label: motif ``i`` → ``motif_colors(k)[i]``, −1 → :data:`UNASSIGNED`."""
    labels = np.asarray(labels)
    if k is None:
        k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    pal = np.array(motif_colors(max(k, 1)) + [UNASSIGNED])
    return pal[np.where((labels >= 0) & (labels < max(k, 1)), labels, len(pal) - 1)]
