"""Per-point programs on the engine: a host-driven computation (e.g. one Lanczos
run) per grid point, with the engine's chunk loop, store, progress and devices.

The points of a chunk go round-robin over the devices (each point runs where
its device's copy of the data lives); the chunk loop saves every finished
chunk to the store and keeps the interrupt handling of
:func:`jaxsurf._engine.loop.run_chunks`.

Example:
    >>> w = {"w": jnp.zeros(2)}
    >>> values, evaluated, facts = execute_pointwise(
    ...     lambda i, device: {"x": float(i) / 2}, ["x"], w, [w, w],
    ...     [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]], {}, engine=Engine(progress=False))
    >>> values["x"].tolist(), evaluated
    ([0.0, 0.5, 1.0], 3)
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxsurf import _validate, _distributed as distributed
from jaxsurf._engine.job import Job, default_progress
from jaxsurf._engine.loop import ChunkFn, open_store, run_chunks
from jaxsurf._engine.options import Engine
from jaxsurf._engine.plan import plan
from jaxsurf._progress import make_sink
from jaxsurf._tree import PyTree

__all__ = ["PointFn", "execute_pointwise"]

# (grid index, device) -> {name: value} for that point
PointFn = Callable[[int, distributed.Device], dict[str, float]]


def _no_fn(params: PyTree, batch: PyTree) -> Any:
    """The ``fn`` of a per-point job: its programs are ``point_fn``, never ``fn``."""
    raise TypeError("a per-point job evaluates point_fn, not fn")


def execute_pointwise(point_fn: PointFn, names: list[str], origin: PyTree,
                      directions: Sequence[PyTree], coefficients: Any,
                      request: dict[str, Any], *, num_examples: int | None = None,
                      engine: Engine = Engine(),
                      ) -> tuple[dict[str, np.ndarray], int, dict[str, Any]]:
    """Runs ``point_fn`` at every grid point through the engine's chunk loop.

    Args:
        point_fn: ``point_fn(index, device) -> {name: value}``.
        names: the names ``point_fn`` returns.
        origin, directions, coefficients: the grid (as for
            :func:`jaxsurf.evaluate_points`); they key the store.
        request: what else decides the values (data fingerprint, settings,
            random key), recorded in the store's request.
        num_examples: examples behind each value (for the metadata).
        engine: the options; this path uses ``devices`` (default: the default
            device), ``chunk_size`` (points per chunk, default one per device:
            how often the store saves and the progress reports), ``progress``
            and ``store`` (finished points kept as float32, as every store).

    Returns:
        ``(values, points evaluated, facts)``; without a store the values
        keep ``point_fn``'s precision (float64).
    """
    coefficients = _validate.coefficients(coefficients, len(directions))
    store = engine.store
    devices = [jax.devices()[0]] if engine.devices is None else list(
        distributed.plan_mesh(1, engine.devices, data_parallel=False).devices.flat)
    mesh, chunk = plan(len(coefficients), engine.chunk_size or len(devices), devices, None,
                       None)
    sink = make_sink(default_progress(engine.progress, mesh))
    job = Job(_no_fn, origin, list(directions), origin, coefficients, mesh, chunk, 1, None, sink)
    todo = np.arange(job.num_points)
    values = {k: np.zeros(job.num_points, np.float64) for k in names}
    opened = None
    if store is not None:
        opened, todo, values = open_store(job, store, request, names, "pointwise")
    placed = list(mesh.devices.flat)

    def make_chunk_fn() -> ChunkFn:
        def evaluate_chunk(coeffs: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
            out = {k: np.zeros(len(idx), np.float64) for k in names}
            for position, index in enumerate(idx):
                device = placed[position % len(placed)]
                with jax.default_device(device):
                    result = point_fn(int(index), device)
                for k in names:
                    out[k][position] = result[k]
            return out
        return evaluate_chunk

    evaluated = run_chunks(job, todo, make_chunk_fn, values, opened)
    return values, evaluated, {**job.describe(), "num_examples": num_examples}
