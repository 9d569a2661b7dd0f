"""The implementation of :mod:`jaxsurf.topology`; its public face, with the
documentation and examples, is ``jaxsurf/topology.py``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from jaxsurf._surface import Surface

__all__ = ["persistence", "summary", "merge_tree", "Basin", "DEFAULT_RELATIVE_THRESHOLD"]

DEFAULT_RELATIVE_THRESHOLD = 0.05
"""Default ``min_persistence``: this fraction of the finite range (max - min)."""


@dataclass(frozen=True)
class Basin:
    """One basin of the merge tree (one bar of the persistence diagram).

    Attributes:
        id: the basin's number; basins are numbered by birth (0 is the deepest).
        index: grid index of its minimum (``(i, j)`` or ``(i, j, k)``).
        at: coordinates of its minimum (``(alpha, beta[, gamma])``).
        birth: the metric's value at the minimum.
        death: the value at the saddle where it spills into a deeper basin
            (``inf`` for a basin that never does).
        persistence: ``death - birth`` (``inf`` when it never dies).
        saddle_index, saddle_at: grid index and coordinates of that saddle
            (``None`` when it never dies).
        merges_into: ``id`` of the basin it spills into (``None`` when it
            never dies).
        interpolated: ``True`` when the value at its minimum or at its saddle
            was interpolated by adaptive refinement (``refine=``), not
            evaluated: its birth, death and persistence are then as good as
            the interpolation (see ``surface.evaluated``).
    """

    id: int
    index: tuple[int, ...]
    at: tuple[float, ...]
    birth: float
    death: float
    persistence: float
    saddle_index: tuple[int, ...] | None
    saddle_at: tuple[float, ...] | None
    merges_into: int | None
    interpolated: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: ``inf`` becomes ``None``."""
        out = asdict(self)
        for key in ("death", "persistence"):
            if not np.isfinite(out[key]):
                out[key] = None
        return out


# --------------------------------------------------------------------------- checks
def _grid_values(surface: Any, metric: str, fn: str) -> np.ndarray:
    """The metric as a float array of a plane or volume; non-finite set to ``inf``."""
    if not isinstance(surface, Surface):
        raise TypeError(f"{fn}() needs a jaxsurf.Surface, got {type(surface).__name__}")
    if surface.betas is None:
        raise ValueError(
            f"{fn}() needs a 2-D plane or a 3-D volume, but this surface is a line of "
            f"{len(surface.alphas)} points: basins and saddles are counted on a grid. "
            f"Evaluate a plane (js.evaluate_plane) or a volume (js.evaluate_volume); on a "
            f"line, the local minima are the points below both neighbours")
    if metric not in surface.metrics:
        raise ValueError(f"unknown metric {metric!r}; this surface has "
                         f"{surface.metric_names}: pass one of them as metric=")
    values = np.asarray(surface.metrics[metric], dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError(f"metric {metric!r} has no finite values on this grid (all "
                         f"{values.size} are NaN/inf); nothing to measure")
    return np.where(finite, values, np.inf)


def _coordinates(surface: Surface, index: tuple[int, ...]) -> tuple[float, ...]:
    axes = [surface.alphas, surface.betas] + ([surface.gammas] if surface.is_volume else [])
    return tuple(float(ax[i]) for ax, i in zip(axes, index))


def _gudhi() -> Any:
    try:
        import gudhi
    except ImportError as err:  # pragma: no cover - the test extra installs it
        raise ImportError("jaxsurf.topology needs gudhi (cubical complexes); install it with "
                          "pip install 'jaxsurf[topology]'") from err
    return gudhi


# --------------------------------------------------------------------------- persistence
def persistence(surface: Surface, metric: str = "loss") -> np.ndarray:
    """The 0-dimensional sublevel-set persistence diagram of a plane or volume.

    Args:
        surface: a plane or volume Surface.
        metric: the metric whose basins are measured.

    Returns:
        ``(n, 2)`` float array of ``(birth, death)``, one row per basin
        (local minimum), sorted by birth then death; the deepest basin (and
        any basin cut off by non-finite points) has death ``inf``. Bars of
        zero length (ties on a plateau) are left out.

    Example:
        >>> bars = js.topology.persistence(plane)        # [[min, inf], [b1, d1], ...]
        >>> depths = bars[:, 1] - bars[:, 0]
    """
    values = _grid_values(surface, metric, "persistence")
    complex_ = _gudhi().CubicalComplex(vertices=values)
    complex_.compute_persistence(homology_coeff_field=2, min_persistence=0)
    bars = np.asarray(complex_.persistence_intervals_in_dimension(0), dtype=np.float64)
    bars = bars.reshape(-1, 2)
    order = np.lexsort((bars[:, 1], bars[:, 0]))
    return bars[order]


def merge_tree(surface: Surface, metric: str = "loss") -> list[Basin]:
    """The basins and which deeper basin each spills into, at which saddle.

    A union-find sweep over the grid points in order of value (axis
    neighbours; non-finite points left out); at a point that joins several
    basins, the one with the lowest minimum lives on and the others die there
    (ties: the earlier point in C order lives). Its bars are those of
    :func:`persistence`.

    Args:
        surface: a plane or volume Surface.
        metric: the metric whose basins are followed.

    Returns:
        A list of :class:`Basin` sorted by birth (``id`` 0 is the deepest),
        including zero-persistence basins of plateaus that :func:`persistence`
        leaves out (filter them with ``b.persistence > 0``).

    Example:
        >>> for b in js.topology.merge_tree(plane):    # one basin: a minimum
        ...     print(b.at, round(b.birth, 3), b.persistence, b.merges_into)
        (0.0, 0.0) 0.202 inf None
    """
    values = _grid_values(surface, metric, "merge_tree")
    shape = values.shape
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")
    order = order[np.isfinite(flat[order])]
    parent = np.full(flat.size, -1, dtype=np.int64)   # -1: not yet in the sublevel set
    root_basin: dict[int, int] = {}                    # union-find root -> basin (its minimum)
    strides = np.array([int(np.prod(shape[a + 1:])) for a in range(len(shape))])

    def find(v: int) -> int:
        root = v
        while parent[root] != root:
            root = parent[root]
        while parent[v] != root:                      # path compression
            parent[v], v = root, parent[v]
        return root

    minima: list[int] = []            # basin -> grid point of its minimum
    deaths: dict[int, tuple[float, int, int]] = {}   # basin -> (death, saddle, into)
    for v in order.tolist():
        parent[v] = v
        index = np.array(np.unravel_index(v, shape))
        roots = set()
        for axis in range(len(shape)):
            for step in (-1, 1):
                j = index[axis] + step
                if 0 <= j < shape[axis]:
                    u = v + step * int(strides[axis])
                    if parent[u] >= 0:
                        roots.add(find(u))
        if not roots:
            root_basin[v] = len(minima)
            minima.append(v)
            continue
        basins = sorted((root_basin[r] for r in roots),
                        key=lambda b: (flat[minima[b]], minima[b]))
        survivor = basins[0]
        for b in basins[1:]:
            deaths[b] = (float(flat[v]), v, survivor)
        for r in roots:
            parent[r] = v
        parent[v] = v
        root_basin[v] = survivor

    evaluated = surface.evaluated
    out = []
    for b, m in enumerate(minima):
        index = tuple(int(i) for i in np.unravel_index(m, shape))
        birth = float(flat[m])
        death, saddle, into = deaths.get(b, (np.inf, None, None))
        saddle_index = None if saddle is None else tuple(
            int(i) for i in np.unravel_index(saddle, shape))
        interpolated = evaluated is not None and not (
            evaluated[index] and (saddle_index is None or evaluated[saddle_index]))
        out.append(Basin(b, index, _coordinates(surface, index), birth, death, death - birth,
                         saddle_index, None if saddle_index is None else
                         _coordinates(surface, saddle_index), into, bool(interpolated)))
    return out


# --------------------------------------------------------------------------- summary
def summary(surface: Surface, metric: str = "loss", min_persistence: float | None = None
            ) -> dict[str, Any]:
    """A few numbers on the basins of a plane or volume (JSON-friendly).

    Args:
        surface: a plane or volume Surface.
        metric: the metric whose basins are counted.
        min_persistence: a basin is *persistent* when its persistence is
            larger than this (in the metric's units). Default ``None``:
            ``DEFAULT_RELATIVE_THRESHOLD`` (5 %) of the finite range ``max -
            min`` of the metric on the grid, so the count does not change when
            the values are multiplied by a positive number or shifted.

    Returns:
        A dict with ``num_minima`` (local minima: all bars), ``num_persistent_minima``
        (bars longer than the threshold; a basin that never dies counts),
        ``num_components`` (bars that never die: 1 unless non-finite points
        cut the grid), ``min_persistence`` (the threshold used) and
        ``relative_threshold`` (its fraction of the range, or ``None`` when
        given), ``total_persistence`` and ``max_finite_persistence`` (of the
        finite bars; 0.0 and ``None`` without any), ``relative_total_persistence``
        (total over the range), ``global_minimum`` and ``argmin``
        (coordinates), ``range`` ``[min, max]``, ``nonfinite_points``,
        ``interpolated_points`` (values interpolated by ``refine=``, not
        evaluated: basins there are as good as the interpolation), and
        ``persistent_minima``: ``{"at", "value", "persistence",
        "interpolated"}`` of each persistent basin, deepest first (persistence
        ``None``: never dies; ``interpolated``: see :class:`Basin`).

    Example:
        >>> js.topology.summary(plane)["num_persistent_minima"]
        1
    """
    values = _grid_values(surface, metric, "summary")
    bars = persistence(surface, metric)
    finite_values = values[np.isfinite(values)]
    lo, hi = float(finite_values.min()), float(finite_values.max())
    span = hi - lo
    if min_persistence is None:
        relative = DEFAULT_RELATIVE_THRESHOLD
        threshold = relative * span
    else:
        if not np.isfinite(min_persistence) or min_persistence < 0:
            raise ValueError(f"min_persistence must be a finite number >= 0 (metric units), "
                             f"got {min_persistence!r}; None: 5 % of the metric's range")
        relative, threshold = None, float(min_persistence)
    lengths = bars[:, 1] - bars[:, 0]
    evaluated = getattr(surface, "evaluated", None)
    finite = np.isfinite(lengths)
    total = float(lengths[finite].sum())
    basins = [b for b in merge_tree(surface, metric) if b.persistence > 0]
    persistent = [b for b in basins if b.persistence > threshold]
    return {
        "metric": metric,
        "grid": list(values.shape),
        "num_minima": int(len(bars)),
        "num_persistent_minima": int(np.sum(lengths > threshold)),
        "num_components": int(np.sum(~finite)),
        "min_persistence": float(threshold),
        "relative_threshold": relative,
        "total_persistence": total,
        "max_finite_persistence": float(lengths[finite].max()) if finite.any() else None,
        "relative_total_persistence": total / span if span > 0 else None,
        "global_minimum": lo,
        "argmin": list(surface.argmin(metric)),
        "range": [lo, hi],
        "nonfinite_points": int(values.size - finite_values.size),
        "interpolated_points": (0 if evaluated is None else
                                int(evaluated.size - evaluated.sum())),
        "persistent_minima": [{"at": list(b.at), "value": b.birth,
                               "persistence": b.as_dict()["persistence"],
                               "interpolated": b.interpolated}
                              for b in persistent],
    }
