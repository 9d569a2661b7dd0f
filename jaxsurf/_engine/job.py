"""One request to the engine: its points, mesh, chunk, compute dtype and progress sink.

Example:
    >>> as_compute_dtype("bfloat16")
    dtype(bfloat16)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxsurf import distributed, tree
from jaxsurf._engine.metrics import Fn, cast_floats, metric_shapes
from jaxsurf.progress import ProgressInfo, ProgressOption
from jaxsurf.tree import PyTree

__all__ = ["check_directions", "as_compute_dtype", "Job", "default_progress"]


def check_directions(origin: PyTree | None, directions: Sequence[PyTree]) -> PyTree:
    """Checks every direction against the params; returns the reference pytree."""
    if not directions:
        raise ValueError("directions is empty; pass at least one direction pytree")
    reference = origin if origin is not None else directions[0]
    for k, d in enumerate(directions):
        tree.check_like(d, reference, name=f"direction {k}" if origin is not None
                        else f"params {k}", reference_name="params")
        tree.check_finite(d, name=f"direction {k}" if origin is not None else f"params {k}")
    return reference


def as_compute_dtype(compute_dtype: Any) -> np.dtype | None:
    """``None`` or a floating dtype such as ``jnp.bfloat16``."""
    if compute_dtype is None:
        return None
    try:
        dtype = jnp.dtype(compute_dtype)
    except TypeError as err:
        raise ValueError(f"compute_dtype must be None or a float dtype such as jnp.bfloat16, "
                         f"got {compute_dtype!r}") from err
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"compute_dtype must be a float dtype such as jnp.bfloat16, got {dtype}")
    return dtype


@dataclass
class Job:
    """What every evaluation path needs: the points, the program's shape, the devices."""

    fn: Fn
    origin: PyTree | None
    directions: list[PyTree]
    reference: PyTree
    coefficients: np.ndarray
    mesh: Mesh
    chunk: int
    points_per_step: int
    compute_dtype: np.dtype | None
    sink: Callable[[ProgressInfo], object] | None
    sem_population: int | None = None  # subsample=: the full data's size (adds <name>_sem)
    only: np.ndarray | None = None  # evaluate only these grid indices (adaptive refinement)

    @property
    def num_points(self) -> int:
        return len(self.coefficients)

    @property
    def spans_processes(self) -> bool:
        return distributed.spans_processes(self.mesh)

    def metric_names(self, batch: PyTree) -> list[str]:
        """The names of ``fn``'s metrics (``fn`` run abstractly, as it will be run)."""
        cast = lambda value: cast_floats(value, self.compute_dtype)
        return list(metric_shapes(self.fn, cast(self.reference), cast(batch)))

    def put(self, value: Any, spec: PartitionSpec = PartitionSpec()) -> Any:
        """Places ``value`` on the mesh (default: a copy on every device)."""
        return distributed.put(value, self.mesh, spec)

    def put_params(self) -> tuple[PyTree, list[PyTree]]:
        """The origin and the directions, a copy on every device."""
        return self.put((self.origin, self.directions))

    def put_data(self, value: Any, spec: PartitionSpec = PartitionSpec()) -> Any:
        """Data on the mesh, float leaves already in the compute dtype."""
        return self.put(cast_floats(value, self.compute_dtype), spec)

    def put_coefficients(self, coeffs: np.ndarray) -> jax.Array:
        return self.put(coeffs, PartitionSpec("points"))

    def chunks(self, todo: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(indices, coefficients)`` per chunk of ``todo``; the last chunk is
        padded to the fixed chunk shape by repeating its last point."""
        out = []
        for start in range(0, len(todo), self.chunk):
            idx = todo[start:start + self.chunk]
            coeffs = self.coefficients[idx]
            out.append((idx, np.concatenate(
                [coeffs, np.repeat(coeffs[-1:], self.chunk - len(idx), 0)])))
        return out

    def describe(self) -> dict[str, Any]:
        """Facts for the Surface metadata."""
        return {"num_devices": int(self.mesh.devices.size),
                "mesh": distributed.mesh_shape(self.mesh),
                "num_processes": len({d.process_index for d in self.mesh.devices.flat}),
                "compute_dtype": None if self.compute_dtype is None else str(self.compute_dtype)}


def default_progress(progress: ProgressOption, mesh: Mesh) -> ProgressOption:
    """With several processes on one mesh, only process 0 draws the default bar."""
    if distributed.spans_processes(mesh) and jax.process_index() != 0 and progress in (None,
                                                                                         True):
        return False
    return progress
