"""Figure building blocks: new figures, atomic saving, aspect, colour bars, plane panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, ScalarFormatter

from jaxsurf._io import atomic as _atomic
from jaxsurf.plot._checks import (
    SUFFIXES,
    DPI,
    Aspect,
    PathLike,
    surface_axis_labels,
    betas_of,
    check_log,
    check_surface,
    plane_grid,
    plot_title,
)
from jaxsurf.plot._levels import (check_levels_hit, color_norm, colorbar_extend, contour_levels,
                                  level_format)
from jaxsurf._surface import SEM_SUFFIX, Surface


# --------------------------------------------------------------------------- drawing helpers
def new_figure(figsize: tuple[float, float] | None, default: tuple[float, float],
                layout: Literal["constrained", "compressed"] = "constrained") -> Figure:
    return Figure(figsize=figsize or default, layout=layout)


def save_figure(fig: Figure, out: PathLike | None, *, tight: bool = True,
          any_format: bool = False) -> None:
    """Saves ``fig`` atomically to ``out`` (format from the suffix), creating parent dirs.

    Args:
        fig: the figure.
        out: target path, or ``None`` to save nothing.
        tight: crop to the drawn content (``bbox_inches="tight"``); the curvature
            and training figures keep their full canvas, as they always did.
        any_format: accept any suffix matplotlib writes (a path without one gets
            ``.png``), not only ``.png``/``.pdf``/``.svg``.
    """
    if out is None:
        return
    path = Path(out)
    fmt = path.suffix.lower()[1:]
    if any_format and not fmt:
        path, fmt = path.with_name(path.name + ".png"), "png"
    elif not any_format and path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"cannot save a figure as {path.name!r}: use one of the suffixes "
                         f"{', '.join(SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    crop: dict[str, Any] = {"bbox_inches": "tight", "pad_inches": 0.1} if tight else {}
    _atomic.write_via_path(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=DPI, **crop))


def plane_aspect(surface: Surface, aspect: Aspect | None) -> Aspect:
    """``"equal"`` when the two coordinate ranges are comparable (within 4x), else ``"auto"``."""
    if aspect is not None:
        return aspect
    width = float(np.ptp(surface.alphas))
    height = float(np.ptp(betas_of(surface)))
    if width > 0 and height > 0 and 0.25 <= width / height <= 4.0:
        return "equal"
    return "auto"


def figure_layout(aspect: Aspect) -> Literal["constrained", "compressed"]:
    """``compressed`` fits colour bars to fixed-aspect axes; ``constrained`` otherwise."""
    return "constrained" if aspect == "auto" else "compressed"


def plane_figsize(surface: Surface, aspect: Aspect, panels: int = 1
                   ) -> tuple[float, float]:
    """A figure size whose axes box matches the data's aspect, so the colour bar fits it."""
    if aspect == "auto":
        return (5.4 * panels + 1.2, 4.4)
    ratio = (1.0 if aspect == "equal" else float(aspect)) * (
        float(np.ptp(betas_of(surface))) / float(np.ptp(surface.alphas)))
    width = 4.6
    height = width * ratio
    if height > 5.0:
        width, height = 5.0 / ratio, 5.0
    height = max(height, 1.6)
    return ((width + 0.9) * panels + 1.1, height + 1.3)


def _mark_origin(ax: Axes, surface: Surface) -> None:
    """A star at (0, 0), the point the directions start from, when it is on the grid."""
    a, b = surface.alphas, betas_of(surface)
    if a.min() <= 0 <= a.max() and b.min() <= 0 <= b.max():
        ax.plot([0.0], [0.0], marker="*", markersize=11, color="white",
                markeredgecolor="black", linestyle="none", zorder=5, label="origin")


def cell_edges(centres: np.ndarray) -> np.ndarray:
    """Cell boundaries around each coordinate: midpoints inside, mirrored at the ends."""
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def draw_plane(ax: Axes, kind: str, surface: Surface, Z: np.ma.MaskedArray, X: np.ndarray,
                Y: np.ndarray, levels: np.ndarray, norm: mcolors.Normalize, cmap: str,
                label_levels: bool) -> Any:
    """Draws one panel of ``kind``; returns the mappable for the colour bar."""
    if kind == "contour":
        mappable = ax.contour(X, Y, Z, levels=levels, cmap=cmap, norm=norm, linewidths=1.0)
        if label_levels:
            ax.set_xlim(*axis_limits(surface.alphas))   # label positions depend on the limits
            ax.set_ylim(*axis_limits(betas_of(surface)))
            _label_lines(ax, mappable)
    elif kind == "filled":
        mappable = ax.contourf(X, Y, Z, levels=levels, cmap=cmap, norm=norm,
                               extend=colorbar_extend(levels, Z))
        ax.contour(X, Y, Z, levels=levels, colors="black", linewidths=0.4, alpha=0.35)
    else:  # heatmap
        edges_a, edges_b = np.meshgrid(cell_edges(surface.alphas), cell_edges(betas_of(surface)),
                                       indexing="ij")
        mappable = ax.pcolormesh(edges_a, edges_b, Z, cmap=cmap, norm=norm, shading="flat")
    return mappable


def colorbar(fig: Figure, mappable: Any, ax: Axes | list[Axes], label: str,
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
        norm = bar.norm
        if isinstance(norm, mcolors.LogNorm):
            if norm.vmin is None or norm.vmax is None:  # fig.colorbar has scaled the norm
                raise RuntimeError("the colour bar's log scale has no limits")
            # 1-2-5 ticks over a few decades; beyond that decades only (matplotlib's
            # LogLocator draws no tick at all when it must skip decades with subs).
            decades = np.log10(norm.vmax / norm.vmin)
            bar.locator = LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 3 else (1.0,),
                                     numticks=9)
            bar.formatter = FuncFormatter(lambda v, _: f"{v:g}")
        else:
            bar.locator, bar.formatter = MaxNLocator(nbins=6), ScalarFormatter()
    bar.minorticks_off()
    return bar


def bar_label(metric: str, log: bool, levels: Any, vlevel: float | None) -> str:
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
    return ax.clabel(cs, inline=True, fontsize=7, fmt=level_format, manual=points)


def shade_masked(ax: Axes, surface: Surface, Z: np.ma.MaskedArray) -> None:
    """Light grey cells where the metric is non-finite, so holes are not read as data."""
    mask = np.ma.getmaskarray(Z)
    if not mask.any():
        return
    edges_a, edges_b = np.meshgrid(cell_edges(surface.alphas), cell_edges(betas_of(surface)),
                                   indexing="ij")
    ax.pcolormesh(edges_a, edges_b, np.ma.masked_where(~mask, np.ones(mask.shape)),
                  cmap=mcolors.ListedColormap(["0.8"]), shading="flat", zorder=0.5)


def decorate(ax: Axes, surface: Surface, labels: tuple[str, str], aspect: Aspect,
              title: str, cells: bool = False) -> None:
    """Origin star, limits (grid range, or cell edges for a heatmap), labels, title."""
    _mark_origin(ax, surface)
    if cells:
        ax.set_xlim(*cell_edges(surface.alphas)[[0, -1]])
        ax.set_ylim(*cell_edges(betas_of(surface))[[0, -1]])
    else:
        ax.set_xlim(*axis_limits(surface.alphas))
        ax.set_ylim(*axis_limits(betas_of(surface)))
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_aspect(aspect)
    ax.set_title(title, fontsize=10)


def axis_limits(coords: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(coords)), float(np.max(coords))
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def plane_figure(kind: str, surface: Surface, metric: str, *, levels: Any, vmin: float | None,
                  vmax: float | None, vlevel: float | None, log: bool, label_levels: bool,
                  labels: Sequence[str] | None, title: str | None, cmap: str,
                  aspect: Aspect | None, figsize: tuple[float, float] | None,
                  out: PathLike | None, sem: bool = False) -> Figure:
    """Shared body of :func:`contour`, :func:`filled` and :func:`heatmap`
    (``sem``: a second panel with the metric's standard error)."""
    surface = check_surface(surface, kind, plane=True)
    if sem and metric + SEM_SUFFIX not in surface.metrics:
        raise ValueError(f"sem=True draws {metric + SEM_SUFFIX!r}, the standard error of "
                         f"{metric!r}, which this surface does not have (it has "
                         f"{surface.metric_names}); evaluate with subsample=... to get it")
    X, Y, Z, n_masked = plane_grid(surface, metric, kind, min_size=1 if kind == "heatmap"
                                    else 2)
    if log:
        check_log(Z.filled(np.nan), metric)
    if kind != "heatmap" and float(Z.min()) == float(Z.max()):
        raise ValueError(f"metric {metric!r} is constant ({float(Z.min()):.6g}) on the grid, so "
                         f"{kind}() has no levels to draw; use heatmap(), or check the evaluation")
    if kind == "heatmap":
        lv = heatmap_range(Z, vmin, vmax, log)
    else:
        lv = contour_levels(Z.compressed(), levels=levels, vmin=vmin, vmax=vmax, vlevel=vlevel,
                            log=log, filled=kind == "filled")
        if kind == "contour":
            check_levels_hit(lv, Z, metric)
        elif lv.size < 2:
            raise ValueError(f"filled() needs at least 2 level boundaries, got {lv.tolist()}; "
                             f"widen vmin/vmax or use a smaller vlevel")
    aspect = plane_aspect(surface, aspect)
    fig = new_figure(figsize, plane_figsize(surface, aspect, panels=2 if sem else 1),
                     figure_layout(aspect))
    ax = fig.add_subplot(1, 2, 1) if sem else fig.add_subplot()
    mappable = draw_plane(ax, kind, surface, Z, X, Y, lv, color_norm(lv, log), cmap, label_levels)
    colorbar(fig, mappable, ax, metric + (" (log scale)" if log else "") if kind == "heatmap"
              else bar_label(metric, log, levels, vlevel), None if kind == "heatmap" else lv)
    shade_masked(ax, surface, Z)
    decorate(ax, surface, surface_axis_labels(surface, labels), aspect,
              plot_title(surface, metric, title, n_masked, Z.size), cells=kind == "heatmap")
    if sem:
        _sem_panel(fig, surface, metric, labels, aspect)
    save_figure(fig, out)
    return fig


def _sem_panel(fig: Figure, surface: Surface, metric: str, labels: Sequence[str] | None,
               aspect: Aspect) -> None:
    """The right panel: the standard error of ``metric`` at every point, as cells."""
    name = metric + SEM_SUFFIX
    X, Y, S, n_masked = plane_grid(surface, name, "sem panel", min_size=1)
    ax = fig.add_subplot(1, 2, 2)
    span = heatmap_range(S, None, None, False)
    mappable = draw_plane(ax, "heatmap", surface, S, X, Y, span, color_norm(span, False),
                          "magma", False)
    of = (surface.metadata.get("subsample") or {}).get("size")
    colorbar(fig, mappable, ax, f"standard error of {metric}"
             + (f" ({of} examples)" if of else ""), None)
    shade_masked(ax, surface, S)
    decorate(ax, surface, surface_axis_labels(surface, labels), aspect,
             plot_title(surface, name, f"{metric}: standard error (±1 SEM)", n_masked, S.size),
             cells=True)


def heatmap_range(Z: np.ma.MaskedArray, vmin: float | None, vmax: float | None,
                   log: bool) -> np.ndarray:
    lo = float(Z.min()) if vmin is None else float(vmin)
    hi = float(Z.max()) if vmax is None else float(vmax)
    if hi < lo:
        raise ValueError(f"vmax ({hi:.6g}) must not be smaller than vmin ({lo:.6g})")
    if log and lo <= 0:
        raise ValueError(f"log=True needs a positive vmin, got {lo:.6g}")
    return np.array([lo, hi])
