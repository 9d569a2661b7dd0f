"""Renders docs/figures/topology_*.png and volume_*.png, and prints their numbers.

1. From a finished ResNet run (default: the smoke preset, which trains a
   ResNet-8 stand-in for one epoch on 256 real Fashion-MNIST images)::

       python -m experiments.resnet56 --preset smoke --out /tmp/topo_smoke
       python docs/make_topology_figures.py --runs /tmp/topo_smoke

   the basins of the skip and no-skip final planes, their persistence
   diagrams side by side, the train and validation planes on one scale and
   their gap map.
2. A volume: a one-hidden-layer MLP (a plain pytree, no framework) trained
   for 300 Adam steps on 5,000 real Fashion-MNIST images, evaluated on a
   15x15x15 grid of three filter-normalized random directions over 1,000
   images; its orthogonal slices, its basins, and a ``.vti`` for ParaView.

A few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxsurf as js
from jaxsurf.data import channel_stats, load_fashion_mnist, standardize

FIGURES = Path(__file__).resolve().parent / "figures"


def run_figures(runs: Path) -> dict:
    """Figures and topology numbers of the skip / no-skip planes of an experiment run."""
    results = json.loads((runs / "results.json").read_text())
    planes, numbers = {}, {"preset": results["preset"]}
    for name in ("skip", "noskip"):
        r = results["variants"][name]
        plane = js.Surface.load(runs / r["surfaces"]["plane_final"])
        val = js.Surface.load(runs / r["surfaces"]["plane_final_val"])
        label = f"{r['model']} {name}"
        planes[label] = plane
        log = bool(np.nanmax(plane.metrics["loss"]) > 100 * np.nanmin(plane.metrics["loss"]))
        js.plot.basins(plane, log=log, title=f"{label} ({results['preset']} preset): basins",
                       out=FIGURES / f"topology_basins_{name}.png")
        js.plot.compare({"train": plane, "val": val}, kind="filled", log=True,
                        title=f"{label} ({results['preset']} preset): loss on each split",
                        out=FIGURES / f"topology_splits_{name}.png")
        js.plot.difference(plane, val, names=("train", "val"),
                           title=f"{label} ({results['preset']} preset): val - train loss",
                           out=FIGURES / f"topology_gap_{name}.png")
        numbers[name] = {"topology": js.topology.summary(plane),
                         "topology_val": js.topology.summary(val),
                         "split_gap": r.get("split_gap")}
    js.plot.persistence(planes, title=f"skip vs no skip ({results['preset']} preset)",
                        out=FIGURES / "topology_persistence.png")
    return numbers


def mlp(params, batch):
    h = jnp.tanh(batch["x"] @ params["hidden"]["w"] + params["hidden"]["b"])
    logits = h @ params["out"]["w"] + params["out"]["b"]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
    return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}


def volume_figures(n_grid: int = 15) -> dict:
    """A trained MLP's loss in a 3-D box of random directions: slices, basins, .vti."""
    raw = load_fashion_mnist()
    mean, std = channel_stats(raw["train"]["x"][:5000])
    x = standardize(raw["train"]["x"][:5000], mean, std).reshape(5000, -1)
    data = {"x": x, "y": raw["train"]["y"][:5000]}
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = {"hidden": {"w": jax.random.normal(k1, (784, 32)) / 28.0, "b": jnp.zeros(32)},
              "out": {"w": jax.random.normal(k2, (32, 10)) / np.sqrt(32), "b": jnp.zeros(10)}}
    opt = optax.adam(1e-3)
    state = opt.init(params)

    @jax.jit
    def step(params, state, batch):
        grads = jax.grad(lambda p: mlp(p, batch)["loss"])(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state

    rng = np.random.default_rng(0)
    for _ in range(300):
        idx = rng.integers(0, 5000, 128)
        params, state = step(params, state, {"x": x[idx], "y": data["y"][idx]})
    d1, d2, d3 = js.random_directions(k3, params, n=3)
    grid = np.linspace(-1.0, 1.0, n_grid)
    subset = {"x": x[:1000], "y": data["y"][:1000]}
    volume = js.evaluate_volume(mlp, params, d1, d2, d3, subset, grid, grid, grid,
                                batch_size=500, progress=False,
                                metadata={"title": "MLP 784-32-10, Fashion-MNIST: loss"})
    js.plot.slices(volume, log=True, title="MLP on Fashion-MNIST: loss on three orthogonal "
                   "slices through the trained weights (one colour scale)",
                   out=FIGURES / "volume_slices.png")
    js.plot.slices(volume, "accuracy", title="the same volume: accuracy",
                   out=FIGURES / "volume_slices_accuracy.png")
    vti = js.export.write_vti(volume, Path("/tmp/jaxsurf_volume.vti"))
    return {"grid": list(volume.shape), "seconds": volume.metadata["seconds"],
            "vti": str(vti), "vti_bytes": vti.stat().st_size,
            "topology": js.topology.summary(volume),
            "at_origin": float(volume.metrics["loss"][n_grid // 2, n_grid // 2, n_grid // 2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("/tmp/topo_smoke"),
                        help="--out of a finished experiments.resnet56 run")
    args = parser.parse_args()
    FIGURES.mkdir(parents=True, exist_ok=True)
    numbers = {"runs": run_figures(args.runs), "volume": volume_figures()}
    (FIGURES / "topology_numbers.json").write_text(json.dumps(numbers, indent=1))
    print(json.dumps(numbers, indent=1))


if __name__ == "__main__":
    main()
