"""Small models and data the tests share (plain functions; fixtures live in conftest.py)."""

import jax
import jax.numpy as jnp
import numpy as np


def dense_params(key, sizes=(5, 4, 3)):
    """A small MLP's params in Flax layout (kernel [in, out], bias [out])."""
    keys = jax.random.split(key, len(sizes))
    return {f"Dense_{i}": {"kernel": jax.random.normal(keys[i], (a, b)) / np.sqrt(a),
                           "bias": 0.1 * jax.random.normal(keys[i], (b,))}
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}


def mlp_fn(params, batch):
    """Cross-entropy and accuracy of a tanh MLP: batch means."""
    h = batch["x"]
    layers = sorted(params)
    for name in layers[:-1]:
        h = jnp.tanh(h @ params[name]["kernel"] + params[name]["bias"])
    logits = h @ params[layers[-1]]["kernel"] + params[layers[-1]]["bias"]
    logp = jax.nn.log_softmax(logits)
    loss = -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1))
    return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}


def classification_data(n=103, features=5, classes=3, seed=0):
    """``n`` examples ``{"x": (n, features) float32, "y": (n,) int32}``, Gaussian inputs."""
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, features)).astype(np.float32),
            "y": rng.integers(0, classes, n).astype(np.int32)}
