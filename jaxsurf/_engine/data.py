"""Data as the programs take it: in-memory batches laid out for a mesh, and checks.

Example:
    >>> check_not_empty_container({"x": np.zeros(3)})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _batching as batching, _tree as tree
from jaxsurf._tree import PyTree

__all__ = ["Layout", "layout_for", "check_data_dtypes", "check_not_empty_container",
           "stream_length"]


@dataclass
class Layout:
    """In-memory data cut for a mesh with ``replicas`` devices on its ``"data"`` axis.

    ``full`` holds whole batches ``(replicas * k, batch_size, ...)``; replica
    ``r`` gets batches ``r*k .. r*k + k - 1``. Padding batches (copies of batch
    0, so that every replica has ``k``) weigh 0 in ``weights``, the others
    ``batch_size``. ``rest`` is the short last batch: a copy on every device,
    counted once.
    """

    full: PyTree | None
    weights: np.ndarray | None
    rest: PyTree | None
    num_examples: int
    batch_size: int

    @property
    def rest_size(self) -> int:
        return 0 if self.rest is None else int(jax.tree_util.tree_leaves(self.rest)[0].shape[0])


def layout_for(split: batching.SplitData, replicas: int) -> Layout:
    """Pads the full batches of ``split`` to a multiple of ``replicas``."""
    weights = None
    full = split.full
    if full is not None:
        num_full = int(jax.tree_util.tree_leaves(full)[0].shape[0])
        pad = -num_full % replicas

        def padded(x: Any) -> Any:
            xp = jnp if isinstance(x, jax.Array) else np
            return xp.concatenate([x, xp.repeat(x[:1], pad, axis=0)], axis=0)

        if pad:
            full = jax.tree_util.tree_map(padded, full)
        weights = np.array([split.batch_size] * num_full + [0] * pad, np.float32)
    return Layout(full, weights, split.rest, split.num_examples, split.batch_size)


def check_data_dtypes(batch: PyTree, what: str = "data") -> None:
    """Refuses leaves JAX cannot hold (strings, objects), naming the leaf."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(batch):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_):
            continue
        raise TypeError(f"{what} leaf {tree.leaf_path(path)} has dtype {dtype}, which JAX "
                        f"cannot compute with; convert it to numbers first (e.g. class labels "
                        f"to int32 indices)")


def check_not_empty_container(data: Any) -> None:
    if isinstance(data, (dict, tuple)) and not jax.tree_util.tree_leaves(data):
        raise ValueError("data holds no arrays; pass e.g. {'x': images, 'y': labels} or a "
                         "list of such batches")


def stream_length(data: Any) -> int | None:
    try:
        return len(data)
    except TypeError:
        return None
