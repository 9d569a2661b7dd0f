"""The seed's networks, in Flax Linen.

Every model follows one convention: ``model.apply(variables, x, train=False)``
with ``variables = {"params": ..., "batch_stats": ...}`` (``batch_stats`` only
where there is BatchNorm); ``train=True`` updates BatchNorm statistics
(``mutable=["batch_stats"]``) and turns dropout on (rng collection
``"dropout"``). Inputs are NHWC float32 images, ``(N, features)`` for the
dense nets, or int token ids ``(N, length)`` for the language model
(:mod:`jaxsurf.models.transformer`, with its sharding rules). Kernels keep
Flax layout, output channel last.

The analysis core never imports this package.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxsurf import models
    >>> model = models.build("resnet20_noshort", num_classes=10)
    >>> model.skip
    False
    >>> shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    >>> models.num_params(shapes)
    269722
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import numpy as np

from jaxsurf.models.dense import TAAF, DenseRegressor
from jaxsurf.models.densenet import DenseNetBC, densenet_bc100, densenet_bc_small
from jaxsurf.models.resnet_cifar import BasicBlock, ResNetCIFAR, resnet20, resnet56, resnet110
from jaxsurf.models.resnet_imagenet import Bottleneck, ResNet50, ResNetImageNet, resnet50
from jaxsurf.models.small_cnn import SmallCNN
from jaxsurf.models.transformer import TransformerLM

__all__ = [
    "build",
    "available",
    "num_params",
    "ResNetCIFAR",
    "BasicBlock",
    "resnet20",
    "resnet56",
    "resnet110",
    "DenseNetBC",
    "densenet_bc100",
    "densenet_bc_small",
    "ResNetImageNet",
    "Bottleneck",
    "ResNet50",
    "resnet50",
    "DenseRegressor",
    "TAAF",
    "SmallCNN",
    "TransformerLM",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "resnet_cifar": ResNetCIFAR,
    "resnet20": resnet20,
    "resnet56": resnet56,
    "resnet110": resnet110,
    "densenet_bc": DenseNetBC,
    "densenet_bc100": densenet_bc100,
    "densenet_bc_small": densenet_bc_small,
    "resnet_imagenet": ResNetImageNet,
    "resnet50": ResNet50,
    "dense_regressor": DenseRegressor,
    "taaf_regressor": lambda **kw: DenseRegressor(taaf=True, **kw),
    "small_cnn": SmallCNN,
    "transformer_lm": TransformerLM,
}


def available() -> list[str]:
    """Names accepted by ``build`` (each ResNet name also takes a ``_noshort`` suffix).

    Returns:
      Sorted model names.

    Example:
      >>> "resnet56" in available()
      True
    """
    return sorted(_REGISTRY)


def build(name: str, **kwargs: Any) -> nn.Module:
    """Builds a model by name.

    A ``_noshort`` suffix on a ResNet name sets ``skip=False`` (Li et al.
    2018's naming, e.g. ``"resnet56_noshort"``). Case is ignored, and so is a
    dash or underscore before a number (``"ResNet-56"`` is ``"resnet56"``).

    Args:
      name: one of ``available()``, optionally with ``_noshort``.
      **kwargs: attributes of the model (``num_classes``, ``skip``, ``width``...).

    Returns:
      The unbound Flax module.

    Raises:
      ValueError: for an unknown name.

    Example:
      >>> build("dense_regressor", hidden=2, width=64, outputs=10).width
      64
    """
    key = re.sub(r"[-_](?=\d)", "", name.lower()).replace("-", "_")
    if key.endswith("_noshort"):
        key = key[: -len("_noshort")]
        if not key.startswith("resnet"):
            raise ValueError(f"'_noshort' applies to ResNets only, got {name!r}")
        kwargs = {**kwargs, "skip": False}
    if key not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[key](**kwargs)


def num_params(variables_or_params: Mapping[str, Any] | Any) -> int:
    """Counts trainable parameters.

    Args:
      variables_or_params: a Flax variables dict (only its ``"params"`` are
        counted, not ``batch_stats``), or any params pytree. Leaves may be
        arrays or ``jax.ShapeDtypeStruct`` (from ``jax.eval_shape``).

    Returns:
      The number of scalars.

    Example:
      >>> import numpy as np
      >>> num_params({"params": {"w": np.zeros((3, 4))}, "batch_stats": {"m": np.zeros(4)}})
      12
    """
    tree = variables_or_params
    if isinstance(tree, Mapping) and "params" in tree:
        tree = tree["params"]
    return int(sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree)))
