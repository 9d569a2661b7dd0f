"""The implementation of :mod:`jaxsurf.hessian`; its public face, with the
documentation and examples, is ``jaxsurf/hessian.py``."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Literal, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxsurf import _validate, _batching as batching, _tree as tree
from jaxsurf._deprecation import deprecated_alias
from jaxsurf._directions import describe_direction
from jaxsurf._distributed import Device
from jaxsurf import _store as store_lib
from jaxsurf._engine.means import check_float_params, labels_check, mean_over_batches
from jaxsurf._engine.metadata import run_surface
from jaxsurf._engine.options import Engine, takes_engine
from jaxsurf._engine.pointwise import execute_pointwise
from jaxsurf._engine.metrics import OutputSplit, accumulator_dtype, as_metric_dict, scalar_metric
from jaxsurf._state import StatefulFn, bind, lookup
from jaxsurf._surface import Surface
from jaxsurf._tree import PyTree

__all__ = ["mean_over_batches", "dataset_mean", "hvp", "hvp_operator", "top_eigenpairs", "trace",
           "spectral_density", "plot_spectrum", "convexity_map", "plot_convexity",
           "hessian_plane", "output_split", "OPERATORS", "TRACE_METHODS"]

Fn = Callable[[PyTree, PyTree], Any]
_HIGHEST = jax.lax.Precision.HIGHEST  # no TF32 in reorthogonalisation on GPUs
OPERATORS = ("hessian", "ggn", "fisher")
TRACE_METHODS = ("hutchinson", "hutch++")
Operator = Literal["hessian", "ggn", "fisher"]


# --------------------------------------------------------------------------- exact means
# the name clashed with js.dataset_mean (params -> {metric: mean}), another contract
dataset_mean = deprecated_alias("js.hessian.dataset_mean", "jaxsurf.hessian", "mean_over_batches")


# --------------------------------------------------------------------------- operators
def _batch_hvp(scalar: Callable, params: PyTree, vector: PyTree, batch: PyTree) -> PyTree:
    """Forward-over-reverse HVP of one batch's mean loss."""
    grad = jax.grad(lambda p: scalar(p, batch))
    return jax.jvp(grad, (params,), (vector,))[1]


def output_split(outputs: Callable[[PyTree, Any], Any], loss: Callable[[Any, Any], Any]
                 ) -> Callable[[PyTree, Any], Any]:
    """``fn(params, batch) = loss(outputs(params, batch), batch)``, split for ``operator="ggn"``.

    The Gauss–Newton operator needs the model's outputs and the loss on them
    separately. :func:`jaxsurf.flax.adapt` and :func:`jaxsurf.equinox.adapt`
    provide the split themselves (for cross-entropy, MSE and a loss callable
    of your own); for a plain function, write it in two parts and join them
    here.

    Args:
        outputs: ``outputs(params, batch)`` → the model's outputs on the batch
            (an array, e.g. logits ``(batch, classes)``, or a pytree of arrays).
        loss: ``loss(outputs, batch)`` → scalar or dict of scalars, each the
            mean over the batch (as ``fn`` returns). Its Hessian in the
            outputs is ``H_out``; for a convex loss (cross-entropy, squared
            error) the Gauss–Newton operator is positive semi-definite.

    Returns:
        ``fn(params, batch)``, usable everywhere an ``fn`` is, which also
        carries the split (``fn.jaxsurf_split``).

    Example:
        >>> def logits(p, b):
        ...     h = jnp.tanh(b["x"] @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        ...     return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
        >>> ce = lambda z, b: js.losses.cross_entropy(z, b["y"])
        >>> fn2 = js.hessian.output_split(logits, ce)
        >>> G = js.hessian.hvp_operator(fn2, params, data, operator="ggn")
        >>> v = js.random_direction(jax.random.key(0), params)
        >>> float(js.tree.dot(v, G(v))) >= 0.0      # the GGN is PSD for cross-entropy
        True
    """
    if not callable(outputs) or not callable(loss):
        raise TypeError("output_split(outputs, loss) takes two functions: outputs(params, "
                        "batch) -> outputs and loss(outputs, batch) -> batch-mean loss")

    def fn(params: PyTree, batch: Any) -> Any:
        return loss(outputs(params, batch), batch)

    fn.jaxsurf_split = OutputSplit(  # type: ignore[attr-defined]
        lambda p, state, batch: (outputs(p, batch), batch), loss,
        getattr(loss, "__name__", "loss"))
    return fn


def _check_operator(operator: Any) -> str:
    if operator not in OPERATORS:
        raise ValueError(f"operator must be one of {OPERATORS}, got {operator!r}: 'hessian' (the "
                         f"exact Hessian), 'ggn' (Gauss-Newton J^T H_out J) or 'fisher' (the "
                         f"empirical Fisher, the mean of per-example gradient outer products)")
    return operator


def _split_of(fn: Fn, params: PyTree) -> tuple[OutputSplit, Any]:
    """``fn``'s output/loss split and the model state to evaluate ``params`` with."""
    split = getattr(fn, "jaxsurf_split", None)
    if not isinstance(split, OutputSplit):
        raise ValueError(
            "operator='ggn' needs the model split into outputs and a loss on the outputs "
            "(GGN = J^T H_out J, J the Jacobian of the outputs), and this fn is a plain "
            "function of (params, batch). Use the fn of js.flax.adapt or js.equinox.adapt "
            "(they carry the split), or build fn with js.hessian.output_split(outputs, loss); "
            "operator='hessian' or 'fisher' work on any fn")
    if split.loss_name == "mae":
        raise ValueError("operator='ggn' with loss='mae': the absolute error's second "
                         "derivative in the outputs is zero almost everywhere, so its "
                         "Gauss-Newton operator is 0; use operator='hessian' or 'fisher', or "
                         "a loss with curvature (mse, cross_entropy)")
    stateful = getattr(fn, "jaxsurf_state", None)
    state = lookup(params, stateful.state)[0] if isinstance(stateful, StatefulFn) else None
    return split, state


def _batch_product(operator: str, fn: Fn, params: PyTree, metric: str
                   ) -> Callable[[PyTree, PyTree, PyTree], PyTree]:
    """``product(p, v, batch)``: the batch-mean operator (Hessian, GGN or empirical
    Fisher of the metric) at ``p`` applied to ``v``."""
    bound = bind(fn, params)[0]  # params' own state
    scalar = scalar_metric(bound, metric)
    if operator == "hessian":
        return partial(_batch_hvp, scalar)
    if operator == "fisher":
        def fisher(p: PyTree, v: PyTree, batch: PyTree) -> PyTree:
            def per_example(q: PyTree) -> jax.Array:  # each example as a batch of one
                return jax.vmap(lambda ex: scalar(
                    q, jax.tree_util.tree_map(lambda x: x[None], ex)))(batch)
            losses, linear = jax.linearize(per_example, p)
            projections = linear(v)  # g_i . v
            (out,) = jax.linear_transpose(linear, p)(projections / losses.shape[0])
            return out
        return fisher
    split, state = _split_of(fn, params)

    def ggn(p: PyTree, v: PyTree, batch: PyTree) -> PyTree:
        targets = split.outputs(p, state, batch)[1]

        def outputs(q: PyTree) -> Any:
            return split.outputs(q, state, batch)[0]

        def loss(z: Any) -> jax.Array:
            values = as_metric_dict(split.loss(z, targets))
            if metric not in values:
                raise KeyError(f"the loss returns the metrics {sorted(values)} but not "
                               f"{metric!r}; pass metric=<one of them>")
            return values[metric].astype(accumulator_dtype(values[metric].dtype))

        z, linear = jax.linearize(outputs, p)
        hjv = jax.jvp(jax.grad(loss), (z,), (linear(v),))[1]  # H_out J v
        (out,) = jax.linear_transpose(linear, p)(hjv)  # J^T H_out J v
        return out

    return ggn


@takes_engine("js.hessian.hvp_operator")
def hvp_operator(fn: Fn, params: PyTree, data: Any, *, metric: str = "loss",
                 batch_size: int | None = None, operator: Operator = "hessian"
                 ) -> Callable[[PyTree], PyTree]:
    """A reusable ``v -> H v`` for the exact dataset-mean Hessian (or GGN, or
    empirical Fisher) at ``params``.

    The data go to the device once and the product is jitted once; each call
    costs one pass over the data. Use it for many products (power iteration,
    conjugate gradients); :func:`hvp` is the one-off form.

    Args:
        fn, params, data, metric, batch_size: as in :func:`hvp`. Streams must
            be re-iterable (each call reads them once).
        operator: ``"hessian"`` (default; the exact Hessian), ``"ggn"`` (the
            generalized Gauss–Newton ``J^T H_out J``, ``J`` the Jacobian of the
            model's outputs and ``H_out`` the Hessian of the loss in them:
            needs ``fn`` from an adapter or :func:`output_split`) or
            ``"fisher"`` (the empirical Fisher ``(1/N) sum_i g_i g_i^T``, ``g_i``
            the gradient of example ``i``'s loss; ``fn`` is called on single
            examples under ``vmap``). See ``docs/curvature.md``.

    Returns:
        ``matvec(vector) -> pytree`` with the structure and dtypes of ``params``.

    Raises:
        ValueError: an unknown ``operator``, or ``"ggn"`` for a ``fn`` without
            an output/loss split (the message says how to make one).

    Example:
        >>> Hv = js.hessian.hvp_operator(fn, params, data)
        >>> v = js.random_direction(jax.random.key(0), params)
        >>> rayleigh = float(js.tree.dot(v, Hv(v)) / js.tree.dot(v, v))  # curvature along v
        >>> rayleigh > 0.0      # params is a minimum
        True
        >>> F = js.hessian.hvp_operator(fn, params, data, operator="fisher")
        >>> float(js.tree.dot(v, F(v))) >= 0.0     # the empirical Fisher is PSD
        True
    """
    return _tree_operator(fn, params, data, metric, batch_size, "many", operator)


def _tree_operator(fn: Fn, params: PyTree, data: Any, metric: str,
                   batch_size: int | None, passes: str, operator: str = "hessian"
                   ) -> Callable[[PyTree], PyTree]:
    _check_operator(operator)
    check_float_params(params)
    bound = bind(fn, params)[0]  # params' own state
    mean = mean_over_batches(_batch_product(operator, fn, params, metric), data,
                             batch_size=batch_size, passes=passes,
                             check=labels_check(bound, params))
    dtypes = jax.tree_util.tree_map(lambda x: jnp.asarray(x).dtype, params)

    def matvec(vector: PyTree) -> PyTree:
        tree.check_like(vector, params, name="vector")
        out = mean(params, vector)
        return jax.tree_util.tree_map(lambda x, d: x.astype(d), out, dtypes)

    return matvec


def _flat_operator(fn: Fn, params: PyTree, data: Any, metric: str,
                   batch_size: int | None, operator: str = "hessian"
                   ) -> tuple[Callable, jax.Array, Callable]:
    """``(matvec(params, flat_v) -> flat Hv, flat params, unravel)``.

    ``params`` is an argument of ``matvec`` so one compilation serves every
    point (convexity maps). Params sharded over a mesh are not flattened (that
    would gather them): their "flat" vectors are pytrees sharded like the params,
    and the Lanczos helpers below work on either form.
    """
    _check_operator(operator)
    check_float_params(params)
    if _sharded(params):
        if operator != "hessian":
            raise ValueError(f"operator={operator!r} is not available for params sharded over a "
                             f"mesh yet; use operator='hessian', or params on one device")
        return _tree_flat_operator(fn, params, data, metric, batch_size)
    flat, unravel = ravel_pytree(params)
    bound = bind(fn, params)[0]  # params' own state
    product = _batch_product(operator, fn, params, metric)

    def batch_fn(p: PyTree, flat_v: jax.Array, batch: PyTree) -> jax.Array:
        return ravel_pytree(product(p, unravel(flat_v), batch))[0]

    mean = mean_over_batches(batch_fn, data, batch_size=batch_size,
                             check=labels_check(bound, params))
    dtype = accumulator_dtype(flat.dtype)
    return (lambda p, v: mean(p, v).astype(dtype)), flat.astype(dtype), unravel


def _sharded(params: PyTree) -> bool:
    """Whether some leaf is a ``jax.Array`` placed on a mesh (``NamedSharding``)."""
    return any(isinstance(getattr(x, "sharding", None), jax.sharding.NamedSharding)
               for x in jax.tree_util.tree_leaves(params))


def _tree_flat_operator(fn: Fn, params: PyTree, data: Any, metric: str,
                        batch_size: int | None) -> tuple[Callable, PyTree, Callable]:
    """:func:`_flat_operator` for sharded params: vectors are pytrees sharded as
    the params are (nothing gathered); ``unravel`` casts back to the params' dtypes."""
    bound = bind(fn, params)[0]
    scalar = scalar_metric(bound, metric)
    mean = mean_over_batches(partial(_batch_hvp, scalar), data, batch_size=batch_size,
                             check=labels_check(bound, params))
    dtypes = jax.tree_util.tree_map(lambda x: x.dtype, params)
    wide = jax.tree_util.tree_map(lambda x: x.astype(accumulator_dtype(x.dtype)), params)

    def matvec(p: PyTree, v: PyTree) -> PyTree:
        return jax.tree_util.tree_map(lambda h, w: h.astype(w.dtype), mean(p, v), wide)

    def unravel(v: PyTree) -> PyTree:
        return jax.tree_util.tree_map(lambda x, d: x.astype(d), v, dtypes)
    return matvec, wide, unravel


# Vectors of the Lanczos helpers: a flat array, or (sharded params) a pytree sharded
# like the params. ``_draw`` gives a pytree the same draws as the flat array would
# hold (JAX's partitionable threefry: entry j depends on the key and j alone).
def _is_flat(v: Any) -> bool:
    return jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(v)) and jnp.ndim(v) == 1


def _vdot(a: Any, b: Any) -> jax.Array:
    if _is_flat(a):
        return jnp.dot(a, b, precision=_HIGHEST)
    return sum((jnp.sum(x * y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                jax.tree_util.tree_leaves(b))),
               jnp.zeros((), jnp.float32))


def _basis_dots(basis: Any, w: Any) -> jax.Array:
    """``basis @ w``: one dot per stored row."""
    if _is_flat(w):
        return jnp.matmul(basis, w, precision=_HIGHEST)
    dots = [jnp.sum(b * x[None], axis=tuple(range(1, b.ndim)))
            for b, x in zip(jax.tree_util.tree_leaves(basis), jax.tree_util.tree_leaves(w))]
    return functools.reduce(jnp.add, dots)


def _basis_combine(c: jax.Array, basis: Any) -> Any:
    """``c @ basis``: the rows combined with coefficients ``c``."""
    if jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(basis)) \
            and jnp.ndim(basis) == 2:
        return jnp.matmul(c, basis, precision=_HIGHEST)
    return jax.tree_util.tree_map(lambda b: jnp.tensordot(c, b, axes=1, precision=_HIGHEST),
                                  basis)


def _length(w: Any) -> jax.Array:
    return jnp.linalg.norm(w) if _is_flat(w) else jnp.sqrt(_vdot(w, w))


def _tree_map(f: Callable, *trees: Any) -> Any:
    return jax.tree_util.tree_map(f, *trees)


@functools.lru_cache(maxsize=256)
def _slice_program(kind: str, dim: int, offset: int, shape: tuple, dtype: Any,
                   sharding: Any) -> Callable:
    draw = getattr(jax.random, kind)
    return jax.jit(lambda key: draw(key, (dim,), dtype)[offset:offset + math.prod(shape)]
                   .reshape(shape), out_shardings=sharding)


def _draw(kind: str, key: jax.Array, like: Any, dtype: Any) -> Any:
    """``jax.random.<kind>(key, (dim,), dtype)`` as a flat array, or for a pytree
    ``like``, cut into its leaves and sharded as they are."""
    if _is_flat(like):
        return getattr(jax.random, kind)(key, like.shape, dtype)
    leaves, treedef = jax.tree_util.tree_flatten(like)
    dim, out, offset = sum(x.size for x in leaves), [], 0
    for x in leaves:
        out.append(_slice_program(kind, dim, offset, tuple(x.shape), jnp.dtype(dtype),
                                  x.sharding)(key))
        offset += x.size
    return jax.tree_util.tree_unflatten(treedef, out)


def _empty_basis(rows: int, like: Any) -> Any:
    if _is_flat(like):
        return jnp.zeros((rows, like.shape[0]), like.dtype)

    def leaf(x: jax.Array) -> jax.Array:
        sharding: Any = x.sharding
        if isinstance(sharding, jax.sharding.NamedSharding):  # a row per iteration, unsplit
            sharding = jax.sharding.NamedSharding(
                sharding.mesh, jax.sharding.PartitionSpec(None, *sharding.spec))
        return jax.jit(lambda: jnp.zeros((rows, *x.shape), x.dtype), out_shardings=sharding)()
    return _tree_map(leaf, like)


@takes_engine("js.hessian.hvp")
def hvp(fn: Fn, params: PyTree, data: Any, vector: PyTree, *, metric: str = "loss",
        batch_size: int | None = None, operator: Operator = "hessian") -> PyTree:
    """Hessian-vector product ``H v`` of the exact dataset-mean metric.

    ``H`` is the Hessian of ``L(w) = (1/N) sum_i loss_i(w)`` at ``params``;
    computed forward-over-reverse (``jax.jvp`` of ``jax.grad``) batch by
    batch, the short last batch weighted by its size.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means.
        params: the point (a pytree of float arrays).
        data: arrays with a shared leading example axis (put on the device
            once), or an iterable of batches (read once).
        vector: pytree shaped like ``params``.
        metric: which entry of ``fn``'s dict to differentiate.
        batch_size: examples per batch for in-memory data; also taken from
            ``engine=js.Engine(batch_size=...)`` (its only field used here).
        operator: ``"hessian"`` (default), ``"ggn"`` or ``"fisher"``, as in
            :func:`hvp_operator`.

    Returns:
        ``H v`` as a pytree with the structure and dtypes of ``params``.

    Example:
        >>> v = js.random_direction(jax.random.key(0), params)
        >>> Hv = js.hessian.hvp(fn, params, data, v, batch_size=32)
        >>> jax.tree.structure(Hv) == jax.tree.structure(params)
        True
    """
    return _tree_operator(fn, params, data, metric, batch_size, "one", operator)(vector)


# --------------------------------------------------------------------------- Lanczos
@dataclass
class _Lanczos:
    """Tridiagonal ``T`` (diagonal ``alphas``, off-diagonal ``betas``), the
    Lanczos basis ``V`` (rows, unit norm) and the last residual norm."""

    alphas: np.ndarray
    betas: np.ndarray
    residual: float
    basis: jax.Array

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the eigenvectors of ``T`` (columns)."""
        t = np.diag(self.alphas) + np.diag(self.betas, 1) + np.diag(self.betas, -1)
        return np.linalg.eigh(t)


@jax.jit
def _orthogonalize(basis: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``w`` minus its projection on the rows of ``basis`` (twice: CGS2), and its norm."""
    for _ in range(2):
        w = _tree_map(jnp.subtract, w, _basis_combine(_basis_dots(basis, w), basis))
    return w, _length(w)


@partial(jax.jit, donate_argnums=0)
def _lanczos_step(basis: jax.Array, index: jax.Array, v: jax.Array, w: jax.Array
                  ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Stores ``v`` as row ``index``; returns the basis, ``alpha = v.Hv``, and
    ``Hv`` orthogonalised against every stored row (full reorthogonalisation,
    which subsumes the three-term recurrence) with its norm ``beta``."""
    basis = _tree_map(lambda b, x: b.at[index].set(x), basis, v)
    alpha = _vdot(v, w)
    w, beta = _orthogonalize(basis, w)
    return basis, alpha, w, beta


@jax.jit
def _rayleigh(v: jax.Array, w: jax.Array) -> jax.Array:
    return _vdot(v, w)


def _random_unit(key: jax.Array, dim: int, dtype: Any, like: Any = None) -> Any:
    """A Gaussian unit vector: flat, or (``like`` a sharded pytree) sharded like it."""
    if like is not None and not _is_flat(like):
        v = _draw("normal", key, like, dtype)
        norm = _length(v)
        return _tree_map(lambda x: x / norm, v)
    v = jax.random.normal(key, (dim,), dtype)
    return v / jnp.linalg.norm(v)


def _lanczos(matvec: Callable[[jax.Array], jax.Array], start: jax.Array, num_iterations: int,
             key: jax.Array, stop: Callable[[list, list, float], bool] | None = None,
             ) -> _Lanczos:
    """Lanczos with full reorthogonalisation, restarting on breakdown.

    When the Krylov space becomes invariant (``beta ~ 0``) the next vector is
    a fresh random one orthogonal to the basis and ``T`` gets a zero
    off-diagonal entry, so eigenvalues of multiplicity > 1 can still appear;
    early stopping is then switched off, since converged-looking Ritz pairs
    no longer rule out unseen copies.
    """
    first = jax.tree_util.tree_leaves(start)[0]
    dim, dtype = sum(x.size for x in jax.tree_util.tree_leaves(start)), first.dtype
    basis = _empty_basis(num_iterations, start)
    alphas: list[float] = []
    betas: list[float] = []
    breakdown = 100 * float(jnp.finfo(dtype).eps)
    scale, v, residual = 0.0, start, 0.0
    for j in range(num_iterations):
        basis, alpha, w, beta = _lanczos_step(basis, jnp.asarray(j), v, matvec(v))
        alphas.append(float(alpha))
        residual = float(beta)
        if not (np.isfinite(alphas[-1]) and np.isfinite(residual)):
            raise ValueError("a Hessian-vector product is NaN or inf: the loss or its gradient "
                             "is not finite at these params on this data; check fn there "
                             "(e.g. js.dataset_mean(fn, data)(params))")
        scale = max(scale, abs(alphas[-1]) + residual)
        if j == num_iterations - 1 or (stop is not None and stop(alphas, betas, residual)):
            break
        if residual <= breakdown * scale:
            stop = None  # an invariant subspace: unseen copies of eigenvalues may remain
            key, sub = jax.random.split(key)
            v, norm = _orthogonalize(basis, _random_unit(sub, dim, dtype, start))
            v = _tree_map(lambda x: x / norm, v)
            betas.append(0.0)
        else:
            v = _tree_map(lambda x: x / beta, w)
            betas.append(residual)
    m = len(alphas)
    return _Lanczos(np.array(alphas), np.array(betas), residual,
                    _tree_map(lambda b: b[:m], basis))


def _converged(k: int, which: str, tol: float) -> Callable[[list, list, float], bool]:
    """Stop rule: the wanted ``k`` Ritz pairs have ``|beta s_last| <= tol * max|theta|``."""
    def stop(alphas: list, betas: list, residual: float) -> bool:
        if len(alphas) < k:
            return False
        t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta, s = np.linalg.eigh(t)
        wanted = slice(-k, None) if which == "largest" else slice(0, k)
        bounds = np.abs(residual * s[-1, wanted])
        return bool(np.all(bounds <= tol * max(np.max(np.abs(theta)), 1e-30)))
    return stop


def _num_params(params: PyTree) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def _check_iterations(num_iterations: int | None, default: int, dim: int, at_least: int,
                      name: str = "num_iterations") -> int:
    if num_iterations is None:
        num_iterations = default
    num_iterations = min(_validate.positive_int(num_iterations, name), dim)
    if num_iterations < at_least:
        raise ValueError(f"{name}={num_iterations} (capped at the {dim} params) is fewer than "
                         f"the {at_least} eigenpairs asked for")
    return num_iterations


def _canonical_sign(v: Any) -> Any:
    """Flips ``v`` so that its largest-magnitude entry is positive (a fixed choice)."""
    if _is_flat(v):
        return v * jnp.sign(v[jnp.argmax(jnp.abs(v))])
    leaves = jax.tree_util.tree_leaves(v)
    top = max(jnp.max(jnp.abs(x)) for x in leaves)
    sign = jnp.sign(sum(jnp.sum(jnp.where(jnp.abs(x) == top, x, 0)) for x in leaves))
    return _tree_map(lambda x: x * jnp.where(sign < 0, -1, 1).astype(x.dtype), v)


@takes_engine("js.hessian.top_eigenpairs")
def top_eigenpairs(fn: Fn, params: PyTree, data: Any, *, k: int = 1, key: jax.Array,
                   batch_size: int | None = None, num_iterations: int | None = None,
                   which: Literal["largest", "smallest"] = "largest", tol: float | None = 1e-5,
                   metric: str = "loss", operator: Operator = "hessian"
                   ) -> tuple[np.ndarray, list[PyTree]]:
    """Extreme eigenvalues and unit eigenvectors of the dataset-mean Hessian.

    Lanczos with full reorthogonalisation from a Gaussian start vector; the
    Ritz values and vectors of the small tridiagonal matrix ``T``
    approximate the extreme eigenpairs. Each iteration costs one HVP over the
    whole data. It stops early once the wanted Ritz pairs have residual
    bounds ``|beta_m s_mi| <= tol * max|theta|``.

    Memory: the Lanczos vectors are kept as a ``num_iterations x num_params``
    float32 array on the device (e.g. 80 iterations of a 0.27M-parameter
    ResNet-20: 86 MB), on top of what one HVP needs.

    Limitation: a single start vector finds an eigenvalue of multiplicity > 1
    once, unless rounding or a breakdown restart brings the other copies in.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means.
        params: the point, e.g. a trained minimum.
        data: in-memory arrays or a re-iterable stream of batches.
        k: how many eigenpairs.
        key: random key for the start vector.
        batch_size: examples per batch for in-memory data; also taken from
            ``engine=js.Engine(batch_size=...)`` (its only field used here).
        num_iterations: most Lanczos steps (default ``min(num_params, 50 + 10 k)``).
        which: ``"largest"`` or ``"smallest"`` algebraic eigenvalues.
        tol: relative residual for early stopping; ``None`` runs all
            iterations. A warning says when it was not reached.
        metric: which entry of ``fn``'s dict.
        operator: ``"hessian"`` (default), ``"ggn"`` (Gauss–Newton) or
            ``"fisher"`` (empirical Fisher), as in :func:`hvp_operator`.

    Returns:
        ``(eigenvalues, eigenvectors)``: a float64 array ``(k,)`` (descending
        for ``"largest"``, ascending for ``"smallest"``) and a list of ``k``
        unit-norm pytrees shaped like ``params`` (sign: largest entry positive).

    Example:
        >>> lams, vecs = js.hessian.top_eigenpairs(fn, params, data, k=3,
        ...                                        key=jax.random.key(0))
    """
    if which not in ("largest", "smallest"):
        raise ValueError(f"which must be 'largest' or 'smallest', got {which!r}")
    dim = _num_params(params)
    _validate.int_in_range(k, "k", 1, dim, "the number of params")
    m = _check_iterations(num_iterations, 50 + 10 * k, dim, k)
    matvec, flat, unravel = _flat_operator(fn, params, data, metric, batch_size, operator)
    k0, k1 = jax.random.split(key)
    stop = _converged(k, which, tol) if tol is not None else None
    dtype = jax.tree_util.tree_leaves(flat)[0].dtype
    run = _lanczos(partial(matvec, params), _random_unit(k0, dim, dtype, flat), m, k1, stop)
    theta, s = run.ritz()
    order = np.argsort(theta)[::-1][:k] if which == "largest" else np.argsort(theta)[:k]
    if tol is not None and len(run.alphas) < dim:
        bounds = np.abs(run.residual * s[-1, order])
        limit = tol * max(np.max(np.abs(theta)), 1e-30)
        if np.any(bounds > limit):
            warnings.warn(f"Lanczos stopped after {len(run.alphas)} iterations with relative "
                          f"residual bounds {np.round(bounds / limit * tol, 8).tolist()} above "
                          f"tol={tol}; raise num_iterations", RuntimeWarning, stacklevel=2)
    rows = [_basis_combine(jnp.asarray(s[:, i], dtype), run.basis) for i in order]
    pytrees = [unravel(_canonical_sign(_tree_map(lambda x, n=_length(v): x / n, v)))
               for v in rows]
    return theta[order].astype(np.float64), pytrees


@takes_engine("js.hessian.hessian_plane")
def hessian_plane(fn: Fn, params: PyTree, data: Any, *, key: jax.Array,
                  batch_size: int | None = None, num_iterations: int | None = None,
                  metric: str = "loss", operator: Operator = "hessian") -> tuple[PyTree, PyTree]:
    """The top-2 Hessian eigenvectors, as the two directions of a plane.

    The directions are orthonormal (Euclidean unit length, not filter
    normalized), so ``alphas``/``betas`` of :func:`jaxsurf.evaluate_plane` are
    distances in parameter space; the loss bends fastest along ``d1``.
    ``operator=`` (``"ggn"``, ``"fisher"``) takes the eigenvectors of that
    operator instead (see :func:`hvp_operator`).

    Returns:
        ``(d1, d2)`` pytrees shaped like ``params``.

    Example:
        >>> d1, d2 = js.hessian.hessian_plane(fn, params, data, key=jax.random.key(0))
        >>> s = js.evaluate_plane(fn, params, d1, d2, data, grid, grid)
    """
    _, (d1, d2) = top_eigenpairs(fn, params, data, k=2, key=key, batch_size=batch_size,
                                 num_iterations=num_iterations, metric=metric,
                                 operator=operator)
    return d1, d2


# --------------------------------------------------------------------------- trace, density
@takes_engine("js.hessian.trace")
def trace(fn: Fn, params: PyTree, data: Any, *, key: jax.Array, num_samples: int = 100,
          batch_size: int | None = None, metric: str = "loss",
          method: Literal["hutchinson", "hutch++"] = "hutchinson",
          operator: Operator = "hessian") -> tuple[float, float]:
    """Stochastic estimate of ``tr H`` (Hutchinson, or Hutch++) from operator products.

    ``method="hutchinson"``: ``tr H = E[z^T H z]`` for ``z`` with independent
    ±1 entries (Hutchinson 1989); the estimate is the mean of ``num_samples``
    such products and its standard error is ``std(samples, ddof=1) /
    sqrt(num_samples)``. The variance per probe is ``2 (||H||_F^2 - sum_i
    H_ii^2)``: large when a few eigenvalues dominate.

    ``method="hutch++"`` (Meyer, Musco, Musco and Woodruff 2021): a third of
    the products sketch the top of the spectrum (``Q = orth(H S)`` for a ±1
    matrix ``S`` of ``s = num_samples // 3`` columns), a third give the trace
    there exactly (``tr(Q^T H Q)``), and the rest are Hutchinson probes of
    the deflated operator ``(I - QQ^T) H (I - QQ^T)``, whose Frobenius norm
    is that of the spectrum's tail. For a decaying spectrum (the usual case
    at a trained minimum) its error at equal cost is far smaller. The
    standard error reported is that of the Hutchinson part given the sketch
    (the exact part has none), ``std(tail samples, ddof=1) / sqrt(count)``;
    the estimate is unbiased over the sketch as well. Memory: ``2 s x
    num_params`` floats on the device (e.g. 100 products of a 0.27M-parameter
    ResNet-20: 33 sketch vectors, 72 MB).

    Args:
        fn, params, data, batch_size, metric: as in :func:`top_eigenpairs`.
        key: random key; Hutchinson probe ``i`` uses ``jax.random.fold_in(key, i)``.
        num_samples: operator products in all (each one pass over the data):
            >= 2 for Hutchinson, >= 6 for Hutch++ (``s = num_samples // 3``
            sketch and exact products, the remaining ``num_samples - 2 s``
            Hutchinson probes).
        method: ``"hutchinson"`` (default) or ``"hutch++"``.
        operator: ``"hessian"`` (default), ``"ggn"`` (Gauss–Newton) or
            ``"fisher"`` (empirical Fisher), as in :func:`hvp_operator`; the
            trace of the empirical Fisher is the mean squared norm of the
            per-example gradients.

    Returns:
        ``(estimate, standard_error)`` as floats.

    Example:
        >>> tr, se = js.hessian.trace(fn, params, data, key=jax.random.key(0))
        >>> tr2, se2 = js.hessian.trace(fn, params, data, key=jax.random.key(0),
        ...                             method="hutch++", num_samples=30)
        >>> abs(tr2 - tr) < 4 * (se + se2)
        True
    """
    if method not in TRACE_METHODS:
        raise ValueError(f"method must be one of {TRACE_METHODS}, got {method!r}")
    _validate.int_in_range(num_samples, "num_samples", 2 if method == "hutchinson" else 6)
    matvec, flat, _ = _flat_operator(fn, params, data, metric, batch_size, operator)
    if method == "hutchinson":
        samples = np.empty(num_samples)
        for i in range(num_samples):
            z = _draw("rademacher", jax.random.fold_in(key, i), flat,
                      jax.tree_util.tree_leaves(flat)[0].dtype)
            samples[i] = float(_rayleigh(z, matvec(params, z)))
        return float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(num_samples))
    if not _is_flat(flat):
        raise ValueError("trace(method='hutch++') needs params on one device (its sketch is a "
                         "dense matrix); for params sharded over a mesh use "
                         "method='hutchinson'")
    dim = flat.shape[0]
    sketch = min(num_samples // 3, dim)
    probes = num_samples - 2 * sketch
    k_sketch, k_probe = jax.random.split(key)
    images = [matvec(params, jax.random.rademacher(jax.random.fold_in(k_sketch, j), flat.shape,
                                                   flat.dtype)) for j in range(sketch)]
    q = _orthonormal_columns(jnp.stack(images, axis=1))
    exact = 0.0
    for j in range(q.shape[1]):
        exact += float(_rayleigh(q[:, j], matvec(params, q[:, j])))
    samples = np.empty(probes)
    for i in range(probes):
        z = jax.random.rademacher(jax.random.fold_in(k_probe, i), flat.shape, flat.dtype)
        w = _deflate(q, z)
        samples[i] = float(_rayleigh(w, matvec(params, w)))
    if q.shape[1] == dim:  # the sketch spans everything: the trace is exact
        return exact, 0.0
    return exact + float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(probes))


@jax.jit
def _orthonormal_columns(a: jax.Array) -> jax.Array:
    """An orthonormal basis of the columns of ``a`` (reduced QR; rank-deficient columns
    give basis vectors that are still orthonormal, so the trace stays exact on their span)."""
    return jnp.linalg.qr(a, mode="reduced")[0]


@jax.jit
def _deflate(q: jax.Array, z: jax.Array) -> jax.Array:
    """``(I - Q Q^T) z``, twice for accuracy in float32."""
    for _ in range(2):
        z = z - jnp.matmul(q, jnp.matmul(z, q, precision=_HIGHEST), precision=_HIGHEST)
    return z


@takes_engine("js.hessian.spectral_density")
def spectral_density(fn: Fn, params: PyTree, data: Any, *, key: jax.Array,
                     num_probes: int = 1, num_iterations: int = 100,
                     grid: Any | None = None, sigma: float | None = None,
                     num_points: int = 2000, batch_size: int | None = None,
                     metric: str = "loss", operator: Operator = "hessian"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalue density of the Hessian by stochastic Lanczos quadrature.

    For each probe ``v`` (Rademacher, unit norm) an ``m``-step Lanczos run
    gives ``T = U diag(theta) U^T``; the Gauss quadrature nodes ``theta_l``
    with weights ``tau_l = U[0, l]^2`` approximate ``v^T f(H) v ~ (1/n) tr
    f(H)``. With Gaussian broadening ``g_sigma``,
    ``phi(t) = (1/P) sum_p sum_l tau_l g_sigma(t - theta_l)``
    (Ghorbani et al. 2019; Yao et al. 2020, PyHessian). Each probe's weights
    sum to one, so ``phi`` integrates to 1 when the grid covers the spectrum.

    Args:
        fn, params, data, batch_size, metric: as in :func:`top_eigenpairs`.
        key: random key for the probes.
        num_probes: independent Lanczos runs averaged (cost: ``num_probes *
            num_iterations`` HVPs; memory: ``num_iterations x num_params``).
        num_iterations: Lanczos steps per probe (capped at ``num_params``).
        grid: where to evaluate ``phi``; default ``num_points`` points
            spanning the nodes plus ``6 sigma`` on each side.
        sigma: Gaussian width; default ``0.005 * (theta_max - theta_min)``.
        num_points: grid size when ``grid`` is None.
        operator: ``"hessian"`` (default), ``"ggn"`` (Gauss–Newton) or
            ``"fisher"`` (empirical Fisher), as in :func:`hvp_operator`: the
            density of that operator's eigenvalues (no negative ones for the
            two PSD operators).

    Returns:
        ``(grid, density)`` float64 arrays of the same length.

    Example:
        >>> t, phi = js.hessian.spectral_density(fn, params, data, key=jax.random.key(0))
        >>> fig = js.plot.spectrum(t, phi, out="spectrum.png")
    """
    _validate.positive_int(num_probes, "num_probes")
    dim = _num_params(params)
    m = _check_iterations(num_iterations, 100, dim, 1)
    matvec, flat, _ = _flat_operator(fn, params, data, metric, batch_size, operator)
    nodes, weights = [], []
    for p in range(num_probes):
        k0, k1 = jax.random.split(jax.random.fold_in(key, p))
        start = _tree_map(lambda x: x / math.sqrt(dim),
                          _draw("rademacher", k0, flat, jax.tree_util.tree_leaves(flat)[0].dtype))
        theta, u = _lanczos(partial(matvec, params), start, m, k1).ritz()
        nodes.append(theta)
        weights.append(u[0] ** 2 / num_probes)
    return _broadened(np.concatenate(nodes), np.concatenate(weights), grid, sigma, num_points)


def _broadened(nodes: np.ndarray, weights: np.ndarray, grid: Any | None, sigma: float | None,
               num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """``sum_l weights_l * N(t; nodes_l, sigma^2)`` on a grid."""
    lo, hi = float(nodes.min()), float(nodes.max())
    if sigma is None:
        width = max(hi - lo, 1e-2 * max(abs(lo), abs(hi)), 1e-12)
        sigma = 0.005 * width
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    if grid is None:
        grid = np.linspace(lo - 6 * sigma, hi + 6 * sigma, num_points)
    grid = np.asarray(grid, np.float64)
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(f"grid must be a 1-D array of at least 2 points, got shape {grid.shape}")
    z = (grid[:, None] - nodes[None, :]) / sigma
    density = np.exp(-0.5 * z ** 2) @ weights / (sigma * math.sqrt(2 * math.pi))
    return grid, density


# --------------------------------------------------------------------------- convexity
@takes_engine("js.hessian.convexity_map",
              uses=("batch_size", "store", "progress", "devices", "chunk_size"))
def convexity_map(fn: Fn, params: PyTree, d1: PyTree, d2: PyTree, data: Any, alphas: Any,
                  betas: Any, *, key: jax.Array, num_iterations: int = 20,
                  metric: str = "loss", metadata: Mapping[str, Any] | None = None,
                  engine: Engine = Engine()) -> Surface:
    """Extreme Hessian eigenvalues over a plane, and Li et al.'s ``|lambda_min/lambda_max|``.

    At every grid point ``params + alphas[i] d1 + betas[j] d2`` one Lanczos
    run (which converges at both ends of the spectrum at once) gives
    ``lambda_max`` and ``lambda_min`` of the full Hessian; ``ratio =
    |lambda_min / lambda_max|`` is near 0 where the surface is locally convex
    and large where negative curvature dominates (Li et al. 2018, "Visualizing the
    loss landscape of neural nets", the section "are we really seeing convexity?").

    Cost: ``len(alphas) * len(betas) * num_iterations`` HVPs over the whole
    data (Li et al. run two eigensolves per point, for the largest and, after a
    shift, the smallest eigenvalue; Lanczos needs one), and
    ``num_iterations x num_params`` floats of memory. Keep grids coarse
    (e.g. 11 x 11). With few iterations ``lambda_min`` converges slowly when
    the spectrum's low end is crowded: report the iteration count with the map.

    Args:
        fn, params, data, batch_size, metric: as in :func:`top_eigenpairs`.
        d1, d2: directions shaped like ``params`` (as for ``evaluate_plane``).
        alphas, betas: 1-D grid coordinates.
        key: random key; point ``(i, j)`` uses ``fold_in(key, i * len(betas) + j)``.
        num_iterations: Lanczos steps per point.
        store: a directory that keeps every finished point (float32); calling
            again with the same request computes only the missing points (as
            for :func:`jaxsurf.evaluate_plane`, see :mod:`jaxsurf.store`).
        progress: ``None`` (a bar when stderr is a terminal), ``True``,
            ``False`` or a callable taking a :class:`jaxsurf.progress.ProgressInfo`.
        devices: devices to spread the points over, one point per device at a
            time (default: the default device); each gets a copy of the data.
        chunk_size: points between saves and progress reports (default: one
            per device).
        metadata: extra JSON-serialisable facts to keep.
        engine: a :class:`jaxsurf.Engine` with the options above (``batch_size``,
            ``store``, ``progress``, ``devices``, ``chunk_size``; the others are
            refused), or those options as keywords.

    Returns:
        A plane :class:`~jaxsurf.Surface` with metrics ``lambda_max``,
        ``lambda_min`` and ``ratio``; ``metrics[name][i, j]`` is at
        ``(alphas[i], betas[j])``. The metadata is built as for
        :func:`jaxsurf.evaluate_plane` (devices, store, timings, versions),
        plus ``metric``, ``num_iterations`` and ``hvps``.

    Example:
        >>> grid = np.linspace(-1, 1, 5)      # keep it coarse (e.g. 11 x 11)
        >>> cm = js.hessian.convexity_map(fn, params, d1, d2, data, grid, grid,
        ...                               key=jax.random.key(0))
        >>> fig = js.plot.convexity(cm, out="convexity.png")
    """
    alphas = _validate.grid(alphas, "alphas").astype(np.float64)
    betas = _validate.grid(betas, "betas").astype(np.float64)
    tree.check_like(d1, params, name="d1")
    tree.check_like(d2, params, name="d2")
    dim = _num_params(params)
    m = _check_iterations(num_iterations, 20, dim, 1)
    check_float_params(params)
    operators: dict[Any, tuple[Callable, jax.Array]] = {}

    def point_fn(index: int, device: Device) -> dict[str, float]:
        if device not in operators:  # the data go to each device once
            matvec, flat, _ = _flat_operator(fn, params, data, metric, engine.batch_size)
            operators[device] = (matvec, flat)
        matvec, flat = operators[device]
        i, j = divmod(index, len(betas))
        point = tree.axpy(float(betas[j]), d2, tree.axpy(float(alphas[i]), d1, params))
        k0, k1 = jax.random.split(jax.random.fold_in(key, index))
        theta, _ = _lanczos(partial(matvec, point), _random_unit(k0, dim, flat.dtype),
                            m, k1).ritz()
        return {"lambda_max": float(theta[-1]), "lambda_min": float(theta[0])}

    num_examples, data_print = None, "stream"  # a stream's examples are not counted up front
    if batching.is_in_memory(data):
        num_examples = batching.num_examples(data)
        data_print = store_lib.data_fingerprint(data, num_examples)
    request = {"convexity": {"metric": metric, "num_iterations": m,
                             "key": np.asarray(jax.random.key_data(key)).tolist()},
               "data": data_print, "batch_size": engine.batch_size}

    def evaluator(fn_: Any, origin: PyTree, directions: list[PyTree], data_: Any,
                  coefficients: np.ndarray, engine: Engine
                  ) -> tuple[dict[str, np.ndarray], int, dict[str, Any]]:
        return execute_pointwise(point_fn, ["lambda_max", "lambda_min"], origin, directions,
                                 coefficients, request, num_examples=num_examples,
                                 engine=engine)

    grid_a, grid_b = np.meshgrid(alphas, betas, indexing="ij")
    coefficients = np.stack([grid_a.ravel(), grid_b.ravel()], axis=1)
    info = {"metric": metric, "num_iterations": m, "hvps": int(alphas.size * betas.size) * m,
            "directions": [describe_direction(d, params) for d in (d1, d2)],
            "params_fingerprint": tree.fingerprint(params)}
    surface = run_surface("convexity", fn, params, [d1, d2], data, alphas, betas,
                          coefficients, info, metadata, evaluator=evaluator, engine=engine)
    lam_max, lam_min = surface.metrics["lambda_max"], surface.metrics["lambda_min"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(lam_min / lam_max)
    return dataclasses.replace(surface, metrics={"lambda_max": lam_max, "lambda_min": lam_min,
                                                 "ratio": ratio})


# --------------------------------------------------------------------------- figures
# The figures moved to js.plot (one home for figures); the old names still work and warn.
plot_spectrum = deprecated_alias("js.hessian.plot_spectrum", "jaxsurf.plot", "spectrum")
plot_convexity = deprecated_alias("js.hessian.plot_convexity", "jaxsurf.plot", "convexity")
