"""How much a jaxsurf file may declare, checked before anything is allocated.

A file's headers say how big its arrays are (an ``.npy`` header's shape, an
HDF5 dataset's shape, a direction file's leaf shapes, a store's number of
points, an orbax checkpoint's metadata). A crafted or damaged file can
declare far more than it holds: 10^8 deflated zeros fit in a 392 KB ``.npz``
and a (40000, 40000) chunked HDF5 dataset in 1.9 KB. Every reader checks the
declared size against the two limits below *before* reading, and refuses
with the file's name, the size and the limit:

- :func:`max_grid_points`: grid points of one surface file (the product of
  its coordinate lengths, ``.npz`` and ``.h5`` alike). Default
  :data:`MAX_GRID_POINTS` = 10,000,000 (a 3162 x 3162 plane; a plane
  evaluated at that many points takes hours even on a GPU). Environment
  override: ``JAXSURF_MAX_GRID_POINTS``.
- :func:`max_read_bytes`: bytes of any one array read from a file (a
  direction or trajectory leaf, a store part's array, a surface metric).
  Default: a quarter of the machine's physical memory (4 GiB where it cannot
  be found). Environment override: ``JAXSURF_MAX_READ_BYTES``.

The limit on points one evaluation *computes* (250,000 unless
``max_points=``, ``--max-points`` or ``JAXSURF_MAX_POINTS`` says more) is
:func:`jaxsurf._validate.max_points`; it reads its environment variable with
:func:`env_int` too.

Example:
    >>> check_grid_points(10**8, ValueError, "plane.npz")
    Traceback (most recent call last):
    ...
    ValueError: plane.npz declares 100,000,000 grid points, more than the 10,000,000 ...
"""

from __future__ import annotations

import os

__all__ = ["env_int", "MAX_GRID_POINTS", "max_grid_points", "max_read_bytes", "check_grid_points",
           "check_read_bytes"]

MAX_GRID_POINTS = 10_000_000
_FALLBACK_READ_BYTES = 4 * 2**30


def env_int(name: str) -> int | None:
    """A positive integer from the environment variable ``name`` (``_`` and ``,`` allowed as
    digit separators), or ``None`` if unset; anything else is a ``ValueError`` naming it.

    Example:
        >>> env_int("JAXSURF_NO_SUCH_VARIABLE") is None
        True
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip().replace("_", "").replace(",", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"the environment variable {name}={raw!r} must be a positive integer, "
                         f"e.g. {name}=1000000")
    return value


def max_grid_points() -> int:
    """The most grid points a surface file may declare (``JAXSURF_MAX_GRID_POINTS``).

    Example:
        >>> max_grid_points()
        10000000
    """
    return env_int("JAXSURF_MAX_GRID_POINTS") or MAX_GRID_POINTS


def max_read_bytes() -> int:
    """The most bytes one array read from a file may take (``JAXSURF_MAX_READ_BYTES``;
    default a quarter of physical memory)."""
    override = env_int("JAXSURF_MAX_READ_BYTES")
    if override is not None:
        return override
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return _FALLBACK_READ_BYTES


def check_grid_points(points: int, error: type[Exception], what: str) -> int:
    """``points``, or ``error`` naming ``what`` when it exceeds :func:`max_grid_points`."""
    limit = max_grid_points()
    if points > limit:
        raise error(f"{what} declares {points:,} grid points, more than the {limit:,} jaxsurf "
                    f"reads from one file (a damaged or crafted file?); if it is genuine, "
                    f"raise the limit with the environment variable JAXSURF_MAX_GRID_POINTS")
    return points


def check_read_bytes(nbytes: int, error: type[Exception], what: str) -> int:
    """``nbytes``, or ``error`` naming ``what`` when it exceeds :func:`max_read_bytes`."""
    limit = max_read_bytes()
    if nbytes > limit:
        raise error(f"{what} declares {nbytes:,} bytes, more than the {limit:,} jaxsurf reads "
                    f"for one array (a damaged or crafted file?); if it is genuine, raise "
                    f"the limit with the environment variable JAXSURF_MAX_READ_BYTES")
    return nbytes
