"""The implementation of :mod:`jaxsurf.losses`; its public face, with the
documentation and examples, is ``jaxsurf/losses.py``."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LOSSES", "get_loss", "cross_entropy", "mse", "mae", "accuracy", "label_classes",
           "check_labels"]

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


LOSSES: dict[str, LossFn] = {"cross_entropy": cross_entropy, "ce": cross_entropy,
                             "mse": mse, "mae": mae}


def get_loss(loss: str | LossFn) -> LossFn:
    """A loss by name (``cross_entropy``/``ce``, ``mse``, ``mae``) or a callable
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
