"""The Surface file (``.npz``): writing and reading its arrays and header.

:meth:`jaxsurf.Surface.save` and :meth:`jaxsurf.Surface.load` are the public
face; this module holds the file format. It works on a Surface's parts
(:class:`Parts`) and never imports :mod:`jaxsurf.surface`, so the I/O layer
sits below the data type it stores.

The file holds ``alphas`` (and ``betas``, ``gammas`` when present), one array
``metric_<i>`` per metric, ``evaluated`` for adaptive grids, and ``header``:
the JSON of a :class:`jaxsurf._io.header.Header` of format
``"jaxsurf.surface"`` with the metric names and the metadata.

Example:
    >>> parts = Parts(np.linspace(-1, 1, 3), None, None, {"loss": np.ones(3)}, {}, None)
    >>> path = write("line.npz", parts)
    >>> read(path).metrics["loss"]
    array([1., 1., 1.])
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jaxsurf import _limits, _validate
from jaxsurf._io import atomic
from jaxsurf._io.header import FORMATS, Header
from jaxsurf._io.npz import NpzReader

__all__ = ["FORMAT", "FORMAT_VERSION", "Parts", "SurfaceFileError", "write", "read"]

FORMAT = "jaxsurf.surface"
FORMAT_VERSION = FORMATS[FORMAT]  # the versions of every kind: jaxsurf._io.header
AXES = ("alphas", "betas", "gammas")


class SurfaceFileError(ValueError):
    """A Surface file that cannot be read: missing, truncated, foreign or too new."""


class Parts(NamedTuple):
    """What a Surface file holds, in the order of ``Surface(...)``'s arguments."""

    alphas: np.ndarray
    betas: np.ndarray | None
    gammas: np.ndarray | None
    metrics: dict[str, np.ndarray]
    metadata: dict[str, Any]
    evaluated: np.ndarray | None


def with_suffix(path: str | os.PathLike) -> Path:
    """``path`` with ``.npz`` added when it has another suffix (what ``save`` writes)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def write(path: str | os.PathLike, parts: Parts) -> Path:
    """Writes ``parts`` to ``path`` (``.npz`` added when missing), atomically.

    Returns:
        The path written.
    """
    path = with_suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = Header.new(FORMAT, metadata=parts.metadata, metric_names=list(parts.metrics))
    try:
        header_json = header.to_json(allow_nan=True)
    except TypeError as err:
        raise TypeError(f"Surface metadata must be JSON-serialisable: {err}") from err
    arrays = {"alphas": parts.alphas, "header": np.array(header_json)}
    if parts.betas is not None:
        arrays["betas"] = parts.betas
    if parts.gammas is not None:
        arrays["gammas"] = parts.gammas
    for i, name in enumerate(parts.metrics):
        arrays[f"metric_{i}"] = parts.metrics[name]
    if parts.evaluated is not None:
        arrays["evaluated"] = parts.evaluated
    return atomic.write_with(path, lambda handle: np.savez(handle, allow_pickle=False, **arrays))


def read(path: str | os.PathLike) -> Parts:
    """The parts of the Surface file at ``path``, every array checked before it is read.

    Raises:
        SurfaceFileError: not an intact Surface file of a version this jaxsurf reads.
    """
    path = Path(path)
    with NpzReader(path, SurfaceFileError, kind="Surface file") as npz:
        if "header" not in npz or "alphas" not in npz:
            raise SurfaceFileError(f"{path} is an .npz file but not a jaxsurf Surface "
                                   f"(it has arrays {sorted(npz.names)})")
        names, metadata = read_header(path, npz.read("header", kinds="U", shape=()))
        axes: dict[str, np.ndarray] = {}
        try:
            for axis in AXES:
                if axis in npz:
                    axes[axis] = _validate.grid(npz.read(
                        axis, kinds="iuf", ndim=1, max_values=_limits.max_grid_points()), axis)
        except ValueError as err:
            if isinstance(err, SurfaceFileError):
                raise
            raise SurfaceFileError(f"{path} holds bad coordinates: {err}") from err
        grid = tuple(len(axes[a]) for a in AXES if a in axes)
        _limits.check_grid_points(math.prod(grid), SurfaceFileError, str(path))
        _limits.check_read_bytes(len(names) * math.prod(grid) * 8, SurfaceFileError,
                                 f"{path}: {len(names)} metrics of {math.prod(grid):,} values")
        missing = [f"metric_{i}" for i in range(len(names)) if f"metric_{i}" not in npz]
        if missing:
            raise SurfaceFileError(f"{path} is missing arrays {missing}: the file is damaged")
        metrics = {name: npz.read(f"metric_{i}", kinds="biuf", shape=grid)
                   for i, name in enumerate(names)}
        evaluated = npz.read("evaluated", kinds="b", shape=grid) if "evaluated" in npz else None
    return Parts(axes["alphas"], axes.get("betas"), axes.get("gammas"), metrics, metadata,
                 evaluated)


def read_header(path: Path, header_array: np.ndarray) -> tuple[list[str], dict[str, Any]]:
    """The metric names and metadata of a Surface file's header, every field's type
    checked (a :class:`SurfaceFileError` says which is wrong)."""
    header = Header.parse(str(header_array), SurfaceFileError, str(path)).check(
        FORMAT, SurfaceFileError, str(path), max_version=FORMAT_VERSION)
    names = header.fields.get("metric_names")
    if not isinstance(names, list):
        raise SurfaceFileError(f"{path} has a damaged header (metric names or metadata "
                               f"missing)")
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) < len(names):
        raise SurfaceFileError(f"{path} has a damaged header: metric_names must be distinct "
                               f"strings, got {names!r:.200}")
    return names, header.metadata
