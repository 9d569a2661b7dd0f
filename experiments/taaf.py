"""Plain vs TAAF dense nets for gene-expression inference (D-GEX): surfaces and curvature.

The seed's regression case: dense nets of 3 hidden tanh layers (942 landmark
genes in, 4,760 target genes out, D-GEX) with plain activations or with
transformative adaptive activation functions (TAAF, ``alpha f(beta y + gamma) +
delta`` per neuron; Kunc & Klema 2021), trained with the MAE loss. Draws the
filter-normalized random line and plane of both at the final epoch, side by side
on one colour scale, with lambda_max, the Hessian trace and sharpness.

Data: the D-GEX ``.npy`` files when --data-dir is given; otherwise the SYNTHETIC
stand-in of ``jaxsurf.data.synthetic_gene_expression`` (same shapes), and every
output, figure title and results.json entry says so.

Directions: as in Li et al., leaves of ndim <= 1 get a zero direction
(``ignore="biasbn"``), so the planes move the Dense weights only; biases and
the TAAF parameters (alpha, beta, gamma, delta) stay at their trained values.

    python -m experiments.taaf --preset quick --out runs/taaf
    python -m experiments.taaf --preset full --width 9000 --data-dir ~/dgex --out runs/taaf9000

Presets: smoke (CI: width 32, 256 synthetic samples, 5x5 grid), quick (width
6,000 as in the paper, the 4,000-sample synthetic set, 8 epochs, 15x15 grid over
1,000 samples; ~11 min and 11 GB of memory per variant on 2 CPU cores, and
0.9 GB of disk per recorded epoch), full (width 6,000 or 9,000, the whole data
set, 200 epochs, 51x51 on [-1, 1]^2 over the training set; for a GPU).
"""

from __future__ import annotations

import dataclasses
import argparse
from typing import Any, Sequence

from experiments import config as cfg
from experiments import report as rep
from experiments.config import FULL, QUICK, SMOKE
from experiments.data import load_data
from experiments.resnet56 import measure
from jaxsurf import models, train
from jaxsurf.interrupt import run_command

# ----------------------------------------------------------------- config
EXPERIMENT = "taaf"
VARIANTS = ("plain", "taaf")
HIDDEN_LAYERS = 3
PRESETS = {  # regression on generated or D-GEX data: no image stand-in needed
    "smoke": dataclasses.replace(SMOKE, val_examples=64, synthetic_fallback=False),
    "quick": dataclasses.replace(QUICK, train_examples=4_000, val_examples=1_000,
                                 test_examples=1_000, epochs=8, surface_examples=1_000,
                                 lanczos_iterations=8, hutchinson_samples=6,
                                 eval_batch_size=250),
    "full": dataclasses.replace(FULL, epochs=200, analysis_examples=2_000,
                                lanczos_iterations=40, hutchinson_samples=50),
}
WIDTH = {"smoke": 32, "quick": 6000, "full": 6000}    # --width overrides (paper: 6000, 9000)
DROPOUT = 0.1
TRAINING = {
    "smoke": train.TrainConfig(batch_size=64, optimizer="adam", learning_rate=1e-3,
                               weight_decay=0.0, schedule="cosine", loss="mae"),
    "quick": train.TrainConfig(batch_size=100, optimizer="adam", learning_rate=3e-4,
                               weight_decay=0.0, schedule="cosine", loss="mae",
                               eval_batch_size=250),
    "full": train.TrainConfig(batch_size=200, optimizer="adam", learning_rate=3e-4,
                              weight_decay=0.0, schedule="cosine", loss="mae",
                              eval_batch_size=1000),
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--width", type=_positive_int, default=None,
                            help="units per hidden layer (paper: 6000 or 9000; default: preset)")

    args = cfg.parse_args(__doc__ or "", PRESETS, argv, datasets=("gene_expression",),
                          losses=("mae", "mse"), variants=VARIANTS, add_arguments=add_arguments)
    out = cfg.output_dir(args, EXPERIMENT, width=args.width)

    # ---- data: D-GEX from --data-dir, else the SYNTHETIC stand-in (flagged everywhere)
    data = load_data("gene_expression", args.data_dir, args.preset_config, seed=args.seed)
    width = WIDTH[args.preset] if args.width is None else args.width
    config = cfg.train_config(TRAINING[args.preset], args)
    outputs = data.splits["train"]["y"].shape[1]

    # ---- each net: train or reuse, js.random_plane, js.evaluate_plane / evaluate_line
    # on every --surface-split, figures, js.hessian and js.sharpness (resnet56.measure)
    reports = []
    for variant in args.variants:
        taaf = variant == "taaf"
        model = models.DenseRegressor(hidden=HIDDEN_LAYERS, width=width, outputs=outputs,
                                      dropout=DROPOUT, activation="tanh", taaf=taaf)
        name = f"Dense {HIDDEN_LAYERS}x{width} " + ("TAAF(tanh)" if taaf else "tanh")
        note = "" if width in (6000, 9000) else f"width {width} instead of the paper's 6000/9000"
        report, _ = measure(variant, name, model, note, config, data, args, out)
        reports.append(report)

    # ---- the two planes side by side on one colour scale; results.json, the table
    comparisons = {}
    planes = rep.comparable(reports, out, EXPERIMENT, args, VARIANTS)
    if len(planes) > 1:
        comparisons["final"] = rep.compare_planes(
            out, "compare_final", planes,
            f"plain vs TAAF, {data.label()}, final epoch: {args.loss} loss")
    return rep.finish(out, EXPERIMENT, args, cfg.command_line("experiments.taaf", argv),
                      reports, comparisons, extra={"width": width})


if __name__ == "__main__":
    raise SystemExit(run_command(main))
