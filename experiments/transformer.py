r"""A byte-level transformer language model on the Python standard library: its loss surfaces.

The seed's experiments look at CNNs on images; this one asks what the same
pictures and numbers look like for a decoder-only transformer trained on real
text that is on every machine (the standard library's ``.py`` files, split
into training and validation by file, ``jaxsurf.data.load_python_source``).
It trains the model on a CPU (one orbax checkpoint per epoch, epoch 0 = the
initialisation), then, on training and on validation tokens:

* the filter-normalized random plane and line (token rows of the embeddings
  and output units of every projection are the filters,
  ``models.transformer.filter_axes``; biases and LayerNorm get zero directions);
* the plane of the first two principal components of the training path, with
  the path drawn on it;
* the straight line from the initialisation to the trained weights
  (Goodfellow et al. 2015, alpha in [-0.25, 1.25]);
* the top Hessian eigenvalue (Lanczos) and the Hutchinson trace.

Every loss is the exact mean over real (unpadded) target tokens of the split
(``js.losses.next_token_cross_entropy`` with the split's tokens per sequence).
With ``--shards N`` the same planes, paths and curvature are computed again
with the weights sharded over a ``("points", "model")`` mesh of 1 x N
devices (Megatron-style tensor parallelism, ``models.transformer.partition_specs``;
N simulated CPU devices are made when jax has fewer) and ``results.json``
says how far the two runs differ (``sharded``).

    python -m experiments.transformer --preset quick --out runs/transformer
    python -m experiments.transformer --preset smoke --shards 4

Presets: smoke (CI: a 1-layer width-16 model, 40 kB of source, 5x5 grids),
quick (2 layers, width 64, context 64, 1 MB of source, 3 epochs, 11x11 grids
over 256 sequences; minutes on 2 CPU cores), full (6 layers, width 256,
context 256, the whole library, 51x51 grids; for a GPU).
"""

# How this file reads: the config (presets derived from the shared SMOKE, QUICK,
# FULL; the model and data sizes per preset), then main: data, training (train.fit
# records the trajectory), the measurements on each split (measure_split), the
# sharded rerun (sharded_check), results.json. Shared helpers only parse the
# command line (experiments.config) and file the numbers (experiments.report).

from __future__ import annotations

import os
import sys

if "jax" not in sys.modules and "--shards" in sys.argv[1:-1]:   # before jax starts
    # --shards N on a CPU: N simulated devices; their collectives wait up to 10 minutes for
    # each other (XLA's default, 40 s, was exceeded on 2 overloaded cores with 4 devices)
    _wanted = sys.argv[sys.argv.index("--shards") + 1]
    if _wanted.isdigit() and "xla_force_host_platform_device_count" not in os.environ.get(
            "XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={_wanted}"
                                   " --xla_cpu_collective_call_terminate_timeout_seconds=600")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Sequence  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402

import jaxsurf as js  # noqa: E402
from experiments import config as cfg  # noqa: E402
from experiments import report as rep  # noqa: E402
from experiments.config import FULL, QUICK, SMOKE  # noqa: E402
from experiments.data import Data  # noqa: E402
from experiments.resnet56 import curvature  # noqa: E402
from jaxsurf import models, train  # noqa: E402
from jaxsurf.data import load_python_source  # noqa: E402
from jaxsurf.interrupt import run_command  # noqa: E402
from jaxsurf.models import transformer as tlm  # noqa: E402

# ----------------------------------------------------------------- config
EXPERIMENT = "transformer"
VARIANT = "lm"
PRESETS = {
    "smoke": dataclasses.replace(SMOKE, train_examples=None, val_examples=None, epochs=2,
                                 surface_examples=64, analysis_examples=32,
                                 eval_batch_size=64),
    "quick": dataclasses.replace(QUICK, train_examples=None, val_examples=None,
                                 test_examples=0, epochs=3, grid=11, line_points=21,
                                 surface_examples=256, analysis_examples=64,
                                 lanczos_iterations=10, hutchinson_samples=8,
                                 eval_batch_size=256),
    "full": dataclasses.replace(FULL, test_examples=0, epochs=20, surface_examples=4096,
                                analysis_examples=1024, lanczos_iterations=40,
                                hutchinson_samples=50, eval_batch_size=512),
}
# the model per preset (byte vocabulary, learned positions) and the bytes of source read
ARCHITECTURE = {
    "smoke": dict(seq_len=32, d_model=16, num_heads=2, num_layers=1),
    "quick": dict(seq_len=64, d_model=64, num_heads=4, num_layers=2),
    "full": dict(seq_len=256, d_model=256, num_heads=8, num_layers=6),
}
SOURCE_BYTES = {"smoke": 40_000, "quick": 1_000_000, "full": None}
VAL_FRACTION = 0.1
TRAINING = {   # AdamW with a cosine schedule, as small GPT-style models are trained
    "smoke": train.TrainConfig(batch_size=32, optimizer="adam", learning_rate=3e-3,
                               weight_decay=0.01, schedule="cosine", loss="next_token",
                               eval_batch_size=256),
    "quick": train.TrainConfig(batch_size=64, optimizer="adam", learning_rate=3e-3,
                               weight_decay=0.01, schedule="cosine", loss="next_token",
                               eval_batch_size=512),
    "full": train.TrainConfig(batch_size=128, optimizer="adam", learning_rate=1e-3,
                              weight_decay=0.1, schedule="cosine", loss="next_token",
                              eval_batch_size=512),
}
PCA_MARGIN = 0.25                          # the PCA grid covers the path plus this each side
INTERPOLATION = (-0.25, 1.25)              # alpha range of the init -> final line
AGREE_RTOL = 1e-3                          # sharded vs unsharded: float32 round-off


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--shards", type=int, default=None,
                            help="also run everything with the weights sharded over N model "
                                 "shards (a 1 x N ('points', 'model') mesh) and report the "
                                 "differences")
        parser.add_argument("--positions", choices=tlm.POSITIONS, default="learned",
                            help="learned position table or rotary positions")

    args = cfg.parse_args(__doc__ or "", PRESETS, argv, datasets=("python_stdlib",),
                          losses=("next_token",), add_arguments=add_arguments, min_epochs=2)
    if args.shards is not None and args.shards < 1:
        raise SystemExit(f"error: --shards must be a positive number, got {args.shards}")
    if args.shards is not None and args.shards > len(jax.devices()):
        raise SystemExit(f"error: --shards {args.shards} needs {args.shards} devices, jax has "
                         f"{len(jax.devices())}; on a CPU run it as `python -m "
                         f"experiments.transformer --shards {args.shards}` (which makes "
                         f"simulated devices before jax starts) or set XLA_FLAGS="
                         f"--xla_force_host_platform_device_count={args.shards}")
    out = cfg.output_dir(args, EXPERIMENT, positions=None if args.positions == "learned"
                         else args.positions)
    preset = args.preset_config
    started = time.perf_counter()

    # ---- data: the standard library's source, split by file, byte tokens
    arch = ARCHITECTURE[args.preset]
    source = load_python_source(arch["seq_len"], max_bytes=SOURCE_BYTES[args.preset],
                                val_fraction=VAL_FRACTION)
    limit = {"train": preset.train_examples, "val": preset.val_examples}
    splits = {s: {k: v[:limit[s]] for k, v in source[s].items()} for s in ("train", "val")}
    splits["test"] = {k: v[:0] for k, v in source["val"].items()}   # none: val is held out
    data = Data(splits, "python-stdlib", False, source["description"], None)

    # ---- the model, trained (or the finished run reused); epoch 0 is the initialisation
    model = models.TransformerLM(vocab_size=256, max_len=arch["seq_len"],
                                 d_model=arch["d_model"], num_heads=arch["num_heads"],
                                 num_layers=arch["num_layers"], positions=args.positions)
    config = cfg.train_config(TRAINING[args.preset], args)
    name = (f"Transformer LM ({arch['num_layers']} layers, width {arch['d_model']}, "
            f"{arch['num_heads']} heads, {args.positions} positions)")
    folder = out / VARIANT
    rep.check_same_training(folder, name, model, config, data)
    trained = train.fit(model, {s: data.splits[s] for s in ("train", "val")}, config,
                        out_dir=folder / "train")
    params = trained.variables["params"]
    report = lm_report(out, name, model, config, trained, data, source, args)
    title = f"{name}, {data.label()}"

    # ---- the directions: filter-normalized random plane, PCA of the path, init -> final
    axes = tlm.filter_axes(params)
    d1, d2 = js.random_plane(jax.random.key(args.seed), params, "filter", "biasbn",
                             filter_axis=axes)
    trajectory = folder / "train" / "trajectory"
    (p1, p2), ratio = js.pca_directions(trajectory, ignore="biasbn", params_like=params)
    path = js.project(trajectory, params, [p1, p2], params_like=params)
    initial = rep.restore_epoch(folder / "train", 0, trained.variables)["params"]
    report.result["pca"] = {"explained_variance_ratio": [float(r) for r in ratio],
                            "path_coordinates": path.tolist(),
                            "epochs": list(range(len(path))), "margin": PCA_MARGIN}

    # ---- everything on training and on validation tokens
    for split in args.surface_split:
        subset = data.subset(preset.surface_examples, split)
        if not len(subset["y"]):
            report.skip_split(split)
            continue
        measure_split(report, split, model, trained, params, initial, (d1, d2), (p1, p2),
                      path, data, args)
    held_out = [s for s in args.surface_split if s != "train" and f"final_{s}" in report.planes]
    report.plane_figures("final", title, basins=True)
    report.split_figures("final", held_out, title)
    for tag in ["pca"] + [f"pca_{s}" for s in held_out]:
        report.figure(f"pca_path_{tag}", lambda p, tag=tag: js.plot.pca_path(
            report.planes[tag], path, explained_variance_ratio=ratio,
            epochs=list(range(len(path))), out=p, log=rep.wide_range(report.planes[tag]),
            title=f"{title}: {_split_of(tag)} loss in the PCA plane, training path"))
    report.figure("interpolation", lambda p: js.plot.line(
        _overlay({s: report.result["interpolation"][s]["surface"] for s in
                  report.result["interpolation"]}),
        xlabel="alpha (0: initialisation, 1: trained)",
        title=f"{title}: loss from initialisation to the trained weights", out=p))
    for info in report.result["interpolation"].values():
        info.pop("surface")

    # ---- the same with the weights sharded over --shards model shards
    extra = {}
    if args.shards is not None:
        extra["sharded"] = sharded_check(args.shards, report, model, trained, params, initial,
                                         (d1, d2), (p1, p2), data, args)
    report.result["seconds_this_run"] = time.perf_counter() - started
    return rep.finish(out, EXPERIMENT, args, cfg.command_line("experiments.transformer", argv),
                      [report], {}, extra)


def lm_report(out: Path, name: str, model: Any, config: train.TrainConfig,
              trained: train.TrainResult, data: Data, source: dict, args: argparse.Namespace
              ) -> rep.VariantReport:
    """results.json's record of the trained model: settings, history, the final
    train/validation loss, token accuracy and perplexity, the data split."""
    history = trained.history
    last = history[-1] if history else {}
    seconds = float(sum(h.get("seconds", 0.0) for h in history))
    split = {k: v for k, v in source["split"].items() if k not in ("train", "val")}
    for s in ("train", "val"):   # the file lists stay in data_split.json (long)
        split[s] = {k: v for k, v in source["split"][s].items()
                    if k not in ("files", "file_bytes")}
    info = {
        "model": name, "variant": VARIANT, "model_note": "", "module": repr(model),
        "num_params": models.num_params(trained.variables), "preset": args.preset,
        "dataset": {**data.info(args.preset_config), "split": split,
                    "tokens_per_example": source["tokens_per_example"],
                    "files": "data_split.json"},
        "loss": config.loss, "train_config": dataclasses.asdict(config),
        "epochs": len(history), "best_epoch": trained.best_epoch,
        "train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"),
        "train_accuracy": last.get("train_accuracy"), "val_accuracy": last.get("val_accuracy"),
        "train_perplexity": js.losses.perplexity(last["train_loss"]) if last else None,
        "val_perplexity": js.losses.perplexity(last["val_loss"]) if last else None,
        "train_seconds": seconds, "history": history, "surfaces": {}, "figures": {},
        "surface_stats": {}, "seconds": {"train": seconds}, "curvature": {},
        "interpolation": {}, "sharpness": {},
    }
    report = rep.VariantReport(VARIANT, name, out / VARIANT, info)
    rep.write_json(report.file("data_split.json"), source["split"])
    if history:
        report.figure("training_curves", lambda p: js.plot.training_curves(
            history, p, f"{name}, {data.label()}", loss="next-token cross-entropy"))
    return report


def split_fn(model: Any, variables: Any, subset: dict) -> tuple[Any, Any]:
    """``(fn, params)`` whose loss is the exact mean over the subset's real tokens:
    the next-token cross-entropy with the subset's tokens per sequence."""
    loss = functools.partial(js.losses.next_token_cross_entropy,
                             tokens_per_example=js.losses.tokens_per_example(subset["mask"]))
    return js.flax.adapt(model, variables, loss=loss)


def measure_split(report: rep.VariantReport, split: str, model: Any,
                  trained: train.TrainResult, params: Any, initial: Any,
                  random_dirs: tuple[Any, Any], pca_dirs: tuple[Any, Any], path: np.ndarray,
                  data: Data, args: argparse.Namespace) -> None:
    """The random plane and line, the PCA plane, the init -> final line and the
    curvature on one split (``plane_final[_<split>]``, ``plane_pca[_<split>]`` ...)."""
    preset, seed = args.preset_config, args.seed
    suffix = "" if split == "train" else f"_{split}"
    subset = data.subset(preset.surface_examples, split)
    fn, _ = split_fn(model, trained.variables, subset)
    batch, epoch = preset.eval_batch_size, len(trained.history)

    # the filter-normalized random plane and the line along d1
    d1, d2 = random_dirs
    r = preset.range
    grid = np.linspace(-r, r, preset.grid)
    meta = report.metadata(f"final{suffix}", random_dirs, data, seed, epoch, split,
                           directions_kind="random, filter-normalized (token rows of "
                           "embeddings), biases and LayerNorm zeroed")
    plane = rep.stored(report.file(f"plane_final{suffix}.store"), lambda store: js.evaluate_plane(
        fn, params, d1, d2, subset, grid, grid, batch_size=batch, metadata=meta, store=store))
    line = rep.stored(report.file(f"line_final{suffix}.store"), lambda store: js.evaluate_line(
        fn, params, d1, subset, np.linspace(-r, r, preset.line_points), batch_size=batch,
        metadata=meta, store=store))
    report.add(f"final{suffix}", plane, line)

    # the PCA plane of the training path, on a grid that covers the path
    p1, p2 = pca_dirs
    alphas, betas = pca_grid(path, preset.grid)
    meta = report.metadata(f"pca{suffix}", pca_dirs, data, seed, epoch, split,
                           directions_kind="pca of the trajectory (ignore=biasbn)")
    pca = rep.stored(report.file(f"plane_pca{suffix}.store"), lambda store: js.evaluate_plane(
        fn, params, p1, p2, subset, alphas, betas, batch_size=batch, metadata=meta,
        store=store))
    report.add(f"pca{suffix}", pca)

    # the straight line from the initialisation to the trained weights
    ts = interpolation_grid(preset.line_points)
    meta = report.metadata(f"interpolation{suffix}", initial, data, seed, epoch, split,
                           directions_kind="(1 - alpha) * initialisation + alpha * trained")
    inter = rep.stored(report.file(f"interpolation{suffix}.store"), lambda store: js.interpolate(
        fn, initial, params, subset, ts, batch_size=batch, metadata=meta, store=store))
    report.result["surfaces"][f"interpolation{suffix}"] = rep.relative(
        report.file(f"interpolation{suffix}.npz"), report.out)
    loss = np.asarray(inter.metrics["loss"], np.float64)
    report.result["interpolation"][split] = {
        "surface": inter, "at_init": _at(inter, 0.0), "at_trained": _at(inter, 1.0),
        "maximum_between": float(loss[(ts >= 0) & (ts <= 1)].max()),
        "monotone_decrease_0_to_1": bool(np.all(np.diff(loss[(ts >= 0) & (ts <= 1)]) <= 1e-6)),
        "minimum": float(loss.min()), "argmin_alpha": float(ts[int(np.argmin(loss))])}

    # curvature on a fixed subset: lambda_max (Lanczos) and the Hutchinson trace
    analysis = data.subset(preset.analysis_examples, split)
    afn, _ = split_fn(model, trained.variables, analysis)
    report.result["curvature"][split] = rep.reuse_json(
        report.file(f"curvature{suffix}.json"),
        {"params": js.tree.fingerprint(params), "examples": len(analysis["y"]), "seed": seed,
         "iterations": preset.lanczos_iterations, "probes": preset.hutchinson_samples},
        lambda: curvature(afn, params, analysis, preset, seed))
    if split == "train":   # the CNN experiments' place for it
        report.result["curvature"].update(report.result["curvature"]["train"])


def interpolation_grid(points: int) -> np.ndarray:
    """About ``points`` alphas evenly spaced over :data:`INTERPOLATION` = [-0.25, 1.25]
    that include 0 (the initialisation) and 1 (the trained weights) exactly: a
    multiple of 6 intervals."""
    intervals = 6 * max(1, round((points - 1) / 6))
    return np.round(np.linspace(*INTERPOLATION, intervals + 1), 12)   # 0 and 1 exact


def pca_grid(path: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """A grid over the projected path plus :data:`PCA_MARGIN` of its extent each side."""
    lo, hi = path.min(axis=0), path.max(axis=0)
    pad = PCA_MARGIN * np.maximum(hi - lo, 1e-3)
    return (np.linspace(lo[0] - pad[0], hi[0] + pad[0], points),
            np.linspace(lo[1] - pad[1], hi[1] + pad[1], points))


def sharded_check(shards: int, report: rep.VariantReport, model: Any,
                  trained: train.TrainResult, params: Any, initial: Any,
                  random_dirs: tuple[Any, Any], pca_dirs: tuple[Any, Any], data: Data,
                  args: argparse.Namespace) -> dict[str, Any]:
    """The random plane, the PCA plane, the init -> final line and the curvature of
    every split again, with the weights (and directions) sharded Megatron-style over
    a 1 x ``shards`` ``("points", "model")`` mesh; the largest differences from the
    unsharded run. Nothing is read from or written to the stores."""
    preset, seed = args.preset_config, args.seed
    started = time.perf_counter()
    mesh = jax.make_mesh((1, shards), ("points", "model"), axis_types=(AxisType.Auto,) * 2,
                         devices=jax.devices()[:shards])
    specs = tlm.partition_specs(params, "megatron", axis_size=shards)
    place = functools.partial(jax.device_put, device=jax.tree.map(
        lambda s: NamedSharding(mesh, s), specs))
    sp, si = place(params), place(initial)
    (d1, d2), (p1, p2) = [tuple(place(d) for d in ds) for ds in (random_dirs, pca_dirs)]
    batch = preset.eval_batch_size
    differences: dict[str, Any] = {}

    def compare(name: str, sharded: np.ndarray, reference: np.ndarray) -> None:
        a, b = np.asarray(sharded, np.float64), np.asarray(reference, np.float64)
        diff = np.abs(a - b)
        differences[name] = {"max_abs": float(diff.max()),
                             "max_rel": float((diff / np.maximum(np.abs(b), 1e-12)).max())}

    for split in args.surface_split:
        suffix = "" if split == "train" else f"_{split}"
        if f"final{suffix}" not in report.planes:
            continue
        subset = data.subset(preset.surface_examples, split)
        fn, _ = split_fn(model, trained.variables, subset)
        ref = report.planes[f"final{suffix}"]
        plane = js.evaluate_plane(fn, sp, d1, d2, subset, ref.alphas, ref.betas,
                                  batch_size=batch, mesh=mesh)
        compare(f"plane_final{suffix}", plane.metrics["loss"], ref.metrics["loss"])
        ref = report.planes[f"pca{suffix}"]
        pca = js.evaluate_plane(fn, sp, p1, p2, subset, ref.alphas, ref.betas,
                                batch_size=batch, mesh=mesh)
        compare(f"plane_pca{suffix}", pca.metrics["loss"], ref.metrics["loss"])
        ref = js.Surface.load(report.out / report.result["surfaces"][f"interpolation{suffix}"])
        inter = js.interpolate(fn, si, sp, subset, ref.alphas, batch_size=batch, mesh=mesh)
        compare(f"interpolation{suffix}", inter.metrics["loss"], ref.metrics["loss"])
        analysis = data.subset(preset.analysis_examples, split)
        afn, _ = split_fn(model, trained.variables, analysis)
        numbers = curvature(afn, sp, analysis, preset, seed)
        reference = report.result["curvature"][split]
        for key in ("lambda_max", "trace"):
            compare(f"{key}{suffix}", np.array([numbers[key]]), np.array([reference[key]]))
    held = {leaf.sharding.spec for leaf in jax.tree_util.tree_leaves(sp)}
    worst = max((d["max_rel"] for d in differences.values()), default=0.0)
    result = {"shards": shards, "mesh": {"points": 1, "model": shards},
              "rule": "megatron", "specs_used": sorted(str(s) for s in held),
              "differences": differences, "max_rel_difference": worst,
              "agree_rtol": AGREE_RTOL, "agree": bool(worst <= AGREE_RTOL),
              "seconds": time.perf_counter() - started}
    print(f"sharded over {shards} model shards: largest relative difference {worst:.2e} "
          f"({'agrees' if result['agree'] else 'DIFFERS'} at rtol {AGREE_RTOL:g})", flush=True)
    return result


def _split_of(tag: str) -> str:
    return tag.split("_", 1)[1] if "_" in tag else "train"


def _at(surface: js.Surface, alpha: float) -> float:
    i = int(np.argmin(np.abs(np.asarray(surface.alphas) - alpha)))
    return float(surface.metrics["loss"][i])


def _overlay(lines: dict[str, js.Surface]) -> js.Surface:
    """The loss and token accuracy of several 1-D surfaces on one alpha axis."""
    first = next(iter(lines.values()))
    return js.Surface(first.alphas, None, {f"{split} {m}": s.metrics[m] for split, s in
                                           lines.items() for m in ("loss", "accuracy")},
                      {"axis_labels": "alpha"})


if __name__ == "__main__":
    raise SystemExit(run_command(main))
