"""The seed's networks: shapes, parameter counts, no-shortcut nets, TAAF, dropout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsurf import models
from jaxsurf.models import (TAAF, BasicBlock, Bottleneck, DenseRegressor, ResNetCIFAR,
                            SmallCNN, num_params)


def count(model, shape):
    """Parameter count without allocating the weights."""
    return num_params(jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape)))


def np_init(model, x, seed=0):
    """Variables for ``model`` filled on the host with numpy (He-scaled normal
    kernels, zero biases/means, unit scales/variances): no RNG compilation,
    which keeps these tests fast on CPU."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = jax.tree_util.keystr(path)
        if "'var'" in name or "'scale'" in name:
            return np.ones(s.shape, s.dtype)
        if "'mean'" in name or "'bias'" in name:
            return np.zeros(s.shape, s.dtype)
        fan_in = int(np.prod(s.shape[:-1]))
        return (rng.standard_normal(s.shape) * np.sqrt(2.0 / fan_in)).astype(s.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def structure(model, shape):
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape))
    return jax.tree_util.tree_map(lambda s: s.shape, shapes)


# He et al. 2016, Table 6: 0.27M, 0.85M, 1.7M parameters.
@pytest.mark.parametrize("depth, published", [(20, 0.27e6), (56, 0.85e6), (110, 1.7e6)])
def test_resnet_cifar_param_counts(depth, published):
    n = count(ResNetCIFAR(depth=depth), (1, 32, 32, 3))
    assert abs(n - published) / published < 0.05, n


def test_resnet20_exact_count_and_convenience_builders():
    assert count(models.resnet20(), (1, 32, 32, 3)) == 269_722
    assert models.resnet56(skip=False).depth == 56 and not models.resnet56(skip=False).skip
    assert models.resnet110(num_classes=100).num_classes == 100


def test_noskip_changes_nothing_but_the_shortcuts():
    skip = structure(models.resnet20(), (1, 32, 32, 3))
    noskip = structure(models.resnet20(skip=False), (1, 32, 32, 3))
    assert skip == noskip  # option A shortcuts have no parameters
    # option B adds 1x1 projections (+BN) at the two downsampling blocks only
    b = count(ResNetCIFAR(depth=20, shortcut="B"), (1, 32, 32, 3))
    assert b - 269_722 == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert count(ResNetCIFAR(depth=20, shortcut="B", skip=False), (1, 32, 32, 3)) == 269_722


def test_resnet_cifar_rejects_bad_depth():
    with pytest.raises(ValueError, match="6n"):
        count(ResNetCIFAR(depth=21), (1, 32, 32, 3))


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (2, 28, 28, 1)])
def test_resnet_cifar_forward_and_batch_stats(shape):
    model = ResNetCIFAR(depth=8, width=4)
    x = jax.random.normal(jax.random.key(1), shape)
    variables = np_init(model, x)
    assert set(variables) == {"params", "batch_stats"}
    kernel = variables["params"]["conv_init"]["kernel"]
    assert kernel.shape == (3, 3, shape[-1], 4)  # Flax layout, output channel last
    logits = model.apply(variables, x, train=False)
    assert logits.shape == (2, 10) and logits.dtype == jnp.float32
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    before = variables["batch_stats"]["bn_init"]["mean"]
    assert not np.allclose(updates["batch_stats"]["bn_init"]["mean"], before)


def _zero_convs(variables):
    """Every conv kernel of a block set to zero."""
    params = jax.tree_util.tree_map_with_path(
        lambda path, leaf: jnp.zeros_like(leaf) if "conv" in jax.tree_util.keystr(path) else leaf,
        variables["params"])
    return {**variables, "params": params}


def test_basic_block_residual_path_only_with_skip():
    """With its convolutions zeroed a block computes relu(bn(0) + shortcut(x))
    = relu(x) with a shortcut, and the constant relu(bn(0)) = 0 without one."""
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    for skip in (True, False):
        block = BasicBlock(16, skip=skip)
        out = block.apply(_zero_convs(np_init(block, x)), x)
        expected = nn_relu(x) if skip else jnp.zeros_like(x)
        np.testing.assert_allclose(out, expected, atol=1e-6)
    # downsampling block, option A: subsample + zero-padded channels
    block = BasicBlock(32, strides=2, skip=True)
    out = block.apply(_zero_convs(np_init(block, x)), x)
    np.testing.assert_allclose(out[..., 8:24], nn_relu(x[:, ::2, ::2, :]), atol=1e-6)
    np.testing.assert_allclose(out[..., :8], 0.0)


def nn_relu(x):
    return jnp.maximum(x, 0.0)


def test_bottleneck_residual_path_only_with_skip():
    x = jax.random.normal(jax.random.key(0), (1, 4, 4, 16))
    for skip in (True, False):
        block = Bottleneck(4, skip=skip)
        out = block.apply(_zero_convs(np_init(block, x)), x)
        np.testing.assert_allclose(out, nn_relu(x) if skip else jnp.zeros_like(x), atol=1e-6)


def test_noskip_network_has_no_path_around_the_blocks():
    """Zero the last conv of every block: a noshort net's output no longer
    depends on its input (the blocks are the only path), a ResNet's does."""
    xs = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
    for skip in (True, False):
        model = ResNetCIFAR(depth=14, width=4, skip=skip)
        variables = np_init(model, xs)
        params = jax.tree_util.tree_map_with_path(
            lambda path, leaf: np.zeros_like(leaf)
            if "conv2" in jax.tree_util.keystr(path) else leaf, variables["params"])
        out = np.asarray(model.apply({**variables, "params": params}, xs))
        spread = np.abs(out - out[:1]).max()  # do different inputs give different logits?
        if skip:
            assert spread > 1e-3
        else:
            assert spread == 0.0


def test_densenet_bc100_count_and_small_forward():
    # Huang et al. 2017, Table 2: DenseNet-BC (L=100, k=12), 0.8M parameters.
    n = count(models.densenet_bc100(), (1, 32, 32, 3))
    assert abs(n - 0.8e6) / 0.8e6 < 0.05, n
    small = models.densenet_bc_small()
    assert small.depth <= 40 and count(small, (1, 32, 32, 3)) < 0.25e6
    tiny = models.DenseNetBC(depth=10, growth_rate=4)
    x = jnp.ones((2, 16, 16, 3))
    out = jax.eval_shape(lambda v, x: tiny.apply(v, x), np_init(tiny, x), x)
    assert out.shape == (2, 10) and out.dtype == jnp.float32
    shapes = structure(tiny, (1, 16, 16, 3))["params"]
    # transition 1 compresses 2k + n*k = 8 + 4 channels to 6 (theta = 0.5)
    assert shapes["transition1_conv"]["kernel"] == (1, 1, 12, 6)


def test_resnet50_count_skip_switch_and_small_inputs():
    # He et al. 2016 / torchvision: ResNet-50 has 25.6M parameters (25,557,032).
    assert count(models.ResNet50(), (1, 224, 224, 3)) == 25_557_032
    noskip = count(models.ResNet50(skip=False), (1, 224, 224, 3))
    assert noskip < 25_557_032  # the projection shortcuts are gone
    for shape, small_stem in [((2, 28, 28, 1), False), ((2, 32, 32, 3), True)]:
        model = models.ResNet50(num_classes=10, small_stem=small_stem)
        x = jnp.zeros(shape)
        variables = jax.eval_shape(model.init, jax.random.key(0), x)
        out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
        assert out.shape == (2, 10)


def test_small_cnn():
    model = SmallCNN()
    x = jnp.zeros((3, 28, 28, 1))
    variables = np_init(model, x)
    assert 50_000 <= num_params(variables) <= 100_000
    assert model.apply(variables, x).shape == (3, 10)


def test_taaf_starts_as_the_plain_activation():
    x = jax.random.normal(jax.random.key(0), (4, 12))
    plain = DenseRegressor(hidden=2, width=16, outputs=5, dropout=0.1)
    taaf = DenseRegressor(hidden=2, width=16, outputs=5, dropout=0.1, taaf=True)
    v_taaf = taaf.init(jax.random.key(1), x)
    for i in range(2):
        p = v_taaf["params"][f"taaf_{i}"]
        assert {k: v.shape for k, v in p.items()} == {k: (16,) for k in "alpha beta gamma delta"
                                                     .split()}
        np.testing.assert_array_equal(p["alpha"], 1.0)
        np.testing.assert_array_equal(p["beta"], 1.0)
        np.testing.assert_array_equal(p["gamma"], 0.0)
        np.testing.assert_array_equal(p["delta"], 0.0)
    dense_only = {k: v for k, v in v_taaf["params"].items() if not k.startswith("taaf")}
    np.testing.assert_allclose(plain.apply({"params": dense_only}, x),
                               taaf.apply(v_taaf, x), rtol=1e-6, atol=1e-6)
    # the adaptive parameters act: g(y) = alpha f(beta y + gamma) + delta
    y = jnp.linspace(-2, 2, 5)[:, None] * jnp.ones((1, 3))
    params = {"alpha": jnp.full(3, 2.0), "beta": jnp.full(3, 0.5),
              "gamma": jnp.full(3, 0.1), "delta": jnp.full(3, -1.0)}
    np.testing.assert_allclose(TAAF("tanh").apply({"params": params}, y),
                               2.0 * jnp.tanh(0.5 * y + 0.1) - 1.0, rtol=1e-6)


def test_dropout_only_in_training():
    x = jax.random.normal(jax.random.key(0), (4, 12))
    model = DenseRegressor(hidden=2, width=16, outputs=5, dropout=0.5)
    v = model.init(jax.random.key(1), x)
    no_dropout = DenseRegressor(hidden=2, width=16, outputs=5, dropout=0.0)
    eval_out = model.apply(v, x, train=False)
    np.testing.assert_array_equal(eval_out, model.apply(v, x))
    np.testing.assert_allclose(eval_out, no_dropout.apply(v, x), rtol=1e-6)
    a = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(2)})
    b = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(3)})
    assert not np.allclose(a, eval_out) and not np.allclose(a, b)
    with pytest.raises(Exception, match="dropout"):
        model.apply(v, x, train=True)


def test_build_factory_and_num_params():
    assert isinstance(models.build("ResNet-56"), ResNetCIFAR)
    noshort = models.build("resnet56_noshort", num_classes=5)
    assert not noshort.skip and noshort.num_classes == 5 and noshort.depth == 56
    assert models.build("taaf_regressor", width=8).taaf
    assert not models.build("resnet50_noshort").skip
    assert "small_cnn" in models.available()
    with pytest.raises(ValueError, match="available"):
        models.build("vgg16")
    with pytest.raises(ValueError, match="ResNets only"):
        models.build("small_cnn_noshort")
    variables = np_init(SmallCNN(), jnp.zeros((1, 28, 28, 1)))
    assert num_params(variables) == num_params(variables["params"])  # batch_stats not counted


def test_models_work_with_the_flax_adapter():
    """The core evaluates a line through a seed model unchanged."""
    import jaxsurf as js  # the library is required here: a broken import fails
    model = SmallCNN(features=(4,), num_classes=3)  # conv + BatchNorm + dense
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(10, 6, 6, 1)).astype(np.float32),
            "y": rng.integers(0, 3, 10).astype(np.int32)}
    variables = np_init(model, data["x"][:1])
    fn, params = js.flax.adapt(model, variables, loss="cross_entropy")
    assert set(params) == set(variables["params"])
    direction = jax.tree_util.tree_map(lambda p: np.ones_like(p), params)
    surface = js.evaluate_line(fn, params, direction, data, np.linspace(-1, 1, 3), batch_size=4)
    assert np.asarray(surface.metrics["loss"]).shape == (3,)
    np.testing.assert_allclose(surface.metrics["loss"][1], fn(params, data)["loss"], rtol=1e-5)
