"""The implementation of :mod:`jaxsurf.surface`; its public face, with the
documentation and examples, is ``jaxsurf/surface.py``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from jaxsurf import _validate
from jaxsurf._io import h5, surfacefile
from jaxsurf._io.surfacefile import SurfaceFileError

__all__ = ["Surface", "SurfaceFileError", "SEM_SUFFIX"]

FORMAT = surfacefile.FORMAT  # the file format lives in jaxsurf._io.surfacefile
FORMAT_VERSION = surfacefile.FORMAT_VERSION

# A metric ``name + SEM_SUFFIX`` holds the standard error of the mean of ``name``
# (written by subsampled evaluation, drawn as a band by ``js.plot.line``).
SEM_SUFFIX = "_sem"


def _as_coordinates(values: Any, name: str) -> np.ndarray:
    """Finite, real, strictly increasing 1-D coordinates (see :func:`jaxsurf._validate.grid`)."""
    return _validate.grid(values, name)


@dataclass
class Surface:
    """Metric values on a 1-D line or a 2-D grid of coordinates.

    Attributes:
        alphas: coordinates along the first direction, shape ``(n,)``.
        betas: coordinates along the second direction, shape ``(m,)``, or
            ``None`` for a line.
        metrics: name → numpy array of shape ``(n, m)`` (plane) or ``(n,)``
            (line); ``metrics[k][i, j]`` is at ``(alphas[i], betas[j])``.
        metadata: JSON-serialisable description of how the values were made
            (directions, normalization, seeds, data size, batch size, version).
        gammas: coordinates along a third direction, shape ``(l,)``, for a
            volume (``metrics[k][i, j, k3]`` at ``(alphas[i], betas[j],
            gammas[k3])``); ``None`` (default) for a line or a plane.
        evaluated: ``None`` when every value was evaluated, else a boolean
            array of the grid's shape: ``True`` where the value is exact,
            ``False`` where it was interpolated (adaptive refinement,
            :mod:`jaxsurf.refine`).
    """

    alphas: np.ndarray
    betas: np.ndarray | None
    metrics: dict[str, np.ndarray]
    metadata: dict[str, Any] = field(default_factory=dict)
    gammas: np.ndarray | None = None
    evaluated: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.alphas = _as_coordinates(self.alphas, "alphas")
        if self.betas is not None:
            self.betas = _as_coordinates(self.betas, "betas")
        if self.gammas is not None:
            if self.betas is None:
                raise ValueError("a volume needs betas as well as gammas; pass "
                                 "Surface(alphas, betas, metrics, metadata, gammas)")
            self.gammas = _as_coordinates(self.gammas, "gammas")
        if not isinstance(self.metrics, Mapping):
            raise TypeError(f"metrics must be a dict of metric name -> array, e.g. "
                            f"Surface(alphas, betas, {{'loss': values}}), got "
                            f"{type(self.metrics).__name__}")
        if not self.metrics:
            raise ValueError("a Surface needs at least one metric, e.g. {'loss': values}")
        self.metrics = {name: _validate.real_array(v, f"metric {name!r}") for name, v
                        in _validate.unique_str_keys(self.metrics, "metric").items()}
        for name, values in self.metrics.items():
            if values.shape != self.shape:
                raise ValueError(
                    f"metric {name!r} has shape {values.shape} but the grid has shape "
                    f"{self.shape} (len(alphas), len(betas)[, len(gammas)]); "
                    f"metrics[name][i, j(, k)] must be the value at (alphas[i], betas[j]"
                    f"(, gammas[k]))")
        self.metadata = metadata_from(self.metadata)  # JSON-safe: saves and loads back equal
        if self.evaluated is not None:
            self.evaluated = _as_mask(self.evaluated, self.shape)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(len(alphas),)`` for a line, ``(len(alphas), len(betas))`` for a plane."""
        if self.betas is None:
            return (len(self.alphas),)
        if self.gammas is not None:
            return (len(self.alphas), len(self.betas), len(self.gammas))
        return (len(self.alphas), len(self.betas))

    @property
    def is_plane(self) -> bool:
        return self.betas is not None and self.gammas is None

    @property
    def is_volume(self) -> bool:
        """True for a Surface with three axes (``gammas`` is set)."""
        return self.gammas is not None

    @property
    def metric_names(self) -> list[str]:
        return list(self.metrics)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.metrics[name]

    def argmin(self, metric: str = "loss") -> tuple[float, ...]:
        """Coordinates of the smallest finite value of ``metric``.

        Raises:
            KeyError: no such metric.
            ValueError: the metric has no finite value (e.g. a diverged run).
        """
        if metric not in self.metrics:
            raise KeyError(f"no metric {metric!r} in this Surface; it has {self.metric_names}")
        finite = np.isfinite(self.metrics[metric])
        if not finite.any():
            raise ValueError(f"argmin of metric {metric!r} is undefined: all "
                             f"{finite.size} values are NaN or inf (diverged everywhere?)")
        values = np.where(finite, self.metrics[metric], np.inf)
        index = np.unravel_index(np.argmin(values), values.shape)
        if self.betas is None:
            return (float(self.alphas[index[0]]),)
        if self.gammas is not None:
            return (float(self.alphas[index[0]]), float(self.betas[index[1]]),
                    float(self.gammas[index[2]]))
        return (float(self.alphas[index[0]]), float(self.betas[index[1]]))

    def summary(self) -> str:
        """A few human-readable lines: grid, metrics' ranges, non-finite count."""
        betas = self.betas
        grid = (f"{len(self.alphas)} points on [{self.alphas[0]:g}, {self.alphas[-1]:g}]"
                if betas is None else
                f"{len(self.alphas)}x{len(betas)} grid on alpha in "
                f"[{self.alphas[0]:g}, {self.alphas[-1]:g}], beta in "
                f"[{betas[0]:g}, {betas[-1]:g}]")
        if self.gammas is not None and betas is not None:  # a volume has both
            grid = (f"{len(self.alphas)}x{len(betas)}x{len(self.gammas)} volume on alpha "
                    f"in [{self.alphas[0]:g}, {self.alphas[-1]:g}], beta in "
                    f"[{betas[0]:g}, {betas[-1]:g}], gamma in "
                    f"[{self.gammas[0]:g}, {self.gammas[-1]:g}]")
        default_kind = "volume" if self.is_volume else "plane" if self.is_plane else "line"
        lines = [f"{self.metadata.get('kind', default_kind)}: {grid}"]
        for name, values in self.metrics.items():
            finite = values[np.isfinite(values)]
            bad = values.size - finite.size
            rng = (f"min {finite.min():.6g}, max {finite.max():.6g}" if finite.size
                   else "no finite values")
            centre = _centre_value(self, values)
            lines.append(f"  {name}: {rng}" + (f", at origin {centre:.6g}" if centre is not None
                                                else "") + (f", {bad} non-finite" if bad else ""))
        for key in ("normalization", "ignore", "seed", "num_examples", "batch_size"):
            if key in self.metadata:
                lines.append(f"  {key}: {self.metadata[key]}")
        if self.evaluated is not None and not self.evaluated.all():
            lines.append(f"  interpolated: {self.evaluated.size - int(self.evaluated.sum())} of "
                         f"{self.evaluated.size} points (adaptive refinement; the ranges above "
                         f"include interpolated values, see surface.evaluated)")
        return "\n".join(lines)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Writes the surface to ``path`` (``.npz``) atomically; returns the path.

        The file holds the coordinates and metrics bit for bit and the metadata
        as JSON, so ``Surface.load(path)`` gives back an equal Surface (the
        format: :mod:`jaxsurf._io.surfacefile`).
        """
        return surfacefile.write(path, surfacefile.Parts(
            self.alphas, self.betas, self.gammas, self.metrics, self.metadata, self.evaluated))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Surface":
        """Reads a file written by :meth:`save` (which adds ``.npz`` to a path
        without it, so ``load`` accepts the same path), or a ``.h5`` surface of
        tomgoldstein/loss-landscape (orientation converted to ours, see
        :mod:`jaxsurf._io.h5`); clear errors for bad files:
        ``FileNotFoundError`` when there is none, :class:`SurfaceFileError` for
        anything that is not an intact Surface file."""
        path = Path(path)
        if not path.exists() and path.suffix != ".npz" \
                and path.with_name(path.name + ".npz").exists():
            path = path.with_name(path.name + ".npz")
        if not path.exists():
            raise FileNotFoundError(f"no Surface file at {path}; write one with Surface.save")
        if path.suffix.lower() in (".h5", ".hdf5"):  # the loss-landscape tool's files
            parts = h5.read_h5(path)
        else:
            parts = surfacefile.read(path)
        try:
            return cls(parts.alphas, parts.betas, parts.metrics, parts.metadata, parts.gammas,
                       parts.evaluated)
        except (ValueError, TypeError) as err:
            raise SurfaceFileError(f"{path} holds inconsistent arrays: {err}") from err

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Surface):
            return NotImplemented
        same_betas = (self.betas is None and other.betas is None) or (
            self.betas is not None and other.betas is not None
            and np.array_equal(self.betas, other.betas))
        same_gammas = (self.gammas is None and other.gammas is None) or (
            self.gammas is not None and other.gammas is not None
            and np.array_equal(self.gammas, other.gammas))
        return (same_gammas and np.array_equal(self.alphas, other.alphas) and same_betas
                and self.metric_names == other.metric_names
                and all(np.array_equal(self.metrics[k], other.metrics[k], equal_nan=True)
                        for k in self.metrics)
                and self.metadata == other.metadata
                and _same_mask(self.evaluated, other.evaluated))


def _as_mask(evaluated: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``evaluated`` as a boolean array of the grid's ``shape``, or a clear error."""
    arr = np.asarray(evaluated)
    if arr.dtype != np.bool_ or arr.shape != shape:
        raise ValueError(f"evaluated must be a boolean array of the grid's shape {shape} (True "
                         f"where a value is exact, False where interpolated), got dtype "
                         f"{arr.dtype} and shape {arr.shape}; pass None when every value "
                         f"was evaluated")
    return arr


def _same_mask(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Equal masks; ``None`` (all evaluated) equals an all-True mask."""
    if a is None and b is None:
        return True
    if a is None or b is None:
        return bool(np.all(b if a is None else a))
    return np.array_equal(a, b)


def _centre_value(surface: Surface, values: np.ndarray) -> float | None:
    """The value at coordinates (0,), (0, 0) or (0, 0, 0) when the grid holds them."""
    i = np.flatnonzero(surface.alphas == 0)
    if i.size == 0:
        return None
    if surface.betas is None:
        return float(values[i[0]])
    j = np.flatnonzero(surface.betas == 0)
    if surface.gammas is not None:
        k = np.flatnonzero(surface.gammas == 0)
        return float(values[i[0], j[0], k[0]]) if j.size and k.size else None
    return float(values[i[0], j[0]]) if j.size else None


def metadata_from(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-safe copy of user metadata (numpy scalars and arrays turned to lists).

    Raises:
        TypeError: a value JSON cannot hold (named by its key), now rather than
            at :meth:`Surface.save`.
    """
    return _validate.json_safe(mapping, "metadata")
