"""The implementation of :mod:`jaxsurf.flax`; its public face, with the
documentation and examples, is ``jaxsurf/flax.py``."""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, Mapping

import jax

from jaxsurf import _state, _tree as tree
from jaxsurf._engine.metrics import OutputSplit, loss_metrics
from jaxsurf._losses import get_loss, takes_mask
from jaxsurf._tree import PyTree

__all__ = ["adapt", "linen_metrics_fn", "split_batch", "eval_mode_kwargs", "batch_mask",
           "output_split",
           "masked_metrics"]

INPUT_KEYS = ("x", "image", "images", "inputs", "input", "features")
TARGET_KEYS = ("y", "label", "labels", "targets", "target")
MASK_KEY = "mask"  # a dict batch's padding mask (1: a real target token), passed as mask=
_EVAL_FLAGS = {"train": False, "training": False, "is_training": False,
               "deterministic": True, "use_running_average": True}


def split_batch(batch: Any, input_key: str | None = None,
                target_key: str | None = None) -> tuple[Any, Any]:
    """``(inputs, targets)`` from a tuple/list batch (``(inputs, targets)`` or
    ``(inputs, targets, mask)``) or a dict batch."""
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        def pick(given: str | None, candidates: tuple[str, ...], role: str) -> Any:
            if given is not None:
                if given not in batch:
                    raise KeyError(f"batch has no key {given!r} for the {role}; it has "
                                   f"{sorted(batch)}")
                return batch[given]
            for key in candidates:
                if key in batch:
                    return batch[key]
            raise KeyError(f"cannot tell which batch entry holds the {role}: keys are "
                           f"{sorted(batch)}; pass {role[:-1] if role.endswith('s') else role}"
                           f"_key=... to js.flax.adapt")
        return (pick(input_key, INPUT_KEYS, "inputs"), pick(target_key, TARGET_KEYS, "target"))
    raise TypeError(f"a batch must be an (inputs, targets) tuple or a dict, got "
                    f"{type(batch).__name__}")


def batch_mask(batch: Any, mask_key: str | None = None) -> Any:
    """The padding mask of a batch, or ``None``: a dict batch's ``mask_key`` entry
    (default ``"mask"``, used when present; a ``mask_key`` given must be there),
    or the third item of an ``(inputs, targets, mask)`` tuple."""
    if isinstance(batch, (tuple, list)):
        return batch[2] if len(batch) == 3 else None
    if isinstance(batch, Mapping):
        if mask_key is not None and mask_key not in batch:
            raise KeyError(f"batch has no key {mask_key!r} for the padding mask; it has "
                           f"{sorted(batch)}")
        return batch.get(mask_key or MASK_KEY)
    return None


def masked_metrics(loss_fn: Callable, outputs: Any, targets: Any, mask: Any) -> Any:
    """``loss_metrics`` of ``loss_fn``, given ``mask=`` when the batch has one.

    A batch with a padding mask and a loss that takes no ``mask=`` is refused:
    averaging over the padded positions too would be silently wrong.
    """
    if mask is None:
        return loss_metrics(loss_fn, outputs, targets)
    if not takes_mask(loss_fn):
        name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
        raise ValueError(f"the batch has a padding mask but the loss {name} takes no mask=; "
                         f"use loss='next_token' (js.losses.next_token_cross_entropy), a "
                         f"loss(outputs, targets, mask=None) of your own, or drop the "
                         f"batch's {MASK_KEY!r} entry if it is not a padding mask")
    return loss_metrics(lambda o, t: loss_fn(o, t, mask=mask), outputs, targets)


def eval_mode_kwargs(call: Callable) -> dict[str, Any]:
    """Keyword flags that put a Linen ``__call__`` in evaluation mode, read off
    its signature (``train=False``, ``deterministic=True``, ...)."""
    try:
        names = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return {}
    return {name: value for name, value in _EVAL_FLAGS.items() if name in names}


def adapt(model: Any, variables: Mapping[str, Any] | None = None, *,
          loss: str | Callable = "cross_entropy", input_key: str | None = None,
          target_key: str | None = None, apply_kwargs: Mapping[str, Any] | None = None,
          include_state: bool = False, mask_key: str | None = None
          ) -> tuple[Callable[[PyTree, Any], Any], PyTree]:
    """Turns a Flax Linen module (with its variables) or an NNX model into
    ``(fn, params)``.

    Args:
        model: a ``flax.linen.Module`` or a ``flax.nnx.Module``.
        variables: Linen variables ``{'params': ..., 'batch_stats': ...}``
            (not used for NNX).
        loss: ``"cross_entropy"`` (with ``accuracy``), ``"mse"``, ``"mae"``,
            ``"next_token"`` (a language model's per-token cross-entropy, see
            :func:`jaxsurf.losses.next_token_cross_entropy`), or a callable
            ``loss(outputs, targets) -> scalar | dict``.
        input_key, target_key: dict-batch keys, if not one of the common names.
        mask_key: the dict-batch key of a padding mask (default: ``"mask"``
            when the batch has it; an ``(inputs, targets, mask)`` tuple works
            too). The mask is passed to the loss as ``mask=``; a loss without
            that keyword is refused rather than averaged over padding.
        apply_kwargs: extra keywords for the Linen ``apply``; by default the
            evaluation-mode flag found in the signature (``train=False``,
            ``deterministic=True``, ...).
        include_state: Linen only: ``params`` is then every collection
            (``{'params': ..., 'batch_stats': ...}``), so directions can move
            the running statistics too, as the reference tool's
            ``--dir_type states`` does (``ignore="biasbn"`` still zeroes them:
            they belong to normalization layers).

    Returns:
        ``fn(params, batch) -> {'loss': ..., ...}`` (batch means) and the
        trainable params pytree that directions are drawn against.

    Example:
        >>> fn, params = js.flax.adapt(model, variables, loss="cross_entropy")
        >>> sorted(params)      # the trainable params; fn holds the batch_stats
        ['BatchNorm_0', 'Dense_0', 'Dense_1']
    """
    if type(model).__module__.split(".")[0] == "equinox" or any(
            c.__module__.startswith("equinox") for c in type(model).__mro__[1:]):
        raise TypeError(f"{type(model).__name__} is an Equinox module: use "
                        f"js.equinox.adapt(model, state) instead of js.flax.adapt")
    loss_fn = get_loss(loss)
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - very old flax
        nnx = None
    if nnx is not None and isinstance(model, nnx.Module):
        if include_state:
            raise ValueError("include_state=True is for Linen; for NNX, evaluate your own "
                             "fn over nnx.split(model) states")
        return _adapt_nnx(nnx, model, loss_fn, input_key, target_key, mask_key)
    if variables is None or "params" not in variables:
        raise ValueError("a Linen module needs its variables, e.g. "
                         "adapt(module, module.init(key, x)); they must hold 'params'")
    kwargs = dict(eval_mode_kwargs(model.__call__) if apply_kwargs is None else apply_kwargs)
    if include_state:
        every = dict(variables)
        tree.check_arrays(every)
        metrics_all = linen_metrics_fn(model, loss=loss_fn, input_key=input_key,
                                       target_key=target_key, apply_kwargs=apply_kwargs,
                                       mask_key=mask_key)

        def every_outputs(variables: PyTree, state: Any, batch: Any) -> tuple[Any, Any]:
            inputs, targets = split_batch(batch, input_key, target_key)
            return model.apply(variables, inputs, **kwargs), targets

        metrics_all.jaxsurf_split = output_split(  # type: ignore[attr-defined]
            every_outputs, loss_fn, mask_key)
        return metrics_all, every
    frozen = {k: v for k, v in variables.items() if k != "params"}
    params = variables["params"]
    tree.check_arrays(params)
    metrics_of = linen_metrics_fn(model, loss=loss_fn, input_key=input_key,
                                  target_key=target_key, apply_kwargs=apply_kwargs,
                                  mask_key=mask_key)

    def apply(params: PyTree, state: PyTree, batch: Any) -> Any:
        return metrics_of({"params": params, **state}, batch)

    def fn(params: PyTree, batch: Any) -> Any:  # params from another adapt: their own state
        return apply(params, _state.lookup(params, frozen)[0], batch)

    def outputs(params: PyTree, state: Any, batch: Any) -> tuple[Any, Any]:
        inputs, targets = split_batch(batch, input_key, target_key)
        return model.apply({"params": params, **(frozen if state is None else state)}, inputs,
                           **kwargs), targets

    recompute = _linen_recompute(model, input_key, target_key)
    fn.jaxsurf_state = _state.StatefulFn(  # type: ignore[attr-defined]
        frozen, params, apply, recompute,
        _linen_train_metrics(model, loss_fn, input_key, target_key, mask_key))
    fn.jaxsurf_split = output_split(outputs, loss_fn, mask_key)  # type: ignore[attr-defined]
    _state.register(params, frozen)
    return fn, params


def output_split(outputs: Callable[[PyTree, Any, Any], tuple[Any, Any]], loss_fn: Callable,
                 mask_key: str | None = None) -> OutputSplit:
    """The model's outputs and the loss on them, for ``js.hessian``'s ``operator="ggn"``.

    The split's loss sees no padding mask, so a batch that carries one is refused
    rather than counted with its padded positions."""
    def unmasked(params: PyTree, state: Any, batch: Any) -> tuple[Any, Any]:
        if batch_mask(batch, mask_key) is not None:
            raise ValueError("operator='ggn' does not take a padding mask yet (the batch has "
                             "one): use operator='hessian' or 'fisher', or data without "
                             "padding and no mask")
        return outputs(params, state, batch)

    return OutputSplit(unmasked, lambda out, targets: loss_metrics(loss_fn, out, targets),
                       getattr(loss_fn, "__name__", "loss"))


_TRAIN_FLAGS = {"train": True, "training": True, "is_training": True,
                "use_running_average": False}


def _train_flags(module: Any) -> dict[str, bool] | None:
    """The keyword arguments that put a Linen module in training mode with dropout
    off where a ``deterministic`` flag allows, or None when it has no such flag."""
    try:
        names = inspect.signature(module.__call__).parameters
    except (TypeError, ValueError):
        return None
    flags = {k: v for k, v in _TRAIN_FLAGS.items() if k in names}
    if not flags:
        return None
    if "deterministic" in names:
        flags["deterministic"] = True
    return flags


def _linen_train_metrics(module: Any, loss_fn: Callable, input_key: str | None,
                         target_key: str | None, mask_key: str | None) -> Callable | None:
    """``train_metrics(params, state, batch)``: the metrics with BatchNorm on the
    batch's own statistics (the running ones are neither used nor updated), or
    None when the module has no training-mode flag."""
    flags = _train_flags(module)
    if flags is None:
        return None

    def train_metrics(params: PyTree, state: PyTree, batch: Any) -> Any:
        inputs, targets = split_batch(batch, input_key, target_key)
        outputs, _ = module.apply({"params": params, **state}, inputs,
                                  mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)},
                                  **flags)
        return masked_metrics(loss_fn, outputs, targets, batch_mask(batch, mask_key))

    return train_metrics


def _linen_recompute(module: Any, input_key: str | None, target_key: str | None
                     ) -> Callable | None:
    """``recompute(params, state, batches) -> state`` with ``batch_stats`` re-estimated
    in training mode (dropout off where a ``deterministic`` flag allows), or None
    when the module has no training-mode flag."""
    flags = _train_flags(module)
    if flags is None:
        return None

    @jax.jit  # params are an argument: compiled once, not once per point
    def update_with(params: PyTree, other: PyTree, start: PyTree, inputs: Any) -> PyTree:
        _, new = module.apply({"params": params, **other, "batch_stats": start}, inputs,
                              mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)},
                              **flags)
        return new["batch_stats"]

    def recompute(params: PyTree, state: PyTree, batches: list) -> PyTree:
        other = {k: v for k, v in state.items() if k != "batch_stats"}
        pairs = [(split_batch(b, input_key, target_key)[0], n) for b, n in batches]
        stats = _state.estimate_from_updates(
            lambda start, inputs: update_with(params, other, start, inputs),
            state["batch_stats"], pairs)
        return {**state, "batch_stats": stats}

    return recompute


def linen_metrics_fn(module: Any, *, loss: str | Callable = "cross_entropy",
                     input_key: str | None = None, target_key: str | None = None,
                     apply_kwargs: Mapping[str, Any] | None = None,
                     mask_key: str | None = None,
                     ) -> Callable[[Mapping[str, Any], Any], Any]:
    """``fn(variables, batch)`` for a Linen module in evaluation mode: like
    :func:`adapt` but over *all* variables (e.g. to evaluate while BatchNorm
    statistics change during training).

    Example:
        >>> p, s = variables["params"], variables["batch_stats"]
        >>> metrics = linen_metrics_fn(model)({"params": p, "batch_stats": s},
        ...                                   (data["x"], data["y"]))
        >>> sorted(metrics)
        ['accuracy', 'loss']
    """
    loss_fn = get_loss(loss)
    kwargs = dict(eval_mode_kwargs(module.__call__) if apply_kwargs is None else apply_kwargs)

    def fn(variables: Mapping[str, Any], batch: Any) -> Any:
        inputs, targets = split_batch(batch, input_key, target_key)
        return masked_metrics(loss_fn, module.apply(variables, inputs, **kwargs), targets,
                              batch_mask(batch, mask_key))

    return fn


def _adapt_nnx(nnx: Any, model: Any, loss_fn: Callable, input_key: str | None,
               target_key: str | None, mask_key: str | None = None
               ) -> tuple[Callable, PyTree]:
    model = copy.deepcopy(model)
    model.eval()
    graphdef, param_state, rest = nnx.split(model, nnx.Param, ...)
    params = nnx.to_pure_dict(param_state)

    def apply(params: PyTree, rest: PyTree, batch: Any) -> Any:
        state = jax.tree_util.tree_map(lambda x: x, param_state)
        nnx.replace_by_pure_dict(state, params)
        inputs, targets = split_batch(batch, input_key, target_key)
        outputs = nnx.merge(graphdef, state, rest)(inputs)
        return masked_metrics(loss_fn, outputs, targets, batch_mask(batch, mask_key))

    def fn(params: PyTree, batch: Any) -> Any:  # params from another adapt: their own state
        return apply(params, _state.lookup(params, rest)[0], batch)

    def outputs(params: PyTree, state: Any, batch: Any) -> tuple[Any, Any]:
        merged = jax.tree_util.tree_map(lambda x: x, param_state)
        nnx.replace_by_pure_dict(merged, params)
        inputs, targets = split_batch(batch, input_key, target_key)
        return nnx.merge(graphdef, merged, rest if state is None else state)(inputs), targets

    @jax.jit  # params are an argument: compiled once, not once per point
    def update_with(params: PyTree, start: PyTree, inputs: Any) -> PyTree:
        state = jax.tree_util.tree_map(lambda x: x, param_state)
        nnx.replace_by_pure_dict(state, params)
        net = nnx.merge(graphdef, state, start)
        net.train()
        net(inputs)
        return nnx.split(net, nnx.Param, ...)[2]

    def recompute(params: PyTree, rest: PyTree, batches: list) -> PyTree:
        pairs = [(split_batch(b, input_key, target_key)[0], n) for b, n in batches]
        return _state.estimate_from_updates(
            lambda start, inputs: update_with(params, start, inputs), rest, pairs)

    def train_metrics(params: PyTree, rest: PyTree, batch: Any) -> Any:
        state = jax.tree_util.tree_map(lambda x: x, param_state)
        nnx.replace_by_pure_dict(state, params)
        # a copy: the training-mode pass updates the running statistics it is given
        net = nnx.merge(graphdef, state, jax.tree_util.tree_map(lambda x: x, rest))
        # BatchNorm on the batch's statistics, dropout left off (as eval() set it)
        net.set_attributes(use_running_average=False, raise_if_not_found=False)
        inputs, targets = split_batch(batch, input_key, target_key)
        return masked_metrics(loss_fn, net(inputs), targets, batch_mask(batch, mask_key))

    fn.jaxsurf_state = _state.StatefulFn(rest, params, apply,  # type: ignore[attr-defined]
                                         recompute, train_metrics)
    fn.jaxsurf_split = output_split(outputs, loss_fn, mask_key)  # type: ignore[attr-defined]
    _state.register(params, rest)
    return fn, params
