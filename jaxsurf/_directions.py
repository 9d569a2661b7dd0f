"""The implementation of :mod:`jaxsurf.directions`; its public face, with the
documentation and examples, is ``jaxsurf/directions.py``."""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from jaxsurf import _tree as tree, _validate
from jaxsurf._layout import CONVENTIONS, LeafLayout, assumed_paths, describe_axes, leaf_layouts
from jaxsurf._tree import PyTree

__all__ = ["METHODS", "random_direction", "normalize", "orthogonalize", "between",
           "random_plane", "random_planes", "describe_direction", "head_filter_axis"]

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
    tree.check_arrays(params)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    drawn = [_normal(k, x) if tree.is_float_leaf(x) else jnp.zeros_like(x)
             for k, x in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, drawn)


def sharding_of(leaf: Any) -> NamedSharding | None:
    """The ``NamedSharding`` of a ``jax.Array`` placed on a mesh (split over its axes
    or a copy on each device), else ``None``: a direction leaf gets the same."""
    sharding = getattr(leaf, "sharding", None)
    if isinstance(leaf, jax.Array) and isinstance(sharding, NamedSharding):
        return sharding
    return None


def _normal(key: jax.Array, x: Any) -> jax.Array:
    """Standard normal draws shaped like ``x``; a sharded ``x`` gets draws sharded the
    same way, each device drawing only its shard (the values do not depend on the
    sharding: JAX's partitionable threefry)."""
    shape, dtype = jnp.shape(x), jnp.asarray(x).dtype
    sharding = sharding_of(x)
    if sharding is None:
        return jax.random.normal(key, shape, dtype)
    return jax.jit(lambda k: jax.random.normal(k, shape, dtype), out_shardings=sharding)(key)


def _filter_norms(x: jax.Array, filter_axes: tuple[int, ...] = ()) -> jax.Array:
    """Norm of each filter (the slices indexed by ``filter_axes``; the other axes
    are summed over), with kept dims so it broadcasts against ``x``. Default:
    the last axis indexes the filters."""
    axes = filter_axes or (x.ndim - 1,)
    x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    reduce = tuple(a for a in range(x.ndim) if a not in axes)
    return jnp.sqrt(jnp.sum(x32 * x32, axis=reduce, keepdims=True))


def _whole_norm(x: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return jnp.sqrt(jnp.sum(x32 * x32))


def _norms(x: jax.Array, layout: LeafLayout) -> jax.Array:
    """Per-filter norms under ``layout`` (the whole leaf when it has no filter axes)."""
    if layout.filter_axes is None or x.ndim <= 1:
        return _whole_norm(x)
    return _filter_norms(x, layout.filter_axes)


def _normalize_leaf(d: jax.Array, w: jax.Array, layout: LeafLayout, method: str,
                    ignore: str | None, convention: str) -> jax.Array:
    if not tree.is_float_leaf(d):
        return d
    if ignore == "biasbn" and layout.ignorable:
        return jnp.zeros_like(d)
    if convention == "loss-landscape" and layout.ignorable:
        return w.astype(d.dtype)  # the reference copies the weights (d.copy_(w))
    if method == "none":
        return d
    if method == "weight":
        factor = w if convention == "loss-landscape" else jnp.abs(w)
        return (d * factor).astype(d.dtype)
    if method == "filter":
        scale = _norms(w, layout) / (_norms(d, layout) + _EPS)
    else:  # "layer"
        scale = _whole_norm(w) / (_whole_norm(d) + _EPS)
    return (d * scale).astype(d.dtype)


def _check_options(method: str, ignore: Any, convention: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown normalization method {method!r}; use one of {METHODS}")
    if ignore not in IGNORES:
        raise ValueError(f"unknown ignore option {ignore!r}; use 'biasbn' or None")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; use one of {CONVENTIONS}")


def normalize(direction: PyTree, params: PyTree, method: str = "filter",
              ignore: Literal["biasbn"] | None = "biasbn", filter_axis: Any = None, *,
              convention: str = "jaxsurf") -> PyTree:
    """Rescales ``direction`` against ``params``, leaf by leaf.

    Args:
        direction: pytree shaped like ``params``.
        params: the weights the direction is normalized against.
        method: ``"filter"`` — each filter of ``d`` gets the norm of the
            matching filter of ``params`` (a leaf of ``ndim <= 1`` that is not
            ignored counts as one filter); ``"layer"`` — each leaf gets the norm
            of the matching params leaf; ``"weight"`` — ``d * |params|``
            elementwise (``d * params`` under ``convention="loss-landscape"``);
            ``"none"`` — unchanged.
        ignore: ``"biasbn"`` gives biases and normalization parameters (by role,
            whatever their shape, and every leaf of ``ndim <= 1``) a zero
            direction; ``None`` keeps them.
        filter_axis: which axis indexes the filters. ``None`` infers it from
            the container: Equinox layers keep the output channel first
            (``weight[o]`` is a filter), Flax last (``kernel[..., j]``); other
            containers get the last axis, assumed (a custom Equinox module's
            arrays, or a leaf named ``weight``, warn naming the leaves). An int
            applies to every leaf of ``ndim >= 2``; a pytree shaped like
            ``params`` (ints, tuples of ints, ``None`` for the whole leaf) or a
            callable ``(path, leaf) -> axis`` chooses per leaf (one giving every
            leaf the same axis warns: it selected nothing).
            See :mod:`jaxsurf._layout` and ``docs/frameworks.md``.
        convention: ``"jaxsurf"`` (default) or ``"loss-landscape"``, the
            semantics of tomgoldstein/loss-landscape: with ``ignore=None`` the
            direction of every bias/normalization/1-D leaf is a copy of the
            weights, ``"weight"`` is ``d * w``, and embedding rows and
            transposed-convolution input channels are the filters.

    Returns:
        The normalized direction, with the structure and dtypes of ``params``.

    Raises:
        ValueError: a direction unlike ``params`` (naming the leaf), an axis a
            leaf does not have, or ``ignore="biasbn"`` leaving no leaf to move.

    Example:
        >>> key = jax.random.key(0)
        >>> d = js.normalize(js.random_direction(key, params), params, "filter", "biasbn")
        >>> norm = lambda p: float(jnp.linalg.norm(p["Dense_0"]["kernel"][:, 0]))  # filter 0
        >>> bool(np.isclose(norm(d), norm(params)))   # scaled to the filter's norm
        True
    """
    _check_options(method, ignore, convention)
    tree.check_arrays(params)
    tree.check_like(direction, params)
    layouts = leaf_layouts(params, filter_axis, convention)
    moved = [l for l, w in zip(layouts, jax.tree_util.tree_leaves(params))
             if tree.is_float_leaf(w) and not (ignore == "biasbn" and l.ignorable)]
    if ignore == "biasbn" and not moved and layouts:
        raise ValueError(
            f"ignore='biasbn' ignored every leaf of the params ({len(layouts)} leaves, all "
            f"biases, normalization parameters or of ndim <= 1), so the direction would be "
            f"all zero; pass ignore=None to move them (e.g. for a model of vectors only)")
    d_leaves, treedef = jax.tree_util.tree_flatten(direction)
    out = [_normalized(d, w, layout, method, ignore, convention)
           for d, w, layout in zip(d_leaves, jax.tree_util.tree_leaves(params), layouts)]
    return jax.tree_util.tree_unflatten(treedef, out)


def _normalized(d: Any, w: Any, layout: LeafLayout, method: str, ignore: str | None,
                convention: str) -> jax.Array:
    """:func:`_normalize_leaf`; for a params leaf sharded over a mesh, one jitted
    program on the shards (the filter norms are reductions of sharded arrays: no
    device holds a whole leaf) whose result is sharded as the params' leaf."""
    sharding = sharding_of(w)
    if sharding is None:
        return _normalize_leaf(jnp.asarray(d), jnp.asarray(w), layout, method, ignore,
                               convention)
    if isinstance(d, jax.Array) and d.sharding != sharding:  # e.g. drawn on one device
        d = jax.device_put(d, sharding)
    program = jax.jit(lambda d, w: _normalize_leaf(d, w, layout, method, ignore, convention),
                      out_shardings=sharding)
    return program(d, w)


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
    squared = tree.dot(against, against)
    if not float(squared) > 0:
        raise ValueError(
            "cannot orthogonalize against an all-zero direction (its norm is 0, the "
            "projection would be NaN); check how `against` was made (e.g. filter "
            "normalization against all-zero params gives a zero direction)")
    coefficient = tree.dot(direction, against) / squared
    return tree.axpy(-coefficient, against, direction)


def between(params_a: PyTree, params_b: PyTree) -> PyTree:
    """The direction ``params_b - params_a`` (from solution a to solution b).

    Example:
        >>> d = js.between(params_a, params_b)   # params_a + 1.0 * d == params_b
        >>> bool(jnp.allclose(js.tree.axpy(1.0, d, params_a)["Dense_0"]["kernel"],
        ...                   params_b["Dense_0"]["kernel"]))
        True
    """
    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    return tree.sub(params_b, params_a)


def random_plane(key: jax.Array, params: PyTree, method: str = "filter",
                 ignore: Literal["biasbn"] | None = "biasbn",
                 orthogonal: bool = False, filter_axis: Any = None, *,
                 convention: str = "jaxsurf") -> tuple[PyTree, PyTree]:
    """Two normalized random directions, as Li et al. draw for a 2-D plot.

    Args:
        key: random key; the two directions use ``jax.random.split(key)``.
        params: weights at the centre of the plot.
        method, ignore, filter_axis, convention: as in :func:`normalize`.
        orthogonal: if True, the second direction is orthogonalized against the
            first and then normalized again.

    Raises:
        ValueError: as :func:`normalize`, or when the first direction is all
            zero (e.g. filter normalization against all-zero params).

    Example:
        >>> d1, d2 = js.random_plane(jax.random.key(0), params)
    """
    k1, k2 = jax.random.split(key)
    d1 = normalize(random_direction(k1, params), params, method, ignore, filter_axis,
                   convention=convention)
    d2 = normalize(random_direction(k2, params), params, method, ignore, filter_axis,
                   convention=convention)
    if not float(tree.norm(d1)) > 0:
        raise ValueError(
            f"the {method}-normalized random direction is all zero: the params are zero on "
            f"every leaf it moves (normalization scales a direction to the params' norms); "
            f"use method='none' for params at the origin, or pass the trained params")
    if orthogonal:
        d2 = normalize(orthogonalize(d2, d1), params, method, ignore, filter_axis,
                       convention=convention)
    return d1, d2


def random_planes(key: jax.Array, params: PyTree, k: int, *, method: str = "filter",
                  ignore: Literal["biasbn"] | None = "biasbn", orthogonal: bool = False,
                  filter_axis: Any = None, convention: str = "jaxsurf"
                  ) -> list[tuple[PyTree, PyTree]]:
    """``k`` independent normalized random planes, to report a surface's spread.

    One random plane is one draw: its picture, and any number read off it, may
    be luck. Drawing several planes and reporting the mean and the standard
    error over them (:func:`jaxsurf.summary`) answers "how much does this
    depend on the seed?".

    Args:
        key: random key; plane ``p`` is :func:`random_plane` with
            ``jax.random.fold_in(key, p)``, so the planes are independent and
            the first planes stay the same when ``k`` grows (8 planes extend
            the 4 drawn before with the same key).
        params: weights at the centre of the plots.
        k: how many planes (>= 1).
        method, ignore, orthogonal, filter_axis, convention: as in
            :func:`random_plane` (every plane is normalized the same way).

    Returns:
        A list of ``k`` pairs ``(d1, d2)``, each shaped like ``params``.

    Raises:
        ValueError: ``k`` not a positive integer, or as :func:`random_plane`.

    Example:
        >>> planes = js.random_planes(jax.random.key(0), params, 4)
        >>> len(planes), js.describe_direction(planes[3][1], params)["normalization"]
        (4, 'filter')
    """
    k = _validate.positive_int(k, "k (the number of planes)")
    _check_options(method, ignore, convention)
    return [random_plane(jax.random.fold_in(key, p), params, method, ignore, orthogonal,
                         filter_axis, convention=convention) for p in range(k)]


def _rtol_for(dtype: Any, rtol: float | None) -> float:
    """The tolerance a norm check can promise in ``dtype``: 1e-3, or 4 ulps where
    the dtype is coarser (bfloat16: 0.03; float16: 4e-3)."""
    if rtol is not None:
        return rtol
    return max(1e-3, 4 * float(jnp.finfo(dtype).eps))


def describe_direction(direction: PyTree, params: PyTree, rtol: float | None = None, *,
                       filter_axis: Any = None) -> dict[str, Any]:
    """What can be read off a direction: norm, fingerprint, and which
    normalization it satisfies against ``params`` (checked, not remembered).

    Args:
        direction: pytree like ``params`` (checked: a mismatch names the leaf).
        params: the weights.
        rtol: relative tolerance of the norm checks; default 1e-3, widened to
            4 ulps of each leaf's dtype (bfloat16 directions are checked to 3%).
        filter_axis: the layout to check against (as in :func:`normalize`);
            ``None`` infers it from the container. Only this layout is
            certified: a direction normalized over another axis reads
            ``"layer"`` or ``"unknown"``.

    Returns:
        ``{"norm", "fingerprint", "normalization", "ignore", "filter_axes",
        "layout", "assumed_leaves"}`` where ``normalization`` is ``"filter"``,
        ``"layer"`` or ``"unknown"``; ``ignore`` is ``"biasbn"`` when every bias,
        normalization parameter and leaf of ``ndim <= 1`` is zero (also when
        there is none), else ``None``; ``filter_axes`` maps each checked leaf
        to its filter axes; ``layout`` is ``"given"`` (``filter_axis``),
        ``"inferred"`` (every weight leaf in a known container: Flax names,
        Equinox layers) or ``"assumed"`` (some leaf got the last axis for want
        of one: those are ``assumed_leaves``, and ``"filter"`` holds only under
        that assumption).

    Example:
        >>> js.describe_direction(js.normalize(d, params), params)["normalization"]
        'filter'
    """
    tree.check_like(direction, params)
    tree.check_finite(direction)
    layouts = leaf_layouts(params, filter_axis)
    assumed = assumed_paths(layouts) if filter_axis is None else []
    triples = [(jnp.asarray(d), jnp.asarray(w), l) for d, w, l in
               zip(jax.tree_util.tree_leaves(direction), jax.tree_util.tree_leaves(params),
                   layouts) if tree.is_float_leaf(d)]
    small = [d for d, _, l in triples if l.ignorable]
    # with no such leaf the two settings agree; report the default
    ignore = "biasbn" if all(bool(jnp.all(d == 0)) for d in small) else None

    def matches(norm_fn) -> bool:
        checked = False
        for d, w, layout in triples:
            if ignore == "biasbn" and layout.ignorable:
                continue
            nd, nw = norm_fn(d, layout), norm_fn(w, layout)
            if not bool(jnp.allclose(nd, nw, rtol=_rtol_for(d.dtype, rtol), atol=1e-6)):
                return False
            checked = True
        return checked

    normalization = "unknown"
    if matches(_norms):
        normalization = "filter"
    elif matches(lambda x, _: _whole_norm(x)):
        normalization = "layer"
    return {"norm": float(tree.norm(direction)), "fingerprint": tree.fingerprint(direction),
            "normalization": normalization, "ignore": ignore,
            "filter_axes": describe_axes(layouts),
            "layout": "given" if filter_axis is not None else "assumed" if assumed else "inferred",
            "assumed_leaves": assumed}


_HEAD_ROLES = {"query": 1, "key": 1, "value": 1, "out": 0}


def head_filter_axis(params: PyTree) -> PyTree:
    """A ``filter_axis`` for :func:`normalize` that makes each attention head one filter.

    Filter normalization by default takes a Flax attention projection's last
    axis as the filters (``query`` kernel ``[in, heads, head_dim]``: one
    filter per ``head_dim`` entry across all heads). With this option each
    head's slice of the ``query``/``key``/``value`` kernels (axis 1) and of
    the ``out`` kernel (``[heads, head_dim, out]``, axis 0) is one filter, so
    every head of the direction gets the norm of that head of the weights;
    every other leaf keeps the inferred axes. For Flax Linen
    ``MultiHeadDotProductAttention`` and NNX ``MultiHeadAttention`` (a heads
    axis); Equinox's ``MultiheadAttention`` fuses the heads into the rows of
    its projections, which one axis cannot split: it is refused.

    Args:
        params: the params directions are normalized against.

    Returns:
        A pytree shaped like ``params`` of filter axes (tuples of ints or
        ``None``), for ``normalize(..., filter_axis=head_filter_axis(params))``.

    Example:
        >>> import flax.linen as nn
        >>> att = nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=4)
        >>> params = att.init(jax.random.key(0), jnp.ones((1, 3, 4)))["params"]
        >>> axes = head_filter_axis(params)
        >>> axes["query"]["kernel"], axes["out"]["kernel"]
        ((1,), (0,))
        >>> d = normalize(random_direction(jax.random.key(1), params), params, "filter",
        ...               filter_axis=axes)
        >>> per_head = lambda p: jnp.linalg.norm(p["query"]["kernel"], axis=(0, 2))
        >>> bool(jnp.allclose(per_head(d), per_head(params)))
        True
    """
    tree.check_arrays(params)
    layouts = leaf_layouts(params, None, warn=False)
    paths = jax.tree_util.tree_leaves_with_path(params)
    found = 0
    axes: list[Any] = []
    for (path, leaf), layout in zip(paths, layouts):
        names = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
        parent = names[-2] if len(names) >= 2 else ""
        if names and names[-1] in ("query_proj", "key_proj", "value_proj", "output_proj") or \
                parent in ("query_proj", "key_proj", "value_proj", "output_proj"):
            raise ValueError(f"{tree.leaf_path(path)}: Equinox's MultiheadAttention fuses the "
                             f"heads into its projections' rows; per-head filters need a heads "
                             f"axis (Flax layouts)")
        if names and names[-1] == "kernel" and parent in _HEAD_ROLES and np.ndim(leaf) == 3:
            axes.append((_HEAD_ROLES[parent],))
            found += 1
        else:
            axes.append(layout.filter_axes)
    if not found:
        raise ValueError("head_filter_axis found no attention projection (query/key/value/out "
                         "kernels with a heads axis) in the params")
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), axes)
