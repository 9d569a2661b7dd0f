"""js.Monitor: surfaces recorded during training, resumable, from any loop."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsurf as js
import jaxsurf.train  # noqa: F401  (js.train, the zoo: not loaded by js)
from jaxsurf import _monitor as monitor_lib


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    x = (np.eye(3, 4, dtype=np.float32)[y] * 2 + rng.normal(size=(n, 4))).astype(np.float32)
    return {"x": x, "y": y}


def _fn(params, batch):
    h = jnp.tanh(batch["x"] @ params["w1"] + params["b1"])
    logits = h @ params["w2"] + params["b2"]
    logp = jax.nn.log_softmax(logits)
    loss = -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1))
    return {"loss": loss, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}


def _params(seed=0):
    k0, k1 = jax.random.split(jax.random.key(seed))
    return {"w1": jax.random.normal(k0, (4, 6)) / 2, "b1": jnp.zeros(6),
            "w2": jax.random.normal(k1, (6, 3)) / 2, "b2": jnp.zeros(3)}


def _train(monitor, data, steps, start=0, params=None, lr=0.3):
    """A plain optax loop calling the monitor after each step (and at step 0)."""
    params = _params() if params is None else params
    opt = optax.sgd(lr)
    state = opt.init(params)
    grad = jax.jit(jax.grad(lambda p: _fn(p, data)["loss"]))
    seen = {}
    for step in range(start, steps + 1):
        seen[step] = params
        monitor(step, params)
        updates, state = opt.update(grad(params), state)
        params = optax.apply_updates(params, updates)
    return seen


GRID = np.linspace(-1, 1, 5)


def test_records_exactly_every_kth_step_of_a_plain_optax_loop(tmp_path):
    data = _data()
    m = js.Monitor(_fn, data, out=tmp_path / "m", every=3, grid=GRID, progress=False)
    seen = _train(m, data, 10)
    assert m.steps == [0, 3, 6, 9]
    frames = js.Monitor.load(tmp_path / "m")
    assert list(frames) == [0, 3, 6, 9]
    (d,) = js.Monitor.load_directions(tmp_path / "m", _params())
    for step, surface in frames.items():
        assert surface.metadata["step"] == step
        assert surface.metric_names == ["loss"]  # measure=("loss",)
        # the frame is the line through that step's params along the saved direction
        want = js.evaluate_line(_fn, seen[step], d, data, GRID, progress=False)
        np.testing.assert_allclose(surface.metrics["loss"], want.metrics["loss"], rtol=1e-6)
        assert surface.metrics["loss"][2] == pytest.approx(float(_fn(seen[step], data)["loss"]),
                                                           rel=1e-5)


def test_records_exactly_a_list_of_steps(tmp_path):
    data = _data()
    m = js.Monitor(_fn, data, out=tmp_path / "m", every=[1, 4, 5, 9], grid=GRID,
                   measure=("loss", "accuracy"), progress=False)
    _train(m, data, 7)
    assert m.steps == [1, 4, 5]
    frames = js.Monitor.load(tmp_path / "m")
    assert list(frames) == [1, 4, 5]
    assert frames[4].metric_names == ["loss", "accuracy"]


def test_a_killed_and_restarted_loop_resumes_without_recording_again(tmp_path):
    data = _data()
    out = tmp_path / "m"
    m = js.Monitor(_fn, data, out=out, every=2, grid=GRID, progress=False)
    seen = _train(m, data, 6)  # records 0, 2, 4, 6, then the process "dies"
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
             for p in (out / "steps").iterdir()}
    assert sorted(files) == [f"step_{s:010d}.npz" for s in (0, 2, 4, 6)]
    # the restarted run resumes from a checkpoint at step 3 with a fresh monitor
    again = js.Monitor(_fn, data, out=out, every=2, grid=GRID, progress=False)
    assert again.steps == [0, 2, 4, 6]
    calls = []
    original = again._record
    again._record = lambda step, params: calls.append(step) or original(step, params)
    _train(again, data, 10, start=3, params=seen[3])
    assert calls == [8, 10]  # 4 and 6 were recorded before: skipped, not evaluated
    for name, (content, mtime) in files.items():  # nothing overwritten
        path = out / "steps" / name
        assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime
    assert list(js.Monitor.load(out)) == [0, 2, 4, 6, 8, 10]


def test_fixed_directions_are_identical_across_records(tmp_path):
    data = _data()
    out = tmp_path / "m"
    m = js.Monitor(_fn, data, out=out, every=2, kind="plane", grid=GRID, key=3,
                   progress=False)
    seen = _train(m, data, 6)
    frames = js.Monitor.load(out)
    prints = {tuple(d["fingerprint"] for d in s.metadata["directions"])
              for s in frames.values()}
    assert len(prints) == 1  # the same two directions at every step
    d1, d2 = js.Monitor.load_directions(out, _params())
    assert [tuple(x["fingerprint"] for x in frames[0].metadata["directions"])] == \
        [(js.tree.fingerprint(d1), js.tree.fingerprint(d2))]
    # drawn from the key and filter-normalized against the first recorded params
    w1, w2 = js.random_plane(jax.random.key(3), seen[0])
    np.testing.assert_allclose(d1["w1"], w1["w1"], rtol=1e-6)
    np.testing.assert_allclose(d2["w2"], w2["w2"], rtol=1e-6)
    assert frames[6].metrics["loss"].shape == (5, 5)
    # a restarted monitor reuses the saved directions (not a new draw)
    again = js.Monitor(_fn, data, out=out, every=2, kind="plane", grid=GRID, key=3,
                       progress=False)
    again(8, seen[6])
    assert js.Monitor.load(out)[8].metadata["directions"][0]["fingerprint"] == prints.pop()[0]


def test_renormalized_directions_follow_each_steps_params(tmp_path):
    data = _data()
    out = tmp_path / "m"
    m = js.Monitor(_fn, data, out=out, every=3, grid=GRID, directions="renormalized",
                   progress=False)
    seen = _train(m, data, 6, lr=1.0)
    frames = js.Monitor.load(out)
    (raw,) = js.Monitor.load_directions(out, _params())
    for step in (0, 3, 6):
        want = js.normalize(raw, seen[step])
        assert frames[step].metadata["directions"][0]["fingerprint"] == \
            js.tree.fingerprint(want)
        assert frames[step].metadata["directions"][0]["normalization"] == "filter"
    assert frames[0].metadata["directions"][0]["fingerprint"] != \
        frames[6].metadata["directions"][0]["fingerprint"]


def test_curvature_series(tmp_path):
    data = _data()
    out = tmp_path / "m"
    m = js.Monitor(_fn, data, out=out, every=4, grid=GRID,
                   curvature=("top_eigenvalue", "trace"), progress=False)
    seen = _train(m, data, 8)
    series = js.Monitor.load_curvature(out)
    assert series["step"].tolist() == [0, 4, 8]
    assert sorted(series) == ["step", "top_eigenvalue", "trace", "trace_sem"]
    lams, _ = js.hessian.top_eigenpairs(_fn, seen[4], data, k=1, key=jax.random.key(0),
                                        num_iterations=33)
    assert series["top_eigenvalue"][1] == pytest.approx(lams[0], rel=1e-3)
    assert np.all(series["trace_sem"] > 0)
    assert js.Monitor.load(out)[8].metadata["curvature"]["trace"] == series["trace"][2]


def test_an_equinox_model(tmp_path):
    eqx = pytest.importorskip("equinox")
    data = _data()
    model = eqx.nn.MLP(4, 3, 6, 1, key=jax.random.key(0))
    fn, params = js.equinox.adapt(model, loss="cross_entropy")
    m = js.Monitor(fn, data, out=tmp_path / "m", every=2, grid=GRID, progress=False)
    opt = optax.adam(1e-2)
    state = opt.init(params)
    grad = jax.jit(jax.grad(lambda p: fn(p, data)["loss"]))
    for step in range(5):
        m(step, params)
        updates, state = opt.update(grad(params), state)
        params = optax.apply_updates(params, updates)
    frames = js.Monitor.load(tmp_path / "m")
    assert list(frames) == [0, 2, 4]
    # filter-normalized (Equinox layout: filters first) against the first record's params
    assert frames[0].metadata["directions"][0]["normalization"] == "filter"
    assert frames[4].metadata["monitor"]["normalized_at_step"] == 0
    assert frames[0].metrics["loss"][2] > frames[4].metrics["loss"][2]


def test_a_plain_tuple_pytree(tmp_path):
    data = _data()

    def fn(p, batch):
        logits = batch["x"] @ p[0] + p[1]
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()

    params = (jnp.ones((4, 3)) * 0.1, jnp.zeros(3))
    m = js.Monitor(fn, data, out=tmp_path / "m", every=1, grid=GRID, progress=False)
    for step in range(3):
        assert m(step, params) is not None
        params = (params[0] * 1.5, params[1])
    assert list(js.Monitor.load(tmp_path / "m")) == [0, 1, 2]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("every", [0, -1, True, 1.5])
def test_every_must_be_positive(tmp_path, every):
    with pytest.raises((ValueError, TypeError), match="every"):
        js.Monitor(_fn, _data(), out=tmp_path / "m", every=every)


@pytest.mark.parametrize("every", [[3, 1], [2, 2], []])
def test_a_list_of_steps_must_increase(tmp_path, every):
    with pytest.raises(ValueError, match="every"):
        js.Monitor(_fn, _data(), out=tmp_path / "m", every=every)


def test_steps_must_increase_between_calls(tmp_path):
    m = js.Monitor(_fn, _data(), out=tmp_path / "m", every=2, grid=GRID, progress=False)
    m(2, _params())
    with pytest.raises(monitor_lib.MonitorError, match="steps must increase"):
        m(2, _params())
    with pytest.raises(ValueError, match="got step 1 after step 2"):
        m(1, _params())
    with pytest.raises(ValueError, match=">= 0"):
        js.Monitor(_fn, _data(), out=tmp_path / "n", every=2)(-1, _params())
    with pytest.raises(TypeError, match="integer"):
        js.Monitor(_fn, _data(), out=tmp_path / "n", every=2)(1.0, _params())
    assert js.Monitor.load(tmp_path / "m").keys() == {2}


def test_params_structure_must_not_change(tmp_path):
    m = js.Monitor(_fn, _data(), out=tmp_path / "m", every=2, grid=GRID, progress=False)
    m(0, _params())
    other = {**_params(), "extra": jnp.ones(2)}
    with pytest.raises(ValueError, match="structure changed"):
        m(1, other)
    # a restarted run with params of other shapes is refused at its first record
    again = js.Monitor(_fn, _data(), out=tmp_path / "m", every=2, grid=GRID, progress=False)
    wider = {**_params(), "w1": jnp.ones((4, 7)), "b1": jnp.zeros(7),
             "w2": jnp.ones((7, 3))}
    with pytest.raises(ValueError, match="params"):
        again(2, wider)
    assert list(js.Monitor.load(tmp_path / "m")) == [0]


@pytest.mark.parametrize("change", [
    {"every": 3}, {"grid": np.linspace(-2, 2, 5)}, {"kind": "plane"},
    {"directions": "renormalized"}, {"key": 1}, {"measure": ("loss", "accuracy")},
    {"curvature": ("trace",)}, {"batch_size": 7}])
def test_another_configuration_on_an_existing_out_is_refused(tmp_path, change):
    data = _data()
    base = {"every": 2, "grid": GRID, "progress": False}
    m = js.Monitor(_fn, data, out=tmp_path / "m", **base)
    m(0, _params())
    before = (tmp_path / "m" / "monitor.json").read_bytes()
    with pytest.raises(ValueError, match="another configuration") as info:
        js.Monitor(_fn, data, out=tmp_path / "m", **{**base, **change})
    assert "neither resumed nor overwritten" in str(info.value)
    assert (tmp_path / "m" / "monitor.json").read_bytes() == before


def test_other_data_on_an_existing_out_is_refused(tmp_path):
    m = js.Monitor(_fn, _data(), out=tmp_path / "m", every=2, grid=GRID, progress=False)
    m(0, _params())
    with pytest.raises(ValueError, match="data.sha256"):
        js.Monitor(_fn, _data(seed=1), out=tmp_path / "m", every=2, grid=GRID)


def test_other_bad_input(tmp_path):
    data = _data()
    with pytest.raises(ValueError, match="kind"):
        js.Monitor(_fn, data, out=tmp_path / "a", kind="volume")
    with pytest.raises(ValueError, match="directions"):
        js.Monitor(_fn, data, out=tmp_path / "a", directions="random")
    with pytest.raises(ValueError, match="curvature"):
        js.Monitor(_fn, data, out=tmp_path / "a", curvature=("sharpness",))
    with pytest.raises(ValueError, match="store"):
        js.Monitor(_fn, data, out=tmp_path / "a", store=tmp_path / "s")
    with pytest.raises(TypeError, match="unknown option"):
        js.Monitor(_fn, data, out=tmp_path / "a", chunksize=4)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a monitor"):
        js.Monitor(_fn, data, out=tmp_path / "busy")
    with pytest.raises(ValueError, match="not a monitor folder"):
        js.Monitor.load(tmp_path / "nothing")
    m = js.Monitor(_fn, data, out=tmp_path / "b", every=1, grid=GRID, measure="f1")
    with pytest.raises(ValueError, match="f1"):
        m(0, _params())
    assert not (tmp_path / "b" / "steps").exists()


def test_engine_options_object_and_subsample(tmp_path):
    data = _data()
    eng = js.Engine(batch_size=16, subsample=24, progress=False)
    m = js.Monitor(_fn, data, out=tmp_path / "m", every=1, grid=GRID, engine=eng)
    surface = m(0, _params())
    assert surface is not None
    assert surface.metric_names == ["loss", "loss_sem"]
    assert js.Monitor.config(tmp_path / "m")["subsample"] == 24
    assert js.Monitor.config(tmp_path / "m")["batch_size"] == 16


def test_the_config_file_is_one_jaxsurf_header(tmp_path):
    m = js.Monitor(_fn, _data(), out=tmp_path / "m", every=1, grid=GRID, progress=False)
    m(0, _params())
    raw = json.loads((tmp_path / "m" / "monitor.json").read_text())
    assert raw["format"] == "jaxsurf.monitor" and raw["format_version"] == 1
    raw["format_version"] = 99
    (tmp_path / "m" / "monitor.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="newer than"):
        js.Monitor.load(tmp_path / "m")
    assert not any(name.startswith(".") for name in os.listdir(tmp_path / "m" / "steps"))
    assert monitor_lib.is_monitor_folder(tmp_path / "m")


# --------------------------------------------------------------------------- train.fit
class _Crash(Exception):
    pass


@pytest.mark.slow
def test_train_fit_calls_the_monitor_with_global_steps_and_resumes(tmp_path):
    import flax.linen as nn

    class TinyNet(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            x = nn.Dense(8)(x)
            x = nn.BatchNorm(use_running_average=not train)(x)
            return nn.Dense(3)(nn.relu(x))

    model = TinyNet()
    data = {"train": _data(256, 0)}
    config = js.train.TrainConfig(epochs=2, batch_size=64, learning_rate=0.05, seed=0)
    fn = js.flax.linen_metrics_fn(model)
    variables = model.init(jax.random.key(0), data["train"]["x"][:2])
    out = tmp_path / "m"
    recorded = []

    class Crashing(js.Monitor):
        def _record(self, step, params):
            recorded.append(step)
            surface = super()._record(step, params)
            if step == 6 and crash:
                raise _Crash  # killed during epoch 2, after recording step 6
            return surface

    crash = True
    with pytest.raises(_Crash):
        js.train.fit(model, data, config, out_dir=tmp_path / "run", variables=variables,
                     log=None, progress=False,
                     monitor=Crashing(fn, data["train"], out=out, every=2, grid=GRID,
                                      progress=False))
    assert recorded == [0, 2, 4, 6]  # 4 steps per epoch: global steps across epochs
    crash = False
    js.train.fit(model, data, config, out_dir=tmp_path / "run", variables=variables,
                 log=None, progress=False,
                 monitor=Crashing(fn, data["train"], out=out, every=2, grid=GRID,
                                  progress=False))
    assert recorded == [0, 2, 4, 6, 8]  # epoch 2 replayed: step 6 not recorded twice
    frames = js.Monitor.load(out)
    assert list(frames) == [0, 2, 4, 6, 8]
    (d,) = js.Monitor.load_directions(out, variables)
    # BatchNorm statistics (1-D leaves) are not moved by the directions
    assert not np.any(np.asarray(d["batch_stats"]["BatchNorm_0"]["mean"]))
    want = js.evaluate_line(fn, variables, d, data["train"], GRID, progress=False)
    np.testing.assert_allclose(frames[0].metrics["loss"], want.metrics["loss"], rtol=1e-5)
    with pytest.raises(TypeError, match="monitor"):
        js.train.fit(model, data, config, log=None, progress=False, monitor="m")


# --------------------------------------------------------------------------- animate
def _gif_frames(path):
    from PIL import Image

    with Image.open(path) as im:
        frames = []
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
        return frames, json.loads(im.info["comment"])


def test_animate_writes_one_gif_frame_per_record_with_a_shared_colour_scale(tmp_path):
    data = _data()
    out = tmp_path / "m"
    m = js.Monitor(_fn, data, out=out, every=4, kind="plane", grid=np.linspace(-1, 1, 7),
                   progress=False)
    _train(m, data, 12, lr=0.5)
    records = js.Monitor.load(out)
    path = js.plot.animate(records, out=tmp_path / "a.gif", fps=5)
    frames, info = _gif_frames(path)
    assert len(frames) == len(records) == 4
    assert info["steps"] == [0, 4, 8, 12]
    every = np.concatenate([s.metrics["loss"].ravel() for s in records.values()])
    assert info["vmin"] == pytest.approx(every.min()) and info["vmax"] == pytest.approx(
        every.max())
    # the colour bar (the right edge of each frame) is the same pixels in every frame,
    # while the landscape itself changes from frame to frame
    h, w, _ = frames[0].shape
    bar = (slice(int(0.1 * h), int(0.85 * h)), slice(int(0.84 * w), w))
    for f in frames[1:]:
        np.testing.assert_array_equal(f[bar], frames[0][bar])
    plot = (slice(int(0.2 * h), int(0.8 * h)), slice(int(0.2 * w), int(0.6 * w)))
    assert not np.array_equal(frames[0][plot], frames[-1][plot])
    # and the folder itself, in 3-D on a log scale, also animates
    frames3d, info3d = _gif_frames(js.plot.animate(out, out=tmp_path / "b.gif", log=True,
                                                   style="surface3d"))
    assert len(frames3d) == 4 and info3d["log"]


def test_animate_lines_and_bad_input(tmp_path):
    a = np.linspace(-1, 1, 9)
    lines = [js.Surface(a, None, {"loss": (1 + s) * a**2 + 0.1}, {"step": s})
             for s in (0, 3, 7)]
    frames, info = _gif_frames(js.plot.animate(lines, out=tmp_path / "l.gif"))
    assert len(frames) == 3 and info["steps"] == [0, 3, 7]
    assert info["vmax"] == pytest.approx(8.1)
    with pytest.raises(ValueError, match=".gif or .mp4"):
        js.plot.animate(lines, out=tmp_path / "l.png")
    with pytest.raises(ValueError, match="another grid"):
        js.plot.animate({0: lines[0], 1: js.Surface(a[:5], None, {"loss": a[:5]})},
                        out=tmp_path / "x.gif")
    with pytest.raises(ValueError, match="at least one"):
        js.plot.animate({}, out=tmp_path / "x.gif")
    with pytest.raises(ValueError, match="unknown metric"):
        js.plot.animate(lines, out=tmp_path / "x.gif", metric="accuracy")
    with pytest.raises(ValueError, match="positive"):
        js.plot.animate({0: js.Surface(a, None, {"loss": a})}, out=tmp_path / "x.gif",
                        log=True)
    with pytest.raises(ValueError, match="fps"):
        js.plot.animate(lines, out=tmp_path / "x.gif", fps=0)
    assert not (tmp_path / "x.gif").exists()


def test_animate_mp4_needs_ffmpeg(tmp_path, monkeypatch):
    import shutil

    a = np.linspace(-1, 1, 9)
    lines = {s: js.Surface(a, None, {"loss": (1 + s) * a**2 + 0.1}) for s in (0, 1)}
    if shutil.which("ffmpeg") is None:
        with pytest.raises(RuntimeError, match="needs ffmpeg"):
            js.plot.animate(lines, out=tmp_path / "x.mp4")
        assert not (tmp_path / "x.mp4").exists()
    else:
        assert js.plot.animate(lines, out=tmp_path / "x.mp4").stat().st_size > 0
        monkeypatch.setattr(shutil, "which", lambda name: None)
        with pytest.raises(RuntimeError, match="needs ffmpeg"):
            js.plot.animate(lines, out=tmp_path / "y.mp4")
