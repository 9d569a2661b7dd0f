"""The implementation of :mod:`jaxsurf.equinox`; its public face, with the
documentation and examples, is ``jaxsurf/equinox.py``."""

from __future__ import annotations

from typing import Any, Callable

import jax

from jaxsurf import _state, _tree as tree
from jaxsurf._flax import batch_mask, masked_metrics, output_split, split_batch
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
          mask_key: str | None = None) -> tuple[Callable[[PyTree, Any], Any], PyTree]:
    """Turns an Equinox model (and its ``eqx.nn.State``, if any) into ``(fn, params)``.

    Args:
        model: an ``equinox.Module`` called on one example: ``model(x)``, or
            ``model(x, state) -> (output, state)`` when ``state`` is given.
        state: the model's ``eqx.nn.State`` (BatchNorm statistics), from
            ``eqx.nn.make_with_state``; ``None`` for stateless models.
        loss: ``"cross_entropy"`` (with ``accuracy``), ``"mse"``, ``"mae"``, or
            a callable ``loss(outputs, targets) -> scalar | dict`` on the batch.
        input_key, target_key: dict-batch keys, if not one of the common names.
        mask_key: a padding mask's dict-batch key (default ``"mask"`` when
            present), passed to the loss as ``mask=`` (see ``js.flax.adapt``).

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

    def outputs_of(params: PyTree, state: Any, batch: Any) -> tuple[Any, Any]:
        inputs, targets = split_batch(batch, input_key, target_key)
        net = eqx.combine(params, static)
        if state is None:
            return jax.vmap(net)(inputs), targets
        return jax.vmap(lambda x: net(x, state)[0])(inputs), targets

    def apply(params: PyTree, state: Any, batch: Any) -> Any:
        return masked_metrics(loss_fn, *outputs_of(params, state, batch),
                              batch_mask(batch, mask_key))

    def fn(params: PyTree, batch: Any) -> Any:  # params from another adapt: their own state
        return apply(params, state if state is None else _state.lookup(params, state)[0], batch)

    tree.check_arrays(params)
    fn.jaxsurf_split = output_split(  # type: ignore[attr-defined]
        lambda p, s, batch: outputs_of(p, state if s is None else s, batch), loss_fn, mask_key)
    if state is not None:
        fn.jaxsurf_state = _state.StatefulFn(state, params, apply)  # type: ignore[attr-defined]
        _state.register(params, state)
    return fn, params
