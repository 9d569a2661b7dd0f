"""One request to the engine: its points, mesh, chunk, compute dtype and progress sink.

Example:
    >>> as_compute_dtype("bfloat16")
    dtype(bfloat16)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxsurf import _distributed as distributed, _tree as tree
from jaxsurf._engine.metrics import Fn, LabelCheck, cast_floats, trace_metrics
from jaxsurf._progress import ProgressInfo, ProgressOption
from jaxsurf._tree import PyTree

__all__ = ["check_directions", "check_integer_leaves", "as_compute_dtype", "Job",
           "default_progress"]


def check_directions(origin: PyTree | None, directions: Sequence[PyTree]) -> PyTree:
    """Checks every direction against the params; returns the reference pytree."""
    if not directions:
        raise ValueError("directions is empty; pass at least one direction pytree")
    reference = origin if origin is not None else directions[0]
    for k, d in enumerate(directions):
        tree.check_like(d, reference, name=f"direction {k}" if origin is not None
                        else f"params {k}", reference_name="params")
        tree.check_finite(d, name=f"direction {k}" if origin is not None else f"params {k}")
    check_integer_leaves(origin, directions)
    return reference


def check_integer_leaves(origin: PyTree | None, directions: Sequence[PyTree],
                         names: Sequence[str] | None = None) -> None:
    """Refuses integer (non-float) leaves that a combination would silently not move.

    The engine combines only float leaves; an integer leaf of a point is the
    origin's (or, without an origin, the first pytree's). So a direction's
    integer leaf must be zero or a copy of the origin's, and pytrees combined
    without an origin (the end points of :func:`jaxsurf.interpolate`, a curve's
    control points) must agree on every integer leaf: otherwise ``alpha = 1``
    would not be the second model. The error names the leaf path.

    Example:
        >>> a = {"w": jnp.zeros(2), "n": jnp.array(1)}
        >>> check_integer_leaves(None, [a, {**a, "n": jnp.array(2)}], ["params_a", "params_b"])
        Traceback (most recent call last):
        ...
        ValueError: integer leaf ['n'] differs between params_a (1) and params_b (2): ...
    """
    first = directions[0] if origin is None else origin
    first_name = ("params 0" if origin is None else "params") if names is None else names[0]
    paths = jax.tree_util.tree_flatten_with_path(first)[0]
    rest = directions[1:] if origin is None else directions
    rest_names = list(names[1:]) if names is not None else \
        [f"params {k + 1}" if origin is None else f"direction {k}" for k in range(len(rest))]
    for index, (path, base) in enumerate(paths):
        if tree.is_float_leaf(base):
            continue
        for name, other in zip(rest_names, rest):
            leaf = jax.tree_util.tree_leaves(other)[index]
            if bool(jnp.array_equal(leaf, base)):
                continue
            where = tree.leaf_path(path)
            if origin is None:
                raise ValueError(
                    f"integer leaf {where} differs between {first_name} ({_show(base)}) and "
                    f"{name} ({_show(leaf)}): integer leaves are not interpolated (every point "
                    f"would keep {first_name}'s value, so the far end would not be {name}). "
                    f"Give both the same value, or leave the leaf out of the params")
            if bool(jnp.any(leaf != 0)):
                raise ValueError(
                    f"{name} has a nonzero integer leaf {where} ({_show(leaf)}): integer "
                    f"leaves are never moved along a direction (every point keeps the "
                    f"params' value {_show(base)}). Set it to zero (js.random_direction "
                    f"does), or leave the leaf out of the params")


def _show(leaf: Any) -> str:
    values = np.asarray(leaf)
    return str(values.tolist()) if values.size <= 4 else \
        f"{values.dtype}{list(values.shape)}, e.g. {values.ravel()[:4].tolist()}"


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
    fingerprint: dict[str, Any] | None = None  # the caller's extra store key (fingerprint=)
    labels: list[LabelCheck] = field(default_factory=list)  # found by metric_names
    # per leaf, the PartitionSpec params and directions are placed with (None: a copy on
    # every device); set when the mesh has model axes (distributed.leaf_specs)
    specs: list[PartitionSpec] | None = None
    memory: dict[str, Any] | None = None  # the memory plan (memory.compile_planned), for metadata
    memory_limit: int | None = None  # bytes one device may use (the engine option)

    @property
    def num_points(self) -> int:
        return len(self.coefficients)

    @property
    def spans_processes(self) -> bool:
        return distributed.spans_processes(self.mesh)

    def metric_names(self, batch: PyTree) -> list[str]:
        """The names of ``fn``'s metrics (``fn`` run abstractly, as it will be run)."""
        cast = lambda value: cast_floats(value, self.compute_dtype)
        with distributed.mesh_context(self.mesh):
            shapes, self.labels = trace_metrics(self.fn, cast(self.reference), cast(batch))
        return list(shapes)

    def check_labels(self, data: PyTree, what: str = "data") -> None:
        """Refuses integer labels of a built-in loss outside its classes (on the host,
        once per data set or per batch; found by :meth:`metric_names`)."""
        for check in self.labels:
            check.check(data, what)

    def put(self, value: Any, spec: PartitionSpec = PartitionSpec()) -> Any:
        """Places ``value`` on the mesh (default: a copy on every device)."""
        return distributed.put(value, self.mesh, spec)

    def put_params(self) -> tuple[PyTree, list[PyTree]]:
        """The origin and the directions: a copy on every device, or, on a mesh with
        model axes, each leaf sharded as the params' leaf is (nothing gathered)."""
        if self.specs is None:
            return self.put((self.origin, self.directions))
        specs = self.specs
        place = lambda t: None if t is None else distributed.place(t, self.mesh, specs)
        return place(self.origin), [place(d) for d in self.directions]

    def put_data(self, value: Any, spec: PartitionSpec = PartitionSpec()) -> Any:
        """Data on the mesh, float leaves already in the compute dtype."""
        return self.put(cast_floats(value, self.compute_dtype), spec)

    def put_coefficients(self, coeffs: np.ndarray) -> jax.Array:
        return self.put(coeffs, distributed.axis_spec(self.mesh, "points"))

    def data_spec(self) -> PartitionSpec:
        """How full batches are split: over the ``"data"`` axis, where the mesh has one."""
        return distributed.axis_spec(self.mesh, "data")

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
        model = {name: int(self.mesh.shape[name]) for name in distributed.model_axes(self.mesh)}
        facts: dict[str, Any] = {"memory": self.memory} if self.memory is not None else {}
        if self.memory is not None:
            facts["points_per_step"] = self.points_per_step  # as planned to fit
        return {**facts, "num_devices": int(self.mesh.devices.size),
                "mesh": {**distributed.mesh_shape(self.mesh), **model},
                "num_processes": len({d.process_index for d in self.mesh.devices.flat}),
                "compute_dtype": None if self.compute_dtype is None else str(self.compute_dtype)}


def default_progress(progress: ProgressOption, mesh: Mesh) -> ProgressOption:
    """With several processes on one mesh, only process 0 draws the default bar."""
    if distributed.spans_processes(mesh) and jax.process_index() != 0 and progress in (None,
                                                                                         True):
        return False
    return progress
