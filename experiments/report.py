"""What an experiment writes and what a rerun reuses.

- results.json: :class:`VariantReport` (what it says about one network: its
  training, surface files, :func:`surface_stats`, figures), :func:`finish`
  (writes it atomically, keeping variants of earlier runs with the same
  settings in the same ``--out``, and prints the summary table),
  :func:`comparable` and :func:`compare_planes` (the side-by-side figure);
- reuse: :func:`check_same_training` (a training folder made with other
  settings stops the run), :func:`stored` (a surface kept in the library's
  resumable store), :func:`reuse_json` (small numbers keyed by what they were
  computed from), :func:`restore_epoch` (the variables after an earlier epoch).

The library calls that make the numbers (training, directions, evaluation,
curvature) are in the experiment files; this module only files them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import jax
import numpy as np

import jaxsurf as js
from experiments.data import Data
from jaxsurf import models, train
from jaxsurf._io import atomic as _atomic

if TYPE_CHECKING:
    import argparse


RADII = (0.25, 0.5, 1.0)  # surface_stats' circles around the origin


# ----------------------------------------------------------------- JSON files

def relative(path: Path, out: Path) -> str:
    """``path`` relative to the output folder (results.json stays portable)."""
    try:
        return str(Path(path).relative_to(out))
    except ValueError:
        return str(path)

def jsonable(value: Any) -> Any:
    """``value`` with numpy numbers as Python numbers and NaN/inf as None (JSON null)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

def save_text(path: Path, text: str) -> None:
    """Writes ``text`` through the library's one atomic writer: a crash mid-write
    leaves the old file."""
    _atomic.write_text(path, text)

def write_json(path: Path, value: Any) -> None:
    """Writes ``value`` as JSON atomically (NaN and inf as null)."""
    save_text(path, json.dumps(jsonable(value), indent=1, default=str))


# ----------------------------------------------------------------- reuse

def reuse_json(path: Path, request: Mapping[str, Any], compute: Callable[[], dict]) -> dict:
    """The result saved in ``path`` for the same ``request``, else ``compute()`` (saved).

    Example:
        >>> numbers = reuse_json(out / "skip" / "curvature.json", {"params": fp},
        ...                      lambda: curvature(fn, params, subset, preset, seed))
    """
    request = jsonable(dict(request))
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except ValueError:  # damaged (a crash while writing an older version): recompute
            saved = {}
        if saved.get("request") == request:
            return saved["result"]
    result = jsonable(compute())
    write_json(path, {"request": request, "result": result})
    return result

def check_same_training(folder: Path, model_name: str, model: Any, config: train.TrainConfig,
                        data: Data) -> None:
    """Stops (``SystemExit``) when ``folder`` holds a training run made with another
    model, config or data; else records them in ``folder/run.json``.

    ``train.fit(..., out_dir=folder / "train")`` then resumes an interrupted run
    and returns a finished one without training again.
    """
    settings = jsonable({"model": model_name, "module": repr(model),
                         "config": dataclasses.asdict(config),
                         "data": data.name, "synthetic": data.synthetic,
                         "train_examples": int(len(data.splits["train"]["y"])),
                         "val_examples": int(len(data.splits["val"]["y"]))})
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

def stored(store: Path, evaluate: Callable[[Path], js.Surface]) -> js.Surface:
    """``evaluate(store)`` and the Surface saved as ``<store without .store>.npz``.

    The library's store keeps every finished point, so a rerun with the same
    params, directions, grid and data evaluates nothing again; a store made
    for other ones (another ``--grid``, ``--range`` or seed) is replaced and
    the surface recomputed.

    Example:
        >>> plane = stored(out / "plane.store", lambda store: js.evaluate_plane(
        ...     fn, params, d1, d2, data, grid, grid, store=store))
    """
    surface = reused_or_recomputed(store, evaluate)
    surface.save(store.with_suffix(".npz"))
    return surface


def reused_or_recomputed(store: Path, evaluate: Callable[[Path], Any]) -> Any:
    """``evaluate(store)``; a store made for other settings is replaced and evaluated
    again (see :func:`stored`), e.g. for ``js.evaluate_planes``' list of Surfaces."""
    with warnings.catch_warnings():  # non-finite points are counted in metadata
        warnings.filterwarnings("ignore", message=".*non-finite values.*",
                                category=RuntimeWarning)
        try:
            return evaluate(store)
        except js.StoreMismatchError:
            print(f"{store} was made with other settings: recomputing", flush=True)
            shutil.rmtree(store)
            return evaluate(store)

def restore_epoch(train_dir: Path, epoch: int, like: Mapping[str, Any]) -> dict[str, Any]:
    """The model variables (params and BatchNorm statistics) saved after ``epoch``.

    Args:
        train_dir: the ``out_dir`` given to :func:`jaxsurf.train.fit`.
        epoch: a recorded epoch (0 is the initialisation).
        like: variables of the same model (gives the params' structure).
    """
    with js.TrajectoryRecorder(Path(train_dir) / "trajectory") as recorder:
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


# ----------------------------------------------------------------- numbers of a plane

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
    alphas, betas = np.asarray(plane.alphas), np.asarray(plane.betas)
    for r in RADII:
        inside = (alphas[0] - eps <= -r and r <= alphas[-1] + eps
                  and betas[0] - eps <= -r and r <= betas[-1] + eps)
        if not inside:
            at_radius[str(r)] = None
            continue
        ring = _bilinear(plane, r * np.cos(theta), r * np.sin(theta), values)
        at_radius[str(r)] = float(np.mean(ring)) if np.all(np.isfinite(ring)) else None
    below = float(np.mean(np.where(finite, values < 2 * lo, False))) if lo > 0 else None
    return {"topology": _topology(plane, metric), "metric": metric, "minimum": lo,
            "argmin": list(plane.argmin(metric)),
            "at_origin": _at_origin(plane, values), "maximum": float(values[finite].max()),
            "mean_at_radius": at_radius, "fraction_below_2x_min": below,
            "nonfinite_points": int(values.size - finite.sum()),
            "grid": [len(alphas), len(betas)],
            "range": [float(alphas[0]), float(alphas[-1])]}

def _at_origin(plane: js.Surface, values: np.ndarray) -> float | None:
    i0 = np.flatnonzero(np.isclose(np.asarray(plane.alphas), 0.0))
    j0 = np.flatnonzero(np.isclose(np.asarray(plane.betas), 0.0))
    return float(values[i0[0], j0[0]]) if i0.size and j0.size else None

def _bilinear(surface: js.Surface, a: np.ndarray, b: np.ndarray, values: np.ndarray
              ) -> np.ndarray:
    """Bilinear interpolation of ``values[i, j]`` (at alphas[i], betas[j]) at points (a, b)."""
    al, be = np.asarray(surface.alphas), np.asarray(surface.betas)
    i = np.clip(np.searchsorted(al, a) - 1, 0, len(al) - 2)
    j = np.clip(np.searchsorted(be, b) - 1, 0, len(be) - 2)
    ta = np.clip((a - al[i]) / (al[i + 1] - al[i]), 0.0, 1.0)
    tb = np.clip((b - be[j]) / (be[j + 1] - be[j]), 0.0, 1.0)
    return ((1 - ta) * (1 - tb) * values[i, j] + ta * (1 - tb) * values[i + 1, j]
            + (1 - ta) * tb * values[i, j + 1] + ta * tb * values[i + 1, j + 1])

def _topology(plane: js.Surface, metric: str) -> dict[str, Any]:
    """The basins of a plane (js.topology.summary), or why they are missing."""
    try:
        return js.topology.summary(plane, metric)
    except ImportError as err:
        return {"error": str(err)}

def gap_numbers(train_plane: js.Surface, held_out: js.Surface, metric: str = "loss"
                ) -> dict[str, Any]:
    """The held-out minus train map of two planes on one grid: at the origin, mean,
    min, max, and each plane's minimum and where it lies."""
    gap = (np.asarray(held_out.metrics[metric], np.float64)
           - np.asarray(train_plane.metrics[metric], np.float64))
    finite = np.isfinite(gap)
    origin = _at_origin(train_plane, gap)
    return {"metric": metric,
            "at_origin": origin if origin is None or math.isfinite(origin) else None,
            "mean": float(gap[finite].mean()) if finite.any() else None,
            "min": float(gap[finite].min()) if finite.any() else None,
            "max": float(gap[finite].max()) if finite.any() else None,
            "train_minimum": _finite_min(train_plane, metric),
            "held_out_minimum": _finite_min(held_out, metric),
            "train_argmin": list(train_plane.argmin(metric)),
            "held_out_argmin": list(held_out.argmin(metric))}

def _finite_min(surface: js.Surface, metric: str) -> float | None:
    values = np.asarray(surface.metrics[metric], np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else None

def wide_range(surface: js.Surface, metric: str = "loss") -> bool:
    """True when the values span more than two decades: then figures use log scales."""
    values = np.asarray(surface.metrics[metric], dtype=np.float64)
    finite = values[np.isfinite(values)]
    return bool(finite.size and finite.min() > 0 and finite.max() > 100 * finite.min())


# ----------------------------------------------------------------- one network

@dataclass
class VariantReport:
    """What results.json says about one network of an experiment (``result``), the
    planes and lines it holds, and its folder ``out/<name>``."""

    name: str                      # e.g. "skip", "noskip", "taaf"
    model_name: str                # e.g. "ResNet-56"
    dir: Path
    result: dict[str, Any]
    planes: dict[str, js.Surface] = field(default_factory=dict)
    lines: dict[str, js.Surface | None] = field(default_factory=dict)

    @classmethod
    def of_training(cls, out: Path, name: str, model_name: str, model: Any, note: str,
                    config: train.TrainConfig, trained: train.TrainResult, params: Any,
                    data: Data, args: argparse.Namespace) -> VariantReport:
        """The record of a trained network: its settings, history, training curves
        (``training_curves.png``) and held-out numbers (kept in ``final_metrics.json``)."""
        preset = args.preset_config
        history = trained.history
        last = history[-1] if history else {}
        train_seconds = float(sum(h.get("seconds", 0.0) for h in history))
        info = {
            "model": model_name, "variant": name, "model_note": note, "module": repr(model),
            "num_params": models.num_params(trained.variables), "preset": args.preset,
            "dataset": data.info(preset), "loss": config.loss,
            "train_config": dataclasses.asdict(config),
            "epochs": len(history), "train_loss": last.get("train_loss"),
            "val_loss": last.get("val_loss"), "best_epoch": trained.best_epoch,
            "train_seconds": train_seconds, "history": history, "surfaces": {},
            "figures": {}, "surface_stats": {}, "seconds": {"train": train_seconds},
        }
        report = cls(name, model_name, out / name, info)
        if history:
            curves = report.dir / "training_curves.png"
            js.plot.training_curves(history, curves, f"{model_name} {name}, {data.label()}",
                                    regression=data.regression, loss=config.loss)
            info["figures"]["training_curves"] = relative(curves, out)
        need_eval = len(data.splits["test"]["y"]) > 0 or (data.regression
                                                           and config.loss != "mae")
        measured = reuse_json(
            report.dir / "final_metrics.json",
            {"params": js.tree.fingerprint(params), "sizes": data.info(preset)["sizes"],
             "loss": config.loss},
            lambda: _held_out_metrics(model, trained.variables, config.loss, data, preset
                                      )) if need_eval else {}
        if data.regression:
            info["val_mae"] = measured.get("val_mae", last.get("val_loss"))
            info["test_mae"] = measured.get("test_mae")
        else:
            info["val_accuracy"] = last.get("val_accuracy", measured.get("val_accuracy"))
            info["test_loss"] = measured.get("test_loss")
            info["test_accuracy"] = measured.get("test_accuracy")
        return report

    @property
    def out(self) -> Path:
        return self.dir.parent

    def file(self, name: str) -> Path:
        """``out/<variant>/<name>``."""
        return self.dir / name

    def metadata(self, tag: str, directions: Any, data: Data, seed: int, epoch: int,
                 split: str = "train", **more: Any) -> dict[str, Any]:
        """What the ``tag`` plane's file says about how it was made (``more``:
        e.g. how the directions were made)."""
        return {"model": self.model_name, "variant": self.name, "loss": self.result["loss"],
                "epoch": epoch, **more, **({"split": split} if split != "train" else {}),
                "seed": seed, "dataset": data.name,
                "directions_fingerprint": js.tree.fingerprint(directions), "tag": tag,
                "synthetic": data.synthetic}

    def add(self, tag: str, plane: js.Surface, line: js.Surface | None = None) -> None:
        """Files the ``tag`` plane (and line), saved as ``plane_<tag>.npz``: their
        paths, :func:`surface_stats` (the final plane's also at the top) and seconds."""
        surfaces, seconds = self.result["surfaces"], self.result["seconds"]
        surfaces[f"plane_{tag}"] = relative(self.file(f"plane_{tag}.npz"), self.out)
        if line is not None:
            surfaces[f"line_{tag}"] = relative(self.file(f"line_{tag}.npz"), self.out)
        self.planes[tag], self.lines[tag] = plane, line
        stats = surface_stats(plane)
        self.result["surface_stats"][tag] = stats
        if tag == "final":  # the final plane's numbers also sit at the top: stats["minimum"]
            self.result["surface_stats"].update(stats)
        seconds[f"plane_{tag}"] = plane.metadata.get("seconds")
        if line is not None:
            seconds[f"line_{tag}"] = line.metadata.get("seconds")

    def skip_split(self, split: str) -> None:
        """Notes a ``--surface-split`` with no examples."""
        self.result.setdefault("surface_splits_skipped", []).append(split)

    def figure(self, name: str, draw: Callable[[Path], Any]) -> None:
        """``draw(out/<variant>/<name>.png)``, filed under ``figures``."""
        path = self.file(f"{name}.png")
        draw(path)
        self.result["figures"][name] = relative(path, self.out)

    def plane_figures(self, tag: str, title: str, *, basins: bool = False) -> None:
        """Contour, 3-D surface and line of the ``tag`` plane and line; with ``basins``,
        its local minima and saddles (``js.plot.basins``, when gudhi is installed).
        Values that span more than two decades are drawn on log scales, and the
        titles say so."""
        plane, line = self.planes[tag], self.lines.get(tag)
        log = wide_range(plane)
        scale = " (log scale)" if log else ""
        self.figure(f"contour_{tag}", lambda p: js.plot.contour(
            plane, log=log, title=f"{title}: loss contours{scale}", out=p))
        self.figure(f"surface3d_{tag}", lambda p: js.plot.surface3d(
            plane, log=log, title=f"{title}: loss{scale}", out=p))
        if line is not None:
            line_log = wide_range(line)
            self.figure(f"line_{tag}", lambda p: js.plot.line(
                line, log=line_log, title=f"{title}: 1-D slice"
                + (" (log scale)" if line_log else ""), out=p))
        if basins:
            try:
                self.figure(f"basins_{tag}", lambda p: js.plot.basins(
                    plane, log=log, title=f"{title}: basins", out=p))
            except ImportError:  # gudhi not installed: surface_stats says so
                pass

    def split_figures(self, tag: str, splits: Sequence[str], title: str) -> None:
        """The ``tag`` plane on held-out ``splits`` beside the training one: the gap
        numbers (``split_gap``), all splits on one colour scale (``splits_<tag>``),
        each gap map (``gap_<tag>_<split>``) and the lines of every split
        (``line_splits_<tag>``)."""
        train_plane = self.planes[tag]
        planes = {"train": train_plane, **{s: self.planes[f"{tag}_{s}"] for s in splits}}
        lines = {"train": self.lines[tag], **{s: self.lines[f"{tag}_{s}"] for s in splits}}
        if not splits:
            return
        self.result["split_gap"] = {s: gap_numbers(train_plane, planes[s]) for s in splits}
        log = any(wide_range(p) for p in planes.values())
        self.figure(f"splits_{tag}", lambda p: js.plot.compare(
            planes, kind="filled", log=log, title=f"{title}: loss on each data split"
            + (" (log scale)" if log else ""), out=p))
        for split in splits:
            self.figure(f"gap_{tag}_{split}", lambda p: js.plot.difference(
                train_plane, planes[split], names=("train", split),
                title=f"{title}: {split} - train loss", out=p))
        drawn = {split: x for split, x in lines.items() if x is not None}
        if len(drawn) == len(lines):
            first = drawn["train"]
            names = [m for m in first.metric_names if not m.endswith("_sem")]
            overlay = js.Surface(first.alphas, None, {f"{split} {m}": x.metrics[m]
                                                      for m in names
                                                      for split, x in drawn.items()},
                                 {"axis_labels": first.metadata.get("axis_labels") or "alpha"})
            losses = [f"{split} loss" for split in lines if f"{split} loss" in overlay.metrics]
            line_log = bool(losses) and wide_range(overlay, losses[0])
            self.figure(f"line_splits_{tag}", lambda p: js.plot.line(
                overlay, log=line_log, title=f"{title}: 1-D slice on each data split", out=p))

def _held_out_metrics(model: Any, variables: Any, loss: str, data: Data, preset: Any
                      ) -> dict[str, float]:
    """Mean metrics on the test split (regression: also on val, with MAE and MSE),
    keyed ``<split>_<metric>``, e.g. ``test_accuracy``."""
    metrics_fn = js.flax.linen_metrics_fn(
        model, loss=_regression_metrics if data.regression else loss)
    values = {}
    for split in ("val", "test") if data.regression else ("test",):
        if len(data.splits[split]["y"]):
            mean = js.dataset_mean(metrics_fn, data.splits[split],
                                   batch_size=preset.eval_batch_size)(variables)
            values.update({f"{split}_{k}": float(v) for k, v in mean.items()})
    return values

def _regression_metrics(outputs: Any, targets: Any) -> dict[str, Any]:
    """MAE (the D-GEX metric) and MSE of a regression, as batch means."""
    mae = js.losses.mae(outputs, targets)["loss"]
    return {"loss": mae, "mae": mae, "mse": js.losses.mse(outputs, targets)["loss"]}


# ----------------------------------------------------------------- results.json

def finish(out: Path, experiment: str, args: argparse.Namespace, command: str,
           reports: Sequence[VariantReport], comparisons: Mapping[str, str],
           extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Writes ``results.json`` (merging variants of earlier runs with the same
    preset in the same ``--out``) and the viewer page, prints a short table,
    and returns the results."""
    path = out / "results.json"
    variants = dict(_earlier_variants(out, experiment, args))
    variants.update({report.name: report.result for report in reports})
    results = {
        "experiment": experiment, "preset": args.preset, "command": command,
        "args": jsonable({k: v for k, v in vars(args).items()
                           if k not in ("preset_config", "default_settings")}),
        "preset_config": dataclasses.asdict(args.preset_config),
        "variants": variants, "comparison_figures": dict(comparisons),
        "jaxsurf_version": js.__version__, "jax_version": jax.__version__,
        "backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
        **(extra or {}),
    }
    write_json(path, results)
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
    now = jsonable({k: getattr(args, k, None) for k in _SETTINGS})
    same = (old.get("experiment") == experiment and old.get("preset") == args.preset
            and old.get("preset_config") == jsonable(dataclasses.asdict(args.preset_config))
            and {k: old.get("args", {}).get(k) for k in _SETTINGS} == now)
    return old.get("variants", {}) if same else {}

def comparable(reports: Sequence[VariantReport], out: Path, experiment: str,
               args: argparse.Namespace, order: Sequence[str], tag: str = "final"
               ) -> dict[str, js.Surface]:
    """The ``tag`` planes of this run's variants, labelled "<model>: <variant>", plus
    those of earlier runs with the same settings found in ``out``: variants run one
    at a time still end up side by side."""
    planes = {r.name: (r.model_name, r.planes[tag]) for r in reports if tag in r.planes}
    for name, r in _earlier_variants(out, experiment, args).items():
        file = r.get("surfaces", {}).get(f"plane_{tag}")
        if name not in planes and file and (out / file).exists():
            planes[name] = (r["model"], js.Surface.load(out / file))
    names = sorted(planes, key=lambda n: list(order).index(n) if n in order else len(order))
    return {f"{planes[n][0]}: {n}": planes[n][1] for n in names}

def compare_planes(out: Path, name: str, planes: Mapping[str, js.Surface], title: str,
                   labels: Sequence[str] | None = None) -> str:
    """Side-by-side contours on one colour scale and one set of (log) levels;
    ``labels``: the (x, y) axis labels, default the planes' own."""
    path = out / f"{name}.png"
    js.plot.compare(dict(planes), kind="filled", log=True, title=title, labels=labels,
                    out=path)
    return relative(path, out)
