"""The engine package: the means layer, the deprecated alias, explicit keywords,
convexity maps on the engine (store, progress), shared validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _validate, _hessian as hessian


def _problem():
    k = jax.random.split(jax.random.key(1), 3)
    params = {"w": jax.random.normal(k[0], (3, 2)) * 0.5, "b": jnp.zeros(2)}
    data = {"x": jax.random.normal(k[1], (30, 3)), "y": jax.random.normal(k[2], (30, 2))}

    def fn(p, batch):
        return jnp.mean((jnp.tanh(batch["x"] @ p["w"] + p["b"]) - batch["y"]) ** 2)
    return fn, params, data


def test_hessian_dataset_mean_is_a_deprecated_alias_of_mean_over_batches():
    fn, params, data = _problem()
    grad = lambda p, b: jax.grad(fn)(p, b)
    with pytest.warns(DeprecationWarning, match="mean_over_batches"):
        old = hessian.dataset_mean(grad, data, batch_size=7)
    new = hessian.mean_over_batches(grad, data, batch_size=7)
    full = jax.grad(fn)(params, data)
    for a, b, c in zip(jax.tree_util.tree_leaves(old(params)),
                       jax.tree_util.tree_leaves(new(params)), jax.tree_util.tree_leaves(full)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-5, atol=1e-6)


def test_the_two_means_agree_on_a_metric():
    fn, params, data = _problem()
    scalar = js.dataset_mean(fn, data, batch_size=7)(params)["loss"]
    tree_mean = hessian.mean_over_batches(lambda p, b: fn(p, b), data, batch_size=7)(params)
    assert scalar == pytest.approx(float(tree_mean), rel=1e-6)


def test_entry_points_have_explicit_keywords_and_still_suggest_names():
    import inspect
    for entry in (js.evaluate_line, js.evaluate_plane, js.evaluate_volume, js.interpolate):
        params = inspect.signature(entry).parameters
        assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
        assert {"chunk_size", "devices", "compute_dtype", "subsample"} <= set(params)
    fn, params, data = _problem()
    d = js.tree.zeros_like(params)
    with pytest.raises(TypeError, match="did you mean 'points_per_step'"):
        js.evaluate_points(fn, params, [d], data, [[0.0]], points_per_stepp=2)


def test_convexity_map_resumes_from_its_store_and_reports_progress(tmp_path):
    fn, params, data = _problem()
    d1, d2 = js.random_plane(jax.random.key(4), params)
    grid_a, grid_b = np.array([-0.5, 0.5]), np.array([-0.3, 0.0, 0.3])
    seen = []
    first = hessian.convexity_map(fn, params, d1, d2, data, grid_a, grid_b,
                                  key=jax.random.key(0), num_iterations=5,
                                  store=tmp_path / "cm", progress=seen.append)
    assert seen[-1].done == 6 and first.metadata["points_evaluated"] == 6
    assert first.metadata["kind"] == "convexity" and first.metadata["hvps"] == 30
    again = hessian.convexity_map(fn, params, d1, d2, data, grid_a, grid_b,
                                  key=jax.random.key(0), num_iterations=5,
                                  store=tmp_path / "cm", progress=False)
    assert again.metadata["points_evaluated"] == 0
    assert again.metadata["points_from_store"] == 6
    for name in ("lambda_max", "lambda_min", "ratio"):
        np.testing.assert_array_equal(again.metrics[name], first.metrics[name])
    plain = hessian.convexity_map(fn, params, d1, d2, data, grid_a, grid_b,
                                  key=jax.random.key(0), num_iterations=5, progress=False)
    np.testing.assert_allclose(first.metrics["lambda_max"], plain.metrics["lambda_max"],
                               rtol=1e-6)  # the store keeps float32


def test_convexity_map_store_is_keyed_by_its_settings(tmp_path):
    fn, params, data = _problem()
    d1, d2 = js.random_plane(jax.random.key(4), params)
    g = np.array([0.0, 0.5])
    hessian.convexity_map(fn, params, d1, d2, data, g, g, key=jax.random.key(0),
                          num_iterations=4, store=tmp_path / "cm", progress=False)
    with pytest.raises(js.StoreMismatchError):
        hessian.convexity_map(fn, params, d1, d2, data, g, g, key=jax.random.key(1),
                              num_iterations=4, store=tmp_path / "cm", progress=False)


@pytest.mark.parametrize("check, args", [
    (_validate.positive_int, (0, "n")), (_validate.positive_int, (True, "n")),
    (_validate.int_in_range, (1, "num_samples", 2)), (_validate.int_in_range, (5, "k", 1, 4)),
    (_validate.positive_number, (float("nan"), "rho")), (_validate.positive_number, (0, "rho")),
])
def test_shared_checks_raise_value_error_naming_the_argument(check, args):
    with pytest.raises(ValueError, match=args[1]):
        check(*args)


def test_one_shot_iterators_raise_one_error_type_everywhere():
    fn, params, data = _problem()
    batches = iter([data])
    with pytest.raises(_validate.OneShotIteratorError) as info:
        hessian.hvp_operator(fn, params, batches)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
