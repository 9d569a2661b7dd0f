"""The loss surfaces of one trained network: the filter-normalized random plane
and line (kept in the library's resumable ``store=``, so a rerun evaluates
nothing twice), the same plane on held-out splits, the numbers that summarise a
plane (:func:`surface_stats`) and the per-variant figures."""

from __future__ import annotations

import math
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import jax
import numpy as np

import jaxsurf as js
from experiments._data import Data
from experiments._report import relative
from experiments._settings import Preset
from jaxsurf.store import StoreMismatchError

if TYPE_CHECKING:
    from experiments._variant import VariantRun


RADII = (0.25, 0.5, 1.0)

def random_plane(params: Any, seed: int) -> tuple[Any, Any]:
    """Li et al.'s filter-normalized random directions (biases and BatchNorm zeroed)."""
    return js.random_plane(jax.random.key(seed), params, "filter", "biasbn")


def evaluate_stored(store: Path, evaluate: Callable[[Path], js.Surface]) -> js.Surface:
    """``evaluate(store)`` and the Surface saved as ``<store without .store>.npz``.

    The library's store keeps every finished point, so a rerun with the same
    params, directions, grid and data evaluates nothing again; a store made
    for other ones (another ``--grid``, ``--range`` or seed) is replaced and
    the surface recomputed.
    """
    with warnings.catch_warnings():  # non-finite points are counted in metadata
        warnings.filterwarnings("ignore", message=".*non-finite values.*",
                                category=RuntimeWarning)
        try:
            surface = evaluate(store)
        except StoreMismatchError:
            print(f"{store} was made with other settings: recomputing", flush=True)
            shutil.rmtree(store)
            surface = evaluate(store)
    surface.save(store.with_suffix(".npz"))
    return surface


def plane_and_line(run: VariantRun, tag: str, params: Any, fn: Callable, data: Data,
                   preset: Preset, seed: int, meta: Mapping[str, Any], *,
                   directions: tuple[Any, Any] | None = None, alphas: np.ndarray | None = None,
                   betas: np.ndarray | None = None, line: bool = True, split: str = "train"
                   ) -> tuple[js.Surface, js.Surface | None]:
    """The plane (and the 1-D line along ``d1``) around ``params``.

    Defaults: the run's filter-normalized random directions and the preset's
    grid on ``[-range, range]``. Files: ``plane_<tag>.npz``, ``line_<tag>.npz``,
    each beside its store (see :func:`evaluate_stored`). ``split``: the data
    split the values average over (the first ``surface_examples`` examples).
    Records the files, :func:`surface_stats` and seconds in ``run.result``.
    """
    d1, d2 = directions or run.directions
    r = preset.range
    alphas = np.linspace(-r, r, preset.grid) if alphas is None else alphas
    betas = np.linspace(-r, r, preset.grid) if betas is None else betas
    subset = data.subset(preset.surface_examples, split)
    meta = {**meta, "seed": seed, "dataset": data.name, "loss": meta.get("loss"),
            "directions_fingerprint": js.tree.fingerprint((d1, d2)),
            **({"split": split} if split != "train" else {}),
            "tag": tag, "synthetic": data.synthetic}
    batch = preset.eval_batch_size
    plane = evaluate_stored(run.dir / f"plane_{tag}.store", lambda store: js.evaluate_plane(
        fn, params, d1, d2, subset, alphas, betas, batch_size=batch, metadata=meta,
        store=store))
    surfaces = run.result["surfaces"]
    surfaces[f"plane_{tag}"] = relative(run.dir / f"plane_{tag}.npz", run.dir.parent)
    line_surface = None
    if line:
        line_surface = evaluate_stored(run.dir / f"line_{tag}.store", lambda store: (
            js.evaluate_line(fn, params, d1, subset, np.linspace(-r, r, preset.line_points),
                             batch_size=batch, metadata=meta, store=store)))
        surfaces[f"line_{tag}"] = relative(run.dir / f"line_{tag}.npz", run.dir.parent)
    run.planes[tag] = plane
    stats = surface_stats(plane)
    run.result["surface_stats"][tag] = stats
    if tag == "final":  # the final plane's numbers also sit at the top: stats["minimum"]
        run.result["surface_stats"].update(stats)
    run.result["seconds"][f"plane_{tag}"] = plane.metadata.get("seconds")
    if line_surface is not None:
        run.result["seconds"][f"line_{tag}"] = line_surface.metadata.get("seconds")
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
    return {"topology": _topology(plane, metric), "metric": metric, "minimum": lo,
            "argmin": list(plane.argmin(metric)),
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

def basins_figure(run: VariantRun, tag: str, plane: js.Surface, title: str) -> None:
    """The plane's filled contours with its local minima, persistent ones and their
    saddles marked (``basins_<tag>.png``)."""
    try:
        path = run.dir / f"basins_{tag}.png"
        js.plot.basins(plane, log=wide_range(plane), title=f"{title}: basins", out=path)
    except ImportError:  # gudhi not installed: surface_stats says so
        return
    run.result["figures"][f"basins_{tag}"] = relative(path, run.dir.parent)
