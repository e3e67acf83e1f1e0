"""The motif colours: one map shared by HyperSpy markers, the explorer and the HTML report.

Motif ``k`` has the same colour everywhere it is drawn, and unassigned columns
(label −1) are the same grey.

The palette is colorcet's Glasbey palette (``glasbey_category10``): up to 256
colours chosen one after another to be as far as possible, perceptually, from
all the earlier ones, starting with the familiar category10 colours. A hand-made
list of 20 repeated after 20 motifs and had near-identical pairs well before
that. The greys, near-blacks and near-whites of the Glasbey list are dropped:
the markers are drawn on a grey-scale micrograph and grey means "unassigned".
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["UNASSIGNED", "motif_colors", "label_colors", "text_color", "luminance", "PALETTE"]

#: colour of unassigned columns (label −1)
UNASSIGNED = "#9e9e9e"

#: smallest chroma (max − min of the 0..1 RGB channels) a motif colour may have:
#: below it a colour reads as grey, black or white on a grey micrograph
_MIN_CHROMA = 0.25
#: relative-luminance window of a motif colour: the darkest Glasbey colours look black
#: next to the black marker outlines, the lightest look white
_LUMINANCE = (0.03, 0.85)


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(255 * float(c))):02x}" for c in rgb)


def _build_palette() -> tuple:
    import colorcet

    out = []
    for rgb in colorcet.glasbey_category10:
        rgb = np.asarray(rgb, dtype=np.float64)
        if rgb.max() - rgb.min() >= _MIN_CHROMA and _LUMINANCE[0] <= luminance(_hex(rgb)) <= _LUMINANCE[1]:
            out.append(_hex(rgb))
    return tuple(dict.fromkeys(out))  # distinct, order kept


def motif_colors(n: int) -> list:
    """Hex colours of motifs ``0 .. n-1``.

    Distinct for the first ``len(PALETTE)`` (over 150) motifs; none of them grey.
    """
    palette = _palette()
    return [palette[i % len(palette)] for i in range(int(n))]


def label_colors(labels, k: int | None = None) -> np.ndarray:
    """Hex colour of each label: motif ``i`` → ``motif_colors(k)[i]``, −1 → :data:`UNASSIGNED`."""
    labels = np.asarray(labels)
    if k is None:
        k = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    pal = np.array(motif_colors(max(k, 1)) + [UNASSIGNED])
    return pal[np.where((labels >= 0) & (labels < max(k, 1)), labels, len(pal) - 1)]


def luminance(color: str) -> float:
    """Relative luminance (WCAG 2, 0 = black … 1 = white) of a ``#rrggbb`` colour."""
    c = color.lstrip("#")
    rgb = np.array([int(c[j:j + 2], 16) for j in (0, 2, 4)], dtype=np.float64) / 255.0
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(lin @ np.array([0.2126, 0.7152, 0.0722]))


def text_color(background: str) -> str:
    """Black or white, whichever contrasts more with ``background`` (WCAG contrast ratio)."""
    y = luminance(background)
    # contrast with black is (y + 0.05) / 0.05, with white 1.05 / (y + 0.05); equal at y ≈ 0.179
    return "#000000" if (y + 0.05) / 0.05 >= 1.05 / (y + 0.05) else "#ffffff"


@functools.lru_cache(maxsize=1)
def _palette() -> tuple:
    # built on first use: importing colorcet imports matplotlib (~0.2 s), which an
    # analysis that draws nothing (``motiflab run``, a script) should not pay
    return _build_palette()


def __getattr__(name):
    if name == "PALETTE":  # the motif colours, in order (hex); motif ``k`` is ``PALETTE[k % len(PALETTE)]``
        return _palette()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
