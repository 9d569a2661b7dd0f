"""The training path drawn on the contour of its PCA plane (Li et al. 2018, sec. 7).

Draws the coordinates of :func:`jaxsurf.project` over a plane evaluated along
the directions of :func:`jaxsurf.pca_directions`.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from jaxsurf.plot._common import save_figure
from jaxsurf.plot._planes import contour

__all__ = ["pca_path"]


def _variance_labels(ratio: Any, k: int = 2) -> tuple[str, ...]:
    if ratio is None:
        return tuple(f"PC{j + 1}" for j in range(k))
    ratio = np.asarray(ratio, dtype=float).reshape(-1)
    if ratio.size < k:
        raise ValueError(f"explained_variance_ratio needs {k} values, got {ratio.size}")
    return tuple(f"PC{j + 1} ({100 * ratio[j]:.1f} % of variance)" for j in range(k))


def _draw_path(ax: Any, coords: np.ndarray, epochs: Sequence[Any]) -> None:
    ax.plot(coords[:, 0], coords[:, 1], color="tab:red", linewidth=1.4, marker="o",
            markersize=3, zorder=6, label="path")
    ax.plot(*coords[0], marker="^", markersize=9, color="tab:orange", markeredgecolor="black",
            linestyle="none", zorder=7, label=f"start ({epochs[0]})")
    ax.plot(*coords[-1], marker="s", markersize=11, color="tab:red", markeredgecolor="black",
            linestyle="none", zorder=7, label=f"end ({epochs[-1]})")
    for star in ax.get_lines():  # the origin star of plot.contour: on top of the end marker
        if star.get_label() == "origin":
            star.set_zorder(9)
    ax.legend(loc="best", fontsize=7, framealpha=0.8)


def _annotate(ax: Any, coords: np.ndarray, epochs: Sequence[Any], every: int,
              gap: float = 0.06) -> None:
    """Labels the end, the start and every ``every``-th point, skipping any label
    closer than ``gap`` (axes fraction) to one already written, so none overlap."""
    n = len(coords)
    order = [n - 1, 0] + [i for i in range(every, n - 1, every)]
    frac = (ax.transData + ax.transAxes.inverted()).transform(coords)
    placed: list[np.ndarray] = []
    for i in dict.fromkeys(order):
        if any(np.hypot(*(frac[i] - q)) < gap for q in placed):
            continue
        placed.append(frac[i])
        ax.annotate(str(epochs[i]), coords[i], textcoords="offset points", xytext=(6, 5),
                    fontsize=7, color="black", zorder=8,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.7})


def _include(ax: Any, coords: np.ndarray) -> None:
    """Widens the axes limits (never shrinks them) to show every point of the path."""
    for j, (get, set_) in enumerate(((ax.get_xlim, ax.set_xlim), (ax.get_ylim, ax.set_ylim))):
        lo, hi = get()
        c_lo, c_hi = float(coords[:, j].min()), float(coords[:, j].max())
        if c_lo < lo or c_hi > hi:
            pad = 0.05 * max(c_hi - c_lo, hi - lo)
            set_(min(lo, c_lo - pad), max(hi, c_hi + pad))


def pca_path(surface: Any, coords: Any, *, explained_variance_ratio: Any = None,
             epochs: Sequence[Any] | None = None, metric: str = "loss",
             annotate_every: int | None = None, title: str | None = None,
             out: str | os.PathLike | None = None, **contour_kwargs: Any) -> Figure:
    """The PCA plane's contour with the projected training path drawn on it.

    Args:
        surface: a plane :class:`~jaxsurf.Surface` evaluated at
            ``origin + a d1 + b d2`` with the PCA directions.
        coords: ``(n, 2)`` coordinates from :func:`jaxsurf.project` (same origin and
            directions as the surface).
        explained_variance_ratio: from :func:`jaxsurf.pca_directions`; labels the axes
            "PC1 (xx.x % of variance)".
        epochs: a label per point (default ``0 … n-1``); the start, the end and
            every ``annotate_every``-th point are annotated.
        metric: which metric to contour.
        annotate_every: default about eight labels along the path.
        title: figure title; default "<metric> around the training path (PCA plane)".
        out: save to this ``.png``/``.pdf``/``.svg`` path.
        **contour_kwargs: passed to :func:`jaxsurf.plot.contour` (``levels``,
            ``vmin``, ``vmax``, ``vlevel``, ``log``, ``cmap``, ``figsize`` ...).
            ``aspect`` defaults to ``"auto"``: the first principal component
            usually spans many times the second, and an equal aspect would
            squash the plot into a strip (the axis labels give the scales).

    Returns:
        The matplotlib Figure. Axes limits grow to show points outside the grid.

    Example:
        >>> steps, points = zip(*js.load_trajectory(trajectory))
        >>> (e1, e2), ratio = js.pca_directions(trajectory)
        >>> final = points[-1]
        >>> coords = js.project(trajectory, final, [e1, e2])
        >>> lo, hi = coords.min(0) - 0.5, coords.max(0) + 0.5
        >>> surface = js.evaluate_plane(fn, final, e1, e2, data, np.linspace(lo[0], hi[0], 7),
        ...                             np.linspace(lo[1], hi[1], 7), progress=False)
        >>> fig = js.plot.pca_path(surface, coords, explained_variance_ratio=ratio,
        ...                        epochs=steps, out="pca_path.png")
    """
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] == 0:
        raise ValueError(f"coords must have shape (n, 2) (from js.project with two "
                         f"directions), got {coords.shape}; pass coords[:, :2] for more")
    if not np.all(np.isfinite(coords)):
        raise ValueError("coords contain NaN or inf; check the trajectory and directions")
    labels = contour_kwargs.pop("labels", None) or _variance_labels(explained_variance_ratio)
    epochs = list(range(len(coords))) if epochs is None else list(epochs)
    if len(epochs) != len(coords):
        raise ValueError(f"epochs has {len(epochs)} labels for {len(coords)} points")
    every = annotate_every or max(1, math.ceil(len(coords) / 8))
    if title is None and "title" not in getattr(surface, "metadata", {}):
        title = f"{metric} around the training path (PCA plane)"
    contour_kwargs.setdefault("aspect", "auto")
    contour_kwargs.setdefault("figsize", (7.0, 5.0))
    fig = contour(surface, metric, labels=labels, title=title, out=None, **contour_kwargs)
    ax = fig.axes[0]
    _draw_path(ax, coords, epochs)
    _include(ax, coords)
    _annotate(ax, coords, epochs, int(every))
    save_figure(fig, out)
    return fig
