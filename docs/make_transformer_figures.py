"""Copies the transformer experiment's quick-preset figures into docs/figures and
writes the numbers docs/experiments.md quotes (section 6) to
``docs/figures/transformer_numbers.json``.

Run the experiment first (a rerun reuses what its --out holds; ``--shards 2``
adds the sharded comparison):

    python -m experiments.transformer --preset quick --out runs/exp_transformer_quick
    python -m experiments.transformer --preset quick --out runs/exp_transformer_quick --shards 2
    python docs/make_transformer_figures.py
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

DOCS = Path(__file__).parent
FIGURES = ("training_curves", "contour_final", "surface3d_final", "line_final", "splits_final",
           "gap_final_val", "pca_path_pca", "pca_path_pca_val", "interpolation")
KEYS = ("model", "num_params", "epochs", "train_loss", "val_loss", "train_accuracy",
        "val_accuracy", "train_perplexity", "val_perplexity", "surface_stats", "split_gap",
        "curvature", "interpolation", "pca", "seconds", "train_config", "dataset",
        "seconds_this_run")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", default="runs/exp_transformer_quick")
    args = parser.parse_args(argv)
    run = Path(args.run)
    results = json.loads((run / "results.json").read_text())
    lm = results["variants"]["lm"]
    for name in FIGURES:
        if name in lm["figures"]:
            shutil.copyfile(run / lm["figures"][name],
                            DOCS / "figures" / f"exp_transformer_{name}.png")
    numbers = {"command": results["command"], "preset_config": results["preset_config"],
               "lm": {k: lm[k] for k in KEYS if k in lm}}
    if "sharded" in results:
        numbers["sharded"] = results["sharded"]
    (DOCS / "figures" / "transformer_numbers.json").write_text(json.dumps(numbers, indent=1))
    print(json.dumps({k: numbers["lm"].get(k) for k in ("train_loss", "val_loss",
                                                        "val_perplexity")}, indent=1))


if __name__ == "__main__":
    main()
