"""Issue 23 (hardening, round 2): the compute path and the ``surface`` command.

One test (or a few) per item, named after it; each failed before the fix. The
models are a plain pytree with a least-squares ``fn`` and a two-layer Flax net
(no BatchNorm) checkpointed with :class:`jaxsurf.TrajectoryRecorder`.
"""

from __future__ import annotations

import errno
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _validate, _cli as cli
from jaxsurf._io import atomic as _atomic
from jaxsurf import _store as store_lib

GRID = np.linspace(-1.0, 1.0, 4)


class Tiny(nn.Module):
    """Dense - ReLU - Dense with 3 outputs (3 classes)."""

    width: int = 4

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(3)(nn.relu(nn.Dense(self.width)(x)))


def tiny(width: int = 4) -> Tiny:
    """The factory named on the command line (test_hardening2_compute:tiny)."""
    return Tiny(width=width)


def blobs(n: int, seed: int = 0, labels_offset: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    return {"x": rng.normal(size=(n, 4)).astype(np.float32), "y": y + labels_offset}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A trajectory with steps 0 and 1 of ``Tiny`` and an evaluation .npz."""
    root = tmp_path_factory.mktemp("h2compute")
    data = blobs(20)
    variables = Tiny().init(jax.random.key(0), data["x"][:1])
    with js.TrajectoryRecorder(root / "traj") as recorder:
        recorder.save(0, variables["params"])
        recorder.save(1, jax.tree_util.tree_map(lambda w: w * 1.1, variables["params"]))
    np.savez(root / "eval.npz", x=data["x"], y=data["y"])
    return root


def surface(root, *argv, capsys, out="out"):
    code = cli.main(["surface", "--model", "test_hardening2_compute:tiny", "--checkpoint",
                     str(root / "traj"), "--data", str(root / "eval.npz"), "--x", "-1:1:3",
                     "--out", str(root / out), *map(str, argv)])
    text, err = capsys.readouterr()
    return code, text, err


@pytest.fixture
def linear():
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2)).astype(np.float32)}
    direction = {"w": rng.normal(size=(3, 2)).astype(np.float32)}
    data = {"x": rng.normal(size=(24, 3)).astype(np.float32),
            "y": rng.normal(size=(24, 2)).astype(np.float32)}

    def fn(p, batch):
        return jnp.mean((batch["x"] @ p["w"] - batch["y"]) ** 2)

    return fn, params, direction, data


# --------------------------------------------------------------------------- item 1
def test_item1_surface_command_never_reuses_a_store_across_loss_or_model_kwargs(ckpt, capsys):
    code, _, err = surface(ckpt, "--loss", "cross_entropy", capsys=capsys, out="item1")
    assert code == 0, err
    for change in (["--loss", "mse"], ["--model-kwargs", '{"width": 4}']):
        code, _, err = surface(ckpt, *change, capsys=capsys, out="item1")
        assert code == 2 and "made for another request" in err, err
        assert ("fingerprint.loss: stored cross_entropy, requested mse" in err
                or "fingerprint.model_kwargs.width: stored <absent>, requested 4" in err), err
    request = json.loads((ckpt / "item1" / "line.store" / "request.json").read_text())
    assert request["fingerprint"]["loss"] == "cross_entropy"
    assert request["fingerprint"]["step"] == 1
    saved = js.Surface.load(ckpt / "item1" / "line.npz")
    assert saved.metadata["loss"] == "cross_entropy"
    assert saved.metadata["fingerprint"]["model"] == "test_hardening2_compute:tiny"


def test_item1_library_fingerprint_keys_the_store(linear, tmp_path):
    fn, params, direction, data = linear
    store = tmp_path / "line.store"
    first = js.evaluate_line(fn, params, direction, data, GRID, store=store, progress=False,
                             fingerprint={"model": "v1"})
    assert first.metadata["fingerprint"] == {"model": "v1"}
    again = js.evaluate_line(fn, params, direction, data, GRID, store=store, progress=False,
                             fingerprint={"model": "v1"})
    assert again.metadata["points_from_store"] == len(GRID)
    with pytest.raises(store_lib.StoreMismatchError, match="fingerprint.model: stored v1, "
                                                            "requested v2"):
        js.evaluate_line(fn, params, direction, data, GRID, store=store, progress=False,
                         fingerprint={"model": "v2"})
    with pytest.raises(TypeError, match="fingerprint must be a non-empty dict"):
        js.evaluate_line(fn, params, direction, data, GRID, progress=False,
                         fingerprint="v2")  # type: ignore[arg-type]
    # a store without a fingerprint still opens as before (no new field in its request)
    plain = tmp_path / "plain.store"
    js.evaluate_line(fn, params, direction, data, GRID, store=plain, progress=False)
    assert "fingerprint" not in json.loads((plain / "request.json").read_text())


# --------------------------------------------------------------------------- item 4
def test_item4_interpolate_refuses_integer_leaves_that_differ():
    fn = lambda p, b: jnp.mean((b["x"] * p["w"]) ** 2) + p["n"]  # noqa: E731
    a = {"w": jnp.ones(()), "n": jnp.array(1, jnp.int32)}
    b = {"w": 2 * jnp.ones(()), "n": jnp.array(5, jnp.int32)}
    data = {"x": jnp.arange(4.0)}
    with pytest.raises(ValueError, match=r"integer leaf \['n'\] differs between params_a \(1\) "
                                         r"and params_b \(5\)"):
        js.interpolate(fn, a, b, data, [0.0, 1.0], progress=False)
    same = {**b, "n": jnp.array(1, jnp.int32)}
    s = js.interpolate(fn, a, same, data, [0.0, 1.0], progress=False)
    assert s.metrics["loss"][1] == pytest.approx(float(fn(same, data)))


def test_item4_line_refuses_a_direction_with_nonzero_integer_leaves():
    fn = lambda p, b: jnp.mean((b["x"] * p["w"]) ** 2) + p["n"]  # noqa: E731
    params = {"w": jnp.ones(()), "n": jnp.array(1, jnp.int32)}
    data = {"x": jnp.arange(4.0)}
    moving = {"w": jnp.ones(()), "n": jnp.array(3, jnp.int32)}
    with pytest.raises(ValueError, match=r"direction 0 has a nonzero integer leaf \['n'\]"):
        js.evaluate_line(fn, params, moving, data, [0.0, 1.0], progress=False)
    with pytest.raises(ValueError, match=r"direction 1 has a nonzero integer leaf \['n'\]"):
        js.evaluate_plane(fn, params, {**moving, "n": jnp.array(0)}, moving, data, [0.0, 1.0],
                          [0.0, 1.0], progress=False)
    # zero integer parts (js.random_direction) and copies of the params' (js.between of
    # two models that agree) are fine: the integer leaf is the params' at every point
    for ok in (js.random_direction(jax.random.key(0), params), js.between(params, params)):
        js.evaluate_line(fn, params, {**ok, "w": jnp.ones(())}, data, [0.0, 1.0],
                         progress=False)


# --------------------------------------------------------------------------- item 12
def test_item12_cross_entropy_refuses_labels_beyond_the_outputs(ckpt):
    data = blobs(20, labels_offset=5)  # labels 5..7, 3 outputs
    variables = Tiny().init(jax.random.key(0), data["x"][:1])
    fn, params = js.flax.adapt(Tiny(), variables, loss="cross_entropy")
    d = js.random_direction(jax.random.key(1), params)
    message = r"labels in data leaf \['y'\] go up to 7, but the model has 3 outputs"
    with pytest.raises(ValueError, match=message):
        js.evaluate_line(fn, params, d, data, GRID, progress=False)
    with pytest.raises(ValueError, match=message):
        js.dataset_mean(fn, data)(params)
    negative = {**data, "y": data["y"] - 8}
    with pytest.raises(ValueError, match=r"go down to -3, but the model has 3 outputs"):
        js.evaluate_line(fn, params, d, negative, GRID, progress=False)
    # a stream: checked batch by batch as each is first read
    batches = [{k: v[:10] for k, v in blobs(20).items()},
               {k: v[10:] for k, v in data.items()}]
    with pytest.raises(ValueError, match=r"labels in batch 1 leaf \['y'\] go up to 7"):
        js.evaluate_line(fn, params, d, batches, GRID, progress=False)
    good = js.evaluate_line(fn, params, d, blobs(20), GRID, progress=False)
    assert (good.metrics["loss"] > 0).all()


def test_item12_equinox_adapter_and_the_command_check_labels_too(ckpt, capsys):
    eqx = pytest.importorskip("equinox")
    data = blobs(12, labels_offset=3)
    model = eqx.nn.MLP(4, 3, 4, 1, key=jax.random.key(0))
    fn, params = js.equinox.adapt(model, loss="cross_entropy")
    with pytest.raises(ValueError, match=r"go up to 5, but the model has 3 outputs"):
        js.evaluate_line(fn, params, js.random_direction(jax.random.key(1), params), data,
                         GRID, progress=False)
    bad = blobs(20, labels_offset=5)
    np.savez(ckpt / "bad_labels.npz", x=bad["x"], y=bad["y"])
    code = cli.main(["surface", "--model", "test_hardening2_compute:tiny", "--checkpoint",
                     str(ckpt / "traj"), "--data", str(ckpt / "bad_labels.npz"), "--x", "-1:1:3",
                     "--out", str(ckpt / "item12")])
    _, err = capsys.readouterr()
    assert code == 2 and "go up to 7, but the model has 3 outputs" in err, err


def test_item12_curvature_and_sharpness_check_labels_too():
    data = blobs(20, labels_offset=5)  # labels 5..7, 3 outputs
    variables = Tiny().init(jax.random.key(0), data["x"][:1])
    fn, params = js.flax.adapt(Tiny(), variables, loss="cross_entropy")
    vector = js.random_direction(jax.random.key(1), params)
    message = r"labels in (data|batch 0) leaf \['y'\] go up to 7, but the model has 3 outputs"
    with pytest.raises(ValueError, match=message):
        js.hessian.hvp(fn, params, data, vector)
    with pytest.raises(ValueError, match=message):
        js.hessian.top_eigenpairs(fn, params, data, k=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=message):
        js.sharpness.epsilon_sharpness(fn, params, data)
    batches = [{k: v[:10] for k, v in blobs(20).items()}, {k: v[10:] for k, v in data.items()}]
    with pytest.raises(ValueError, match=r"labels in batch 1 leaf \['y'\] go up to 7"):
        js.hessian.hvp(fn, params, batches, vector)
    good = js.hessian.hvp(fn, params, blobs(20), vector)  # in range: computed as before
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(good))


# --------------------------------------------------------------------------- huge grids
def test_huge_plane_is_refused_before_allocating(linear, monkeypatch):
    fn, params, direction, data = linear
    big = np.arange(100_000.0)
    with pytest.raises(ValueError, match=r"js.evaluate_plane: 10,000,000,000 points \(100000 x "
                                         r"100000\) are more than the limit of 250,000 points"):
        js.evaluate_plane(fn, params, direction, direction, data, big, big, progress=False)
    small = np.arange(600.0)
    with pytest.raises(ValueError, match="max_points=360000"):
        js.evaluate_plane(fn, params, direction, direction, data, small, small, progress=False)
    with pytest.raises(ValueError, match="more than the limit of 10 points"):
        js.evaluate_line(fn, params, direction, data, np.arange(11.0), progress=False,
                         max_points=10)
    monkeypatch.setenv("JAXSURF_MAX_POINTS", "3")
    with pytest.raises(ValueError, match="js.interpolate: 4 points"):
        js.interpolate(fn, params, direction, data, GRID, progress=False)
    line = js.evaluate_line(fn, params, direction, data, GRID, progress=False, max_points=4)
    assert line.metrics["loss"].shape == (4,)
    monkeypatch.setenv("JAXSURF_MAX_POINTS", "many")
    with pytest.raises(ValueError, match="JAXSURF_MAX_POINTS='many' must be a positive"):
        _validate.max_points()


def test_huge_plane_command_refuses_and_states_the_size(ckpt, capsys):
    code, _, err = surface(ckpt, "--x", "-1:1:1001", "--y", "-1:1:501", capsys=capsys,
                           out="huge")
    assert code == 2 and "501,501 points (1001 x 501) are more than the limit" in err, err
    assert "--max-points 501501" in err and not (ckpt / "huge").exists()
    code, text, err = surface(ckpt, "--y", "-1:1:2", "--line", capsys=capsys, out="sized")
    assert code == 0, err
    assert ("jaxsurf surface: plane 3 x 2 + line 3 = 9 points x 2 metrics (accuracy, loss), "
            "192 bytes of results and coordinates") in text


# --------------------------------------------------------------------------- full disk
def test_full_disk_names_the_store_and_the_points_saved(linear, tmp_path, monkeypatch):
    fn, params, direction, data = linear
    real, calls = _atomic.write_with, []

    def full_after_first(path, write):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(store_lib.atomic, "write_with", full_after_first)
    store = tmp_path / "line.store"
    with pytest.raises(OSError, match=r"No space left on device while saving 2 finished points "
                                      r"to the store .*line.store; 2/8 points are saved there"
                       ) as caught:
        js.evaluate_line(fn, params, direction, data, np.linspace(0, 1, 8), chunk_size=2,
                         store=store, progress=False)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(store_lib.atomic, "write_with", real)

    def no_space(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_lib.atomic, "write_temp", no_space)  # request.json
    with pytest.raises(OSError, match=r"No space left on device while creating the store "
                                      r".*new.store \(no points are saved yet\)"):
        js.evaluate_line(fn, params, direction, data, GRID, store=tmp_path / "new.store",
                         progress=False)
    monkeypatch.undo()
    again = js.evaluate_line(fn, params, direction, data, np.linspace(0, 1, 8), chunk_size=2,
                             store=store, progress=False)
    assert again.metadata["points_from_store"] == 2


def test_full_disk_while_writing_the_command_output(ckpt, capsys, monkeypatch):
    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(js.Surface, "save", full)
    code, _, err = surface(ckpt, capsys=capsys, out="full")
    assert code == 2, err
    assert "line.npz failed (No space left on device); the 3 points of the line are saved in " \
           "the store" in err and "line.store" in err, err


# --------------------------------------------------------------------------- small ones
def test_small_step_0_is_accepted(ckpt, capsys):
    code, text, err = surface(ckpt, "--step", "0", capsys=capsys, out="step0")
    assert code == 0, err
    assert js.Surface.load(ckpt / "step0" / "line.npz").metadata["step"] == 0
    code, _, err = surface(ckpt, "--step", "-1", capsys=capsys, out="step_neg")
    assert code == 2 and "--step must be a recorded step" in err


def test_small_interpolate_nope_names_interpolate(ckpt, capsys):
    code, _, err = surface(ckpt, "--interpolate", ckpt / "nope", capsys=capsys, out="interp")
    assert code == 2 and "--interpolate" in err and "nope: no such directory" in err, err
    assert "--checkpoint" not in err.split("no such directory")[0]


def test_small_failed_surface_leaves_no_empty_out(ckpt, capsys):
    out = ckpt / "deep" / "failed"
    code, _, err = surface(ckpt, "--model-kwargs", '{"width": 7}', capsys=capsys,
                           out="deep/failed")
    assert code == 2, err
    assert not out.exists() and not out.parent.exists()
    kept = ckpt / "kept"
    kept.mkdir()
    code, _, _ = surface(ckpt, "--model-kwargs", '{"width": 7}', capsys=capsys, out="kept")
    assert code == 2 and kept.is_dir()  # a folder that existed is never removed


def test_small_text_garbage_as_data_names_the_file(ckpt, capsys):
    garbage = ckpt / "garbage.npz"
    garbage.write_text("hello, this is text\n")
    code = cli.main(["surface", "--model", "test_hardening2_compute:tiny", "--checkpoint",
                     str(ckpt / "traj"), "--data", str(garbage), "--out", str(ckpt / "g")])
    _, err = capsys.readouterr()
    assert code == 2 and f"--data {garbage} is not a .npz file" in err, err
    assert "allow_pickle" not in err
    objects = ckpt / "objects.npz"
    np.savez(objects, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, np.int32))
    code = cli.main(["surface", "--model", "test_hardening2_compute:tiny", "--checkpoint",
                     str(ckpt / "traj"), "--data", str(objects), "--out", str(ckpt / "g")])
    _, err = capsys.readouterr()
    assert code == 2 and "Python objects (dtype object)" in err and "allow_pickle" not in err
