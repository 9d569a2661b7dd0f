"""The settings every experiment shares: run sizes (:class:`Preset`), the base
presets the experiments derive theirs from, Li et al.'s training recipe, and
the command line (``--preset``, ``--out`` and the overrides)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from jaxsurf import train


LOSS_NAMES = {"ce": "cross_entropy", "cross_entropy": "cross_entropy", "mse": "mse", "mae": "mae",
              "next_token": "next_token"}

SPLITS = ("train", "val", "test")  # data splits a final plane can be evaluated on


@dataclass(frozen=True)
class Preset:
    """Sizes of one run; the experiment file defines ``smoke``, ``quick`` and ``full``.

    Attributes:
        train_examples, val_examples, test_examples: examples per split (None: all).
        epochs: training epochs.
        grid: points per axis of the 2-D plane (``grid x grid``).
        range: the plane and line span ``[-range, range]`` (filter-normalized units).
        line_points: points of the 1-D line.
        surface_examples: training examples the surfaces are averaged over.
        analysis_examples: training examples for the Hessian and sharpness numbers.
        lanczos_iterations: Lanczos steps for lambda_max.
        hutchinson_samples: Rademacher probes for the trace.
        sharpness_samples: Monte Carlo samples of the average-case sharpness.
        eval_batch_size: batch size of every evaluation pass.
        synthetic_fallback: use a generated stand-in when the data set is missing.
        planes: random planes for the statistics with their spread (js.random_planes,
            js.evaluate_planes, js.summary); 0 or 1: none.
        planes_grid: points per axis of each of those planes (odd: through the centre).
        planes_examples: training examples those planes and their exact curvatures
            average over.
    """

    train_examples: int | None
    val_examples: int | None
    test_examples: int | None
    epochs: int
    grid: int
    range: float
    line_points: int
    surface_examples: int
    analysis_examples: int
    lanczos_iterations: int
    hutchinson_samples: int
    sharpness_samples: int
    eval_batch_size: int = 500
    synthetic_fallback: bool = False
    planes: int = 0
    planes_grid: int = 9
    planes_examples: int = 200


# ----------------------------------------------------------------- base presets
# Every experiment derives its presets from these with dataclasses.replace.
SMOKE = Preset(train_examples=256, val_examples=128, test_examples=0, epochs=1, grid=5,
               range=1.0, line_points=7, surface_examples=128, analysis_examples=64,
               lanczos_iterations=4, hutchinson_samples=2, sharpness_samples=2,
               eval_batch_size=128, synthetic_fallback=True, planes=2, planes_grid=5,
               planes_examples=64)
"""CI: seconds on a CPU, a generated stand-in when the data set is missing."""
QUICK = Preset(train_examples=10_000, val_examples=2_000, test_examples=2_000, epochs=3,
               grid=15, range=1.0, line_points=31, surface_examples=800,
               analysis_examples=128, lanczos_iterations=10, hutchinson_samples=8,
               sharpness_samples=4, eval_batch_size=500, planes=8, planes_grid=9,
               planes_examples=200)
"""Minutes per variant on a 2-core CPU."""
FULL = Preset(train_examples=None, val_examples=None, test_examples=None, epochs=300,
              grid=51, range=1.0, line_points=51, surface_examples=10**9,
              analysis_examples=5_000, lanczos_iterations=50, hutchinson_samples=100,
              sharpness_samples=20, eval_batch_size=1000, planes=16, planes_grid=21,
              planes_examples=10_000)
"""Li et al. (2018): the whole data set, 51x51 planes; for a GPU."""

# Training of the CIFAR nets (resnet56, resnet110, densenet), per preset.
CIFAR_TRAINING = {
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


# ----------------------------------------------------------------- command line

def parse_args(doc: str, presets: Mapping[str, Preset], argv: Sequence[str] | None, *,
               datasets: Sequence[str] = ("fashion_mnist", "cifar10"),
               losses: Sequence[str] = ("ce", "mse", "mae"), variants: Sequence[str] = (),
               add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
               min_epochs: int = 1) -> argparse.Namespace:
    """The options every experiment shares; ``add_arguments`` adds its own;
    ``min_epochs``: the fewest epochs the experiment can use.

    Sets ``args.preset_config`` (the :class:`Preset` with the overrides applied),
    ``args.loss`` (the training loss name) and ``args.variants`` (a list).
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(doc.split("\n\n")[1:]))
    parser.add_argument("--preset", choices=sorted(presets), default="quick",
                        help="run size: smoke (CI, seconds), quick (~15 min per variant on a "
                             "2-core CPU), full (the paper's settings, for a GPU)")
    parser.add_argument("--out", default=None,
                        help="output directory, reused when rerun (default: runs/<experiment>"
                             "[_<variants>][_<settings>]_<preset>, printed at the start)")
    parser.add_argument("--dataset", choices=list(datasets), default=datasets[0])
    parser.add_argument("--data-dir", default=None, help="folder holding the data set")
    parser.add_argument("--loss", choices=list(losses), default=losses[0],
                        help="training (and surface) loss")
    if variants:
        parser.add_argument("--variants", default=",".join(variants),
                            help=f"comma-separated subset of {','.join(variants)}")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset")
    parser.add_argument("--grid", type=int, default=None,
                        help="points per axis of the plane (override the preset)")
    parser.add_argument("--range", type=float, default=None,
                        help="plane and line on [-R, R] (the seed's '2x scaled' is 2)")
    parser.add_argument("--train-examples", type=int, default=None)
    parser.add_argument("--surface-examples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initialisation, shuffling and directions")
    parser.add_argument("--optimizer", choices=train.OPTIMIZERS, default=None,
                        help="override the preset's optimizer")
    parser.add_argument("--lr", type=float, default=None,
                        help="override the preset's peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="override the preset's weight decay")
    parser.add_argument("--surface-split", default="train,val",
                        help="comma-separated data splits the final plane and line are "
                             "evaluated on, side by side with a gap map (held-out minus "
                             "train); any of train,val,test (train is always evaluated)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    splits = [s.strip() for s in args.surface_split.split(",") if s.strip()]
    if not splits or sorted(set(splits) - set(SPLITS)):
        parser.error(f"--surface-split: unknown {sorted(set(splits) - set(SPLITS)) or 'empty'}; "
                     f"use a comma-separated subset of {','.join(SPLITS)}")
    args.surface_split = [s for s in SPLITS if s in splits or s == "train"]
    preset = presets[args.preset]
    overrides = {"epochs": args.epochs, "grid": args.grid, "range": args.range,
                 "train_examples": args.train_examples,
                 "surface_examples": args.surface_examples}
    args.preset_config = dataclasses.replace(
        preset, **{k: v for k, v in overrides.items() if v is not None})
    smallest = {"epochs": min_epochs, "grid": 2, "train_examples": 1, "surface_examples": 1}
    for name, least in smallest.items():
        value = getattr(args.preset_config, name)
        if value is not None and value < least:
            parser.error(f"--{name.replace('_', '-')} is too small: {value} (at least {least})")
    if not args.preset_config.range > 0:
        parser.error("--range must be positive")
    args.loss = LOSS_NAMES[args.loss]
    args.default_settings = {"dataset": datasets[0], "loss": LOSS_NAMES[losses[0]],
                             "variants": list(variants)}
    if variants:
        chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = sorted(set(chosen) - set(variants))
        if unknown or not chosen:
            parser.error(f"--variants: unknown {unknown or 'empty'}; use {','.join(variants)}")
        args.variants = [v for v in variants if v in chosen]
    return args

_NAMED_OVERRIDES = ("epochs", "grid", "range", "train_examples", "surface_examples",
                    "optimizer", "lr", "weight_decay")

def output_dir(args: argparse.Namespace, experiment: str, **settings: Any) -> Path:
    """``--out``, or the default ``runs/<experiment>[_<variants>][_<settings>]_<preset>``
    (e.g. ``runs/resnet56_noskip_quick``); created, and printed.

    The default names every setting that differs from the experiment's
    defaults (a subset of variants, the data set, the loss, the seed, the
    overrides, and the experiment's own ``settings`` that are not ``None``,
    e.g. ``width=9000``), so runs with other settings never share a folder.

    Example:
        >>> out = output_dir(args, "resnet56")   # prints "output: runs/resnet56_quick"
    """
    if args.out is not None:
        out = Path(args.out)
    else:
        defaults = getattr(args, "default_settings", {})
        parts = [experiment]
        variants = getattr(args, "variants", None)
        if variants and list(variants) != defaults.get("variants"):
            parts.append("-".join(variants))
        for key in ("dataset", "loss"):
            if getattr(args, key, None) not in (None, defaults.get(key)):
                parts.append(str(getattr(args, key)))
        if getattr(args, "seed", 0):
            parts.append(f"seed{args.seed}")
        named = {key: getattr(args, key, None) for key in _NAMED_OVERRIDES}
        for key, value in {**named, **settings}.items():
            if value is not None:
                parts.append(f"{key.replace('_', '')}{value:g}" if isinstance(value, float)
                             else f"{key.replace('_', '')}{value}")
        parts.append(args.preset)
        out = Path("runs") / "_".join(parts)
    out.mkdir(parents=True, exist_ok=True)
    print(f"output: {out}", flush=True)
    return out

def train_config(base: train.TrainConfig, args: argparse.Namespace) -> train.TrainConfig:
    """The preset's training settings with the command line's epochs, loss, seed,
    optimizer, learning rate and weight decay."""
    changes = {"epochs": args.preset_config.epochs, "loss": args.loss, "seed": args.seed}
    if args.optimizer is not None:
        changes["optimizer"] = args.optimizer
    if args.lr is not None:
        changes["learning_rate"] = args.lr
    if args.weight_decay is not None:
        changes["weight_decay"] = args.weight_decay
    return dataclasses.replace(base, **changes)

def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run."""
    rest = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", "-m", module, *rest])
