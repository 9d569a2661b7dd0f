"""The ``.h5`` files of the PyTorch reference tool (tomgoldstein/loss-landscape).

Its surface files hold ``xcoordinates``, optionally ``ycoordinates``, and
one dataset per metric (``train_loss``, ``train_acc``, ``test_loss``,
``test_acc``; accuracies in percent). Orientation: its ``plot_surface.py``
fills ``values.ravel()[k]`` with the value at the ``k``-th point of
``np.meshgrid(x, y)`` (``x`` fastest), and its ``plot_2D.py`` draws
``contour(X, Y, Z)`` with ``X, Y = np.meshgrid(x, y)``: ``Z[i, j]`` is the
value at ``(x[j], y[i])``, the transpose of ours (``metrics[name][i, j]`` at
``(alphas[i], betas[j])``). Its own files store that array with shape
``(len(x), len(y))``, which is the same thing for the square grids it
writes; the ravel order is what counts, and it is what we read.

Reading: :meth:`jaxsurf.Surface.load` on a ``.h5`` path. Writing:
:func:`jaxsurf.export.write_h5` writes ``Z`` with shape ``(len(y), len(x))``,
which the reference's ``plot_2D.py`` and (for square grids) ``h52vtp.py`` read.
Needs ``h5py`` (``pip install 'jaxsurf[h5]'``).

Example:
    >>> import h5py
    >>> x, y = np.linspace(-1, 1, 3), np.linspace(-1, 1, 2)   # what plot_surface.py writes
    >>> with h5py.File("ref.h5", "w") as f:
    ...     f["xcoordinates"], f["ycoordinates"] = x, y
    ...     f["train_loss"] = np.arange(6.0).reshape(2, 3)   # Z[i, j] at (x[j], y[i])
    >>> s = js.Surface.load("ref.h5")          # through read_h5
    >>> s.metrics["train_loss"]                 # [i, j] at (s.alphas[i], s.betas[j])
    array([[0., 3.],
           [1., 4.],
           [2., 5.]])
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxsurf import _limits, _validate
from jaxsurf._io import atomic, jsonfile
from jaxsurf._io.npz import open_regular
from jaxsurf._io.surfacefile import Parts, SurfaceFileError

__all__ = ["read_h5", "write_h5", "read_reference_directions"]

_COORDINATES = ("xcoordinates", "ycoordinates")
_UNFILLED = -1.0  # the reference initialises every value to -1 before computing it
_METADATA_ATTR = "jaxsurf_metadata"  # present in files jaxsurf wrote (write_h5)


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading and writing .h5 files needs h5py: "
                          "pip install 'jaxsurf[h5]'") from err
    return h5py


def _open(path: Path) -> Any:
    """The HDF5 file at ``path`` (a regular file), open for reading."""
    open_regular(path, SurfaceFileError).close()  # no FIFO, no device
    try:
        return _h5py().File(path, "r")
    except OSError as err:
        raise SurfaceFileError(f"{path} is not a readable HDF5 file: {err}") from err


def _hard_links_only(group: Any, path: Path) -> None:
    """Refuses every member of ``group`` that is not a hard link inside the file.

    An external link, a soft link (which may point anywhere, or nowhere) or a
    dataset whose values live in other files (virtual or external storage)
    would make this file's values another file's.
    """
    h5py = _h5py()
    for name in group:
        link = group.get(name, getlink=True)
        where = f"{group.name.rstrip('/')}/{name}"
        if isinstance(link, h5py.ExternalLink):
            raise SurfaceFileError(
                f"{path}: {where!r} is an external link to {link.path!r} in {link.filename!r}; "
                f"jaxsurf reads values only from the file itself: copy the data into it "
                f"(h5copy, or h5py's Group.copy)")
        if not isinstance(link, h5py.HardLink):
            raise SurfaceFileError(
                f"{path}: {where!r} is a {type(link).__name__} to {getattr(link, 'path', '?')!r}"
                f"; jaxsurf reads datasets only through hard links inside the file: store the "
                f"dataset under this name")
        obj = group[name]
        if isinstance(obj, h5py.Dataset) and (obj.is_virtual or obj.external):
            raise SurfaceFileError(
                f"{path}: dataset {where!r} keeps its values in other files ("
                f"{'virtual dataset' if obj.is_virtual else 'external storage'}); jaxsurf reads "
                f"values only from the file itself")


def _coordinates(f: Any, name: str, path: Path) -> np.ndarray:
    if name not in f or not hasattr(f[name], "shape"):
        raise SurfaceFileError(f"{path} has no dataset {name!r}: not a loss-landscape surface "
                               f"file (it has {sorted(f.keys())})")
    ds = f[name]
    if len(ds.shape) != 1 or ds.shape[0] == 0 or ds.dtype.kind not in "iuf":
        raise SurfaceFileError(f"{path}: dataset {name!r} must be a non-empty 1-D array of "
                               f"numbers, got shape {ds.shape} dtype {ds.dtype}")
    _limits.check_grid_points(ds.shape[0], SurfaceFileError, f"{path}: dataset {name!r}")
    try:
        return _validate.grid(np.asarray(ds[...], np.float64), name)
    except ValueError as err:
        raise SurfaceFileError(f"{path}: dataset {name!r} holds bad coordinates: {err}") from err


def _jaxsurf_metadata(f: Any, path: Path) -> dict[str, Any] | None:
    """The metadata jaxsurf's :func:`write_h5` stored, or ``None`` for a file it did not write."""
    if _METADATA_ATTR not in f.attrs:
        return None
    raw = f.attrs[_METADATA_ATTR]
    if isinstance(raw, np.ndarray) and raw.shape == ():
        raw = raw[()]
    if not isinstance(raw, (str, bytes)):
        raise SurfaceFileError(f"{path}: attribute {_METADATA_ATTR!r} must be JSON text, got "
                               f"{type(raw).__name__}; the file is damaged")
    meta = jsonfile.loads(raw, SurfaceFileError, f"attribute {_METADATA_ATTR!r} of {path}")
    if not isinstance(meta, dict):
        raise SurfaceFileError(f"{path}: attribute {_METADATA_ATTR!r} must be a JSON object, "
                               f"got {type(meta).__name__}; the file is damaged")
    return meta


def read_h5(path: str | os.PathLike) -> Parts:
    """Reads a loss-landscape surface file, converting its orientation to ours
    (the parts of a Surface: :meth:`jaxsurf.Surface.load` makes the Surface).

    Every numeric dataset with one value per grid point becomes a metric
    under its own name (accuracies stay in percent, as in the file). In a file
    of the reference tool (no ``jaxsurf_metadata`` attribute), values still at
    its placeholder ``-1`` (not computed yet) become NaN, counted per metric
    in ``metadata["unfilled"]`` with ``metadata["unfilled_marker"] = -1.0``; a
    file written by :func:`write_h5` is read as written (a loss of exactly
    ``-1`` stays ``-1``).

    Raises:
        SurfaceFileError: no ``xcoordinates``, coordinates that are not 1-D,
            finite, strictly increasing numbers, no metric, a metric of the
            wrong size (naming the dataset), more grid points than
            :func:`jaxsurf._limits.max_grid_points`, or a link (external,
            soft, dangling) instead of a dataset stored in the file.

    Example:
        >>> _ = js.export.write_h5(surface, "surface.h5")
        >>> read_h5("surface.h5").metrics["train_loss"].shape
        (7, 7)
    """
    path = Path(path)
    with _open(path) as f:
        _hard_links_only(f, path)
        stored = _jaxsurf_metadata(f, path)
        x = _coordinates(f, "xcoordinates", path)
        y = _coordinates(f, "ycoordinates", path) if "ycoordinates" in f else None
        size = len(x) * (1 if y is None else len(y))
        _limits.check_grid_points(size, SurfaceFileError, str(path))
        metrics: dict[str, np.ndarray] = {}
        unfilled: dict[str, int] = {}
        names = [name for name in f if name not in _COORDINATES and hasattr(f[name], "shape")
                 and f[name].dtype.kind in "iuf" and f[name].shape != ()]  # not dir_file,
        _limits.check_read_bytes(len(names) * size * 8, SurfaceFileError,  # groups, scalars
                                 f"{path}: {len(names)} metric datasets of {size:,} values")
        for name in names:
            ds = f[name]
            if math.prod(ds.shape) != size:
                raise SurfaceFileError(
                    f"{path}: dataset {name!r} has shape {ds.shape}, but the grid has "
                    f"{len(x)} x-coordinates" + ("" if y is None else f" and {len(y)} "
                    f"y-coordinates") + f" ({size} values)")
            values = np.asarray(ds[...], np.float64).reshape(-1)
            missing = values == _UNFILLED
            if stored is None and missing.any():  # only the reference tool's own marker
                values = np.where(missing, np.nan, values)
                unfilled[name] = int(missing.sum())
            metrics[name] = values if y is None else values.reshape(len(y), len(x)).T
        if not metrics:
            raise SurfaceFileError(f"{path} has coordinates but no metric dataset (e.g. "
                                   f"train_loss); it has {sorted(f.keys())}")
        dir_file = f["dir_file"][()] if "dir_file" in f and hasattr(f["dir_file"], "shape") \
            else None
    if isinstance(dir_file, bytes):
        dir_file = dir_file.decode("utf-8", "replace")
    meta: dict[str, Any] = dict(stored or {})
    meta.update({"kind": meta.get("kind", "plane" if y is not None else "line"),
                 "source": "loss-landscape .h5", "file": os.fspath(path),
                 "accuracy_unit": "percent"})
    if stored is None:  # the reference tool's file: say what was read as NaN
        meta.update({"unfilled": unfilled, "unfilled_marker": _UNFILLED})
    if isinstance(dir_file, str):
        meta["dir_file"] = dir_file
    return Parts(x, y, None, metrics, meta, None)


def _reference_name(name: str) -> tuple[str, float]:
    """The reference's dataset name for one of our metrics, and the factor applied."""
    if name == "loss":
        return "train_loss", 1.0
    if name == "accuracy":
        return "train_acc", 100.0
    return name, 1.0


def write_h5(surface: Any, path: str | os.PathLike) -> Path:
    """Writes ``surface`` (a :class:`jaxsurf.Surface`) as a loss-landscape ``.h5`` file
    (atomically).

    ``loss`` is written as ``train_loss`` and ``accuracy`` as ``train_acc`` in
    percent (the reference's names and unit); other metrics keep their names.
    Plane values are stored as ``Z[i, j]`` at ``(x[j], y[i])`` with shape
    ``(len(betas), len(alphas))``; our metadata goes to the attribute
    ``jaxsurf_metadata`` (JSON).

    Returns:
        The path written (``.h5`` added when missing).

    Example:
        >>> js.export.write_h5(surface, "plane.h5")   # then: python plot_2D.py --surf_file plane.h5
        PosixPath('plane.h5')
    """
    h5py = _h5py()
    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        path = path.with_name(path.name + ".h5")
    if getattr(surface, "gammas", None) is not None:
        raise ValueError("the reference tool's .h5 files hold lines and planes only; save a "
                         "volume with Surface.save")
    path.parent.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f["xcoordinates"] = np.asarray(surface.alphas, np.float64)
            if surface.betas is not None:
                f["ycoordinates"] = np.asarray(surface.betas, np.float64)
            for name, values in surface.metrics.items():
                target, factor = _reference_name(name)
                if target in written:
                    raise ValueError(f"two metrics would be written as {target!r}; rename one")
                written.add(target)
                data = np.asarray(values, np.float64) * factor
                f[target] = data if surface.betas is None else data.T
            f.attrs["jaxsurf_metadata"] = json.dumps(surface.metadata)
    return atomic.write_via_path(path, write)


def read_reference_directions(path: str | os.PathLike) -> list[list[np.ndarray]]:
    """The directions of a loss-landscape direction file: ``[xdirection]`` or
    ``[xdirection, ydirection]``, each a list of numpy arrays in the order of
    the PyTorch model's ``parameters()`` (``dir_type='weights'``) or
    ``state_dict()`` (``'states'``), in PyTorch layout. See
    ``docs/frameworks.md`` for mapping them onto Flax or Equinox params.
    Public as ``js.read_reference_directions``.

    Raises:
        SurfaceFileError: not an HDF5 file, no ``xdirection`` group, a missing
            or non-numeric tensor, a link instead of a dataset stored in the
            file, or a tensor larger than :func:`jaxsurf._limits.max_read_bytes`.

    Example:
        >>> import h5py
        >>> with h5py.File("dirs.h5", "w") as f:   # as net_plotter.py writes them
        ...     for name in ("xdirection", "ydirection"):
        ...         f[f"{name}/0"], f[f"{name}/1"] = np.ones((16, 3, 3, 3)), np.zeros(16)
        >>> xdir, ydir = js.read_reference_directions("dirs.h5")
        >>> [w.shape for w in xdir]
        [(16, 3, 3, 3), (16,)]
    """
    path = Path(path)
    with _open(path) as f:
        _hard_links_only(f, path)
        if "xdirection" not in f or not hasattr(f["xdirection"], "keys"):
            raise SurfaceFileError(f"{path} has no group 'xdirection': not a loss-landscape "
                                   f"direction file (it has {sorted(f.keys())})")
        out = []
        for name in ("xdirection", "ydirection"):
            if name not in f:
                continue
            group = f[name]
            _hard_links_only(group, path)
            out.append([_direction_array(group, str(i), path) for i in range(len(group))])
    return out


def _direction_array(group: Any, key: str, path: Path) -> np.ndarray:
    """One tensor of a reference direction file, its size checked before reading."""
    where = f"{group.name}/{key}"
    if key not in group or not hasattr(group[key], "dtype"):
        raise SurfaceFileError(f"{path}: {where!r} is missing or not a dataset; the group "
                               f"{group.name!r} must hold datasets '0', '1', ... in the order "
                               f"of the model's parameters")
    ds = group[key]
    if ds.dtype.kind not in "iuf":
        raise SurfaceFileError(f"{path}: dataset {where!r} has dtype {ds.dtype}; expected numbers")
    _limits.check_read_bytes(math.prod(ds.shape) * ds.dtype.itemsize, SurfaceFileError,
                             f"{path}: dataset {where!r}")
    return np.asarray(ds[...])
