"""Issue 24, item 2: one options object, ``js.Engine``, accepted as ``engine=`` by
every function that computes many points; the keywords keep working."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _validate
from jaxsurf import _evaluate as evaluate_module

GRID = np.array([-0.5, 0.0, 0.5])


def _problem():
    k = jax.random.split(jax.random.key(3), 3)
    params = {"w": jax.random.normal(k[0], (3, 2)) * 0.5, "b": jnp.zeros(2)}
    data = {"x": jax.random.normal(k[1], (20, 3)), "y": jax.random.normal(k[2], (20, 2))}

    def fn(p, batch):
        return jnp.mean((jnp.tanh(batch["x"] @ p["w"] + p["b"]) - batch["y"]) ** 2)
    d1, d2, d3 = (jax.tree_util.tree_map(lambda x, i=i: 0.1 * (i + 1) * jnp.arange(
        x.size, dtype=x.dtype).reshape(x.shape) / x.size + 0.05 * i, params) for i in range(3))
    return fn, params, data, d1, d2, d3


@pytest.mark.parametrize("field, value, error, words", [
    ("batch_size", 0, ValueError, "batch_size must be a positive integer, got 0"),
    ("points_per_step", 1.5, ValueError, "points_per_step must be a positive integer"),
    ("chunk_size", -2, ValueError, "chunk_size must be a positive integer"),
    ("compute_dtype", "int32", ValueError, "compute_dtype must be a float dtype"),
    ("progress", "yes", TypeError, "progress must be None"),
    ("store", 3, TypeError, "store must be a directory path"),
    ("subsample", 1, ValueError, "subsample must be an integer between 2"),
    ("subsample", 1.5, ValueError, r"or a fraction in \(0, 1\]"),
    ("subsample_seed", -1, ValueError, "subsample_seed must be a non-negative integer"),
    ("fingerprint", {}, TypeError, "fingerprint must be a non-empty dict"),
    ("fingerprint", {"f": object()}, TypeError, "fingerprint must be JSON-serialisable"),
    ("max_points", 0, ValueError, "max_points must be a positive integer"),
])
def test_item2_engine_validates_each_field_with_clear_errors(field, value, error, words):
    with pytest.raises(error, match=words):
        js.Engine(**{field: value})
    with pytest.raises(error, match=words):  # replace() validates again
        dataclasses.replace(js.Engine(), **{field: value})


def test_item2_engine_refuses_devices_with_a_mesh():
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("points",))
    with pytest.raises(ValueError, match="pass devices= or mesh=, not both"):
        js.Engine(devices=jax.devices()[:1], mesh=mesh)


def test_item2_engine_is_frozen_and_replace_works():
    eng = js.Engine(batch_size=8, chunk_size=4, progress=False, fingerprint={"model": "v1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        eng.batch_size = 2  # type: ignore[misc]
    other = dataclasses.replace(eng, chunk_size=2)
    assert (other.chunk_size, other.batch_size, eng.chunk_size) == (2, 8, 4)
    assert eng.changed() == {"batch_size": 8, "chunk_size": 4, "progress": False,
                             "fingerprint": {"model": "v1"}}
    assert js.Engine() == js.Engine() and js.Engine().changed() == {}
    assert js.Engine.__doc__ and "Example" in js.Engine.__doc__


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


KW = {"batch_size": 6, "chunk_size": 2, "progress": False}


def _surfaces(fn, params, data, d1, d2, d3):
    """Entry points returning a Surface (or values), called with the options ``o``."""
    far = js.tree.add(params, d1)
    five = np.linspace(-1, 1, 5)
    key = jax.random.key(0)
    return {
        "evaluate_points": lambda **o: js.evaluate_points(fn, params, [d1], data,
                                                          [[0.0], [0.5]], **o),
        "evaluate_line": lambda **o: js.evaluate_line(fn, params, d1, data, GRID, **o),
        "evaluate_plane": lambda **o: js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID,
                                                        **o),
        "evaluate_plane(refine=)": lambda **o: js.evaluate_plane(
            fn, params, d1, d2, data, five, five, refine=js.Refine(tol=0.5, start=1), **o),
        "evaluate_volume": lambda **o: js.evaluate_volume(fn, params, d1, d2, d3, data,
                                                          GRID[:2], GRID[:2], GRID[:2], **o),
        "interpolate": lambda **o: js.interpolate(fn, params, far, data, GRID, **o),
        "connect.evaluate_curve": lambda **o: js.connect.evaluate_curve(
            fn, js.connect.line(params, far), data, np.linspace(0, 1, 3), **o),
        "hessian.convexity_map": lambda **o: js.hessian.convexity_map(
            fn, params, d1, d2, data, GRID[:2], GRID[:2], key=key, num_iterations=3, **o),
    }


def _batch_size_only(fn, params, data, d1):
    """Entry points that use only ``batch_size`` of the engine."""
    key = jax.random.key(0)
    return {
        "dataset_mean": lambda **o: js.dataset_mean(fn, data, **o)(params),
        "hessian.hvp": lambda **o: js.hessian.hvp(fn, params, data, d1, **o),
        "hessian.hvp_operator": lambda **o: js.hessian.hvp_operator(fn, params, data, **o)(d1),
        "hessian.top_eigenpairs": lambda **o: js.hessian.top_eigenpairs(
            fn, params, data, key=key, **o)[0],
        "hessian.trace": lambda **o: js.hessian.trace(fn, params, data, key=key,
                                                      num_samples=4, **o),
        "sharpness.epsilon_sharpness": lambda **o: js.sharpness.epsilon_sharpness(
            fn, params, data, **o),
        "sharpness.sam_sharpness": lambda **o: js.sharpness.sam_sharpness(fn, params, data, **o),
    }


@pytest.mark.parametrize("entry", list(_surfaces(*[None] * 6)))
def test_item2_every_entry_point_accepts_engine_and_matches_keywords(entry):
    fn, params, data, d1, d2, d3 = _problem()
    run = _surfaces(fn, params, data, d1, d2, d3)[entry]
    by_keywords, by_engine = run(**KW), run(engine=js.Engine(**KW))
    if isinstance(by_keywords, js.Surface):
        assert by_engine.metadata.get("batch_size", 6) == 6
        by_keywords, by_engine = by_keywords.metrics, by_engine.metrics
    _same(by_keywords, by_engine)


@pytest.mark.parametrize("entry", list(_batch_size_only(*[None] * 4)))
def test_item2_functions_using_batch_size_accept_engine_too(entry):
    fn, params, data, d1, *_ = _problem()
    run = _batch_size_only(fn, params, data, d1)[entry]
    a, b = run(batch_size=6), run(engine=js.Engine(batch_size=6))
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_item2_a_keyword_overrides_that_field_of_engine(tmp_path):
    fn, params, data, d1, *_ = _problem()
    seen = []
    eng = js.Engine(batch_size=6, progress=False, points_per_step=1)
    line = js.evaluate_line(fn, params, d1, data, GRID, engine=eng, batch_size=4,
                            points_per_step=3, progress=seen.append,
                            store=Path(tmp_path, "line"))
    assert line.metadata["batch_size"] == 4 and line.metadata["points_per_step"] == 3
    assert seen and line.metadata["store"] == str(Path(tmp_path, "line"))
    assert eng.batch_size == 6  # the object is not changed
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        js.evaluate_line(fn, params, d1, data, GRID, engine=eng, batch_size=0)
    # a function that takes batch_size itself: the keyword wins too
    a = js.hessian.hvp(fn, params, data, d1, engine=js.Engine(batch_size=20), batch_size=6)
    b = js.hessian.hvp(fn, params, data, d1, batch_size=6)
    _same(a, b)


def test_item2_a_misspelled_keyword_still_suggests_the_right_one():
    fn, params, data, d1, *_ = _problem()
    with pytest.raises(TypeError, match=r"js.evaluate_line got an unknown option 'chunksize' "
                                        r"\(did you mean 'chunk_size'\?\)"):
        js.evaluate_line(fn, params, d1, data, GRID, chunksize=2, engine=js.Engine())
    with pytest.raises(TypeError, match=r"unknown option 'metdata' \(did you mean 'metadata'"):
        js.evaluate_plane(fn, params, d1, d1, data, GRID, GRID, metdata={})
    with pytest.raises(TypeError, match=r"js.hessian.trace got an unknown option 'batchsize' "
                                        r"\(did you mean 'batch_size'\?\)"):
        js.hessian.trace(fn, params, data, key=jax.random.key(0), batchsize=4)
    with pytest.raises(TypeError, match="did you mean 'engine'"):
        js.evaluate_line(fn, params, d1, data, GRID, engin=js.Engine())
    with pytest.raises(TypeError, match="engine must be a js.Engine"):
        js.evaluate_line(fn, params, d1, data, GRID, engine={"batch_size": 4})


def test_item2_engine_options_a_function_does_not_use_are_ignored_unless_they_change_values():
    fn, params, data, d1, *_ = _problem()
    key = jax.random.key(0)
    shared = js.Engine(batch_size=4, store="runs/x", progress=False, chunk_size=2)
    plain = js.hessian.trace(fn, params, data, key=key, batch_size=4)
    assert js.hessian.trace(fn, params, data, key=key, engine=shared) == plain
    with pytest.raises(ValueError, match=r"js.hessian.trace does not use the engine options "
                                         r"\['compute_dtype'\].*they change values.*"
                                         r"dataclasses.replace\(engine, compute_dtype=None\)"):
        js.hessian.trace(fn, params, data, key=key,
                         engine=js.Engine(batch_size=4, compute_dtype="bfloat16"))
    with pytest.raises(TypeError, match="js.dataset_mean got an unknown option 'store'"):
        js.dataset_mean(fn, data, store="runs/x")


def test_item2_signatures_list_every_option_and_the_sync_mechanisms_are_gone():
    fields = [f.name for f in dataclasses.fields(js.Engine)]
    for entry in (js.evaluate_points, js.evaluate_line, js.evaluate_plane, js.evaluate_volume,
                  js.interpolate, js.connect.evaluate_curve):
        params = inspect.signature(entry).parameters
        assert set(fields) | {"engine"} <= set(params), entry.__name__
        assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
    for entry in (js.dataset_mean, js.hessian.hvp, js.sharpness.sam_sharpness):
        assert {"batch_size", "engine"} <= set(inspect.signature(entry).parameters)
    assert not hasattr(_validate, "suggest_keywords") and not hasattr(_validate, "known_options")
    source = Path(evaluate_module.__file__).read_text()
    assert "points_per_step=points_per_step" not in source
