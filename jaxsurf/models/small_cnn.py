"""A small convolutional net for 28x28x1 images (Fashion-MNIST): the model of
the quick demo.

Three conv(3x3)-BatchNorm-ReLU blocks with 32, 64 and 64 filters, a 2x2 max
pool after the first two, then a dense layer on the flattened 7x7x64 map:
about 87k parameters. Measured on 2 CPU cores (standardised inputs, Adam
1e-3, batch 128, ~45 s per epoch): 88.2% Fashion-MNIST test accuracy after one
epoch, 90.4% after two.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxsurf.models import SmallCNN, num_params
    >>> v = jax.eval_shape(SmallCNN().init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    >>> num_params(v)
    87274
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxsurf.models._layers import Dtype, conv_init

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """conv-BN-ReLU blocks (max pool after all but the last), flatten, dense.

    Attributes:
      num_classes: outputs of the head.
      features: filters of each block.
      dtype: computation dtype (logits are float32).

    Input: NHWC float images, 28x28x1 for Fashion-MNIST. Output: logits.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.zeros((2, 28, 28, 1))
      >>> v = jax.eval_shape(SmallCNN().init, jax.random.key(0), x)   # shapes only
      >>> jax.eval_shape(SmallCNN().apply, v, x).shape
      (2, 10)
    """

    num_classes: int = 10
    features: Sequence[int] = (32, 64, 64)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = jnp.asarray(x, self.dtype)
        for i, features in enumerate(self.features):
            x = nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                        kernel_init=conv_init, dtype=self.dtype, name=f"conv{i}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             dtype=self.dtype, name=f"bn{i}")(x)
            x = nn.relu(x)
            if i < len(self.features) - 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
        return jnp.asarray(x, jnp.float32)
