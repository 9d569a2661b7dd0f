"""Exact dataset means of ``fn`` at points ``origin + sum_k c_k d_k``.

How it is fast by construction:

* the data set is put on the device once per call; full batches are
  ``lax.scan``-ned inside one jitted function and the short last batch is
  evaluated in the same function, weighted by its size;
* grid coordinates are traced arguments: a whole surface compiles once
  (chunks of points have one fixed shape; the last chunk is padded by
  repeating its last point, and the repeats are dropped);
* inside a chunk, ``lax.map(..., batch_size=points_per_step)`` evaluates
  ``points_per_step`` points at a time with ``vmap``. The default of 1
  (points one after another) is the measured choice for conv nets on CPU:
  see ``benchmarks/points_per_step.py`` and ``docs/benchmarks.md``;
* the work is split over a ``("points", "data")`` device mesh with
  ``jax.shard_map`` (:mod:`jaxsurf.distributed`): by default every device
  (of every process, after ``jax.distributed.initialize``) evaluates its share
  of the points of every chunk over a copy of the data, and the chunk's values
  are all-gathered so that every process has them all. When that would leave
  devices idle (few points) the batches are split over the ``"data"`` axis
  instead and the per-device sums are added, still exact;
* ``compute_dtype=jnp.bfloat16`` runs ``fn`` on bf16 params and inputs while
  the combination ``origin + sum_k c_k d_k`` and every sum stay float32.

Long runs: ``store=PATH`` saves every finished chunk atomically and a rerun
evaluates only the missing points (:mod:`jaxsurf.store`); an interrupt
(Ctrl-C, SIGTERM) then raises :class:`jaxsurf.interrupt.Interrupted` after the
finished chunks are saved. ``progress=`` shows a bar with rate and ETA, log
lines, or feeds a callback (:mod:`jaxsurf.progress`).
Non-finite values are kept as they are, counted in
``metadata["nonfinite"]`` and reported in one warning. See
``docs/robustness.md``.

Example:
    >>> surface = js.evaluate_plane(fn, params, d1, d2, data,
    ...                             np.linspace(-1, 1, 21), np.linspace(-1, 1, 21))
    >>> surface.metrics["loss"].shape
    (21, 21)
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxsurf import _validate, batching, distributed, interrupt, subsample as subsample_lib, tree
from jaxsurf import store as store_lib
from jaxsurf._state import interpolate_recomputed, plan_interpolation
from jaxsurf._version import __version__
from jaxsurf.directions import describe_direction
from jaxsurf.progress import ProgressInfo, ProgressOption, ProgressTracker, make_sink
from jaxsurf.store import PointStore, StoreError
from jaxsurf.surface import Surface
from jaxsurf.tree import PyTree

__all__ = ["evaluate_points", "evaluate_line", "evaluate_plane", "evaluate_volume",
           "interpolate", "dataset_mean", "DEFAULT_CHUNK_SIZE"]

Fn = Callable[[PyTree, PyTree], Any]
DEFAULT_CHUNK_SIZE = 32  # points per jitted call (per device); bounds padding waste


# --------------------------------------------------------------------------- helpers
def _as_metric_dict(value: Any) -> dict[str, jax.Array]:
    """``fn``'s output as ``{name: real scalar}``; a bare scalar is called ``loss``.

    Refuses ``None``, non-numbers, complex values, non-scalars and names that
    collide after ``str()`` (e.g. ``1`` and ``"1"``), saying what ``fn`` returned.
    """
    if value is None:
        raise TypeError("fn returned None; it must return a scalar or a dict of scalars (each "
                        "the mean over the batch), e.g. {'loss': jnp.mean(losses)}. A missing "
                        "return statement?")
    items = _validate.unique_str_keys(value, "fn's metric") if isinstance(value, Mapping) \
        else {"loss": value}
    out = {}
    for name, v in items.items():
        try:
            out[name] = jnp.asarray(v)
        except (TypeError, ValueError) as err:
            raise TypeError(f"fn returned {type(v).__name__} {v!r:.60} for metric {name!r}; "
                            f"metrics must be real scalars (jnp arrays or numbers)") from err
        dtype = out[name].dtype
        if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
                or jnp.issubdtype(dtype, jnp.bool_)):
            raise TypeError(f"fn returned metric {name!r} with dtype {dtype}; metrics must be "
                            f"real numbers (take jnp.real or jnp.abs inside fn for a complex "
                            f"value)")
    for name, v in out.items():
        if v.shape != ():
            raise ValueError(
                f"fn must return a scalar or a dict of scalars (each the mean over the batch); "
                f"metric {name!r} has shape {v.shape}. Reduce it with jnp.mean inside fn.")
    return out


_FN_NOTE = "jaxsurf: raised inside fn(params, batch)"


def _with_note(fn: Fn) -> Fn:
    """``fn``, whose exceptions get a note saying where jaxsurf called it.

    The exception keeps its type and identity (``except`` clauses written for
    ``fn``'s errors, e.g. ``jax.errors.ConcretizationTypeError``, still catch
    it); only a note (``add_note``) is added, once.
    """
    def call(params: PyTree, batch: PyTree) -> Any:
        try:
            return fn(params, batch)
        except Exception as err:
            if not any(str(n).startswith(_FN_NOTE) for n in getattr(err, "__notes__", ())):
                shapes = jax.tree_util.tree_map(
                    lambda x: f"{getattr(x, 'dtype', type(x).__name__)}{list(np.shape(x))}",
                    batch)
                err.add_note(f"{_FN_NOTE}, which jaxsurf calls under jax.jit / jax.eval_shape "
                             f"(params are traced: no Python branching on their values) with a "
                             f"batch {shapes}")
            raise
    return call


def _combine(origin: PyTree | None, dirs: Sequence[PyTree], coeffs: jax.Array) -> PyTree:
    """``origin + sum_k coeffs[k] * dirs[k]`` (``origin`` None: no base point)."""
    if not dirs:
        return origin
    def leaf(base, *ds):
        if not tree.is_float_leaf(ds[0]):
            return base if base is not None else ds[0]
        acc = jnp.zeros(ds[0].shape, jnp.promote_types(ds[0].dtype, jnp.float32)) \
            if base is None else base.astype(jnp.promote_types(base.dtype, jnp.float32))
        for k, d in enumerate(ds):
            acc = acc + coeffs[k] * d
        return acc.astype(ds[0].dtype)

    if origin is None:
        return jax.tree_util.tree_map(lambda *ds: leaf(None, *ds), *dirs)
    return jax.tree_util.tree_map(leaf, origin, *dirs)


def _metric_shapes(fn: Fn, params: PyTree, batch: PyTree) -> dict[str, Any]:
    """Runs ``fn`` abstractly once to learn the metric names (and check them).
    ``fn``'s own errors keep their type and get a note (see :func:`_with_note`)."""
    return jax.eval_shape(lambda p, b: _as_metric_dict(_with_note(fn)(p, b)), params, batch)


def _cast_floats(value: PyTree, dtype: Any | None) -> PyTree:
    """Every floating leaf of ``value`` cast to ``dtype`` (``None``: unchanged)."""
    if dtype is None:
        return value
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, value)


def _check_chunk_size(chunk_size: Any) -> None:
    if chunk_size is not None:
        _validate.positive_int(chunk_size, "chunk_size")


def _plan_chunks(num_points: int, chunk_size: int | None, num_devices: int) -> tuple[int, int]:
    """``(chunk, num_chunks)``: a chunk divisible by ``num_devices`` (the points axis)
    with little padding; ``chunk_size`` counts points over all those devices
    (default ``DEFAULT_CHUNK_SIZE`` per device)."""
    per_device = max(1, math.ceil(num_points / num_devices))
    target = DEFAULT_CHUNK_SIZE if chunk_size is None else max(1, chunk_size // num_devices)
    target = min(target, per_device)
    num_chunks = math.ceil(per_device / target)
    per_device_chunk = math.ceil(per_device / num_chunks)
    return per_device_chunk * num_devices, num_chunks


def _metric_sums(fn: Fn, names: list[str], params: PyTree, full: PyTree | None,
                 weights: jax.Array | None, rest: PyTree | None, rest_weight: Any
                 ) -> dict[str, jax.Array]:
    """``sum_b weight_b * fn(params, batch_b)`` in float32 over full batches and the rest.

    A batch of weight 0 (padding added for data parallelism) contributes exactly
    0, even where ``fn`` is not finite on it.
    """
    def add(acc: dict[str, jax.Array], batch: PyTree, weight: Any) -> dict[str, jax.Array]:
        values = _as_metric_dict(fn(params, batch))
        return {k: acc[k] + jnp.where(weight > 0, values[k].astype(jnp.float32) * weight, 0.0)
                for k in names}

    zero = {name: jnp.zeros((), jnp.float32) for name in names}
    return _fold_batches(add, zero, full, weights, rest, rest_weight)


def _metric_moments(fn: Fn, names: list[str], params: PyTree, full: PyTree | None,
                    weights: jax.Array | None, rest: PyTree | None, rest_weight: Any
                    ) -> dict[str, subsample_lib.Moments]:
    """Per-example count, mean and spread of every metric over full batches and
    the rest (for ``subsample=``; see :mod:`jaxsurf.subsample`)."""
    def add(acc: dict[str, subsample_lib.Moments], batch: PyTree, weight: Any
            ) -> dict[str, subsample_lib.Moments]:
        values = subsample_lib.per_example(fn, _as_metric_dict, params, batch)
        return {k: subsample_lib.merge(acc[k], subsample_lib.batch_moments(values[k], weight))
                for k in names}

    zero = {k: subsample_lib.Moments.zero() for k in names}
    return _fold_batches(add, zero, full, weights, rest, rest_weight)


def _fold_batches(add: Callable[[Any, PyTree, Any], Any], total: Any, full: PyTree | None,
                  weights: jax.Array | None, rest: PyTree | None, rest_weight: Any) -> Any:
    """``add(total, batch, weight)`` over the full batches (``lax.scan``), then the rest."""
    if full is not None:
        total, _ = jax.lax.scan(lambda acc, xs: (add(acc, *xs), None), total, (full, weights))
    if rest is not None:
        total = add(total, rest, rest_weight)
    return total


def _map_points(one_point: Callable, coeffs: jax.Array, points_per_step: int) -> Any:
    """``one_point`` over the rows of ``coeffs``, ``points_per_step`` at a time (vmap)."""
    return jax.lax.map(one_point, coeffs,
                       batch_size=points_per_step if points_per_step > 1 else None)


def _combine_out(values: dict[str, jax.Array], shape: dict[str, int], *,
                 data_combined: bool = False) -> dict[str, jax.Array]:
    """Adds the data-parallel partial sums (unless ``data_combined``) and gathers
    every device's points."""
    if shape["data"] > 1 and not data_combined:
        values = jax.lax.psum(values, "data")
    if shape["points"] > 1:
        values = jax.lax.all_gather(values, "points", tiled=True)
    return values


def _sums_program(fn: Fn, names: list[str], job: "_Job", rest_size: int) -> Callable:
    """The jitted, sharded chunk program for in-memory data:
    ``(origin, dirs, coeffs[C, k], full, weights, rest) -> {name: sums[C]}``,
    replicated on every device."""
    shape = distributed.mesh_shape(job.mesh)

    def body(origin, dirs, coeffs, full, weights, rest):
        rest_weight = jnp.float32(rest_size)
        if shape["data"] > 1:  # every data replica holds the rest; one counts it
            rest_weight = jnp.where(jax.lax.axis_index("data") == 0, rest_weight, 0.0)

        def one_point(c):
            params = _cast_floats(_combine(origin, dirs, c), job.compute_dtype)
            if job.sem_population is None:
                return _metric_sums(fn, names, params, full, weights, rest, rest_weight)
            return _metric_moments(fn, names, params, full, weights, rest, rest_weight)

        values = _map_points(one_point, coeffs, job.points_per_step)
        if job.sem_population is None:
            return _combine_out(values, shape)
        if shape["data"] > 1:
            values = {k: subsample_lib.merge_replicas(m, "data") for k, m in values.items()}
        out = {k: m.count * m.mean for k, m in values.items()}
        out.update({k + subsample_lib.SEM_SUFFIX: m.m2 for k, m in values.items()})
        return _combine_out(out, shape, data_combined=True)

    data = PartitionSpec("data")
    specs = (PartitionSpec(), PartitionSpec(), PartitionSpec("points"), data, data,
             PartitionSpec())
    return jax.jit(jax.shard_map(body, mesh=job.mesh, in_specs=specs,
                                 out_specs=PartitionSpec(), check_vma=False))


def _values_program(fn: Fn, names: list[str], job: "_Job") -> Callable:
    """The jitted, sharded chunk program for one streamed batch:
    ``(origin, dirs, coeffs[C, k], batch) -> {name: means[C]}``, replicated."""
    shape = distributed.mesh_shape(job.mesh)

    def body(origin, dirs, coeffs, batch):
        def one_point(c):
            params = _cast_floats(_combine(origin, dirs, c), job.compute_dtype)
            values = _as_metric_dict(fn(params, batch))
            return {k: values[k].astype(jnp.float32) for k in names}

        return _combine_out(_map_points(one_point, coeffs, job.points_per_step), shape)

    specs = (PartitionSpec(), PartitionSpec(), PartitionSpec("points"), PartitionSpec())
    return jax.jit(jax.shard_map(body, mesh=job.mesh, in_specs=specs,
                                 out_specs=PartitionSpec(), check_vma=False))


@dataclass
class _Layout:
    """In-memory data cut for a mesh with ``replicas`` devices on its ``"data"`` axis.

    ``full`` holds whole batches ``(replicas * k, batch_size, ...)``; replica
    ``r`` gets batches ``r*k .. r*k + k - 1``. Padding batches (copies of batch
    0, so that every replica has ``k``) weigh 0 in ``weights``, the others
    ``batch_size``. ``rest`` is the short last batch: a copy on every device,
    counted once.
    """

    full: PyTree | None
    weights: np.ndarray | None
    rest: PyTree | None
    num_examples: int
    batch_size: int

    @property
    def rest_size(self) -> int:
        return 0 if self.rest is None else int(jax.tree_util.tree_leaves(self.rest)[0].shape[0])


def _layout(split: batching.SplitData, replicas: int) -> _Layout:
    """Pads the full batches of ``split`` to a multiple of ``replicas``."""
    weights = None
    full = split.full
    if full is not None:
        num_full = int(jax.tree_util.tree_leaves(full)[0].shape[0])
        pad = -num_full % replicas

        def padded(x: Any) -> Any:
            xp = jnp if isinstance(x, jax.Array) else np
            return xp.concatenate([x, xp.repeat(x[:1], pad, axis=0)], axis=0)

        if pad:
            full = jax.tree_util.tree_map(padded, full)
        weights = np.array([split.batch_size] * num_full + [0] * pad, np.float32)
    return _Layout(full, weights, split.rest, split.num_examples, split.batch_size)


# --------------------------------------------------------------------------- checks
def _check_directions(origin: PyTree | None, directions: Sequence[PyTree]) -> PyTree:
    """Checks every direction against the params; returns the reference pytree."""
    if not directions:
        raise ValueError("directions is empty; pass at least one direction pytree")
    reference = origin if origin is not None else directions[0]
    for k, d in enumerate(directions):
        tree.check_like(d, reference, name=f"direction {k}" if origin is not None
                        else f"params {k}", reference_name="params")
        tree.check_finite(d, name=f"direction {k}" if origin is not None else f"params {k}")
    return reference


def _as_grid(values: Any, name: str) -> np.ndarray:
    """A non-empty, strictly increasing 1-D array of real coordinates that stay
    finite and distinct in float32 (see :func:`jaxsurf._validate.grid`)."""
    return _validate.grid(values, name, float32=True)


def _as_coefficients(coefficients: Any, num_directions: int) -> np.ndarray:
    """``(num_points, num_directions)`` finite float32 coefficients."""
    arr = np.asarray(coefficients)
    if arr.ndim != 2 or arr.shape[1] != num_directions or arr.shape[0] == 0:
        raise ValueError(f"coefficients must have shape (num_points, {num_directions}), "
                         f"got {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"coefficients must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("coefficients must be finite (also in float32); got NaN or inf at "
                         f"rows {np.flatnonzero(~np.all(np.isfinite(arr), axis=1))[:8].tolist()}")
    return arr


def _check_points_per_step(points_per_step: Any) -> None:
    _validate.positive_int(points_per_step, "points_per_step")


def _check_data_dtypes(batch: PyTree, what: str = "data") -> None:
    """Refuses leaves JAX cannot hold (strings, objects), naming the leaf."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(batch):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_):
            continue
        raise TypeError(f"{what} leaf {tree.leaf_path(path)} has dtype {dtype}, which JAX "
                        f"cannot compute with; convert it to numbers first (e.g. class labels "
                        f"to int32 indices)")


def _check_not_empty_container(data: Any) -> None:
    if isinstance(data, (dict, tuple)) and not jax.tree_util.tree_leaves(data):
        raise ValueError("data holds no arrays; pass e.g. {'x': images, 'y': labels} or a "
                         "list of such batches")


# --------------------------------------------------------------------------- engine
def _as_compute_dtype(compute_dtype: Any) -> np.dtype | None:
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


def _make_mesh(num_points: int, chunk_size: int | None, devices: Sequence[jax.Device] | None,
               mesh: Mesh | None, split: batching.SplitData | None) -> Mesh:
    """The ``("points", "data")`` mesh of a request (see :mod:`jaxsurf.distributed`)."""
    if mesh is not None:
        if devices is not None:
            raise ValueError("pass devices= or mesh=, not both")
        mesh = distributed.as_mesh(mesh)
        if split is None and mesh.shape["data"] > 1:
            raise ValueError(f"a mesh with a 'data' axis of {mesh.shape['data']} devices needs "
                             f"in-memory data (a stream of batches is not split over devices); "
                             f"use a mesh with only a 'points' axis")
        return mesh
    if split is None:  # a stream: its batches are not split over devices
        return distributed.plan_mesh(num_points, devices, data_parallel=False)
    full = 0 if split.full is None else len(jax.tree_util.tree_leaves(split.full)[0])
    return distributed.plan_mesh(num_points, devices, full_batches=full,
                                 short_batch=split.rest is not None, chunk_size=chunk_size)


@dataclass
class _Job:
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
        cast = lambda value: _cast_floats(value, self.compute_dtype)
        return list(_metric_shapes(self.fn, cast(self.reference), cast(batch)))

    def put(self, value: Any, spec: PartitionSpec = PartitionSpec()) -> Any:
        """Places ``value`` on the mesh (default: a copy on every device)."""
        return distributed.put(value, self.mesh, spec)

    def put_params(self) -> tuple[PyTree, list[PyTree]]:
        """The origin and the directions, a copy on every device."""
        return self.put((self.origin, self.directions))

    def put_data(self, value: Any, spec: PartitionSpec = PartitionSpec()) -> Any:
        """Data on the mesh, float leaves already in the compute dtype."""
        return self.put(_cast_floats(value, self.compute_dtype), spec)

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


ChunkFn = Callable[[np.ndarray], dict[str, np.ndarray]]


def _run_chunks(job: _Job, todo: np.ndarray, make_chunk_fn: Callable[[], ChunkFn],
                values: dict[str, np.ndarray], store: PointStore | None) -> int:
    """Evaluates the points ``todo`` chunk by chunk, in grid order, writing each
    finished chunk into ``values`` and the store; returns the points evaluated."""
    done = 0
    wanted, in_store = job.num_points, job.num_points - len(todo)
    if job.only is not None:  # a subset of the grid (refine=): the store keys the full grid
        todo, wanted = todo[np.isin(todo, job.only)], len(job.only)
    stored = wanted - len(todo)
    with ProgressTracker(job.sink, len(todo), stored=stored,
                         devices=int(job.mesh.devices.size)) as track:
        try:
            evaluate_chunk = make_chunk_fn() if len(todo) else None
            for idx, coeffs in job.chunks(todo):
                out = evaluate_chunk(coeffs)
                finished = {k: v[:len(idx)] for k, v in out.items()}
                for k, v in finished.items():
                    values[k][idx] = v
                with interrupt.deferred():  # a finished chunk is saved (and counted) whole
                    if store is not None:
                        store.write(idx, finished)
                    done += len(idx)
                track.update(done)
        except BaseException as err:  # Ctrl-C / SIGTERM: say what is safe, and where
            if store is None or not interrupt.is_interrupt(err):
                raise
            raise interrupt.Interrupted(in_store + done, job.num_points, store.path) from None
    return done


def _open_store(job: _Job, path: str | os.PathLike, data_print: dict[str, Any],
                names: list[str], batch_size: int | str
                ) -> tuple[PointStore | None, np.ndarray, dict[str, np.ndarray]]:
    """Opens the store for this request; returns it, the points to do and the values.

    When the mesh spans processes, process 0 alone opens, reads and writes the
    store, and the others receive what it read (the store returned to them is
    ``None``), so every process evaluates the same points.
    """
    request = store_lib.make_request(job.origin, job.directions, job.coefficients, data_print,
                                     names, batch_size,
                                     compute_dtype=None if job.compute_dtype is None
                                     else str(job.compute_dtype))
    if not job.spans_processes:
        store = PointStore.open(path, request)
        done, values = store.read()
        return store, np.flatnonzero(~done), values
    store, error = None, None
    done = np.zeros(job.num_points, bool)
    values = {k: np.zeros(job.num_points, np.float32) for k in names}
    if jax.process_index() == 0:
        try:
            store = PointStore.open(path, request)
            done, values = store.read()
        except Exception as err:  # raised below, after the others learn of it
            error = err
    ok, done, values = distributed.broadcast_from_first(
        (np.int32(error is None), done.astype(np.int32), values), job.mesh)
    if error is not None:
        raise error
    if not ok:
        raise StoreError(f"process 0 could not open the store {path}; see its error")
    return store, np.flatnonzero(done == 0), {k: np.array(v) for k, v in values.items()}


def _evaluate_in_memory(job: _Job, data: PyTree, split: batching.SplitData,
                        store_path: str | os.PathLike | None
                        ) -> tuple[dict[str, np.ndarray], int]:
    sample = split.rest if split.rest is not None else \
        jax.tree_util.tree_map(lambda x: x[0], split.full)
    names = job.metric_names(sample)
    sem_names = [] if job.sem_population is None else \
        [k + subsample_lib.SEM_SUFFIX for k in names]
    store = None
    todo = np.arange(job.num_points)
    values = {k: np.zeros(job.num_points, np.float32) for k in names + sem_names}
    if store_path is not None:
        data_print = store_lib.data_fingerprint(data, split.num_examples)
        if job.sem_population is not None:
            data_print["subsample_of"] = job.sem_population
        store, todo, values = _open_store(job, store_path, data_print, names + sem_names,
                                          split.batch_size)

    def make_chunk_fn() -> ChunkFn:
        layout = _layout(split, job.mesh.shape["data"])
        origin, directions = job.put_params()
        full = job.put_data(layout.full, PartitionSpec("data"))
        weights = job.put(layout.weights, PartitionSpec("data"))  # float32 batch sizes
        rest = job.put_data(layout.rest)
        run = _sums_program(job.fn, names, job, layout.rest_size)

        def evaluate_chunk(coeffs: np.ndarray) -> dict[str, np.ndarray]:
            sums = run(origin, directions, job.put_coefficients(coeffs), full, weights, rest)
            out = {k: (distributed.to_host(sums[k]).astype(np.float64) / layout.num_examples)
                   .astype(np.float32) for k in names}
            for k in sem_names:
                out[k] = subsample_lib.standard_error(distributed.to_host(sums[k]),
                                                      layout.num_examples, job.sem_population)
            return out
        return evaluate_chunk

    return values, _run_chunks(job, todo, make_chunk_fn, values, store)


def _stream_length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None


def _evaluate_stream_once(job: _Job, data: Iterable[PyTree]
                          ) -> tuple[dict[str, np.ndarray], int, int]:
    """Reads the stream once (batches outer, chunks inner); no store. Returns the
    values, the points evaluated and the examples read."""
    length = _stream_length(data)
    wanted = np.arange(job.num_points) if job.only is None else job.only
    chunks = job.chunks(wanted)
    sums, total, run, origin, directions = None, 0, None, None, None
    with ProgressTracker(job.sink, len(wanted)) as track:
        for b, (batch, size) in enumerate(batching.iter_batches(data)):
            _check_data_dtypes(batch, f"batch {b}")
            if run is None:
                names = job.metric_names(batch)
                run = _values_program(job.fn, names, job)
                origin, directions = job.put_params()
                sums = {k: np.zeros(job.num_points, np.float64) for k in names}
            batch = job.put_data(batch)
            for idx, coeffs in chunks:
                out = run(origin, directions, job.put_coefficients(coeffs), batch)
                for k in sums:
                    sums[k][idx] += distributed.to_host(out[k]).astype(np.float64)[:len(idx)] \
                        * size
            total += size
            if length and b + 1 < length:  # equivalent points: share of the batches read
                track.update(len(wanted) * (b + 1) // length)
        if total == 0:
            raise ValueError("data is an empty iterable (no batches); pass at least one batch")
        track.update(len(wanted))
    return {k: (v / total).astype(np.float32) for k, v in sums.items()}, len(wanted), total


def _survey_stream(job: _Job, data: Iterable[PyTree]) -> tuple[list[int], list[str]]:
    """One pass over a stream for its batch sizes and metric names (no evaluation)."""
    sizes, names = [], []
    for b, (batch, size) in enumerate(batching.iter_batches(data)):
        _check_data_dtypes(batch, f"batch {b}")
        if not names:
            names = job.metric_names(batch)
        sizes.append(size)
    if not sizes:
        raise ValueError("data is an empty iterable (no batches); pass at least one batch")
    return sizes, names


def _evaluate_stream_stored(job: _Job, data: Iterable[PyTree], store_path: str | os.PathLike
                            ) -> tuple[dict[str, np.ndarray], int, int]:
    """Store mode for streams: chunks outer, the stream re-read for each chunk, so
    each finished chunk is saved at once. Returns as :func:`_evaluate_stream_once`."""
    if iter(data) is data:
        raise ValueError(
            f"store= needs data that can be read more than once, but got a one-shot iterator "
            f"({type(data).__name__}); pass a list of batches, or an object whose __iter__ "
            f"starts a new pass (e.g. a tf.data.Dataset, or a class wrapping your generator "
            f"function)")
    sizes, names = _survey_stream(job, data)
    store, todo, values = _open_store(job, store_path, store_lib.stream_fingerprint(sizes),
                                      names, "stream")
    total = sum(sizes)

    def make_chunk_fn() -> ChunkFn:
        origin, directions = job.put_params()
        run = _values_program(job.fn, names, job)

        def evaluate_chunk(coeffs: np.ndarray) -> dict[str, np.ndarray]:
            sums = {k: np.zeros(len(coeffs), np.float64) for k in names}
            seen = []
            placed = job.put_coefficients(coeffs)
            for batch, size in batching.iter_batches(data):
                out = run(origin, directions, placed, job.put_data(batch))
                for k in names:
                    sums[k] += distributed.to_host(out[k]).astype(np.float64) * size
                seen.append(size)
            if seen != sizes:
                raise ValueError(f"the stream gave other batch sizes on a later pass "
                                 f"({len(seen)} batches, {sum(seen)} examples) than on the "
                                 f"first ({len(sizes)} batches, {total} examples); store= "
                                 f"needs a stream that yields the same batches every pass")
            return {k: (v / total).astype(np.float32) for k, v in sums.items()}
        return evaluate_chunk

    return values, _run_chunks(job, todo, make_chunk_fn, values, store), total


def _default_progress(progress: ProgressOption, mesh: Mesh) -> ProgressOption:
    """With several processes on one mesh, only process 0 draws the default bar."""
    if distributed.spans_processes(mesh) and jax.process_index() != 0 and progress in (None,
                                                                                         True):
        return False
    return progress


def _evaluate(fn: Fn, origin: PyTree | None, directions: Sequence[PyTree], data: Any,
              coefficients: Any, *, batch_size: int | None = None, points_per_step: int = 1,
              chunk_size: int | None = None, devices: Sequence[jax.Device] | None = None,
              mesh: Mesh | None = None, compute_dtype: Any = None,
              progress: ProgressOption = None, store: str | os.PathLike | None = None,
              subsample: int | float | None = None, subsample_seed: int = 0,
              only: np.ndarray | None = None,
              ) -> tuple[dict[str, np.ndarray], int, dict[str, Any]]:
    """:func:`evaluate_points`, also returning how many points were evaluated
    (the rest came from the store) and facts about how they were evaluated.

    ``only`` (sorted unique indices into ``coefficients``) evaluates just those
    points while a store stays keyed by the whole grid (used by
    :mod:`jaxsurf.refine`); the returned arrays are full length, meaningful
    at ``only`` (and at points the store already held)."""
    reference = _check_directions(origin, directions)
    coefficients = _as_coefficients(coefficients, len(directions))
    _check_points_per_step(points_per_step)
    _check_chunk_size(chunk_size)
    dtype = _as_compute_dtype(compute_dtype)
    _check_not_empty_container(data)
    facts: dict[str, Any] = {}
    if subsample is not None:
        data, facts["subsample"] = subsample_lib.draw(data, subsample, subsample_seed)
    split = None
    if batching.is_in_memory(data):
        split = batching.split_batches(data, batch_size)
        _check_data_dtypes(data)
    num_wanted = len(coefficients) if only is None else len(only)
    mesh = _make_mesh(num_wanted, chunk_size, devices, mesh, split)
    sink = make_sink(_default_progress(progress, mesh))
    chunk, _ = _plan_chunks(num_wanted, chunk_size, mesh.shape["points"])
    job = _Job(_with_note(fn), origin, list(directions), reference, coefficients, mesh, chunk,
               points_per_step, dtype, sink,
               sem_population=facts["subsample"]["of"] if subsample is not None else None,
               only=only)
    if split is not None:
        values, evaluated = _evaluate_in_memory(job, data, split, store)
        facts["num_examples"] = split.num_examples
    elif store is not None:
        values, evaluated, facts["num_examples"] = _evaluate_stream_stored(job, data, store)
    else:
        values, evaluated, facts["num_examples"] = _evaluate_stream_once(job, data)
    return values, evaluated, {**job.describe(), **facts}


def evaluate_points(fn: Fn, origin: PyTree | None, directions: Sequence[PyTree], data: Any,
                    coefficients: Any, *, batch_size: int | None = None,
                    points_per_step: int = 1, chunk_size: int | None = None,
                    devices: Sequence[jax.Device] | None = None, mesh: Mesh | None = None,
                    compute_dtype: Any = None, progress: ProgressOption = None,
                    store: str | os.PathLike | None = None,
                    subsample: int | float | None = None,
                    subsample_seed: int = 0) -> dict[str, np.ndarray]:
    """Exact dataset means of ``fn`` at ``origin + sum_k coefficients[p, k] * directions[k]``.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalars, each the mean
            over the batch.
        origin: params pytree at coordinates 0, or ``None`` for a pure
            combination of ``directions`` (used by :func:`interpolate`).
        directions: pytrees shaped like the params.
        data: an array or dict/tuple of arrays with a shared leading axis
            (kept on the device), or an iterable of such batches (read once;
            with ``store``, read once more per chunk, so it must be
            re-iterable).
        coefficients: finite array ``(num_points, len(directions))``.
        batch_size: examples per batch for in-memory data (default
            ``min(n, 512)``); ignored for streams. With data parallelism each
            device evaluates whole batches of this size.
        points_per_step: points evaluated together with ``vmap`` (1: one
            after another, the measured best for conv nets on CPU).
        chunk_size: points per jitted call, over all devices (default 32
            per device of the points axis); also how often ``store`` saves
            and ``progress`` reports. The points axis of the planned mesh
            divides it (the other devices split the data); with a stream or
            a given ``mesh`` it is rounded down to a multiple of the points
            axis.
        devices: devices to spread the work over (default ``jax.devices()``:
            every local device, and after ``jax.distributed.initialize`` the
            devices of every process; each process then evaluates its share
            and every process gets all values). Points are split over the
            devices; with few points (fewer than devices, or a handful that
            divide badly over them), the batches of in-memory data are split
            too (data parallelism, see :func:`jaxsurf.distributed.plan_mesh`).
        mesh: instead of ``devices``, a ``jax.sharding.Mesh`` with axes
            ``"points"`` and/or ``"data"`` that fixes the split.
        compute_dtype: e.g. ``jnp.bfloat16``: the combined params and the
            float leaves of the data are cast to it before ``fn`` is called
            (the combination itself and the sums stay float32). Flax modules
            compute in their own ``dtype``; build them with
            ``dtype=jnp.bfloat16`` too. ``None`` (default): as given.
        progress: ``None`` (a bar on stderr when it is a terminal), ``True``,
            ``False``, or a callable taking a :class:`jaxsurf.progress.ProgressInfo`
            (called at the start and after every chunk).
        store: a directory that keeps every finished chunk (see
            :mod:`jaxsurf.store`); calling again with the same request
            evaluates only the missing points. A store made for another
            request raises :class:`jaxsurf.store.StoreMismatchError`. On a
            mesh over several processes, process 0 reads and writes it.
        subsample: evaluate every point on the same ``subsample`` examples (an
            int, or a float in (0, 1] for that fraction) of in-memory data,
            drawn at random without replacement with ``subsample_seed``, and
            add ``<metric>_sem``, the standard error of each value as an
            estimate of the full-data mean (see
            :mod:`jaxsurf.subsample`; ``fn`` is then also called on single
            examples under ``vmap``).
        subsample_seed: the seed of that draw (default 0).

    Returns:
        ``{metric name: float32 array (num_points,)}``; with ``subsample``
        also ``{metric name + "_sem": ...}``.

    Example:
        >>> vals = js.evaluate_points(fn, params, [d1], data, np.array([[0.], [0.5]]))
    """
    values, _, _ = _evaluate(fn, origin, directions, data, coefficients, batch_size=batch_size,
                             points_per_step=points_per_step, chunk_size=chunk_size,
                             devices=devices, mesh=mesh, compute_dtype=compute_dtype,
                             progress=progress, store=store, subsample=subsample,
                             subsample_seed=subsample_seed)
    return values


def dataset_mean(fn: Fn, data: Any, *, batch_size: int | None = None
                 ) -> Callable[[PyTree], dict[str, float]]:
    """A reusable exact evaluator ``params -> {metric: dataset mean}``.

    The data is split and put on the device once, and one jitted program is
    reused for every call (e.g. a validation pass after each training epoch).

    Example:
        >>> val = js.dataset_mean(fn, {"x": x_val, "y": y_val}, batch_size=1000)
        >>> val(params)["accuracy"]
    """
    if not batching.is_in_memory(data):
        raise TypeError("dataset_mean needs in-memory arrays; for a stream of batches use "
                        "js.evaluate_points(fn, params, [zeros], data, [[0.0]])")
    fn = _with_note(fn)
    split = batching.split_batches(data, batch_size)
    layout = _layout(split, 1)
    full, weights, rest = jax.device_put((layout.full, layout.weights, layout.rest))
    sample = rest if rest is not None else jax.tree_util.tree_map(lambda x: x[0], full)
    compiled: dict[str, Callable] = {}

    def evaluate(params: PyTree) -> dict[str, float]:
        if "run" not in compiled:
            names = list(_metric_shapes(fn, params, sample))
            compiled["run"] = jax.jit(lambda p, f, w, r: _metric_sums(
                fn, names, p, f, w, r, jnp.float32(layout.rest_size)))
        sums = compiled["run"](params, full, weights, rest)
        return {k: float(v) / split.num_examples for k, v in sums.items()}

    return evaluate


# Keys jaxsurf writes into the metadata of every Surface it evaluates (more, such
# as ``directions`` or ``distance``, depending on the entry point). User
# ``metadata=`` may not override them: see docs/robustness.md.
LIBRARY_METADATA_KEYS = frozenset({
    "kind", "num_examples", "batch_size", "points_per_step", "num_devices", "mesh",
    "num_processes", "compute_dtype", "subsample", "nonfinite", "points_evaluated",
    "points_from_store", "store", "seconds", "seconds_per_point", "library_version",
    "jax_version", "backend", "directions", "directions_cosine", "directions_cosines",
    "params_fingerprint",
    "params_a_fingerprint", "params_b_fingerprint", "distance", "normalization", "ignore",
    "points_total", "points_exact", "points_interpolated", "interpolated", "refine"})
_USER_MAY_SET = frozenset({"axis_labels", "title"})  # presentation hints: user wins
_ENTRY_POINTS = {"line": "js.evaluate_line", "plane": "js.evaluate_plane",
                 "volume": "js.evaluate_volume", "interpolation": "js.interpolate"}


def _option_names() -> set[str]:
    """The keyword options of the evaluation engine (what ``**options`` may hold)."""
    import inspect
    return {name for name, p in inspect.signature(_evaluate).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _run_surface(kind: str, fn: Fn, origin: PyTree | None, directions: list[PyTree], data: Any,
                 alphas: Any, betas: Any | None, coefficients: np.ndarray,
                 info: dict[str, Any], metadata: Mapping[str, Any] | None,
                 gammas: Any | None = None,
                 evaluator: Callable[..., Any] | None = None, **options: Any) -> Surface:
    entry = _ENTRY_POINTS.get(kind, f"js.evaluate ({kind})")
    _validate.known_options(options, _option_names(), entry)
    reserved = (LIBRARY_METADATA_KEYS | set(info)) - _USER_MAY_SET
    user_metadata = _validate.user_metadata(metadata, reserved, entry)  # before the work
    start = time.perf_counter()
    values, evaluated, where = (evaluator or _evaluate)(fn, origin, directions, data,
                                                        coefficients, **options)
    seconds = time.perf_counter() - start
    shape = (len(alphas),) if betas is None else (len(alphas), len(betas))
    if gammas is not None:
        shape = (*shape, len(gammas))
    metrics = {k: v.reshape(shape) for k, v in values.items()}
    nonfinite = {k: int(np.size(v) - np.count_nonzero(np.isfinite(v))) for k, v in metrics.items()}
    if any(nonfinite.values()):
        warnings.warn(f"{kind}: non-finite values at {nonfinite} points (diverged loss?); they "
                      f"are kept as NaN/inf in the Surface and masked in plots", RuntimeWarning,
                      stacklevel=3)
    batch_size = options.get("batch_size")
    store = options.get("store")
    n = where.pop("num_examples")  # examples each value averages (the subset's, if any)
    meta = {
        "kind": kind,
        **info,
        "num_examples": n,
        "batch_size": (batching.resolve_batch_size(batch_size, n) if batching.is_in_memory(data)
                       else "stream"),
        "points_per_step": options.get("points_per_step", 1),
        **where,
        "nonfinite": nonfinite,
        "points_evaluated": evaluated,
        "points_from_store": len(coefficients) - evaluated,
        "store": None if store is None else os.fspath(store),
        "seconds": seconds,
        "seconds_per_point": seconds / evaluated if evaluated else None,
        "library_version": __version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        **user_metadata,
    }
    return Surface(np.asarray(alphas), None if betas is None else np.asarray(betas),
                   metrics, meta, None if gammas is None else np.asarray(gammas))


def evaluate_line(fn: Fn, params: PyTree, direction: PyTree, data: Any, alphas: Any, *,
                  batch_size: int | None = None, metadata: Mapping[str, Any] | None = None,
                  store: str | os.PathLike | None = None, progress: ProgressOption = None,
                  filter_axis: Any = None, **options: Any) -> Surface:
    """Metrics along the line ``params + alpha * direction``.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means.
        params: the centre (alpha = 0).
        direction: pytree shaped like ``params`` (e.g. filter-normalized).
        data: in-memory arrays or an iterable of batches (see
            :func:`evaluate_points`).
        alphas: finite 1-D coordinates.
        batch_size: examples per batch.
        metadata: extra JSON-serialisable facts to keep (e.g. ``{"seed": 0}``).
        store: directory that keeps finished points; rerunning the same call
            resumes (see :func:`evaluate_points` and ``docs/robustness.md``).
        progress: ``None`` (bar when stderr is a terminal), ``True``, ``False``
            or a callable taking a :class:`jaxsurf.progress.ProgressInfo`.
        filter_axis: the layout the direction's normalization is checked and
            recorded against (as in :func:`jaxsurf.normalize`; default inferred).
        **options: ``points_per_step``, ``chunk_size``, ``devices``, ``mesh``,
            ``compute_dtype``, ``subsample``, ``subsample_seed`` (see
            :func:`evaluate_points`).

    Returns:
        A line :class:`Surface`; ``metrics[name][i]`` is at ``alphas[i]``.
        ``metadata["points_evaluated"]`` counts the points this call
        evaluated (the others came from the store).

    Example:
        >>> line = js.evaluate_line(fn, params, d, data, np.linspace(-1, 1, 51),
        ...                         store="runs/line")
    """
    alphas = _as_grid(alphas, "alphas")
    tree.check_like(direction, params)
    info = {"directions": [describe_direction(direction, params, filter_axis=filter_axis)],
            "params_fingerprint": tree.fingerprint(params)}
    info.update(_shared_normalization(info["directions"]))
    return _run_surface("line", fn, params, [direction], data, alphas, None,
                        alphas[:, None], info, metadata, batch_size=batch_size, store=store,
                        progress=progress, **options)


def evaluate_plane(fn: Fn, params: PyTree, d1: PyTree, d2: PyTree, data: Any, alphas: Any,
                   betas: Any, *, batch_size: int | None = None,
                   metadata: Mapping[str, Any] | None = None,
                   store: str | os.PathLike | None = None, progress: ProgressOption = None,
                   filter_axis: Any = None, refine: Any = None, **options: Any) -> Surface:
    """Metrics on the plane ``params + alpha * d1 + beta * d2``.

    Args:
        fn, params, data, batch_size, metadata, store, progress, filter_axis,
            options: as in :func:`evaluate_line`.
        d1, d2: directions shaped like ``params``.
        alphas, betas: finite 1-D coordinates along ``d1`` and ``d2``.
        refine: ``None`` (every point evaluated) or a :class:`jaxsurf.Refine`:
            evaluate a coarse sub-grid, then only where interpolation misses
            by more than ``tol``; the other points are interpolated and
            flagged in ``surface.evaluated`` (see :mod:`jaxsurf.refine`). A
            ``store`` is keyed by the full grid, so an exact run later reuses
            the refined run's points.

    Returns:
        A plane :class:`Surface`: ``metrics[name][i, j]`` is the value at
        ``(alphas[i], betas[j])``, shape ``(len(alphas), len(betas))``.

    Example:
        >>> d1, d2 = js.random_plane(jax.random.key(0), params)
        >>> s = js.evaluate_plane(fn, params, d1, d2, data, np.linspace(-1, 1, 21),
        ...                       np.linspace(-1, 1, 21), metadata={"seed": 0},
        ...                       store="runs/plane")
    """
    alphas = _as_grid(alphas, "alphas")
    betas = _as_grid(betas, "betas")
    tree.check_like(d1, params, name="d1")
    tree.check_like(d2, params, name="d2")
    grid_a, grid_b = np.meshgrid(alphas, betas, indexing="ij")
    coefficients = np.stack([grid_a.ravel(), grid_b.ravel()], axis=1)
    descriptions = [describe_direction(d, params, filter_axis=filter_axis) for d in (d1, d2)]
    cosine = float(tree.dot(d1, d2) / (tree.norm(d1) * tree.norm(d2) + 1e-30))
    info = {"directions": descriptions, "directions_cosine": cosine,
            "params_fingerprint": tree.fingerprint(params),
            **_shared_normalization(descriptions)}
    run = _run_surface
    if refine is not None:
        from jaxsurf import refine as refine_lib  # imports this module: loaded on use
        run = refine_lib.runner(refine, alphas, betas)
    return run("plane", fn, params, [d1, d2], data, alphas, betas, coefficients,
               info, metadata, batch_size=batch_size, store=store, progress=progress,
               **options)


def evaluate_volume(fn: Fn, params: PyTree, d1: PyTree, d2: PyTree, d3: PyTree, data: Any,
                    alphas: Any, betas: Any, gammas: Any, *, batch_size: int | None = None,
                    metadata: Mapping[str, Any] | None = None,
                    store: str | os.PathLike | None = None, progress: ProgressOption = None,
                    **options: Any) -> Surface:
    """Metrics in the volume ``params + alpha * d1 + beta * d2 + gamma * d3``.

    The same engine as :func:`evaluate_plane` (devices, stores, progress);
    a ``n x m x l`` volume costs ``n * m * l`` exact dataset passes, so keep
    grids small (e.g. 21 x 21 x 21 is 9,261 points).

    Args:
        fn, params, data, batch_size, metadata, store, progress, options: as in
            :func:`evaluate_line`.
        d1, d2, d3: directions shaped like ``params`` (e.g. from
            :func:`jaxsurf.volume.random_directions` or the eigenvectors of
            :func:`jaxsurf.hessian.top_eigenpairs`); how each is normalized is
            read off it and recorded in ``metadata["directions"]``.
        alphas, betas, gammas: finite, strictly increasing 1-D coordinates.

    Returns:
        A volume :class:`Surface` (``surface.gammas`` set): ``metrics[name][i,
        j, k]`` is the value at ``(alphas[i], betas[j], gammas[k])``, shape
        ``(len(alphas), len(betas), len(gammas))``.

    Example:
        >>> d1, d2, d3 = js.random_directions(jax.random.key(0), params, n=3)
        >>> g = np.linspace(-1, 1, 11)
        >>> v = js.evaluate_volume(fn, params, d1, d2, d3, data, g, g, g)
        >>> v.metrics["loss"].shape
        (11, 11, 11)
    """
    grids = []
    for name, values in (("alphas", alphas), ("betas", betas), ("gammas", gammas)):
        grids.append(_as_grid(values, name))  # strictly increasing (jaxsurf._validate.grid)
    for name, d in (("d1", d1), ("d2", d2), ("d3", d3)):
        tree.check_like(d, params, name=name)
    mesh = np.meshgrid(*grids, indexing="ij")
    coefficients = np.stack([g.ravel() for g in mesh], axis=1)
    descriptions = [describe_direction(d, params) for d in (d1, d2, d3)]
    norms = [tree.norm(d) for d in (d1, d2, d3)]
    cosines = {f"{a + 1}{b + 1}": float(tree.dot(x, y) / (norms[a] * norms[b] + 1e-30))
               for a, b, x, y in ((0, 1, d1, d2), (0, 2, d1, d3), (1, 2, d2, d3))}
    info = {"directions": descriptions, "directions_cosines": cosines,
            "params_fingerprint": tree.fingerprint(params),
            **_shared_normalization(descriptions)}
    return _run_surface("volume", fn, params, [d1, d2, d3], data, grids[0], grids[1],
                        coefficients, info, metadata, gammas=grids[2], batch_size=batch_size,
                        store=store, progress=progress, **options)


def interpolate(fn: Fn, params_a: PyTree, params_b: PyTree, data: Any, alphas: Any, *,
                batch_size: int | None = None, metadata: Mapping[str, Any] | None = None,
                store: str | os.PathLike | None = None, progress: ProgressOption = None,
                state_policy: str | None = None, recompute_data: Any = None,
                **options: Any) -> Surface:
    """Metrics along ``(1 - alpha) * params_a + alpha * params_b``.

    ``alpha = 0`` is exactly ``params_a`` and ``alpha = 1`` exactly
    ``params_b``; values outside [0, 1] extrapolate.

    Args:
        fn, data, batch_size, metadata, store, progress, options: as in
            :func:`evaluate_line`.
        params_a, params_b: the two end points (same structure, shapes, dtypes).
        alphas: finite 1-D coordinates.
        state_policy: for ``fn`` from an adapter of a model with state
            (BatchNorm statistics): ``"interpolate"`` (default) moves the state
            with the weights, ``(1 - alpha) * state_a + alpha * state_b``, so
            each end point is exactly its model; ``"fixed"`` keeps ``fn``'s own
            state (model A's) along the whole path; ``"recompute"``
            re-estimates the BatchNorm statistics at every alpha from
            ``recompute_data`` (default ``data``; Flax Linen and NNX models).
            See ``docs/frameworks.md``.

    Returns:
        A line :class:`Surface` with ``metadata["kind"] == "interpolation"``.

    Example:
        >>> s = js.interpolate(fn, theta_small_batch, theta_large_batch, data,
        ...                    np.linspace(-0.5, 1.5, 41))
    """
    alphas = _as_grid(alphas, "alphas")
    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    coefficients = np.stack([1.0 - alphas, alphas], axis=1)
    info = {"params_a_fingerprint": tree.fingerprint(params_a),
            "params_b_fingerprint": tree.fingerprint(params_b),
            "distance": float(tree.norm(tree.sub(params_b, params_a))),
            "axis_labels": ["alpha (0: params_a, 1: params_b)"]}
    if state_policy == "recompute":  # (the other path checks metadata in _run_surface)
        _validate.user_metadata(metadata, (LIBRARY_METADATA_KEYS | set(info)) - _USER_MAY_SET,
                                "js.interpolate")
        return interpolate_recomputed(fn, params_a, params_b, data, alphas, recompute_data,
                                      batch_size, info, metadata,
                                      {"progress": progress, "store": store, **options})
    fn, params_a, params_b, state_facts = plan_interpolation(fn, params_a, params_b,
                                                             state_policy)
    info.update(state_facts)
    return _run_surface("interpolation", fn, None, [params_a, params_b], data, alphas, None,
                        coefficients, info, metadata, batch_size=batch_size, store=store,
                        progress=progress, **options)


def _shared_normalization(descriptions: list[dict[str, Any]]) -> dict[str, Any]:
    """Top-level ``normalization``/``ignore`` when all directions agree."""
    norms = {d["normalization"] for d in descriptions}
    ignores = {d["ignore"] for d in descriptions}
    return {"normalization": norms.pop() if len(norms) == 1 else "mixed",
            "ignore": ignores.pop() if len(ignores) == 1 else "mixed"}
