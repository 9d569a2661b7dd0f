"""Pytree helpers shared by directions, evaluation and curvature code.

Every function here treats a pytree of arrays as one long vector: ``dot``
sums over all leaves, ``check_like`` compares structure, shapes and dtypes and
names the first leaf that differs.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxsurf import tree
    >>> p = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    >>> float(tree.dot(p, p))
    6.0
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._tree import (
    PyTree,
    add,
    axpy,
    check_like,
    dot,
    fingerprint,
    leaf_path,
    norm,
    scale,
    sub,
    zeros_like,
)

__all__ = ["PyTree", "add", "axpy", "check_like", "dot", "fingerprint", "leaf_path", "norm",
           "scale", "sub", "zeros_like"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._tree", ("check_arrays", "check_finite",
    "is_float_leaf", "to_numpy",))
