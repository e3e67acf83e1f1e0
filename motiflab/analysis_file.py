"""Whole-analysis files: save an analysis as HyperSpy HDF5 (``.hspy``) and open it again, stages and all.

A curated analysis is hours of work; :func:`save_analysis` keeps all of it in one
file that HyperSpy itself opens as the calibrated image:

* the image (float32, as analysed) with its calibration and title;
* the parameters, the curation edits (the undo history), the log of stage timings;
* every computed stage: columns with their quality and noise model, patch size,
  patches, features, neighbour graph, the FR layout with its playback
  snapshots, motifs with class averages, and the hierarchy;
* provenance: motiflab and library versions, the input file's name and SHA-256,
  when it was made; and a format version.

Everything lives under ``signal.metadata.motiflab``: arrays as HDF5 datasets,
everything else as JSON text. Result objects are rebuilt from an allow-list of
motiflab's own classes by their field names; nothing is ever unpickled, so
opening a file from someone else runs no code from it.

:func:`open_analysis` returns an :class:`~motiflab.Analysis` with every saved
stage cached, so :func:`motiflab.explore` shows exactly what was saved without
recomputing; changing a parameter recomputes from there as usual.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .errors import InputFileError, MotifLabError

__all__ = ["FORMAT_VERSION", "save_analysis", "open_analysis", "json_ready", "from_json_ready"]

#: version of the layout under ``metadata.motiflab``; bump it (and add a migration) when it changes
FORMAT_VERSION = 1
#: how an older format version becomes the current one (none yet: 1 is the first)
_MIGRATIONS: dict = {}
_TYPE = "motiflab_type"


def _classes() -> dict:
    """The result classes a file may name (an allow-list: nothing else is ever built from a file)."""
    from .columns import Columns
    from .hierarchy import Hierarchy, MotifCell
    from .lattice import Lattice
    from .motifs import Motifs
    from .noise import NoiseModel
    from .patches import Patches, PatchSizeEstimate
    from .stages import Features, Layout

    return {c.__name__: c for c in (Columns, NoiseModel, PatchSizeEstimate, Patches, Features, Layout, Motifs,
                                    Hierarchy, MotifCell, Lattice)}


# ---------------------------------------------------------------------------- encoding


def json_ready(x):
    """``x`` as JSON-ready values (the inverse is :func:`from_json_ready`), tagging what JSON would lose (tuples, small arrays, result objects)."""
    if isinstance(x, (str, bool, int, float)) or x is None:
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple):
        return {"__tuple__": [json_ready(v) for v in x]}
    if isinstance(x, list):
        return [json_ready(v) for v in x]
    if isinstance(x, dict):
        if all(isinstance(k, str) for k in x):
            return {k: json_ready(v) for k, v in x.items()}
        return {"__items__": [[json_ready(k), json_ready(v)] for k, v in x.items()]}
    if isinstance(x, np.ndarray):
        return {"__array__": json_ready(x.tolist()), "dtype": x.dtype.str, "shape": list(x.shape)}
    if dataclasses.is_dataclass(x) and type(x).__name__ in _classes():
        return {"__object__": type(x).__name__,
                **{f.name: json_ready(getattr(x, f.name)) for f in dataclasses.fields(x) if not f.name.startswith("_")}}
    raise MotifLabError(f"cannot store a {type(x).__name__} in an analysis file.")


def from_json_ready(x):
    """Values written by :func:`json_ready` (after ``json.loads``) back as tuples, arrays and result objects."""
    if isinstance(x, list):
        return [from_json_ready(v) for v in x]
    if not isinstance(x, dict):
        return x
    if "__tuple__" in x:
        return tuple(from_json_ready(v) for v in x["__tuple__"])
    if "__items__" in x:
        return {from_json_ready(k): from_json_ready(v) for k, v in x["__items__"]}
    if "__array__" in x:
        return np.asarray(from_json_ready(x["__array__"]), dtype=np.dtype(x["dtype"])).reshape(x["shape"])
    if "__object__" in x:
        return _build(x["__object__"], {k: from_json_ready(v) for k, v in x.items() if k != "__object__"})
    return {k: from_json_ready(v) for k, v in x.items()}


def _build(name, fields):
    cls = _classes().get(name)
    if cls is None:
        raise InputFileError(f"the file names an unknown result type {name!r}; it was not written by this motiflab.")
    return cls(**fields)


def _encode(x):
    """A metadata node: an array, a JSON string, or a dict of nodes (result objects, sparse matrices)."""
    import scipy.sparse as sp

    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        return x
    if sp.issparse(x):
        x = x.tocsr()
        return {_TYPE: "csr_matrix", "data": x.data, "indices": x.indices, "indptr": x.indptr,
                "shape": json.dumps(list(x.shape))}
    if dataclasses.is_dataclass(x) and type(x).__name__ in _classes():
        node = {_TYPE: type(x).__name__}
        for f in dataclasses.fields(x):
            if not f.name.startswith("_"):
                node[f.name] = _encode(getattr(x, f.name))
        return node
    return json.dumps(json_ready(x))


def _decode(node):
    if isinstance(node, np.ndarray):
        return node
    if isinstance(node, str):
        return from_json_ready(json.loads(node))
    if not isinstance(node, dict) or _TYPE not in node:
        raise InputFileError("the analysis file has an entry motiflab cannot read; it may be damaged.")
    kind = node[_TYPE]
    if kind == "csr_matrix":
        import scipy.sparse as sp

        return sp.csr_matrix((node["data"], node["indices"], node["indptr"]), shape=tuple(json.loads(node["shape"])))
    return _build(kind, {k: _decode(v) for k, v in node.items() if k != _TYPE})


# ---------------------------------------------------------------------------- saving


def _signal(an):
    """The analysed image as a calibrated Signal2D (what HyperSpy shows when it opens the file)."""
    from .io import to_signal

    title = ""
    meta = getattr(an.signal, "metadata", None)
    if meta is not None:
        title = str(meta.get_item("General.title", "") or "")
    return to_signal(an.image, an.calibration, title=title or "motiflab analysis")


def save_analysis(an, path, overwrite=False) -> Path:
    """Write the whole analysis to ``path`` (``.hspy``), atomically; never over an existing file unless asked.

    Stages not computed yet are not computed for the file; they are computed
    after opening, when asked for.
    """
    from .files import check_writable, write_atomic
    from .parameters import STAGES
    from .results import provenance

    p = Path(path)
    if p.suffix.lower() != ".hspy":
        raise MotifLabError(f"a whole analysis is saved as .hspy (HyperSpy's HDF5); got {p.name!r}. "
                            "Use .npz for the RESULT arrays of the command line.")
    check_writable(p, overwrite, inputs=an.input_files())
    s = _signal(an)
    record = {
        "format_version": json.dumps(FORMAT_VERSION),
        "params": json.dumps(json_ready(an.params)),
        "edits": json.dumps(json_ready(an.edits)),
        "log": json.dumps(json_ready(an.log)),
        "provenance": json.dumps(provenance(an)),
        "source": json.dumps({"path": an.source_path, "sha256": an.source_sha256,
                              "image_gain": getattr(an, "image_gain", 1.0)}),
        "stages": {st: _encode(an.get(st)) for st in STAGES if an.is_cached(st)},
    }
    s.metadata.set_item("motiflab", record)
    return write_atomic(p, lambda tmp: s.save(tmp, overwrite=True, file_format="HSPY"), overwrite,
                        inputs=an.input_files(), by_name=True)


def open_analysis(path, progress=False):
    """Open an analysis saved with :meth:`motiflab.Analysis.save` (``.hspy``), every saved stage cached.

    Parameters
    ----------
    path : str or Path
    progress : bool
        Progress bars for stages computed later.

    Returns
    -------
    motiflab.Analysis

    Raises
    ------
    InputFileError
        A missing, truncated or corrupt file, a file without a motiflab
        analysis in it, or one from a format version this motiflab cannot read.
    """
    from . import io
    from .analysis import Analysis
    from .parameters import DEFAULTS, STAGES

    p = Path(path)
    sig = io.load(p)  # missing / not a file / unreadable: a clear InputFileError, the file untouched
    rec = sig.metadata.get_item("motiflab")
    if rec is None:
        raise InputFileError(f"{str(p)!r} holds an image but no motiflab analysis; analyse it with "
                             "motiflab.Analysis(path), or give the .hspy file an analysis was saved to.")
    rec = rec.as_dictionary()
    version = int(json.loads(rec.get("format_version", "0")))
    while version in _MIGRATIONS:
        rec, version = _MIGRATIONS[version](rec)
    if version != FORMAT_VERSION:
        newer = version > FORMAT_VERSION
        raise InputFileError(f"{str(p)!r} holds a motiflab analysis in format version {version}; this motiflab reads "
                             f"version {FORMAT_VERSION}" + ("; update motiflab to open it." if newer else
                                                            " and has no migration from it."))
    try:
        params = from_json_ready(json.loads(rec["params"]))
        params = {k: v for k, v in params.items() if k in DEFAULTS}  # a parameter retired since is dropped
        an = Analysis(sig, progress=progress, **params)
        an.image = np.asarray(sig.data, dtype=np.float32)
        src = json.loads(rec.get("source", "{}"))
        an.source_path, an.source_sha256 = src.get("path"), src.get("sha256")
        an.image_gain = float(src.get("image_gain", 1.0))
        an.edits = from_json_ready(json.loads(rec.get("edits", "[]")))
        an.log = [tuple(x) for x in from_json_ready(json.loads(rec.get("log", "[]")))]
        an.saved_provenance = json.loads(rec.get("provenance", "{}"))
        stages = rec.get("stages", {})
        for st in STAGES:
            if st in stages:
                an.restore_stage(st, _decode(stages[st]))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"{str(p)!r} has a damaged motiflab analysis ({type(exc).__name__}: {exc}); the file "
                             "was left as it is.") from None
    return an
