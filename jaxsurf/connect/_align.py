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
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _batching as batching, _tree as tree, _validate
from jaxsurf._tree import PyTree

__all__ = ["Group", "PermutationSpec", "weight_matching", "activation_matching",
           "apply_permutation", "align", "repair_path", "mlp_spec", "resnet_spec",
           "conv_spec", "attention_spec", "combine_specs"]


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
        producers: ``{group: ((weight path, output axis), (bias path, 0))}``:
            the leaves whose outputs are the group's pre-activations (used by
            :func:`repair_path`; :func:`mlp_spec` and :func:`conv_spec` fill it).
    """

    groups: Mapping[str, Group]
    axes: Mapping[str, tuple[Any, ...]]
    follow: frozenset[str] = field(default_factory=frozenset)
    paths: tuple[str, ...] = ()
    producers: Mapping[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)


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


def _occurrences(index: np.ndarray) -> np.ndarray:
    """``k`` at each position holding the ``k``-th copy of its unit (0 for distinct units)."""
    seen: dict[int, int] = {}
    out = np.empty(len(index), dtype=np.int64)
    for i, unit in enumerate(index.tolist()):
        out[i] = seen.get(unit, 0)
        seen[unit] = out[i] + 1
    return out


def _local(perm: np.ndarray, index: np.ndarray | None) -> np.ndarray:
    """The group permutation as seen by an axis holding the units ``index``.

    A unit may fill several positions of the axis (an attention head's
    ``head_dim`` rows of a fused projection, ``index = repeat(arange(heads),
    head_dim)``; a channel at every pixel of a flattened feature map,
    ``index = tile(arange(channels), pixels)``): the ``k``-th position of unit
    ``u`` then takes the ``k``-th position of unit ``perm[u]``."""
    if index is None:
        return perm
    copies = _occurrences(index)
    position = {(int(g), int(k)): i for i, (g, k) in enumerate(zip(index, copies))}
    return np.array([position[(int(perm[g]), int(k))] for g, k in zip(index, copies)],
                    dtype=np.int64)


def _copies(index: np.ndarray | None, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(units, positions)`` per copy: the positions of the ``k``-th copy of each unit."""
    if index is None:
        return [(np.arange(size), np.arange(size))]
    copies = _occurrences(index)
    out = []
    for k in range(int(copies.max()) + 1 if len(copies) else 0):
        positions = np.flatnonzero(copies == k)
        out.append((index[positions], positions))
    return out


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
                for units, rows in _copies(index, group.size):
                    cost[np.ix_(units, units)] += wa[rows] @ wb[rows].T
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


def align(params_a: PyTree, params_b: PyTree, spec: PermutationSpec, *,
          method: str = "weight", data: Any = None,
          activations: Callable[[PyTree, Any], Any] | None = None,
          batch_size: int | None = None, max_iter: int = 100, seed: int = 0) -> PyTree:
    """``params_b`` with its units permuted to match ``params_a``.

    The result computes exactly the same function as ``params_b`` (up to the
    order of floating-point sums); only its position in parameter space
    changes, usually to one much closer to ``params_a``, so that the straight
    line between them has a smaller barrier (Ainsworth et al. 2023).

    Two ways to choose the permutations (Ainsworth et al. 2023, Section 3):

    * ``method="weight"`` (default): weight matching, :func:`weight_matching`
      (no data needed).
    * ``method="activation"``: activation matching, :func:`activation_matching`:
      for each group, the permutation that maximises the summed correlation of
      the two networks' hidden activations on ``data``, one linear
      assignment per group (needs ``data`` and ``activations``).

    Args:
        params_a, params_b: two networks of the same architecture (params, or
            Flax variables with ``batch_stats``, matching ``spec``).
        spec: from :func:`mlp_spec` or :func:`resnet_spec`, or your own.
        method: ``"weight"`` or ``"activation"``.
        data: for ``"activation"``: in-memory arrays (a dict/tuple with a
            leading example axis) or an iterable of batches.
        activations: for ``"activation"``: ``activations(params, batch)`` → the
            hidden activations of each group, a list in the spec's group order
            (``list(spec.groups)``) or a dict by group name; each an array
            ``(..., units)`` with the units on the last axis (every other axis
            counts as examples), or a list of such arrays whose rows are
            pooled (e.g. the residual stream after several blocks). An array
            may hold a nested slice of its group (an earlier stage of an
            option-A residual stream, 16 of 64 channels): it is placed at the
            slice's units, zeros elsewhere, as the zero-padded shortcut does.
        batch_size: examples per batch for in-memory ``data`` (default
            ``min(n, 512)``).
        max_iter, seed: as in :func:`weight_matching`.

    Returns:
        The permuted ``params_b``.

    Example:
        >>> aligned = js.connect.align(params_a, params_b, js.connect.mlp_spec(params_a))
        >>> bool(jnp.allclose(fn(aligned, data)["loss"], fn(params_b, data)["loss"]))
        True
        >>> hidden = lambda p, b: [jnp.tanh(b["x"] @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])]
        >>> by_data = js.connect.align(params_a, params_b, js.connect.mlp_spec(params_a),
        ...                            method="activation", data=data, activations=hidden)
        >>> bool(jnp.allclose(fn(by_data, data)["loss"], fn(params_b, data)["loss"]))
        True
    """
    if method == "weight":
        if data is not None or activations is not None:
            raise ValueError("data= and activations= are for method='activation'; weight "
                             "matching uses the weights only")
        perms = weight_matching(params_a, params_b, spec, max_iter=max_iter, seed=seed)
    elif method == "activation":
        if data is None or activations is None:
            raise ValueError("method='activation' needs data= (examples to compare the "
                             "networks on) and activations= (a function (params, batch) -> "
                             "the hidden activations of each permutation group)")
        perms = activation_matching(params_a, params_b, spec, data, activations,
                                    batch_size=batch_size)
    else:
        raise ValueError(f"unknown alignment method {method!r}; use 'weight' or 'activation'")
    return apply_permutation(params_b, spec, perms)


# --------------------------------------------------------------------------- activations
def _batches(data: Any, batch_size: int | None) -> Iterator[Any]:
    if batching.is_in_memory(data):
        data = batching.to_host_arrays(data)
        n = batching.num_examples(data)
        size = batching.resolve_batch_size(batch_size, n)
        for start in range(0, n, size):
            yield jax.tree_util.tree_map(lambda x, s=start: x[s:s + size], data)
    else:
        _validate.reiterable(data, "activation statistics")
        seen = False
        for batch, _ in batching.iter_batches(data):
            seen = True
            yield batch
        if not seen:
            raise ValueError("data is an empty iterable (no batches)")


def _subsets(spec: PermutationSpec, group: str) -> dict[int, np.ndarray]:
    """Sizes of the nested slices an axis of ``spec`` holds of ``group`` (e.g. the
    earlier stages of an option-A residual stream) -> their unit indices; a size
    held by two different slices is ambiguous and left out."""
    found: dict[int, np.ndarray] = {}
    clash: set[int] = set()
    for entries in spec.axes.values():
        for raw in entries:
            entry = _entry(raw)
            if entry is None or entry[0] != group or entry[1] is None:
                continue
            index = entry[1]
            if len(index) in found and not np.array_equal(found[len(index)], index):
                clash.add(len(index))
            found.setdefault(len(index), index)
    return {k: v for k, v in found.items() if k not in clash}


def _by_group(out: Any, spec: PermutationSpec, names: Sequence[str], what: str
              ) -> list[list[jax.Array]]:
    """``activations``'s output as one list of ``(rows, units)`` arrays per group."""
    groups = list(names)
    if isinstance(out, Mapping):
        missing = [g for g in groups if g not in out]
        extra = [str(k) for k in out if k not in spec.groups]
        if missing or extra:
            raise ValueError(f"{what} returned a dict without group(s) {missing[:4]}"
                             + (f" and with unknown key(s) {extra[:4]}" if extra else "")
                             + f"; it must give every group of the spec: {groups}")
        entries = [out[g] for g in groups]
    elif isinstance(out, (list, tuple)):
        if len(out) != len(spec.groups):
            raise ValueError(f"{what} returned {len(out)} entries, but the spec has "
                             f"{len(spec.groups)} groups {list(spec.groups)}; return one "
                             f"per group, in this order (or a dict by group name)")
        entries = [out[list(spec.groups).index(g)] for g in groups]
    else:
        raise TypeError(f"{what} must return a list (in the spec's group order "
                        f"{list(spec.groups)}) or a dict by group name, got "
                        f"{type(out).__name__}")
    result = []
    for g, entry in zip(groups, entries):
        arrays = list(entry) if isinstance(entry, (list, tuple)) else [entry]
        rows = []
        for x in arrays:
            x = jnp.asarray(x)
            size = spec.groups[g].size
            units = x.shape[-1] if x.ndim >= 1 else 0
            where = _subsets(spec, g).get(units) if units != size else None
            if x.ndim < 1 or (units != size and where is None):
                raise ValueError(f"{what} gave group {g!r} an array of shape {x.shape}; "
                                 f"its last axis must hold the group's {size} units (or the "
                                 f"units of one of its nested slices, of sizes "
                                 f"{sorted(_subsets(spec, g))})")
            x = x.reshape(-1, units).astype(jnp.float32)
            if where is not None:  # a nested slice (option-A stream): its place in the group
                x = jnp.zeros((x.shape[0], size), x.dtype).at[:, where].set(x)
            rows.append(x)
        result.append(rows)
    return result


def _moments(params_a: PyTree, params_b: PyTree | None, spec: PermutationSpec, data: Any,
             activations: Callable[[PyTree, Any], Any], batch_size: int | None,
             names: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per group: example count and sums of a, b, a^2, b^2 (and a^T b when ``params_b``)."""
    def sums(pa: PyTree, pb: PyTree | None, batch: Any) -> list[dict[str, jax.Array]]:
        ga = _by_group(activations(pa, batch), spec, names, "activations(params_a, batch)")
        gb = None if pb is None else _by_group(activations(pb, batch), spec, names,
                                               "activations(params_b, batch)")
        out = []
        for k in range(len(ga)):
            a = jnp.concatenate(ga[k], axis=0)
            entry = {"n": jnp.float32(a.shape[0]), "a": a.sum(0), "aa": (a * a).sum(0)}
            if gb is not None:
                b = jnp.concatenate(gb[k], axis=0)
                if b.shape != a.shape:
                    raise ValueError(f"activations gave group {names[k]!r} shape {a.shape} "
                                     f"for params_a but {b.shape} for params_b")
                entry.update(b=b.sum(0), bb=(b * b).sum(0), ab=a.T @ b)
            out.append(entry)
        return out

    program = jax.jit(sums)
    total: list[dict[str, np.ndarray]] | None = None
    for batch in _batches(data, batch_size):
        part = jax.device_get(program(params_a, params_b, batch))
        part = [{k: np.asarray(v, np.float64) for k, v in d.items()} for d in part]
        total = part if total is None else [{k: t[k] + p[k] for k in t}
                                            for t, p in zip(total, part)]
    assert total is not None
    return dict(zip(names, total))


def _std(m: dict[str, np.ndarray], key: str) -> np.ndarray:
    mean = m[key] / m["n"]
    return np.sqrt(np.maximum(m[key + key] / m["n"] - mean ** 2, 0.0))


def activation_matching(params_a: PyTree, params_b: PyTree, spec: PermutationSpec, data: Any,
                        activations: Callable[[PyTree, Any], Any], *,
                        batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Permutations of ``params_b``'s units that best correlate its hidden
    activations with ``params_a``'s on ``data`` (Ainsworth et al. 2023, Section 3.1).

    For each group, the Pearson correlation ``C[i, j]`` of unit ``i`` of A and
    unit ``j`` of B over all examples (and spatial positions) is computed in
    one pass over ``data`` (float64 sums on the host), and the permutation
    maximising ``sum_i C[i, perm[i]]`` is one linear assignment problem
    (``scipy.optimize.linear_sum_assignment``), within each of the group's
    blocks. Groups are matched independently, each on the activations of
    the unpermuted networks, as in the paper.

    Args:
        params_a, params_b, spec: as in :func:`weight_matching`.
        data, activations, batch_size: as in :func:`align`.

    Returns:
        ``{group: perm}`` as :func:`weight_matching` returns.

    Example:
        >>> hidden = lambda p, b: [jnp.tanh(b["x"] @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])]
        >>> perms = activation_matching(params_a, params_b, mlp_spec(params_a), data, hidden)
        >>> sorted(perms)
        ['hidden_0']
    """
    from scipy.optimize import linear_sum_assignment

    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    _check_spec(spec, _leaves(params_a), "params_a")
    if not callable(activations):
        raise TypeError(f"activations must be a function (params, batch) -> activations per "
                        f"group, got {type(activations).__name__}")
    names = list(spec.groups)
    moments = _moments(params_a, params_b, spec, data, activations, batch_size, names)
    perms = {}
    for name in names:
        m = moments[name]
        if not all(np.all(np.isfinite(v)) for v in m.values()):
            raise ValueError(f"the activations of group {name!r} are not finite (NaN or inf) "
                             f"on data; activation matching needs finite activations")
        n = m["n"]
        mean_a, mean_b = m["a"] / n, m["b"] / n
        cov = m["ab"] / n - np.outer(mean_a, mean_b)
        corr = cov / (np.outer(_std(m, "a"), _std(m, "b")) + 1e-12)
        group = spec.groups[name]
        perm = np.arange(group.size)
        for block in group.index_blocks():
            _, cols = linear_sum_assignment(corr[np.ix_(block, block)], maximize=True)
            perm[block] = block[cols]
        perms[name] = perm
    return perms


# --------------------------------------------------------------------------- REPAIR
def repair_path(params_a: PyTree, params_b: PyTree, spec: PermutationSpec, data: Any,
                preactivations: Callable[[PyTree, Any], Any], *,
                batch_size: int | None = None, eps: float = 1e-8
                ) -> Callable[[float], PyTree]:
    """The straight path between two aligned networks, with REPAIR (Jordan et al. 2023).

    Interpolating two aligned networks without BatchNorm shrinks the spread
    of hidden units ("variance collapse"). REPAIR rescales and shifts every
    unit of the interpolated network ``(1 - t) a + t b`` so that its
    pre-activation mean and standard deviation on ``data`` are the
    interpolated ones, ``(1 - t) mu_a + t mu_b`` and ``(1 - t) sigma_a + t
    sigma_b``, group by group in the spec's order (each group measured after
    the earlier ones are corrected), by folding the correction into the
    weights and bias that produce the group (``spec.producers``). Nets with
    BatchNorm need no REPAIR: evaluate them with ``state_policy="recompute"``
    (the "reset" of Jordan et al.).

    Args:
        params_a: network A.
        params_b: network B, already aligned to A (:func:`align`).
        spec: a spec with ``producers`` (:func:`mlp_spec` sets them), in
            input-to-output group order.
        data: in-memory arrays or a re-iterable of batches.
        preactivations: ``preactivations(params, batch)`` → every group's
            pre-activations (the producing layer's outputs, before the
            nonlinearity), as ``activations`` in :func:`align`.
        batch_size: for in-memory ``data``.
        eps: added to standard deviations before dividing.

    Returns:
        ``path(t)``: the repaired network at ``t`` in [0, 1] (``path(0)`` is
        ``params_a``, ``path(1)`` is ``params_b``), for
        :func:`evaluate_path`. A's and B's statistics are measured once; each
        interior ``t`` takes one pass over ``data`` per group.

    Example:
        >>> spec = mlp_spec(params_a)
        >>> b = align(params_a, params_b, spec)
        >>> pre = lambda p, batch: [batch["x"] @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]]
        >>> path = repair_path(params_a, b, spec, data, pre)
        >>> s = js.connect.evaluate_path(fn, path, data, [0.0, 0.5, 1.0], progress=False)
    """
    from jaxsurf.connect._curve import check_t

    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    _check_spec(spec, _leaves(params_a), "params_a")
    names = list(spec.groups)
    missing = [g for g in names if g not in spec.producers]
    if missing:
        raise ValueError(f"REPAIR needs, for every group, the weights that produce it "
                         f"(spec.producers); this spec has none for {missing[:4]}. "
                         f"mlp_spec sets them; nets with BatchNorm need no REPAIR (evaluate "
                         f"with state_policy='recompute')")
    for g in names:
        if len(spec.producers[g]) < 2:
            raise ValueError(f"REPAIR shifts each unit's mean through its bias, but group "
                             f"{g!r} is produced without one ({spec.producers[g]})")
    ends = {"a": _moments(params_a, None, spec, data, preactivations, batch_size, names),
            "b": _moments(params_b, None, spec, data, preactivations, batch_size, names)}
    stats = {k: {g: (m[g]["a"] / m[g]["n"], _std(m[g], "a")) for g in names}
             for k, m in ends.items()}

    def path(t: float) -> PyTree:
        t = float(check_t(t))
        if t == 0.0:
            return params_a
        if t == 1.0:
            return params_b
        point = jax.tree_util.tree_map(
            lambda x, y: ((1.0 - t) * np.asarray(x, np.float64) + t * np.asarray(y, np.float64)
                          ).astype(np.asarray(x).dtype) if tree.is_float_leaf(x) else x,
            params_a, params_b)
        for g in names:
            now = _moments(point, None, spec, data, preactivations, batch_size, [g])[g]
            mean, std = now["a"] / now["n"], _std(now, "a")
            goal_mean = (1 - t) * stats["a"][g][0] + t * stats["b"][g][0]
            goal_std = (1 - t) * stats["a"][g][1] + t * stats["b"][g][1]
            factor = goal_std / (std + eps)
            (w_path, w_axis), (b_path, _) = spec.producers[g][:2]

            def fix(path_: tuple, x: Any, w_path: str = w_path, w_axis: int = w_axis,
                    b_path: str = b_path, factor: np.ndarray = factor, mean: np.ndarray = mean,
                    goal_mean: np.ndarray = goal_mean) -> Any:
                where = tree.leaf_path(path_)
                if where == w_path:
                    shape = [1] * np.ndim(x)
                    shape[w_axis] = -1
                    return (np.asarray(x, np.float64) * factor.reshape(shape)
                            ).astype(np.asarray(x).dtype)
                if where == b_path:
                    return ((np.asarray(x, np.float64) - mean) * factor + goal_mean
                            ).astype(np.asarray(x).dtype)
                return x

            point = jax.tree_util.tree_map_with_path(fix, point)
        return point

    return path


# --------------------------------------------------------------------------- specs
def _suffix_number(name: str) -> int:
    match = re.search(r"(\d+)$", name)
    return int(match.group(1)) if match else -1


def _q(*keys: str) -> str:
    return "".join(f"[{k!r}]" for k in keys)


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


# --------------------------------------------------------------------------- chains of layers
def _key_part(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


@dataclass(frozen=True)
class _Layer:
    """One dense or convolutional layer found in the params."""

    name: str                # "hidden_0", "layers/1", "block/conv"
    weight: str              # the weight leaf's path (tree.leaf_path)
    shape: tuple[int, ...]
    in_axis: int
    out_axis: int
    bias: str | None = None
    bias_ndim: int = 1
    parts: tuple[str, ...] = ()

    @property
    def fan_in(self) -> int:
        return int(self.shape[self.in_axis])

    @property
    def fan_out(self) -> int:
        return int(self.shape[self.out_axis])


def _containers(params: PyTree) -> dict[tuple[str, ...], dict[str, tuple[str, tuple[int, ...]]]]:
    """``{container parts: {leaf name: (leaf path, shape)}}`` in the params' leaf order."""
    out: dict[tuple[str, ...], dict[str, tuple[str, tuple[int, ...]]]] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        parts = tuple(_key_part(k) for k in path)
        out.setdefault(parts[:-1], {})[parts[-1]] = (tree.leaf_path(path),
                                                     tuple(np.shape(leaf)))
    return out


def _is_equinox(params: PyTree) -> bool:
    eqx = sys.modules.get("equinox")
    return eqx is not None and any(isinstance(x, eqx.Module) for x in jax.tree_util.tree_leaves(
        params, is_leaf=lambda x: isinstance(x, eqx.Module)))


def _natural(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _layer_name(parts: tuple[str, ...]) -> str:
    return "/".join(parts[1:] if parts[:1] == ("params",) else parts)


def _normalise_name(name: Any) -> str:
    return "/".join(p for p in re.split(r"[/.\[\]'\"]+", str(name)) if p and p != "params")


def _find_layers(params: PyTree, weight: str | None, bias: str | None, in_axis: int | None,
                 conv: bool) -> list[_Layer]:
    """Dense (2-D weight) and, with ``conv``, convolutional (>= 3-D) layers, in leaf order."""
    containers = _containers(params)
    names = {leaf for leaves in containers.values() for leaf, (_, shape) in leaves.items()
             if len(shape) >= 2}
    if weight is None:
        weight = "kernel" if "kernel" in names else "weight" if "weight" in names else "kernel"
    bias = bias or "bias"
    channels_first = in_axis == 1 if in_axis is not None else weight != "kernel"
    found = []
    for parts, leaves in containers.items():
        if weight not in leaves:
            continue
        path, shape = leaves[weight]
        if len(shape) < 2 or (len(shape) > 2 and not conv):
            continue
        if len(shape) == 2:
            i_ax = in_axis if in_axis is not None else (1 if channels_first else 0)
            o_ax = 1 - i_ax
        else:  # Flax [..., in, out]; Equinox / PyTorch (out, in, ...)
            i_ax, o_ax = (1, 0) if channels_first else (len(shape) - 2, len(shape) - 1)
        bias_path, bias_ndim = None, 1
        if bias in leaves:
            bias_path, bias_shape = leaves[bias]
            bias_ndim = len(bias_shape)
        found.append(_Layer(_layer_name(parts), path, shape, i_ax, o_ax, bias_path, bias_ndim,
                            parts))
    return found


def _chains(layers: list[_Layer]) -> list[list[_Layer]]:
    """Orders of all the layers in which each one's output feeds the next (at most two)."""
    found: list[list[_Layer]] = []

    def extend(chain: list[_Layer], rest: list[_Layer]) -> None:
        if len(found) > 1:
            return
        if not rest:
            found.append(chain)
            return
        for i, layer in enumerate(rest):
            if not chain or _feeds(chain[-1], layer):
                extend([*chain, layer], rest[:i] + rest[i + 1:])

    extend([], layers)
    return found


def _feeds(a: _Layer, b: _Layer) -> bool:
    """``a``'s output can be ``b``'s input: the same width, or (conv to dense) a multiple
    of it (a flattened feature map)."""
    if len(a.shape) > 2 and len(b.shape) == 2:
        return b.fan_in % a.fan_out == 0
    if len(a.shape) == 2 and len(b.shape) > 2:
        return False
    return a.fan_out == b.fan_in


def _order(found: list[_Layer], layers: Sequence[str] | None, params: PyTree,
           what: str) -> list[_Layer]:
    """The layers in the order of the forward pass (see :func:`mlp_spec`)."""
    by_name = {layer.name: layer for layer in found}
    listing = [layer.name for layer in found]
    if layers is not None:
        wanted = [_normalise_name(n) for n in layers]
        missing = [n for n, w in zip(layers, wanted) if w not in by_name]
        if missing:
            raise ValueError(f"layers={list(layers)}: no {what} layer {missing[0]!r} in the "
                             f"params; its {what} layers are {listing}")
        ordered = [by_name[w] for w in wanted]
        how = "as given by layers="
    elif _is_equinox(params):
        ordered, how = list(found), "in the Equinox module's field order"
    elif all(n.startswith(("hidden_", "output")) for n in listing):  # DenseRegressor
        ordered = sorted((x for x in found if x.name.startswith("hidden_")),
                         key=lambda x: _natural(x.name))
        ordered += [x for x in found if not x.name.startswith("hidden_")]
        how = "hidden_0, hidden_1, ..., then output"
    elif all(len({re.sub(r"\d+", "#", x.name) for x in found if (len(x.shape) == 2) == dense})
                 <= 1 for dense in (True, False)) and all(re.search(r"\d", n) for n in listing):
        # numbered names (Conv_0, Dense_0, layers/3): convolutions, then dense, by number
        ordered = sorted(found, key=lambda x: (len(x.shape) == 2, _natural(x.name)))
        how = "by the numbers in their names"
    else:
        chains = _chains(found)
        if len(chains) != 1:
            raise ValueError(
                f"cannot tell the order of the forward pass of the {what} layers {listing} "
                f"from their names or shapes ("
                f"{'several orders chain' if chains else 'no order chains'}); pass them in "
                f"the order the forward pass uses them, input to output: "
                f"layers=[{', '.join(repr(n) for n in listing)}] (reordered)")
        ordered, how = chains[0], "the one order in which their shapes chain"
    for a, b in zip(ordered, ordered[1:]):
        if not _feeds(a, b):
            raise ValueError(
                f"the {what} layers taken {how}, {[x.name for x in ordered]}, do not chain: "
                f"{a.name} gives {a.fan_out} units but {b.name} takes {b.fan_in}; pass the "
                f"layers in the order of the forward pass with layers=[...] (mlp_spec and "
                f"conv_spec need a plain chain: each layer feeds the next)")
    return ordered


def _chain_spec(params: PyTree, ordered: list[_Layer], *, prefix: str,
                norms: bool) -> PermutationSpec:
    containers = _containers(params)
    groups: dict[str, Group] = {}
    axes: dict[str, tuple[Any, ...]] = {}
    follow: set[str] = set()
    producers: dict[str, tuple[tuple[str, int], ...]] = {}
    channels_first = any(x.out_axis == 0 for x in ordered)
    for i, layer in enumerate(ordered):
        g_in = f"{prefix}{i - 1}" if i > 0 else None
        g_out = f"{prefix}{i}" if i < len(ordered) - 1 else None
        if g_out is not None:
            groups[g_out] = Group(layer.fan_out)
        entries: list[Any] = [None] * len(layer.shape)
        entries[layer.out_axis] = g_out
        if g_in is not None:
            previous = ordered[i - 1]
            copies = layer.fan_in // previous.fan_out
            if copies == 1:
                entries[layer.in_axis] = g_in
            else:  # a flattened feature map: channels fastest (NHWC) or slowest (NCHW)
                units = np.arange(previous.fan_out)
                index = np.repeat(units, copies) if channels_first else np.tile(units, copies)
                entries[layer.in_axis] = (g_in, tuple(int(u) for u in index))
        axes[layer.weight] = tuple(entries)
        if g_out is not None:  # what computes the group's units (REPAIR rescales them)
            made = [(layer.weight, layer.out_axis)]
            if layer.bias is not None:
                axes[layer.bias] = (g_out,) + (None,) * (layer.bias_ndim - 1)
                made.append((layer.bias, 0))
            producers[g_out] = tuple(made)
    if norms:
        _attach_norms(params, containers, ordered, groups, axes, follow, prefix)
    return PermutationSpec(groups, axes, frozenset(follow), paths=tuple(_leaves(params)),
                           producers=producers)


_NORM_LEAVES = ("scale", "bias", "weight", "mean", "var")


def _attach_norms(params: PyTree, containers: dict, ordered: list[_Layer], groups: dict,
                  axes: dict, follow: set, prefix: str) -> None:
    """Normalization layers (1-D scale/bias, and their running statistics in another
    collection) follow the layer before them: the first one, in order, of their width."""
    layer_parts = {x.parts for x in ordered}
    norms: dict[tuple[str, ...], list[tuple[str, str, tuple[int, ...]]]] = {}
    for parts, leaves in containers.items():
        if parts in layer_parts or not leaves:
            continue
        if not all(len(shape) == 1 and name in _NORM_LEAVES
                   for name, (_, shape) in leaves.items()):
            continue
        key = parts[1:] if parts[:1] in (("params",), ("batch_stats",)) else parts
        for name, (path, shape) in leaves.items():
            norms.setdefault(key, []).append((name, path, shape))
    start = 0
    for key in sorted(norms, key=lambda k: _natural("/".join(k))) if not _is_equinox(params) \
            else list(norms):
        size = norms[key][0][2][0]
        for i in range(start, len(ordered) - 1):
            if ordered[i].fan_out == size:
                for name, path, _ in norms[key]:
                    axes[path] = (f"{prefix}{i}",)
                    if name in ("mean", "var"):
                        follow.add(path)
                start = i
                break


def mlp_spec(params: PyTree, *, layers: Sequence[str] | None = None,
             weight: str | None = None, bias: str | None = None,
             in_axis: int | None = None) -> PermutationSpec:
    """Permutation spec of a chain of dense layers (an MLP), any framework.

    The layers are taken in the order of the forward pass, input to output:
    ``layers=`` when given; else an Equinox module's field order
    (``eqx.nn.MLP``'s ``layers``); jaxsurf's ``DenseRegressor`` names
    (``hidden_0 .. hidden_{k-1}``, ``output``); numbered names (``Dense_0``,
    ``Dense_1``, ..., ``Dense_10``: by number, not alphabetically); otherwise the
    one order in which the layers' shapes chain (an error asks for ``layers=``
    when several do). Each layer's output must feed the next (checked).

    Args:
        params: Flax params or variables (``{"params": ...}``), an NNX model's
            params (``js.flax.adapt``), an Equinox module's array part
            (``js.equinox.adapt`` or ``eqx.filter(model, eqx.is_array)``), or
            any nested dict ``{layer: {weight: ..., bias: ...}}``.
        layers: layer names in the order of the forward pass, as the error
            lists them (``"hidden_0"``, ``"encoder/dense"``, ``"layers/0"``).
        weight, bias: leaf names (default: ``kernel`` if the params have one,
            else ``weight``; ``bias``).
        in_axis: the weight's input axis (default: 0 for ``kernel``, Flax
            ``[in, out]``; 1 for ``weight``, PyTorch/Equinox ``(out, in)``).

    Returns:
        A :class:`PermutationSpec` with one group per hidden layer
        (``hidden_0``, ...).

    Example:
        >>> w0, b0, w1, b1 = np.ones((8, 4)), np.zeros(8), np.ones((3, 8)), np.zeros(3)
        >>> spec = mlp_spec({"l0": {"w": w0, "b": b0}, "l1": {"w": w1, "b": b1}},
        ...                 weight="w", bias="b", in_axis=1)
        >>> {name: group.size for name, group in spec.groups.items()}
        {'hidden_0': 8}
        >>> import equinox as eqx
        >>> mlp = eqx.nn.MLP(4, 3, 16, 2, key=jax.random.key(0))
        >>> list(mlp_spec(eqx.filter(mlp, eqx.is_array)).groups)
        ['hidden_0', 'hidden_1']
    """
    found = _find_layers(params, weight, bias, in_axis, conv=False)
    ordered = _order(found, layers, params, "dense")
    if len(ordered) < 2:
        raise ValueError(f"an MLP spec needs at least two dense layers, found "
                         f"{[x.name for x in found]}; pass layers=/weight= to mlp_spec")
    spec = _chain_spec(params, ordered, prefix="hidden_", norms=False)
    axes = dict(spec.axes)
    containers = _containers(params)
    for i, layer in enumerate(ordered[:-1]):  # DenseRegressor's trainable activations
        if layer.name.startswith("hidden_"):
            parts = (*layer.parts[:-1], f"taaf_{_suffix_number(layer.name)}")
            for path, _ in containers.get(parts, {}).values():
                axes[path] = (f"hidden_{i}",)
    return PermutationSpec(spec.groups, axes, spec.follow, spec.paths, spec.producers)


def conv_spec(params: PyTree, *, layers: Sequence[str] | None = None,
              weight: str | None = None, bias: str | None = None) -> PermutationSpec:
    """Permutation spec of a plain convolutional net: convolutions, then dense layers.

    Every layer's output channels (units) form a group, permuted with the next
    layer's input channels; normalization layers (BatchNorm scale/bias, and
    the running mean/var in ``batch_stats``, left out of the matching cost)
    follow the layer before them. Between the last convolution and the first
    dense layer the feature map may be pooled (the dense layer takes the
    channels) or flattened (``H * W * C`` inputs; channels fastest for Flax's
    NHWC, slowest for PyTorch/Equinox NCHW). The order of the layers is found
    as in :func:`mlp_spec` (``layers=`` to say it). Not for residual nets
    (see :func:`resnet_spec`) or GroupNorm (it ties channels in groups).
    Equinox BatchNorm keeps its running statistics in ``eqx.nn.State``, which
    this spec does not permute: use it on Equinox nets without BatchNorm.

    Args:
        params: Flax params or variables (with ``batch_stats``), an NNX
            model's params, an Equinox module's array part, or nested dicts.
        layers: layer names in the order of the forward pass.
        weight, bias: leaf names (default ``kernel`` [Flax ``(kh, kw, in,
            out)``] or ``weight`` [PyTorch/Equinox ``(out, in, kh, kw)``];
            ``bias``).

    Returns:
        A :class:`PermutationSpec` with groups ``channels_0, ...``.

    Example:
        >>> import flax.linen as nn
        >>> class CNN(nn.Module):
        ...     @nn.compact
        ...     def __call__(self, x):
        ...         x = nn.relu(nn.Conv(8, (3, 3))(x))
        ...         x = nn.relu(nn.Conv(8, (3, 3))(x))
        ...         return nn.Dense(3)(x.reshape(x.shape[0], -1))
        >>> x = jnp.ones((2, 6, 6, 1))
        >>> variables = CNN().init(jax.random.key(0), x)
        >>> spec = conv_spec(variables)
        >>> {name: group.size for name, group in spec.groups.items()}
        {'channels_0': 8, 'channels_1': 8}
        >>> rng = np.random.default_rng(0)
        >>> perms = {k: rng.permutation(g.size) for k, g in spec.groups.items()}
        >>> same = apply_permutation(variables, spec, perms)
        >>> bool(jnp.allclose(CNN().apply(same, x), CNN().apply(variables, x), atol=1e-5))
        True
    """
    found = _find_layers(params, weight, bias, None, conv=True)
    if not any(len(x.shape) > 2 for x in found):
        raise ValueError(f"conv_spec found no convolution (a weight of 3 or more axes) among "
                         f"the layers {[x.name for x in found]}; for dense nets use mlp_spec")
    ordered = _order(found, layers, params, "convolution and dense")
    return _chain_spec(params, ordered, prefix="channels_", norms=True)


def attention_spec(params: PyTree, *, num_heads: int | None = None) -> PermutationSpec:
    """Permutation spec of the heads of every multi-head attention layer.

    The heads of one attention layer can be reordered without changing its
    output: permute the query, key and value projections' heads and the
    output projection's heads the same way. Each head moves as one unit (its
    ``head_dim`` rows together), one group per attention layer. Found by
    structure: Flax (Linen ``MultiHeadDotProductAttention``, NNX
    ``MultiHeadAttention``: ``query``/``key``/``value``/``out`` with a heads
    axis) and Equinox ``eqx.nn.MultiheadAttention`` (``query_proj`` ...
    ``output_proj``, heads fused in the rows; ``num_heads`` read from the
    module, or given). Attention written with plain Dense layers ``query``,
    ``key``, ``value``, ``out`` of 2-D kernels ``[d, heads * head_dim]``
    (``jaxsurf.models.TransformerLM``; heads as consecutive blocks of
    columns, the output projection's rows) needs ``num_heads=``.

    Args:
        params: params or variables of a model holding attention layers (an
            Equinox module's array part keeps ``num_heads``).
        num_heads: heads per layer where the params do not say (fused
            projections: plain dicts with ``query_proj``/``key_proj``/
            ``value_proj``/``output_proj`` ``weight`` leaves, or Dense
            ``query``/``key``/``value``/``out`` ``kernel`` leaves).

    Returns:
        A :class:`PermutationSpec` with groups ``heads:<layer>`` (``heads`` for
        an attention module on its own); other leaves are left alone.

    Example:
        >>> import flax.linen as nn
        >>> att = nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=8)
        >>> x = jnp.ones((1, 5, 8))
        >>> variables = att.init(jax.random.key(0), x)
        >>> spec = attention_spec(variables)
        >>> {name: group.size for name, group in spec.groups.items()}
        {'heads': 4}
        >>> perms = {k: np.array([2, 0, 3, 1]) for k in spec.groups}
        >>> same = apply_permutation(variables, spec, perms)
        >>> bool(jnp.allclose(att.apply(same, x), att.apply(variables, x), atol=1e-5))
        True
        >>> from jaxsurf.models import TransformerLM
        >>> lm = TransformerLM(d_model=16, num_heads=4, num_layers=2, max_len=8)
        >>> p = lm.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
        >>> {k: g.size for k, g in attention_spec(p, num_heads=4).groups.items()}
        {'heads:block_0/attn': 4, 'heads:block_1/attn': 4}
    """
    containers = _containers(params)
    groups: dict[str, Group] = {}
    axes: dict[str, tuple[Any, ...]] = {}
    heads_of = _equinox_heads(params)
    for parts, _ in containers.items():
        if not parts:
            continue
        block, role = parts[:-1], parts[-1]
        name = f"heads:{_layer_name(block)}" if _layer_name(block) else "heads"
        if role == "query" and all(block + (r,) in containers
                                   for r in ("key", "value", "out")):
            q_path, q_shape = containers[parts].get("kernel", (None, ()))
            if len(q_shape) == 2 and all(
                    len(containers[block + (r,)].get("kernel", (None, ()))[1]) == 2
                    for r in ("key", "value", "out")):
                # Dense projections [d, heads * head_dim] (jaxsurf's TransformerLM, a
                # hand-written Flax attention): heads fused in the columns, consecutive
                # blocks of head_dim; the output projection takes them in its rows
                if num_heads is None:
                    raise ValueError(f"attention layer {_layer_name(block) or '(root)'}: its "
                                     f"query/key/value/out kernels are 2-D (heads fused in "
                                     f"the columns); pass num_heads=")
                groups[name] = Group(num_heads)
                for r in ("query", "key", "value"):
                    leaves = containers[block + (r,)]
                    cols = leaves["kernel"][1][1]
                    index = _head_index(cols, num_heads, _layer_name(block + (r,)))
                    axes[leaves["kernel"][0]] = (None, (name, index))
                    if "bias" in leaves:
                        axes[leaves["bias"][0]] = ((name, index),)
                out = containers[block + ("out",)]["kernel"]
                axes[out[0]] = ((name, _head_index(out[1][0], num_heads,
                                                   _layer_name(block + ("out",)))), None)
                continue
            if len(q_shape) != 3:
                continue
            heads = int(q_shape[1])
            groups[name] = Group(heads)
            for r in ("query", "key", "value"):
                leaves = containers[block + (r,)]
                axes[leaves["kernel"][0]] = (None, name, None)
                if "bias" in leaves:
                    axes[leaves["bias"][0]] = (name, None)
            axes[containers[block + ("out",)]["kernel"][0]] = (name, None, None)
        elif role == "query_proj" and all(block + (r,) in containers for r in
                                          ("key_proj", "value_proj", "output_proj")):
            heads = heads_of.get(block, num_heads)
            if heads is None:
                raise ValueError(f"attention layer {_layer_name(block) or '(root)'}: its heads "
                                 f"are fused in the projections' rows; pass num_heads=")
            groups[name] = Group(heads)
            for r in ("query_proj", "key_proj", "value_proj"):
                leaves = containers[block + (r,)]
                rows = leaves["weight"][1][0]
                index = _head_index(rows, heads, _layer_name(block + (r,)))
                axes[leaves["weight"][0]] = ((name, index), None)
                if "bias" in leaves:
                    axes[leaves["bias"][0]] = ((name, index),)
            leaves = containers[block + ("output_proj",)]
            cols = leaves["weight"][1][1]
            axes[leaves["weight"][0]] = (None, (name, _head_index(cols, heads, "output_proj")))
    if not groups:
        raise ValueError("attention_spec found no multi-head attention layer (Flax query/key/"
                         "value/out or Equinox query_proj/key_proj/value_proj/output_proj)")
    return PermutationSpec(groups, axes, paths=tuple(_leaves(params)))


def combine_specs(*specs: PermutationSpec, **named: PermutationSpec) -> PermutationSpec:
    """One :class:`PermutationSpec` that applies several specs of the same params at once.

    Each spec permutes its own groups; the combined spec has all of them, so
    one :func:`align` (weight or activation matching) chooses every
    permutation and the permuted network computes the same function as long
    as each spec alone does. E.g. a transformer: :func:`attention_spec` for
    the heads of every attention layer and :func:`mlp_spec` with
    ``layers=[".../mlp_in", ".../mlp_out"]`` for each block's MLP hidden units.

    Groups keep their names and order, positional specs first, then the named
    ones with their names prefixed as ``"<name>/<group>"`` (so two
    ``mlp_spec`` results, both with a group ``hidden_0``, can be combined
    as ``combine_specs(block_0=s0, block_1=s1)``). Leaves and their per-axis
    entries are merged (one leaf may be permuted by one spec on one axis and
    by another on another axis, never twice on the same axis); ``follow``
    sets, ``producers`` (for :func:`repair_path`) and the checked leaf paths
    are merged.

    Args:
        *specs: specs whose group names do not clash.
        **named: specs whose group names get the prefix ``"<name>/"``.

    Returns:
        The combined :class:`PermutationSpec`.

    Raises:
        ValueError: no spec; specs built for different params; one group name
            in two specs (name them); a leaf axis permuted by two groups; or
            two specs disagreeing on a leaf's rank.

    Example:
        >>> from jaxsurf.models import TransformerLM
        >>> lm = TransformerLM(d_model=16, num_heads=4, num_layers=2, max_len=8)
        >>> tokens = jnp.arange(16).reshape(2, 8)
        >>> p = lm.init(jax.random.key(0), tokens)["params"]
        >>> mlps = {f"mlp{i}": mlp_spec(p, layers=[f"block_{i}/mlp_in", f"block_{i}/mlp_out"])
        ...         for i in range(2)}
        >>> spec = combine_specs(attention_spec(p, num_heads=4), **mlps)
        >>> {k: g.size for k, g in spec.groups.items()}
        {'heads:block_0/attn': 4, 'heads:block_1/attn': 4, 'mlp0/hidden_0': 64, 'mlp1/hidden_0': 64}
        >>> rng = np.random.default_rng(0)
        >>> same = apply_permutation(p, spec, {k: rng.permutation(g.size)
        ...                                    for k, g in spec.groups.items()})
        >>> bool(jnp.allclose(lm.apply({"params": same}, tokens),
        ...                   lm.apply({"params": p}, tokens), atol=1e-5))
        True
    """
    parts: list[tuple[str, PermutationSpec]] = [("", s) for s in specs]
    parts += [(f"{label}/", s) for label, s in named.items()]
    if not parts:
        raise ValueError("combine_specs needs at least one PermutationSpec")
    for prefix, s in parts:
        if not isinstance(s, PermutationSpec):
            raise TypeError(f"combine_specs takes PermutationSpecs (from mlp_spec, "
                            f"attention_spec, ...), got {type(s).__name__}"
                            + (f" for {prefix[:-1]}=" if prefix else ""))
    groups: dict[str, Group] = {}
    origin: dict[str, str] = {}
    axes: dict[str, list[Any]] = {}
    follow: set[str] = set()
    producers: dict[str, tuple[tuple[str, int], ...]] = {}
    paths: tuple[str, ...] = ()
    for k, (prefix, s) in enumerate(parts):
        which = f"{prefix[:-1]}=" if prefix else f"spec {k}"
        if s.paths:
            if paths and tuple(s.paths) != paths:
                raise ValueError(f"combine_specs: {which} was built for other params than the "
                                 f"specs before it (their leaves differ); build every spec "
                                 f"from the same params")
            paths = tuple(s.paths)
        for g, group in s.groups.items():
            new = prefix + g
            if new in groups:
                raise ValueError(f"combine_specs: group {new!r} of {which} is also in "
                                 f"{origin[new]}; give the specs names, e.g. "
                                 f"combine_specs(a=spec_a, b=spec_b), to prefix their groups")
            groups[new], origin[new] = group, which
        for path, entries in s.axes.items():
            merged = axes.setdefault(path, [None] * len(entries))
            if len(merged) != len(entries):
                raise ValueError(f"combine_specs: {which} gives {len(entries)} axes for "
                                 f"{path}, an earlier spec {len(merged)}")
            for axis, raw in enumerate(entries):
                entry = _entry(raw)
                if entry is None:
                    continue
                before = _entry(merged[axis])
                if before is not None:
                    raise ValueError(f"combine_specs: axis {axis} of {path} is permuted by "
                                     f"group {prefix + entry[0]!r} of {which} and by "
                                     f"{before[0]!r}; an axis follows one permutation")
                name = prefix + entry[0]
                merged[axis] = name if entry[1] is None else (name, tuple(
                    int(i) for i in entry[1]))
        follow |= set(s.follow)
        producers.update({prefix + g: made for g, made in s.producers.items()})
    return PermutationSpec(groups, {k: tuple(v) for k, v in axes.items()}, frozenset(follow),
                           paths=paths, producers=producers)


def _head_index(width: int, heads: int, where: str) -> tuple[int, ...]:
    if width % heads:
        raise ValueError(f"{where} has {width} units, not a multiple of {heads} heads")
    return tuple(int(h) for h in np.repeat(np.arange(heads), width // heads))


def _equinox_heads(params: PyTree) -> dict[tuple[str, ...], int]:
    """``num_heads`` of every ``eqx.nn.MultiheadAttention`` in ``params``, by path."""
    eqx = sys.modules.get("equinox")
    if eqx is None:
        return {}
    kind = eqx.nn.MultiheadAttention
    found = jax.tree_util.tree_leaves_with_path(params, is_leaf=lambda x: isinstance(x, kind))
    return {tuple(_key_part(k) for k in path): int(leaf.num_heads)
            for path, leaf in found if isinstance(leaf, kind)}
