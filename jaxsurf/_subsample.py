"""The implementation of :mod:`jaxsurf.subsample`; its public face, with the
documentation and examples, is ``jaxsurf/subsample.py``."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _validate, _batching as batching
from jaxsurf._surface import SEM_SUFFIX
from jaxsurf._tree import PyTree

__all__ = ["Moments", "draw", "batch_moments", "merge", "merge_replicas", "standard_error",
           "SEM_SUFFIX"]


class Moments(NamedTuple):
    """Count, mean and sum of squared deviations from the mean (``m2``)."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @staticmethod
    def zero() -> "Moments":
        z = jnp.zeros((), jnp.float32)
        return Moments(z, z, z)


def draw(data: PyTree, size: Any, seed: int) -> tuple[PyTree, dict[str, Any]]:
    """``size`` examples (or, for a float in (0, 1], that fraction) of in-memory
    ``data`` drawn without replacement, in random order, and a description for
    the Surface metadata.

    Example:
        >>> subset, info = draw({"x": np.arange(10.0)}, 4, seed=0)
        >>> info["size"], info["of"]
        (4, 10)
    """
    if not batching.is_in_memory(data):
        raise TypeError(f"subsample= needs in-memory data (an array or a dict/tuple of arrays "
                        f"with a shared leading axis), got {type(data).__name__}; draw the "
                        f"subset yourself, or pass arrays")
    total = batching.num_examples(data)
    if isinstance(size, (float, np.floating)) and 0 < size <= 1:
        size = int(round(float(size) * total))  # a fraction of the data
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 2 <= size <= total:
        raise ValueError(f"subsample must be an integer between 2 (a standard error needs two "
                         f"examples) and the number of examples ({total}), or a fraction in "
                         f"(0, 1] that gives at least 2, got {size!r}")
    seed = _validate.non_negative_int(seed, "subsample_seed")
    index = np.random.default_rng(int(seed)).permutation(total)[:int(size)]
    subset = jax.tree_util.tree_map(lambda x: x[index], data)
    return subset, {"size": int(size), "of": int(total), "seed": int(seed),
                    "same_subset_at_every_point": True,
                    "sem": "sqrt(s^2/n * (N-n)/(N-1)) over per-example values"}


def per_example(fn: Callable[[PyTree, PyTree], Any], as_dict: Callable[[Any], dict],
                params: PyTree, batch: PyTree) -> dict[str, jax.Array]:
    """``{name: (batch_size,)}``: ``fn`` on one example at a time (vmapped).

    Example:
        >>> fn = lambda p, b: {"loss": jnp.mean((b * p) ** 2)}
        >>> per_example(fn, dict, 2.0, jnp.array([1.0, 3.0]))["loss"]
        Array([ 4., 36.], dtype=float32)
    """
    def one(example: PyTree) -> dict[str, jax.Array]:
        return as_dict(fn(params, jax.tree_util.tree_map(lambda x: x[None], example)))
    return jax.vmap(one)(batch)


def batch_moments(values: jax.Array, weight: jax.Array) -> Moments:
    """Moments of one batch's per-example ``values``; a batch of ``weight`` 0
    (padding) is empty.

    Example:
        >>> [float(x) for x in batch_moments(jnp.array([1.0, 3.0]), jnp.float32(2))]
        [2.0, 2.0, 2.0]
    """
    values = values.astype(jnp.float32)
    live = weight > 0
    mean = jnp.mean(values)
    m2 = jnp.sum(jnp.square(values - mean))
    zero = jnp.zeros((), jnp.float32)
    return Moments(jnp.where(live, jnp.float32(values.shape[0]), zero),
                   jnp.where(live, mean, zero), jnp.where(live, m2, zero))


def merge(a: Moments, b: Moments) -> Moments:
    """The moments of two disjoint sets of values (Chan, Golub and LeVeque 1979).

    Example:
        >>> a = batch_moments(jnp.array([1.0, 3.0]), 2.0)
        >>> float(merge(a, batch_moments(jnp.array([5.0]), 1.0)).m2)   # of [1, 3, 5]
        8.0
    """
    count = a.count + b.count
    share = jnp.where(count > 0, b.count / jnp.where(count > 0, count, 1.0), 0.0)
    delta = b.mean - a.mean
    return Moments(count, a.mean + delta * share, a.m2 + b.m2 + delta * delta * a.count * share)


def merge_replicas(m: Moments, axis: str) -> Moments:
    """:func:`merge` over the devices of mesh axis ``axis`` (inside ``shard_map``).

    Example:
        >>> from jax.sharding import PartitionSpec as P
        >>> mesh = jax.sharding.Mesh(np.array(jax.devices()[:4]), ("data",))
        >>> values = jnp.arange(8.0)                  # two per device
        >>> body = lambda v: merge_replicas(batch_moments(v, 2.0), "data")
        >>> m = jax.shard_map(body, mesh=mesh, in_specs=P("data"), out_specs=P())(values)
        >>> float(m.count), float(m.mean), float(m.m2)   # of all eight values
        (8.0, 3.5, 42.0)
    """
    count = jax.lax.psum(m.count, axis)
    mean = jax.lax.psum(m.count * m.mean, axis) / count
    m2 = jax.lax.psum(m.m2 + m.count * jnp.square(m.mean - mean), axis)
    return Moments(count, mean, m2)


def standard_error(m2: np.ndarray, size: int, population: int) -> np.ndarray:
    """Standard error of a mean of ``size`` values drawn without replacement from
    ``population``, given their ``m2`` (sum of squared deviations).

    Example:
        >>> float(standard_error(np.array(8.0), 5, 5))   # the whole population
        0.0
    """
    variance = np.maximum(np.asarray(m2, np.float64), 0.0) / (size - 1)
    correction = (population - size) / (population - 1) if population > 1 else 0.0
    return np.sqrt(variance / size * correction).astype(np.float32)
