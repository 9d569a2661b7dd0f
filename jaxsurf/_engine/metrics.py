"""What ``fn`` returns, made uniform: metric dicts, error notes, compute dtypes.

Example:
    >>> as_metric_dict(jnp.float32(1.0))
    {'loss': Array(1., dtype=float32)}
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _validate, _losses as losses, _tree as tree
from jaxsurf._tree import PyTree

__all__ = ["Fn", "FN_NOTE", "as_metric_dict", "with_note", "metric_shapes", "cast_floats",
           "scalar_metric", "accumulator_dtype", "loss_metrics", "LabelCheck", "trace_metrics",
           "OutputSplit"]

Fn = Callable[[PyTree, PyTree], Any]


def as_metric_dict(value: Any) -> dict[str, jax.Array]:
    """``fn``'s output as ``{name: real scalar}``; a bare scalar is called ``loss``.

    Refuses ``None``, non-numbers, complex values, non-scalars and names that
    collide after ``str()`` (e.g. ``1`` and ``"1"``), saying what ``fn`` returned.
    """
    if value is None:
        raise TypeError("fn returned None; it must return a scalar or a dict of scalars (each "
                        "the mean over the batch), e.g. {'loss': jnp.mean(losses)}. A missing "
                        "return statement?")
    items = _validate.unique_str_keys(value, "fn's metric") if isinstance(value, Mapping) \
        else {"loss": value}
    out = {}
    for name, v in items.items():
        try:
            out[name] = jnp.asarray(v)
        except (TypeError, ValueError) as err:
            raise TypeError(f"fn returned {type(v).__name__} {v!r:.60} for metric {name!r}; "
                            f"metrics must be real scalars (jnp arrays or numbers)") from err
        dtype = out[name].dtype
        if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
                or jnp.issubdtype(dtype, jnp.bool_)):
            raise TypeError(f"fn returned metric {name!r} with dtype {dtype}; metrics must be "
                            f"real numbers (take jnp.real or jnp.abs inside fn for a complex "
                            f"value)")
    for name, v in out.items():
        if v.shape != ():
            raise ValueError(
                f"fn must return a scalar or a dict of scalars (each the mean over the batch); "
                f"metric {name!r} has shape {v.shape}. Reduce it with jnp.mean inside fn.")
    return out


FN_NOTE = "jaxsurf: raised inside fn(params, batch)"


def with_note(fn: Fn) -> Fn:
    """``fn``, whose exceptions get a note saying where jaxsurf called it.

    The exception keeps its type and identity (``except`` clauses written for
    ``fn``'s errors, e.g. ``jax.errors.ConcretizationTypeError``, still catch
    it); only a note (``add_note``) is added, once.
    """
    def call(params: PyTree, batch: PyTree) -> Any:
        try:
            return fn(params, batch)
        except Exception as err:
            if not any(str(n).startswith(FN_NOTE) for n in getattr(err, "__notes__", ())):
                shapes = jax.tree_util.tree_map(
                    lambda x: f"{getattr(x, 'dtype', type(x).__name__)}{list(np.shape(x))}",
                    batch)
                err.add_note(f"{FN_NOTE}, which jaxsurf calls under jax.jit / jax.eval_shape "
                             f"(params are traced: no Python branching on their values) with a "
                             f"batch {shapes}")
            raise
    return call


def metric_shapes(fn: Fn, params: PyTree, batch: PyTree) -> dict[str, Any]:
    """Runs ``fn`` abstractly once to learn the metric names (and check them).
    ``fn``'s own errors keep their type and get a note (see :func:`with_note`)."""
    return trace_metrics(fn, params, batch)[0]


# (targets, number of classes, loss name) noted by loss_metrics while fn is traced
_LABEL_PROBE: contextvars.ContextVar[list[tuple[Any, int, str]] | None] = \
    contextvars.ContextVar("jaxsurf_label_probe", default=None)


@dataclass(frozen=True)
class LabelCheck:
    """A batch leaf that an adapter's built-in loss one-hot encodes as labels.

    Found while ``fn`` is traced abstractly (:func:`trace_metrics`); then
    :meth:`check` reads that leaf of the real data on the host, once per data set
    (or per batch of a stream), never per evaluated point.
    """

    path: tuple
    num_classes: int
    loss: str

    def check(self, data: PyTree, what: str = "data") -> None:
        """Raises ``ValueError`` (see :func:`jaxsurf._losses.check_labels`) if the
        labels of ``data`` (structured like the traced batch) leave the range."""
        for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]:
            if path == self.path:
                losses.check_labels(leaf, self.num_classes,
                                    f"{what} leaf {tree.leaf_path(path)}", self.loss)


def trace_metrics(fn: Fn, params: PyTree, batch: PyTree
                  ) -> tuple[dict[str, Any], list[LabelCheck]]:
    """:func:`metric_shapes`, and the batch leaves that are integer labels of a
    built-in loss (``js.flax.adapt`` / ``js.equinox.adapt`` with
    ``loss="cross_entropy"``, ``"mse"``, ``"mae"``), found by identity when the
    adapter passes a batch leaf as the targets to :func:`loss_metrics`.

    Example:
        >>> fn = lambda p, b: loss_metrics(losses.cross_entropy, b["x"] * p, b["y"])
        >>> shapes, checks = trace_metrics(fn, jnp.ones(3), {"x": jnp.ones((2, 3)),
        ...                                                  "y": jnp.zeros(2, jnp.int32)})
        >>> sorted(shapes), checks[0].num_classes
        (['accuracy', 'loss'], 3)
    """
    found: list[LabelCheck] = []

    def traced(p: PyTree, b: PyTree) -> dict[str, Any]:
        token = _LABEL_PROBE.set([])
        try:
            out = as_metric_dict(with_note(fn)(p, b))
            noted = _LABEL_PROBE.get() or []
        finally:
            _LABEL_PROBE.reset(token)
        leaves = jax.tree_util.tree_flatten_with_path(b)[0]
        for targets, classes, loss in noted:
            found.extend(LabelCheck(path, classes, loss) for path, leaf in leaves
                         if leaf is targets)
        return out

    return jax.eval_shape(traced, params, batch), found


def cast_floats(value: PyTree, dtype: Any | None) -> PyTree:
    """Every floating leaf of ``value`` cast to ``dtype`` (``None``: unchanged)."""
    if dtype is None:
        return value
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, value)


def accumulator_dtype(dtype: Any) -> Any:
    """The dtype sums of ``dtype`` values are kept in (at least float32)."""
    return jnp.promote_types(dtype, jnp.float32)


def scalar_metric(fn: Fn, metric: str) -> Callable[[PyTree, PyTree], jax.Array]:
    """``fn`` reduced to the one scalar metric that is differentiated."""
    def scalar(params: PyTree, batch: PyTree) -> jax.Array:
        values = as_metric_dict(fn(params, batch))
        if metric not in values:
            raise KeyError(f"fn returns the metrics {sorted(values)} but not {metric!r}; "
                           f"pass metric=<one of them>")
        value = values[metric]
        return value.astype(accumulator_dtype(value.dtype))
    return scalar


def loss_metrics(loss_fn: Callable, outputs: Any, targets: Any) -> Any:
    """``loss_fn(outputs, targets)`` as a metric dict (a bare value is ``loss``);
    used by the framework adapters."""
    probe = _LABEL_PROBE.get()
    if probe is not None:  # traced by trace_metrics: note integer labels to check on the host
        classes = losses.label_classes(loss_fn, outputs, targets)
        if classes is not None:
            probe.append((targets, classes, getattr(loss_fn, "__name__", "loss")))
    value = loss_fn(outputs, targets)
    return value if isinstance(value, Mapping) else {"loss": value}


@dataclass(frozen=True)
class OutputSplit:
    """A model split into its outputs and a loss on the outputs, for the Gauss–Newton
    operator (``js.hessian``'s ``operator="ggn"``).

    The adapters attach one to their ``fn`` as ``fn.jaxsurf_split``;
    :func:`jaxsurf.hessian.output_split` makes one for a plain function.

    Attributes:
        outputs: ``outputs(params, state, batch) -> (outputs, targets)``: the
            model's outputs (any pytree of arrays, e.g. logits) on the batch and
            what the loss compares them with; ``state`` is the model state the
            adapter keeps for ``params`` (``None`` without state).
        loss: ``loss(outputs, targets)`` → scalar or dict of scalars, the batch
            means that ``fn`` returns.
        loss_name: the loss's name, for messages (``"cross_entropy"``, ``"mse"`` ...).
    """

    outputs: Callable[[PyTree, Any, Any], tuple[Any, Any]]
    loss: Callable[[Any, Any], Any]
    loss_name: str = "loss"
