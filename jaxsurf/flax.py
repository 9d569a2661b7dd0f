"""Flax adapters: one call turns a model into ``(fn, params)`` for jaxsurf.

* Linen: ``adapt(module, variables)`` with ``variables = {'params': ...,
  'batch_stats': ...}``. ``params`` is ``variables['params']``; every other
  collection (BatchNorm running statistics) stays fixed, as in Li et al.,
  where BatchNorm runs in evaluation mode with the running statistics.
* NNX: ``adapt(model)``. ``params`` is a plain nested dict of the model's
  ``nnx.Param`` values; the rest of the state (``BatchStat``, RNG state) stays
  fixed, and the model is put in evaluation mode on a copy.

The state each model came with is recorded for its params (see
:mod:`jaxsurf._state`): ``js.interpolate(fn, pa, pb, ...)`` between two
adapted models moves the running statistics with the weights, so each end
point is exactly that model (``state_policy="fixed"`` holds model A's).
Evaluating model B's params with model A's ``fn`` uses B's statistics:
``fn(pb, batch)`` looks them up, and every jaxsurf entry point that traces
``fn`` binds them first (:func:`jaxsurf._state.bind`; recorded in
``metadata["model_state"]``). Under your own ``jax.jit``/``jax.grad`` the
params are tracers and ``fn`` uses its own state: use B's ``fn`` there.
Flax kernels keep the filter (output channel) on the last axis.

Batches are ``(inputs, targets)`` tuples or dicts; for dicts the keys are
given by ``input_key`` / ``target_key`` or found among common names (``x``,
``image``, ``inputs`` / ``y``, ``label``, ``targets``).

Example:
    >>> fn, params = js.flax.adapt(model, variables, loss="cross_entropy")
    >>> metrics = fn(params, {"x": data["x"], "y": data["y"]})   # batch means
    >>> sorted(metrics)
    ['accuracy', 'loss']
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._flax import adapt, linen_metrics_fn

__all__ = ["adapt", "linen_metrics_fn"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._flax", ("split_batch", "eval_mode_kwargs",))
