"""Live microscope mode: classify every new frame of a running acquisition with a motif model.

The acquisition software writes frames into a folder; :class:`Watcher` follows
that folder and, for each new frame, once it is completely written:

1. classifies its columns with a :class:`motiflab.model.MotifModel`
   (:meth:`~motiflab.model.MotifModel.analyse`, the lean path: no kNN graph of
   the frame's own features, which a model never needs);
2. writes the frame's RESULT.npz as ``<out_dir>/<frame stem>.npz`` (the
   ``motiflab run`` contract, :func:`motiflab.open_result` reads it);
3. rewrites the running populations table ``<out_dir>/populations.csv``
   (one row per frame) atomically, so a crash leaves the previous table whole;
4. reports a one-line summary (``on_frame`` callback, printed by the CLI).

No UI is imported here; ``motiflab watch`` (:mod:`motiflab.cli`) and the
JupyterLab view (:mod:`motiflab.widgets.live`) are both built on
:class:`Watcher`. This module is callable: ``motiflab.live(folder, model)``
opens the JupyterLab view (the widgets are imported only then), and
``from motiflab.live import Watcher`` gives the core.

When is a file complete?
------------------------
Frames are often written in place, so a file can be seen half-written. A file
is taken as complete when

* the operating system reports its writer closed it, or that it was renamed
  into the folder (watchdog's inotify/FSEvents/ReadDirectoryChanges events,
  when ``watchdog`` is installed: ``pip install 'motiflab[live]'``); or
* its size and modification time have not changed for ``settle`` seconds of
  polling (the fallback, and the only way on network shares, where no change
  events arrive); or, for ``.npy``, as soon as it has the size its header
  announces (the format's own end marker; a shorter file is still being
  written). A writer that preallocates a ``.npy`` at full size (NumPy's
  ``open_memmap``) should write it under another name and rename it in.

The folder is polled every ``poll`` seconds even when events arrive, so a
missed event only delays a frame.

Bad files
---------
A partial, corrupt or unexpected file (unreadable, not a 2-D image, another
shape than ``shape``, no columns) is reported (``on_error``; the CLI prints it
to stderr) and skipped; if it changes later (the writer finished it after
all) it is tried again. Nothing a frame raises stops the watcher.

Restart
-------
A finished frame is one whose ``<stem>.npz`` exists in ``out_dir``; it is
never processed again and never overwritten (files are written with
:func:`motiflab.files.write_atomic` without ``overwrite``). A restarted
watcher therefore resumes where it stopped: it rereads the populations table
(and adds the row of a result whose row a crash lost) and skips every
finished frame.
"""
from __future__ import annotations

import csv
import datetime
import fnmatch
import io
import os
import re
import signal
import sys
import threading
import types
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputFileError, MotifLabError

__all__ = ["Watcher", "FrameResult", "FORMATS", "POPULATIONS", "watch", "read_populations", "check_alerts",
           "have_watchdog"]

#: the image formats a watched folder is searched for (HyperSpy's readers, plus NumPy's .npy)
FORMATS = (".dm3", ".dm4", ".emd", ".tif", ".tiff", ".hspy", ".npy")
#: the running populations table in the results folder
POPULATIONS = "populations.csv"


def have_watchdog() -> bool:
    """Whether the ``watchdog`` file-event library is installed (else only polling is used)."""
    try:
        import watchdog.observers  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class FrameResult:
    """What the watcher did with one file.

    Attributes
    ----------
    path : Path
        The frame's file.
    ok : bool
        Classified and written (else ``error`` says why it was skipped).
    frame : int
        Running frame number in the populations table (−1 for a skipped file).
    row : dict
        The populations row (frame, file, time, n_columns, counts per motif,
        ``new``, ``unassigned``, seconds, latency).
    error : str or None
    result_path : Path or None
    analysis : motiflab.Analysis or None
        The classified frame (kept only for the latest frame, for a live view).
    """

    path: Path
    ok: bool
    frame: int = -1
    row: dict = field(default_factory=dict)
    error: str | None = None
    result_path: Path | None = None
    analysis: object = None

    def summary(self) -> str:
        """One line for a terminal."""
        if not self.ok:
            return f"skipped {self.path.name}: {self.error}"
        r = self.row
        n = max(int(r["n_columns"]), 1)
        parts = [f"{k} {100 * r[k] / n:.1f} %" for k in r if k.startswith("motif ")]
        parts += [f"new {100 * r['new'] / n:.1f} %"]
        return (f"frame {r['frame']:>4}  {self.path.name}: {r['n_columns']} columns | " + " · ".join(parts)
                + f" | {r['seconds']:.2f} s → {self.result_path.name}")


def _npy_expected_size(path: Path):
    """Bytes a ``.npy`` file must have according to its own header, or None when the header is not readable yet."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
            header = f.tell()
    except (OSError, ValueError, EOFError):
        return None
    if dtype.hasobject:
        return None
    return header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def read_populations(path):
    """The populations table written by a :class:`Watcher`, as a pandas DataFrame indexed by frame.

    A missing file gives an empty table.
    """
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        p = p / POPULATIONS
    if not p.is_file():
        return pd.DataFrame(columns=["frame"]).set_index("frame")
    return pd.read_csv(p).set_index("frame")


def check_alerts(row: dict, thresholds: dict | None = None, new_columns=True) -> list:
    """Plain-language alerts for one populations row.

    Parameters
    ----------
    row : dict
        A populations row (``n_columns``, ``motif k``, ``new``, ``unassigned``).
    thresholds : dict, optional
        ``{"motif 2": 0.05, "new": 0.1, ...}``: alert when that fraction of the
        frame's columns is above the value.
    new_columns : bool
        Alert whenever columns unlike every motif of the model (−2) appear.

    Returns
    -------
    list of str
    """
    out = []
    n = max(int(row.get("n_columns", 0) or 0), 1)
    for key, limit in (thresholds or {}).items():
        if key not in row:
            raise MotifLabError(f"no {key!r} in the populations; alert on one of "
                                f"{[k for k in row if k.startswith('motif ')] + ['new', 'unassigned']}.")
        frac = float(row[key]) / n
        if frac > float(limit):
            out.append(f"frame {row.get('frame')}: {key} is {100 * frac:.1f} % of the columns "
                       f"(threshold {100 * float(limit):.1f} %)")
    n_new = int(row.get("new", 0) or 0)
    if new_columns and n_new > 0 and "new" not in (thresholds or {}):
        out.append(f"frame {row.get('frame')}: {n_new} column{'s' if n_new > 1 else ''} unlike every known motif")
    return out


class Watcher:
    """Follow a folder and classify each new, completely written frame with a motif model.

    Parameters
    ----------
    folder : str or Path
        The folder the acquisition writes into.
    model : MotifModel, str or Path
        A model, or its ``.hspy`` file.
    out_dir : str or Path, optional
        Where results go (created if missing); default ``<folder>/motiflab``.
    pattern : str or sequence of str, optional
        File-name patterns (``"*.dm4"``); default every format of :data:`FORMATS`.
    poll : float
        Seconds between scans of the folder.
    settle : float, optional
        Seconds a file's size and modification time must stay the same before
        it is read without a "closed" event; default ``poll``.
    shape : (int, int), optional
        The frame shape expected; a frame of another shape is reported and skipped.
    events : bool, optional
        Use file-system events (watchdog) besides polling; default: when
        watchdog is installed. ``False`` polls only (network shares).
    on_frame : callable, optional
        ``on_frame(FrameResult)`` after each processed or skipped file, called
        in the watcher's thread.
    keep_analysis : bool
        Hand the classified :class:`motiflab.Analysis` of each frame to
        ``on_frame`` (``FrameResult.analysis``); only the latest is referenced.

    Attributes
    ----------
    rows : list of dict
        The populations table, one row per processed frame.
    errors : list of (str, str)
        (file name, reason) of every skipped file, each reported once per version of the file.
    """

    def __init__(self, folder, model, out_dir=None, pattern=None, poll=0.5, settle=None, shape=None,
                 events=None, on_frame=None, keep_analysis=False):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputFileError(f"{str(self.folder)!r} is not a folder; give the folder the microscope writes into.")
        self.model = self._as_model(model)
        self.out_dir = Path(out_dir) if out_dir is not None else self.folder / "motiflab"
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputFileError(f"{str(self.out_dir)!r} exists and is not a folder; choose another --out-dir.")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(pattern, str):
            pattern = [pattern]
        self.patterns = list(pattern) if pattern else [f"*{ext}" for ext in FORMATS]
        self.poll = float(poll)
        if not self.poll > 0:
            raise MotifLabError(f"poll must be a positive number of seconds; got {poll!r}.")
        self.settle = self.poll if settle is None else float(settle)
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        if self.shape is not None and len(self.shape) != 2:
            raise MotifLabError(f"shape is (rows, cols) of a frame; got {shape!r}.")
        self.events = have_watchdog() if events is None else bool(events)
        if self.events and not have_watchdog():
            raise MotifLabError("file events need watchdog: pip install 'motiflab[live]' (or poll only: events=False).")
        self.on_frame = on_frame
        self.keep_analysis = bool(keep_analysis)
        self.rows: list = []
        self.errors: list = []
        self._model_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._seen: dict = {}      # path -> (signature, first time seen with it)
        self._closed: dict = {}    # path -> the file's (size, mtime) when its writer closed it
        self._failed: dict = {}    # path -> signature that failed (retried when it changes)
        self._done: set = set()    # stems with a result
        self._thread = None
        self._observer = None
        self.latest = None
        self._resume()

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _as_model(model):
        if isinstance(model, (str, os.PathLike)):
            from .model import load_model

            return load_model(model)
        if not hasattr(model, "analyse"):
            raise MotifLabError(f"model must be a MotifModel or its .hspy file; got {type(model).__name__}.")
        return model

    def set_model(self, model):
        """Classify the frames from the next one on with another model (refit on demand); the watcher keeps running."""
        model = self._as_model(model)
        with self._model_lock:
            self.model = model

    @property
    def populations_path(self) -> Path:
        return self.out_dir / POPULATIONS

    def _result_stems(self) -> set:
        # write_atomic's temporary files are hidden (".name.xxx.part.npz"): never a finished result
        return {p.stem for p in self.out_dir.glob("*.npz") if not p.name.startswith(".")}

    def _resume(self):
        """Read what an earlier run finished: its rows, its results; add the row a crash lost."""
        self._done = self._result_stems()
        if self.populations_path.is_file():
            try:
                with open(self.populations_path, newline="", encoding="utf-8") as f:
                    self.rows = [self._typed(r) for r in csv.DictReader(f)]
            except (OSError, ValueError, csv.Error) as exc:
                raise InputFileError(f"{str(self.populations_path)!r} is not a populations table this watcher wrote "
                                     f"({type(exc).__name__}: {exc}); move it away or choose another --out-dir.") from None
        listed = {Path(r["file"]).stem for r in self.rows}
        lost = sorted(self._done - listed)
        if lost:  # the result was written, the crash came before the table: the row comes from the result
            from .results import open_result

            for stem in lost:
                try:
                    res = open_result(self.out_dir / f"{stem}.npz")
                except InputFileError:
                    continue
                name = (res.get("provenance") or {}).get("input") or {}
                self.rows.append(self._row(len(self.rows), name.get("name", f"{stem}"), res["labels"],
                                           len(res["counts"]), float("nan"), float("nan")))
            self._write_table()

    @staticmethod
    def _typed(r: dict) -> dict:
        out = {}
        for k, v in r.items():
            if k in ("file", "time"):
                out[k] = v
            elif k in ("seconds", "latency"):
                out[k] = float(v) if v not in ("", None) else float("nan")
            else:
                out[k] = int(v) if v not in ("", None) else 0
        return out

    # ------------------------------------------------------------------ discovery
    def _matches(self, path: Path) -> bool:
        name = path.name
        if name.startswith(".") or ".part" in name or name.endswith("~"):
            return False  # hidden and temporary files of writers (and of motiflab itself)
        return any(fnmatch.fnmatch(name, pat) for pat in self.patterns)

    def _candidates(self):
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:  # a share that went away: report, keep waiting
            self._report(self.folder, f"cannot list the folder ({exc}); retrying")
            return []
        out = []
        for e in entries:
            p = Path(e.path)
            if not self._matches(p) or p.stem in self._done:
                continue
            try:
                st = e.stat()
            except OSError:
                continue  # vanished between listing and stat
            if not os.path.isfile(e.path):
                continue
            out.append((p, (st.st_size, st.st_mtime_ns), st.st_mtime))
        return out

    def _ready(self, now):
        """Files complete now, oldest first."""
        ready = []
        for p, sig, mtime in self._candidates():
            if self._failed.get(p) == sig:
                continue  # reported already; tried again when it changes
            prev = self._seen.get(p)
            if prev is None or prev[0] != sig:
                self._seen[p] = (sig, now)
                prev = self._seen[p]
            # the writer closed the file (or renamed it in) and it has not changed since: complete now;
            # otherwise it is complete once it stayed the same for `settle` seconds
            complete = self._closed.get(p) == sig or now - prev[1] >= self.settle
            if p.suffix.lower() == ".npy":
                need = _npy_expected_size(p)
                if need is not None and sig[0] >= need:
                    complete = True  # the format's own end marker: every byte its header announces is there
                elif need is not None:
                    # shorter than its header says: still being written, unless it has not grown for a while
                    complete = complete and now - prev[1] >= max(self.settle, 2 * self.poll)
            if complete:
                ready.append((mtime, p.name, p, sig))
        ready.sort()
        return [(p, sig) for _, _, p, sig in ready]

    # ------------------------------------------------------------------ processing
    def _report(self, path, reason):
        self.errors.append((Path(path).name, reason))
        res = FrameResult(path=Path(path), ok=False, error=reason)
        if self.on_frame is not None:
            self.on_frame(res)
        return res

    def _row(self, frame, name, labels, k, seconds, latency) -> dict:
        labels = np.asarray(labels)
        counts = np.bincount(labels[labels >= 0], minlength=k)[:k] if labels.size else np.zeros(k, np.int64)
        row = {"frame": int(frame), "file": str(name),
               "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
               "n_columns": int(labels.size)}
        row.update({f"motif {i}": int(c) for i, c in enumerate(counts)})
        row.update(new=int((labels == -2).sum()), unassigned=int((labels == -1).sum()),
                   seconds=round(float(seconds), 4), latency=round(float(latency), 4))
        return row

    def _write_table(self):
        """Rewrite the whole populations table atomically: a crash leaves the old table or the new one."""
        from .files import write_atomic

        keys = []
        for r in self.rows:  # a refit model may have more motifs: the header is the union, in order
            keys.extend(k for k in r if k not in keys)
        motif_keys = sorted((k for k in keys if k.startswith("motif ")), key=lambda k: int(k.split()[1]))
        head = ["frame", "file", "time", "n_columns"] + motif_keys + ["new", "unassigned", "seconds", "latency"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=head, restval=0, lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows)
        text = buf.getvalue()
        write_atomic(self.populations_path, lambda f: f.write(text), overwrite=True, binary=False)

    def process(self, path, sig=None):
        """Classify one file and write its result; never raises for a bad file (returns a skipped FrameResult)."""
        path = Path(path)
        t0 = time.perf_counter()
        try:
            st = path.stat()
            sig = sig or (st.st_size, st.st_mtime_ns)
            landed = st.st_mtime
        except OSError as exc:
            return self._report(path, f"cannot read it ({exc})")
        out = self.out_dir / f"{path.stem}.npz"
        if path.stem in self._done or os.path.lexists(out):
            self._done.add(path.stem)
            return FrameResult(path=path, ok=False, error="already has a result")  # never reprocessed
        with self._model_lock:
            model = self.model
        try:
            an, pred = model.analyse(str(path))
            shape = tuple(an.image.shape)
            if self.shape is not None and shape != self.shape:
                raise MotifLabError(f"the frame is {shape[0]}×{shape[1]} px; this acquisition's frames are "
                                    f"{self.shape[0]}×{self.shape[1]}")
            if len(pred.labels) == 0:
                raise MotifLabError("no columns found in the frame")
            an.save(out)
        except InputFileError as exc:
            if os.path.lexists(out):  # someone else wrote it meanwhile: that result stays
                self._done.add(path.stem)
                return FrameResult(path=path, ok=False, error="already has a result")
            self._failed[path] = sig
            return self._report(path, f"unreadable or incomplete ({exc})")
        except MotifLabError as exc:
            self._failed[path] = sig
            return self._report(path, f"unexpected content ({exc})")
        except Exception as exc:  # anything else a strange file triggers: reported, never fatal
            self._failed[path] = sig
            return self._report(path, f"failed ({type(exc).__name__}: {exc})")
        self._done.add(path.stem)
        self._failed.pop(path, None)
        seconds = time.perf_counter() - t0
        row = self._row(len(self.rows), path.name, pred.labels, model.n_motifs, seconds, time.time() - landed)
        self.rows.append(row)
        try:
            self._write_table()
        except OSError as exc:  # a full disk: the result is written, the table catches up at the next frame
            self._report(self.populations_path, f"could not rewrite the populations table ({exc})")
        res = FrameResult(path=path, ok=True, frame=row["frame"], row=row, result_path=out,
                          analysis=an if self.keep_analysis else None)
        self.latest = res
        if self.on_frame is not None:
            self.on_frame(res)
        return res

    def step(self) -> list:
        """One pass: find the complete new files and process them; returns their FrameResults."""
        done = []
        for p, sig in self._ready(time.monotonic()):
            if self._stop.is_set():
                break
            done.append(self.process(p, sig))
            self._seen.pop(p, None)
            self._closed.pop(p, None)
        return done

    # ------------------------------------------------------------------ events
    def _start_events(self):
        if not self.events or self._observer is not None:
            return
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class _Handler(FileSystemEventHandler):
            # runs in watchdog's thread: only notes the time and wakes the loop
            def on_closed(self, event):
                watcher._note_closed(event.src_path)

            def on_moved(self, event):
                watcher._note_closed(event.dest_path)

            def on_created(self, event):
                watcher._wake.set()

            def on_modified(self, event):
                watcher._wake.set()

        obs = Observer()
        obs.schedule(_Handler(), str(self.folder), recursive=False)
        obs.daemon = True
        try:
            obs.start()
        except OSError as exc:  # too many inotify watches, a share without events: polling still works
            print(f"motiflab watch: file events unavailable ({exc}); polling every {self.poll} s", file=sys.stderr)
            self.events = False
            return
        self._observer = obs

    def _note_closed(self, path):
        """A writer closed ``path`` (or renamed it in): remember the file's state at that moment, wake the loop."""
        try:
            st = os.stat(path)
        except OSError:
            return
        self._closed[Path(path)] = (st.st_size, st.st_mtime_ns)
        self._wake.set()

    def _stop_events(self):
        obs, self._observer = self._observer, None
        if obs is not None:
            obs.stop()
            obs.join(timeout=5)

    # ------------------------------------------------------------------ loop
    def run(self, max_frames=None, timeout=None) -> int:
        """Watch until :meth:`stop`, Ctrl-C, ``max_frames`` processed frames or ``timeout`` seconds.

        Returns
        -------
        int
            Frames processed by this call.
        """
        self._stop.clear()
        self._start_events()
        n = 0
        t_end = None if timeout is None else time.monotonic() + float(timeout)
        try:
            while not self._stop.is_set():
                for res in self.step():
                    n += res.ok
                    if max_frames is not None and n >= max_frames:
                        return n
                if t_end is not None and time.monotonic() >= t_end:
                    return n
                wait = self.poll if t_end is None else max(0.0, min(self.poll, t_end - time.monotonic()))
                if self._wake.wait(wait):
                    self._wake.clear()
        except KeyboardInterrupt:
            # every write is atomic: nothing half-written to clean up
            return n
        finally:
            self._stop_events()
        return n

    def start(self, **kwargs):
        """Run :meth:`run` in a background (daemon) thread; returns the thread."""
        self._stop.clear()  # a thread still finishing its frame after stop() just carries on
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._thread = threading.Thread(target=self.run, kwargs=kwargs, name="motiflab-watch", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout=None):
        """Stop after the frame being classified (if any); waits for the thread when :meth:`start` made one."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


_ALERT = re.compile(r"^\s*(motif\s*(\d+)|new|unassigned)\s*>\s*([0-9]*\.?[0-9]+)\s*%\s*$", re.IGNORECASE)


def parse_alert(text, n_motifs=None) -> tuple:
    """``"motif 2 > 5%"`` → ``("motif 2", 0.05)``: one alert threshold as the command line writes it.

    The left side is ``motif K``, ``new`` (columns unlike every motif) or
    ``unassigned``; the right side a percentage of the frame's columns.
    """
    m = _ALERT.match(str(text))
    if m is None:
        raise MotifLabError(f"an alert reads like 'motif 2 > 5%', 'new > 1%' or 'unassigned > 10%'; got {text!r}.")
    if m.group(2) is not None:
        k = int(m.group(2))
        if n_motifs is not None and k >= n_motifs:
            raise MotifLabError(f"alert {text!r}: the model has motifs 0 to {n_motifs - 1}.")
        key = f"motif {k}"
    else:
        key = m.group(1).lower()
    pct = float(m.group(3))
    if pct > 100:
        raise MotifLabError(f"alert {text!r}: a percentage of the columns is at most 100.")
    return key, pct / 100


def watch(folder, model, out_dir=None, pattern=None, poll=0.5, max_frames=None, timeout=None, shape=None,
          events=None, quiet=False, stream=None, err_stream=None, alerts=None, new_columns_alert=True) -> Watcher:
    """Watch a folder in the foreground, printing one line per frame (what ``motiflab watch`` runs).

    ``alerts`` (strings for :func:`parse_alert`, e.g. ``["motif 2 > 5%"]``) and
    ``new_columns_alert`` print an ``ALERT`` line (on the error stream, with a
    terminal bell) for each frame that crosses them (:func:`check_alerts`).
    Returns the :class:`Watcher` after Ctrl-C, ``max_frames`` frames or ``timeout`` seconds.
    """
    out = stream or sys.stdout
    err = err_stream or sys.stderr

    def say(res):
        if res.ok:
            if not quiet:
                print(res.summary(), file=out, flush=True)
            for text in check_alerts(res.row, thresholds, new_columns_alert):
                print(f"\aALERT {text}", file=err, flush=True)
        elif res.error != "already has a result":
            print(f"motiflab watch: {res.summary()}", file=err, flush=True)

    w = Watcher(folder, model, out_dir=out_dir, pattern=pattern, poll=poll, shape=shape, events=events,
                on_frame=say)
    n_motifs = getattr(w.model, "n_motifs", None)
    thresholds = dict(parse_alert(item, n_motifs) for item in (alerts or ()))
    if not quiet:
        mode = "file events + polling" if w.events else "polling"
        print(f"watching {w.folder} ({', '.join(w.patterns)}; {mode} every {w.poll:g} s) → {w.out_dir}; "
              f"{len(w._done)} frames already done; Ctrl-C to stop", file=out, flush=True)
        if thresholds or new_columns_alert:
            said = [f"{k} > {100 * v:g} %" for k, v in thresholds.items()]
            if new_columns_alert and "new" not in thresholds:
                said.append("any column unlike every motif")
            print("alerts: " + "; ".join(said), file=out, flush=True)
    # Ctrl-C asks the loop to stop after the frame in hand instead of raising KeyboardInterrupt
    # wherever the main thread happens to be (inside a library's lock or a file write, an
    # interrupt can leave a lock held that the interpreter's exit then waits on); a second
    # Ctrl-C interrupts at once
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum, frame):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            print("stopping after the current frame (Ctrl-C again to interrupt now)", file=err, flush=True)
            w.stop()

        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        w.run(max_frames=max_frames, timeout=timeout)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return w


class _LiveModule(types.ModuleType):
    """``motiflab.live`` is this module *and* the notebook entry point: calling it opens the live view.

    A plain function of that name could not share the name with the module: importing
    ``motiflab.live`` (as the CLI and the widgets do) rebinds the package attribute to the module.
    """

    def __call__(self, folder, model, thresholds=None, **watch_options):
        """Open the JupyterLab live view (:func:`motiflab.widgets.live.live`)."""
        from .widgets.live import live

        return live(folder, model, thresholds=thresholds, **watch_options)


sys.modules[__name__].__class__ = _LiveModule
