"""3-D surface of a plane (:func:`surface3d`)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib import colormaps as mpl_colormaps
from matplotlib import colors as mcolors
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, FuncFormatter, MaxNLocator

from jaxsurf.plot._checks import (
    DEFAULT_CMAP,
    UNDERSIDE_SHADE,
    PathLike,
    surface_axis_labels,
    betas_of,
    check_log,
    check_surface,
    plane_grid,
    plot_title,
)
from jaxsurf.plot._common import axis_limits, new_figure, save_figure
from jaxsurf._surface import Surface


def surface3d(surface: Surface, metric: str = "loss", *, zmax: float | None = None,
              log: bool = False, labels: Sequence[str] | None = None,
              title: str | None = None, cmap: str = DEFAULT_CMAP, elev: float = 50.0,
              azim: float = -60.0, figsize: tuple[float, float] | None = None,
              out: PathLike | None = None) -> Figure:
    """3-D surface of a plane (alpha, beta, metric) with a colour bar.

    Quads that touch a non-finite point are left out, so a diverged corner
    shows as a hole rather than a spike. Where a wall is steeper than the line
    of sight, its underside shows; those quads keep the colour of their value,
    darkened (a legend says so), so they read as the back of the same surface
    rather than as missing data.

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
    surface = check_surface(surface, "surface3d", plane=True)
    X, Y, Z, n_masked = plane_grid(surface, metric, "surface3d")
    height = _heights(Z.filled(np.nan), metric, zmax, log)
    verts, face_z = surface_quads(X, Y, height)
    if len(verts) == 0:
        raise ValueError(f"surface3d(): every grid cell touches a non-finite value of "
                         f"{metric!r}; nothing to draw (use heatmap() to see where)")
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # registers the 3d projection

    fig = new_figure(figsize, (7.0, 5.4))
    ax = fig.add_subplot(projection="3d")
    finite = height[np.isfinite(height)]
    lo, hi = float(finite.min()), float(finite.max())
    norm = mcolors.Normalize(lo, hi if hi > lo else lo + 1.0)
    colours = mpl_colormaps[cmap](norm(face_z))
    box = _box_aspect(surface)
    spans = (np.ptp(surface.alphas) or 1.0, np.ptp(betas_of(surface)) or 1.0, (hi - lo) or 1.0)
    away = _facing_away(verts, box, spans, elev, azim)
    # the underside keeps its value's colour, darkened: the back of the same surface,
    # not a hole (holes are left out) and not grey "missing data"
    colours[away, :3] = colours[away, :3] * UNDERSIDE_SHADE
    faces = Poly3DCollection(verts, facecolors=colours, edgecolor=(0, 0, 0, 0.25),
                             linewidth=0.2)
    ax.add_collection3d(faces)
    scale = ScalarMappable(norm=norm, cmap=cmap)  # the colour bar's scale
    zlabel = f"log10({metric})" if log else metric
    ax.set(xlim=axis_limits(surface.alphas), ylim=axis_limits(betas_of(surface)),
           zlim=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
    xl, yl = surface_axis_labels(surface, labels)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):  # few, short ticks: "-1", "0.5", not "-1.00"
        axis.set_major_locator(MaxNLocator(nbins=4))
        axis.set_major_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel(xl, labelpad=8)
    ax.set_ylabel(yl, labelpad=8)
    ax.set_zlabel(zlabel, labelpad=10)
    ax.view_init(elev=elev, azim=azim)
    # mplot3d is unannotated and pyright infers int from zoom's default 1; it takes a float
    ax.set_box_aspect(_box_aspect(surface), zoom=0.92)  # pyright: ignore[reportArgumentType]
    fig.colorbar(scale, ax=ax, shrink=0.6, pad=0.1,
                 label=zlabel + (f" (clipped at {zmax:g})" if zmax is not None else ""))
    ax.set_title(plot_title(surface, metric, title, n_masked, Z.size, "holes"), fontsize=10)
    if away.any():
        from matplotlib.patches import Patch

        shade = mpl_colormaps[cmap](0.5)
        ax.legend(handles=[Patch(facecolor=tuple(np.array(shade[:3]) * UNDERSIDE_SHADE),
                                 edgecolor="none", label="darker: underside seen")],
                  loc="upper left", fontsize=7, framealpha=0.8)
    _drop_colliding_ticks(fig, ax)
    save_figure(fig, out)
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


def drawn_tick_labels(axis: Any) -> list[tuple[float, Any]]:
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
            for _, text in drawn_tick_labels(ax.xaxis)]
    for axis in (ax.yaxis, ax.zaxis):
        drop = []
        for value, text in drawn_tick_labels(axis):
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
    wa, wb = float(np.ptp(surface.alphas)), float(np.ptp(betas_of(surface)))
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
        check_log(out, metric)
        out = np.log10(out)
    return out


def surface_quads(X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corner coordinates ``(k, 4, 3)`` and mean height of each cell whose corners are finite."""
    corners = [(slice(None, -1), slice(None, -1)), (slice(1, None), slice(None, -1)),
               (slice(1, None), slice(1, None)), (slice(None, -1), slice(1, None))]
    verts = np.stack([np.stack([A[c] for c in corners], axis=-1) for A in (X, Y, Z)], axis=-1)
    ok = np.all(np.isfinite(verts[..., 2]), axis=-1)
    return verts[ok], verts[ok][..., 2].mean(axis=-1)
