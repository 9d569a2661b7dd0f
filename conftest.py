"""Repository-wide pytest set-up: four simulated CPU devices (set before JAX
starts) and the names the docstring examples in ``jaxsurf/`` use.

``python -m pytest --doctest-modules jaxsurf`` runs every example with
``js``, ``jax``, ``jnp``, ``np`` and a small trained model in scope:

- ``fn(params, batch) -> {"loss", "accuracy"}``: a tanh MLP (4 → 8 → 3),
  cross-entropy and accuracy as batch means (the contract of ``fn`` in docs/api.md);
  ``params`` a trained minimum of it (Flax layout), ``params_a``/``params_b``
  two minima from different seeds;
- ``data``: 96 examples ``{"x": (96, 4), "y": (96,)}``; ``batches`` the same
  data as a list of three batches (the iterable form);
- ``d``, ``d1``, ``d2``: filter-normalized directions around ``params``;
- ``plane``: the 7 × 7 loss/accuracy plane of ``fn`` along ``d1``, ``d2``
  (also ``s`` and ``surface``); ``line_surface``: a 9-point line along ``d``;
  ``volume``: a 5 × 5 × 5 analytic volume; ``s_skip``/``s_noskip``: two
  analytic planes (a bowl, a rough double well).

Everything is computed once per session. Each example runs in its own
temporary working directory, so relative paths (``runs/plane.npz``) never
write into the repository. Matplotlib uses the Agg backend and every figure
is closed after each example.

This file lives at the repository root, outside the ``jaxsurf`` package, so it
is never installed with the library.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from _pytest.doctest import DoctestItem  # noqa: E402


def _mlp_fn(params, batch):
    """Cross-entropy and accuracy of a tanh MLP, as batch means."""
    import jax
    import jax.numpy as jnp

    h = jnp.tanh(batch["x"] @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
    logits = h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]
    logp = jax.nn.log_softmax(logits)
    loss = -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1))
    return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}


def _data(n=96, seed=0):
    """Three Gaussian blobs in 4-D, labelled by blob."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centres = np.eye(3, 4, dtype=np.float32) * 2.0
    x = (centres[y] + rng.normal(size=(n, 4))).astype(np.float32)
    return {"x": x, "y": y}


def _trained_params(seed, data, steps=300, lr=0.5):
    """Full-batch gradient descent from a random init: a minimum of ``_mlp_fn``."""
    import jax
    import numpy as np

    k0, k1 = jax.random.split(jax.random.key(seed))
    params = {"Dense_0": {"kernel": jax.random.normal(k0, (4, 8)) / 2.0,
                          "bias": jax.numpy.zeros(8)},
              "Dense_1": {"kernel": jax.random.normal(k1, (8, 3)) / np.sqrt(8),
                          "bias": jax.numpy.zeros(3)}}
    grad = jax.grad(lambda p: _mlp_fn(p, data)["loss"])

    def step(_, p):
        return jax.tree.map(lambda w, g: w - lr * g, p, grad(p))

    return jax.jit(lambda p: jax.lax.fori_loop(0, steps, step, p))(params)


def _flax_models(data):
    """A small Flax Linen net with BatchNorm and two variable sets (different
    seeds, running statistics from one training-mode pass each)."""
    import flax.linen as nn
    import jax

    class BatchNormMLP(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            x = nn.Dense(8)(x)
            x = nn.BatchNorm(use_running_average=not train)(x)
            return nn.Dense(3)(nn.tanh(x))

    model = BatchNormMLP()

    def variables(seed):
        v = model.init(jax.random.key(seed), data["x"][:2])
        _, stats = model.apply(v, data["x"] * (1 + seed), train=True, mutable=["batch_stats"])
        return {"params": v["params"], **stats}

    return model, variables(0), variables(1)


def _record_trajectory(path, data, steps=6, lr=0.5):
    """Full-batch gradient descent from a random init, params saved every step."""
    import jax

    import jaxsurf as js

    params = _trained_params(2, data, steps=0)
    grad = jax.jit(jax.grad(lambda p: _mlp_fn(p, data)["loss"]))
    with js.TrajectoryRecorder(path) as rec:
        for step in range(steps):
            rec.save(step, params)
            params = jax.tree.map(lambda w, g: w - lr * g, params, grad(params))
    return str(path)


@pytest.fixture(scope="session")
def _doctest_objects(tmp_path_factory):
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jaxsurf as js

    data = _data()
    params = _trained_params(0, data)
    d1, d2 = js.random_plane(jax.random.key(0), params)
    grid = np.linspace(-1, 1, 7)
    plane = js.evaluate_plane(_mlp_fn, params, d1, d2, data, grid, grid, progress=False)
    d = js.normalize(js.random_direction(jax.random.key(1), params), params)
    line_surface = js.evaluate_line(_mlp_fn, params, d, data, np.linspace(-1, 1, 9),
                                    progress=False)
    a, b = np.linspace(-1, 1, 21), np.linspace(-0.5, 0.5, 11)
    A, B = np.meshgrid(a, b, indexing="ij")
    s_skip = js.Surface(a, b, {"loss": A**2 + 4 * B**2 + 0.1})
    s_noskip = js.Surface(a, b, {"loss": (4 * A**2 - 1.5)**2 / 4 + 4 * B**2 + 0.3
                                 + 0.05 * np.cos(9 * A) * np.cos(9 * B)})
    g = np.linspace(-1, 1, 5)
    A3, B3, C3 = np.meshgrid(g, g, g, indexing="ij")
    volume = js.Surface(g, g, {"loss": A3**2 + B3**2 + C3**2 + 0.1}, gammas=g)
    model, variables_a, variables_b = _flax_models(data)
    params_b = _trained_params(1, data)
    curve = js.connect.fit_curve(_mlp_fn, params, params_b, data, epochs=2, batch_size=32,
                                 key=jax.random.key(0), log=None)
    return {
        "model": model, "variables": variables_a, "variables_a": variables_a,
        "variables_b": variables_b,
        "js": js, "jax": jax, "jnp": jnp, "np": np,
        "fn": _mlp_fn, "params": params, "data": data,
        "batches": [{k: v[i:i + 32] for k, v in data.items()} for i in range(0, 96, 32)],
        "trajectory": _record_trajectory(tmp_path_factory.mktemp("doctest") / "traj", data),
        "params_a": params, "params_b": params_b, "curve": curve,
        "d": d, "d1": d1, "d2": d2, "grid": np.linspace(-1, 1, 5),
        "plane": plane, "s": plane, "surface": plane, "line_surface": line_surface,
        "volume": volume, "s_skip": s_skip, "s_noskip": s_noskip,
    }


@pytest.fixture(autouse=True)
def _doctest_setup(request, doctest_namespace):
    """For docstring examples only: the shared names, a temporary working
    directory, and no figure left open."""
    if not isinstance(request.node, DoctestItem):
        yield
        return
    if any("load_fashion_mnist(" in e.source or "/fashion-mnist/" in e.source
           for e in request.node.dtest.examples):
        from jaxsurf.data.fashion_mnist import find_fashion_mnist

        if find_fashion_mnist()[0] is None:
            pytest.skip("needs Fashion-MNIST (Debian package dataset-fashion-mnist, which "
                        "scripts/install.sh installs)")
    objects = request.getfixturevalue("_doctest_objects")
    own = request.node.dtest.globs  # the module's globals: never shadowed
    doctest_namespace.update(objects)
    for name in objects:
        if name in own and own[name] is not objects[name]:
            del doctest_namespace[name]
    request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
