"""Model state (BatchNorm running statistics) that travels with adapted params.

An adapter (:func:`jaxsurf.flax.adapt`, :func:`jaxsurf.equinox.adapt`) returns
``(fn, params)``; the model's state (Linen ``batch_stats``, NNX ``BatchStat``,
an ``eqx.nn.State``) is not part of ``params``, so directions, Hessians and
PCA never move it. Two facts make the state of *each* adapted model
recoverable:

* ``fn.jaxsurf_state`` is a :class:`StatefulFn`: the state ``fn`` holds fixed,
  and ``apply(params, state, batch)`` to evaluate with another state;
* every adapter records which state came with the params it returned,
  keyed by the identity of their (immutable) leaf arrays, held by weak
  references: the record disappears with the arrays, and a params pytree
  with any other leaf is simply unknown. No values are cached.

:func:`plan_interpolation` uses both to evaluate ``interpolate(fn, pa, pb)``
with the statistics interpolated along with the weights, so that each end
point reproduces its model exactly.

Example:
    >>> fn, pa = js.flax.adapt(model, variables_a)
    >>> _, pb = js.flax.adapt(model, variables_b)
    >>> s = js.interpolate(fn, pa, pb, data, [0.0, 1.0], progress=False)
    >>> fn_b, _ = js.flax.adapt(model, variables_b)     # each end point its own stats:
    >>> bool(np.isclose(s.metrics["loss"][1], fn_b(pb, data)["loss"]))
    True
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _tree as tree
from jaxsurf._tree import PyTree

__all__ = ["StatefulFn", "register", "state_of", "bind", "lookup", "plan_interpolation",
           "STATE_POLICIES", "OF_PARAMS", "OF_FN", "NO_STATE"]

STATE_POLICIES = ("interpolate", "fixed", "recompute")

# what metadata["model_state"] says about the state a Surface was evaluated with
OF_PARAMS = "the params' own (the state their adapter returned them with)"
OF_FN = ("fn's own (the params were not returned unchanged by an adapter, so no state is "
         "known for them)")
NO_STATE = "none (fn carries no model state from an adapter)"

_RECORDS: dict[int, tuple[tuple[weakref.ref, ...], Any]] = {}
_AMBIGUOUS = object()  # the same leaves were adapted with different states
_MISSING = object()


@dataclass(frozen=True)
class StatefulFn:
    """What an adapter attaches to its ``fn`` as ``fn.jaxsurf_state``.

    ``state`` is the state ``fn`` evaluates with; ``apply(params, state,
    batch)`` evaluates with any state of the same structure.
    """

    state: PyTree
    params: PyTree
    apply: Callable[[PyTree, PyTree, Any], Any]
    # recompute(params, state, batches) -> the state re-estimated from the batches
    recompute: Callable[[PyTree, PyTree, list], PyTree] | None = None
    # train_metrics(params, state, batch) -> fn's metrics with the model in training
    # mode (normalization by the batch's own statistics, dropout off); None: no such mode
    train_metrics: Callable[[PyTree, PyTree, Any], Any] | None = None


def register(params: PyTree, state: PyTree) -> None:
    """Records that ``state`` belongs to ``params`` (by the identity of its leaves).

    Leaves that cannot be weakly referenced (Python numbers) make the params
    untrackable; then nothing is recorded.
    """
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        return
    try:
        refs = tuple(weakref.ref(x) for x in leaves)
    except TypeError:
        return
    key = id(leaves[0])

    def forget(_: Any, key: int = key) -> None:
        entry = _RECORDS.get(key)
        if entry is not None and entry[0][0]() is None:
            _RECORDS.pop(key, None)

    refs = (weakref.ref(leaves[0], forget),) + refs[1:]
    before = _recorded(leaves)
    if before is not _MISSING and (before is _AMBIGUOUS or not _same(before, state)):
        state = _AMBIGUOUS  # e.g. one params dict adapted with two sets of statistics
    _RECORDS[key] = (refs, state)


def _recorded(leaves: list) -> Any:
    """The state recorded for exactly these leaves (maybe ``_AMBIGUOUS``), else ``_MISSING``."""
    entry = _RECORDS.get(id(leaves[0]))
    if entry is None:
        return _MISSING
    refs, state = entry
    if len(refs) != len(leaves) or any(r() is not x for r, x in zip(refs, leaves)):
        return _MISSING
    return state


def _same(a: PyTree, b: PyTree) -> bool:
    """Whether two states hold the same values (identical leaves, or equal arrays)."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        if x is y:
            continue
        if np.shape(x) != np.shape(y) or not np.array_equal(_values(x), _values(y)):
            return False
    return True


def _values(x: Any) -> np.ndarray:
    if jnp.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def state_of(params: PyTree) -> tuple[bool, PyTree]:
    """``(True, state)`` if an adapter returned exactly these leaves, else ``(False, None)``."""
    leaves = jax.tree_util.tree_leaves(params)
    state = _recorded(leaves) if leaves else _MISSING
    if state is _MISSING or state is _AMBIGUOUS:
        return False, None
    return True, state


def lookup(params: PyTree, own: PyTree) -> tuple[PyTree, str]:
    """``(state, origin)``: the state to evaluate ``params`` with, given ``own``, the
    state ``fn`` holds. The state an adapter returned with ``params`` when there is
    one (in ``own``'s container, so Equinox state markers match), else ``own``.

    Traced params (under ``jit``) are never found: resolve the state before
    tracing, with :func:`bind`.

    Raises:
        ValueError: the params' state does not fit ``fn``'s (another model).
    """
    found, state = state_of(params)
    if not found:
        return own, OF_FN
    if state is own:
        return own, OF_PARAMS
    leaves, mine = jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(own)
    if len(leaves) != len(mine) or any(np.shape(x) != np.shape(y) or
                                       getattr(x, "dtype", None) != getattr(y, "dtype", None)
                                       for x, y in zip(leaves, mine)):
        raise ValueError(
            "the params were adapted with a model state (BatchNorm statistics) that does not "
            "fit fn's model (other leaves, shapes or dtypes): evaluate them with the fn their "
            "own adapter returned (fn_b, pb = js.flax.adapt(model_b, variables_b))")
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(own), leaves), OF_PARAMS


def bind(fn: Callable, params: PyTree | None) -> tuple[Callable, str]:
    """``(fn_for_params, origin)``: ``fn`` evaluating ``params`` with *their* model state.

    After ``fn, pa = adapt(A); _, pb = adapt(B)``, ``fn`` holds A's BatchNorm
    statistics; ``bind(fn, pb)`` returns a function that evaluates with B's,
    the state B's adapter recorded for ``pb``. Every entry point that traces
    ``fn`` (the evaluation engine, ``js.dataset_mean``, the Hessian and
    sharpness functions) calls this first, since traced params cannot be
    looked up. ``origin`` is what ``metadata["model_state"]`` records:
    :data:`OF_PARAMS`, :data:`OF_FN` (params unknown to every adapter, e.g.
    computed arrays: ``fn``'s own state is used) or :data:`NO_STATE`.

    Example:
        >>> fn, pa = js.flax.adapt(model, variables_a)
        >>> _, pb = js.flax.adapt(model, variables_b)
        >>> fn_b, origin = bind(fn, pb)       # model B's weights with B's statistics
        >>> origin == OF_PARAMS
        True
    """
    stateful = getattr(fn, "jaxsurf_state", None)
    if not isinstance(stateful, StatefulFn) or not jax.tree_util.tree_leaves(stateful.state):
        return fn, NO_STATE
    if params is None:
        return fn, OF_FN
    state, origin = lookup(params, stateful.state)
    if state is stateful.state:
        return fn, origin
    apply = stateful.apply

    def bound(p: PyTree, batch: Any) -> Any:
        return apply(p, state, batch)

    bound.jaxsurf_state = replace(stateful, state=state,  # type: ignore[attr-defined]
                                  params=params)
    return bound, origin


def state_for(stateful: StatefulFn, params: PyTree, name: str) -> PyTree:
    found, state = state_of(params)
    if found:
        return state
    if params is stateful.params:
        return stateful.state
    raise ValueError(
        f"{name} was not returned by a jaxsurf adapter, so its model state (BatchNorm "
        f"statistics) is unknown; pass the params from js.flax.adapt / js.equinox.adapt "
        f"unchanged, or state_policy='fixed' to hold fn's own state along the whole path")


def plan_interpolation(fn: Callable, params_a: PyTree, params_b: PyTree,
                       state_policy: str | None) -> tuple[Callable, PyTree, PyTree, dict]:
    """``(fn, a, b, facts)`` to interpolate with: for a stateful adapted ``fn`` and
    ``state_policy`` ``"interpolate"`` (the default, ``None``), ``a`` and ``b``
    carry each model's state and ``fn`` evaluates ``{"params", "state"}`` pairs,
    so that ``(1 - alpha) a + alpha b`` moves the statistics with the weights.
    ``"fixed"``: ``fn``'s own state everywhere (model A's statistics at every alpha).

    Example:
        >>> fn, pa = js.flax.adapt(model, variables_a)
        >>> _, pb = js.flax.adapt(model, variables_b)
        >>> fn2, a, b, facts = plan_interpolation(fn, pa, pb, None)
        >>> sorted(a)
        ['params', 'state']
    """
    if state_policy not in (None, *STATE_POLICIES):
        raise ValueError(f"unknown state_policy {state_policy!r}; use one of "
                         f"{STATE_POLICIES} (or None: 'interpolate' for stateful models)")
    stateful = getattr(fn, "jaxsurf_state", None)
    if not isinstance(stateful, StatefulFn) or not jax.tree_util.tree_leaves(stateful.state):
        if state_policy == "interpolate":
            raise ValueError("state_policy='interpolate' needs fn from js.flax.adapt or "
                             "js.equinox.adapt on a model with state (e.g. BatchNorm)")
        return fn, params_a, params_b, {}
    if state_policy == "fixed":
        return fn, params_a, params_b, {"state_policy": "fixed",
                                        "model_state": "fn's own, fixed along the path"}
    if state_policy == "recompute":
        raise ValueError("state_policy='recompute' is evaluated point by point: call "
                         "js.interpolate, which handles it")
    state_a = state_for(stateful, params_a, "params_a")
    state_b = state_for(stateful, params_b, "params_b")
    tree.check_like(jax.tree_util.tree_leaves(state_b), jax.tree_util.tree_leaves(state_a),
                    name="the state of params_b", reference_name="the state of params_a")
    # same leaves; give b's state a's container (Equinox state markers may differ)
    state_b = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(state_a),
                                           jax.tree_util.tree_leaves(state_b))
    apply = stateful.apply
    dtypes = [getattr(x, "dtype", None) for x in jax.tree_util.tree_leaves(state_a)]

    def with_state(pair: PyTree, batch: Any) -> Any:
        return apply(pair["params"], from_float(pair["state"], dtypes), batch)

    return (with_state, {"params": params_a, "state": to_float(state_a)},
            {"params": params_b, "state": to_float(state_b)},
            {"state_policy": "interpolate", "model_state": "interpolated between the states "
             "of params_a and params_b, (1 - alpha) * state_a + alpha * state_b"})


def _countable(dtype: Any) -> bool:
    return dtype is not None and (jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_)


def to_float(state: PyTree) -> PyTree:
    """Integer and bool state leaves (step counters, first-call flags) as float32, so
    that they are interpolated too and each end point keeps its own."""
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x, jnp.float32) if _countable(getattr(x, "dtype", None)) else x,
        state)


def from_float(state: PyTree, dtypes: list[Any]) -> PyTree:
    leaves, treedef = jax.tree_util.tree_flatten(state)
    back = [(x > 0.5) if dt == jnp.bool_ else jnp.round(x).astype(dt) if _countable(dt) else x
            for x, dt in zip(leaves, dtypes)]
    return jax.tree_util.tree_unflatten(treedef, back)


def estimate_from_updates(update: Callable[[PyTree, Any], PyTree], state: PyTree,
                          batches: list[tuple[Any, int]]) -> PyTree:
    """Population statistics from a momentum update ``new = m * old + (1 - m) * stat``
    (Flax's BatchNorm): running it from zeros and from ones gives ``m`` and the
    batch statistic for every entry; the result is their mean over the batches,
    weighted by size (a cumulative average, as PyTorch's ``momentum=None``).
    Float leaves the update leaves alone keep their value in ``state``.

    Args:
        update: ``update(start_state, inputs) -> state after one training-mode pass``.
        state: the current state (its structure, and the values kept).
        batches: ``(inputs, num_examples)`` pairs.
    """
    is_float = lambda x: jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
    zeros = jax.tree_util.tree_map(lambda x: jnp.zeros_like(x) if is_float(x) else x, state)
    ones = jax.tree_util.tree_map(lambda x: jnp.ones_like(x) if is_float(x) else x, state)
    total, count = None, 0
    for inputs, n in batches:
        o0, o1 = update(zeros, inputs), update(ones, inputs)

        def stat(a: Any, b: Any, old: Any, n: int = n) -> Any:
            if not is_float(old):
                return old
            keep = 1.0 - (b - a)  # 1 - m
            moved = jnp.abs(keep) > 1e-6
            return jnp.where(moved, a / jnp.where(moved, keep, 1.0), old) * n

        part = jax.tree_util.tree_map(stat, o0, o1, state)
        total = part if total is None else jax.tree_util.tree_map(
            lambda t, p, old: t + p if is_float(old) else old, total, part, state)
        count += n
    if total is None:
        raise ValueError("state_policy='recompute' needs data to estimate the statistics "
                         "from; recompute_data is empty")
    return jax.tree_util.tree_map(lambda t, old: (t / count).astype(old.dtype)
                                  if is_float(old) else old, total, state)


def interpolate_recomputed(fn: Callable, params_a: PyTree, params_b: PyTree, data: Any,
                           alphas: Any, recompute_data: Any, batch_size: int | None,
                           info: dict, metadata: Any, options: dict,
                           evaluate_points: Callable[..., Any]) -> Any:
    """``js.interpolate`` with ``state_policy="recompute"``: at every alpha the
    statistics are re-estimated from ``recompute_data`` (training-mode passes),
    then the point is evaluated exactly on ``data`` with ``evaluate_points``
    (:func:`jaxsurf.evaluate.evaluate_points`, passed in by its caller: this
    module sits below the evaluators and does not import them)."""
    from jaxsurf import _batching as batching
    from jaxsurf._version import __version__
    from jaxsurf._surface import Surface, metadata_from

    stateful = getattr(fn, "jaxsurf_state", None)
    if not isinstance(stateful, StatefulFn) or stateful.recompute is None:
        raise ValueError("state_policy='recompute' needs fn from js.flax.adapt on a Linen or "
                         "NNX model with BatchNorm; for other models use 'interpolate' or "
                         "'fixed'")
    if options.get("store") is not None:
        raise ValueError("state_policy='recompute' does not support store=")
    source = data if recompute_data is None else recompute_data
    if not batching.is_in_memory(source):
        raise TypeError("recompute_data must be in-memory arrays (a dict/tuple of arrays)")
    n = int(jax.tree_util.tree_leaves(source)[0].shape[0])
    size = batching.resolve_batch_size(batch_size, n)
    batches = [(jax.tree_util.tree_map(lambda x, s=s: x[s:s + size], source),
                min(size, n - s)) for s in range(0, n, size)]

    def pair_fn(pair: PyTree, batch: Any) -> Any:
        return stateful.apply(pair["params"], pair["state"], batch)

    values: dict[str, list[float]] = {}
    for a in np.asarray(alphas, np.float64):
        point = jax.tree_util.tree_map(
            lambda x, y, a=a: ((1.0 - a) * x.astype(jnp.float32) + a * y.astype(jnp.float32)
                               ).astype(x.dtype) if tree.is_float_leaf(x) else x,
            params_a, params_b)
        state = stateful.recompute(point, stateful.state, batches)
        origin = {"params": point, "state": state}
        still = jax.tree_util.tree_map(
            lambda x: jnp.zeros_like(x) if tree.is_float_leaf(x) else x, origin)
        out = evaluate_points(pair_fn, origin, [still], data, [[0.0]],
                              batch_size=batch_size, progress=False,
                              **{k: v for k, v in options.items() if k != "progress"})
        for name, v in out.items():
            values.setdefault(name, []).append(float(v[0]))
    meta = {"kind": "interpolation", **info, "state_policy": "recompute",
            "model_state": "recomputed at every alpha from recompute_data",
            "recompute_examples": n, "library_version": __version__, **metadata_from(metadata)}
    return Surface(np.asarray(alphas), None, {k: np.asarray(v, np.float32)
                                              for k, v in values.items()}, meta)
