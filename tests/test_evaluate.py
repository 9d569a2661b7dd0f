
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxsurf as js
from helpers import classification_data, dense_params, mlp_fn


def direct(fn, params, dirs, coeffs, data):
    p = params
    for c, d in zip(coeffs, dirs):
        p = jax.tree.map(lambda x, y: x + c * y, p, d)
    return {k: float(v) for k, v in fn(p, data).items()}


def test_plane_on_non_square_grid_matches_direct_evaluation(mlp):
    fn, params, data = mlp
    d1, d2 = js.random_plane(jax.random.key(1), params)
    alphas, betas = np.linspace(-1, 1, 5), np.array([-0.4, 0.1, 0.7])
    s = js.evaluate_plane(fn, params, d1, d2, data, alphas, betas, batch_size=16)
    assert s.metrics["loss"].shape == (5, 3) and s.metrics["accuracy"].shape == (5, 3)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            want = direct(fn, params, (d1, d2), (a, b), data)
            assert s.metrics["loss"][i, j] == pytest.approx(want["loss"], rel=1e-5)
            assert s.metrics["accuracy"][i, j] == pytest.approx(want["accuracy"], abs=1e-6)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 70))
def test_exact_mean_with_ragged_last_batch(n, batch_size):
    params = dense_params(jax.random.key(0))
    data = classification_data(n=n)
    d = js.random_direction(jax.random.key(1), params)
    s = js.evaluate_line(mlp_fn, params, d, data, [0.0, 0.3], batch_size=batch_size)
    for i, a in enumerate((0.0, 0.3)):
        want = direct(mlp_fn, params, (d,), (a,), data)
        assert s.metrics["loss"][i] == pytest.approx(want["loss"], rel=2e-5)
        assert s.metrics["accuracy"][i] == pytest.approx(want["accuracy"], abs=1e-6)


def test_stream_of_batches_equals_in_memory(mlp):
    fn, params, data = mlp
    d1, d2 = js.random_plane(jax.random.key(2), params)
    grid = np.linspace(-1, 1, 3)
    in_memory = js.evaluate_plane(fn, params, d1, d2, data, grid, grid, batch_size=20)
    batches = ({k: v[i:i + 17] for k, v in data.items()} for i in range(0, 103, 17))
    streamed = js.evaluate_plane(fn, params, d1, d2, batches, grid, grid)
    np.testing.assert_allclose(streamed.metrics["loss"], in_memory.metrics["loss"], rtol=1e-5)
    assert streamed.metadata["batch_size"] == "stream"


def test_whole_surface_traces_fn_a_fixed_number_of_times(mlp):
    _, params, data = mlp
    traces = []

    def counting_fn(p, batch):
        traces.append(1)
        return mlp_fn(p, batch)

    d1, d2 = js.random_plane(jax.random.key(3), params)
    js.evaluate_plane(counting_fn, params, d1, d2, data, [0.0, 1.0], [0.0], batch_size=10,
                      chunk_size=2)
    small = len(traces)
    traces.clear()
    grid = np.linspace(-1, 1, 9)
    js.evaluate_plane(counting_fn, params, d1, d2, data, grid, grid, batch_size=10, chunk_size=4)
    assert len(traces) == small  # 81 points in 21 chunks: no retrace per point or chunk


def test_points_per_step_and_devices_do_not_change_values(mlp):
    fn, params, data = mlp
    d1, d2 = js.random_plane(jax.random.key(4), params)
    grid = np.linspace(-1, 1, 5)
    base = js.evaluate_plane(fn, params, d1, d2, data, grid, grid, batch_size=32)
    vmapped = js.evaluate_plane(fn, params, d1, d2, data, grid, grid, batch_size=32,
                                points_per_step=3)
    np.testing.assert_allclose(vmapped.metrics["loss"], base.metrics["loss"], rtol=1e-5)
    assert len(jax.local_devices()) >= 4
    sharded = js.evaluate_plane(fn, params, d1, d2, data, grid, grid, batch_size=32,
                                devices=jax.local_devices()[:4])
    np.testing.assert_allclose(sharded.metrics["loss"], base.metrics["loss"], rtol=1e-5)
    assert sharded.metadata["num_devices"] == 4


def test_interpolate_hits_both_endpoints_exactly(mlp):
    fn, params, data = mlp
    other = js.tree.add(params, js.random_direction(jax.random.key(5), params))
    s = js.interpolate(fn, params, other, data, [0.0, 0.5, 1.0])
    assert s.betas is None and s.metadata["kind"] == "interpolation"
    assert s.metrics["loss"][0] == pytest.approx(float(fn(params, data)["loss"]), rel=1e-6)
    assert s.metrics["loss"][2] == pytest.approx(float(fn(other, data)["loss"]), rel=1e-6)
    mid = jax.tree.map(lambda a, b: 0.5 * a + 0.5 * b, params, other)
    assert s.metrics["loss"][1] == pytest.approx(float(fn(mid, data)["loss"]), rel=1e-5)


def test_scalar_fn_is_called_loss_and_metadata_is_kept(mlp):
    _, params, data = mlp
    d = js.normalize(js.random_direction(jax.random.key(6), params), params)
    s = js.evaluate_line(lambda p, b: mlp_fn(p, b)["loss"], params, d, data, [-1, 0, 1],
                         batch_size=50, metadata={"seed": 6})
    assert list(s.metrics) == ["loss"]
    meta = s.metadata
    assert meta["seed"] == 6 and meta["normalization"] == "filter" and meta["ignore"] == "biasbn"
    assert meta["num_examples"] == 103 and meta["batch_size"] == 50
    assert meta["library_version"] == js.__version__


def test_nonfinite_values_are_kept_counted_and_warned(mlp):
    _, params, data = mlp
    d = js.random_direction(jax.random.key(7), params)

    def exploding(p, batch):
        loss = mlp_fn(p, batch)["loss"]
        return jnp.where(p["Dense_0"]["kernel"][0, 0] > 1e3, jnp.nan, loss)

    alphas = [0.0, 1e6 / float(d["Dense_0"]["kernel"][0, 0])]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        s = js.evaluate_line(exploding, params, d, data, sorted(alphas))
    assert s.metadata["nonfinite"]["loss"] == 1
    assert np.isnan(s.metrics["loss"]).sum() == 1


@pytest.mark.parametrize("alphas, message", [
    ([], "non-empty 1-D"), ([[0.0, 1.0]], "1-D"), ([0.0, np.nan], "finite"),
    ([0.0, np.inf], "finite")])
def test_bad_coordinates_are_refused(mlp, alphas, message):
    fn, params, data = mlp
    d = js.random_direction(jax.random.key(0), params)
    with pytest.raises(ValueError, match=message):
        js.evaluate_line(fn, params, d, data, alphas)


def test_bad_data_is_refused(mlp):
    fn, params, data = mlp
    d = js.random_direction(jax.random.key(0), params)
    with pytest.raises(ValueError, match="empty"):
        js.evaluate_line(fn, params, d, {k: v[:0] for k, v in data.items()}, [0.0])
    with pytest.raises(ValueError, match="empty iterable"):
        js.evaluate_line(fn, params, d, [], [0.0])
    with pytest.raises(ValueError, match=r"different leading.*\['x'\]: 103.*\['y'\]: 50"):
        js.evaluate_line(fn, params, d, {"x": data["x"], "y": data["y"][:50]}, [0.0])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        js.evaluate_line(fn, params, d, data, [0.0], batch_size=0)
    with pytest.raises(ValueError, match=r"shape \(103,\).*jnp.mean"):
        js.evaluate_line(lambda p, b: b["x"][:, 0] * 0 + p["Dense_0"]["bias"][0], params, d,
                         data, [0.0])


def test_mismatched_directions_are_refused_with_leaf_path(mlp):
    fn, params, data = mlp
    d = js.random_direction(jax.random.key(0), params)
    bad = dict(d, Dense_1=dict(d["Dense_1"], bias=jnp.zeros(4)))
    with pytest.raises(ValueError, match=r"d2 does not match params at \['Dense_1'\]\['bias'\]"):
        js.evaluate_plane(fn, params, d, bad, data, [0.0], [0.0])
    with pytest.raises(ValueError, match=r"\['Dense_1'\]\['bias'\]"):
        js.interpolate(fn, params, bad, data, [0.0])


def test_streams_record_how_many_examples_they_held(mlp, tmp_path):
    fn, params, data = mlp
    d = js.random_direction(jax.random.key(1), params)
    batches = [{k: v[i:i + 10] for k, v in data.items()} for i in range(0, 103, 10)]
    for stream, store in [(batches, None), ((b for b in batches), None),
                          (batches, tmp_path / "store")]:
        line = js.evaluate_line(fn, params, d, stream, [0.0, 1.0], store=store)
        assert line.metadata["num_examples"] == 103 and line.metadata["batch_size"] == "stream"


def test_float64_numpy_params_work_with_their_own_directions():
    """Without jax_enable_x64 JAX computes float64 numpy params in float32; the
    directions js.random_direction draws for them must be accepted everywhere."""
    rng = np.random.default_rng(0)
    params = {"k": rng.normal(size=(3, 2)), "b": np.ones(2)}  # float64
    data = {"x": rng.normal(size=(20, 3)), "y": rng.normal(size=(20, 2))}
    fn = lambda p, b: jnp.mean((b["x"] @ p["k"] + p["b"] - b["y"]) ** 2)
    d = js.normalize(js.random_direction(jax.random.key(0), params), params)
    d1, d2 = js.random_plane(jax.random.key(1), params)
    line = js.evaluate_line(fn, params, d, data, [0.0, 1.0])
    plane = js.evaluate_plane(fn, params, d1, d2, data, [0.0, 1.0], [0.0, 0.5])
    other = {"k": params["k"] + 1, "b": params["b"] + 1}
    path = js.interpolate(fn, params, other, data, [0.0, 1.0])
    want = float(fn(params, data))
    for s in (line, plane, path):
        np.testing.assert_allclose(s.metrics["loss"].ravel()[0], want, rtol=1e-5)
    assert line.metadata["normalization"] == "filter"
