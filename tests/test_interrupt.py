"""Ctrl-C and SIGTERM: the store stays consistent, the library raises
jaxsurf.interrupt.Interrupted (a KeyboardInterrupt) after saving, commands end
with one line and status 130, and a rerun finishes from the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from helpers import classification_data, dense_params, mlp_fn
from jaxsurf import _cli as cli, _interrupt as interrupt, _train as train

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


class SlowNet(nn.Module):
    """A tiny classifier made slow on purpose (40 dense 128x128 layers with one
    shared kernel), so an 11x11 plane takes seconds: no host callbacks."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.relu(nn.Dense(128)(x))
        w = self.param("deep", nn.initializers.orthogonal(), (128, 128))
        h = jax.lax.fori_loop(0, 40, lambda i, h: jnp.tanh(h @ w), h)
        return nn.Dense(3)(h)


def slow_net() -> SlowNet:
    return SlowNet()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("interrupt")
    data = classification_data(n=64, features=4)
    model = SlowNet()
    variables = model.init(jax.random.key(0), data["x"][:1])
    with js.TrajectoryRecorder(root / "traj") as recorder:
        recorder.save(0, variables["params"])
    np.savez(root / "eval.npz", **data)
    return root


def command(root: Path) -> list[str]:
    return ["surface", "--model", "test_interrupt:slow_net", "--checkpoint", str(root / "traj"),
            "--data", str(root / "eval.npz"), "--x", "-1:1:11", "--y", "-1:1:11",
            "--chunk-size", "3", "--out", str(root / "out")]


def points_in(store: Path) -> int:
    done = set()
    for part in store.glob("part-*.npz"):
        try:
            with np.load(part) as contents:
                done.update(contents["indices"].tolist())
        except (OSError, ValueError, KeyError):  # being replaced right now
            pass
    return len(done)


@pytest.mark.parametrize("signum", [  # a subprocess and a rerun: 13-26 s here
    signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_interrupted_command_says_one_line_and_a_rerun_resumes(checkpoint, capsys, signum):
    out = checkpoint / "out"
    store = out / "plane.store"
    if out.exists():  # the other signal's run: start afresh
        import shutil
        shutil.rmtree(out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
           "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    # A shell's background job (`cmd &`) starts with SIGINT ignored, and a child inherits
    # that: the command under test gets Ctrl-C's usual handler whatever started pytest.
    launch = ("import runpy, signal, sys; signal.signal(signal.SIGINT, "
              "signal.default_int_handler); sys.argv[0] = 'jaxsurf'; "
              "runpy.run_module('jaxsurf', run_name='__main__')")
    child = subprocess.Popen([sys.executable, "-c", launch, *command(checkpoint)], env=env,
                             cwd=checkpoint, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 180
    while points_in(store) < 6:
        assert child.poll() is None, f"ended before the signal: {child.communicate()}"
        assert time.monotonic() < deadline, "no points stored in time"
        time.sleep(0.05)
    child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    assert child.returncode == interrupt.EXIT_STATUS, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and last.endswith(
        f"/121 points saved in {store}; rerun the same command to resume"), err
    assert "Traceback" not in err and err.count("interrupted") == 1
    saved = int(last.split()[1].split("/")[0])
    assert 6 <= saved < 121 and points_in(store) == saved  # the store says the same

    code = cli.main(command(checkpoint))
    _, err = capsys.readouterr()
    assert code == 0, err
    plane = js.Surface.load(out / "plane.npz")
    assert plane.metadata["points_from_store"] == saved
    assert plane.metadata["points_evaluated"] == 121 - saved < 121
    assert f"resuming: {saved} of 121 points from the store" in err


def test_library_raises_interrupted_after_saving(tmp_path):
    params = dense_params(jax.random.key(0))
    d = dense_params(jax.random.key(1))
    data = classification_data(n=40)
    grid = np.linspace(-1, 1, 12)

    def stop_after_two_chunks(info):
        if info.done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(interrupt.Interrupted) as caught:
        js.evaluate_line(mlp_fn, params, d, data, grid, chunk_size=4, store=tmp_path / "s",
                         devices=jax.devices()[:1], progress=stop_after_two_chunks)
    stop = caught.value
    assert isinstance(stop, KeyboardInterrupt)
    assert (stop.saved, stop.total, stop.where) == (8, 12, str(tmp_path / "s"))
    assert str(stop) == (f"interrupted: 8/12 points saved in {tmp_path / 's'}; "
                         f"rerun the same command to resume")
    line = js.evaluate_line(mlp_fn, params, d, data, grid, chunk_size=4, store=tmp_path / "s",
                            devices=jax.devices()[:1], progress=False)
    assert line.metadata["points_from_store"] == 8
    plain = js.evaluate_line(mlp_fn, params, d, data, grid, progress=False)
    np.testing.assert_array_equal(line.metrics["loss"], plain.metrics["loss"])
    with pytest.raises(KeyboardInterrupt) as caught:  # no store: nothing to report
        js.evaluate_line(mlp_fn, params, d, data, grid, chunk_size=4,
                         progress=stop_after_two_chunks)
    assert not isinstance(caught.value, interrupt.Interrupted)


def test_signals_during_a_write_wait_for_it():
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda s, f: seen.append("handled"))
    try:
        with interrupt.deferred([signal.SIGUSR1]):
            signal.raise_signal(signal.SIGUSR1)
            seen.append("write finished")
        assert seen == ["write finished", "handled"]
    finally:
        signal.signal(signal.SIGUSR1, previous)
    # Ctrl-C's usual handler, even if pytest started as a background job (SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupt.deferred():
                signal.raise_signal(signal.SIGINT)
                seen.append("second write")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen[-1] == "second write"


def test_an_ignored_sigint_stays_ignored_through_a_write():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt.deferred():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_run_command_turns_interrupts_into_one_line(capsys):
    def stopped():
        raise interrupt.Interrupted(3, 9, "runs/x/train", unit="epochs")

    assert interrupt.run_command(stopped) == 130
    assert capsys.readouterr().err == ("interrupted: 3/9 epochs saved in runs/x/train; rerun "
                                       "the same command to resume\n")

    def terminated():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives first

    assert interrupt.run_command(terminated) == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert interrupt.run_command(lambda: 3) == 3 and interrupt.run_command(lambda: None) == 0


class TinyNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(3)(nn.relu(nn.Dense(8)(x)))


def test_training_reports_steps_and_stops_cleanly(tmp_path):
    data = {"train": classification_data(n=256, features=4),
            "val": classification_data(n=64, features=4, seed=1)}
    config = train.TrainConfig(epochs=3, batch_size=32, eval_batch_size=256)
    reports = []

    def stop_in_epoch_2(info):
        reports.append(info)
        if info.label == "epoch 2/3" and info.done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(interrupt.Interrupted) as caught:
        train.fit(TinyNet(), data, config, out_dir=tmp_path, log=None,
                  progress=stop_in_epoch_2)
    assert (caught.value.saved, caught.value.total, caught.value.unit) == (1, 3, "epochs")
    first = [i for i in reports if i.label == "epoch 1/3"]
    assert first[0].done == 0 and first[-1].done == first[-1].total == 8
    assert all(i.unit == "steps" for i in reports)
    lines = []
    result = train.fit(TinyNet(), data, config, out_dir=tmp_path, log=lines.append,
                       progress=False)
    assert lines[0].startswith("resuming from epoch 1")
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
