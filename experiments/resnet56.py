r"""ResNet-56 with and without skip connections: loss surfaces, curvature, sharpness.

Li et al. (2018, Fig. 5) and the seed: the filter-normalized random plane of a
deep ResNet is a smooth bowl with shortcuts and becomes chaotic without them.
Trains both variants (option-A shortcuts, so their parameter trees are the
same and share the random directions), draws the 1-D line and the 2-D plane
at the final epoch and at the best epoch of the no-skip net (restored from the
trajectory, as the seed did), and measures lambda_max, the Hessian trace and
SAM / average-case sharpness. Everything goes to --out; a rerun reuses it.

    python -m experiments.resnet56 --preset quick --out runs/resnet56
    python -m experiments.resnet56 --preset quick --noskip --out runs/resnet56   # one variant
    python -m experiments.resnet56 --noskip       # output in runs/resnet56_noskip_quick
    python -m experiments.resnet56 --preset smoke --monitor --out runs/resnet56_monitor
    python -m experiments.resnet56 --preset full --dataset cifar10 \
        --data-dir ~/tensorflow_datasets --out runs/resnet56_full

Presets: smoke (CI: a ResNet-8 stand-in, 256 images, 5x5 grid), quick (the
real ResNet-56 on 10,000 Fashion-MNIST images, 3 epochs, 15x15 grid over 800
images; 11 min (noskip) and 15 min (skip) measured on 2 shared CPU cores), full (Li et al.: the
whole training set, 300 epochs of SGD, 51x51 on [-1, 1]^2 over the whole
training set; for a GPU).

``--monitor`` also records, during training, the plane through the current
weights of each variant (:class:`jaxsurf.Monitor`, fixed directions, loss and the
top Hessian eigenvalue; settings per preset in ``MONITOR``) in
``--out/<variant>/monitor``, animated as ``<variant>/monitor.gif``; view it with
``python -m jaxsurf view OUT/<variant>/monitor``. (A training run reused from
``--out`` has no steps left to record.)
"""

# How this file reads: the config (presets derived from the shared SMOKE, QUICK,
# FULL with dataclasses.replace), then main (data, each variant, the planes at
# the no-skip net's best epoch, the comparison, results.json) and measure, the
# steps for one network in order: train or reuse, js.flax.adapt, js.random_plane,
# js.evaluate_plane and js.evaluate_line on every --surface-split, figures,
# js.hessian (lambda_max, trace) and js.sharpness. densenet, taaf and
# resnet50_pca measure their networks with this same `measure`; the shared
# modules only load data (experiments.data), parse the command line
# (experiments.config) and file the numbers (experiments.report).

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np

import jaxsurf as js
from experiments import config as cfg
from experiments import report as rep
from experiments.config import CIFAR_TRAINING, FULL, QUICK, SMOKE, Preset
from experiments.data import Data, load_data
from jaxsurf import models, train
from jaxsurf.interrupt import run_command

# ----------------------------------------------------------------- config
VARIANTS = ("skip", "noskip")
# Per depth: the presets (derived from the shared ones) and the net each trains;
# smoke trains a ResNet-8 stand-in. Li et al. train every depth the same way
# (CIFAR_TRAINING).
PRESETS = {
    56: {"smoke": SMOKE, "quick": QUICK, "full": FULL},
    110: {"smoke": SMOKE,
          "quick": dataclasses.replace(QUICK, train_examples=6_000, val_examples=1_000,
                                       test_examples=1_000, grid=13, line_points=25,
                                       surface_examples=400, analysis_examples=64,
                                       lanczos_iterations=8, hutchinson_samples=6,
                                       eval_batch_size=400),
          "full": FULL},
}
# --monitor, per preset: a frame every `every` steps, a `grid` x `grid` plane on
# [-range, range]^2 over `examples` validation examples, the top eigenvalue from
# `lanczos` iterations (smoke: 4 steps an epoch; quick: 78; full: 391)
MONITOR = {"smoke": {"every": 1, "grid": 7, "examples": 128, "lanczos": 4},
           "quick": {"every": 20, "grid": 9, "examples": 256, "lanczos": 8},
           "full": {"every": 2000, "grid": 21, "examples": 2048, "lanczos": 20}}
ARCHITECTURE = {  # (depth, width) per depth and preset
    56: {"smoke": (8, 8), "quick": (56, 16), "full": (56, 16)},
    110: {"smoke": (8, 4), "quick": (110, 16), "full": (110, 16)},
}


def main(argv: Sequence[str] | None = None, *, depth: int = 56, doc: str | None = __doc__
         ) -> dict[str, Any]:
    """Runs the experiment for a ResNet of ``depth`` (56 or 110) and returns results.json."""
    experiment = f"resnet{depth}"

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--noskip", action="store_true",
                            help="run only the net without shortcuts (= --variants noskip)")
        parser.add_argument("--monitor", action="store_true",
                            help="record the plane through the weights during training "
                                 "(js.Monitor, in OUT/<variant>/monitor)")

    args = cfg.parse_args(doc or "", PRESETS[depth], argv, variants=VARIANTS,
                          add_arguments=add_arguments)
    if args.noskip:
        args.variants = ["noskip"]
    out = cfg.output_dir(args, experiment)
    preset: Preset = args.preset_config

    # ---- data
    data = load_data(args.dataset, args.data_dir, preset, seed=args.seed)
    layers, width = ARCHITECTURE[depth][args.preset]
    config = cfg.train_config(CIFAR_TRAINING[args.preset], args)
    name = f"ResNet-{layers}" + ("" if width == 16 else f" (width {width})")
    note = "" if layers == depth else f"smoke-test stand-in for ResNet-{depth}"

    # ---- each variant: train, its final plane and line, curvature and sharpness
    # the no-skip net first: the skip net is also drawn at the no-skip net's best epoch
    measured: list[tuple[Any, rep.VariantReport, train.TrainResult]] = []
    for variant in sorted(args.variants, key=lambda v: v != "noskip"):
        model = models.ResNetCIFAR(depth=layers, width=width, skip=variant == "skip",
                                   num_classes=data.num_classes)
        measured.append((model, *measure(variant, name, model, note, config, data, args,
                                         out)))
    reports = [report for _, report, _ in measured]

    # ---- the plane and line at the no-skip net's best epoch (from the trajectory)
    best = _noskip_best_epoch(measured, out)
    for model, report, trained in measured:
        report.result["noskip_best_epoch"] = best
        if best is None or best >= len(trained.history):
            continue           # nothing to add: the final plane is that epoch's plane
        tag = f"epoch{best}"
        variables = rep.restore_epoch(report.file("train"), best, trained.variables)
        fn, params = js.flax.adapt(model, variables, loss=config.loss)
        directions = js.random_plane(jax.random.key(args.seed), params, "filter", "biasbn")
        plane_and_line(report, tag, fn, params, directions,
                       data.subset(preset.surface_examples), preset,
                       report.metadata(tag, directions, data, args.seed, best))
        report.plane_figures(tag, f"{name} {report.name}, {data.label()}, epoch {best} "
                                  f"(best of no-skip)")

    # ---- skip and no-skip side by side; results.json and the summary table
    comparisons = {}
    for tag in ["final"] + ([f"epoch{best}"] if best else []):
        planes = rep.comparable(reports, out, experiment, args, VARIANTS, tag)
        if len(planes) > 1:
            when = "final epoch" if tag == "final" else f"epoch {best} (best of no-skip)"
            comparisons[tag] = rep.compare_planes(
                out, f"compare_{tag}", planes,
                f"{name} with and without skips, {data.label()}, {when}: loss")
    for report in reports:  # the numbers with their spread over random planes
        stats = report.result.get("planes")
        if stats:
            print(f"{report.name} over {stats['num_planes']} planes: " + ", ".join(
                f"{key} {stats[key]['mean']:.4g} ± {stats[key]['sem'] or 0:.2g}"
                for key in ("curvature_exact_alpha", "curvature_alpha", "basin_width",
                            "num_persistent_minima", "deepest_barrier") if key in stats))
    return rep.finish(out, experiment, args,
                      cfg.command_line(f"experiments.{experiment}", argv), reports, comparisons)


def measure(variant: str, model_name: str, model: Any, note: str, config: train.TrainConfig,
            data: Data, args: argparse.Namespace, out: Path
            ) -> tuple[rep.VariantReport, train.TrainResult]:
    """Trains one network (or reuses its finished training) and measures it at its
    final epoch, in ``out/<variant>/``: the training run and curves, the
    filter-normalized random plane and line on every ``--surface-split``
    (``plane_final*.npz``, ``line_final*.npz``) with their figures, and the
    curvature and sharpness numbers."""
    preset: Preset = args.preset_config
    seed, folder = args.seed, out / variant
    started = time.perf_counter()

    # ---- train, or reuse the finished run in out/<variant>/train
    rep.check_same_training(folder, model_name, model, config, data)
    monitor = during_training(model, config, data, args, folder) \
        if getattr(args, "monitor", False) else None
    trained = train.fit(model, {s: data.splits[s] for s in ("train", "val")}, config,
                        out_dir=folder / "train", monitor=monitor)
    if monitor is not None and monitor.steps:
        js.plot.animate(js.Monitor.load(folder / "monitor"), out=folder / "monitor.gif",
                        fps=3, log=True, title=f"{model_name} {variant}")
    fn, params = js.flax.adapt(model, trained.variables, loss=config.loss)
    report = rep.VariantReport.of_training(out, variant, model_name, model, note, config,
                                           trained, params, data, args)
    epoch = len(trained.history)
    title = f"{model_name} {variant}, {data.label()}, epoch {epoch}"

    # ---- Li et al.'s filter-normalized random directions (biases and BatchNorm zeroed)
    directions = js.random_plane(jax.random.key(seed), params, "filter", "biasbn")

    # ---- the plane and the line along d1, on the training set and each held-out split
    for split in args.surface_split:
        tag = "final" if split == "train" else f"final_{split}"
        subset = data.subset(preset.surface_examples, split)
        if not len(subset["y"]):
            report.skip_split(split)
            continue
        plane_and_line(report, tag, fn, params, directions, subset, preset,
                       report.metadata(tag, directions, data, seed, epoch, split))
    held_out = [s for s in args.surface_split if s != "train" and f"final_{s}" in report.planes]
    report.plane_figures("final", title, basins=True)
    report.split_figures("final", held_out, title)

    # ---- curvature (js.hessian) and sharpness (js.sharpness) on a fixed subset
    subset = data.subset(preset.analysis_examples)
    request = {"params": js.tree.fingerprint(params), "examples": preset.analysis_examples,
               "seed": seed, "loss": config.loss}
    info = report.result
    info["curvature"] = rep.reuse_json(
        report.file("curvature.json"),
        {**request, "iterations": preset.lanczos_iterations,
         "probes": preset.hutchinson_samples},
        lambda: curvature(fn, params, subset, preset, seed))
    info["sharpness"] = rep.reuse_json(
        report.file("sharpness.json"), {**request, "samples": preset.sharpness_samples},
        lambda: sharpness(fn, params, subset, preset, seed))
    # ---- numbers with their spread over random planes (js.random_planes, js.summary)
    if preset.planes > 1:
        planes_subset = data.subset(preset.planes_examples)
        info["planes"] = rep.reuse_json(
            report.file("planes.json"),
            {"params": request["params"], "seed": seed, "loss": config.loss,
             "planes": preset.planes, "grid": preset.planes_grid, "range": preset.range,
             "examples": preset.planes_examples},
            lambda: spread(report, fn, params, planes_subset, preset, seed,
                           f"{title}: {preset.planes} random planes"))
        info["seconds"]["planes"] = info["planes"].get("seconds")
    info["seconds"]["curvature"] = info["curvature"].get("seconds")
    info["seconds"]["sharpness"] = info["sharpness"].get("seconds")
    info["seconds_this_run"] = time.perf_counter() - started
    print(f"{model_name} {variant}: " + ", ".join(
        f"{k} {info[k]:.4g}" for k in ("train_loss", "val_loss", "val_accuracy", "val_mae")
        if isinstance(info.get(k), float)) + f"; {info['seconds_this_run']:.0f} s")
    return report, trained


def during_training(model: Any, config: train.TrainConfig, data: Data,
                    args: argparse.Namespace, folder: Path) -> js.Monitor:
    """A :class:`jaxsurf.Monitor` of the plane through the weights during training
    (``MONITOR[preset]``), its records in ``folder/monitor``: fixed
    filter-normalized directions drawn from ``--seed`` at the first step, loss and
    accuracy on validation examples, and the top Hessian eigenvalue."""
    settings = MONITOR[args.preset]
    split = "val" if len(data.splits["val"]["y"]) else "train"
    grid = np.linspace(-args.preset_config.range, args.preset_config.range, settings["grid"])
    return js.Monitor(js.flax.linen_metrics_fn(model, loss=config.loss),
                      data.subset(settings["examples"], split), out=folder / "monitor",
                      every=settings["every"], kind="plane", grid=grid, key=args.seed,
                      measure=("loss", "accuracy"),
                      curvature={"top_eigenvalue": {"num_iterations": settings["lanczos"],
                                                    "tol": None}},
                      batch_size=args.preset_config.eval_batch_size)


def plane_and_line(report: rep.VariantReport, tag: str, fn: Any, params: Any,
                   directions: tuple[Any, Any], subset: dict, preset: Preset,
                   metadata: dict) -> None:
    """The preset's grid on ``[-range, range]^2`` around ``params`` and the line
    along ``d1``, each kept in the library's resumable store (a rerun evaluates
    nothing twice) and saved as ``plane_<tag>.npz`` / ``line_<tag>.npz``."""
    d1, d2 = directions
    r, batch = preset.range, preset.eval_batch_size
    grid = np.linspace(-r, r, preset.grid)
    plane = rep.stored(report.file(f"plane_{tag}.store"), lambda store: js.evaluate_plane(
        fn, params, d1, d2, subset, grid, grid, batch_size=batch, metadata=metadata,
        store=store))
    line = rep.stored(report.file(f"line_{tag}.store"), lambda store: js.evaluate_line(
        fn, params, d1, subset, np.linspace(-r, r, preset.line_points), batch_size=batch,
        metadata=metadata, store=store))
    report.add(tag, plane, line)


def spread(report: rep.VariantReport, fn: Any, params: Any, subset: dict, preset: Preset,
           seed: int, title: str) -> dict[str, Any]:
    """``preset.planes`` filter-normalized random planes in one resumable run, their
    small multiples (``planes.png``) and :func:`jaxsurf.summary`: curvature at the
    centre along each axis (grid and exact ``d^T H d``), basin width at twice the
    centre's loss, persistent minima and the deepest barrier, each as mean ± SEM."""
    start = time.perf_counter()
    planes = js.random_planes(jax.random.key(seed + 7), params, preset.planes)
    grid = np.linspace(-preset.range, preset.range, preset.planes_grid)
    surfaces = rep.reused_or_recomputed(  # another --grid/--range: a new store
        report.file("planes.store"), lambda store: js.evaluate_planes(
            fn, params, planes, subset, grid, grid, batch_size=preset.eval_batch_size,
            store=store))
    js.plot.small_multiples(surfaces, kind="filled", log=True, title=title,
                            out=report.file("planes.png"))
    stats = js.summary(surfaces, fn=fn, params=params, planes=planes, data=subset,
                       batch_size=preset.eval_batch_size)
    return {"examples": int(len(subset["y"])), "grid": preset.planes_grid,
            "figure": "planes.png", **stats, "seconds": time.perf_counter() - start}


def curvature(fn: Any, params: Any, subset: dict, preset: Preset, seed: int
              ) -> dict[str, Any]:
    """lambda_max (Lanczos, tolerance 1e-3) and the Hutchinson trace of the Hessian."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lams, _ = js.hessian.top_eigenpairs(
            fn, params, subset, k=1, key=jax.random.key(seed + 101),
            batch_size=preset.eval_batch_size, num_iterations=preset.lanczos_iterations,
            tol=1e-3)
    converged = not any("Lanczos stopped" in str(w.message) for w in caught)
    trace, stderr = js.hessian.trace(fn, params, subset, key=jax.random.key(seed + 102),
                                     num_samples=preset.hutchinson_samples,
                                     batch_size=preset.eval_batch_size)
    return {"examples": int(len(subset["y"])), "lambda_max": float(lams[0]),
            "lanczos_iterations": preset.lanczos_iterations,
            "lanczos_converged_tol_1e-3": converged, "trace": trace, "trace_stderr": stderr,
            "hutchinson_samples": preset.hutchinson_samples,
            "seconds": time.perf_counter() - start}


def sharpness(fn: Any, params: Any, subset: dict, preset: Preset, seed: int
              ) -> dict[str, Any]:
    """SAM sharpness (rho 0.05) and |w|-scaled average-case sharpness (sigma 0.05)."""
    start = time.perf_counter()
    sam = js.sharpness.sam_sharpness(fn, params, subset, rho=0.05,
                                     batch_size=preset.eval_batch_size)
    mean, stderr = js.sharpness.average_sharpness(
        fn, params, subset, key=jax.random.key(seed + 103), sigma=0.05,
        num_samples=preset.sharpness_samples, scale="weight",
        batch_size=preset.eval_batch_size)
    return {"examples": int(len(subset["y"])), "sam_rho_0.05": sam,
            "average_weight_scaled_sigma_0.05": mean, "average_stderr": stderr,
            "average_samples": preset.sharpness_samples,
            "seconds": time.perf_counter() - start}


def _noskip_best_epoch(measured: Sequence[tuple[Any, rep.VariantReport, train.TrainResult]],
                       out: Path) -> int | None:
    """Best validation epoch of the no-skip net: from this run, or from its log in ``out``."""
    for _, report, trained in measured:
        if report.name == "noskip":
            return trained.best_epoch if trained.history else None
    history = train.read_log(out / "noskip" / "train" / "log.jsonl")
    return train.best_epoch(history) if history else None


if __name__ == "__main__":
    raise SystemExit(run_command(main))
