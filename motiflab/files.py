"""Writing files safely: nothing a user saved is lost, half-written or written through a symlink.

Every file motiflab writes goes through :func:`write_atomic`: the content is
written to a uniquely named temporary file created exclusively (``O_EXCL``) in
the target's own folder, flushed to disk, and then renamed over the target in
one step. A crash, a full disk or a ``kill -9`` at any moment leaves either the
old file or the new one, never a broken one; a file or symlink that happens to
carry a temporary-looking name is never touched; and the rename replaces a
symlink at the target rather than writing into whatever it points to.

:func:`check_writable` is asked first, before any work, so that a long analysis
does not end in a refusal.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import InputFileError

__all__ = ["check_writable", "write_atomic"]

# most file systems allow 255 bytes per name; the temporary name adds a few characters
_MAX_NAME_BYTES = 255 - 24


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(path, overwrite: bool = False, inputs=()) -> Path:
    """Check that ``path`` may be written; return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path : str or Path
        The file to be written.
    overwrite : bool
        Whether an existing *file* there may be replaced.
    inputs : iterable of str or Path
        Files this run reads. An input is never an output, even with ``overwrite``.

    Raises
    ------
    InputFileError
        When the path is an input, a folder, a device or FIFO, has an
        over-long name, lies in a missing folder, or exists and ``overwrite``
        is false.
    """
    if path is None or str(path) == "":
        raise InputFileError("no output path given; name the file to write.")
    p = Path(os.fspath(path))
    if len(p.name.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES:
        raise InputFileError(f"the file name {p.name[:40]!r}… is {len(p.name)} characters long; "
                             f"use a name shorter than {_MAX_NAME_BYTES} bytes.")
    for src in inputs:
        if src is not None and _same_file(p, Path(os.fspath(src))):
            raise InputFileError(f"{str(p)!r} is an input of this run; motiflab never writes over its input. "
                                 "Choose another output path.")
    if p.is_dir():
        raise InputFileError(f"{str(p)!r} is a folder; give a file name inside it, e.g. {str(p / 'result.npz')!r}.")
    if os.path.lexists(p):
        mode = os.lstat(p).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise InputFileError(f"{str(p)!r} exists and is not a regular file; choose another output path.")
        if not overwrite:
            raise InputFileError(
                f"{str(p)!r} already exists; motiflab never overwrites results silently. "
                "Choose another --out path or pass --overwrite (overwrite=True)."
            )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputFileError(f"the folder {str(parent)!r} does not exist; create it first.")
    return p


def write_atomic(path, write, overwrite: bool = False, inputs=(), binary: bool = True, by_name: bool = False) -> Path:
    """Write a file atomically: ``write(f)`` fills a private temporary file, which then replaces ``path``.

    Parameters
    ----------
    path : str or Path
        The target.
    write : callable
        ``write(fileobj)``; the file object is opened ``"wb"`` (or ``"w"``,
        UTF-8, when ``binary`` is false). With ``by_name``, ``write(tmp_path)``
        instead, for writers that take a file name (HyperSpy): the temporary
        name ends with the target's extension, so they pick the same format.
    overwrite, inputs
        As in :func:`check_writable`, which runs first.
    binary : bool

    Returns
    -------
    pathlib.Path
    """
    p = check_writable(path, overwrite, inputs)
    parent = p.parent if str(p.parent) else Path(".")
    # mkstemp creates the file with O_CREAT | O_EXCL and mode 0600: a unique name nobody else
    # holds, and never an existing file or a symlink
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:64]}.", suffix=".part" + p.suffix[:16], dir=parent)
    try:
        if by_name:
            os.close(fd)
            write(tmp)
            _fsync_path(tmp)
        else:
            with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        # a new file gets the permissions the user's umask gives (mkstemp made it private)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if not overwrite and os.path.lexists(p):  # appeared while we were writing
            raise InputFileError(f"{str(p)!r} appeared while it was being written; nothing was overwritten.")
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        _fsync_path(parent)
    except OSError:
        pass
    return p
