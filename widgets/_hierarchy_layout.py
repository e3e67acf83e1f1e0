"""The hierarchy diagram's layered layout: rows by level, few crossings, no overlaps.

A Sugiyama-style layout in three steps, each a plain function of the graph:
:func:`layers` puts every node in its level's row and gives a long edge a
placeholder slot in every row it crosses; :func:`order_rows` reorders the rows
by barycentre sweeps to cut crossings; :func:`place_rows` turns the order into
screen coordinates with room between pictures for the edges to pass.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TILE", "LABEL_H", "GAP_X", "GAP_Y", "MARGIN_L", "PAD", "DUMMY_W", "layers", "order_rows", "place_rows"]

#: node geometry in screen pixels (the figure's data units are screen pixels, so pictures stay square)
TILE = 68          # picture side
LABEL_H = 15       # count label under the picture
GAP_X = 18         # between nodes of a row
GAP_Y = 34         # between rows (room for the edges)
MARGIN_L = 128     # left margin holding the row labels
PAD = 10           # around everything
DUMMY_W = 14       # room a long edge takes where it crosses a row


def layers(rows, edges):
    """Sugiyama steps 1-2: one layer per drawn level, and a *dummy* node in every layer a long edge crosses.

    Returns
    -------
    layers : dict level -> list of keys
        Node ids (int) and dummies ``("d", edge_index, level)``, host first.
    chains : list of list of keys
        Each edge as the sequence of keys it passes through, smaller level first.
    """
    levels = sorted(rows)
    row_of = {m.id: lev for lev in levels for m in rows[lev]}
    layers = {lev: [m.id for m in rows[lev]] for lev in levels}
    chains = []
    for e, (a, b) in enumerate(edges):
        if row_of[a] > row_of[b]:
            a, b = b, a
        between = [lev for lev in levels if row_of[a] < lev < row_of[b]]
        chain = [a] + [("d", e, lev) for lev in between] + [b]
        for lev in between:
            layers[lev].append(("d", e, lev))
        chains.append(chain)
    return layers, chains


def order_rows(layers, chains, dominant=(), sweeps=6):
    """Sugiyama step 3: order each layer by the barycentre of its neighbours, sweeping down and up.

    Fewer crossings, and a long edge's dummies line up. The host stays first in
    its row (it is what a reader looks for first); a key with no neighbour in the
    adjacent layer keeps its place.
    """
    levels = sorted(layers)
    order = {lev: list(layers[lev]) for lev in levels}
    nbr: dict = {}
    for ch in chains:
        for a, b in zip(ch[:-1], ch[1:]):
            nbr.setdefault(a, []).append(b)
            nbr.setdefault(b, []).append(a)

    def sweep(seq):
        for prev, lev in zip(seq[:-1], seq[1:]):
            rank = {k: r for r, k in enumerate(order[prev])}
            keyed = []
            for r, k in enumerate(order[lev]):
                ps = [rank[j] for j in nbr.get(k, ()) if j in rank]
                keyed.append((float(np.mean(ps)) if ps else float(r), r, k))
            order[lev] = [k for _, _, k in sorted(keyed, key=lambda t: (t[0], t[1]))]
            host = [k for k in order[lev] if k in dominant]
            order[lev] = host + [k for k in order[lev] if k not in dominant]

    for _ in range(sweeps):
        sweep(levels)
        sweep(levels[::-1])
    return order


def place_rows(order):
    """Sugiyama step 4: screen-pixel centres of every key, rows packed left to right and centred.

    A node takes ``TILE + GAP_X`` pixels of its row and a dummy ``DUMMY_W``, so
    node boxes never touch and a long edge passes between pictures, not behind
    them. The figure's data units are screen pixels.
    """
    levels = sorted(order)
    if not levels:
        return {}, (0, 0)

    def width(k):
        return DUMMY_W if isinstance(k, tuple) else TILE + GAP_X

    row_w = {lev: sum(width(k) for k in order[lev]) for lev in levels}
    widest = max(row_w.values())
    pitch_y = TILE + LABEL_H + GAP_Y
    x_mid = MARGIN_L + PAD + widest / 2.0
    out = {}
    for r, lev in enumerate(levels):
        x = x_mid - row_w[lev] / 2.0
        for k in order[lev]:
            out[k] = (x + width(k) / 2.0, -(PAD + pitch_y * (r + 0.5)))
            x += width(k)
    return out, (MARGIN_L + 2 * PAD + widest, 2 * PAD + pitch_y * len(levels))


# ------------------------------------------------------------------------------ pictures
