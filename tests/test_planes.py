"""Many planes with their spread: js.random_planes, js.evaluate_planes, small multiples."""
import jax
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf.interrupt import Interrupted
from helpers import classification_data, dense_params, mlp_fn


@pytest.fixture(scope="module")
def model():
    return dense_params(jax.random.key(0)), classification_data(n=41)


def test_planes_are_distinct_and_each_filter_normalized(model):
    params, _ = model
    planes = js.random_planes(jax.random.key(3), params, 5)
    assert len(planes) == 5
    flat = [np.concatenate([np.ravel(x) for x in jax.tree.leaves(d)])
            for plane in planes for d in plane]
    for a in range(len(flat)):
        for b in range(a + 1, len(flat)):
            cos = flat[a] @ flat[b] / (np.linalg.norm(flat[a]) * np.linalg.norm(flat[b]))
            assert abs(cos) < 0.9, (a, b, cos)   # distinct directions, not copies
    for d1, d2 in planes:
        for d in (d1, d2):
            info = js.describe_direction(d, params)
            assert info["normalization"] == "filter" and info["ignore"] == "biasbn"
            k = np.asarray(d["Dense_0"]["kernel"])
            w = np.asarray(params["Dense_0"]["kernel"])
            np.testing.assert_allclose(np.linalg.norm(k, axis=0), np.linalg.norm(w, axis=0),
                                       rtol=1e-5)


def test_planes_are_reproducible_and_extend_with_k(model):
    params, _ = model
    four = js.random_planes(jax.random.key(1), params, 4)
    eight = js.random_planes(jax.random.key(1), params, 8)
    for (a1, a2), (b1, b2) in zip(four, eight[:4]):
        assert js.tree.fingerprint(a1) == js.tree.fingerprint(b1)
        assert js.tree.fingerprint(a2) == js.tree.fingerprint(b2)
    layer = js.random_planes(jax.random.key(1), params, 2, method="layer")
    assert js.describe_direction(layer[1][1], params)["normalization"] == "layer"


@pytest.mark.parametrize("k", [0, -2, 1.5, True, "3"])
def test_bad_k_is_refused(model, k):
    with pytest.raises(ValueError, match="k .*positive integer"):
        js.random_planes(jax.random.key(0), model[0], k)


def test_evaluate_planes_equals_one_plane_at_a_time_and_resumes(model, tmp_path):
    params, data = model
    planes = js.random_planes(jax.random.key(0), params, 3)
    a, b = np.linspace(-1, 1, 4), np.linspace(-0.5, 0.5, 3)
    store = tmp_path / "store"
    seen = []
    surfaces = js.evaluate_planes(mlp_fn, params, planes, data, a, b, store=store,
                                  progress=seen.append, batch_size=16)
    assert len(surfaces) == 3 and seen[-1].done == seen[-1].total == 36
    for p, (d1, d2) in enumerate(planes):
        one = js.evaluate_plane(mlp_fn, params, d1, d2, data, a, b, progress=False,
                                batch_size=16)
        s = surfaces[p]
        assert s.metrics["loss"].shape == (4, 3)
        np.testing.assert_allclose(s.metrics["loss"], one.metrics["loss"], rtol=1e-6)
        assert s.metadata["plane_index"] == p and s.metadata["num_planes"] == 3
        assert s.metadata["kind"] == "plane" and s.metadata["normalization"] == "filter"
        assert s.metadata["directions"] == one.metadata["directions"]
    assert surfaces[0].metrics["loss"][1, 1] != surfaces[1].metrics["loss"][1, 1]
    again = js.evaluate_planes(mlp_fn, params, planes, data, a, b, store=store,
                               progress=False, batch_size=16)
    assert again[0].metadata["points_evaluated"] == 0
    assert again[0].metadata["points_from_store"] == 36
    for s, t in zip(surfaces, again):
        np.testing.assert_array_equal(s.metrics["loss"], t.metrics["loss"])
    with pytest.raises(js.StoreMismatchError):  # another set of planes: refused, not mixed
        js.evaluate_planes(mlp_fn, params, planes[:2], data, a, b, store=store,
                           progress=False, batch_size=16)


def test_evaluate_planes_resumes_after_an_interrupted_run(model, tmp_path):
    params, data = model
    planes = js.random_planes(jax.random.key(2), params, 2)
    a = np.linspace(-1, 1, 5)
    calls = {"n": 0}

    def stop_after_first_chunk(info):
        calls["n"] += 1
        if info.done > 0:
            raise KeyboardInterrupt

    with pytest.raises((KeyboardInterrupt, Interrupted)):
        js.evaluate_planes(mlp_fn, params, planes, data, a, a, store=tmp_path / "s",
                           chunk_size=8, progress=stop_after_first_chunk)
    rest = js.evaluate_planes(mlp_fn, params, planes, data, a, a, store=tmp_path / "s",
                              chunk_size=8, progress=False)
    assert 0 < rest[0].metadata["points_from_store"] < 50
    full = js.evaluate_planes(mlp_fn, params, planes, data, a, a, chunk_size=8, progress=False)
    for s, t in zip(rest, full):
        np.testing.assert_allclose(s.metrics["loss"], t.metrics["loss"], rtol=1e-6)


def test_evaluate_planes_bad_input(model):
    params, data = model
    d1, d2 = js.random_plane(jax.random.key(0), params)
    g = np.linspace(-1, 1, 3)
    with pytest.raises(ValueError, match="planes is empty"):
        js.evaluate_planes(mlp_fn, params, [], data, g, g)
    with pytest.raises(ValueError, match=r"planes\[0\] must be a \(d1, d2\) pair"):
        js.evaluate_planes(mlp_fn, params, [d1], data, g, g)
    bad = {**d2, "Dense_0": {**d2["Dense_0"], "bias": np.zeros(7, np.float32)}}
    with pytest.raises(ValueError, match=r"planes\[1\]\[1\]"):
        js.evaluate_planes(mlp_fn, params, [(d1, d2), (d1, bad)], data, g, g)


def test_small_multiples_share_one_colour_scale(tmp_path):
    a, b = np.linspace(-1, 1, 11), np.linspace(-1, 1, 9)
    A, B = np.meshgrid(a, b, indexing="ij")
    surfaces = [js.Surface(a, b, {"loss": (1 + p) * (A ** 2 + B ** 2) + 0.1}) for p in range(5)]
    fig = js.plot.small_multiples(surfaces, kind="filled", out=tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 0
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 5 and len(fig.axes) == 6          # one colour bar for all
    assert [ax.get_title() for ax in panels] == [f"plane {p}" for p in range(5)]
    levels = [tuple(np.round(ax.collections[0].levels, 12)) for ax in panels]
    assert len(set(levels)) == 1                             # the same levels everywhere
    assert levels[0][-1] >= 5 * 2 + 0.1 - 1e-9               # spanning the steepest panel
    heat = js.plot.small_multiples({"a": surfaces[0], "b": surfaces[4]}, kind="heatmap", ncols=1)
    limits = {ax.images[0].get_clim() if ax.images else ax.collections[0].get_clim()
              for ax in heat.axes[:2]}
    assert len(limits) == 1
    with pytest.raises(ValueError, match="ncols"):
        js.plot.small_multiples(surfaces, ncols=0)
    with pytest.raises(TypeError, match="several surfaces"):
        js.plot.small_multiples(surfaces[0])
