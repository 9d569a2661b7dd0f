"""Mode connectivity on Fashion-MNIST: the straight line, a Bézier curve, and the
line after permutation alignment between two independently trained networks.

For a dense net (784 -> 512 -> 512 -> 10, ReLU) and a ResNet-20, trains two
copies from different seeds (``jaxsurf.train``), then measures the loss along

* the straight line between them (Frankle et al. 2020; Entezari et al. 2022);
* a quadratic Bézier curve with its bend trained to keep the loss low
  (Garipov et al. 2018), with ``js.connect.fit_curve``;
* the straight line after permuting B's hidden units to match A's (weight
  matching, Ainsworth et al. 2023), with ``js.connect.align``;

and, for the ResNet, each line with BatchNorm statistics interpolated between
the two ends or recomputed at every point on training images (Jordan et al.
2023's RESET). Writes a barrier table, figures (loss/accuracy along the paths;
the dense net's loss in the plane of the curve) and ``results.json`` to
``--out`` (default ``runs/connectivity_<preset>/``). Rerunning resumes the
training and the curve fits from their checkpoints.

    python -m experiments.connectivity --preset smoke
    python -m experiments.connectivity --preset quick --models dense
    python -m experiments.connectivity --preset quick --models resnet \
        --set resnet_train=5000 resnet_epochs=2 eval_examples=500 stats_examples=500 points=9

Presets: smoke (CI: tiny nets, 1 epoch, ~3 min), quick (dense: 55,000 training
images, 8 epochs, ~2.5 min on 2 shared CPU cores; ResNet-20: 10,000 images, 4
epochs, over an hour on those cores, where one epoch took ~6 min -- shrink it
with --set as above), full (all images, 40 epochs each; for a GPU). ``--set
FIELD=VALUE`` overrides preset fields; results.json records the overrides.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

import jaxsurf as js
from experiments.data import fashion_mnist
from experiments.report import save_text
from jaxsurf import models, train

connect = js.connect


# ----------------------------------------------------------------- config
@dataclass(frozen=True)
class Preset:
    dense_width: int          # units of each of the two hidden layers
    resnet_depth: int         # 20 for ResNet-20
    resnet_width: int         # filters of the first stage (16 in He et al.)
    dense_train: int | None   # training images for the dense nets (None: all 60,000)
    resnet_train: int | None  # training images for the ResNets
    dense_epochs: int         # epochs of each network, and of the curve fit
    resnet_epochs: int
    eval_examples: int        # train and test images every path is evaluated on
    stats_examples: int       # training images the BatchNorm statistics are recomputed on
    points: int               # values of t along every path
    plane_grid: int           # points per axis of the dense net's curve plane
    synthetic_fallback: bool = False


BASE = Preset(dense_width=512, resnet_depth=20, resnet_width=16, dense_train=None,
              resnet_train=10_000, dense_epochs=8, resnet_epochs=4, eval_examples=2_000,
              stats_examples=2_000, points=21, plane_grid=21)
PRESETS = {
    "smoke": dataclasses.replace(BASE, dense_width=32, resnet_depth=8, resnet_width=4,
                                 dense_train=512, resnet_train=512, dense_epochs=1,
                                 resnet_epochs=1, eval_examples=256, stats_examples=256,
                                 points=5, plane_grid=5, synthetic_fallback=True),
    "quick": dataclasses.replace(BASE, eval_examples=1_000, stats_examples=1_000, points=11,
                                 plane_grid=15),
    "full": dataclasses.replace(BASE, resnet_train=None, dense_epochs=40, resnet_epochs=40,
                                eval_examples=10_000, stats_examples=10_000, points=41,
                                plane_grid=31),
}
# Training of each network (and of the curve's bend): Nesterov SGD with cosine decay.
TRAINING = train.TrainConfig(batch_size=128, optimizer="nesterov", learning_rate=0.05,
                             momentum=0.9, weight_decay=5e-4, schedule="cosine",
                             loss="cross_entropy", eval_batch_size=1000)
SEEDS = (0, 1)  # networks A and B: different initialisations and batch orders
MODELS = ("dense", "resnet")


# ----------------------------------------------------------------- data
def load(data_dir: str | None, preset: Preset) -> tuple[dict, bool]:
    """Standardized Fashion-MNIST; the smoke preset falls back to random images."""
    limit = max(n or 60_000 for n in (preset.dense_train, preset.resnet_train))
    try:
        return fashion_mnist(data_dir, None if limit >= 60_000 else limit), False
    except SystemExit:
        if not preset.synthetic_fallback or data_dir is not None:
            raise
    rng = np.random.default_rng(0)
    fake = lambda n: {"x": rng.normal(size=(n, 28, 28, 1)).astype(np.float32),  # noqa: E731
                      "y": rng.integers(0, 10, n).astype(np.int32)}
    print("Fashion-MNIST not found: smoke run on SYNTHETIC random images")
    return {"train": fake(limit), "val": fake(256), "test": fake(preset.eval_examples)}, True


def subset(split: dict, n: int | None, flat: bool) -> dict:
    x, y = split["x"][:n], split["y"][:n]
    return {"x": x.reshape(len(x), -1) if flat else x, "y": y}


# ----------------------------------------------------------------- one architecture
def build(kind: str, preset: Preset) -> Any:
    if kind == "dense":
        return models.DenseRegressor(hidden=2, width=preset.dense_width, outputs=10,
                                     dropout=0.0, activation="relu")
    return models.ResNetCIFAR(depth=preset.resnet_depth, width=preset.resnet_width,
                              num_classes=10)


def train_mode_loss(model: Any, stats: Any) -> Callable:
    """Cross-entropy with BatchNorm on batch statistics (for fitting the curve)."""
    loss = js.losses.get_loss("cross_entropy")

    def fn(params, batch):
        out, _ = model.apply({"params": params, "batch_stats": stats}, batch["x"], train=True,
                             mutable=["batch_stats"])
        return loss(out, batch["y"])

    return fn


def run_model(kind: str, data: dict, preset: Preset, out: Path) -> dict:
    flat = kind == "dense"
    model = build(kind, preset)
    n_train = preset.dense_train if flat else preset.resnet_train
    epochs = preset.dense_epochs if flat else preset.resnet_epochs
    train_split = subset(data["train"], n_train, flat)
    splits = {"train": train_split, "val": subset(data["val"], 2_000, flat)}
    evals = {"train": subset(train_split, preset.eval_examples, False),
             "test": subset(data["test"], preset.eval_examples, flat)}
    config = dataclasses.replace(TRAINING, epochs=epochs)
    seconds: dict[str, float] = {}

    # 1. two networks from different seeds
    nets = []
    for name, seed in zip("ab", SEEDS):
        t0 = time.perf_counter()
        result = train.fit(model, splits, dataclasses.replace(config, seed=seed),
                           out_dir=out / kind / f"net_{name}")
        seconds[f"train_{name}"] = time.perf_counter() - t0
        nets.append(jax.device_get(result.variables))
    va, vb = nets
    has_bn = "batch_stats" in va
    fn_vars = js.flax.linen_metrics_fn(model)  # fn(variables, batch), evaluation mode

    # 2. permutation alignment of B to A
    t0 = time.perf_counter()
    spec = connect.resnet_spec(va) if has_bn else connect.mlp_spec(va)
    vb_aligned = connect.align(va, vb, spec)
    seconds["align"] = time.perf_counter() - t0
    distance = {"a_to_b": float(js.tree.norm(js.tree.sub(vb["params"], va["params"]))),
                "a_to_aligned_b": float(js.tree.norm(js.tree.sub(vb_aligned["params"],
                                                                 va["params"])))}

    # 3. the curve: bend trained with the same optimizer and schedule as the nets
    t0 = time.perf_counter()
    steps = len(train_split["y"]) // config.batch_size
    fit_fn = train_mode_loss(model, va["batch_stats"]) if has_bn else \
        (lambda p, batch: fn_vars({"params": p}, batch))
    curve = connect.fit_curve(fit_fn, va["params"], vb["params"], train_split, kind="bezier",
                              num_bends=1, epochs=epochs, batch_size=config.batch_size,
                              optimizer=train.make_optimizer(config, steps),
                              key=jax.random.key(2), checkpoint_dir=out / kind / "curve")
    curve.save(out / kind / "curve.npz")
    seconds["fit_curve"] = time.perf_counter() - t0

    # 4. every path, evaluated exactly on the train and test subsets
    ts = np.linspace(0.0, 1.0, preset.points)
    recompute = (connect.BatchStatsRecompute(model, train_split["x"][:preset.stats_examples],
                                             batch_size=500) if has_bn else None)
    if has_bn:  # label: (file name, curve over variables or params, BN recompute or None)
        paths = {
            "line (BN stats interpolated)": ("line_interpolated", connect.line(va, vb), None),
            "line (BN stats recomputed)": (
                "line_recomputed", connect.line(va["params"], vb["params"]), recompute),
            "Bézier curve (BN stats recomputed)": ("curve_recomputed", curve, recompute),
            "aligned line (BN stats interpolated)": (
                "aligned_line_interpolated", connect.line(va, vb_aligned), None),
            "aligned line (BN stats recomputed)": (
                "aligned_line_recomputed", connect.line(va["params"], vb_aligned["params"]),
                recompute),
        }
    else:  # no BatchNorm: the curves' points become {"params": ...} for fn_vars
        as_vars = lambda c: connect.Curve(c.kind, [{"params": p} for p in c.points])  # noqa
        paths = {"line": ("line", as_vars(connect.line(va["params"], vb["params"])), None),
                 "Bézier curve": ("curve", as_vars(curve), None),
                 "aligned line": ("aligned_line",
                                  as_vars(connect.line(va["params"], vb_aligned["params"])),
                                  None)}
    surfaces: dict[str, dict[str, js.Surface]] = {"train": {}, "test": {}}
    table: dict[str, dict[str, float]] = {}
    for label, (slug, path, rec) in paths.items():
        t0 = time.perf_counter()
        for split, data_split in evals.items():
            s = connect.evaluate_curve(fn_vars, path, data_split, ts, recompute=rec,
                                       batch_size=500, progress=False,
                                       metadata={"path": label, "split": split})
            surfaces[split][label] = s
            s.save(out / kind / f"{slug}_{split}.npz")
        train_s, test_s = surfaces["train"][label], surfaces["test"][label]
        error = js.Surface(ts, None, {"error": 1 - test_s.metrics["accuracy"]})
        b_train, b_test = connect.barrier(train_s), connect.barrier(test_s)
        table[label] = {
            "train_loss_barrier": b_train.height, "train_loss_barrier_t": b_train.t,
            "test_loss_barrier": b_test.height,
            "test_error_barrier": connect.barrier(error, "error").height,
            "train_loss_max": float(train_s.metrics["loss"].max()),
            "train_loss_ends": [float(train_s.metrics["loss"][0]),
                                float(train_s.metrics["loss"][-1])],
            "test_accuracy_min": float(test_s.metrics["accuracy"].min()),
            "test_accuracy_ends": [float(test_s.metrics["accuracy"][0]),
                                   float(test_s.metrics["accuracy"][-1])],
            "seconds": time.perf_counter() - t0}
        print(f"{kind}: {label}: train-loss barrier {b_train.height:.4f} at t={b_train.t:.2f}, "
              f"test-error barrier {100 * table[label]['test_error_barrier']:.2f} points")

    # 5. figures
    figures = {}
    for split in ("train", "test"):
        name = f"{kind}_paths_{split}.png"
        js.plot.connectivity_lines(surfaces[split], title=f"{kind}: {split} loss (solid) and "
                                   f"accuracy (dashed) along the paths", out=out / name)
        figures[f"paths_{split}"] = name
    if not has_bn:  # the plane through A, B and the bend (BatchNorm nets: see docs)
        t0 = time.perf_counter()
        origin, d1, d2, coords = connect.curve_plane(curve)
        span_x = coords[:, 0].max() - coords[:, 0].min()
        top = coords[:, 1].max()
        alphas = np.linspace(coords[:, 0].min() - 0.2 * span_x,
                             coords[:, 0].max() + 0.2 * span_x, preset.plane_grid)
        betas = np.linspace(-0.3 * top, 1.1 * top, preset.plane_grid)
        fn_params = lambda p, batch: fn_vars({"params": p}, batch)  # noqa: E731
        plane = js.evaluate_plane(fn_params, origin, d1, d2, evals["train"], alphas, betas,
                                  batch_size=500, progress=False,
                                  metadata={"what": "plane of the curve"})
        plane.save(out / kind / "curve_plane_train.npz")
        path = connect.curve_path(curve, coords, np.linspace(0, 1, 101))
        js.plot.connectivity_plane(
            plane, {"Bézier curve": path, "line": coords[[0, -1]]},
            points={"A": coords[0], "B": coords[-1], "bend": coords[1]}, log=True,
            title=f"{kind}: train loss in the plane of A, B and the bend",
            out=out / f"{kind}_curve_plane.png")
        figures["curve_plane"] = f"{kind}_curve_plane.png"
        seconds["plane"] = time.perf_counter() - t0
    return {"model": kind, "num_params": models.num_params(va), "train_examples":
            len(train_split["y"]), "epochs": epochs, "eval_examples": preset.eval_examples,
            "points": preset.points, "barriers": table, "distance": distance,
            "figures": figures, "seconds": seconds,
            "curve_fit_history": curve.metadata.get("history", [])}


# ----------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/connectivity_<preset>/)")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="override preset fields, e.g. --set resnet_train=5000 points=9")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    fields = {f.name: f.type for f in dataclasses.fields(Preset)}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in fields or not value:
            parser.error(f"--set {item!r}: use FIELD=VALUE with FIELD one of {sorted(fields)}")
        preset = dataclasses.replace(preset, **{name: None if value == "None" else
                                                (value == "True" if name == "synthetic_fallback"
                                                 else int(value))})
    out = Path(args.out or f"runs/connectivity_{args.preset}")
    out.mkdir(parents=True, exist_ok=True)
    data, synthetic = load(args.data_dir, preset)
    start = time.perf_counter()
    results = {"experiment": "connectivity", "preset": args.preset, "overrides": args.set,
               "config": dataclasses.asdict(preset), "training": dataclasses.asdict(TRAINING),
               "dataset": "SYNTHETIC random images" if synthetic else "Fashion-MNIST",
               "synthetic": synthetic, "backend": jax.default_backend(), "models": {}}
    for kind in args.models:
        results["models"][kind] = run_model(kind, data, preset, out)
    results["seconds"] = time.perf_counter() - start
    save_text(out / "results.json", json.dumps(results, indent=1, default=float))
    print("\nbarriers (train loss; test error in points):")
    for kind, r in results["models"].items():
        for label, row in r["barriers"].items():
            print(f"  {kind:6s} {label:40s} {row['train_loss_barrier']:8.4f} "
                  f"{100 * row['test_error_barrier']:7.2f}")
    print(f"wrote {out / 'results.json'} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
