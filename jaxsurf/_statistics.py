"""Numbers across planes, each as mean ± standard error with the per-plane values:
:func:`summary` (public as ``js.summary``).

One random plane is one draw. The numbers read off it (how sharply the loss
bends at the centre, how wide the basin is, how many basins the plane
crosses) vary from plane to plane; reporting them over ``k`` planes
(:func:`jaxsurf.random_planes`, :func:`jaxsurf.evaluate_planes`) with their
standard error says how much of a difference between two models is the
models and how much the draw.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from jaxsurf import _tree as tree
from jaxsurf._surface import Surface
from jaxsurf._tree import PyTree

__all__ = ["summary", "mean_sem", "centre_index", "grid_curvature", "basin_width"]


def mean_sem(values: Sequence[float]) -> dict[str, Any]:
    """``{"mean", "sem", "n", "values"}`` of the finite per-plane values.

    ``sem`` is ``std(ddof=1) / sqrt(n)``, ``None`` with fewer than two finite
    values; non-finite values stay in ``values`` (as ``None``) and are left
    out of ``mean`` and ``sem`` (``n`` counts the finite ones).

    Example:
        >>> mean_sem([1.0, 2.0, 3.0])
        {'mean': 2.0, 'sem': 0.5773502691896258, 'n': 3, 'values': [1.0, 2.0, 3.0]}
    """
    array = np.asarray(values, np.float64)
    finite = array[np.isfinite(array)]
    n = int(finite.size)
    return {"mean": float(finite.mean()) if n else None,
            "sem": float(finite.std(ddof=1) / math.sqrt(n)) if n >= 2 else None,
            "n": n,
            "values": [float(v) if np.isfinite(v) else None for v in array]}


def centre_index(coordinates: np.ndarray, name: str) -> int:
    """The index of the grid point at coordinate 0, with a neighbour on each side."""
    coordinates = np.asarray(coordinates, np.float64)
    i = int(np.argmin(np.abs(coordinates)))
    span = float(coordinates[-1] - coordinates[0])
    if abs(coordinates[i]) > 1e-9 * max(span, 1e-30):
        raise ValueError(f"the {name} grid has no point at the centre 0 (the nearest is "
                         f"{coordinates[i]:.6g}); the curvature and basin width at the centre "
                         f"need a grid through 0, e.g. np.linspace(-1, 1, 21) (an odd count)")
    if i == 0 or i == len(coordinates) - 1:
        raise ValueError(f"the {name} grid's centre 0 is at its edge; the curvature needs a "
                         f"point on each side of it")
    return i


def grid_curvature(coordinates: np.ndarray, values: np.ndarray, i: int) -> float:
    """The second derivative at ``coordinates[i]`` from the three points around it
    (the finite difference of a non-uniform grid; exact for a quadratic)."""
    h1 = float(coordinates[i] - coordinates[i - 1])
    h2 = float(coordinates[i + 1] - coordinates[i])
    left, centre, right = (float(values[i - 1]), float(values[i]), float(values[i + 1]))
    return 2.0 * (h2 * left - (h1 + h2) * centre + h1 * right) / (h1 * h2 * (h1 + h2))


def basin_width(surface: Surface, values: np.ndarray, level: float) -> tuple[float, bool]:
    """``(radius, censored)``: the radius of the largest disc centred at the origin
    whose grid points are all below ``level`` (the distance to the nearest grid
    point at or above it, or non-finite), in the plane's coordinate units.
    ``censored``: no grid point inside the largest centred disc the grid covers
    reaches ``level``, and the radius is that disc's (a lower bound)."""
    a, b = np.meshgrid(surface.alphas, np.asarray(surface.betas), indexing="ij")
    radius = np.hypot(a, b)
    betas = np.asarray(surface.betas)
    inside = float(min(abs(surface.alphas[0]), abs(surface.alphas[-1]), abs(betas[0]),
                       abs(betas[-1])))  # the largest centred disc the grid covers
    outside = ~np.isfinite(values) | (values >= level)
    nearest = float(radius[outside].min()) if outside.any() else math.inf
    if nearest > inside:  # the grid's corners say nothing about the rest of that disc
        return inside, True
    return nearest, False


def _as_list(surfaces: Any) -> list[Surface]:
    if isinstance(surfaces, Surface):
        surfaces = [surfaces]
    elif isinstance(surfaces, Mapping):
        surfaces = list(surfaces.values())
    try:
        surfaces = list(surfaces)
    except TypeError:
        raise TypeError(f"surfaces must be a list of plane Surfaces (e.g. from "
                        f"js.evaluate_planes), got {type(surfaces).__name__}") from None
    if not surfaces:
        raise ValueError("surfaces is empty: pass at least one plane Surface")
    for p, s in enumerate(surfaces):
        if not isinstance(s, Surface):
            raise TypeError(f"surfaces[{p}] is a {type(s).__name__}, not a js.Surface")
        if not s.is_plane:
            raise ValueError(f"surfaces[{p}] is not a plane (shape {s.shape}); js.summary "
                             f"reads planes (js.evaluate_plane, js.evaluate_planes)")
    return surfaces


def summary(surfaces: Surface | Sequence[Surface], metric: str = "loss", *,
            level: float | None = None, min_persistence: float | None = None,
            topology: bool = True, fn: Callable[[PyTree, Any], Any] | None = None,
            params: PyTree | None = None, planes: Sequence[tuple[PyTree, PyTree]] | None = None,
            data: Any = None, batch_size: int | None = None) -> dict[str, Any]:
    """Statistics across planes, each as mean ± standard error and per-plane values.

    For each plane (``metrics[metric][i, j]`` at ``(alphas[i], betas[j])``, a
    grid through the centre 0):

    - ``curvature_alpha``, ``curvature_beta``: the second derivative of the
      metric at the centre along each axis, from the grid (the three points
      around 0; exact for a quadratic, a smoothed value otherwise);
    - ``curvature_exact_alpha``, ``curvature_exact_beta`` (when ``fn``,
      ``params``, ``planes`` and ``data`` are given): the exact directional
      second derivatives ``d1^T H d1`` and ``d2^T H d2`` from Hessian-vector
      products over the whole data (:func:`jaxsurf.hessian.hvp_operator`);
    - ``basin_width``: the radius of the largest disc centred at 0 whose grid
      points all lie below ``level`` (in the plane's coordinate units; as
      fine as the grid). A plane whose grid does not reach ``level`` within
      the largest centred disc it covers gives that disc's radius, a lower
      bound, and is counted in ``basin_width_censored``;
    - ``num_persistent_minima`` and ``deepest_barrier``: from
      :func:`jaxsurf.topology.summary` (``min_persistence`` as there): the
      basins longer-lived than the threshold, and the largest finite
      persistence among them, the highest barrier a persistent non-global
      minimum must climb to reach a deeper basin (0 when there is one basin);
    - ``centre_value``: the metric at the centre.

    Each statistic is ``{"mean", "sem", "n", "values"}`` (see
    :func:`mean_sem`): ``sem`` is the standard error over planes (``None``
    for one plane), ``values`` the per-plane numbers in order.

    Args:
        surfaces: plane Surfaces (e.g. from :func:`jaxsurf.evaluate_planes`),
            one Surface, or a dict of them.
        metric: the metric summarised.
        level: the level of ``basin_width`` (the metric's units); default twice
            each plane's centre value (needs a positive centre value).
        min_persistence: as in :func:`jaxsurf.topology.summary`.
        topology: compute the persistence numbers (needs ``gudhi``).
        fn, params, planes, data: to add the exact curvatures; ``planes`` are
            the ``(d1, d2)`` of the surfaces, in order (checked against the
            fingerprints the surfaces recorded).
        batch_size: examples per batch for those products.

    Returns:
        A JSON-friendly dict: ``num_planes``, ``metric``, ``level`` (the
        level used, per plane when defaulted), ``basin_width_censored``, and the
        statistics above.

    Raises:
        ValueError: no planes, a grid without the centre 0 (or with it at an
            edge), a centre value <= 0 with the default ``level``, or
            ``planes`` that do not match the surfaces.

    Example:
        >>> stats = js.summary([s_skip, s_noskip], level=1.0, topology=False)
        >>> round(stats["curvature_alpha"]["values"][0], 6)    # A^2 + 4 B^2 + 0.1
        2.0
        >>> sorted(stats["basin_width"])
        ['mean', 'n', 'sem', 'values']
    """
    surfaces = _as_list(surfaces)
    exact_inputs = [x is not None for x in (fn, params, planes, data)]
    if any(exact_inputs) and not all(exact_inputs):
        raise ValueError("the exact curvatures need fn, params, planes and data together; "
                         "pass all four or none")
    curvature: dict[str, list[float]] = {"alpha": [], "beta": []}
    widths, censored, levels, centres = [], 0, [], []
    persistent, barriers = [], []
    for p, s in enumerate(surfaces):
        values = np.asarray(s.metrics[metric] if metric in s.metrics else
                            _missing(s, metric, p), np.float64)
        i = centre_index(s.alphas, f"surfaces[{p}] alphas")
        j = centre_index(np.asarray(s.betas), f"surfaces[{p}] betas")
        centre = float(values[i, j])
        centres.append(centre)
        curvature["alpha"].append(grid_curvature(s.alphas, values[:, j], i))
        curvature["beta"].append(grid_curvature(np.asarray(s.betas), values[i, :], j))
        if level is None:
            if not centre > 0:
                raise ValueError(f"surfaces[{p}]'s centre value is {centre:.6g}: the default "
                                 f"level (twice the centre value) needs a positive one; pass "
                                 f"level=<a {metric} value>")
            plane_level = 2.0 * centre
        else:
            plane_level = float(level)
        levels.append(plane_level)
        width, cut = basin_width(s, values, plane_level)
        widths.append(width)
        censored += int(cut)
        if topology:
            from jaxsurf import _topology

            facts = _topology.summary(s, metric, min_persistence)
            persistent.append(float(facts["num_persistent_minima"]))
            finite = [m["persistence"] for m in facts["persistent_minima"]
                      if m["persistence"] is not None]
            barriers.append(float(max(finite)) if finite else 0.0)
    out: dict[str, Any] = {
        "num_planes": len(surfaces), "metric": metric,
        "level": float(level) if level is not None else levels,
        "centre_value": mean_sem(centres),
        "curvature_alpha": mean_sem(curvature["alpha"]),
        "curvature_beta": mean_sem(curvature["beta"]),
        "basin_width": mean_sem(widths),
        "basin_width_censored": censored,
    }
    if topology:
        out["num_persistent_minima"] = mean_sem(persistent)
        out["deepest_barrier"] = mean_sem(barriers)
    if all(exact_inputs):
        exact = _exact_curvatures(fn, params, planes, data, surfaces, metric, batch_size)
        out["curvature_exact_alpha"] = mean_sem(exact[0])
        out["curvature_exact_beta"] = mean_sem(exact[1])
    return out


def _missing(surface: Surface, metric: str, p: int) -> Any:
    raise KeyError(f"surfaces[{p}] has no metric {metric!r}; it has {surface.metric_names}")


def _exact_curvatures(fn: Any, params: PyTree, planes: Any, data: Any,
                      surfaces: list[Surface], metric: str, batch_size: int | None
                      ) -> tuple[list[float], list[float]]:
    """``d^T H d`` for both directions of every plane (one operator, data on the device once)."""
    from jaxsurf import _hessian

    planes = list(planes)
    if len(planes) != len(surfaces):
        raise ValueError(f"planes has {len(planes)} (d1, d2) pairs but there are "
                         f"{len(surfaces)} surfaces; pass the planes the surfaces were "
                         f"evaluated on, in order")
    for p, (plane, s) in enumerate(zip(planes, surfaces)):
        recorded = s.metadata.get("directions")
        for a, d in enumerate(plane):
            tree.check_like(d, params, name=f"planes[{p}][{a}]")
            if isinstance(recorded, list) and len(recorded) == 2 and \
                    isinstance(recorded[a], Mapping) and "fingerprint" in recorded[a] and \
                    recorded[a]["fingerprint"] != tree.fingerprint(d):
                raise ValueError(f"planes[{p}][{a}] is not the direction surfaces[{p}] was "
                                 f"evaluated on (its fingerprint differs from the one in "
                                 f"the surface's metadata); pass the planes in the same order")
    matvec = _hessian.hvp_operator(fn, params, data, metric=metric, batch_size=batch_size)
    alpha, beta = [], []
    for d1, d2 in planes:
        alpha.append(float(tree.dot(d1, matvec(d1))))
        beta.append(float(tree.dot(d2, matvec(d2))))
    return alpha, beta
