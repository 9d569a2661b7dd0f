"""One network of an experiment, start to end: :func:`train_and_measure` trains it
(or reuses its finished training), draws its final plane and line (also on
held-out splits), and measures curvature and sharpness, in that order."""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jaxsurf as js
from experiments import _curvature, _surfaces, _training
from experiments._data import Data
from experiments._report import relative, reuse_json
from experiments._settings import Preset
from jaxsurf import models, train

@dataclass
class Variant:
    """One network of an experiment: its label, readable name, module and training."""

    name: str                      # e.g. "skip", "noskip", "taaf"
    model_name: str                # e.g. "ResNet-56"
    model: Any                     # a Flax Linen module
    config: train.TrainConfig
    note: str = ""                 # e.g. "CPU-sized stand-in for ResNet-56"

@dataclass
class VariantRun:
    """What :func:`run_variant` leaves for the experiment to extend."""

    variant: Variant
    dir: Path
    variables: dict[str, Any]
    fn: Callable
    params: Any
    history: list[dict[str, float]]
    best_epoch: int
    directions: tuple[Any, Any]
    planes: dict[str, js.Surface] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)


def train_and_measure(variant: Variant, data: Data, args: argparse.Namespace, out: Path
                      ) -> VariantRun:
    """Trains one variant and measures it at its final epoch.

    Writes ``out/<variant>/``: the training run, ``training_curves.png``, the
    filter-normalized random line and plane (``*_final.npz``, on every
    ``--surface-split``), their figures, and the curvature and sharpness numbers.
    """
    preset: Preset = args.preset_config
    seed, vdir, config = args.seed, out / variant.name, variant.config
    started = time.perf_counter()

    # ---- train
    trained = _training.train_or_reuse(variant.model_name, variant.model, config, data, vdir)
    history, last = trained.history, (trained.history[-1] if trained.history else {})
    fn, params = js.flax.adapt(variant.model, trained.variables, loss=config.loss)
    title = f"{variant.model_name} {variant.name}, {data.label()}"
    train_seconds = float(sum(h.get("seconds", 0.0) for h in history))
    info = {
        "model": variant.model_name, "variant": variant.name,
        "model_note": variant.note, "module": repr(variant.model),
        "num_params": models.num_params(trained.variables), "preset": args.preset,
        "dataset": data.info(preset), "loss": config.loss,
        "train_config": dataclasses.asdict(config),
        "epochs": len(history), "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"), "best_epoch": trained.best_epoch,
        "train_seconds": train_seconds, "history": history, "surfaces": {}, "figures": {},
        "surface_stats": {}, "seconds": {"train": train_seconds},
    }
    if history:
        curves = vdir / "training_curves.png"
        _training.plot_curves(history, curves, title, data.regression, config.loss)
        info["figures"]["training_curves"] = relative(curves, out)
    run = VariantRun(variant, vdir, trained.variables, fn, params, history,
                     trained.best_epoch, _surfaces.random_plane(params, seed), result=info)
    fp = js.tree.fingerprint(params)
    need_eval = len(data.splits["test"]["y"]) > 0 or (data.regression and config.loss != "mae")
    measured = reuse_json(
        vdir / "final_metrics.json",
        {"params": fp, "sizes": data.info(preset)["sizes"], "loss": config.loss},
        lambda: _curvature.held_out_metrics(variant.model, trained.variables, config.loss,
                                            data, preset)) if need_eval else {}
    if data.regression:
        info["val_mae"] = measured.get("val_mae", last.get("val_loss"))
        info["test_mae"] = measured.get("test_mae")
    else:
        info["val_accuracy"] = last.get("val_accuracy", measured.get("val_accuracy"))
        info["test_loss"] = measured.get("test_loss")
        info["test_accuracy"] = measured.get("test_accuracy")

    # ---- surfaces at the final epoch
    meta = {"model": variant.model_name, "variant": variant.name, "loss": config.loss,
            "epoch": len(history)}
    when = f"{title}, epoch {len(history)}"
    plane, line = _surfaces.plane_and_line(run, "final", params, fn, data, preset, seed, meta)
    _surfaces.variant_figures(run, "final", plane, line, when)
    _surfaces.basins_figure(run, "final", plane, when)
    _surfaces.split_surfaces(run, params, fn, data, preset, seed, meta,
                             getattr(args, "surface_split", ["train"]), when, line=line)

    # ---- curvature and sharpness
    request = {"params": fp, "examples": preset.analysis_examples, "seed": seed,
               "loss": config.loss}
    info["curvature"] = reuse_json(
        vdir / "curvature.json",
        {**request, "iterations": preset.lanczos_iterations,
         "probes": preset.hutchinson_samples},
        lambda: _curvature.curvature(fn, params, data, preset, seed))
    info["sharpness"] = reuse_json(
        vdir / "sharpness.json", {**request, "samples": preset.sharpness_samples},
        lambda: _curvature.sharpness(fn, params, data, preset, seed))
    info["seconds"]["curvature"] = info["curvature"].get("seconds")
    info["seconds"]["sharpness"] = info["sharpness"].get("seconds")
    info["seconds_this_run"] = time.perf_counter() - started
    print(f"{variant.model_name} {variant.name}: " + ", ".join(
        f"{k} {info[k]:.4g}" for k in ("train_loss", "val_loss", "val_accuracy", "val_mae")
        if isinstance(info.get(k), float)) + f"; {info['seconds_this_run']:.0f} s")
    return run
