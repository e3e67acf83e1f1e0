"""Image series classified frame by frame with one motif model, on any Dask scheduler.

An in-situ movie is thousands of frames; the motifs are curated once, on a
good frame, and counted in all of them with a :class:`motiflab.model.MotifModel`.
The stack is never loaded: :func:`classify_series` maps one task over every
frame of a lazy (Dask-backed) HyperSpy signal or array, so a worker holds one
frame (plus the model) at a time, and each task returns only the frame's
column positions and labels (a few kB).  From those small records come

* :attr:`SeriesResult.populations`: a pandas DataFrame, one row per frame,
  the number of columns in every motif, new (unlike every motif) and
  unassigned columns, and the error of a frame that failed;
* :meth:`SeriesResult.plot_populations`: the populations over time;
* :meth:`SeriesResult.label_maps`: a *lazy* HyperSpy signal of label images
  (built from the records, not by classifying again), which saves to
  ``.zspy`` frame by frame.

Schedulers
----------
``scheduler`` is Dask's choice, not ours: ``None`` uses Dask's default (the
``distributed.Client`` made last, if any, else threads); ``"threads"``,
``"processes"`` or ``"synchronous"`` the local schedulers; a
``distributed.Client`` (of a ``LocalCluster`` or a real cluster) or a
scheduler address ``"tcp://host:8786"`` runs on that cluster.  Progress is
Dask's own: its progress bar locally, ``distributed.progress`` and the
dashboard on a cluster.

A frame that fails (an empty frame, a frame without columns) is reported in
the ``error`` column and as a warning, and skipped; the others complete.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import MotifLabError

__all__ = ["classify_frame", "classify_series", "SeriesResult", "open_series"]


def classify_frame(image, model, index=0) -> dict:
    """Classify one frame; return a small record. Errors are returned, not raised (one bad frame must not stop a series).

    Returns
    -------
    dict
        ``frame``, ``positions`` (N, 2) float32, ``labels`` (N,) int16,
        ``shape``, ``seconds``, ``error`` (None on success).
    """
    t0 = time.perf_counter()
    img = np.asarray(image)
    try:
        while img.ndim > 2 and img.shape[0] == 1:  # a (1, ..., H, W) block of the stack
            img = img[0]
        an, pred = model.analyse(np.asarray(img, dtype=np.float32))
        return dict(frame=int(index), positions=np.asarray(an.positions, np.float32),
                    labels=pred.labels.astype(np.int16), shape=tuple(img.shape[-2:]),
                    seconds=time.perf_counter() - t0, error=None)
    except Exception as exc:  # reported in the table, the series goes on
        return dict(frame=int(index), positions=np.zeros((0, 2), np.float32), labels=np.zeros(0, np.int16),
                    shape=tuple(img.shape[-2:]), seconds=time.perf_counter() - t0,
                    error=f"{type(exc).__name__}: {exc}")


def open_series(source):
    """A series as a lazy Signal2D stack: a file opened lazily, a (lazy) signal, or a Dask/NumPy array (F, H, W)."""
    from .io import load

    if hasattr(source, "axes_manager"):
        sig = source
    elif hasattr(source, "dask") or isinstance(source, np.ndarray):
        import dask.array as da
        from hyperspy.signals import Signal2D

        arr = source if hasattr(source, "dask") else da.from_array(source, chunks=(1,) + source.shape[1:])
        sig = Signal2D(arr).as_lazy()
    else:
        sig = load(source, lazy=True)
    if sig.axes_manager.signal_dimension != 2:
        raise MotifLabError(f"a series of 2-D images is needed; this signal has signal dimension "
                            f"{sig.axes_manager.signal_dimension}.")
    if not getattr(sig, "_lazy", False):
        sig = sig.as_lazy()
    return sig


def _frames(sig):
    """The stack as a Dask array (F, H, W), one frame per chunk (a chunk of several frames is split, not loaded)."""
    data = sig.data
    h, w = data.shape[-2:]
    data = data.reshape((-1, h, w)) if data.ndim != 3 else data
    return data.rechunk((1, h, w))


def dask_client(scheduler):
    """A ``distributed.Client`` for an address, the client given, or None (local schedulers)."""
    if scheduler is None or isinstance(scheduler, str) and scheduler in ("threads", "processes", "synchronous",
                                                                         "sync", "single-threaded"):
        return None, False
    if isinstance(scheduler, str):
        try:
            from distributed import Client
        except ImportError as exc:
            raise MotifLabError(f"a scheduler address needs dask.distributed: pip install distributed ({exc}).")
        try:
            return Client(scheduler, timeout="10s"), True
        except OSError as exc:
            raise MotifLabError(f"could not connect to the Dask scheduler at {scheduler!r} ({exc}); start one with "
                                "`dask scheduler` or give 'threads'/'processes'.") from None
    if hasattr(scheduler, "compute") and hasattr(scheduler, "gather"):
        return scheduler, False
    raise MotifLabError(f"scheduler must be None, 'threads', 'processes', 'synchronous', a distributed.Client or a "
                        f"scheduler address; got {scheduler!r}.")


def classify_series(source, model, scheduler=None, progress=True, frames=None) -> "SeriesResult":
    """Classify every frame of a series with one model, without loading the stack.

    Parameters
    ----------
    source : str, Path, hyperspy Signal2D stack (lazy or not) or array (F, H, W)
        The series; files are opened lazily.
    model : motiflab.model.MotifModel or str
        The model, or the path of a saved one.
    scheduler : None, str or distributed.Client
        See the module docs.
    progress : bool
        Dask's progress bar (locally) or ``distributed.progress`` (on a cluster).
    frames : sequence of int, optional
        Only these frames (flat indices); default all.

    Returns
    -------
    SeriesResult
    """
    import dask

    from .model import MotifModel, load_model

    if not isinstance(model, MotifModel):
        model = load_model(model)
    sig = open_series(source)
    data = _frames(sig)
    n = data.shape[0]
    index = list(range(n)) if frames is None else [int(i) for i in frames]
    if not index:
        raise MotifLabError("no frames to classify.")
    if min(index) < 0 or max(index) >= n:
        raise MotifLabError(f"frames must lie in 0..{n - 1}; got {min(index)}..{max(index)}.")
    # the model enters the graph once; every task refers to that one key
    mdl = dask.delayed(model, pure=True)
    blocks = data.to_delayed().ravel()
    tasks = [dask.delayed(classify_frame, pure=True)(blocks[i], mdl, i) for i in index]
    client, own = dask_client(scheduler)
    t0 = time.perf_counter()
    try:
        if client is not None:
            futures = client.compute(tasks)
            if progress:
                from distributed import progress as dprogress

                dprogress(futures)
            records = client.gather(futures)
        else:
            cfg = {} if scheduler is None else {"scheduler": scheduler}
            with dask.config.set(**cfg):
                if progress:
                    from dask.diagnostics import ProgressBar

                    with ProgressBar():
                        records = dask.compute(*tasks)
                else:
                    records = dask.compute(*tasks)
    finally:
        if own:
            client.close()
    res = SeriesResult(records=list(records), model=model, frame_shape=tuple(data.shape[1:]),
                       nav_shape=tuple(sig.axes_manager.navigation_shape[::-1]) or (n,),
                       seconds=time.perf_counter() - t0)
    failed = res.populations.index[res.populations["error"].notna()]
    if len(failed):
        warnings.warn(f"{len(failed)} of {len(index)} frames failed and were skipped (frames "
                      f"{', '.join(str(i) for i in list(failed)[:10])}{'…' if len(failed) > 10 else ''}); "
                      "see the 'error' column of the populations table.", stacklevel=2)
    return res


@dataclass
class SeriesResult:
    """Frame records of a classified series (see :func:`classify_series`)."""

    records: list
    model: object
    frame_shape: tuple
    nav_shape: tuple
    seconds: float = 0.0

    @property
    def populations(self):
        """pandas DataFrame, one row per frame: columns in each motif, ``new``, ``unassigned``, ``n_columns``, ``error``."""
        import pandas as pd

        k = self.model.n_motifs
        rows = []
        for r in self.records:
            lab = r["labels"]
            ok = r["error"] is None
            counts = np.bincount(lab[lab >= 0], minlength=k)[:k] if ok else np.full(k, np.nan)
            row = {"frame": r["frame"], **{f"motif {i}": counts[i] for i in range(k)},
                   "new": int((lab == -2).sum()) if ok else np.nan,
                   "unassigned": int((lab == -1).sum()) if ok else np.nan,
                   "n_columns": len(lab) if ok else np.nan, "seconds": r["seconds"], "error": r["error"]}
            rows.append(row)
        return pd.DataFrame(rows).set_index("frame")

    def plot_populations(self, fraction=True, ax=None):
        """Motif populations over the frames (fractions of the frame's columns, or counts); returns the Axes."""
        import matplotlib.pyplot as plt

        from .colors import motif_colors

        df = self.populations
        cols = [c for c in df.columns if c.startswith("motif ")] + ["new"]
        vals = df[cols].astype(float)
        if fraction:
            vals = vals.div(df["n_columns"].astype(float), axis=0)
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        colors = motif_colors(self.model.n_motifs)
        for i, c in enumerate(cols):
            ax.plot(vals.index, vals[c], label=c, color=colors[i] if c != "new" else "k",
                    ls="-" if c != "new" else "--")
        ax.set_xlabel("frame")
        ax.set_ylabel("fraction of columns" if fraction else "columns")
        ax.legend(fontsize="small", ncol=2)
        return ax

    def label_maps(self):
        """Label images of every frame as a lazy HyperSpy Signal2D (int16: motif, −2 new, −1 no column).

        Built lazily from the frame records (nothing is classified again), so
        ``label_maps().save("labels.zspy")`` writes frame by frame.
        """
        import dask
        import dask.array as da
        from hyperspy.signals import Signal2D

        h, w = self.frame_shape
        by_frame = {r["frame"]: r for r in self.records}
        n = int(np.prod(self.nav_shape))
        empty = {"positions": np.zeros((0, 2), np.float32), "labels": np.zeros(0, np.int16), "error": None}
        parts = [da.from_delayed(dask.delayed(_label_image, pure=True)(by_frame.get(i, empty), (h, w)),
                                 shape=(h, w), dtype=np.int16) for i in range(n)]
        arr = da.stack(parts).reshape(tuple(self.nav_shape) + (h, w))
        s = Signal2D(arr).as_lazy()
        s.metadata.General.title = "motif label maps"
        return s


def _label_image(record, shape):
    """One frame's label image: each column's disk (radius 0.45 × median neighbour distance) holds its label."""
    from .io import label_map

    if record.get("error") is not None or len(record["positions"]) == 0:
        return np.full(shape, -1, np.int16)
    return label_map(shape, record["positions"], record["labels"]).astype(np.int16)
