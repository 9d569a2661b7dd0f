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
    >>> s = js.Surface.load("ref.h5")
    >>> s.metrics["train_loss"]                 # [i, j] at (s.alphas[i], s.betas[j])
    array([[0., 3.],
           [1., 4.],
           [2., 5.]])
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxsurf import _atomic
from jaxsurf.surface import Surface, SurfaceFileError

__all__ = ["read_h5", "write_h5", "read_reference_directions"]

_COORDINATES = ("xcoordinates", "ycoordinates")
_UNFILLED = -1.0  # the reference initialises every value to -1 before computing it
_MAX_VALUES = 100_000_000  # refuse datasets that would not fit a grid (crafted files)


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reading and writing .h5 files needs h5py: "
                          "pip install 'jaxsurf[h5]'") from err
    return h5py


def _coordinates(f: Any, name: str, path: Path) -> np.ndarray:
    if name not in f or not hasattr(f[name], "shape"):
        raise SurfaceFileError(f"{path} has no dataset {name!r}: not a loss-landscape surface "
                               f"file (it has {sorted(f.keys())})")
    ds = f[name]
    if len(ds.shape) != 1 or ds.shape[0] == 0 or ds.shape[0] > _MAX_VALUES \
            or ds.dtype.kind not in "iuf":
        raise SurfaceFileError(f"{path}: dataset {name!r} must be a non-empty 1-D array of "
                               f"numbers, got shape {ds.shape} dtype {ds.dtype}")
    return np.asarray(ds[...], np.float64)


def read_h5(path: str | os.PathLike) -> Surface:
    """Reads a loss-landscape surface file, converting its orientation to ours.

    Every numeric dataset with one value per grid point becomes a metric
    under its own name (accuracies stay in percent, as in the file); values
    still at the reference's placeholder ``-1`` (not computed yet) become NaN
    and are counted in ``metadata["unfilled"]``.

    Raises:
        SurfaceFileError: no ``xcoordinates``, coordinates that are not 1-D
            numbers, no metric, or a metric of the wrong size (naming the dataset).

    Example:
        >>> _ = js.export.write_h5(surface, "surface.h5")
        >>> s = read_h5("surface.h5"); s.metrics["train_loss"].shape
        (7, 7)
    """
    h5py = _h5py()
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise SurfaceFileError(f"{path} is not a readable HDF5 file: {err}") from err
    with f:
        x = _coordinates(f, "xcoordinates", path)
        y = _coordinates(f, "ycoordinates", path) if "ycoordinates" in f else None
        size = len(x) * (1 if y is None else len(y))
        metrics: dict[str, np.ndarray] = {}
        unfilled: dict[str, int] = {}
        for name in f:
            ds = f[name]
            if name in _COORDINATES or not hasattr(ds, "shape") or ds.dtype.kind not in "iuf" \
                    or ds.shape == ():
                continue  # dir_file (a string), groups, scalars
            if int(np.prod(ds.shape)) != size:
                raise SurfaceFileError(
                    f"{path}: dataset {name!r} has shape {ds.shape}, but the grid has "
                    f"{len(x)} x-coordinates" + ("" if y is None else f" and {len(y)} "
                    f"y-coordinates") + f" ({size} values)")
            values = np.asarray(ds[...], np.float64).reshape(-1)
            missing = values == _UNFILLED
            if missing.any():
                values = np.where(missing, np.nan, values)
                unfilled[name] = int(missing.sum())
            metrics[name] = values if y is None else values.reshape(len(y), len(x)).T
        if not metrics:
            raise SurfaceFileError(f"{path} has coordinates but no metric dataset (e.g. "
                                   f"train_loss); it has {sorted(f.keys())}")
        meta: dict[str, Any] = {}
        if "jaxsurf_metadata" in f.attrs:
            try:
                meta = dict(json.loads(str(f.attrs["jaxsurf_metadata"])))
            except (ValueError, TypeError):
                meta = {}
        dir_file = f["dir_file"][()] if "dir_file" in f and hasattr(f["dir_file"], "shape") \
            else None
    if isinstance(dir_file, bytes):
        dir_file = dir_file.decode("utf-8", "replace")
    meta.update({"kind": meta.get("kind", "plane" if y is not None else "line"),
                 "source": "loss-landscape .h5", "file": os.fspath(path),
                 "accuracy_unit": "percent", "unfilled": unfilled})
    if isinstance(dir_file, str):
        meta["dir_file"] = dir_file
    return Surface(x, y, metrics, meta)


def _reference_name(name: str) -> tuple[str, float]:
    """The reference's dataset name for one of our metrics, and the factor applied."""
    if name == "loss":
        return "train_loss", 1.0
    if name == "accuracy":
        return "train_acc", 100.0
    return name, 1.0


def write_h5(surface: Surface, path: str | os.PathLike) -> Path:
    """Writes ``surface`` as a loss-landscape ``.h5`` file (atomically).

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
    return _atomic.write_via_path(path, write)


def read_reference_directions(path: str | os.PathLike) -> list[list[np.ndarray]]:
    """The directions of a loss-landscape direction file: ``[xdirection]`` or
    ``[xdirection, ydirection]``, each a list of numpy arrays in the order of
    the PyTorch model's ``parameters()`` (``dir_type='weights'``) or
    ``state_dict()`` (``'states'``), in PyTorch layout. See
    ``docs/frameworks.md`` for mapping them onto Flax or Equinox params.

    Example:
        >>> import h5py
        >>> with h5py.File("dirs.h5", "w") as f:   # as net_plotter.py writes them
        ...     for name in ("xdirection", "ydirection"):
        ...         f[f"{name}/0"], f[f"{name}/1"] = np.ones((16, 3, 3, 3)), np.zeros(16)
        >>> xdir, ydir = read_reference_directions("dirs.h5")
        >>> [w.shape for w in xdir]
        [(16, 3, 3, 3), (16,)]
    """
    h5py = _h5py()
    path = Path(path)
    with h5py.File(path, "r") as f:
        if "xdirection" not in f:
            raise SurfaceFileError(f"{path} has no group 'xdirection': not a loss-landscape "
                                   f"direction file (it has {sorted(f.keys())})")
        out = []
        for name in ("xdirection", "ydirection"):
            if name not in f:
                continue
            group = f[name]
            out.append([np.asarray(group[str(i)][...]) for i in range(len(group))])
    return out
