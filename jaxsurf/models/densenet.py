"""DenseNet-BC for CIFAR-sized images (Huang et al. 2017).

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017, section 3 and 4.2: an initial 3x3 convolution with
``2k`` filters; three dense blocks of ``(depth - 4) / 6`` bottleneck layers
(BN-ReLU-Conv1x1 with ``4k`` filters, BN-ReLU-Conv3x3 with ``k`` filters,
output concatenated to the input); between blocks a transition layer
(BN-ReLU-Conv1x1 to ``floor(compression * C)`` channels, 2x2 average pool);
finally BN-ReLU, global average pooling and a dense head. The paper's
DenseNet-BC (L=100, k=12) has 0.8M parameters.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxsurf.models import densenet_bc_small, num_params
    >>> shapes = jax.eval_shape(densenet_bc_small().init, jax.random.key(0),
    ...                         jnp.zeros((1, 32, 32, 3)))
    >>> num_params(shapes) < 200_000
    True
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jaxsurf.models._layers import Dtype, conv_init

__all__ = ["DenseNetBC", "densenet_bc100", "densenet_bc_small"]

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def _bn_relu_conv(x: jnp.ndarray, features: int, size: int, train: bool, dtype: Dtype,
                  name: str) -> jnp.ndarray:
    """The pre-activation composite function BN-ReLU-Conv of Huang et al."""
    x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                     dtype=dtype, name=f"{name}_bn")(x)
    pad = size // 2
    return nn.Conv(features, (size, size), padding=((pad, pad), (pad, pad)), use_bias=False,
                   kernel_init=conv_init, dtype=dtype, name=f"{name}_conv")(nn.relu(x))


class DenseNetBC(nn.Module):
    """DenseNet with bottleneck layers and compression (DenseNet-BC).

    Attributes:
      depth: total depth L; ``(L - 4)`` must be divisible by 6 (100, 40, 22...).
      growth_rate: k, the channels each layer adds (12 in the paper).
      compression: theta, the channel reduction of a transition layer (0.5).
      num_classes: outputs of the dense head.
      dtype: computation dtype (logits are float32).

    Input: NHWC float images (32x32x3 for CIFAR). Output: logits.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = DenseNetBC(depth=22, growth_rate=4)
      >>> x = jnp.zeros((2, 16, 16, 3))
      >>> v = jax.eval_shape(model.init, jax.random.key(0), x)   # shapes only, no compute
      >>> jax.eval_shape(model.apply, v, x).shape
      (2, 10)
    """

    depth: int = 100
    growth_rate: int = 12
    compression: float = 0.5
    num_classes: int = 10
    dtype: Dtype = jnp.float32

    @property
    def layers_per_block(self) -> int:
        if self.depth < 10 or (self.depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n + 4 with n >= 1, got {self.depth}")
        return (self.depth - 4) // 6

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        n, k = self.layers_per_block, self.growth_rate
        x = jnp.asarray(x, self.dtype)
        x = nn.Conv(2 * k, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                    kernel_init=conv_init, dtype=self.dtype, name="conv_init")(x)
        for block in range(3):
            for layer in range(n):
                name = f"block{block + 1}_layer{layer}"
                y = _bn_relu_conv(x, 4 * k, 1, train, self.dtype, f"{name}_bottleneck")
                y = _bn_relu_conv(y, k, 3, train, self.dtype, name)
                x = jnp.concatenate([x, y], axis=-1)
            if block < 2:
                channels = int(self.compression * x.shape[-1])
                x = _bn_relu_conv(x, channels, 1, train, self.dtype, f"transition{block + 1}")
                x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                         dtype=self.dtype, name="bn_final")(x)
        x = jnp.mean(nn.relu(x), axis=(1, 2))
        x = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
        return jnp.asarray(x, jnp.float32)


def densenet_bc100(num_classes: int = 10, **kwargs) -> DenseNetBC:
    """DenseNet-BC (L=100, k=12), the CIFAR net of Huang et al. 2017 (0.8M params).

    Args:
      num_classes: outputs of the head.
      **kwargs: other ``DenseNetBC`` attributes.

    Returns:
      The Flax module.

    Example:
      >>> densenet_bc100().layers_per_block
      16
    """
    return DenseNetBC(depth=100, growth_rate=12, num_classes=num_classes, **kwargs)


def densenet_bc_small(num_classes: int = 10, **kwargs) -> DenseNetBC:
    """A CPU-sized DenseNet-BC (L=40, k=12; 6 layers per block, ~0.18M params).

    Args:
      num_classes: outputs of the head.
      **kwargs: other ``DenseNetBC`` attributes.

    Returns:
      The Flax module.

    Example:
      >>> densenet_bc_small().layers_per_block
      6
    """
    kwargs.setdefault("depth", 40)
    kwargs.setdefault("growth_rate", 12)
    return DenseNetBC(num_classes=num_classes, **kwargs)
