"""The self-contained HTML report written by ``motiflab demo`` and ``motiflab run --report``.

It is the explorer's Bokeh layout (:class:`motiflab.widgets.views.ExplorerViews`)
without the ipywidgets controls. Bokeh resources are inlined
(``bokeh.resources.INLINE``): microscope PCs are often offline, and a page that
loads BokehJS from a CDN renders blank there. Linked selection, hover
thumbnails, the selection mean, clicking motifs / hierarchy nodes and the FR
playback all run in the browser, with no kernel. The header's "How this was
made" section records the parameters, curation edits, input file and SHA-256,
motiflab version and date (:func:`motiflab.widgets.views.provenance_html`).
"""
from __future__ import annotations

from pathlib import Path

from motiflab.errors import MotifLabError
from motiflab.parameters import DEFAULTS

from . import views

__all__ = ["build_report", "write_report", "hierarchy_of", "write_html"]

#: the hierarchy diagram is built up to this many columns (the ``hierarchy_max_columns`` parameter's default)
HIERARCHY_MAX_COLUMNS = DEFAULTS["hierarchy_max_columns"]


def hierarchy_of(an):
    """The analysis' motif-cell hierarchy (:attr:`motiflab.Analysis.hierarchy`), or why there is none.

    The hierarchy is the analysis' own cached stage, so the report, the
    explorer and ``motiflab run --hierarchy`` show the same one. When the stage
    refuses (no lattice, too few cells, more columns than
    ``hierarchy_max_columns``) the diagram shows the reason instead.

    Returns
    -------
    motiflab.hierarchy.Hierarchy or str
    """
    try:
        return an.hierarchy
    except MotifLabError as exc:
        return f"no hierarchy: {str(exc).split('; ')[0][:120]}"


def build_report(an, thumbnails=True, datashade_above=views.DATASHADE_ABOVE):
    """The report's :class:`~motiflab.widgets.views.ExplorerViews` for a computed analysis."""
    # responsive: the report fills the page's width (a fixed layout used 950 of 1600 px)
    v = views.ExplorerViews(an.image, an.calibration, thumbnails=thumbnails, datashade_above=datashade_above,
                            responsive=True)
    v.update(an, hierarchy=hierarchy_of(an))
    return v


def write_html(doc_html, path, overwrite=False, inputs=()) -> Path:
    """Write an HTML string atomically (:func:`motiflab.files.write_atomic`; never half-written)."""
    from motiflab.files import write_atomic

    return write_atomic(path, lambda f: f.write(doc_html), overwrite, inputs=inputs, binary=False)


def write_report(an, path, overwrite=False, title="motiflab report", **kwargs):
    """Write the standalone report of ``an`` to ``path`` (refuses to overwrite unless ``overwrite``).

    Parameters
    ----------
    an : motiflab.Analysis
        The analysis (computed here if it is not yet).
    path : str or Path
        HTML file to write.
    overwrite : bool
        Replace an existing file.
    title : str
        Page title.
    **kwargs
        Passed to :func:`build_report` (``thumbnails``, ``datashade_above``).

    Returns
    -------
    pathlib.Path
    """
    from motiflab.files import check_writable

    check_writable(path, overwrite, inputs=an.input_files())  # fail before the work
    return write_html(build_report(an, **kwargs).html(title=title), path, overwrite=overwrite,
                      inputs=an.input_files())
