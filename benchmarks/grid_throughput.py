"""Grid-evaluation throughput: jaxsurf against the reference tool's PyTorch loop and
against the device's measured matmul peak, measured side by side in one run.

For each model (a CIFAR ResNet on Fashion-MNIST images, and a D-GEX-sized dense
regressor 942 -> 3 x 9000 -> 4760 on random regression data) every round
measures, one after another:

* the device's matmul peak: the best time of a large jitted float32 matmul;
* ``js.evaluate_points`` (float32, and with ``compute_dtype=bfloat16`` on a
  bf16 model) on a small plane, timed per point in the steady state: from the
  end of its first chunk (compilation and first run) to the end, read off the
  ``progress`` callback;
* the reference tool's algorithm in PyTorch (``benchmarks/torch_reference.py``:
  for each point write the weights into the model, iterate a ``DataLoader``,
  sum the loss) on the same architecture, weights, data and device, in a
  separate worker process per thread setting so the two runtimes' thread pools
  never compete; it evaluates the first points of the plane and its losses
  are checked against jaxsurf's.

Reported per method: seconds per point (best and median over rounds),
examples x points per second, achieved FLOP/s and its fraction of the measured
peak. FLOPs are counted analytically from the model's jaxpr (2 per
multiply-add of every ``dot_general`` and ``conv_general_dilated``;
elementwise work not counted); XLA's own ``cost_analysis`` count of one batch
is stored beside it. Results: ``benchmarks/results/grid_throughput[_TAG].json``
(or ``--out``) and a printed table.

    python -m benchmarks.grid_throughput                          # this CPU's defaults
    python -m benchmarks.grid_throughput --cpu-devices 1 --intra-op on --tag one_device
    python -m benchmarks.grid_throughput --models resnet56 dense --image-shape cifar \\
        --examples 50000 --dense-examples 20000 --out $OUT/grid_throughput_gpu.json  # GPU

On CPU the XLA flags must be set before JAX starts, so ``--cpu-devices`` (one
simulated device per core by default) and ``--intra-op`` are read first.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["resnet20", "dense"],
                   choices=["resnet20", "resnet56", "dense"])
    p.add_argument("--examples", type=int, default=1000, help="images for the ResNet")
    p.add_argument("--batch-size", type=int, default=500, help="ResNet batch size")
    p.add_argument("--image-shape", choices=["fmnist", "cifar"], default="fmnist",
                   help="Fashion-MNIST images, or random images of CIFAR-10's shape")
    p.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--dense-examples", type=int, default=1000)
    p.add_argument("--dense-batch-size", type=int, default=500)
    p.add_argument("--dense-width", type=int, default=9000)
    p.add_argument("--grid", type=int, default=3,
                   help="jaxsurf evaluates (whole chunks of) a GRID x GRID plane")
    p.add_argument("--dense-grid", type=int, default=2, help="GRID for the dense net")
    p.add_argument("--torch-points", type=int, default=2, help="points per PyTorch round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--torch-configs", nargs="*", default=None,
                   help="PyTorch workers as THREADS or THREADS:OMP_WAIT_POLICY, e.g. 1 2 "
                        "2:passive (default: 1, CORES and CORES:passive)")
    p.add_argument("--torch-batch-size", type=int, default=None,
                   help="DataLoader batch size (default: --batch-size / --dense-batch-size)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--points-per-step", type=int, default=1)
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="simulated CPU devices (default: one per core)")
    p.add_argument("--intra-op", choices=["on", "off", "auto"], default="auto",
                   help="XLA CPU multi-threaded kernels (auto: on for one device, else off)")
    p.add_argument("--peak-size", type=int, default=None, help="matmul size for the peak")
    p.add_argument("--sweep", nargs="+", default=None, metavar=("KNOB", "VALUE"),
                   help="instead: time jaxsurf float32 for each VALUE of KNOB (batch_size or "
                        "points_per_step), interleaved within every round")
    p.add_argument("--tag", default="", help="suffix of the results file")
    p.add_argument("--out", default=None, help="write the JSON here instead")
    return p.parse_args(argv)


def cpu_xla_flags(args: argparse.Namespace) -> str:
    """The XLA flags this run needs on a CPU (empty when none)."""
    devices = args.cpu_devices or os.cpu_count() or 1
    intra = args.intra_op if args.intra_op != "auto" else ("on" if devices == 1 else "off")
    flags = [f"--xla_force_host_platform_device_count={devices}"]
    if intra == "off":
        flags.append("--xla_cpu_multi_thread_eigen=false")
    return " ".join(flags)


if __name__ == "__main__":  # XLA reads its flags once, when JAX starts
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), cpu_xla_flags(parse_args(sys.argv[1:]))]).strip()

import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxsurf as js  # noqa: E402
from benchmarks.common import RESULTS, SteadyTimer, device_info  # noqa: E402
from jaxsurf import models  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- FLOPs
def _subjaxprs(eqn: Any) -> list[Any]:
    out = []
    for value in eqn.params.values():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
                out.append(v.jaxpr)
            elif hasattr(v, "eqns"):
                out.append(v)
    return out


def _jaxpr_flops(jaxpr: Any) -> int:
    """2 x multiply-adds of every dot_general and conv_general_dilated in ``jaxpr``."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            lhs = eqn.invars[0].aval.shape
            (contract, _), _ = eqn.params["dimension_numbers"]
            total += 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(
                np.prod([lhs[d] for d in contract]))
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, *spatial)
            per_output = rhs[spec[1]] * int(np.prod([rhs[d] for d in spec[2:]]))
            total += 2 * int(np.prod(eqn.outvars[0].aval.shape)) * per_output
        for sub in _subjaxprs(eqn):
            total += _jaxpr_flops(sub)
    return total


def model_flops(fn: Callable, params: Any, batch: Any) -> int:
    """Analytic FLOPs of one call ``fn(params, batch)`` (matmuls and convolutions).

    Example:
        >>> model_flops(lambda p, b: (b @ p).sum(), jnp.ones((3, 4)), jnp.ones((2, 3)))
        48
    """
    return _jaxpr_flops(jax.make_jaxpr(fn)(params, batch).jaxpr)


def xla_flops(fn: Callable, params: Any, batch: Any) -> float | None:
    """XLA's ``cost_analysis`` FLOP count of one compiled call (None if absent)."""
    cost = jax.jit(fn).lower(params, batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One model with its params, plane directions, data and the PyTorch twin's spec."""

    name: str
    fn: Callable
    params: Any
    directions: list[Any]
    data: dict[str, np.ndarray]
    batch_size: int
    source: str
    torch_spec: dict[str, Any]
    stats: Any = None
    bf16_fn: Callable | None = None
    torch_batch_size: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def examples(self) -> int:
        return len(self.data["y"])


def load_images(n: int, shape: str, data_dir: str | None) -> tuple[dict[str, np.ndarray], str]:
    """``n`` standardized Fashion-MNIST training images (or random images of CIFAR-10's
    shape, or random stand-ins when the files are missing), with a description."""
    rng = np.random.default_rng(0)
    if shape == "fmnist":
        try:
            from jaxsurf.data.fashion_mnist import load_fashion_mnist
            from jaxsurf.data.preprocess import channel_stats, standardize

            raw = load_fashion_mnist(data_dir, validation=0)
            if n <= len(raw["train"]["y"]):
                mean, std = channel_stats(raw["train"]["x"])
                return ({"x": standardize(raw["train"]["x"][:n], mean, std),
                         "y": raw["train"]["y"][:n].astype(np.int32)},
                        f"Fashion-MNIST, first {n} training images")
        except FileNotFoundError:
            pass
        return ({"x": rng.normal(size=(n, 28, 28, 1)).astype(np.float32),
                 "y": rng.integers(0, 10, n).astype(np.int32)},
                "random 28x28x1 images (Fashion-MNIST files missing)")
    return ({"x": rng.normal(size=(n, 32, 32, 3)).astype(np.float32),
             "y": rng.integers(0, 10, n).astype(np.int32)},
            "random images of CIFAR-10's shape (32x32x3; FLOPs as CIFAR-10)")


def calibrate_batchnorm(model: Any, variables: dict, x: np.ndarray, steps: int = 30) -> dict:
    """Running BatchNorm statistics from ``steps`` train-mode passes (no weight
    update), so that the untrained net's activations are normalised as after
    training."""
    apply = jax.jit(lambda v, xb: model.apply(v, xb, train=True, mutable=["batch_stats"])[1])
    rng = np.random.default_rng(1)
    for _ in range(steps):
        batch = x[rng.choice(len(x), min(len(x), 256), replace=False)]
        variables = {**variables, **apply(variables, batch)}
    return variables


def resnet_case(depth: int, args: argparse.Namespace) -> Case:
    """A CIFAR ResNet (option A shortcuts, BatchNorm in eval mode) on images."""
    data, source = load_images(args.examples, args.image_shape, args.data_dir)
    model = models.ResNetCIFAR(depth=depth, num_classes=10)
    variables = model.init(jax.random.key(0), data["x"][:2])
    variables = calibrate_batchnorm(model, variables, data["x"])
    fn, params = js.flax.adapt(model, variables)
    bf16_model = models.ResNetCIFAR(depth=depth, num_classes=10, dtype=jnp.bfloat16)
    bf16_fn, _ = js.flax.adapt(bf16_model, variables)
    directions = list(js.random_plane(jax.random.key(1), params))
    spec = {"model": "resnet", "depth": depth, "num_classes": 10,
            "in_channels": int(data["x"].shape[-1]), "loss": "cross_entropy"}
    return Case(f"resnet{depth}", fn, params, directions, data, min(args.batch_size,
                args.examples), source, spec, stats=variables["batch_stats"], bf16_fn=bf16_fn)


def dense_case(args: argparse.Namespace) -> Case:
    """The D-GEX-sized regressor (tanh, no dropout at evaluation) on random data."""
    n, width = args.dense_examples, args.dense_width
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(n, 942)).astype(np.float32),
            "y": rng.normal(size=(n, 4760)).astype(np.float32)}
    model = models.DenseRegressor(hidden=3, width=width, outputs=4760)
    variables = model.init(jax.random.key(0), data["x"][:2])
    fn, params = js.flax.adapt(model, variables, loss="mse")
    bf16_fn, _ = js.flax.adapt(models.DenseRegressor(hidden=3, width=width, outputs=4760,
                                                     dtype=jnp.bfloat16), variables, loss="mse")
    directions = list(js.random_plane(jax.random.key(1), params))
    spec = {"model": "mlp", "inputs": 942, "width": width, "hidden": 3, "outputs": 4760,
            "loss": "mse"}
    return Case(f"dense_942-3x{width}-4760", fn, params, directions, data,
                min(args.dense_batch_size, n),
                "random regression data (942 -> 4760; D-GEX is not downloadable)", spec,
                bf16_fn=bf16_fn)


def count_flops(case: Case) -> None:
    """Stores analytic and XLA FLOPs per example in ``case.info``."""
    batch = {k: v[:case.batch_size] for k, v in case.data.items()}
    analytic = model_flops(case.fn, case.params, batch) / case.batch_size
    xla = xla_flops(case.fn, case.params, batch)
    case.info["flops_per_example"] = {"analytic_matmul_conv": analytic,
                                      "xla_cost_analysis": None if xla is None
                                      else xla / case.batch_size}
    case.info["flops_per_point"] = analytic * case.examples
    case.info["num_params"] = models.num_params(case.params)


# --------------------------------------------------------------------------- timing
def matmul_peak(size: int, dtype: Any = jnp.float32, repeats: int = 3) -> float:
    """FLOP/s of the best of ``repeats`` jitted ``size x size`` matmuls in ``dtype``
    (default precision: on GPUs float32 may use TF32)."""
    a = jax.random.normal(jax.random.key(0), (size, size), dtype)
    run = jax.jit(lambda x: x @ x)
    run(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def plane(grid: int) -> np.ndarray:
    """The ``grid x grid`` coordinates of the plane ``[-1, 1]^2``, row by row."""
    axis = np.linspace(-1, 1, grid)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1).astype(np.float32)


def whole_chunks(grid: int, chunk: int) -> np.ndarray:
    """Points of the ``grid x grid`` plane (grown when needed) cut to a whole number
    of chunks, at least two, so that the steady rate is read off full chunks only.

    Example:
        >>> len(whole_chunks(3, 4))   # 9 points would leave a padded third chunk
        8
    """
    coords = plane(max(grid, math.isqrt(2 * chunk - 1) + 1))  # grid**2 >= 2 chunks
    return coords[:len(coords) // chunk * chunk]


def save_json(results: dict[str, Any], args: argparse.Namespace, stem: str) -> Path:
    """Writes ``results`` to ``--out`` or ``benchmarks/results/<stem>[_<tag>].json``."""
    path = Path(args.out) if args.out else \
        RESULTS / f"{stem}{'_' + args.tag if args.tag else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))
    print(f"saved {path}")
    return path


def time_jaxsurf(case: Case, coords: np.ndarray, args: argparse.Namespace,
                 bf16: bool = False, **knobs: Any) -> dict[str, Any]:
    """One ``evaluate_points`` call; steady seconds per point after its first chunk.
    ``knobs`` override ``batch_size`` / ``points_per_step``."""
    points_per_step = knobs.get("points_per_step", args.points_per_step)
    chunk = len(jax.devices()) * points_per_step
    timer = SteadyTimer()
    values = js.evaluate_points(
        case.bf16_fn if bf16 else case.fn, case.params, case.directions, case.data, coords,
        batch_size=knobs.get("batch_size", case.batch_size), chunk_size=chunk,
        points_per_step=points_per_step,
        compute_dtype=jnp.bfloat16 if bf16 else None, progress=timer)
    return {"s_per_point": timer.s_per_point(), "call_s": time.perf_counter() - timer.start,
            "values": values["loss"]}


def _flat(tree: Any, prefix: str) -> dict[str, np.ndarray]:
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        keys = "/".join(str(getattr(k, "key", k)) for k in path)
        out[f"{prefix}:{keys}"] = np.asarray(leaf)
    return out


def write_torch_spec(case: Case, folder: Path) -> Path:
    """The weights, directions and data for the PyTorch worker, as one ``.npz``."""
    arrays = {**_flat(case.params, "origin"), **_flat(case.stats or {}, "stats"),
              "data:x": case.data["x"], "data:y": case.data["y"]}
    for k, d in enumerate(case.directions, 1):
        arrays.update(_flat(d, f"d{k}"))
    spec = {**case.torch_spec, "batch_size": case.torch_batch_size,
            "num_directions": len(case.directions),
            "device": "cpu" if jax.default_backend() == "cpu" else "cuda"}
    path = folder / f"{case.name}.npz"
    np.savez(path, spec=np.array(json.dumps(spec)), **arrays)
    return path


def torch_configs(args: argparse.Namespace) -> list[tuple[int, str | None]]:
    """``(threads, OMP_WAIT_POLICY or None)`` per PyTorch worker to measure."""
    cores = os.cpu_count() or 1
    given = args.torch_configs or sorted({"1", str(cores), f"{cores}:passive"})
    out = []
    for text in given:
        threads, _, policy = text.partition(":")
        out.append((int(threads), policy or None))
    return out


def torch_label(threads: int, policy: str | None) -> str:
    return (f"PyTorch loop, {threads} thread{'s' * (threads > 1)}"
            + (f", OMP_WAIT_POLICY={policy}" if policy else ""))


class TorchWorker:
    """A ``benchmarks.torch_reference`` worker process with ``threads`` threads."""

    def __init__(self, spec: Path, threads: int, policy: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "OMP_WAIT_POLICY")}
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        self.threads = threads
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.torch_reference", str(spec), "--threads",
             str(threads)], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
        raise RuntimeError(f"the PyTorch worker ended (exit code {self.proc.wait()})")

    def run(self, coords: np.ndarray) -> dict[str, Any]:
        """Evaluates ``coords``: ``{"s_per_point", "values"}``."""
        self.proc.stdin.write(json.dumps({"coords": coords.tolist()}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        return {"s_per_point": answer["seconds"] / len(coords),
                "values": np.array(answer["values"])}

    def close(self) -> None:
        self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - b) / np.abs(b)))


def measure(case: Case, args: argparse.Namespace, spec: Path | None) -> dict[str, Any]:
    """All rounds for one case: ``{"runs": {method: [per round]}, "peaks": {dtype: [per
    round]}, "checks": value checks}``."""
    peaks: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    coords = whole_chunks(args.dense_grid if case.name.startswith("dense") else args.grid,
                          len(jax.devices()) * args.points_per_step)  # time_jaxsurf's chunk
    runs: dict[str, list[dict[str, Any]]] = {}
    checks: dict[str, list[float]] = {}
    for r in range(args.rounds):
        peaks["float32"].append(matmul_peak(args.peak_size))
        if not args.no_bf16:
            peaks["bfloat16"].append(matmul_peak(args.peak_size, jnp.bfloat16))
        jax_run = time_jaxsurf(case, coords, args)
        jax_run["load_average"] = os.getloadavg()[0]
        runs.setdefault("jaxsurf float32", []).append(jax_run)
        print(f"  round {r}: jaxsurf float32 {jax_run['s_per_point']:.4f} s/point", flush=True)
        if not args.no_bf16:
            bf = time_jaxsurf(case, coords, args, bf16=True)
            bf["load_average"] = os.getloadavg()[0]
            runs.setdefault("jaxsurf bf16", []).append(bf)
            checks.setdefault("bf16_vs_f32_max_rel", []).append(
                _max_rel(bf["values"], jax_run["values"]))
            print(f"  round {r}: jaxsurf bf16 {bf['s_per_point']:.4f} s/point", flush=True)
        for threads, policy in [] if spec is None else torch_configs(args):
            time.sleep(0.5)  # let XLA's worker threads go idle
            worker = TorchWorker(spec, threads, policy)
            try:
                tr = worker.run(coords[:args.torch_points])
            finally:
                worker.close()
            tr["load_average"] = os.getloadavg()[0]
            runs.setdefault(torch_label(threads, policy), []).append(tr)
            checks.setdefault("torch_vs_jax_max_rel", []).append(
                _max_rel(jax_run["values"][:args.torch_points], tr["values"]))
            print(f"  round {r}: {torch_label(threads, policy)}: {tr['s_per_point']:.4f} "
                  f"s/point", flush=True)
    return {"runs": runs, "peaks": {k: v for k, v in peaks.items() if v},
            "checks": {k: max(v) for k, v in checks.items()}}


# --------------------------------------------------------------------------- report
def _per_round(values: list[float], others: list[float]) -> float:
    """Median over rounds of ``values[r] / others[r]`` (both measured in round r)."""
    return statistics.median(v / o for v, o in zip(values, others))


def summarize(case: Case, measured: dict[str, Any]) -> dict[str, Any]:
    """Per method: best and median seconds per point, and what follows from them.

    Load on a shared machine changes from round to round, so ratios are also
    taken within each round (the method, the peak and PyTorch measured seconds
    apart) and their median reported: ``fraction_of_peak`` (bf16 runs against
    the bf16 matmul peak) and ``speedup_vs_torch`` (against the fastest PyTorch
    configuration of that round); the ``*_best`` values divide best by best.
    """
    flops = case.info["flops_per_point"]
    peaks = measured["peaks"]
    runs = measured["runs"]
    torch_names = [n for n in runs if "PyTorch" in n]
    torch_rounds = [min(runs[n][r]["s_per_point"] for n in torch_names)
                    for r in range(len(runs[torch_names[0]]))] if torch_names else None
    methods = {}
    for name, rounds in runs.items():
        times = [r["s_per_point"] for r in rounds]
        best = min(times)
        peak = peaks["bfloat16"] if "bf16" in name else peaks["float32"]
        m = {"s_per_point_best": best, "s_per_point_median": statistics.median(times),
             "s_per_point_rounds": times, "examples_points_per_s": case.examples / best,
             "flop_per_s": flops / best,
             "fraction_of_peak": _per_round([flops / t for t in times], peak),
             "fraction_of_peak_best": flops / best / max(peak),
             "speedup_vs_torch": None if torch_rounds is None
             else _per_round(torch_rounds, times),
             "speedup_vs_torch_best": None if torch_rounds is None
             else min(torch_rounds) / best,
             "projected_51x51_s": 51 * 51 * best,
             "load_average_rounds": [r["load_average"] for r in rounds]}
        if "call_s" in rounds[0]:
            m["call_s_rounds"] = [r["call_s"] for r in rounds]
        methods[name] = m
    return {"model": case.name, "examples": case.examples, "batch_size": case.batch_size,
            "torch_batch_size": case.torch_batch_size, "data": case.source, **case.info,
            "matmul_peak_rounds": peaks, "methods": methods, "checks": measured["checks"]}


def table_rows(summary: dict[str, Any], device: str) -> list[list[str]]:
    rows = []
    for name, m in summary["methods"].items():
        speed, best = m["speedup_vs_torch"], m["speedup_vs_torch_best"]
        rows.append([summary["model"], name, device, f"{m['s_per_point_best']:.4f}",
                     f"{m['s_per_point_median']:.4f}", f"{m['examples_points_per_s']:.0f}",
                     f"{m['flop_per_s'] / 1e9:.1f}", f"{100 * m['fraction_of_peak']:.0f}%",
                     "-" if speed is None else f"{speed:.2f}x / {best:.2f}x"])
    return rows


HEADER = ["model", "method", "device", "s/point best", "s/point median", "examples*points/s",
          "GFLOP/s (best)", "of peak", "vs fastest PyTorch (median / best)"]


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [HEADER] + rows) for i in range(len(HEADER))]
    for row in [HEADER] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def sweep(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per point of jaxsurf (float32) for every value of one knob, the
    values taken in turn within each round."""
    knob, values = args.sweep[0], [int(v) for v in args.sweep[1:]]
    if knob not in ("batch_size", "points_per_step"):
        raise SystemExit(f"--sweep knob must be batch_size or points_per_step, got {knob}")
    grid = args.dense_grid if case.name.startswith("dense") else args.grid
    coords = whole_chunks(grid, len(jax.devices()) * (
        math.lcm(*values) if knob == "points_per_step" else 1))  # whole chunks for every value
    times: dict[int, list[float]] = {v: [] for v in values}
    for r in range(args.rounds):
        for v in values:
            times[v].append(time_jaxsurf(case, coords, args, **{knob: v})["s_per_point"])
        print(f"  round {r}: " + ", ".join(f"{knob}={v}: {t[-1]:.4f}" for v, t in times.items()),
              flush=True)
    base = min(times[values[0]])
    return {"model": case.name, "knob": knob, "examples": case.examples, "points": len(coords),
            "s_per_point": {str(v): {"best": min(t), "median": statistics.median(t),
                                     "rounds": t, "best_vs_first": min(t) / base}
                            for v, t in times.items()}}


def main_sweep(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """The ``--sweep`` mode: one table row per model and knob value."""
    results, rows = [], []
    for name in args.models:
        case = dense_case(args) if name == "dense" else resnet_case(int(name[6:]), args)
        print(f"{case.name}: sweeping {args.sweep[0]} over {args.sweep[1:]}", flush=True)
        results.append(sweep(case, args))
        for v, m in results[-1]["s_per_point"].items():
            rows.append([case.name, f"{args.sweep[0]}={v}", device, f"{m['best']:.4f}",
                         f"{m['median']:.4f}", f"{m['best_vs_first']:.2f}"])
        del case
    header = ["model", "setting", "device", "s/point best", "s/point median",
              "best vs first value"]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return {"device": {**device_info(), "described": device},
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "config": vars(args),
            "sweeps": results}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    backend = jax.default_backend()
    args.peak_size = args.peak_size or (4096 if backend == "cpu" else 8192)
    device = f"{jax.devices()[0].device_kind} ({backend}, {jax.device_count()} device(s))"
    if backend == "cpu":
        device = f"CPU, {os.cpu_count()} cores as {jax.device_count()} XLA device(s)"
    if args.sweep:
        results = main_sweep(args, device)
        save_json(results, args, f"grid_sweep_{args.sweep[0]}")
        return results
    torch_ok = not args.no_torch
    if torch_ok:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("PyTorch is not installed: no baseline (pip install torch==2.13.0 on CPU)")
            torch_ok = False
    peaks: dict[str, list[float]] = {"float32": [], "bfloat16": []}  # every round
    summaries, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            case = dense_case(args) if name == "dense" else resnet_case(int(name[6:]), args)
            case.torch_batch_size = min(args.torch_batch_size or case.batch_size, case.examples)
            count_flops(case)
            print(f"{case.name}: {case.info['num_params']:,} params, {case.examples} examples, "
                  f"{case.info['flops_per_point'] / 1e9:.1f} GFLOP per point", flush=True)
            spec = write_torch_spec(case, Path(tmp)) if torch_ok else None
            measured = measure(case, args, spec)
            if spec is not None:
                spec.unlink()
            for dtype, values in measured["peaks"].items():
                peaks[dtype] += values
            summaries.append(summarize(case, measured))
            rows += table_rows(summaries[-1], device)
            del case
    results = {"device": {**device_info(), "described": device},
               "xla_flags": os.environ.get("XLA_FLAGS", ""),
               "config": vars(args),
               "matmul_peak": {"size": args.peak_size,
                               **{k: {"flop_per_s_best": max(v), "flop_per_s_rounds": v}
                                  for k, v in peaks.items() if v}},
               "flop_counting": "analytic: 2 x multiply-adds of every dot_general and "
                                "conv_general_dilated in the model's jaxpr",
               "cases": summaries}
    for dtype, values in peaks.items():
        if values:
            print(f"matmul peak ({args.peak_size}^2 {dtype}, best of {len(values)} rounds): "
                  f"{max(values) / 1e9:.1f} GFLOP/s")
    print_table(rows)
    for s in summaries:
        print(f"{s['model']}: checks {s['checks']}")
    save_json(results, args, "grid_throughput")
    return results


if __name__ == "__main__":
    main()
