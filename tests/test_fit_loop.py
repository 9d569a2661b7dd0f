"""Issue 24 (architecture, round 2), item 3: one resumable fit loop
(jaxsurf._fitloop.run) shared by train.fit and js.connect.fit_curve: epochs,
resume from the last complete checkpoint, the fingerprint of data and settings,
interrupts, progress and atomic log appends."""

from __future__ import annotations

import json
import signal
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsurf as js
from helpers import classification_data
from jaxsurf import _fitloop, _train as train
from jaxsurf._interrupt import Interrupted


# --------------------------------------------------------------------------- a toy fit
def _toy(steps=4):
    """A noisy SGD fit whose every step draws from the key in its state."""
    tx = optax.sgd(0.1, momentum=0.9)

    def epoch(params: Any, state, report):
        key, opt = state["key"], state["opt_state"]
        losses = []
        for i in range(steps):
            key, k = jax.random.split(key)
            noise = jax.random.normal(k, params["w"].shape)
            loss, grad = jax.value_and_grad(lambda p: jnp.sum((p["w"] - noise) ** 2))(params)
            updates, opt = tx.update(grad, opt, params)
            params = optax.apply_updates(params, updates)
            losses.append(float(loss))
            if report is not None:
                report(i + 1)
        return params, {"key": key, "opt_state": opt}, {"loss": float(np.mean(losses))}

    params = {"w": jnp.arange(3.0)}
    return epoch, params, {"key": jax.random.key(0), "opt_state": tx.init(params)}


def _folder(path, **kw):
    return _fitloop.Folder(path, "fit_config.json", "checkpoints", noun="toy",
                           argument="folder", writer="the test", **kw)


def _run(path, epochs=3, settings=None, progress: Any = False, **kw):
    epoch, params, state = _toy()
    return _fitloop.run(epoch, params, state, epochs=epochs, folder=_folder(path, **kw),
                        settings=settings or {"lr": 0.1, "epochs": epochs}, log=None,
                        progress=progress, steps=4)


def _stop_at(label, done):
    def sink(info):
        if info.label == label and info.done == done:
            raise KeyboardInterrupt
    return sink


def test_item3_fit_loop_resumes_after_a_kill_mid_epoch_bit_for_bit(tmp_path):
    straight = _run(tmp_path / "a")
    with pytest.raises(Interrupted) as stop:  # Ctrl-C in the middle of epoch 2
        _run(tmp_path / "b", progress=_stop_at("epoch 2/3", 2))
    assert (stop.value.saved, stop.value.total, stop.value.unit) == (1, 3, "epochs")
    assert str(tmp_path / "b") in str(stop.value)
    resumed = _run(tmp_path / "b")
    np.testing.assert_array_equal(resumed.params["w"], straight.params["w"])
    np.testing.assert_array_equal(jax.random.key_data(resumed.state["key"]),
                                  jax.random.key_data(straight.state["key"]))
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    assert [r["epoch"] for r in _fitloop._atomic.read_json_lines(tmp_path / "b" / "log.jsonl",
                                                                 key="epoch")] == [1, 2, 3]


def test_item3_fit_loop_never_loses_a_finished_epoch_to_ctrl_c_while_saving(tmp_path,
                                                                            monkeypatch):
    # Ctrl-C arrives while epoch 1's row is being appended: it is held back until the
    # row and the checkpoint are written, then stops the run with epoch 1 saved
    append = _fitloop._atomic.append_line

    def interrupted_append(path, line):
        signal.raise_signal(signal.SIGINT)
        return append(path, line)

    monkeypatch.setattr(_fitloop._atomic, "append_line", interrupted_append)
    # Ctrl-C's usual handler, even if pytest started as a background job (SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(Interrupted) as stop:
            _run(tmp_path / "c")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stop.value.saved == 1
    monkeypatch.setattr(_fitloop._atomic, "append_line", append)
    lines = []
    epoch, params, state = _toy()
    fit = _fitloop.run(epoch, params, state, epochs=3, folder=_folder(tmp_path / "c"),
                       settings={"lr": 0.1, "epochs": 3}, log=lines.append,
                       progress=False)
    assert lines[0] == "resuming after epoch 1"
    np.testing.assert_array_equal(fit.params["w"], _run(tmp_path / "d").params["w"])


def test_item3_fit_loop_refuses_other_settings_naming_the_field(tmp_path):
    _run(tmp_path / "c", settings={"lr": 0.1, "data": {"sha256": "aa"}, "epochs": 3})
    with pytest.raises(ValueError, match=r"(?s)toy fit with other settings or data; these "
                                         r"differ:\n  lr: stored 0\.1, requested 0\.2\n  "
                                         r"data\.sha256: stored aa, requested bb\n.*use "
                                         r"another folder"):
        _run(tmp_path / "c", settings={"lr": 0.2, "data": {"sha256": "bb"}, "epochs": 3})
    # epochs may grow (the fit trains on), but not shrink below the epochs done
    assert len(_run(tmp_path / "c", epochs=4,
                    settings={"lr": 0.1, "data": {"sha256": "aa"}, "epochs": 4}).history) == 4
    with pytest.raises(ValueError, match=r"fitted for 4 epochs, more than epochs=2; pass "
                                         r"epochs=4"):
        _run(tmp_path / "c", epochs=2, settings={"lr": 0.1, "data": {"sha256": "aa"},
                                                 "epochs": 2})


def test_item3_fit_loop_tolerates_a_torn_log_tail(tmp_path):
    _run(tmp_path / "c", epochs=2)
    log = tmp_path / "c" / "log.jsonl"
    with open(log, "ab") as handle:
        handle.write(b'{"epoch": 3, "lo')  # killed while appending epoch 3's row
    fit = _run(tmp_path / "c", epochs=3)
    assert [r["epoch"] for r in fit.history] == [1, 2, 3]
    assert [json.loads(r)["epoch"] for r in log.read_text().splitlines()] == [1, 2, 3]


# --------------------------------------------------------------------------- both callers
class TinyNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(8)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(3)(nn.relu(x))


DATA = {"train": classification_data(n=128, features=4),
        "val": classification_data(n=32, features=4, seed=1)}
CONFIG = train.TrainConfig(epochs=3, batch_size=32, eval_batch_size=128, schedule="cosine")


def _curve_fit(folder, epochs=3, **kw):
    def fn(p, batch):
        logits = jnp.tanh(batch["x"] @ p["w1"]) @ p["w2"]
        return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits,
                                                                        batch["y"]).mean()}

    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    a = {"w1": jax.random.normal(k1, (4, 6)), "w2": jax.random.normal(k2, (6, 3))}
    b = {"w1": jax.random.normal(k3, (4, 6)), "w2": jax.random.normal(k4, (6, 3))}
    return js.connect.fit_curve(fn, a, b, DATA["train"], epochs=epochs, batch_size=32,
                                optimizer=optax.adam(0.01), key=jax.random.key(1),
                                checkpoint_dir=folder, log=None, **kw)


def test_item3_train_fit_and_fit_curve_both_run_the_one_loop(tmp_path, monkeypatch):
    calls = []
    run = _fitloop.run

    def spy(*args, **kwargs):
        calls.append(kwargs["folder"].writer)
        return run(*args, **kwargs)

    monkeypatch.setattr(_fitloop, "run", spy)
    train.fit(TinyNet(), DATA, train.TrainConfig(epochs=1, batch_size=32, eval_batch_size=128),
              out_dir=tmp_path / "t", log=None, progress=False)
    _curve_fit(tmp_path / "c", epochs=1)
    assert calls == ["train.fit", "fit_curve"]


def test_item3_fit_curve_resumes_after_a_kill_mid_epoch_bit_for_bit(tmp_path):
    # before: fit_curve took no progress= and a Ctrl-C left a bare KeyboardInterrupt
    straight = _curve_fit(tmp_path / "a")
    with pytest.raises(Interrupted) as stop:
        _curve_fit(tmp_path / "b", progress=_stop_at("epoch 2/3", 2))
    assert (stop.value.saved, stop.value.total) == (1, 3)
    resumed = _curve_fit(tmp_path / "b")
    for x, y in zip(jax.tree.leaves(straight.bends), jax.tree.leaves(resumed.bends)):
        np.testing.assert_array_equal(x, y)
    assert [h["loss"] for h in resumed.metadata["history"]] == \
        [h["loss"] for h in straight.metadata["history"]]


def test_item3_train_fit_resumes_after_a_kill_mid_epoch_bit_for_bit(tmp_path):
    straight = train.fit(TinyNet(), DATA, CONFIG, out_dir=tmp_path / "a", log=None,
                         progress=False)
    with pytest.raises(Interrupted):
        train.fit(TinyNet(), DATA, CONFIG, out_dir=tmp_path / "b", log=None,
                  progress=_stop_at("epoch 3/3", 2))
    resumed = train.fit(TinyNet(), DATA, CONFIG, out_dir=tmp_path / "b", log=None,
                        progress=False)
    for x, y in zip(jax.tree.leaves(straight.variables), jax.tree.leaves(resumed.variables)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert [h["train_loss"] for h in resumed.history] == \
        [h["train_loss"] for h in straight.history]


def test_item3_train_fit_refuses_to_resume_with_changed_settings_or_data(tmp_path):
    # before: a resume with another learning rate, schedule length or data silently
    # continued the saved run with the new settings (config.json was just overwritten)
    config = train.TrainConfig(epochs=1, batch_size=32, eval_batch_size=128)
    train.fit(TinyNet(), DATA, config, out_dir=tmp_path, log=None, progress=False)
    again: dict[str, Any] = {"out_dir": tmp_path, "log": None, "progress": False}
    with pytest.raises(ValueError, match=r"(?s)holds a model fit with other settings or "
                                         r"data; these differ:\n  learning_rate: stored 0\.05, "
                                         r"requested 0\.1\n.*use another out_dir"):
        train.fit(TinyNet(), DATA, train.TrainConfig(**{**config.__dict__,
                                                        "learning_rate": 0.1}), **again)
    with pytest.raises(ValueError, match=r"schedule_steps: stored 4, requested 8"):
        # the cosine schedule decays over all epochs: more epochs would change epoch 1's
        train.fit(TinyNet(), DATA, train.TrainConfig(**{**config.__dict__, "epochs": 2}),
                  **again)
    other = {**DATA, "train": {**DATA["train"], "x": DATA["train"]["x"] + 1.0}}
    with pytest.raises(ValueError, match=r"data\.train\.sha256: stored"):
        train.fit(TinyNet(), other, config, **again)
    # a constant schedule may train on for more epochs
    constant = train.TrainConfig(epochs=1, batch_size=32, eval_batch_size=128,
                                 schedule="constant")
    train.fit(TinyNet(), DATA, constant, out_dir=tmp_path / "k", log=None, progress=False)
    more = train.TrainConfig(**{**constant.__dict__, "epochs": 2})
    result = train.fit(TinyNet(), DATA, more, out_dir=tmp_path / "k", log=None, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_item3_train_fit_resumes_a_run_of_an_earlier_jaxsurf(tmp_path):
    # config.json of an earlier jaxsurf held the TrainConfig only: it still resumes
    config = train.TrainConfig(epochs=2, batch_size=32, eval_batch_size=128)
    train.fit(TinyNet(), DATA, train.TrainConfig(**{**config.__dict__, "epochs": 1}),
              out_dir=tmp_path, log=None, progress=False)
    old = {k: v for k, v in json.loads((tmp_path / "config.json").read_text()).items()
           if k not in ("data", "initial_variables", "schedule_steps")}
    (tmp_path / "config.json").write_text(json.dumps(old))
    lines = []
    result = train.fit(TinyNet(), DATA, config, out_dir=tmp_path, log=lines.append,
                       progress=False)
    assert lines[0].startswith("resuming from epoch 1")
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert "data" in json.loads((tmp_path / "config.json").read_text())
