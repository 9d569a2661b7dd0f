"""Contour levels, colour normalisation and their labels."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib import colors as mcolors

from jaxsurf.plot._checks import MAX_LEVELS


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
        are denser near the minimum and evenly spaced rings on a quadratic bowl;
        automatic contour lines (not ``filled``) are rounded to round values on
        the scale of their spacing, and the top one lies near the maximum
        (98 % of the range, in log for ``log``).

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
        if filled:
            return np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * np.linspace(0.0, 1.0, n + 1))
        raw = np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * TOP * np.arange(1, n + 1) / n)
        return _round_levels(raw, lo, hi)
    if filled:
        return lo + (hi - lo) * np.linspace(0.0, 1.0, n + 1) ** 2
    return _round_levels(lo + (hi - lo) * TOP * (np.arange(1, n + 1) / n) ** 2, lo, hi)


#: automatic contour lines reach this fraction of the range (in log for log levels),
#: so the top line sits near the maximum rather than a wide band below it
TOP = 0.98


def _nice_step(x: float) -> float:
    """The largest of 1, 2, 5 x 10**m that is at most ``x``."""
    m = 10.0 ** np.floor(np.log10(x))
    return next((f * m for f in (5.0, 2.0, 1.0) if f * m <= x), m)


def _round_levels(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Each level rounded to a round number on the scale of its gap to the one below
    (0.31 rather than 0.307, 2.2 rather than 2.17), so the labels read as round values;
    still increasing, inside (lo, hi)."""
    out = []
    below = lo
    for value in raw:
        gap = value - below
        below = value
        if not gap > 0:
            continue
        step = _nice_step(gap / 2.0)
        rounded = round(value / step) * step
        if rounded >= hi:  # the top line stays inside the range, near its maximum
            rounded = np.floor(value / step) * step
        elif rounded <= lo:
            rounded = np.ceil(value / step) * step
        out.append(float(np.round(rounded, 12)))
    levels = np.unique(np.asarray(out))
    levels = levels[(levels > lo) & (levels < hi)]
    return levels if len(levels) else raw


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
    if count > MAX_LEVELS:
        raise ValueError(f"vmin={lo:.6g}, vmax={hi:.6g}, vlevel={step:.6g} would draw {count} "
                         f"levels (more than {MAX_LEVELS}); use a larger vlevel")
    out = np.arange(lo, hi, step)
    if log and out[0] <= 0:
        raise ValueError(f"log=True needs positive levels, got vmin={lo:.6g}")
    return out


def color_norm(levels: np.ndarray, log: bool) -> mcolors.Normalize:
    lo, hi = float(levels[0]), float(levels[-1])
    if hi <= lo:  # a single level: give the colour map a non-empty range
        hi = lo * 1.01 + 1e-12 if lo > 0 else lo + 1.0
    return mcolors.LogNorm(lo, hi) if log else mcolors.Normalize(lo, hi)


def check_levels_hit(levels: np.ndarray, Z: np.ma.MaskedArray, metric: str) -> None:
    """Contour lines: at least one level must lie inside the data range."""
    lo, hi = float(Z.min()), float(Z.max())
    if not np.any((levels >= lo) & (levels <= hi)):
        raise ValueError(f"none of the contour levels [{levels[0]:.6g} .. {levels[-1]:.6g}] "
                         f"lies within the range [{lo:.6g}, {hi:.6g}] of metric {metric!r}; "
                         f"choose vmin/vmax/levels inside that range")


def colorbar_extend(levels: np.ndarray, Z: np.ma.MaskedArray) -> str:
    """contourf ``extend`` so that data beyond the first/last boundary is still filled."""
    below, above = float(Z.min()) < levels[0], float(Z.max()) > levels[-1]
    return {(False, False): "neither", (True, False): "min",
            (False, True): "max", (True, True): "both"}[(below, above)]


def level_format(value: float) -> str:
    return f"{value:.3g}"
