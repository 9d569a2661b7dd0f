import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

import jaxsurf as js


class LinenNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(3)(nn.relu(x).mean(axis=(1, 2)))


class NNXNet(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.head = nnx.Linear(4, 3, rngs=rngs)

    def __call__(self, x):
        return self.head(nnx.relu(self.bn(self.conv(x))).mean(axis=(1, 2)))


def images(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 6, 6, 1)).astype(np.float32),
            rng.integers(0, 3, n).astype(np.int32))


def test_linen_adapter_uses_running_batchnorm_statistics():
    x, y = images()
    module = LinenNet()
    variables = module.init(jax.random.key(0), x)
    variables = {"params": variables["params"],
                 "batch_stats": jax.tree.map(lambda s: s + 0.5, variables["batch_stats"])}
    fn, params = js.flax.adapt(module, variables)
    assert params is variables["params"]
    whole = fn(params, {"image": x, "label": y})
    # eval mode: a per-example output does not depend on the rest of the batch
    parts = [fn(params, (x[i:i + 1], y[i:i + 1]))["loss"] for i in range(len(x))]
    assert float(whole["loss"]) == pytest.approx(float(np.mean(parts)), rel=1e-5)
    assert set(whole) == {"loss", "accuracy"}


def test_nnx_adapter_and_losses():
    x, y = images()
    model = NNXNet(nnx.Rngs(0))
    fn, params = js.flax.adapt(model, loss="mse")
    assert isinstance(params, dict) and params["conv"]["kernel"].shape == (3, 3, 1, 4)
    logits = model.head(nnx.relu(model.bn(model.conv(x), use_running_average=True))
                        .mean(axis=(1, 2)))
    want = jnp.mean((logits - jax.nn.one_hot(y, 3)) ** 2)
    assert float(fn(params, (x, y))["loss"]) == pytest.approx(float(want), rel=1e-5)
    d = js.normalize(js.random_direction(jax.random.key(1), params), params)
    line = js.evaluate_line(fn, params, d, (x, y), [-0.5, 0.0, 0.5])
    assert line.metrics["loss"][1] == pytest.approx(float(want), rel=1e-5)


def test_regression_losses_and_custom_callable():
    x = np.ones((4, 2), np.float32)
    module = nn.Dense(2)
    variables = module.init(jax.random.key(0), x)
    fn, params = js.flax.adapt(module, variables, loss="mae")
    out = module.apply(variables, x)
    assert float(fn(params, (x, np.zeros((4, 2), np.float32)))["loss"]) == pytest.approx(
        float(jnp.mean(jnp.abs(out))))
    fn2, _ = js.flax.adapt(module, variables, loss=lambda o, t: jnp.mean(o - t))
    assert set(fn2(params, (x, x))) == {"loss"}


def test_adapter_errors_are_clear():
    x, y = images()
    module = LinenNet()
    variables = module.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        js.flax.adapt(module, variables, loss="hinge")
    with pytest.raises(ValueError, match="needs its variables"):
        js.flax.adapt(module)
    fn, params = js.flax.adapt(module, variables)
    with pytest.raises(KeyError, match=r"keys are \['a', 'b'\].*input_key"):
        fn(params, {"a": x, "b": y})


def test_mae_takes_integer_labels_like_mse():
    from jaxsurf._losses import mae, mse
    outputs = jnp.array([[2.0, 0.0, 0.0], [0.0, 0.5, 1.0]])
    labels = jnp.array([0, 1])
    one_hot = jax.nn.one_hot(labels, 3)
    np.testing.assert_allclose(mae(outputs, labels)["loss"], jnp.mean(jnp.abs(outputs - one_hot)))
    np.testing.assert_allclose(mse(outputs, labels)["loss"], jnp.mean((outputs - one_hot) ** 2))
    assert float(mae(outputs, labels)["accuracy"]) == 0.5
