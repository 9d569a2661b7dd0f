"""Issue 23, items 10 and 11: model state that follows the params, filter layouts
that are assumed rather than known."""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsurf as js
from jaxsurf import _state


# ------------------------------------------------------------------ item 10: model state
class _CNN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.0)(x)
        return nn.Dense(3)(nn.relu(x).mean((1, 2)))


def _cnn_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 6, 6, 2)).astype(np.float32),
            "y": (np.arange(n) % 3).astype(np.int32)}


def _cnn_variables(model, data, seed):
    """Variables whose running statistics are those of (scaled, shifted) data: A and B differ."""
    variables = model.init(jax.random.key(seed), data["x"][:2])
    _, updates = model.apply(variables, data["x"] * (1 + 2 * seed) + seed, train=True,
                             mutable=["batch_stats"])
    return {"params": variables["params"], **updates}


def _own_loss(model, variables, data):
    logits = model.apply(variables, data["x"])
    return float(optax.softmax_cross_entropy_with_integer_labels(logits, data["y"]).mean())


def test_item10_linen_batchnorm_statistics_follow_the_params():
    data = _cnn_data()
    model = _CNN()
    va, vb = _cnn_variables(model, data, 0), _cnn_variables(model, data, 1)
    fn, pa = js.flax.adapt(model, va)
    _, pb = js.flax.adapt(model, vb)
    own_a, own_b = _own_loss(model, va, data), _own_loss(model, vb, data)
    assert abs(own_a - own_b) > 1e-2  # the statistics matter
    # a direct call, the evaluators, dataset_mean: B's weights with B's statistics
    assert float(fn(pb, data)["loss"]) == pytest.approx(own_b, rel=1e-5)
    assert float(fn(pa, data)["loss"]) == pytest.approx(own_a, rel=1e-5)
    assert js.dataset_mean(fn, data)(pb)["loss"] == pytest.approx(own_b, rel=1e-5)
    assert js.dataset_mean(fn, data)(pa)["loss"] == pytest.approx(own_a, rel=1e-5)
    zero = jax.tree_util.tree_map(jnp.zeros_like, pb)
    line = js.evaluate_line(fn, pb, zero, data, [0.0, 1.0], progress=False)
    assert line.metrics["loss"][0] == pytest.approx(own_b, rel=1e-5)
    assert line.metadata["model_state"] == _state.OF_PARAMS
    points = js.evaluate_points(fn, pb, [zero], data, [[0.0]], progress=False)
    assert points["loss"][0] == pytest.approx(own_b, rel=1e-5)
    # the Hessian at B is B's, whichever adapted fn is given
    fn_b, pb_fn_own = js.flax.adapt(model, vb)
    v = js.random_direction(jax.random.key(3), pb)
    hv = js.hessian.hvp(fn, pb, data, v)
    want = js.hessian.hvp(fn_b, pb_fn_own, data, v)
    assert js.tree.norm(js.tree.sub(hv, want)) <= 1e-5 * js.tree.norm(want)
    # params no adapter returned (computed arrays): fn's own state, and the metadata says so
    computed = js.tree.scale(pb, 1.0)
    line = js.evaluate_line(fn, computed, zero, data, [0.0], progress=False)
    assert line.metadata["model_state"] == _state.OF_FN
    assert line.metrics["loss"][0] != pytest.approx(own_b, rel=1e-3)
    stateless = js.evaluate_line(lambda p, b: fn(p, b), pb, zero, data, [0.0], progress=False)
    assert stateless.metadata["model_state"] == _state.NO_STATE


def test_item10_params_adapted_with_two_states_use_fns_own():
    """One params dict adapted twice with different statistics: nobody can tell which
    state its arrays belong to, so each fn keeps its own (never the other's)."""
    data = _cnn_data()
    model = _CNN()
    va, vb = _cnn_variables(model, data, 0), _cnn_variables(model, data, 1)
    shared_b = {"params": va["params"], "batch_stats": vb["batch_stats"]}
    fn, pa = js.flax.adapt(model, va)
    fn_b, pb = js.flax.adapt(model, shared_b)
    assert pa is pb
    assert float(fn(pa, data)["loss"]) == pytest.approx(_own_loss(model, va, data), rel=1e-5)
    assert float(fn_b(pb, data)["loss"]) == pytest.approx(_own_loss(model, shared_b, data),
                                                          rel=1e-5)


class _EqxBN(eqx.Module):
    """Linear → BatchNorm → tanh → Linear, Equinox's own layers and eqx.nn.State."""

    linear: eqx.nn.Linear
    norm: eqx.nn.BatchNorm
    head: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.linear, self.head = eqx.nn.Linear(4, 8, key=k1), eqx.nn.Linear(8, 3, key=k2)
        self.norm = eqx.nn.BatchNorm(8, axis_name="batch", momentum=0.0, mode="ema")

    def __call__(self, x, state):
        h, state = self.norm(self.linear(x), state)
        return self.head(jnp.tanh(h)), state


def _eqx_trained(seed, x):
    model, state = eqx.nn.make_with_state(_EqxBN)(jax.random.key(seed))
    # one training-mode pass: the running statistics become those of this (shifted) data
    _, state = jax.vmap(model, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(
        x * (1 + seed) + seed, state)
    return model, state


def test_item10_equinox_batchnorm_state_follows_the_params():
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(20, 4)).astype(np.float32),
            "y": (np.arange(20) % 3).astype(np.int32)}
    model_a, state_a = _eqx_trained(0, data["x"])
    model_b, state_b = _eqx_trained(1, data["x"])

    def own_loss(model, state):
        net = eqx.nn.inference_mode(model, True)
        logits = jax.vmap(lambda x: net(x, state)[0])(data["x"])
        return float(optax.softmax_cross_entropy_with_integer_labels(logits, data["y"]).mean())

    fn, pa = js.equinox.adapt(model_a, state_a)
    _, pb = js.equinox.adapt(model_b, state_b)
    own_b = own_loss(model_b, state_b)
    assert abs(own_loss(model_a, state_a) - own_b) > 1e-2
    assert float(fn(pb, data)["loss"]) == pytest.approx(own_b, rel=1e-5)
    zero = jax.tree_util.tree_map(jnp.zeros_like, pb)
    plane = js.evaluate_plane(fn, pb, zero, zero, data, [0.0], [0.0], progress=False)
    assert plane.metrics["loss"][0, 0] == pytest.approx(own_b, rel=1e-5)
    assert plane.metadata["model_state"] == _state.OF_PARAMS
    assert js.dataset_mean(fn, data)(pb)["loss"] == pytest.approx(own_b, rel=1e-5)


# ------------------------------------------------------------------ item 11: layouts
class _RawLinear(eqx.Module):
    """A custom Equinox module holding a raw (out, in) array, as Equinox's own Linear does."""

    weight: jax.Array
    bias: jax.Array

    def __init__(self, key):
        self.weight = jax.random.normal(key, (6, 4)) * jnp.arange(1.0, 7.0)[:, None]
        self.bias = jnp.zeros(6)

    def __call__(self, x):
        return self.weight @ x + self.bias


def test_item11_custom_equinox_module_layout_is_assumed_and_warned():
    params, _ = eqx.partition(_RawLinear(jax.random.key(0)), eqx.is_array)
    raw = js.random_direction(jax.random.key(1), params)
    with pytest.warns(UserWarning, match=r"\.weight is in a container jaxsurf does not "
                                         r"recognize.*filter_axis=0"):
        d = js.normalize(raw, params)
    with pytest.warns(UserWarning, match="assumed, not known"):
        info = js.describe_direction(d, params)
    assert info["layout"] == "assumed" and info["assumed_leaves"] == [".weight"]
    # the user's answer silences it, is recorded, and normalizes the rows (the filters)
    d0 = js.normalize(raw, params, filter_axis=0)
    rows = np.linalg.norm(np.asarray(d0.weight), axis=1)
    np.testing.assert_allclose(rows, np.linalg.norm(np.asarray(params.weight), axis=1),
                               rtol=1e-5)
    info0 = js.describe_direction(d0, params, filter_axis=0)
    assert info0["layout"] == "given" and info0["assumed_leaves"] == []
    # a plain dict of PyTorch-style 'weight' arrays warns too
    torch_like = {"fc": {"weight": jnp.ones((3, 5)), "bias": jnp.ones(3)}}
    with pytest.warns(UserWarning, match=r"\['fc'\]\['weight'\]"):
        js.normalize(js.random_direction(jax.random.key(0), torch_like), torch_like)


def test_item11_known_layouts_stay_quiet_and_plain_arrays_are_recorded_as_assumed():
    flax_like = {"Dense_0": {"kernel": jnp.ones((4, 3)), "bias": jnp.ones(3)}}
    d = js.normalize(js.random_direction(jax.random.key(0), flax_like), flax_like)
    info = js.describe_direction(d, flax_like)  # no warning (pytest: warnings are errors)
    assert info["layout"] == "inferred" and info["assumed_leaves"] == []
    eqx_layers = eqx.partition(eqx.nn.MLP(4, 3, 8, 1, key=jax.random.key(0)), eqx.is_array)[0]
    d = js.normalize(js.random_direction(jax.random.key(0), eqx_layers), eqx_layers)
    assert js.describe_direction(d, eqx_layers)["layout"] == "inferred"
    plain = {"w": jnp.ones((4, 3))}
    d = js.normalize(js.random_direction(jax.random.key(0), plain), plain)
    info = js.describe_direction(d, plain)
    assert info["layout"] == "assumed" and info["assumed_leaves"] == ["['w']"]


def test_item11_filter_axis_callable_that_matches_nothing_warns():
    params = {"Conv_0": {"kernel": jnp.ones((3, 3, 2, 4))},
              "Dense_0": {"kernel": jnp.ones((4, 3))}}
    raw = js.random_direction(jax.random.key(0), params)
    # the old docs' example: "conv" never occurs in a Flax path
    with pytest.warns(UserWarning, match=r"returned -1 for every one of the 2 leaves.*"
                                         r"\['Conv_0'\]\['kernel'\]"):
        js.normalize(raw, params, filter_axis=lambda path, w: 0 if "conv" in path else -1)
    # one that does select: quiet
    js.normalize(raw, params, filter_axis=lambda path, w: 2 if "Conv" in path else -1)


def test_item10_evaluate_curve_on_a_line_and_interpolate_agree_by_default():
    data = _cnn_data()
    model = _CNN()
    va, vb = _cnn_variables(model, data, 0), _cnn_variables(model, data, 1)
    fn, pa = js.flax.adapt(model, va)
    _, pb = js.flax.adapt(model, vb)
    ts = [0.0, 0.5, 1.0]
    on_line = js.connect.evaluate_curve(fn, js.connect.line(pa, pb), data, ts, progress=False)
    interpolated = js.interpolate(fn, pa, pb, data, ts, progress=False)
    assert on_line.metadata["state_policy"] == interpolated.metadata["state_policy"]
    np.testing.assert_allclose(on_line.metrics["loss"], interpolated.metrics["loss"],
                               rtol=1e-6)
    assert on_line.metrics["loss"][2] == pytest.approx(_own_loss(model, vb, data), rel=1e-5)
    assert interpolated.metadata["model_state"].startswith("interpolated")
