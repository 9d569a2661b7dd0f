"""Curves between two solutions (Garipov et al. 2018): Bézier curves and polygonal
chains whose bends are trained so that the loss stays low along the whole curve.

A curve with control points ``theta_0 = params_a``, ``theta_1 .. theta_n``
(the bends) and ``theta_{n+1} = params_b`` is a *linear* combination of its
control points with ``t``-dependent coefficients:

* Bézier: ``w_k(t) = C(n+1, k) t^k (1 - t)^(n+1-k)`` (Bernstein polynomials);
* polygonal chain: straight segments through the control points, reached at
  ``t = k / (n + 1)``.

So ``theta(t) = sum_k w_k(t) theta_k``, which is how :func:`evaluate_curve
<jaxsurf.connect.evaluate_curve>` puts a curve on the evaluation engine.

Example:
    >>> curve = fit_curve(fn, params_a, params_b, data, epochs=2, batch_size=32,
    ...                   key=jax.random.key(0), checkpoint_dir="runs/curve", log=None)
    >>> mid = curve.at(0.5)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsurf import _fitloop, _validate, _batching as batching, _tree as tree
from jaxsurf._engine.data import check_data_dtypes, check_not_empty_container
from jaxsurf._io import atomic as _atomic
from jaxsurf._io.header import Header
from jaxsurf._io.npz import NpzReader
from jaxsurf._state import StatefulFn, from_float, state_for, to_float
from jaxsurf._fitloop import optimizer_fingerprint
from jaxsurf._progress import ProgressOption
from jaxsurf._store import data_fingerprint
from jaxsurf._tree import PyTree

__all__ = ["Curve", "KINDS", "CONVENTIONS", "GaripovConvention", "line", "fit_curve",
           "load_curve", "curve_coefficients"]

KINDS = ("bezier", "polychain")
CONVENTIONS = ("jaxsurf", "garipov")
_FORMAT = "jaxsurf.curve"  # written as "jaxsurf.curve/1" (jaxsurf._io.header)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown curve kind {kind!r}; use one of {KINDS}")


def check_t(t: Any) -> np.ndarray:
    arr = np.asarray(t, dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError(f"t must be a scalar or a 1-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0)
    if np.any(bad):
        raise ValueError(f"t must lie in [0, 1] (0: params_a, 1: params_b); got "
                         f"{np.atleast_1d(arr)[np.atleast_1d(bad)][:3].tolist()}")
    return arr


def curve_coefficients(kind: str, num_bends: int, t: Any, xp: Any = np) -> Any:
    """Weights ``w_k(t)`` of the ``num_bends + 2`` control points.

    Args:
        kind: ``"bezier"`` or ``"polychain"``.
        num_bends: bends between the two end points (0: the straight line).
        t: scalar or 1-D array in [0, 1].
        xp: ``numpy`` (default) or ``jax.numpy`` (traced ``t``, for training).

    Returns:
        Array ``(..., num_bends + 2)``; row 0 at ``t = 0`` is ``[1, 0, ..., 0]``
        and at ``t = 1`` is ``[0, ..., 0, 1]`` exactly.

    Example:
        >>> curve_coefficients("bezier", 1, 0.5).tolist()
        [0.25, 0.5, 0.25]
    """
    _check_kind(kind)
    t = xp.asarray(t)[..., None]
    degree = num_bends + 1
    k = xp.arange(degree + 1)
    if kind == "bezier":
        binom = xp.asarray([math.comb(degree, int(j)) for j in range(degree + 1)],
                           dtype=t.dtype)
        return binom * t ** k * (1.0 - t) ** (degree - k)
    # polychain: segment i covers [i/degree, (i+1)/degree]
    scaled = t * degree
    seg = xp.clip(xp.floor(scaled), 0, degree - 1)
    s = scaled - seg
    return xp.where(k == seg, 1.0 - s, 0.0) + xp.where(k == seg + 1, s, 0.0)


def _combination(points: Sequence[PyTree], weights: Any) -> PyTree:
    """``sum_k weights[k] * points[k]`` on float leaves (others from points[0])."""
    def leaf(*xs: Any) -> Any:
        if not tree.is_float_leaf(xs[0]):
            return xs[0]
        acc = weights[0] * xs[0]
        for w, x in zip(weights[1:], xs[1:]):
            acc = acc + w * x
        return acc.astype(jnp.asarray(xs[0]).dtype)

    return jax.tree_util.tree_map(leaf, *points)


@dataclass
class Curve:
    """A curve ``theta(t)``, ``t`` in [0, 1], between ``params_a`` and ``params_b``.

    Attributes:
        kind: ``"bezier"`` or ``"polychain"``.
        points: control points ``[params_a, bend_1, ..., bend_n, params_b]``.
        metadata: JSON-serialisable facts (how it was fitted, history).
    """

    kind: str
    points: list[PyTree]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if len(self.points) < 2:
            raise ValueError("a curve needs at least its two end points")
        for k, p in enumerate(self.points[1:], start=1):
            name = "params_b" if k == len(self.points) - 1 else f"bend {k}"
            tree.check_like(p, self.points[0], name=name, reference_name="params_a")

    @property
    def params_a(self) -> PyTree:
        return self.points[0]

    @property
    def params_b(self) -> PyTree:
        return self.points[-1]

    @property
    def bends(self) -> list[PyTree]:
        return self.points[1:-1]

    @property
    def num_bends(self) -> int:
        return len(self.points) - 2

    def coefficients(self, ts: Any) -> np.ndarray:
        """Weights of the control points at each ``t`` (``(len(ts), num_bends + 2)``)."""
        return curve_coefficients(self.kind, self.num_bends, check_t(ts))

    def at(self, t: float) -> PyTree:
        """The params at ``t``; ``at(0)`` is ``params_a`` and ``at(1)`` is ``params_b``,
        returned as they are (exactly).

        Example:
            >>> curve.at(0.0) is curve.params_a
            True
            >>> mid = curve.at(0.5)     # params like params_a
        """
        t_arr = check_t(t)
        if t_arr.ndim != 0:
            raise ValueError(f"Curve.at takes one scalar t, got shape {t_arr.shape}; "
                             f"use [curve.at(t) for t in ts]")
        if t_arr == 0.0:
            return self.params_a
        if t_arr == 1.0:
            return self.params_b
        weights = [np.float32(w) for w in self.coefficients(t_arr)]
        return _combination(self.points, weights)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the control points and metadata to one ``.npz`` (no pickle).

        Example:
            >>> curve.save("runs/curve.npz")
            PosixPath('runs/curve.npz')
            >>> curve = js.connect.load_curve("runs/curve.npz", params_like=params_a)
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        paths = [tree.leaf_path(p) for p, _ in
                 jax.tree_util.tree_leaves_with_path(self.params_a)]
        for k, point in enumerate(self.points):
            for i, leaf in enumerate(jax.tree_util.tree_leaves(point)):
                arrays[f"point{k}_leaf{i}"] = np.asarray(leaf)
        header = Header.new(_FORMAT, metadata=self.metadata, kind=self.kind,
                            num_points=len(self.points), leaf_paths=paths)
        arrays["header"] = np.frombuffer(header.to_json().encode(), dtype=np.uint8)
        return _atomic.write_with(path, lambda handle: np.savez(handle, allow_pickle=False,
                                                                **arrays))


def load_curve(path: str | os.PathLike, params_like: PyTree) -> Curve:
    """Reads a curve written by :meth:`Curve.save`.

    Args:
        path: the ``.npz`` file.
        params_like: a pytree with the params' structure (e.g. ``params_a``);
            its leaf paths, shapes and dtypes must match the saved ones.

    Returns:
        The :class:`Curve`.

    Example:
        >>> _ = curve.save("runs/curve.npz")
        >>> curve = load_curve("runs/curve.npz", params_like=params_a)
        >>> curve.kind, curve.num_bends
        ('bezier', 1)
    """
    path = Path(path)
    like_items = jax.tree_util.tree_leaves_with_path(params_like)
    like_paths = [tree.leaf_path(p) for p, _ in like_items]
    with NpzReader(path, ValueError, kind="jaxsurf curve file") as npz:
        if "header" not in npz:
            raise ValueError(f"{path} is not a jaxsurf curve file (no header); pass a file "
                             f"written by Curve.save")
        header = Header.parse(npz.read("header", kinds="u", ndim=1).tobytes(), ValueError,
                              str(path)).check(_FORMAT, ValueError, str(path))
        num_points, saved_paths = header.fields.get("num_points"), header.fields.get("leaf_paths")
        if not (isinstance(num_points, int) and not isinstance(num_points, bool)
                and 2 <= num_points <= len(npz.names)) or not isinstance(saved_paths, list) \
                or header.fields.get("kind") not in KINDS:
            raise ValueError(f"{path} has a damaged header (num_points, leaf_paths, kind or "
                             f"metadata missing or of the wrong type); it was not written by "
                             f"Curve.save")
        if like_paths != saved_paths:
            diff = next((a for a, b in zip(like_paths, saved_paths) if a != b),
                        "the number of leaves")
            raise ValueError(f"{path} holds a curve of other params than params_like (first "
                             f"difference at {diff}); pass params shaped like the curve's")
        treedef = jax.tree_util.tree_structure(params_like)
        points = []
        for k in range(num_points):
            leaves = []
            for i, (_, like) in enumerate(like_items):
                want = np.dtype(getattr(like, "dtype", np.asarray(like).dtype))
                leaves.append(npz.read(f"point{k}_leaf{i}", kinds=want.kind,
                                       shape=tuple(np.shape(like))))
            points.append(jax.tree_util.tree_unflatten(treedef, leaves))
    tree.check_like(points[0], params_like, name="saved curve", reference_name="params_like")
    return Curve(header.fields["kind"], points, header.metadata)


def line(params_a: PyTree, params_b: PyTree) -> Curve:
    """The straight segment as a :class:`Curve` without bends (to evaluate the line
    and a fitted curve the same way).

    Example:
        >>> ts = np.linspace(0, 1, 5)
        >>> s = js.connect.evaluate_curve(fn, line(params_a, params_b), data, ts,
        ...                               progress=False)
        >>> s.metrics["loss"].shape
        (5,)
    """
    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    return Curve("polychain", [params_a, params_b], {"fitted": False})


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class GaripovConvention:
    """Training as Garipov et al.'s code does it (timgaripov/dnn-mode-connectivity,
    ``train.py --curve``): the loss plus ``0.5 * weight_decay * ||theta(t)||^2``
    (every float parameter at the drawn ``t``, BatchNorm scale and bias
    included), SGD with ``momentum`` and the reference's learning-rate
    schedule (``learning_rate`` for the first half of the epochs, then linearly
    down to 1 % of it at 90 %, then 1 %; set once per epoch, epochs counted
    from 1), BatchNorm in training mode, and the short last batch kept (as a
    PyTorch ``DataLoader`` without ``drop_last``). ``convention="garipov"`` is
    ``GaripovConvention()``, the reference's defaults (``--lr 0.01 --momentum
    0.9 --wd 1e-4``).

    Example:
        >>> [GaripovConvention().learning_rate_at(e, epochs=10) for e in (5, 7, 9)]
        [0.01, 0.00505, 0.0001]
    """

    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        for name in ("learning_rate", "momentum", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0 or (name == "momentum"
                                                                 and value >= 1):
                raise ValueError(f"GaripovConvention.{name} must be a finite number >= 0"
                                 f"{' and < 1' if name == 'momentum' else ''}, got {value!r}")

    def learning_rate_at(self, epoch: int, epochs: int) -> float:
        """The reference's learning rate in ``epoch`` (1 .. ``epochs``)."""
        alpha = epoch / epochs
        factor = 1.0 if alpha <= 0.5 else (1.0 - (alpha - 0.5) / 0.4 * 0.99
                                           if alpha <= 0.9 else 0.01)
        return round(factor * self.learning_rate, 12)

    def optimizer(self, epochs: int, steps_per_epoch: int) -> optax.GradientTransformation:
        """SGD with momentum (PyTorch's: ``buf = m * buf + g``, ``p -= lr * buf``)
        on the per-epoch schedule of :meth:`learning_rate_at`."""
        rates = jnp.asarray([self.learning_rate_at(e, max(epochs, 1))
                             for e in range(1, max(epochs, 1) + 1)], jnp.float32)

        def schedule(count: Any) -> Any:
            return rates[jnp.minimum(count // steps_per_epoch, len(rates) - 1)]

        return optax.sgd(schedule, momentum=self.momentum or None)

    def settings(self, epochs: int) -> dict[str, Any]:
        """What identifies the convention in ``fit_config.json`` (the schedule
        depends on the epochs, so a resume cannot change them)."""
        return {"name": "garipov", "learning_rate": self.learning_rate,
                "momentum": self.momentum, "weight_decay": self.weight_decay,
                "schedule_epochs": epochs}


def _convention(convention: Any, optimizer: Any, state_policy: str | None
                ) -> GaripovConvention | None:
    """The Garipov convention asked for, or None for jaxsurf's defaults."""
    if isinstance(convention, str) and convention == "jaxsurf":
        return None
    if isinstance(convention, str) and convention == "garipov":
        convention = GaripovConvention()
    if not isinstance(convention, GaripovConvention):
        raise ValueError(f"unknown convention {convention!r}; use 'jaxsurf' (default), "
                         f"'garipov' or js.connect.GaripovConvention(learning_rate=..., "
                         f"momentum=..., weight_decay=...)")
    if optimizer is not None:
        raise ValueError("convention='garipov' sets the optimizer (SGD with momentum on the "
                         "reference's schedule): drop optimizer=, or set its numbers with "
                         "js.connect.GaripovConvention(learning_rate=..., momentum=...)")
    if state_policy not in (None, "batch"):
        raise ValueError(f"convention='garipov' runs BatchNorm in training mode (batch "
                         f"statistics at every t), so state_policy={state_policy!r} does not "
                         f"apply: drop it")
    return convention


def _training_mode_loss(fn: Callable, asked: str) -> tuple[Callable[[PyTree, Any], Any], str]:
    """``fn`` with the model in training mode, and what metadata says about it."""
    stateful = getattr(fn, "jaxsurf_state", None)
    if not (isinstance(stateful, StatefulFn) and jax.tree_util.tree_leaves(stateful.state)):
        if asked == "state_policy='batch'":
            raise ValueError("state_policy='batch' switches an adapter's fn (js.flax.adapt of "
                             "a model with BatchNorm) to training mode; this fn carries no "
                             "model state: drop state_policy, and write fn in training mode "
                             "if your model normalizes by batch statistics")
        return fn, "fn as given (it carries no model state: give a training-mode fn if " \
                   "the model normalizes by batch statistics)"
    if stateful.train_metrics is None:
        raise ValueError(f"{asked} runs BatchNorm in training mode, and this fn's "
                         "adapter has no training mode (js.equinox.adapt, or a Linen module "
                         "without a train/use_running_average flag): pass a plain "
                         "fn(params, batch) that runs your model in training mode")
    train_metrics, state = stateful.train_metrics, stateful.state
    return (lambda p, batch: train_metrics(p, state, batch)), \
        "training mode (batch statistics at every t)"


def _l2(params: PyTree) -> jax.Array:
    """``||params||^2`` over the float leaves, in float32."""
    leaves = [jnp.sum(jnp.square(jnp.asarray(x, jnp.float32)))
              for x in jax.tree_util.tree_leaves(params) if tree.is_float_leaf(x)]
    return sum(leaves, jnp.zeros((), jnp.float32))


def end_states(stateful: StatefulFn, params_a: PyTree, params_b: PyTree,
               states: tuple[PyTree, PyTree] | None) -> tuple[PyTree, PyTree]:
    """The model states of two end points: ``states`` if given, else the ones their
    adapters returned with them; both in the structure of ``stateful.state``."""
    if states is not None:
        if not isinstance(states, (tuple, list)) or len(states) != 2:
            raise TypeError("states must be a pair (state of params_a, state of params_b), "
                            "each like fn.jaxsurf_state.state")
        state_a, state_b = states
    else:
        try:
            state_a = state_for(stateful, params_a, "params_a")
            state_b = state_for(stateful, params_b, "params_b")
        except ValueError as err:
            raise ValueError(f"{err}; for end points that are not the adapter's own arrays "
                             f"(e.g. a loaded curve) pass states=(state_a, state_b)") from None
    like = jax.tree_util.tree_leaves(stateful.state)
    for name, state in (("params_a", state_a), ("params_b", state_b)):
        tree.check_like(jax.tree_util.tree_leaves(state), like, name=f"the state of {name}",
                        reference_name="fn's state")
    treedef = jax.tree_util.tree_structure(stateful.state)
    return (jax.tree_util.tree_unflatten(treedef, jax.tree_util.tree_leaves(state_a)),
            jax.tree_util.tree_unflatten(treedef, jax.tree_util.tree_leaves(state_b)))


def _fit_state(fn: Callable, params_a: PyTree, params_b: PyTree, state_policy: str | None,
               states: tuple[PyTree, PyTree] | None
               ) -> tuple[Callable[[PyTree, Any, Any, Any], Any], Any, str | None]:
    """``(loss(params_t, t, batch, end_states), end_states, policy)`` for fit_curve."""
    if state_policy not in (None, "fixed", "interpolate"):
        hint = (" (statistics cannot be re-estimated at every step: for batch statistics "
                "use state_policy='batch' or give fit_curve a training-mode loss, as "
                "Garipov et al.)"
                if state_policy == "recompute" else "")
        raise ValueError(f"fit_curve takes state_policy None, 'fixed', 'interpolate' or "
                         f"'batch', not {state_policy!r}{hint}")
    stateful = getattr(fn, "jaxsurf_state", None)
    has_state = isinstance(stateful, StatefulFn) and bool(
        jax.tree_util.tree_leaves(stateful.state))
    if state_policy == "interpolate" and not has_state:
        raise ValueError("state_policy='interpolate' needs fn from js.flax.adapt or "
                         "js.equinox.adapt on a model with state (e.g. BatchNorm)")
    if state_policy != "interpolate":
        if states is not None:
            raise ValueError("states= is only used with state_policy='interpolate'")
        return (lambda p, t, batch, s: fn(p, batch)), (), "fixed" if has_state else None
    assert isinstance(stateful, StatefulFn)
    state_a, state_b = end_states(stateful, params_a, params_b, states)
    dtypes = [getattr(x, "dtype", None) for x in jax.tree_util.tree_leaves(state_a)]
    apply = stateful.apply

    def loss(p: PyTree, t: Any, batch: Any, ends: Any) -> Any:
        mixed = jax.tree_util.tree_map(lambda x, y: (1.0 - t) * x + t * y, *ends)
        return apply(p, from_float(mixed, dtypes), batch)

    return loss, (to_float(state_a), to_float(state_b)), "interpolate"


def _key_data(key: Any) -> list[int]:
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).ravel().tolist()


def _fit_config(kind: str, num_bends: int, epochs: int, batch_size: int, params_a: PyTree,
                params_b: PyTree, data: PyTree, num_examples: int, tx: Any,
                key: Any) -> dict[str, Any]:
    """What identifies a fit (``fit_config.json``): everything that changes the curve
    except ``fn``'s code and ``epochs`` (a resume may run more epochs)."""
    return {"kind": kind, "num_bends": num_bends, "batch_size": batch_size,
            "params_a_fingerprint": tree.fingerprint(params_a),
            "params_b_fingerprint": tree.fingerprint(params_b), "num_examples": num_examples,
            "data": data_fingerprint(data, num_examples),
            "optimizer_fingerprint": optimizer_fingerprint(tx),
            "key": _key_data(key), "epochs": epochs}


def fit_curve(fn: Callable[[PyTree, Any], Any], params_a: PyTree, params_b: PyTree, data: Any,
              *, kind: str = "bezier", num_bends: int = 1, epochs: int = 10,
              batch_size: int = 128, optimizer: optax.GradientTransformation | None = None,
              key: jax.Array | None = None, checkpoint_dir: str | os.PathLike | None = None,
              log: Callable[[str], None] | None = print, state_policy: str | None = None,
              states: tuple[PyTree, PyTree] | None = None,
              progress: ProgressOption = False,
              convention: str | GaripovConvention = "jaxsurf") -> Curve:
    """Trains the bends of a curve from ``params_a`` to ``params_b`` to keep the loss low.

    Minimises ``E_{t ~ U[0,1]} fn(theta(t), batch)["loss"]`` over the bends
    (the end points stay fixed), one uniform ``t`` per step as Garipov et
    al. (2018). Bends start evenly spaced on the straight line. Each epoch is
    a shuffled pass over ``data`` in batches of ``batch_size`` (the short last
    batch is dropped, as in training), one jitted step per batch.

    ``convention="garipov"`` trains as Garipov et al.'s code instead (see
    :class:`GaripovConvention`): L2 on ``theta(t)``, SGD with momentum on the
    reference's schedule, BatchNorm in training mode (an adapter's ``fn`` is
    switched to it; a plain ``fn`` is used as given), the short last batch
    kept. Its ``--num_bends 3`` counts the end points: it is ``num_bends=1``.

    Model state (BatchNorm): no running statistics exist for the points along
    the curve. Garipov et al. train with batch statistics: ``state_policy=
    "batch"`` switches a ``fn`` from :func:`jaxsurf.flax.adapt` (Linen or NNX)
    to training mode (or pass a ``fn`` that runs the model in training mode).
    Otherwise an adapter's ``fn`` runs in evaluation mode: by default
    (``"fixed"``) with its own model's statistics at every ``t``;
    ``state_policy="interpolate"`` uses ``(1 - t) * state_a + t * state_b``
    at the drawn ``t`` instead (what :func:`evaluate_curve
    <jaxsurf.connect.evaluate_curve>` does with that policy). For BatchNorm
    nets ``"batch"`` fits far lower curves (``docs/connectivity.md``).
    Evaluate the fitted curve with the policy you trained for, or with
    ``state_policy="recompute"`` to measure it with fresh statistics.

    Args:
        fn: ``fn(params, batch)`` → scalar loss or dict with ``"loss"``
            (batch means), differentiable in ``params``.
        params_a, params_b: the end points (same structure, shapes, dtypes).
        data: in-memory arrays (a pytree with a shared leading example axis),
            checked as the evaluators check it.
        kind: ``"bezier"`` or ``"polychain"``.
        num_bends: bends between the end points (>= 1; Garipov et al. use 1
            for Bézier curves and 1 for polygonal chains).
        epochs: passes over ``data``.
        batch_size: examples per step.
        optimizer: an optax transformation (default ``optax.adam(1e-3)``).
        key: PRNG key for shuffling and the ``t`` draws (default key 0).
        checkpoint_dir: orbax checkpoints of the bends, optimizer state and
            key after every epoch, plus ``log.jsonl`` (one line appended per
            epoch; a torn last line from a kill is dropped) and
            ``fit_config.json``; calling again with the same directory resumes
            after the last finished epoch (``epochs`` may grow, not shrink
            below the epochs done) and refuses a directory made for other end
            points, settings, data (fingerprinted as stores do), key or
            optimizer (the constants in its optax closures), naming each field
            that differs. ``fn``'s code is not fingerprinted.
        log: called with one progress line per epoch (``None``: silent).
        state_policy: ``None``/``"fixed"`` (``fn`` as given),
            ``"interpolate"`` (for ``fn`` from an adapter of a model with state)
            or ``"batch"`` (an adapter's model in training mode: BatchNorm on
            each batch's statistics at every ``t``, dropout off).
        states: ``(state_a, state_b)`` for ``"interpolate"`` when the end
            points are not the adapters' own arrays.
        progress: steps within each epoch (see :mod:`jaxsurf.progress`):
            ``False`` (default) for none, ``None`` for a bar on a terminal and
            log lines otherwise, ``True`` or a callable.
        convention: ``"jaxsurf"`` (default: ``optimizer``, no L2, ``fn`` as
            given, short last batch dropped), ``"garipov"`` or a
            :class:`GaripovConvention` with other numbers (then ``optimizer``
            and ``state_policy`` must be left out).

    Returns:
        The fitted :class:`Curve`; ``metadata["history"]`` has the mean step
        loss and time of every epoch.

    Raises:
        jaxsurf.interrupt.Interrupted: on Ctrl-C or SIGTERM with
            ``checkpoint_dir``, after the finished epochs are saved (a
            ``KeyboardInterrupt``; call again with the same directory to resume).

    Example:
        >>> curve = fit_curve(fn, params_a, params_b, {"x": data["x"], "y": data["y"]},
        ...                   epochs=2, batch_size=32, optimizer=optax.adam(1e-3),
        ...                   key=jax.random.key(0), checkpoint_dir="runs/curve")
        fit_curve bezier (1 bend): epoch 1/2 mean loss over t ~ U[0,1] ...
        fit_curve bezier (1 bend): epoch 2/2 mean loss over t ~ U[0,1] ...
        >>> len(curve.metadata["history"])
        2
    """
    _check_kind(kind)
    _validate.int_in_range(num_bends, "num_bends", 1, what="bends to train between the end "
                           "points", hint="for the straight line use "
                           "js.connect.line(params_a, params_b)")
    _validate.non_negative_int(epochs, "epochs")
    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    # the evaluators' checks: arrays only, numbers only, one row per example in every leaf
    check_not_empty_container(data)
    if not batching.is_in_memory(data):
        raise TypeError("fit_curve needs in-memory data: a pytree of arrays with a shared "
                        "leading example axis")
    host = batching.to_host_arrays(data)
    n = batching.num_examples(host)
    check_data_dtypes(host)
    arrays = jax.tree_util.tree_map(jnp.asarray, host)
    _validate.int_in_range(batch_size, "batch_size", 1, n, "the number of examples")
    garipov = _convention(convention, optimizer, state_policy)
    mode, weight_decay, steps = None, 0.0, n // batch_size
    if garipov is not None or state_policy == "batch":
        if states is not None:
            raise ValueError("states= is only used with state_policy='interpolate'")
        train_fn, mode = _training_mode_loss(
            fn, "convention='garipov'" if garipov is not None else "state_policy='batch'")
        loss_at: Callable = lambda p, t, batch, s: train_fn(p, batch)  # noqa: E731
        state_ends, policy = (), None if garipov is not None else "batch"
    else:
        loss_at, state_ends, policy = _fit_state(fn, params_a, params_b, state_policy, states)
    if garipov is not None:
        steps = -(-n // batch_size)  # the short last batch is a step of its own
        tx = garipov.optimizer(int(epochs), steps)
        weight_decay = garipov.weight_decay
    else:
        tx = optimizer if optimizer is not None else optax.adam(1e-3)
    rng: Any = jax.random.key(0) if key is None else key
    bends = [_combination([params_a, params_b], [np.float32(1 - s), np.float32(s)])
             for s in np.arange(1, num_bends + 1) / (num_bends + 1)]
    opt_state = tx.init(bends)
    config = _fit_config(kind, int(num_bends), int(epochs), int(batch_size), params_a, params_b,
                         host, n, tx, rng)
    if policy in ("interpolate", "batch"):  # ("fixed" is how earlier fits ran: they resume)
        config["state_policy"] = policy
    if policy == "interpolate":
        config["states_fingerprint"] = tree.fingerprint(state_ends)
    if garipov is not None:  # (jaxsurf's convention adds no field: earlier fits resume)
        config["convention"] = garipov.settings(int(epochs))

    def objective(bends_: list[PyTree], ends: tuple[PyTree, PyTree], t: jax.Array,
                  batch: Any, state_ends_: Any) -> jax.Array:
        weights = curve_coefficients(kind, num_bends, t, xp=jnp)
        params_t = _combination([ends[0], *bends_, ends[1]], list(weights))
        value = loss_at(params_t, t, batch, state_ends_)
        if isinstance(value, Mapping):
            if "loss" not in value:
                raise ValueError(f"fn returned metrics {sorted(value)}; fit_curve minimises "
                                 f"'loss', which is missing")
            value = value["loss"]
        value = jnp.asarray(value, jnp.float32)
        if weight_decay:
            value = value + 0.5 * weight_decay * _l2(params_t)
        return value

    @jax.jit  # end points and data are arguments, not constants baked into the program
    def step(bends_, opt_state_, key_, index, ends, arrays_, state_ends_):
        key_, k_t = jax.random.split(key_)
        t = jax.random.uniform(k_t, ())
        batch = jax.tree_util.tree_map(lambda x: x[index], arrays_)
        loss, grads = jax.value_and_grad(objective)(bends_, ends, t, batch, state_ends_)
        updates, opt_state_ = tx.update(grads, opt_state_, bends_)
        return optax.apply_updates(bends_, updates), opt_state_, key_, loss

    def epoch(bends_: list[PyTree], carry: dict[str, Any],
              report: Callable[[int], None] | None) -> tuple[list[PyTree], dict[str, Any],
                                                             dict[str, float]]:
        opt_state_, rng_ = carry["opt_state"], carry["key"]
        rng_, k_perm = jax.random.split(rng_)
        order = jax.random.permutation(k_perm, n)
        losses, sizes = [], []
        for i in range(steps):
            index = order[i * batch_size: (i + 1) * batch_size]
            bends_, opt_state_, rng_, loss = step(bends_, opt_state_, rng_, index,
                                                  (params_a, params_b), arrays, state_ends)
            losses.append(loss)
            sizes.append(len(index))
            if report is not None:
                loss.block_until_ready()  # count steps finished, not just dispatched
                report(i + 1)
        mean = float(np.average(np.asarray(jnp.stack(losses)), weights=sizes))
        return bends_, {"opt_state": opt_state_, "key": rng_}, {"loss": mean}

    folder = None
    if checkpoint_dir is not None:
        folder = _fitloop.Folder(Path(checkpoint_dir), "fit_config.json", "checkpoints",
                                 noun="curve", argument="checkpoint_dir", writer="fit_curve",
                                 max_to_keep=2, required=("data", "optimizer_fingerprint"))
    plural = "s" if num_bends > 1 else ""
    fit = _fitloop.run(
        epoch, bends, {"opt_state": opt_state, "key": rng}, epochs=epochs, folder=folder,
        settings=config, log=log, progress=progress, steps=steps,
        describe=lambda row: (f"fit_curve {kind} ({num_bends} bend{plural}): epoch "
                              f"{row['epoch']}/{epochs} mean loss over t ~ U[0,1] "
                              f"{row['loss']:.4g} ({row['seconds']:.1f} s)"),
        resumed=lambda start_epoch: (f"fit_curve: resuming after epoch {start_epoch} from "
                                     f"{checkpoint_dir}"))
    bends, history = fit.params, fit.history
    meta = {**config, **({"state_policy": policy} if policy else {}),
            "fitted": True, "history": history,
            "seconds": fit.seconds,
            "optimizer": ("sgd (momentum, the reference's schedule)" if garipov is not None
                          else "adam(1e-3)" if optimizer is None else "given"),
            **({"model_mode": mode} if mode else {})}
    return Curve(kind, [params_a, *[jax.tree_util.tree_map(np.asarray, b) for b in bends],
                        params_b], meta)
