"""Reading ``.npz`` files that may be damaged or crafted, without surprises.

:class:`NpzReader` opens the zip archive itself and reads only the members it is
asked for. Before it allocates anything for a member it checks the member's
``.npy`` header: the dtype must be one of the kinds the caller expects (never
an object dtype, so nothing is unpickled), the shape must be what the caller
expects, and the bytes the shape needs must be exactly the bytes the member
holds. A member that declares a huge shape is therefore refused with the
caller's error class instead of raising ``MemoryError``, and members nobody
asked for are never decompressed.

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
import zipfile
import zlib
from pathlib import Path
from typing import Any, Self, cast

import numpy as np

__all__ = ["MAX_DEFLATE_RATIO", "NpzReader"]

MAX_DEFLATE_RATIO = 1100  # deflate cannot compress better than ~1032:1
_MAX_HEADER = 10_000  # bytes of an .npy header (numpy's own default limit)


class NpzReader:
    """The members of one ``.npz`` file, read one at a time, checked before allocation.

    Args:
        path: the file.
        error: the exception class raised for anything wrong with the file
            (e.g. :class:`jaxsurf.surface.SurfaceFileError`).
        what: how to call the file in messages (default: its path).
        kind: what the file should be, e.g. ``"Surface file"``.

    Example:
        >>> path = js.Surface(np.linspace(-1, 1, 3), None, {"loss": np.ones(3)}).save("s.npz")
        >>> with NpzReader(path, ValueError) as npz:
        ...     sorted(npz.names)
        ['alphas', 'header', 'metric_0']
    """

    def __init__(self, path: str | os.PathLike, error: type[Exception],
                 what: str | None = None, kind: str = ".npz file") -> None:
        self.path = Path(path)
        self.error = error
        self.what = what or str(self.path)
        self.kind = kind
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise error(self._not_zip(err)) from err
        self._infos = {info.filename[:-4]: info for info in self._zip.infolist()
                       if info.filename.endswith(".npy")}

    def _not_zip(self, err: Exception) -> str:
        try:
            with open(self.path, "rb") as handle:
                single = handle.read(6) == b"\x93NUMPY"
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

    def read(self, name: str, *, kinds: str, ndim: int | None = None,
             shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The array ``name``, after checking its header.

        Args:
            name: the member (without ``.npy``).
            kinds: allowed ``dtype.kind`` letters, e.g. ``"iuf"`` or ``"U"``.
            ndim: required number of dimensions.
            shape: required shape.

        Returns:
            The array (writable).

        Raises:
            the reader's error class: the member is missing, or its dtype, shape
            or size is not what is required, or its bytes are damaged.
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

