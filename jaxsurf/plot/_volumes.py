"""Orthogonal slices through a volume (:func:`slices`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from jaxsurf.plot._checks import DEFAULT_CMAP, PathLike, check_log, metric_values
from jaxsurf.plot._common import cell_edges, heatmap_range, new_figure, save_figure
from jaxsurf.plot._levels import color_norm
from jaxsurf._surface import Surface

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
        i, j, k = np.unravel_index(np.argmin(finite), values.shape)
        return int(i), int(j), int(k)
    elif isinstance(at, str) or len(at) != 3:
        raise ValueError(f"at must be 'origin', 'min' or (alpha, beta, gamma), got {at!r}")
    else:
        point = at
    i, j, k = (int(np.argmin(np.abs(np.asarray(ax, float) - float(p))))
               for ax, p in zip(axes, point))
    return i, j, k


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
    b, g = surface.betas, surface.gammas
    if b is None or g is None:  # not a volume (gammas set, and with them betas)
        raise ValueError(f"slices() draws a volume (three directions, gammas set) but this "
                         f"surface has shape {surface.shape}; use contour()/heatmap() for a "
                         f"plane, line() for a line")
    values = metric_values(surface, metric)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError(f"metric {metric!r} has no finite values in this volume")
    if log:
        check_log(values, metric)
    lv = heatmap_range(np.ma.masked_invalid(values), vmin, vmax, log)
    norm = color_norm(lv, log)
    i, j, k = _slice_index(surface, values, at)
    la, lb, lg = _volume_labels(surface, labels)
    a = surface.alphas
    panels = [(a, b, values[:, :, k], la, lb, f"{lg.split(' (')[0]} = {g[k]:.3g}",
               (a[i], b[j])),
              (a, g, values[:, j, :], la, lg, f"{lb.split(' (')[0]} = {b[j]:.3g}",
               (a[i], g[k])),
              (b, g, values[i, :, :], lb, lg, f"{la.split(' (')[0]} = {a[i]:.3g}",
               (b[j], g[k]))]
    fig = new_figure(figsize, (14.5, 4.4))
    axes = [fig.add_subplot(1, 3, n + 1) for n in range(3)]
    mappables = []
    for ax, (x, y, Z, xl, yl, where, cut) in zip(axes, panels):
        Zm = np.ma.masked_invalid(Z)
        ex, ey = np.meshgrid(cell_edges(x), cell_edges(y), indexing="ij")
        mappables.append(ax.pcolormesh(ex, ey, Zm, cmap=cmap, norm=norm, shading="flat"))
        mask = np.ma.getmaskarray(Zm)
        if mask.any():
            ax.pcolormesh(ex, ey, np.ma.masked_where(~mask, np.ones(mask.shape)),
                          cmap=mcolors.ListedColormap(["0.8"]), shading="flat")
        ax.axvline(cut[0], color="white", linestyle="--", linewidth=0.8)
        ax.axhline(cut[1], color="white", linestyle="--", linewidth=0.8)
        ax.set_xlim(*cell_edges(x)[[0, -1]])
        ax.set_ylim(*cell_edges(y)[[0, -1]])
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        masked = int(mask.sum())
        ax.set_title(f"slice at {where}" + (f"\n({masked} non-finite: grey)" if masked
                                             else ""), fontsize=10)
    fig.colorbar(mappables[-1], ax=axes, label=metric + (" (log scale)" if log else ""),
                 shrink=0.9)
    fig.suptitle(title if title is not None else str(surface.metadata.get(
        "title", f"{metric}: orthogonal slices of a {values.shape[0]}x{values.shape[1]}x"
                 f"{values.shape[2]} volume")))
    save_figure(fig, out)
    return fig
