"""Correctness and overhead of spreading a surface over simulated CPU devices and processes.

Every configuration runs in a fresh subprocess (XLA reads
``--xla_force_host_platform_device_count=N`` once, when JAX starts); with
``P`` processes each process has ``N / P`` devices and they meet through
``jax.distributed`` on localhost with gloo CPU collectives. Each evaluates the
same two requests with the library defaults (all devices):

* a plane of ``GRID x GRID`` points of an MLP (784 -> 256 -> 256 -> 10) on
  Fashion-MNIST images, 8 points per device per chunk: points split over
  devices;
* a 5-point line over the same data in small batches, one point per chunk:
  the data split over devices (``psum`` of per-device sums).

Reported: the mesh chosen, steady seconds per point (after the first chunk),
the whole call including compilation, and the largest difference from the
1-device values. Simulated devices share this machine's cores, so the total
work stays the same: the numbers show the overhead of the split (collectives,
chunking, padding), not a speed-up.

    python -m benchmarks.scaling [--devices 1 2 4 8] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="surface evaluation over simulated CPU devices")
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--processes", type=int, nargs="+", default=[2],
                   help="also run each device count >= P as P processes (0: none)")
    p.add_argument("--grid", type=int, default=16)
    p.add_argument("--examples", type=int, default=2000)
    p.add_argument("--line-batch", type=int, default=50)
    p.add_argument("--child", type=int, nargs=3, metavar=("PROCESSES", "PROCESS_ID", "PORT"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --------------------------------------------------------------------------- child
def _requests(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluates the plane and the line; ``{name: {values, s_per_point, ...}}``."""
    import flax.linen as nn
    import jax
    import numpy as np

    import jaxsurf as js
    from benchmarks.common import SteadyTimer, fashion_mnist_subset

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            x = x.reshape((x.shape[0], -1))
            for _ in range(2):
                x = nn.relu(nn.Dense(256)(x))
            return nn.Dense(10)(x)

    data, _ = fashion_mnist_subset(args.examples)
    model = MLP()
    fn, params = js.flax.adapt(model, model.init(jax.random.key(0), data["x"][:2]))
    d1, d2 = js.random_plane(jax.random.key(1), params)
    grid = np.linspace(-1, 1, args.grid)
    chunk = 8 * len(jax.devices())  # 8 points per device per chunk: several chunks
    out = {}
    for name, call in {
        "plane": lambda log: js.evaluate_plane(fn, params, d1, d2, data, grid, grid,
                                               batch_size=500, chunk_size=chunk,
                                               progress=log),
        "line": lambda log: js.evaluate_line(fn, params, d1, data, np.linspace(-1, 1, 5),
                                             batch_size=args.line_batch, chunk_size=1,
                                             progress=log),
    }.items():
        timer = SteadyTimer()
        surface = call(timer)
        total = time.perf_counter() - timer.start
        out[name] = {"values": surface.metrics["loss"].ravel().tolist(), "call_s": total,
                     "s_per_point": timer.s_per_point(),
                     "points": int(surface.metrics["loss"].size),
                     "mesh": surface.metadata["mesh"],
                     "num_processes": surface.metadata["num_processes"]}
    return out


def child(args: argparse.Namespace) -> None:
    processes, process_id, port = args.child
    import jax

    if processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"localhost:{port}", num_processes=processes,
                                   process_id=process_id)
    result = _requests(args)
    if process_id == 0:
        print("RESULT " + json.dumps(result), flush=True)
    if processes > 1:
        jax.distributed.shutdown()


# --------------------------------------------------------------------------- parent
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def run_config(args: argparse.Namespace, devices: int, processes: int) -> dict[str, Any]:
    """Runs one configuration in fresh subprocesses and returns process 0's results."""
    per_process = devices // processes
    port = _free_port() if processes > 1 else 0
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={per_process}"}
    base = [sys.executable, "-m", "benchmarks.scaling", "--grid", str(args.grid), "--examples",
            str(args.examples), "--line-batch", str(args.line_batch), "--child",
            str(processes)]
    procs = [subprocess.Popen(base + [str(pid), str(port)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for pid in range(processes)]
    outputs = [p.communicate(timeout=1800) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        if p.returncode:
            raise RuntimeError(f"{devices} devices / {processes} processes failed:\n{err[-2000:]}")
    line = next(l for l in outputs[0][0].splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    import numpy as np

    from benchmarks.common import save_results

    configs = [(n, 1) for n in args.devices]
    configs += [(n, p) for p in args.processes if p > 1 for n in args.devices
                if n >= p and n % p == 0]
    runs, rows = [], []
    reference = None
    for devices, processes in configs:
        result = run_config(args, devices, processes)
        reference = reference or result
        entry = {"devices": devices, "processes": processes}
        for name in ("plane", "line"):
            r = result[name]
            diff = float(np.max(np.abs(np.array(r["values"]) - reference[name]["values"])))
            base = reference[name]["s_per_point"]
            entry[name] = {**{k: v for k, v in r.items() if k != "values"},
                           "max_abs_diff_vs_1_device": diff,
                           "s_per_point_vs_1_device": None if not (base and r["s_per_point"])
                           else r["s_per_point"] / base}
            per_point = "-" if r["s_per_point"] is None else f"{1e3 * r['s_per_point']:.2f}"
            ratio = entry[name]["s_per_point_vs_1_device"]
            rows.append([devices, processes, name, f"{r['mesh']['points']}x{r['mesh']['data']}",
                         per_point, "-" if ratio is None else f"{ratio:.2f}",
                         f"{r['call_s']:.2f}", f"{diff:.1e}"])
            print(rows[-1], flush=True)
        runs.append(entry)
    save_results("scaling", {"grid": args.grid, "examples": args.examples,
                             "line_batch_size": args.line_batch, "cpu_count": os.cpu_count(),
                             "runs": runs}, rows,
                 ["devices", "processes", "request", "mesh points x data", "ms/point (steady)",
                  "vs 1 device", "call s (with compile)", "max |diff| vs 1 device"])


if __name__ == "__main__":
    main()
