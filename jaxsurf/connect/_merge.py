"""Model merging: task vectors, merge operators (linear, task arithmetic, TIES,
DARE), per-leaf SLERP, and planes through three models.

Definitions follow the papers and mergekit's documentation; every choice
where they leave room is stated in :func:`merge` and in ``docs/merging.md``.

Example:
    >>> fts = [params_a, params_b]
    >>> base = js.connect.merge(params_a, fts, method="linear")   # the soup as a stand-in base
    >>> m = js.connect.merge(base, fts, method="ties", density=0.5)
    >>> mid = js.connect.slerp(params_a, params_b, 0.5)
    >>> d1, d2 = js.connect.task_plane(base, params_a, params_b)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _tree as tree
from jaxsurf._tree import PyTree

__all__ = ["METHODS", "TRIM_SCOPES", "merge", "slerp", "task_plane", "plane_coordinates"]

METHODS = ("linear", "task_arithmetic", "ties", "dare", "dare_ties")
TRIM_SCOPES = ("leaf", "global")
# the papers' defaults: TIES keeps the top 20 % (Yadav et al. 2023, k = 20);
# DARE drops 90 % (Yu et al. 2024, p = 0.9, their common setting)
DEFAULT_DENSITY = {"ties": 0.2, "dare": 0.1, "dare_ties": 0.1}
# SLERP falls back to linear interpolation where |cos| exceeds this (mergekit's threshold)
COLINEAR = 0.9995


# --------------------------------------------------------------------------- checks
def _check_models(base: PyTree, finetuned: Any) -> list[PyTree]:
    if not isinstance(finetuned, (list, tuple)):
        raise TypeError(f"finetuned must be a list or tuple of params pytrees (one per "
                        f"fine-tuned model), got {type(finetuned).__name__}; for one model "
                        f"pass [params]")
    if not finetuned:
        raise ValueError("finetuned is empty; pass at least one fine-tuned model")
    for i, ft in enumerate(finetuned):
        tree.check_like(ft, base, name=f"finetuned[{i}]", reference_name="base")
    return list(finetuned)


def _check_weights(weights: Any, n: int, method: str) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"weights must hold one number per fine-tuned model: {n} model(s), "
                         f"got weights of shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be finite numbers, got {w.tolist()}")
    if method in ("linear", "ties", "dare_ties") and np.any(w < 0):
        raise ValueError(f"method={method!r} takes non-negative weights (got {w.tolist()}); "
                         f"negative weights (task negation) are for 'task_arithmetic' and "
                         f"'dare'")
    if method in ("linear", "ties", "dare_ties") and w.sum() <= 0:
        raise ValueError(f"weights must not all be zero for method={method!r}, got "
                         f"{w.tolist()}")
    return w


def _check_density(density: Any, method: str) -> float | None:
    if method in ("linear", "task_arithmetic"):
        if density is not None:
            raise ValueError(f"density is used by 'ties', 'dare' and 'dare_ties', not by "
                             f"method={method!r}; leave it out")
        return None
    if density is None:
        return DEFAULT_DENSITY[method]
    if isinstance(density, (bool, np.bool_)) or not isinstance(density, (int, float, np.number)) \
            or not math.isfinite(float(density)) or not 0.0 < float(density) <= 1.0:
        raise ValueError(f"density must be a number in (0, 1] (the share of each task "
                         f"vector's entries kept), got {density!r}")
    return float(density)


def _check_scale(scale: Any, method: str) -> float:
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (int, float, np.number)) \
            or not math.isfinite(float(scale)):
        raise ValueError(f"scale must be a finite number (lambda, the factor on the merged "
                         f"task vector), got {scale!r}")
    if method == "linear" and float(scale) != 1.0:
        raise ValueError("method='linear' averages the models themselves (a model soup) and "
                         "takes no scale; for base + scale * (merged task vector) use "
                         "method='task_arithmetic' with weights summing to 1")
    return float(scale)


def _float_leaf(x: Any) -> bool:
    """An array (or number) of inexact dtype; other leaves (integers, keys, and the
    functions and flags of a whole Equinox module) are carried along unchanged."""
    if not isinstance(x, (jax.Array, np.ndarray, np.generic, float)):
        return False
    return tree.is_float_leaf(x)


def _compute_dtype(x: jax.Array) -> Any:
    return jnp.promote_types(x.dtype, jnp.float32)


# --------------------------------------------------------------------------- merge
def _threshold(magnitudes: jax.Array, density: float) -> jax.Array:
    """The smallest magnitude among the top ``ceil(density * n)`` of ``magnitudes``."""
    flat = jnp.sort(magnitudes.ravel())
    k = max(1, math.ceil(density * flat.size))
    return flat[flat.size - k]


def _dare_masks(key: Any, n_models: int, shapes: list[tuple[int, ...]], density: float
                ) -> list[list[jax.Array]]:
    """``masks[i][j]``: Bernoulli(density) keep-mask of model i's float leaf j."""
    masks = []
    for i in range(n_models):
        k_model = jax.random.fold_in(key, i)
        masks.append([jax.random.bernoulli(jax.random.fold_in(k_model, j), density, shape)
                      for j, shape in enumerate(shapes)])
    return masks


def merge(base: PyTree, finetuned: Sequence[PyTree], *, method: str, scale: float = 1.0,
          density: float | None = None, weights: Sequence[float] | None = None,
          key: Any = None, trim: str = "leaf") -> PyTree:
    """Merges fine-tuned models of one base model.

    With task vectors ``tau_i = finetuned[i] - base`` and weights ``w_i``
    (default 1):

    * ``"linear"``: ``sum_i w_i finetuned[i] / sum_i w_i``, a weighted average
      of the models (a model soup, Wortsman et al. 2022; mergekit's
      ``linear``); ``base`` only fixes the structure, ``scale`` must be 1.
    * ``"task_arithmetic"``: ``base + scale * sum_i w_i tau_i`` (Ilharco et
      al. 2023; ``scale`` is their lambda). The sum is not normalised by the
      weights (mergekit normalises by default; pass weights summing to 1 for
      its result).
    * ``"ties"`` (Yadav et al. 2023): *trim* each ``tau_i`` to its entries of
      largest magnitude, the top ``density`` share (``ceil(density * n)``
      entries; entries tied with the smallest kept magnitude are kept too, as
      in the paper's code); *elect* a sign per entry, the sign of
      ``sum_i w_i trimmed_i``; *disjoint merge*: the weighted mean of the
      trimmed entries whose sign agrees with the elected one,
      ``sum_i w_i t_i [agree] / sum_i w_i [agree]`` (zero where none agrees;
      with unit weights the paper's mean; mergekit's ``normalize: true``);
      then ``base + scale * merged``.
    * ``"dare"`` (Yu et al. 2024): each entry of each ``tau_i`` is dropped with
      probability ``1 - density`` and the kept entries are divided by
      ``density`` (so the expected task vector is unchanged), then task
      arithmetic: ``base + scale * sum_i w_i dare(tau_i)`` (mergekit's
      ``dare_linear`` without normalisation).
    * ``"dare_ties"``: DARE's drop-and-rescale in place of TIES's magnitude
      trim, then TIES's sign election and disjoint mean (mergekit's ``dare_ties``).

    Choices (see ``docs/merging.md``):

    * **Trimming scope** (``trim``): ``"leaf"`` (default; mergekit's, per
      tensor) ranks magnitudes within each leaf; ``"global"`` over the whole
      task vector (Yadav et al.'s code, which flattens the model).
    * **DARE's randomness**: entry masks are drawn with ``jax.random.bernoulli``
      from ``fold_in(fold_in(key, model index), float-leaf index)``: the same
      key gives the same merge.
    * **Non-float leaves** (integer counters, PRNG keys, flags; the functions
      of a whole Equinox module) are copied from ``base``.
    * **BatchNorm statistics**: every float leaf is merged by the same rule, so
      running means and variances in the pytree (Flax ``batch_stats``) are
      merged like weights. Merged weights change the statistics of their
      activations; pass only the params and evaluate with
      ``state_policy="recompute"`` (:func:`evaluate_path`,
      :func:`jaxsurf.interpolate`) or :func:`recompute_batch_stats` for
      statistics of the merged network itself.
    * Arithmetic runs in float32 or wider per leaf; results are cast back to
      ``base``'s dtypes.

    Args:
        base: the pretrained params pytree.
        finetuned: a list of params pytrees fine-tuned from ``base`` (same
            structure, shapes, dtypes: a mismatch names the leaf).
        method: one of ``"linear"``, ``"task_arithmetic"``, ``"ties"``,
            ``"dare"``, ``"dare_ties"``.
        scale: lambda, the factor on the merged task vector (default 1).
        density: share of entries kept, in (0, 1]: TIES's ``k`` (default 0.2,
            the paper's 20 %), DARE's ``1 - p`` (default 0.1, the paper's
            ``p = 0.9``). Not used by ``linear`` and ``task_arithmetic``.
        weights: one number per fine-tuned model (default all 1).
        key: a ``jax.random`` key, required by ``"dare"`` and ``"dare_ties"``.
        trim: ``"leaf"`` or ``"global"`` (``"ties"`` only).

    Returns:
        The merged params, a pytree like ``base``.

    Example:
        >>> base = {"w": jnp.zeros(4)}
        >>> fts = [{"w": jnp.array([3.0, -1.0, 0.5, 2.0])}, {"w": jnp.array([-2.0, 1.5, 0.2, 1.0])}]
        >>> merge(base, fts, method="ties", density=0.5)["w"].tolist()
        [3.0, 1.5, 0.0, 2.0]
        >>> np.round(merge(base, fts, method="task_arithmetic", scale=0.5)["w"], 6).tolist()
        [0.5, 0.25, 0.35, 1.5]
    """
    if method not in METHODS:
        raise ValueError(f"unknown merge method {method!r}; use one of {METHODS}")
    models = _check_models(base, finetuned)
    w = _check_weights(weights, len(models), method)
    kept = _check_density(density, method)
    lam = _check_scale(scale, method)
    if trim not in TRIM_SCOPES:
        raise ValueError(f"trim must be one of {TRIM_SCOPES}, got {trim!r}")
    if trim != "leaf" and method != "ties":
        raise ValueError(f"trim= chooses the scope of TIES's magnitude trim; method={method!r} "
                         f"does not trim by magnitude, so leave it out")
    if method in ("dare", "dare_ties"):
        if key is None:
            raise ValueError(f"method={method!r} drops entries at random: pass key= (e.g. "
                             f"jax.random.key(0)); the same key gives the same merge")
        if not isinstance(key, jax.Array):
            raise TypeError(f"key must be a jax.random key (jax.random.key(0)), got "
                            f"{type(key).__name__}")
    elif key is not None:
        raise ValueError(f"key= is for the random drops of 'dare' and 'dare_ties', not "
                         f"method={method!r}; leave it out")

    base_leaves, treedef = jax.tree_util.tree_flatten(base)
    model_leaves = [jax.tree_util.tree_leaves(m) for m in models]
    floats = [j for j, x in enumerate(base_leaves) if _float_leaf(x)]
    out = list(base_leaves)

    def deltas(j: int) -> list[jax.Array]:
        b = jnp.asarray(base_leaves[j])
        dt = _compute_dtype(b)
        return [jnp.asarray(m[j]).astype(dt) - b.astype(dt) for m in model_leaves]

    if method == "linear":
        for j in floats:
            b = jnp.asarray(base_leaves[j])
            dt = _compute_dtype(b)
            acc = sum((float(wi) * jnp.asarray(m[j]).astype(dt)
                       for wi, m in zip(w, model_leaves)), jnp.zeros(b.shape, dt))
            first = jnp.asarray(model_leaves[0][j])
            same = jnp.all(jnp.stack([jnp.asarray(m[j]) == first for m in model_leaves]), 0)
            # where every model agrees, the merge is that value exactly (no rounding, no
            # flushed subnormals)
            out[j] = jnp.where(same, first, (acc / float(w.sum())).astype(b.dtype))
        return jax.tree_util.tree_unflatten(treedef, out)

    taus = {j: deltas(j) for j in floats}
    if method in ("dare", "dare_ties"):
        assert kept is not None
        masks = _dare_masks(key, len(models), [np.shape(base_leaves[j]) for j in floats], kept)
        for position, j in enumerate(floats):
            taus[j] = [jnp.where(masks[i][position], t / kept, jnp.zeros_like(t))
                       for i, t in enumerate(taus[j])]
    elif method == "ties":
        assert kept is not None
        limits: list[jax.Array] = []
        if trim == "global" and floats:
            limits = [_threshold(jnp.concatenate([jnp.abs(taus[j][i]).ravel() for j in floats]),
                                 kept) for i in range(len(models))]
        for j in floats:
            trimmed = []
            for i, t in enumerate(taus[j]):
                limit = limits[i] if limits else _threshold(jnp.abs(t), kept)
                trimmed.append(jnp.where(jnp.abs(t) >= limit, t, jnp.zeros_like(t)))
            taus[j] = trimmed

    for j in floats:
        b = jnp.asarray(base_leaves[j])
        weighted = [float(wi) * t for wi, t in zip(w, taus[j])]
        if method in ("task_arithmetic", "dare"):
            merged = sum(weighted[1:], weighted[0])
        else:  # ties, dare_ties: elect the sign, disjoint weighted mean
            stacked = jnp.stack(weighted)
            elected = jnp.sign(jnp.sum(stacked, axis=0))
            agree = (jnp.sign(stacked) == elected) & (stacked != 0)
            wshape = (len(w),) + (1,) * b.ndim
            divisor = jnp.sum(jnp.where(agree, jnp.asarray(w, stacked.dtype).reshape(wshape),
                                        0.0), axis=0)
            total = jnp.sum(jnp.where(agree, stacked, 0.0), axis=0)
            merged = jnp.where(divisor > 0, total / jnp.where(divisor > 0, divisor, 1.0), 0.0)
        moved = (b.astype(merged.dtype) + lam * merged).astype(b.dtype)
        out[j] = jnp.where(lam * merged == 0, b, moved)  # unmoved entries stay exact
    return jax.tree_util.tree_unflatten(treedef, out)


# --------------------------------------------------------------------------- slerp
def _check_t(t: Any) -> float:
    if isinstance(t, (bool, np.bool_)) or np.ndim(t) != 0:
        raise ValueError(f"t must be one number in [0, 1] (0: pa, 1: pb), got {t!r}")
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"t must be a number in [0, 1] (0: pa, 1: pb), got {t!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"t must lie in [0, 1] (0: pa, 1: pb), got {value!r}; SLERP does "
                         f"not extrapolate")
    return value


def slerp(pa: PyTree, pb: PyTree, t: float) -> PyTree:
    """Spherical linear interpolation (Shoemake 1985), leaf by leaf, on the raw vectors.

    For each float leaf, seen as vectors ``a`` and ``b`` with angle
    ``omega = arccos(<a, b> / (|a| |b|))``::

        slerp(a, b, t) = sin((1 - t) omega) / sin(omega) * a + sin(t omega) / sin(omega) * b

    (the vectors are not normalised: equal norms stay on their sphere; with
    unequal norms the weights are Shoemake's, as in mergekit's ``slerp``).
    Where the leaves are nearly colinear (``|cos omega| > 0.9995``, also
    anti-parallel) or one is zero, the leaf is interpolated linearly.
    ``t = 0`` returns ``pa`` and ``t = 1`` returns ``pb`` themselves (exact;
    adapted params keep their BatchNorm statistics). Non-float leaves come
    from ``pa``.

    Args:
        pa, pb: params pytrees of the same structure, shapes and dtypes.
        t: a number in [0, 1].

    Returns:
        A pytree like ``pa``.

    Example:
        >>> a, b = {"w": jnp.array([1.0, 0.0])}, {"w": jnp.array([0.0, 1.0])}
        >>> np.round(slerp(a, b, 0.5)["w"], 6).tolist()   # on the unit circle, not inside
        [0.707107, 0.707107]
    """
    tree.check_like(pb, pa, name="pb", reference_name="pa")
    t = _check_t(t)
    if t == 0.0:
        return pa
    if t == 1.0:
        return pb

    def leaf(x: Any, y: Any) -> Any:
        if not _float_leaf(x):
            return x
        x, y = jnp.asarray(x), jnp.asarray(y)
        dt = _compute_dtype(x)
        a, b = x.astype(dt), y.astype(dt)
        na, nb = float(jnp.linalg.norm(a.ravel())), float(jnp.linalg.norm(b.ravel()))
        cos = float(jnp.vdot(a.ravel(), b.ravel())) / (na * nb) if na > 0 and nb > 0 else 1.0
        if not math.isfinite(cos) or abs(cos) > COLINEAR:
            ca, cb = 1.0 - t, t
        else:
            omega = math.acos(max(-1.0, min(1.0, cos)))
            s = math.sin(omega)
            ca, cb = math.sin((1.0 - t) * omega) / s, math.sin(t * omega) / s
        return (ca * a + cb * b).astype(x.dtype)

    return jax.tree_util.tree_map(leaf, pa, pb)


# --------------------------------------------------------------------------- planes
def task_plane(base: PyTree, ft_a: PyTree, ft_b: PyTree) -> tuple[PyTree, PyTree]:
    """The task vectors ``ft_a - base`` and ``ft_b - base`` as plane directions.

    They are *not* orthonormalised, so ``js.evaluate_plane(fn, base, d1, d2,
    data, lambdas_a, lambdas_b)`` is the task-arithmetic plane: ``(0, 0)`` is
    the base, ``(1, 0)`` is ``ft_a``, ``(0, 1)`` is ``ft_b``, ``(0.5, 0.5)``
    the soup (the average of the two fine-tunes) and ``(l, l)`` task
    arithmetic with scale ``l``. The axes are generally not orthogonal
    (``metadata["directions_cosine"]`` of the plane says how far, and
    :func:`jaxsurf.plot.contour` writes it in the axis labels).

    Args:
        base: the pretrained params.
        ft_a, ft_b: two fine-tunes of ``base`` (same structure).

    Returns:
        ``(d1, d2)``, pytrees like ``base``.

    Example:
        >>> base = js.connect.merge(params_a, [params_a, params_b], method="linear")
        >>> d1, d2 = task_plane(base, params_a, params_b)
        >>> s = js.evaluate_plane(fn, base, d1, d2, data, [0.0, 1.0], [0.0, 1.0], progress=False)
        >>> bool(np.isclose(s.metrics["loss"][1, 0], fn(params_a, data)["loss"], atol=1e-5))
        True
    """
    tree.check_like(ft_a, base, name="ft_a", reference_name="base")
    tree.check_like(ft_b, base, name="ft_b", reference_name="base")
    d1, d2 = tree.sub(ft_a, base), tree.sub(ft_b, base)
    for name, d in (("ft_a", d1), ("ft_b", d2)):
        if float(tree.norm(d)) == 0.0:
            raise ValueError(f"{name} equals base (its task vector is zero): the task plane "
                             f"is undefined; pass a fine-tuned model")
    return d1, d2


def plane_coordinates(params: PyTree, origin: PyTree, d1: PyTree, d2: PyTree
                      ) -> tuple[float, float, float]:
    """Where ``params`` falls on the plane ``origin + alpha d1 + beta d2``.

    The least-squares coordinates (the orthogonal projection onto the plane,
    for any, not necessarily orthogonal, ``d1`` and ``d2``) and the distance
    from ``params`` to the plane. Task arithmetic and soups lie on the task
    plane (distance 0); TIES and DARE merges generally lie off it, and are
    drawn at their projection.

    Args:
        params: the model to place.
        origin, d1, d2: the plane (e.g. ``base`` and :func:`task_plane`).

    Returns:
        ``(alpha, beta, distance)``.

    Example:
        >>> base = {"w": jnp.zeros(3)}
        >>> d1, d2 = {"w": jnp.array([1.0, 0.0, 0.0])}, {"w": jnp.array([1.0, 1.0, 0.0])}
        >>> plane_coordinates({"w": jnp.array([2.0, 1.0, 5.0])}, base, d1, d2)
        (1.0, 1.0, 5.0)
    """
    for name, x in (("params", params), ("d1", d1), ("d2", d2)):
        tree.check_like(x, origin, name=name, reference_name="origin")
    v = tree.sub(params, origin)
    g = np.array([[float(tree.dot(d1, d1)), float(tree.dot(d1, d2))],
                  [float(tree.dot(d2, d1)), float(tree.dot(d2, d2))]])
    r = np.array([float(tree.dot(d1, v)), float(tree.dot(d2, v))])
    if abs(np.linalg.det(g)) <= 1e-12 * max(g[0, 0] * g[1, 1], 1e-30):
        raise ValueError("d1 and d2 are parallel (or zero): they span no plane")
    alpha, beta = np.linalg.solve(g, r)
    rest = tree.axpy(-float(beta), d2, tree.axpy(-float(alpha), d1, v))
    return float(alpha), float(beta), float(tree.norm(rest))
