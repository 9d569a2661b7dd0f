"""Permutation specs for what users bring (issue 27, item 2): ``mlp_spec`` on
Equinox, NNX and Flax nets whose layers are not named in alphabetical order,
``conv_spec`` on plain conv nets, ``attention_spec`` permuting heads as units.
Every test applies random permutations (and weight matching) and checks that
the network computes the same function."""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxsurf as js
from jaxsurf import connect, directions


def random_perms(spec, seed=0):
    rng = np.random.default_rng(seed)
    perms = {}
    for name, group in spec.groups.items():
        perm = np.arange(group.size)
        while np.array_equal(perm, np.arange(group.size)):  # never the identity
            perm = rng.permutation(group.size)
        perms[name] = perm
    return perms


def assert_same_function(apply, params, spec, x, seed=0):
    """Random permutations and weight matching against another net keep the function."""
    y = np.asarray(apply(params, x))
    shuffled = connect.apply_permutation(params, spec, random_perms(spec, seed))
    moved = [not np.array_equal(a, b) for a, b in
             zip(jax.tree_util.tree_leaves(shuffled), jax.tree_util.tree_leaves(params))]
    assert any(moved), "the permutation moved nothing"
    np.testing.assert_allclose(np.asarray(apply(shuffled, x)), y, rtol=1e-5, atol=1e-5)
    return shuffled


# --------------------------------------------------------------------------- mlp_spec
def test_mlp_spec_on_an_equinox_mlp():
    mlp = eqx.nn.MLP(5, 3, 16, 3, key=jax.random.key(0))
    params, static = eqx.partition(mlp, eqx.is_array)
    spec = connect.mlp_spec(params)
    assert [g.size for g in spec.groups.values()] == [16, 16, 16]
    x = jax.random.normal(jax.random.key(1), (7, 5))
    apply = lambda p, x: jax.vmap(eqx.combine(p, static))(x)  # noqa: E731
    shuffled = assert_same_function(apply, params, spec, x)
    aligned = connect.align(params, shuffled, spec)  # finds the permutation back
    for a, b in zip(jax.tree_util.tree_leaves(aligned), jax.tree_util.tree_leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_mlp_spec_on_the_params_of_js_equinox_adapt():
    mlp = eqx.nn.MLP(4, 3, 8, 2, key=jax.random.key(2))
    fn, params = js.equinox.adapt(mlp)
    other = js.equinox.adapt(eqx.nn.MLP(4, 3, 8, 2, key=jax.random.key(3)))[1]
    spec = connect.mlp_spec(params)
    batch = {"x": np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32),
             "y": np.arange(16) % 3}
    aligned = connect.align(params, other, spec)
    np.testing.assert_allclose(fn(aligned, batch)["loss"], fn(other, batch)["loss"], rtol=1e-5)


class Named(nn.Module):
    """Layers named so that alphabetical order is not the forward order."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(12, name="fc_in")(x))
        x = nn.relu(nn.Dense(10, name="encoder")(x))
        x = nn.relu(nn.Dense(7, name="bottleneck")(x))
        return nn.Dense(3, name="out")(x)


def test_mlp_spec_finds_the_forward_order_of_non_alphabetical_names():
    x = jax.random.normal(jax.random.key(0), (6, 4))
    variables = Named().init(jax.random.key(1), x)
    spec = connect.mlp_spec(variables)
    assert {k: g.size for k, g in spec.groups.items()} == \
        {"hidden_0": 12, "hidden_1": 10, "hidden_2": 7}
    assert_same_function(Named().apply, variables, spec, x)


class Square(nn.Module):
    @nn.compact
    def __call__(self, x):
        for name in ("zeta", "alpha", "mid"):
            x = jnp.tanh(nn.Dense(6, name=name)(x))
        return nn.Dense(2, name="head")(x)


def test_ambiguous_order_asks_for_layers_and_layers_gives_it():
    x = jax.random.normal(jax.random.key(0), (5, 6))
    variables = Square().init(jax.random.key(1), x)
    with pytest.raises(ValueError, match=r"order of the forward pass.*layers=\["):
        connect.mlp_spec(variables)
    spec = connect.mlp_spec(variables, layers=["zeta", "alpha", "mid", "head"])
    assert_same_function(Square().apply, variables, spec, x)
    # alphabetical order chains too (all 6 -> 6) but is not the network: it must not be
    wrong = connect.mlp_spec(variables, layers=["alpha", "mid", "zeta", "head"])
    y = np.asarray(Square().apply(variables, x))
    moved = connect.apply_permutation(variables, wrong, random_perms(wrong, 1))
    assert not np.allclose(np.asarray(Square().apply(moved, x)), y, atol=1e-4)


def test_layers_that_do_not_chain_say_so():
    x = jax.random.normal(jax.random.key(0), (2, 4))
    variables = Named().init(jax.random.key(1), x)
    with pytest.raises(ValueError, match=r"do not chain.*order of the forward pass"):
        connect.mlp_spec(variables, layers=["encoder", "fc_in", "bottleneck", "out"])
    with pytest.raises(ValueError, match=r"no dense layer 'nope'.*fc_in"):
        connect.mlp_spec(variables, layers=["fc_in", "nope"])


class Deep(nn.Module):
    @nn.compact
    def __call__(self, x):
        for _ in range(11):  # Dense_0 .. Dense_10: Dense_10 sorts before Dense_2
            x = jnp.tanh(nn.Dense(5)(x))
        return nn.Dense(2)(x)


def test_numbered_layers_go_by_number_not_alphabet():
    x = jax.random.normal(jax.random.key(0), (4, 5))
    variables = Deep().init(jax.random.key(1), x)
    spec = connect.mlp_spec(variables)
    assert len(spec.groups) == 11
    assert_same_function(Deep().apply, variables, spec, x)


def test_mlp_spec_on_an_nnx_sequential():
    rngs = nnx.Rngs(0)
    model = nnx.Sequential(nnx.Linear(4, 9, rngs=rngs), nnx.relu, nnx.Linear(9, 7, rngs=rngs),
                           nnx.relu, nnx.Linear(7, 3, rngs=rngs))
    fn, params = js.flax.adapt(model, loss="mse")
    spec = connect.mlp_spec(params)
    assert [g.size for g in spec.groups.values()] == [9, 7]
    batch = {"x": np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32),
             "y": np.zeros((8, 3), np.float32)}
    apply = lambda p, b: fn(p, b)["loss"]  # noqa: E731
    assert_same_function(apply, params, spec, batch)


# --------------------------------------------------------------------------- conv_spec
class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(6, (3, 3))(x)
        x = nn.relu(nn.BatchNorm(use_running_average=True)(x))
        x = nn.relu(nn.Conv(5, (3, 3), strides=2)(x))
        x = x.reshape(x.shape[0], -1)  # flattened: channels fastest
        x = nn.relu(nn.Dense(8)(x))
        return nn.Dense(3)(x)


def test_conv_spec_flax_with_batchnorm_and_flatten():
    x = jax.random.normal(jax.random.key(0), (3, 6, 6, 2))
    variables = CNN().init(jax.random.key(1), x)
    rng = np.random.default_rng(0)  # non-trivial running statistics
    variables = {**variables, "batch_stats": jax.tree_util.tree_map(
        lambda v: rng.uniform(0.5, 1.5, v.shape).astype(v.dtype), variables["batch_stats"])}
    spec = connect.conv_spec(variables)
    assert {k: g.size for k, g in spec.groups.items()} == \
        {"channels_0": 6, "channels_1": 5, "channels_2": 8}
    assert "['batch_stats']['BatchNorm_0']['mean']" in spec.follow
    assert_same_function(CNN().apply, variables, spec, x)


class EqxCNN(eqx.Module):
    """PyTorch layout: (out, in, kh, kw), biases (out, 1, 1), NCHW flatten."""

    c1: eqx.nn.Conv2d
    c2: eqx.nn.Conv2d
    head: eqx.nn.Linear

    def __init__(self, key):
        k = jax.random.split(key, 3)
        self.c1 = eqx.nn.Conv2d(2, 4, 3, key=k[0])
        self.c2 = eqx.nn.Conv2d(4, 3, 3, key=k[1])
        self.head = eqx.nn.Linear(3 * 2 * 2, 5, key=k[2])

    def __call__(self, x):
        x = jax.nn.relu(self.c2(jax.nn.relu(self.c1(x))))
        return self.head(x.reshape(-1))


def test_conv_spec_equinox_flatten_channels_first():
    model = EqxCNN(jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    spec = connect.conv_spec(params)
    assert [g.size for g in spec.groups.values()] == [4, 3]
    x = jax.random.normal(jax.random.key(1), (3, 2, 6, 6))
    apply = lambda p, x: jax.vmap(eqx.combine(p, static))(x)  # noqa: E731
    assert_same_function(apply, params, spec, x)


def test_conv_spec_refuses_a_dense_net():
    with pytest.raises(ValueError, match="no convolution.*mlp_spec"):
        connect.conv_spec(eqx.filter(eqx.nn.MLP(2, 2, 4, 1, key=jax.random.key(0)),
                                     eqx.is_array))


# --------------------------------------------------------------------------- attention
class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x + nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=16)(x)
        return nn.Dense(3)(x.mean(axis=1))


def test_attention_spec_flax_heads_move_as_units():
    x = jax.random.normal(jax.random.key(0), (2, 5, 8))
    variables = Block().init(jax.random.key(1), x)
    spec = connect.attention_spec(variables)
    assert {k: g.size for k, g in spec.groups.items()} == \
        {"heads:MultiHeadDotProductAttention_0": 4}
    assert_same_function(Block().apply, variables, spec, x)


def test_attention_spec_equinox_fused_heads():
    att = eqx.nn.MultiheadAttention(4, 12, key=jax.random.key(0))
    params, static = eqx.partition(att, eqx.is_array)
    spec = connect.attention_spec(params)
    assert [g.size for g in spec.groups.values()] == [4]
    x = jax.random.normal(jax.random.key(1), (2, 5, 12))
    apply = lambda p, x: jax.vmap(lambda s: eqx.combine(p, static)(s, s, s))(x)  # noqa: E731
    shuffled = assert_same_function(apply, params, spec, x)
    back = connect.align(params, shuffled, spec)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_attention_spec_nnx():
    att = nnx.MultiHeadAttention(num_heads=2, in_features=8, qkv_features=8, decode=False,
                                 rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(att)
    params = nnx.to_pure_dict(state)
    spec = connect.attention_spec(params)

    def apply(p, x):
        s = jax.tree_util.tree_map(lambda v: v, state)
        nnx.replace_by_pure_dict(s, p)
        return nnx.merge(graphdef, s)(x)

    assert_same_function(apply, params, spec, jax.random.normal(jax.random.key(1), (2, 3, 8)))


def transformer_spec(params, heads, layers):
    """Every attention layer's heads and every block's MLP hidden units; the
    residual stream (embeddings, LayerNorms, head) is not permuted."""
    mlps = {f"mlp:block_{i}": connect.mlp_spec(params, layers=[f"block_{i}/mlp_in",
                                                                f"block_{i}/mlp_out"])
            for i in range(layers)}
    return connect.combine_specs(connect.attention_spec(params, num_heads=heads), **mlps)


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_transformer_heads_and_mlp_units_keep_the_function(positions):
    """jaxsurf's TransformerLM (2-D Dense query/key/value/out kernels): heads and
    MLP units permuted together give the same logits; weight matching finds the
    permutation back."""
    from jaxsurf.models import TransformerLM
    lm = TransformerLM(d_model=16, num_heads=4, num_layers=2, max_len=8, positions=positions)
    tokens = jax.random.randint(jax.random.key(1), (3, 8), 0, 256)
    params = lm.init(jax.random.key(0), tokens)["params"]
    params = jax.tree.map(lambda x: x + 0.1 * jax.random.normal(jax.random.key(2), x.shape),
                          params)   # distinct biases, so a wrong permutation shows
    spec = transformer_spec(params, 4, 2)
    assert {k: g.size for k, g in spec.groups.items()} == {
        "heads:block_0/attn": 4, "heads:block_1/attn": 4, "mlp:block_0/hidden_0": 64,
        "mlp:block_1/hidden_0": 64}
    assert spec.axes["['block_0']['attn']['out']['kernel']"][1] is None
    assert not any("embed" in path or "ln_" in path or "['head']" in path for path in spec.axes)
    assert set(spec.producers) == {"mlp:block_0/hidden_0", "mlp:block_1/hidden_0"}
    apply = lambda p, x: lm.apply({"params": p}, x)  # noqa: E731
    shuffled = assert_same_function(apply, params, spec, tokens)
    back = connect.align(params, shuffled, spec)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_combine_specs_bad_input():
    from jaxsurf.models import TransformerLM
    lm = TransformerLM(d_model=8, num_heads=2, num_layers=2, max_len=4)
    params = lm.init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    with pytest.raises(ValueError, match="pass num_heads="):
        connect.attention_spec(params)
    m0 = connect.mlp_spec(params, layers=["block_0/mlp_in", "block_0/mlp_out"])
    m1 = connect.mlp_spec(params, layers=["block_1/mlp_in", "block_1/mlp_out"])
    with pytest.raises(ValueError, match="group 'hidden_0' of spec 1 is also in spec 0"):
        connect.combine_specs(m0, m1)
    with pytest.raises(ValueError, match="axis 1 of .*mlp_in.*permuted by"):
        connect.combine_specs(a=m0, b=m0)
    other = connect.mlp_spec({"l0": {"kernel": np.ones((3, 4))},
                              "l1": {"kernel": np.ones((4, 2))}})
    with pytest.raises(ValueError, match="other params"):
        connect.combine_specs(m0, x=other)
    with pytest.raises(ValueError, match="at least one"):
        connect.combine_specs()
    with pytest.raises(TypeError, match="takes PermutationSpecs"):
        connect.combine_specs(m0, {"hidden_0": 3})


# --------------------------------------------------------------------------- per-head norms
def test_head_filter_axis_gives_each_head_the_norm_of_its_weights():
    x = jax.random.normal(jax.random.key(0), (2, 5, 8))
    params = Block().init(jax.random.key(1), x)["params"]
    axes = directions.head_filter_axis(params)
    att = "MultiHeadDotProductAttention_0"
    assert axes[att]["value"]["kernel"] == (1,) and axes[att]["out"]["kernel"] == (0,)
    assert axes["Dense_0"]["kernel"] == (1,)  # other leaves keep the inferred filters
    d = js.normalize(js.random_direction(jax.random.key(2), params), params, "filter",
                     filter_axis=axes)
    for role, reduce in (("key", (0, 2)), ("out", (1, 2))):
        norms = lambda p: np.linalg.norm(np.asarray(p[att][role]["kernel"]), axis=reduce)  # noqa: E731
        np.testing.assert_allclose(norms(d), norms(params), rtol=1e-5)
    default = js.normalize(js.random_direction(jax.random.key(2), params), params, "filter")
    assert not np.allclose(np.linalg.norm(np.asarray(default[att]["key"]["kernel"]),
                                          axis=(0, 2)),
                           np.linalg.norm(np.asarray(params[att]["key"]["kernel"]),
                                          axis=(0, 2)), rtol=1e-3)


def test_head_filter_axis_refuses_fused_heads():
    att = eqx.filter(eqx.nn.MultiheadAttention(2, 4, key=jax.random.key(0)), eqx.is_array)
    with pytest.raises(ValueError, match="fuses the heads"):
        directions.head_filter_axis(att)
