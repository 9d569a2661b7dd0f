import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxsurf as js
from helpers import dense_params

SHAPES = [(3, 3, 2, 4), (5, 3), (7,), ()]


def conv_params(key):
    k = jax.random.split(key, 4)
    return {"Conv_0": {"kernel": jax.random.normal(k[0], (3, 3, 2, 4)),
                       "bias": jax.random.normal(k[1], (4,))},
            "BatchNorm_0": {"scale": jnp.ones(4), "bias": jnp.zeros(4)},
            "Dense_0": {"kernel": jax.random.normal(k[2], (4, 3)),
                        "bias": jax.random.normal(k[3], (3,))}}


def per_filter_norms(x):
    return np.sqrt(np.sum(np.asarray(x, np.float64) ** 2, axis=tuple(range(x.ndim - 1))))


def test_random_direction_matches_structure_shapes_dtypes():
    params = {"a": jnp.ones((2, 3), jnp.bfloat16), "b": [jnp.ones(4), jnp.ones((), jnp.float32)],
              "step": jnp.array(3, jnp.int32)}
    d = js.random_direction(jax.random.key(0), params)
    assert jax.tree.structure(d) == jax.tree.structure(params)
    for x, p in zip(jax.tree.leaves(d), jax.tree.leaves(params)):
        assert x.shape == p.shape and x.dtype == p.dtype
    assert int(d["step"]) == 0
    assert float(jnp.std(js.random_direction(jax.random.key(1), {"w": jnp.ones(10000)})["w"])) \
        == pytest.approx(1.0, abs=0.05)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_filter_norms_equal_weight_filter_norms_and_biasbn_zero(seed):
    params = conv_params(jax.random.key(seed))
    d = js.normalize(js.random_direction(jax.random.key(seed + 1), params), params)
    for name in ("Conv_0", "Dense_0"):
        np.testing.assert_allclose(per_filter_norms(d[name]["kernel"]),
                                   per_filter_norms(params[name]["kernel"]), rtol=1e-5)
        assert not np.any(np.asarray(d[name]["bias"]))
    assert not np.any(np.asarray(d["BatchNorm_0"]["scale"]))


def test_filter_is_last_axis_in_flax_layout():
    params = {"k": jnp.stack([jnp.full((3, 3, 2), float(j + 1)) for j in range(4)], axis=-1)}
    d = js.normalize({"k": jnp.ones((3, 3, 2, 4))}, params)
    # every filter k[..., j] of the direction is constant, with norm of params[..., j]
    np.testing.assert_allclose(np.asarray(d["k"]), np.asarray(params["k"]), rtol=1e-6)


def test_ignore_none_keeps_small_leaves_normalized_as_one_filter():
    params = {"b": jnp.array([3.0, 4.0]), "s": jnp.array(2.0)}
    d = js.normalize({"b": jnp.array([1.0, 0.0]), "s": jnp.array(-0.5)}, params, ignore=None)
    np.testing.assert_allclose(np.asarray(d["b"]), [5.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(float(d["s"]), -2.0, rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1),
       factors=st.lists(st.floats(0.01, 100.0), min_size=4, max_size=4))
def test_normalize_is_homogeneous_per_filter(seed, factors):
    params = conv_params(jax.random.key(seed))
    d = js.random_direction(jax.random.key(seed + 7), params)
    c = jnp.asarray(factors, jnp.float32)
    scaled = dict(params, Conv_0=dict(params["Conv_0"], kernel=params["Conv_0"]["kernel"] * c))
    lhs = js.normalize(d, scaled)["Conv_0"]["kernel"]
    rhs = js.normalize(d, params)["Conv_0"]["kernel"] * c
    np.testing.assert_allclose(np.asarray(lhs), np.asarray(rhs), rtol=1e-4, atol=1e-6)


def test_layer_weight_none_methods():
    params = conv_params(jax.random.key(0))
    d = js.random_direction(jax.random.key(1), params)
    layer = js.normalize(d, params, "layer")
    np.testing.assert_allclose(float(jnp.linalg.norm(layer["Conv_0"]["kernel"])),
                               float(jnp.linalg.norm(params["Conv_0"]["kernel"])), rtol=1e-5)
    weight = js.normalize(d, params, "weight", ignore=None)
    np.testing.assert_allclose(np.asarray(weight["Dense_0"]["kernel"]),
                               np.asarray(d["Dense_0"]["kernel"]
                                          * jnp.abs(params["Dense_0"]["kernel"])),
                               rtol=1e-6)
    none = js.normalize(d, params, "none", ignore=None)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(none), jax.tree.leaves(d)))


def test_unknown_method_and_ignore_are_refused():
    params = conv_params(jax.random.key(0))
    with pytest.raises(ValueError, match="unknown normalization method 'filtre'.*'filter'"):
        js.normalize(params, params, "filtre")
    with pytest.raises(ValueError, match="unknown ignore option 'bn'"):
        js.normalize(params, params, ignore="bn")


def test_mismatched_direction_names_first_differing_leaf():
    params = dense_params(jax.random.key(0))
    wrong_shape = jax.tree.map(lambda x: x, params)
    wrong_shape["Dense_1"]["kernel"] = jnp.zeros((4, 2))
    with pytest.raises(ValueError,
                       match=r"\['Dense_1'\]\['kernel'\].*shape \(4, 3\).*shape \(4, 2\)"):
        js.normalize(wrong_shape, params)
    missing = {"Dense_0": params["Dense_0"]}
    with pytest.raises(ValueError, match=r"\['Dense_1'\]"):
        js.normalize(missing, params)
    renamed = {"Dense_0": params["Dense_0"], "Dense_9": params["Dense_1"]}
    with pytest.raises(ValueError, match=r"\['Dense_1'\]"):
        js.normalize(renamed, params)
    wrong_dtype = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
    with pytest.raises(ValueError, match=r"\['Dense_0'\]\['bias'\].*bfloat16"):
        js.normalize(wrong_dtype, params)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_orthogonalize_and_between(seed):
    params = conv_params(jax.random.key(seed))
    d1, d2 = (js.random_direction(k, params) for k in jax.random.split(jax.random.key(seed), 2))
    o = js.orthogonalize(d2, d1)
    assert abs(float(js.tree.dot(o, d1))) < 1e-3 * float(js.tree.norm(d1) * js.tree.norm(d2))
    other = js.tree.add(params, d1)
    moved = js.tree.add(params, js.between(params, other))
    np.testing.assert_allclose(np.asarray(moved["Conv_0"]["kernel"]),
                               np.asarray(other["Conv_0"]["kernel"]), rtol=1e-6)


def test_random_plane_and_describe_direction():
    params = conv_params(jax.random.key(0))
    d1, d2 = js.random_plane(jax.random.key(0), params, orthogonal=True)
    assert abs(float(js.tree.dot(d1, d2))) < 0.05 * float(js.tree.norm(d1) * js.tree.norm(d2))
    info = js.describe_direction(d1, params)
    assert info["normalization"] == "filter" and info["ignore"] == "biasbn"
    layer = js.normalize(js.random_direction(jax.random.key(2), params), params, "layer", None)
    assert js.describe_direction(layer, params)["normalization"] == "layer"
    raw = js.random_direction(jax.random.key(3), params)
    assert js.describe_direction(raw, params)["normalization"] == "unknown"


# ---------------------------------------------------------------- scale invariance
def bn_net_loss(params, batch):
    """Conv (no bias) → normalization computed from the batch → ReLU → pool → Dense."""
    h = jax.lax.conv_general_dilated(batch["x"], params["conv"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    mean = h.mean(axis=(0, 1, 2))
    var = h.var(axis=(0, 1, 2))
    h = jax.nn.relu((h - mean) / jnp.sqrt(var + 1e-12))
    logits = h.mean(axis=(1, 2)) @ params["head"]["kernel"] + params["head"]["bias"]
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1))


@settings(max_examples=15, deadline=None)
@given(factors=st.lists(st.floats(0.2, 5.0), min_size=6, max_size=6),
       alpha=st.floats(-1.0, 1.0), beta=st.floats(-1.0, 1.0))
def test_filter_normalized_plane_is_invariant_to_filter_rescaling(factors, alpha, beta):
    k = jax.random.split(jax.random.key(42), 4)
    params = {"conv": jax.random.normal(k[0], (3, 3, 2, 6)),
              "head": {"kernel": jax.random.normal(k[1], (6, 3)), "bias": jnp.zeros(3)}}
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(16, 6, 6, 2)).astype(np.float32),
             "y": rng.integers(0, 3, 16).astype(np.int32)}
    raw1, raw2 = (js.random_direction(kk, params) for kk in k[2:])
    c = jnp.asarray(factors, jnp.float32)
    rescaled = dict(params, conv=params["conv"] * c)

    def loss_at(p):
        d1, d2 = js.normalize(raw1, p), js.normalize(raw2, p)
        return float(bn_net_loss(js.tree.add(p, js.tree.add(js.tree.scale(d1, alpha),
                                                            js.tree.scale(d2, beta))), batch))

    assert loss_at(rescaled) == pytest.approx(loss_at(params), rel=2e-4, abs=2e-5)


def test_ignore_is_reported_as_the_default_when_no_leaf_is_one_dimensional():
    params = {"conv": jnp.ones((3, 3, 2, 4)), "dense": jnp.ones((5, 3))}
    d = js.normalize(js.random_direction(jax.random.key(0), params), params)
    described = js.describe_direction(d, params)
    assert (described["normalization"], described["ignore"]) == ("filter", "biasbn")
    assert described["filter_axes"] == {"['conv']": [3], "['dense']": [1]}
