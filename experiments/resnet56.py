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
from pathlib import Path
from typing import Any, Mapping, Sequence

import jaxsurf as js
from experiments import runner
from jaxsurf import models, train
from jaxsurf.interrupt import run_command

# ----------------------------------------------------------------- config
EXPERIMENT = "resnet56"
DEPTH = 56
PRESETS = {
    "smoke": runner.Preset(train_examples=256, val_examples=128, test_examples=0, epochs=1,
                           grid=5, range=1.0, line_points=7, surface_examples=128,
                           analysis_examples=64, lanczos_iterations=4, hutchinson_samples=2,
                           sharpness_samples=2, eval_batch_size=128, synthetic_fallback=True),
    "quick": runner.Preset(train_examples=10_000, val_examples=2_000, test_examples=2_000,
                           epochs=3, grid=15, range=1.0, line_points=31, surface_examples=800,
                           analysis_examples=128, lanczos_iterations=10, hutchinson_samples=8,
                           sharpness_samples=4, eval_batch_size=500),
    "full": runner.Preset(train_examples=None, val_examples=None, test_examples=None,
                          epochs=300, grid=51, range=1.0, line_points=51,
                          surface_examples=10**9, analysis_examples=5_000,
                          lanczos_iterations=50, hutchinson_samples=100, sharpness_samples=20,
                          eval_batch_size=1000),
}
# depth and width per preset: smoke trains a ResNet-8 of width 8 in its place
ARCHITECTURE = {"smoke": {"depth": 8, "width": 8}, "quick": {"depth": DEPTH, "width": 16},
                "full": {"depth": DEPTH, "width": 16}}
TRAINING = {
    "smoke": train.TrainConfig(batch_size=64, optimizer="nesterov", learning_rate=0.05,
                               weight_decay=5e-4, schedule="cosine"),
    # Adam: over 3 short epochs Li et al.'s SGD (lr 0.1) left the skip net behind the
    # no-skip net (45.1 % vs 66.7 % validation accuracy, docs/experiments.md)
    "quick": train.TrainConfig(batch_size=128, optimizer="adam", learning_rate=1e-3,
                               weight_decay=1e-4, schedule="cosine"),
    # Li et al. 2018: SGD, momentum 0.9, batch 128, lr 0.1 / 10 at epochs 150, 225, 275,
    # weight decay 5e-4, random crops and flips.
    "full": train.TrainConfig(batch_size=128, optimizer="sgd", learning_rate=0.1,
                              momentum=0.9, weight_decay=5e-4, schedule="piecewise",
                              milestones=(0.5, 0.75, 275 / 300), decay=0.1, augment=True,
                              flip=True, eval_batch_size=1000),
}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run_skip_experiment(EXPERIMENT, DEPTH, __doc__, PRESETS, ARCHITECTURE, TRAINING, argv)


# ----------------------------------------------------------------- the experiment
def run_skip_experiment(experiment: str, depth: int, doc: str, presets: Mapping[str, runner.Preset],
                        architecture: Mapping[str, dict], training: Mapping[str, Any],
                        argv: Sequence[str] | None) -> dict[str, Any]:
    """Skip vs no-skip CIFAR ResNets (shared by ``resnet56`` and ``resnet110``)."""
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--noskip", action="store_true",
                            help="run only the net without shortcuts (= --variants noskip)")

    args = runner.parse_args(doc, presets, argv, variants=("skip", "noskip"),
                             add_arguments=add_arguments)
    if args.noskip:
        args.variants = ["noskip"]
    out = runner.output_dir(args, experiment)
    preset = args.preset_config
    data = runner.load_data(args.dataset, args.data_dir, preset, seed=args.seed)
    arch = architecture[args.preset]
    config = runner.train_config(training[args.preset], args)
    name = f"ResNet-{arch['depth']}" + ("" if arch["width"] == 16 else f" (width {arch['width']})")
    note = "" if arch["depth"] == depth else f"smoke-test stand-in for ResNet-{depth}"

    runs: list[runner.VariantRun] = []
    # the no-skip net first: the skip net is also drawn at the no-skip net's best epoch
    for variant in sorted(args.variants, key=lambda v: v != "noskip"):
        model = models.ResNetCIFAR(depth=arch["depth"], width=arch["width"],
                                   skip=variant == "skip", num_classes=data.num_classes)
        runs.append(runner.run_variant(runner.Variant(variant, name, model, config, note),
                                       data, args, out))

    best = _noskip_best_epoch(runs, out)
    for run in runs:
        run.result["noskip_best_epoch"] = best
        epochs = len(run.history)
        if best is None or best == epochs or best > epochs:
            continue           # nothing to add: the final plane is that epoch's plane
        tag = f"epoch{best}"
        variables = runner.restore_epoch(run.dir / "train", best, run.variables)
        fn, params = js.flax.adapt(run.variant.model, variables, loss=config.loss)
        directions = runner.random_plane(params, args.seed)
        meta = {"model": name, "variant": run.variant.name, "loss": config.loss, "epoch": best}
        plane, line = runner.plane_and_line(run, tag, params, fn, data, preset, args.seed,
                                            meta, directions=directions)
        runner.variant_figures(run, tag, plane, line,
                               f"{name} {run.variant.name}, {data.label()}, epoch {best} "
                               f"(best of no-skip)")

    comparisons = {}
    for tag in ["final"] + ([f"epoch{best}"] if best else []):
        planes = runner.comparable(runs, out, experiment, args, ("skip", "noskip"), tag)
        if len(planes) > 1:
            when = "final epoch" if tag == "final" else f"epoch {best} (best of no-skip)"
            comparisons[tag] = runner.compare_planes(
                out, f"compare_{tag}", planes,
                f"{name} with and without skips, {data.label()}, {when}: loss")
    return runner.finish(out, experiment, args, runner.command_line(
        f"experiments.{experiment}", argv), runs, comparisons)


def _noskip_best_epoch(runs: Sequence[runner.VariantRun], out: Path) -> int | None:
    """Best validation epoch of the no-skip net: from this run, or from its log in ``out``."""
    for run in runs:
        if run.variant.name == "noskip":
            return run.best_epoch if run.history else None
    history = train.read_log(out / "noskip" / "train" / "log.jsonl")
    return train.best_epoch(history) if history else None


if __name__ == "__main__":
    raise SystemExit(run_command(main))
