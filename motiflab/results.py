"""An analysis' results in the forms other tools read: the RESULT.npz contract, a table, provenance.

* :func:`result_arrays` — the arrays of ``motiflab run``'s RESULT.npz (a stable
  contract: fields are only ever added), now with the parameters, the
  provenance and a format version;
* :func:`open_result` — reads a RESULT.npz back (never unpickling anything),
  and says clearly when a file is truncated, corrupt or not a result;
* :func:`column_table` — one row per column as a pandas DataFrame, in the
  image's units, for spreadsheets, pandas and plotting tools;
* :func:`provenance` — what made a result: versions, input file and its
  SHA-256, time.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import platform
import zipfile
from pathlib import Path

import numpy as np

from .errors import InputFileError

__all__ = ["RESULT_FORMAT", "result_arrays", "open_result", "column_table", "provenance", "file_sha256",
           "detection_record", "summary"]

#: version of the RESULT.npz layout (1: the original fields; 2: + params, provenance, result_format)
RESULT_FORMAT = 2
#: the fields every RESULT.npz has had since the first version
CONTRACT_FIELDS = ("positions", "labels", "features", "embedding", "class_averages", "patch_size")


def file_sha256(path, chunk=1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _version(module):
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed: say so rather than fail a save
        return None


def provenance(an) -> dict:
    """What made this analysis: software versions, the input file and its SHA-256, when (JSON-ready)."""
    import motiflab

    src = getattr(an, "source_path", None)
    return {
        "motiflab": motiflab.__version__,
        "versions": {m: _version(m) for m in ("numpy", "scipy", "numba", "scikit-learn", "hyperspy", "hdbscan",
                                             "pynndescent")},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "input": None if src is None else {"name": Path(src).name, "sha256": getattr(an, "source_sha256", None)},
        "title": str(getattr(getattr(an.signal, "metadata", None), "General", {}).get_item("title", ""))
        if hasattr(an.signal, "metadata") else "",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def detection_record(an) -> dict:
    """How the columns were found: smoothing used, thresholds, lattice, noise (JSON-ready)."""
    c = an.columns
    nm = c.noise_model
    return dict(
        smoothing=c.params.get("smoothing"),
        smoothing_params={k: (None if v is None else float(v)) for k, v in c.params.get("smoothing_params", {}).items()},
        threshold=float(c.params.get("threshold", float("nan"))),
        lattice=c.params.get("lattice"),
        lattice_vectors=None if c.lattice_vectors is None else np.asarray(c.lattice_vectors).tolist(),
        min_contrast=float(c.params.get("min_contrast", float("nan"))),
        inverted=bool(c.inverted),
        column_sigma_px=float(c.column_sigma),
        repeat_px=float(c.repeat),
        spacing_px=float(c.spacing),
        n_candidates=int(c.n_candidates),
        n_rejected=int(c.n_rejected),
        n_lattice_sites=int(np.count_nonzero(c.on_lattice)),
        noise=None if nm is None else dict(slope=float(nm.slope), intercept=float(nm.intercept),
                                           floor=float(nm.floor), correlated=not nm.white),
    )


def result_arrays(an) -> dict:
    """The arrays of the ``motiflab run`` RESULT.npz contract (plus calibration and provenance extras)."""
    m = an.motifs
    return dict(
        positions=np.asarray(an.positions, dtype=np.float64),
        labels=np.asarray(m.labels, dtype=np.int64),
        features=np.asarray(an.features.X, dtype=np.float32),
        embedding=np.asarray(an.layout.embedding, dtype=np.float32),
        class_averages=np.asarray(m.class_averages, dtype=np.float32),
        patch_size=np.int64(an.patch_size),
        counts=np.asarray(m.counts, dtype=np.int64),
        pixel_size=np.float64(an.calibration.scale),
        units=np.str_(an.calibration.units),
        n_dropped=np.int64(an.patches.n_dropped),
        edits=np.str_(json.dumps(an.edits)),
        quality=np.asarray(an.columns.quality[an.patches.index], dtype=np.float32),
        detection=np.str_(json.dumps(detection_record(an))),
        params=np.str_(json.dumps(an.params)),
        provenance=np.str_(json.dumps(provenance(an))),
        result_format=np.int64(RESULT_FORMAT),
    )


def open_result(path) -> dict:
    """Read a RESULT.npz written by ``motiflab run`` / :meth:`motiflab.Analysis.save`.

    Nothing in the file is unpickled. JSON fields (``edits``, ``detection``,
    ``params``, ``provenance``) come back parsed; a file from before they
    existed simply lacks them.

    Returns
    -------
    dict
        Field name → array (or parsed JSON).

    Raises
    ------
    InputFileError
        A missing, truncated or corrupt file, or an ``.npz`` that is not a result.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"no such result file: {str(p)!r}." if not p.exists() else
                             f"{str(p)!r} is not a regular file.")
    try:
        with np.load(p, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise InputFileError(f"{str(p)!r} is truncated or corrupt and cannot be read ({type(exc).__name__}: {exc}); "
                             "it was left as it is. Re-run the analysis to write it again.") from None
    missing = [k for k in CONTRACT_FIELDS if k not in out]
    if missing:
        raise InputFileError(f"{str(p)!r} is not a motiflab result: it lacks {', '.join(missing)}.")
    fmt = int(out.get("result_format", 1))
    if fmt > RESULT_FORMAT:
        raise InputFileError(f"{str(p)!r} was written by a newer motiflab (result format {fmt}; this one reads up "
                             f"to {RESULT_FORMAT}); update motiflab to read it.")
    for k in ("edits", "detection", "params", "provenance"):
        if k in out:
            out[k] = json.loads(str(out[k]))
    for k in ("patch_size", "n_dropped", "result_format"):
        if k in out:
            out[k] = int(out[k])
    if "units" in out:
        out["units"] = str(out["units"])
    if "pixel_size" in out:
        out["pixel_size"] = float(out["pixel_size"])
    return out


def column_table(an):
    """One row per analysed column, in the image's units: a tidy :class:`pandas.DataFrame`.

    Columns: ``x``, ``y`` (image units: ``positions`` × the pixel size, plus
    the axes' offsets), ``row_px``, ``col_px``, ``motif`` (−1 = unassigned),
    ``quality`` (own peak significance, noise units), ``intensity`` (the
    image summed over a disc of half the column spacing, background not
    removed, in the image's own units), ``nn_distance`` (to the nearest other column, image units),
    ``motif_cell`` (the hierarchy node of the column's cell, −1 where there is
    none) and ``on_lattice``.
    """
    import pandas as pd

    from ._validation import median_nn_distance
    from .errors import MotifLabError

    pos = an.positions
    cal = an.calibration
    phys = cal.to_physical(pos)
    from scipy.spatial import cKDTree

    tree = cKDTree(pos)
    nn = tree.query(pos, k=2)[0][:, 1] if len(pos) > 1 else np.full(len(pos), np.nan)
    spacing = median_nn_distance(pos, tree)
    try:
        cell = an.hierarchy.column_motif_cell()
    except MotifLabError:
        cell = np.full(len(pos), -1, np.int64)
    cols = an.columns
    keep = an.patches.index
    return pd.DataFrame({
        "x": phys[:, 1], "y": phys[:, 0],
        "row_px": pos[:, 0], "col_px": pos[:, 1],
        "motif": np.asarray(an.motifs.labels, np.int64),
        "quality": np.asarray(cols.quality[keep], np.float64),
        # in the units of the image as given (an.image may have been divided by a power of two)
        "intensity": _disc_sums(an.image, pos, 0.5 * spacing if np.isfinite(spacing) else 1.0)
        * getattr(an, "image_gain", 1.0),
        "nn_distance": nn * cal.scale,
        "motif_cell": np.asarray(cell, np.int64),
        "on_lattice": np.asarray(cols.on_lattice[keep], bool),
    }).rename_axis("column")


def _disc_sums(image, pos, radius):
    """The image summed over a disc around each position (pixels whose centre lies inside).

    One pass per pixel offset of the disc's bounding box, each over every column at
    once (a few dozen array operations, not a Python loop over thousands of columns).
    """
    r = int(np.ceil(radius))
    h, w = image.shape
    centres = np.rint(pos).astype(np.int64)
    out = np.zeros(len(pos))
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            yy, xx = centres[:, 0] + dy, centres[:, 1] + dx
            inside = ((yy - pos[:, 0]) ** 2 + (xx - pos[:, 1]) ** 2 <= radius**2) & (yy >= 0) & (yy < h) \
                & (xx >= 0) & (xx < w)
            out[inside] += image[yy[inside], xx[inside]]
    return out


def summary(an) -> str:
    """A few lines describing the result, for terminals and logs."""
    m = an.motifs
    cal = an.calibration
    cols = an.columns
    lines = [
        f"image {an.image.shape[0]}×{an.image.shape[1]} px" + (f" ({cal.scale:.4g} {cal.units}/px)" if cal.calibrated else ""),
        f"columns found {len(cols)}"
        + (f" ({int(np.count_nonzero(cols.on_lattice))} on lattice sites)" if cols.lattice_vectors is not None else "")
        + f", {cols.n_rejected} candidate{'' if cols.n_rejected == 1 else 's'} rejected as "
        f"background; analysed {len(an.positions)} "
        f"(dropped at border {an.patches.n_dropped}), patch size {an.patch_size} px",
        f"motifs {m.n_motifs}: " + ", ".join(f"#{i}: {c}" for i, c in enumerate(m.counts))
        + (f"; unassigned {int(np.sum(m.labels == -1))}" if np.any(m.labels == -1) else "")
        # a motif model flags columns unlike every motif it knows with −2 (motiflab.model.NEW)
        + (f"; new (unlike every known motif) {int(np.sum(m.labels == -2))}" if np.any(m.labels == -2) else ""),
    ]
    from .diagnostics import detection_warnings

    lines += [f"warning: {w}" for w in detection_warnings(an)]
    return "\n".join(lines)
