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

from __future__ import annotations

from typing import Any, Callable

import jax

from jaxsurf import _state, _tree as tree
from jaxsurf._engine.metrics import loss_metrics
from jaxsurf._flax import split_batch
from jaxsurf._losses import get_loss
from jaxsurf._tree import PyTree

__all__ = ["adapt"]


def _eqx() -> Any:
    try:
        import equinox as eqx
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("js.equinox needs Equinox: pip install 'jaxsurf[equinox]'") from err
    return eqx


def adapt(model: Any, state: Any = None, *, loss: str | Callable = "cross_entropy",
          input_key: str | None = None, target_key: str | None = None,
          ) -> tuple[Callable[[PyTree, Any], Any], PyTree]:
    """Turns an Equinox model (and its ``eqx.nn.State``, if any) into ``(fn, params)``.

    Args:
        model: an ``equinox.Module`` called on one example: ``model(x)``, or
            ``model(x, state) -> (output, state)`` when ``state`` is given.
        state: the model's ``eqx.nn.State`` (BatchNorm statistics), from
            ``eqx.nn.make_with_state``; ``None`` for stateless models.
        loss: ``"cross_entropy"`` (with ``accuracy``), ``"mse"``, ``"mae"``, or
            a callable ``loss(outputs, targets) -> scalar | dict`` on the batch.
        input_key, target_key: dict-batch keys, if not one of the common names.

    Returns:
        ``fn(params, batch) -> {'loss': ..., ...}`` (batch means) and the
        array part of the model.

    Raises:
        TypeError: ``model`` is not an Equinox module, or ``state`` is not an
            ``eqx.nn.State``.

    Example:
        >>> import equinox as eqx
        >>> mlp = eqx.nn.MLP(4, 3, 16, 2, key=jax.random.key(0))
        >>> fn, params = js.equinox.adapt(mlp, loss="mse")
        >>> batch = {"x": np.ones((5, 4), np.float32), "y": np.zeros((5, 3), np.float32)}
        >>> fn(params, batch)["loss"].shape
        ()
    """
    eqx = _eqx()
    if not isinstance(model, eqx.Module):
        raise TypeError(f"js.equinox.adapt needs an equinox.Module, got "
                        f"{type(model).__name__}; for Flax models use js.flax.adapt")
    if state is not None and not isinstance(state, eqx.nn.State):
        raise TypeError(f"state must be the eqx.nn.State from eqx.nn.make_with_state, got "
                        f"{type(state).__name__}")
    loss_fn = get_loss(loss)
    model = eqx.nn.inference_mode(model, True)
    params, static = eqx.partition(model, eqx.is_array)

    def apply(params: PyTree, state: Any, batch: Any) -> Any:
        inputs, targets = split_batch(batch, input_key, target_key)
        net = eqx.combine(params, static)
        if state is None:
            outputs = jax.vmap(net)(inputs)
        else:
            outputs = jax.vmap(lambda x: net(x, state)[0])(inputs)
        return loss_metrics(loss_fn, outputs, targets)

    def fn(params: PyTree, batch: Any) -> Any:  # params from another adapt: their own state
        return apply(params, state if state is None else _state.lookup(params, state)[0], batch)

    tree.check_arrays(params)
    if state is not None:
        fn.jaxsurf_state = _state.StatefulFn(state, params, apply)  # type: ignore[attr-defined]
        _state.register(params, state)
    return fn, params
