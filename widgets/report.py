"""The self-contained HTML report written by ``motiflab demo`` and ``motiflab run --report``.

It is the explorer's Bokeh layout (:class:`motiflab.widgets.views.ExplorerViews`)
without the ipywidgets controls. Bokeh resources are inlined
(``bokeh.resources.INLINE``): microscope PCs are often offline, and a page that
loads BokehJS from a CDN renders blank there. Linked selection, hover
thumbnails, the selection mean, clicking motifs / hierarchy nodes and the FR
playback all run in the browser, with no kernel.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from . import views

__all__ = ["build_report", "write_report", "hierarchy_of", "write_html"]

#: the hierarchy diagram is built up to this many columns (it is a whole-image analysis)
HIERARCHY_MAX_COLUMNS = 100_000


def hierarchy_of(an, max_columns=HIERARCHY_MAX_COLUMNS):
    """The motif-cell hierarchy of an analysis' current motifs, or a short reason why there is none.

    Returns
    -------
    motiflab.hierarchy.Hierarchy or str
    """
    n = len(an.positions)
    if n > max_columns:
        return f"hierarchy skipped above {max_columns} columns"
    try:
        from motiflab.hierarchy import build_hierarchy

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build_hierarchy(an.positions, an.motifs.labels)
    except Exception as exc:  # no lattice found, too few cells, ...: the diagram falls back to counts
        return f"no hierarchy: {str(exc).split('.')[0][:80]}"


def build_report(an, thumbnails=True, datashade_above=views.DATASHADE_ABOVE):
    """The report's :class:`~motiflab.widgets.views.ExplorerViews` for a computed analysis."""
    v = views.ExplorerViews(an.image, an.calibration, thumbnails=thumbnails, datashade_above=datashade_above)
    v.update(an, hierarchy=hierarchy_of(an))
    return v


def write_html(doc_html, path, overwrite=False) -> Path:
    """Write an HTML string next to ``path`` first, then move it in place (never half-written)."""
    from motiflab.files import write_atomic

    return write_atomic(path, lambda f: f.write(doc_html), overwrite, binary=False)


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

    check_writable(path, overwrite)  # fail before the work
    return write_html(build_report(an, **kwargs).html(title=title), path, overwrite=overwrite)
