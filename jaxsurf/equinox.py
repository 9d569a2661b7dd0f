"""Equinox adapter: one call turns an Equinox model into ``(fn, params)``.

Equinox models are called on **one example** (``model(x)``, or
``model(x, state)`` for models with ``eqx.nn.State``), as in Equinox's own
examples; ``fn`` vmaps the model over the batch. The model runs in inference
mode (``eqx.nn.inference_mode``): dropout is off and BatchNorm uses its
running statistics from ``state``, which stays fixed (as in Li et al.).
``params`` is the array part of the model, ``eqx.partition(model,
eqx.is_array)[0]``: its weights keep the filter (output channel) on the first
axis, which :func:`jaxsurf.normalize` infers from the Equinox layers, so
``js.random_plane(key, params)`` is right with no option.

``js.interpolate(fn, pa, pb, ...)`` between two adapted models moves the
state with the weights (each end point exactly its model; see
:mod:`jaxsurf._state`), and params from another adapted model are evaluated
with that model's state, as for :mod:`jaxsurf.flax`. Needs ``pip install
jaxsurf[equinox]``.

Example:
    >>> import equinox as eqx
    >>> class Net(eqx.Module):
    ...     linear: eqx.nn.Linear
    ...     norm: eqx.nn.BatchNorm
    ...     head: eqx.nn.Linear
    ...     def __init__(self, key):
    ...         k1, k2 = jax.random.split(key)
    ...         self.linear, self.head = eqx.nn.Linear(4, 8, key=k1), eqx.nn.Linear(8, 3, key=k2)
    ...         self.norm = eqx.nn.BatchNorm(8, axis_name="batch", mode="batch")
    ...     def __call__(self, x, state):
    ...         h, state = self.norm(self.linear(x), state)
    ...         return self.head(jnp.tanh(h)), state
    >>> model, state = eqx.nn.make_with_state(Net)(jax.random.key(0))
    >>> fn, params = js.equinox.adapt(model, state, loss="cross_entropy")
    >>> d1, d2 = js.random_plane(jax.random.key(0), params)
    >>> sorted(fn(params, data))      # data: {"x": (n, 4), "y": (n,)}
    ['accuracy', 'loss']
"""

from jaxsurf._equinox import adapt

__all__ = ["adapt"]
