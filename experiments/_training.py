"""Training one network of an experiment, once: :func:`train_or_reuse` (a finished
run in the folder is reused when its settings match, and stops the experiment
with a clear message when they do not), :func:`restore_epoch` (the variables
after an earlier epoch) and :func:`plot_curves`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

from experiments._data import Data
from experiments._report import jsonable, write_json
import jaxsurf as js
from jaxsurf import train


def training_settings(model_name: str, model: Any, config: train.TrainConfig, data: Data
                      ) -> dict[str, Any]:
    """What decides a training run: the model, its settings and the data it sees."""
    return jsonable({"model": model_name, "module": repr(model),
                     "config": dataclasses.asdict(config),
                     "data": data.name, "synthetic": data.synthetic,
                     "train_examples": int(len(data.splits["train"]["y"])),
                     "val_examples": int(len(data.splits["val"]["y"]))})


def check_same_training(folder: Path, settings: Mapping[str, Any]) -> None:
    """Stops (``SystemExit``) when ``folder`` holds a training run made with other
    ``settings``; else records them in ``folder/run.json``.

    Example:
        >>> check_same_training(out / "skip", training_settings(name, model, config, data))
    """
    marker = folder / "run.json"
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved != settings:
            diff = sorted(k for k in set(saved) | set(settings)
                          if saved.get(k) != settings.get(k))
            raise SystemExit(f"error: {folder} holds a training run with other settings "
                             f"(different: {', '.join(diff)}); use another --out or delete it")
    folder.mkdir(parents=True, exist_ok=True)
    write_json(marker, settings)


def train_or_reuse(model_name: str, model: Any, config: train.TrainConfig, data: Data,
                   folder: Path) -> train.TrainResult:
    """Trains ``model`` in ``folder/train`` (``train.fit`` resumes an interrupted run
    and returns a finished one without training again) after
    :func:`check_same_training`."""
    check_same_training(folder, training_settings(model_name, model, config, data))
    splits = {s: data.splits[s] for s in ("train", "val")}
    return train.fit(model, splits, config, out_dir=folder / "train")

def restore_epoch(train_dir: Path, epoch: int, like: Mapping[str, Any]) -> dict[str, Any]:
    """The model variables (params and BatchNorm statistics) saved after ``epoch``.

    Args:
        train_dir: the ``out_dir`` given to :func:`jaxsurf.train.fit`.
        epoch: a recorded epoch (0 is the initialisation).
        like: variables of the same model (gives the params' structure).
    """
    from jaxsurf.trajectory import TrajectoryRecorder

    with TrajectoryRecorder(Path(train_dir) / "trajectory") as recorder:
        params, state = recorder.restore(epoch, params_like=like["params"])
    # train.fit saves state={"batch_stats": <the non-params collections>, ...}
    saved = dict((state or {}).get("batch_stats") or {})
    variables = {"params": params}
    for collection, reference in like.items():
        if collection == "params":
            continue
        if collection not in saved:
            raise ValueError(f"epoch {epoch} in {train_dir} has no {collection!r} variables")
        variables[collection] = jax.tree_util.tree_map(
            lambda ref, x: np.asarray(x, np.asarray(ref).dtype), reference,
            dict(saved[collection]))
    return variables

def plot_curves(history: list[dict[str, float]], out: Path, title: str,
                regression: bool, loss: str) -> None:
    """Training curves (``js.plot.training_curves``): accuracy and loss for
    classifiers, the loss alone for regression."""
    js.plot.training_curves(history, out, title, regression=regression, loss=loss)
