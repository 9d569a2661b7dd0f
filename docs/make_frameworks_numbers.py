"""Numbers for docs/frameworks.md (issue 12), measured on Fashion-MNIST:

(a) per-filter norm ratios |d[o]| / |w[o]| of a filter-normalized random
    direction on a small Equinox conv net trained briefly: the old code path
    (filters on the last axis for every leaf and only leaves of ndim <= 1
    ignored, as jaxsurf did before layouts; ``old_normalize`` below) against the
    inferred Equinox layout,
    on the trained weights and after rescaling one filter by 10;
(b) interpolation end-point losses between two Linen CNNs with BatchNorm
    trained from different seeds: model A's statistics along the whole path
    (the old behaviour, ``state_policy="fixed"``) against the default, which
    moves the statistics with the weights, and against statistics recomputed
    at each point (``state_policy="recompute"``); each model's own loss for
    reference.

Run:  .venv/bin/python docs/make_frameworks_numbers.py  (a few minutes on a
2-core CPU; prints a table, writes docs/figures/frameworks_numbers.json and
docs/figures/frameworks_bn_interpolation.png).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsurf as js
from jaxsurf.data import load_fashion_mnist

# ---------------------------------------------------------------- config
TRAIN_EXAMPLES = 8192
EVAL_EXAMPLES = 2000
STEPS = 300
BATCH = 128
LR = 0.05
OUT = Path(__file__).parent / "figures" / "frameworks_numbers.json"
FIGURE = Path(__file__).parent / "figures" / "frameworks_bn_interpolation.png"


def load() -> tuple[dict, dict]:
    ds = load_fashion_mnist(validation=0, seed=0)
    def prep(split, n):
        x = ds[split]["x"][:n].astype(np.float32) / 255.0
        return {"x": (x - 0.286) / 0.353, "y": ds[split]["y"][:n].astype(np.int32)}
    return prep("train", TRAIN_EXAMPLES), prep("test", EVAL_EXAMPLES)


def cross_entropy(logits, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


# ---------------------------------------------------------------- (a) Equinox
class EqxNet(eqx.Module):
    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    head: eqx.nn.Linear

    def __init__(self, key):
        k = jax.random.split(key, 3)
        self.conv1 = eqx.nn.Conv2d(1, 16, 3, stride=2, padding=1, key=k[0])
        self.conv2 = eqx.nn.Conv2d(16, 32, 3, stride=2, padding=1, key=k[1])
        self.head = eqx.nn.Linear(32, 10, key=k[2])

    def __call__(self, x):
        h = jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(x))))
        return self.head(h.mean(axis=(1, 2)))


def train_eqx(train: dict) -> EqxNet:
    model = EqxNet(jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    opt = optax.sgd(LR, momentum=0.9)
    opt_state = opt.init(params)
    x = np.transpose(train["x"], (0, 3, 1, 2))

    @jax.jit
    def step(params, opt_state, xb, yb):
        loss = lambda p: cross_entropy(jax.vmap(eqx.combine(p, static))(xb), yb)
        g = jax.grad(loss)(params)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        idx = rng.integers(0, len(x), BATCH)
        params, opt_state = step(params, opt_state, x[idx], train["y"][idx])
    return eqx.combine(params, static)


def filter_ratios(d, params) -> dict[str, tuple[float, float]]:
    """(min, max) over filters of |d[o]| / |w[o]| for each conv/linear weight."""
    out = {}
    for name in ("conv1", "conv2", "head"):
        w = np.asarray(getattr(params, name).weight)
        dw = np.asarray(getattr(d, name).weight)
        r = (np.linalg.norm(dw.reshape(len(dw), -1), axis=1)
             / np.linalg.norm(w.reshape(len(w), -1), axis=1))
        out[name] = (float(r.min()), float(r.max()))
    return out


def old_normalize(direction, params):
    """jaxsurf's filter normalization before layouts (commit 8668e73): filters on the
    last axis of every leaf of ndim >= 2, leaves of ndim <= 1 zeroed."""
    def leaf(d, w):
        if d.ndim <= 1:
            return jnp.zeros_like(d)
        axes = tuple(range(d.ndim - 1))
        norm = lambda x: jnp.sqrt(jnp.sum(x * x, axis=axes, keepdims=True))
        return d * norm(w) / (norm(d) + 1e-10)
    return jax.tree_util.tree_map(leaf, direction, params)


def measure_a(train: dict) -> dict:
    model = train_eqx(train)
    _, params = js.equinox.adapt(model)
    rescaled = eqx.tree_at(lambda p: p.conv2.weight, params,
                           params.conv2.weight.at[0].multiply(10.0))
    rows = {}
    for label, p in (("trained", params), ("one conv2 filter x10", rescaled)):
        raw = js.random_direction(jax.random.key(1), p)
        before = old_normalize(raw, p)                 # the old path: last axis everywhere
        after = js.normalize(raw, p)                   # inferred: Equinox output-first
        rows[label] = {"before": filter_ratios(before, p), "after": filter_ratios(after, p),
                       "before_bias_zero": bool(not np.any(np.asarray(before.conv1.bias))),
                       "after_bias_zero": bool(not np.any(np.asarray(after.conv1.bias))),
                       "before_now_described_as":
                           js.describe_direction(before, p)["normalization"]}
    return rows


# ---------------------------------------------------------------- (b) Linen BatchNorm
class BNCNN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        for width in (16, 32):
            x = nn.Conv(width, (3, 3), strides=(2, 2), use_bias=False)(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.relu(x)
        return nn.Dense(10)(x.mean(axis=(1, 2)))


def train_linen(seed: int, train: dict) -> dict:
    model = BNCNN()
    variables = model.init(jax.random.key(seed), train["x"][:2])
    opt = optax.sgd(LR, momentum=0.9)
    opt_state = opt.init(variables["params"])

    @jax.jit
    def step(params, stats, opt_state, xb, yb):
        def loss(p):
            logits, upd = model.apply({"params": p, "batch_stats": stats}, xb, train=True,
                                      mutable=["batch_stats"])
            return cross_entropy(logits, yb), upd["batch_stats"]
        (_, stats), g = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state

    params, stats = variables["params"], variables["batch_stats"]
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        idx = rng.integers(0, len(train["y"]), BATCH)
        params, stats, opt_state = step(params, stats, opt_state, train["x"][idx],
                                        train["y"][idx])
    return {"params": params, "batch_stats": stats}


def measure_b(train: dict, test: dict) -> dict:
    model = BNCNN()
    va, vb = train_linen(0, train), train_linen(1, train)
    fn, pa = js.flax.adapt(model, va)
    fn_b, pb = js.flax.adapt(model, vb)
    alphas = [float(a) for a in np.linspace(0.0, 1.0, 11)]
    fixed = js.interpolate(fn, pa, pb, test, alphas, progress=False, state_policy="fixed")
    moved = js.interpolate(fn, pa, pb, test, alphas, progress=False)
    sample = {k: v[:2048] for k, v in train.items()}
    recomputed = js.interpolate(fn, pa, pb, test, alphas, progress=False,
                                state_policy="recompute", recompute_data=sample, batch_size=512)
    return {"alphas": alphas,
            "own_loss_a": js.dataset_mean(fn, test)(pa)["loss"],
            "own_loss_b": js.dataset_mean(fn_b, test)(pb)["loss"],
            "before_fixed_stats": [float(v) for v in fixed.metrics["loss"]],
            "after_interpolated_stats": [float(v) for v in moved.metrics["loss"]],
            "recomputed_stats": [float(v) for v in recomputed.metrics["loss"]]}


def draw(b: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(b["alphas"], b["before_fixed_stats"], "o--", label="model A's BatchNorm statistics "
            "(state_policy='fixed')")
    ax.plot(b["alphas"], b["after_interpolated_stats"], "o-", label="statistics interpolated "
            "(default)")
    ax.plot(b["alphas"], b["recomputed_stats"], "s:", label="statistics recomputed on 2048 "
            "training images (state_policy='recompute')")
    ax.plot([0.0, 1.0], [b["own_loss_a"], b["own_loss_b"]], "k*", ms=12,
            label="each model's own loss")
    ax.set_xlabel("alpha (0: model A, 1: model B)")
    ax.set_ylabel("test loss (2000 Fashion-MNIST images)")
    ax.set_title("Interpolating two BatchNorm CNNs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=120)


def main() -> None:
    start = time.perf_counter()
    train, test = load()
    a = measure_a(train)
    b = measure_b(train, test)
    print("(a) Equinox conv net: per-filter |d[o]|/|w[o]| (min, max)")
    for label, row in a.items():
        for which in ("before", "after"):
            cells = ", ".join(f"{k} {lo:.3f}-{hi:.3f}" for k, (lo, hi) in row[which].items())
            print(f"  {label:22s} {which:6s} {cells}; conv bias zero: {row[which + '_bias_zero']}")
        print(f"  {label:22s} old direction, as describe_direction now reads it: "
              f"{row['before_now_described_as']!r}")
    print("(b) Linen BatchNorm CNNs, seeds 0 and 1: test loss along the interpolation")
    print(f"  own loss: A {b['own_loss_a']:.4f}  B {b['own_loss_b']:.4f}")
    print(f"  alphas {', '.join(f'{a:.1f}' for a in b['alphas'])}")
    print(f"  before (A's statistics everywhere): "
          f"{', '.join(f'{v:.4f}' for v in b['before_fixed_stats'])}")
    print(f"  after (statistics interpolated):    "
          f"{', '.join(f'{v:.4f}' for v in b['after_interpolated_stats'])}")
    print(f"  recomputed statistics:              "
          f"{', '.join(f'{v:.4f}' for v in b['recomputed_stats'])}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"a": a, "b": b, "seconds": time.perf_counter() - start,
                               "config": {"train_examples": TRAIN_EXAMPLES, "steps": STEPS,
                                          "batch": BATCH, "eval_examples": EVAL_EXAMPLES}},
                              indent=1))
    draw(b)
    print(f"wrote {OUT} and {FIGURE} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
