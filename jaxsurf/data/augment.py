"""Jittable random-crop and horizontal-flip augmentation of NHWC image batches.

The standard CIFAR augmentation of He et al. 2016 (section 4.2): pad 4
pixels on each side, take a random crop of the original size, flip
horizontally with probability 1/2. For Fashion-MNIST a 2-pixel pad and no
flip are common; flipping is optional because it does not suit every data set.

Example:
    >>> import jax, jax.numpy as jnp
    >>> x = jnp.zeros((8, 28, 28, 1))
    >>> augment(jax.random.key(0), x, padding=2, flip=False).shape
    (8, 28, 28, 1)
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp

__all__ = ["random_crop", "random_flip", "augment"]

PadMode = Literal["constant", "zeros", "reflect", "edge"]


@partial(jax.jit, static_argnames=("padding", "mode"))
def random_crop(key: jax.Array, images: jax.Array, padding: int = 4,
                mode: PadMode = "constant") -> jax.Array:
    """Pads every image by ``padding`` pixels and crops it back at a random offset.

    Args:
      key: PRNG key.
      images: ``(N, H, W, C)`` batch (any dtype).
      padding: pixels added on each side (e.g. 2 or 4).
      mode: ``"constant"``/``"zeros"`` (zero padding), ``"reflect"`` or ``"edge"``.

    Returns:
      A batch of the same shape and dtype; each image shifted independently.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> random_crop(jax.random.key(1), jnp.ones((2, 4, 4, 3)), padding=1).shape
      (2, 4, 4, 3)
    """
    if padding == 0:
        return images
    n, h, w, _ = images.shape
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    padded = jnp.pad(images, pad, mode="constant" if mode == "zeros" else mode)
    offsets = jax.random.randint(key, (n, 2), 0, 2 * padding + 1)

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, image.shape[-1]))

    return jax.vmap(crop)(padded, offsets)


@jax.jit
def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
    """Mirrors each image left-right with probability 1/2.

    Args:
      key: PRNG key.
      images: ``(N, H, W, C)`` batch.

    Returns:
      A batch of the same shape and dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> random_flip(jax.random.key(0), jnp.ones((3, 2, 2, 1))).shape
      (3, 2, 2, 1)
    """
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flip, images[:, :, ::-1, :], images)


@partial(jax.jit, static_argnames=("padding", "mode", "flip"))
def augment(key: jax.Array, images: jax.Array, *, padding: int = 4,
            mode: PadMode = "constant", flip: bool = True) -> jax.Array:
    """Random crop (``padding``, ``mode``) then, if ``flip``, random horizontal flip.

    Args:
      key: PRNG key.
      images: ``(N, H, W, C)`` batch.
      padding: crop padding in pixels (0 for none).
      mode: padding mode, ``"constant"`` (zeros), ``"reflect"`` or ``"edge"``.
      flip: also flip left-right at random.

    Returns:
      The augmented batch, same shape and dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> augment(jax.random.key(0), jnp.ones((2, 32, 32, 3)), padding=4).shape
      (2, 32, 32, 3)
    """
    crop_key, flip_key = jax.random.split(key)
    images = random_crop(crop_key, images, padding=padding, mode=mode)
    return random_flip(flip_key, images) if flip else images
