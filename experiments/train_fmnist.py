"""Train one of jaxsurf's models on Fashion-MNIST and report test accuracy.

    python -m experiments.train_fmnist --model resnet20 --epochs 4 --out runs/resnet20
    python -m experiments.train_fmnist --model resnet56 --noskip --epochs 2 --train-examples 10000

Writes the orbax trajectory, ``log.jsonl``, ``training_curves.png`` and
``results.json`` (test loss/accuracy, wall time) to ``--out``; rerunning
resumes an interrupted run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jaxsurf as js
from experiments.data import fashion_mnist
from experiments.report import save_text
from jaxsurf import models, train
from jaxsurf.interrupt import run_command

# ----------------------------------------------------------------- config
CONFIG = train.TrainConfig(epochs=4, batch_size=128, optimizer="nesterov", learning_rate=0.1,
                           momentum=0.9, weight_decay=5e-4, schedule="cosine",
                           loss="cross_entropy", augment=False, flip=True, seed=0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", default="resnet20", help=f"one of {models.available()}")
    parser.add_argument("--noskip", action="store_true", help="remove every shortcut")
    parser.add_argument("--epochs", type=int, default=CONFIG.epochs)
    parser.add_argument("--lr", type=float, default=CONFIG.learning_rate)
    parser.add_argument("--loss", default=CONFIG.loss, choices=["cross_entropy", "mse"])
    parser.add_argument("--augment", action="store_true", help="random crops and flips")
    parser.add_argument("--train-examples", type=int, default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=CONFIG.seed)
    parser.add_argument("--out", default=None,
                        help="output directory (default: runs/<model>[_noshort]_fmnist)")
    args = parser.parse_args(argv)
    name = args.model + ("_noshort" if args.noskip else "")
    out = Path(args.out or f"runs/{name}_fmnist")
    print(f"output: {out}", flush=True)
    data = fashion_mnist(args.data_dir, args.train_examples)
    model = models.build(name, num_classes=10)
    config = train.TrainConfig(**{**CONFIG.__dict__, "epochs": args.epochs,
                                  "learning_rate": args.lr, "loss": args.loss,
                                  "augment": args.augment,
                                  "seed": args.seed})
    result = train.fit(model, data, config, out_dir=out)
    js.plot.training_history(result.history, out=out / "training_curves.png",
                       title=f"{name} on Fashion-MNIST")
    test = js.dataset_mean(js.flax.linen_metrics_fn(model, loss=args.loss), data["test"],
                           batch_size=1000)(result.variables)
    results = {"model": name, "num_params": models.num_params(result.variables),
               "train_examples": len(data["train"]["y"]), "epochs": args.epochs,
               "config": config.__dict__, "test_loss": test["loss"],
               "test_accuracy": test["accuracy"], "best_epoch": result.best_epoch,
               "train_seconds_this_run": result.seconds,
               "train_seconds_total": sum(h["seconds"] for h in result.history),
               "history": result.history}
    save_text(out / "results.json", json.dumps(results, indent=1, default=str))
    print(f"{name}: test accuracy {100 * test['accuracy']:.2f} % after {args.epochs} epochs, "
          f"{results['train_seconds_total']:.0f} s of training")
    return results


if __name__ == "__main__":
    raise SystemExit(run_command(main))
