"""Interactive layer of motiflab: the notebook explorer and the standalone HTML report.

* :func:`explore` / :class:`Explorer` — ipywidgets controls + linked Bokeh views in JupyterLab
  (see :mod:`motiflab.widgets.explorer`);
* :func:`write_report` — the same views as one offline HTML file (:mod:`motiflab.widgets.report`);
* :class:`ExplorerViews` — the Bokeh views themselves (:mod:`motiflab.widgets.views`);
* :func:`assembly_view` — square motifs of a disordered sample and their entropy against null models
  (:mod:`motiflab.widgets._assembly_view`).

Tested together (see ``tests/test_widgets.py``, ``tests/browser/``): JupyterLab 4.6.6,
ipywidgets 8.1.9, jupyter_bokeh 4.1.0, Bokeh 3.9.2, datashader 0.19.1 (:data:`TESTED_VERSIONS`).
"""
from __future__ import annotations

__all__ = ["explore", "Explorer", "ExplorerViews", "write_report", "assembly_view", "TESTED_VERSIONS"]

#: the versions the explorer's browser tests ran with, pinned together
TESTED_VERSIONS = {
    "jupyterlab": "4.6.6",
    "ipywidgets": "8.1.9",
    "jupyter_bokeh": "4.1.0",
    "bokeh": "3.9.2",
    "datashader": "0.19.1",
}


def __getattr__(name):
    if name in ("explore", "Explorer"):
        from . import explorer

        return getattr(explorer, name)
    if name == "ExplorerViews":
        from .views import ExplorerViews

        return ExplorerViews
    if name == "write_report":
        from .report import write_report

        return write_report
    if name == "assembly_view":
        from ._assembly_view import assembly_view

        return assembly_view
    raise AttributeError(f"module 'motiflab.widgets' has no attribute {name!r}")
