"""Directions in parameter space: random, normalized, orthogonalized, between.

A direction is a pytree with exactly the structure, shapes and dtypes of the
params. Filter normalization (Li et al., 2018, Sec. 4) rescales every filter
of a random direction to the norm of the matching filter of the weights, so
that plots of networks whose weights differ by per-filter scale factors
(harmless under BatchNorm) become comparable.

Where a filter lies depends on the framework: Flax kernels keep the output
channel on the **last** axis (``[kh, kw, in, out]``, ``[in, out]``: filter
``kernel[..., j]``), Equinox and PyTorch-style weights on the **first**
(``(out, in, kh, kw)``, ``(out, in)``: filter ``weight[o]``). ``filter_axis=None``
infers it from the container; see :mod:`jaxsurf._layout` for the table and
for how ``ignore="biasbn"`` finds biases and normalization parameters.

Example:
    >>> import jax, jaxsurf as js
    >>> params = {"Dense_0": {"kernel": jax.numpy.ones((3, 2)), "bias": jax.numpy.ones(2)}}
    >>> d = js.normalize(js.random_direction(jax.random.key(0), params), params)
    >>> d["Dense_0"]["bias"]  # biases and BatchNorm parameters get zero under "biasbn"
    Array([0., 0.], dtype=float32)
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._directions import (
    between,
    describe_direction,
    head_filter_axis,
    normalize,
    orthogonalize,
    random_direction,
    random_plane,
    random_planes,
)

__all__ = ["between", "describe_direction", "head_filter_axis", "normalize", "orthogonalize",
           "random_direction", "random_plane", "random_planes"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._directions", ("METHODS",))
