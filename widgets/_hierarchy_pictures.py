"""The pictures of the hierarchy diagram: each motif-cell as the mean image of its occurrences.

:class:`NodePictures` cuts a motif-cell's occurrences from the micrograph (same
orientation only: rotated copies would blur), averages them, outlines the unit
cells and marks every column with its motif's colour (:func:`render`).
"""
from __future__ import annotations

import numpy as np

from motiflab.colors import UNASSIGNED, motif_colors

from ._hierarchy_layout import TILE

__all__ = ["MAX_AVERAGED", "NodePictures", "crop", "render"]

#: occurrences averaged into one picture
MAX_AVERAGED = 48


def crop(img, r0, c0, side):
    """``img[r0:r0+side, c0:c0+side]`` with NaN where the window leaves the image."""
    out = np.full((side, side), np.nan, np.float32)
    H, W = img.shape
    ra, rb, ca, cb = max(r0, 0), min(r0 + side, H), max(c0, 0), min(c0 + side, W)
    if ra < rb and ca < cb:
        out[ra - r0:rb - r0, ca - c0:cb - c0] = img[ra:rb, ca:cb]
    return out


def render(mean, box, polys, dots, frame=None):
    """The RGBA picture (TILE×TILE uint32, row 0 at the bottom for Bokeh) of one node.

    Parameters
    ----------
    mean : ndarray (S, S) or None
        Mean image of the occurrences (pixels of the crop ``box``).
    box : (r0, c0, S)
        The crop window in image pixels.
    polys : list of (k, 2) arrays
        Cell outlines, image ``(row, col)`` pixels.
    dots : list of ((row, col), colour)
        The columns of the reference occurrence.
    """
    from PIL import Image, ImageDraw

    r0, c0, S = box
    if mean is not None and np.isfinite(mean).any():
        m = np.where(np.isfinite(mean), mean, np.nanmedian(mean))
        lo, hi = np.percentile(m, [1.0, 99.5])
        g = (np.clip((m - lo) / (hi - lo + 1e-12), 0, 1) * 255).astype(np.uint8)
        im = Image.fromarray(g, mode="L").resize((TILE, TILE), Image.BILINEAR).convert("RGB")
        line = (255, 255, 255, 150)   # cell outlines: faint white on the dark-background micrograph
    else:
        im = Image.new("RGB", (TILE, TILE), (236, 236, 236))
        line = (60, 60, 60, 230)      # no image: the outlines are the picture
    d = ImageDraw.Draw(im, "RGBA")
    f = TILE / float(S)
    for p in polys:
        pts = [((c - c0) * f, (r - r0) * f) for r, c in p]
        d.polygon(pts, outline=line)
    rad = max(1.6, min(3.2, TILE / 22.0 * (8.0 / max(8.0, np.sqrt(len(dots)) * 2.5))))
    for (r, c), col in dots:
        x, y = (c - c0) * f, (r - r0) * f
        d.ellipse([x - rad, y - rad, x + rad, y + rad], fill=col, outline=(0, 0, 0, 200))
    if frame:
        d.rectangle([0, 0, TILE - 1, TILE - 1], outline=frame, width=2)
    rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)[::-1]
    return np.ascontiguousarray(rgba).view(np.uint32).reshape(TILE, TILE)


class NodePictures:
    """Pictures of the motif-cells of one hierarchy (bookkeeping shared by all nodes)."""

    def __init__(self, h, mot, image, positions):
        self.h = h
        self.image = None if image is None else np.asarray(image, dtype=np.float32)
        self.pos = positions
        self.labels = np.asarray(mot.labels, dtype=np.int64)
        self.colors = motif_colors(max(mot.n_motifs, 1))
        cells = np.asarray(h.cells, dtype=np.int64).reshape(-1, 2)
        self.row_of = {(int(i), int(j)): r for r, (i, j) in enumerate(cells)}
        self.cells = cells
        cc = np.asarray(h.column_cell, dtype=np.int64)
        self.usable = self.pos is not None and len(cc) == len(self.labels) == len(self.pos)
        if self.usable:
            ok = np.flatnonzero(cc >= 0)
            srt = ok[np.argsort(cc[ok], kind="stable")]
            bounds = np.searchsorted(cc[srt], np.arange(len(cells) + 1))
            self.cols_of_row = (srt, bounds)
        lat = h.lattice
        self.lattice = lat
        if lat is not None:
            self.u, self.v, self.o = (np.asarray(a, dtype=np.float64) for a in (lat.u, lat.v, lat.origin))
            self.cell_len = float(min(np.hypot(*self.u), np.hypot(*self.v)))
        elif self.usable and len(self.pos) > 1:
            from motiflab._validation import median_nn_distance

            self.cell_len = float(median_nn_distance(self.pos))
        else:
            self.cell_len = 10.0

    def columns_of(self, rows):
        if not self.usable:
            return np.zeros(0, np.int64)
        srt, b = self.cols_of_row
        return np.concatenate([srt[b[r]:b[r + 1]] for r in rows]) if len(rows) else np.zeros(0, np.int64)

    def occurrences(self, m):
        """Occurrences of ``m`` as lists of cells ``(i, j)`` (level 1: every cell with that composition)."""
        if m.level == 1 or not m.locations:
            rows = np.flatnonzero(np.asarray(self.h.cell_node) == m.id)
            if len(rows) > MAX_AVERAGED:  # an even, deterministic spread over the field of view
                rows = rows[np.linspace(0, len(rows) - 1, MAX_AVERAGED).round().astype(int)]
            return [[tuple(int(x) for x in self.cells[r])] for r in rows]
        return [[tuple(int(x) for x in c) for c in loc.get("cells", [])] for loc in m.locations]

    def picture(self, m):
        occ = [o for o in self.occurrences(m) if o and all(c in self.row_of for c in o)]
        frame = (40, 40, 40, 255) if m.dominant else None
        if not occ:
            return render(None, (0, 0, 1), [], [], frame)
        if self.lattice is not None:
            return self._lattice_picture(occ, frame)
        return self._free_picture(occ, frame)

    def _key(self, occ):
        """Occurrence shape up to translation, with each cell's composition: same key = same orientation."""
        a = np.array(occ)
        base = a.min(0)
        node = np.asarray(self.h.cell_node)
        return tuple(sorted((int(i - base[0]), int(j - base[1]), int(node[self.row_of[(i, j)]])) for i, j in occ)), \
            (int(base[0]), int(base[1]))

    def _lattice_picture(self, occ, frame):
        groups: dict = {}
        for o in occ:
            k, base = self._key(o)
            groups.setdefault(k, []).append(base)
        key = max(groups, key=lambda k: len(groups[k]))  # the most common orientation
        bases = groups[key][:MAX_AVERAGED]
        ref = np.array(bases[0], dtype=np.float64)
        ref_cells = [(int(ref[0]) + di, int(ref[1]) + dj) for di, dj, _ in key]
        corners = np.array([self.o + (i + s) * self.u + (j + t) * self.v
                            for i, j in ref_cells for s, t in ((0, 0), (1, 0), (1, 1), (0, 1))])
        lo, hi = corners.min(0), corners.max(0)
        pad = 0.2 * self.cell_len
        side = int(np.ceil(max(hi - lo) + 2 * pad))
        centre = (lo + hi) / 2.0
        r0, c0 = int(np.floor(centre[0] - side / 2)), int(np.floor(centre[1] - side / 2))
        mean = None
        if self.image is not None:
            crops = []
            for b in bases:
                shift = (b[0] - ref[0]) * self.u + (b[1] - ref[1]) * self.v
                crops.append(crop(self.image, r0 + int(round(shift[0])), c0 + int(round(shift[1])), side))
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(np.stack(crops), axis=0)
        polys = [corners[4 * q:4 * q + 4] for q in range(len(ref_cells))]
        rows = [self.row_of[c] for c in ref_cells]
        dots = self._dots(rows)
        return render(mean, (r0, c0, side), polys, dots, frame)

    def _free_picture(self, occ, frame):
        """Voronoi cells: no lattice to align occurrences, so one real example (level 1: the mean of
        single-column crops, which need no alignment)."""
        rows = [self.row_of[c] for c in occ[0]]
        cols = self.columns_of(rows)
        if not len(cols):
            return render(None, (0, 0, 1), [], [], frame)
        p = self.pos[cols]
        lo, hi = p.min(0) - 0.7 * self.cell_len, p.max(0) + 0.7 * self.cell_len
        side = int(np.ceil(max(hi - lo)))
        centre = (lo + hi) / 2.0
        r0, c0 = int(np.floor(centre[0] - side / 2)), int(np.floor(centre[1] - side / 2))
        mean = None
        if self.image is not None:
            if len(occ[0]) == 1 and len(occ) > 1:
                crops = []
                for o in occ[:MAX_AVERAGED]:
                    cc = self.columns_of([self.row_of[o[0]]])
                    if len(cc):
                        d = self.pos[cc[0]] - self.pos[cols[0]]
                        crops.append(crop(self.image, r0 + int(round(d[0])), c0 + int(round(d[1])), side))
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(np.stack(crops), axis=0)
            else:
                mean = crop(self.image, r0, c0, side)
        return render(mean, (r0, c0, side), [], self._dots(rows), frame)

    def _dots(self, rows):
        cols = self.columns_of(rows)
        if not len(cols):
            return []
        out = []
        for c in cols:
            k = int(self.labels[c])
            out.append((tuple(self.pos[c]), self.colors[k] if 0 <= k < len(self.colors) else UNASSIGNED))
        return out


# ------------------------------------------------------------------------------ diagram data
