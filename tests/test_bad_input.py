"""Every kind of bad input gives a clear error (the table in docs/robustness.md)."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from helpers import classification_data, mlp_fn
from jaxsurf import _surface as surface_lib


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)

    def mlp_like():
        return {f"Dense_{i}": {"kernel": rng.normal(size=(a, b)).astype(np.float32),
                               "bias": rng.normal(size=b).astype(np.float32)}
                for i, (a, b) in enumerate([(5, 4), (4, 3)])}

    return mlp_like(), mlp_like(), classification_data(n=20)


# --------------------------------------------------------------------------- directions
@pytest.mark.parametrize("edit, message", [
    (lambda d: {**d, "Dense_1": {**d["Dense_1"], "bias": np.zeros(4, np.float32)}},
     r"direction does not match params at \['Dense_1'\]\['bias'\]: params has shape \(3,\)"),
    (lambda d: {"Dense_0": d["Dense_0"]},
     r"at \['Dense_1'\]\['bias'\]: only the params has this leaf"),
    (lambda d: {**d, "Dense_2": d["Dense_1"]},
     r"at \['Dense_2'\]\['bias'\]: only the direction has this leaf"),
    (lambda d: {**d, "Dense_0": {**d["Dense_0"],
                                 "kernel": d["Dense_0"]["kernel"].astype(np.float16)}},
     r"at \['Dense_0'\]\['kernel'\]: params has shape \(5, 4\) dtype float32, direction has "
     r"shape \(5, 4\) dtype float16"),
])
def test_mismatched_direction_names_the_leaf(problem, edit, message):
    params, d, data = problem
    with pytest.raises(ValueError, match=message):
        js.evaluate_line(mlp_fn, params, edit(d), data, [0.0])


def test_mismatch_is_named_in_every_entry_point(problem):
    params, d, data = problem
    bad = {**d, "Dense_0": {**d["Dense_0"], "bias": np.zeros(7, np.float32)}}
    with pytest.raises(ValueError, match=r"d2 does not match params at \['Dense_0'\]\['bias'\]"):
        js.evaluate_plane(mlp_fn, params, d, bad, data, [0.0], [0.0])
    with pytest.raises(ValueError, match=r"params_b does not match params_a at \['Dense_0'\]"):
        js.interpolate(mlp_fn, params, bad, data, [0.0])
    with pytest.raises(ValueError, match=r"direction 1 does not match params at \['Dense_0'\]"):
        js.evaluate_points(mlp_fn, params, [d, bad], data, [[0.0, 0.0]])


# --------------------------------------------------------------------------- dtypes
def test_wrong_dtypes_are_refused(problem):
    params, d, data = problem
    with pytest.raises(TypeError, match=r"data leaf \['y'\] has dtype <U1.*convert it to numbers"):
        js.evaluate_line(mlp_fn, params, d, {"x": data["x"], "y": np.array(["a"] * 20)}, [0.0])
    with pytest.raises(TypeError, match=r"batch 0 leaf \['y'\] has dtype object"):
        js.evaluate_line(mlp_fn, params, d, [{"x": data["x"], "y": np.array([None] * 20)}], [0.0])
    with pytest.raises(ValueError, match="coefficients must hold real numbers, got dtype <U"):
        js.evaluate_points(mlp_fn, params, [d], data, [["0.5"]])
    with pytest.raises(ValueError, match="coefficients must be finite"):
        js.evaluate_points(mlp_fn, params, [d], data, [[0.5], [np.nan]])


# --------------------------------------------------------------------------- data
@pytest.mark.parametrize("data, message", [
    ({"x": np.zeros((0, 5), np.float32), "y": np.zeros(0, np.int32)}, r"empty \(0 examples\)"),
    ([], "empty iterable"),
    ((b for b in []), "empty iterable"),
    ({}, "holds no arrays"),
    ({"x": np.zeros((20, 5), np.float32), "y": np.zeros(19, np.int32)},
     r"different leading \(example\) sizes \(\['x'\]: 20, \['y'\]: 19\)"),
    ([{"x": np.zeros((4, 5), np.float32), "y": np.zeros(3, np.int32)}],
     r"batch 0 leaves have different leading .*\['x'\]: 4, \['y'\]: 3"),
])
def test_empty_or_ragged_data_is_refused(problem, data, message):
    params, d, _ = problem
    with pytest.raises(ValueError, match=message):
        js.evaluate_line(mlp_fn, params, d, data, [0.0])


# --------------------------------------------------------------------------- grids
@pytest.mark.parametrize("alphas, message", [
    ([], "non-empty 1-D"),
    (np.zeros((2, 2)), r"non-empty 1-D array of coordinates, got shape \(2, 2\)"),
    (0.5, r"got shape \(\)"),
    ([0.0, np.nan], "finite"),
    ([0.0, -np.inf], "finite"),
    ([0.0, 1e39], "finite in float32"),
    ([0.0, 1j], "real numbers"),
    (["a", "b"], "finite numbers"),
    ([True, False], "finite numbers"),
])
def test_grids_that_are_not_1d_finite_arrays_are_refused(problem, alphas, message):
    params, d, data = problem
    with pytest.raises(ValueError, match=message):
        js.evaluate_line(mlp_fn, params, d, data, alphas)
    with pytest.raises(ValueError, match=message.replace("alphas", "betas")):
        js.evaluate_plane(mlp_fn, params, d, d, data, [0.0], alphas)


# --------------------------------------------------------------------------- Surface files
def test_truncated_surface_file(tmp_path):
    path = js.Surface(np.arange(3.0), None, {"loss": np.ones(3)}).save(tmp_path / "s.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(js.SurfaceFileError, match="truncated"):
        js.Surface.load(path)


def test_surface_file_from_a_newer_format_version(tmp_path):
    header = {"format": surface_lib.FORMAT, "format_version": surface_lib.FORMAT_VERSION + 1,
              "library_version": "9.0.0", "metric_names": ["loss"], "metadata": {}}
    path = tmp_path / "new.npz"
    np.savez(path, alphas=np.arange(3.0), header=np.array(json.dumps(header)),
             metric_0=np.ones(3))
    with pytest.raises(js.SurfaceFileError, match=r"written by jaxsurf 9.0.0 .*newer.*upgrade"):
        js.Surface.load(path)


# --------------------------------------------------------------------------- names
def test_unknown_normalization_and_loss_names(problem):
    params, d, _ = problem
    with pytest.raises(ValueError, match=r"unknown normalization method 'filtre'; use one of"):
        js.normalize(d, params, method="filtre")
    with pytest.raises(ValueError, match="unknown ignore option"):
        js.normalize(d, params, ignore="bn")
    with pytest.raises(ValueError, match=r"unknown loss 'xent'; use one of \['ce', "):
        js.losses.get_loss("xent")
    with pytest.raises(ValueError, match="unknown loss 'xent'"):
        js.flax.adapt(object(), None, loss="xent")


# --------------------------------------------------------------------------- options
def test_bad_options(problem):
    params, d, data = problem
    with pytest.raises(TypeError, match="progress must be None"):
        js.evaluate_line(mlp_fn, params, d, data, [0.0], progress="yes")
    with pytest.raises(ValueError, match="points_per_step must be a positive integer"):
        js.evaluate_line(mlp_fn, params, d, data, [0.0], points_per_step=0)
    with pytest.raises(ValueError, match=r"shape \(20,\).*jnp.mean"):
        js.evaluate_line(lambda p, b: jnp.sum(b["x"], axis=1), params, d, data, [0.0])


# --------------------------------------------------------------------------- trajectories
def test_trajectory_directory_missing_or_empty(tmp_path):
    # a missing module or function fails here, never skips
    from jaxsurf import _trajectory as trajectory

    with pytest.raises(FileNotFoundError, match="no trajectory at .*TrajectoryRecorder"):
        trajectory.load_trajectory(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no recorded steps"):
        trajectory.load_trajectory(tmp_path / "empty")
