"""CIFAR-style residual networks (He et al. 2016, section 4.2), with or
without shortcuts.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR
2016, section 4.2: a 3x3 convolution with 16 filters, then three stages of
``n`` basic blocks (two 3x3 convolutions each) on feature maps of 32, 16 and
8 pixels with 16, 32 and 64 filters, the first block of stages 2 and 3 using
stride 2; global average pooling and a 10-way dense layer. Depth = 6n + 2,
so ResNet-20/56/110 have n = 3/9/18 and 0.27M/0.85M/1.7M parameters.

Shortcuts: the paper uses **option A** on CIFAR -- identity shortcuts, and
where the shape changes, a stride-2 subsampling whose extra channels are zero
padding -- so "all shortcuts are parameter-free" and the published parameter
counts hold. That is our default. ``shortcut="B"`` uses a 1x1 convolution +
BatchNorm projection where the shape changes (identity elsewhere), as in the
``resnet`` models of Li et al.'s loss-landscape code; it adds about 3k
parameters to every depth.

``skip=False`` removes every shortcut (Li et al. 2018, "Visualizing the Loss
Landscape of Neural Nets", the "noshort" nets), nothing else changes: with
option A the parameter trees of the two variants are identical.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxsurf.models import resnet20, num_params
    >>> model = resnet20()
    >>> shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    >>> num_params(shapes)
    269722
"""

from __future__ import annotations

from typing import Literal

import flax.linen as nn
import jax.numpy as jnp

from jaxsurf.models._layers import Dtype, conv_init

__all__ = ["BasicBlock", "ResNetCIFAR", "resnet20", "resnet56", "resnet110"]

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers, the residual unit of He et al. 2016.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; with
    ``skip=False`` the ``+ shortcut(x)`` term is absent.

    Attributes:
      features: output channels.
      strides: stride of the first convolution (1 or 2).
      skip: keep the shortcut connection.
      shortcut: ``"A"`` (parameter-free, zero-padded) or ``"B"`` (1x1
        projection where the shape changes).
      dtype: computation dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> block = BasicBlock(features=16)
      >>> x = jnp.ones((1, 8, 8, 16))
      >>> v = jax.eval_shape(block.init, jax.random.key(0), x)   # shapes only, no compute
      >>> jax.eval_shape(block.apply, v, x).shape
      (1, 8, 8, 16)
    """

    features: int
    strides: int = 1
    skip: bool = True
    shortcut: Literal["A", "B"] = "A"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        norm = lambda name: nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                                         epsilon=BN_EPSILON, dtype=self.dtype, name=name)
        conv = lambda strides, name: nn.Conv(self.features, (3, 3), strides=strides,
                                             padding=((1, 1), (1, 1)), use_bias=False,
                                             kernel_init=conv_init, dtype=self.dtype, name=name)
        y = nn.relu(norm("bn1")(conv(self.strides, "conv1")(x)))
        y = norm("bn2")(conv(1, "conv2")(y))
        if self.skip:
            y = y + self._shortcut(x, norm)
        return nn.relu(y)

    def _shortcut(self, x: jnp.ndarray, norm) -> jnp.ndarray:
        in_features = x.shape[-1]
        if self.strides == 1 and in_features == self.features:
            return x
        if self.shortcut == "B":
            proj = nn.Conv(self.features, (1, 1), strides=self.strides, use_bias=False,
                           kernel_init=conv_init, dtype=self.dtype, name="shortcut_conv")
            return norm("shortcut_bn")(proj(x))
        if self.shortcut != "A":
            raise ValueError(f"shortcut must be 'A' or 'B', got {self.shortcut!r}")
        if self.features < in_features:
            raise ValueError("option A shortcuts cannot reduce the channel count")
        x = x[:, ::self.strides, ::self.strides, :]
        extra = self.features - in_features
        return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class ResNetCIFAR(nn.Module):
    """ResNet of depth 6n+2 for small images (He et al. 2016, section 4.2).

    Attributes:
      depth: 6n + 2, e.g. 20, 56, 110.
      num_classes: outputs of the dense head.
      skip: keep the shortcuts; ``False`` gives Li et al.'s "noshort" net.
      width: channels of the first stage (16 in the paper); stages use
        ``width``, ``2 * width``, ``4 * width``.
      shortcut: ``"A"`` (default, the paper's CIFAR choice) or ``"B"``.
      dtype: computation dtype (parameters stay float32; logits are float32).

    Input: NHWC float images of any size (32x32x3 for CIFAR-10, 28x28x1 for
    Fashion-MNIST). Output: ``(N, num_classes)`` logits.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> model = ResNetCIFAR(depth=20, skip=False)
      >>> x = jnp.zeros((2, 28, 28, 1))
      >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)   # shapes only
      >>> jax.eval_shape(lambda v: model.apply(v, x, train=False), variables).shape
      (2, 10)
    """

    depth: int = 20
    num_classes: int = 10
    skip: bool = True
    width: int = 16
    shortcut: Literal["A", "B"] = "A"
    dtype: Dtype = jnp.float32

    @property
    def blocks_per_stage(self) -> int:
        if self.depth < 8 or (self.depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1, got {self.depth}")
        return (self.depth - 2) // 6

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        n = self.blocks_per_stage
        x = jnp.asarray(x, self.dtype)
        x = nn.Conv(self.width, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                    kernel_init=conv_init, dtype=self.dtype, name="conv_init")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                         epsilon=BN_EPSILON, dtype=self.dtype, name="bn_init")(x)
        x = nn.relu(x)
        for stage in range(3):
            for b in range(n):
                strides = 2 if stage > 0 and b == 0 else 1
                x = BasicBlock(self.width * 2 ** stage, strides=strides, skip=self.skip,
                               shortcut=self.shortcut, dtype=self.dtype,
                               name=f"stage{stage + 1}_block{b}")(x, train=train)
        x = jnp.mean(x, axis=(1, 2))
        x = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x)
        return jnp.asarray(x, jnp.float32)


def resnet20(skip: bool = True, num_classes: int = 10, **kwargs) -> ResNetCIFAR:
    """ResNet-20 (n = 3, 0.27M parameters); ``skip=False`` is "resnet20_noshort".

    Args:
      skip: keep the shortcuts.
      num_classes: outputs of the head.
      **kwargs: other ``ResNetCIFAR`` attributes (``width``, ``shortcut``, ``dtype``).

    Returns:
      The (unbound) Flax module.

    Example:
      >>> resnet20(skip=False).depth
      20
    """
    return ResNetCIFAR(depth=20, skip=skip, num_classes=num_classes, **kwargs)


def resnet56(skip: bool = True, num_classes: int = 10, **kwargs) -> ResNetCIFAR:
    """ResNet-56 (n = 9, 0.85M parameters). Arguments as ``resnet20``.

    Example:
      >>> resnet56().blocks_per_stage
      9
    """
    return ResNetCIFAR(depth=56, skip=skip, num_classes=num_classes, **kwargs)


def resnet110(skip: bool = True, num_classes: int = 10, **kwargs) -> ResNetCIFAR:
    """ResNet-110 (n = 18, 1.7M parameters). Arguments as ``resnet20``.

    Example:
      >>> resnet110().blocks_per_stage
      18
    """
    return ResNetCIFAR(depth=110, skip=skip, num_classes=num_classes, **kwargs)
