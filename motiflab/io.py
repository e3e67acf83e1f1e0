"""Data in and out through HyperSpy, keeping the axes calibration.

HyperSpy is the door for data: :func:`load` reads anything HyperSpy (RosettaSciIO)
reads (dm3/dm4, emd, tif, hspy, …), plus ``.npy`` files, NumPy arrays and
``Signal2D`` objects, and always hands back a ``Signal2D`` with its calibration.
Results go back out as HyperSpy markers and signals (:func:`to_markers`,
:func:`label_map_signal`, :func:`class_averages_signal`).

HyperSpy is imported lazily: it is a heavy import and ``import motiflab`` should
stay fast.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputFileError, MotifLabError
from .colors import label_colors, motif_colors  # noqa: F401  (motif_colors re-exported: its home was here)
from .files import check_writable  # noqa: F401  (re-exported: its home was here)

__all__ = ["Calibration", "load", "as_image", "to_signal", "to_markers", "label_map", "label_map_signal",
           "class_averages_signal", "check_writable", "to_atomap"]

# length units HyperSpy files use, converted to nanometres
_TO_NM = {
    "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0,
    "å": 0.1, "a": 0.1, "angstrom": 0.1, "ångström": 0.1, "\u212b": 0.1,
    "pm": 1e-3, "picometer": 1e-3,
    "µm": 1e3, "um": 1e3, "μm": 1e3, "micron": 1e3, "micrometer": 1e3,
    "mm": 1e6, "m": 1e9,
}


@dataclass(frozen=True)
class Calibration:
    """Pixel calibration of an image.

    Attributes
    ----------
    scale : float
        Size of one pixel in ``units`` (square pixels assumed; the row scale
        is used when they differ, with a warning at load time).
    units : str
        ``"nm"`` when the file's units could be converted, otherwise the
        original units, or ``"px"`` for uncalibrated data.
    offset : tuple of float
        (row, col) offsets of pixel (0, 0), in ``units``.
    """

    scale: float = 1.0
    units: str = "px"
    offset: tuple = (0.0, 0.0)

    @property
    def calibrated(self) -> bool:
        return self.units != "px"

    def to_physical(self, positions_px):
        """(row, col) pixel coordinates → physical coordinates in ``units``."""
        p = np.asarray(positions_px, dtype=np.float64)
        return p * self.scale + np.asarray(self.offset)


class _QuietReaderErrors(logging.Filter):
    """Drops HyperSpy's "please report this error" log record while :func:`load` reads a file.

    ``load`` turns the reader's exception into one clear message of its own; the
    extra red log line (one per corrupt file, on every frame of ``motiflab
    watch``) only confuses. Only the thread inside ``load`` is affected.
    """

    active = threading.local()

    def filter(self, record):
        return not getattr(self.active, "on", False) or record.levelno < logging.ERROR


_QUIET = _QuietReaderErrors()


def _quiet_reader_logs():
    """Put the filter on HyperSpy's and RosettaSciIO's loggers and on their handlers.

    A logger's own filter sees only what is logged on it; the readers log on
    child loggers (``rsciio.zspy._api``…) that propagate to these handlers.
    """
    for name in ("hyperspy", "hyperspy.io", "rsciio"):
        logger = logging.getLogger(name)
        logger.addFilter(_QUIET)  # no-op when already there
        for handler in logger.handlers:
            handler.addFilter(_QUIET)


def import_hyperspy():
    """``hyperspy.api``, imported on first use (a heavy import), with a clear error when it is missing."""
    try:
        import hyperspy.api as hs
    except ImportError as exc:  # pragma: no cover - hyperspy is a hard dependency
        raise MotifLabError("HyperSpy is needed to read microscope files: pip install hyperspy") from exc
    return hs


def load(source, frame=None, lazy=False):
    """Load a micrograph as a calibrated HyperSpy ``Signal2D``.

    Parameters
    ----------
    source : str, pathlib.Path, numpy.ndarray or hyperspy Signal2D
        A file HyperSpy can read (dm3, dm4, emd, tif, hspy, …), a ``.npy``
        file, an array, or a signal.
    frame : int or tuple of int, optional
        For a stack/series, the navigation index of the frame to analyse.
    lazy : bool
        Open the file lazily (Dask-backed) — for large series. A lazy stack
        opened without ``frame`` is returned whole, for
        :func:`motiflab.series.classify_series`.

    Returns
    -------
    hyperspy.signals.Signal2D

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    MotifLabError
        Data that is not a 2-D image (with the ``frame=`` hint for stacks).
    """
    hs = import_hyperspy()
    from hyperspy.signals import BaseSignal, Signal2D

    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputFileError(f"no such file: {str(path)!r}. Check the path (relative to {os.getcwd()!r}).")
        zspy = path.is_dir() and path.suffix.lower() == ".zspy"  # HyperSpy's zarr store is a folder
        if path.is_dir() and not zspy:
            raise InputFileError(f"{str(path)!r} is a folder; give the image file inside it.")
        if not (path.is_file() or zspy):  # a FIFO or a device would block the reader, or never end
            raise InputFileError(f"{str(path)!r} is not a regular file (a pipe or a device?); save the image to a "
                                 "file and give that.")
        if path.suffix.lower() == ".npz":
            raise InputFileError(f"{str(path)!r} is a .npz archive, not an image: a motiflab RESULT.npz opens with "
                                 "motiflab.open_result(path); an image saved by NumPy as .npy loads here.")
        try:
            if path.suffix.lower() == ".npy":
                sig = Signal2D(np.load(path, allow_pickle=False))
                sig.metadata.General.title = path.stem
            else:
                _quiet_reader_logs()
                _QUIET.active.on = True
                try:
                    sig = hs.load(str(path), lazy=lazy)
                finally:
                    _QUIET.active.on = False
        except Exception as exc:  # any reader error becomes one clear message
            raise InputFileError(
                f"could not read {str(path)!r} ({type(exc).__name__}: {exc}). motiflab reads every format "
                "HyperSpy/RosettaSciIO supports (dm3, dm4, emd, tif, hspy, …) and .npy; "
                "check that the file is complete and of one of these types."
            ) from exc
        if isinstance(sig, list):
            images = [s for s in sig if s.axes_manager.signal_dimension == 2]
            if not images:
                raise MotifLabError(f"{str(path)!r} holds {len(sig)} signals but none is a 2-D image.")
            sig = images[0]
    elif isinstance(source, BaseSignal):
        sig = source
    else:
        arr = np.asarray(source)
        if arr.ndim < 2:
            raise MotifLabError(f"expected a 2-D image, got an array of shape {arr.shape}.")
        sig = Signal2D(arr)
    if sig.axes_manager.signal_dimension != 2:
        if sig.data.ndim == 2:
            sig = sig.as_signal2D((1, 0))
        else:
            raise MotifLabError(
                f"the data has signal dimension {sig.axes_manager.signal_dimension} and shape "
                f"{sig.data.shape}; a 2-D image is needed."
            )
    nav = sig.axes_manager.navigation_shape
    if sig.axes_manager.navigation_dimension > 0:
        if frame is None and lazy:
            return sig  # a lazy stack stays whole: motiflab.series classifies it frame by frame
        if frame is None:
            raise MotifLabError(
                f"this is a stack of {int(np.prod(nav))} images (navigation shape {nav}); pick one with "
                "frame=..., e.g. motiflab.load(path, frame=0) or `motiflab run FILE --frame 0`, "
                "or use motiflab.batch for the whole series."
            )
        idx = frame if isinstance(frame, tuple) else (frame,)
        try:
            sig = sig.inav[idx]
        except IndexError as exc:
            raise MotifLabError(f"frame {frame} is outside the stack's navigation shape {nav}.") from exc
    elif frame not in (None, 0):
        raise MotifLabError(f"frame={frame} given, but the data is a single image.")
    return sig


def calibration_of(signal) -> Calibration:
    """Read the (row, col) calibration of a Signal2D, converting length units to nm."""
    ax_y, ax_x = signal.axes_manager.signal_axes[1], signal.axes_manager.signal_axes[0]
    units = str(ax_x.units or "").strip()
    scale_x, scale_y = float(ax_x.scale), float(ax_y.scale)
    off = (float(ax_y.offset), float(ax_x.offset))
    key = units.lower()
    if key in ("", "<undefined>", "undefined", "px", "pixel", "pixels"):
        return Calibration(scale=1.0, units="px", offset=(0.0, 0.0))
    if key in _TO_NM:
        f = _TO_NM[key]
        return Calibration(scale=scale_y * f, units="nm", offset=(off[0] * f, off[1] * f))
    # reciprocal-space or exotic units: keep them as they are
    return Calibration(scale=scale_y, units=units, offset=off)


def as_image(source, frame=None):
    """Any accepted input → (float32 2-D array, :class:`Calibration`, the Signal2D).

    See :func:`load` for what ``source`` may be.
    """
    sig = load(source, frame=frame)
    data = sig.data
    if hasattr(data, "compute"):  # lazy (Dask) signal
        data = data.compute()
    return np.asarray(data), calibration_of(sig), sig


def to_signal(image, calibration: Calibration | None = None, title="") -> "object":
    """Wrap an array as a calibrated ``Signal2D``."""
    from hyperspy.signals import Signal2D

    cal = calibration or Calibration()
    image = np.asarray(image) if not isinstance(image, (str, bytes, dict)) else np.asarray(None)
    if image.dtype.kind not in "fiucb" or image.ndim < 2:
        got = f"dtype {image.dtype}" if image.dtype.kind not in "fiucb" else f"shape {image.shape}"
        raise MotifLabError(f"image must be a numeric array of at least 2 dimensions (rows, cols), got {got}.")
    s = Signal2D(image)
    for ax, off, name in zip(s.axes_manager.signal_axes, (cal.offset[1], cal.offset[0]), ("x", "y")):
        ax.scale = cal.scale
        ax.units = cal.units
        ax.offset = off
        ax.name = name
    s.metadata.General.title = title
    return s


def to_markers(positions, labels, calibration: Calibration | None = None, size=10):
    """Column positions as HyperSpy point markers coloured by motif.

    Add them to the original signal with ``s.add_marker(markers, permanent=True)``
    so ``s.plot()`` shows them.

    Parameters
    ----------
    positions : ndarray, shape (N, 2)
        (row, col) pixel positions.
    labels : ndarray, shape (N,)
        Motif labels (−1 = unassigned, grey).
    calibration : Calibration, optional
        Converts pixels to the signal's axes units.
    size : float
        Marker size in points.

    Returns
    -------
    hyperspy.utils.markers.Points
    """
    from hyperspy.utils import markers

    from ._validation import check_labels, check_positions

    cal = calibration or Calibration()
    positions = check_positions(positions, min_n=0)
    labels = check_labels(labels, len(positions))
    xy = cal.to_physical(positions)[:, ::-1]  # HyperSpy wants (x, y)
    colors = label_colors(labels).tolist()
    return markers.Points(offsets=xy, color=colors, sizes=size)


def label_map(shape, positions, labels, radius=None) -> np.ndarray:
    """A label image (int32): each column's disc holds its motif label, −1 elsewhere.

    ``radius`` defaults to 0.45 × the median nearest-neighbour distance (4 px
    for a single column), so neighbouring discs never touch.
    """
    from scipy.spatial import cKDTree

    from ._validation import check_labels, check_number, check_positions, check_shape, median_nn_distance

    h, w = check_shape(shape)
    pos = check_positions(positions, min_n=0)
    labels = check_labels(labels, len(pos))
    out = np.full(h * w, -1, dtype=np.int32)
    if len(pos) == 0:
        return out.reshape(h, w)
    if radius is not None:
        radius = check_number(radius, "radius", low=0.0, low_open=True)
    else:
        nn = median_nn_distance(pos)
        radius = 0.45 * nn if np.isfinite(nn) else 4.0
    yy, xx = np.mgrid[0:h, 0:w]
    dist, idx = cKDTree(pos).query(np.column_stack([yy.ravel(), xx.ravel()]), distance_upper_bound=radius)
    ok = np.isfinite(dist)
    out[ok] = labels[idx[ok]]
    return out.reshape(h, w)


def label_map_signal(shape, positions, labels, calibration: Calibration | None = None, radius=None):
    """:func:`label_map` as a calibrated Signal2D."""
    return to_signal(label_map(shape, positions, labels, radius), calibration, title="motif label map")


def class_averages_signal(class_averages, calibration: Calibration | None = None):
    """Class-average motif images as a stack ``Signal2D`` (navigate over motifs)."""
    ca = np.asarray(class_averages) if not isinstance(class_averages, (str, bytes, dict)) else np.asarray(None)
    if ca.dtype.kind not in "fiub" or ca.ndim != 3:
        got = f"dtype {ca.dtype}" if ca.dtype.kind not in "fiub" else f"shape {ca.shape}"
        raise MotifLabError(f"class_averages must be a (K, P, P) numeric stack of motif images, got {got}.")
    s = to_signal(ca, calibration, title="motif class averages")
    s.axes_manager.navigation_axes[0].name = "motif"
    return s


def to_atomap(image, positions, labels, motif=None, calibration: Calibration | None = None):
    """Motifs as Atomap sublattices, to go on to strain, polarisation or distance maps in Atomap.

    Atomap is an optional integration (``pip install atomap``), imported only here.

    Parameters
    ----------
    image : (H, W) array
        The micrograph the positions were found on.
    positions : (N, 2) array
        Column positions, (row, col) pixels.
    labels : (N,) int
        Motif of each column (−1 unassigned, never exported).
    motif : int, optional
        Export only this motif, as one ``Sublattice``. Default: every motif, as
        an ``Atom_Lattice`` with one sublattice per motif (named ``motif 0`` …,
        coloured as motiflab draws them).
    calibration : Calibration, optional
        Pixel size and units given to the sublattices.

    Returns
    -------
    atomap Sublattice or Atom_Lattice
        Atomap holds positions as (x, y) = (col, row) pixels.
    """
    try:
        import atomap.api as am
    except ImportError:
        raise MotifLabError("exporting to Atomap needs Atomap: pip install atomap.") from None
    from ._validation import check_positions
    from .colors import motif_colors

    pos = check_positions(positions)
    labels = np.asarray(labels)
    if labels.shape != (len(pos),):
        raise MotifLabError(f"labels must have one entry per position ({len(pos)}), got shape {labels.shape}.")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise MotifLabError(f"image must be 2-D, got shape {img.shape}.")
    cal = calibration or Calibration()
    known = sorted(int(k) for k in np.unique(labels) if k >= 0)
    if motif is not None and int(motif) not in known:
        raise MotifLabError(f"there is no motif {motif!r}; the motifs are {known}.")
    colors = motif_colors(max(known) + 1 if known else 1)

    def sublattice(k):
        xy = pos[labels == k][:, ::-1]
        return am.Sublattice(xy, img, name=f"motif {k}", color=colors[k], pixel_size=cal.scale, units=cal.units)

    if motif is not None:
        return sublattice(int(motif))
    return am.Atom_Lattice(image=img, name="motiflab motifs", sublattice_list=[sublattice(k) for k in known])
