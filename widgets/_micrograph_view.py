"""The micrograph view of :class:`~motiflab.widgets.views.ExplorerViews`.

The image on calibrated axes (row 0 at the top) with an intensity colour bar and
a scale bar in the axes' units (in a blank strip below the image, so it covers
no data), the column markers coloured by motif (drawn from the shared
``"columns"`` source), their datashaded raster for large data and the
candidates column finding rejected.

Wheel zoom is available but not active: on a notebook or report page the wheel
scrolls the page until the user picks the tool or clicks the plot
(:func:`wheel_zoom_on_click`).
"""
from __future__ import annotations

import numpy as np

from ._images import downsample_image, robust_uint8

__all__ = ["TOOLS", "HOVER_LIMIT", "SCALE_TICKS", "MicrographView", "add_scale_bar", "wheel_zoom_on_click",
           "scale_bar_length"]

#: tools of the two point views (micrograph, embedding): box/lasso select the columns
TOOLS = "pan,wheel_zoom,box_select,lasso_select,tap,reset,save"
#: hover on the point views lists at most this many columns (with their thumbnails): in a tight
#: cluster of the layout dozens of points are under the cursor and the tooltip left the screen
HOVER_LIMIT = 3
#: lengths the scale bar may take, in the axes' units (it picks the one nearest a fifth of the view)
SCALE_TICKS = [0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000]
#: height of the blank strip below the image that holds the scale bar, as a fraction of the image height
SCALE_STRIP = 0.09


def wheel_zoom_on_click(fig):
    """Leave ``fig``'s wheel zoom inactive until the plot is clicked (or the tool chosen).

    An active wheel zoom captures the mouse wheel, so a user scrolling the
    notebook or report zooms whichever plot passes under the cursor.
    """
    from bokeh.events import Tap
    from bokeh.models import CustomJS, WheelZoomTool

    fig.toolbar.active_scroll = None
    wz = [t for t in fig.tools if isinstance(t, WheelZoomTool)]
    if wz:
        fig.js_on_event(Tap, CustomJS(args=dict(wz=wz[0]), code="wz.active = true;"))


def scale_bar_length(span, fraction=0.2):
    """The scale-bar length (axes units) Bokeh's adaptive sizing picks for a view ``span`` wide.

    The Python twin of BokehJS ``Dimensional.compute`` over :data:`SCALE_TICKS`
    with a single unit: the smallest tick above ``fraction * span`` (the largest
    tick when none is).
    """
    import bisect

    i = bisect.bisect_right(SCALE_TICKS, fraction * float(span))
    return SCALE_TICKS[min(i, len(SCALE_TICKS) - 1)]


class MicrographView:
    """Mixin of :class:`~motiflab.widgets.views.ExplorerViews` building the micrograph.

    Uses the host's ``calibration``, ``image_shape``, ``width``, ``source`` and
    ``_tooltip``; sets ``micrograph`` (the figure), ``image_source``,
    ``image_factor``, ``marker_raster_source``, ``marker_raster``, ``markers``,
    ``micro_hover``, ``rejected_source`` and ``rejected``.
    """

    def _image_extent(self):
        """Calibrated ``(x0, y0, width, height)`` of the image, outer pixel edges included."""
        cal = self.calibration
        h, w = self.image_shape
        x0, y0 = cal.offset[1] - 0.5 * cal.scale, cal.offset[0] - 0.5 * cal.scale
        return x0, y0, w * cal.scale, h * cal.scale

    def _build_micrograph(self, image):
        from bokeh.models import BasicTickFormatter, ColorBar, ColumnDataSource, HoverTool, LinearColorMapper
        from bokeh.plotting import figure
        from bokeh.transform import transform

        from ._motif_views import motif_label_formatter

        cal = self.calibration
        x0, y0, dw, dh = self._image_extent()
        h, w = self.image_shape
        width = self.width
        # a blank strip below the image holds the scale bar (Bokeh cannot draw one outside the frame)
        strip = SCALE_STRIP * dh if cal.calibrated else 0.0
        # the toolbar above and the colour bar below, so the side-by-side views fit a laptop screen
        # next to the controls; frame ≈ width − 60 px (y axis), + 165 px of toolbar, title, x axis, bar
        frame_w = max(100, width - 60)
        fig = figure(width=width, height=max(200, int(frame_w * (dh + strip) / dw) + 165), match_aspect=True,
                     title="Micrograph", x_range=(x0, x0 + dw),
                     y_range=(y0 + dh + strip, y0),  # image convention: row 0 at the top
                     tools=TOOLS, active_drag="box_select", toolbar_location="above",
                     x_axis_label=f"x ({cal.units})", y_axis_label=f"y ({cal.units})", name="micrograph")
        wheel_zoom_on_click(fig)
        small, self.image_factor = downsample_image(image)
        lo, hi = (float(v) for v in np.percentile(np.asarray(small, np.float32), [0.5, 99.8]))
        self.image_source = ColumnDataSource(dict(image=[robust_uint8(small, 0.5, 99.8)], x=[x0], y=[y0],
                                                  dw=[dw], dh=[dh]), name="micrograph_image")
        # with the reversed y range, row 0 of the array is drawn at y0, i.e. at the top; the image is
        # shipped as uint8 (0..255 ↔ the 0.5–99.8 % intensity range), the colour bar shows that range
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.image_source, level="image",
                  color_mapper=LinearColorMapper(palette="Greys256", low=0, high=255))
        self.intensity_bar = ColorBar(color_mapper=LinearColorMapper(palette="Greys256", low=lo, high=hi),
                                      title="image intensity", orientation="horizontal", height=10, padding=6,
                                      name="intensity_colorbar", title_standoff=4,
                                      formatter=BasicTickFormatter(precision=3, power_limit_high=5))
        fig.add_layout(self.intensity_bar, "below")
        self.marker_raster_source = ColumnDataSource(dict(image=[], x=[], y=[], dw=[], dh=[]), name="marker_raster")
        self.marker_raster = fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh",
                                            source=self.marker_raster_source, visible=False, name="marker_raster_r")
        self.markers = fig.scatter("x", "y", source=self.source, size=6,
                                   fill_color=transform("motif", self.motif_mapper), line_color="black",
                                   line_width=0.3, fill_alpha=0.85, line_alpha=0.85, selection_fill_alpha=1.0,
                                   selection_line_alpha=1.0, selection_line_color="white",
                                   nonselection_fill_alpha=0.12, nonselection_line_alpha=0.12,
                                   name="columns_on_micrograph")
        self.micro_hover = HoverTool(renderers=[self.markers], tooltips=self._tooltip(True), name="micro_hover",
                                     limit=HOVER_LIMIT, formatters={"@motif": motif_label_formatter()})
        fig.add_tools(self.micro_hover)
        # the candidates column finding rejected (noise maxima, faint ripple), off until asked for
        self.rejected_source = ColumnDataSource(dict(x=[], y=[], q=[]), name="rejected")
        self.rejected = fig.scatter("x", "y", source=self.rejected_source, marker="x", size=7, line_width=1.5,
                                    line_color="#ff00ff", visible=False, name="rejected_candidates")
        fig.add_tools(HoverTool(renderers=[self.rejected], name="rejected_hover",
                                tooltips='<div class="motiflab-tip">rejected candidate: @q{0.0} noise units '
                                         '(a column needs the peak-significance threshold, or a lattice site)</div>'))
        fig.grid.visible = False
        add_scale_bar(fig, cal)
        self.micrograph = fig


def add_scale_bar(fig, cal):
    """A scale bar on ``fig``, in the axes' own units, when the calibration has physical units.

    Its only unit is ``cal.units``: with Bokeh's metric prefixes a bar on nm axes
    read "750 pm". It sits bottom-right, in the blank strip the micrograph keeps
    below the image.
    """
    from bokeh.models import Metric, ScaleBar

    if not cal.calibrated:
        return None
    # the axes' unit is the metric's base unit and its only allowed unit (factor 1): the bar's length
    # is one of SCALE_TICKS in that unit, also below 1 (a "0.5 nm" bar on a small crop)
    dim = Metric(base_unit=cal.units, include=[cal.units], ticks=SCALE_TICKS)
    bar = ScaleBar(range=fig.x_range, unit=cal.units, dimensional=dim, location="bottom_right",
                   bar_length=0.2, length_sizing="adaptive", background_fill_alpha=0.0, border_line_alpha=0.0,
                   label_text_font_size="11px", name="scale_bar")
    fig.add_layout(bar)
    return bar
