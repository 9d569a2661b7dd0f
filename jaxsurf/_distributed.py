"""The implementation of :mod:`jaxsurf.distributed`; its public face, with the
documentation and examples, is ``jaxsurf/distributed.py``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence, TypeAlias

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxsurf._tree import PyTree

__all__ = ["AXES", "plan_mesh", "as_mesh", "mesh_shape", "spans_processes", "put", "to_host",
           "broadcast_from_first"]

AXES = ("points", "data")

if TYPE_CHECKING:
    # jax.Device is a compiled jaxlib class with no type information, which type
    # checkers reject in annotations; annotations say Device (jax.Device at run time).
    Device: TypeAlias = Any
else:
    Device = jax.Device


DATA_SPLIT_MARGIN = 0.1  # share of steps a data split must save to be chosen


def _steps(num_points: int, points: int, replicas: int, full_batches: int | None,
           short_batch: bool) -> float:
    """Batch evaluations one device does, one after another, on a ``(points, replicas)``
    mesh (the short batch runs on every replica at once; ``None``: batches split
    evenly)."""
    if full_batches is None:
        per_point = 1.0 / replicas
    else:
        per_point = math.ceil(full_batches / replicas) + int(short_batch)
    return math.ceil(num_points / points) * per_point


def _as_device_list(devices: Any) -> list[Device]:
    """``devices`` as a list of ``jax.Device`` (one device is a list of one)."""
    if devices is None:
        return list(jax.devices())
    if isinstance(devices, jax.Device):
        return [devices]
    if isinstance(devices, (str, bytes)) or not hasattr(devices, "__iter__"):
        raise TypeError(f"devices must be a list of jax devices such as jax.local_devices()"
                        f"[:2], got {devices!r}")
    devices = list(devices)
    for device in devices:
        if not isinstance(device, jax.Device):
            raise TypeError(f"devices must hold jax.Device objects (e.g. jax.devices('cpu')), "
                            f"got {device!r} of type {type(device).__name__}")
    return devices


def plan_mesh(num_points: int, devices: Sequence[Device] | None = None, *,
              full_batches: int | None = None, short_batch: bool = False,
              chunk_size: int | None = None, data_parallel: bool = True) -> Mesh:
    """A ``("points", "data")`` mesh over ``devices`` for ``num_points`` points.

    The points axis is the divisor of the device count that lets each device
    finish soonest, doing ``ceil(num_points / points)`` points, each over
    ``ceil(full_batches / data)`` full batches plus the short one. Splitting
    the data must save at least ``DATA_SPLIT_MARGIN`` (10 %) of the steps of
    the all-points mesh, which needs no sums across devices and no padding
    batches. A plane of many points puts every device on the points axis; a
    line of a few points, or a handful that divide badly over the devices
    (5 points on 4), over many batches split the data.

    Args:
        num_points: points of the request.
        devices: the devices (default ``jax.devices()``: every device of every
            process).
        full_batches: full batches of the data (``None``: assume the data
            splits evenly over any number of devices).
        short_batch: whether a short last batch follows them.
        chunk_size: points per jitted call, if fixed by the caller: the points
            axis then divides it.
        data_parallel: allow a ``"data"`` axis longer than 1 (False for
            streams of batches, which are not split: every device is on the
            points axis).

    Returns:
        A mesh of shape ``(points, data)`` with ``points * data ==
        len(devices)``.

    Example:
        >>> dict(plan_mesh(3, jax.local_devices()[:4], full_batches=20).shape)
        {'points': 1, 'data': 4}
    """
    devices = _as_device_list(devices)
    if not devices:
        raise ValueError("devices is empty; pass None or a list like jax.local_devices()")
    if len(set(devices)) != len(devices):
        raise ValueError(f"devices lists a device twice: {devices}")
    count = len(devices)
    points = count
    if data_parallel:
        options = [p for p in range(1, count + 1) if count % p == 0
                   and (chunk_size is None or chunk_size % p == 0)]
        steps = {p: _steps(num_points, p, count // p, full_batches, short_batch)
                 for p in options}
        points = min(options, key=lambda p: (steps[p], -p))
        if steps[points] > (1 - DATA_SPLIT_MARGIN) * steps[max(options)]:
            points = max(options)  # a small saving does not pay for the sums across devices
    return Mesh(np.array(devices, dtype=object).reshape(points, count // points), AXES)


def as_mesh(mesh: Mesh) -> Mesh:
    """A user's mesh as a 2-D ``("points", "data")`` mesh.

    Args:
        mesh: a ``jax.sharding.Mesh`` whose axis names are ``"points"`` and/or
            ``"data"`` (a missing axis has size 1).

    Returns:
        The same devices, arranged ``(points, data)``.

    Example:
        >>> m = Mesh(np.array(jax.devices()[:4]).reshape(2, 2), ("data", "points"))
        >>> as_mesh(m).axis_names
        ('points', 'data')
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    names = tuple(mesh.axis_names)
    unknown = [n for n in names if n not in AXES]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"mesh axes must be named 'points' and/or 'data', got {names}; e.g. "
                         f"Mesh(np.array(jax.devices()).reshape(2, 2), ('points', 'data'))")
    devices = np.asarray(mesh.devices)
    for name in AXES:
        if name not in names:
            devices, names = devices[..., None], names + (name,)
    order = [names.index(name) for name in AXES]
    return Mesh(np.transpose(devices, order), AXES)


def mesh_shape(mesh: Mesh) -> dict[str, int]:
    """``{"points": P, "data": R}`` of a planned mesh."""
    return {name: int(mesh.shape[name]) for name in AXES}


def spans_processes(mesh: Mesh) -> bool:
    """True when the mesh holds devices of other processes (multi-host run)."""
    return mesh.devices.size != len(mesh.local_devices)


def put(tree: PyTree, mesh: Mesh, spec: PartitionSpec = PartitionSpec()) -> PyTree:
    """Places every leaf of ``tree`` on ``mesh`` with ``spec`` (default: a copy per device).

    On one process this is ``jax.device_put``; when the mesh spans processes
    every process must pass the same values, and each keeps the pieces of its
    own devices.

    Example:
        >>> mesh = plan_mesh(num_points=8)
        >>> coeffs = put(np.zeros((8, 2), np.float32), mesh, PartitionSpec("points"))
        >>> coeffs.sharding.spec
        P('points',)
    """
    sharding = NamedSharding(mesh, spec)
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def leaf(x: Any) -> jax.Array:
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(leaf, tree)


def to_host(array: jax.Array) -> np.ndarray:
    """A replicated (all-gathered) result as a numpy array on every process.

    Example:
        >>> mesh = plan_mesh(num_points=8)
        >>> to_host(jax.device_put(jnp.arange(3.0), NamedSharding(mesh, PartitionSpec())))
        array([0., 1., 2.], dtype=float32)
    """
    if not array.sharding.is_fully_replicated:  # one shard would be only part of it
        raise ValueError(f"to_host needs a replicated array, got sharding {array.sharding}")
    return np.asarray(array.addressable_data(0))


def broadcast_from_first(tree: PyTree, mesh: Mesh) -> PyTree:
    """Process 0's values of ``tree`` on every process (unchanged on one process).

    Example:
        >>> done = np.array([True, False])          # e.g. the store's state, as read here
        >>> broadcast_from_first(done, plan_mesh(num_points=2))   # one process: unchanged
        array([ True, False])
    """
    if not spans_processes(mesh):
        return tree
    from jax.experimental import multihost_utils

    return jax.tree_util.tree_map(np.asarray, multihost_utils.broadcast_one_to_all(tree))
