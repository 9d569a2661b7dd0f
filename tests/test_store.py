"""store=PATH: killed runs resume bit for bit, other requests are refused,
several processes share one store, NaN survives."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from helpers import classification_data, mlp_fn
from jaxsurf import _store as store_lib

TESTS = os.path.dirname(os.path.abspath(__file__))
ALPHAS, BETAS = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 4)  # 20 points
OPTIONS = {"batch_size": 16, "chunk_size": 2}  # 10 chunks of 2 points


def problem(seed=0):
    """Params, two directions and data built with numpy only (cheap in a subprocess)."""
    rng = np.random.default_rng(seed)

    def mlp_like():
        return {f"Dense_{i}": {"kernel": rng.normal(size=(a, b)).astype(np.float32),
                               "bias": rng.normal(size=b).astype(np.float32)}
                for i, (a, b) in enumerate([(5, 4), (4, 3)])}

    return mlp_like(), mlp_like(), mlp_like(), classification_data(n=40)


def run_plane(store, **kwargs):
    params, d1, d2, data = problem()
    return js.evaluate_plane(mlp_fn, params, d1, d2, data, ALPHAS, BETAS, store=store,
                             **{**OPTIONS, **kwargs})


CHILD = """
import os, sys, time
sys.path.insert(0, {tests!r})
from test_store import run_plane

def pace(info):  # a deliberately slow run: a pause after every chunk
    time.sleep({delay})
    if info.done >= {park_after}:
        time.sleep(300)  # never finishes on its own: it is killed here or earlier
    while {wait_for!r} and info.done and not os.path.exists({wait_for!r}):
        time.sleep(0.02)  # waits for the other writer (see the two-process test)

run_plane({store!r}, progress=pace)
"""


def start_child(store, delay, park_after=10**9, wait_for=None):
    code = CHILD.format(tests=TESTS, store=str(store), delay=delay, park_after=park_after,
                        wait_for=str(wait_for or ""))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def points_in(store):
    """Distinct points finished in a store (read straight from its part files)."""
    done = set()
    for part in Path(store).glob("part-*.npz"):
        with np.load(part) as contents:
            done.update(contents["indices"].tolist())
    return len(done)


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted run, without a store."""
    return run_plane(None)


def test_killed_run_resumes_with_exactly_the_uninterrupted_result(tmp_path, reference):
    store = tmp_path / "plane.store"
    child = start_child(store, delay=0.02, park_after=6)
    deadline = time.monotonic() + 120
    while not store.exists() or points_in(store) < 2:
        assert child.poll() is None, f"child ended early: {child.stderr.read()}"
        assert time.monotonic() < deadline, "child wrote no chunk in time"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    kept = points_in(store)
    assert 2 <= kept <= 6  # the killed run lost at most the chunk in flight

    log = []
    resumed = run_plane(store, progress=log.append)
    assert resumed.metadata["points_evaluated"] == 20 - kept < 20
    assert resumed.metadata["points_from_store"] == kept
    assert log[-1].total == 20 - kept and log[-1].stored == kept
    for name in reference.metrics:
        assert same_bits(resumed.metrics[name], reference.metrics[name])
    again = run_plane(store)  # complete: nothing evaluated, same bits
    assert again.metadata["points_evaluated"] == 0
    assert all(same_bits(again.metrics[k], reference.metrics[k]) for k in reference.metrics)


def test_two_processes_writing_one_store_both_finish(tmp_path, reference):
    """This process and a child write one store at the same time: each waits after its
    first chunk until the other has written one, so both are sure to overlap."""
    store = tmp_path / "shared.store"
    go = tmp_path / "go"
    child = start_child(store, delay=0.0, wait_for=go)
    deadline = time.monotonic() + 120

    def meet_the_child(info):
        if info.done == 0 or go.exists():
            return
        while len(list(store.glob("part-*.npz"))) < 2:
            assert child.poll() is None, f"child ended early: {child.stderr.read()}"
            assert time.monotonic() < deadline, "the child wrote no chunk in time"
            time.sleep(0.02)
        go.touch()

    ours = run_plane(store, progress=meet_the_child)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert len(list(store.glob("part-*.npz"))) == 2  # one part file each, none clobbered
    assert 0 < ours.metadata["points_evaluated"] <= 20
    merged = run_plane(store)
    assert merged.metadata["points_evaluated"] == 0
    assert all(same_bits(merged.metrics[k], reference.metrics[k]) for k in reference.metrics)


class Stop(Exception):
    pass


def stop_after(points):
    def callback(info):
        if info.done >= points:
            raise Stop
    return callback


def test_store_with_points_split_over_devices(tmp_path):
    params, d1, _, data = problem()
    devices = jax.local_devices()[:4]
    alphas = np.linspace(-1, 1, 11)
    whole = js.evaluate_line(mlp_fn, params, d1, data, alphas, devices=devices, chunk_size=1)
    store = tmp_path / "s"
    with pytest.raises(Stop):  # chunks of 4 points, one per device
        js.evaluate_line(mlp_fn, params, d1, data, alphas, devices=devices, chunk_size=1,
                         store=store, progress=stop_after(4))
    resumed = js.evaluate_line(mlp_fn, params, d1, data, alphas, devices=devices,
                               chunk_size=1, store=store)
    assert resumed.metadata["points_evaluated"] == 7
    assert all(same_bits(resumed.metrics[k], whole.metrics[k]) for k in whole.metrics)


def test_stream_store_resumes_and_matches_reading_once(tmp_path):
    params, d1, d2, data = problem()
    batches = [{k: v[i:i + 15] for k, v in data.items()} for i in range(0, 40, 15)]
    once = js.evaluate_plane(mlp_fn, params, d1, d2, iter(batches), ALPHAS, BETAS, chunk_size=4)
    store = tmp_path / "stream"
    with pytest.raises(Stop):
        js.evaluate_plane(mlp_fn, params, d1, d2, batches, ALPHAS, BETAS, chunk_size=4,
                          store=store, progress=stop_after(4))
    resumed = js.evaluate_plane(mlp_fn, params, d1, d2, batches, ALPHAS, BETAS, chunk_size=4,
                                store=store)
    assert resumed.metadata["points_evaluated"] == 16
    assert same_bits(resumed.metrics["loss"], once.metrics["loss"])
    with pytest.raises(ValueError, match="one-shot iterator"):
        js.evaluate_plane(mlp_fn, params, d1, d2, iter(batches), ALPHAS, BETAS, store=store)
    with pytest.raises(store_lib.StoreMismatchError, match="data.num_examples: stored 40, "
                                                           "requested 39"):
        js.evaluate_plane(mlp_fn, params, d1, d2, batches[:2] + [{k: v[:-1] for k, v in
                                                                  batches[2].items()}],
                          ALPHAS, BETAS, chunk_size=4, store=store)


def snapshot(store):
    return {p.name: p.read_bytes() for p in Path(store).iterdir()}


@pytest.fixture(scope="module")
def complete_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("complete") / "s"
    run_plane(store)
    return store


@pytest.mark.parametrize("change, field", [
    ({"d1": "other"}, "directions"),
    ({"params": "other"}, "origin"),
    ({"alphas": np.linspace(-1, 1, 6)}, "coefficients.shape"),
    ({"alphas": ALPHAS * 2}, "coefficients.sha256"),
    ({"data": "other"}, "data.sha256"),
    ({"batch_size": 8}, "batch_size"),
    ({"fn": "loss only"}, "metric_names"),
])
def test_store_for_another_request_is_refused_and_left_alone(tmp_path, complete_store,
                                                             change, field):
    params, d1, d2, data = problem()
    other = problem(seed=1)
    args = {"fn": mlp_fn, "params": params, "d1": d1, "data": data, "alphas": ALPHAS,
            "batch_size": OPTIONS["batch_size"]}
    store = tmp_path / "s"
    shutil.copytree(complete_store, store)
    before = snapshot(store)
    replacements = {"d1": other[1], "params": other[0], "data": classification_data(40, seed=1),
                    "fn": lambda p, b: mlp_fn(p, b)["loss"]}
    for key, value in change.items():
        args[key] = replacements[key] if isinstance(value, str) else value
    with pytest.raises(store_lib.StoreMismatchError,
                       match=rf"(?s)fields differ.*{field}: stored .*, requested "):
        js.evaluate_plane(args["fn"], args["params"], args["d1"], d2, args["data"],
                          args["alphas"], BETAS, batch_size=args["batch_size"], store=store)
    assert snapshot(store) == before  # neither reused nor overwritten


def test_store_keeps_nan_and_inf_bit_for_bit(tmp_path):
    params, d1, d2, data = problem()

    def diverging(p, batch):
        loss = mlp_fn(p, batch)["loss"]
        k = p["Dense_0"]["kernel"][0, 0]
        bad = jnp.where(k > params["Dense_0"]["kernel"][0, 0], jnp.nan, jnp.inf)
        return {"loss": jnp.where(jnp.abs(k - params["Dense_0"]["kernel"][0, 0]) > 0.5, bad,
                                  loss)}

    store = tmp_path / "s"
    with pytest.warns(RuntimeWarning, match="non-finite"):
        first = js.evaluate_line(diverging, params, d1, data, ALPHAS, store=store, chunk_size=2)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        again = js.evaluate_line(diverging, params, d1, data, ALPHAS, store=store)
    loss = first.metrics["loss"]
    assert np.isnan(loss).any() and np.isinf(loss).any() and np.isfinite(loss).any()
    assert again.metadata["points_evaluated"] == 0
    assert same_bits(again.metrics["loss"], loss)
    assert again.metadata["nonfinite"] == first.metadata["nonfinite"] == {
        "loss": int((~np.isfinite(loss)).sum())}


def test_bad_store_paths_and_files_give_clear_errors(tmp_path):
    params, d1, _, data = problem()
    line = lambda store: js.evaluate_line(mlp_fn, params, d1, data, [0.0, 1.0], store=store)
    (tmp_path / "file").write_text("x")
    with pytest.raises(store_lib.StoreError, match="is a file"):
        line(tmp_path / "file")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "notes.txt").write_text("x")
    with pytest.raises(store_lib.StoreError, match="not a jaxsurf store"):
        line(tmp_path / "dir")
    good = tmp_path / "good"
    line(good)
    (good / ".part-1-dead.npz.0bad.tmp").write_bytes(b"half a file")  # a killed writer's temp
    assert line(good).metadata["points_evaluated"] == 0
    part = next(good.glob("part-*.npz"))
    part.write_bytes(part.read_bytes()[:50])
    with pytest.raises(store_lib.StoreError, match=rf"{part.name} is damaged.*delete it"):
        line(good)
    part.unlink()
    assert line(good).metadata["points_evaluated"] == 2
    request = json.loads((good / "request.json").read_text())
    (good / "request.json").write_text(json.dumps({**request, "format_version": 99}))
    with pytest.raises(store_lib.StoreError, match="newer than this jaxsurf"):
        line(good)


def test_data_fingerprint_covers_all_bytes_or_a_stated_sample(monkeypatch):
    data = classification_data(n=40)
    full = store_lib.data_fingerprint(data, 40)
    assert full["content"] == "every byte of 40 examples"
    changed = {"x": data["x"].copy(), "y": data["y"]}
    changed["x"][17, 3] += 1e-6
    assert store_lib.data_fingerprint(changed, 40)["sha256"] != full["sha256"]
    monkeypatch.setattr(store_lib, "FULL_HASH_BYTES", 0)
    monkeypatch.setattr(store_lib, "SAMPLE_ROWS", 5)
    sampled = store_lib.data_fingerprint(data, 40)
    assert sampled["content"] == "5 evenly spaced of 40 examples"  # rows 0, 10, 20, 29, 39
    changed["x"][17, 3] = data["x"][17, 3]
    changed["x"][39, 0] += 1.0
    assert store_lib.data_fingerprint(changed, 40)["sha256"] != sampled["sha256"]
