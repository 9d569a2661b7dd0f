"""What ``subsample=`` costs and buys: seconds per point and error against the
full-data values, measured in one run.

For a conv net (ResNet-20, BatchNorm in eval mode) and the benchmarks' dense
net on the same Fashion-MNIST images, a plane is evaluated (1) exactly on all
``--examples`` images, (2) with ``subsample`` = all of them (the cost of the
per-example values behind the standard errors; the SEM is 0 there), and (3)
with a quarter of them. For (3) it reports the speed-up, the largest
``|subset value - full value| / SEM`` and the share of points whose full-data
value lies within 2 SEM.

    python -m benchmarks.subsample_cost [--examples 2000] [--grid 3]
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import numpy as np

import jaxsurf as js
from benchmarks.common import MLP, SteadyTimer, fashion_mnist_subset, save_results
from jaxsurf import models


def measure(name: str, model: Any, data: dict[str, np.ndarray], args: argparse.Namespace
            ) -> tuple[dict[str, Any], list[list[Any]]]:
    """One model's three evaluations: the result entry and its table rows."""
    variables = model.init(jax.random.key(0), data["x"][:2])
    fn, params = js.flax.adapt(model, variables)
    d1, d2 = js.random_plane(jax.random.key(1), params)
    grid = np.linspace(-0.5, 0.5, args.grid)
    quarter = args.examples // 4
    surfaces = {}

    def run(label: str, **options: Any) -> float:
        """Best steady seconds per point over ``--repeats`` calls (compilation,
        which every call does once, excluded: timed from the first chunk's end)."""
        best = float("inf")
        for _ in range(args.repeats):
            timer = SteadyTimer()
            surfaces[label] = js.evaluate_plane(fn, params, d1, d2, data, grid, grid,
                                                batch_size=args.batch_size,
                                                chunk_size=len(jax.devices()), progress=timer,
                                                **options)
            best = min(best, timer.s_per_point())
        return best

    seconds = {"exact": run("exact"),
               "subsample_all": run("subsample_all", subsample=args.examples),
               "subsample_quarter": run("subsample_quarter", subsample=quarter)}
    exact = surfaces["exact"].metrics["loss"]
    part = surfaces["subsample_quarter"]
    z = np.abs(part.metrics["loss"] - exact) / part.metrics["loss_sem"]
    result = {"model": name, "num_params": models.num_params(params),
              "s_per_point": seconds,
              "overhead_of_sem_on_all_examples": seconds["subsample_all"] / seconds["exact"],
              "speedup_quarter_vs_exact": seconds["exact"] / seconds["subsample_quarter"],
              "max_abs_diff_all_vs_exact": float(np.max(np.abs(
                  surfaces["subsample_all"].metrics["loss"] - exact))),
              "quarter_examples": quarter,
              "quarter_max_error_in_sem": float(z.max()),
              "quarter_share_within_2_sem": float(np.mean(z <= 2)),
              "quarter_mean_relative_sem": float(np.mean(part.metrics["loss_sem"]
                                                         / part.metrics["loss"]))}
    rows = [[name, label, f"{s:.4f}", f"{seconds['exact'] / s:.2f}"]
            for label, s in seconds.items()]
    return result, rows


def main(argv: list[str] | None = None) -> None:
    """Measures both models and saves ``benchmarks/results/subsample_cost.json``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--grid", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    data, source = fashion_mnist_subset(args.examples)
    results, table = [], []
    for name, model in [("resnet20", models.resnet20(num_classes=10)),
                        ("mlp 784-3x512-10", MLP())]:
        result, rows = measure(name, model, data, args)
        results.append(result)
        table += rows
    save_results("subsample_cost", {"data": source, "examples": args.examples,
                                    "grid": [args.grid, args.grid],
                                    "batch_size": args.batch_size, "models": results},
                 table, ["model", "evaluation", "s/point", "speed vs exact"])
    for r in results:
        print(f"{r['model']}: quarter subset within 2 SEM of the full value at "
              f"{r['quarter_share_within_2_sem']:.0%} of points "
              f"(max {r['quarter_max_error_in_sem']:.2f} SEM), "
              f"mean SEM/value {r['quarter_mean_relative_sem']:.3f}")


if __name__ == "__main__":
    main()
