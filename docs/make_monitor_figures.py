"""Renders docs/figures/monitor_skip.gif and monitor_noskip.gif: the loss plane through
the weights of a ResNet-14 with and without shortcuts, recorded by js.Monitor while
each trains on Fashion-MNIST (fixed filter-normalized directions), and the numbers
behind them in docs/figures/monitor_numbers.json.

    python docs/make_monitor_figures.py

ResNet-14 (depth 6n+2 with n = 2, width 8), skip and no-skip with the same seed,
3 epochs of Nesterov SGD (batch 64) on 2,048 training images; a frame every 12 steps
(9 frames: step 0 and 8 more over the 96 steps), a 9 x 9 plane on [-1, 1]^2
averaged over 256 validation images, and the top Hessian eigenvalue (6 Lanczos
iterations) at each frame.
Both GIFs share one colour scale (the range over both runs), so a colour means the
same loss in each.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import jaxsurf as js  # noqa: E402
from experiments.data import fashion_mnist  # noqa: E402
from jaxsurf import models, train  # noqa: E402

FIGURES = Path(__file__).parent / "figures"
RUN = Path("runs/monitor_figures")
EVERY, GRID, EXAMPLES = 12, 9, 256


def main() -> None:
    data = fashion_mnist(train_limit=2_048)
    held = {k: v[:EXAMPLES] for k, v in data["val"].items()}
    config = train.TrainConfig(epochs=3, batch_size=64, optimizer="nesterov",
                               learning_rate=0.05, weight_decay=5e-4, schedule="cosine", seed=0)
    records, numbers = {}, {}
    for variant in ("skip", "noskip"):
        model = models.ResNetCIFAR(depth=14, width=8, skip=variant == "skip", num_classes=10)
        folder = RUN / variant
        shutil.rmtree(folder, ignore_errors=True)  # a fresh run: every step is recorded
        monitor = js.Monitor(js.flax.linen_metrics_fn(model), held, out=folder / "monitor",
                             every=EVERY, kind="plane", grid=np.linspace(-1, 1, GRID), key=0,
                             measure=("loss", "accuracy"),
                             curvature={"top_eigenvalue": {"num_iterations": 6,
                                                           "tol": None}},
                             batch_size=EXAMPLES)
        train.fit(model, {"train": data["train"]}, config, out_dir=folder / "train",
                  monitor=monitor, log=None, progress=False)
        records[variant] = js.Monitor.load(folder / "monitor")
        series = js.Monitor.load_curvature(folder / "monitor")
        numbers[variant] = {
            "steps": series["step"].tolist(),
            "top_eigenvalue": series["top_eigenvalue"].tolist(),
            "loss_at_origin": [float(s.metrics["loss"][GRID // 2, GRID // 2])
                               for s in records[variant].values()],
            "plane_max_loss": [float(np.nanmax(s.metrics["loss"]))
                               for s in records[variant].values()]}
    values = np.concatenate([s.metrics["loss"].ravel() for frames in records.values()
                             for s in frames.values()])
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    for variant, frames in records.items():
        path = js.plot.animate(frames, out=FIGURES / f"monitor_{variant}.gif", fps=3, log=True,
                               vmin=low, vmax=high, figsize=(4.8, 3.9), dpi=80,
                               title=f"ResNet-14 {'with' if variant == 'skip' else 'without'}"
                                     f" skips")
        print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, {len(frames)} frames)")
    (FIGURES / "monitor_numbers.json").write_text(json.dumps(
        {"every": EVERY, "grid": GRID, "examples": EXAMPLES, "shared_range": [low, high],
         **numbers}, indent=1))


if __name__ == "__main__":
    main()
