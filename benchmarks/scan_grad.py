"""A gradient over batches: scanned inside one jitted function against a loop of jitted steps.

Backs the sentence in ``jaxsurf/_engine/means.py`` and ``docs/curvature.md``
that XLA:CPU runs reverse-mode convolutions inside a rolled loop
(``lax.scan``) several times slower than the same steps outside it, which is
why curvature code uses ``js.hessian.mean_over_batches`` (one jitted step per
batch) and not the evaluation engine's scan. Model: ResNet-20 (BatchNorm in
evaluation mode through ``js.flax.adapt``) on random 28x28x1 inputs; the
exact gradient of the mean cross-entropy over ``--examples`` images in
batches of ``--batch-size``, jitted and warm, median of ``--repeats`` calls,
both ways in the same process. Writes ``benchmarks/results/scan_grad.json``
(with the machine's load average: on a shared CPU the ratio moves between
runs, so quote the file, not a remembered figure).

    python -m benchmarks.scan_grad [--examples 100] [--batch-size 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

import jaxsurf as js
from benchmarks.common import save_results, time_call
from jaxsurf import hessian
from jaxsurf.models import resnet20


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(args.examples, 28, 28, 1)).astype(np.float32),
            "y": rng.integers(0, 10, args.examples).astype(np.int32)}
    model = resnet20()
    fn, params = js.flax.adapt(model, model.init(jax.random.key(0), data["x"][:2]),
                               loss="cross_entropy")
    grad = jax.grad(lambda p, b: fn(p, b)["loss"])
    nb = args.examples // args.batch_size
    stacked = jax.tree_util.tree_map(
        lambda x: jnp.asarray(x[:nb * args.batch_size]).reshape(nb, args.batch_size,
                                                                *x.shape[1:]), data)

    @jax.jit
    def scanned(p):                      # the evaluation engine's pattern: lax.scan over batches
        def step(acc, batch):
            return jax.tree_util.tree_map(jnp.add, acc, grad(p, batch)), None
        zeros = jax.tree_util.tree_map(jnp.zeros_like, p)
        total, _ = jax.lax.scan(step, zeros, stacked)
        return jax.tree_util.tree_map(lambda t: t / nb, total)

    looped = hessian.mean_over_batches(grad, data, batch_size=args.batch_size)
    scan_s = time_call(lambda: scanned(params), repeats=args.repeats)["median_s"]
    loop_s = time_call(lambda: looped(params), repeats=args.repeats)["median_s"]
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
        jax.tree_util.tree_leaves(scanned(params)), jax.tree_util.tree_leaves(looped(params))))
    result = {"model": "resnet20", "examples": args.examples, "batch_size": args.batch_size,
              "repeats": args.repeats, "data": "random 28x28x1",
              "load_average_1min": os.getloadavg()[0],     # the CPU may be shared
              "scanned_s": scan_s, "loop_s": loop_s, "scanned_over_loop": scan_s / loop_s,
              "max_abs_diff": diff}
    save_results("scan_grad", result,
                 [["resnet20", f"{scan_s:.3f}", f"{loop_s:.3f}", f"{scan_s / loop_s:.1f}"]],
                 ["model", "scanned s", "loop s", "scanned / loop"])
    return result


if __name__ == "__main__":
    main()
