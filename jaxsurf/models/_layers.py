"""Small shared pieces of the seed's networks: activations and initialisers.

Example:
    >>> from jaxsurf.models._layers import activation_fn
    >>> float(activation_fn("relu")(-1.0))
    0.0
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

__all__ = ["Activation", "ACTIVATIONS", "activation_fn", "conv_init", "Dtype"]

Dtype = Any
Activation = str | Callable[[jnp.ndarray], jnp.ndarray]

ACTIVATIONS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "sigmoid": nn.sigmoid,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "softplus": nn.softplus,
    "swish": nn.swish,
    "identity": lambda y: y,
    "linear": lambda y: y,
}

# He et al. 2015 ("Delving deep into rectifiers") initialisation, used by the
# ResNet and DenseNet papers for their convolutions.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def activation_fn(activation: Activation) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """Returns the activation function for a name (``"tanh"``, ``"relu"``, ...)
    or the callable itself.

    Args:
      activation: a key of ``ACTIVATIONS`` or a callable ``f(y) -> y'``.

    Returns:
      The element-wise function.

    Example:
      >>> import jax.numpy as jnp
      >>> activation_fn("tanh")(jnp.zeros(2)).tolist()
      [0.0, 0.0]
    """
    if callable(activation):
        return activation
    try:
        return ACTIVATIONS[activation.lower()]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; "
                         f"use one of {sorted(ACTIVATIONS)} or a callable") from None
