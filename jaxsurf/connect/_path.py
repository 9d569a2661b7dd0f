"""Exact means along any path ``t -> params`` (a SLERP, a merge schedule, a curve).

Example:
    >>> path = lambda t: js.connect.slerp(params_a, params_b, t)
    >>> s = evaluate_path(fn, path, data, np.linspace(0, 1, 5), progress=False)
    >>> s.metadata["kind"], s.metrics["loss"].shape
    ('path', (5,))
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Mapping

import jax
import numpy as np

from jaxsurf import _batching as batching, _tree as tree, _validate
from jaxsurf._engine.options import Engine, takes_engine
from jaxsurf._evaluate import evaluate_points
from jaxsurf._state import STATE_POLICIES, StatefulFn, from_float, to_float
from jaxsurf._surface import Surface, metadata_from
from jaxsurf._tree import PyTree
from jaxsurf._version import __version__
from jaxsurf.connect._curve import Curve, end_states
from jaxsurf.connect._measure import check_ts, recompute_batches, resolve_state_policy

__all__ = ["evaluate_path"]


def _points(path: Callable[[float], PyTree], ts: np.ndarray) -> list[PyTree]:
    points = []
    for t in ts:
        try:
            p = path(float(t))
        except Exception as err:
            err.add_note(f"raised by path({float(t)!r}) in js.connect.evaluate_path")
            raise
        if points:
            tree.check_like(p, points[0], name=f"path({float(t):.6g})",
                            reference_name=f"path({float(ts[0]):.6g})")
        points.append(p)
    return points


def _fingerprint(value: Any) -> Any:
    if isinstance(value, str):
        if not value:
            raise ValueError("path_fingerprint must be a non-empty string or dict")
        return value
    if isinstance(value, Mapping):
        return _validate.json_safe(value, "path_fingerprint")
    raise TypeError(f"path_fingerprint must be a string or a JSON-serialisable dict naming "
                    f"the path (e.g. {{'path': 'slerp', 'a': 'run1', 'b': 'run2'}}), got "
                    f"{type(value).__name__}")


@takes_engine("js.connect.evaluate_path")
def evaluate_path(fn: Callable[[PyTree, Any], Any], path: Callable[[float], PyTree] | Curve,
                  data: Any, ts: Any, *, state_policy: str | None = None,
                  recompute_data: Any = None, states: tuple[PyTree, PyTree] | None = None,
                  path_fingerprint: str | Mapping[str, Any] | None = None,
                  metadata: Mapping[str, Any] | None = None,
                  engine: Engine = Engine()) -> Surface:
    """Exact data-set means of ``fn`` at ``path(t)`` for every ``t`` in ``ts``.

    ``path`` is any callable ``t -> params`` (for ``t`` in [0, 1]): a SLERP
    (``lambda t: js.connect.slerp(pa, pb, t)``), a merge schedule
    (``lambda t: js.connect.merge(base, fts, method="ties", scale=t)``), a
    fitted :class:`Curve` (its ``at``), a path through aligned networks.
    The points are computed on the host, then evaluated together on the
    evaluation engine (:func:`jaxsurf.evaluate_points`: one compilation,
    devices, data parallelism, ``store``, ``progress``), each value an exact
    data-set mean. All ``len(ts)`` points are held at once (their memory is
    ``len(ts)`` times the params').

    **Stores.** A ``store`` is keyed by the points themselves (their bytes),
    the grid ``ts``, the data and ``path_fingerprint``: a rerun recomputes
    the path's points (cheap) and evaluates only those not yet stored; a
    path that gives other points, or another ``path_fingerprint``, is refused
    by the store rather than mixed with it. Name the path with
    ``path_fingerprint`` (a string or a JSON dict) when what makes it is not
    in the points (e.g. two merge schedules that happen to coincide).

    **Model state** (BatchNorm statistics), for ``fn`` from an adapter of a
    model with state, as in :func:`evaluate_curve`: ``"interpolate"`` (the
    default) gives the point at ``t`` the state ``(1 - t) * state_0 + t *
    state_1`` of the path's end points (the states their adapters returned
    with ``path(0)`` and ``path(1)``, or ``states=``); ``"recompute"`` (the
    default when ``recompute_data`` is given) re-estimates the statistics at
    every ``t`` from ``recompute_data`` (default ``data``) by training-mode
    passes (Flax Linen and NNX); ``"fixed"``: ``fn``'s own state at every
    ``t``. A merged model's statistics are rarely either end's: use
    ``"recompute"`` for merges of BatchNorm nets.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means.
        path: a callable ``t -> params`` or a :class:`Curve`.
        data: in-memory arrays or an iterable of batches.
        ts: strictly increasing values in [0, 1] (include 0 and 1 for
            :func:`barrier`).
        state_policy: ``"interpolate"``, ``"recompute"``, ``"fixed"`` or
            ``None`` (see above).
        recompute_data: in-memory arrays the statistics are re-estimated from.
        states: ``(state_0, state_1)``: the end points' states for
            ``"interpolate"`` when ``path(0)``/``path(1)`` are not an adapter's
            own arrays.
        path_fingerprint: a string or JSON dict naming the path, mixed into a
            ``store``'s key and kept in ``metadata["path_fingerprint"]``.
        metadata: extra JSON-serialisable facts to keep.
        engine: a :class:`jaxsurf.Engine`, or its options as keywords
            (``batch_size``, ``store``, ``progress``, ``devices``, ``mesh``,
            ``chunk_size``, ``compute_dtype`` ...), as in :func:`jaxsurf.evaluate_line`.

    Returns:
        A line :class:`jaxsurf.Surface` with ``alphas = ts`` and
        ``metadata["kind"] == "path"``; :func:`barrier` measures it.

    Example:
        >>> ts = np.linspace(0, 1, 11)
        >>> s = evaluate_path(fn, lambda t: js.connect.slerp(params_a, params_b, t), data, ts,
        ...                   path_fingerprint="slerp a-b", progress=False)
        >>> bool(js.connect.barrier(s).height >= 0.0), s.metadata["path_fingerprint"]
        (True, 'slerp a-b')
    """
    if isinstance(path, Curve):
        curve = path
        path = curve.at
    if not callable(path):
        raise TypeError(f"path must be a callable t -> params (or a js.connect.Curve), got "
                        f"{type(path).__name__}")
    ts = check_ts(ts)
    if state_policy not in (None, *STATE_POLICIES):
        raise ValueError(f"unknown state_policy {state_policy!r}; use one of {STATE_POLICIES} "
                         f"(or None)")
    fingerprint = None if path_fingerprint is None else _fingerprint(path_fingerprint)
    start = time.perf_counter()
    points = _points(path, ts)
    ends = (points[0] if ts[0] == 0.0 else path(0.0),
            points[-1] if ts[-1] == 1.0 else path(1.0))
    facts: dict[str, Any] = {}
    stateful = getattr(fn, "jaxsurf_state", None)
    has_state = isinstance(stateful, StatefulFn) and bool(jax.tree_util.tree_leaves(
        stateful.state))
    if not has_state:
        if state_policy in ("interpolate", "recompute"):
            raise ValueError(f"state_policy={state_policy!r} needs fn from js.flax.adapt or "
                             f"js.equinox.adapt on a model with state (e.g. BatchNorm); this "
                             f"fn has none, so leave state_policy out")
        if recompute_data is not None or states is not None:
            raise ValueError("recompute_data= and states= are for fn from an adapter of a "
                             "model with state (BatchNorm); this fn has none")
        run_fn, run_points = fn, points
    else:
        assert isinstance(stateful, StatefulFn)
        policy = resolve_state_policy(state_policy, recompute_data, states)
        apply = stateful.apply
        if policy == "fixed":
            run_fn, run_points = fn, points
            facts = {"state_policy": "fixed", "batch_norm": "fixed: fn's own state at every t"}
        elif policy == "recompute":
            if stateful.recompute is None:
                raise ValueError("state_policy='recompute' needs fn from js.flax.adapt on a "
                                 "Linen module with a training-mode flag or on an NNX model; "
                                 "use 'interpolate' or 'fixed' for this model")
            batches = recompute_batches(data if recompute_data is None else recompute_data,
                                         engine.batch_size)
            run_points = [{"params": p, "state": stateful.recompute(p, stateful.state, batches)}
                          for p in points]
            n = sum(k for _, k in batches)

            def recomputed(pair: PyTree, batch: Any) -> Any:
                return apply(pair["params"], pair["state"], batch)

            run_fn = recomputed
            facts = {"state_policy": "recompute", "recompute_examples": n,
                     "batch_norm": f"recomputed at every t over {n} examples"}
        else:
            try:
                state_a, state_b = end_states(stateful, ends[0], ends[1], states)
            except ValueError as err:
                raise ValueError(f"state_policy='interpolate' moves the BatchNorm statistics "
                                 f"between those of path(0) and path(1), but: {err}; or pass "
                                 f"state_policy='recompute' (statistics re-estimated at every "
                                 f"t) or 'fixed'") from None
            dtypes = [getattr(x, "dtype", None) for x in jax.tree_util.tree_leaves(state_a)]
            sa, sb = to_float(state_a), to_float(state_b)
            run_points = [{"params": p, "state": jax.tree_util.tree_map(
                lambda x, y, t=float(t): ((1.0 - t) * x + t * y).astype(x.dtype)
                if tree.is_float_leaf(x) else x, sa, sb)} for p, t in zip(points, ts)]

            def interpolated(pair: PyTree, batch: Any) -> Any:
                return apply(pair["params"], from_float(pair["state"], dtypes), batch)

            run_fn = interpolated
            facts = {"state_policy": "interpolate",
                     "batch_norm": "interpolated: (1 - t) * state(path(0)) + t * state(path(1))"}
    run_engine = engine
    if fingerprint is not None:
        run_engine = dataclasses.replace(engine, fingerprint={**(engine.fingerprint or {}),
                                                              "path": fingerprint})
    values = evaluate_points(run_fn, None, run_points, data, np.eye(len(ts)), engine=run_engine)
    meta = {"kind": "path", "path_fingerprint": fingerprint,
            "path_0_fingerprint": tree.fingerprint(ends[0]),
            "path_1_fingerprint": tree.fingerprint(ends[1]),
            "points_fingerprint": tree.fingerprint(points),
            **facts,
            "num_examples": batching.num_examples(data) if batching.is_in_memory(data)
            else "stream",
            "axis_labels": ["t (0: path(0), 1: path(1))"],
            "seconds": time.perf_counter() - start, "library_version": __version__,
            "store": None if engine.store is None else os.fspath(engine.store),
            **metadata_from(metadata)}
    return Surface(ts, None, values, meta)
