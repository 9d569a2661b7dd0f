"""Shared machinery of the seed's experiments (``experiments/resnet56.py`` etc.).

An experiment file holds its configuration (presets, models, training
settings) and calls these helpers in order::

    args = runner.parse_args(__doc__, PRESETS, argv, ...)   # CLI, --preset, overrides
    data = runner.load_data(args.dataset, args.data_dir, args.preset_config, seed=args.seed)
    config = runner.train_config(TRAINING[args.preset], args)
    run = runner.run_variant(runner.Variant(...), data, args, out)  # train, surfaces,
    ...                                                             # curvature, figures
    planes = runner.comparable([run, ...], out, "resnet56", args, VARIANTS)
    runner.finish(out, "resnet56", args, command, [run, ...],
                  {"final": runner.compare_planes(out, "compare_final", planes, title)})

Everything a run produces goes under ``--out``: one folder per variant with
the training run (orbax trajectory, ``log.jsonl``), the ``js.Surface`` files,
the figures and small JSON caches, and ``results.json`` at the top. Paths in
``results.json`` are relative to ``--out``. A second run with the same
settings reuses finished training, surfaces and curvature numbers; a run
whose training settings differ from the ones in ``--out`` stops and says so
instead of mixing results.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

import jaxsurf as js
from experiments.common import fashion_mnist, reuse_or_compute
from jaxsurf import models, train

__all__ = ["Preset", "Variant", "Data", "VariantRun", "parse_args", "output_dir", "load_data",
           "train_config", "command_line", "run_variant", "train_variant", "random_plane",
           "restore_epoch", "plane_and_line", "surface_stats", "curvature", "sharpness",
           "variant_figures", "split_surfaces", "basins_figure", "SPLITS", "compare_planes", "comparable", "finish", "relative", "cached"]

IMAGE_SETS = {"fashion_mnist": "fashion_mnist", "cifar10": "cifar10", "imagenet": "imagenet2012"}
LOSS_NAMES = {"ce": "cross_entropy", "cross_entropy": "cross_entropy", "mse": "mse", "mae": "mae"}
RADII = (0.25, 0.5, 1.0)
SPLITS = ("train", "val", "test")  # data splits a final plane can be evaluated on


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Preset:
    """Sizes of one run; the experiment file defines ``smoke``, ``quick`` and ``full``.

    Attributes:
        train_examples, val_examples, test_examples: examples per split (None: all).
        epochs: training epochs.
        grid: points per axis of the 2-D plane (``grid x grid``).
        range: the plane and line span ``[-range, range]`` (filter-normalized units).
        line_points: points of the 1-D line.
        surface_examples: training examples the surfaces are averaged over.
        analysis_examples: training examples for the Hessian and sharpness numbers.
        lanczos_iterations: Lanczos steps for lambda_max.
        hutchinson_samples: Rademacher probes for the trace.
        sharpness_samples: Monte Carlo samples of the average-case sharpness.
        eval_batch_size: batch size of every evaluation pass.
        synthetic_fallback: use a generated stand-in when the data set is missing.
    """

    train_examples: int | None
    val_examples: int | None
    test_examples: int | None
    epochs: int
    grid: int
    range: float
    line_points: int
    surface_examples: int
    analysis_examples: int
    lanczos_iterations: int
    hutchinson_samples: int
    sharpness_samples: int
    eval_batch_size: int = 500
    synthetic_fallback: bool = False


@dataclass
class Variant:
    """One network of an experiment: its label, readable name, module and training."""

    name: str                      # e.g. "skip", "noskip", "taaf"
    model_name: str                # e.g. "ResNet-56"
    model: Any                     # a Flax Linen module
    config: train.TrainConfig
    note: str = ""                 # e.g. "CPU-sized stand-in for ResNet-56"


@dataclass
class Data:
    """Standardized splits plus what ``results.json`` says about them."""

    splits: dict[str, dict[str, np.ndarray]]
    name: str
    synthetic: bool
    description: str
    num_classes: int | None

    @property
    def regression(self) -> bool:
        return self.num_classes is None

    def subset(self, n: int, split: str = "train") -> dict[str, np.ndarray]:
        """The first ``n`` examples of a split (a fixed subset)."""
        return {k: v[:n] for k, v in self.splits[split].items()}

    def label(self) -> str:
        """Short name for titles; synthetic data say so."""
        return f"{self.name} (SYNTHETIC)" if self.synthetic else self.name

    def info(self, preset: Preset) -> dict[str, Any]:
        sizes = {split: int(len(part["y"])) for split, part in self.splits.items()}
        sizes["surface"] = min(preset.surface_examples, sizes["train"])
        sizes["analysis"] = min(preset.analysis_examples, sizes["train"])
        return {"name": self.name, "sizes": sizes, "synthetic": self.synthetic,
                "description": self.description}


@dataclass
class VariantRun:
    """What :func:`run_variant` leaves for the experiment to extend."""

    variant: Variant
    dir: Path
    variables: dict[str, Any]
    fn: Callable
    params: Any
    history: list[dict[str, float]]
    best_epoch: int
    directions: tuple[Any, Any]
    planes: dict[str, js.Surface] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- command line
def parse_args(doc: str, presets: Mapping[str, Preset], argv: Sequence[str] | None, *,
               datasets: Sequence[str] = ("fashion_mnist", "cifar10"),
               losses: Sequence[str] = ("ce", "mse", "mae"), variants: Sequence[str] = (),
               add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
               min_epochs: int = 1) -> argparse.Namespace:
    """The options every experiment shares; ``add_arguments`` adds its own;
    ``min_epochs``: the fewest epochs the experiment can use.

    Sets ``args.preset_config`` (the :class:`Preset` with the overrides applied),
    ``args.loss`` (the training loss name) and ``args.variants`` (a list).
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(doc.split("\n\n")[1:]))
    parser.add_argument("--preset", choices=sorted(presets), default="quick",
                        help="run size: smoke (CI, seconds), quick (~15 min per variant on a "
                             "2-core CPU), full (the paper's settings, for a GPU)")
    parser.add_argument("--out", default=None,
                        help="output directory, reused when rerun (default: runs/<experiment>"
                             "[_<variants>][_<settings>]_<preset>, printed at the start)")
    parser.add_argument("--dataset", choices=list(datasets), default=datasets[0])
    parser.add_argument("--data-dir", default=None, help="folder holding the data set")
    parser.add_argument("--loss", choices=list(losses), default=losses[0],
                        help="training (and surface) loss")
    if variants:
        parser.add_argument("--variants", default=",".join(variants),
                            help=f"comma-separated subset of {','.join(variants)}")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset")
    parser.add_argument("--grid", type=int, default=None,
                        help="points per axis of the plane (override the preset)")
    parser.add_argument("--range", type=float, default=None,
                        help="plane and line on [-R, R] (the seed's '2x scaled' is 2)")
    parser.add_argument("--train-examples", type=int, default=None)
    parser.add_argument("--surface-examples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initialisation, shuffling and directions")
    parser.add_argument("--optimizer", choices=train.OPTIMIZERS, default=None,
                        help="override the preset's optimizer")
    parser.add_argument("--lr", type=float, default=None,
                        help="override the preset's peak learning rate")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="override the preset's weight decay")
    parser.add_argument("--surface-split", default="train,val",
                        help="comma-separated data splits the final plane and line are "
                             "evaluated on, side by side with a gap map (held-out minus "
                             "train); any of train,val,test (train is always evaluated)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    splits = [s.strip() for s in args.surface_split.split(",") if s.strip()]
    if not splits or sorted(set(splits) - set(SPLITS)):
        parser.error(f"--surface-split: unknown {sorted(set(splits) - set(SPLITS)) or 'empty'}; "
                     f"use a comma-separated subset of {','.join(SPLITS)}")
    args.surface_split = [s for s in SPLITS if s in splits or s == "train"]
    preset = presets[args.preset]
    overrides = {"epochs": args.epochs, "grid": args.grid, "range": args.range,
                 "train_examples": args.train_examples,
                 "surface_examples": args.surface_examples}
    args.preset_config = dataclasses.replace(
        preset, **{k: v for k, v in overrides.items() if v is not None})
    smallest = {"epochs": min_epochs, "grid": 2, "train_examples": 1, "surface_examples": 1}
    for name, least in smallest.items():
        value = getattr(args.preset_config, name)
        if value is not None and value < least:
            parser.error(f"--{name.replace('_', '-')} is too small: {value} (at least {least})")
    if not args.preset_config.range > 0:
        parser.error("--range must be positive")
    args.loss = LOSS_NAMES[args.loss]
    args.default_settings = {"dataset": datasets[0], "loss": LOSS_NAMES[losses[0]],
                             "variants": list(variants)}
    if variants:
        chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = sorted(set(chosen) - set(variants))
        if unknown or not chosen:
            parser.error(f"--variants: unknown {unknown or 'empty'}; use {','.join(variants)}")
        args.variants = [v for v in variants if v in chosen]
    return args


_NAMED_OVERRIDES = ("epochs", "grid", "range", "train_examples", "surface_examples",
                    "optimizer", "lr", "weight_decay")


def output_dir(args: argparse.Namespace, experiment: str, **settings: Any) -> Path:
    """``--out``, or the default ``runs/<experiment>[_<variants>][_<settings>]_<preset>``
    (e.g. ``runs/resnet56_noskip_quick``); created, and printed.

    The default names every setting that differs from the experiment's
    defaults (a subset of variants, the data set, the loss, the seed, the
    overrides, and the experiment's own ``settings`` that are not ``None``,
    e.g. ``width=9000``), so runs with other settings never share a folder.

    Example:
        >>> out = output_dir(args, "resnet56")   # prints "output: runs/resnet56_quick"
    """
    if args.out is not None:
        out = Path(args.out)
    else:
        defaults = getattr(args, "default_settings", {})
        parts = [experiment]
        variants = getattr(args, "variants", None)
        if variants and list(variants) != defaults.get("variants"):
            parts.append("-".join(variants))
        for key in ("dataset", "loss"):
            if getattr(args, key, None) not in (None, defaults.get(key)):
                parts.append(str(getattr(args, key)))
        if getattr(args, "seed", 0):
            parts.append(f"seed{args.seed}")
        named = {key: getattr(args, key, None) for key in _NAMED_OVERRIDES}
        for key, value in {**named, **settings}.items():
            if value is not None:
                parts.append(f"{key.replace('_', '')}{value:g}" if isinstance(value, float)
                             else f"{key.replace('_', '')}{value}")
        parts.append(args.preset)
        out = Path("runs") / "_".join(parts)
    out.mkdir(parents=True, exist_ok=True)
    print(f"output: {out}", flush=True)
    return out


def train_config(base: train.TrainConfig, args: argparse.Namespace) -> train.TrainConfig:
    """The preset's training settings with the command line's epochs, loss, seed,
    optimizer, learning rate and weight decay."""
    changes = {"epochs": args.preset_config.epochs, "loss": args.loss, "seed": args.seed}
    if args.optimizer is not None:
        changes["optimizer"] = args.optimizer
    if args.lr is not None:
        changes["learning_rate"] = args.lr
    if args.weight_decay is not None:
        changes["weight_decay"] = args.weight_decay
    return dataclasses.replace(base, **changes)


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run."""
    rest = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", "-m", module, *rest])


# --------------------------------------------------------------------------- data
def _standardized(raw: Mapping[str, Any], limits: Mapping[str, int | None]) -> dict:
    from jaxsurf.data import channel_stats, standardize

    mean, std = channel_stats(raw["train"]["x"])
    return {split: {"x": standardize(raw[split]["x"][:limit], mean, std),
                    "y": np.asarray(raw[split]["y"][:limit])}
            for split, limit in limits.items()}


def _fake_images(name: str, preset: Preset, seed: int, why: str) -> Data:
    from jaxsurf.data import fake_image_dataset

    n = preset.train_examples or 256
    raw = fake_image_dataset(
        IMAGE_SETS[name], n=n, seed=seed,
        n_val=max(1, n // 4) if preset.val_examples is None else preset.val_examples,
        n_test=max(1, n // 4) if preset.test_examples is None else preset.test_examples)
    print(f"{name} not available ({why}); using the SYNTHETIC stand-in of the smoke preset")
    return Data(_standardized(raw, {"train": None, "val": None, "test": None}), name, True,
                raw["description"], raw["num_classes"])


def load_data(name: str, data_dir: str | None, preset: Preset, *, seed: int = 0) -> Data:
    """Loads ``fashion_mnist``, ``cifar10``, ``imagenet`` or ``gene_expression``.

    Images are standardized per channel with the statistics of the training
    split; the splits are cut to the preset's sizes (first examples). Where
    the set is missing, the smoke preset falls back to a generated stand-in
    of the same shape (flagged synthetic) unless ``data_dir`` was given; the
    others stop with the reason.
    Gene expression: the D-GEX ``.npy`` files in ``data_dir``, else the
    synthetic stand-in (always flagged).
    """
    limits = {"train": preset.train_examples, "val": preset.val_examples,
              "test": preset.test_examples}
    fallback = preset.synthetic_fallback and data_dir is None  # a given folder must be right
    if name == "gene_expression":
        from jaxsurf.data import load_gene_expression

        try:
            raw = load_gene_expression(data_dir, n_train=limits["train"], n_val=limits["val"],
                                       n_test=limits["test"], seed=seed)
        except (OSError, ValueError) as err:  # a given folder without usable D-GEX files
            raise SystemExit(f"error: {err}") from None
        splits = {s: {"x": raw[s]["x"], "y": raw[s]["y"]} for s in ("train", "val", "test")}
        return Data(splits, raw["name"], raw["synthetic"], raw["description"], None)
    if name == "fashion_mnist":
        try:
            splits = fashion_mnist(data_dir, limits["train"])
        except SystemExit as err:
            if not fallback:
                raise
            return _fake_images(name, preset, seed, str(err))
        splits = {s: {k: v[:limits[s]] for k, v in part.items()} for s, part in splits.items()}
        return Data(splits, "fashion_mnist", False,
                    f"Fashion-MNIST (Xiao et al. 2017), real, 28x28x1; validation split = "
                    f"{len(splits['val']['y']):,} held-out training images", 10)
    if name in IMAGE_SETS:
        from jaxsurf.data import load_tfds

        try:
            raw = load_tfds(IMAGE_SETS[name], data_dir)
        except Exception as err:  # noqa: BLE001 - any failure means "not here"
            if not fallback:
                raise SystemExit(f"error: cannot load {name} through tensorflow-datasets "
                                 f"({type(err).__name__}: {err}); give --data-dir with the "
                                 f"prepared tfds data, or use --dataset fashion_mnist") from None
            return _fake_images(name, preset, seed, f"{type(err).__name__}: {err}")
        return Data(_standardized(raw, limits), name, False, raw.get("source", name),
                    raw["num_classes"])
    raise ValueError(f"unknown data set {name!r}")


# --------------------------------------------------------------------------- small utilities
def relative(path: Path, out: Path) -> str:
    """``path`` relative to the output folder (results.json stays portable)."""
    try:
        return str(Path(path).relative_to(out))
    except ValueError:
        return str(path)


def _digest(request: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()
                          ).hexdigest()[:10]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cached(path: Path, request: Mapping[str, Any], compute: Callable[[], dict]) -> dict:
    """Returns the result saved in ``path`` for the same ``request``, else computes it."""
    request = _jsonable(dict(request))
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except ValueError:  # damaged (a crash while writing an older version): recompute
            saved = {}
        if saved.get("request") == request:
            return saved["result"]
    result = _jsonable(compute())
    _write_json(path, {"request": request, "result": result})
    return result


# --------------------------------------------------------------------------- training
def train_variant(variant: Variant, data: Data, vdir: Path) -> train.TrainResult:
    """Trains (or resumes, or reuses) ``variant`` in ``vdir/train``.

    ``vdir/run.json`` records the model, training settings and data; a
    finished or interrupted run in ``vdir`` is reused only when they match.
    """
    request = {"model": variant.model_name, "module": repr(variant.model),
               "config": dataclasses.asdict(variant.config),
               "data": data.name, "synthetic": data.synthetic,
               "train_examples": int(len(data.splits["train"]["y"])),
               "val_examples": int(len(data.splits["val"]["y"]))}
    request = _jsonable(request)
    marker = vdir / "run.json"
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved != request:
            diff = sorted(k for k in set(saved) | set(request) if saved.get(k) != request.get(k))
            raise SystemExit(f"error: {vdir} holds a training run with other settings "
                             f"(different: {', '.join(diff)}); use another --out or delete it")
    vdir.mkdir(parents=True, exist_ok=True)
    _write_json(marker, request)
    splits = {s: data.splits[s] for s in ("train", "val")}
    return train.fit(variant.model, splits, variant.config, out_dir=vdir / "train")


def random_plane(params: Any, seed: int) -> tuple[Any, Any]:
    """Li et al.'s filter-normalized random directions (biases and BatchNorm zeroed)."""
    return js.random_plane(jax.random.key(seed), params, "filter", "biasbn")


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
    """Training curves: ``train.plot_history`` for classifiers; loss only for regression."""
    if not regression:
        train.plot_history(history, out=out, title=title)
        return
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    epochs = [h["epoch"] for h in history]
    for split, style in (("train", "-"), ("val", "--")):
        ax.plot(epochs, [h[f"{split}_loss"] for h in history], style, marker="o", label=split)
    ax.set(xlabel="epoch", ylabel=f"{loss} loss")
    ax.set_title(textwrap.fill(title, 55), fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=150)


# --------------------------------------------------------------------------- surfaces
def plane_and_line(run: VariantRun, tag: str, params: Any, fn: Callable, data: Data,
                   preset: Preset, seed: int, meta: Mapping[str, Any], *,
                   directions: tuple[Any, Any] | None = None, alphas: np.ndarray | None = None,
                   betas: np.ndarray | None = None, line: bool = True, split: str = "train"
                   ) -> tuple[js.Surface, js.Surface | None]:
    """The plane (and the 1-D line along ``d1``) around ``params``, reused when saved.

    Defaults: the run's filter-normalized random directions and the preset's
    grid on ``[-range, range]``. Files: ``plane_<tag>.npz``, ``line_<tag>.npz``;
    each keeps a resumable point store beside it. ``split``: the data split the
    values average over (the first ``surface_examples`` examples of it).
    """
    d1, d2 = directions or run.directions
    r = preset.range
    alphas = np.linspace(-r, r, preset.grid) if alphas is None else alphas
    betas = np.linspace(-r, r, preset.grid) if betas is None else betas
    line_alphas = np.linspace(-r, r, preset.line_points)
    subset = data.subset(preset.surface_examples, split)
    expect = {"seed": seed, "num_examples": int(len(subset["y"])), "dataset": data.name,
              "loss": meta.get("loss"), "directions_fingerprint": js.tree.fingerprint((d1, d2))}
    if split != "train":  # (train planes saved before splits existed stay reusable)
        expect["split"] = split
    meta = {**meta, **{k: v for k, v in expect.items() if k != "num_examples"},  # jaxsurf's key
            "tag": tag, "synthetic": data.synthetic}
    params_print = js.tree.fingerprint(params)
    store_tag = _digest({"params": params_print, **expect,
                         "grid": [alphas.tolist(), betas.tolist(), line_alphas.tolist()]})

    def compute(kind: str) -> Callable[[], js.Surface]:
        def go() -> js.Surface:
            store = run.dir / f"{kind}_{tag}-{store_tag}.store"
            with warnings.catch_warnings():  # non-finite points are counted in metadata
                warnings.filterwarnings("ignore", message=".*non-finite values.*",
                                        category=RuntimeWarning)
                if kind == "plane":
                    return js.evaluate_plane(fn, params, d1, d2, subset, alphas, betas,
                                             batch_size=preset.eval_batch_size,
                                             metadata=meta, store=store)
                return js.evaluate_line(fn, params, d1, subset, line_alphas,
                                        batch_size=preset.eval_batch_size, metadata=meta,
                                        store=store)
        return go

    plane = reuse_or_compute(run.dir / f"plane_{tag}.npz", params, alphas, betas,
                             compute("plane"), expect=expect, params_fingerprint=params_print)
    run.result["surfaces"][f"plane_{tag}"] = relative(run.dir / f"plane_{tag}.npz", run.dir.parent)
    line_surface = None
    if line:
        line_surface = reuse_or_compute(run.dir / f"line_{tag}.npz", params, line_alphas, None,
                                        compute("line"), expect=expect,
                                        params_fingerprint=params_print)
        run.result["surfaces"][f"line_{tag}"] = relative(run.dir / f"line_{tag}.npz",
                                                         run.dir.parent)
    run.planes[tag] = plane
    stats = surface_stats(plane)
    run.result["surface_stats"][tag] = stats
    if tag == "final":  # the final plane's numbers also sit at the top: stats["minimum"]
        run.result["surface_stats"].update(stats)
    seconds = run.result["seconds"]      # as first computed (reused files keep theirs)
    seconds[f"plane_{tag}"] = plane.metadata.get("seconds")
    if line_surface is not None:
        seconds[f"line_{tag}"] = line_surface.metadata.get("seconds")
    return plane, line_surface


def _bilinear(surface: js.Surface, a: np.ndarray, b: np.ndarray, values: np.ndarray
              ) -> np.ndarray:
    """Bilinear interpolation of ``values[i, j]`` (at alphas[i], betas[j]) at points (a, b)."""
    al, be = surface.alphas, surface.betas
    i = np.clip(np.searchsorted(al, a) - 1, 0, len(al) - 2)
    j = np.clip(np.searchsorted(be, b) - 1, 0, len(be) - 2)
    ta = np.clip((a - al[i]) / (al[i + 1] - al[i]), 0.0, 1.0)
    tb = np.clip((b - be[j]) / (be[j + 1] - be[j]), 0.0, 1.0)
    return ((1 - ta) * (1 - tb) * values[i, j] + ta * (1 - tb) * values[i + 1, j]
            + (1 - ta) * tb * values[i, j + 1] + ta * tb * values[i + 1, j + 1])


def surface_stats(plane: js.Surface, metric: str = "loss", *, angles: int = 72
                  ) -> dict[str, Any]:
    """Numbers that summarise a plane of ``metric`` around its origin.

    Returns:
        ``minimum`` (and where), ``at_origin``, ``maximum``,
        ``mean_at_radius`` ``{"0.25": ..., "0.5": ..., "1.0": ...}``: the mean over
        a circle of that radius in (alpha, beta) units, bilinearly
        interpolated on the grid (None where the circle leaves the grid), and
        ``fraction_below_2x_min``: the share of grid points whose value is
        under twice the minimum (non-finite points count as above), and
        ``topology``: :func:`jaxsurf.topology.summary` (basins and their depths;
        the reason instead when gudhi is not installed).
    """
    values = np.asarray(plane.metrics[metric], dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return {"minimum": None, "nonfinite_points": int(values.size)}
    lo = float(values[finite].min())
    theta = np.linspace(0.0, 2 * np.pi, angles, endpoint=False)
    at_radius = {}
    eps = 1e-9
    for r in RADII:
        inside = (plane.alphas[0] - eps <= -r and r <= plane.alphas[-1] + eps
                  and plane.betas[0] - eps <= -r and r <= plane.betas[-1] + eps)
        if not inside:
            at_radius[str(r)] = None
            continue
        ring = _bilinear(plane, r * np.cos(theta), r * np.sin(theta), values)
        at_radius[str(r)] = float(np.mean(ring)) if np.all(np.isfinite(ring)) else None
    origin = None
    i0 = np.flatnonzero(np.isclose(plane.alphas, 0.0))
    j0 = np.flatnonzero(np.isclose(plane.betas, 0.0))
    if i0.size and j0.size:
        origin = float(values[i0[0], j0[0]])
    below = float(np.mean(np.where(finite, values < 2 * lo, False))) if lo > 0 else None
    return {"topology": _topology(plane, metric), "metric": metric, "minimum": lo, "argmin": list(plane.argmin(metric)),
            "at_origin": origin, "maximum": float(values[finite].max()),
            "mean_at_radius": at_radius, "fraction_below_2x_min": below,
            "nonfinite_points": int(values.size - finite.sum()),
            "grid": [len(plane.alphas), len(plane.betas)],
            "range": [float(plane.alphas[0]), float(plane.alphas[-1])]}


def _topology(plane: js.Surface, metric: str) -> dict[str, Any]:
    """The basins of a plane (js.topology.summary), or why they are missing."""
    try:
        return js.topology.summary(plane, metric)
    except ImportError as err:
        return {"error": str(err)}


# --------------------------------------------------------------------------- data splits
def split_surfaces(run: VariantRun, params: Any, fn: Callable, data: Data, preset: Preset,
                   seed: int, meta: Mapping[str, Any], splits: Sequence[str], title: str,
                   tag: str = "final", line: js.Surface | None = None) -> dict[str, Any]:
    """The ``tag`` plane and line on held-out splits, beside the training ones.

    For each split in ``splits`` other than ``train`` (and not empty): the
    plane and line with the same directions and grid on its first
    ``surface_examples`` examples (``plane_<tag>_<split>.npz``; ``line``: the
    training line, drawn with theirs when given), their
    ``surface_stats`` under ``<tag>_<split>``, and the figures: all splits side
    by side on one colour scale (``splits_<tag>.png``), the gap map
    ``<split> - train`` on a diverging scale (``gap_<tag>_<split>.png``) and the
    lines of every split on one plot (``line_splits_<tag>.png``).

    Returns:
        ``{split: gap numbers}``: the gap's value at the origin, its mean, min
        and max over the grid, each split's minimum and where the two minima
        lie (also stored in ``run.result["split_gap"]``).
    """
    out = run.dir.parent
    train_plane = run.planes[tag]
    planes, lines, gaps = {"train": train_plane}, {"train": line}, {}
    for split in splits:
        if split == "train":
            continue
        if not len(data.splits[split]["y"]):
            run.result.setdefault("surface_splits_skipped", []).append(split)
            continue
        plane, held_out_line = plane_and_line(run, f"{tag}_{split}", params, fn, data, preset,
                                              seed, {**meta, "split": split},
                                              directions=run.directions, split=split)
        planes[split], lines[split] = plane, held_out_line
        gaps[split] = _gap_numbers(train_plane, plane)
    if not gaps:
        return {}
    run.result["split_gap"] = gaps
    figures = run.result["figures"]
    log = any(wide_range(p) for p in planes.values())
    path = run.dir / f"splits_{tag}.png"
    js.plot.compare(planes, kind="filled", log=log, title=f"{title}: loss on each data split"
                    + (" (log scale)" if log else ""), out=path)
    figures[f"splits_{tag}"] = relative(path, out)
    for split, plane in planes.items():
        if split == "train":
            continue
        path = run.dir / f"gap_{tag}_{split}.png"
        js.plot.difference(train_plane, plane, names=("train", split),
                           title=f"{title}: {split} - train loss", out=path)
        figures[f"gap_{tag}_{split}"] = relative(path, out)
    if all(x is not None for x in lines.values()):
        first = lines["train"]
        names = [m for m in first.metric_names if not m.endswith("_sem")]
        overlay = js.Surface(first.alphas, None, {f"{split} {m}": x.metrics[m]
                                                  for m in names
                                                  for split, x in lines.items()},
                             {"axis_labels": first.metadata.get("axis_labels") or "alpha"})
        path = run.dir / f"line_splits_{tag}.png"
        loss_names = [f"{split} loss" for split in lines if f"{split} loss" in overlay.metrics]
        line_log = bool(loss_names) and wide_range(overlay, loss_names[0])
        js.plot.line(overlay, log=line_log, title=f"{title}: 1-D slice on each data split",
                     out=path)
        figures[f"line_splits_{tag}"] = relative(path, out)
    return gaps


def _gap_numbers(train: js.Surface, held_out: js.Surface, metric: str = "loss"
                 ) -> dict[str, Any]:
    gap = np.asarray(held_out.metrics[metric], np.float64) - np.asarray(train.metrics[metric],
                                                                         np.float64)
    finite = np.isfinite(gap)
    i0 = np.flatnonzero(np.isclose(train.alphas, 0.0))
    j0 = np.flatnonzero(np.isclose(train.betas, 0.0))
    origin = float(gap[i0[0], j0[0]]) if i0.size and j0.size else None
    return {"metric": metric,
            "at_origin": origin if origin is None or math.isfinite(origin) else None,
            "mean": float(gap[finite].mean()) if finite.any() else None,
            "min": float(gap[finite].min()) if finite.any() else None,
            "max": float(gap[finite].max()) if finite.any() else None,
            "train_minimum": _finite_min(train, metric),
            "held_out_minimum": _finite_min(held_out, metric),
            "train_argmin": list(train.argmin(metric)),
            "held_out_argmin": list(held_out.argmin(metric))}


def _finite_min(surface: js.Surface, metric: str) -> float | None:
    values = np.asarray(surface.metrics[metric], np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else None


def basins_figure(run: VariantRun, tag: str, plane: js.Surface, title: str) -> None:
    """The plane's filled contours with its local minima, persistent ones and their
    saddles marked (``basins_<tag>.png``)."""
    try:
        path = run.dir / f"basins_{tag}.png"
        js.plot.basins(plane, log=wide_range(plane), title=f"{title}: basins", out=path)
    except ImportError:  # gudhi not installed: surface_stats says so
        return
    run.result["figures"][f"basins_{tag}"] = relative(path, run.dir.parent)


# --------------------------------------------------------------------------- curvature
def curvature(fn: Callable, params: Any, data: Data, preset: Preset, seed: int
              ) -> dict[str, Any]:
    """lambda_max (Lanczos) and the Hutchinson trace of the Hessian over a fixed subset."""
    subset = data.subset(preset.analysis_examples)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lams, _ = js.hessian.top_eigenpairs(
            fn, params, subset, k=1, key=jax.random.key(seed + 101),
            batch_size=preset.eval_batch_size, num_iterations=preset.lanczos_iterations,
            tol=1e-3)
    converged = not any("Lanczos stopped" in str(w.message) for w in caught)
    tr, se = js.hessian.trace(fn, params, subset, key=jax.random.key(seed + 102),
                              num_samples=preset.hutchinson_samples,
                              batch_size=preset.eval_batch_size)
    return {"examples": int(len(subset["y"])), "lambda_max": float(lams[0]),
            "lanczos_iterations": preset.lanczos_iterations,
            "lanczos_converged_tol_1e-3": converged, "trace": tr, "trace_stderr": se,
            "hutchinson_samples": preset.hutchinson_samples,
            "seconds": time.perf_counter() - start}


def sharpness(fn: Callable, params: Any, data: Data, preset: Preset, seed: int
              ) -> dict[str, Any]:
    """SAM sharpness (rho 0.05) and |w|-scaled average-case sharpness (sigma 0.05)."""
    subset = data.subset(preset.analysis_examples)
    start = time.perf_counter()
    sam = js.sharpness.sam_sharpness(fn, params, subset, rho=0.05,
                                     batch_size=preset.eval_batch_size)
    mean, se = js.sharpness.average_sharpness(
        fn, params, subset, key=jax.random.key(seed + 103), sigma=0.05,
        num_samples=preset.sharpness_samples, scale="weight",
        batch_size=preset.eval_batch_size)
    return {"examples": int(len(subset["y"])), "sam_rho_0.05": sam,
            "average_weight_scaled_sigma_0.05": mean, "average_stderr": se,
            "average_samples": preset.sharpness_samples,
            "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------- figures
def wide_range(surface: js.Surface, metric: str = "loss") -> bool:
    """True when the values span more than two decades: then figures use log scales."""
    values = np.asarray(surface.metrics[metric], dtype=np.float64)
    finite = values[np.isfinite(values)]
    return bool(finite.size and finite.min() > 0 and finite.max() > 100 * finite.min())


def variant_figures(run: VariantRun, tag: str, plane: js.Surface, line: js.Surface | None,
                    title: str) -> None:
    """Contour, 3-D surface (and line) of one plane, saved in the variant folder.

    Loss values that span more than two decades (a net without skips far from
    its minimum) are drawn on log scales, and the titles say so.
    """
    out = run.dir.parent
    log = wide_range(plane)
    scale = " (log scale)" if log else ""
    figures = {f"contour_{tag}": lambda p: js.plot.contour(
                   plane, log=log, title=f"{title}: loss contours{scale}", out=p),
               f"surface3d_{tag}": lambda p: js.plot.surface3d(
                   plane, log=log, title=f"{title}: loss{scale}", out=p)}
    if line is not None:
        line_log = wide_range(line)
        figures[f"line_{tag}"] = lambda p: js.plot.line(
            line, log=line_log, title=f"{title}: 1-D slice" + (" (log scale)" if line_log
                                                                else ""), out=p)
    for name, draw in figures.items():
        path = run.dir / f"{name}.png"
        draw(path)
        run.result["figures"][name] = relative(path, out)


def compare_planes(out: Path, name: str, planes: Mapping[str, js.Surface], title: str,
                   labels: Sequence[str] | None = None) -> str:
    """Side-by-side contours on one colour scale and one set of (log) levels;
    ``labels``: the (x, y) axis labels, default the planes' own."""
    path = out / f"{name}.png"
    js.plot.compare(dict(planes), kind="filled", log=True, title=title, labels=labels,
                    out=path)
    return relative(path, out)


# --------------------------------------------------------------------------- one variant
def run_variant(variant: Variant, data: Data, args: argparse.Namespace, out: Path, *,
                title_extra: str = "") -> VariantRun:
    """Trains one variant and measures it at its final epoch.

    Writes ``out/<variant>/``: the training run, ``training_curves.png``, the
    filter-normalized random line and plane (``*_final.npz``), their contour,
    3-D and line figures, and the curvature and sharpness numbers.
    """
    preset: Preset = args.preset_config
    seed = args.seed
    vdir = out / variant.name
    started = time.perf_counter()
    result = train_variant(variant, data, vdir)
    variables = result.variables
    fn, params = js.flax.adapt(variant.model, variables, loss=variant.config.loss)
    d1, d2 = random_plane(params, seed)
    history = result.history
    last = history[-1] if history else {}
    title = f"{variant.model_name} {variant.name}, {data.label()}{title_extra}"
    curves = vdir / "training_curves.png"
    if history:
        plot_curves(history, curves, title, data.regression, variant.config.loss)
    info = {
        "model": variant.model_name, "variant": variant.name,
        "model_note": variant.note, "module": repr(variant.model),
        "num_params": models.num_params(variables), "preset": args.preset,
        "dataset": data.info(preset), "loss": variant.config.loss,
        "train_config": dataclasses.asdict(variant.config),
        "epochs": len(history), "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"), "best_epoch": result.best_epoch,
        "train_seconds": float(sum(h.get("seconds", 0.0) for h in history)),
        "history": history, "surfaces": {}, "figures": {}, "surface_stats": {},
        "seconds": {"train": float(sum(h.get("seconds", 0.0) for h in history))},
    }
    if history:
        info["figures"]["training_curves"] = relative(curves, out)
    run = VariantRun(variant, vdir, variables, fn, params, history, result.best_epoch,
                     (d1, d2), result=info)
    fp = js.tree.fingerprint(params)
    metrics_fn = js.flax.linen_metrics_fn(
        variant.model, loss=_regression_metrics if data.regression else variant.config.loss)

    def final_metrics() -> dict:
        values = {}
        for split in ("val", "test") if data.regression else ("test",):
            if len(data.splits[split]["y"]):
                mean = js.dataset_mean(metrics_fn, data.splits[split],
                                       batch_size=preset.eval_batch_size)(variables)
                values.update({f"{split}_{k}": float(v) for k, v in mean.items()})
        return values

    need_eval = len(data.splits["test"]["y"]) > 0 or (data.regression
                                                      and variant.config.loss != "mae")
    measured = cached(vdir / "final_metrics.json",
                      {"params": fp, "sizes": data.info(preset)["sizes"],
                       "loss": variant.config.loss}, final_metrics) if need_eval else {}
    if data.regression:
        info["val_mae"] = measured.get("val_mae", last.get("val_loss"))
        info["test_mae"] = measured.get("test_mae")
    else:
        info["val_accuracy"] = last.get("val_accuracy", measured.get("val_accuracy"))
        info["test_loss"] = measured.get("test_loss")
        info["test_accuracy"] = measured.get("test_accuracy")
    meta = {"model": variant.model_name, "variant": variant.name, "loss": variant.config.loss,
            "epoch": len(history)}
    plane, line = plane_and_line(run, "final", params, fn, data, preset, seed, meta)
    variant_figures(run, "final", plane, line, f"{title}, epoch {len(history)}")
    basins_figure(run, "final", plane, f"{title}, epoch {len(history)}")
    split_surfaces(run, params, fn, data, preset, seed, meta,
                   getattr(args, "surface_split", ["train"]), f"{title}, epoch {len(history)}",
                   line=line)
    analysis_request = {"params": fp, "examples": preset.analysis_examples,
                        "seed": seed, "loss": variant.config.loss}
    info["curvature"] = cached(
        vdir / "curvature.json",
        {**analysis_request, "iterations": preset.lanczos_iterations,
         "probes": preset.hutchinson_samples},
        lambda: curvature(fn, params, data, preset, seed))
    info["sharpness"] = cached(
        vdir / "sharpness.json", {**analysis_request, "samples": preset.sharpness_samples},
        lambda: sharpness(fn, params, data, preset, seed))
    info["seconds"]["curvature"] = info["curvature"].get("seconds")
    info["seconds"]["sharpness"] = info["sharpness"].get("seconds")
    info["seconds_this_run"] = time.perf_counter() - started
    print(f"{variant.model_name} {variant.name}: " + ", ".join(
        f"{k} {info[k]:.4g}" for k in ("train_loss", "val_loss", "val_accuracy", "val_mae")
        if isinstance(info.get(k), float)) + f"; {info['seconds_this_run']:.0f} s")
    return run


def _regression_metrics(outputs: Any, targets: Any) -> dict[str, Any]:
    """MAE (the D-GEX metric) and MSE of a regression, as batch means."""
    from jaxsurf.losses import mae, mse

    return {"loss": mae(outputs, targets)["loss"], "mae": mae(outputs, targets)["loss"],
            "mse": mse(outputs, targets)["loss"]}


# --------------------------------------------------------------------------- results
def finish(out: Path, experiment: str, args: argparse.Namespace, command: str,
           runs: Sequence[VariantRun], comparisons: Mapping[str, str],
           extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Writes ``results.json`` (merging variants of earlier runs with the same
    preset in the same ``--out``) and prints a short table."""
    path = out / "results.json"
    variants = dict(_earlier_variants(out, experiment, args))
    variants.update({run.variant.name: run.result for run in runs})
    results = {
        "experiment": experiment, "preset": args.preset, "command": command,
        "args": _jsonable({k: v for k, v in vars(args).items()
                           if k not in ("preset_config", "default_settings")}),
        "preset_config": dataclasses.asdict(args.preset_config),
        "variants": variants, "comparison_figures": dict(comparisons),
        "jaxsurf_version": js.__version__, "jax_version": jax.__version__,
        "backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
        **(extra or {}),
    }
    _write_json(path, results)
    js.view.write([out], out / "viewer.html", missing_ok=True)  # every variant, one page
    print(f"\n{experiment} ({args.preset}) -> {path}")
    for name, r in variants.items():
        score = (f"val acc {_fmt(r.get('val_accuracy'), 100, '.2f')} %"
                 if "val_accuracy" in r else f"val MAE {_fmt(r.get('val_mae'))}")
        stats = r["surface_stats"].get("final", {})
        basins = stats.get("topology", {})
        gap = r.get("split_gap", {}).get("val", {})
        print(f"  {r['model']:>14} {name:<8} {r['num_params']:>10,d} params  {score}  "
              f"plane min {_fmt(stats.get('minimum'))}  "
              f"lambda_max {_fmt(r['curvature'].get('lambda_max'))}  "
              f"minima {basins.get('num_minima', 'n/a')} "
              f"(persistent {basins.get('num_persistent_minima', 'n/a')})  "
              f"val-train gap at origin {_fmt(gap.get('at_origin'))}")
    return results


def _fmt(value: float | None, scale: float = 1.0, spec: str = ".4g") -> str:
    """A number for the summary table; ``n/a`` for a missing one (saved as null)."""
    return "n/a" if value is None else format(scale * value, spec)


_SETTINGS = ("dataset", "data_dir", "loss", "seed", "optimizer", "lr", "weight_decay")


def _earlier_variants(out: Path, experiment: str, args: argparse.Namespace
                      ) -> dict[str, Any]:
    """The variants ``results.json`` in ``out`` holds from earlier runs of this
    experiment with the same preset, data, loss, seed and overrides (variants run
    one at a time end up side by side); nothing when the settings differ."""
    path = out / "results.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    now = _jsonable({k: getattr(args, k, None) for k in _SETTINGS})
    same = (old.get("experiment") == experiment and old.get("preset") == args.preset
            and old.get("preset_config") == _jsonable(dataclasses.asdict(args.preset_config))
            and {k: old.get("args", {}).get(k) for k in _SETTINGS} == now)
    return old.get("variants", {}) if same else {}


def _write_json(path: Path, value: Any) -> None:
    """Writes ``value`` as JSON atomically: a crash mid-write leaves the old file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(value), indent=1, default=str))
    os.replace(tmp, path)


def comparable(runs: Sequence[VariantRun], out: Path, experiment: str,
               args: argparse.Namespace, order: Sequence[str], tag: str = "final"
               ) -> dict[str, js.Surface]:
    """The ``tag`` planes of this run's variants, labelled "<model>: <variant>", plus
    those of earlier runs with the same settings found in ``out``: variants run one
    at a time still end up side by side."""
    planes = {run.variant.name: (run.variant.model_name, run.planes[tag])
              for run in runs if tag in run.planes}
    for name, r in _earlier_variants(out, experiment, args).items():
        file = r.get("surfaces", {}).get(f"plane_{tag}")
        if name not in planes and file and (out / file).exists():
            planes[name] = (r["model"], js.Surface.load(out / file))
    names = sorted(planes, key=lambda n: list(order).index(n) if n in order else len(order))
    return {f"{planes[n][0]}: {n}": planes[n][1] for n in names}
