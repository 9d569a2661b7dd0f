"""2-D figures of a plane: :func:`contour`, :func:`filled`, :func:`heatmap`,
:func:`compare`, :func:`small_multiples` and :func:`difference`."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from jaxsurf.plot._checks import (
    PLANE_KINDS,
    DEFAULT_CMAP,
    Aspect,
    PathLike,
    surface_axis_labels,
    betas_of,
    check_log,
    check_surface,
    metric_values,
    plane_grid,
    plot_title,
)
from jaxsurf.plot._common import (
    plane_aspect,
    bar_label,
    cell_edges,
    colorbar,
    decorate,
    draw_plane,
    heatmap_range,
    figure_layout,
    new_figure,
    plane_figsize,
    plane_figure,
    save_figure,
    shade_masked,
)
from jaxsurf.plot._levels import color_norm, contour_levels
from jaxsurf._surface import Surface


def contour(surface: Surface, metric: str = "loss", *,
            levels: int | Sequence[float] | None = None, vmin: float | None = None,
            vmax: float | None = None, vlevel: float | None = None, log: bool = False,
            label_levels: bool = True, labels: Sequence[str] | None = None,
            title: str | None = None, cmap: str = DEFAULT_CMAP,
            aspect: Aspect | None = None, figsize: tuple[float, float] | None = None,
            out: PathLike | None = None, show_interpolated: bool = False,
            points: Mapping[str, Sequence[float]] | None = None,
            sem: bool = False) -> Figure:
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
        points: ``{label: (alpha, beta)}``: models to mark and name on the plane,
            e.g. on a task plane (:func:`jaxsurf.connect.task_plane`)
            ``{"fine-tune A": (1, 0), "fine-tune B": (0, 1), "TIES": (0.8, 0.7)}``
            (coordinates of a model off the plane: its projection, from
            :func:`jaxsurf.connect.plane_coordinates`). Each must lie in the grid's range.
        sem: add a second panel with the standard error of ``metric`` at each
            point (``<metric>_sem``, from ``subsample=``), on its own colour bar.

    Returns:
        The Figure. Axis labels not given as ``labels`` say when the plane's
        directions are not orthogonal (``metadata['directions_cosine']``, as on
        a task plane): the figure draws them at right angles.

    Example:
        >>> fig = contour(s, vmin=0.1, vmax=10, vlevel=0.5, out="runs/contour.pdf")
        >>> fig = contour(s, points={"A": (0.5, -0.5), "merge": (0.25, 0.25)})
    """
    marks = _check_points(points, surface)
    fig = plane_figure("contour", surface, metric, levels=levels, vmin=vmin, vmax=vmax,
                        vlevel=vlevel, log=log, label_levels=label_levels, labels=labels,
                        title=title, cmap=cmap, aspect=aspect, figsize=figsize,
                        out=None if (show_interpolated or marks) else out, sem=sem)
    if show_interpolated:
        _mark_interpolated(fig.axes[0], surface)
    if marks:
        mark_points(fig.axes[0], marks)
    if show_interpolated or marks:
        save_figure(fig, out)
    return fig


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p", "*")


def _check_points(points: Mapping[str, Sequence[float]] | None, surface: Surface
                  ) -> dict[str, tuple[float, float]]:
    if points is None:
        return {}
    if not isinstance(points, Mapping):
        raise TypeError(f"points must be a dict {{label: (alpha, beta)}}, got "
                        f"{type(points).__name__}")
    surface = check_surface(surface, "contour", plane=True)
    a, b = surface.alphas, betas_of(surface)
    out = {}
    for label, xy in points.items():
        try:
            x, y = (float(v) for v in xy)
        except (TypeError, ValueError):
            raise ValueError(f"points[{label!r}] must be two numbers (alpha, beta), got "
                             f"{xy!r}") from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"points[{label!r}] = {xy!r} is not finite")
        if not (a.min() <= x <= a.max() and b.min() <= y <= b.max()):
            raise ValueError(f"points[{label!r}] = ({x:.4g}, {y:.4g}) lies outside the grid "
                             f"(alphas {a.min():.4g} .. {a.max():.4g}, betas {b.min():.4g} .. "
                             f"{b.max():.4g}); evaluate a larger plane or leave it out")
        out[str(label)] = (x, y)
    return out


def mark_points(ax: Axes, points: Mapping[str, tuple[float, float]]) -> None:
    """Marks and names each ``label: (x, y)`` on ``ax`` (one marker shape each, a legend)."""
    for k, (label, (x, y)) in enumerate(points.items()):
        ax.plot([x], [y], marker=_MARKERS[k % len(_MARKERS)], markersize=8,
                color=f"C{k % 10}", markeredgecolor="black", linestyle="none", zorder=6,
                label=label)
        ax.annotate(label, (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8,
                    zorder=7, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7,
                                    "lw": 0})
    ax.legend(loc="best", fontsize=7, framealpha=0.8)


def _mark_interpolated(ax: Axes, surface: Surface) -> None:
    """Hatches where ``surface.evaluated`` is False and dots the evaluated points."""
    mask = getattr(surface, "evaluated", None)
    if mask is None or mask.all():
        return
    X, Y = np.meshgrid(surface.alphas, betas_of(surface), indexing="ij")  # [i, j] at (a_i, b_j)
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
           cmap: str = DEFAULT_CMAP, aspect: Aspect | None = None,
           figsize: tuple[float, float] | None = None, out: PathLike | None = None,
           sem: bool = False) -> Figure:
    """Filled contours (``contourf``) of a plane with faint level lines and a colour bar.

    Args:
        surface, metric, levels, vmin, vmax, vlevel, log, labels, title, cmap,
        aspect, figsize, out, sem: as in :func:`contour`; here the levels are the
        boundaries of the filled bands and include both ends of the range.
        Values beyond the first/last boundary are drawn with the extended
        colour bar ends.

    Returns:
        The Figure.

    Example:
        >>> fig = filled(s, log=True, out="runs/filled.png")
    """
    return plane_figure("filled", surface, metric, levels=levels, vmin=vmin, vmax=vmax,
                         vlevel=vlevel, log=log, label_levels=False, labels=labels,
                         title=title, cmap=cmap, aspect=aspect, figsize=figsize, out=out,
                         sem=sem)


def heatmap(surface: Surface, metric: str = "loss", *, vmin: float | None = None,
            vmax: float | None = None, log: bool = False, labels: Sequence[str] | None = None,
            title: str | None = None, cmap: str = DEFAULT_CMAP,
            aspect: Aspect | None = None, figsize: tuple[float, float] | None = None,
            out: PathLike | None = None, sem: bool = False) -> Figure:
    """One coloured cell per grid point (``pcolormesh``) with a colour bar.

    Cell ``[i, j]`` is centred on ``(alphas[i], betas[j])`` and reaches half
    way to its neighbours, so uneven grids draw true to scale.

    Args:
        surface, metric, labels, title, cmap, aspect, figsize, out, sem: as in
            :func:`contour`.
        vmin, vmax: colour range (default: the finite data range).
        log: logarithmic colour scale (needs positive values).

    Returns:
        The Figure.

    Example:
        >>> fig = heatmap(s, metric="accuracy", out="runs/accuracy.png")
    """
    return plane_figure("heatmap", surface, metric, levels=None, vmin=vmin, vmax=vmax,
                         vlevel=None, log=log, label_levels=False, labels=labels, title=title,
                         cmap=cmap, aspect=aspect, figsize=figsize, out=out, sem=sem)


def compare(surfaces: Mapping[str, Surface], metric: str = "loss", kind: str = "contour", *,
            levels: int | Sequence[float] | None = None, vmin: float | None = None,
            vmax: float | None = None, vlevel: float | None = None, log: bool = False,
            label_levels: bool = True, labels: Sequence[str] | None = None,
            title: str | None = None, cmap: str = DEFAULT_CMAP,
            aspect: Aspect | None = None, figsize: tuple[float, float] | None = None,
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
    if not surfaces:
        raise ValueError("compare() needs at least one surface, e.g. {'name': surface}")
    return _panels("compare", dict(surfaces), metric, kind, 1, len(surfaces), levels=levels,
                   vmin=vmin, vmax=vmax, vlevel=vlevel, log=log, label_levels=label_levels,
                   labels=labels, title=title, cmap=cmap, aspect=aspect, figsize=figsize,
                   out=out)


def small_multiples(surfaces: Sequence[Surface] | Mapping[str, Surface], metric: str = "loss",
                    kind: str = "contour", *, ncols: int | None = None,
                    levels: int | Sequence[float] | None = None, vmin: float | None = None,
                    vmax: float | None = None, vlevel: float | None = None, log: bool = False,
                    label_levels: bool = False, labels: Sequence[str] | None = None,
                    title: str | None = None, cmap: str = DEFAULT_CMAP,
                    aspect: Aspect | None = None, figsize: tuple[float, float] | None = None,
                    out: PathLike | None = None) -> Figure:
    """A grid of small panels, one per plane, on one shared colour scale.

    For the planes of :func:`jaxsurf.evaluate_planes`: every panel uses the
    same levels (or colour range, for heatmaps) and one colour bar, so the
    panels can be compared by eye and the spread between random planes is
    visible at a glance.

    Args:
        surfaces: a sequence of plane Surfaces (panels titled ``plane p``, from
            ``metadata["plane_index"]`` when present) or a mapping title → Surface.
        metric: the metric drawn in every panel.
        kind: ``"contour"``, ``"filled"`` or ``"heatmap"``.
        ncols: panels per row (default ``ceil(sqrt(n))``, at most 4).
        levels, vmin, vmax, vlevel, log, labels, cmap, aspect, figsize, out: as
            in :func:`contour`; automatic levels span the finite values of all
            panels together.
        label_levels: write the level values on the contour lines (default off:
            panels are small; the colour bar carries the values).
        title: a title over all panels.

    Returns:
        The Figure.

    Example:
        >>> fig = small_multiples([s_skip, s_noskip, s_skip], kind="filled", log=True,
        ...                       out="planes.png")
        >>> len(fig.axes)      # three panels and one colour bar
        4
    """
    if isinstance(surfaces, Mapping):
        named = {str(name): s for name, s in surfaces.items()}
    else:
        if isinstance(surfaces, Surface):
            raise TypeError("small_multiples() takes several surfaces (a list, or a dict "
                            "title -> surface); for one plane use contour()")
        named = {}
        for p, s in enumerate(surfaces):
            index = s.metadata.get("plane_index") if isinstance(s, Surface) else None
            name = f"plane {index if isinstance(index, int) else p}"
            named[name if name not in named else f"{name} ({p})"] = s
    if not named:
        raise ValueError("small_multiples() needs at least one surface")
    n = len(named)
    if ncols is None:
        ncols = min(4, int(np.ceil(np.sqrt(n))))
    elif isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    ncols = min(int(ncols), n)
    nrows = int(np.ceil(n / ncols))
    return _panels("small_multiples", named, metric, kind, nrows, ncols, levels=levels,
                   vmin=vmin, vmax=vmax, vlevel=vlevel, log=log, label_levels=label_levels,
                   labels=labels, title=title, cmap=cmap, aspect=aspect, figsize=figsize,
                   out=out)


def _panels(where: str, surfaces: dict[str, Surface], metric: str, kind: str, nrows: int,
            ncols: int, *, levels: int | Sequence[float] | None, vmin: float | None,
            vmax: float | None, vlevel: float | None, log: bool, label_levels: bool,
            labels: Sequence[str] | None, title: str | None, cmap: str,
            aspect: Aspect | None, figsize: tuple[float, float] | None,
            out: PathLike | None) -> Figure:
    """Panels of planes in ``nrows x ncols`` with one shared set of levels and one colour bar."""
    if kind not in PLANE_KINDS:
        raise ValueError(f"kind must be one of {PLANE_KINDS}, got {kind!r}")
    grids = {name: plane_grid(check_surface(s, where, plane=True), metric, where,
                              min_size=1 if kind == "heatmap" else 2)
             for name, s in surfaces.items()}
    values = np.concatenate([Z.compressed() for _, _, Z, _ in grids.values()])
    if log:
        check_log(values, metric)
    if kind == "heatmap":
        lv = heatmap_range(np.ma.masked_invalid(values), vmin, vmax, log)
    else:
        lv = contour_levels(values, levels=levels, vmin=vmin, vmax=vmax, vlevel=vlevel,
                            log=log, filled=kind == "filled")
    norm = color_norm(lv, log)
    first = next(iter(surfaces.values()))
    width, height = plane_figsize(first, plane_aspect(first, aspect), panels=ncols)
    fig = new_figure(figsize, (width, height * nrows),
                     figure_layout(plane_aspect(first, aspect)))
    axes = [fig.add_subplot(nrows, ncols, k + 1) for k in range(len(surfaces))]
    mappable = None
    for ax, (name, (X, Y, Z, n_masked)) in zip(axes, grids.items()):
        s = surfaces[name]
        mappable = draw_plane(ax, kind, s, Z, X, Y, lv, norm, cmap, label_levels)
        shade_masked(ax, s, Z)
        decorate(ax, s, surface_axis_labels(s, labels), plane_aspect(s, aspect),
                 plot_title(s, str(name), str(name), n_masked, Z.size), cells=kind == "heatmap")
    colorbar(fig, mappable, axes, metric + (" (log scale)" if log else "") if kind == "heatmap"
             else bar_label(metric, log, levels, vlevel), None if kind == "heatmap" else lv)
    if title is not None:
        fig.suptitle(title)
    save_figure(fig, out)
    return fig


def difference(reference: Surface, other: Surface, metric: str = "loss", *,
               names: Sequence[str] = ("reference", "other"),
               labels: Sequence[str] | None = None, title: str | None = None,
               cmap: str = "RdBu_r", aspect: Aspect | None = None,
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
        >>> train_plane = plane            # of fn around params, along d1, d2
        >>> held_out = {k: v[:48] for k, v in data.items()}   # (stands in for val data)
        >>> val_plane = js.evaluate_plane(fn, params, d1, d2, held_out, plane.alphas,
        ...                               plane.betas, progress=False)
        >>> fig = difference(train_plane, val_plane, names=("train", "val"),
        ...                  out="runs/gap.png")
    """
    reference = check_surface(reference, "difference", plane=True)
    other = check_surface(other, "difference", plane=True)
    if not (np.array_equal(reference.alphas, other.alphas)
            and np.array_equal(betas_of(reference), betas_of(other))):
        raise ValueError(f"difference() needs two planes on the same grid; got "
                         f"{reference.shape} and {other.shape} (or other coordinates); "
                         f"evaluate both with the same alphas and betas")
    gap = metric_values(other, metric) - metric_values(reference, metric)
    diff = Surface(reference.alphas, betas_of(reference), {metric: gap},
                   {"axis_labels": reference.metadata.get("axis_labels")}
                   if reference.metadata.get("axis_labels") else {})
    _, _, Z, n_masked = plane_grid(diff, metric, "difference", min_size=1)
    bound = float(np.max(np.abs(Z.compressed())))
    bound = bound if bound > 0 else 1.0
    norm = mcolors.Normalize(-bound, bound)
    aspect = plane_aspect(diff, aspect)
    fig = new_figure(figsize, plane_figsize(diff, aspect), figure_layout(aspect))
    ax = fig.add_subplot()
    ex, ey = np.meshgrid(cell_edges(diff.alphas), cell_edges(betas_of(diff)), indexing="ij")
    mappable = ax.pcolormesh(ex, ey, Z, cmap=cmap, norm=norm, shading="flat")
    if len(names) != 2:
        raise ValueError(f"names must be two strings (reference, other), got {names!r}")
    gap_name = f"{names[1]} - {names[0]}"
    fig.colorbar(mappable, ax=ax, label=f"{metric}: {gap_name}")
    shade_masked(ax, diff, Z)
    centre = _centre_value(diff, gap)
    text = title if title is not None else f"{metric}: {gap_name}"
    text += f"\nmean gap {float(Z.mean()):.3g}" + (
        f", at origin {centre:.3g}" if centre is not None and np.isfinite(centre) else "")
    decorate(ax, diff, surface_axis_labels(diff, labels), aspect,
              plot_title(diff, text, text, n_masked, Z.size), cells=True)
    save_figure(fig, out)
    return fig


def _centre_value(surface: Surface, values: np.ndarray) -> float | None:
    i = np.flatnonzero(np.isclose(surface.alphas, 0.0))
    j = np.flatnonzero(np.isclose(betas_of(surface), 0.0))
    return float(values[i[0], j[0]]) if i.size and j.size else None
