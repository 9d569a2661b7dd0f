"""Seconds per grid point of ``js.evaluate_plane`` against a plain loop.

The plain loop is what a straightforward port of the reference tool does in
JAX: for each grid point, build the perturbed params on the host side and run
a jitted per-batch function in a Python loop over batches, summing weighted
batch means. Both evaluate the same ResNet-20-sized conv net (ResNet-20, 0.27 M
params, BatchNorm in eval mode) over the same 1,000 Fashion-MNIST images.

    python -m benchmarks.plane_vs_loop [--grid 5] [--examples 1000]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import jaxsurf as js
from benchmarks.common import fashion_mnist_subset, save_results, time_call
from jaxsurf import models


def plain_loop(fn, params, d1, d2, data, coords, batch_size):
    """Per point: combine params, then a Python loop over batches of a jitted fn."""
    step = jax.jit(fn)
    n = len(data["y"])
    values = []
    for a, b in coords:
        p = jax.tree.map(lambda x, u, v: x + a * u + b * v, params, d1, d2)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = {k: v[start:start + batch_size] for k, v in data.items()}
            total += float(step(p, batch)["loss"]) * len(batch["y"])
        values.append(total / n)
    return np.array(values)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", type=int, default=7)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=250)
    args = parser.parse_args(argv)

    data, source = fashion_mnist_subset(args.examples)
    model = models.resnet20(num_classes=10)
    variables = model.init(jax.random.key(0), data["x"][:2])
    fn, params = js.flax.adapt(model, variables)
    d1, d2 = js.random_plane(jax.random.key(1), params)
    grid = np.linspace(-1, 1, args.grid)
    coords = [(a, b) for a in grid for b in grid]
    points = len(coords)

    surface = None

    def run_ours():
        nonlocal surface
        surface = js.evaluate_plane(fn, params, d1, d2, data, grid, grid,
                                    batch_size=args.batch_size, progress=False)
        return surface.metrics["loss"]

    # every evaluate_plane call compiles once (new surface): included in its time
    ours = time_call(run_ours, repeats=2, warmup=0)
    loop_values = None

    def run_loop():
        nonlocal loop_values
        loop_values = plain_loop(fn, params, d1, d2, data, coords, args.batch_size)
        return loop_values

    loop = time_call(run_loop, repeats=2, warmup=1)
    max_diff = float(np.max(np.abs(loop_values - surface.metrics["loss"].ravel())))
    per_point_ours = ours["min_s"] / points
    per_point_loop = loop["min_s"] / points
    results = {"model": "resnet20", "num_params": models.num_params(params),
               "data": source, "examples": args.examples, "batch_size": args.batch_size,
               "grid": [args.grid, args.grid], "evaluate_plane_s_per_point": per_point_ours,
               "evaluate_plane_call_s_including_compile": ours["min_s"],
               "plain_loop_s_per_point": per_point_loop,
               "speedup": per_point_loop / per_point_ours, "max_abs_difference": max_diff}
    save_results("plane_vs_loop", results,
                 [["js.evaluate_plane", f"{per_point_ours:.4f}", "1.00"],
                  ["plain Python loop", f"{per_point_loop:.4f}",
                   f"{per_point_loop / per_point_ours:.2f}"]],
                 ["method", "s/point", "time vs evaluate_plane"])
    print(f"values agree to {max_diff:.2e}")


if __name__ == "__main__":
    main()
