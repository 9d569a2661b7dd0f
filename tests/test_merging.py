# pyright: reportArgumentType=false, reportCallIssue=false
"""Model merging (js.connect.merge, slerp, task_plane, plane_through) and paths
(js.connect.evaluate_path): known answers, properties, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsurf as js
from jaxsurf.store import StoreMismatchError
from jaxsurf import connect
from helpers import classification_data, dense_params, mlp_fn

METHODS = ("linear", "task_arithmetic", "ties", "dare", "dare_ties")


# --------------------------------------------------------------------------- TIES
def test_ties_four_entries_worked_by_hand():
    """base b = [1, 1, 1, 1]; task vectors
        tau_1 = [ 4, -1,  0.5, -3]     top half by magnitude: [ 4,  0,   0, -3]
        tau_2 = [-2,  3, -0.1, -1]     top half by magnitude: [-2,  3,   0,  0]
        tau_3 = [ 1,  2, -5,    0.5]   top half by magnitude: [ 0,  2,  -5,  0]
    elected signs (sum of trimmed): [+2 -> +, +5 -> +, -5 -> -, -3 -> -]
    disjoint means: [4 / 1, (3 + 2) / 2, -5 / 1, -3 / 1] = [4, 2.5, -5, -3]
    merged = b + 0.5 * [4, 2.5, -5, -3] = [3, 2.25, -1.5, -0.5]."""
    base = {"w": jnp.ones(4)}
    taus = [[4.0, -1.0, 0.5, -3.0], [-2.0, 3.0, -0.1, -1.0], [1.0, 2.0, -5.0, 0.5]]
    fts = [{"w": base["w"] + jnp.array(t)} for t in taus]
    out = connect.merge(base, fts, method="ties", density=0.5, scale=0.5)
    np.testing.assert_allclose(out["w"], [3.0, 2.25, -1.5, -0.5], rtol=1e-6)
    # weights: (2, 1, 1) -> weighted trimmed [8,0,0,-6], [-2,3,0,0], [0,2,-5,0];
    # signs [+, +, -, -]; means [8/2, 5/2, -5/1, -6/2] = [4, 2.5, -5, -3]
    out_w = connect.merge(base, fts, method="ties", density=0.5, weights=[2.0, 1.0, 1.0])
    np.testing.assert_allclose(out_w["w"], 1.0 + np.array([4.0, 2.5, -5.0, -3.0]), rtol=1e-6)
    # density 1: no trim; signs of the sums [3, 4, -4.6, -3.5]; means of agreeing entries
    full = connect.merge(base, fts, method="ties", density=1.0)
    np.testing.assert_allclose(full["w"], 1.0 + np.array([2.5, 2.5, -2.55, -2.0]), rtol=1e-6)


def test_ties_trim_scope_leaf_or_global():
    base = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    ft = {"a": jnp.array([10.0, 9.0]), "b": jnp.array([1.0, 2.0])}
    leaf = connect.merge(base, [ft], method="ties", density=0.5)
    glob = connect.merge(base, [ft], method="ties", density=0.5, trim="global")
    assert leaf["a"].tolist() == [10.0, 0.0] and leaf["b"].tolist() == [0.0, 2.0]
    assert glob["a"].tolist() == [10.0, 9.0] and glob["b"].tolist() == [0.0, 0.0]


def test_task_arithmetic_and_linear():
    base = {"w": jnp.array([1.0, 2.0])}
    fts = [{"w": jnp.array([2.0, 2.0])}, {"w": jnp.array([1.0, 5.0])}]
    ta = connect.merge(base, fts, method="task_arithmetic", scale=0.5, weights=[1.0, -1.0])
    np.testing.assert_allclose(ta["w"], [1.0 + 0.5, 2.0 - 1.5])
    lin = connect.merge(base, fts, method="linear", weights=[3.0, 1.0])
    np.testing.assert_allclose(lin["w"], [1.75, 2.75])


def test_non_float_leaves_come_from_base_and_dtypes_are_kept():
    base = {"w": jnp.ones(3, jnp.bfloat16), "step": jnp.array(3)}
    ft = {"w": jnp.full(3, 2.0, jnp.bfloat16), "step": jnp.array(7)}
    for method in METHODS:
        key = jax.random.key(0) if "dare" in method else None
        out = connect.merge(base, [ft], method=method, key=key)
        assert out["w"].dtype == jnp.bfloat16
        assert int(out["step"]) == 3


# --------------------------------------------------------------------------- DARE
def test_dare_keeps_a_density_share_and_rescales():
    base = {"w": jnp.zeros(20000)}
    tau = jnp.asarray(np.random.default_rng(0).uniform(1.0, 2.0, 20000), jnp.float32)
    out = connect.merge(base, [{"w": tau}], method="dare", density=0.3,
                        key=jax.random.key(1))["w"]
    kept = np.asarray(out) != 0
    assert abs(kept.mean() - 0.3) < 0.015
    np.testing.assert_allclose(np.asarray(out)[kept], np.asarray(tau)[kept] / 0.3, rtol=1e-6)
    again = connect.merge(base, [{"w": tau}], method="dare", density=0.3,
                          key=jax.random.key(1))["w"]
    np.testing.assert_array_equal(out, again)  # the same key, the same merge
    other = connect.merge(base, [{"w": tau}], method="dare", density=0.3,
                          key=jax.random.key(2))["w"]
    assert not np.array_equal(out, other)


def test_dare_is_unbiased_over_keys():
    base = {"w": jnp.ones(50), "v": jnp.zeros((2, 3))}
    rng = np.random.default_rng(1)
    ft = {"w": jnp.asarray(1 + rng.normal(size=50), jnp.float32),
          "v": jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)}
    runs = [connect.merge(base, [ft], method="dare", density=0.25, key=jax.random.key(k))
            for k in range(2000)]
    for name in ("w", "v"):
        mean = np.mean([np.asarray(r[name]) for r in runs], axis=0)
        tau = np.asarray(ft[name]) - np.asarray(base[name])
        # standard error of the mean of tau * Bernoulli(0.25) / 0.25 over 2000 draws
        se = np.abs(tau) * np.sqrt(0.75 / 0.25 / 2000)
        assert np.all(np.abs(mean - np.asarray(ft[name])) <= 5 * se + 1e-6)


def test_dare_ties_drops_then_elects():
    base = {"w": jnp.zeros(1000)}
    fts = [{"w": jnp.ones(1000)}, {"w": -0.5 * jnp.ones(1000)}]
    out = np.asarray(connect.merge(base, fts, method="dare_ties", density=0.5,
                                   key=jax.random.key(0))["w"])
    # each entry: kept of model 1 -> 2.0 (its sign wins over -1.0); only model 2 -> -1.0
    assert set(np.unique(out).tolist()) <= {0.0, 2.0, -1.0}
    assert abs((out == 2.0).mean() - 0.5) < 0.06
    assert abs((out == -1.0).mean() - 0.25) < 0.06


# --------------------------------------------------------------------------- self merge
@st.composite
def _params(draw):
    shapes = draw(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 3)), min_size=1,
                           max_size=3))
    values = st.floats(-100, 100, allow_nan=False, width=32)
    return {f"l{i}": jnp.asarray(np.array(draw(st.lists(values, min_size=a * b,
                                                        max_size=a * b)),
                                          np.float32).reshape(a, b))
            for i, (a, b) in enumerate(shapes)}


@settings(max_examples=25, deadline=None)
@given(params=_params(), n=st.integers(1, 3), density=st.floats(0.05, 1.0),
       scale=st.floats(-2.0, 2.0, allow_nan=False))
def test_merging_a_model_with_itself_returns_it(params, n, density, scale):
    for method in METHODS:
        kw = {} if method in ("linear", "task_arithmetic") else {"density": density}
        if "dare" in method:
            kw["key"] = jax.random.key(0)
        out = connect.merge(params, [params] * n, method=method,
                            scale=1.0 if method == "linear" else scale, **kw)
        for name in params:
            np.testing.assert_array_equal(out[name], params[name])
    # a soup of copies of one model is that model, whatever the base
    other = jax.tree.map(lambda x: x + 1.0, params)
    soup = connect.merge(other, [params] * n, method="linear")
    for name in params:
        np.testing.assert_allclose(soup[name], params[name], rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- bad input
def test_merge_bad_input_is_explained():
    base = {"a": jnp.zeros(3), "b": jnp.zeros(2)}
    ft = {"a": jnp.ones(3), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"finetuned\[1\].*\['b'\]"):
        connect.merge(base, [ft, {"a": jnp.ones(3), "b": jnp.ones(4)}], method="linear")
    with pytest.raises(ValueError, match=r"\['c'\]|leaf"):
        connect.merge(base, [{**ft, "c": jnp.ones(1)}], method="linear")
    with pytest.raises(TypeError, match="list or tuple"):
        connect.merge(base, ft, method="linear")  # type: ignore[arg-type]
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"density must be a number in \(0, 1\]"):
            connect.merge(base, [ft], method="ties", density=bad)
    with pytest.raises(ValueError, match="pass key="):
        connect.merge(base, [ft], method="dare", density=0.5)
    with pytest.raises(ValueError, match="pass key="):
        connect.merge(base, [ft], method="dare_ties")
    with pytest.raises(ValueError, match="one number per fine-tuned model: 1 model"):
        connect.merge(base, [ft], method="task_arithmetic", weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="unknown merge method"):
        connect.merge(base, [ft], method="soup")
    with pytest.raises(ValueError, match="density is used by"):
        connect.merge(base, [ft], method="task_arithmetic", density=0.5)
    with pytest.raises(ValueError, match="takes no scale"):
        connect.merge(base, [ft], method="linear", scale=0.5)
    with pytest.raises(ValueError, match="non-negative weights"):
        connect.merge(base, [ft, ft], method="ties", weights=[1.0, -1.0])


# --------------------------------------------------------------------------- slerp
def test_slerp_of_orthogonal_vectors():
    a = {"w": jnp.array([3.0, 0.0, 0.0]), "n": jnp.array(1)}
    b = {"w": jnp.array([0.0, 3.0, 0.0]), "n": jnp.array(1)}
    mid = connect.slerp(a, b, 0.5)
    np.testing.assert_allclose(mid["w"], [3 / np.sqrt(2), 3 / np.sqrt(2), 0.0], rtol=1e-6)
    third = connect.slerp(a, b, 1 / 3)
    np.testing.assert_allclose(third["w"], [3 * np.cos(np.pi / 6), 3 * np.sin(np.pi / 6), 0],
                               rtol=1e-6, atol=1e-6)
    assert connect.slerp(a, b, 0.0) is a and connect.slerp(a, b, 1) is b
    # exact at the ends also when computed (no shortcut): t just inside the interval
    np.testing.assert_allclose(connect.slerp(a, b, 1e-9)["w"], a["w"], atol=1e-7)


def test_slerp_per_leaf_and_colinear_fallback():
    a = {"x": jnp.array([1.0, 0.0]), "y": jnp.array([2.0, 2.0])}
    b = {"x": jnp.array([0.0, 1.0]), "y": jnp.array([4.0, 4.0])}   # y colinear: linear
    mid = connect.slerp(a, b, 0.5)
    np.testing.assert_allclose(mid["x"], [np.sqrt(0.5)] * 2, rtol=1e-6)
    np.testing.assert_allclose(mid["y"], [3.0, 3.0], rtol=1e-6)
    z = connect.slerp({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, 0.25)
    np.testing.assert_allclose(z["w"], [0.25, 0.25])


def test_slerp_bad_input():
    a, b = {"w": jnp.ones(2)}, {"w": jnp.ones(2)}
    for t in (-0.1, 1.5, float("nan"), [0.5, 0.6]):
        with pytest.raises(ValueError, match=r"t must"):
            connect.slerp(a, b, t)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\['w'\]"):
        connect.slerp(a, {"w": jnp.ones(3)}, 0.5)


# --------------------------------------------------------------------------- planes
def test_task_plane_corners_are_the_models():
    data = classification_data(n=64)
    base = dense_params(jax.random.key(0))
    ft_a = jax.tree.map(lambda x: x + 0.3, dense_params(jax.random.key(1)))
    ft_b = dense_params(jax.random.key(2))
    d1, d2 = connect.task_plane(base, ft_a, ft_b)
    s = js.evaluate_plane(mlp_fn, base, d1, d2, data, [0.0, 0.5, 1.0], [0.0, 0.5, 1.0],
                          progress=False)
    loss = s.metrics["loss"]
    for (i, j), params in (((0, 0), base), ((2, 0), ft_a), ((0, 2), ft_b)):
        np.testing.assert_allclose(loss[i, j], mlp_fn(params, data)["loss"], rtol=1e-5)
    soup = connect.merge(base, [ft_a, ft_b], method="linear")
    np.testing.assert_allclose(loss[1, 1], mlp_fn(soup, data)["loss"], rtol=1e-5)
    assert abs(s.metadata["directions_cosine"]) > 0.0
    with pytest.raises(ValueError, match="ft_a equals base"):
        connect.task_plane(base, base, ft_b)


def test_plane_through_three_points():
    rng = np.random.default_rng(0)
    p = [{"w": jnp.asarray(rng.normal(size=5), jnp.float32)} for _ in range(3)]
    origin, d1, d2, coords = connect.plane_through(*p)
    assert coords.shape == (3, 2)
    assert abs(float(js.tree.dot(d1, d2))) < 1e-6
    np.testing.assert_allclose(float(js.tree.norm(d1)), 1.0, rtol=1e-6)
    for k in range(3):
        back = js.tree.axpy(coords[k, 1], d2, js.tree.axpy(coords[k, 0], d1, origin))
        np.testing.assert_allclose(back["w"], p[k]["w"], atol=1e-5)
    with pytest.raises(ValueError, match="lies on the line"):
        connect.plane_through(p[0], p[1], js.tree.axpy(2.0, js.tree.sub(p[1], p[0]), p[0]))


# --------------------------------------------------------------------------- paths
def bowl_fn(params, batch):
    """|w|^2 (a quadratic bowl), written as a batch mean."""
    return {"loss": jnp.sum(params["w"] ** 2) * jnp.mean(batch["x"] ** 2)}


BOWL_DATA = {"x": np.ones((37, 1), np.float32)}


def test_evaluate_path_along_a_great_circle_is_flat():
    rng = np.random.default_rng(0)
    u, v = np.linalg.qr(rng.normal(size=(10, 2)))[0].T
    a, b = {"w": jnp.asarray(3 * u, jnp.float32)}, {"w": jnp.asarray(3 * v, jnp.float32)}
    ts = np.linspace(0, 1, 21)
    s = connect.evaluate_path(bowl_fn, lambda t: connect.slerp(a, b, t), BOWL_DATA, ts,
                              batch_size=8, progress=False)
    assert s.metadata["kind"] == "path"
    np.testing.assert_allclose(s.metrics["loss"], 9.0, rtol=1e-5)
    assert connect.barrier(s).height < 1e-4
    # the straight line between the same points dips inside the bowl: the barrier of
    # -loss is 9 / 2 at t = 1/2, and the path values are the line's
    line = connect.evaluate_path(bowl_fn, lambda t: js.tree.axpy(t, js.tree.sub(b, a), a),
                                 BOWL_DATA, ts, progress=False)
    np.testing.assert_allclose(line.metrics["loss"], 9.0 * ((1 - ts) ** 2 + ts ** 2), rtol=1e-5)
    dip = js.Surface(ts, None, {"loss": -line.metrics["loss"]})
    assert connect.barrier(dip).height == pytest.approx(4.5, rel=1e-5)
    ref = js.interpolate(bowl_fn, a, b, BOWL_DATA, ts, progress=False)
    np.testing.assert_allclose(line.metrics["loss"], ref.metrics["loss"], rtol=1e-6)


def test_evaluate_path_on_a_curve_equals_evaluate_curve():
    data = classification_data(n=50)
    pa, pb = dense_params(jax.random.key(0)), dense_params(jax.random.key(1))
    bend = jax.tree.map(lambda x, y: 0.5 * (x + y) + 0.2, pa, pb)
    curve = connect.Curve("bezier", [pa, bend, pb])
    ts = [0.0, 0.25, 0.5, 1.0]
    a = connect.evaluate_path(mlp_fn, curve, data, ts, progress=False)
    b = connect.evaluate_curve(mlp_fn, curve, data, ts, progress=False)
    np.testing.assert_allclose(a.metrics["loss"], b.metrics["loss"], rtol=1e-5)


def test_evaluate_path_store_keyed_by_path_fingerprint(tmp_path):
    data = classification_data(n=40)
    pa, pb = dense_params(jax.random.key(0)), dense_params(jax.random.key(1))
    path = lambda t: connect.slerp(pa, pb, t)  # noqa: E731
    ts = np.linspace(0, 1, 5)
    store = tmp_path / "store"
    first = connect.evaluate_path(mlp_fn, path, data, ts, store=store,
                                  path_fingerprint={"path": "slerp"}, progress=False)
    again = connect.evaluate_path(mlp_fn, path, data, ts, store=store,
                                  path_fingerprint={"path": "slerp"}, progress=False)
    np.testing.assert_array_equal(first.metrics["loss"], again.metrics["loss"])
    assert again.metadata["path_fingerprint"] == {"path": "slerp"}
    with pytest.raises(StoreMismatchError):
        connect.evaluate_path(mlp_fn, path, data, ts, store=store,
                              path_fingerprint={"path": "other"}, progress=False)
    with pytest.raises(StoreMismatchError):   # another path, same name
        connect.evaluate_path(mlp_fn, lambda t: connect.slerp(pb, pa, t), data, ts,
                              store=store, path_fingerprint={"path": "slerp"}, progress=False)


def test_evaluate_path_batchnorm_policies():
    import flax.linen as nn
    import optax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            x = nn.Dense(6, name="dense")(x)
            x = nn.BatchNorm(use_running_average=not train, name="bn")(x)
            return nn.Dense(3, name="head")(nn.relu(x))

    data = classification_data(n=45)
    model = Net()
    va, vb = (model.init(jax.random.key(k), data["x"][:2]) for k in (0, 1))
    va = {**va, "batch_stats": {"bn": {"mean": jnp.full((6,), 0.3), "var": jnp.full((6,), 2.0)}}}
    vb = {**vb, "batch_stats": {"bn": {"mean": jnp.full((6,), -0.2), "var": jnp.full((6,), 0.5)}}}
    fn, pa = js.flax.adapt(model, va)
    fn_b, pb = js.flax.adapt(model, vb)
    path = lambda t: connect.slerp(pa, pb, t)  # noqa: E731
    ts = [0.0, 0.4, 1.0]
    s = connect.evaluate_path(fn, path, data, ts, progress=False)
    assert s.metadata["state_policy"] == "interpolate"
    assert s.metrics["loss"][0] == pytest.approx(js.dataset_mean(fn, data)(pa)["loss"], rel=1e-6)
    assert s.metrics["loss"][-1] == pytest.approx(js.dataset_mean(fn_b, data)(pb)["loss"],
                                                  rel=1e-6)
    mid_state = {"batch_stats": {"bn": {"mean": jnp.full((6,), 0.6 * 0.3 + 0.4 * -0.2),
                                        "var": jnp.full((6,), 0.6 * 2.0 + 0.4 * 0.5)}}}
    want = js.dataset_mean(lambda p, b: fn.jaxsurf_state.apply(p, mid_state, b),
                           data)(path(0.4))
    assert s.metrics["loss"][1] == pytest.approx(want["loss"], rel=1e-5)
    fixed = connect.evaluate_path(fn, path, data, ts, state_policy="fixed", progress=False)
    assert fixed.metrics["loss"][-1] != pytest.approx(s.metrics["loss"][-1], rel=1e-4)
    rec = connect.evaluate_path(fn, path, data, [0.4], state_policy="recompute",
                                batch_size=45, progress=False)
    mid = path(0.4)
    h = np.asarray(data["x"], np.float64) @ np.asarray(mid["dense"]["kernel"], np.float64) \
        + np.asarray(mid["dense"]["bias"], np.float64)
    stats = {"bn": {"mean": jnp.asarray(h.mean(0), jnp.float32),
                    "var": jnp.asarray(h.var(0), jnp.float32)}}
    logits = model.apply({"params": mid, "batch_stats": stats}, data["x"])
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, data["y"]).mean()  # type: ignore
    assert rec.metrics["loss"][0] == pytest.approx(float(ce), rel=1e-4)
    # a merge's end points are not an adapter's arrays: say what to do
    merged = lambda t: connect.merge(pa, [pb], method="task_arithmetic", scale=t)  # noqa: E731
    with pytest.raises(ValueError, match="state_policy='recompute'"):
        connect.evaluate_path(fn, merged, data, ts, progress=False)


def test_evaluate_path_bad_input():
    a = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="strictly increasing"):
        connect.evaluate_path(bowl_fn, lambda t: a, BOWL_DATA, [0.5, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        connect.evaluate_path(bowl_fn, lambda t: a, BOWL_DATA, [0.0, 1.5])
    with pytest.raises(TypeError, match="callable"):
        connect.evaluate_path(bowl_fn, a, BOWL_DATA, [0.0, 1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"path\(1\).*\['w'\]"):
        connect.evaluate_path(bowl_fn, lambda t: {"w": jnp.ones(3 if t < 1 else 4)}, BOWL_DATA,
                              [0.0, 1.0])
    with pytest.raises(ValueError, match="needs fn from js.flax.adapt"):
        connect.evaluate_path(bowl_fn, lambda t: a, BOWL_DATA, [0.0, 1.0],
                              state_policy="recompute")
    with pytest.raises(TypeError, match="path_fingerprint"):
        connect.evaluate_path(bowl_fn, lambda t: a, BOWL_DATA, [0.0, 1.0],
                              path_fingerprint=3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- figures
def test_plane_coordinates_of_merges():
    base = dense_params(jax.random.key(0))
    fa = jax.tree.map(lambda x: x + 0.2, dense_params(jax.random.key(1)))
    fb = dense_params(jax.random.key(2))
    d1, d2 = connect.task_plane(base, fa, fb)
    ta = connect.merge(base, [fa, fb], method="task_arithmetic", weights=[0.3, 0.6])
    a, b, dist = connect.plane_coordinates(ta, base, d1, d2)
    assert (a, b) == (pytest.approx(0.3, abs=1e-5), pytest.approx(0.6, abs=1e-5))
    assert dist < 1e-4
    ties = connect.merge(base, [fa, fb], method="ties", density=0.2)
    assert connect.plane_coordinates(ties, base, d1, d2)[2] > 0.1


def test_contour_marks_points_and_says_the_axes_are_skewed(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = np.linspace(-0.5, 1.5, 9)
    A, B = np.meshgrid(g, g, indexing="ij")
    s = js.Surface(g, g, {"loss": (A - 0.5) ** 2 + (B - 0.5) ** 2 + 0.1},
                   {"directions_cosine": 0.42,
                    "axis_labels": ["lambda_A (task vector A)", "lambda_B (task vector B)"]})
    fig = js.plot.contour(s, points={"fine-tune A": (1, 0), "fine-tune B": (0, 1),
                                     "TIES": (0.7, 0.8)}, out=tmp_path / "plane.png")
    ax = fig.axes[0]
    assert "cos(d1, d2) = 0.42" in ax.get_xlabel() and "not orthogonal" in ax.get_xlabel()
    texts = [t.get_text() for t in ax.texts]
    assert {"fine-tune A", "fine-tune B", "TIES"} <= set(texts)
    marked = {tuple(np.round(np.asarray(line.get_xydata())[0], 6)) for line in ax.lines
              if line.get_label() in ("fine-tune A", "fine-tune B", "TIES")}
    assert marked == {(1.0, 0.0), (0.0, 1.0), (0.7, 0.8)}
    assert (tmp_path / "plane.png").stat().st_size > 0
    plt.close(fig)
    ortho = js.Surface(g, g, {"loss": A ** 2 + B ** 2 + 0.1}, {"directions_cosine": 0.001})
    fig = js.plot.contour(ortho)
    assert "orthogonal" not in fig.axes[0].get_xlabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="outside the grid"):
        js.plot.contour(s, points={"far": (3.0, 0.0)})
    with pytest.raises(ValueError, match="two numbers"):
        js.plot.contour(s, points={"bad": (1.0,)})


# --------------------------------------------------------------------------- alignment
def _dense_model():
    from jaxsurf import models

    return models.DenseRegressor(hidden=2, width=24, outputs=10, dropout=0.0,
                                 activation="relu")


def _dense_hidden(model, pre=False):
    """activations(variables, batch): every hidden layer's output (or pre-activation)."""
    def activations(variables, batch):
        _, state = model.apply(variables, batch["x"], capture_intermediates=True,
                               mutable=["intermediates"])
        inter = state["intermediates"]
        outs = [inter[f"hidden_{i}"]["__call__"][0] for i in range(2)]
        return outs if pre else [jax.nn.relu(h) for h in outs]
    return activations


def _random_perms(spec, seed):
    rng = np.random.default_rng(seed)
    perms = {}
    for name, group in spec.groups.items():
        perm = np.arange(group.size)
        for block in group.index_blocks():
            perm[block] = rng.permutation(block)
        perms[name] = perm
    return perms


def test_activation_matching_dense_net_same_function_and_recovers_a_permutation():
    model = _dense_model()
    x = jax.random.normal(jax.random.key(5), (200, 20))
    data = {"x": np.asarray(x)}
    va, vb = model.init(jax.random.key(0), x), model.init(jax.random.key(1), x)
    spec = connect.mlp_spec(va)
    acts = _dense_hidden(model)
    aligned = connect.align(va, vb, spec, method="activation", data=data, activations=acts,
                            batch_size=64)
    np.testing.assert_allclose(model.apply(aligned, x), model.apply(vb, x), rtol=1e-5,
                               atol=1e-5)
    perms = connect.activation_matching(va, vb, spec, data, acts)
    assert any(not np.array_equal(p, np.arange(len(p))) for p in perms.values())
    # the activations of the aligned net correlate better, unit by unit, than before
    def unit_corr(v):
        ha, hb = acts(va, data)[0], acts(v, data)[0]
        ha, hb = np.asarray(ha) - np.asarray(ha).mean(0), np.asarray(hb) - np.asarray(hb).mean(0)
        return np.mean((ha * hb).sum(0) / (np.linalg.norm(ha, axis=0) *
                                           np.linalg.norm(hb, axis=0) + 1e-12))
    assert unit_corr(aligned) > unit_corr(vb) + 0.1
    # B = A with its units shuffled: activation matching gives A back
    shuffled = connect.apply_permutation(va, spec, _random_perms(spec, 3))
    back = connect.align(va, shuffled, spec, method="activation", activations=acts,
                         data=[{"x": np.asarray(x[:100])}, {"x": np.asarray(x[100:])}])
    for p, q in zip(jax.tree.leaves(back), jax.tree.leaves(va)):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))


def test_activation_matching_resnet20_with_batchnorm_same_function():
    from jaxsurf import models

    model = models.resnet20(num_classes=10)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 16, 16, 3)), jnp.float32)
    rng = np.random.default_rng(1)

    def variables(seed):  # random weights, BatchNorm parameters and statistics
        v = model.init(jax.random.key(seed), x)
        return jax.tree_util.tree_map_with_path(
            lambda p, a: a if a.ndim > 1 else jnp.asarray(rng.uniform(0.5, 1.5, a.shape),
                                                          a.dtype), v)

    va, vb = variables(0), variables(1)
    spec = connect.resnet_spec(va)
    blocks = [k for k in va["params"] if k.startswith("stage")]

    def activations(variables, batch):
        _, state = model.apply(variables, batch["x"], capture_intermediates=True,
                               mutable=["intermediates"])
        inter = state["intermediates"]
        out = {f"{k}_inner": jax.nn.relu(inter[k]["bn1"]["__call__"][0]) for k in blocks}
        out["res"] = [inter[k]["__call__"][0] for k in blocks if k.startswith("stage3")]
        return out

    aligned = connect.align(va, vb, spec, method="activation", data={"x": np.asarray(x)},
                            activations=activations, batch_size=4)

    def every_stage(variables, batch):  # the stream after every block, 16, 32 and 64 wide
        out = activations(variables, batch)
        _, state = model.apply(variables, batch["x"], capture_intermediates=True,
                               mutable=["intermediates"])
        out["res"] = [state["intermediates"][k]["__call__"][0] for k in blocks]
        return [out[name] for name in spec.groups]

    all_stages = connect.align(va, vb, spec, method="activation", data={"x": np.asarray(x)},
                               activations=every_stage)
    moved = [k for k, p in connect.activation_matching(va, vb, spec, {"x": np.asarray(x)},
                                                       activations).items()
             if not np.array_equal(p, np.arange(len(p)))]
    assert len(moved) > 5
    y = np.asarray(model.apply(vb, x))
    for v in (aligned, all_stages):
        np.testing.assert_allclose(model.apply(v, x), y, rtol=1e-4, atol=1e-4 * np.abs(y).max())


def test_activation_matching_bad_input():
    model = _dense_model()
    x = np.asarray(jax.random.normal(jax.random.key(5), (16, 20)))
    va, vb = model.init(jax.random.key(0), x), model.init(jax.random.key(1), x)
    spec = connect.mlp_spec(va)
    with pytest.raises(ValueError, match="needs data="):
        connect.align(va, vb, spec, method="activation")
    with pytest.raises(ValueError, match="unknown alignment method"):
        connect.align(va, vb, spec, method="gradient")
    with pytest.raises(ValueError, match="returned 1 entries, but the spec has 2 groups"):
        connect.align(va, vb, spec, method="activation", data={"x": x},
                      activations=lambda v, b: [_dense_hidden(model)(v, b)[0]])
    with pytest.raises(ValueError, match=r"without group\(s\) \['hidden_1'\]"):
        connect.align(va, vb, spec, method="activation", data={"x": x},
                      activations=lambda v, b: {"hidden_0": _dense_hidden(model)(v, b)[0]})
    with pytest.raises(ValueError, match="last axis must hold the group's 24 units"):
        connect.align(va, vb, spec, method="activation", data={"x": x},
                      activations=lambda v, b: [h.T for h in _dense_hidden(model)(v, b)])


def test_repair_path_restores_the_interpolated_statistics():
    model = _dense_model()
    x = jax.random.normal(jax.random.key(5), (256, 20))
    data = {"x": np.asarray(x)}
    va, vb = model.init(jax.random.key(0), x), model.init(jax.random.key(1), x)
    vb = jax.tree.map(lambda w: 1.7 * w, vb)
    spec = connect.mlp_spec(va)
    pre = _dense_hidden(model, pre=True)
    vb = connect.align(va, vb, spec)
    path = connect.repair_path(va, vb, spec, data, pre)
    assert path(0.0) is va and path(1) is vb
    t = 0.3
    repaired = pre(path(t), data)
    plain = pre(jax.tree.map(lambda a, b: (1 - t) * a + t * b, va, vb), data)
    ends = pre(va, data), pre(vb, data)
    for g in range(2):
        goal_mean = (1 - t) * np.mean(ends[0][g], 0) + t * np.mean(ends[1][g], 0)
        goal_std = (1 - t) * np.std(ends[0][g], 0) + t * np.std(ends[1][g], 0)
        np.testing.assert_allclose(np.mean(repaired[g], 0), goal_mean, atol=1e-4)
        np.testing.assert_allclose(np.std(repaired[g], 0), goal_std, rtol=1e-3, atol=1e-4)
    # without REPAIR the second layer's spread has collapsed below the goal
    assert np.mean(np.std(plain[1], 0)) < 0.95 * np.mean(goal_std)
    with pytest.raises(ValueError, match="spec.producers"):
        connect.repair_path(va, vb, connect.PermutationSpec(spec.groups, spec.axes), data, pre)


def test_merge_and_slerp_on_whole_equinox_modules():
    eqx = pytest.importorskip("equinox")
    a, b, base = (eqx.nn.MLP(3, 2, 8, 2, key=jax.random.key(k)) for k in range(3))
    x = jnp.ones((3,))
    for method in METHODS:
        key = jax.random.key(0) if "dare" in method else None
        merged = connect.merge(base, [a, b], method=method, key=key)
        assert isinstance(merged, eqx.nn.MLP) and merged.activation is base.activation
        assert merged(x).shape == (2,)
    mid = connect.slerp(a, b, 0.5)
    assert isinstance(mid, eqx.nn.MLP)
    w = np.asarray(mid.layers[0].weight)
    wa, wb = np.asarray(a.layers[0].weight), np.asarray(b.layers[0].weight)
    omega = np.arccos(np.vdot(wa, wb) / (np.linalg.norm(wa) * np.linalg.norm(wb)))
    np.testing.assert_allclose(w, np.sin(omega / 2) / np.sin(omega) * (wa + wb), rtol=1e-5,
                               atol=1e-6)
