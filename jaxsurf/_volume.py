"""The implementation of :mod:`jaxsurf.volume`; its public face, with the
documentation and examples, is ``jaxsurf/volume.py``."""

from __future__ import annotations

from typing import Any, Literal

import jax

from jaxsurf import _validate
from jaxsurf._directions import normalize, orthogonalize, random_direction
from jaxsurf._tree import PyTree

__all__ = ["random_directions"]


def random_directions(key: jax.Array, params: PyTree, n: int = 3, method: str = "filter",
                      ignore: Literal["biasbn"] | None = "biasbn",
                      orthogonal: bool = False, filter_axis: Any = None, *,
                      convention: str = "jaxsurf") -> tuple[PyTree, ...]:
    """``n`` normalized random directions shaped like ``params``.

    Args:
        key: random key; direction ``k`` uses ``jax.random.split(key, n)[k]``.
        params: weights at the centre of the plot.
        n: how many directions (3 for a volume).
        method, ignore, filter_axis, convention: as in :func:`jaxsurf.normalize`.
        orthogonal: Gram-Schmidt each direction against the ones before it,
            then normalize it again (which makes it only approximately
            orthogonal; in high dimension random directions are already
            nearly orthogonal).

    Returns:
        A tuple of ``n`` pytrees with the structure, shapes and dtypes of ``params``.

    Example:
        >>> d1, d2, d3 = js.random_directions(jax.random.key(0), params, n=3)
    """
    _validate.positive_int(n, "n")
    out: list[PyTree] = []
    for k in jax.random.split(key, n):
        d = normalize(random_direction(k, params), params, method, ignore, filter_axis,
                      convention=convention)
        if orthogonal:
            for previous in out:
                d = orthogonalize(d, previous)
            d = normalize(d, params, method, ignore, filter_axis, convention=convention)
        out.append(d)
    return tuple(out)
