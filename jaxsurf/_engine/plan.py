"""Chunk planning, in one place: the mesh and the chunk size.

Example:
    >>> plan_chunks(100, None, 1)
    (25, 4)
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
from jax.sharding import Mesh

from jaxsurf import _batching as batching, _distributed as distributed

__all__ = ["DEFAULT_CHUNK_SIZE", "plan_chunks", "make_mesh", "plan"]

DEFAULT_CHUNK_SIZE = 32  # points per jitted call (per device); bounds padding waste


def plan_chunks(num_points: int, chunk_size: int | None, num_devices: int) -> tuple[int, int]:
    """``(chunk, num_chunks)``: a chunk divisible by ``num_devices`` (the points axis)
    with little padding; ``chunk_size`` counts points over all those devices
    (default ``DEFAULT_CHUNK_SIZE`` per device)."""
    per_device = max(1, math.ceil(num_points / num_devices))
    target = DEFAULT_CHUNK_SIZE if chunk_size is None else max(1, chunk_size // num_devices)
    target = min(target, per_device)
    num_chunks = math.ceil(per_device / target)
    per_device_chunk = math.ceil(per_device / num_chunks)
    return per_device_chunk * num_devices, num_chunks


def make_mesh(num_points: int, chunk_size: int | None, devices: Sequence[distributed.Device] | None,
               mesh: Mesh | None, split: batching.SplitData | None,
               params_mesh: Mesh | None = None) -> Mesh:
    """The mesh of a request (see :mod:`jaxsurf.distributed`): ``mesh`` as given,
    else the mesh the params are sharded over (``params_mesh``, when neither
    ``mesh`` nor ``devices`` is given), else a planned ``("points", "data")`` mesh."""
    if mesh is None and devices is None and params_mesh is not None:
        mesh = params_mesh  # sharded params: evaluate where they are, never gather them
    if mesh is not None:  # (devices= with mesh= is refused by the Engine options)
        mesh = distributed.as_mesh(mesh)
        if split is None and distributed.mesh_shape(mesh)["data"] > 1:
            raise ValueError(f"a mesh with a 'data' axis of {mesh.shape['data']} devices needs "
                             f"in-memory data (a stream of batches is not split over devices); "
                             f"use a mesh with only a 'points' axis")
        return mesh
    if split is None:  # a stream: its batches are not split over devices
        return distributed.plan_mesh(num_points, devices, data_parallel=False)
    full = 0 if split.full is None else len(jax.tree_util.tree_leaves(split.full)[0])
    return distributed.plan_mesh(num_points, devices, full_batches=full,
                                 short_batch=split.rest is not None, chunk_size=chunk_size)


def plan(num_points: int, chunk_size: int | None, devices: Sequence[distributed.Device] | None,
         mesh: Mesh | None, split: batching.SplitData | None,
         params_mesh: Mesh | None = None) -> tuple[Mesh, int]:
    """The mesh and the chunk (points per jitted call, over the points axis) of a request.

    Args:
        num_points: points to evaluate.
        chunk_size: the caller's chunk size, or ``None``.
        devices, mesh: as in :func:`jaxsurf.evaluate_points`.
        split: in-memory data cut into batches, or ``None`` for a stream.
        params_mesh: the mesh the params are sharded over, if any.

    Returns:
        ``(mesh, chunk)``.
    """
    mesh = make_mesh(num_points, chunk_size, devices, mesh, split, params_mesh)
    chunk, _ = plan_chunks(num_points, chunk_size, distributed.mesh_shape(mesh)["points"])
    return mesh, chunk
