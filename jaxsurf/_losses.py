"""The implementation of :mod:`jaxsurf.losses`; its public face, with the
documentation and examples, is ``jaxsurf/losses.py``."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LOSSES", "get_loss", "cross_entropy", "mse", "mae", "accuracy", "label_classes",
           "check_labels", "next_token_cross_entropy", "tokens_per_example", "perplexity",
           "takes_mask"]

LossFn = Callable[[jax.Array, jax.Array], dict[str, jax.Array]]


def _labels_and_one_hot(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array | None,
                                                                      jax.Array]:
    """Integer labels (or None for real-valued targets) and matching one-hot rows."""
    num_classes = outputs.shape[-1]
    if jnp.issubdtype(targets.dtype, jnp.integer):
        return targets, jax.nn.one_hot(targets, num_classes, dtype=outputs.dtype)
    if targets.shape == outputs.shape:
        return None, targets.astype(outputs.dtype)
    raise ValueError(f"targets of shape {targets.shape} and dtype {targets.dtype} do not fit "
                     f"outputs of shape {outputs.shape}: pass integer labels (batch,) or "
                     f"targets shaped like the outputs")


def accuracy(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of rows whose arg-max output is the label."""
    return jnp.mean((jnp.argmax(outputs, axis=-1) == labels).astype(jnp.float32))


def cross_entropy(outputs: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Softmax cross-entropy of logits against integer labels (or probability
    rows), with ``accuracy``."""
    labels, one_hot = _labels_and_one_hot(outputs, targets)
    logp = jax.nn.log_softmax(outputs.astype(jnp.float32), axis=-1)
    loss = -jnp.mean(jnp.sum(one_hot * logp, axis=-1))
    if labels is None:
        labels = jnp.argmax(one_hot, axis=-1)
    return {"loss": loss, "accuracy": accuracy(outputs, labels)}


def _mean_error(outputs: jax.Array, targets: jax.Array,
                error: Callable[[jax.Array], jax.Array]) -> dict[str, jax.Array]:
    """``mean(error(outputs - targets))`` over all entries; integer labels with
    2-D outputs are compared as one-hot rows and then ``accuracy`` is added."""
    outputs32 = outputs.astype(jnp.float32)
    if outputs.ndim >= 2 and jnp.issubdtype(targets.dtype, jnp.integer):
        one_hot = jax.nn.one_hot(targets, outputs.shape[-1], dtype=outputs32.dtype)
        return {"loss": jnp.mean(error(outputs32 - one_hot)),
                "accuracy": accuracy(outputs, targets)}
    return {"loss": jnp.mean(error(outputs32 - targets.reshape(outputs.shape)
                                   .astype(jnp.float32)))}


def mse(outputs: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Mean squared error; integer labels are compared as one-hot rows (as the
    seed's MSE-trained ResNet-110) and then ``accuracy`` is reported too.

    The mean is over all entries (examples x outputs), as PyTorch's
    ``nn.MSELoss()`` used by Li et al.'s reference code.
    """
    return _mean_error(outputs, targets, jnp.square)


def mae(outputs: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Mean absolute error over all entries (the D-GEX / TAAF regression loss);
    integer labels as in :func:`mse`."""
    return _mean_error(outputs, targets, jnp.abs)


def _token_mask(mask: Any, targets: jax.Array) -> jax.Array:
    """``mask`` as float32 weights shaped like ``targets`` (all ones for ``None``)."""
    if mask is None:
        return jnp.ones(targets.shape, jnp.float32)
    mask = jnp.asarray(mask)
    if mask.shape != targets.shape:
        raise ValueError(f"the padding mask has shape {mask.shape} but the targets "
                         f"{targets.shape}; give one mask entry per target token (1: a real "
                         f"token, 0: padding)")
    return mask.astype(jnp.float32)


def next_token_cross_entropy(logits: Any, targets: Any, mask: Any = None, *,
                             tokens_per_example: float | None = None
                             ) -> dict[str, jax.Array]:
    """Next-token cross-entropy of a language model, averaged over real tokens.

    ``logits[e, t]`` predicts ``targets[e, t]``, the token that follows input
    position ``t`` (the data are shifted once, when made: inputs
    ``seq[:, :-1]``, targets ``seq[:, 1:]``, as ``jaxsurf.data.load_python_source``
    gives them). Padded positions (``mask == 0``) count for nothing: the
    tokens, targets and logits there never change the value.

    What "the mean" is. With ``tokens_per_example=None`` the loss is the
    batch's mean over its real tokens, ``sum(mask * nll) / sum(mask)``. The
    engine's exact dataset mean weights each batch's value by its number of
    *examples* (sequences), so that equals the per-token mean over the whole
    data set only when every batch has the same number of real tokens per
    sequence (e.g. no padding, or one batch). Pass ``tokens_per_example``
    (the data set's real tokens per sequence, :func:`tokens_per_example`) and
    the loss is ``sum(mask * nll) / (sequences * tokens_per_example)``
    instead: a per-sequence quantity whose mean over sequences *is* the
    per-token mean over the data set, exactly, however it is batched. The
    same holds for ``accuracy`` (the fraction of real tokens predicted by the
    arg-max).

    Args:
        logits: ``(batch, length, vocab)``.
        targets: ``(batch, length)`` integer token ids in ``[0, vocab)`` (an id
            outside it makes the value NaN, not silently wrong).
        mask: ``(batch, length)``: 1 (or True) for a real target token, 0 for
            padding; ``None``: every token is real.
        tokens_per_example: the data set's ``sum(mask) / sequences``; see above.

    Returns:
        ``{"loss": ..., "accuracy": ...}`` (nats per token; see
        :func:`perplexity` for ``exp(loss)``).

    Example:
        >>> logits = jnp.zeros((1, 3, 4)).at[0, 0, 2].set(5.0)
        >>> out = next_token_cross_entropy(logits, jnp.array([[2, 1, 3]]),
        ...                                jnp.array([[1, 0, 0]]))
        >>> round(float(out["loss"]), 4), float(out["accuracy"])   # only token 0 counts
        (0.0201, 1.0)
    """
    logits = jnp.asarray(logits)
    targets = jnp.asarray(targets)
    if logits.ndim != targets.ndim + 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(f"next-token cross-entropy needs logits (batch, length, vocab) and "
                         f"targets (batch, length) of the same batch and length, got logits "
                         f"{logits.shape} and targets {targets.shape}; targets are the "
                         f"inputs shifted by one (targets[:, t] follows inputs[:, t])")
    if not jnp.issubdtype(targets.dtype, jnp.integer):
        raise ValueError(f"targets must be integer token ids, got dtype {targets.dtype}")
    weights = _token_mask(mask, targets)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    vocab = logits.shape[-1]
    picked = jnp.take_along_axis(logp, targets[..., None], axis=-1, mode="fill",
                                 fill_value=jnp.nan)[..., 0]
    in_range = (targets >= 0) & (targets < vocab)
    nll = jnp.where(weights > 0, -jnp.where(in_range, picked, jnp.nan), 0.0)
    hits = jnp.where(weights > 0, (jnp.argmax(logits, axis=-1) == targets), False)
    if tokens_per_example is None:
        denominator = jnp.maximum(jnp.sum(weights), 1.0)
    else:
        if not (isinstance(tokens_per_example, (int, float, np.number))
                and math.isfinite(float(tokens_per_example)) and tokens_per_example > 0):
            raise ValueError(f"tokens_per_example must be a positive number (the data set's "
                             f"real tokens per sequence), got {tokens_per_example!r}")
        denominator = jnp.float32(targets.shape[0] * float(tokens_per_example))
    return {"loss": jnp.sum(weights * nll) / denominator,
            "accuracy": jnp.sum(weights * hits) / denominator}


def tokens_per_example(mask: Any) -> float:
    """The real tokens per sequence of a data set, ``sum(mask) / sequences``: the
    ``tokens_per_example`` that makes :func:`next_token_cross_entropy` an exact
    per-token mean under the engine's dataset means.

    Args:
        mask: ``(sequences, length)`` padding mask of the *whole* data set that
            is evaluated (recompute it for a subset).

    Returns:
        A positive float.

    Example:
        >>> tokens_per_example(np.array([[1, 1, 1], [1, 0, 0]]))
        2.0
    """
    values = np.asarray(mask)
    if values.ndim < 1 or values.shape[0] == 0:
        raise ValueError(f"the mask holds no sequences (shape {values.shape}); give the "
                         f"data set's (sequences, length) padding mask")
    total = float(values.astype(np.float64).sum())
    if not total > 0:
        raise ValueError("the mask marks no real token (all zero): nothing to average over")
    return total / values.shape[0]


def perplexity(value: Any) -> Any:
    """``exp`` of a per-token mean loss (nats): the perplexity.

    Perplexity is a derived metric, never averaged itself: the mean of
    per-batch perplexities is not the perplexity of the data set, so take it
    of the exact mean loss the library returns.

    Args:
        value: a loss (number or array); a dict of metrics (a ``"perplexity"``
            entry is added from ``"loss"``); or a ``js.Surface`` (a copy is
            returned with ``metrics["perplexity"]`` added).

    Returns:
        The perplexity, of the same kind as ``value``.

    Example:
        >>> round(float(perplexity(np.log(256.0))), 6)   # uniform over 256 bytes
        256.0
        >>> perplexity({"loss": 0.0})
        {'loss': 0.0, 'perplexity': 1.0}
    """
    metrics = getattr(value, "metrics", None)
    if isinstance(metrics, Mapping) and dataclasses.is_dataclass(value):
        if "loss" not in metrics:
            raise KeyError(f"the surface has no 'loss' metric (it has {sorted(metrics)})")
        return dataclasses.replace(value, metrics={  # type: ignore[type-var]
            **metrics, "perplexity": np.exp(np.asarray(metrics["loss"], np.float64))})
    if isinstance(value, Mapping):
        if "loss" not in value:
            raise KeyError(f"no 'loss' among the metrics {sorted(value)}")
        loss = value["loss"]
        return {**value, "perplexity": float(np.exp(loss)) if isinstance(loss, float)
                else np.exp(np.asarray(loss, np.float64))}
    if isinstance(value, (int, float)):
        return math.exp(value)
    return np.exp(np.asarray(value, np.float64))


def takes_mask(loss: Callable) -> bool:
    """Whether a loss callable accepts a ``mask=`` keyword (a padding mask)."""
    import functools
    import inspect
    target = loss.func if isinstance(loss, functools.partial) else loss
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return "mask" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


LOSSES: dict[str, LossFn] = {"cross_entropy": cross_entropy, "ce": cross_entropy,
                             "mse": mse, "mae": mae, "next_token": next_token_cross_entropy,
                             "next_token_cross_entropy": next_token_cross_entropy}


def get_loss(loss: str | LossFn) -> LossFn:
    """A loss by name (``cross_entropy``/``ce``, ``mse``, ``mae``, ``next_token``) or a callable
    ``loss(outputs, targets) -> scalar | dict`` passed through."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {sorted(LOSSES)} or pass a "
                         f"callable loss(outputs, targets)")
    return LOSSES[loss]


def label_classes(loss: Any, outputs: Any, targets: Any) -> int | None:
    """How many classes a built-in loss one-hot encodes integer ``targets`` over
    (the outputs' last axis), or ``None`` when it does not (real-valued targets,
    1-D outputs, or a loss of your own). Works on shapes and dtypes only, so it
    may be called while ``fn`` is traced.

    Example:
        >>> label_classes(cross_entropy, jnp.zeros((4, 10)), jnp.zeros(4, jnp.int32))
        10
    """
    integer = jnp.issubdtype(jnp.result_type(targets), jnp.integer)
    if loss is cross_entropy and integer and jnp.ndim(outputs) >= 1:
        return int(jnp.shape(outputs)[-1])
    if loss in (mse, mae) and integer and jnp.ndim(outputs) >= 2:
        return int(jnp.shape(outputs)[-1])
    return None


def check_labels(labels: Any, num_classes: int, where: str, loss: str = "cross_entropy"
                 ) -> None:
    """Refuses integer labels outside ``[0, num_classes)`` (on the host).

    ``jax.nn.one_hot`` turns such a label into a row of zeros, so the loss reads
    0 and the accuracy 0 at every point, silently; this check runs once per
    data set (or per batch of a stream), never per evaluated point.

    Example:
        >>> check_labels(np.array([0, 2, 12]), 10, "data leaf ['y']")
        Traceback (most recent call last):
        ...
        ValueError: cross_entropy: the labels in data leaf ['y'] go up to 12, but the model ...
    """
    values = np.asarray(labels)
    if values.size == 0:
        return
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high < num_classes:
        return
    found = f"go up to {high}" if high >= num_classes else f"go down to {low}"
    raise ValueError(f"{loss}: the labels in {where} {found}, but the model has {num_classes} "
                     f"outputs (classes 0..{num_classes - 1}); an integer label outside that "
                     f"range is one-hot encoded as a row of zeros, so the loss and the "
                     f"accuracy would be silently wrong at every point. Give labels in "
                     f"[0, {num_classes}) (the labels found span [{low}, {high}]), or a model "
                     f"with more outputs")
