#!/usr/bin/env python
"""Strip outputs from the tutorial notebooks, or check that they are stripped.

The notebooks in ``notebooks/`` are stored without outputs: the test suite
executes them anyway, diffs stay readable, and the repository stays small.

Usage::

    python scripts/strip_notebooks.py            # strip notebooks/*.ipynb in place
    python scripts/strip_notebooks.py --check    # exit 1 (and list them) if any is not stripped
    python scripts/strip_notebooks.py a.ipynb b.ipynb

Stripping removes every output, every execution count and the per-cell
metadata that records a run (``execution``, ``collapsed``, ``scrolled``;
``tags`` are kept), and reduces the notebook metadata to ``kernelspec`` and
``language_info.name``. It never touches cell sources.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
#: per-cell metadata that only describes a past run
RUN_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")
#: notebook-level metadata worth keeping
KEEP_NB_METADATA = ("kernelspec",)


def strip(nb) -> bool:
    """Strip one notebook node in place; return True if anything changed.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A version-4 notebook.

    Returns
    -------
    bool
        Whether ``nb`` was modified.
    """
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            if cell.get("outputs"):
                cell.outputs = []
                changed = True
            if cell.get("execution_count") is not None:
                cell.execution_count = None
                changed = True
        for key in RUN_METADATA:
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    meta = {k: nb.metadata[k] for k in KEEP_NB_METADATA if k in nb.metadata}
    lang = nb.metadata.get("language_info", {}).get("name")
    if lang:
        meta["language_info"] = {"name": lang}
    if dict(nb.metadata) != meta:
        nb.metadata = nbformat.from_dict(meta)
        changed = True
    return changed


def needs_strip(path) -> bool:
    """True if the notebook at ``path`` is not stored stripped."""
    nb = nbformat.read(str(path), as_version=4)
    return strip(nb)


def default_paths() -> list[Path]:
    """Every notebook in ``notebooks/``."""
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="only report; exit 1 if any notebook is not stripped")
    args = ap.parse_args(argv)
    paths = args.paths or default_paths()
    dirty = []
    for p in paths:
        nb = nbformat.read(str(p), as_version=4)
        if strip(nb):
            dirty.append(p)
            if not args.check:
                nbformat.write(nb, str(p))
    if args.check:
        for p in dirty:
            print(f"{p}: has outputs or run metadata; run `python scripts/strip_notebooks.py`")
        return 1 if dirty else 0
    for p in dirty:
        print(f"stripped {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
