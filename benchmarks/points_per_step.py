"""Measures ``points_per_step`` (vmapped points) against points one after another.

For a conv net (ResNet-20) and a dense net (784 → 3×512 → 10) over the same
Fashion-MNIST images, times ``js.evaluate_points`` on 16 points with
``points_per_step`` in {1, 2, 4, 8}; the ratio to ``points_per_step=1`` is
measured in the same run. The library default comes from this table.

    python -m benchmarks.points_per_step [--examples 500]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import jaxsurf as js
from benchmarks.common import MLP, fashion_mnist_subset, save_results, time_call
from jaxsurf import models


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args(argv)
    data, source = fashion_mnist_subset(args.examples)
    rows, results = [], {"data": source, "examples": args.examples, "points": args.points,
                         "runs": []}
    for name, model in (("resnet20", models.resnet20()), ("dense_3x512", MLP())):
        variables = model.init(jax.random.key(0), data["x"][:2])
        fn, params = js.flax.adapt(model, variables)
        d1, d2 = js.random_plane(jax.random.key(1), params)
        rng = np.random.default_rng(0)
        base = None
        for pps in args.steps:
            # marginal cost per point: (T(3P) - T(P)) / 2P cancels the one compile per call
            times = {}
            for count in (args.points, 3 * args.points):
                coeffs = rng.uniform(-1, 1, (count, 2))
                times[count] = time_call(lambda: js.evaluate_points(
                    fn, params, [d1, d2], data, coeffs, batch_size=250, points_per_step=pps,
                    chunk_size=count, progress=False)["loss"], repeats=2, warmup=0)["min_s"]
            per_point = (times[3 * args.points] - times[args.points]) / (2 * args.points)
            base = base or per_point
            results["runs"].append({"model": name, "points_per_step": pps,
                                    "s_per_point": per_point, "relative_to_1": per_point / base,
                                    "call_seconds": times})
            rows.append([name, pps, f"{per_point:.4f}", f"{per_point / base:.2f}"])
            print(rows[-1], flush=True)
    save_results("points_per_step", results, rows,
                 ["model", "points_per_step", "s/point (marginal)", "time vs 1"])


if __name__ == "__main__":
    main()
