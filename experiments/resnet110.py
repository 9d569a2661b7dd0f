"""ResNet-110 with and without skip connections (and, with --loss mse, the seed's
"bad loss" run): loss surfaces, curvature, sharpness.

The same experiment as ``experiments.resnet56`` one depth further: Li et al.
(2018) report that the no-skip surface gets more chaotic with depth (CIFAR-10
test error without shortcuts: ResNet-56 13.31 %, ResNet-110 16.44 %). The seed
also trained ResNet-110 with a mean-squared-error loss on one-hot targets;
``--loss mse`` reproduces that run.

    python -m experiments.resnet110 --preset quick --out runs/resnet110
    python -m experiments.resnet110 --preset quick --loss mse --out runs/resnet110_mse
    python -m experiments.resnet110 --preset quick --noskip --out runs/resnet110

Presets: smoke (CI: a ResNet-8 stand-in of width 4, 256 images, 5x5 grid),
quick (the real ResNet-110 on 6,000 Fashion-MNIST images, 3 epochs, 13x13 grid
over 400 images; measured on 2 shared CPU cores: 12 min skip, 9 min noskip, 13 min
skip with --loss mse), full (Li et al.'s settings as in resnet56, for a
GPU).
"""

from __future__ import annotations

from typing import Any, Sequence

from experiments import runner
from experiments.resnet56 import TRAINING, run_skip_experiment
from jaxsurf.interrupt import run_command

# ----------------------------------------------------------------- config
EXPERIMENT = "resnet110"
DEPTH = 110
PRESETS = {
    "smoke": runner.Preset(train_examples=256, val_examples=128, test_examples=0, epochs=1,
                           grid=5, range=1.0, line_points=7, surface_examples=128,
                           analysis_examples=64, lanczos_iterations=4, hutchinson_samples=2,
                           sharpness_samples=2, eval_batch_size=128, synthetic_fallback=True),
    "quick": runner.Preset(train_examples=6_000, val_examples=1_000, test_examples=1_000,
                           epochs=3, grid=13, range=1.0, line_points=25, surface_examples=400,
                           analysis_examples=64, lanczos_iterations=8, hutchinson_samples=6,
                           sharpness_samples=4, eval_batch_size=400),
    "full": runner.Preset(train_examples=None, val_examples=None, test_examples=None,
                          epochs=300, grid=51, range=1.0, line_points=51,
                          surface_examples=10**9, analysis_examples=5_000,
                          lanczos_iterations=50, hutchinson_samples=100, sharpness_samples=20,
                          eval_batch_size=1000),
}
ARCHITECTURE = {"smoke": {"depth": 8, "width": 4}, "quick": {"depth": DEPTH, "width": 16},
                "full": {"depth": DEPTH, "width": 16}}
# the training settings of resnet56 (Li et al. train every depth the same way)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run_skip_experiment(EXPERIMENT, DEPTH, __doc__, PRESETS, ARCHITECTURE, TRAINING, argv)


if __name__ == "__main__":
    raise SystemExit(run_command(main))
