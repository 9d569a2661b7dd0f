"""What adaptive refinement (``refine=js.Refine(...)``) saves and what it costs in
accuracy: full grid against refined grids, measured in one run.

For each trained net (ResNet-20 with and without skip connections, and the
quick start's SmallCNN, each trained with Adam for ``--epochs`` on
``--train-examples`` Fashion-MNIST images; kept in ``runs/adaptive/`` so that
reruns evaluate the same nets), one filter-normalized random plane on
[-1, 1]^2 is evaluated on the full ``--grid`` x ``--grid`` grid (through a
store: an interrupted run resumes) and then refined at each tolerance of
``--tols`` (log10 units, ``start=--start``). Reported per run: points
evaluated, wall time (compilation included: the refined run compiles once per
level), the largest and 99th-percentile ``|Δ log10 loss|`` over all grid
points against the full grid, the share of grid points whose contour band (15
log-spaced levels over the full grid's range, as ``js.plot.contour(...,
log=True)`` draws) differs, and the thesis's 200x200 plane extrapolated with
the measured seconds per point.

``--from-saved`` rebuilds the table from the saved surfaces and adds
refinement replayed on the full grids (``js.refine.simulate``: no
evaluation) at the ``--simulate`` tolerances, starts 3 and 4 and both fills,
and the growth of the points with the grid (17-, 33- and 65-point sub-grids)
that the 200x200 extrapolation uses.

    python -m benchmarks.adaptive [--eval-examples 512] [--train-examples 10000]
        [--epochs 3] [--grid 65] [--tols 0.03 0.05] [--start 3] [--models resnet20 ...]
    python -m benchmarks.adaptive --figure-only      # redraw from the saved surfaces
    python -m benchmarks.adaptive --from-saved       # table and JSON from the saved
                                                     # surfaces (times: their metadata)
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import json
import time
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np

import jaxsurf as js
from benchmarks.common import SteadyTimer, fashion_mnist_subset, save_results
from jaxsurf import models, train
from jaxsurf._io.atomic import write_bytes
from jaxsurf._refine import FILLS
from jaxsurf.refine import simulate

MODELS = {"resnet20": lambda: models.resnet20(num_classes=10),
          "resnet20_noshort": lambda: models.resnet20(skip=False, num_classes=10),
          "smallcnn": lambda: models.SmallCNN()}
TITLES = {"resnet20": "ResNet-20", "resnet20_noshort": "ResNet-20, no skips",
          "smallcnn": "SmallCNN (quick start)"}
THESIS_GRID = 200  # the thesis's ResNet-110 plane: 200 x 200 points
SURFACES = Path(__file__).parent.parent / "runs" / "adaptive"  # git-ignored
FIGURE = Path(__file__).parent.parent / "docs" / "figures" / "adaptive_points.png"


def trained(name: str, data: dict[str, np.ndarray], args: argparse.Namespace
            ) -> tuple[Any, Any, float, float]:
    """``(fn, params, train seconds, final train loss)`` after ``--epochs`` of Adam.

    The trained variables are kept in ``runs/adaptive/<name>_e<epochs>_n<examples>.msgpack``
    so that a rerun (e.g. after an interrupted grid) evaluates the same net."""
    model = MODELS[name]()
    config = train.TrainConfig(epochs=args.epochs, batch_size=128, optimizer="adam",
                               learning_rate=2e-3, weight_decay=1e-4, schedule="cosine",
                               seed=0)
    saved = SURFACES / f"{name}_e{args.epochs}_n{len(data['y'])}.msgpack"
    facts = saved.with_suffix(".json")
    if saved.exists() and facts.exists():
        template = model.init(jax.random.key(0), data["x"][:1], train=False)
        variables = flax.serialization.from_bytes(template, saved.read_bytes())
        train_s, train_loss = json.loads(facts.read_text()).values()
    else:
        result = train.fit(model, {"train": data}, config, log=print, progress=False)
        variables = result.variables
        train_s = result.seconds
        train_loss = float(result.history[-1].get("train_step_loss", np.nan))
        SURFACES.mkdir(parents=True, exist_ok=True)
        write_bytes(saved, flax.serialization.to_bytes(variables))
        write_bytes(facts, json.dumps({"train_seconds": train_s,
                                       "train_loss": train_loss}).encode())
    fn, params = js.flax.adapt(model, variables, loss="cross_entropy")
    return fn, params, train_s, train_loss


def compare(full: js.Surface, refined: js.Surface) -> dict[str, float]:
    """Errors of ``refined`` against ``full`` over all grid points."""
    a, b = np.log10(full.metrics["loss"]), np.log10(refined.metrics["loss"])
    diff = np.abs(b - a)
    levels = js.plot.contour_levels(full.metrics["loss"], log=True)
    band_full = np.digitize(full.metrics["loss"], levels)
    band_refined = np.digitize(refined.metrics["loss"], levels)
    mask = refined.evaluated
    return {"max_abs_dlog10": float(diff.max()),
            "p99_abs_dlog10": float(np.percentile(diff, 99)),
            "mean_abs_dlog10": float(diff.mean()),
            "contour_band_differs": float(np.mean(band_full != band_refined)),
            "max_abs_dlog10_at_evaluated": float(diff[mask].max())}


def measure(name: str, data: dict[str, np.ndarray], evaluation: dict[str, np.ndarray],
            args: argparse.Namespace) -> tuple[dict[str, Any], list[list[Any]]]:
    fn, params, train_s, train_loss = trained(name, data, args)
    d1, d2 = js.random_plane(jax.random.key(args.seed), params)
    grid = np.linspace(-1, 1, args.grid)

    def plane(**options: Any) -> tuple[js.Surface, float]:
        start = time.perf_counter()
        s = js.evaluate_plane(fn, params, d1, d2, evaluation, grid, grid,
                              batch_size=args.batch_size, progress=False,
                              metadata={"model": name}, **options)
        return s, time.perf_counter() - start

    SURFACES.mkdir(parents=True, exist_ok=True)
    # The full grid goes through a store so that an interrupted run resumes; its cost per
    # point counts only the points this run evaluated.
    saved = SURFACES / f"{name}_full.npz"
    full, full_s = plane(store=SURFACES / f"{name}_full.store")
    total = full.metrics["loss"].size
    fresh = total - int(full.metadata.get("points_from_store", 0))
    if fresh == 0 and saved.exists():  # finished before: keep that run's rate
        per_point = float(js.Surface.load(saved).metadata["bench_s_per_point"])
    else:
        per_point = full_s / fresh
        full = dataclasses.replace(full, metadata={**full.metadata,
                                                   "bench_s_per_point": per_point})
        full.save(saved)
    # The full grid may have run earlier under another load: the baseline of the wall-time
    # ratios is this run's own steady rate on 128 grid points (4 chunks of 32).
    rate = steady_rate(fn, params, [d1, d2], evaluation, grid, args)
    full_s = rate * total  # what the whole grid costs at this run's rate
    result: dict[str, Any] = {
        "model": name, "num_params": models.num_params(params), "train_seconds": train_s,
        "train_loss": train_loss, "loss_at_centre": float(full.metrics["loss"][
            args.grid // 2, args.grid // 2]),
        "full": {"points": total, "wall_s_at_this_runs_rate": full_s,
                 "s_per_point_this_run": rate, "s_per_point_when_evaluated": per_point,
                 "evaluated_in_this_run": fresh},
        "refined": []}
    per_point = rate
    rows = [[name, "full", total, "100%", f"{full_s:.0f}", "1.00", "0", "0", "0",
             f"{THESIS_GRID ** 2 * per_point / 3600:.2f}"]]
    for tol in args.tols:
        refined, wall = plane(refine=js.Refine(tol=tol, start=args.start))
        refined = dataclasses.replace(refined, metadata={
            **refined.metadata, "bench_baseline_s_per_point": rate})
        refined.save(SURFACES / f"{name}_tol{tol:g}.npz")
        entry, row = refined_entry(name, full, refined, wall, rate)
        result["refined"].append(entry)
        rows.append(row)
    result["thesis_200x200_hours_full_extrapolated"] = THESIS_GRID ** 2 * per_point / 3600
    replayed, replayed_rows = replays(name, full, per_point, args)
    result.update(replayed)
    return result, rows + replayed_rows


def refined_entry(name: str, full: js.Surface, refined: js.Surface, wall: float,
                  per_point: float) -> tuple[dict[str, Any], list[Any]]:
    """The JSON entry and table row of one refined run against the full grid, with the
    full grid's cost at ``per_point`` seconds a point as the wall-time baseline."""
    total = full.metrics["loss"].size
    n = int(refined.evaluated.sum())
    share, full_s = n / total, per_point * total
    errors = compare(full, refined)
    thesis_h = THESIS_GRID ** 2 * share * per_point / 3600
    settings = refined.metadata["refine"]
    replay = simulate(full, js.Refine(tol=settings["tol"], start=settings["start"],
                                      fill=settings.get("fill", "bilinear")))
    entry = {"tol": settings["tol"], "start": settings["start"], "fill": settings.get("fill"),
             "points": n, "share": share, "wall_s": wall, "wall_vs_full": wall / full_s,
             "levels": settings["levels"], **errors,
             "thesis_200x200_hours_extrapolated": thesis_h,
             "simulation_picks_the_same_points": bool(np.array_equal(replay.evaluated,
                                                                     refined.evaluated))}
    row = [name, f"tol {settings['tol']:g}", n, f"{100 * share:.1f}%", f"{wall:.0f}",
           f"{wall / full_s:.2f}", f"{errors['max_abs_dlog10']:.4f}",
           f"{errors['p99_abs_dlog10']:.4f}", f"{100 * errors['contour_band_differs']:.2f}%",
           f"{thesis_h:.2f}"]
    return entry, row


def steady_rate(fn: Any, params: Any, directions: list[Any], data: dict[str, np.ndarray],
                grid: np.ndarray, args: argparse.Namespace) -> float:
    """Seconds per point of the grid's evaluation now, compilation excluded: 128
    points spread over the grid, in chunks of 32, timed from the end of the first."""
    rng = np.random.default_rng(args.seed)
    coords = rng.choice(grid, size=(128, 2))
    timer = SteadyTimer()
    js.evaluate_points(fn, params, directions, data, coords, batch_size=args.batch_size,
                       chunk_size=32, progress=timer)
    rate = timer.s_per_point()
    assert rate is not None, "four chunks give a steady rate"
    return rate


def figure(names: list[str], tol: float, start: int = 3) -> Path:
    """Filled log10-loss contours of each full plane with the points the refined run
    at ``tol`` evaluated (from the surfaces the benchmark saved)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.4),
                             constrained_layout=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        full = js.Surface.load(SURFACES / f"{name}_full.npz")
        path = SURFACES / f"{name}_tol{tol:g}.npz"
        refined = (js.Surface.load(path) if path.exists()
                   else simulate(full, js.Refine(tol=tol, start=start)))
        how = " (simulated)" if refined.metadata.get("simulated") else ""
        X, Y = np.meshgrid(full.alphas, full.betas, indexing="ij")  # [i, j] at (a_i, b_j)
        filled = ax.contourf(X, Y, np.log10(full.metrics["loss"]), levels=15, cmap="viridis")
        mask = refined.evaluated
        ax.scatter(X[mask], Y[mask], s=0.6, c="k", linewidths=0)
        ax.set_aspect("equal")
        ax.set_xlabel("alpha (direction 1)")
        ax.set_ylabel("beta (direction 2)")
        ax.set_title(f"{TITLES.get(name, name)}: {mask.sum()} of {mask.size} points\n"
                     f"evaluated at tol {tol:g}"
                     f"{how}", fontsize=10)
        fig.colorbar(filled, ax=ax, label="log10 loss (full grid)", shrink=0.85)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    plt.close(fig)
    print(f"saved {FIGURE}")
    return FIGURE


def main(argv: list[str] | None = None) -> None:
    """Measures every model and saves ``benchmarks/results/adaptive.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-examples", type=int, default=512)
    parser.add_argument("--train-examples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--grid", type=int, default=65)
    parser.add_argument("--tols", type=float, nargs="*", default=[0.03, 0.05])
    parser.add_argument("--start", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--figure-only", action="store_true",
                        help="redraw the figure from the surfaces a previous run saved")
    parser.add_argument("--simulate", type=float, nargs="*", default=[0.08, 0.06, 0.05, 0.04,
                                                                       0.03, 0.02, 0.01, 0.005],
                        help="with --from-saved: tolerances replayed on the full grids "
                             "(js.refine.simulate: no evaluation) at starts 3 and 4")
    parser.add_argument("--from-saved", action="store_true",
                        help="rebuild the table and JSON from the surfaces a previous (e.g. "
                             "interrupted) run saved; wall times are their metadata seconds")
    args = parser.parse_args(argv)
    if args.figure_only:
        figure(args.models, figure_tol(args), args.start)
        return
    if args.from_saved:
        names = [n for n in args.models if (SURFACES / f"{n}_full.npz").exists()]
        results, table = [], []
        for name in names:
            result, rows = from_saved(name, args)
            results.append(result)
            table += rows
        save_results("adaptive", {**settings(args, "from saved surfaces"), "models": results},
                     table, HEADER)
        figure(names, figure_tol(args), args.start)
        return
    data, source = fashion_mnist_subset(args.train_examples)
    evaluation = {k: v[:args.eval_examples] for k, v in data.items()}
    results, table = [], []
    for name in args.models:
        result, rows = measure(name, data, evaluation, args)
        results.append(result)
        table += rows
        print(*rows, sep="\n", flush=True)
    save_results("adaptive", {**settings(args, source), "models": results}, table, HEADER)
    figure(args.models, figure_tol(args), args.start)


def grid_scaling(full: js.Surface, tol: float, per_point: float) -> dict[str, Any]:
    """How the points refinement needs grow with the grid: refinement replayed on the
    full plane's 17-, 33- and 65-point sub-grids (every 4th, 2nd, 1st point; all with
    ``start=3``, so the start cells are the same), and the points of the thesis's
    200 x 200 plane extrapolated with the growth exponent from 33 to 65 points."""
    counts = {}
    for step in (4, 2, 1):
        sub = js.Surface(full.alphas[::step], full.betas[::step],
                         {k: v[::step, ::step] for k, v in full.metrics.items()})
        counts[len(sub.alphas)] = int(simulate(sub, js.Refine(tol=tol, start=3))
                                      .evaluated.sum())
    (n_mid, p_mid), (n_top, p_top) = sorted(counts.items())[-2:]
    exponent = math.log(p_top / p_mid) / math.log((n_top - 1) / (n_mid - 1))
    points = min(p_top * ((THESIS_GRID - 1) / (n_top - 1)) ** exponent, THESIS_GRID ** 2)
    return {"tol": tol, "points_by_grid": counts, "exponent": exponent,
            "thesis_points": points, "thesis_hours": points * per_point / 3600}


def uniform_half_grid(full: js.Surface) -> dict[str, dict[str, float]]:
    """The errors of interpolating the full plane from its uniform half-resolution
    sub-grid (every 2nd point: about a quarter of the points), linearly and with cubic
    splines (scipy), in log10 loss: what a quarter of the points, evenly spread, gives."""
    from scipy.interpolate import RegularGridInterpolator

    log_loss = np.log10(np.asarray(full.metrics["loss"], np.float64))
    a, b = np.asarray(full.alphas), np.asarray(full.betas)
    points = np.stack([g.ravel() for g in np.meshgrid(a, b, indexing="ij")], 1)
    out = {}
    for method in ("linear", "cubic"):
        guess = RegularGridInterpolator((a[::2], b[::2]), log_loss[::2, ::2], method=method)
        diff = np.abs(guess(points).reshape(log_loss.shape) - log_loss)
        n = len(a[::2]) * len(b[::2])
        out[method] = {"points": n, "share": n / log_loss.size,
                       "max_abs_dlog10": float(diff.max()),
                       "p99_abs_dlog10": float(np.percentile(diff, 99))}
    return out


def figure_tol(args: argparse.Namespace) -> float:
    """The tolerance the figure shows: the first of ``--tols`` (simulated if that run
    is not saved), or the first of ``--simulate`` without ``--tols``."""
    return args.tols[0] if args.tols else args.simulate[0]


HEADER = ["model", "run", "points", "share", "wall s", "vs full", "max |dlog10|",
          "p99 |dlog10|", "band differs", "200x200 h (extrap.)"]


def settings(args: argparse.Namespace, source: str) -> dict[str, Any]:
    return {"data": source, "train_examples": args.train_examples, "epochs": args.epochs,
            "eval_examples": args.eval_examples, "grid": [args.grid, args.grid],
            "range": [-1, 1], "tols": args.tols, "start": args.start,
            "batch_size": args.batch_size, "thesis_grid": [THESIS_GRID, THESIS_GRID],
            "note": "wall times on a 2-core CPU shared with other jobs: ratios in one run"}


def from_saved(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[list[Any]]]:
    """One model's entry from its saved surfaces; times from their metadata."""
    full = js.Surface.load(SURFACES / f"{name}_full.npz")
    total = full.metrics["loss"].size
    per_point = float(full.metadata.get("bench_s_per_point",
                                        full.metadata["seconds"] / total))
    full_s = per_point * total
    result: dict[str, Any] = {
        "model": name, "times": "Surface metadata seconds",
        "loss_at_centre": float(full.metrics["loss"][len(full.alphas) // 2,
                                                     len(full.betas) // 2]),
        "full": {"points": total, "wall_s": full_s, "s_per_point": per_point},
        "refined": [],
        "thesis_200x200_hours_full_extrapolated": THESIS_GRID ** 2 * per_point / 3600}
    rows = [[name, "full", total, "100%", f"{full_s:.0f}", "1.00", "0", "0", "0",
             f"{THESIS_GRID ** 2 * per_point / 3600:.2f}"]]
    for tol in args.tols:
        path = SURFACES / f"{name}_tol{tol:g}.npz"
        if not path.exists():
            continue
        refined = js.Surface.load(path)
        rate = float(refined.metadata.get("bench_baseline_s_per_point", per_point))
        entry, row = refined_entry(name, full, refined, float(refined.metadata["seconds"]),
                                   rate)
        result["refined"].append(entry)
        rows.append(row)
    replayed, replayed_rows = replays(name, full, per_point, args)
    result.update(replayed)
    return result, rows + replayed_rows


def replays(name: str, full: js.Surface, per_point: float, args: argparse.Namespace
            ) -> tuple[dict[str, Any], list[list[Any]]]:
    """Refinement replayed on the full grid (no evaluation) at the ``--simulate``
    tolerances, starts 3 and 4 and both fills, and the growth of the points with the
    grid; ``per_point`` prices the 200x200 extrapolations."""
    total = full.metrics["loss"].size
    simulated, rows = [], []
    for start, tol, fill in itertools.product((3, 4), args.simulate, FILLS):
        sim = simulate(full, js.Refine(tol=tol, start=start, fill=fill))
        n = int(sim.evaluated.sum())
        errors = compare(full, sim)
        thesis_h = THESIS_GRID ** 2 * n / total * per_point / 3600
        simulated.append({"tol": tol, "start": start, "fill": fill, "points": n,
                          "share": n / total, **errors,
                          "thesis_200x200_hours_extrapolated": thesis_h})
        rows.append([name, f"sim. tol {tol:g} start {start} {fill}", n,
                     f"{100 * n / total:.1f}%", "-", "-",
                     f"{errors['max_abs_dlog10']:.4f}", f"{errors['p99_abs_dlog10']:.4f}",
                     f"{100 * errors['contour_band_differs']:.2f}%", f"{thesis_h:.2f}"])
    uniform = uniform_half_grid(full)
    for method, errors in uniform.items():
        rows.append([name, f"uniform half grid, {method}", errors["points"],
                     f"{100 * errors['share']:.1f}%", "-", "-", f"{errors['max_abs_dlog10']:.4f}",
                     f"{errors['p99_abs_dlog10']:.4f}", "-", "-"])
    scaling = grid_scaling(full, figure_tol(args), per_point)
    rows.append([name, f"{THESIS_GRID}x{THESIS_GRID} at tol {scaling['tol']:g} (points ~ n^"
                       f"{scaling['exponent']:.2f})", round(scaling["thesis_points"]),
                 f"{100 * scaling['thesis_points'] / THESIS_GRID ** 2:.1f}%", "-", "-", "-",
                 "-", "-", f"{scaling['thesis_hours']:.2f}"])
    return {"simulated": simulated, "uniform_half_grid": uniform, "grid_scaling": scaling}, rows


if __name__ == "__main__":
    main()
