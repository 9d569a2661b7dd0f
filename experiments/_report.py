"""What an experiment writes: ``results.json`` (atomically; variants of earlier
runs with the same settings in the same ``--out`` are kept), the summary table,
the comparison figures, and :func:`reuse_json` for small numbers that are worth
keeping between runs (curvature, sharpness, test metrics)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import jax
import numpy as np

import jaxsurf as js
from jaxsurf._io import atomic as _atomic

if TYPE_CHECKING:
    import argparse

    from experiments._variant import VariantRun

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

def write_json(path: Path, value: Any) -> None:
    """Writes ``value`` as JSON atomically: a crash mid-write leaves the old file."""
    _atomic.write_text(path, json.dumps(jsonable(value), indent=1, default=str))

def reuse_json(path: Path, request: Mapping[str, Any], compute: Callable[[], dict]) -> dict:
    """The result saved in ``path`` for the same ``request``, else ``compute()`` (saved).

    Example:
        >>> numbers = reuse_json(out / "skip" / "curvature.json", {"params": fp},
        ...                      lambda: curvature(fn, params, data, preset, seed))
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

def compare_planes(out: Path, name: str, planes: Mapping[str, js.Surface], title: str,
                   labels: Sequence[str] | None = None) -> str:
    """Side-by-side contours on one colour scale and one set of (log) levels;
    ``labels``: the (x, y) axis labels, default the planes' own."""
    path = out / f"{name}.png"
    js.plot.compare(dict(planes), kind="filled", log=True, title=title, labels=labels,
                    out=path)
    return relative(path, out)
