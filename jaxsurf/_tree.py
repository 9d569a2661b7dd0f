"""The implementation of :mod:`jaxsurf.tree`; its public face, with the
documentation and examples, is ``jaxsurf/tree.py``."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any

__all__ = [
    "PyTree",
    "leaf_path",
    "check_like",
    "check_arrays",
    "check_finite",
    "dot",
    "norm",
    "scale",
    "add",
    "sub",
    "axpy",
    "zeros_like",
    "is_float_leaf",
    "fingerprint",
    "to_numpy",
]


def leaf_path(path: tuple) -> str:
    """Formats a ``jax.tree_util`` key path as ``['Dense_0']['kernel']``."""
    return jax.tree_util.keystr(path) or "<root>"


def _describe(leaf: Any) -> str:
    shape = getattr(leaf, "shape", None)
    dtype = getattr(leaf, "dtype", None)
    if shape is None:
        return f"a {type(leaf).__name__}"
    return f"shape {tuple(shape)} dtype {dtype}"


def _jax_dtype(leaf: Any) -> np.dtype:
    """The dtype JAX computes ``leaf`` in (float64 numpy is float32 unless x64 is on)."""
    return jax.dtypes.canonicalize_dtype(np.dtype(getattr(leaf, "dtype", np.float32)))


def check_like(tree: PyTree, reference: PyTree, *, name: str = "direction",
               reference_name: str = "params", check_dtype: bool = True) -> None:
    """Raises ``ValueError`` unless ``tree`` has the structure, shapes and
    dtypes of ``reference``; the message names the first leaf path that differs.

    Example:
        >>> check_like({"w": jnp.ones(2)}, {"w": jnp.ones(3)})
        Traceback (most recent call last):
        ...
        ValueError: direction does not match params at ['w']: ...
    """
    ref_items = [(leaf_path(p), l) for p, l in jax.tree_util.tree_leaves_with_path(reference)]
    got_items = [(leaf_path(p), l) for p, l in jax.tree_util.tree_leaves_with_path(tree)]
    fix = (f"make the {name} from the same params, e.g. "
           f"js.random_direction(key, {reference_name})")
    for (ref_path, ref), (got_path, got) in zip(ref_items, got_items):
        if ref_path != got_path:
            raise ValueError(
                f"{name} does not match {reference_name} at {min(ref_path, got_path)}: "
                f"{reference_name} has leaf {ref_path}, {name} has leaf {got_path}; {fix}")
        ref_shape = tuple(getattr(ref, "shape", ()))
        got_shape = tuple(getattr(got, "shape", ()))
        if ref_shape != got_shape or (check_dtype and _jax_dtype(ref) != _jax_dtype(got)):
            raise ValueError(
                f"{name} does not match {reference_name} at {ref_path}: "
                f"{reference_name} has {_describe(ref)}, {name} has {_describe(got)}; {fix}")
    if len(ref_items) != len(got_items):
        longer, which = ((ref_items, reference_name) if len(ref_items) > len(got_items)
                         else (got_items, name))
        extra = longer[min(len(ref_items), len(got_items))][0]
        raise ValueError(
            f"{name} does not match {reference_name} at {extra}: only the {which} has this "
            f"leaf ({len(got_items)} leaves in the {name}, {len(ref_items)} in the "
            f"{reference_name}); {fix}")
    ref_def = jax.tree_util.tree_structure(reference)
    got_def = jax.tree_util.tree_structure(tree)
    if ref_def != got_def:
        raise ValueError(
            f"{name} has the leaves of {reference_name} but another container structure "
            f"({got_def} vs {ref_def}); {fix}")


def check_arrays(tree: PyTree, *, name: str = "params") -> None:
    """Raises ``TypeError`` naming the first leaf of ``tree`` that is not an array
    or a number (e.g. an Equinox module passed whole, with its activation
    functions and layer sizes as leaves).

    Example:
        >>> check_arrays({"w": jnp.ones(2), "act": jax.nn.relu})
        Traceback (most recent call last):
        ...
        TypeError: params leaf ['act'] is a ..., not an array; ...
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float, complex)) \
                and not isinstance(leaf, bool):
            continue
        hint = ("for an Equinox model pass its array part, "
                "eqx.partition(model, eqx.is_array)[0], or use js.equinox.adapt(model)"
                if type(leaf).__module__.split(".")[0] in ("equinox", "jax", "builtins",
                                                            "jaxlib", "functools")
                else "pass a pytree whose leaves are arrays")
        raise TypeError(f"{name} leaf {leaf_path(path)} is a {type(leaf).__name__}, not an "
                        f"array; {hint}")


def check_finite(tree: PyTree, *, name: str = "direction") -> None:
    """Raises ``ValueError`` naming the first float leaf of ``tree`` holding NaN or inf.

    Example:
        >>> check_finite({"w": jnp.array([1.0, jnp.nan])})
        Traceback (most recent call last):
        ...
        ValueError: direction has 1 non-finite value(s) (NaN or inf) in leaf ['w']; ...
    """
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not is_float_leaf(leaf):
            continue
        bad = int(jnp.size(leaf) - jnp.count_nonzero(jnp.isfinite(jnp.asarray(leaf))))
        if bad:
            raise ValueError(
                f"{name} has {bad} non-finite value(s) (NaN or inf) in leaf {leaf_path(path)}; "
                f"every point along it would be NaN. Rebuild it from finite params (a "
                f"normalized direction is NaN where the params are)")


def is_float_leaf(leaf: Any) -> bool:
    """True for leaves that a direction may move (inexact dtypes)."""
    return jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)


def _map_float(f: Callable, *trees: PyTree) -> PyTree:
    """Applies ``f`` to float leaves; non-float leaves pass through from tree 0."""
    return jax.tree_util.tree_map(
        lambda x, *rest: f(x, *rest) if is_float_leaf(x) else x, *trees)


def dot(a: PyTree, b: PyTree) -> jax.Array:
    """Sum over all float leaves of ``sum(a * b)``, accumulated in float32+."""
    pairs = [(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
             if is_float_leaf(x)]
    if not pairs:
        return jnp.zeros((), jnp.float32)
    return _dot_pairs([x for x, _ in pairs], [y for _, y in pairs])


@jax.jit
def _dot_pairs(xs: list, ys: list) -> jax.Array:
    """One program for every leaf: an elementwise product and a full sum per leaf,
    never a reshape, so a leaf sharded over a mesh (automatic or explicit axes) stays
    sharded and only the sums are combined; one program rather than a chain of eager
    ones per leaf (many small collectives in flight can starve XLA:CPU's threads)."""
    def wide(v: Any) -> jax.Array:
        v = jnp.asarray(v)
        return v.astype(jnp.promote_types(v.dtype, jnp.float32))

    total = jnp.zeros((), jnp.float32)
    for x, y in zip(xs, ys):
        total = total + jnp.sum(jnp.conj(wide(x)) * wide(y))
    return total


def norm(a: PyTree) -> jax.Array:
    """Euclidean norm of the pytree seen as one vector."""
    return jnp.sqrt(dot(a, a))


def scale(a: PyTree, c: Any) -> PyTree:
    """``c * a`` leaf by leaf, keeping each leaf's dtype."""
    return _map_float(lambda x: (c * x).astype(x.dtype), a)


def add(a: PyTree, b: PyTree) -> PyTree:
    """``a + b`` leaf by leaf."""
    return _map_float(lambda x, y: (x + y).astype(x.dtype), a, b)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """``a - b`` leaf by leaf (e.g. the direction from ``b`` to ``a``)."""
    return _map_float(lambda x, y: (x - y).astype(x.dtype), a, b)


def axpy(c: Any, x: PyTree, y: PyTree) -> PyTree:
    """``y + c * x`` leaf by leaf, keeping ``y``'s dtypes."""
    return jax.tree_util.tree_map(
        lambda xi, yi: (yi + c * xi).astype(yi.dtype) if is_float_leaf(yi) else yi, x, y)


def zeros_like(a: PyTree) -> PyTree:
    """A pytree of zeros like ``a``."""
    return jax.tree_util.tree_map(jnp.zeros_like, a)


def to_numpy(a: PyTree) -> PyTree:
    """Copies every leaf to a host numpy array."""
    return jax.tree_util.tree_map(np.asarray, a)


def fingerprint(a: PyTree) -> str:
    """A short SHA-256 of the leaf paths, shapes, dtypes and bytes of ``a``.

    Two pytrees with the same fingerprint hold the same values; used to tell
    whether a stored result was made from the same directions or params.
    """
    import hashlib

    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_leaves_with_path(a):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            from jax.experimental import multihost_utils  # a leaf spread over processes

            leaf = multihost_utils.process_allgather(leaf, tiled=True)
        arr = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{leaf_path(path)}|{arr.shape}|{arr.dtype}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]
