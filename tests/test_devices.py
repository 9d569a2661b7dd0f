"""Work spread over the 4 simulated CPU devices (conftest.py): points split over
devices, data split over devices, meshes given by the caller, bf16 compute."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

import jaxsurf as js
from helpers import classification_data, dense_params, mlp_fn
from jaxsurf import _distributed as distributed

ONE = jax.local_devices()[:1]


@pytest.fixture(scope="module")
def problem():
    params = dense_params(jax.random.key(0))
    d1, d2 = js.random_plane(jax.random.key(1), params)
    return params, d1, d2, classification_data(n=103)


def test_default_is_every_local_device_and_equals_one_device(problem):
    params, d1, d2, data = problem
    alphas, betas = np.linspace(-1, 1, 7), np.linspace(-0.5, 0.5, 3)  # 21: last chunk padded
    single = js.evaluate_plane(mlp_fn, params, d1, d2, data, alphas, betas, batch_size=16,
                               devices=ONE)
    spread = js.evaluate_plane(mlp_fn, params, d1, d2, data, alphas, betas, batch_size=16)
    assert len(jax.local_devices()) == 4
    assert spread.metadata["num_devices"] == 4 and spread.metadata["mesh"] == {"points": 4,
                                                                                "data": 1}
    assert single.metadata["num_devices"] == 1
    for name in single.metrics:
        np.testing.assert_allclose(spread.metrics[name], single.metrics[name], rtol=1e-6)


@pytest.mark.parametrize("n, batch_size", [(103, 10), (103, 103), (7, 3), (40, 8), (5, 16)])
def test_line_with_data_parallelism_equals_one_device(problem, n, batch_size):
    """Ragged last batch, and full batches padded to a multiple of the 4 devices."""
    params, d1, _, _ = problem
    data = classification_data(n=n, seed=n)
    alphas = [-0.5, 0.25, 1.0]
    single = js.evaluate_line(mlp_fn, params, d1, data, alphas, batch_size=batch_size,
                              devices=ONE)
    mesh = Mesh(np.array(jax.local_devices()[:4]), ("data",))
    split = js.evaluate_line(mlp_fn, params, d1, data, alphas, batch_size=batch_size,
                             mesh=mesh)
    assert split.metadata["mesh"] == {"points": 1, "data": 4}
    for name in single.metrics:
        np.testing.assert_allclose(split.metrics[name], single.metrics[name], rtol=2e-6,
                                   atol=1e-7)


def test_a_line_of_few_points_over_many_batches_splits_the_data(problem):
    params, d1, d2, data = problem
    line = js.evaluate_line(mlp_fn, params, d1, data, [-0.5, 0.25, 1.0], batch_size=5)
    assert line.metadata["mesh"] == {"points": 1, "data": 4}  # 20 full batches + 1 short
    want = js.evaluate_line(mlp_fn, params, d1, data, [-0.5, 0.25, 1.0], batch_size=5,
                            devices=ONE)
    np.testing.assert_allclose(line.metrics["loss"], want.metrics["loss"], rtol=2e-6)
    one = js.evaluate_points(mlp_fn, params, [d1, d2], data, [[0.3, -0.2]], batch_size=9)
    moved = jax.tree.map(lambda x, u, v: x + 0.3 * u - 0.2 * v, params, d1, d2)
    np.testing.assert_allclose(one["loss"], [float(mlp_fn(moved, data)["loss"])], rtol=2e-6)
    two = js.evaluate_points(mlp_fn, params, [d1, d2], data, [[0.3, -0.2], [0.0, 0.0]],
                             batch_size=8)
    np.testing.assert_allclose(two["loss"], [one["loss"][0], float(mlp_fn(params, data)["loss"])],
                               rtol=2e-6)


def test_a_given_mesh_fixes_the_split(problem):
    params, d1, d2, data = problem
    grid = np.linspace(-1, 1, 5)
    base = js.evaluate_plane(mlp_fn, params, d1, d2, data, grid, grid, batch_size=20,
                             devices=ONE)
    devices = np.array(jax.local_devices()[:4])
    for mesh in (Mesh(devices.reshape(2, 2), ("data", "points")),
                 Mesh(devices, ("data",)), Mesh(devices, ("points",))):
        s = js.evaluate_plane(mlp_fn, params, d1, d2, data, grid, grid, batch_size=20,
                              mesh=mesh)
        assert s.metadata["mesh"] == {k: int(dict(mesh.shape).get(k, 1))
                                      for k in ("points", "data")}
        np.testing.assert_allclose(s.metrics["loss"], base.metrics["loss"], rtol=1e-6)


def test_stream_spreads_points_only(problem):
    params, d1, d2, data = problem
    batches = [{k: v[i:i + 25] for k, v in data.items()} for i in range(0, 103, 25)]
    streamed = js.evaluate_line(mlp_fn, params, d1, batches, [0.1, 0.2])
    want = js.evaluate_line(mlp_fn, params, d1, data, [0.1, 0.2], devices=ONE)
    assert streamed.metadata["mesh"] == {"points": 4, "data": 1}
    np.testing.assert_allclose(streamed.metrics["loss"], want.metrics["loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="needs in-memory data"):
        js.evaluate_line(mlp_fn, params, d1, batches, [0.1],
                         mesh=Mesh(np.array(jax.local_devices()[:2]), ("data",)))


def test_bad_device_options_are_refused(problem):
    params, d1, _, data = problem
    mesh = Mesh(np.array(ONE), ("points",))
    with pytest.raises(ValueError, match="devices= or mesh=, not both"):
        js.evaluate_line(mlp_fn, params, d1, data, [0.0], devices=ONE, mesh=mesh)
    # an axis other than "points"/"data" is a model axis (issue 25): params not sharded
    # over it are a copy on every device, and the values are the same
    model = js.evaluate_line(mlp_fn, params, d1, data, [0.0], progress=False,
                             mesh=Mesh(np.array(ONE), ("x",)))
    assert model.metadata["mesh"] == {"points": 1, "data": 1, "x": 1}
    with pytest.raises(ValueError, match="devices is empty"):
        js.evaluate_line(mlp_fn, params, d1, data, [0.0], devices=[])
    with pytest.raises(ValueError, match="compute_dtype must be a float dtype"):
        js.evaluate_line(mlp_fn, params, d1, data, [0.0], compute_dtype=jnp.int32)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        js.evaluate_line(mlp_fn, params, d1, data, [0.0], chunk_size=0)


def test_plan_mesh_lets_every_device_finish_soonest():
    devices = jax.local_devices()[:4]
    shape = lambda n, **kw: tuple(distributed.plan_mesh(n, devices, **kw).devices.shape)
    assert shape(441, full_batches=20) == (4, 1)
    assert shape(3, full_batches=20) == (1, 4)  # 3 x 5 steps, not 1 x 20
    assert shape(2, full_batches=12, short_batch=True) == (2, 2)  # 1 x 7, not 2 x 4
    assert shape(3, full_batches=2, short_batch=True) == (4, 1)  # too few batches to split
    assert shape(5, full_batches=12) == (1, 4)  # 5 x 3 steps, not 2 x 12
    assert shape(51, full_batches=20) == (4, 1)  # 13 x 20 vs 51 x 5: under 10 % saved
    assert shape(1) == (1, 4)
    assert shape(100, full_batches=20, chunk_size=6) == (2, 2)  # the points axis divides 6
    assert shape(1, full_batches=20, data_parallel=False) == (4, 1)


def test_bf16_compute_is_close_to_float32(problem):
    params, d1, d2, data = problem
    grid = np.linspace(-1, 1, 4)
    f32 = js.evaluate_plane(mlp_fn, params, d1, d2, data, grid, grid, batch_size=32)
    seen = []

    def recording_fn(p, batch):
        seen.append((p["Dense_0"]["kernel"].dtype, batch["x"].dtype, batch["y"].dtype))
        return mlp_fn(p, batch)

    bf16 = js.evaluate_plane(recording_fn, params, d1, d2, data, grid, grid, batch_size=32,
                             compute_dtype=jnp.bfloat16)
    assert set(seen) == {(jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.bfloat16),
                          jnp.dtype(jnp.int32))}  # labels stay integers
    assert bf16.metadata["compute_dtype"] == "bfloat16"
    assert f32.metrics["loss"].dtype == bf16.metrics["loss"].dtype == np.float32
    np.testing.assert_allclose(bf16.metrics["loss"], f32.metrics["loss"], rtol=3e-2)
    assert not np.array_equal(bf16.metrics["loss"], f32.metrics["loss"])


def test_bf16_keeps_exact_weights_for_batch_sizes_bf16_cannot_hold(problem):
    """257 is not a bfloat16 number: the batch weights must stay float32."""
    params, d1, _, _ = problem
    data = classification_data(n=300)

    def ones(p, batch):  # 1.0 on every batch: the dataset mean is exactly 1
        return jnp.mean(jnp.ones_like(batch["x"][:, 0])) + 0.0 * p["Dense_0"]["bias"][0]

    line = js.evaluate_line(ones, params, d1, data, [0.0, 0.5], batch_size=257,
                            compute_dtype=jnp.bfloat16)
    np.testing.assert_array_equal(line.metrics["loss"], [1.0, 1.0])


def test_devices_may_be_one_device_and_bad_entries_are_named(problem):
    params, d1, _, data = problem
    one = js.evaluate_line(mlp_fn, params, d1, data, [0.0, 0.5], devices=jax.devices()[0])
    assert one.metadata["num_devices"] == 1
    with pytest.raises(TypeError, match="jax.Device objects.*'cpu'"):
        js.evaluate_line(mlp_fn, params, d1, data, [0.0], devices=["cpu"])
    with pytest.raises(TypeError, match="a list of jax devices"):
        js.evaluate_line(mlp_fn, params, d1, data, [0.0], devices="cpu")
