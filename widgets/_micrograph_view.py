"""The micrograph view of :class:`~motiflab.widgets.views.ExplorerViews`.

The image on calibrated axes (row 0 at the top) with a scale bar, the column
markers coloured by motif (drawn from the shared ``"columns"`` source), their
datashaded raster for large data and the candidates column finding rejected.
"""
from __future__ import annotations

from ._images import downsample_image, robust_uint8

__all__ = ["TOOLS", "MicrographView", "add_scale_bar"]

#: tools of the two point views (micrograph, embedding): box/lasso select the columns
TOOLS = "pan,wheel_zoom,box_select,lasso_select,tap,reset,save"


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
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.plotting import figure

        cal = self.calibration
        x0, y0, dw, dh = self._image_extent()
        h, w = self.image_shape
        width = self.width
        fig = figure(width=width, height=max(200, int(width * h / w)), match_aspect=True, title="Micrograph",
                     x_range=(x0, x0 + dw), y_range=(y0 + dh, y0),  # image convention: row 0 at the top
                     tools=TOOLS, active_scroll="wheel_zoom", active_drag="box_select",
                     x_axis_label=f"x ({cal.units})", y_axis_label=f"y ({cal.units})", name="micrograph")
        small, self.image_factor = downsample_image(image)
        self.image_source = ColumnDataSource(dict(image=[robust_uint8(small, 0.5, 99.8)], x=[x0], y=[y0],
                                                  dw=[dw], dh=[dh]), name="micrograph_image")
        # with the reversed y range, row 0 of the array is drawn at y0, i.e. at the top
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.image_source,
                  palette="Greys256", level="image")
        self.marker_raster_source = ColumnDataSource(dict(image=[], x=[], y=[], dw=[], dh=[]), name="marker_raster")
        self.marker_raster = fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh",
                                            source=self.marker_raster_source, visible=False, name="marker_raster_r")
        self.markers = fig.scatter("x", "y", source=self.source, size=6, fill_color="color", line_color="black",
                                   line_width=0.3, fill_alpha=0.85, line_alpha=0.85, selection_fill_alpha=1.0,
                                   selection_line_alpha=1.0, selection_line_color="white",
                                   nonselection_fill_alpha=0.12, nonselection_line_alpha=0.12,
                                   name="columns_on_micrograph")
        self.micro_hover = HoverTool(renderers=[self.markers], tooltips=self._tooltip(True), name="micro_hover")
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
    """A scale bar on ``fig`` when the calibration has physical units."""
    from bokeh.models import Metric, ScaleBar

    if not cal.calibrated:
        return
    try:
        dim = Metric(base_unit="m") if cal.units in ("nm", "µm", "pm", "mm", "m") else Metric(base_unit=cal.units)
        fig.add_layout(ScaleBar(range=fig.x_range, unit=cal.units, dimensional=dim, location="bottom_right",
                                bar_length=0.2, name="scale_bar"))
    except Exception:  # exotic units Bokeh cannot scale: the axes stay calibrated without a bar
        pass
