"""Renders docs/figures/plot_<kind>.png from an analytic, non-square surface.

The surface is a tilted anisotropic bowl on a 31x21 grid (alpha in [-1, 1],
beta in [-0.5, 0.5]) whose minimum sits off the origin at (0.25, -0.1), so
a transposed or mirrored plot would be easy to spot: the long axis of the
plot must be alpha (x), and the minimum right of and below the origin star.

Run: ``python docs/make_plot_figures.py`` (a few seconds, no JAX work).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxsurf import plot
from jaxsurf.surface import Surface

FIGURES = Path(__file__).resolve().parent / "figures"
ALPHAS = np.linspace(-1.0, 1.0, 31)
BETAS = np.linspace(-0.5, 0.5, 21)
CENTRE = (0.25, -0.1)
ANGLE = np.deg2rad(30.0)


def bowl(a: np.ndarray, b: np.ndarray, ripple: float = 0.0) -> dict[str, np.ndarray]:
    """Loss and accuracy of a tilted anisotropic bowl (optionally rippled)."""
    da, db = a - CENTRE[0], b - CENTRE[1]
    u = np.cos(ANGLE) * da + np.sin(ANGLE) * db
    v = -np.sin(ANGLE) * da + np.cos(ANGLE) * db
    loss = 0.1 + 1.5 * u**2 + 12.0 * v**2 + ripple * (1 + np.sin(9 * a) * np.cos(11 * b))
    accuracy = 0.1 + 0.85 * np.exp(-(loss - 0.1))
    return {"loss": loss, "accuracy": accuracy}


def plane(ripple: float = 0.0) -> Surface:
    A, B = np.meshgrid(ALPHAS, BETAS, indexing="ij")  # shape (31, 21)
    return Surface(ALPHAS, BETAS, bowl(A, B, ripple),
                   {"kind": "plane", "title": "analytic tilted bowl, 31x21 grid"})


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    s = plane()
    alphas = np.linspace(-1.0, 1.0, 51)
    line = Surface(alphas, None, bowl(alphas, np.zeros_like(alphas)),
                   {"kind": "line", "title": "analytic bowl along beta = 0"})
    plot.line(line, out=FIGURES / "plot_line.png")
    plot.contour(s, out=FIGURES / "plot_contour.png")
    plot.contour(s, log=True, out=FIGURES / "plot_contour_log.png")
    plot.filled(s, out=FIGURES / "plot_filled.png")
    plot.heatmap(s, out=FIGURES / "plot_heatmap.png")
    plot.surface3d(s, out=FIGURES / "plot_surface.png")
    plot.compare({"smooth": s, "rippled": plane(ripple=0.15)}, kind="filled",
                 title="compare(): shared levels and colour scale",
                 out=FIGURES / "plot_compare.png")
    diverged = plane()
    diverged.metrics["loss"][-5:, -4:] = np.nan  # a diverged corner at large alpha, beta
    diverged.metadata["title"] = "masked: 20 diverged points (NaN)"
    plot.contour(diverged, out=FIGURES / "plot_masked.png")
    for path in sorted(FIGURES.glob("plot_*.png")):
        print(path)


if __name__ == "__main__":
    main()
