"""Turning user data into device-resident batches whose means combine exactly.

In-memory data (an array, or a dict / tuple / namedtuple of arrays with a
shared leading example axis) is split into ``num_full`` batches of
``batch_size`` stacked along a new leading axis, plus one *short* last batch
holding the remainder. The two are evaluated separately and combined with
weights ``batch_size`` and ``len(rest)``, so the dataset mean is exact: no
example is dropped and no padding enters a batch mean (which matters for
models that normalise with batch statistics).

Anything else iterable (a list of batches, a generator, a ``tf.data``
pipeline) is a stream of batches, read once.

Example:
    >>> import numpy as np
    >>> from jaxsurf._batching import split_batches
    >>> split = split_batches({"x": np.zeros((10, 3))}, batch_size=4)
    >>> split.full["x"].shape, split.rest["x"].shape, split.num_examples
    ((2, 4, 3), (2, 3), 10)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import jax
import numpy as np

from jaxsurf import _validate
from jaxsurf._tree import PyTree, leaf_path

__all__ = ["SplitData", "is_in_memory", "num_examples", "split_batches", "iter_batches",
           "to_host_arrays", "DEFAULT_BATCH_SIZE"]

DEFAULT_BATCH_SIZE = 512


@dataclass
class SplitData:
    """Data cut into full batches ``(num_full, batch_size, ...)`` and a remainder."""

    full: PyTree | None
    rest: PyTree | None
    num_examples: int
    batch_size: int


def _is_array(x: Any) -> bool:
    return isinstance(x, (np.ndarray, jax.Array)) or (
        hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__array__"))


def _is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.partition(".")[0] == "torch" and hasattr(x, "detach")


def _torch_to_numpy(x: Any) -> np.ndarray:
    try:
        return x.detach().cpu().numpy()
    except (TypeError, RuntimeError) as err:
        raise TypeError(
            f"a PyTorch tensor of dtype {x.dtype} could not be converted to numpy ({err}); "
            f"convert it yourself, e.g. tensor.float().numpy(), and pass numpy arrays") from err


def to_host_arrays(data: PyTree) -> PyTree:
    """PyTorch tensors among ``data``'s leaves become numpy arrays; other leaves stay.

    Data loaded with PyTorch (tensors, or the batches of a ``DataLoader``) can
    then be passed as it is; nothing imports torch.

    Example:
        >>> import numpy as np
        >>> to_host_arrays({"x": np.zeros(3)})["x"].shape
        (3,)
    """
    return jax.tree_util.tree_map(lambda x: _torch_to_numpy(x) if _is_torch_tensor(x) else x,
                                  data)


def is_in_memory(data: Any) -> bool:
    """True for an array or a dict/tuple pytree of arrays; False for streams.

    Lists, generators and other iterables are streams of batches.
    """
    if isinstance(data, list) or not isinstance(data, (dict, tuple)) and not _is_array(data):
        return False
    leaves = jax.tree_util.tree_leaves(data)
    return bool(leaves) and all(_is_array(x) for x in leaves)


def num_examples(batch: PyTree, *, what: str = "data") -> int:
    """The shared leading size of every leaf; a clear error if they differ."""
    items = jax.tree_util.tree_leaves_with_path(batch)
    if not items:
        raise ValueError(f"{what} holds no arrays; pass e.g. {{'x': images, 'y': labels}}")
    sizes = {}
    for path, leaf in items:
        if np.ndim(leaf) == 0:
            raise ValueError(f"{what} leaf {leaf_path(path)} is a scalar; every leaf needs a "
                             f"leading example axis")
        sizes[leaf_path(path)] = int(np.shape(leaf)[0])
    if len(set(sizes.values())) != 1:
        listing = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"{what} leaves have different leading (example) sizes ({listing}); "
                         f"every array must have one row per example")
    size = next(iter(sizes.values()))
    if size == 0:
        raise ValueError(f"{what} is empty (0 examples); pass at least one example")
    return size


def split_batches(data: PyTree, batch_size: int | None) -> SplitData:
    """Splits in-memory ``data`` into full batches and a remainder (host arrays)."""
    data = to_host_arrays(data)
    n = num_examples(data)
    batch_size = resolve_batch_size(batch_size, n)
    num_full, rest = divmod(n, batch_size)

    def full_part(x: Any) -> Any:
        x = x[: num_full * batch_size]
        return x.reshape((num_full, batch_size) + tuple(x.shape[1:]))

    full = jax.tree_util.tree_map(full_part, data) if num_full else None
    remainder = jax.tree_util.tree_map(lambda x: x[num_full * batch_size:], data) if rest else None
    return SplitData(full, remainder, n, batch_size)


def resolve_batch_size(batch_size: int | None, n: int | None = None) -> int:
    """Validates ``batch_size``; ``None`` means ``min(n, DEFAULT_BATCH_SIZE)``."""
    if batch_size is None:
        return min(n, DEFAULT_BATCH_SIZE) if n else DEFAULT_BATCH_SIZE
    _validate.positive_int(batch_size, "batch_size")
    return int(min(batch_size, n)) if n else int(batch_size)


def iter_batches(data: Iterable[PyTree]) -> Iterator[tuple[PyTree, int]]:
    """Yields ``(batch, size)`` from a stream, checking each batch's leaves agree."""
    try:
        iterator = iter(data)
    except TypeError as err:
        raise TypeError(
            f"data must be an array, a dict/tuple of arrays with a shared leading axis, or an "
            f"iterable of such batches; got {type(data).__name__}") from err
    for index, batch in enumerate(iterator):
        batch = to_host_arrays(batch)
        yield batch, num_examples(batch, what=f"batch {index}")
