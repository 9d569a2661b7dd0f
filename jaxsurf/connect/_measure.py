"""Measuring curves: exact means along a curve, loss barriers, the plane of a
curve, and BatchNorm statistics recomputed for points along it.

Example:
    >>> s = evaluate_curve(fn, curve, data, np.linspace(0, 1, 21), progress=False)
    >>> height, t = barrier(s)
    >>> bool(height >= 0.0), 0.0 <= t <= 1.0
    (True, True)
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _batching as batching, _tree as tree
from jaxsurf._engine.options import Engine, takes_engine
from jaxsurf._state import STATE_POLICIES, StatefulFn, from_float, to_float
from jaxsurf._version import __version__
from jaxsurf.connect._curve import Curve, check_t, end_states
from jaxsurf._evaluate import evaluate_points
from jaxsurf._surface import Surface, metadata_from
from jaxsurf._tree import PyTree

__all__ = ["BatchStatsRecompute", "recompute_batch_stats", "evaluate_curve", "Barrier",
           "barrier", "CurvePlane", "curve_plane", "curve_path", "plane_through"]

_PROBE = 65536.0  # running value used to read a BatchNorm layer's momentum off one update


# --------------------------------------------------------------------------- BatchNorm
def _inputs(data: Any, input_key: str | None) -> Any:
    if isinstance(data, (dict, tuple, list)):
        from jaxsurf._flax import split_batch

        return split_batch(data, input_key)[0]
    return data


def _stat_pairs(stats: Mapping[str, Any], prefix: tuple[str, ...] = ()
                ) -> list[tuple[str, ...]]:
    """Paths of the dicts holding a ``mean`` and a ``var`` (Flax BatchNorm layers)."""
    found = []
    for k, v in stats.items():
        if isinstance(v, Mapping):
            if "mean" in v and "var" in v:
                found.append((*prefix, k))
            else:
                found.extend(_stat_pairs(v, (*prefix, k)))
    return found


def _get(node: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for k in path:
        node = node[k]
    return node


class BatchStatsRecompute:
    """Recomputes a Flax Linen model's BatchNorm statistics for given params.

    Runs the model in training mode (batch statistics, running statistics
    not read) over ``data`` in batches, params untouched, and returns the
    statistics of the whole data set: the running mean of every BatchNorm
    layer is the mean of its inputs over all examples, the running variance
    their variance over all examples (each batch's inputs normalised with
    that batch's statistics, as in training; cf. Garipov et al.'s
    ``update_bn`` and Jordan et al. 2023's REPAIR). One program is compiled
    and reused for every call.

    Args:
        model: a ``flax.linen.Module`` with BatchNorm (``batch_stats``).
        data: inputs ``(N, ...)``, or a batch dict/tuple holding them.
        batch_size: examples per batch (default ``min(N, 500)``); a short last
            batch counts with its size.
        input_key: the dict key of the inputs, if not a common name.
        train_kwargs: keywords putting ``model`` in training mode (default:
            the inverse of its evaluation flags, e.g. ``train=True``).

    Example:
        >>> recompute = BatchStatsRecompute(model, data["x"], batch_size=32)
        >>> stats = recompute(variables_a["params"])
        >>> sorted(stats["BatchNorm_0"])
        ['mean', 'var']
    """

    def __init__(self, model: Any, data: Any, *, batch_size: int | None = None,
                 input_key: str | None = None,
                 train_kwargs: Mapping[str, Any] | None = None) -> None:
        from jaxsurf._flax import eval_mode_kwargs

        x = np.asarray(_inputs(data, input_key))
        self.num_examples = int(x.shape[0])
        self.batch_size = batching.resolve_batch_size(batch_size, self.num_examples)
        self._x = jnp.asarray(x)
        shapes = jax.eval_shape(model.init, jax.random.key(0), self._x[:1])
        if "batch_stats" not in shapes:
            raise ValueError(f"{type(model).__name__} has no batch_stats (no BatchNorm): "
                             f"there are no statistics to recompute")
        self._like = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                            shapes["batch_stats"])
        self._pairs = _stat_pairs(self._like)
        kwargs = dict(train_kwargs if train_kwargs is not None else
                      {k: not v for k, v in eval_mode_kwargs(model.__call__).items()})
        self.model = model

        def updated(params: PyTree, stats: PyTree, xb: jax.Array) -> PyTree:
            _, new = model.apply({"params": params, "batch_stats": stats}, xb, **kwargs,
                                 mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)})
            return new["batch_stats"]

        def momentum(params: PyTree, xb: jax.Array) -> PyTree:
            """Each statistic's momentum m, read off two updates: from running values
            0 and PROBE the new values differ by m * PROBE."""
            zero = updated(params, self._like, xb)
            probe = updated(params, jax.tree_util.tree_map(
                lambda s: jnp.full_like(s, _PROBE), self._like), xb)
            return jax.tree_util.tree_map(lambda z, p: (p - z) / _PROBE, zero, probe)

        def batch_stats(params: PyTree, m: PyTree, xb: jax.Array) -> PyTree:
            # from running values 0 the update is (1 - m) * the batch statistic
            return jax.tree_util.tree_map(lambda z, mm: z / (1.0 - mm),
                                          updated(params, self._like, xb), m)

        self._momentum_program = jax.jit(momentum)
        self._program = jax.jit(batch_stats)
        self._momentum: PyTree | None = None  # a property of the model, read once

    def __call__(self, params: PyTree) -> PyTree:
        """Data-set BatchNorm statistics for ``params`` (same structure as the model's)."""
        sums: dict[tuple[str, ...], list[Any]] = {p: [0.0, 0.0] for p in self._pairs}
        if self._momentum is None:
            self._momentum = self._momentum_program(params, self._x[:self.batch_size])
        for start in range(0, self.num_examples, self.batch_size):
            xb = self._x[start:start + self.batch_size]
            w = int(xb.shape[0])
            stats = jax.device_get(self._program(params, self._momentum, xb))
            for p in self._pairs:
                node = _get(stats, p)
                mean = np.asarray(node["mean"], np.float64)
                sums[p][0] = sums[p][0] + w * mean
                sums[p][1] = sums[p][1] + w * (np.asarray(node["var"], np.float64) + mean ** 2)
        out = jax.tree_util.tree_map(np.asarray, jax.device_get(self._like))
        for p in self._pairs:
            mean = sums[p][0] / self.num_examples
            var = np.maximum(sums[p][1] / self.num_examples - mean ** 2, 0.0)
            node = _get(out, p)
            node["mean"] = mean.astype(node["mean"].dtype)
            node["var"] = var.astype(node["var"].dtype)
        return out


def recompute_batch_stats(model: Any, params: PyTree, data: Any, **options: Any) -> PyTree:
    """BatchNorm statistics of ``model`` at ``params`` over ``data`` (params unchanged).

    One-off form of :class:`BatchStatsRecompute` (which compiles once for
    many params); ``options`` as there.

    Example:
        >>> p = variables_a["params"]
        >>> variables = {"params": p, "batch_stats": recompute_batch_stats(model, p, data)}
    """
    return BatchStatsRecompute(model, data, **options)(params)


# --------------------------------------------------------------------------- evaluation
def resolve_state_policy(state_policy: str | None, recompute_data: Any, states: Any) -> str:
    """The BatchNorm policy of a path through models with state: ``state_policy``, or
    ``"recompute"`` when ``recompute_data`` is given, else ``"interpolate"``; the two
    extra arguments must fit it."""
    policy = state_policy or ("interpolate" if recompute_data is None else "recompute")
    if policy != "recompute" and recompute_data is not None:
        raise ValueError(f"recompute_data= is only used with state_policy='recompute', not "
                         f"{policy!r}")
    if policy != "interpolate" and states is not None:
        raise ValueError(f"states= is only used with state_policy='interpolate', not "
                         f"{policy!r}")
    return policy


def check_ts(ts: Any) -> np.ndarray:
    arr = np.atleast_1d(check_t(ts))
    if arr.ndim != 1 or arr.size < 1 or np.any(np.diff(arr) <= 0):
        raise ValueError("ts must be a strictly increasing 1-D array in [0, 1], e.g. "
                         "np.linspace(0, 1, 21)")
    return arr


def recompute_batches(source: Any, batch_size: int | None) -> list[tuple[Any, int]]:
    """``(batch, num_examples)`` pairs of in-memory ``source`` for ``StatefulFn.recompute``."""
    if not batching.is_in_memory(source):
        raise TypeError("state_policy='recompute' needs in-memory arrays to re-estimate the "
                        "statistics from (a dict/tuple of arrays): data is a stream, so pass "
                        "recompute_data= (e.g. a slice of the training inputs)")
    n = batching.num_examples(source)
    size = batching.resolve_batch_size(batch_size, n)
    return [(jax.tree_util.tree_map(lambda x, s=s: x[s:s + size], source), min(size, n - s))
            for s in range(0, n, size)]


def _plan_curve(fn: Callable, curve: Curve, data: Any, ts: np.ndarray,
                state_policy: str | None, recompute_data: Any,
                states: tuple[PyTree, PyTree] | None, batch_size: int | None
                ) -> tuple[Callable, list[PyTree], np.ndarray, dict[str, Any]]:
    """``(fn, points, coefficients, facts)`` for :func:`evaluate_curve` under a state policy."""
    if state_policy not in (None, *STATE_POLICIES):
        raise ValueError(f"unknown state_policy {state_policy!r}; use one of {STATE_POLICIES} "
                         f"(or None: 'interpolate' for fn from an adapter of a model with "
                         f"state, as js.interpolate; 'recompute' when recompute_data is given)")
    stateful = getattr(fn, "jaxsurf_state", None)
    if not isinstance(stateful, StatefulFn) or not jax.tree_util.tree_leaves(stateful.state):
        if state_policy in ("interpolate", "recompute"):
            raise ValueError(f"state_policy={state_policy!r} needs fn from js.flax.adapt or "
                             f"js.equinox.adapt on a model with state (e.g. BatchNorm); this "
                             f"fn has none, so leave state_policy out (for fn over whole "
                             f"Linen variables use recompute=BatchStatsRecompute(model, x))")
        if recompute_data is not None or states is not None:
            raise ValueError("recompute_data= and states= are for fn from an adapter of a "
                             "model with state (BatchNorm); this fn has none")
        return fn, curve.points, curve.coefficients(ts), {"batch_norm": "as fn holds them"}
    # the default agrees with js.interpolate: on line(a, b) both give the same values
    policy = resolve_state_policy(state_policy, recompute_data, states)
    if policy == "fixed":
        return fn, curve.points, curve.coefficients(ts), {
            "state_policy": "fixed", "batch_norm": "fixed: fn's own state at every t"}
    apply = stateful.apply
    if policy == "recompute":
        if stateful.recompute is None:
            raise ValueError("state_policy='recompute' (or recompute_data=) needs fn from "
                             "js.flax.adapt on a Linen module with a training-mode flag or on "
                             "an NNX model; this model cannot re-estimate its statistics (e.g. "
                             "Equinox): pass state_policy='interpolate' (statistics moved along "
                             "the curve with the weights) or state_policy='fixed' (fn's own "
                             "state at every t)")
        batches = recompute_batches(data if recompute_data is None else recompute_data,
                                     batch_size)
        points = []
        for t in ts:
            params = curve.at(float(t))
            points.append({"params": params,
                           "state": stateful.recompute(params, stateful.state, batches)})
        n = sum(k for _, k in batches)

        def recomputed(pair: PyTree, batch: Any) -> Any:
            return apply(pair["params"], pair["state"], batch)

        return recomputed, points, np.eye(len(ts)), {
            "state_policy": "recompute", "recompute_examples": n,
            "batch_norm": f"recomputed at every t over {n} examples"}
    state_a, state_b = end_states(stateful, curve.params_a, curve.params_b, states)
    dtypes = [getattr(x, "dtype", None) for x in jax.tree_util.tree_leaves(state_a)]
    sa, sb = to_float(state_a), to_float(state_b)
    last = curve.num_bends + 1
    # control point k's state lies on the segment at k / (n + 1): with Bernstein or
    # polychain weights the state is then (1 - t) * state_a + t * state_b at every t
    control_states = [sa, *[jax.tree_util.tree_map(
        lambda x, y, s=k / last: ((1.0 - s) * x + s * y).astype(x.dtype)
        if tree.is_float_leaf(x) else x, sa, sb) for k in range(1, last)], sb]
    points = [{"params": p, "state": s} for p, s in zip(curve.points, control_states)]

    def interpolated(pair: PyTree, batch: Any) -> Any:
        return apply(pair["params"], from_float(pair["state"], dtypes), batch)

    return interpolated, points, curve.coefficients(ts), {
        "state_policy": "interpolate",
        "batch_norm": "interpolated: (1 - t) * state_a + t * state_b"}


@takes_engine("js.connect.evaluate_curve")
def evaluate_curve(fn: Callable[[PyTree, Any], Any], curve: Curve, data: Any, ts: Any, *,
                   state_policy: str | None = None, recompute_data: Any = None,
                   states: tuple[PyTree, PyTree] | None = None,
                   recompute: BatchStatsRecompute | None = None,
                   metadata: Mapping[str, Any] | None = None,
                   engine: Engine = Engine()) -> Surface:
    """Exact data-set means of ``fn`` at ``curve.at(t)`` for every ``t`` in ``ts``.

    Runs on the evaluation engine (:func:`jaxsurf.evaluate_points`: devices,
    resumable ``store``, ``progress``): the points of a curve are linear
    combinations of its control points, ``sum_k w_k(t) theta_k``.

    Model state (BatchNorm statistics), for ``fn`` from :func:`jaxsurf.flax.adapt`
    or :func:`jaxsurf.equinox.adapt` on a model with state (the vocabulary of
    :func:`jaxsurf.interpolate`; see ``docs/connectivity.md``):

    * ``"interpolate"`` (the default, as for :func:`jaxsurf.interpolate`, so
      that ``evaluate_curve(fn, line(a, b), ...)`` and ``js.interpolate(fn,
      a, b, ...)`` give the same values): the statistics move along the
      curve with the weights, ``(1 - t) * state_a + t * state_b``, so both
      end points are exactly their models; each end's state is the one its
      adapter returned with it (or ``states=(state_a, state_b)``).
    * ``"recompute"`` (the default when ``recompute_data`` is given): at
      every ``t`` the statistics are re-estimated from ``recompute_data``
      (default: ``data``) by training-mode passes, params untouched; Flax
      Linen and NNX models (Garipov et al.'s choice for trained curves).
      The points then go to the engine one control point each.
    * ``"fixed"``: ``fn``'s own state (the model it was adapted from) at every ``t``.

    A ``fn`` without state ignores all this. The older
    ``recompute=BatchStatsRecompute(model, x)`` still works for ``fn`` over
    whole Linen variables (``fn({"params": p, "batch_stats": s}, batch)``).

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means (with
            ``recompute``: ``fn(variables, batch)``).
        curve: a :class:`Curve` (from :func:`fit_curve`, :func:`line`, ...).
        data: in-memory arrays or an iterable of batches.
        ts: strictly increasing values in [0, 1].
        state_policy: ``"interpolate"``, ``"recompute"``, ``"fixed"`` or
            ``None`` (``"interpolate"`` for a stateful ``fn``, ``"recompute"``
            when ``recompute_data`` is given).
        recompute_data: in-memory arrays the statistics are re-estimated from
            (default ``data``, which must then be in memory; pass training
            inputs to evaluate test data with training statistics).
        states: ``(state_a, state_b)`` for ``"interpolate"`` when the curve's
            end points are not the adapters' own arrays (e.g. a loaded curve).
        recompute: a :class:`BatchStatsRecompute` (for ``fn`` over Linen
            variables), or ``None``; not with ``state_policy``.
        metadata: as in :func:`jaxsurf.evaluate_line`.
        engine: a :class:`jaxsurf.Engine`, or its options as keywords
            (``batch_size``, ``store``, ``progress``, ``chunk_size``, ...), as in
            :func:`jaxsurf.evaluate_line` (``batch_size`` also splits
            ``recompute_data``).

    Returns:
        A line :class:`jaxsurf.Surface` with ``alphas = ts`` and
        ``metadata["kind"] == "curve"`` (``metadata["state_policy"]`` for a
        stateful ``fn``).

    Example:
        >>> fn, pa = js.flax.adapt(model, variables_a)
        >>> _, pb = js.flax.adapt(model, variables_b)
        >>> s = evaluate_curve(fn, js.connect.line(pa, pb), data, np.linspace(0, 1, 5),
        ...                    recompute_data={k: v[:64] for k, v in data.items()},
        ...                    progress=False)
        >>> s.metadata["state_policy"], s.metrics["loss"].shape
        ('recompute', (5,))
    """
    if not isinstance(curve, Curve):
        raise TypeError(f"curve must be a js.connect.Curve, got {type(curve).__name__}")
    ts = check_ts(ts)
    start = time.perf_counter()
    if recompute is None:
        fn, points, coefficients, facts = _plan_curve(fn, curve, data, ts, state_policy,
                                                      recompute_data, states,
                                                      engine.batch_size)
    else:
        if state_policy is not None or recompute_data is not None or states is not None:
            raise ValueError("recompute= (a BatchStatsRecompute, for fn over Linen variables) "
                             "cannot be combined with state_policy=, recompute_data= or "
                             "states= (for fn from an adapter); pass one or the other")
        if not isinstance(recompute, BatchStatsRecompute):
            raise TypeError(f"recompute must be a js.connect.BatchStatsRecompute, got "
                            f"{type(recompute).__name__}; for fn from js.flax.adapt use "
                            f"state_policy='recompute' and recompute_data=")
        points = []
        for t in ts:
            params = curve.at(float(t))
            points.append({"params": params, "batch_stats": recompute(params)})
        coefficients = np.eye(len(ts))
        facts = {"batch_norm": f"recomputed at every t over {recompute.num_examples} examples"}
    values = evaluate_points(fn, None, points, data, coefficients, engine=engine)
    meta = {"kind": "curve", "curve_kind": curve.kind, "num_bends": curve.num_bends,
            "params_a_fingerprint": tree.fingerprint(curve.params_a),
            "params_b_fingerprint": tree.fingerprint(curve.params_b),
            **facts,
            "num_examples": batching.num_examples(data) if batching.is_in_memory(data)
            else "stream",
            "axis_labels": ["t (0: params_a, 1: params_b)"],
            "seconds": time.perf_counter() - start, "library_version": __version__,
            "store": None if engine.store is None else os.fspath(engine.store),
            **metadata_from(metadata)}
    return Surface(ts, None, values, meta)


# --------------------------------------------------------------------------- barrier
class Barrier(NamedTuple):
    """``height``: ``max_t [L(t) - ((1 - t) L(0) + t L(1))]``; ``t``: where it is reached."""

    height: float
    t: float


def barrier(surface: Surface, metric: str = "loss") -> Barrier:
    """The loss barrier of a path: the largest excess of ``metric`` over the
    straight line between its end values (Frankle et al. 2020; Entezari et al. 2022).

    Works on any line surface whose coordinates include 0 and 1 (the end
    points): :func:`evaluate_curve`, :func:`evaluate_path` and
    :func:`jaxsurf.interpolate` surfaces
    (points outside [0, 1] are ignored). The end points count, so the
    barrier is never negative; a convex loss has barrier 0.

    Args:
        surface: a line :class:`jaxsurf.Surface`.
        metric: which metric. ``"error"`` is built in: ``1 - accuracy`` when
            the surface has no ``error`` of its own, so the error barrier (the
            largest rise of the error rate above the straight line between the
            ends, Frankle et al. 2020) needs no extra metric. (The barrier of an
            ``accuracy`` itself is its largest *excess*, not its drop.)

    Returns:
        ``Barrier(height, t)``.

    Example:
        >>> s = js.interpolate(fn, params_a, params_b, data, np.linspace(0, 1, 21),
        ...                    progress=False)
        >>> height, t = barrier(s)
        >>> bool(height > 0.0)   # two minima from different seeds
        True
        >>> bool(barrier(s, "error").height >= 0.0)   # 1 - accuracy
        True
    """
    if not isinstance(surface, Surface) or surface.betas is not None:
        raise ValueError("barrier needs a line Surface (from js.connect.evaluate_curve, "
                         "js.connect.evaluate_path or js.interpolate), not a plane")
    if metric == "error" and "error" not in surface.metrics:
        if "accuracy" not in surface.metrics:
            raise KeyError(f"metric 'error' is 1 - accuracy, but the surface has no "
                           f"'accuracy'; it has {surface.metric_names}")
        values = 1.0 - np.asarray(surface.metrics["accuracy"], np.float64)
    elif metric not in surface.metrics:
        raise KeyError(f"surface has no metric {metric!r}; it has {surface.metric_names} "
                       f"(and 'error', 1 - accuracy, where there is an accuracy)")
    else:
        values = np.asarray(surface.metrics[metric], np.float64)
    ts = np.asarray(surface.alphas, np.float64)
    ends = [int(np.argmin(np.abs(ts - e))) for e in (0.0, 1.0)]
    if any(abs(ts[i] - e) > 1e-9 for i, e in zip(ends, (0.0, 1.0))):
        raise ValueError(f"barrier needs the end points t = 0 and t = 1 among the coordinates "
                         f"(got {ts.min():.4g} .. {ts.max():.4g}); include them in the grid")
    inside = (ts >= -1e-12) & (ts <= 1 + 1e-12)
    if not np.all(np.isfinite(values[inside])):
        raise ValueError(f"metric {metric!r} is not finite on the path; a barrier is undefined")
    l0, l1 = values[ends[0]], values[ends[1]]
    t_in, v_in = ts[inside], values[inside]
    excess = v_in - ((1.0 - t_in) * l0 + t_in * l1)
    k = int(np.argmax(excess))
    return Barrier(float(max(excess[k], 0.0)), float(t_in[k]))


# --------------------------------------------------------------------------- plane
class CurvePlane(NamedTuple):
    """A plane through models: a curve's end points and first bend
    (:func:`curve_plane`) or any three models (:func:`plane_through`).

    ``origin`` is ``params_a`` (``p0``); ``d1`` (towards ``params_b``, ``p1``)
    and ``d2`` are orthonormal; ``coords[k]`` are the coordinates of control
    point ``k`` (of ``p0, p1, p2``) projected on the plane (``coords[0] = (0,
    0)``, ``coords[-1] = (|b - a|, 0)`` for a curve).
    """

    origin: PyTree
    d1: PyTree
    d2: PyTree
    coords: np.ndarray


def curve_plane(curve: Curve) -> CurvePlane:
    """The plane of Garipov et al.'s Figure 1: through ``params_a``, ``params_b``
    and the first bend, with orthonormal directions.

    Evaluate it with ``js.evaluate_plane(fn, plane.origin, plane.d1, plane.d2,
    data, alphas, betas)`` and draw it with
    ``js.plot.connectivity_plane(surface, curve_path(curve, plane.coords, ts))``.
    A curve with one bend lies in this plane; with more bends, ``curve_path``
    is the projection of the curve on it.

    Args:
        curve: a :class:`Curve` with at least one bend.

    Returns:
        :class:`CurvePlane` ``(origin, d1, d2, coords)``.

    Example:
        >>> origin, d1, d2, coords = curve_plane(curve)
        >>> coords.shape          # (a, bend, b) in the plane's coordinates
        (3, 2)
    """
    if curve.num_bends < 1:
        raise ValueError("curve_plane needs a curve with at least one bend (a straight line "
                         "spans no plane)")
    a = curve.params_a
    try:
        origin, d1, d2, _ = plane_through(a, curve.params_b, curve.bends[0])
    except ValueError as err:
        if "p0 and p1" in str(err):
            raise ValueError("params_a and params_b are equal: the plane is undefined") from None
        raise ValueError("the first bend lies on the line through params_a and params_b: "
                         "the plane is undefined (was the curve fitted?)") from None
    coords = np.array([[float(tree.dot(tree.sub(p, a), d1)),
                        float(tree.dot(tree.sub(p, a), d2))] for p in curve.points])
    coords[0] = 0.0
    return CurvePlane(origin, d1, d2, coords)


def curve_path(curve: Curve, coords: np.ndarray, ts: Any) -> np.ndarray:
    """Plane coordinates ``(len(ts), 2)`` of the curve at ``ts`` (from
    :func:`curve_plane`'s ``coords``; exact for one bend, a projection for more).

    Example:
        >>> cp = curve_plane(curve)
        >>> path = curve_path(curve, cp.coords, np.linspace(0, 1, 50))
        >>> path.shape
        (50, 2)
    """
    coords = np.asarray(coords, np.float64)
    if coords.shape != (curve.num_bends + 2, 2):
        raise ValueError(f"coords must have shape ({curve.num_bends + 2}, 2), one row per "
                         f"control point, got {coords.shape}")
    return curve.coefficients(np.atleast_1d(ts)) @ coords


def plane_through(p0: PyTree, p1: PyTree, p2: PyTree) -> CurvePlane:
    """The plane through three models, with orthonormal directions.

    ``origin`` is ``p0``; ``d1`` points from ``p0`` to ``p1``; ``d2`` is the
    part of ``p2 - p0`` orthogonal to ``d1``, normalised (Gram-Schmidt, as in
    Garipov et al.'s Figure 1; :func:`curve_plane` is this plane for a
    curve's end points and bend). ``coords`` holds the three points'
    coordinates ``(3, 2)``: ``(0, 0)``, ``(|p1 - p0|, 0)``, and ``p2``'s.

    Args:
        p0, p1, p2: params pytrees of the same structure.

    Returns:
        :class:`CurvePlane` ``(origin, d1, d2, coords)``; evaluate it with
        ``js.evaluate_plane(fn, origin, d1, d2, data, alphas, betas)``.

    Example:
        >>> p0, p1, p2 = ({"w": jnp.array(v)} for v in ([0.0, 0.0], [2.0, 0.0], [1.0, 3.0]))
        >>> plane_through(p0, p1, p2).coords.tolist()
        [[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]]
    """
    tree.check_like(p1, p0, name="p1", reference_name="p0")
    tree.check_like(p2, p0, name="p2", reference_name="p0")
    u = tree.sub(p1, p0)
    v = tree.sub(p2, p0)
    nu = float(tree.norm(u))
    if nu == 0.0:
        raise ValueError("p0 and p1 are equal: the plane through them is undefined")
    d1 = tree.scale(u, 1.0 / nu)
    w = tree.axpy(-float(tree.dot(v, d1)), d1, v)
    nw = float(tree.norm(w))
    # float32 rounding leaves a residual of ~1e-7 |p2 - p0| on a line
    if nw <= 1e-5 * float(tree.norm(v)) or nw == 0.0:
        raise ValueError("p2 lies on the line through p0 and p1: the three points span no "
                         "plane")
    d2 = tree.scale(w, 1.0 / nw)
    coords = np.array([[0.0, 0.0], [nu, 0.0],
                       [float(tree.dot(v, d1)), float(tree.dot(v, d2))]])
    return CurvePlane(p0, d1, d2, coords)
