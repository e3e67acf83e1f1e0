"""Rasterised rendering of many points (datashader) for the large-data explorer.

Above ~50k columns, one glyph per column makes the browser slow to draw and
the page heavy. The micrograph markers and the FR embedding are then drawn
as one RGBA image each: datashader aggregates, per pixel, the number of points
and the sums of their motif colours' red, green and blue; the pixel shows the
mean colour with an opacity that grows with the (log) count. Unlike
``count_cat`` + ``shade`` this costs the same for 5 or 500 motifs. Selection
keeps working because the per-column glyphs stay on the page (transparent)
for hit testing; see :class:`motiflab.widgets.views.ExplorerViews`.
"""
from __future__ import annotations

import numpy as np

from motiflab.colors import UNASSIGNED as GREY

__all__ = ["rasterize_points"]


def _rgb(colors):
    out = np.zeros((len(colors), 3), dtype=np.float64)
    for i, c in enumerate(colors):
        c = c.lstrip("#")
        out[i] = [int(c[j:j + 2], 16) for j in (0, 2, 4)]
    return out


def rasterize_points(x, y, labels, colors, x_range, y_range, width, height, spread=1, min_alpha=110):
    """RGBA raster of labelled points, coloured by label.

    Parameters
    ----------
    x, y : ndarray, shape (N,)
        Point coordinates (data units).
    labels : ndarray, shape (N,) int
        Class of each point, 0..K−1; −1 (unassigned) is drawn grey.
    colors : list of str
        Hex colour of each class 0..K−1.
    x_range, y_range : (float, float)
        Data extent of the raster.
    width, height : int
        Raster size in pixels.
    spread : int
        Grow every non-empty pixel into empty neighbours by this many pixels
        (isolated points stay visible).
    min_alpha : int
        Opacity (0–255) of a pixel holding one point; the densest pixel is opaque.

    Returns
    -------
    ndarray, shape (height, width) uint32
        Packed RGBA for Bokeh's ``image_rgba``; row 0 is at ``y_range[0]``.
    """
    import datashader as ds
    import pandas as pd

    labels = np.asarray(labels)
    rgb = _rgb(list(colors) + [GREY])
    col = rgb[np.where(labels >= 0, labels, len(colors))]
    df = pd.DataFrame({"x": np.asarray(x, dtype=np.float64), "y": np.asarray(y, dtype=np.float64),
                       "r": col[:, 0], "g": col[:, 1], "b": col[:, 2]})
    cvs = ds.Canvas(plot_width=int(width), plot_height=int(height), x_range=tuple(map(float, x_range)),
                    y_range=tuple(map(float, y_range)))
    agg = cvs.points(df, "x", "y", ds.summary(n=ds.count(), r=ds.sum("r"), g=ds.sum("g"), b=ds.sum("b")))
    n = np.nan_to_num(np.asarray(agg["n"].data, dtype=np.float64))
    ok = n > 0
    out = np.zeros(n.shape + (4,), dtype=np.uint8)
    if ok.any():
        for i, ch in enumerate("rgb"):
            s = np.nan_to_num(np.asarray(agg[ch].data, dtype=np.float64))
            out[..., i][ok] = np.clip(s[ok] / n[ok], 0, 255).astype(np.uint8)
        lg = np.log1p(n[ok])
        top = float(lg.max())
        a = min_alpha + (255 - min_alpha) * (lg - np.log1p(1.0)) / max(top - np.log1p(1.0), 1e-12)
        out[..., 3][ok] = np.clip(np.where(top > np.log1p(1.0), a, 255), 0, 255).astype(np.uint8)
    packed = out.view(np.uint32).reshape(n.shape)
    if spread:
        from scipy.ndimage import maximum_filter

        grown = maximum_filter(packed, size=2 * int(spread) + 1, mode="constant")
        packed = np.where(packed == 0, grown, packed)  # only empty pixels take a neighbour's colour
    return np.ascontiguousarray(packed)
