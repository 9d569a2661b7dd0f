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
    python -m experiments.resnet56 --preset full --dataset cifar10 \
        --data-dir ~/tensorflow_datasets --out runs/resnet56_full

Presets: smoke (CI: a ResNet-8 stand-in, 256 images, 5x5 grid), quick (the
real ResNet-56 on 10,000 Fashion-MNIST images, 3 epochs, 15x15 grid over 800
images; 11 min (noskip) and 15 min (skip) measured on 2 shared CPU cores), full (Li et al.: the
whole training set, 300 epochs of SGD, 51x51 on [-1, 1]^2 over the whole
training set; for a GPU).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Sequence

import jaxsurf as js
from experiments import _report, _settings, _surfaces, _training
from experiments._data import load_data
from experiments._settings import CIFAR_TRAINING, FULL, QUICK, SMOKE
from experiments._variant import Variant, VariantRun, train_and_measure
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
ARCHITECTURE = {  # (depth, width) per depth and preset
    56: {"smoke": (8, 8), "quick": (56, 16), "full": (56, 16)},
    110: {"smoke": (8, 4), "quick": (110, 16), "full": (110, 16)},
}


def main(argv: Sequence[str] | None = None, *, depth: int = 56, doc: str = __doc__
         ) -> dict[str, Any]:
    """Runs the experiment for a ResNet of ``depth`` (56 or 110) and returns results.json."""
    experiment = f"resnet{depth}"

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--noskip", action="store_true",
                            help="run only the net without shortcuts (= --variants noskip)")

    args = _settings.parse_args(doc, PRESETS[depth], argv, variants=VARIANTS,
                                add_arguments=add_arguments)
    if args.noskip:
        args.variants = ["noskip"]
    out = _settings.output_dir(args, experiment)
    preset = args.preset_config
    data = load_data(args.dataset, args.data_dir, preset, seed=args.seed)
    layers, width = ARCHITECTURE[depth][args.preset]
    config = _settings.train_config(CIFAR_TRAINING[args.preset], args)
    name = f"ResNet-{layers}" + ("" if width == 16 else f" (width {width})")
    note = "" if layers == depth else f"smoke-test stand-in for ResNet-{depth}"

    # ---- train each variant; its final plane, line, curvature and sharpness
    runs: list[VariantRun] = []
    # the no-skip net first: the skip net is also drawn at the no-skip net's best epoch
    for variant in sorted(args.variants, key=lambda v: v != "noskip"):
        model = models.ResNetCIFAR(depth=layers, width=width, skip=variant == "skip",
                                   num_classes=data.num_classes)
        runs.append(train_and_measure(Variant(variant, name, model, config, note),
                                      data, args, out))

    # ---- surfaces at the no-skip net's best epoch (restored from the trajectory)
    best = _noskip_best_epoch(runs, out)
    for run in runs:
        run.result["noskip_best_epoch"] = best
        epochs = len(run.history)
        if best is None or best == epochs or best > epochs:
            continue           # nothing to add: the final plane is that epoch's plane
        tag = f"epoch{best}"
        variables = _training.restore_epoch(run.dir / "train", best, run.variables)
        fn, params = js.flax.adapt(run.variant.model, variables, loss=config.loss)
        directions = _surfaces.random_plane(params, args.seed)
        meta = {"model": name, "variant": run.variant.name, "loss": config.loss, "epoch": best}
        plane, line = _surfaces.plane_and_line(run, tag, params, fn, data, preset, args.seed,
                                               meta, directions=directions)
        _surfaces.variant_figures(run, tag, plane, line,
                                  f"{name} {run.variant.name}, {data.label()}, epoch {best} "
                                  f"(best of no-skip)")

    # ---- report: skip and no-skip side by side, results.json, the summary table
    comparisons = {}
    for tag in ["final"] + ([f"epoch{best}"] if best else []):
        planes = _report.comparable(runs, out, experiment, args, VARIANTS, tag)
        if len(planes) > 1:
            when = "final epoch" if tag == "final" else f"epoch {best} (best of no-skip)"
            comparisons[tag] = _report.compare_planes(
                out, f"compare_{tag}", planes,
                f"{name} with and without skips, {data.label()}, {when}: loss")
    return _report.finish(out, experiment, args, _settings.command_line(
        f"experiments.{experiment}", argv), runs, comparisons)


def _noskip_best_epoch(runs: Sequence[VariantRun], out: Path) -> int | None:
    """Best validation epoch of the no-skip net: from this run, or from its log in ``out``."""
    for run in runs:
        if run.variant.name == "noskip":
            return run.best_epoch if run.history else None
    history = train.read_log(out / "noskip" / "train" / "log.jsonl")
    return train.best_epoch(history) if history else None


if __name__ == "__main__":
    raise SystemExit(run_command(main))
