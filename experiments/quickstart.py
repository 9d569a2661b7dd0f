"""Quick start: a small CNN on Fashion-MNIST and its filter-normalized surfaces.

Trains :class:`jaxsurf.models.SmallCNN` for a short while on the CPU, then
draws Li et al.'s (2018) filter-normalized 1-D line and 21x21 plane around
the solution, with contour, filled-contour and 3-D figures, a ParaView file
and a text summary in ``--out`` (default ``runs/quickstart``). Finished
training and surfaces in ``--out`` are reused when the command is run again.

    python -m experiments.quickstart --out runs/quickstart
    python -m experiments.quickstart --epochs 1 --grid 11 --train-examples 5000
    python -m experiments.quickstart --monitor --out runs/quickstart   # + surfaces during training

With ``--monitor`` a :class:`jaxsurf.Monitor` records the 2-D plane through the
current weights every ``--monitor-every`` steps of training (fixed directions,
``MONITOR_GRID`` on ``MONITOR_EXAMPLES`` held-out examples) in ``--out/monitor``,
animated as ``monitor.gif``; ``python -m jaxsurf view OUT/monitor`` shows it with a
step slider.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import jaxsurf as js
from jaxsurf import models, train
from experiments.data import fashion_mnist
from experiments.report import save_text, stored
from jaxsurf.interrupt import run_command

# ----------------------------------------------------------------- config
EPOCHS = 2
TRAIN_CONFIG = train.TrainConfig(epochs=EPOCHS, batch_size=128, optimizer="adam",
                                 learning_rate=2e-3, weight_decay=1e-4, schedule="cosine",
                                 loss="cross_entropy", seed=0)
SURFACE_EXAMPLES = 2000   # training examples the surfaces are averaged over
GRID = 21                 # 21 x 21 plane on [-1, 1]^2
LINE_POINTS = 51
SEED = 0
MONITOR_EVERY = 100       # --monitor: a frame every 100 steps (430 steps an epoch)
MONITOR_GRID = 11         # 11 x 11 plane on [-1, 1]^2 per frame
MONITOR_EXAMPLES = 512    # held-out (validation) examples each frame is averaged over


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", default="runs/quickstart", help="output directory")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the Fashion-MNIST *-ubyte.gz files "
                             "(default: /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--train-examples", type=int, default=None,
                        help="use only this many training examples (default: all 55,000)")
    parser.add_argument("--surface-examples", type=int, default=SURFACE_EXAMPLES)
    parser.add_argument("--grid", type=int, default=GRID)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--monitor", action="store_true",
                        help="record the plane through the weights during training "
                             "(js.Monitor, in OUT/monitor; animated as OUT/monitor.gif)")
    parser.add_argument("--monitor-every", type=int, default=MONITOR_EVERY)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"output: {out}", flush=True)
    started = time.perf_counter()
    data = fashion_mnist(args.data_dir, args.train_examples)
    print(f"Fashion-MNIST: {len(data['train']['y'])} train, {len(data['val']['y'])} val, "
          f"{len(data['test']['y'])} test examples")

    model = models.SmallCNN()
    config = train.TrainConfig(**{**TRAIN_CONFIG.__dict__, "epochs": args.epochs,
                                  "seed": args.seed})
    monitor = None
    if args.monitor:  # the plane through the current weights every --monitor-every steps
        held = {k: v[:MONITOR_EXAMPLES] for k, v in data["val"].items()}
        monitor = js.Monitor(js.flax.linen_metrics_fn(model), held, out=out / "monitor",
                             every=args.monitor_every, kind="plane",
                             grid=np.linspace(-1, 1, MONITOR_GRID), key=args.seed,
                             measure=("loss", "accuracy"), batch_size=512)
    result = train.fit(model, data, config, out_dir=out / "train", monitor=monitor)
    if monitor is not None and monitor.steps:
        js.plot.animate(js.Monitor.load(out / "monitor"), out=out / "monitor.gif", fps=3,
                        title="SmallCNN, fixed directions")
        print(f"monitor: {len(monitor.steps)} frames in {out / 'monitor'}, "
              f"animation {out / 'monitor.gif'}")
    js.plot.training_history(train.read_log(out / "train" / "log.jsonl") or result.history,
                       out=out / "training_curves.png", title="SmallCNN on Fashion-MNIST")
    test = js.dataset_mean(js.flax.linen_metrics_fn(model), data["test"], batch_size=1000)(
        result.variables)
    print(f"test accuracy {100 * test['accuracy']:.2f} %, test loss {test['loss']:.4f}")

    fn, params = js.flax.adapt(model, result.variables, loss="cross_entropy")
    subset = {k: v[: args.surface_examples] for k, v in data["train"].items()}
    d1, d2 = js.random_plane(jax.random.key(args.seed), params, "filter", "biasbn")
    meta = {"seed": args.seed, "model": "SmallCNN", "dataset": "fashion_mnist/train",
            "surface_examples": len(subset["y"])}

    # the library's stores keep finished points: a rerun evaluates nothing again
    alphas, grid = np.linspace(-1, 1, LINE_POINTS), np.linspace(-1, 1, args.grid)
    line = stored(out / "line.store", lambda store: js.evaluate_line(
        fn, params, d1, subset, alphas, batch_size=500, metadata=meta, store=store))
    plane = stored(out / "plane.store", lambda store: js.evaluate_plane(
        fn, params, d1, d2, subset, grid, grid, batch_size=500, metadata=meta, store=store))

    figures = {"line": js.plot.line(line, out=out / "line.png", title="1-D filter-normalized"),
               "contour": js.plot.contour(plane, out=out / "contour.png",
                                          title="2-D filter-normalized: loss contours"),
               "filled": js.plot.filled(plane, out=out / "filled.png",
                                        title="2-D filter-normalized: loss"),
               "surface3d": js.plot.surface3d(plane, out=out / "surface3d.png",
                                              title="2-D filter-normalized: loss")}
    vtp = js.export.write_vtp(plane, out / "plane.loss.vtp")  # as `python -m jaxsurf vtp`
    viewer = js.view.write([out / "plane.npz", out / "line.npz"], out / "viewer.html",
                           title="Quick start: SmallCNN on Fashion-MNIST", missing_ok=True)
    summary = {
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "history": result.history, "train_seconds": result.seconds,
        "line_seconds_per_point": line.metadata.get("seconds_per_point"),
        "plane_seconds_per_point": plane.metadata.get("seconds_per_point"),
        "plane_min_loss": float(np.nanmin(plane.metrics["loss"])),
        "plane_loss_at_origin": float(plane.metrics["loss"][args.grid // 2, args.grid // 2]),
        "total_seconds": time.perf_counter() - started,
        "figures": [str(out / f"{name}.png") for name in ("training_curves", *figures)],
        "paraview": str(vtp), "viewer": str(viewer) if viewer else None,
    }
    save_text(out / "summary.json", json.dumps(summary, indent=1))
    text = "\n".join([
        f"SmallCNN ({models.num_params(result.variables['params'])} params) on Fashion-MNIST, "
        f"{len(result.history)} epochs: test accuracy {100 * test['accuracy']:.2f} %",
        line.summary(), plane.summary(),
        f"figures: {', '.join(summary['figures'])}",
        f"ParaView: {summary['paraview']}, interactive page: {summary['viewer']}",
        f"total time {summary['total_seconds']:.0f} s"])
    save_text(out / "summary.txt", text + "\n")
    print(text)
    return summary


if __name__ == "__main__":
    raise SystemExit(run_command(main))
