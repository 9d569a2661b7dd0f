"""Copies the quick-preset experiment figures into docs/figures and prints the
numbers behind docs/experiments.md as markdown tables.

Run the experiments first (each reuses what its --out already holds):

    python -m experiments.resnet56 --preset quick --out runs/exp_resnet56_quick
    python -m experiments.densenet --preset quick --out runs/exp_densenet_quick
    python -m experiments.taaf --preset quick --out runs/exp_taaf_quick
    python -m experiments.resnet110 --preset quick --out runs/exp_resnet110_quick
    python -m experiments.resnet50_pca --preset quick --out runs/exp_resnet50_pca_quick
    python -m experiments.resnet110 --preset quick --loss mse --variants skip --out DIR
        (DIR = runs/exp_resnet110_mse_quick)
    python docs/make_experiment_figures.py

Writes ``docs/figures/exp_<experiment>_*.png`` and
``docs/figures/experiment_numbers.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

DOCS = Path(__file__).parent
EXPERIMENTS = ("resnet56", "resnet110", "resnet110_mse", "densenet", "taaf", "resnet50_pca")
def copy_figures(experiment: str, run_dir: Path) -> list[str]:
    """Every comparison figure (``compare_<tag>.png``) and every variant's figures,
    renamed ``exp_<experiment>_compare[_<tag>].png`` and
    ``exp_<experiment>_<variant>_<figure>.png`` for docs/figures."""
    copied = []
    sources = [(path, f"exp_{experiment}_{path.stem.replace('_final', '')}.png")
               for path in sorted(run_dir.glob("compare_*.png"))]
    results = json.loads((run_dir / "results.json").read_text())
    for variant in results["variants"]:
        sources += [(path, f"exp_{experiment}_{variant}_{path.stem}.png")
                    for path in sorted((run_dir / variant).glob("*.png"))]
    for source, name in sources:
        shutil.copyfile(source, DOCS / "figures" / name)
        copied.append(name)
    return copied


def summary(run_dir: Path) -> dict:
    """The numbers the report quotes, per variant."""
    results = json.loads((run_dir / "results.json").read_text())
    out = {"command": results["command"], "preset_config": results["preset_config"],
           "variants": {}}
    keys = ("model", "num_params", "epochs", "best_epoch", "train_loss", "val_loss",
            "val_accuracy", "test_accuracy", "val_mae", "test_mae", "surface_stats",
            "curvature", "sharpness", "seconds", "train_config", "pca")
    for name, variant in results["variants"].items():
        out["variants"][name] = {k: variant[k] for k in keys if k in variant}
        out["variants"][name]["dataset"] = variant["dataset"]
    return out


def table(experiment: str, numbers: dict) -> str:
    """One markdown row per variant."""
    rows = ["| variant | params | val | test | loss at centre | r=0.25 | r=0.5 | r=1 | "
            "share < 2x min | lambda_max | SAM rho=0.05 | avg sigma=0.05abs(w) | minutes |",
            "| --- " * 13 + "|"]
    for name, v in numbers["variants"].items():
        stats = v["surface_stats"]["final"]
        radius = stats["mean_at_radius"]
        if "val_accuracy" in v:
            val, test = f"{100 * v['val_accuracy']:.1f} %", f"{100 * v['test_accuracy']:.1f} %"
        else:
            val, test = f"MAE {v['val_mae']:.3f}", f"MAE {v['test_mae']:.3f}"
        minutes = sum(s for s in v["seconds"].values() if s) / 60
        rows.append(f"| {v['model']}: {name} | {v['num_params']:,} | {val} | {test} | "
                    f"{stats['at_origin']:.3g} | {radius['0.25']:.3g} | {radius['0.5']:.3g} | "
                    f"{radius['1.0']:.3g} | {stats['fraction_below_2x_min']:.3f} | "
                    f"{v['curvature']['lambda_max']:.3g} | "
                    f"{v['sharpness']['sam_rho_0.05']:.3g} | "
                    f"{v['sharpness']['average_weight_scaled_sigma_0.05']:.3g} | {minutes:.1f} |")
    return f"{experiment}\n" + "\n".join(rows)


def loss_choice_figure(runs: Path) -> str | None:
    """The seed's loss question: the training-accuracy planes of ResNet-110 trained
    with cross-entropy and with MSE, side by side on one colour scale (accuracy
    is the one metric both planes share in the same units)."""
    import jaxsurf as js

    files = {"cross-entropy": runs / "exp_resnet110_quick" / "skip" / "plane_final.npz",
             "MSE on one-hot": runs / "exp_resnet110_mse_quick" / "skip" / "plane_final.npz"}
    if not all(f.exists() for f in files.values()):
        return None
    name = "exp_resnet110_loss_choice_accuracy.png"
    js.plot.compare({f"ResNet-110 trained with {k}": js.Surface.load(f)
                     for k, f in files.items()}, metric="accuracy", kind="filled",
                    levels=np.linspace(0.0, 1.0, 11).tolist(),
                    title="Training accuracy on the random plane: the loss choice",
                    out=DOCS / "figures" / name)
    return name


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args(argv)
    numbers = {}
    for experiment in EXPERIMENTS:
        run_dir = Path(args.runs) / f"exp_{experiment}_quick"
        if not (run_dir / "results.json").exists():
            print(f"skipping {experiment}: no {run_dir}/results.json (run the experiment first)")
            continue
        copied = copy_figures(experiment, run_dir)
        numbers[experiment] = summary(run_dir)
        print(f"{experiment}: copied {len(copied)} figures")
        print(table(experiment, numbers[experiment]))
    figure = loss_choice_figure(Path(args.runs))
    if figure:
        print(f"wrote {figure}")
    (DOCS / "figures" / "experiment_numbers.json").write_text(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
