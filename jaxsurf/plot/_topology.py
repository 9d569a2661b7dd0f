"""Basins and persistence figures (:func:`mark_minima`, :func:`basins`, :func:`persistence`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from jaxsurf.plot._checks import DEFAULT_CMAP, PathLike, check_surface
from jaxsurf.plot._common import new_figure, save_figure
from jaxsurf.plot._planes import contour, filled, heatmap
from jaxsurf._surface import Surface


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
        >>> fig = contour(s); artists = mark_minima(fig.axes[0], s)
    """
    from jaxsurf import _topology as topology

    surface = check_surface(surface, "mark_minima", plane=True)
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
                ax.annotate(text, (b.at[0], b.at[1]), xytext=(5, 5), textcoords="offset points",
                            fontsize=7, color="black", zorder=8,
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
    from jaxsurf import _topology as topology

    draw = {"filled": filled, "contour": contour, "heatmap": heatmap}
    if kind not in draw:
        raise ValueError(f"kind must be one of {sorted(draw)}, got {kind!r}")
    stats = topology.summary(check_surface(surface, "basins", plane=True), metric,
                             min_persistence)
    n = stats["num_minima"]
    counts = (f"{n} local {'minimum' if n == 1 else 'minima'}, "
              f"{stats['num_persistent_minima']} persistent (> {stats['min_persistence']:.3g})")
    fig = draw[kind](surface, metric, log=log, labels=labels, cmap=cmap, figsize=figsize,
                     title=f"{title or metric}\n{counts}")
    ax = fig.axes[0]
    artists = mark_minima(ax, surface, metric, min_persistence=min_persistence)
    if artists:
        ax.legend(handles=artists, loc="upper left", fontsize=7, framealpha=0.8)
    save_figure(fig, out)
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
    from jaxsurf import _topology as topology

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
    fig = new_figure(figsize, (11.5, 4.8))
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
    save_figure(fig, out)
    return fig
