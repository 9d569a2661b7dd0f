"""The implementation of :mod:`jaxsurf.distributed`; its public face, with the
documentation and examples, is ``jaxsurf/distributed.py``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence, TypeAlias

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxsurf._tree import PyTree, leaf_path as tree_leaf_path

__all__ = ["AXES", "plan_mesh", "as_mesh", "mesh_shape", "model_axes", "axis_spec",
           "manual_axes", "mesh_context", "sharded_mesh", "leaf_specs", "place", "device_bytes",
           "spans_processes", "put", "to_host", "broadcast_from_first"]

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
    """A user's mesh as the engine runs on it.

    A mesh whose axes are only ``"points"`` and/or ``"data"`` becomes a 2-D
    ``("points", "data")`` mesh (a missing axis has size 1). A mesh with
    other axes too (*model axes*, over which params are sharded) is kept as
    it is, so that params placed on it keep their shardings; its missing
    ``"points"``/``"data"`` axes count as size 1 (:func:`mesh_shape`).

    Args:
        mesh: a ``jax.sharding.Mesh`` (automatic or explicit axes).

    Returns:
        The mesh the engine uses.

    Example:
        >>> m = Mesh(np.array(jax.devices()[:4]).reshape(2, 2), ("data", "points"))
        >>> as_mesh(m).axis_names
        ('points', 'data')
        >>> as_mesh(Mesh(np.array(jax.devices()[:4]).reshape(2, 2), ("points", "model"))).axis_names
        ('points', 'model')
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    names = tuple(mesh.axis_names)
    if model_axes(mesh):
        return mesh
    devices = np.asarray(mesh.devices)
    for name in AXES:
        if name not in names:
            devices, names = devices[..., None], names + (name,)
    order = [names.index(name) for name in AXES]
    return Mesh(np.transpose(devices, order), AXES)


def model_axes(mesh: Mesh) -> tuple[str, ...]:
    """The axes of ``mesh`` other than ``"points"`` and ``"data"`` (params may be
    sharded over them)."""
    return tuple(str(n) for n in mesh.axis_names if n not in AXES)


def axis_spec(mesh: Mesh, name: str) -> PartitionSpec:
    """``P(name)`` when ``mesh`` has that axis, else ``P()`` (a missing axis has size 1)."""
    return PartitionSpec(name) if name in mesh.axis_names else PartitionSpec()


def manual_axes(mesh: Mesh) -> frozenset[str]:
    """The axes the engine's ``shard_map`` programs take by hand (``"points"`` and
    ``"data"`` where the mesh has them); model axes stay automatic or explicit,
    so each point's forward pass is sharded over them by XLA (GSPMD)."""
    return frozenset(n for n in mesh.axis_names if n in AXES)


def mesh_context(mesh: Mesh) -> Any:
    """``jax.set_mesh(mesh)`` for a mesh with model axes (so that an ``fn`` written
    for that mesh, e.g. with ``PartitionSpec`` shardings, runs as it would under
    the user's own ``jax.set_mesh``); a no-op context otherwise."""
    import contextlib

    return jax.set_mesh(mesh) if model_axes(mesh) else contextlib.nullcontext()


def _spec_axes(spec: PartitionSpec) -> list[str]:
    names: list[str] = []
    for entry in spec:
        if entry is None:
            continue
        names += [str(n) for n in (entry if isinstance(entry, tuple) else (entry,))]
    return names


def _trim(spec: PartitionSpec) -> PartitionSpec:
    """``spec`` without trailing ``None``s (``P(None, 'm', None)`` == ``P(None, 'm')``)."""
    entries = list(spec)
    while entries and entries[-1] is None:
        entries.pop()
    return PartitionSpec(*entries)


def _sharded(leaf: Any) -> NamedSharding | None:
    """The leaf's ``NamedSharding`` when it really splits the leaf, else ``None``
    (host arrays, one device, or a copy on every device)."""
    sharding = getattr(leaf, "sharding", None)
    if not isinstance(leaf, jax.Array) or not isinstance(sharding, NamedSharding):
        return None
    return None if not _spec_axes(sharding.spec) else sharding


def _same_devices(a: Any, b: Mesh) -> bool:
    return (tuple(a.axis_names) == tuple(b.axis_names) and a.devices.shape == b.devices.shape
            and [d.id for d in a.devices.flat] == [d.id for d in b.devices.flat])


def _describe_mesh(mesh: Any) -> str:
    return "(" + ", ".join(f"{n!r}: {int(s)}" for n, s in mesh.shape.items()) + ")"


def sharded_mesh(trees: Sequence[PyTree]) -> Mesh | None:
    """The mesh of the first leaf of ``trees`` that is sharded (split over a mesh
    axis), or ``None`` when no leaf is: the mesh to evaluate on when the
    caller gave neither ``mesh=`` nor ``devices=``."""
    for t in trees:
        for leaf in jax.tree_util.tree_leaves(t):
            sharding = _sharded(leaf)
            if sharding is not None and isinstance(sharding.mesh, Mesh):
                return sharding.mesh
    return None


def leaf_specs(mesh: Mesh, trees: Sequence[tuple[str, PyTree]]) -> list[PartitionSpec]:
    """Per leaf, the ``PartitionSpec`` over ``mesh`` every tree's leaf is placed with.

    The first tree (the params) decides; a leaf that is not sharded (host
    arrays, one device, a copy on every device) gets ``P()``. Refuses, naming
    the leaf: a leaf sharded over another mesh than ``mesh``, over an axis
    ``mesh`` lacks, or over ``"points"``/``"data"`` (the engine's own axes),
    and a leaf of another tree (a direction) sharded differently from the
    params' leaf. An unsharded direction leaf is placed like the params'.

    Example:
        >>> m = Mesh(np.array(jax.devices()[:4]).reshape(1, 4), ("points", "model"))
        >>> w = jax.device_put(jnp.ones((2, 8)), NamedSharding(m, PartitionSpec(None, "model")))
        >>> leaf_specs(m, [("params", {"w": w}), ("direction 0", {"w": np.ones((2, 8))})])
        [P(None, 'model')]
    """
    first_name, first = trees[0]
    paths = [tree_leaf_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(first)]
    leaves = [jax.tree_util.tree_leaves(t) for _, t in trees]
    specs = []
    for i, where in enumerate(paths):
        found = [(name, _sharded(ls[i])) for (name, _), ls in zip(trees, leaves)]
        for name, sharding in found:
            if sharding is not None:
                _check_leaf(mesh, name, where, sharding)
        spec = found[0][1].spec if found[0][1] is not None else PartitionSpec()
        for name, sharding in found[1:]:
            if sharding is not None and _trim(sharding.spec) != _trim(spec):
                raise ValueError(
                    f"{name} leaf {where} is sharded {sharding.spec} but {first_name} leaf "
                    f"{where} is sharded {spec}: directions must be sharded like the params "
                    f"(each point's params are origin + sum c_k d_k, leaf by leaf). Make "
                    f"them from the params (js.random_direction(key, params) keeps the "
                    f"params' shardings) or place them with jax.device_put(d, "
                    f"params_leaf.sharding)")
        specs.append(_trim(spec))
    return specs


def _check_leaf(mesh: Mesh, name: str, where: str, sharding: NamedSharding) -> None:
    axes = _spec_axes(sharding.spec)
    missing = [a for a in axes if a not in mesh.axis_names]
    if missing:
        raise ValueError(
            f"{name} leaf {where} is sharded {sharding.spec} over mesh axis "
            f"{missing[0]!r}, which the evaluation mesh {_describe_mesh(mesh)} lacks; pass "
            f"the mesh the params were placed on, with a 'points' (and/or 'data') axis "
            f"beside the model axes: e.g. mesh=jax.make_mesh((2, 4), ('points', "
            f"{missing[0]!r})), params placed on it")
    engine_axes = [a for a in axes if a in AXES]
    if engine_axes:
        raise ValueError(
            f"{name} leaf {where} is sharded {sharding.spec} over the engine's axis "
            f"{engine_axes[0]!r}; grid points and batches are spread over 'points' and "
            f"'data', so params may be sharded only over other (model) axes: name the "
            f"axis e.g. 'model'")
    if not _same_devices(sharding.mesh, mesh):
        raise ValueError(
            f"{name} leaf {where} is sharded over another mesh "
            f"{_describe_mesh(sharding.mesh)} than the evaluation mesh "
            f"{_describe_mesh(mesh)} (other devices or another arrangement); place the "
            f"params on the mesh you pass as mesh= (jax.device_put(leaf, "
            f"NamedSharding(mesh, spec))), or pass their mesh as mesh=")


def place(tree: PyTree, mesh: Mesh, specs: Sequence[PartitionSpec]) -> PyTree:
    """Places leaf ``i`` of ``tree`` on ``mesh`` with ``specs[i]``; a leaf already
    placed so stays where it is (nothing is gathered)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    out = []
    for leaf, spec in zip(leaves, specs):
        sharding = NamedSharding(mesh, spec)
        if isinstance(leaf, jax.Array) and leaf.sharding == sharding:
            out.append(leaf)
        elif isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            out.append(jax.device_put(leaf, sharding))
        else:
            out.append(put(leaf, mesh, spec))
    return jax.tree_util.tree_unflatten(treedef, out)


def device_bytes(tree: PyTree, mesh: Mesh | None = None,
                 specs: Sequence[PartitionSpec] | None = None) -> int:
    """Bytes the largest device holds of ``tree``: each leaf's shard, as placed
    (or as it would be placed on ``mesh`` with ``specs``).

    Example:
        >>> m = Mesh(np.array(jax.devices()[:4]).reshape(1, 4), ("points", "model"))
        >>> device_bytes({"w": np.ones((2, 8), np.float32)}, m, [PartitionSpec(None, "model")])
        16
    """
    total = 0
    for i, leaf in enumerate(jax.tree_util.tree_leaves(tree)):
        shape = tuple(np.shape(leaf))
        if specs is not None and mesh is not None:
            shard = NamedSharding(mesh, specs[i]).shard_shape(shape)
        elif isinstance(leaf, jax.Array):
            shard = leaf.sharding.shard_shape(shape)
        else:
            shard = shape
        itemsize = jax.dtypes.canonicalize_dtype(np.dtype(getattr(leaf, "dtype",
                                                                  np.float32))).itemsize
        total += int(math.prod(shard)) * itemsize
    return total


def mesh_shape(mesh: Mesh) -> dict[str, int]:
    """``{"points": P, "data": R}`` of a planned mesh (a missing axis: 1)."""
    return {name: int(mesh.shape.get(name, 1)) for name in AXES}


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
