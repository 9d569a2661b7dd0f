"""Issue 23 (hardening, round 2), the fitting slice: js.connect.fit_curve's data and
resume checks, the append-only logs of fit_curve and train.fit, load_curve on
garbage, curve folders that hold links or FIFOs, and apply_permutation's perms."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxsurf as js
from jaxsurf import _train as train
from jaxsurf._io import atomic as _atomic

connect = js.connect


# --------------------------------------------------------------------------- a tiny MLP
def mlp(params, batch):
    hidden = jnp.tanh(batch["x"] @ params["w1"] + params["b1"])
    return {"loss": jnp.mean((hidden @ params["w2"] - batch["y"][:, None]) ** 2)}


def _params(seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {"w1": jax.random.normal(k1, (3, 4)), "b1": jnp.zeros(4),
            "w2": jax.random.normal(k2, (4, 1))}


A, B = _params(0), _params(1)
RNG = np.random.default_rng(0)
DATA = {"x": RNG.normal(size=(16, 3)).astype(np.float32),
        "y": RNG.normal(size=16).astype(np.float32)}
KW = {"batch_size": 8, "optimizer": optax.adam(0.01), "key": jax.random.key(0), "log": None}


def _fit(folder, epochs=2, data=DATA, **overrides):
    return connect.fit_curve(mlp, A, B, data, epochs=epochs, checkpoint_dir=folder,
                             **{**KW, **overrides})


# --------------------------------------------------------------------------- item 5
def test_item5_fit_curve_refuses_data_whose_arrays_have_different_lengths():
    # before: 64 inputs and 10 labels trained (labels indexed past their end, clamped)
    data = {"x": np.zeros((64, 3), np.float32), "y": np.zeros(10, np.float32)}
    with pytest.raises(ValueError, match=r"different leading \(example\) sizes "
                                         r"\(\['x'\]: 64, \['y'\]: 10\)"):
        connect.fit_curve(mlp, A, B, data, epochs=1, **KW)
    with pytest.raises(TypeError, match=r"data leaf \['y'\] has dtype <U1"):
        connect.fit_curve(mlp, A, B, {"x": DATA["x"], "y": np.array(["a"] * 16)}, epochs=1,
                          **KW)


def test_item5_train_fit_refuses_splits_whose_arrays_have_different_lengths():
    data = {"train": {"x": np.zeros((64, 4), np.float32), "y": np.zeros(10, np.int32)}}
    with pytest.raises(ValueError, match=r"data\['train'\] leaves have different leading"):
        train.fit(None, data, train.TrainConfig(epochs=1, batch_size=8), log=None,
                  progress=False)


# --------------------------------------------------------------------------- item 6
def test_item6_fit_curve_refuses_to_resume_with_other_data_of_the_same_size(tmp_path):
    _fit(tmp_path / "c")
    other = {"x": DATA["x"] + 1.0, "y": DATA["y"]}  # same shapes, other values
    with pytest.raises(ValueError, match=r"(?s)other settings or data.*data\.sha256: stored"):
        _fit(tmp_path / "c", epochs=3, data=other)


def test_item6_fit_curve_refuses_to_resume_with_other_optimizer_settings(tmp_path):
    _fit(tmp_path / "c")
    with pytest.raises(ValueError, match=r"optimizer_fingerprint\.numbers: stored "
                                         r"\[0\.9, 0\.999, 1e-08, 0\.0, -0\.01\], requested "
                                         r"\[0\.9, 0\.999, 1e-08, 0\.0, -0\.05\]"):
        _fit(tmp_path / "c", epochs=3, optimizer=optax.adam(0.05))
    schedule = optax.adam(optax.cosine_decay_schedule(0.01, 4))
    _fit(tmp_path / "d", optimizer=schedule)
    with pytest.raises(ValueError, match="optimizer_fingerprint"):  # the schedule's length
        _fit(tmp_path / "d", epochs=3, optimizer=optax.adam(optax.cosine_decay_schedule(0.01, 6)))
    with pytest.raises(ValueError, match=r"key: stored \[0, 0\], requested \[0, 7\]"):
        _fit(tmp_path / "c", epochs=3, key=jax.random.key(7))


def test_item6_fit_curve_resumes_with_the_same_settings_and_more_epochs(tmp_path):
    straight = connect.fit_curve(mlp, A, B, DATA, epochs=3, **{**KW, "optimizer": optax.adam(0.01)})
    _fit(tmp_path / "c")
    resumed = _fit(tmp_path / "c", epochs=3, optimizer=optax.adam(0.01))  # rebuilt, equal
    np.testing.assert_array_equal(resumed.bends[0]["w1"], straight.bends[0]["w1"])
    assert [h["epoch"] for h in resumed.metadata["history"]] == [1, 2, 3]
    assert resumed.metadata["data"]["content"] == "every byte of 16 examples"


def test_item6_fit_curve_refuses_a_folder_without_a_data_fingerprint(tmp_path):
    _fit(tmp_path / "c")
    config_file = tmp_path / "c" / "fit_config.json"
    old = json.loads(config_file.read_text())
    del old["data"], old["optimizer_fingerprint"]  # as an earlier jaxsurf wrote it
    config_file.write_text(json.dumps(old))
    with pytest.raises(ValueError, match="earlier jaxsurf that did not record the data"):
        _fit(tmp_path / "c", epochs=3)


# --------------------------------------------------------------------------- crash
def test_crash_fit_curve_resumes_after_a_torn_last_log_line(tmp_path):
    # before: json.decoder.JSONDecodeError: Unterminated string ... (unresumable)
    _fit(tmp_path / "c")
    with open(tmp_path / "c" / "log.jsonl", "ab") as handle:
        handle.write(b'{"epoch": 3, "lo')  # killed while appending epoch 3's row
    curve = _fit(tmp_path / "c", epochs=3)
    assert [h["epoch"] for h in curve.metadata["history"]] == [1, 2, 3]
    rows = (tmp_path / "c" / "log.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]


def test_crash_fit_curve_log_row_is_written_before_its_checkpoint(tmp_path):
    # a row logged for an epoch whose checkpoint never landed is dropped on resume
    _fit(tmp_path / "c")
    _atomic.append_line(tmp_path / "c" / "log.jsonl", json.dumps({"epoch": 3, "loss": 9.0}))
    curve = _fit(tmp_path / "c", epochs=3)
    assert [h["epoch"] for h in curve.metadata["history"]] == [1, 2, 3]
    assert curve.metadata["history"][-1]["loss"] != 9.0


def test_crash_fit_config_goes_through_the_atomic_writer(tmp_path, monkeypatch):
    # before: fit_config.json was written with Path.write_text (a kill could leave half)
    _fit(tmp_path / "c", epochs=0)  # writes fit_config.json, trains nothing
    config_file = tmp_path / "c" / "fit_config.json"
    before = config_file.read_bytes()

    def killed(tmp, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic, "replace", killed)
    with pytest.raises(OSError, match="No space left"):
        _fit(tmp_path / "c", epochs=0)
    assert config_file.read_bytes() == before  # the old file, whole
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.endswith(".tmp")]


def test_item6_fit_curve_refuses_checkpoints_without_their_settings(tmp_path):
    _fit(tmp_path / "c")
    (tmp_path / "c" / "fit_config.json").unlink()
    with pytest.raises(ValueError, match="holds curve checkpoints but no fit_config.json"):
        _fit(tmp_path / "c", epochs=3)


def test_crash_train_read_log_ignores_a_torn_last_line(tmp_path):
    # before: json.decoder.JSONDecodeError: Unterminated string starting at: line 1 column 14
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"epoch": 1, "train_loss": 1.0}\n{"epoch": 2, "tr')
    assert train.read_log(log) == [{"epoch": 1, "train_loss": 1.0}]
    _atomic.append_line(log, json.dumps({"epoch": 2, "train_loss": 0.5}))  # cuts the tail
    assert log.read_bytes() == (b'{"epoch": 1, "train_loss": 1.0}\n'
                                b'{"epoch": 2, "train_loss": 0.5}\n')
    log.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"log.jsonl: row 1 is not an object with an "
                                         r"integer 'epoch'"):
        train.read_log(log)


def test_crash_append_line_writes_whole_lines_only(tmp_path):
    with pytest.raises(ValueError, match="must not hold a line break"):
        _atomic.append_line(tmp_path / "log.jsonl", "a\nb")
    assert _atomic.read_json_lines(tmp_path / "missing.jsonl") == []


# --------------------------------------------------------------------------- small ones
def test_small_fit_curve_epochs_fewer_than_the_folder_holds_is_refused(tmp_path):
    # before: epochs=3 on a 5-epoch folder returned metadata epochs 3 with 5 history rows
    _fit(tmp_path / "c", epochs=5)
    with pytest.raises(ValueError, match=r"fitted for 5 epochs, more than epochs=3; .*pass "
                                         r"epochs=5"):
        _fit(tmp_path / "c", epochs=3)
    again = _fit(tmp_path / "c", epochs=5)  # the finished fit, as it is
    assert again.metadata["epochs"] == 5 and len(again.metadata["history"]) == 5


def test_small_apply_permutation_with_missing_group_names_it():
    # before: KeyError: 'hidden_0'
    params = {"Dense_0": {"kernel": jnp.ones((3, 4)), "bias": jnp.zeros(4)},
              "Dense_1": {"kernel": jnp.ones((4, 2)), "bias": jnp.zeros(2)}}
    spec = connect.mlp_spec(params)
    with pytest.raises(ValueError, match=r"perms has no permutation for the spec's group\(s\) "
                                         r"\['hidden_0'\]"):
        connect.apply_permutation(params, spec, {})
    with pytest.raises(ValueError, match=r"it has groups the spec does not: \['Dense_O'\]"):
        connect.apply_permutation(params, spec, {"Dense_O": np.arange(4)})
    with pytest.raises(TypeError, match="perms must be a dict"):
        connect.apply_permutation(params, spec, [np.arange(4)])  # type: ignore[arg-type]


def test_small_load_curve_on_text_garbage_names_the_file(tmp_path):
    # before: ValueError: This file contains pickled (object) data. If you trust the file ...
    garbage = tmp_path / "curve.npz"
    garbage.write_text("hello, not a curve")
    with pytest.raises(ValueError, match=r"curve\.npz is damaged or not a readable jaxsurf "
                                         r"curve file"):
        connect.load_curve(garbage, A)


def test_small_load_curve_on_a_crafted_file_names_the_file(tmp_path):
    curve = connect.line(A, B)
    path = curve.save(tmp_path / "curve.npz")
    with np.load(path) as f:
        arrays = dict(f)
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    crafted = tmp_path / "deep.npz"
    np.savez(crafted, **{**arrays, "header": np.frombuffer(deep, np.uint8)})
    with pytest.raises(ValueError, match=r"deep\.npz: JSON nested more than"):
        connect.load_curve(crafted, A)
    header = json.loads(bytes(arrays["header"]).decode())
    for change, match in (({"num_points": 10**9}, "damaged header"),
                          ({"kind": "spline"}, "damaged header"),
                          ({"format": "other"}, "has format 'other'")):
        bad = tmp_path / "bad.npz"
        text = json.dumps({**header, **change}).encode()
        np.savez(bad, **{**arrays, "header": np.frombuffer(text, np.uint8)})
        with pytest.raises(ValueError, match=match):
            connect.load_curve(bad, A)
    wrong = tmp_path / "wrong.npz"  # a leaf whose stored shape is not the params'
    np.savez(wrong, **{**arrays, "point1_leaf0": np.zeros((4000, 4000), np.float32)})
    with pytest.raises(ValueError, match=r"wrong\.npz: array 'point1_leaf0' has shape "
                                         r"\(4000, 4000\), expected \(4,\)"):
        connect.load_curve(wrong, A)
    assert connect.load_curve(path, A).kind == "polychain"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_small_curve_folder_opens_only_regular_files(tmp_path):
    _fit(tmp_path / "c")
    log = tmp_path / "c" / "log.jsonl"
    log.unlink()
    os.mkfifo(log)  # a reader would block forever
    with pytest.raises(ValueError, match=r"log\.jsonl is a FIFO \(named pipe\), not a regular "
                                         r"file"):
        _fit(tmp_path / "c", epochs=3)
    log.unlink()
    config = tmp_path / "c" / "fit_config.json"
    (tmp_path / "elsewhere.json").write_bytes(config.read_bytes())
    config.unlink()
    config.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ValueError, match=r"fit_config\.json is a symbolic link, not a regular "
                                         r"file"):
        _fit(tmp_path / "c", epochs=3)
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is a FIFO"):
        connect.load_curve(fifo, A)
