"""Atomic file writes: the one writer every file jaxsurf itself writes goes through.

A file is first written to a hidden temporary file in the same folder,
flushed to disk (``fsync``), renamed over the target (``os.replace``, atomic
on POSIX and Windows) and the folder is fsynced, so a run killed at any
moment leaves either the old file or the new one, never half of one. Used by
point stores (their ``request.json`` through :func:`create_once`),
:meth:`Surface.save`, curves, the exports (``.h5`` through
:func:`write_via_path`), direction files, the viewer, every figure of
:mod:`jaxsurf.plot`, and the ``fit_config.json`` / ``config.json`` of
:func:`jaxsurf.connect.fit_curve` and :func:`jaxsurf.train.fit`.

Two kinds of file are written otherwise, on purpose:

* **Append-only logs** (``log.jsonl`` of ``fit_curve`` and ``train.fit``)
  grow by one line per epoch with :func:`append_line`, which writes a whole
  line and fsyncs it. A crash can at worst leave a *torn last line* (no
  newline at its end); :func:`read_json_lines` drops it when the log is read,
  and :func:`append_line` cuts it off before appending, so a torn tail never
  makes a run unresumable. (Rewriting the whole log atomically every epoch
  would also work, at a cost growing with the run.)
* **Orbax checkpoints** (:class:`jaxsurf.trajectory.TrajectoryRecorder`, used
  by ``train.fit`` and ``fit_curve``) are written by orbax itself, which
  finalises each step directory atomically in its own way.

Nothing else in the package opens a file for writing.

Example:
    >>> from jaxsurf._io import atomic
    >>> atomic.write_text("note.txt", "hello\\n")
    PosixPath('note.txt')
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Callable

from jaxsurf._io.jsonfile import loads, read_bounded

__all__ = ["temp_path", "fsync_dir", "fsync_file", "replace", "write_temp", "write_with",
           "create_once", "write_bytes", "write_text", "write_via_path", "append_line",
           "read_json_lines"]


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


def create_once(path: str | os.PathLike, data: bytes) -> Path:
    """Creates ``path`` holding ``data`` unless it exists: atomic and exclusive.

    The data are written to a temporary file (:func:`write_temp`) that is then
    hard-linked to ``path`` (``os.link`` fails if ``path`` exists, so of two
    processes creating the same file, one wins and the other keeps the
    winner's); where the file system has no hard links it is renamed into
    place (atomic, not exclusive). Used for a store's ``request.json``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> _ = create_once("first.json", b"1")
        >>> _ = create_once("first.json", b"2")
        >>> Path("first.json").read_bytes()
        b'1'
    """
    path = Path(path)
    tmp = write_temp(path, lambda handle: handle.write(data))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # no hard links here: not exclusive, but still atomic
        if not path.exists():
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


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


def append_line(path: str | os.PathLike, line: str) -> Path:
    """Appends one whole line to a log (the append protocol; see the module docstring).

    A torn last line left by an earlier crash (bytes after the last newline)
    is cut off first, so the new line never glues onto a fragment; then
    ``line`` and its newline are written in one call and fsynced.

    Args:
        path: the log file (created if missing; its folder must exist).
        line: one line of text, without a newline.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> _ = append_line("log.jsonl", '{"epoch": 1}')
        >>> read_json_lines("log.jsonl")
        [{'epoch': 1}]
    """
    if "\n" in line or "\r" in line:
        raise ValueError("append_line writes one line: the text must not hold a line break")
    path = Path(path)
    created = not os.path.lexists(path)
    if not created and not stat.S_ISREG(os.lstat(path).st_mode):
        raise ValueError(f"{path} is not a regular file (a link, folder, FIFO or device); "
                         f"jaxsurf appends its logs only to files it wrote: move it away")
    with open(path, "ab") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size:
            with open(path, "rb") as reader:
                old = reader.read()  # a log: one short line per epoch
            if not old.endswith(b"\n"):  # a torn line from a crash: cut it off
                handle.truncate(old.rfind(b"\n") + 1)
        handle.write(line.encode("utf-8") + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        fsync_dir(path.parent)
    return path


def read_json_lines(path: str | os.PathLike, error: type[Exception] = ValueError, *,
                    key: str | None = None) -> list[Any]:
    """The JSON values of the complete lines of a log written with :func:`append_line`
    (``[]`` if there is no log).

    The reading half of the append protocol: a last line without its newline
    is a torn append (the run was killed while writing it) and is dropped, not
    an error. The log is opened only if it is a regular file inside its folder
    (:func:`jaxsurf._io.npz.open_regular`), read up to
    :data:`jaxsurf._io.jsonfile.MAX_JSON_CHARS`, and every line parsed with
    :func:`jaxsurf._io.jsonfile.loads`; anything else raises ``error`` naming the file.
    With ``key`` (e.g. ``"epoch"``), every line must be an object holding an
    integer under ``key``.

    Example:
        >>> _ = Path("log.jsonl").write_bytes(b'{"epoch": 1}\\n{"epo')
        >>> read_json_lines("log.jsonl")
        [{'epoch': 1}]
    """
    path = Path(path)
    try:
        data = read_bounded(path, error, folder=path.parent)
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # what follows the last newline is torn (or empty)
    rows = [loads(line, error, f"{path} line {number}")
            for number, line in enumerate(lines, start=1) if line.strip()]
    for number, row in enumerate(rows, start=1):
        if key is not None and not (isinstance(row, dict) and isinstance(row.get(key), int)):
            raise error(f"{path}: row {number} is not an object with an integer {key!r}; the "
                        f"log is damaged or not jaxsurf's: move it away")
    return rows
