"""Standardisation and splitting helpers shared by the loaders.

Example:
    >>> import numpy as np
    >>> x = np.array([[[[0]], [[255]]]], dtype=np.uint8)          # (1, 2, 1, 1)
    >>> standardize(x).ravel().tolist()
    [-1.0, 1.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["channel_stats", "standardize", "split_validation"]


def channel_stats(images: np.ndarray, *, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over all examples and pixels.

    Accumulates in float64 chunk by chunk, so a uint8 data set is never
    copied as a whole into floats.

    Args:
      images: ``(N, ..., C)`` array (uint8 or float).
      chunk: examples per accumulation step.

    Returns:
      ``(mean, std)``, float32 arrays of shape ``(C,)``.

    Example:
      >>> import numpy as np
      >>> m, s = channel_stats(np.array([[[[0.0]]], [[[2.0]]]]))
      >>> m.tolist(), s.tolist()
      ([1.0], [1.0])
    """
    if images.shape[0] == 0:
        raise ValueError("cannot compute statistics of an empty array")
    channels = images.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    for start in range(0, images.shape[0], chunk):
        block = np.asarray(images[start:start + chunk], dtype=np.float64).reshape(-1, channels)
        total += block.sum(axis=0)
        total_sq += np.square(block).sum(axis=0)
    count = images.size // channels
    mean = total / count
    var = np.maximum(total_sq / count - np.square(mean), 0.0)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def standardize(images: np.ndarray, mean: np.ndarray | float | None = None,
                std: np.ndarray | float | None = None, *, eps: float = 1e-8) -> np.ndarray:
    """``(images - mean) / std`` as float32, per channel (last axis).

    Compute ``mean``/``std`` once on the training images with
    ``channel_stats`` and pass them for the validation and test images; with
    ``None`` they are computed from ``images`` themselves.

    Args:
      images: ``(N, ..., C)`` uint8 or float array.
      mean: per-channel mean (or a scalar); ``None`` computes it.
      std: per-channel standard deviation (or a scalar); ``None`` computes it.
      eps: added to ``std`` to avoid a division by zero.

    Returns:
      A float32 array of the shape of ``images``.

    Example:
      >>> import numpy as np
      >>> train = np.arange(8, dtype=np.uint8).reshape(2, 2, 2, 1)
      >>> mean, std = channel_stats(train)
      >>> float(standardize(train, mean, std).mean())
      0.0
    """
    if mean is None or std is None:
        m, s = channel_stats(images)
        mean = m if mean is None else mean
        std = s if std is None else std
    mean = np.asarray(mean, np.float32)
    scale = np.float32(1.0) / (np.asarray(std, np.float32) + np.float32(eps))
    out = np.asarray(images, dtype=np.float32)  # copies a uint8 input, once
    if out is images:
        out = out.copy()
    out -= mean
    out *= scale
    return out


def split_validation(n: int, validation: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a fixed random validation split of ``range(n)``.

    Args:
      n: number of examples.
      validation: examples to hold out (0 <= validation < n).
      seed: numpy seed; the same seed always gives the same split.

    Returns:
      ``(train_idx, val_idx)``, each sorted (the original order is kept).

    Example:
      >>> tr, va = split_validation(10, 3, seed=0)
      >>> len(tr), len(va), sorted(set(tr) | set(va)) == list(range(10))
      (7, 3, True)
    """
    if not 0 <= validation < n:
        raise ValueError(f"validation must be in [0, {n}), got {validation}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[validation:]), np.sort(perm[:validation])
