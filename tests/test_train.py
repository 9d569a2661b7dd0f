import json

import flax.linen as nn
import jax
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _train as train


class TinyNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(16)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(3)(nn.relu(x))


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centres = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]], np.float32)
    return {"x": (centres[y] + rng.normal(size=(n, 4))).astype(np.float32), "y": y}


DATA = {"train": blobs(512, 0), "val": blobs(200, 1)}
CONFIG = train.TrainConfig(epochs=2, batch_size=64, optimizer="nesterov", learning_rate=0.05,
                           schedule="cosine")


@pytest.mark.slow
def test_one_epoch_lowers_the_loss_and_logs(tmp_path):
    model = TinyNet()
    variables = model.init(jax.random.key(0), DATA["train"]["x"][:2])
    from jaxsurf._flax import linen_metrics_fn
    before = linen_metrics_fn(model)(variables, DATA["val"])
    result = train.fit(model, DATA, CONFIG, out_dir=tmp_path, variables=variables, log=None)
    assert result.history[-1]["val_loss"] < float(before["loss"])
    assert result.history[-1]["val_accuracy"] > 0.6  # chance is 1/3
    rows = train.read_log(tmp_path / "log.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 2
    # BatchNorm statistics moved during training
    assert not np.allclose(result.variables["batch_stats"]["BatchNorm_0"]["mean"], 0)
    fig = js.plot.training_history(result.history, out=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0 and fig is not None


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_interrupted_run_resumes_exactly_from_the_last_saved_epoch(tmp_path):
    model = TinyNet()
    config = train.TrainConfig(**{**CONFIG.__dict__, "epochs": 3})
    straight = train.fit(model, DATA, config, out_dir=tmp_path / "a", log=None)

    def crash_after_epoch_2(line):
        if line.startswith("epoch=2"):
            raise Interrupted

    with pytest.raises(Interrupted):
        train.fit(model, DATA, config, out_dir=tmp_path / "b", log=crash_after_epoch_2)
    lines = []
    resumed = train.fit(model, DATA, config, out_dir=tmp_path / "b", log=lines.append)
    assert lines[0].startswith("resuming from epoch 2")
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for a, b in zip(jax.tree.leaves(straight.variables), jax.tree.leaves(resumed.variables)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_config_errors():
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        train.TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="unknown loss"):
        train.TrainConfig(loss="hinge")


def test_best_epoch_prefers_validation_accuracy_then_loss():
    assert train.best_epoch([]) == 0
    assert train.best_epoch([{"epoch": 1, "val_accuracy": 0.8, "val_loss": 0.5},
                             {"epoch": 2, "val_accuracy": 0.7, "val_loss": 0.4}]) == 1
    assert train.best_epoch([{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.4}]) == 2
    assert train.best_epoch([{"epoch": 1, "train_loss": 0.3}, {"epoch": 2, "train_loss": 0.4}]) == 1
