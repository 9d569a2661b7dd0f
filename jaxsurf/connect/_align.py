"""Permutation alignment by weight matching (Ainsworth et al. 2023, Algorithm 2).

Hidden units of a network can be reordered without changing the function it
computes: permute the output axis of one layer and the input axis of the
next the same way. A :class:`PermutationSpec` says which axes of which leaves
share a permutation ("group"); :func:`weight_matching` looks for the
permutations of ``params_b`` whose weights are closest to ``params_a``
(maximising ``sum <W_a, P W_b P'^T>``) by coordinate descent, one linear
assignment problem per group, solved with
``scipy.optimize.linear_sum_assignment``; :func:`apply_permutation` applies
them, and :func:`align` does both.

Residual streams of the project's CIFAR ResNets with option-A shortcuts (the
extra channels of a wider stage are zero padding *around* the old ones) are
one group whose permutation keeps the channels of each earlier stage inside
that stage's slice (``Group.blocks``), so the padded shortcut commutes with
it and the permuted network computes the same function.

Example:
    >>> spec = mlp_spec(params_a)
    >>> params_b_aligned = align(params_a, params_b, spec)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from jaxsurf import _tree as tree
from jaxsurf._tree import PyTree

__all__ = ["Group", "PermutationSpec", "weight_matching", "apply_permutation", "align",
           "mlp_spec", "resnet_spec"]


@dataclass(frozen=True)
class Group:
    """One permutation shared by several axes.

    Attributes:
        size: number of units the permutation acts on.
        blocks: index sets that the permutation maps onto themselves (default:
            one block of all units); used for nested residual streams.
    """

    size: int
    blocks: tuple[tuple[int, ...], ...] = ()

    def index_blocks(self) -> list[np.ndarray]:
        if not self.blocks:
            return [np.arange(self.size)]
        return [np.asarray(b, dtype=np.int64) for b in self.blocks]


@dataclass(frozen=True)
class PermutationSpec:
    """Which axes of which leaves a permutation group acts on.

    Attributes:
        groups: ``{group name: Group}``.
        axes: ``{leaf path: per-axis entry}``; the leaf path as
            :func:`jaxsurf.tree.leaf_path` writes it (``"['hidden_0']['kernel']"``),
            each entry ``None`` (not permuted), a group name, or
            ``(group name, indices)`` when the axis holds only the units
            ``indices`` of the group (in this order).
        follow: leaf paths permuted but left out of the matching cost (e.g.
            BatchNorm running statistics).
        paths: every leaf path of the params the spec was built for; params
            with other leaves are refused (empty: not checked).
    """

    groups: Mapping[str, Group]
    axes: Mapping[str, tuple[Any, ...]]
    follow: frozenset[str] = field(default_factory=frozenset)
    paths: tuple[str, ...] = ()


def _entry(entry: Any) -> tuple[str, np.ndarray | None] | None:
    if entry is None:
        return None
    if isinstance(entry, str):
        return entry, None
    name, index = entry
    return name, None if index is None else np.asarray(index, dtype=np.int64)


def _leaves(params: PyTree) -> dict[str, Any]:
    return {tree.leaf_path(p): leaf for p, leaf in jax.tree_util.tree_leaves_with_path(params)}


def _check_spec(spec: PermutationSpec, leaves: Mapping[str, Any], name: str) -> None:
    """Every spec path exists with the right rank and axis sizes, or a ValueError."""
    if spec.paths and tuple(leaves) != tuple(spec.paths):
        extra = [p for p in leaves if p not in set(spec.paths)]
        missing = [p for p in spec.paths if p not in leaves]
        where = (f"{name} has leaf {extra[0]}, which the spec's params lack" if extra else
                 f"the spec's params have leaf {missing[0]}, which {name} lacks" if missing
                 else f"{name} orders its leaves differently")
        raise ValueError(f"the permutation spec was built for other params: {where}; build "
                         f"it from params of this architecture")
    for path, entries in spec.axes.items():
        if path not in leaves:
            close = [p for p in leaves if p.split("]")[0] == path.split("]")[0]][:3]
            raise ValueError(f"the permutation spec names leaf {path}, which {name} does not "
                             f"have (nearby leaves: {close or list(leaves)[:3]}); build the "
                             f"spec from these params (e.g. js.connect.mlp_spec(params))")
        shape = np.shape(leaves[path])
        if len(shape) != len(entries):
            raise ValueError(f"the permutation spec gives {len(entries)} axes for {path}, but "
                             f"in {name} it has shape {shape}; the spec does not match the params")
        for axis, raw in enumerate(entries):
            entry = _entry(raw)
            if entry is None:
                continue
            group, index = entry
            if group not in spec.groups:
                raise ValueError(f"the permutation spec uses group {group!r} at {path} but "
                                 f"defines only {sorted(spec.groups)}")
            size = spec.groups[group].size if index is None else len(index)
            if shape[axis] != size:
                raise ValueError(f"the permutation spec says axis {axis} of {path} holds "
                                 f"{size} units of group {group!r}, but in {name} it has shape "
                                 f"{shape}; the spec does not match the params")


def _local(perm: np.ndarray, index: np.ndarray | None) -> np.ndarray:
    """The group permutation as seen by an axis holding the units ``index``."""
    if index is None:
        return perm
    position = {int(g): i for i, g in enumerate(index)}
    return np.array([position[int(perm[g])] for g in index], dtype=np.int64)


def _permute_leaf(leaf: np.ndarray, entries: tuple[Any, ...], perms: Mapping[str, np.ndarray],
                  skip_axis: int | None = None) -> np.ndarray:
    for axis, raw in enumerate(entries):
        entry = _entry(raw)
        if entry is None or axis == skip_axis:
            continue
        leaf = np.take(leaf, _local(perms[entry[0]], entry[1]), axis=axis)
    return leaf


def weight_matching(params_a: PyTree, params_b: PyTree, spec: PermutationSpec, *,
                    max_iter: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """Permutations of ``params_b``'s units that bring its weights closest to ``params_a``.

    Coordinate descent over the groups in random order (Ainsworth et al.
    2023, Algorithm 2): each step solves one linear assignment problem
    ``max_P sum_leaves <W_a, P W_b>`` with the other groups fixed; it stops
    when a full sweep improves no group.

    Args:
        params_a: the reference network's params (or Flax variables).
        params_b: the network to permute, same structure.
        spec: a :class:`PermutationSpec` (:func:`mlp_spec`, :func:`resnet_spec`).
        max_iter: at most this many sweeps.
        seed: order of the groups in each sweep.

    Returns:
        ``{group: perm}``: unit ``j`` of the permuted ``params_b`` is unit
        ``perm[j]`` of ``params_b``.

    Example:
        >>> perms = weight_matching(params_a, params_b, mlp_spec(params_a))
    """
    from scipy.optimize import linear_sum_assignment

    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    leaves_a = {k: np.asarray(v, np.float64) for k, v in _leaves(params_a).items()}
    leaves_b = {k: np.asarray(v, np.float64) for k, v in _leaves(params_b).items()}
    _check_spec(spec, leaves_a, "params_a")
    perms = {name: np.arange(g.size) for name, g in spec.groups.items()}
    uses: dict[str, list[tuple[str, int, np.ndarray | None]]] = {n: [] for n in spec.groups}
    for path, entries in spec.axes.items():
        if path in spec.follow:
            continue
        for axis, raw in enumerate(entries):
            entry = _entry(raw)
            if entry is not None:
                uses[entry[0]].append((path, axis, entry[1]))
    rng = np.random.default_rng(seed)
    names = list(spec.groups)
    for _ in range(max_iter):
        improved = False
        for name in rng.permutation(names):
            group = spec.groups[name]
            cost = np.zeros((group.size, group.size))
            for path, axis, index in uses[name]:
                wa = np.moveaxis(leaves_a[path], axis, 0).reshape(leaves_a[path].shape[axis], -1)
                wb = _permute_leaf(leaves_b[path], spec.axes[path], perms, skip_axis=axis)
                wb = np.moveaxis(wb, axis, 0).reshape(wb.shape[axis], -1)
                rows = np.arange(group.size) if index is None else index
                cost[np.ix_(rows, rows)] += wa @ wb.T
            new = perms[name].copy()
            for block in group.index_blocks():
                _, cols = linear_sum_assignment(cost[np.ix_(block, block)], maximize=True)
                new[block] = block[cols]
            old_value = cost[np.arange(group.size), perms[name]].sum()
            new_value = cost[np.arange(group.size), new].sum()
            if new_value > old_value + 1e-12 * max(1.0, abs(old_value)):
                perms[name], improved = new, True
        if not improved:
            break
    return perms


def apply_permutation(params: PyTree, spec: PermutationSpec,
                      perms: Mapping[str, np.ndarray]) -> PyTree:
    """``params`` with every spec'd axis permuted; other leaves unchanged.

    Args:
        params: params (or Flax variables) the spec was built for.
        spec: the :class:`PermutationSpec`.
        perms: ``{group: perm}`` from :func:`weight_matching`.

    Returns:
        A pytree like ``params`` (leaves of the same dtypes, as numpy arrays
        where permuted).

    Example:
        >>> spec = mlp_spec(params_b)
        >>> perms = {name: np.random.default_rng(0).permutation(group.size)
        ...          for name, group in spec.groups.items()}
        >>> same_function = apply_permutation(params_b, spec, perms)
        >>> bool(jnp.allclose(fn(same_function, data)["loss"], fn(params_b, data)["loss"]))
        True
    """
    _check_spec(spec, _leaves(params), "params")
    if not isinstance(perms, Mapping):
        raise TypeError(f"perms must be a dict {{group: permutation}} (from weight_matching), "
                        f"not {type(perms).__name__}")
    missing = [name for name in spec.groups if name not in perms]
    if missing:
        extra = sorted(str(k) for k in perms if k not in spec.groups)
        raise ValueError(f"perms has no permutation for the spec's group(s) {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''} ({len(missing)} of "
                         f"{len(spec.groups)} missing"
                         + (f"; it has groups the spec does not: {extra[:5]}" if extra else "")
                         + "); pass one permutation per group, e.g. the dict "
                           "weight_matching(params_a, params_b, spec) returns")
    for name, group in spec.groups.items():
        perm = np.asarray(perms[name])
        if sorted(perm.tolist()) != list(range(group.size)):
            raise ValueError(f"perms[{name!r}] is not a permutation of {group.size} units")
        for block in group.index_blocks():
            if sorted(perm[block].tolist()) != sorted(block.tolist()):
                raise ValueError(f"perms[{name!r}] moves units out of the block "
                                 f"{block.tolist()[:4]}...; the group's blocks must map onto "
                                 f"themselves (nested residual streams)")

    def leaf(path: tuple, value: Any) -> Any:
        entries = spec.axes.get(tree.leaf_path(path))
        if entries is None:
            return value
        out = _permute_leaf(np.asarray(value), entries, perms)
        return out.astype(np.asarray(value).dtype)

    return jax.tree_util.tree_map_with_path(leaf, params)


def align(params_a: PyTree, params_b: PyTree, spec: PermutationSpec, *, max_iter: int = 100,
          seed: int = 0) -> PyTree:
    """``params_b`` with its units permuted to match ``params_a`` (weight matching).

    The result computes exactly the same function as ``params_b`` (up to the
    order of floating-point sums); only its position in parameter space
    changes, usually to one much closer to ``params_a``, so that the straight
    line between them has a smaller barrier (Ainsworth et al. 2023).

    Args:
        params_a, params_b: two networks of the same architecture (params, or
            Flax variables with ``batch_stats``, matching ``spec``).
        spec: from :func:`mlp_spec` or :func:`resnet_spec`, or your own.
        max_iter, seed: as in :func:`weight_matching`.

    Returns:
        The permuted ``params_b``.

    Example:
        >>> aligned = js.connect.align(params_a, params_b, js.connect.mlp_spec(params_a))
        >>> bool(jnp.allclose(fn(aligned, data)["loss"], fn(params_b, data)["loss"]))
        True
    """
    perms = weight_matching(params_a, params_b, spec, max_iter=max_iter, seed=seed)
    return apply_permutation(params_b, spec, perms)


# --------------------------------------------------------------------------- specs
def _suffix_number(name: str) -> int:
    match = re.search(r"(\d+)$", name)
    return int(match.group(1)) if match else -1


def _q(*keys: str) -> str:
    return "".join(f"[{k!r}]" for k in keys)


def mlp_spec(params: Mapping[str, Any], *, layers: Sequence[str] | None = None,
             weight: str = "kernel", bias: str = "bias", in_axis: int = 0) -> PermutationSpec:
    """Permutation spec of a chain of dense layers (an MLP).

    Args:
        params: ``{layer: {weight: ..., bias: ...}}``, or Flax variables holding
            such params under ``"params"`` (jaxsurf's ``DenseRegressor``:
            ``hidden_0 .. hidden_{k-1}``, ``output``, and ``taaf_i`` when present).
        layers: layer names in order, input to output (default: the
            ``hidden_*`` layers by number, then the rest in their order).
        weight, bias: leaf names in each layer.
        in_axis: the weight's input axis: 0 for Flax ``[in, out]``, 1 for
            PyTorch/Equinox ``(out, in)``.

    Returns:
        A :class:`PermutationSpec` with one group per hidden layer.

    Example:
        >>> w0, b0, w1, b1 = np.ones((8, 4)), np.zeros(8), np.ones((3, 8)), np.zeros(3)
        >>> spec = mlp_spec({"l0": {"w": w0, "b": b0}, "l1": {"w": w1, "b": b1}},
        ...                 weight="w", bias="b", in_axis=1)
        >>> {name: group.size for name, group in spec.groups.items()}
        {'hidden_0': 8}
    """
    prefix: tuple[str, ...] = ()
    inner: Mapping[str, Any] = params
    if "params" in params and isinstance(params["params"], Mapping):
        prefix, inner = ("params",), params["params"]
    if layers is None:
        hidden = sorted((k for k in inner if k.startswith("hidden_")), key=_suffix_number)
        others = [k for k in inner if not k.startswith(("hidden_", "taaf_"))]
        layers = hidden + others
    layers = list(layers)
    if len(layers) < 2:
        raise ValueError(f"an MLP spec needs at least two dense layers, found {layers}")
    groups, axes = {}, {}
    for i, name in enumerate(layers):
        if name not in inner or weight not in inner[name]:
            raise ValueError(f"layer {name!r} has no {weight!r} leaf in the params (layers: "
                             f"{list(inner)}); pass layers=/weight= to mlp_spec")
        w = inner[name][weight]
        if np.ndim(w) != 2:
            raise ValueError(f"{name}/{weight} has shape {np.shape(w)}; mlp_spec needs 2-D "
                             f"dense weights")
        out_axis = 1 - in_axis
        g_in = f"hidden_{i - 1}" if i > 0 else None
        g_out = f"hidden_{i}" if i < len(layers) - 1 else None
        if g_out is not None:
            groups[g_out] = Group(int(np.shape(w)[out_axis]))
        entries: list[str | None] = [None, None]
        entries[in_axis], entries[out_axis] = g_in, g_out
        axes[_q(*prefix, name, weight)] = tuple(entries)
        if g_out is not None and bias in inner[name]:
            axes[_q(*prefix, name, bias)] = (g_out,)
        taaf = f"taaf_{_suffix_number(name)}" if name.startswith("hidden_") else ""
        if g_out is not None and taaf in inner:
            for leaf in inner[taaf]:
                axes[_q(*prefix, taaf, leaf)] = (g_out,)
    return PermutationSpec(groups, axes, paths=tuple(_leaves(params)))


def resnet_spec(variables: Mapping[str, Any]) -> PermutationSpec:
    """Permutation spec of jaxsurf's CIFAR ResNets (``jaxsurf.models.ResNetCIFAR``).

    Covers ``params`` and, when present, ``batch_stats`` (running mean and
    variance permuted with their channels, left out of the matching cost).
    Groups: the inner channels of every block (``conv1``/``bn1`` out,
    ``conv2`` in) and the residual stream. With option-A shortcuts (zero
    padding, no parameters) the streams of the three stages are one group of
    the last stage's width whose permutation keeps each earlier stage's
    channels in their slice; with option-B shortcuts (``shortcut_conv``) each
    stage's stream is its own group. The spec is also valid for the
    ``_noshort`` nets (it ties more than they need).

    Args:
        variables: ``{"params": ..., "batch_stats": ...}`` of a ResNetCIFAR
            (or just its params).

    Returns:
        A :class:`PermutationSpec`.

    Example:
        >>> from jaxsurf.models import ResNetCIFAR
        >>> net, x = ResNetCIFAR(depth=8, width=4), jnp.ones((2, 8, 8, 3))
        >>> shapes, rng = jax.eval_shape(net.init, jax.random.key(0), x), np.random.default_rng(0)
        >>> va, vb = (jax.tree.map(lambda s: rng.uniform(0.5, 1.5, s.shape).astype(s.dtype),
        ...                        shapes) for _ in range(2))   # stand-ins for trained nets
        >>> spec = resnet_spec(va)
        >>> vb2 = align(va, vb, spec)
        >>> apply = jax.jit(net.apply)
        >>> bool(jnp.allclose(apply(vb2, x), apply(vb, x), atol=1e-5))   # the same function
        True
    """
    has_params = "params" in variables and isinstance(variables["params"], Mapping)
    params = variables["params"] if has_params else variables
    stats = variables.get("batch_stats", {}) if has_params else {}
    if "conv_init" not in params or "head" not in params:
        raise ValueError(f"resnet_spec expects jaxsurf.models.ResNetCIFAR params (conv_init, "
                         f"stage*_block*, head); got top-level keys {sorted(params)}")
    root = ("params",) if has_params else ()
    blocks = sorted((k for k in params if re.fullmatch(r"stage\d+_block\d+", k)),
                    key=lambda k: tuple(int(n) for n in re.findall(r"\d+", k)))
    stage_of = {k: int(re.findall(r"\d+", k)[0]) for k in blocks}
    widths = {1: int(np.shape(params["conv_init"]["kernel"])[-1])}
    for k in blocks:
        widths[stage_of[k]] = int(np.shape(params[k]["conv1"]["kernel"])[-1])
    option_b = any("shortcut_conv" in params[k] for k in blocks)
    stages = sorted(widths)

    # residual stream of each stage: (group name, indices of the stage's channels)
    stream: dict[int, tuple[str, Any]] = {}
    groups: dict[str, Group] = {}
    if option_b:
        for s in stages:
            groups[f"res{s}"] = Group(widths[s])
            stream[s] = (f"res{s}", None)
    else:  # nested: stage s's channels sit centred inside stage s+1's
        top = stages[-1]
        index = {top: np.arange(widths[top])}
        for s in reversed(stages[:-1]):
            offset = (widths[s + 1] - widths[s]) // 2
            index[s] = index[s + 1][offset:offset + widths[s]]
        done: set[int] = set()
        block_list = []
        for s in stages:
            new = [int(i) for i in index[s] if int(i) not in done]
            block_list.append(tuple(new))
            done.update(new)
        groups["res"] = Group(widths[top], tuple(block_list))
        for s in stages:
            stream[s] = ("res", None) if s == top else ("res", tuple(int(i) for i in index[s]))

    axes: dict[str, tuple[Any, ...]] = {}
    follow: set[str] = set()

    def norm(layer: tuple[str, ...], entry: Any) -> None:
        for leaf in ("scale", "bias"):
            axes[_q(*root, *layer, leaf)] = (entry,)
        node = stats
        for key in layer:
            node = node.get(key, {}) if isinstance(node, Mapping) else {}
        for leaf in node if isinstance(node, Mapping) else ():
            path = _q("batch_stats", *layer, leaf)
            axes[path] = (entry,)
            follow.add(path)

    axes[_q(*root, "conv_init", "kernel")] = (None, None, None, stream[1])
    norm(("bn_init",), stream[1])
    previous = 1
    for k in blocks:
        s = stage_of[k]
        inner = f"{k}_inner"
        groups[inner] = Group(widths[s])
        axes[_q(*root, k, "conv1", "kernel")] = (None, None, stream[previous], inner)
        norm((k, "bn1"), inner)
        axes[_q(*root, k, "conv2", "kernel")] = (None, None, inner, stream[s])
        norm((k, "bn2"), stream[s])
        if "shortcut_conv" in params[k]:
            axes[_q(*root, k, "shortcut_conv", "kernel")] = (None, None, stream[previous],
                                                            stream[s])
            norm((k, "shortcut_bn"), stream[s])
        previous = s
    axes[_q(*root, "head", "kernel")] = (stream[previous], None)
    return PermutationSpec(groups, axes, frozenset(follow), tuple(_leaves(variables)))
