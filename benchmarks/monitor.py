"""Training-time overhead of js.Monitor at its default settings (ResNet-20, SmallCNN).

For each model, in one process: the baseline is a plain optax training loop
(one jitted step per batch of ``--batch-size``, SGD with momentum, BatchNorm
in training mode) on Fashion-MNIST (random stand-ins when the files are
absent), timed over ``--steps`` steps after warm-up. Then a
:class:`jaxsurf.Monitor` at its defaults (a line of 21 points on [-1, 1],
fixed filter-normalized directions, loss only, no curvature), built with
``js.flax.linen_metrics_fn`` over the whole variables and an evaluation set
of ``--eval-examples`` held-out examples, is timed per record: the first
record (compilation included, paid once per process) and the steady
records after it; and the call at a step it does not record (the check only).
The overhead at an interval ``every`` is

    (steady record + (every - 1) * idle call) / (every * training step)

reported for ``every`` in ``--intervals`` and at the default
(``jaxsurf._monitor.DEFAULT_EVERY``). For the SmallCNN, ``--direct-steps``
steps of the loop are also run with the monitor called after every step
(recording at every ``--direct-steps // 2`` steps, so three records, the
first one compiling), and the measured ratio against the baseline is
reported beside the prediction for that run. Writes
``benchmarks/results/monitor.json``.

    python -m benchmarks.monitor [--steps 10] [--eval-examples 1024] [--models smallcnn,resnet20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsurf as js
from benchmarks.common import fashion_mnist_subset, save_results
from jaxsurf import _monitor as monitor_lib
from jaxsurf.models import resnet20
from jaxsurf.models.small_cnn import SmallCNN


def _train_step(model: Any, tx: optax.GradientTransformation):
    @jax.jit
    def step(params, stats, opt_state, x, y):
        def objective(p):
            logits, new = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                      mutable=["batch_stats"])
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, new["batch_stats"]

        (loss, stats), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss
    return step


def _loop(step, variables, opt_state, batches, steps, monitor=None, start=0):
    """Runs ``steps`` training steps (monitor(step, variables) after each, and at start)."""
    params, stats = variables["params"], variables["batch_stats"]
    if monitor is not None and start == 0:
        monitor(0, {"params": params, "batch_stats": stats})
    loss = None
    for i in range(steps):
        x, y = batches[i % len(batches)]
        params, stats, opt_state, loss = step(params, stats, opt_state, x, y)
        if monitor is not None:
            monitor(start + i + 1, {"params": params, "batch_stats": stats})
    jax.block_until_ready(loss)
    return {"params": params, "batch_stats": stats}, opt_state


def measure(name: str, model: Any, args: argparse.Namespace) -> dict[str, Any]:
    train, source = fashion_mnist_subset(args.batch_size * 8, "train")
    held, _ = fashion_mnist_subset(args.eval_examples, "test")
    batches = [(jnp.asarray(train["x"][i:i + args.batch_size]),
                jnp.asarray(train["y"][i:i + args.batch_size]))
               for i in range(0, len(train["x"]), args.batch_size)]
    variables = model.init(jax.random.key(0), batches[0][0][:2], train=False)
    variables = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    tx = optax.sgd(0.05, momentum=0.9)
    step = _train_step(model, tx)
    opt_state = tx.init(variables["params"])
    variables, opt_state = _loop(step, variables, opt_state, batches, 3)  # compile, warm
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        variables, opt_state = _loop(step, variables, opt_state, batches, args.steps)
        times.append((time.perf_counter() - t0) / args.steps)
    step_s = statistics.median(times)

    fn = js.flax.linen_metrics_fn(model)
    with tempfile.TemporaryDirectory() as folder:
        monitor = js.Monitor(fn, held, out=f"{folder}/m", every=1, batch_size=512)
        t0 = time.perf_counter()
        monitor(0, variables)
        first_s = time.perf_counter() - t0
        records = []
        for k in range(1, args.records + 1):
            t0 = time.perf_counter()
            monitor(k, variables)
            records.append(time.perf_counter() - t0)
        record_s = statistics.median(records)
        idle = js.Monitor(fn, held, out=f"{folder}/idle", every=10**9)
        idle(0, variables)
        t0 = time.perf_counter()
        for k in range(1, 1001):
            idle(k, variables)
        idle_s = (time.perf_counter() - t0) / 1000

        def overhead(every: int) -> float:
            return (record_s + (every - 1) * idle_s) / (every * step_s)

        result: dict[str, Any] = {
            "model": name, "data": source, "batch_size": args.batch_size,
            "eval_examples": args.eval_examples, "eval_batch_size": 512,
            "points_per_record": len(monitor.alphas),
            "num_params": int(sum(np.size(x) for x in jax.tree.leaves(variables["params"]))),
            "train_step_s": step_s, "train_step_s_runs": times,
            "first_record_s": first_s, "record_s": record_s, "record_s_runs": records,
            "idle_call_s": idle_s, "record_in_train_steps": record_s / step_s,
            "overhead": {str(e): overhead(e) for e in args.intervals},
            "default_every": monitor_lib.DEFAULT_EVERY,
            "overhead_at_default_every": overhead(monitor_lib.DEFAULT_EVERY),
        }
        if name == "smallcnn" and args.direct_steps:
            every = args.direct_steps // 2
            base = []
            for _ in range(2):
                t0 = time.perf_counter()
                variables, opt_state = _loop(step, variables, opt_state, batches,
                                             args.direct_steps)
                base.append(time.perf_counter() - t0)
            watched = js.Monitor(fn, held, out=f"{folder}/direct", every=every,
                                 batch_size=512)
            t0 = time.perf_counter()
            variables, opt_state = _loop(step, variables, opt_state, batches,
                                         args.direct_steps, monitor=watched)
            with_s = time.perf_counter() - t0
            baseline = statistics.median(base)
            result["direct"] = {
                "steps": args.direct_steps, "every": every, "records": len(watched.steps),
                "baseline_s": baseline, "baseline_s_runs": base, "with_monitor_s": with_s,
                "measured_overhead": with_s / baseline - 1,
                "predicted_overhead": (3 * record_s + (args.direct_steps - 2) * idle_s)
                / baseline,
                "note": "a fresh monitor on the same fn: its programs are already compiled "
                        "in this process, so every record costs a steady record"}
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", default="smallcnn,resnet20")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-examples", type=int, default=1024)
    parser.add_argument("--intervals", type=lambda s: [int(x) for x in s.split(",")],
                        default=[100, 250, 500, 1000, 2000])
    parser.add_argument("--direct-steps", type=int, default=60)
    args = parser.parse_args(argv)
    builders = {"smallcnn": SmallCNN, "resnet20": resnet20}
    runs = []
    for name in args.models.split(","):
        print(f"measuring {name} ...", flush=True)
        runs.append(measure(name, builders[name](), args))
    table = [[r["model"], f"{r['train_step_s'] * 1e3:.1f}", f"{r['record_s']:.2f}",
              f"{r['first_record_s']:.2f}", f"{r['idle_call_s'] * 1e6:.0f}",
              f"{r['record_in_train_steps']:.0f}"]
             + [f"{100 * r['overhead'][str(e)]:.1f}" for e in args.intervals] for r in runs]
    header = ["model", "step ms", "record s", "first s", "idle us", "record/step"] + \
        [f"% at {e}" for e in args.intervals]
    results = {"settings": {k: v for k, v in vars(args).items()}, "runs": runs}
    save_results("monitor", results, table, header)
    for r in runs:
        if "direct" in r:
            d = r["direct"]
            print(f"{r['model']}: {d['steps']} steps with a monitor every {d['every']}: "
                  f"measured overhead {100 * d['measured_overhead']:.1f} %, predicted "
                  f"{100 * d['predicted_overhead']:.1f} %")
    return results


if __name__ == "__main__":
    main()
