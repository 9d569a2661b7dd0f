"""Matplotlib figures of a :class:`~jaxsurf.Surface`.

Every function builds a fresh :class:`matplotlib.figure.Figure` (never
pyplot, so no GUI and no global figure state), returns it, and saves it when
``out`` is given (``.png``, ``.pdf`` or ``.svg``, chosen by the suffix).

Orientation: ``surface.metrics[name][i, j]`` is the value at
``(alphas[i], betas[j])``; alpha is drawn on the x axis and beta on the y
axis, on any grid shape. Non-finite values (diverged points) are masked and
counted in the title.

Every figure of jaxsurf lives here: Surface figures, the curvature figures
(:func:`spectrum`, :func:`convexity`), the PCA training path
(:func:`pca_path`) and training curves (:func:`training_history`,
:func:`training_curves`). Files are written atomically. Importing this package
needs matplotlib and numpy only (never jax).

Example:
    >>> import numpy as np, jaxsurf as js
    >>> a, b = np.linspace(-1, 1, 31), np.linspace(-0.5, 0.5, 21)
    >>> A, B = np.meshgrid(a, b, indexing="ij")
    >>> s = js.Surface(a, b, {"loss": A**2 + 4 * B**2 + 0.1})
    >>> fig = js.plot.contour(s, out="contour.png")
"""

# The constants of the former single-module js.plot stay readable as js.plot.<NAME>.
from jaxsurf.plot._animate import animate
from jaxsurf.plot._checks import DEFAULT_CMAP, DEFAULT_LABELS, DPI, UNDERSIDE, PathLike  # noqa: F401
from jaxsurf.plot._connect import connectivity_lines, connectivity_plane
from jaxsurf.plot._curvature import convexity, spectrum
from jaxsurf.plot._levels import contour_levels
from jaxsurf.plot._lines import line
from jaxsurf.plot._paths import pca_path
from jaxsurf.plot._planes import compare, contour, difference, filled, heatmap, small_multiples
from jaxsurf.plot._surface3d import surface3d
from jaxsurf.plot._topology import basins, mark_minima, persistence
from jaxsurf.plot._training import training_curves, training_history
from jaxsurf.plot._volumes import DEFAULT_VOLUME_LABELS, slices  # noqa: F401

__all__ = ["line", "contour", "filled", "heatmap", "surface3d", "compare", "contour_levels",
           "slices", "persistence", "basins", "mark_minima", "difference",
           "connectivity_lines", "connectivity_plane", "spectrum", "convexity", "pca_path",
           "training_history", "training_curves", "animate", "small_multiples"]
