"""The implementation of :mod:`jaxsurf.sharpness`; its public face, with the
documentation and examples, is ``jaxsurf/sharpness.py``."""

from __future__ import annotations

import math
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _validate, _tree as tree
from jaxsurf._engine.means import (check_float_params, labels_check, mean_over_batches,
                                   on_device)
from jaxsurf._engine.metrics import scalar_metric
from jaxsurf._engine.options import takes_engine
from jaxsurf._state import bind
from jaxsurf._tree import PyTree

__all__ = ["epsilon_sharpness", "sam_sharpness", "adaptive_sharpness", "average_sharpness"]

Fn = Callable[[PyTree, PyTree], Any]


class _Objective:
    """The exact dataset-mean loss and gradient at any params; each function is
    compiled once, on first use, and the data are uploaded once for both."""

    def __init__(self, fn: Fn, params: PyTree, data: Any, metric: str,
                 batch_size: int | None) -> None:
        check_float_params(params)
        bound = bind(fn, params)[0]  # params' own state
        self._scalar = scalar_metric(bound, metric)
        self._check = labels_check(bound, params)
        self._data = on_device(data, batch_size)
        self._batch_size = batch_size
        self._loss: Callable | None = None
        self._loss_and_grad: Callable | None = None
        self._dtypes = jax.tree_util.tree_map(lambda x: jnp.asarray(x).dtype, params)

    def loss(self, params: PyTree) -> float:
        if self._loss is None:
            self._loss = mean_over_batches(self._scalar, self._data, batch_size=self._batch_size,
                                           check=self._check)
        return float(self._loss(params))

    def loss_and_grad(self, params: PyTree) -> tuple[float, PyTree]:
        if self._loss_and_grad is None:
            self._loss_and_grad = mean_over_batches(jax.value_and_grad(self._scalar), self._data,
                                                    batch_size=self._batch_size,
                                                    check=self._check)
        value, grad = self._loss_and_grad(params)
        return float(value), jax.tree_util.tree_map(lambda g, d: g.astype(d), grad,
                                                    self._dtypes)



# --------------------------------------------------------------------------- epsilon
@jax.jit
def _ascent_step(delta: PyTree, grad: PyTree, radius: PyTree, step: float) -> PyTree:
    """``clip(delta + step * radius * sign(grad), -radius, radius)``; sign(0) = +1."""
    return jax.tree_util.tree_map(
        lambda d, g, r: jnp.clip(d + step * r * jnp.where(g >= 0, 1, -1).astype(d.dtype),
                                 -r, r),
        delta, grad, radius)


@takes_engine("js.sharpness.epsilon_sharpness")
def epsilon_sharpness(fn: Fn, params: PyTree, data: Any, *, epsilon: float = 1e-3,
                      steps: int = 10, step_size: float | None = None,
                      metric: str = "loss", batch_size: int | None = None) -> float:
    """Keskar et al.'s epsilon-sharpness in the full parameter space.

    ``phi = 100 * (max_{d in C} L(w + d) - L(w)) / (1 + L(w))`` with the box
    ``C = {d : |d_i| <= epsilon (|w_i| + 1)}`` (Keskar, Mudigere, Nocedal,
    Smelyanskiy, Tang 2017, "On large-batch training for deep learning:
    generalization gap and sharp minima", the metric of their Sec. 2.2.2 with
    ``A = I``).

    Approximation: Keskar et al. solve the inner maximisation with a few
    L-BFGS-B iterations; here it is ``steps`` steps of projected sign
    ascent, ``d <- clip(d + step_size * r * sign(grad L(w + d)), -r, r)``
    from ``d = 0`` with ``r = epsilon (|w| + 1)``, keeping the best loss
    seen. That is the exact maximiser for any separable convex loss and a
    lower bound of the true maximum in general. Cost: ``steps`` gradients and
    one loss over the data.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means.
        params: the minimum.
        data: in-memory arrays or a re-iterable stream of batches.
        epsilon: relative box size (Keskar et al. use 1e-3 and 5e-4).
        steps: ascent steps.
        step_size: fraction of the box radius per step (default
            ``2.5 / steps``).
        metric: the entry of ``fn``'s dict to perturb.
        batch_size: examples per batch for in-memory data; also taken from
            ``engine=js.Engine(batch_size=...)`` (its only field used here).

    Returns:
        The sharpness (a float; 0 for a perfectly flat box).

    Example:
        >>> js.sharpness.epsilon_sharpness(fn, params, data, epsilon=1e-3)
        0.0221
    """
    epsilon = _validate.positive_number(epsilon, "epsilon")
    steps = _validate.int_in_range(steps, "steps", 1)
    step = _validate.positive_number(2.5 / steps if step_size is None else step_size, "step_size")
    objective = _Objective(fn, params, data, metric, batch_size)
    radius = jax.tree_util.tree_map(lambda w: epsilon * (jnp.abs(w) + 1), params)
    delta = tree.zeros_like(params)
    values = []
    for _ in range(steps):
        value, grad = objective.loss_and_grad(tree.add(params, delta))
        values.append(value)
        delta = _ascent_step(delta, grad, radius, step)
    base = values[0]
    best = max([*values, objective.loss(tree.add(params, delta))])
    return 100.0 * (best - base) / (1.0 + base)


# --------------------------------------------------------------------------- SAM, ASAM
def _increase_along(objective: _Objective, params: PyTree, base: float,
                    delta: PyTree) -> float:
    return objective.loss(tree.add(params, delta)) - base


@takes_engine("js.sharpness.sam_sharpness")
def sam_sharpness(fn: Fn, params: PyTree, data: Any, *, rho: float = 0.05,
                  metric: str = "loss", batch_size: int | None = None) -> float:
    """First-order worst-case loss increase in the Euclidean ball of radius ``rho``.

    ``L(w + rho g / ||g||) - L(w)`` with ``g = grad L(w)``: the loss at SAM's
    ascent point (Foret, Kleiner, Mobahi, Neyshabur 2021,
    "Sharpness-aware minimization for efficiently improving generalization",
    with p = 2). For a quadratic it equals ``rho ||g|| + rho^2 g^T A g / (2 ||g||^2)``.
    At a zero gradient the ascent direction is undefined and 0 is returned.
    Cost: one gradient and one loss over the data.

    Args:
        fn, params, data, metric, batch_size: as in :func:`epsilon_sharpness`.
        rho: ball radius (SAM's default 0.05).

    Returns:
        The increase of the loss, a float.

    Example:
        >>> js.sharpness.sam_sharpness(fn, params, data, rho=0.05)
        0.00107
    """
    rho = _validate.positive_number(rho, "rho")
    objective = _Objective(fn, params, data, metric, batch_size)
    base, grad = objective.loss_and_grad(params)
    norm = float(tree.norm(grad))
    if norm == 0.0:
        return 0.0
    return _increase_along(objective, params, base, tree.scale(grad, rho / norm))


@takes_engine("js.sharpness.adaptive_sharpness")
def adaptive_sharpness(fn: Fn, params: PyTree, data: Any, *, rho: float = 0.5,
                       eta: float = 0.01, metric: str = "loss",
                       batch_size: int | None = None) -> float:
    """First-order worst case in ASAM's weight-scaled ball.

    With ``T_w = diag(|w| + eta)`` the region is ``{d : ||T_w^{-1} d|| <= rho}``
    and its first-order maximiser is ``d* = rho T_w^2 g / ||T_w g||``; the
    result is ``L(w + d*) - L(w)`` (Kwon, Kim, Park, Choi 2021, "ASAM:
    adaptive sharpness-aware minimization for scale-invariant learning of
    deep neural networks", with p = 2). Radii grow with ``|w|``, so the measure
    is invariant to element-wise rescalings of the weights (up to ``eta``).
    Cost: one gradient and one loss over the data.

    Args:
        fn, params, data, metric, batch_size: as in :func:`epsilon_sharpness`.
        rho: radius of the scaled ball (ASAM uses 0.5 to 2 on CIFAR).
        eta: added to ``|w|`` so that zero weights still move.

    Returns:
        The increase of the loss, a float.

    Example:
        >>> js.sharpness.adaptive_sharpness(fn, params, data, rho=0.5, eta=0.01)
        0.0202
    """
    rho = _validate.positive_number(rho, "rho")
    eta = float(eta)
    if not eta >= 0:
        raise ValueError(f"eta must be >= 0, got {eta!r}")
    objective = _Objective(fn, params, data, metric, batch_size)
    base, grad = objective.loss_and_grad(params)
    scales = jax.tree_util.tree_map(lambda w: jnp.abs(w) + eta, params)
    scaled = jax.tree_util.tree_map(jnp.multiply, scales, grad)
    norm = float(tree.norm(scaled))
    if norm == 0.0:
        return 0.0
    delta = jax.tree_util.tree_map(lambda t, tg: (rho / norm) * t * tg, scales, scaled)
    return _increase_along(objective, params, base, delta)


# --------------------------------------------------------------------------- average
def _gaussian(key: jax.Array, params: PyTree, sigma: float, scale: str) -> PyTree:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    noise = [sigma * jax.random.normal(k, jnp.shape(w), jnp.asarray(w).dtype)
             * (jnp.abs(w) if scale == "weight" else 1) for k, w in zip(keys, leaves)]
    return jax.tree_util.tree_unflatten(treedef, noise)


@takes_engine("js.sharpness.average_sharpness")
def average_sharpness(fn: Fn, params: PyTree, data: Any, *, key: jax.Array,
                      sigma: float = 0.01, num_samples: int = 20,
                      scale: Literal["none", "weight"] = "none", antithetic: bool = True,
                      metric: str = "loss", batch_size: int | None = None,
                      ) -> tuple[float, float]:
    """Average-case sharpness: the mean loss increase under Gaussian weight noise.

    ``E_d [L(w + d)] - L(w)`` with ``d ~ N(0, sigma^2 I)`` (``scale="none"``)
    or ``d_i ~ N(0, sigma^2 w_i^2)`` (``scale="weight"``, the |w|-scaled
    variant), estimated by Monte Carlo with fixed seeds (sample ``i`` uses
    ``fold_in(key, i)``). With ``antithetic=True`` each sample is
    ``(L(w+d) + L(w-d))/2 - L(w)``: the same expectation, without the
    first-order term's variance. For small ``sigma`` it is about
    ``(sigma^2 / 2) tr H`` (resp. ``(sigma^2/2) sum_i H_ii w_i^2``).
    Average-case sharpness as studied by Neyshabur et al. 2017 ("Exploring
    generalization in deep learning") and Jiang et al. 2020 ("Fantastic
    generalization measures and where to find them"). Cost: ``num_samples``
    (x2 if antithetic) losses + 1.

    Args:
        fn, params, data, metric, batch_size: as in :func:`epsilon_sharpness`.
        key: random key.
        sigma: noise scale.
        num_samples: Monte Carlo samples (>= 2).
        scale: ``"none"`` or ``"weight"`` (per-weight std ``sigma |w_i|``).
        antithetic: pair every ``d`` with ``-d``.

    Returns:
        ``(mean increase, standard error)`` as floats.

    Example:
        >>> mean, se = js.sharpness.average_sharpness(fn, params, data,
        ...                                            key=jax.random.key(0), sigma=0.01)
        >>> f"{mean:.1e} +- {se:.0e}"     # the mean increase and its standard error
        '2.0e-04 +- 2e-05'
    """
    sigma = _validate.positive_number(sigma, "sigma")
    num_samples = _validate.int_in_range(num_samples, "num_samples", 2)
    if scale not in ("none", "weight"):
        raise ValueError(f"scale must be 'none' or 'weight', got {scale!r}")
    objective = _Objective(fn, params, data, metric, batch_size)
    base = objective.loss(params)
    samples = np.empty(num_samples)
    for i in range(num_samples):
        delta = _gaussian(jax.random.fold_in(key, i), params, sigma, scale)
        value = objective.loss(tree.add(params, delta))
        if antithetic:
            value = 0.5 * (value + objective.loss(tree.sub(params, delta)))
        samples[i] = value - base
    return float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(num_samples))
