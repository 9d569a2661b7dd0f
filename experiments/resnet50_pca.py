"""ResNet-50 with and without skips: the PCA plane of the training path, and a random plane.

Li et al. (2018, Sec. 7) draw the loss in the plane of the first two principal
components of the checkpoints saved during training, with the path projected
onto it; the seed did this for ResNet-50 with and without shortcuts. Per
variant this trains the net (one orbax checkpoint per epoch, epoch 0 = the
initialisation), computes the PCA directions of the trajectory
(``ignore="biasbn"``), projects the path (least squares), evaluates the loss on
a grid that covers the path, draws it with the path, and also draws the usual
filter-normalized random plane, with curvature and sharpness numbers.

On a CPU the smoke and quick presets use small inputs: Fashion-MNIST's 28x28
gray images (the ImageNet stem takes them to 7x7 before the first stage) and a
few thousand examples; smoke uses an 8-layer, two-stage bottleneck stand-in of
width 4.
The full preset is He et al.'s ResNet-50 schedule for a GPU; pass
``--dataset imagenet --data-dir DIR`` for ImageNet through tensorflow-datasets
(the loader's default subsets, see ``jaxsurf.data.tfds_loader``).

    python -m experiments.resnet50_pca --preset quick --out runs/resnet50_pca
    python -m experiments.resnet50_pca --preset quick --noskip --out runs/resnet50_pca

Presets: smoke (CI), quick (ResNet-50 on 3,000 Fashion-MNIST images, 4 epochs,
11x11 planes over 300 images; measured 15 min skip, 14 min noskip on 2 CPU cores),
full (whole training set, 90 epochs, 51x51 planes; for a GPU).
"""

from __future__ import annotations

import dataclasses
import argparse
from typing import Any, Sequence

import numpy as np

import jaxsurf as js
from experiments import config as cfg
from experiments import report as rep
from experiments.config import FULL, QUICK, SMOKE
from experiments.data import load_data
from experiments.resnet56 import measure
from jaxsurf import models, train
from jaxsurf.interrupt import run_command

# ----------------------------------------------------------------- config
EXPERIMENT = "resnet50_pca"
VARIANTS = ("skip", "noskip")
PRESETS = {
    "smoke": dataclasses.replace(SMOKE, epochs=2),
    "quick": dataclasses.replace(QUICK, train_examples=3_000, val_examples=1_000,
                                 test_examples=1_000, epochs=4, grid=11, line_points=21,
                                 surface_examples=300, analysis_examples=64,
                                 lanczos_iterations=6, hutchinson_samples=4,
                                 eval_batch_size=300),
    "full": dataclasses.replace(FULL, epochs=90, analysis_examples=2_000,
                                lanczos_iterations=40, hutchinson_samples=50,
                                eval_batch_size=500),
}
# bottleneck stages per preset: smoke trains a two-stage (1, 1) stand-in of width 4
ARCHITECTURE = {"smoke": {"stages": (1, 1), "width": 4},
                "quick": {"stages": (3, 4, 6, 3), "width": 64},
                "full": {"stages": (3, 4, 6, 3), "width": 64}}
TRAINING = {
    "smoke": train.TrainConfig(batch_size=64, optimizer="nesterov", learning_rate=0.05,
                               weight_decay=1e-4, schedule="cosine"),
    "quick": train.TrainConfig(batch_size=100, optimizer="adam", learning_rate=1e-3,
                               weight_decay=1e-4, schedule="cosine", eval_batch_size=500),
    # He et al. 2016: SGD, momentum 0.9, batch 256, lr 0.1 / 10 every 30 epochs, wd 1e-4
    "full": train.TrainConfig(batch_size=256, optimizer="sgd", learning_rate=0.1,
                              momentum=0.9, weight_decay=1e-4, schedule="piecewise",
                              milestones=(1 / 3, 2 / 3), decay=0.1, augment=True, flip=True,
                              eval_batch_size=500),
}
PCA_MARGIN = 0.25      # the PCA grid spans the projected path plus this fraction each side


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--noskip", action="store_true",
                            help="run only the net without shortcuts (= --variants noskip)")

    args = cfg.parse_args(__doc__ or "", PRESETS, argv, variants=VARIANTS,
                          datasets=("fashion_mnist", "cifar10", "imagenet"),
                          add_arguments=add_arguments,
                          min_epochs=2)  # epochs 0..2: the two PCs of a path of 3 points
    if args.noskip:
        args.variants = ["noskip"]
    out = cfg.output_dir(args, EXPERIMENT)
    preset = args.preset_config

    # ---- data
    data = load_data(args.dataset, args.data_dir, preset, seed=args.seed)
    arch = ARCHITECTURE[args.preset]
    config = cfg.train_config(TRAINING[args.preset], args)
    layers = 2 + 3 * sum(arch["stages"])
    name = f"ResNet-{layers}"
    if arch["width"] != 64:
        name += f" (bottleneck, width {arch['width']})"
    note = "" if layers == 50 else "smoke-test stand-in for ResNet-50"
    if args.dataset != "imagenet":
        note = (note + "; " if note else "") + f"small {args.dataset} inputs, ImageNet stem"

    reports = []
    for variant in args.variants:
        # ---- train or reuse, js.random_plane, js.evaluate_plane / evaluate_line on
        # every --surface-split, figures, js.hessian and js.sharpness (resnet56.measure)
        model = models.ResNetImageNet(stages=arch["stages"], width=arch["width"],
                                      skip=variant == "skip", num_classes=data.num_classes)
        report, trained = measure(variant, name, model, note, config, data, args, out)
        fn, params = js.flax.adapt(model, trained.variables, loss=config.loss)
        title = f"{name} {variant}, {data.label()}"

        # ---- the PCA directions of the training path (one checkpoint per epoch,
        # epoch 0 = the initialisation) and the path projected onto them
        trajectory = report.file("train") / "trajectory"
        (d1, d2), ratio = js.pca_directions(trajectory, ignore="biasbn", params_like=params)
        coords = js.project(trajectory, params, [d1, d2], params_like=params)
        ratio = [float(r) for r in ratio]

        # ---- the loss on a grid around the final params that covers the path
        lo, hi = coords.min(axis=0), coords.max(axis=0)
        pad = PCA_MARGIN * np.maximum(hi - lo, 1e-3)
        alphas = np.linspace(lo[0] - pad[0], hi[0] + pad[0], preset.grid)
        betas = np.linspace(lo[1] - pad[1], hi[1] + pad[1], preset.grid)
        meta = report.metadata("pca", (d1, d2), data, args.seed, len(trained.history),
                               directions_kind="pca of the trajectory (ignore=biasbn)",
                               explained_variance_ratio=ratio)
        plane = rep.stored(report.file("plane_pca.store"), lambda store: js.evaluate_plane(
            fn, params, d1, d2, data.subset(preset.surface_examples), alphas, betas,
            batch_size=preset.eval_batch_size, metadata=meta, store=store))
        report.add("pca", plane)

        # ---- the plane with the path drawn on it
        epochs = list(range(len(coords)))       # train.fit records epochs 0 (init) .. N
        report.figure("pca_path", lambda p: js.plot.pca_path(
            plane, coords, explained_variance_ratio=ratio, epochs=epochs, out=p,
            log=rep.wide_range(plane), title=f"{title}: loss in the PCA plane, training path"))
        report.result["pca"] = {"explained_variance_ratio": ratio,
                                "path_coordinates": coords.tolist(), "epochs": epochs,
                                "margin": PCA_MARGIN}
        reports.append(report)

    # ---- the variants side by side (random and PCA planes); results.json, the table
    comparisons = {}
    for tag, what, labels in (
            ("final", "random filter-normalized plane", None),
            ("pca", "PCA plane", ("PC1 of the variant's own path", "PC2 of its path"))):
        planes = rep.comparable(reports, out, EXPERIMENT, args, VARIANTS, tag)
        if len(planes) > 1:
            comparisons[tag] = rep.compare_planes(
                out, f"compare_{tag}", planes,
                f"{name} with and without skips, {data.label()}: loss, {what}", labels)
    return rep.finish(out, EXPERIMENT, args,
                      cfg.command_line("experiments.resnet50_pca", argv), reports, comparisons)


if __name__ == "__main__":
    raise SystemExit(run_command(main))
