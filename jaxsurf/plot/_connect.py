"""Mode-connectivity figures (:func:`connectivity_lines`, :func:`connectivity_plane`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from jaxsurf.plot._checks import PathLike, check_log, check_surface, metric_values
from jaxsurf.plot._common import new_figure, save_figure
from jaxsurf.plot._planes import contour
from jaxsurf._surface import Surface


def connectivity_lines(paths: Mapping[str, Surface], *, loss: str = "loss",
                       accuracy: str | None = "accuracy", log: bool = False,
                       title: str | None = None, figsize: tuple[float, float] | None = None,
                       out: PathLike | None = None) -> Figure:
    """Loss (left axis, solid) and accuracy (right axis, dashed) along several paths
    between two solutions, on one axes: e.g. the straight line, a fitted curve and
    the line after alignment (see :mod:`jaxsurf.connect`).

    Args:
        paths: ``{label: line Surface}`` over ``t`` in [0, 1] (from
            ``js.connect.evaluate_curve`` or ``js.interpolate``).
        loss: the loss metric's name.
        accuracy: the accuracy metric's name (drawn in %), or ``None``; paths
            without it are drawn without it.
        log: log scale for the loss axis.
        title: title (default: "loss and accuracy along the paths").
        figsize: figure size in inches.
        out: save to this ``.png``/``.pdf``/``.svg`` path.

    Returns:
        The Figure.

    Example:
        >>> t = np.linspace(0, 1, 11)
        >>> line = Surface(t, None, {"loss": 1 + np.sin(np.pi * t), "accuracy": 1 - t * (1 - t)})
        >>> curve = Surface(t, None, {"loss": 1 + 0.1 * t, "accuracy": 0.9 + 0 * t})
        >>> fig = connectivity_lines({"line": line, "curve": curve}, out="paths.png")
    """
    if not paths:
        raise ValueError("paths must hold at least one {label: line Surface}")
    surfaces = {str(k): check_surface(s, "connectivity_lines", plane=False)
                for k, s in paths.items()}
    fig = new_figure(figsize, (7.0, 4.2))
    ax = fig.add_subplot()
    twin = None
    handles = []
    for k, (label, s) in enumerate(surfaces.items()):
        values = np.ma.masked_invalid(metric_values(s, loss))
        if log:
            check_log(values.filled(np.nan), loss)
        marker = "o" if len(s.alphas) <= 30 else None
        (h,) = ax.plot(s.alphas, values, "-", marker=marker, markersize=3, color=f"C{k}",
                       label=f"{label}: {loss}")
        handles.append(h)
        if accuracy is not None and accuracy in s.metrics:
            twin = twin or ax.twinx()
            acc = np.ma.masked_invalid(100 * np.asarray(s.metrics[accuracy], np.float64))
            (h,) = twin.plot(s.alphas, acc, "--", color=f"C{k}", alpha=0.8,
                             label=f"{label}: {accuracy} (%)")
            handles.append(h)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("t (0: solution A, 1: solution B)")
    ax.set_ylabel(loss + (" (log scale)" if log else "") + " — solid")
    if twin is not None:
        twin.set_ylabel(f"{accuracy} (%) — dashed")
    ax.set_xlim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7,
              ncol=2 if len(handles) > 3 else 1, frameon=False)
    ax.set_title(title or "loss and accuracy along the paths", fontsize=10)
    save_figure(fig, out)
    return fig


def connectivity_plane(surface: Surface, paths: Mapping[str, Any], *,
                       points: Mapping[str, Sequence[float]] | None = None,
                       metric: str = "loss", title: str | None = None,
                       out: PathLike | None = None, **contour_options: Any) -> Figure:
    """The plane through two solutions and a curve's bend (Garipov et al. 2018,
    Fig. 1): :func:`contour` of ``metric`` with the paths drawn on it.

    Args:
        surface: a plane Surface evaluated on ``js.connect.curve_plane``'s
            directions (coordinates in parameter-space distance).
        paths: ``{label: array (n, 2)}`` plane coordinates, e.g.
            ``{"Bézier curve": js.connect.curve_path(curve, coords, ts),
            "line": coords[[0, -1]]}``.
        points: ``{label: (x, y)}`` to mark (default none), e.g. the end points
            and the bend.
        metric: the metric drawn.
        title: title (default "<metric> in the plane of the curve").
        out: save to this ``.png``/``.pdf``/``.svg`` path.
        **contour_options: passed to :func:`contour` (``levels``, ``log``,
            ``vmin``, ``vmax``, ``cmap``, ``figsize``, ...).

    Returns:
        The Figure.

    Example:
        >>> origin, e1, e2, coords = js.connect.curve_plane(curve)   # A, bend, B
        >>> xs = np.linspace(coords[:, 0].min() - 1, coords[:, 0].max() + 1, 9)
        >>> ys = np.linspace(coords[:, 1].min() - 1, coords[:, 1].max() + 1, 9)
        >>> plane = js.evaluate_plane(fn, origin, e1, e2, data, xs, ys, progress=False)
        >>> path = js.connect.curve_path(curve, coords, np.linspace(0, 1, 50))
        >>> fig = connectivity_plane(plane, {"curve": path, "line": coords[[0, 2]]},
        ...                          points={"A": coords[0], "B": coords[2]}, log=True)
    """
    fig = contour(surface, metric, labels=contour_options.pop(
        "labels", ("d1: towards solution B", "d2: towards the bend (orthogonalised)")),
        title=title or f"{metric} in the plane of the curve", **contour_options)
    ax = fig.axes[0]
    styles = ["-", "--", ":", "-."]
    for k, (label, xy) in enumerate(paths.items()):
        xy = np.asarray(xy, np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"path {label!r} must be an (n, 2) array of plane coordinates, "
                             f"got shape {xy.shape}")
        ax.plot(xy[:, 0], xy[:, 1], styles[k % len(styles)], color="white", linewidth=3.2,
                zorder=5)
        ax.plot(xy[:, 0], xy[:, 1], styles[k % len(styles)], color=f"C{k + 3}",
                linewidth=1.8, label=str(label), zorder=6)
    if any(np.allclose(xy, 0.0, atol=1e-12) for xy in (points or {}).values()):
        for line in list(ax.lines):  # the origin is a named point (A): one marker, one name
            if line.get_label() == "origin":
                line.remove()
    for label, (x, y) in (points or {}).items():
        ax.plot([x], [y], "o", color="black", markersize=6, zorder=7)
        ax.annotate(str(label), (x, y), textcoords="offset points", xytext=(6, 6),
                    fontsize=9, zorder=8)
    ax.legend(loc="best", fontsize=8)
    save_figure(fig, out)
    return fig
