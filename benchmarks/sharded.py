"""Sharded params: per-device bytes, seconds per point, and peak host memory.

Two measurements, each run with 8 simulated CPU devices (or, on a machine with
8 accelerators, the real ones: ``--real-devices``):

1. **Sweep over model shards** (1, 2, 4, 8): an MLP's params sharded over a
   ``"model"`` axis (Megatron-style: hidden columns, then rows) on a
   ``("points", "model")`` mesh of ``8 / shards x shards`` devices. For each:
   the engine's memory plan (per-device bytes of params, directions, data,
   combined params and activations, from XLA's ``memory_analysis``), the bytes
   measured on device 0 (the shards of params and directions it holds, and on
   GPUs ``peak_bytes_in_use``), the steady seconds per point of a
   ``js.evaluate_line`` (chunks of one point per points-axis device, timed from
   the end of the first chunk, which includes the compilation), and the same
   for a bare jitted sharded forward pass over the same data and points (a
   ``jax.jit`` of the batch loss at
   ``origin + a d``, params sharded the same way over ``shards`` devices of a
   ``("model",)`` mesh, one call per batch and point, so that every point is
   computed once): the ratio is this library's overhead. On simulated CPU
   devices all of them share the host's cores, so the ratio compares the
   same total work.
2. **Peak host memory** of separate processes (``VmHWM``) evaluating an
   8-point plane of a ~100 MB MLP on 8 simulated CPU devices: params sharded
   over 8 model shards vs a copy on every device. Params are created sharded
   (never whole on the host), and the two processes' losses are compared.

    python -m benchmarks.sharded                    # both; JSON in benchmarks/results/sharded.json
    python -m benchmarks.sharded --hidden 512 --skip-rss    # a quick sweep
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# 8 simulated CPU devices; their collectives wait for every device's thread, which on a
# loaded host can take longer than XLA's default 40 s before it aborts the process
SIMULATED = ("--xla_force_host_platform_device_count=8 "
             "--xla_cpu_collective_call_warn_stuck_timeout_seconds=300 "
             "--xla_cpu_collective_call_terminate_timeout_seconds=3000")
if __name__ == "__main__" and "--real-devices" not in sys.argv and "--child" not in sys.argv:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + SIMULATED).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P  # noqa: E402

import jaxsurf as js  # noqa: E402
from benchmarks.common import SteadyTimer  # noqa: E402


def mlp_specs(layers: int) -> dict:
    """Megatron-style: even layers split their output columns, odd ones their input rows."""
    return {f"layer_{i}": {"kernel": P(None, "model") if i % 2 == 0 else P("model", None),
                           "bias": P("model") if i % 2 == 0 else P()}
            for i in range(layers)}


def make_params(key, width: int, hidden: int, layers: int, classes: int, mesh, specs):
    """The MLP's params drawn directly into their shardings (no whole copy anywhere)."""
    dims = [width] + [hidden] * (layers - 1) + [classes]
    params = {}
    for i in range(layers):
        shape = (dims[i], dims[i + 1])
        spec = specs[f"layer_{i}"] if specs is not None else {"kernel": P(), "bias": P()}
        kernel = jax.jit(lambda k, s=shape: jax.random.normal(k, s) / np.sqrt(s[0]),
                         out_shardings=NamedSharding(mesh, spec["kernel"]))(
                             jax.random.fold_in(key, i))
        bias = jax.jit(lambda n=shape[1]: jnp.zeros(n),
                       out_shardings=NamedSharding(mesh, spec["bias"]))()
        params[f"layer_{i}"] = {"kernel": kernel, "bias": bias}
    return params


def mlp_fn(params, batch):
    x = batch["x"]
    n = len(params)
    for i in range(n):
        x = x @ params[f"layer_{i}"]["kernel"] + params[f"layer_{i}"]["bias"]
        if i < n - 1:
            x = jax.nn.relu(x)
    logp = jax.nn.log_softmax(x)
    return -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1))


def make_data(n: int, width: int, classes: int) -> dict:
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(n, width)).astype(np.float32),
            "y": rng.integers(0, classes, n).astype(np.int32)}


def device0_bytes(trees) -> int:
    """Bytes of the buffers device 0 holds of ``trees``' leaves (measured)."""
    device = jax.devices()[0]
    total = 0
    for leaf in jax.tree_util.tree_leaves(trees):
        for shard in leaf.addressable_shards:
            if shard.device == device:
                total += shard.data.nbytes
    return total


def peak_device_bytes() -> int | None:
    stats = jax.devices()[0].memory_stats()
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def sweep(args) -> list[dict]:
    devices = jax.devices()[:8]
    data = make_data(args.examples, args.width, args.classes)
    runs = []
    for shards in args.shards:
        mesh = jax.make_mesh((len(devices) // shards, shards), ("points", "model"),
                             axis_types=(AxisType.Auto,) * 2, devices=devices)
        params = make_params(jax.random.key(0), args.width, args.hidden, args.layers,
                             args.classes, mesh, mlp_specs(args.layers))
        d1, d2 = js.random_plane(jax.random.key(1), params)
        per_chunk = len(devices) // shards  # one point per device of the points axis
        count = args.chunks * per_chunk
        timer = SteadyTimer()
        start = time.perf_counter()
        surface = js.evaluate_line(mlp_fn, params, d1, data, np.linspace(-1, 1, count),
                                   mesh=mesh, batch_size=args.batch_size, chunk_size=per_chunk,
                                   progress=timer)
        call = time.perf_counter() - start
        plan = surface.metadata["memory"]
        library = timer.s_per_point()

        # the bare baseline: one jitted forward pass over the data per point, sharded the
        # same way over `shards` devices (a mesh of the model axis alone: every point is
        # computed once, as the library computes it, without the library)
        bare_mesh = jax.make_mesh((shards,), ("model",), axis_types=(AxisType.Auto,),
                                  devices=devices[:shards])
        specs = mlp_specs(args.layers)
        move = lambda tree: jax.tree.map(
            lambda x, spec: jax.device_put(x, NamedSharding(bare_mesh, spec)), tree, specs)
        bare_params, bare_d1 = move(params), move(d1)
        batches = [jax.device_put({k: v[i:i + args.batch_size] for k, v in data.items()},
                                  NamedSharding(bare_mesh, P()))
                   for i in range(0, args.examples, args.batch_size)]

        @jax.jit
        def point_loss(origin, d, a, batch):
            p = jax.tree.map(lambda o, x: o + a * x, origin, d)
            return mlp_fn(p, batch)

        def bare(count: int) -> float:
            start = time.perf_counter()
            for a in np.linspace(-1, 1, count, dtype=np.float32):
                total = sum(point_loss(bare_params, bare_d1, a, b) * len(b["y"])
                            for b in batches)
                jax.block_until_ready(total)
            return time.perf_counter() - start

        bare(1)  # compile
        baseline = bare(count - per_chunk) / (count - per_chunk)  # as many as the timer saw
        measured = device0_bytes((params, d1))
        run = {"shards": shards, "mesh": {"points": len(devices) // shards, "model": shards},
               "planned_bytes": plan["per_device_bytes"] if plan else None,
               "planned_params_and_direction_bytes": (
                   plan["per_device_bytes"]["params"] + plan["per_device_bytes"]["directions"])
               if plan else None,
               "measured_params_and_direction_bytes": measured,
               "peak_device_bytes": peak_device_bytes(),
               "s_per_point": library, "bare_s_per_point": baseline,
               "ratio_to_bare": library / baseline, "points": count,
               "call_seconds": call, "values": surface.metrics["loss"].tolist()}
        runs.append(run)
        print(json.dumps({k: run[k] for k in ("shards", "planned_bytes",
                                              "measured_params_and_direction_bytes",
                                              "s_per_point", "bare_s_per_point",
                                              "ratio_to_bare")}), flush=True)
    return runs


def child(mode: str, width: int, hidden: int, layers: int) -> None:
    """One process: an 8-point plane of the big MLP, sharded or replicated; prints JSON."""
    classes = 16
    devices = jax.devices()
    if mode == "sharded":
        mesh = jax.make_mesh((1, len(devices)), ("points", "model"),
                             axis_types=(AxisType.Auto,) * 2)
        specs = mlp_specs(layers)
    else:
        mesh = jax.make_mesh((len(devices),), ("points",), axis_types=(AxisType.Auto,))
        specs = None
    after_import = rss()["VmRSS"]
    log = lambda what: print(f"{time.strftime('%H:%M:%S')} {mode}: {what} (RSS "
                             f"{rss()['VmRSS'] // 1024} MiB)", file=sys.stderr, flush=True)
    params = make_params(jax.random.key(0), width, hidden, layers, classes, mesh, specs)
    nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params))
    log("params made")
    d1, d2 = js.random_plane(jax.random.key(1), params)
    log("directions made")
    data = make_data(64, width, classes)
    grid_a, grid_b = np.linspace(-1, 1, 2), np.linspace(-1, 1, 4)
    start = time.perf_counter()
    surface = js.evaluate_plane(mlp_fn, params, d1, d2, data, grid_a, grid_b, mesh=mesh,
                                batch_size=32, progress=False)
    print(json.dumps({"mode": mode, "model_bytes": nbytes, "after_import_kib": after_import,
                      "peak_kib": rss()["VmHWM"], "seconds": time.perf_counter() - start,
                      "loss": surface.metrics["loss"].ravel().tolist(),
                      "planned": surface.metadata["memory"]["per_device_bytes"],
                      "mesh": surface.metadata["mesh"]}))


def rss() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


def peak_rss(args) -> dict:
    results = {}
    env = {**os.environ, "XLA_FLAGS": SIMULATED, "JAX_PLATFORMS": "cpu"}
    for mode in ("sharded", "replicated"):
        out = subprocess.run([sys.executable, "-m", "benchmarks.sharded", "--child", mode,
                              "--width", str(args.big_width), "--hidden", str(args.big_hidden),
                              "--layers", str(args.big_layers)],
                             capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            raise SystemExit(f"{mode} child failed:\n{out.stderr[-3000:]}")
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print(mode, {k: v for k, v in results[mode].items() if k != "loss"}, flush=True)
    s, r = results["sharded"], results["replicated"]
    results["peak_mib"] = {"sharded": s["peak_kib"] / 1024, "replicated": r["peak_kib"] / 1024}
    results["sharded_over_replicated"] = s["peak_kib"] / r["peak_kib"]
    results["model_mb"] = s["model_bytes"] / 1e6
    results["model"] = {"width": args.big_width, "hidden": args.big_hidden,
                        "layers": args.big_layers}
    results["max_loss_difference"] = float(np.max(np.abs(np.array(s["loss"])
                                                         - np.array(r["loss"]))))
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["sharded", "replicated"])
    parser.add_argument("--real-devices", action="store_true",
                        help="use the machine's own 8 devices (GPUs) instead of simulated CPUs")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--chunks", type=int, default=4,
                        help="chunks of one point per points-axis device; the first is not "
                             "timed (compilation)")
    # 2048 -> 4096 -> 4096 -> 16: 25.2 M float32 params, 101 MB. (Deeper stacks of
    # row-split layers, e.g. 7 layers of 1024, hung in XLA:CPU's collectives on a 2-core
    # host with 8 simulated devices: a device's program never started.)
    parser.add_argument("--big-width", type=int, default=2048)
    parser.add_argument("--big-hidden", type=int, default=4096)
    parser.add_argument("--big-layers", type=int, default=3)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--out", default=None, help="results JSON (default "
                        "benchmarks/results/sharded.json)")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.width, args.hidden, args.layers)
        return
    from benchmarks.common import RESULTS, device_info

    count = min(8, len(jax.devices()))
    if not args.real_devices and count < 8:
        raise SystemExit(f"needs 8 devices, found {len(jax.devices())}")
    args.shards = [s for s in args.shards if count % s == 0]  # real devices: what divides them
    results = {"device": device_info(),
               "model": {"width": args.width, "hidden": args.hidden, "layers": args.layers,
                         "classes": args.classes, "examples": args.examples,
                         "batch_size": args.batch_size, "chunks": args.chunks},
               "sweep": sweep(args)}
    if not args.skip_rss:
        results["peak_host_memory"] = peak_rss(args)
    print(f"{'shards':>6} {'planned total':>14} {'params+dirs':>12} {'measured':>10} "
          f"{'s/point':>9} {'bare':>9} {'ratio':>6}")
    for run in results["sweep"]:
        plan = run["planned_bytes"] or {}
        print(f"{run['shards']:>6} {plan.get('total', 0):>14,} "
              f"{run['planned_params_and_direction_bytes'] or 0:>12,} "
              f"{run['measured_params_and_direction_bytes']:>10,} "
              f"{run['s_per_point']:>9.4f} {run['bare_s_per_point']:>9.4f} "
              f"{run['ratio_to_bare']:>6.2f}")
    path = args.out or str(RESULTS / "sharded.json")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
