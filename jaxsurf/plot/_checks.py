"""Input checks shared by the figures: Surface shape, metric values, labels, titles."""

from __future__ import annotations

import os
from typing import Any, Literal, Sequence

import numpy as np

from jaxsurf._surface import Surface

DEFAULT_LABELS = ("alpha (direction 1)", "beta (direction 2)")
DEFAULT_CMAP = "viridis"
DPI = 150
SUFFIXES = (".png", ".pdf", ".svg")
PLANE_KINDS = ("contour", "filled", "heatmap")
MAX_LEVELS = 1000
UNDERSIDE = (0.78, 0.78, 0.78, 1.0)  # (earlier surface3d underside colour; kept for imports)
UNDERSIDE_SHADE = 0.55  # surface3d: quads seen from below keep their colour, this much darker

PathLike = str | os.PathLike
Aspect = Literal["auto", "equal"] | float  # what matplotlib's Axes.set_aspect takes


# --------------------------------------------------------------------------- checks and data
def check_surface(surface: Any, fn: str, *, plane: bool) -> Surface:
    """The surface, or a clear error when it is not the shape ``fn`` draws."""
    if not isinstance(surface, Surface):
        raise TypeError(f"{fn}() needs a jaxsurf.Surface, got {type(surface).__name__}")
    if surface.is_volume:
        raise ValueError(f"js.plot.{fn}() draws a {'plane' if plane else 'line'}, but this "
                         f"surface is a {'x'.join(map(str, surface.shape))} volume; draw it with "
                         f"js.plot.slices(volume), view it with python -m jaxsurf view, or "
                         f"write it for ParaView with js.export.write_vti")
    if plane and not surface.is_plane:
        raise ValueError(f"{fn}() draws a 2-D plane but this surface is a line of "
                         f"{len(surface.alphas)} points (betas is None); use "
                         f"jaxsurf.plot.line() for it, or evaluate a plane")
    if not plane and surface.is_plane:
        raise ValueError(f"{fn}() draws a 1-D line but this surface is a "
                         f"{surface.shape[0]}x{surface.shape[1]} plane; use contour(), "
                         f"filled(), heatmap() or surface3d(), or slice it: "
                         f"Surface(s.alphas, None, {{k: v[:, j] for k, v in s.metrics.items()}})")
    return surface


def betas_of(surface: Surface) -> np.ndarray:
    """``surface.betas``, or a ValueError for a line (its ``betas`` is None)."""
    if surface.betas is None:
        raise ValueError(f"this figure needs a plane, but the surface is a line of "
                         f"{len(surface.alphas)} points (betas is None)")
    return surface.betas


def metric_values(surface: Surface, metric: str) -> np.ndarray:
    """``surface.metrics[metric]`` as float, or a ValueError naming the metrics there are."""
    if metric not in surface.metrics:
        raise ValueError(f"unknown metric {metric!r}; this surface has "
                         f"{surface.metric_names}: pass one of them as metric=")
    return np.asarray(surface.metrics[metric], dtype=float)


def plane_grid(surface: Surface, metric: str, fn: str, min_size: int = 2
                ) -> tuple[np.ndarray, np.ndarray, np.ma.MaskedArray, int]:
    """``X, Y, Z`` of shape ``(len(alphas), len(betas))`` and the number of masked points.

    ``X[i, j] = alphas[i]``, ``Y[i, j] = betas[j]``, ``Z[i, j] = metrics[metric][i, j]``.
    """
    values = metric_values(surface, metric)
    if min(values.shape) < min_size:
        raise ValueError(f"{fn}() needs a grid of at least {min_size}x{min_size} points; "
                         f"this one is {values.shape[0]}x{values.shape[1]} (alphas x betas); "
                         f"evaluate more points or use heatmap()/line()")
    X, Y = np.meshgrid(surface.alphas, betas_of(surface), indexing="ij")
    Z = np.ma.masked_invalid(values)
    n_masked = int(np.ma.count_masked(Z))
    if n_masked == Z.size:
        raise ValueError(f"metric {metric!r} has no finite values on this grid (all "
                         f"{Z.size} are NaN/inf): the evaluation diverged everywhere; "
                         f"use a smaller coordinate range")
    return X, Y, Z, n_masked


# |cos| between a plane's directions above which its labels say the axes are not orthogonal
# (random directions in many dimensions have |cos| ~ 1 / sqrt(n), far below it)
SKEW_COSINE = 0.05


def skew_note(surface: Surface) -> str:
    """``"axes not orthogonal: cos(d1, d2) = 0.42 (65 deg)"`` for a plane whose
    directions are not orthogonal (``metadata['directions_cosine']``, e.g. a
    task plane), else ``""``: the figure draws the axes at right angles."""
    cos = surface.metadata.get("directions_cosine")
    if not isinstance(cos, (int, float)) or not np.isfinite(cos) or abs(cos) <= SKEW_COSINE:
        return ""
    angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return f"axes not orthogonal: cos(d1, d2) = {cos:.2f} ({angle:.0f}°)"


def surface_axis_labels(surface: Surface, labels: Sequence[str] | None) -> tuple[str, str]:
    """Keyword labels, else ``metadata['axis_labels']`` (two strings), else the
    defaults; labels not given as keywords say when the directions are not
    orthogonal (:func:`skew_note`)."""
    if labels is not None:
        if len(labels) != 2:
            raise ValueError(f"labels must be two strings (x label, y label), got {labels!r}")
        return str(labels[0]), str(labels[1])
    meta = surface.metadata.get("axis_labels")
    found = DEFAULT_LABELS
    if isinstance(meta, (list, tuple)) and len(meta) == 2 and all(isinstance(s, str)
                                                                    for s in meta):
        found = (meta[0], meta[1])
    note = skew_note(surface)
    return (f"{found[0]}\n[{note}]", found[1]) if note else found


def line_label(surface: Surface, xlabel: str | None) -> str:
    """x label of a line: keyword, else ``metadata['axis_labels'][0]``, else ``"alpha"``."""
    if xlabel is not None:
        return xlabel
    meta = surface.metadata.get("axis_labels")
    if isinstance(meta, str):
        return meta
    if isinstance(meta, (list, tuple)) and meta and isinstance(meta[0], str):
        return meta[0]
    return "alpha"


def plot_title(surface: Surface, default: str, title: str | None, n_masked: int, size: int,
           shown: str = "grey") -> str:
    """The title, with a second line counting masked (non-finite) points."""
    text = title if title is not None else str(surface.metadata.get("title", default))
    if n_masked:
        text += f"\n({n_masked} of {size} points non-finite: masked, {shown})"
    return text


def check_log(values: np.ndarray, metric: str) -> None:
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() <= 0:
        raise ValueError(f"log=True needs positive values, but metric {metric!r} has minimum "
                         f"{finite.min():.6g}; use log=False (or plot a shifted metric)")
