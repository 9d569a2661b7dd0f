"""Renders the figures of docs/curvature.md from a small ResNet trained on
Fashion-MNIST (ResNet-8: depth 6n+2 with n = 1, 78 k params, 2 epochs on 20,000
images). Run from the repository root:

    python docs/make_curvature_figures.py [--parts spectrum,convexity,plane]

Writes docs/figures/{spectrum,convexity,hessian_plane}.png and prints the numbers
quoted in docs/curvature.md (also saved to docs/figures/curvature_numbers.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import jaxsurf as js  # noqa: E402
from experiments.data import fashion_mnist  # noqa: E402
from jaxsurf import models, train  # noqa: E402

FIGURES = Path(__file__).parent / "figures"
RUN = Path("runs/resnet8_curvature")
CURVATURE_EXAMPLES = 256   # HVPs are averaged over this many training images
PLANE_EXAMPLES = 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="spectrum,convexity,plane",
                        help="which figures to (re)make; numbers of the others are kept")
    parts = parser.parse_args().parts.split(",")
    data = fashion_mnist(train_limit=20_000)
    model = models.ResNetCIFAR(depth=8, num_classes=10)
    config = train.TrainConfig(epochs=2, batch_size=128, optimizer="adam", learning_rate=2e-3,
                               weight_decay=1e-4, schedule="cosine", seed=0)
    result = train.fit(model, data, config, out_dir=RUN)
    fn, params = js.flax.adapt(model, result.variables)
    small = {k: v[:CURVATURE_EXAMPLES] for k, v in data["train"].items()}
    numbers_path = FIGURES / "curvature_numbers.json"
    numbers = json.loads(numbers_path.read_text()) if numbers_path.exists() else {}
    numbers.update({"model": "ResNet-8", "num_params": models.num_params(params),
                    "val_accuracy": result.history[-1]["val_accuracy"],
                    "curvature_examples": CURVATURE_EXAMPLES})
    key = jax.random.key(0)

    start = time.perf_counter()
    values, vectors = js.hessian.top_eigenpairs(fn, params, small, k=2, key=key,
                                                num_iterations=30, batch_size=128)
    numbers["top_eigenvalues"] = [float(v) for v in values]
    numbers["top_eigenpairs_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    estimate, error = js.hessian.trace(fn, params, small, key=key, num_samples=20,
                                       batch_size=128)
    numbers["trace"] = [float(estimate), float(error)]
    numbers["trace_seconds"] = time.perf_counter() - start

    if "spectrum" in parts:
        start = time.perf_counter()
        grid, density = js.hessian.spectral_density(fn, params, small, key=key, num_probes=2,
                                                    num_iterations=40, batch_size=128)
        numbers["spectral_density_seconds"] = time.perf_counter() - start
        js.plot.spectrum(grid, density, out=FIGURES / "spectrum.png",
                         title=f"ResNet-8, Fashion-MNIST: Hessian spectrum "
                               f"(SLQ, {CURVATURE_EXAMPLES} images)")

    d1, d2 = js.random_plane(jax.random.key(1), params)
    if "convexity" in parts:
        coarse = np.linspace(-1, 1, 7)
        start = time.perf_counter()
        convexity = js.hessian.convexity_map(fn, params, d1, d2, small, coarse, coarse, key=key,
                                             num_iterations=12, batch_size=128)
        numbers["convexity_seconds"] = time.perf_counter() - start
        numbers["convexity_ratio_at_origin"] = float(convexity.metrics["ratio"][3, 3])
        js.plot.convexity(convexity, out=FIGURES / "convexity.png",
                          title="|λmin/λmax| on a filter-normalized plane "
                                "(7×7, 12 Lanczos steps)")

    if "plane" in parts:
        # unit-norm directions on both planes: the same step length, so the panels compare
        # how fast the loss rises along the sharpest directions and along random ones
        h1, h2 = vectors
        r1, r2 = (js.tree.scale(d, 1.0 / float(js.tree.norm(d))) for d in (d1, d2))
        grid = np.linspace(-0.25, 0.25, 15)
        subset = {k: v[:PLANE_EXAMPLES] for k, v in data["train"].items()}
        planes = {name: js.evaluate_plane(fn, params, a, b, subset, grid, grid, batch_size=500,
                                          metadata={"directions_made_by": name})
                  for name, (a, b) in (("top-2 Hessian eigenvectors", (h1, h2)),
                                       ("random, unit norm", (r1, r2)))}
        js.plot.compare(planes, kind="heatmap", log=True, out=FIGURES / "hessian_plane.png",
                        title="ResNet-8, Fashion-MNIST: unit-norm directions, same grid")
        for name, plane in planes.items():
            numbers[f"max_loss_{name}"] = float(np.nanmax(plane.metrics["loss"]))
    numbers_path.write_text(json.dumps(numbers, indent=1))
    print(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
