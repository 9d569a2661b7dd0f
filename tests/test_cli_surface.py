"""``python -m jaxsurf surface``: the command on a checkpoint written by jaxsurf.train
gives the library's values; its options and errors; the model contract."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _compute_cli, _cli as cli, _train as train


class TinyNet(nn.Module):
    """Dense - BatchNorm - ReLU - Dense: a params tree and a batch_stats collection."""

    width: int = 8

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(self.width)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(3)(nn.relu(x))


def tiny_net(width: int = 8) -> TinyNet:
    """The factory the tests name on the command line (test_cli_surface:tiny_net)."""
    return TinyNet(width=width)


TINY = TinyNet()  # a model object is accepted too


def blobs(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centres = np.eye(3, 4, dtype=np.float32) * 2
    return {"x": (centres[y] + rng.normal(size=(n, 4))).astype(np.float32), "y": y}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A jaxsurf.train run (2 epochs, so steps 0, 1, 2) and its evaluation data."""
    root = tmp_path_factory.mktemp("surface_cli")
    data = {"train": blobs(256, 0), "val": blobs(64, 1)}
    config = train.TrainConfig(epochs=2, batch_size=64, learning_rate=0.05)
    result = train.fit(TinyNet(), data, config, out_dir=root / "run", log=None, progress=False)
    np.savez(root / "eval.npz", **blobs(100, 2))
    return root, result


def run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_surface_command_matches_the_library_call(trained, capsys):
    root, result = trained
    out = root / "plane_out"
    code, text, err = run(["surface", "--model", "test_cli_surface:tiny_net",
                           "--checkpoint", root / "run", "--data", root / "eval.npz",
                           "--x", "-1:1:5", "--y", "-0.5:0.5:3", "--xnorm", "filter",
                           "--xignore", "biasbn", "--batch-size", "32", "--seed", "3",
                           "--line", "--out", out], capsys)
    assert code == 0, err
    plane = js.Surface.load(out / "plane.npz")
    line = js.Surface.load(out / "line.npz")

    fn, params = js.flax.adapt(TinyNet(), result.variables, loss="cross_entropy")
    d1, d2 = js.random_plane(jax.random.key(3), params, "filter", "biasbn")
    data = dict(np.load(root / "eval.npz"))
    expected = js.evaluate_plane(fn, params, d1, d2, data, np.linspace(-1, 1, 5),
                                 np.linspace(-0.5, 0.5, 3), batch_size=32, progress=False)
    expected_line = js.evaluate_line(fn, params, d1, data, np.linspace(-1, 1, 5),
                                     batch_size=32, progress=False)
    assert plane.metrics["loss"].shape == (5, 3)
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(plane.metrics[name], expected.metrics[name], rtol=1e-6)
        np.testing.assert_allclose(line.metrics[name], expected_line.metrics[name], rtol=1e-6)
    assert plane.metadata["step"] == 2 and plane.metadata["params_fingerprint"] == \
        expected.metadata["params_fingerprint"]
    for name in ("plane.contour.png", "plane.surface.png", "plane.loss.vtp", "line.line.png"):
        assert (out / name).stat().st_size > 0, name
    assert str(out) in text and "wrote" in text


def test_defaults_write_beside_the_run_and_steps_and_objects_work(trained, capsys):
    root, _ = trained
    code, text, err = run(["surface", "--model", "test_cli_surface:TINY", "--checkpoint",
                           root / "run" / "trajectory" / "0", "--data", root / "eval.npz",
                           "--x", "-1:1:3"], capsys)
    assert code == 0, err
    line = js.Surface.load(root / "run" / "surface" / "line.npz")
    assert line.metadata["step"] == 0 and line.metrics["loss"].shape == (3,)
    assert "jaxsurf: 3 points to do" in err  # progress lines in a log


def test_interpolation_starts_at_the_checkpoint(trained, capsys):
    root, result = trained
    run_dir = root / "run"
    code, _, err = run(["surface", "--model", "test_cli_surface:tiny_net", "--checkpoint",
                        run_dir, "--interpolate", run_dir / "trajectory" / "1", "--data",
                        root / "eval.npz", "--x", "0:1:3", "--out", root / "interp"], capsys)
    assert code == 0, err
    path = js.Surface.load(root / "interp" / "interpolation.npz")
    fn, params = js.flax.adapt(TinyNet(), result.variables)
    data = dict(np.load(root / "eval.npz"))
    start = js.dataset_mean(fn, data)(params)
    assert path.metrics["loss"][0] == pytest.approx(start["loss"], rel=1e-5)
    assert path.metadata["kind"] == "interpolation" and path.metadata["step_b"] == 1
    assert path.metadata["state_policy"] == "interpolate"  # statistics move with the weights


@pytest.mark.parametrize("argv, needle", [
    (["--model", "nope_pkg:f"], "cannot import 'nope_pkg'"),
    (["--model", "jaxsurf.models"], "PKG.MODULE:FACTORY"),
    (["--model", "jaxsurf.models:NoSuch"], "has no attribute 'NoSuch'"),
    (["--model", "test_cli_surface:blobs"], "calling blobs"),
    (["--model", "json:dumps", "--model-kwargs", '{"obj": 1}'], "returned a str"),
    (["--model-kwargs", '{"width": 5}'], "the checkpoint has shape (8,) (float32), the model (5,)"),
    (["--model", "jaxsurf.models:resnet20"], "initialising the model on one example"),
    (["--x", "-1:1"], "MIN:MAX:NUM"),
    (["--x", "1:-1:5"], "MIN < MAX"),
    (["--data", "mnist"], "fashion_mnist, cifar10, a .npz file or PKG.MODULE:FACTORY"),
    (["--step", "7"], "--step 7 is not recorded"),
    (["--checkpoint", "{root}/missing"], "no such directory"),
    (["--interpolate", "{root}/run", "--y", "-1:1:3"], "leave out --y"),
])
def test_errors_are_one_line_status_2(trained, capsys, argv, needle):
    root, _ = trained
    base = {"--model": "test_cli_surface:tiny_net", "--checkpoint": str(root / "run"),
            "--data": str(root / "eval.npz"), "--x": "-1:1:3"}
    argv = [a.replace("{root}", str(root)) for a in argv]
    for key, value in zip(argv[::2], argv[1::2]):
        base[key] = value
    flat = [x for pair in base.items() for x in pair] + ["--out", str(root / "errors")]
    code, out, err = run(["surface", *flat], capsys)
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1, err


def test_model_contract_factory_kwargs():
    model = _compute_cli.load_model("test_cli_surface:tiny_net", {"width": 5})
    assert isinstance(model, TinyNet) and model.width == 5
    assert _compute_cli.load_model("jaxsurf.models:resnet20", {"skip": False}).skip is False
    np.testing.assert_allclose(_compute_cli.parse_range("-1:1:5"), np.linspace(-1, 1, 5))


def test_default_out_is_beside_the_checkpoint(tmp_path):
    (tmp_path / "traj" / "3").mkdir(parents=True)
    found = _compute_cli.find_checkpoint(tmp_path / "traj")
    assert found.step == 3 and _compute_cli.default_out(found) == tmp_path / "traj_surface"
    (tmp_path / "run" / "trajectory" / "0").mkdir(parents=True)
    found = _compute_cli.find_checkpoint(tmp_path / "run")
    assert _compute_cli.default_out(found) == tmp_path / "run" / "surface"
    assert json.dumps(str(found))  # printable
