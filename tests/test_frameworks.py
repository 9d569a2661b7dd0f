"""Correct for every JAX framework: layout-aware filter normalization, ignore by
role, Equinox adapter, BatchNorm state along interpolations, degenerate
directions (issues 12 and 13.7/13.8)."""

import os

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsurf as js
from jaxsurf import data as js_data
from helpers import dense_params, classification_data

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


# ------------------------------------------------------------------ small models
class EqxConvNet(eqx.Module):
    """Conv(1→8, bias) → ReLU → Conv(8→8) → BatchNorm → ReLU → mean → Linear(8→10)."""

    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    bn: eqx.nn.BatchNorm
    head: eqx.nn.Linear

    def __init__(self, key):
        k = jax.random.split(key, 3)
        self.conv1 = eqx.nn.Conv2d(1, 8, 3, padding=1, key=k[0])
        self.conv2 = eqx.nn.Conv2d(8, 8, 3, padding=1, use_bias=False, key=k[1])
        self.bn = eqx.nn.BatchNorm(8, axis_name="batch", mode="batch")
        self.head = eqx.nn.Linear(8, 10, key=k[2])

    def __call__(self, x, state):
        h = jax.nn.relu(self.conv1(x))
        h, state = self.bn(self.conv2(h), state)
        return self.head(jax.nn.relu(h).mean(axis=(1, 2))), state


def small_images(n=256, seed=0):
    """``n`` Fashion-MNIST training images at 14x14, channels first (synthetic if absent)."""
    if os.path.isdir(FMNIST_DIR):
        ds = js_data.load_fashion_mnist(FMNIST_DIR, validation=0)["train"]
        x = ds["x"][:n, ::2, ::2, :].astype(np.float32) / 255.0
        y = ds["y"][:n].astype(np.int32)
    else:  # pragma: no cover - the data set is installed on CI machines
        rng = np.random.default_rng(seed)
        x = rng.random((n, 14, 14, 1), dtype=np.float32)
        y = rng.integers(0, 10, n).astype(np.int32)
    return {"x": np.transpose(x, (0, 3, 1, 2)), "y": y}


def train_eqx(model, state, data, steps=15, lr=0.05):
    """A few steps of SGD with batch statistics (BatchNorm in training mode)."""
    def loss(params, static, state, x, y):
        net = eqx.combine(params, static)
        logits, state = jax.vmap(net, axis_name="batch", in_axes=(0, None),
                                 out_axes=(0, None))(x, state)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1)), state

    params, static = eqx.partition(model, eqx.is_array)

    @jax.jit
    def step(params, state, x, y):
        (_, state), g = jax.value_and_grad(loss, has_aux=True)(params, static, state, x, y)
        return jax.tree_util.tree_map(lambda p, gi: p - lr * gi, params, g), state

    for i in range(steps):
        sl = slice((i * 64) % len(data["y"]), (i * 64) % len(data["y"]) + 64)
        params, state = step(params, state, data["x"][sl], data["y"][sl])
    return eqx.combine(params, static), state


@pytest.fixture(scope="module")
def trained_eqx():
    data = small_images()
    model, state = eqx.nn.make_with_state(EqxConvNet)(jax.random.key(0))
    model, state = train_eqx(model, state, data)
    return model, state, data


# ------------------------------------------------------------------ item 1, 2
def test_equinox_random_plane_filters_have_the_norms_of_the_weights(trained_eqx):
    model, state, _ = trained_eqx
    fn, params = js.equinox.adapt(model, state)
    d1, d2 = js.random_plane(jax.random.key(1), params)
    for d in (d1, d2):
        for name in ("conv1", "conv2", "head"):
            w, dw = getattr(params, name).weight, getattr(d, name).weight
            ratios = (np.linalg.norm(np.asarray(dw).reshape(len(dw), -1), axis=1)
                      / np.linalg.norm(np.asarray(w).reshape(len(w), -1), axis=1))
            np.testing.assert_allclose(ratios, 1.0, rtol=1e-5, err_msg=name)
        assert d.conv1.bias.shape == (8, 1, 1) and not np.any(np.asarray(d.conv1.bias))
        assert not np.any(np.asarray(d.head.bias))
        assert not np.any(np.asarray(d.bn.weight)) and not np.any(np.asarray(d.bn.bias))
    info = js.describe_direction(d1, params)
    assert info["normalization"] == "filter" and info["ignore"] == "biasbn"
    assert info["filter_axes"][".conv1.weight"] == [0]


def test_describe_direction_never_certifies_another_layout(trained_eqx):
    model, state, _ = trained_eqx
    _, params = js.equinox.adapt(model, state)
    last = js.normalize(js.random_direction(jax.random.key(2), params), params, filter_axis=-1)
    assert js.describe_direction(last, params)["normalization"] != "filter"
    assert js.describe_direction(last, params, filter_axis=-1)["normalization"] == "filter"
    assert js.describe_direction(last, params, filter_axis=-1)["layout"] == "given"


@settings(max_examples=10, deadline=None)
@given(factors=st.lists(st.floats(0.2, 5.0), min_size=8, max_size=8),
       alpha=st.floats(-1.0, 1.0), beta=st.floats(-1.0, 1.0))
def test_equinox_filter_normalized_plane_is_invariant_to_filter_rescaling(factors, alpha, beta):
    model, state = eqx.nn.make_with_state(EqxConvNet)(jax.random.key(3))
    params, static = eqx.partition(model, eqx.is_array)
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(16, 1, 6, 6)).astype(np.float32),
             "y": rng.integers(0, 10, 16).astype(np.int32)}

    def loss(p):  # BatchNorm on batch statistics: conv2's filters are scale-free
        net = eqx.combine(p, static)
        logits, _ = jax.vmap(net, axis_name="batch", in_axes=(0, None),
                             out_axes=(0, None))(batch["x"], state)
        logp = jax.nn.log_softmax(logits)
        return float(-jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1)))

    keys = jax.random.split(jax.random.key(4))
    raw1, raw2 = (js.random_direction(k, params) for k in keys)
    c = jnp.asarray(factors, jnp.float32)[:, None, None, None]
    rescaled = eqx.tree_at(lambda p: p.conv2.weight, params, params.conv2.weight * c)

    def loss_at(p):
        d1, d2 = js.normalize(raw1, p), js.normalize(raw2, p)
        return loss(js.tree.add(p, js.tree.add(js.tree.scale(d1, alpha),
                                               js.tree.scale(d2, beta))))

    assert loss_at(rescaled) == pytest.approx(loss_at(params), rel=2e-4, abs=2e-5)


def test_ignore_by_role_zeroes_equinox_norm_and_bias_leaves_of_any_shape():
    model = eqx.nn.Sequential([eqx.nn.Conv2d(2, 3, 3, key=jax.random.key(0)),
                               eqx.nn.LayerNorm((3, 4, 4))])
    params = eqx.partition(model, eqx.is_array)[0]
    d = js.normalize(js.random_direction(jax.random.key(1), params), params)
    assert not np.any(np.asarray(d.layers[0].bias))
    assert not np.any(np.asarray(d.layers[1].weight)) and not np.any(np.asarray(d.layers[1].bias))
    assert np.all(np.asarray(d.layers[0].weight) != 0)
    # a plain pytree keeps today's rule: only leaves of ndim <= 1 are ignored
    plain = {"w": jnp.ones((3, 2)), "v": jnp.ones(3)}
    dp = js.normalize(js.random_direction(jax.random.key(1), plain), plain)
    assert np.all(np.asarray(dp["w"]) != 0) and not np.any(np.asarray(dp["v"]))


def test_flax_batchnorm_params_are_ignored_by_name_whatever_their_shape():
    params = {"Conv_0": {"kernel": jnp.ones((3, 3, 2, 4))},
              "LayerNorm_0": {"scale": jnp.ones((4, 4)), "bias": jnp.ones((4, 4))}}
    d = js.normalize(js.random_direction(jax.random.key(0), params), params)
    assert not np.any(np.asarray(d["LayerNorm_0"]["scale"]))


# ------------------------------------------------------------------ filter_axis forms
def test_filter_axis_int_pytree_and_callable_agree():
    params = {"a": jax.random.normal(jax.random.key(0), (4, 3)),
              "b": jax.random.normal(jax.random.key(1), (5, 2, 2))}
    raw = js.random_direction(jax.random.key(2), params)
    by_int = js.normalize(raw, params, filter_axis=0)
    by_tree = js.normalize(raw, params, filter_axis={"a": 0, "b": 0})
    # a callable giving every leaf the same axis selects nothing: it works, and warns
    with pytest.warns(UserWarning, match=r"returned 0 for every one of the 2 leaves"):
        by_call = js.normalize(raw, params, filter_axis=lambda path, leaf: 0)
    for other in (by_tree, by_call):
        for k in params:
            np.testing.assert_array_equal(np.asarray(by_int[k]), np.asarray(other[k]))
    rows = np.linalg.norm(np.asarray(by_int["b"]).reshape(5, -1), axis=1)
    np.testing.assert_allclose(rows, np.linalg.norm(np.asarray(params["b"]).reshape(5, -1),
                                                     axis=1), rtol=1e-5)
    # a tuple of axes: one filter per (i, j) pair
    pairs = js.normalize(raw, params, filter_axis={"a": None, "b": (0, 1)})
    np.testing.assert_allclose(np.linalg.norm(np.asarray(pairs["b"]), axis=2),
                               np.linalg.norm(np.asarray(params["b"]), axis=2), rtol=1e-5)


def test_bad_filter_axis_names_the_leaf():
    params = {"a": jnp.ones((4, 3)), "b": jnp.ones((5, 2))}
    raw = js.random_direction(jax.random.key(0), params)
    with pytest.raises(ValueError, match=r"filter_axis 2 does not exist for leaf \['a'\]"):
        js.normalize(raw, params, filter_axis={"a": 2, "b": 0})
    with pytest.raises(ValueError, match="filter_axis does not match the params"):
        js.normalize(raw, params, filter_axis={"a": 0})
    with pytest.raises(ValueError, match="does not exist for leaf"):
        js.normalize(raw, params, filter_axis=5)


# ------------------------------------------------------------------ item 3: adapters
def test_equinox_adapter_matches_the_model_and_refuses_bad_input(trained_eqx):
    model, state, data = trained_eqx
    fn, params = js.equinox.adapt(model, state)
    batch = {"x": data["x"][:32], "y": data["y"][:32]}
    net = eqx.nn.inference_mode(model)
    logits = jax.vmap(lambda x: net(x, state)[0])(batch["x"])
    expected = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), batch["y"][:, None], 1))
    assert float(fn(params, batch)["loss"]) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(TypeError, match="js.equinox.adapt"):
        js.flax.adapt(model, None)
    with pytest.raises(TypeError, match=r"params leaf \.\S+ is a \w+, not an array.*eqx.partition"):
        js.random_plane(jax.random.key(0), model)
    with pytest.raises(TypeError, match="equinox.Module"):
        js.equinox.adapt({"w": jnp.ones(2)})
    with pytest.raises(TypeError, match="eqx.nn.State"):
        js.equinox.adapt(model, {"w": jnp.ones(2)})


def test_equinox_adapter_without_state_and_a_plane():
    mlp = eqx.nn.MLP(5, 3, 8, 1, key=jax.random.key(0))
    fn, params = js.equinox.adapt(mlp)
    data = classification_data()
    d1, d2 = js.random_plane(jax.random.key(1), params)
    s = js.evaluate_plane(fn, params, d1, d2, data, [-0.5, 0.0, 0.5], [0.0, 1.0],
                          progress=False)
    assert s.metrics["loss"].shape == (3, 2)
    assert s.metadata["normalization"] == "filter"
    assert s.metadata["directions"][0]["filter_axes"][".layers[0].weight"] == [0]


# ------------------------------------------------------------------ item 4: state
class LinenBN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(6)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.5)(x)
        return nn.Dense(3)(nn.relu(x))


def _linen_trained(seed, data):
    model = LinenBN()
    variables = model.init(jax.random.key(seed), data["x"][:2])
    # move the running statistics away from their initial values
    _, updates = model.apply(variables, data["x"] * (1 + seed), train=True,
                             mutable=["batch_stats"])
    return model, {"params": variables["params"], **updates}


def test_linen_interpolation_reproduces_each_end_point_with_its_statistics():
    data = classification_data()
    model, va = _linen_trained(0, data)
    _, vb = _linen_trained(1, data)
    fn, pa = js.flax.adapt(model, va)
    fn_b, pb = js.flax.adapt(model, vb)
    s = js.interpolate(fn, pa, pb, data, [0.0, 0.5, 1.0], progress=False)
    assert s.metadata["state_policy"] == "interpolate"
    own_a = js.dataset_mean(fn, data)(pa)["loss"]
    own_b = js.dataset_mean(fn_b, data)(pb)["loss"]
    assert s.metrics["loss"][0] == pytest.approx(own_a, rel=1e-6)
    assert s.metrics["loss"][2] == pytest.approx(own_b, rel=1e-6)
    fixed = js.interpolate(fn, pa, pb, data, [1.0], progress=False, state_policy="fixed")
    assert fixed.metrics["loss"][0] != pytest.approx(own_b, rel=1e-3)  # A's statistics
    with pytest.raises(ValueError, match="not returned by a jaxsurf adapter"):
        js.interpolate(fn, pa, js.tree.scale(pb, 1.0), data, [0.0], progress=False)
    with pytest.raises(ValueError, match="unknown state_policy"):
        js.interpolate(fn, pa, pb, data, [0.0], progress=False, state_policy="mean")


class NNXBN(nnx.Module):
    def __init__(self, rngs):
        self.dense = nnx.Linear(5, 6, rngs=rngs)
        self.bn = nnx.BatchNorm(6, momentum=0.5, rngs=rngs)
        self.out = nnx.Linear(6, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.relu(self.bn(self.dense(x))))


def test_nnx_interpolation_reproduces_each_end_point():
    data = classification_data()
    models = []
    for seed in (0, 1):
        m = NNXBN(nnx.Rngs(seed))
        m.train()
        m(jnp.asarray(data["x"]) * (1 + seed))  # updates the running statistics
        models.append(m)
    fn, pa = js.flax.adapt(models[0], loss="cross_entropy")
    fn_b, pb = js.flax.adapt(models[1], loss="cross_entropy")
    s = js.interpolate(fn, pa, pb, data, [0.0, 1.0], progress=False)
    assert s.metrics["loss"][0] == pytest.approx(js.dataset_mean(fn, data)(pa)["loss"], rel=1e-6)
    assert s.metrics["loss"][1] == pytest.approx(js.dataset_mean(fn_b, data)(pb)["loss"],
                                                 rel=1e-6)


def test_equinox_interpolation_reproduces_each_end_point(trained_eqx):
    model_a, state_a, data = trained_eqx
    model_b, state_b = eqx.nn.make_with_state(EqxConvNet)(jax.random.key(7))
    model_b, state_b = train_eqx(model_b, state_b, data, steps=5)
    fn, pa = js.equinox.adapt(model_a, state_a)
    fn_b, pb = js.equinox.adapt(model_b, state_b)
    sub = {"x": data["x"][:64], "y": data["y"][:64]}
    s = js.interpolate(fn, pa, pb, sub, [0.0, 1.0], progress=False)
    assert s.metrics["loss"][0] == pytest.approx(js.dataset_mean(fn, sub)(pa)["loss"], rel=1e-6)
    assert s.metrics["loss"][1] == pytest.approx(js.dataset_mean(fn_b, sub)(pb)["loss"],
                                                 rel=1e-6)


def test_random_directions_stay_zero_on_the_statistics():
    data = classification_data()
    model, va = _linen_trained(0, data)
    fn, params = js.flax.adapt(model, va)
    assert "batch_stats" not in params  # statistics are not moved by directions
    d = js.random_plane(jax.random.key(0), params)[0]
    assert jax.tree_util.tree_structure(d) == jax.tree_util.tree_structure(params)


# ------------------------------------------------------------------ item 7: conventions
def test_loss_landscape_convention_copies_weights_and_uses_signed_weight():
    params = {"Dense_0": {"kernel": jnp.array([[1.0, -2.0], [3.0, 4.0]]),
                          "bias": jnp.array([0.5, -0.5])},
              "Embed_0": {"embedding": jax.random.normal(jax.random.key(0), (6, 3))}}
    raw = js.random_direction(jax.random.key(1), params)
    ll = js.normalize(raw, params, "filter", None, convention="loss-landscape")
    np.testing.assert_array_equal(np.asarray(ll["Dense_0"]["bias"]), [0.5, -0.5])
    rows = np.linalg.norm(np.asarray(ll["Embed_0"]["embedding"]), axis=1)
    np.testing.assert_allclose(rows, np.linalg.norm(np.asarray(params["Embed_0"]["embedding"]),
                                                    axis=1), rtol=1e-5)
    ours = js.normalize(raw, params, "filter", None)
    assert not np.allclose(np.asarray(ours["Dense_0"]["bias"]), [0.5, -0.5])
    cols = np.linalg.norm(np.asarray(ours["Embed_0"]["embedding"]), axis=0)
    np.testing.assert_allclose(cols, np.linalg.norm(np.asarray(params["Embed_0"]["embedding"]),
                                                    axis=0), rtol=1e-5)
    w_ll = js.normalize(raw, params, "weight", "biasbn", convention="loss-landscape")
    w_js = js.normalize(raw, params, "weight", "biasbn")
    k, r = np.asarray(params["Dense_0"]["kernel"]), np.asarray(raw["Dense_0"]["kernel"])
    np.testing.assert_allclose(np.asarray(w_ll["Dense_0"]["kernel"]), r * k, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(w_js["Dense_0"]["kernel"]), r * np.abs(k), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown convention"):
        js.normalize(raw, params, convention="torch")


# ------------------------------------------------------------------ 13.7
def test_describe_direction_accepts_bfloat16_filter_directions_and_checks_structure():
    params = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16),
                                    dense_params(jax.random.key(0), (40, 30, 20)))
    d = js.normalize(js.random_direction(jax.random.key(1), params), params)
    assert js.describe_direction(d, params)["normalization"] == "filter"
    bad = {**d, "Dense_1": {"kernel": d["Dense_1"]["kernel"]}}
    with pytest.raises(ValueError, match=r"Dense_1"):
        js.describe_direction(bad, params)


# ------------------------------------------------------------------ 13.8
def test_all_one_dimensional_params_under_biasbn_is_an_error():
    params = {"a": jnp.ones(3), "b": jnp.ones(4)}
    with pytest.raises(ValueError, match="ignored every leaf.*ignore=None"):
        js.random_plane(jax.random.key(0), params)
    d1, _ = js.random_plane(jax.random.key(0), params, ignore=None)
    assert float(js.tree.norm(d1)) > 0


def test_zero_params_and_zero_directions_give_clear_errors():
    zeros = {"w": jnp.zeros((3, 2))}
    d = js.random_direction(jax.random.key(0), zeros)
    with pytest.raises(ValueError, match="all-zero direction"):
        js.orthogonalize(d, zeros)
    with pytest.raises(ValueError, match="all zero"):
        js.random_plane(jax.random.key(0), zeros, orthogonal=True)


def test_nonfinite_direction_is_refused_naming_the_leaf(mlp):
    fn, params, data = mlp
    d = js.random_direction(jax.random.key(0), params)
    bad = {**d, "Dense_1": {**d["Dense_1"], "kernel": d["Dense_1"]["kernel"].at[0, 0].set(jnp.nan)}}
    with pytest.raises(ValueError, match=r"non-finite.*\['Dense_1'\]\['kernel'\]"):
        js.evaluate_line(fn, params, bad, data, [0.0, 1.0], progress=False)
    with pytest.raises(ValueError, match=r"non-finite.*\['Dense_1'\]\['kernel'\]"):
        js.evaluate_plane(fn, params, d, bad, data, [0.0], [0.0], progress=False)
    with pytest.raises(ValueError, match=r"non-finite.*\['Dense_1'\]\['kernel'\]"):
        js.evaluate_points(fn, params, [bad], data, [[0.0]], progress=False)
    inf = {**d, "Dense_0": {**d["Dense_0"], "bias": d["Dense_0"]["bias"].at[0].set(jnp.inf)}}
    with pytest.raises(ValueError, match=r"\['Dense_0'\]\['bias'\]"):
        js.interpolate(fn, params, inf, data, [0.0], progress=False)


# ------------------------------------------------------------------ item 5: trajectories
def test_equinox_trajectory_records_loads_and_gives_pca_directions(tmp_path):
    class Net(eqx.Module):  # fields deliberately not in name order
        zeta: eqx.nn.Conv2d
        alpha: eqx.nn.Linear

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.zeta = eqx.nn.Conv2d(1, 3, 3, key=k1)
            self.alpha = eqx.nn.Linear(3, 2, key=k2)

    params = eqx.partition(Net(jax.random.key(0)), eqx.is_array)[0]
    path = [js.tree.add(params, js.tree.scale(js.random_direction(jax.random.key(s), params),
                                              0.1 * s)) for s in range(4)]
    with js.TrajectoryRecorder(tmp_path / "traj") as rec:
        for step, p in enumerate(path):
            rec.save(step, p)
    loaded = list(js.load_trajectory(tmp_path / "traj", params_like=params))
    assert [s for s, _ in loaded] == [0, 1, 2, 3]
    for (_, got), want in zip(loaded, path):
        assert isinstance(got, Net)
        np.testing.assert_array_equal(np.asarray(got.zeta.weight), np.asarray(want.zeta.weight))
    (d1, d2), ratio = js.pca_directions(tmp_path / "traj", params_like=params, ignore="biasbn")
    assert isinstance(d1, Net) and ratio.shape == (2,)
    assert not np.any(np.asarray(d1.zeta.bias))  # (3, 1, 1) bias ignored by role
    assert abs(float(js.tree.norm(d1)) - 1.0) < 1e-5
    coords = js.project(path, path[-1], [d1, d2])
    assert coords.shape == (4, 2)
    bad = eqx.partition(Net(jax.random.key(0)), eqx.is_array)[0]
    bad = eqx.tree_at(lambda p: p.alpha.weight, bad, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"\.alpha\.weight"):
        list(js.load_trajectory(tmp_path / "traj", params_like=bad))


def test_recompute_policy_reestimates_batchnorm_statistics():
    data = classification_data()
    model, va = _linen_trained(0, data)
    _, vb = _linen_trained(1, data)
    fn, pa = js.flax.adapt(model, va)
    _, pb = js.flax.adapt(model, vb)
    s = js.interpolate(fn, pa, pb, data, [0.0, 1.0], state_policy="recompute",
                       batch_size=103, progress=False)
    assert s.metadata["state_policy"] == "recompute" and s.metadata["recompute_examples"] == 103
    # at alpha = 0 the statistics are those of one full-data pass in training mode
    _, upd = model.apply(va, data["x"], train=True, mutable=["batch_stats"])
    momentum = 0.5
    exact = jax.tree_util.tree_map(lambda new, old: (new - momentum * old) / (1 - momentum),
                                   upd["batch_stats"], va["batch_stats"])
    expected = js.dataset_mean(js.flax.adapt(model, {"params": pa, "batch_stats": exact})[0],
                               data)(pa)["loss"]
    assert s.metrics["loss"][0] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="recompute"):
        mlp = eqx.nn.MLP(5, 3, 8, 1, key=jax.random.key(0))
        fe, pe = js.equinox.adapt(mlp)
        js.interpolate(fe, pe, pe, data, [0.0], state_policy="recompute", progress=False)


def test_linen_include_state_lets_directions_move_the_statistics():
    data = classification_data()
    model, va = _linen_trained(0, data)
    fn, every = js.flax.adapt(model, va, include_state=True)
    assert set(every) == {"params", "batch_stats"}
    d = js.random_direction(jax.random.key(0), every)
    ll = js.normalize(d, every, ignore=None, convention="loss-landscape")  # --dir_type states
    np.testing.assert_array_equal(np.asarray(ll["batch_stats"]["BatchNorm_0"]["mean"]),
                                  np.asarray(va["batch_stats"]["BatchNorm_0"]["mean"]))
    zeroed = js.normalize(d, every)
    assert not np.any(np.asarray(zeroed["batch_stats"]["BatchNorm_0"]["var"]))
    line = js.evaluate_line(fn, every, ll, data, [0.0, 0.5], progress=False)
    assert line.metrics["loss"][0] == pytest.approx(
        js.dataset_mean(js.flax.adapt(model, va)[0], data)(va["params"])["loss"], rel=1e-6)
