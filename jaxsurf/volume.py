"""Directions for volumes: ``n`` normalized random directions at once.

:func:`jaxsurf.random_plane` draws the two directions of a plane; a volume
(:func:`jaxsurf.evaluate_volume`) needs three. :func:`random_directions`
draws any number with the same recipe (Li et al. 2018: Gaussian, then
filter-normalized, biases and normalization parameters zeroed), each from
its own split of the key. The top Hessian eigenvectors
(:func:`jaxsurf.hessian.top_eigenpairs`) are the other usual choice (as in
Landscaper, 2025); the volume's metadata records how each direction is
normalized either way.

Example:
    >>> import jax, jax.numpy as jnp, jaxsurf as js
    >>> params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    >>> d1, d2, d3 = js.random_directions(jax.random.key(0), params, n=3)
    >>> d3["b"]
    Array([0., 0.], dtype=float32)
"""

from jaxsurf._volume import random_directions

__all__ = ["random_directions"]
