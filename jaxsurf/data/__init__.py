"""Host-side data loaders for the seed's experiments.

Every loader returns numpy arrays on the host (uint8 images, int32 labels,
float32 features) in one layout::

    {"train": {"x": ..., "y": ...}, "val": {...}, "test": {...},
     "name": str, "num_classes": int | None, "synthetic": bool, ...}

Text: :func:`load_python_source` gives byte-level next-token sequences of the
Python standard library's own source, ``{"x", "y", "mask"}`` per split, split
by file and recorded. Synthetic stand-ins say so (``"synthetic": True`` and a ``"description"``).
Move a split to the device with ``jax.device_put(ds["train"])``; the core's
Flax adapter accepts dict batches with keys ``x``/``y``. The analysis core
never imports this package.

Example:
    >>> from jaxsurf import data
    >>> ds = data.fake_image_dataset("cifar10", n=8)
    >>> x = data.standardize(ds["train"]["x"])
    >>> x.dtype, x.shape
    (dtype('float32'), (8, 32, 32, 3))
"""

from __future__ import annotations

from jaxsurf.data.augment import augment, random_crop, random_flip
from jaxsurf.data.fashion_mnist import CLASS_NAMES as FASHION_MNIST_CLASSES
from jaxsurf.data.fashion_mnist import find_fashion_mnist, load_fashion_mnist
from jaxsurf.data.gene_expression import (N_LANDMARKS, N_TARGETS, find_dgex_files,
                                          load_gene_expression, synthetic_gene_expression)
from jaxsurf.data.idx import IDXFormatError, read_idx
from jaxsurf.data.preprocess import channel_stats, split_validation, standardize
from jaxsurf.data.python_source import load_python_source
from jaxsurf.data.tfds_loader import fake_image_dataset, load_tfds

__all__ = [
    "load_fashion_mnist",
    "find_fashion_mnist",
    "FASHION_MNIST_CLASSES",
    "read_idx",
    "IDXFormatError",
    "standardize",
    "channel_stats",
    "split_validation",
    "augment",
    "random_crop",
    "random_flip",
    "load_tfds",
    "fake_image_dataset",
    "load_gene_expression",
    "synthetic_gene_expression",
    "find_dgex_files",
    "N_LANDMARKS",
    "N_TARGETS",
    "load_python_source",
]
