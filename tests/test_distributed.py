"""Two processes on localhost under ``jax.distributed`` (gloo CPU collectives), two
CPU devices each: every process gets the full, correct surface."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxsurf as js
from helpers import classification_data, dense_params, mlp_fn

TESTS = os.path.dirname(os.path.abspath(__file__))
ALPHAS, BETAS = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3)  # 15 points on 4 devices
TIMEOUT = 240

CHILD = r"""
import os, sys, json
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path[:0] = [{tests!r}, {repo!r}]  # this checkout's jaxsurf, whatever is installed
import jax
import numpy as np
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize("localhost:{port}", num_processes=2, process_id={pid})
import test_distributed as t
import jaxsurf as js
arrays, meta = t.surfaces(store={store!r})
np.savez({out!r}, **arrays)
with open({meta!r}, "w") as handle:
    json.dump(meta, handle)
jax.distributed.shutdown()
"""


def problem():
    params = dense_params(jax.random.key(0))
    d1, d2 = js.random_plane(jax.random.key(1), params)
    return params, d1, d2, classification_data(n=103)


def surfaces(store=None, devices=None):
    """A plane (points split over devices), a single point and a 3-point line (data
    split over devices, ragged last batch) and a stored plane: ``(arrays, facts)``."""
    params, d1, d2, data = problem()
    plane = js.evaluate_plane(mlp_fn, params, d1, d2, data, ALPHAS, BETAS, batch_size=16,
                              devices=devices, progress=False)
    line = js.evaluate_line(mlp_fn, params, d1, data, [-0.5, 0.25, 1.0], batch_size=5,
                            devices=devices, progress=False)
    point = js.evaluate_points(mlp_fn, params, [d1, d2], data, [[0.3, -0.2]], batch_size=7,
                               devices=devices, progress=False)
    out = {"plane_loss": plane.metrics["loss"], "plane_accuracy": plane.metrics["accuracy"],
           "line_loss": line.metrics["loss"], "point_loss": point["loss"]}
    meta = {"plane_mesh": plane.metadata["mesh"], "line_mesh": line.metadata["mesh"],
            "num_processes": plane.metadata["num_processes"]}
    if store is not None:
        stored = js.evaluate_plane(mlp_fn, params, d1, d2, data, ALPHAS, BETAS, batch_size=16,
                                   devices=devices, store=store, chunk_size=4, progress=False)
        again = js.evaluate_plane(mlp_fn, params, d1, d2, data, ALPHAS, BETAS, batch_size=16,
                                  devices=devices, store=store, chunk_size=4, progress=False)
        out["stored_loss"] = stored.metrics["loss"]
        out["again_loss"] = again.metrics["loss"]
        meta["stored_evaluated"] = stored.metadata["points_evaluated"]
        meta["again_evaluated"] = again.metadata["points_evaluated"]
    return out, meta


def free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distributed")
    port, store = free_port(), tmp / "plane.store"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    children = []
    for pid in range(2):
        code = CHILD.format(tests=TESTS, repo=os.path.dirname(TESTS), port=port, pid=pid,
                            store=str(store),
                            out=str(tmp / f"out{pid}.npz"), meta=str(tmp / f"meta{pid}.json"))
        children.append(subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         text=True))
    errors = []
    for child in children:
        try:
            _, err = child.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for c in children:
                c.kill()
            pytest.fail(f"the two processes did not finish within {TIMEOUT} s")
        errors.append(err)
    for child, err in zip(children, errors):
        assert child.returncode == 0, err[-3000:]
    results = []
    for pid in range(2):
        with np.load(tmp / f"out{pid}.npz") as contents:
            arrays = {k: contents[k] for k in contents.files}
        meta = json.loads((tmp / f"meta{pid}.json").read_text())
        results.append((arrays, meta))
    return results, store


def test_each_process_gets_the_full_correct_surface(two_processes):
    results, _ = two_processes
    want, _ = surfaces(devices=jax.local_devices()[:1])
    for arrays, meta in results:
        assert meta["num_processes"] == 2
        assert meta["plane_mesh"] == {"points": 4, "data": 1}
        assert meta["line_mesh"] == {"points": 1, "data": 4}  # data split over both hosts
        assert arrays["plane_loss"].shape == (len(ALPHAS), len(BETAS))
        for name in ("plane_loss", "plane_accuracy", "line_loss", "point_loss"):
            np.testing.assert_allclose(arrays[name], want[name], rtol=2e-6, atol=1e-7)
    first, second = results[0][0], results[1][0]
    for name in first:
        assert np.array_equal(first[name], second[name])  # bit for bit the same everywhere


def test_process_zero_keeps_the_store_for_everyone(two_processes):
    results, store = two_processes
    parts = list(Path(store).glob("part-*.npz"))
    assert len(parts) == 1  # only process 0 wrote
    for arrays, meta in results:
        assert meta["stored_evaluated"] == 15 and meta["again_evaluated"] == 0
        assert np.array_equal(arrays["again_loss"], arrays["stored_loss"])
        np.testing.assert_allclose(arrays["stored_loss"], arrays["plane_loss"], rtol=1e-6)
