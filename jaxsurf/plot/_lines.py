"""1-D curves of a line Surface (:func:`line`)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from jaxsurf.plot._checks import (
    PathLike,
    check_log,
    check_surface,
    line_label,
    metric_values,
    plot_title,
)
from jaxsurf.plot._common import new_figure, save_figure
from jaxsurf._surface import SEM_SUFFIX, Surface


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
        >>> fig = line(s, out="line.png")
    """
    surface = check_surface(surface, "line", plane=False)
    names = _line_metrics(surface, metrics)
    right = [m for m in names if "acc" in m.lower()]
    left = [m for m in names if m not in right] or right
    right = [m for m in right if m not in left]
    fig = new_figure(figsize, (6.4, 4.2))
    ax = fig.add_subplot()
    handles, n_masked = _plot_series(ax, surface, left, log, first_colour=0)
    if right:
        twin = ax.twinx()
        more, extra = _plot_series(twin, surface, right, False, first_colour=len(left))
        twin.set_ylabel(_series_label(surface, right))
        handles, n_masked = handles + more, n_masked + extra
    ax.set_xlabel(line_label(surface, xlabel))
    ax.set_ylabel(_series_label(surface, left) + (" (log scale)" if log else ""))
    ax.grid(True, alpha=0.3)
    # Below the axes, never over a curve.
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               fontsize=8, frameon=False)
    size = len(surface.alphas) * len(names)
    ax.set_title(plot_title(surface, _line_title(surface, left + right), title, n_masked, size,
                        "gaps"), fontsize=10)
    save_figure(fig, out)
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
    values = metric_values(surface, name)
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
        metric_values(surface, name)
    return names


def _is_sem_of_another(surface: Surface, name: str) -> bool:
    return name.endswith(SEM_SUFFIX) and name[:-len(SEM_SUFFIX)] in surface.metrics


def _plot_series(ax: Axes, surface: Surface, names: list[str], log: bool,
                 first_colour: int) -> tuple[list[Any], int]:
    handles, n_masked = [], 0
    marker = "o" if len(surface.alphas) <= 30 else None
    for k, name in enumerate(names):
        scale = 100.0 if _percent(surface, name) else 1.0
        values = np.ma.masked_invalid(scale * metric_values(surface, name))
        n_masked += int(np.ma.count_masked(values))
        if log:
            check_log(values.filled(np.nan), name)
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
