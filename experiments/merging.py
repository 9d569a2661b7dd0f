"""Fine-tuning and model-merging landscapes on Fashion-MNIST: task-vector
planes, merge operators, linear vs SLERP barriers, weight vs activation matching.

The model is a small CNN (three 3x3 conv-ReLU layers, global average pooling,
a dense ReLU layer and a 10-way head; no BatchNorm): the transformer LM of
the scale issue (pretrained on the Python standard library's source) had not
landed when this was written, so this experiment uses the Fashion-MNIST
stand-in the issue names. The two *tasks* are two class groups: task A is
classes 0-4 (T-shirt, trouser, pullover, dress, coat), task B classes 5-9
(sandal, shirt, sneaker, bag, ankle boot).

1. A *base* is trained briefly on all ten classes; fine-tune A continues it on
   task A's images only, fine-tune B on task B's (``jaxsurf.train``).
2. The *task plane* ``base + la (A - base) + lb (B - base)``
   (``js.connect.task_plane``, Ilharco et al. 2023) is evaluated for each
   task's validation loss and their sum; every merge
   (``js.connect.merge``: linear soup, task arithmetic, TIES, DARE,
   DARE-TIES) is marked on it (its projection: TIES and DARE leave the plane)
   and its (task A, task B) losses are tabulated.
3. Barriers between the fine-tunes along the straight line and along SLERP
   (``js.connect.evaluate_path``, ``js.connect.barrier``).
4. Two networks trained from scratch on all classes (different seeds):
   barriers of the straight line before alignment, after weight matching and
   after activation matching (``js.connect.align``), and with REPAIR
   (``js.connect.repair_path``, Jordan et al. 2023).

    python -m experiments.merging --preset smoke
    python -m experiments.merging --preset quick --out runs/merging_quick

Presets: smoke (CI: 512 images, tiny CNN, seconds; random images when
Fashion-MNIST is missing), quick (10,000 training images, minutes on 2 CPU
cores), full (all 60,000 images, more epochs, finer planes; for a GPU).
Writes ``results.json``, the figures and every Surface to ``--out``; rerunning
reuses finished training runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxsurf as js
from experiments.data import fashion_mnist
from experiments.report import jsonable, save_text
from jaxsurf import models, train

connect = js.connect


# ----------------------------------------------------------------- config
@dataclass(frozen=True)
class Preset:
    widths: tuple[int, ...]   # filters of the three conv layers
    hidden: int               # units of the dense layer
    train_examples: int | None  # training images (None: all 60,000)
    base_epochs: int          # pretraining of the base on all ten classes
    finetune_epochs: int      # each fine-tune, on its task's images
    scratch_epochs: int       # each independently trained net, on all classes
    eval_examples: int        # validation images of each task every value averages
    grid: int                 # points per axis of the task planes
    points: int               # values of t along every path
    synthetic_fallback: bool = False


BASE = Preset(widths=(16, 32, 32), hidden=64, train_examples=10_000, base_epochs=1,
              finetune_epochs=2, scratch_epochs=2, eval_examples=1_000, grid=13, points=11)
PRESETS = {
    "smoke": dataclasses.replace(BASE, widths=(4, 8, 8), hidden=8, train_examples=512,
                                 finetune_epochs=1, scratch_epochs=1, eval_examples=128,
                                 grid=5, points=5, synthetic_fallback=True),
    "quick": BASE,
    "full": dataclasses.replace(BASE, widths=(32, 64, 64), hidden=128, train_examples=None,
                                base_epochs=2, finetune_epochs=5, scratch_epochs=10,
                                eval_examples=5_000, grid=33, points=41),
}
PRETRAIN = train.TrainConfig(batch_size=128, optimizer="adam", learning_rate=1e-3,
                             weight_decay=0.0, schedule="constant", loss="cross_entropy",
                             eval_batch_size=1000)
FINETUNE = dataclasses.replace(PRETRAIN, learning_rate=3e-4, schedule="cosine")
SCRATCH = dataclasses.replace(PRETRAIN, schedule="cosine")
TASKS = {"A": (0, 1, 2, 3, 4), "B": (5, 6, 7, 8, 9)}
# every merge of the two fine-tunes; scale 1 where the paper's default, density as papers
MERGES = {
    "soup (linear)": {"method": "linear"},
    "task arithmetic (scale 0.5)": {"method": "task_arithmetic", "scale": 0.5},
    "task arithmetic (scale 1)": {"method": "task_arithmetic", "scale": 1.0},
    "TIES (density 0.2)": {"method": "ties", "density": 0.2},
    "DARE (density 0.5, scale 0.5)": {"method": "dare", "density": 0.5, "scale": 0.5},
    "DARE-TIES (density 0.5)": {"method": "dare_ties", "density": 0.5},
}
LAYERS = ["conv0", "conv1", "conv2", "dense0", "head"]


class CNN(nn.Module):
    """conv-ReLU x3 (2x2 max pool after the first two), global average pool,
    dense-ReLU, head. Without BatchNorm, and with pooling rather than a flatten
    before the dense layers, so that ``js.connect.conv_spec`` describes its
    permutations."""

    widths: tuple[int, ...] = (16, 32, 32)
    hidden: int = 64
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for i, w in enumerate(self.widths):
            x = nn.relu(nn.Conv(w, (3, 3), name=f"conv{i}")(x))
            if i < len(self.widths) - 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = jnp.mean(x, axis=(1, 2))
        x = nn.relu(nn.Dense(self.hidden, name="dense0")(x))
        return nn.Dense(self.num_classes, name="head")(x)


# ----------------------------------------------------------------- data
def load(data_dir: str | None, preset: Preset) -> tuple[dict, bool]:
    """Standardized Fashion-MNIST; the smoke preset falls back to random images."""
    try:
        return fashion_mnist(data_dir, preset.train_examples), False
    except SystemExit:
        if not preset.synthetic_fallback or data_dir is not None:
            raise
    rng = np.random.default_rng(0)
    fake = lambda n: {"x": rng.normal(size=(n, 28, 28, 1)).astype(np.float32),  # noqa: E731
                      "y": rng.integers(0, 10, n).astype(np.int32)}
    print("Fashion-MNIST not found: smoke run on SYNTHETIC random images")
    return {"train": fake(preset.train_examples or 512), "val": fake(4 * preset.eval_examples),
            "test": fake(256)}, True


def task_split(split: dict, classes: tuple[int, ...], n: int | None = None) -> dict:
    keep = np.isin(split["y"], classes)
    return {"x": split["x"][keep][:n], "y": split["y"][keep][:n]}


# ----------------------------------------------------------------- steps
def fit(model: nn.Module, splits: dict, config: train.TrainConfig, out: Path,
        variables: Any = None) -> tuple[dict, float]:
    t0 = time.perf_counter()
    result = train.fit(model, splits, config, out_dir=out, variables=variables, log=None,
                       progress=False)
    return jax.device_get(result.variables)["params"], time.perf_counter() - t0


def hidden(model: nn.Module, pre: bool) -> Callable[[Any, Any], list]:
    """Every hidden layer's outputs (``pre``: before the ReLU), in conv_spec's group order."""
    def activations(params: Any, batch: Any) -> list:
        _, state = model.apply({"params": params}, batch["x"], capture_intermediates=True,
                               mutable=["intermediates"])
        out = [state["intermediates"][name]["__call__"][0] for name in LAYERS[:-1]]
        return out if pre else [jax.nn.relu(h) for h in out]
    return activations


def leaf_angles(pa: Any, pb: Any) -> dict[str, Any]:
    """Per-leaf angle between two models, the angle SLERP turns through (degrees);
    leaves with |cos| > 0.9995 are interpolated linearly by js.connect.slerp."""
    cos = [float(np.vdot(np.ravel(a), np.ravel(b)) / (np.linalg.norm(a) * np.linalg.norm(b)))
           for a, b in zip(jax.tree.leaves(pa), jax.tree.leaves(pb))]
    degrees = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return {"max_degrees": float(degrees.max()), "median_degrees": float(np.median(degrees)),
            "leaves": len(cos),
            "leaves_linear": int(np.sum(np.abs(cos) > connect_slerp_colinear()))}


def connect_slerp_colinear() -> float:
    return 0.9995  # js.connect.slerp interpolates a leaf linearly above this |cos|


def path_row(surface: js.Surface) -> dict[str, Any]:
    b = connect.barrier(surface)
    mid = int(np.argmin(np.abs(surface.alphas - 0.5)))
    return {"loss_barrier": b.height, "barrier_t": b.t,
            "loss_mid": float(surface.metrics["loss"][mid]),
            "loss_max": float(surface.metrics["loss"].max()),
            "loss_ends": [float(surface.metrics["loss"][0]), float(surface.metrics["loss"][-1])],
            "accuracy_min": float(surface.metrics["accuracy"].min())}


# ----------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/merging_<preset>/)")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    out = Path(args.out or f"runs/merging_{args.preset}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"output: {out}", flush=True)
    start = time.perf_counter()
    data, synthetic = load(args.data_dir, preset)
    model = CNN(widths=preset.widths, hidden=preset.hidden)
    seconds: dict[str, float] = {}

    # 1. base on all classes, then one fine-tune per task
    val = {name: task_split(data["val"], classes, preset.eval_examples)
           for name, classes in TASKS.items()}
    both = {k: np.concatenate([val["A"][k], val["B"][k]]) for k in ("x", "y")}
    full = {"train": data["train"], "val": both}
    base, seconds["train_base"] = fit(model, full, dataclasses.replace(
        PRETRAIN, epochs=preset.base_epochs), out / "base")
    fts = {}
    for name, classes in TASKS.items():
        splits = {"train": task_split(data["train"], classes), "val": val[name]}
        fts[name], seconds[f"finetune_{name}"] = fit(
            model, splits, dataclasses.replace(FINETUNE, epochs=preset.finetune_epochs,
                                               seed=1), out / f"finetune_{name}",
            variables={"params": base})
    fn, _ = js.flax.adapt(model, {"params": base})

    # 2. the task plane of each task's validation loss and their sum, every merge on it
    t0 = time.perf_counter()
    d1, d2 = connect.task_plane(base, fts["A"], fts["B"])
    lambdas = np.linspace(-0.5, 1.5, preset.grid)  # (grid - 1) % 4 == 0: 0 and 1 on the grid
    labels = ["lambda_A (task vector A: fine-tune A - base)",
              "lambda_B (task vector B: fine-tune B - base)"]
    planes = {}
    for name in TASKS:
        planes[name] = js.evaluate_plane(fn, base, d1, d2, val[name], lambdas, lambdas,
                                         batch_size=500, progress=False,
                                         metadata={"task": name, "axis_labels": labels})
        planes[name].save(out / f"task_plane_{name}.npz")
    cosine = planes["A"].metadata["directions_cosine"]
    planes["sum"] = js.Surface(lambdas, lambdas, {
        "loss": planes["A"].metrics["loss"] + planes["B"].metrics["loss"],
        "accuracy": 0.5 * (planes["A"].metrics["accuracy"] + planes["B"].metrics["accuracy"])},
        {"directions_cosine": cosine, "axis_labels": labels,
         "what": "task A loss + task B loss; accuracy: their mean"})
    planes["sum"].save(out / "task_plane_sum.npz")
    seconds["task_planes"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    evaluate = {name: js.dataset_mean(fn, val[name], batch_size=500) for name in TASKS}
    models_on_plane = {"base": base, "fine-tune A": fts["A"], "fine-tune B": fts["B"]}
    for label, options in MERGES.items():
        key = jax.random.key(0) if "dare" in options["method"] else None
        models_on_plane[label] = connect.merge(base, [fts["A"], fts["B"]], key=key, **options)
    table = {}
    for label, params in models_on_plane.items():
        a, b, off = connect.plane_coordinates(params, base, d1, d2)
        va, vb = evaluate["A"](params), evaluate["B"](params)
        table[label] = {"loss_A": va["loss"], "loss_B": vb["loss"],
                        "loss_sum": va["loss"] + vb["loss"], "accuracy_A": va["accuracy"],
                        "accuracy_B": vb["accuracy"], "lambda_A": a, "lambda_B": b,
                        "off_plane_distance": off}
    best = int(np.argmin(planes["sum"].metrics["loss"]))
    i, j = np.unravel_index(best, planes["sum"].metrics["loss"].shape)
    plane_best = {"lambda_A": float(lambdas[i]), "lambda_B": float(lambdas[j]),
                  "loss_sum": float(planes["sum"].metrics["loss"][i, j])}
    seconds["merges"] = time.perf_counter() - t0

    figures = {}
    marks = {label: (row["lambda_A"], row["lambda_B"]) for label, row in table.items()
             if lambdas[0] <= row["lambda_A"] <= lambdas[-1]
             and lambdas[0] <= row["lambda_B"] <= lambdas[-1] and label != "base"}
    for name, title in (("A", "task A (classes 0-4) validation loss"),
                        ("B", "task B (classes 5-9) validation loss"),
                        ("sum", "task A + task B validation loss")):
        file = f"task_plane_{name}.png"
        js.plot.contour(planes[name], log=True, points=marks, title=f"{title} on the task plane"
                        + (" (SYNTHETIC data)" if synthetic else ""), figsize=(7.5, 6.5),
                        out=out / file)
        figures[f"task_plane_{name}"] = file

    # 3. between the fine-tunes: straight line vs SLERP, on both tasks' validation images
    t0 = time.perf_counter()
    ts = np.linspace(0.0, 1.0, preset.points)
    a_, b_ = fts["A"], fts["B"]
    ft_paths = {
        "line": connect.evaluate_path(fn, lambda t: js.tree.axpy(t, js.tree.sub(b_, a_), a_),
                                      both, ts, batch_size=500, progress=False,
                                      path_fingerprint="line fine-tune A -> B"),
        "SLERP": connect.evaluate_path(fn, lambda t: connect.slerp(a_, b_, t), both, ts,
                                       batch_size=500, progress=False,
                                       path_fingerprint="slerp fine-tune A -> B")}
    finetune_barriers = {label: path_row(s) for label, s in ft_paths.items()}
    finetune_angles = leaf_angles(a_, b_)
    for label, s in ft_paths.items():
        s.save(out / f"finetunes_{label.lower()}.npz")
    js.plot.connectivity_lines(ft_paths, title="between the fine-tunes: loss (solid), "
                               "accuracy (dashed) on both tasks", out=out / "finetune_paths.png")
    figures["finetune_paths"] = "finetune_paths.png"
    seconds["finetune_paths"] = time.perf_counter() - t0

    # 4. two nets from scratch: line before and after weight / activation matching, REPAIR
    nets = []
    for seed in (1, 2):
        params, seconds[f"train_scratch_{seed}"] = fit(
            model, full, dataclasses.replace(SCRATCH, epochs=preset.scratch_epochs, seed=seed),
            out / f"scratch_{seed}")
        nets.append(params)
    pa, pb = nets
    spec = connect.conv_spec(pa, layers=LAYERS)
    t0 = time.perf_counter()
    by_weight = connect.align(pa, pb, spec)
    seconds["weight_matching"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    match_data = {"x": data["train"]["x"][:preset.eval_examples]}
    by_activation = connect.align(pa, pb, spec, method="activation", data=match_data,
                                  activations=hidden(model, pre=False), batch_size=500)
    seconds["activation_matching"] = time.perf_counter() - t0
    line = lambda p, q: (lambda t: js.tree.axpy(t, js.tree.sub(q, p), p))  # noqa: E731
    scratch_paths = {"line (not aligned)": line(pa, pb),
                     "line, weight matching": line(pa, by_weight),
                     "line, activation matching": line(pa, by_activation),
                     "SLERP, activation matching": lambda t: connect.slerp(pa, by_activation,
                                                                          t),
                     "activation matching + REPAIR": connect.repair_path(
                         pa, by_activation, spec, match_data, hidden(model, pre=True),
                         batch_size=500)}
    t0 = time.perf_counter()
    scratch_surfaces = {label: connect.evaluate_path(fn, path, both, ts, batch_size=500,
                                                     progress=False)
                        for label, path in scratch_paths.items()}
    seconds["scratch_paths"] = time.perf_counter() - t0
    scratch_barriers = {label: path_row(s) for label, s in scratch_surfaces.items()}
    for k, s in enumerate(scratch_surfaces.values()):
        s.save(out / f"scratch_path_{k}.npz")
    scratch_angles = leaf_angles(pa, by_activation)
    distance = {label: float(js.tree.norm(js.tree.sub(p, pa))) for label, p in
                (("not aligned", pb), ("weight matching", by_weight),
                 ("activation matching", by_activation))}
    js.plot.connectivity_lines(scratch_surfaces, title="two nets trained from scratch: loss "
                               "(solid), accuracy (dashed)", out=out / "scratch_paths.png")
    figures["scratch_paths"] = "scratch_paths.png"

    results = {"experiment": "merging", "preset": args.preset,
               "config": dataclasses.asdict(preset),
               "training": {"pretrain": dataclasses.asdict(PRETRAIN),
                            "finetune": dataclasses.asdict(FINETUNE),
                            "scratch": dataclasses.asdict(SCRATCH)},
               "model": f"CNN {preset.widths} + dense {preset.hidden}, no BatchNorm "
                        f"({models.num_params({'params': base})} parameters)",
               "dataset": "SYNTHETIC random images" if synthetic else "Fashion-MNIST",
               "stand_in": "Fashion-MNIST CNN (the transformer LM of the scale issue had not "
                           "landed)",
               "synthetic": synthetic, "tasks": {k: list(v) for k, v in TASKS.items()},
               "backend": jax.default_backend(), "task_vector_cosine": cosine,
               "task_vector_norms": {"A": float(js.tree.norm(d1)), "B": float(js.tree.norm(d2))},
               "merges": table, "plane_minimum_of_sum": plane_best,
               "finetune_barriers": finetune_barriers, "finetune_leaf_angles": finetune_angles,
               "scratch_barriers": scratch_barriers, "scratch_leaf_angles": scratch_angles,
               "scratch_distance": distance, "figures": figures, "seconds": seconds}
    results["seconds"]["total"] = time.perf_counter() - start
    save_text(out / "results.json", json.dumps(jsonable(results), indent=1))
    print(f"\ntask vectors: cos = {cosine:.3f}; merges (validation loss A, B; accuracy A, B; "
          f"plane coordinates, distance off the plane):")
    for label, row in table.items():
        print(f"  {label:32s} {row['loss_A']:7.4f} {row['loss_B']:7.4f}  "
              f"{100 * row['accuracy_A']:5.1f}% {100 * row['accuracy_B']:5.1f}%  "
              f"({row['lambda_A']:5.2f}, {row['lambda_B']:5.2f}) {row['off_plane_distance']:.3f}")
    print("barriers (loss on both tasks' validation images), loss at t = 0.5:")
    for label, row in {**finetune_barriers, **scratch_barriers}.items():
        print(f"  {label:32s} {row['loss_barrier']:8.4f} at t = {row['barrier_t']:.2f}   "
              f"{row['loss_mid']:.4f}")
    print(f"leaf angles between the fine-tunes: max {finetune_angles['max_degrees']:.2f} deg "
          f"({finetune_angles['leaves_linear']} of {finetune_angles['leaves']} leaves "
          f"interpolated linearly by slerp); between the scratch nets: max "
          f"{scratch_angles['max_degrees']:.1f} deg")
    print(f"wrote {out / 'results.json'} ({results['seconds']['total']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
