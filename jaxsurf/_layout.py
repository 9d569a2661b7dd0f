"""Where the filters of each parameter leaf lie, and what role each leaf plays.

Filter normalization needs to know which axis of a weight indexes its
filters (output units). That depends on the framework that made the
weight, not on the array:

* Flax Linen / NNX ``Conv`` ``[kh, kw, in, out]`` and ``Dense`` ``[in, out]``:
  the **last** axis (``kernel[..., j]``);
* Equinox ``Conv*``/``ConvTranspose*`` ``(out, in, kh, kw)``, ``Linear``
  ``(out, in)`` (also inside ``MLP`` and ``MultiheadAttention``),
  ``Embedding`` ``(vocab, size)`` (a token row), ``GRUCell``/``LSTMCell``
  ``(k * hidden, in)``: the **first** axis (``weight[o]``);
* Flax-named leaves of plain pytrees (``kernel``, ``embedding``: Flax params,
  e.g. from ``js.flax.adapt``): the last axis, known;
* anything else (plain arrays named ``w``, a custom ``eqx.Module`` holding raw
  arrays, PyTorch-style ``weight`` arrays): the last axis, **assumed**. The
  layout then says so (``source == "assumed"``; ``describe_direction`` reports
  ``layout: "assumed"`` and the leaves), and where the assumption is likely
  wrong (arrays of a custom Equinox module, whose convention is ``(out, in)``,
  or a leaf named ``weight``, PyTorch's name for ``(out, in)`` arrays) one
  ``UserWarning`` names the leaves and ``filter_axis=``.

A callable ``filter_axis`` that gives the same axis for every leaf matched
nothing (or everything) it was written to select: that warns too, showing a
path, since paths read like ``['Conv_0']['kernel']`` (Flax) or
``.layers[0].weight`` (Equinox), not ``conv``.

The role of a leaf decides what ``ignore="biasbn"`` zeroes: ``"bias"`` (a
leaf named ``bias``, whatever its shape: an Equinox conv bias is
``(out, 1, 1)``), ``"norm"`` (the parameters of a normalization layer: an
Equinox ``BatchNorm``/``LayerNorm``/``GroupNorm``/``RMSNorm``, or a Flax
collection whose name contains ``norm``, e.g. ``BatchNorm_0``), else
``"weight"``. Every leaf of ``ndim <= 1`` is ignored too (as Li et al. do).

Example:
    >>> layouts = leaf_layouts({"Dense_0": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}})
    >>> [(l.path, l.role, l.filter_axes) for l in layouts]
    [("['Dense_0']['bias']", 'bias', None), ("['Dense_0']['kernel']", 'weight', (1,))]
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Any

import jax

from jaxsurf._tree import PyTree, leaf_path

__all__ = ["LeafLayout", "leaf_layouts", "CONVENTIONS", "describe_axes", "assumed_paths"]

CONVENTIONS = ("jaxsurf", "loss-landscape")
# Equinox layer types whose weights keep the output (filter) axis first.
_EQX_FIRST_AXIS = ("Linear", "Conv", "ConvTranspose", "Embedding", "GRUCell", "LSTMCell")
_EQX_NORMS = ("BatchNorm", "LayerNorm", "GroupNorm", "RMSNorm")

FilterAxis = Any  # None | int | pytree of (int | tuple | None) | callable(path, leaf)


@dataclass(frozen=True)
class LeafLayout:
    """One leaf: its path, role and the axes that index its filters.

    ``filter_axes`` is ``None`` when the whole leaf counts as one filter;
    ``source`` says where the axes came from: ``"given"``, ``"equinox"`` (an
    ``eqx.nn`` layer), ``"flax"`` (a ``kernel``/``embedding`` leaf),
    ``"assumed"`` (the last axis, for want of a known container) or
    ``"loss-landscape"``.
    """

    path: str
    role: str
    ndim: int
    filter_axes: tuple[int, ...] | None
    source: str

    @property
    def ignorable(self) -> bool:
        """Zeroed by ``ignore="biasbn"`` (a bias or normalization parameter, or ndim <= 1)."""
        return self.role != "weight" or self.ndim <= 1


def _equinox_module_type() -> type | None:
    eqx = sys.modules.get("equinox")
    return getattr(eqx, "Module", None) if eqx is not None else None


def _key_name(key: Any) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _walk(node: Any, path: tuple, owner: Any, eqx_module: type | None,
          out: list[tuple[tuple, Any, Any]]) -> None:
    """Appends ``(path, leaf, owner)`` in ``jax.tree_util.tree_leaves`` order, where
    ``owner`` is the innermost Equinox module holding the leaf (or None)."""
    if eqx_module is not None and isinstance(node, eqx_module):
        owner = node
    children, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if len(children) == 1 and children[0][0] == () and children[0][1] is node:
        out.append((path, node, owner))
        return
    for key_path, child in children:
        _walk(child, path + tuple(key_path), owner, eqx_module, out)


def _eqx_kind(owner: Any) -> str | None:
    """``"first"`` for Equinox layers with output-first weights, ``"norm"`` for
    normalization layers, ``None`` for anything else."""
    if owner is None:
        return None
    # the Equinox classes it is or derives from (a user subclass of eqx.nn.Linear counts)
    names = {cls.__name__ for cls in type(owner).__mro__
             if cls.__module__.startswith("equinox")}
    if names & set(_EQX_NORMS):
        return "norm"
    if any(n.startswith(_EQX_FIRST_AXIS) for n in names):
        return "first"
    return None


def _role(path: tuple, owner: Any) -> str:
    names = [_key_name(k) for k in path]
    if _eqx_kind(owner) == "norm":
        return "norm"
    if names and names[-1] == "bias":
        return "bias"
    if any("norm" in n.lower() for n in names[:-1]):
        return "norm"
    return "weight"


def _normalise_axes(axes: Any, ndim: int, path: str) -> tuple[int, ...] | None:
    """Checks per-leaf axes (int, tuple of ints or None) against ``ndim``."""
    if axes is None:
        return None
    items = axes if isinstance(axes, (tuple, list)) else (axes,)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"filter_axis for leaf {path} must be an int, a tuple of ints or "
                            f"None, got {a!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"filter_axis {a} does not exist for leaf {path} of ndim {ndim}; "
                             f"use an axis in [{-ndim}, {ndim - 1}] or None (whole leaf)")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _inferred(path: tuple, leaf: Any, owner: Any, convention: str) -> tuple[Any, str]:
    ndim = len(getattr(leaf, "shape", ()))
    kind = _eqx_kind(owner)
    if kind == "first":
        return 0, "equinox"
    if kind == "norm":
        return None, "equinox"
    names = [_key_name(k) for k in path]
    if convention == "loss-landscape" and ndim >= 2:
        if names and names[-1] == "embedding":  # PyTorch nn.Embedding: a token row
            return 0, "loss-landscape"
        if any("convtranspose" in n.lower() for n in names):  # PyTorch (in, out, kh, kw)
            return -2, "loss-landscape"
    if names and names[-1] in _FLAX_NAMES and owner is None:
        return -1, "flax"
    return -1, "assumed"


_FLAX_NAMES = ("kernel", "embedding")  # Flax's names for [..., in, out] / [vocab, features]


def _doubtful(path: tuple, owner: Any) -> bool:
    """An assumed last axis that another convention likely contradicts: an array of
    a custom Equinox module (Equinox keeps ``(out, in)``), or a leaf named like
    PyTorch's ``weight`` (``(out, in, ...)``)."""
    names = [_key_name(k) for k in path]
    return owner is not None or bool(names and names[-1].lower().endswith("weight"))


def _warn_assumed(paths: list[str]) -> None:
    shown = ", ".join(paths[:6]) + (f" and {len(paths) - 6} more" if len(paths) > 6 else "")
    warnings.warn(
        f"filter normalization: the filter axis of {len(paths)} "
        f"{'leaf is' if len(paths) == 1 else 'leaves is'} assumed, not known: {shown} "
        f"{'is' if len(paths) == 1 else 'are'} in a container jaxsurf does not recognize (a "
        f"custom Equinox module, or a PyTorch-style 'weight'), so each filter is taken along "
        f"the LAST axis (Flax's "
        f"kernel[..., j]). If a filter is weight[o] (Equinox / PyTorch (out, in) layout) "
        f"pass filter_axis=0; to keep the last axis and silence this, filter_axis=-1; per "
        f"leaf, a pytree of axes or a callable (path, leaf) -> axis", UserWarning,
        stacklevel=3)


def _warn_constant_callable(value: Any, example: str, count: int) -> None:
    same = (f"pass filter_axis={value!r}, which applies to every leaf" if value is not None
            else "use method='layer' (each leaf one filter)")
    warnings.warn(
        f"filter_axis callable returned {value!r} for every one of the {count} leaves of "
        f"ndim >= 2, so whatever it tests for matched all of them or none; leaf paths read "
        f"like {example!r} (Flax: \"['Conv_0']['kernel']\", Equinox: \".layers[0].weight\"). "
        f"Fix the test, or {same}", UserWarning,
        stacklevel=3)


def leaf_layouts(params: PyTree, filter_axis: FilterAxis = None,
                 convention: str = "jaxsurf", warn: bool = True) -> list[LeafLayout]:
    """The layout of every leaf of ``params``, in ``jax.tree_util.tree_leaves`` order.

    Args:
        params: any pytree of arrays (Flax params, an Equinox model's array part,
            a dict).
        filter_axis: ``None`` (infer from the container, see the module
            docstring), an int for every leaf of ``ndim >= 2``, a pytree shaped
            like ``params`` of ints / tuples of ints / ``None`` (whole leaf), or
            a callable ``(path: str, leaf) -> int | tuple | None``.
        convention: ``"jaxsurf"`` or ``"loss-landscape"`` (PyTorch reference:
            embedding rows and transposed-convolution input channels are filters).
        warn: warn about doubtful assumed axes and constant callables (see the
            module docstring); ``False`` where the axes are not used.

    Returns:
        One :class:`LeafLayout` per leaf.

    Example:
        >>> leaf_layouts({"w": jnp.ones((4, 3))}, filter_axis=0)[0].filter_axes
        (0,)
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; use one of {CONVENTIONS}")
    walked: list[tuple[tuple, Any, Any]] = []
    _walk(params, (), None, _equinox_module_type(), walked)
    per_leaf: list[Any] | None = None
    if filter_axis is not None and not callable(filter_axis) and not isinstance(filter_axis, int):
        treedef = jax.tree_util.tree_structure(params)
        try:
            per_leaf = treedef.flatten_up_to(filter_axis)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"filter_axis does not match the params: give an int, a callable "
                f"(path, leaf) -> axis, or a pytree shaped like the params, e.g. "
                f"jax.tree_util.tree_map(lambda w: -1, params) ({err})") from None
    if isinstance(filter_axis, bool):
        raise TypeError("filter_axis must be an int, a pytree of ints, a callable or None, "
                        "got a bool")
    out, doubtful, called = [], [], []
    for i, (path, leaf, owner) in enumerate(walked):
        name = leaf_path(path)
        ndim = len(getattr(leaf, "shape", ()))
        role = _role(path, owner)
        if filter_axis is None:
            axes, source = _inferred(path, leaf, owner, convention)
        elif isinstance(filter_axis, int):
            axes, source = filter_axis, "given"
        elif per_leaf is not None:
            axes, source = per_leaf[i], "given"
        else:
            axes, source = filter_axis(name, leaf), "given"
            if ndim >= 2:
                called.append((name, axes))
        if ndim <= 1 and (filter_axis is None or isinstance(filter_axis, int)):
            axes = None  # one filter: the whole leaf
        layout = LeafLayout(name, role, ndim, _normalise_axes(axes, ndim, name), source)
        if source == "assumed" and not layout.ignorable and _doubtful(path, owner):
            doubtful.append(name)
        out.append(layout)
    if warn and doubtful:
        _warn_assumed(doubtful)
    if warn and len(called) >= 2 and all(a == called[0][1] for _, a in called):
        _warn_constant_callable(called[0][1], called[0][0], len(called))
    return out


def assumed_paths(layouts: list[LeafLayout]) -> list[str]:
    """The weight leaves whose filter axis was assumed (no known container).

    Example:
        >>> assumed_paths(leaf_layouts({"w": jnp.ones((4, 3))}))
        ["['w']"]
    """
    return [l.path for l in layouts if l.source == "assumed" and not l.ignorable]


def describe_axes(layouts: list[LeafLayout]) -> dict[str, Any]:
    """``{path: filter axes}`` of the weight leaves (JSON-friendly), for metadata.

    Example:
        >>> describe_axes(leaf_layouts({"w": jnp.ones((4, 3))}))
        {"['w']": [1]}
    """
    return {l.path: (list(l.filter_axes) if l.filter_axes is not None else None)
            for l in layouts if not l.ignorable}

