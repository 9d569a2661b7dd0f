"""Cost of one exact Hessian-vector product against one exact gradient.

All three are averaged over the same data the same way, as the library's
curvature code does (``js.hessian.mean_over_batches``: device-resident
batches, one jitted step per batch, accumulated on the device; not the
evaluation engine's ``lax.scan``, which is slow for derivatives on CPU, see
``benchmarks/scan_grad.py``), jitted and warm; each number is the median of
``--repeats`` calls. Models: ResNet-20
(BatchNorm in evaluation mode through ``js.flax.adapt``) and a dense net
(784 -> 3x512 -> 10, ReLU), on random 28x28x1 inputs (the cost does not depend
on the pixel values). The forward pass (the loss alone) is timed too.

    python -m benchmarks.hvp_cost [--examples 1000] [--batch-size 250] [--repeats 5]
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import numpy as np

import jaxsurf as js
from benchmarks.common import MLP, save_results, time_call
from jaxsurf import hessian

try:
    from jaxsurf.models import resnet20
except ImportError:  # the seed's models are optional here
    resnet20 = None


class SmallConvNet(nn.Module):
    """Fallback conv net (conv-BN-ReLU x3, pooling) when jaxsurf.models is absent."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        for features in (16, 32, 64):
            x = nn.Conv(features, (3, 3), use_bias=False)(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
            x = nn.avg_pool(x, (2, 2), (2, 2))
        return nn.Dense(10)(x.mean(axis=(1, 2)))


def measure(name: str, model: nn.Module, data: dict, batch_size: int,
            repeats: int) -> dict:
    """Median seconds of one loss, one gradient and one HVP over ``data``."""
    variables = model.init(jax.random.key(0), data["x"][:2])
    fn, params = js.flax.adapt(model, variables, loss="cross_entropy")
    scalar = lambda p, b: fn(p, b)["loss"]
    loss = hessian.mean_over_batches(scalar, data, batch_size=batch_size)
    grad = hessian.mean_over_batches(jax.grad(scalar), data, batch_size=batch_size)
    hvp = hessian.hvp_operator(fn, params, data, batch_size=batch_size)
    v = js.random_direction(jax.random.key(1), params)
    times = {"loss": time_call(lambda: loss(params), repeats=repeats)["median_s"],
             "grad": time_call(lambda: grad(params), repeats=repeats)["median_s"],
             "hvp": time_call(lambda: hvp(v), repeats=repeats)["median_s"]}
    num_params = int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))
    return {"model": name, "num_params": num_params, **{f"{k}_s": t for k, t in times.items()},
            "grad_over_loss": times["grad"] / times["loss"],
            "hvp_over_grad": times["hvp"] / times["grad"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(args.examples, 28, 28, 1)).astype(np.float32),
            "y": rng.integers(0, 10, args.examples).astype(np.int32)}
    conv = ("resnet20", resnet20()) if resnet20 is not None else ("small_convnet",
                                                                  SmallConvNet())
    runs = [measure(name, model, data, args.batch_size, args.repeats)
            for name, model in (conv, ("dense_3x512", MLP()))]
    header = ["model", "params", "loss s", "grad s", "hvp s", "grad/loss", "hvp/grad"]
    table = [[r["model"], r["num_params"], f"{r['loss_s']:.3f}", f"{r['grad_s']:.3f}",
              f"{r['hvp_s']:.3f}", f"{r['grad_over_loss']:.2f}", f"{r['hvp_over_grad']:.2f}"]
             for r in runs]
    save_results("hvp_cost", {"examples": args.examples, "batch_size": args.batch_size,
                              "repeats": args.repeats, "data": "random 28x28x1",
                              "runs": runs}, table, header)


if __name__ == "__main__":
    main()
