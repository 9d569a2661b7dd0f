"""Renders docs/figures/pca_path.png: the loss in the plane of the first two
principal components of a ResNet-8's training trajectory on Fashion-MNIST, with
the optimizer's path projected onto it (Li et al. 2018, Sec. 7).

    python docs/make_pca_figure.py

ResNet-8 (depth 6n+2 with n = 1), 10 epochs of SGD with momentum on 10,000
training images, one orbax checkpoint per epoch; the surface is averaged over
1,000 training images on a 15x15 grid that covers the path, with log-spaced levels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import jaxsurf as js  # noqa: E402
from experiments.data import fashion_mnist  # noqa: E402
from jaxsurf import models, train  # noqa: E402

FIGURES = Path(__file__).parent / "figures"
RUN = Path("runs/resnet8_pca")


def main() -> None:
    data = fashion_mnist(train_limit=10_000)
    model = models.ResNetCIFAR(depth=8, num_classes=10)
    config = train.TrainConfig(epochs=10, batch_size=128, optimizer="nesterov",
                               learning_rate=0.05, weight_decay=5e-4, schedule="cosine", seed=0)
    result = train.fit(model, data, config, out_dir=RUN)
    fn, params = js.flax.adapt(model, result.variables)
    trajectory = RUN / "trajectory"
    directions, ratio = js.pca_directions(trajectory, k=2, ignore="biasbn", params_like=params)
    coords = js.project(trajectory, params, directions, params_like=params)
    steps = [step for step, _ in js.load_trajectory(trajectory, params_like=params)]
    low, high = coords.min(axis=0), coords.max(axis=0)
    margin = 0.25 * (high - low)
    alphas = np.linspace(low[0] - margin[0], high[0] + margin[0], 15)
    betas = np.linspace(low[1] - margin[1], high[1] + margin[1], 15)
    subset = {k: v[:1000] for k, v in data["train"].items()}
    store = RUN / f"pca_plane-{js.tree.fingerprint((alphas, betas))[:8]}.store"
    plane = js.evaluate_plane(fn, params, directions[0], directions[1], subset, alphas, betas,
                              batch_size=500, store=store,
                              metadata={"directions_made_by": "pca of the trajectory",
                                        "explained_variance_ratio": ratio.tolist()})
    js.plot.pca_path(plane, coords, explained_variance_ratio=ratio, epochs=steps,
                     title="ResNet-8 on Fashion-MNIST: PCA plane of the training path",
                     log=True, aspect="auto", out=FIGURES / "pca_path.png")
    numbers = {"explained_variance_ratio": ratio.tolist(), "coords": coords.tolist(),
               "val_accuracy": result.history[-1]["val_accuracy"],
               "num_params": models.num_params(params)}
    (FIGURES / "pca_numbers.json").write_text(json.dumps(numbers, indent=1))
    print(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
