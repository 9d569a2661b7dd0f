"""Reading ``.npz`` files that may be damaged or crafted, without surprises.

:class:`NpzReader` opens the zip archive itself and reads only the members it is
asked for. Before it allocates anything for a member it checks the member's
``.npy`` header: the dtype must be one of the kinds the caller expects (never
an object dtype, so nothing is unpickled), the shape must be what the caller
expects, and the bytes the shape needs must be exactly the bytes the member
holds. A member that declares a huge shape is therefore refused with the
caller's error class instead of raising ``MemoryError``, and members nobody
asked for are never decompressed. Declared sizes are also capped by
:mod:`jaxsurf._limits` (bytes per array, and ``max_values=`` per call).

:func:`open_regular` is how every reader opens a file it did not write this
run: only a regular file (never a FIFO, a device such as ``/dev/zero``, or,
inside a folder such as a store, a symbolic link), opened without blocking.

Example:
    >>> np.savez("s.npz", alphas=np.linspace(-1, 1, 5))
    >>> with NpzReader("s.npz", ValueError) as npz:
    ...     npz.read("alphas", kinds="iuf", ndim=1)
    array([-1. , -0.5,  0. ,  0.5,  1. ])
"""

from __future__ import annotations

import io
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Self, cast

import numpy as np

from jaxsurf import _limits

__all__ = ["MAX_DEFLATE_RATIO", "NpzReader", "open_regular"]

MAX_DEFLATE_RATIO = 1100  # deflate cannot compress better than ~1032:1
_MAX_HEADER = 10_000  # bytes of an .npy header (numpy's own default limit)


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character "
                       "device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike, error: type[Exception], *,
                 folder: str | os.PathLike | None = None, what: str | None = None) -> IO[bytes]:
    """Opens ``path`` for binary reading if, and only if, it is a regular file.

    A FIFO would block the reader forever and a device such as ``/dev/zero``
    never ends, so neither is opened for reading (the file is opened with
    ``O_NONBLOCK`` and checked with ``fstat`` before a byte is read). With
    ``folder`` (a store, a curve folder, a trajectory step) the file must also
    lie inside ``folder`` and must not be a symbolic link (``O_NOFOLLOW``), so a
    part file cannot stand for a file elsewhere.

    Args:
        path: the file.
        error: the exception class raised for a file that is not allowed.
        folder: the folder the file must lie in, or ``None`` for a file the user
            named (then a symbolic link to a regular file is followed).
        what: how to name the file in messages (default: its path).

    Returns:
        The open file (binary, positioned at 0); the caller closes it.

    Raises:
        FileNotFoundError: there is no such file.
        error: it is a FIFO, device, socket, directory, a symbolic link inside
            ``folder``, or lies outside ``folder``.

    Example:
        >>> os.mkfifo("pipe")
        >>> open_regular("pipe", ValueError)
        Traceback (most recent call last):
        ...
        ValueError: pipe is a FIFO (named pipe), not a regular file; jaxsurf reads only ...
    """
    path = Path(path)
    what = what or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if folder is not None:
        flags |= getattr(os, "O_NOFOLLOW", 0)
        inside = os.path.realpath(folder)
        if os.path.commonpath([os.path.realpath(path.parent), inside]) != inside:
            raise error(f"{what} lies outside its folder {folder}; jaxsurf reads only files "
                        f"inside it")
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise
        except OSError as err:
            raise error(f"{what} cannot be read: {err}") from err
        if not stat.S_ISREG(mode):
            raise error(f"{what} is {_kind_of(mode)}, not a regular file; jaxsurf reads only "
                        f"regular files inside {folder}")
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise error(f"{what} cannot be opened ({err}); jaxsurf reads only regular files"
                    + ("" if folder is None else f" inside {folder}")) from err
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{what} is {_kind_of(mode)}, not a regular file; jaxsurf reads only "
                        f"regular files")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class NpzReader:
    """The members of one ``.npz`` file, read one at a time, checked before allocation.

    Args:
        path: the file.
        error: the exception class raised for anything wrong with the file
            (e.g. :class:`jaxsurf.SurfaceFileError`).
        what: how to call the file in messages (default: its path).
        kind: what the file should be, e.g. ``"Surface file"``.
        folder: the folder the file must lie in (see :func:`open_regular`),
            for files found in a folder rather than named by the user.

    Example:
        >>> path = js.Surface(np.linspace(-1, 1, 3), None, {"loss": np.ones(3)}).save("s.npz")
        >>> with NpzReader(path, ValueError) as npz:
        ...     sorted(npz.names)
        ['alphas', 'header', 'metric_0']
    """

    def __init__(self, path: str | os.PathLike, error: type[Exception],
                 what: str | None = None, kind: str = ".npz file",
                 folder: str | os.PathLike | None = None) -> None:
        self.path = Path(path)
        self.error = error
        self.what = what or str(self.path)
        self.kind = kind
        self._file = open_regular(self.path, error, folder=folder, what=self.what)
        try:
            self._zip = zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            message = self._not_zip(err)
            self._file.close()
            raise error(message) from err
        except BaseException:
            self._file.close()
            raise
        self._infos = {info.filename[:-4]: info for info in self._zip.infolist()
                       if info.filename.endswith(".npy")}

    def _not_zip(self, err: Exception) -> str:
        try:
            self._file.seek(0)
            single = self._file.read(6) == b"\x93NUMPY"
        except OSError:
            single = False
        if single:
            return f"{self.what} holds a single array (.npy), not a {self.kind} (.npz)"
        return (f"{self.what} is damaged or not a readable {self.kind} (truncated or not "
                f".npz): {err}")

    @property
    def names(self) -> list[str]:
        """The array names in the archive (without ``.npy``)."""
        return list(self._infos)

    def __contains__(self, name: str) -> bool:
        return name in self._infos

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def describe(self, name: str) -> tuple[np.dtype, tuple[int, ...]]:
        """``(dtype, shape)`` that array ``name`` declares, from its header alone."""
        info = self._infos.get(name)
        if info is None:
            raise self.error(f"{self.what} has no array {name!r} (it has {sorted(self._infos)})")
        try:
            with self._zip.open(info) as member:
                dtype, found, _, _ = self._header(member, name)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as err:
            if isinstance(err, self.error):
                raise
            raise self.error(f"{self.what}: array {name!r} is damaged ({err})") from err
        return dtype, found

    def read(self, name: str, *, kinds: str, ndim: int | None = None,
             shape: tuple[int, ...] | None = None, max_values: int | None = None
             ) -> np.ndarray:
        """The array ``name``, after checking its header.

        Args:
            name: the member (without ``.npy``).
            kinds: allowed ``dtype.kind`` letters, e.g. ``"iuf"`` or ``"U"``.
            ndim: required number of dimensions.
            shape: required shape.
            max_values: the most elements the array may declare (e.g. the grid
                points cap of :mod:`jaxsurf._limits`); every array is also held to
                :func:`jaxsurf._limits.max_read_bytes`.

        Returns:
            The array (writable).

        Raises:
            the reader's error class: the member is missing, or its dtype, shape
            or size is not what is required or above the limits, or its bytes are
            damaged.
        """
        info = self._infos.get(name)
        if info is None:
            raise self.error(f"{self.what} has no array {name!r} (it has {sorted(self._infos)})")
        if info.compress_type != zipfile.ZIP_STORED and \
                info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 4096:
            raise self.error(f"{self.what}: array {name!r} claims {info.file_size} bytes from "
                             f"{info.compress_size} compressed bytes, more than compression "
                             f"can give; the file is damaged or crafted")
        try:
            with self._zip.open(info) as member:
                dtype, found, fortran, offset = self._header(member, name)
                nbytes = math.prod(found) * dtype.itemsize
                if dtype.kind not in kinds or dtype.hasobject:
                    raise self.error(f"{self.what}: array {name!r} has dtype {dtype}; expected "
                                     f"kind {' or '.join(kinds)}")
                if (ndim is not None and len(found) != ndim) or \
                        (shape is not None and tuple(found) != tuple(shape)):
                    want = shape if shape is not None else f"{ndim} dimension(s)"
                    raise self.error(f"{self.what}: array {name!r} has shape {tuple(found)}, "
                                     f"expected {want}: the arrays are inconsistent")
                if max_values is not None and math.prod(found) > max_values:
                    raise self.error(f"{self.what}: array {name!r} declares shape "
                                     f"{tuple(found)} ({math.prod(found):,} values), more "
                                     f"than the {max_values:,} it may hold")
                _limits.check_read_bytes(nbytes, self.error, f"{self.what}: array {name!r}")
                if nbytes != info.file_size - offset:
                    raise self.error(f"{self.what}: array {name!r} declares shape "
                                     f"{tuple(found)} ({nbytes} bytes) but holds "
                                     f"{info.file_size - offset} bytes; the file is damaged "
                                     f"or crafted")
                buffer = bytearray(nbytes)
                reader = cast(io.BufferedIOBase, member)  # a zipfile.ZipExtFile
                got = reader.readinto(memoryview(buffer)) if nbytes else 0
                if got != nbytes or member.read(1):
                    raise self.error(f"{self.what}: array {name!r} is truncated")
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as err:
            if isinstance(err, self.error):
                raise
            raise self.error(f"{self.what}: array {name!r} is damaged ({err})") from err
        array = np.frombuffer(buffer, dtype=dtype)
        return array.reshape(found[::-1]).T if fortran else array.reshape(found)

    def _header(self, member: Any, name: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
        """``(dtype, shape, fortran_order, header bytes)`` of an ``.npy`` member."""
        fmt = np.lib.format
        try:
            version = fmt.read_magic(member)
            if version == (1, 0):
                found, fortran, dtype = fmt.read_array_header_1_0(member, _MAX_HEADER)
            elif version in ((2, 0), (3, 0)):
                found, fortran, dtype = fmt.read_array_header_2_0(member, _MAX_HEADER)
            else:
                raise ValueError(f"unknown .npy version {version}")
        except (ValueError, SyntaxError, TypeError) as err:
            raise self.error(f"{self.what}: array {name!r} has an unreadable .npy header "
                             f"({err})") from err
        if not all(isinstance(n, int) and n >= 0 for n in found):
            raise self.error(f"{self.what}: array {name!r} has a bad shape {found!r}")
        return np.dtype(dtype), tuple(found), bool(fortran), member.tell()

