"""DenseNet-BC vs a ResNet of about the same size: do the surfaces tell them apart?

The seed's subtle case: dense connectivity (concatenation) against residual
addition, at equal parameter counts. Its conclusion was that the pictures do
not separate the two; Li et al. (2018, Fig. 5) show DenseNet-121's surface as
a smooth bowl like a ResNet's. Trains both nets with the same settings, draws
the filter-normalized random line and plane at the final epoch, puts the two
planes side by side on one colour scale, and measures lambda_max, the Hessian
trace and SAM / average-case sharpness. A rerun reuses what --out holds.

    python -m experiments.densenet --preset quick --out runs/densenet
    python -m experiments.densenet --preset quick --variants densenet --out runs/densenet

Pairs: quick pits DenseNet-BC (L=40, k=12; 175,690 parameters on Fashion-MNIST)
against ResNet-14 (172,218); full pits DenseNet-BC (L=100, k=12; 0.77M, Huang et
al.'s CIFAR net) against ResNet-56 (0.85M); smoke uses tiny stand-ins (DenseNet-BC
L=10, k=4 vs ResNet-8 of width 4). Presets: smoke (CI), quick (10,000
Fashion-MNIST images, 3 epochs, 15x15 grid over 600 images; ~15 min for the
DenseNet, 3 for the ResNet, on 2 shared CPU cores), full (whole training
set, Li et al.'s 300-epoch SGD schedule, 51x51 on [-1, 1]^2; for a GPU).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from experiments import config as cfg
from experiments import report as rep
from experiments.config import CIFAR_TRAINING, FULL, QUICK, SMOKE
from experiments.data import load_data
from experiments.resnet56 import measure
from jaxsurf import models
from jaxsurf.interrupt import run_command

# ----------------------------------------------------------------- config
EXPERIMENT = "densenet"
VARIANTS = ("densenet", "resnet")
PRESETS = {"smoke": SMOKE, "quick": dataclasses.replace(QUICK, surface_examples=600),
           "full": FULL}
# (readable name, module factory) per preset and variant
NETWORKS = {
    "smoke": {"densenet": ("DenseNet-BC-10 (k=4)",
                           lambda c: models.DenseNetBC(depth=10, growth_rate=4, num_classes=c)),
              "resnet": ("ResNet-8 (width 4)",
                         lambda c: models.ResNetCIFAR(depth=8, width=4, num_classes=c))},
    "quick": {"densenet": ("DenseNet-BC-40 (k=12)",
                           lambda c: models.densenet_bc_small(num_classes=c)),
              "resnet": ("ResNet-14", lambda c: models.ResNetCIFAR(depth=14, num_classes=c))},
    "full": {"densenet": ("DenseNet-BC-100 (k=12)",
                          lambda c: models.densenet_bc100(num_classes=c)),
             "resnet": ("ResNet-56", lambda c: models.resnet56(num_classes=c))},
}
# both nets train as resnet56's do (CIFAR_TRAINING: Li et al.'s schedule in full)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = cfg.parse_args(__doc__ or "", PRESETS, argv, variants=VARIANTS)
    out = cfg.output_dir(args, EXPERIMENT)

    # ---- data
    data = load_data(args.dataset, args.data_dir, args.preset_config, seed=args.seed)
    config = cfg.train_config(CIFAR_TRAINING[args.preset], args)

    # ---- each net: train or reuse, js.random_plane, js.evaluate_plane / evaluate_line
    # on every --surface-split, figures, js.hessian and js.sharpness (resnet56.measure)
    reports = []
    for variant in args.variants:
        model_name, build = NETWORKS[args.preset][variant]
        note = "" if args.preset != "smoke" else "smoke-test stand-in"
        report, _ = measure(variant, model_name, build(data.num_classes), note, config,
                            data, args, out)
        reports.append(report)

    # ---- the two planes side by side on one colour scale; results.json, the table
    comparisons = {}
    planes = rep.comparable(reports, out, EXPERIMENT, args, VARIANTS)
    if len(planes) > 1:
        comparisons["final"] = rep.compare_planes(
            out, "compare_final", planes,
            f"DenseNet-BC vs ResNet of similar size, {data.label()}, final epoch: loss")
    return rep.finish(out, EXPERIMENT, args, cfg.command_line("experiments.densenet", argv),
                      reports, comparisons)


if __name__ == "__main__":
    raise SystemExit(run_command(main))
