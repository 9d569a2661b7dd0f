"""Reader for the IDX format of (Fashion-)MNIST, with checks of the header.

IDX (LeCun et al., the MNIST page): two zero bytes, a type byte (0x08 =
unsigned byte), the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order. The files may be gzip-compressed.

Example:
    >>> import gzip, os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte.gz")
    >>> with gzip.open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(path).tolist()
    [7, 8, 9]
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

__all__ = ["IDXFormatError", "read_idx"]

_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class IDXFormatError(ValueError):
    """An IDX file is corrupt, truncated or not an IDX file at all."""


def _read_bytes(path: str) -> bytes:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise IDXFormatError(f"{path}: cannot read ({type(e).__name__}: {e}); the file is "
                             "corrupt or truncated, delete it and get it again") from e


def read_idx(path: str, *, expected_ndim: int | None = None) -> np.ndarray:
    """Reads one IDX file (raw or ``.gz``) into a numpy array.

    Args:
      path: the file.
      expected_ndim: if given, the number of dimensions the header must state
        (3 for images, 1 for labels).

    Returns:
      The array, in native byte order.

    Raises:
      IDXFormatError: bad magic number, unknown type, wrong rank, or a data
        size that does not match the header.

    Example:
      >>> path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
      >>> read_idx(path, expected_ndim=1).shape
      (10000,)
    """
    raw = _read_bytes(os.fspath(path))
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IDXFormatError(f"{path}: not an IDX file (bad magic number "
                             f"{raw[:4].hex() or 'empty file'})")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _DTYPES:
        raise IDXFormatError(f"{path}: unknown IDX data type 0x{type_code:02x}")
    if expected_ndim is not None and ndim != expected_ndim:
        raise IDXFormatError(f"{path}: header says {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IDXFormatError(f"{path}: header promises shape {shape} ({expected} bytes of data) "
                             f"but the file holds {len(raw) - header}; it is truncated or corrupt")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)
