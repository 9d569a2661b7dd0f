"""ResNet-50 in the ImageNet layout (He et al. 2016), with or without shortcuts.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR
2016, Table 1: a 7x7/2 convolution with 64 filters and a 3x3/2 max pool,
then four stages of [3, 4, 6, 3] bottleneck blocks (1x1, 3x3, 1x1
convolutions with 64/128/256/512 inner and 4x as many output channels),
global average pooling and a 1000-way dense layer: 25.6M parameters.
Shortcuts are identities, with a 1x1 projection + BatchNorm where the shape
changes (the paper's option B). As in most public implementations the
stride-2 downsampling sits on the 3x3 convolution of the first block of a
stage (it does not change the parameter count).

``skip=False`` removes every shortcut, projections included (Li et al.
2018's "noshort" nets). Small inputs (32x32, 28x28x1) work with either stem;
``small_stem=True`` swaps the 7x7/2 convolution and the max pool for one 3x3/1
convolution, the usual choice for CIFAR-sized images.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxsurf.models import ResNet50, num_params
    >>> shapes = jax.eval_shape(ResNet50().init, jax.random.key(0),
    ...                         jnp.zeros((1, 224, 224, 3)))
    >>> num_params(shapes)
    25557032
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxsurf.models._layers import Dtype, conv_init

__all__ = ["Bottleneck", "ResNet50", "ResNetImageNet", "resnet50"]

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


class Bottleneck(nn.Module):
    """The 1x1-3x3-1x1 bottleneck residual unit of He et al. 2016 (Fig. 5).

    Attributes:
      features: inner channels; the block outputs ``4 * features``.
      strides: stride of the 3x3 convolution.
      skip: keep the shortcut.
      dtype: computation dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> block = Bottleneck(features=4)
      >>> x = jnp.ones((1, 8, 8, 16))
      >>> v = jax.eval_shape(block.init, jax.random.key(0), x)   # shapes only, no compute
      >>> jax.eval_shape(block.apply, v, x).shape
      (1, 8, 8, 16)
    """

    features: int
    strides: int = 1
    skip: bool = True
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        def norm(name: str) -> nn.BatchNorm:
            return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                                epsilon=BN_EPSILON, dtype=self.dtype, name=name)

        def conv(features: int, size: int, strides: int, name: str) -> nn.Conv:
            pad = size // 2
            return nn.Conv(features, (size, size), strides=strides, use_bias=False,
                           padding=((pad, pad), (pad, pad)), kernel_init=conv_init,
                           dtype=self.dtype, name=name)

        out_features = 4 * self.features
        y = nn.relu(norm("bn1")(conv(self.features, 1, 1, "conv1")(x)))
        y = nn.relu(norm("bn2")(conv(self.features, 3, self.strides, "conv2")(y)))
        y = norm("bn3")(conv(out_features, 1, 1, "conv3")(y))
        if self.skip:
            shortcut = x
            if self.strides != 1 or x.shape[-1] != out_features:
                shortcut = norm("shortcut_bn")(conv(out_features, 1, self.strides,
                                                    "shortcut_conv")(x))
            y = y + shortcut
        return nn.relu(y)


class ResNetImageNet(nn.Module):
    """Bottleneck ResNet in the ImageNet layout (ResNet-50/101/152 by ``stages``).

    Attributes:
      stages: blocks per stage; ``(3, 4, 6, 3)`` is ResNet-50.
      num_classes: outputs of the head (1000 for ImageNet).
      skip: keep the shortcuts; ``False`` removes all of them.
      width: inner channels of the first stage (64); doubled per stage.
      small_stem: use one 3x3/1 convolution instead of 7x7/2 + max pool.
      dtype: computation dtype (logits are float32).

    Input: NHWC float images of any size >= 1 pixel. Output: logits.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = ResNetImageNet(stages=(1, 1, 1, 1), width=8, num_classes=10)
      >>> x = jnp.zeros((2, 28, 28, 1))
      >>> v = jax.eval_shape(model.init, jax.random.key(0), x)   # shapes only, no compute
      >>> jax.eval_shape(model.apply, v, x).shape
      (2, 10)
    """

    stages: Sequence[int] = (3, 4, 6, 3)
    num_classes: int = 1000
    skip: bool = True
    width: int = 64
    small_stem: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = jnp.asarray(x, self.dtype)
        if self.small_stem:
            x = nn.Conv(self.width, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                        kernel_init=conv_init, dtype=self.dtype, name="conv_init")(x)
        else:
            x = nn.Conv(self.width, (7, 7), strides=2, padding=((3, 3), (3, 3)), use_bias=False,
                        kernel_init=conv_init, dtype=self.dtype, name="conv_init")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                         epsilon=BN_EPSILON, dtype=self.dtype, name="bn_init")(x)
        x = nn.relu(x)
        if not self.small_stem:
            # flax's max_pool is unannotated, so pyright takes its default 'VALID' for the
            # padding type; it also accepts (low, high) pairs (see its docstring)
            x = nn.max_pool(x, (3, 3), strides=(2, 2),
                            padding=((1, 1), (1, 1)))  # pyright: ignore[reportArgumentType]
        for stage, blocks in enumerate(self.stages):
            for b in range(blocks):
                strides = 2 if stage > 0 and b == 0 else 1
                x = Bottleneck(self.width * 2 ** stage, strides=strides, skip=self.skip,
                               dtype=self.dtype, name=f"stage{stage + 1}_block{b}")(x, train=train)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
        return jnp.asarray(x, jnp.float32)


def ResNet50(num_classes: int = 1000, skip: bool = True, **kwargs) -> ResNetImageNet:  # noqa: N802
    """ResNet-50: bottleneck stages [3, 4, 6, 3] (25.6M params at 1000 classes).

    Args:
      num_classes: outputs of the head.
      skip: keep the shortcuts.
      **kwargs: other ``ResNetImageNet`` attributes (``small_stem``, ``dtype``...).

    Returns:
      The Flax module.

    Example:
      >>> tuple(ResNet50(num_classes=10).stages)
      (3, 4, 6, 3)
    """
    return ResNetImageNet(stages=(3, 4, 6, 3), num_classes=num_classes, skip=skip, **kwargs)


resnet50 = ResNet50
