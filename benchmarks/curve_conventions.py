"""fit_curve's default training against Garipov et al.'s (``convention="garipov"``).

Two ResNets (``jaxsurf.models.ResNetCIFAR``, BatchNorm) are trained from
different seeds on ``--examples`` Fashion-MNIST images (random stand-ins when
the files are absent). Between them a quadratic Bézier curve (one bend) is
fitted three ways, each for ``--epochs`` epochs in batches of 128 from the
same key:

* ``default``: today's defaults: the adapter's ``fn`` (BatchNorm in evaluation
  mode on A's statistics at every t), ``optax.adam(1e-3)``, no L2, short last
  batch dropped;
* ``batch`` (``state_policy="batch"``): the same optimizer with BatchNorm on
  batch statistics (what ``experiments/connectivity.py`` does with its own
  training-mode loss);
* ``garipov``: L2 ``0.5 * 1e-4 * ||theta(t)||^2``, SGD momentum 0.9 from
  ``--garipov-lr`` on the reference's schedule, BatchNorm in training mode,
  short last batch kept.

Every curve (and the straight line) is then evaluated exactly on
``--eval-examples`` test images at ``--points`` values of t with BatchNorm
statistics recomputed at every t from training images (the fair measure for
every convention), and the barrier reported. Before any training, the
gradient of the first step's objective with respect to the bend (bend on
the line's midpoint, t = 0.5, the first batch) is compared between the
default and the reference objectives.

    python -m benchmarks.curve_conventions [--examples 4000] [--epochs 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import jaxsurf as js
from benchmarks.common import fashion_mnist_subset, save_results
from jaxsurf import models, train
from jaxsurf.connect import GaripovConvention

TRAINING = train.TrainConfig(batch_size=128, optimizer="nesterov", learning_rate=0.05,
                             momentum=0.9, weight_decay=5e-4, schedule="cosine",
                             loss="cross_entropy", eval_batch_size=1000)


def first_step_gradients(fn, pa, pb, batch, weight_decay: float) -> dict[str, float]:
    """Gradient of each convention's objective w.r.t. the bend at t = 0.5 (bend on the
    line's midpoint): their relative difference and cosine."""
    stateful = fn.jaxsurf_state

    def theta(bend):  # quadratic Bézier at t = 0.5: (a + 2 bend + b) / 4
        return jax.tree_util.tree_map(lambda a, m, b: 0.25 * a + 0.5 * m + 0.25 * b,
                                      pa, bend, pb)

    def default(bend):
        return fn(theta(bend), batch)["loss"]

    def reference(bend):
        p = theta(bend)
        return stateful.train_metrics(p, stateful.state, batch)["loss"] \
            + 0.5 * weight_decay * js.tree.dot(p, p)

    mid = jax.tree_util.tree_map(lambda a, b: 0.5 * (a + b), pa, pb)
    g_default, g_reference = jax.grad(default)(mid), jax.grad(reference)(mid)
    diff = js.tree.norm(js.tree.sub(g_default, g_reference))
    cosine = js.tree.dot(g_default, g_reference) / (
        js.tree.norm(g_default) * js.tree.norm(g_reference))
    return {"relative_difference": float(diff / js.tree.norm(g_reference)),
            "cosine": float(cosine), "norm_default": float(js.tree.norm(g_default)),
            "norm_reference": float(js.tree.norm(g_reference))}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--examples", type=int, default=4000)
    parser.add_argument("--eval-examples", type=int, default=1000)
    parser.add_argument("--net-epochs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6, help="epochs of every curve fit")
    parser.add_argument("--points", type=int, default=11)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--garipov-lr", type=float, default=0.01,
                        help="the reference's --lr (its default 0.01)")
    args = parser.parse_args(argv)
    data, source = fashion_mnist_subset(args.examples)
    test, _ = fashion_mnist_subset(args.eval_examples, split="test")
    model = models.ResNetCIFAR(depth=args.depth, width=args.width, num_classes=10)
    start = time.perf_counter()
    splits = {"train": data, "val": test}
    nets = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (0, 1):
            config = train.TrainConfig(**{**TRAINING.__dict__, "epochs": args.net_epochs,
                                          "seed": seed})
            nets.append(jax.device_get(train.fit(model, splits, config, log=None,
                                                 out_dir=Path(tmp) / f"net{seed}",
                                                 progress=False).variables))
    train_s = time.perf_counter() - start
    fn, pa = js.flax.adapt(model, nets[0], loss="cross_entropy")
    fn_b, pb = js.flax.adapt(model, nets[1], loss="cross_entropy")
    end_losses = {"a": float(fn(pa, test)["loss"]), "b": float(fn_b(pb, test)["loss"])}
    batch = jax.tree_util.tree_map(lambda x: x[:128], data)
    gradients = first_step_gradients(fn, pa, pb, batch, weight_decay=1e-4)
    print(f"first step, t = 0.5: default vs reference objective's gradient differ by "
          f"{100 * gradients['relative_difference']:.0f} % (cosine {gradients['cosine']:.3f})")

    # default: adam(1e-3), the adapter's evaluation mode; batch: state_policy="batch"
    runs = {"default": {}, "batch": {"state_policy": "batch"},
            "garipov": {"convention": GaripovConvention(learning_rate=args.garipov_lr)}}
    ts = np.linspace(0.0, 1.0, args.points)
    recompute_data = {"x": data["x"][:1000], "y": data["y"][:1000]}
    results, table = {}, []
    curves = {"line": js.connect.line(pa, pb)}
    seconds = {}
    for name, kwargs in runs.items():
        t0 = time.perf_counter()
        curves[name] = js.connect.fit_curve(fn, pa, pb, data, kind="bezier", num_bends=1,
                                            epochs=args.epochs, batch_size=128,
                                            key=jax.random.key(2), log=print, **kwargs)
        seconds[name] = time.perf_counter() - t0
    for name, curve in curves.items():
        surface = js.connect.evaluate_curve(fn, curve, test, ts, state_policy="recompute",
                                            recompute_data=recompute_data, progress=False)
        loss = np.asarray(surface.metrics["loss"])
        error = 1.0 - np.asarray(surface.metrics["accuracy"])
        b, b_err = js.connect.barrier(surface), js.connect.barrier(surface, metric="error")
        results[name] = {"loss": loss.tolist(), "error": error.tolist(),
                         "barrier_loss": b.height, "barrier_loss_t": b.t,
                         "barrier_error": b_err.height, "max_loss": float(loss.max()),
                         "fit_seconds": seconds.get(name),
                         "history": curve.metadata.get("history")}
        table.append([name, f"{b.height:.3f}", f"{b_err.height:.3f}", f"{loss.max():.3f}",
                      f"{loss[len(loss) // 2]:.3f}",
                      "-" if name == "line" else f"{seconds[name]:.0f}"])
    out = {"command": "python -m benchmarks.curve_conventions " + " ".join(argv or []),
           "data": source, "model": f"ResNetCIFAR(depth={args.depth}, width={args.width})",
           "args": vars(args), "train_end_points_seconds": train_s,
           "end_point_test_loss": end_losses, "first_step_gradients": gradients,
           "evaluation": "test images, BatchNorm statistics recomputed at every t from 1,000 "
                         "training images", "ts": ts.tolist(), "paths": results}
    save_results("curve_conventions", out, table,
                 ["path", "barrier (loss)", "barrier (error)", "max loss", "loss at t=0.5",
                  "fit s"])
    return out


if __name__ == "__main__":
    main()
