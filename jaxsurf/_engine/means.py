"""The means layer: exact dataset means, shared by evaluation, curvature and sharpness.

Two forms, one rule (every example counts once; the short last batch is
weighted by its size):

* :func:`dataset_mean` (public as ``js.dataset_mean``): ``params -> {metric:
  mean}`` of a model's metrics, one jitted ``lax.scan`` over the batches;
* :func:`mean_over_batches` (public as ``js.hessian.mean_over_batches``): the
  mean of any pytree-valued ``batch_fn(*args, batch)`` (gradients, Hessian-vector
  products), a loop of jitted steps.

Example:
    >>> loss = lambda p, b: jnp.mean((b["x"] * p) ** 2)
    >>> data = {"x": jnp.arange(5.0)}
    >>> dataset_mean(loss, data, batch_size=2)(jnp.float32(1.0))
    {'loss': 6.0}
    >>> float(mean_over_batches(jax.grad(loss), data, batch_size=2)(jnp.float32(1.0)))
    12.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxsurf import _validate, _batching as batching, _tree as tree
from jaxsurf._engine.data import layout_for
from jaxsurf._engine.metrics import Fn, accumulator_dtype, trace_metrics, with_note
from jaxsurf._engine.options import takes_engine
from jaxsurf._engine.programs import metric_sums
from jaxsurf._state import bind
from jaxsurf._tree import PyTree

__all__ = ["dataset_mean", "mean_over_batches", "OnDevice", "on_device", "check_float_params"]


@takes_engine("js.dataset_mean")
def dataset_mean(fn: Fn, data: Any, *, batch_size: int | None = None
                 ) -> Callable[[PyTree], dict[str, float]]:
    """A reusable exact evaluator ``params -> {metric: dataset mean}``.

    The data is split and put on the device once, and one jitted program is
    reused for every call (e.g. a validation pass after each training epoch).
    ``batch_size`` (examples per batch, default ``min(n, 512)``) may also come
    from ``engine=js.Engine(batch_size=...)``; it is the only engine option
    used here.

    Example:
        >>> val = dataset_mean(lambda p, b: {"loss": jnp.mean(b["x"] * p)},
        ...                    {"x": jnp.arange(4.0)}, batch_size=3)
        >>> val(jnp.float32(2.0))["loss"]
        3.0
    """
    if not batching.is_in_memory(data):
        raise TypeError("dataset_mean needs in-memory arrays; for a stream of batches use "
                        "js.evaluate_points(fn, params, [zeros], data, [[0.0]])")
    split = batching.split_batches(data, batch_size)
    layout = layout_for(split, 1)
    full, weights, rest = jax.device_put((layout.full, layout.weights, layout.rest))
    sample = rest if rest is not None else jax.tree_util.tree_map(lambda x: x[0], full)
    compiled: dict[Any, tuple[Any, Callable]] = {}

    def evaluate(params: PyTree) -> dict[str, float]:
        bound, _ = bind(fn, params)  # params from another adapt: their own BatchNorm state
        key = "run" if bound is fn else id(bound.jaxsurf_state.state)  # type: ignore
        if key not in compiled:  # (the state is kept with its program: its id stays its own)
            noted = with_note(bound)
            shapes, labels = trace_metrics(noted, params, sample)
            names = list(shapes)
            for check in labels:  # integer labels in range: on the host, once
                check.check(data)
            compiled[key] = (bound, jax.jit(lambda p, f, w, r: metric_sums(
                noted, names, p, f, w, r, jnp.float32(layout.rest_size))))
        sums = compiled[key][1](params, full, weights, rest)
        return {k: float(v) / split.num_examples for k, v in sums.items()}

    return evaluate


def weighted_add(total: PyTree, value: PyTree, weight: Any) -> PyTree:
    """``total + weight * value`` leaf by leaf, in the accumulator's dtype."""
    return jax.tree_util.tree_map(lambda t, x: t + weight * x.astype(t.dtype), total, value)


@dataclass
class OnDevice:
    """In-memory data cut into device-resident batches (full ones, then the
    short remainder), with each batch's weight ``size / num_examples``."""

    batches: list[PyTree]
    weights: list[float]
    num_examples: int


def on_device(data: Any, batch_size: int | None) -> Any:
    """Splits and uploads in-memory ``data`` once; streams pass through unchanged."""
    if isinstance(data, OnDevice) or not batching.is_in_memory(data):
        return data
    split = batching.split_batches(data, batch_size)
    batches = []
    if split.full is not None:
        count = jax.tree_util.tree_leaves(split.full)[0].shape[0]
        batches += [jax.tree_util.tree_map(lambda x: x[i], split.full) for i in range(count)]
    if split.rest is not None:
        batches.append(split.rest)
    batches = jax.device_put(batches)
    weights = [batching.num_examples(b) / split.num_examples for b in batches]
    return OnDevice(batches, weights, split.num_examples)


def accumulators(batch_fn: Callable) -> tuple[Callable, Callable]:
    """Jitted ``init(args, batch) -> zeros`` and ``step(total, args, batch, weight)
    -> total + weight * batch_fn(*args, batch)`` (``total`` donated)."""
    def init(args: tuple, batch: PyTree) -> PyTree:
        shapes = jax.eval_shape(lambda b: batch_fn(*args, b), batch)
        # zeros sharded as the values will be (params sharded over a mesh with explicit
        # axes), so that the donated total is reused in place
        return jax.tree_util.tree_map(
            lambda s: jnp.zeros(s.shape, accumulator_dtype(s.dtype),
                                out_sharding=_explicit_sharding(s)), shapes)

    def step(total: PyTree, args: tuple, batch: PyTree, weight: Any) -> PyTree:
        return weighted_add(total, batch_fn(*args, batch), weight)

    return jax.jit(init), jax.jit(step, donate_argnums=0)


def _explicit_sharding(shape: jax.ShapeDtypeStruct) -> Any:
    """The sharding of an abstract value computed under explicit mesh axes, else None."""
    sharding = getattr(shape, "sharding", None)
    if isinstance(sharding, jax.sharding.NamedSharding) and any(
            t == jax.sharding.AxisType.Explicit for t in sharding.mesh.axis_types):
        return sharding
    return None


def labels_check(fn: Fn, params: PyTree) -> Callable[..., None]:
    """``check(batch, what="data")``: refuses integer labels outside the classes of an
    adapter's built-in loss (:class:`jaxsurf._engine.metrics.LabelCheck`), on the host.

    ``fn`` is traced abstractly once, on the first batch given, to find which
    batch leaf holds the labels; a ``fn`` without a built-in loss checks nothing.

    Example:
        >>> from jaxsurf._losses import cross_entropy
        >>> from jaxsurf._engine.metrics import loss_metrics
        >>> fn = lambda p, b: loss_metrics(cross_entropy, b["x"] @ p, b["y"])
        >>> labels_check(fn, jnp.ones((2, 3)))({"x": jnp.ones((4, 2)), "y": np.arange(4)})
        Traceback (most recent call last):
        ...
        ValueError: cross_entropy: the labels in data leaf ['y'] go up to 3, but the model ...
    """
    found: list[Any] | None = None

    def check(batch: PyTree, what: str = "data") -> None:
        nonlocal found
        if found is None:
            found = trace_metrics(fn, params, batch)[1]
        for label_check in found:
            label_check.check(batch, what)

    return check


def mean_over_batches(batch_fn: Callable[..., PyTree], data: Any, *,
                 batch_size: int | None = None, passes: str = "many",
                 check: Callable[..., None] | None = None) -> Callable[..., PyTree]:
    """Exact dataset mean of a pytree-valued per-batch function.

    ``batch_fn(*args, batch)`` must return batch means (e.g. the gradient of a
    batch-mean loss); the result is ``sum_b (n_b / N) batch_fn(*args, b)``,
    so the short last batch counts by its size. In-memory data go to the
    device once, as a list of batches; each call runs one jitted step per
    batch, accumulating on the device (dispatch is asynchronous: nothing
    comes back to the host until the caller reads the result). Streams are
    read once per call, batch by batch.

    Why a loop of jitted steps and not ``lax.scan`` as in
    :mod:`jaxsurf.evaluate`: on XLA:CPU, reverse-mode convolutions inside a
    rolled loop run many times slower than the same steps outside it
    (ResNet-20, the gradient over 100 images in batches of 50; measured by
    ``python -m benchmarks.scan_grad``, the ratio is in
    ``benchmarks/results/scan_grad.json`` and moves with the machine's load).
    Forward-only evaluation does not suffer from this.

    Args:
        batch_fn: ``batch_fn(*args, batch) -> pytree`` of batch means.
        data: arrays with a shared leading example axis, or an iterable of
            batches (re-iterable unless ``passes="one"``).
        batch_size: examples per batch for in-memory data (default
            ``min(n, 512)``).
        passes: ``"many"`` (the returned function may be called repeatedly)
            or ``"one"`` (a one-shot iterator is accepted; call it once).
        check: ``check(batch, what)`` run on the host on the data before
            anything is computed (in-memory data: once, here; streams: each
            batch as it is read), e.g. :func:`labels_check`.

    Returns:
        ``mean(*args) -> pytree`` with leaves in at least float32. Each
        batch shape compiles once (at most two for in-memory data).

    Example:
        >>> loss = lambda p, b: jnp.mean((b["x"] * p) ** 2)
        >>> grad = mean_over_batches(jax.grad(loss), {"x": jnp.arange(4.0)}, batch_size=3)
        >>> float(grad(jnp.float32(1.0)))   # exact full-data gradient, 2 * mean(x^2)
        7.0
    """
    if check is not None and isinstance(data, OnDevice):
        for b, batch in enumerate(data.batches):
            check(batch, f"batch {b}")
    elif check is not None and batching.is_in_memory(data):
        check(data)
    data = on_device(data, batch_size)
    init, step = accumulators(batch_fn)
    if isinstance(data, OnDevice):
        def mean_in_memory(*args: Any) -> PyTree:
            total = init(args, data.batches[0])
            for batch, weight in zip(data.batches, data.weights):
                total = step(total, args, batch, weight)
            return total
        return mean_in_memory
    if passes != "one":
        _validate.reiterable(data, "this function")

    def mean_of_stream(*args: Any) -> PyTree:
        total, count = None, 0
        for b, (batch, size) in enumerate(batching.iter_batches(data)):
            if check is not None:
                check(batch, f"batch {b}")
            total = init(args, batch) if total is None else total
            total = step(total, args, batch, float(size))
            count += size
        if count == 0:
            raise ValueError("data is an empty iterable (no batches); pass at least one batch")
        return jax.tree_util.tree_map(lambda t: t / count, total)

    return mean_of_stream


def check_float_params(params: PyTree) -> None:
    items = jax.tree_util.tree_leaves_with_path(params)
    if not items:
        raise ValueError("params holds no arrays")
    for path, leaf in items:
        if not tree.is_float_leaf(leaf):
            raise ValueError(
                f"params leaf {tree.leaf_path(path)} has dtype {jnp.asarray(leaf).dtype}; "
                f"curvature needs floating-point params only (keep integer state out of "
                f"params, e.g. in fn's closure)")
    _validate.finite_tree(((tree.leaf_path(path), leaf) for path, leaf in items), "params",
                          "the loss and its curvature are undefined there: check the "
                          "checkpoint or the training run that produced these params")
