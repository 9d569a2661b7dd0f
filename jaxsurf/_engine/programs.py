"""Pure programs: combine params, fold batches, map points, the ``shard_map`` programs.

Nothing here touches the host: every function is traced under ``jax.jit``.

Example:
    >>> combine(None, [{"w": jnp.ones(2)}], jnp.array([2.0]))
    {'w': Array([2., 2.], dtype=float32)}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from jaxsurf import _distributed as distributed, _subsample as subsample_lib, _tree as tree
from jaxsurf._engine.metrics import Fn, as_metric_dict, cast_floats
from jaxsurf._tree import PyTree

if TYPE_CHECKING:
    from jaxsurf._engine.job import Job

__all__ = ["combine", "metric_sums", "metric_moments", "fold_batches", "map_points",
           "combine_out", "sums_program", "values_program"]


def combine(origin: PyTree | None, dirs: Sequence[PyTree], coeffs: jax.Array) -> PyTree:
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


def metric_sums(fn: Fn, names: list[str], params: PyTree, full: PyTree | None,
                 weights: jax.Array | None, rest: PyTree | None, rest_weight: Any
                 ) -> dict[str, jax.Array]:
    """``sum_b weight_b * fn(params, batch_b)`` in float32 over full batches and the rest.

    A batch of weight 0 (padding added for data parallelism) contributes exactly
    0, even where ``fn`` is not finite on it.
    """
    def add(acc: dict[str, jax.Array], batch: PyTree, weight: Any) -> dict[str, jax.Array]:
        values = as_metric_dict(fn(params, batch))
        return {k: acc[k] + jnp.where(weight > 0, values[k].astype(jnp.float32) * weight, 0.0)
                for k in names}

    zero = {name: jnp.zeros((), jnp.float32) for name in names}
    return fold_batches(add, zero, full, weights, rest, rest_weight)


def metric_moments(fn: Fn, names: list[str], params: PyTree, full: PyTree | None,
                    weights: jax.Array | None, rest: PyTree | None, rest_weight: Any
                    ) -> dict[str, subsample_lib.Moments]:
    """Per-example count, mean and spread of every metric over full batches and
    the rest (for ``subsample=``; see :mod:`jaxsurf.subsample`)."""
    def add(acc: dict[str, subsample_lib.Moments], batch: PyTree, weight: Any
            ) -> dict[str, subsample_lib.Moments]:
        values = subsample_lib.per_example(fn, as_metric_dict, params, batch)
        return {k: subsample_lib.merge(acc[k], subsample_lib.batch_moments(values[k], weight))
                for k in names}

    zero = {k: subsample_lib.Moments.zero() for k in names}
    return fold_batches(add, zero, full, weights, rest, rest_weight)


def fold_batches(add: Callable[[Any, PyTree, Any], Any], total: Any, full: PyTree | None,
                  weights: jax.Array | None, rest: PyTree | None, rest_weight: Any) -> Any:
    """``add(total, batch, weight)`` over the full batches (``lax.scan``), then the rest."""
    if full is not None:
        total, _ = jax.lax.scan(lambda acc, xs: (add(acc, *xs), None), total, (full, weights))
    if rest is not None:
        total = add(total, rest, rest_weight)
    return total


def map_points(one_point: Callable, coeffs: jax.Array, points_per_step: int) -> Any:
    """``one_point`` over the rows of ``coeffs``, ``points_per_step`` at a time (vmap)."""
    return jax.lax.map(one_point, coeffs,
                       batch_size=points_per_step if points_per_step > 1 else None)


def combine_out(values: dict[str, jax.Array], shape: dict[str, int], *,
                 data_combined: bool = False) -> dict[str, jax.Array]:
    """Adds the data-parallel partial sums (unless ``data_combined``) and gathers
    every device's points."""
    if shape["data"] > 1 and not data_combined:
        values = jax.lax.psum(values, "data")
    if shape["points"] > 1:
        values = jax.lax.all_gather(values, "points", tiled=True)
    return values


def sums_program(fn: Fn, names: list[str], job: "Job", rest_size: int) -> Callable:
    """The jitted, sharded chunk program for in-memory data:
    ``(origin, dirs, coeffs[C, k], full, weights, rest) -> {name: sums[C]}``,
    replicated on every device."""
    shape = distributed.mesh_shape(job.mesh)

    def body(origin, dirs, coeffs, full, weights, rest):
        rest_weight = jnp.float32(rest_size)
        if shape["data"] > 1:  # every data replica holds the rest; one counts it
            rest_weight = jnp.where(jax.lax.axis_index("data") == 0, rest_weight, 0.0)

        def one_point(c):
            params = cast_floats(combine(origin, dirs, c), job.compute_dtype)
            if job.sem_population is None:
                return metric_sums(fn, names, params, full, weights, rest, rest_weight)
            return metric_moments(fn, names, params, full, weights, rest, rest_weight)

        values = map_points(one_point, coeffs, job.points_per_step)
        if job.sem_population is None:
            return combine_out(values, shape)
        if shape["data"] > 1:
            values = {k: subsample_lib.merge_replicas(m, "data") for k, m in values.items()}
        out = {k: m.count * m.mean for k, m in values.items()}
        out.update({k + subsample_lib.SEM_SUFFIX: m.m2 for k, m in values.items()})
        return combine_out(out, shape, data_combined=True)

    data = job.data_spec()
    specs = (PartitionSpec(), PartitionSpec(), distributed.axis_spec(job.mesh, "points"), data,
             data, PartitionSpec())
    return _sharded_program(body, job, specs)


def values_program(fn: Fn, names: list[str], job: "Job") -> Callable:
    """The jitted, sharded chunk program for one streamed batch:
    ``(origin, dirs, coeffs[C, k], batch) -> {name: means[C]}``, replicated."""
    shape = distributed.mesh_shape(job.mesh)

    def body(origin, dirs, coeffs, batch):
        def one_point(c):
            params = cast_floats(combine(origin, dirs, c), job.compute_dtype)
            values = as_metric_dict(fn(params, batch))
            return {k: values[k].astype(jnp.float32) for k in names}

        return combine_out(map_points(one_point, coeffs, job.points_per_step), shape)

    specs = (PartitionSpec(), PartitionSpec(), distributed.axis_spec(job.mesh, "points"),
             PartitionSpec())
    return _sharded_program(body, job, specs)


def _sharded_program(body: Callable, job: "Job", in_specs: tuple) -> Callable:
    """``jit(shard_map(body))`` over the mesh's ``"points"``/``"data"`` axes. On a
    mesh with model axes those stay automatic (or explicit): the params' and
    directions' shardings over them flow into every point's forward pass (GSPMD),
    the ``PartitionSpec()`` of ``in_specs`` meaning only "the same on every
    point and data device"."""
    manual = distributed.manual_axes(job.mesh)
    if not distributed.model_axes(job.mesh):
        manual = frozenset()  # every axis (the default)
    return jax.jit(jax.shard_map(body, mesh=job.mesh, in_specs=in_specs,
                                 out_specs=PartitionSpec(), axis_names=manual,
                                 check_vma=False))
