"""Dense regression nets of the D-GEX / TAAF gene-expression work.

D-GEX (Chen, Li, Narayan, Subramanian, Xie, "Gene expression inference with
deep learning", Bioinformatics 2016): 943 landmark genes in, half of the
~9,520 target genes (4,760) out; 1-3 hidden layers of 3,000-9,000 tanh
units, linear output, dropout before every layer after the first.

TAAF (Kunc & Kléma, "Transformative adaptive activation functions in neural
networks for gene expression inference", PLoS ONE 2021): every hidden
neuron's activation becomes ``g(y) = alpha * f(beta * y + gamma) + delta``
with its own trainable alpha, beta, gamma, delta. Initialised to
alpha = beta = 1, gamma = delta = 0, the net starts as the plain one.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxsurf.models import DenseRegressor
    >>> model = DenseRegressor(hidden=2, width=32, outputs=5, taaf=True)
    >>> x = jnp.ones((4, 942))
    >>> v = model.init(jax.random.key(0), x)
    >>> model.apply(v, x).shape, v["params"]["taaf_0"]["alpha"].shape
    ((4, 5), (32,))
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxsurf.models._layers import Activation, Dtype, activation_fn

__all__ = ["TAAF", "DenseRegressor"]


class TAAF(nn.Module):
    """Transformative adaptive activation ``alpha * f(beta * y + gamma) + delta``.

    One alpha, beta, gamma, delta per neuron (last axis), Flax params of shape
    ``(features,)``, starting at 1, 1, 0, 0 (Kunc & Kléma 2021).

    Attributes:
      activation: the inner function f (name or callable).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> v = TAAF("tanh").init(jax.random.key(0), jnp.ones((2, 3)))
      >>> sorted(v["params"])
      ['alpha', 'beta', 'delta', 'gamma']
    """

    activation: Activation = "tanh"

    @nn.compact
    def __call__(self, y: jnp.ndarray) -> jnp.ndarray:
        shape = (y.shape[-1],)
        alpha = self.param("alpha", nn.initializers.ones, shape)
        beta = self.param("beta", nn.initializers.ones, shape)
        gamma = self.param("gamma", nn.initializers.zeros, shape)
        delta = self.param("delta", nn.initializers.zeros, shape)
        f = activation_fn(self.activation)
        return (alpha * f(beta * y + gamma) + delta).astype(y.dtype)


class DenseRegressor(nn.Module):
    """``hidden`` layers of ``width`` units, activation, dropout; linear output.

    Parameters are named ``hidden_{i}`` and ``output`` (Dense layers) and, with
    ``taaf=True``, ``taaf_{i}``; the Dense weights of the plain and the TAAF
    variant are therefore interchangeable.

    Attributes:
      hidden: number of hidden layers.
      width: units per hidden layer.
      outputs: number of regression targets (4,760 in D-GEX).
      dropout: dropout rate after every hidden layer (active only with
        ``train=True``; needs the ``"dropout"`` rng then).
      activation: hidden activation f (``"tanh"`` in D-GEX).
      taaf: wrap every hidden neuron's activation in a TAAF.
      dtype: computation dtype (outputs are float32).

    Input: ``(N, features)`` float array. Output: ``(N, outputs)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = DenseRegressor(hidden=1, width=8, outputs=3, dropout=0.5)
      >>> x = jnp.ones((2, 4))
      >>> v = model.init(jax.random.key(0), x)
      >>> y = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)})
      >>> y.shape
      (2, 3)
    """

    hidden: int = 3
    width: int = 3000
    outputs: int = 4760
    dropout: float = 0.1
    activation: Activation = "tanh"
    taaf: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        f = activation_fn(self.activation)
        x = jnp.asarray(x, self.dtype)
        for i in range(self.hidden):
            x = nn.Dense(self.width, dtype=self.dtype, name=f"hidden_{i}")(x)
            x = TAAF(self.activation, name=f"taaf_{i}")(x) if self.taaf else f(x)
            if self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train, name=f"dropout_{i}")(x)
        x = nn.Dense(self.outputs, dtype=self.dtype, name="output")(x)
        return jnp.asarray(x, jnp.float32)
