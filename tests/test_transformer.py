"""The transformer language model (jaxsurf.models.transformer), its sharding rules and
filter axes, the next-token loss with a padding mask (js.losses) and the adapters'
mask handling."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import jaxsurf as js
from jaxsurf import models, train
from jaxsurf.models import transformer as tlm

TINY = dict(d_model=16, num_heads=2, num_layers=2, max_len=12)


def _model(**kw):
    return models.TransformerLM(**{**TINY, **kw})


@functools.lru_cache(maxsize=None)
def _variables(positions="learned", seed=0) -> Any:
    return _model(positions=positions).init(jax.random.key(seed), jnp.zeros((1, 12), jnp.int32))


def _tokens(shape, seed=0, vocab=256):
    return np.random.default_rng(seed).integers(0, vocab, shape).astype(np.int32)


# ----------------------------------------------------------------- the model

@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_shapes_and_param_tree(positions):
    variables = _variables(positions)
    logits: Any = _model(positions=positions).apply(variables, _tokens((3, 10)))
    assert logits.shape == (3, 10, 256) and logits.dtype == jnp.float32
    params = variables["params"]
    attn = params["block_0"]["attn"]
    assert {k: attn[k]["kernel"].shape for k in attn} == {
        "query": (16, 16), "key": (16, 16), "value": (16, 16), "out": (16, 16)}
    assert params["block_1"]["mlp_in"]["kernel"].shape == (16, 64)
    assert params["head"]["kernel"].shape == (16, 256)
    assert ("pos_embed" in params) == (positions == "learned")


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_causal(positions):
    """Changing token t changes no logit before t, and does change logits at t."""
    model, variables = _model(positions=positions), _variables(positions)
    tokens = _tokens((2, 12), seed=1)
    changed = tokens.copy()
    changed[:, 7:] = (changed[:, 7:] + 1) % 256
    a = np.asarray(model.apply(variables, tokens))
    b = np.asarray(model.apply(variables, changed))
    np.testing.assert_array_equal(a[:, :7], b[:, :7])
    assert np.abs(a[:, 7:] - b[:, 7:]).max() > 1e-4


def test_rotary_depends_on_relative_position():
    q = jax.random.normal(jax.random.key(0), (1, 6, 1, 4))
    k = jax.random.normal(jax.random.key(1), (1, 6, 1, 4))
    same = jnp.broadcast_to(q[:, :1], q.shape), jnp.broadcast_to(k[:, :1], k.shape)
    rq, rk = tlm.rotary_embedding(same[0], jnp.arange(6)), tlm.rotary_embedding(same[1],
                                                                                 jnp.arange(6))
    dots = jnp.einsum("bqhd,bkhd->qk", rq, rk)
    np.testing.assert_allclose(dots[1, 0], dots[5, 4], rtol=1e-5)   # offset 1 both
    np.testing.assert_allclose(dots[3, 3], dots[0, 0], rtol=1e-5)
    with pytest.raises(ValueError, match="even head dimension"):
        tlm.rotary_embedding(jnp.ones((1, 2, 1, 3)), jnp.arange(2))


def test_bad_inputs():
    variables = _variables()
    with pytest.raises(ValueError, match="longer than max_len"):
        _model().apply(variables, _tokens((1, 13)))
    with pytest.raises(ValueError, match="integer token ids"):
        _model().apply(variables, np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="num_heads=3"):
        models.TransformerLM(d_model=16, num_heads=3, num_layers=1, max_len=4).init(
            jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    with pytest.raises(ValueError, match="positions="):
        models.TransformerLM(positions="sinusoidal", **TINY).init(  # type: ignore[arg-type]
            jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    assert isinstance(models.build("transformer_lm", **TINY), models.TransformerLM)


# ----------------------------------------------------------------- sharding rules

def _check_specs(params, specs, axis_size):
    flat_p, tree_p = jax.tree_util.tree_flatten(params)
    flat_s, tree_s = jax.tree_util.tree_flatten(specs)
    assert tree_p == tree_s and len(flat_p) == len(flat_s)   # one spec per leaf
    for leaf, spec in zip(flat_p, flat_s):
        assert isinstance(spec, PartitionSpec) and len(spec) <= leaf.ndim
        for dim, name in zip(leaf.shape, spec):
            if name is not None:
                assert dim % axis_size == 0
    return flat_s


@pytest.mark.parametrize("positions", ["learned", "rotary"])
@pytest.mark.parametrize("embedding", ["vocab", "features"])
def test_megatron_specs(positions, embedding):
    params = _variables(positions)["params"]
    specs = tlm.partition_specs(params, "megatron", axis_size=4, embedding=embedding)
    _check_specs(params, specs, 4)
    blk = specs["block_0"]
    col, row, rep = PartitionSpec(None, "model"), PartitionSpec("model", None), PartitionSpec()
    for name in ("query", "key", "value"):
        assert blk["attn"][name]["kernel"] == col and blk["attn"][name]["bias"] == \
            PartitionSpec("model")
    assert blk["attn"]["out"]["kernel"] == row and blk["attn"]["out"]["bias"] == rep
    assert blk["mlp_in"]["kernel"] == col and blk["mlp_out"]["kernel"] == row
    assert blk["ln_attn"]["scale"] == rep and specs["ln_final"]["bias"] == rep
    assert specs["head"]["kernel"] == col
    assert specs["embed"]["embedding"] == (row if embedding == "vocab" else col)


def test_fsdp_specs_and_placement():
    params = _variables()["params"]
    specs = tlm.partition_specs(params, "fsdp", axis_size=4, min_size=256)
    flat = _check_specs(params, specs, 4)
    leaves = jax.tree_util.tree_leaves(params)
    for leaf, spec in zip(leaves, flat):
        if leaf.size >= 256 and any(d % 4 == 0 for d in leaf.shape):
            split = [a for a, n in enumerate(spec) if n == "model"]
            assert len(split) == 1 and leaf.shape[split[0]] == max(
                d for d in leaf.shape if d % 4 == 0)
        else:
            assert spec == PartitionSpec()
    assert specs["embed"]["embedding"] == PartitionSpec("model", None)   # 256 > 16
    # the specs place the params on a real mesh, and the model runs on them unchanged
    mesh = jax.make_mesh((4,), ("model",), axis_types=(jax.sharding.AxisType.Auto,))
    sharded = jax.device_put(params, jax.tree.map(lambda s: NamedSharding(mesh, s), specs))
    tokens = _tokens((2, 12))
    np.testing.assert_allclose(
        np.asarray(jax.jit(_model().apply)({"params": sharded}, tokens)),
        np.asarray(_model().apply({"params": params}, tokens)), rtol=2e-5, atol=2e-5)


def test_spec_errors():
    params = _variables()["params"]
    with pytest.raises(ValueError, match=r"leaf \['block_0'\]\['attn'\]\['key'\]\['bias'\] of "
                                         r"shape \(16,\).*3 shards do not divide"):
        tlm.partition_specs(params, "megatron", axis_size=3)
    with pytest.raises(ValueError, match="needs axis_size"):
        tlm.partition_specs(params, "fsdp")
    with pytest.raises(ValueError, match="does not know the leaf"):
        tlm.partition_specs({**params, "extra": {"w": jnp.ones((4, 4))}}, "megatron")
    with pytest.raises(ValueError, match="style="):
        tlm.partition_specs(params, "zero3")  # type: ignore[arg-type]


# ----------------------------------------------------------------- filter normalization

def test_filter_axes_normalize():
    params = _variables()["params"]
    axes = tlm.filter_axes(params)
    d = js.normalize(js.random_direction(jax.random.key(3), params), params, "filter",
                     "biasbn", filter_axis=axes)
    norms = lambda x, axis: np.linalg.norm(np.asarray(x), axis=axis)  # noqa: E731
    for table in ("embed", "pos_embed"):   # a token (position) row is a filter
        np.testing.assert_allclose(norms(d[table]["embedding"], 1),
                                   norms(params[table]["embedding"], 1), rtol=1e-5)
    for name in ("query", "key", "value", "out"):   # an output unit is a filter
        np.testing.assert_allclose(norms(d["block_1"]["attn"][name]["kernel"], 0),
                                   norms(params["block_1"]["attn"][name]["kernel"], 0),
                                   rtol=1e-5)
    np.testing.assert_allclose(norms(d["head"]["kernel"], 0), norms(params["head"]["kernel"], 0),
                               rtol=1e-5)
    assert not np.any(np.asarray(d["block_0"]["ln_attn"]["scale"]))   # biasbn: zero
    assert not np.any(np.asarray(d["head"]["bias"]))
    # invariance: rescaling a filter of the params rescales that filter of the direction
    scaled = jax.tree.map(lambda x: x, params)
    scaled["embed"]["embedding"] = jnp.asarray(params["embed"]["embedding"]).at[5].multiply(7.0)
    d2 = js.normalize(js.random_direction(jax.random.key(3), params), scaled, "filter",
                      "biasbn", filter_axis=axes)
    np.testing.assert_allclose(np.asarray(d2["embed"]["embedding"][5]),
                               7.0 * np.asarray(d["embed"]["embedding"][5]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(d2["embed"]["embedding"][4]),
                               np.asarray(d["embed"]["embedding"][4]), rtol=1e-6)


# ----------------------------------------------------------------- next-token loss

def test_loss_hand_computation():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5)).astype(np.float32)
    targets = rng.integers(0, 5, (2, 4)).astype(np.int32)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], np.float32)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    out = js.losses.next_token_cross_entropy(logits, targets, mask)
    np.testing.assert_allclose(float(out["loss"]), (nll * mask).sum() / 4, rtol=1e-6)
    hits = (logits.argmax(-1) == targets) * mask
    np.testing.assert_allclose(float(out["accuracy"]), hits.sum() / 4, rtol=1e-6)
    fixed = js.losses.next_token_cross_entropy(logits, targets, mask, tokens_per_example=3.0)
    np.testing.assert_allclose(float(fixed["loss"]), (nll * mask).sum() / (2 * 3.0), rtol=1e-6)
    whole = js.losses.next_token_cross_entropy(logits, targets)
    np.testing.assert_allclose(float(whole["loss"]), nll.mean(), rtol=1e-6)
    assert js.losses.get_loss("next_token") is js.losses.next_token_cross_entropy
    assert js.losses.tokens_per_example(mask) == 2.0
    assert js.losses.perplexity(float(np.log(3.0))) == pytest.approx(3.0)


def test_loss_bad_input():
    f = js.losses.next_token_cross_entropy
    with pytest.raises(ValueError, match="same batch and length"):
        f(jnp.zeros((2, 4, 5)), jnp.zeros((2, 5), jnp.int32))
    with pytest.raises(ValueError, match="padding mask has shape"):
        f(jnp.zeros((2, 4, 5)), jnp.zeros((2, 4), jnp.int32), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="integer token ids"):
        f(jnp.zeros((2, 4, 5)), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="tokens_per_example"):
        f(jnp.zeros((2, 4, 5)), jnp.zeros((2, 4), jnp.int32), tokens_per_example=0)
    with pytest.raises(ValueError, match="no real token"):
        js.losses.tokens_per_example(np.zeros((2, 3)))
    assert np.isnan(float(f(jnp.zeros((1, 2, 5)), jnp.array([[1, 7]]))["loss"]))   # id >= vocab


def test_adapted_loss_ignores_padding():
    """Changing the tokens (inputs and targets) under the mask changes nothing."""
    model, variables = _model(), _variables()
    fn, params = js.flax.adapt(model, variables, loss="next_token")
    x = _tokens((3, 12), seed=2)
    y = np.roll(x, -1, axis=1)
    mask = np.ones((3, 12), np.float32)
    mask[0, 8:] = 0
    mask[2, 3:] = 0
    x2, y2 = x.copy(), y.copy()
    # padded *targets* at masked positions; padded *inputs* after the last real target
    y2[mask == 0] = (y2[mask == 0] + 17) % 256
    x2[0, 9:], x2[2, 4:] = (x2[0, 9:] + 3) % 256, (x2[2, 4:] + 5) % 256
    a = fn(params, {"x": x, "y": y, "mask": mask})
    b = fn(params, {"x": x2, "y": y2, "mask": mask})
    assert float(a["loss"]) == float(b["loss"]) and float(a["accuracy"]) == float(b["accuracy"])
    c = fn(params, {"x": x2, "y": y2, "mask": np.ones_like(mask)})
    assert float(c["loss"]) != float(a["loss"])
    # the tuple form (inputs, targets, mask) is the same batch
    assert float(fn(params, (x, y, mask))["loss"]) == float(a["loss"])


def test_adapter_refuses_mask_with_maskless_loss():
    fn, params = js.flax.adapt(_model(), _variables(),
                               loss=lambda o, t: jnp.mean(o[..., 0] - t))
    with pytest.raises(ValueError, match="padding mask but the loss"):
        fn(params, {"x": _tokens((1, 4)), "y": _tokens((1, 4)), "mask": np.ones((1, 4))})
    fn, params = js.flax.adapt(_model(), _variables(), loss="next_token", mask_key="pad")
    with pytest.raises(KeyError, match="'pad'"):
        fn(params, {"x": _tokens((1, 4)), "y": _tokens((1, 4))})


def test_exact_token_mean_over_batches():
    """With tokens_per_example the engine's example-weighted batch means give the
    per-token mean of the whole data set, however it is batched."""
    model, variables = _model(), _variables()
    rng = np.random.default_rng(4)
    x = _tokens((7, 12), seed=4)
    y = np.roll(x, -1, axis=1)
    lengths = rng.integers(1, 13, 7)
    mask = (np.arange(12)[None] < lengths[:, None]).astype(np.float32)
    data = {"x": x, "y": y, "mask": mask}
    logits = np.asarray(model.apply(variables, x), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    expected = (nll * mask).sum() / mask.sum()
    loss = functools.partial(js.losses.next_token_cross_entropy,
                             tokens_per_example=js.losses.tokens_per_example(mask))
    fn, params = js.flax.adapt(model, variables, loss=loss)
    for batch_size in (7, 3, 2):
        got = js.dataset_mean(fn, data, batch_size=batch_size)(params)
        np.testing.assert_allclose(got["loss"], expected, rtol=2e-6)
    # the per-batch token mean is exact only in one batch
    plain, _ = js.flax.adapt(model, variables, loss="next_token")
    np.testing.assert_allclose(js.dataset_mean(plain, data, batch_size=7)(params)["loss"],
                               expected, rtol=2e-6)
    ppl = js.losses.perplexity(js.dataset_mean(fn, data, batch_size=3)(params))
    np.testing.assert_allclose(ppl["perplexity"], np.exp(expected), rtol=1e-5)


def test_perplexity_of_surface():
    surface = js.Surface(alphas=np.array([0.0, 1.0]),
                         betas=None, metrics={"loss": np.array([0.0, np.log(2.0)])})
    with_ppl = js.losses.perplexity(surface)
    np.testing.assert_allclose(with_ppl.metrics["perplexity"], [1.0, 2.0])
    assert "perplexity" not in surface.metrics


def test_fit_with_mask():
    x = _tokens((16, 12), seed=5)
    mask = np.ones((16, 12), np.float32)
    mask[::2, 6:] = 0
    data = {"train": {"x": x, "y": np.roll(x, -1, 1), "mask": mask}}
    config = train.TrainConfig(epochs=1, batch_size=8, optimizer="adam", learning_rate=1e-3,
                               loss="next_token", eval_batch_size=5)
    result = train.fit(_model(), data, config, log=None, progress=False)
    fn, params = js.flax.adapt(_model(), result.variables, loss=functools.partial(
        js.losses.next_token_cross_entropy, tokens_per_example=js.losses.tokens_per_example(mask)))
    exact = js.dataset_mean(fn, data["train"], batch_size=16)(params)["loss"]
    np.testing.assert_allclose(result.history[-1]["train_loss"], exact, rtol=1e-5)
    with pytest.raises(ValueError, match="padding 'mask'"):
        train.fit(_model(), data, train.TrainConfig(epochs=1, batch_size=8), log=None,
                  progress=False)


def _masked_lm_batch():
    x = _tokens((2, 6), seed=7, vocab=11)
    y = np.roll(x, -1, axis=1)
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], np.uint8)
    changed = y.copy()
    changed[mask == 0] = (changed[mask == 0] + 3) % 11
    return {"x": x, "y": y, "mask": mask}, {"x": x, "y": changed, "mask": mask}


def test_nnx_and_equinox_adapters_pass_the_mask():
    """A tiny language model written in NNX and in Equinox: the adapters give the
    batch's mask to the loss, so padded targets change nothing."""
    from flax import nnx

    class TinyNNX(nnx.Module):
        def __init__(self, rngs):
            self.embed = nnx.Embed(11, 8, rngs=rngs)
            self.head = nnx.Linear(8, 11, rngs=rngs)

        def __call__(self, tokens):
            return self.head(jnp.cumsum(self.embed(tokens), axis=1))   # causal

    batch, changed = _masked_lm_batch()
    fn, params = js.flax.adapt(TinyNNX(nnx.Rngs(0)), loss="next_token")
    a, b = fn(params, batch), fn(params, changed)
    assert float(a["loss"]) == float(b["loss"]) and np.isfinite(float(a["loss"]))

    eqx = pytest.importorskip("equinox")

    class TinyEqx(eqx.Module):
        embed: Any
        head: Any

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.embed = eqx.nn.Embedding(11, 8, key=k1)
            self.head = eqx.nn.Linear(8, 11, key=k2)

        def __call__(self, tokens):   # one sequence
            return jax.vmap(self.head)(jnp.cumsum(jax.vmap(self.embed)(tokens), axis=0))

    fn, params = js.equinox.adapt(TinyEqx(jax.random.key(0)), loss="next_token")
    a, b = fn(params, batch), fn(params, changed)
    assert float(a["loss"]) == float(b["loss"]) and np.isfinite(float(a["loss"]))


def test_ggn_refuses_a_padding_mask_it_cannot_see():
    """The adapters' output/loss split has no mask: GGN products over padded batches
    are refused instead of counting the padded positions."""
    fn, params = js.flax.adapt(_model(), _variables(), loss="next_token")
    x = _tokens((4, 12), seed=6)
    mask = np.ones((4, 12), np.float32)
    mask[:, 8:] = 0
    data = {"x": x, "y": np.roll(x, -1, 1), "mask": mask}
    with pytest.raises(ValueError, match="operator='ggn' does not take a padding mask"):
        js.hessian.hvp(fn, params, data, params, operator="ggn")
    unpadded = {"x": x, "y": np.roll(x, -1, 1)}
    product = js.hessian.hvp(fn, params, unpadded, params, operator="ggn")
    assert all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree.leaves(product))
