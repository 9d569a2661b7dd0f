"""Directions in parameter space: random, normalized, orthogonalized, between.

A direction is a pytree with exactly the structure, shapes and dtypes of the
params. Filter normalization (Li et al., 2018, Sec. 4) rescales every filter
of a random direction to the norm of the matching filter of the weights, so
that plots of networks whose weights differ by per-filter scale factors
(harmless under BatchNorm) become comparable.

Flax kernels keep the output channel on the **last** axis (``[kh, kw, in,
out]`` for convolutions, ``[in, out]`` for dense layers): filter ``j`` is
``kernel[..., j]``.

Example:
    >>> import jax, jaxsurf as js
    >>> params = {"Dense_0": {"kernel": jax.numpy.ones((3, 2)), "bias": jax.numpy.ones(2)}}
    >>> d = js.normalize(js.random_direction(jax.random.key(0), params), params)
    >>> d["Dense_0"]["bias"]  # biases and BatchNorm parameters get zero under "biasbn"
    Array([0., 0.], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp

from jaxsurf import tree
from jaxsurf.tree import PyTree

__all__ = ["METHODS", "random_direction", "normalize", "orthogonalize", "between",
           "random_plane", "describe_direction"]

METHODS = ("filter", "layer", "weight", "none")
IGNORES = ("biasbn", None)
_EPS = 1e-10  # as Li et al.'s reference: avoids 0/0 for all-zero random filters


def random_direction(key: jax.Array, params: PyTree) -> PyTree:
    """A Gaussian direction shaped like ``params`` (non-float leaves get zeros).

    Args:
        key: a ``jax.random`` key.
        params: any pytree of arrays.

    Returns:
        A pytree with the structure, shapes and dtypes of ``params`` whose float
        leaves are independent standard normal draws.

    Example:
        >>> d = js.random_direction(jax.random.key(0), {"w": jnp.zeros((2, 2))})
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    drawn = [jax.random.normal(k, jnp.shape(x), jnp.asarray(x).dtype) if tree.is_float_leaf(x)
             else jnp.zeros_like(x) for k, x in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, drawn)


def _filter_norms(x: jax.Array) -> jax.Array:
    """Norm of each filter ``x[..., j]`` (kept dims so it broadcasts against ``x``)."""
    x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return jnp.sqrt(jnp.sum(x32 * x32, axis=tuple(range(x.ndim - 1)), keepdims=True))


def _whole_norm(x: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return jnp.sqrt(jnp.sum(x32 * x32))


def _normalize_leaf(d: jax.Array, w: jax.Array, method: str, ignore: str | None) -> jax.Array:
    if not tree.is_float_leaf(d):
        return d
    if ignore == "biasbn" and d.ndim <= 1:
        return jnp.zeros_like(d)
    if method == "none":
        return d
    if method == "weight":
        return (d * jnp.abs(w)).astype(d.dtype)
    if method == "filter" and d.ndim >= 2:
        scale = _filter_norms(w) / (_filter_norms(d) + _EPS)
    else:  # "layer", and "filter" on a leaf of ndim <= 1 (one filter: the whole leaf)
        scale = _whole_norm(w) / (_whole_norm(d) + _EPS)
    return (d * scale).astype(d.dtype)


def normalize(direction: PyTree, params: PyTree, method: str = "filter",
              ignore: Literal["biasbn"] | None = "biasbn") -> PyTree:
    """Rescales ``direction`` against ``params``, leaf by leaf.

    Args:
        direction: pytree shaped like ``params``.
        params: the weights the direction is normalized against.
        method: ``"filter"`` — each filter ``d[..., j]`` gets the norm of
            ``params[..., j]`` (a leaf of ``ndim <= 1`` that is not ignored
            counts as one filter); ``"layer"`` — each leaf gets the norm of the
            matching params leaf; ``"weight"`` — ``d * |params|`` elementwise;
            ``"none"`` — unchanged.
        ignore: ``"biasbn"`` gives every leaf of ``ndim <= 1`` (biases,
            BatchNorm scales and offsets) a zero direction; ``None`` keeps them.

    Returns:
        The normalized direction, with the structure and dtypes of ``params``.

    Example:
        >>> d = js.normalize(js.random_direction(key, params), params, "filter", "biasbn")
    """
    if method not in METHODS:
        raise ValueError(f"unknown normalization method {method!r}; use one of {METHODS}")
    if ignore not in IGNORES:
        raise ValueError(f"unknown ignore option {ignore!r}; use 'biasbn' or None")
    tree.check_like(direction, params)
    return jax.tree_util.tree_map(
        lambda d, w: _normalize_leaf(jnp.asarray(d), jnp.asarray(w), method, ignore),
        direction, params)


def orthogonalize(direction: PyTree, against: PyTree) -> PyTree:
    """Removes from ``direction`` its component along ``against`` (Gram–Schmidt).

    Returns the projection residual ``d - (<d, a> / <a, a>) a``, so that
    ``<result, a> = 0`` (its norm shrinks by the removed component).
    Note that this breaks exact filter normalization of ``direction``; in high
    dimension two random directions are already nearly orthogonal
    (cosine ~ 1/sqrt(num_params)), which is why Li et al. do not orthogonalize.

    Example:
        >>> d2 = js.orthogonalize(d2, d1)
    """
    tree.check_like(direction, against, name="direction", reference_name="against")
    coefficient = tree.dot(direction, against) / tree.dot(against, against)
    return tree.axpy(-coefficient, against, direction)


def between(params_a: PyTree, params_b: PyTree) -> PyTree:
    """The direction ``params_b - params_a`` (from solution a to solution b).

    Example:
        >>> d = js.between(theta_a, theta_b)   # theta_a + 1.0 * d == theta_b
    """
    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    return tree.sub(params_b, params_a)


def random_plane(key: jax.Array, params: PyTree, method: str = "filter",
                 ignore: Literal["biasbn"] | None = "biasbn",
                 orthogonal: bool = False) -> tuple[PyTree, PyTree]:
    """Two normalized random directions, as Li et al. draw for a 2-D plot.

    Args:
        key: random key; the two directions use ``jax.random.split(key)``.
        params: weights at the centre of the plot.
        method, ignore: as in :func:`normalize`.
        orthogonal: if True, the second direction is orthogonalized against the
            first and then normalized again.

    Example:
        >>> d1, d2 = js.random_plane(jax.random.key(0), params)
    """
    k1, k2 = jax.random.split(key)
    d1 = normalize(random_direction(k1, params), params, method, ignore)
    d2 = normalize(random_direction(k2, params), params, method, ignore)
    if orthogonal:
        d2 = normalize(orthogonalize(d2, d1), params, method, ignore)
    return d1, d2


def describe_direction(direction: PyTree, params: PyTree, rtol: float = 1e-3) -> dict[str, Any]:
    """What can be read off a direction: norm, fingerprint, and which
    normalization it satisfies against ``params`` (checked, not remembered).

    Returns:
        ``{"norm", "fingerprint", "normalization", "ignore"}`` where
        ``normalization`` is ``"filter"``, ``"layer"`` or ``"unknown"`` and
        ``ignore`` is ``"biasbn"`` when every leaf of ``ndim <= 1`` is zero
        (also when there is no such leaf), else ``None``.

    Example:
        >>> js.describe_direction(js.normalize(d, params), params)["normalization"]
        'filter'
    """
    pairs = [(jnp.asarray(d), jnp.asarray(w)) for d, w in
             zip(jax.tree_util.tree_leaves(direction), jax.tree_util.tree_leaves(params))
             if tree.is_float_leaf(d)]
    small = [d for d, _ in pairs if d.ndim <= 1]
    # with no leaf of ndim <= 1 the two settings agree; report the default
    ignore = "biasbn" if all(bool(jnp.all(d == 0)) for d in small) else None

    def matches(norm_fn) -> bool:
        checked = False
        for d, w in pairs:
            if ignore == "biasbn" and d.ndim <= 1:
                continue
            nd, nw = norm_fn(d), norm_fn(w)
            if not bool(jnp.allclose(nd, nw, rtol=rtol, atol=1e-6)):
                return False
            checked = True
        return checked

    normalization = "unknown"
    if matches(lambda x: _filter_norms(x) if x.ndim >= 2 else _whole_norm(x)):
        normalization = "filter"
    elif matches(_whole_norm):
        normalization = "layer"
    return {"norm": float(tree.norm(direction)), "fingerprint": tree.fingerprint(direction),
            "normalization": normalization, "ignore": ignore}
