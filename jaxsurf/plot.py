"""Matplotlib figures of a :class:`~jaxsurf.Surface`.

Every function builds a fresh :class:`matplotlib.figure.Figure` (never
pyplot, so no GUI and no global figure state), returns it, and saves it when
``out`` is given (``.png``, ``.pdf`` or ``.svg``, chosen by the suffix).

Orientation: ``surface.metrics[name][i, j]`` is the value at
``(alphas[i], betas[j])``; alpha is drawn on the x axis and beta on the y
axis, on any grid shape. Non-finite values (diverged points) are masked and
counted in the title.

Example:
    >>> import numpy as np, jaxsurf as js
    >>> a, b = np.linspace(-1, 1, 31), np.linspace(-0.5, 0.5, 21)
    >>> A, B = np.meshgrid(a, b, indexing="ij")
    >>> s = js.Surface(a, b, {"loss": A**2 + 4 * B**2 + 0.1})
    >>> fig = js.plot.contour(s, out="/tmp/contour.png")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib import colormaps as mpl_colormaps
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.ticker import (FormatStrFormatter, FuncFormatter, LogLocator, MaxNLocator,
                               ScalarFormatter)

from jaxsurf.subsample import SEM_SUFFIX
from jaxsurf.surface import Surface

__all__ = ["line", "contour", "filled", "heatmap", "surface3d", "compare", "contour_levels",
           "slices", "persistence", "basins", "mark_minima", "difference",
           "connectivity_lines", "connectivity_plane"]

DEFAULT_LABELS = ("alpha (direction 1)", "beta (direction 2)")
DEFAULT_CMAP = "viridis"
DPI = 150
_SUFFIXES = (".png", ".pdf", ".svg")
_PLANE_KINDS = ("contour", "filled", "heatmap")
_MAX_LEVELS = 1000
UNDERSIDE = (0.78, 0.78, 0.78, 1.0)  # surface3d: quads seen from below

PathLike = str | os.PathLike


# --------------------------------------------------------------------------- checks and data
def _check_surface(surface: Any, fn: str, *, plane: bool) -> Surface:
    """The surface, or a clear error when it is not the shape ``fn`` draws."""
    if not isinstance(surface, Surface):
        raise TypeError(f"{fn}() needs a jaxsurf.Surface, got {type(surface).__name__}")
    if plane and not surface.is_plane:
        raise ValueError(f"{fn}() draws a 2-D plane but this surface is a line of "
                         f"{len(surface.alphas)} points (betas is None); use "
                         f"jaxsurf.plot.line() for it, or evaluate a plane")
    if not plane and surface.is_plane:
        raise ValueError(f"{fn}() draws a 1-D line but this surface is a "
                         f"{len(surface.alphas)}x{len(surface.betas)} plane; use contour(), "
                         f"filled(), heatmap() or surface3d(), or slice it: "
                         f"Surface(s.alphas, None, {{k: v[:, j] for k, v in s.metrics.items()}})")
    return surface


def _metric_values(surface: Surface, metric: str) -> np.ndarray:
    """``surface.metrics[metric]`` as float, or a ValueError naming the metrics there are."""
    if metric not in surface.metrics:
        raise ValueError(f"unknown metric {metric!r}; this surface has "
                         f"{surface.metric_names}: pass one of them as metric=")
    return np.asarray(surface.metrics[metric], dtype=float)


def _plane_grid(surface: Surface, metric: str, fn: str, min_size: int = 2
                ) -> tuple[np.ndarray, np.ndarray, np.ma.MaskedArray, int]:
    """``X, Y, Z`` of shape ``(len(alphas), len(betas))`` and the number of masked points.

    ``X[i, j] = alphas[i]``, ``Y[i, j] = betas[j]``, ``Z[i, j] = metrics[metric][i, j]``.
    """
    values = _metric_values(surface, metric)
    if min(values.shape) < min_size:
        raise ValueError(f"{fn}() needs a grid of at least {min_size}x{min_size} points; "
                         f"this one is {values.shape[0]}x{values.shape[1]} (alphas x betas); "
                         f"evaluate more points or use heatmap()/line()")
    X, Y = np.meshgrid(surface.alphas, surface.betas, indexing="ij")
    Z = np.ma.masked_invalid(values)
    n_masked = int(np.ma.count_masked(Z))
    if n_masked == Z.size:
        raise ValueError(f"metric {metric!r} has no finite values on this grid (all "
                         f"{Z.size} are NaN/inf): the evaluation diverged everywhere; "
                         f"use a smaller coordinate range")
    return X, Y, Z, n_masked


def _axis_labels(surface: Surface, labels: Sequence[str] | None) -> tuple[str, str]:
    """Keyword labels, else ``metadata['axis_labels']`` (two strings), else the defaults."""
    if labels is not None:
        if len(labels) != 2:
            raise ValueError(f"labels must be two strings (x label, y label), got {labels!r}")
        return str(labels[0]), str(labels[1])
    meta = surface.metadata.get("axis_labels")
    if isinstance(meta, (list, tuple)) and len(meta) == 2 and all(isinstance(s, str)
                                                                    for s in meta):
        return meta[0], meta[1]
    return DEFAULT_LABELS


def _line_label(surface: Surface, xlabel: str | None) -> str:
    """x label of a line: keyword, else ``metadata['axis_labels'][0]``, else ``"alpha"``."""
    if xlabel is not None:
        return xlabel
    meta = surface.metadata.get("axis_labels")
    if isinstance(meta, str):
        return meta
    if isinstance(meta, (list, tuple)) and meta and isinstance(meta[0], str):
        return meta[0]
    return "alpha"


def _title(surface: Surface, default: str, title: str | None, n_masked: int, size: int,
           shown: str = "grey") -> str:
    """The title, with a second line counting masked (non-finite) points."""
    text = title if title is not None else str(surface.metadata.get("title", default))
    if n_masked:
        text += f"\n({n_masked} of {size} points non-finite: masked, {shown})"
    return text


def _check_log(values: np.ndarray, metric: str) -> None:
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() <= 0:
        raise ValueError(f"log=True needs positive values, but metric {metric!r} has minimum "
                         f"{finite.min():.6g}; use log=False (or plot a shifted metric)")


# --------------------------------------------------------------------------- levels and colour
def contour_levels(values: Any, *, levels: int | Sequence[float] | None = None,
                   vmin: float | None = None, vmax: float | None = None,
                   vlevel: float | None = None, log: bool = False,
                   filled: bool = False) -> np.ndarray:
    """The contour levels a plot of ``values`` uses.

    Args:
        values: the metric values (non-finite ones are ignored).
        levels: a count of automatic levels, or the explicit increasing levels.
        vmin, vmax: range the levels span (default: the finite data range).
        vlevel: step between levels; with it the levels are
            ``np.arange(vmin, vmax, vlevel)`` as in Li et al.'s tool.
        log: log-spaced levels (needs positive values).
        filled: boundaries for ``contourf`` (both ends of the range included)
            rather than lines strictly inside it.

    Returns:
        An increasing 1-D float array. Automatic linear levels are spaced
        quadratically from the minimum (``vmin + (vmax-vmin) t**2``), so they
        are denser near the minimum and evenly spaced rings on a quadratic bowl.

    Example:
        >>> contour_levels(np.array([0.1, 1.0, 10.0]), vmin=0.1, vmax=10, vlevel=0.5)[:3]
        array([0.1, 0.6, 1.1])
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("no finite values to choose contour levels from")
    if levels is not None and not isinstance(levels, (int, np.integer)):
        return _explicit_levels(levels)
    lo = float(finite.min()) if vmin is None else float(vmin)
    hi = float(finite.max()) if vmax is None else float(vmax)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"vmin and vmax must be finite, got {vmin!r}, {vmax!r}")
    if hi <= lo:
        if vmin is None and vmax is None:
            raise ValueError(f"the metric is constant ({lo:.6g}) on the grid, so there are no "
                             f"contour levels to draw; use heatmap(), or check the evaluation")
        raise ValueError(f"vmax ({hi:.6g}) must be larger than vmin ({lo:.6g}); an unset one "
                         f"defaults to the data's finite min/max")
    if vlevel is not None:
        return _stepped_levels(lo, hi, float(vlevel), log)
    n = 15 if levels is None else int(levels)
    if n < 1:
        raise ValueError(f"levels must be a positive count or a list of values, got {levels!r}")
    if log:
        if lo <= 0:
            raise ValueError(f"log levels need a positive range, got vmin={lo:.6g}; "
                             f"pass vmin > 0 or log=False")
        t = np.linspace(0.0, 1.0, n + 1) if filled else np.linspace(0.0, 1.0, n + 2)[1:-1]
        return np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * t)
    t = np.linspace(0.0, 1.0, n + 1) if filled else np.linspace(0.0, 1.0, n + 2)[1:-1]
    return lo + (hi - lo) * t ** 2


def _explicit_levels(levels: Sequence[float]) -> np.ndarray:
    arr = np.asarray(levels, dtype=float)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"levels must be a non-empty list of finite numbers, got {levels!r}")
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        raise ValueError(f"levels must be strictly increasing, got {arr.tolist()}")
    return arr


def _stepped_levels(lo: float, hi: float, step: float, log: bool) -> np.ndarray:
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"vlevel must be a positive step, got {step!r}")
    count = int(np.ceil((hi - lo) / step))
    if count > _MAX_LEVELS:
        raise ValueError(f"vmin={lo:.6g}, vmax={hi:.6g}, vlevel={step:.6g} would draw {count} "
                         f"levels (more than {_MAX_LEVELS}); use a larger vlevel")
    out = np.arange(lo, hi, step)
    if log and out[0] <= 0:
        raise ValueError(f"log=True needs positive levels, got vmin={lo:.6g}")
    return out


def _norm(levels: np.ndarray, log: bool) -> mcolors.Normalize:
    lo, hi = float(levels[0]), float(levels[-1])
    if hi <= lo:  # a single level: give the colour map a non-empty range
        hi = lo * 1.01 + 1e-12 if lo > 0 else lo + 1.0
    return mcolors.LogNorm(lo, hi) if log else mcolors.Normalize(lo, hi)


def _check_levels_hit(levels: np.ndarray, Z: np.ma.MaskedArray, metric: str) -> None:
    """Contour lines: at least one level must lie inside the data range."""
    lo, hi = float(Z.min()), float(Z.max())
    if not np.any((levels >= lo) & (levels <= hi)):
        raise ValueError(f"none of the contour levels [{levels[0]:.6g} .. {levels[-1]:.6g}] "
                         f"lies within the range [{lo:.6g}, {hi:.6g}] of metric {metric!r}; "
                         f"choose vmin/vmax/levels inside that range")


def _extend(levels: np.ndarray, Z: np.ma.MaskedArray) -> str:
    """contourf ``extend`` so that data beyond the first/last boundary is still filled."""
    below, above = float(Z.min()) < levels[0], float(Z.max()) > levels[-1]
    return {(False, False): "neither", (True, False): "min",
            (False, True): "max", (True, True): "both"}[(below, above)]


def _fmt(value: float) -> str:
    return f"{value:.3g}"


# --------------------------------------------------------------------------- drawing helpers
def _new_figure(figsize: tuple[float, float] | None, default: tuple[float, float],
                layout: str = "constrained") -> Figure:
    return Figure(figsize=figsize or default, layout=layout)


def _save(fig: Figure, out: PathLike | None) -> None:
    """Saves ``fig`` atomically to ``out`` (format from the suffix), creating parent dirs."""
    if out is None:
        return
    path = Path(out)
    if path.suffix.lower() not in _SUFFIXES:
        raise ValueError(f"cannot save a figure as {path.name!r}: use one of the suffixes "
                         f"{', '.join(_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format=path.suffix.lower()[1:], dpi=DPI, bbox_inches="tight",
                    pad_inches=0.1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _aspect(surface: Surface, aspect: str | float | None) -> str | float:
    """``"equal"`` when the two coordinate ranges are comparable (within 4x), else ``"auto"``."""
    if aspect is not None:
        return aspect
    width = float(np.ptp(surface.alphas))
    height = float(np.ptp(surface.betas))
    if width > 0 and height > 0 and 0.25 <= width / height <= 4.0:
        return "equal"
    return "auto"


def _layout(aspect: str | float) -> str:
    """``compressed`` fits colour bars to fixed-aspect axes; ``constrained`` otherwise."""
    return "constrained" if aspect == "auto" else "compressed"


def _plane_figsize(surface: Surface, aspect: str | float, panels: int = 1
                   ) -> tuple[float, float]:
    """A figure size whose axes box matches the data's aspect, so the colour bar fits it."""
    if aspect == "auto":
        return (5.4 * panels + 1.2, 4.4)
    ratio = (1.0 if aspect == "equal" else float(aspect)) * (
        float(np.ptp(surface.betas)) / float(np.ptp(surface.alphas)))
    width = 4.6
    height = width * ratio
    if height > 5.0:
        width, height = 5.0 / ratio, 5.0
    height = max(height, 1.6)
    return ((width + 0.9) * panels + 1.1, height + 1.3)


def _mark_origin(ax: Axes, surface: Surface) -> None:
    """A star at (0, 0), the point the directions start from, when it is on the grid."""
    a, b = surface.alphas, surface.betas
    if a.min() <= 0 <= a.max() and b.min() <= 0 <= b.max():
        ax.plot([0.0], [0.0], marker="*", markersize=11, color="white",
                markeredgecolor="black", linestyle="none", zorder=5, label="origin")


def _cell_edges(centres: np.ndarray) -> np.ndarray:
    """Cell boundaries around each coordinate: midpoints inside, mirrored at the ends."""
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def _draw_plane(ax: Axes, kind: str, surface: Surface, Z: np.ma.MaskedArray, X: np.ndarray,
                Y: np.ndarray, levels: np.ndarray, norm: mcolors.Normalize, cmap: str,
                label_levels: bool) -> Any:
    """Draws one panel of ``kind``; returns the mappable for the colour bar."""
    if kind == "contour":
        mappable = ax.contour(X, Y, Z, levels=levels, cmap=cmap, norm=norm, linewidths=1.0)
        if label_levels:
            ax.set_xlim(*_limits(surface.alphas))   # label positions depend on the limits
            ax.set_ylim(*_limits(surface.betas))
            _label_lines(ax, mappable)
    elif kind == "filled":
        mappable = ax.contourf(X, Y, Z, levels=levels, cmap=cmap, norm=norm,
                               extend=_extend(levels, Z))
        ax.contour(X, Y, Z, levels=levels, colors="black", linewidths=0.4, alpha=0.35)
    else:  # heatmap
        edges_a, edges_b = np.meshgrid(_cell_edges(surface.alphas), _cell_edges(surface.betas),
                                       indexing="ij")
        mappable = ax.pcolormesh(edges_a, edges_b, Z, cmap=cmap, norm=norm, shading="flat")
    return mappable


def _colorbar(fig: Figure, mappable: Any, ax: Axes | list[Axes], label: str,
              levels: np.ndarray | None) -> Any:
    """A colour bar drawn true to scale (``spacing="proportional"``).

    Contour levels sit on the bar at their values, so automatic levels (denser
    near the minimum) show as lines bunched at the low end rather than as
    evenly spaced bands; the ticks are ordinary round values of the metric.
    A single contour level gets no colour bar (it has no range; its line is
    labelled).
    """
    if levels is not None and len(levels) < 2:
        return None
    kwargs: dict[str, Any] = {} if levels is None else {"spacing": "proportional"}
    bar = fig.colorbar(mappable, ax=ax, label=label, **kwargs)
    if levels is not None:  # round ticks, not the (uneven) level values
        if isinstance(bar.norm, mcolors.LogNorm):
            bar.locator = LogLocator(subs=(1.0, 2.0, 5.0))
            bar.formatter = FuncFormatter(lambda v, _: f"{v:g}")
        else:
            bar.locator, bar.formatter = MaxNLocator(nbins=6), ScalarFormatter()
    bar.minorticks_off()
    return bar


def _bar_label(metric: str, log: bool, levels: Any, vlevel: float | None) -> str:
    """Colour bar label; says how automatic contour levels are spaced."""
    label = metric + (" (log scale)" if log else "")
    if levels is not None and not isinstance(levels, (int, np.integer)):
        return label
    if vlevel is not None:
        return label + f"\n(levels every {vlevel:g})"
    return label + ("\n(levels evenly spaced in log)" if log
                    else "\n(levels denser near the minimum)")


def _label_lines(ax: Axes, cs: Any, margin: float = 0.06, gap: float = 0.1) -> list[Any]:
    """Labels each contour level once, at a point well inside the axes.

    Matplotlib's automatic placement can put a label where the line leaves the
    axes, where the text is then clipped. Here each level's label goes at the
    vertex of its line farthest from the axes edges (at least ``margin`` of the
    axes inside) and at least ``gap`` (axes fraction) from labels already
    placed; a level without such a point is left unlabelled.
    """
    to_axes = ax.transData + ax.transAxes.inverted()
    origin = to_axes.transform([(0.0, 0.0)])[0]
    placed = [origin] if np.all((origin >= 0) & (origin <= 1)) else []  # keep off the star
    points: list[tuple[float, float]] = []
    for path in cs.get_paths():
        verts = np.asarray(path.vertices, dtype=float)
        if len(verts) == 0:
            continue
        frac = to_axes.transform(verts)
        inner = np.minimum(frac, 1.0 - frac).min(axis=1)
        for k in np.argsort(-inner):
            if inner[k] < margin:
                break
            if all(np.hypot(*(frac[k] - q)) >= gap for q in placed):
                placed.append(frac[k])
                points.append((float(verts[k, 0]), float(verts[k, 1])))
                break
    if not points:
        return []
    return ax.clabel(cs, inline=True, fontsize=7, fmt=_fmt, manual=points)


def _shade_masked(ax: Axes, surface: Surface, Z: np.ma.MaskedArray) -> None:
    """Light grey cells where the metric is non-finite, so holes are not read as data."""
    mask = np.ma.getmaskarray(Z)
    if not mask.any():
        return
    edges_a, edges_b = np.meshgrid(_cell_edges(surface.alphas), _cell_edges(surface.betas),
                                   indexing="ij")
    ax.pcolormesh(edges_a, edges_b, np.ma.masked_where(~mask, np.ones(mask.shape)),
                  cmap=mcolors.ListedColormap(["0.8"]), shading="flat", zorder=0.5)


def _decorate(ax: Axes, surface: Surface, labels: tuple[str, str], aspect: str | float,
              title: str, cells: bool = False) -> None:
    """Origin star, limits (grid range, or cell edges for a heatmap), labels, title."""
    _mark_origin(ax, surface)
    if cells:
        ax.set_xlim(*_cell_edges(surface.alphas)[[0, -1]])
        ax.set_ylim(*_cell_edges(surface.betas)[[0, -1]])
    else:
        ax.set_xlim(*_limits(surface.alphas))
        ax.set_ylim(*_limits(surface.betas))
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_aspect(aspect)
    ax.set_title(title, fontsize=10)


def _limits(coords: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(coords)), float(np.max(coords))
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _plane_figure(kind: str, surface: Surface, metric: str, *, levels: Any, vmin: float | None,
                  vmax: float | None, vlevel: float | None, log: bool, label_levels: bool,
                  labels: Sequence[str] | None, title: str | None, cmap: str,
                  aspect: str | float | None, figsize: tuple[float, float] | None,
                  out: PathLike | None) -> Figure:
    """Shared body of :func:`contour`, :func:`filled` and :func:`heatmap`."""
    surface = _check_surface(surface, kind, plane=True)
    X, Y, Z, n_masked = _plane_grid(surface, metric, kind, min_size=1 if kind == "heatmap"
                                    else 2)
    if log:
        _check_log(Z.filled(np.nan), metric)
    if kind != "heatmap" and float(Z.min()) == float(Z.max()):
        raise ValueError(f"metric {metric!r} is constant ({float(Z.min()):.6g}) on the grid, so "
                         f"{kind}() has no levels to draw; use heatmap(), or check the evaluation")
    if kind == "heatmap":
        lv = _heatmap_range(Z, vmin, vmax, log)
    else:
        lv = contour_levels(Z.compressed(), levels=levels, vmin=vmin, vmax=vmax, vlevel=vlevel,
                            log=log, filled=kind == "filled")
        if kind == "contour":
            _check_levels_hit(lv, Z, metric)
        elif lv.size < 2:
            raise ValueError(f"filled() needs at least 2 level boundaries, got {lv.tolist()}; "
                             f"widen vmin/vmax or use a smaller vlevel")
    aspect = _aspect(surface, aspect)
    fig = _new_figure(figsize, _plane_figsize(surface, aspect), _layout(aspect))
    ax = fig.add_subplot()
    mappable = _draw_plane(ax, kind, surface, Z, X, Y, lv, _norm(lv, log), cmap, label_levels)
    _colorbar(fig, mappable, ax, metric + (" (log scale)" if log else "") if kind == "heatmap"
              else _bar_label(metric, log, levels, vlevel), None if kind == "heatmap" else lv)
    _shade_masked(ax, surface, Z)
    _decorate(ax, surface, _axis_labels(surface, labels), aspect,
              _title(surface, metric, title, n_masked, Z.size), cells=kind == "heatmap")
    _save(fig, out)
    return fig


def _heatmap_range(Z: np.ma.MaskedArray, vmin: float | None, vmax: float | None,
                   log: bool) -> np.ndarray:
    lo = float(Z.min()) if vmin is None else float(vmin)
    hi = float(Z.max()) if vmax is None else float(vmax)
    if hi < lo:
        raise ValueError(f"vmax ({hi:.6g}) must not be smaller than vmin ({lo:.6g})")
    if log and lo <= 0:
        raise ValueError(f"log=True needs a positive vmin, got {lo:.6g}")
    return np.array([lo, hi])


# --------------------------------------------------------------------------- public plots
def line(surface: Surface, metrics: str | Sequence[str] | None = None, *, log: bool = False,
         xlabel: str | None = None, title: str | None = None,
         figsize: tuple[float, float] | None = None, out: PathLike | None = None) -> Figure:
    """1-D curve of a line surface: loss-like metrics on the left axis, accuracy on the right.

    Metrics whose name contains ``"acc"`` go on a twin right axis (when there
    is also another metric); the rest share the left axis. A metric with a
    standard error ``<name>_sem`` (from ``subsample=``) gets a shaded band of
    plus or minus two standard errors. Accuracy-like metrics whose values are
    fractions in [0, 1] are drawn in percent (as the training curves are).
    The legend sits below the axes, where it cannot cover a curve.

    Args:
        surface: a line Surface (``betas is None``).
        metrics: a name or names to draw; default all but the ``_sem`` ones.
        log: log scale on the left (loss) axis; needs positive values.
        xlabel: x label; default ``metadata['axis_labels'][0]`` or ``"alpha"``.
        title: title; default ``metadata['title']``, else the metric names and
            what the line is (a direction, or the interpolation between two
            parameter sets when ``metadata['kind'] == "interpolation"``).
        figsize: figure size in inches.
        out: save to this ``.png``/``.pdf``/``.svg`` path.

    Returns:
        The Figure.

    Example:
        >>> a = np.linspace(-1, 1, 41)
        >>> s = Surface(a, None, {"loss": a**2 + .1, "accuracy": 1 - a**2 / 2})
        >>> fig = line(s, out="/tmp/line.png")
    """
    surface = _check_surface(surface, "line", plane=False)
    names = _line_metrics(surface, metrics)
    right = [m for m in names if "acc" in m.lower()]
    left = [m for m in names if m not in right] or right
    right = [m for m in right if m not in left]
    fig = _new_figure(figsize, (6.4, 4.2))
    ax = fig.add_subplot()
    handles, n_masked = _plot_series(ax, surface, left, log, first_colour=0)
    if right:
        twin = ax.twinx()
        more, extra = _plot_series(twin, surface, right, False, first_colour=len(left))
        twin.set_ylabel(_series_label(surface, right))
        handles, n_masked = handles + more, n_masked + extra
    ax.set_xlabel(_line_label(surface, xlabel))
    ax.set_ylabel(_series_label(surface, left) + (" (log scale)" if log else ""))
    ax.grid(True, alpha=0.3)
    # Below the axes, never over a curve.
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               fontsize=8, frameon=False)
    size = len(surface.alphas) * len(names)
    ax.set_title(_title(surface, _line_title(surface, left + right), title, n_masked, size,
                        "gaps"), fontsize=10)
    _save(fig, out)
    return fig


def _line_title(surface: Surface, names: list[str]) -> str:
    """Default title of a line: what the line is, then the metrics drawn."""
    what = " and ".join(names)
    if surface.metadata.get("kind") == "interpolation":
        return f"{what} from params_a (alpha = 0) to params_b (alpha = 1)"
    return f"{what} along direction 1"


def _percent(surface: Surface, name: str) -> bool:
    """Accuracy-like metrics whose finite values are fractions in [0, 1] are drawn in %."""
    if "acc" not in name.lower():
        return False
    values = _metric_values(surface, name)
    finite = values[np.isfinite(values)]
    return bool(finite.size) and float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0


def _series_label(surface: Surface, names: list[str]) -> str:
    return ", ".join(f"{n} (%)" if _percent(surface, n) else n for n in names)


def _line_metrics(surface: Surface, metrics: str | Sequence[str] | None) -> list[str]:
    names = [m for m in surface.metric_names if not _is_sem_of_another(surface, m)] \
        if metrics is None else ([metrics] if isinstance(metrics, str) else list(metrics))
    if not names:
        raise ValueError("metrics must name at least one metric")
    for name in names:
        _metric_values(surface, name)
    return names


def _is_sem_of_another(surface: Surface, name: str) -> bool:
    return name.endswith(SEM_SUFFIX) and name[:-len(SEM_SUFFIX)] in surface.metrics


def _plot_series(ax: Axes, surface: Surface, names: list[str], log: bool,
                 first_colour: int) -> tuple[list[Any], int]:
    handles, n_masked = [], 0
    marker = "o" if len(surface.alphas) <= 30 else None
    for k, name in enumerate(names):
        scale = 100.0 if _percent(surface, name) else 1.0
        values = np.ma.masked_invalid(scale * _metric_values(surface, name))
        n_masked += int(np.ma.count_masked(values))
        if log:
            _check_log(values.filled(np.nan), name)
        (handle,) = ax.plot(surface.alphas, values, marker=marker, markersize=3,
                            color=f"C{first_colour + k}", label=name)
        handles.append(handle)
        sem = surface.metrics.get(name + SEM_SUFFIX)
        if sem is not None:
            low = (values - 2 * scale * np.asarray(sem)).filled(np.nan)
            high = (values + 2 * scale * np.asarray(sem)).filled(np.nan)
            if log:  # a band reaching zero or below is cut at the curve's smallest value
                low = np.where(low > 0, low, values.min())
            handles.append(ax.fill_between(surface.alphas, low, high,
                                           color=f"C{first_colour + k}",
                                           alpha=0.2, linewidth=0,
                                           label=f"{name} ± 2 SEM"))
    if log:
        ax.set_yscale("log")
    return handles, n_masked


def contour(surface: Surface, metric: str = "loss", *,
            levels: int | Sequence[float] | None = None, vmin: float | None = None,
            vmax: float | None = None, vlevel: float | None = None, log: bool = False,
            label_levels: bool = True, labels: Sequence[str] | None = None,
            title: str | None = None, cmap: str = DEFAULT_CMAP,
            aspect: str | float | None = None, figsize: tuple[float, float] | None = None,
            out: PathLike | None = None, show_interpolated: bool = False) -> Figure:
    """2-D contour lines of a plane, levels labelled, origin starred, with a colour bar.

    Args:
        surface: a plane Surface; ``metrics[metric][i, j]`` is drawn at
            ``x = alphas[i]``, ``y = betas[j]``.
        metric: which metric to draw.
        levels: number of automatic levels (default 15) or explicit levels.
        vmin, vmax, vlevel: level range and step, as in Li et al.'s tool
            (``np.arange(vmin, vmax, vlevel)``); without ``vlevel`` the levels
            are automatic within ``[vmin, vmax]``.
        log: log-spaced levels and colours (needs positive values).
        label_levels: write each level's value on its line.
        labels: ``(x label, y label)``; default ``metadata['axis_labels']`` or
            ``("alpha (direction 1)", "beta (direction 2)")``.
        title: title; default ``metadata['title']`` or the metric name.
        cmap: matplotlib colour map name.
        aspect: axes aspect; default ``"equal"`` when the two ranges are
            within a factor 4 of each other, else ``"auto"``.
        figsize: figure size in inches.
        out: save to this ``.png``/``.pdf``/``.svg`` path.
        show_interpolated: hatch the regions whose values were interpolated
            (``surface.evaluated`` False, from ``refine=``) and dot the
            evaluated points; nothing to mark on an ordinary surface.

    Returns:
        The Figure.

    Example:
        >>> fig = contour(s, vmin=0.1, vmax=10, vlevel=0.5, out="runs/contour.pdf")
    """
    fig = _plane_figure("contour", surface, metric, levels=levels, vmin=vmin, vmax=vmax,
                        vlevel=vlevel, log=log, label_levels=label_levels, labels=labels,
                        title=title, cmap=cmap, aspect=aspect, figsize=figsize,
                        out=None if show_interpolated else out)
    if show_interpolated:
        _mark_interpolated(fig.axes[0], surface)
        _save(fig, out)
    return fig


def _mark_interpolated(ax: Axes, surface: Surface) -> None:
    """Hatches where ``surface.evaluated`` is False and dots the evaluated points."""
    mask = getattr(surface, "evaluated", None)
    if mask is None or mask.all():
        return
    X, Y = np.meshgrid(surface.alphas, surface.betas, indexing="ij")  # [i, j] at (a_i, b_j)
    grey = (0.35, 0.35, 0.35, 0.45)
    hatched = ax.contourf(X, Y, (~mask).astype(float), levels=[0.5, 1.5], colors="none",
                          hatches=["//"])
    hatched.set_edgecolor(grey)  # the hatch takes the edge colour
    hatched.set_linewidth(0)
    dots = ax.scatter(X[mask], Y[mask], s=2, c="k", linewidths=0, zorder=3)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(facecolor="none", edgecolor=grey, hatch="//"), dots],
              labels=["interpolated", "evaluated"], loc="upper right", fontsize=7,
              framealpha=0.8, markerscale=3)


def filled(surface: Surface, metric: str = "loss", *,
           levels: int | Sequence[float] | None = None, vmin: float | None = None,
           vmax: float | None = None, vlevel: float | None = None, log: bool = False,
           labels: Sequence[str] | None = None, title: str | None = None,
           cmap: str = DEFAULT_CMAP, aspect: str | float | None = None,
           figsize: tuple[float, float] | None = None, out: PathLike | None = None) -> Figure:
    """Filled contours (``contourf``) of a plane with faint level lines and a colour bar.

    Args:
        surface, metric, levels, vmin, vmax, vlevel, log, labels, title, cmap,
        aspect, figsize, out: as in :func:`contour`; here the levels are the
        boundaries of the filled bands and include both ends of the range.
        Values beyond the first/last boundary are drawn with the extended
        colour bar ends.

    Returns:
        The Figure.

    Example:
        >>> fig = filled(s, log=True, out="runs/filled.png")
    """
    return _plane_figure("filled", surface, metric, levels=levels, vmin=vmin, vmax=vmax,
                         vlevel=vlevel, log=log, label_levels=False, labels=labels,
                         title=title, cmap=cmap, aspect=aspect, figsize=figsize, out=out)


def heatmap(surface: Surface, metric: str = "loss", *, vmin: float | None = None,
            vmax: float | None = None, log: bool = False, labels: Sequence[str] | None = None,
            title: str | None = None, cmap: str = DEFAULT_CMAP,
            aspect: str | float | None = None, figsize: tuple[float, float] | None = None,
            out: PathLike | None = None) -> Figure:
    """One coloured cell per grid point (``pcolormesh``) with a colour bar.

    Cell ``[i, j]`` is centred on ``(alphas[i], betas[j])`` and reaches half
    way to its neighbours, so uneven grids draw true to scale.

    Args:
        surface, metric, labels, title, cmap, aspect, figsize, out: as in
            :func:`contour`.
        vmin, vmax: colour range (default: the finite data range).
        log: logarithmic colour scale (needs positive values).

    Returns:
        The Figure.

    Example:
        >>> fig = heatmap(s, metric="accuracy", out="runs/accuracy.png")
    """
    return _plane_figure("heatmap", surface, metric, levels=None, vmin=vmin, vmax=vmax,
                         vlevel=None, log=log, label_levels=False, labels=labels, title=title,
                         cmap=cmap, aspect=aspect, figsize=figsize, out=out)


def surface3d(surface: Surface, metric: str = "loss", *, zmax: float | None = None,
              log: bool = False, labels: Sequence[str] | None = None,
              title: str | None = None, cmap: str = DEFAULT_CMAP, elev: float = 50.0,
              azim: float = -60.0, figsize: tuple[float, float] | None = None,
              out: PathLike | None = None) -> Figure:
    """3-D surface of a plane (alpha, beta, metric) with a colour bar.

    Quads that touch a non-finite point are left out, so a diverged corner
    shows as a hole rather than a spike. Where a wall is steeper than the line
    of sight, its underside shows; those quads are drawn grey (not in the
    colour of their value, where they would read as a bright spot of data).

    Args:
        surface, metric, labels, title, cmap, figsize, out: as in :func:`contour`.
        zmax: clip values above ``zmax`` (in the metric's units) to ``zmax``,
            so that a few huge values do not flatten the rest.
        log: draw ``log10(metric)`` as the height (needs positive values).
        elev, azim: viewing angles in degrees. The default looks down
            steeply: from a low ``elev`` the near rim of a bowl hides the
            valley and one sees its underside.

    Returns:
        The Figure.

    Example:
        >>> fig = surface3d(s, zmax=5, out="runs/surface.png")
    """
    surface = _check_surface(surface, "surface3d", plane=True)
    X, Y, Z, n_masked = _plane_grid(surface, metric, "surface3d")
    height = _heights(Z.filled(np.nan), metric, zmax, log)
    verts, face_z = _quads(X, Y, height)
    if len(verts) == 0:
        raise ValueError(f"surface3d(): every grid cell touches a non-finite value of "
                         f"{metric!r}; nothing to draw (use heatmap() to see where)")
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # registers the 3d projection

    fig = _new_figure(figsize, (7.0, 5.4))
    ax = fig.add_subplot(projection="3d")
    finite = height[np.isfinite(height)]
    lo, hi = float(finite.min()), float(finite.max())
    norm = mcolors.Normalize(lo, hi if hi > lo else lo + 1.0)
    colours = mpl_colormaps[cmap](norm(face_z))
    box = _box_aspect(surface)
    spans = (np.ptp(surface.alphas) or 1.0, np.ptp(surface.betas) or 1.0, (hi - lo) or 1.0)
    colours[_facing_away(verts, box, spans, elev, azim)] = UNDERSIDE
    faces = Poly3DCollection(verts, facecolors=colours, edgecolor=(0, 0, 0, 0.25),
                             linewidth=0.2)
    ax.add_collection3d(faces)
    scale = ScalarMappable(norm=norm, cmap=cmap)  # the colour bar's scale
    zlabel = f"log10({metric})" if log else metric
    ax.set(xlim=_limits(surface.alphas), ylim=_limits(surface.betas),
           zlim=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
    xl, yl = _axis_labels(surface, labels)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):  # few, short ticks: "-1", "0.5", not "-1.00"
        axis.set_major_locator(MaxNLocator(nbins=4))
        axis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel(xl, labelpad=8)
    ax.set_ylabel(yl, labelpad=8)
    ax.set_zlabel(zlabel, labelpad=10)
    ax.view_init(elev=elev, azim=azim)
    ax.set_box_aspect(_box_aspect(surface), zoom=0.92)
    fig.colorbar(scale, ax=ax, shrink=0.6, pad=0.1,
                 label=zlabel + (f" (clipped at {zmax:g})" if zmax is not None else ""))
    ax.set_title(_title(surface, metric, title, n_masked, Z.size, "holes"), fontsize=10)
    _drop_colliding_ticks(fig, ax)
    _save(fig, out)
    return fig


def _facing_away(verts: np.ndarray, box: tuple[float, float, float],
                 spans: tuple[float, float, float], elev: float, azim: float) -> np.ndarray:
    """True for quads whose underside faces the viewer (in the scaled 3-D box)."""
    scaled = verts * (np.asarray(box) / np.asarray(spans))
    normal = np.cross(scaled[:, 2] - scaled[:, 0], scaled[:, 3] - scaled[:, 1])
    normal *= np.sign(normal[:, 2:3] + (normal[:, 2:3] == 0))  # the upper side's normal
    e, a = np.deg2rad(elev), np.deg2rad(azim)
    eye = np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])
    return normal @ eye < 0


def _drawn_tick_labels(axis: Any) -> list[tuple[float, Any]]:
    """``(value, label Text)`` of the labelled major ticks inside the axis range."""
    lo, hi = sorted(axis.get_view_interval())
    span = hi - lo
    return [(float(t.get_loc()), t.label1) for t in axis.majorTicks
            if t.get_loc() is not None and lo - 1e-9 * span <= t.get_loc() <= hi + 1e-9 * span
            and t.label1.get_visible() and t.label1.get_text()]


def _drop_colliding_ticks(fig: Figure, ax: Any) -> None:
    """Blanks the y (then z) tick labels that overlap another axis' labels.

    Where two axes of a 3-D box meet, their end ticks ("1" of alpha and "-1" of
    beta) can be drawn on top of each other; the y axis gives way.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    kept = [text.get_window_extent(renderer).padded(8)
            for _, text in _drawn_tick_labels(ax.xaxis)]
    for axis in (ax.yaxis, ax.zaxis):
        drop = []
        for value, text in _drawn_tick_labels(axis):
            box = text.get_window_extent(renderer).padded(8)
            if any(box.overlaps(other) for other in kept):
                drop.append(value)
            else:
                kept.append(box)
        if drop:
            _blank_ticks(axis, drop)


def _blank_ticks(axis: Any, values: list[float]) -> None:
    """Keeps the tick marks but writes no label at the given tick values."""
    text = axis.get_major_formatter()
    axis.set_major_formatter(FuncFormatter(
        lambda v, pos: "" if any(np.isclose(v, values)) else text(v, pos)))


def _box_aspect(surface: Surface) -> tuple[float, float, float]:
    """3-D box proportional to the alpha and beta ranges (within 4x), so alpha stays long."""
    wa, wb = float(np.ptp(surface.alphas)), float(np.ptp(surface.betas))
    if not (wa > 0 and wb > 0 and 0.25 <= wa / wb <= 4.0):
        return (4.0, 4.0, 3.0)
    scale = 4.0 / max(wa, wb)
    return (wa * scale, wb * scale, 3.0)


def _heights(values: np.ndarray, metric: str, zmax: float | None, log: bool) -> np.ndarray:
    """Values clipped at ``zmax`` and optionally ``log10``-ed; NaN where non-finite."""
    out = np.where(np.isfinite(values), values, np.nan)
    if zmax is not None:
        if not np.isfinite(zmax):
            raise ValueError(f"zmax must be a finite number, got {zmax!r}")
        out = np.minimum(out, zmax)
    if log:
        _check_log(out, metric)
        out = np.log10(out)
    return out


def _quads(X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corner coordinates ``(k, 4, 3)`` and mean height of each cell whose corners are finite."""
    corners = [(slice(None, -1), slice(None, -1)), (slice(1, None), slice(None, -1)),
               (slice(1, None), slice(1, None)), (slice(None, -1), slice(1, None))]
    verts = np.stack([np.stack([A[c] for c in corners], axis=-1) for A in (X, Y, Z)], axis=-1)
    ok = np.all(np.isfinite(verts[..., 2]), axis=-1)
    return verts[ok], verts[ok][..., 2].mean(axis=-1)


def compare(surfaces: Mapping[str, Surface], metric: str = "loss", kind: str = "contour", *,
            levels: int | Sequence[float] | None = None, vmin: float | None = None,
            vmax: float | None = None, vlevel: float | None = None, log: bool = False,
            label_levels: bool = True, labels: Sequence[str] | None = None,
            title: str | None = None, cmap: str = DEFAULT_CMAP,
            aspect: str | float | None = None, figsize: tuple[float, float] | None = None,
            out: PathLike | None = None) -> Figure:
    """Side-by-side panels of several planes on one colour scale and one set of levels.

    Args:
        surfaces: panel title → plane Surface (e.g. ``{"skip": s1, "no skip": s2}``).
        metric: the metric drawn in every panel.
        kind: ``"contour"``, ``"filled"`` or ``"heatmap"``.
        levels, vmin, vmax, vlevel, log, label_levels, labels, cmap, aspect,
        figsize, out: as in :func:`contour`; automatic levels span the finite
            values of all panels together.
        title: a title over all panels.

    Returns:
        The Figure.

    Example:
        >>> fig = compare({"skip": s_skip, "no skip": s_noskip}, kind="filled", log=True)
    """
    if kind not in _PLANE_KINDS:
        raise ValueError(f"kind must be one of {_PLANE_KINDS}, got {kind!r}")
    if not surfaces:
        raise ValueError("compare() needs at least one surface, e.g. {'name': surface}")
    grids = {name: _plane_grid(_check_surface(s, "compare", plane=True), metric, "compare",
                               min_size=1 if kind == "heatmap" else 2)
             for name, s in surfaces.items()}
    values = np.concatenate([Z.compressed() for _, _, Z, _ in grids.values()])
    if log:
        _check_log(values, metric)
    if kind == "heatmap":
        lv = _heatmap_range(np.ma.masked_invalid(values), vmin, vmax, log)
    else:
        lv = contour_levels(values, levels=levels, vmin=vmin, vmax=vmax, vlevel=vlevel,
                            log=log, filled=kind == "filled")
    norm = _norm(lv, log)
    n = len(surfaces)
    first = next(iter(surfaces.values()))
    fig = _new_figure(figsize, _plane_figsize(first, _aspect(first, aspect), panels=n),
                      _layout(_aspect(first, aspect)))
    axes = [fig.add_subplot(1, n, k + 1) for k in range(n)]
    mappable = None
    for ax, (name, (X, Y, Z, n_masked)) in zip(axes, grids.items()):
        s = surfaces[name]
        mappable = _draw_plane(ax, kind, s, Z, X, Y, lv, norm, cmap, label_levels)
        _shade_masked(ax, s, Z)
        _decorate(ax, s, _axis_labels(s, labels), _aspect(s, aspect),
                  _title(s, str(name), str(name), n_masked, Z.size), cells=kind == "heatmap")
    _colorbar(fig, mappable, axes, metric + (" (log scale)" if log else "") if kind == "heatmap"
              else _bar_label(metric, log, levels, vlevel), None if kind == "heatmap" else lv)
    if title is not None:
        fig.suptitle(title)
    _save(fig, out)
    return fig


# --------------------------------------------------------------------------- volumes, basins, gaps
DEFAULT_VOLUME_LABELS = ("alpha (direction 1)", "beta (direction 2)", "gamma (direction 3)")


def _volume_labels(surface: Surface, labels: Sequence[str] | None) -> tuple[str, str, str]:
    """Keyword labels, else ``metadata['axis_labels']`` (three strings), else the defaults."""
    if labels is not None:
        if len(labels) != 3:
            raise ValueError(f"labels must be three strings (alpha, beta, gamma), got {labels!r}")
        return str(labels[0]), str(labels[1]), str(labels[2])
    meta = surface.metadata.get("axis_labels")
    if isinstance(meta, (list, tuple)) and len(meta) == 3 and all(isinstance(s, str)
                                                                    for s in meta):
        return meta[0], meta[1], meta[2]
    return DEFAULT_VOLUME_LABELS


def _slice_index(surface: Surface, values: np.ndarray,
                 at: str | Sequence[float] | None) -> tuple[int, int, int]:
    """Grid index the three slices go through: nearest the origin, the minimum, or a point."""
    axes = (surface.alphas, surface.betas, surface.gammas)
    if at is None or at == "origin":
        point: Sequence[float] = (0.0, 0.0, 0.0)
    elif at == "min":
        finite = np.where(np.isfinite(values), values, np.inf)
        return tuple(int(i) for i in np.unravel_index(np.argmin(finite), values.shape))
    elif isinstance(at, str) or len(at) != 3:
        raise ValueError(f"at must be 'origin', 'min' or (alpha, beta, gamma), got {at!r}")
    else:
        point = at
    return tuple(int(np.argmin(np.abs(np.asarray(ax, float) - float(p))))
                 for ax, p in zip(axes, point))


def slices(surface: Surface, metric: str = "loss", *, at: str | Sequence[float] | None = None,
           log: bool = False, vmin: float | None = None, vmax: float | None = None,
           labels: Sequence[str] | None = None, title: str | None = None,
           cmap: str = DEFAULT_CMAP, figsize: tuple[float, float] | None = None,
           out: PathLike | None = None) -> Figure:
    """Three orthogonal slices through a volume on one colour scale.

    Panels: the alpha-beta plane at ``gammas[k]``, the alpha-gamma plane at
    ``betas[j]`` and the beta-gamma plane at ``alphas[i]``, where ``(i, j,
    k)`` is the grid point nearest ``at``; dashed lines show where the other
    two slices cut each panel. One colour bar for all three, spanning the
    finite values of the whole volume (so the panels and other slices of the
    same volume are comparable). Cells are centred on the grid points;
    non-finite points are grey.

    Args:
        surface: a volume Surface (``gammas`` set).
        metric: which metric to draw.
        at: ``"origin"`` (default, the grid point nearest (0, 0, 0)),
            ``"min"`` (the smallest finite value) or ``(alpha, beta, gamma)``.
        log: logarithmic colour scale (needs positive values).
        vmin, vmax: colour range (default: the volume's finite range).
        labels: ``(alpha, beta, gamma)`` axis labels; default
            ``metadata['axis_labels']`` or ``alpha/beta/gamma (direction k)``.
        title, cmap, figsize, out: as in :func:`contour`.

    Returns:
        The Figure.

    Example:
        >>> fig = slices(volume, at="min", log=True, out="runs/slices.png")
    """
    if not isinstance(surface, Surface):
        raise TypeError(f"slices() needs a jaxsurf.Surface, got {type(surface).__name__}")
    if not surface.is_volume:
        raise ValueError(f"slices() draws a volume (three directions, gammas set) but this "
                         f"surface has shape {surface.shape}; use contour()/heatmap() for a "
                         f"plane, line() for a line")
    values = _metric_values(surface, metric)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError(f"metric {metric!r} has no finite values in this volume")
    if log:
        _check_log(values, metric)
    lv = _heatmap_range(np.ma.masked_invalid(values), vmin, vmax, log)
    norm = _norm(lv, log)
    i, j, k = _slice_index(surface, values, at)
    la, lb, lg = _volume_labels(surface, labels)
    a, b, g = surface.alphas, surface.betas, surface.gammas
    panels = [(a, b, values[:, :, k], la, lb, f"{lg.split(' (')[0]} = {g[k]:.3g}",
               (a[i], b[j])),
              (a, g, values[:, j, :], la, lg, f"{lb.split(' (')[0]} = {b[j]:.3g}",
               (a[i], g[k])),
              (b, g, values[i, :, :], lb, lg, f"{la.split(' (')[0]} = {a[i]:.3g}",
               (b[j], g[k]))]
    fig = _new_figure(figsize, (14.5, 4.4))
    axes = [fig.add_subplot(1, 3, n + 1) for n in range(3)]
    mappable = None
    for ax, (x, y, Z, xl, yl, where, cut) in zip(axes, panels):
        Zm = np.ma.masked_invalid(Z)
        ex, ey = np.meshgrid(_cell_edges(x), _cell_edges(y), indexing="ij")
        mappable = ax.pcolormesh(ex, ey, Zm, cmap=cmap, norm=norm, shading="flat")
        mask = np.ma.getmaskarray(Zm)
        if mask.any():
            ax.pcolormesh(ex, ey, np.ma.masked_where(~mask, np.ones(mask.shape)),
                          cmap=mcolors.ListedColormap(["0.8"]), shading="flat")
        ax.axvline(cut[0], color="white", linestyle="--", linewidth=0.8)
        ax.axhline(cut[1], color="white", linestyle="--", linewidth=0.8)
        ax.set_xlim(*_cell_edges(x)[[0, -1]])
        ax.set_ylim(*_cell_edges(y)[[0, -1]])
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        masked = int(mask.sum())
        ax.set_title(f"slice at {where}" + (f"\n({masked} non-finite: grey)" if masked
                                             else ""), fontsize=10)
    fig.colorbar(mappable, ax=axes, label=metric + (" (log scale)" if log else ""),
                 shrink=0.9)
    fig.suptitle(title if title is not None else str(surface.metadata.get(
        "title", f"{metric}: orthogonal slices of a {values.shape[0]}x{values.shape[1]}x"
                 f"{values.shape[2]} volume")))
    _save(fig, out)
    return fig


def mark_minima(ax: Axes, surface: Surface, metric: str = "loss", *,
                min_persistence: float | None = None, annotate: bool = True) -> list[Any]:
    """Marks the basins of a plane on an existing axes (e.g. from :func:`contour`).

    Persistent minima (see :func:`jaxsurf.topology.summary`) get a large
    circle, labelled with their persistence (the depth of the basin before
    it spills into a deeper one; ``global`` for the deepest), and a cross at
    the saddle where they spill; the other local minima a small dot.

    Args:
        ax: the axes a plane of ``surface`` is drawn on (alpha on x, beta on y).
        surface: the plane.
        metric: the metric whose basins are marked.
        min_persistence: threshold, as in :func:`jaxsurf.topology.summary`.
        annotate: write each persistent minimum's persistence beside it.

    Returns:
        The matplotlib artists added (for a legend).

    Example:
        >>> fig = contour(s); mark_minima(fig.axes[0], s)
    """
    from jaxsurf import topology

    surface = _check_surface(surface, "mark_minima", plane=True)
    stats = topology.summary(surface, metric, min_persistence)
    threshold = stats["min_persistence"]
    basins = [b for b in topology.merge_tree(surface, metric) if b.persistence > 0]
    strong = [b for b in basins if b.persistence > threshold]
    weak = [b for b in basins if b.persistence <= threshold]
    artists = []
    if weak:
        artists.append(ax.scatter([b.at[0] for b in weak], [b.at[1] for b in weak], s=10,
                                  color="black", zorder=6,
                                  label=f"local minimum (persistence <= {threshold:.3g})"))
    if strong:
        artists.append(ax.scatter([b.at[0] for b in strong], [b.at[1] for b in strong], s=70,
                                  facecolor="white", edgecolor="red", linewidth=1.8, zorder=7,
                                  label=f"persistent minimum (> {threshold:.3g})"))
        saddles = [b.saddle_at for b in strong if b.saddle_at is not None]
        if saddles:
            artists.append(ax.scatter([s[0] for s in saddles], [s[1] for s in saddles], s=55,
                                      marker="X", color="red", edgecolor="white",
                                      linewidth=0.6, zorder=7, label="saddle it spills over"))
        if annotate:
            for b in strong:
                text = "global" if not np.isfinite(b.persistence) else f"{b.persistence:.3g}"
                ax.annotate(text, b.at, xytext=(5, 5), textcoords="offset points", fontsize=7,
                            color="black", zorder=8,
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7,
                                  "lw": 0})
    return artists


def basins(surface: Surface, metric: str = "loss", *, kind: str = "filled",
           min_persistence: float | None = None, log: bool = False,
           labels: Sequence[str] | None = None, title: str | None = None,
           cmap: str = DEFAULT_CMAP, figsize: tuple[float, float] | None = None,
           out: PathLike | None = None) -> Figure:
    """A plane drawn with :func:`contour`, :func:`filled` or :func:`heatmap`, its
    minima marked by :func:`mark_minima` and counted in the title.

    Args:
        surface, metric, log, labels, cmap, figsize, out: as in :func:`contour`.
        kind: ``"filled"``, ``"contour"`` or ``"heatmap"``.
        min_persistence: as in :func:`jaxsurf.topology.summary`.
        title: title; default the metric with the basin counts.

    Returns:
        The Figure.

    Example:
        >>> fig = basins(plane, log=True, out="runs/basins.png")
    """
    from jaxsurf import topology

    draw = {"filled": filled, "contour": contour, "heatmap": heatmap}
    if kind not in draw:
        raise ValueError(f"kind must be one of {sorted(draw)}, got {kind!r}")
    stats = topology.summary(_check_surface(surface, "basins", plane=True), metric,
                             min_persistence)
    counts = (f"{stats['num_minima']} local minima, {stats['num_persistent_minima']} "
              f"persistent (> {stats['min_persistence']:.3g})")
    fig = draw[kind](surface, metric, log=log, labels=labels, cmap=cmap, figsize=figsize,
                     title=f"{title or metric}\n{counts}")
    ax = fig.axes[0]
    artists = mark_minima(ax, surface, metric, min_persistence=min_persistence)
    if artists:
        ax.legend(handles=artists, loc="upper left", fontsize=7, framealpha=0.8)
    _save(fig, out)
    return fig


def persistence(surfaces: Surface | Mapping[str, Surface], metric: str = "loss", *,
                min_persistence: float | None = None, max_bars: int = 30,
                title: str | None = None, figsize: tuple[float, float] | None = None,
                out: PathLike | None = None) -> Figure:
    """Persistence diagram and barcode of the basins of one or several surfaces.

    Left: each basin as a point (birth = its minimum's value, death = the
    value at the saddle where it spills into a deeper basin), one colour per
    surface; points far above the diagonal are deep basins, points near it
    shallow dents; basins that never die sit on the dashed top line. Each
    surface's persistence threshold is a dotted line parallel to the
    diagonal. Right: the ``max_bars`` longest bars of each surface, from
    birth to death, grouped by surface.

    Args:
        surfaces: a plane or volume Surface, or name → Surface to compare
            (e.g. ``{"skip": s1, "no skip": s2}``).
        metric: the metric whose basins are drawn.
        min_persistence: as in :func:`jaxsurf.topology.summary`.
        max_bars: most bars per surface in the barcode (the longest).
        title, figsize, out: as in :func:`contour`.

    Returns:
        The Figure.

    Example:
        >>> fig = persistence({"skip": s_skip, "no skip": s_noskip}, out="runs/pd.png")
    """
    from jaxsurf import topology

    if isinstance(surfaces, Surface):
        surfaces = {str(surfaces.metadata.get("title", metric)): surfaces}
    if not surfaces:
        raise ValueError("persistence() needs a surface or a non-empty {name: surface}")
    data = {name: (topology.persistence(s, metric), topology.summary(s, metric,
                                                                      min_persistence))
            for name, s in surfaces.items()}
    finite = np.concatenate([bars[np.isfinite(bars)] for bars, _ in data.values()])
    lo, hi = float(finite.min()), float(finite.max())
    hi = max(hi, max(st["range"][1] for _, st in data.values()))
    pad = 0.05 * (hi - lo if hi > lo else 1.0)
    top = hi + 2 * pad                      # where "never dies" is drawn
    fig = _new_figure(figsize, (11.5, 4.8))
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax.plot([lo - pad, top], [lo - pad, top], color="0.5", linewidth=0.8)
    ax.axhline(top, color="0.3", linestyle="--", linewidth=0.8)
    ax.text(lo - pad, top, " never dies", va="bottom", fontsize=7, color="0.3")
    row = 0
    ticks, tick_labels = [], []
    for n, (name, (bars, stats)) in enumerate(data.items()):
        colour = f"C{n}"
        death = np.where(np.isfinite(bars[:, 1]), bars[:, 1], top)
        # a marker shape per surface, hollow after the first: coinciding points stay visible
        ax.scatter(bars[:, 0], death, s=36 if n else 22, marker="osD^v"[n % 5],
                   facecolors=colour if n == 0 else "none", edgecolors=colour,
                   linewidths=1.2, alpha=0.9, zorder=3 + n,
                   label=f"{name}: {stats['num_minima']} minima, "
                         f"{stats['num_persistent_minima']} persistent")
        thr = stats["min_persistence"]
        ax.plot([lo - pad, top - thr], [lo - pad + thr, top], color=colour, linestyle=":",
                linewidth=1.0)
        length = np.where(np.isfinite(bars[:, 1]), bars[:, 1] - bars[:, 0], np.inf)
        keep = np.argsort(-length, kind="stable")[:max_bars]
        first = row
        for b in keep:
            end = bars[b, 1] if np.isfinite(bars[b, 1]) else top
            bx.plot([bars[b, 0], end], [row, row], color=colour, linewidth=2.2,
                    solid_capstyle="butt", marker="|", markersize=7, markevery=[0])
            if not np.isfinite(bars[b, 1]):
                bx.plot([end], [row], marker=">", color=colour, markersize=5)
            row += 1
        ticks.append((first + row - 1) / 2)
        shown = f" (longest {len(keep)} of {len(bars)})" if len(bars) > len(keep) else ""
        tick_labels.append(f"{name}{shown}")
        row += 1                                # a gap between surfaces
    ax.set_xlim(lo - pad, top + pad)
    ax.set_ylim(lo - pad, top + 3 * pad)
    ax.set_xlabel(f"birth ({metric} at the basin's minimum)")
    ax.set_ylabel(f"death ({metric} at the saddle where it merges)")
    ax.set_title("persistence diagram (dotted: threshold)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    bx.set_yticks(ticks, tick_labels, fontsize=8)
    bx.invert_yaxis()
    bx.set_xlim(lo - pad, top + pad)
    bx.set_xlabel(f"{metric} (bar: birth to death; arrow: never dies)")
    bx.set_title("barcode", fontsize=10)
    bx.grid(True, axis="x", alpha=0.3)
    if title is not None:
        fig.suptitle(title)
    _save(fig, out)
    return fig


def difference(reference: Surface, other: Surface, metric: str = "loss", *,
               names: Sequence[str] = ("reference", "other"),
               labels: Sequence[str] | None = None, title: str | None = None,
               cmap: str = "RdBu_r", aspect: str | float | None = None,
               figsize: tuple[float, float] | None = None,
               out: PathLike | None = None) -> Figure:
    """The gap map ``other - reference`` of two planes on the same grid, on a
    diverging colour scale centred on 0 (e.g. validation minus training loss).

    Args:
        reference: the plane subtracted (e.g. the training-data plane).
        other: the plane on the same ``alphas`` and ``betas`` (e.g. the
            validation-data plane of the same directions).
        metric: the metric compared (in both).
        names: what to call ``(reference, other)`` in the colour bar and the
            default title, e.g. ``("train", "val")``.
        labels, aspect, figsize, out: as in :func:`contour`.
        title: title; default ``"<metric>: other - reference"``; the gap's
            mean and its value at the origin are added below it.
        cmap: a diverging colour map; its middle colour is a gap of 0, and
            the scale is symmetric (``±max |gap|``).

    Returns:
        The Figure.

    Example:
        >>> fig = difference(train_plane, val_plane, names=("train", "val"),
        ...                  out="runs/gap.png")
    """
    reference = _check_surface(reference, "difference", plane=True)
    other = _check_surface(other, "difference", plane=True)
    if not (np.array_equal(reference.alphas, other.alphas)
            and np.array_equal(reference.betas, other.betas)):
        raise ValueError(f"difference() needs two planes on the same grid; got "
                         f"{reference.shape} and {other.shape} (or other coordinates); "
                         f"evaluate both with the same alphas and betas")
    gap = _metric_values(other, metric) - _metric_values(reference, metric)
    diff = Surface(reference.alphas, reference.betas, {metric: gap},
                   {"axis_labels": reference.metadata.get("axis_labels")}
                   if reference.metadata.get("axis_labels") else {})
    _, _, Z, n_masked = _plane_grid(diff, metric, "difference", min_size=1)
    bound = float(np.max(np.abs(Z.compressed())))
    bound = bound if bound > 0 else 1.0
    norm = mcolors.Normalize(-bound, bound)
    aspect = _aspect(diff, aspect)
    fig = _new_figure(figsize, _plane_figsize(diff, aspect), _layout(aspect))
    ax = fig.add_subplot()
    ex, ey = np.meshgrid(_cell_edges(diff.alphas), _cell_edges(diff.betas), indexing="ij")
    mappable = ax.pcolormesh(ex, ey, Z, cmap=cmap, norm=norm, shading="flat")
    if len(names) != 2:
        raise ValueError(f"names must be two strings (reference, other), got {names!r}")
    gap_name = f"{names[1]} - {names[0]}"
    fig.colorbar(mappable, ax=ax, label=f"{metric}: {gap_name}")
    _shade_masked(ax, diff, Z)
    centre = _centre_value(diff, gap)
    text = title if title is not None else f"{metric}: {gap_name}"
    text += f"\nmean gap {float(Z.mean()):.3g}" + (
        f", at origin {centre:.3g}" if centre is not None and np.isfinite(centre) else "")
    _decorate(ax, diff, _axis_labels(diff, labels), aspect,
              _title(diff, text, text, n_masked, Z.size), cells=True)
    _save(fig, out)
    return fig


def _centre_value(surface: Surface, values: np.ndarray) -> float | None:
    i = np.flatnonzero(np.isclose(surface.alphas, 0.0))
    j = np.flatnonzero(np.isclose(surface.betas, 0.0))
    return float(values[i[0], j[0]]) if i.size and j.size else None


# --------------------------------------------------------------------------- mode connectivity
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
        >>> fig = connectivity_lines({"line": line, "curve": curve}, out="/tmp/paths.png")
    """
    if not paths:
        raise ValueError("paths must hold at least one {label: line Surface}")
    surfaces = {str(k): _check_surface(s, "connectivity_lines", plane=False)
                for k, s in paths.items()}
    fig = _new_figure(figsize, (7.0, 4.2))
    ax = fig.add_subplot()
    twin = None
    handles = []
    for k, (label, s) in enumerate(surfaces.items()):
        values = np.ma.masked_invalid(_metric_values(s, loss))
        if log:
            _check_log(values.filled(np.nan), loss)
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
    _save(fig, out)
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
    for label, (x, y) in (points or {}).items():
        ax.plot([x], [y], "o", color="black", markersize=6, zorder=7)
        ax.annotate(str(label), (x, y), textcoords="offset points", xytext=(6, 6),
                    fontsize=9, zorder=8)
    ax.legend(loc="best", fontsize=8)
    _save(fig, out)
    return fig
