"""ResNet-110 with and without skip connections (and, with --loss mse, the seed's
"bad loss" run): loss surfaces, curvature, sharpness.

The ``experiments.resnet56`` experiment at depth 110 (its presets and
nets for this depth are defined there): Li et al.
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

from experiments import resnet56
from jaxsurf.interrupt import run_command


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return resnet56.main(argv, depth=110, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(run_command(main))
