"""Atomic file writes: the one writer every jaxsurf file goes through.

A file is first written to a hidden temporary file in the same folder,
flushed to disk (``fsync``), renamed over the target (``os.replace``, atomic
on POSIX and Windows) and the folder is fsynced, so a run killed at any
moment leaves either the old file or the new one, never half of one. Used by
point stores, :meth:`Surface.save`, the exports, direction files, the viewer
and every figure of :mod:`jaxsurf.plot`.

Example:
    >>> from jaxsurf import _atomic
    >>> _atomic.write_text("note.txt", "hello\\n")
    PosixPath('note.txt')
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO, Callable

__all__ = ["temp_path", "fsync_dir", "fsync_file", "replace", "write_temp", "write_with",
           "write_bytes",
           "write_text", "write_via_path"]


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh hidden temporary path beside ``path`` (``.name.<pid>.<random>.tmp``).

    Args:
        path: the file that will be written.

    Returns:
        A path in the same folder, so ``os.replace`` never crosses file systems.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def fsync_dir(path: str | os.PathLike) -> None:
    """Flushes a folder's entries to disk (no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    """Flushes a closed file's contents to disk (for writers that take a path)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Renames a finished (fsynced) temporary file over ``path`` and fsyncs the folder.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


def write_via_path(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Atomically writes ``path`` with a writer that takes a file name.

    For writers that open the file themselves (``Figure.savefig``, ``h5py.File``).
    The temporary file is removed if ``write`` raises.

    Args:
        path: the target file; its folder must exist.
        write: called once with the temporary path to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> write_via_path("x.txt", lambda p: p.write_text("x"))
        PosixPath('x.txt')
    """
    tmp = temp_path(path)
    try:
        write(tmp)
        fsync_file(tmp)
        return replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_temp(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Writes and fsyncs a hidden temporary file beside ``path`` and returns its path.

    For callers that place it themselves (e.g. ``os.link`` for create-once files);
    they must remove it. :func:`write_with` does the whole write.
    """
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_with(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Atomically writes ``path`` with a writer given an open binary handle.

    Args:
        path: the target file; its folder must exist.
        write: called once with the open handle (e.g. ``lambda h: np.savez(h, **arrays)``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> write_with("x.bin", lambda h: h.write(b"x"))
        PosixPath('x.bin')
    """
    tmp = write_temp(path, write)
    try:
        return replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Atomically writes ``data`` to ``path``; returns ``path``."""
    return write_with(path, lambda handle: handle.write(data))


def write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
               newline: str | None = None) -> Path:
    """Atomically writes ``text`` to ``path``.

    Args:
        path: the target file; its folder must exist.
        text: the contents.
        encoding: text encoding.
        newline: as for :func:`open` (``"\\n"`` writes line ends unchanged on any platform).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    def by_path(tmp: Path) -> None:
        with open(tmp, "w", encoding=encoding, newline=newline) as handle:
            handle.write(text)
    return write_via_path(path, by_path)
