"""Curvature figures: the Hessian eigenvalue density and the convexity map.

They draw the results of :func:`jaxsurf.hessian.spectral_density` and
:func:`jaxsurf.hessian.convexity_map`; neither needs jax.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jaxsurf.plot._checks import betas_of
from jaxsurf.plot._common import save_figure
from jaxsurf._surface import Surface

__all__ = ["spectrum", "convexity"]


def spectrum(grid: Any, density: Any, out: str | os.PathLike | None = None, *,
            log: bool = True, floor: float = 1e-10, title: str | None = None,
             ) -> Figure:
    """Plots a spectral density from :func:`jaxsurf.hessian.spectral_density`.

    Args:
        grid, density: the two arrays returned by :func:`jaxsurf.hessian.spectral_density`.
        out: optional file to save (suffix chooses the format).
        log: logarithmic density axis (values below ``floor`` are clipped),
            as in Ghorbani et al.'s figures.
        title: optional title.

    Returns:
        A ``matplotlib.figure.Figure``.

    Example:
        >>> fig = js.plot.spectrum(*js.hessian.spectral_density(
        ...     fn, params, data, key=jax.random.key(0)), out="spectrum.png")
    """
    grid, density = np.asarray(grid, np.float64), np.asarray(density, np.float64)
    if grid.shape != density.shape or grid.ndim != 1:
        raise ValueError(f"grid and density must be 1-D arrays of one length, got "
                         f"{grid.shape} and {density.shape}")
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(grid, np.maximum(density, floor) if log else density, lw=1.2)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log scale)" if log else "density")
    ax.set_title(title or "Hessian eigenvalue density (SLQ)", fontsize=10, wrap=True)
    save_figure(fig, out, tight=False, any_format=True)
    return fig


def convexity(surface: Surface, out: str | os.PathLike | None = None, *,
              vmax: float | None = None, cmap: str = "viridis",
              title: str | None = None) -> Figure:
    """Heatmap of ``|lambda_min / lambda_max|`` from :func:`jaxsurf.hessian.convexity_map`.

    Orientation as everywhere in jaxsurf: ``metrics["ratio"][i, j]`` is drawn
    at ``x = alphas[i]``, ``y = betas[j]``. Small values (dark) are locally
    convex regions; bright cells have significant negative curvature.

    Args:
        surface: a convexity map.
        out: optional file to save.
        vmax: top of the colour scale (default: the largest finite ratio).
        cmap: matplotlib colour map name.
        title: optional title.

    Returns:
        A ``matplotlib.figure.Figure``.

    Example:
        >>> g = np.linspace(-1, 1, 3)
        >>> cm = js.hessian.convexity_map(fn, params, d1, d2, data, g, g,
        ...                               key=jax.random.key(0), progress=False)
        >>> fig = js.plot.convexity(cm, out="convexity.png")
    """
    if not isinstance(surface, Surface) or not surface.is_plane or "ratio" not in surface.metrics:
        raise ValueError("convexity needs the plane Surface of js.hessian.convexity_map "
                         "(with a 'ratio' metric)")
    X, Y = np.meshgrid(surface.alphas, betas_of(surface), indexing="ij")
    Z = np.ma.masked_invalid(surface.metrics["ratio"])
    fig = Figure(figsize=(5.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(X, Y, Z, shading="nearest", cmap=cmap, vmin=0.0,
                         vmax=vmax if vmax is not None else (float(Z.max()) if Z.count() else 1))
    fig.colorbar(mesh, ax=ax, label="|lambda_min / lambda_max|")
    ax.set_xlabel("alpha (direction 1)")
    ax.set_ylabel("beta (direction 2)")
    iterations = surface.metadata.get("num_iterations")
    ax.set_title(title or ("convexity map" + (f" ({iterations} Lanczos steps)"
                                              if iterations else "")))
    save_figure(fig, out, tight=False, any_format=True)
    return fig
