"""``python -m jaxsurf surface`` on any model (issue 27, item 1): Equinox and NNX
modules with their own checkpoints, a factory returning ``(fn, params)``, data
from named ``.npz`` keys or a factory, ``--metric error``; each gives the values
of the library call it stands for."""

from __future__ import annotations

from typing import Any, cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
import flax.linen as nn
from flax import nnx

import jaxsurf as js
from jaxsurf import _cli as cli, _compute_cli

X = np.linspace(-1, 1, 3)
Y = np.linspace(-0.5, 0.5, 3)


def blobs(n: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    x = (np.eye(3, 4, dtype=np.float32)[y] * 2 + rng.normal(size=(n, 4))).astype(np.float32)
    return {"x": x, "y": y}


# ------------------------------------------------------------------ factories the CLI names
def eqx_mlp(key, width: int = 8):
    """An Equinox MLP; ``key`` is supplied by the command line (the weights are loaded)."""
    return eqx.nn.MLP(4, 3, width, 1, key=key)


class NNXNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, width: int = 8):
        self.l1 = nnx.Linear(4, width, rngs=rngs)
        self.l2 = nnx.Linear(width, 3, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.relu(self.l1(x)))


def nnx_net(rngs, width: int = 8):
    return NNXNet(rngs, width)


def linear_params(seed: int = 0) -> dict[str, jax.Array]:
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {"w": jax.random.normal(k1, (4, 3)), "b": 0.1 * jax.random.normal(k2, (3,))}


def linear_fn(params, batch):
    """Softmax regression in plain JAX: batch means of loss and accuracy."""
    logits = batch["feat"] @ params["w"] + params["b"]
    labels = batch["label_id"]
    logp = jax.nn.log_softmax(logits)
    loss = -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))
    return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}


def plain_model(seed: int = 0):
    """A factory returning ``(fn, params)``: any framework."""
    return linear_fn, linear_params(seed)


def renamed_data(n: int = 40):
    data = blobs(n, 5)
    return {"feat": data["x"], "label_id": data["y"]}


# ------------------------------------------------------------------ helpers
def savez(path, **arrays) -> None:
    np.savez(path, **cast(dict[str, Any], arrays))


def run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def expected_plane(fn, params, data, seed=1):
    d1, d2 = js.random_plane(jax.random.key(seed), params, "filter", "biasbn")
    return js.evaluate_plane(fn, params, d1, d2, data, X, Y, batch_size=16, progress=False)


def plane_argv(model, out, data, *extra):
    return ["surface", "--model", model, "--data", data, "--x", "-1:1:3", "--y",
            "-0.5:0.5:3", "--batch-size", "16", "--seed", "1", "--out", out, *extra]


def assert_same(surface, expected, names=("loss", "accuracy")):
    for name in names:
        np.testing.assert_allclose(surface.metrics[name], expected.metrics[name], rtol=1e-5,
                                   atol=1e-6)
    assert surface.metadata["params_fingerprint"] == expected.metadata["params_fingerprint"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("frameworks") / "eval.npz"
    savez(path, **blobs())
    return path


# ------------------------------------------------------------------ the tests
def test_equinox_model_and_its_serialised_leaves(tmp_path, data_file, capsys):
    trained = jax.tree_util.tree_map(lambda a: a * 1.5 if eqx.is_array(a) else a,
                                     eqx_mlp(jax.random.key(7)))
    eqx.tree_serialise_leaves(tmp_path / "mlp.eqx", trained)
    code, _, err = run(plane_argv("test_cli_frameworks:eqx_mlp", tmp_path / "out", data_file,
                                  "--checkpoint", tmp_path / "mlp.eqx"), capsys)
    assert code == 0, err
    fn, params = js.equinox.adapt(trained)
    data = dict(np.load(data_file))
    assert_same(js.Surface.load(tmp_path / "out" / "plane.npz"),
                expected_plane(fn, params, data))


def test_equinox_checkpoint_of_another_width_names_the_leaf(tmp_path, data_file, capsys):
    eqx.tree_serialise_leaves(tmp_path / "mlp.eqx", eqx_mlp(jax.random.key(0), width=5))
    code, _, err = run(plane_argv("test_cli_frameworks:eqx_mlp", tmp_path / "out", data_file,
                                  "--checkpoint", tmp_path / "mlp.eqx"), capsys)
    assert code == 2 and "does not fit" in err and "--model-kwargs" in err, err


def test_nnx_model_and_its_orbax_state(tmp_path, data_file, capsys):
    model = NNXNet(nnx.Rngs(11))
    model.l1.kernel[...] = model.l1.kernel[...] * 2.0
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save((tmp_path / "nnx_ckpt").resolve(), nnx.state(model))
    checkpointer.wait_until_finished()
    checkpointer.close()
    code, _, err = run(plane_argv("test_cli_frameworks:nnx_net", tmp_path / "out", data_file,
                                  "--checkpoint", tmp_path / "nnx_ckpt"), capsys)
    assert code == 0, err
    fn, params = js.flax.adapt(model)
    data = dict(np.load(data_file))
    assert_same(js.Surface.load(tmp_path / "out" / "plane.npz"),
                expected_plane(fn, params, data))


def test_factory_returning_fn_and_params_with_data_keys_and_error(tmp_path, capsys):
    path = tmp_path / "renamed.npz"
    savez(path, **renamed_data(), unrelated=np.zeros(3))
    code, text, err = run(plane_argv("test_cli_frameworks:plain_model", tmp_path / "out", path,
                                     "--data-keys", "feat,label_id", "--metric", "error"),
                          capsys)
    assert code == 0, err
    surface = js.Surface.load(tmp_path / "out" / "plane.npz")
    fn, params = plain_model()
    expected = expected_plane(fn, params, renamed_data())
    assert_same(surface, expected)
    np.testing.assert_allclose(surface.metrics["error"], 1 - expected.metrics["accuracy"],
                               rtol=1e-6)
    assert "factory's weights" in text


def test_data_factory_gives_the_same_surface_as_the_file(tmp_path, capsys):
    code, _, err = run(plane_argv("test_cli_frameworks:plain_model", tmp_path / "out",
                                  "test_cli_frameworks:renamed_data", "--data-kwargs",
                                  '{"n": 40}'), capsys)
    assert code == 0, err
    fn, params = plain_model()
    assert_same(js.Surface.load(tmp_path / "out" / "plane.npz"),
                expected_plane(fn, params, renamed_data(40)))


def test_fn_params_with_a_recorded_checkpoint_and_interpolation(tmp_path, capsys):
    path = tmp_path / "renamed.npz"
    savez(path, **renamed_data())
    with js.TrajectoryRecorder(tmp_path / "traj") as recorder:
        recorder.save(0, linear_params(1))
        recorder.save(1, linear_params(2))
    code, _, err = run(["surface", "--model", "test_cli_frameworks:plain_model",
                        "--checkpoint", tmp_path / "traj", "--step", "0", "--interpolate",
                        tmp_path / "traj" / "1", "--data", path, "--x", "0:1:3",
                        "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    surface = js.Surface.load(tmp_path / "out" / "interpolation.npz")
    expected = js.interpolate(linear_fn, linear_params(1), linear_params(2), renamed_data(),
                              np.linspace(0, 1, 3), progress=False)
    np.testing.assert_allclose(surface.metrics["loss"], expected.metrics["loss"], rtol=1e-5)


def test_other_data_keys_do_not_reuse_the_store(tmp_path, capsys):
    """The same store with other inputs must not hand back the first run's points."""
    path = tmp_path / "two.npz"
    data = blobs()
    savez(path, x=data["x"], y=data["y"], x2=data["x"][:, ::-1].copy())
    eqx.tree_serialise_leaves(tmp_path / "mlp.eqx", eqx_mlp(jax.random.key(7)))
    argv = plane_argv("test_cli_frameworks:eqx_mlp", tmp_path / "out", path, "--checkpoint",
                      tmp_path / "mlp.eqx", "--store", tmp_path / "plane.store")
    assert run([*argv, "--data-keys", "x,y"], capsys)[0] == 0
    code, _, err = run([*argv, "--data-keys", "x2,y"], capsys)
    assert code == 2 and "store" in err.lower(), err


@pytest.mark.parametrize("argv, needle", [
    (["--model", "test_cli_frameworks:plain_model", "--loss", "mse"], "leave out --loss"),
    (["--model", "test_cli_frameworks:plain_model", "--data-keys", "feat"],
     "two different arrays"),
    (["--model", "test_cli_frameworks:plain_model", "--data-keys", "feat,nope"],
     "has no 'nope'"),
    (["--model", "test_cli_frameworks:eqx_mlp"], "which are the inputs and the targets"),
    (["--model", "test_cli_frameworks:linear_fn"], "calling linear_fn"),
    (["--model", "test_cli_frameworks:blobs"], "returned a dict"),
])
def test_errors_name_the_cause(tmp_path, capsys, argv, needle):
    path = tmp_path / "renamed.npz"
    savez(path, **renamed_data())
    code, _, err = run(["surface", "--data", path, "--x", "-1:1:3", "--out", tmp_path / "o",
                        *argv], capsys)
    assert code == 2 and needle in err and "Traceback" not in err, err


def test_linen_without_checkpoint_says_how(tmp_path, data_file, capsys):
    code, _, err = run(["surface", "--model", "test_cli_surface:tiny_net", "--data", data_file,
                        "--x", "-1:1:3", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "give --checkpoint" in err and "(fn, params)" in err, err


def test_loaders_are_listed_in_the_help_message():
    names = [loader.name for loader in _compute_cli.LOADERS]
    assert any("Equinox" in n for n in names) and any("NNX" in n for n in names)
    assert any("(fn, params)" in n for n in names)


# ------------------------------------------------------------------ errors (item 3)
def test_plot_kind_that_does_not_fit_the_file_names_the_option(tmp_path, capsys):
    """Before: "contour() draws a 2-D plane ...; use jaxsurf.plot.line()", a Python call."""
    js.Surface(np.linspace(-1, 1, 5), None, {"loss": np.arange(5.0)}).save(tmp_path / "l.npz")
    code, _, err = run(["plot", tmp_path / "l.npz", "--kind", "contour"], capsys)
    assert code == 2 and "use --kind line" in err and "jaxsurf.plot" not in err, err
    js.Surface(X, Y, {"loss": np.ones((3, 3))}).save(tmp_path / "p.npz")
    code, _, err = run(["plot", tmp_path / "p.npz", "--kind", "line"], capsys)
    assert code == 2 and "--kind contour" in err, err


class TinyConv(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (3, 3))(x)
        return nn.Dense(3)(x.mean(axis=(-3, -2)))


def test_images_without_channel_axis_are_named_not_params_like(tmp_path, capsys):
    """Before: "params_like does not match step 0 ...", a library keyword the user never
    wrote, for data saved as (n, 8, 8) for a model trained on (n, 8, 8, 1)."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(12, 8, 8, 1)).astype(np.float32)
    variables = TinyConv().init(jax.random.key(0), images[:1])
    with js.TrajectoryRecorder(tmp_path / "traj") as recorder:
        recorder.save(0, variables["params"])
    savez(tmp_path / "flat.npz", x=images[..., 0], y=rng.integers(0, 3, 12).astype(np.int32))
    code, _, err = run(["surface", "--model", "test_cli_frameworks:TinyConv", "--checkpoint",
                        tmp_path / "traj", "--data", tmp_path / "flat.npz", "--x", "-1:1:3",
                        "--out", tmp_path / "o"], capsys)
    assert code == 2 and "params_like" not in err, err
    assert "channel axis" in err and "(12, 8, 8, 1)" in err, err


def test_unsupported_model_points_at_fn_params(tmp_path, capsys):
    savez(tmp_path / "d.npz", **blobs())
    code, _, err = run(["surface", "--model", "json:dumps", "--model-kwargs", '{"obj": 1}',
                        "--data", tmp_path / "d.npz", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "returned a str" in err and "(fn, params)" in err, err
    assert "Equinox" in err and "NNX" in err
