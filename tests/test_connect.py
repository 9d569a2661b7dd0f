"""js.connect: curves between solutions, barriers, the curve plane, BatchNorm
statistics recompute and permutation alignment."""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsurf as js
from jaxsurf import models
from helpers import classification_data, dense_params, mlp_fn

connect = js.connect


# --------------------------------------------------------------------------- toy loss
# A ring of minima |w - c|^2 = r^2 through a = (-1, 0) and b = (1, 0); the straight
# line between them crosses the inside of the ring, where the loss is ~1.
CENTRE = np.array([0.0, -0.3], np.float32)
RADIUS2 = float(1.0 + 0.3 ** 2)


def ring_fn(params, batch):
    w = params["w"]
    value = (jnp.sum((w - CENTRE) ** 2) - RADIUS2) ** 2
    return {"loss": value + 0.0 * jnp.mean(batch["x"])}


RING_A = {"w": jnp.array([-1.0, 0.0], jnp.float32)}
RING_B = {"w": jnp.array([1.0, 0.0], jnp.float32)}
RING_DATA = {"x": np.zeros((64, 1), np.float32)}


def test_fit_curve_finds_a_low_path_where_the_line_has_a_barrier():
    ts = np.linspace(0, 1, 41)
    line = connect.evaluate_curve(ring_fn, connect.line(RING_A, RING_B), RING_DATA, ts,
                                  progress=False)
    curve = connect.fit_curve(ring_fn, RING_A, RING_B, RING_DATA, epochs=60, batch_size=16,
                              optimizer=optax.adam(0.05), key=jax.random.key(0), log=None)
    on_curve = connect.evaluate_curve(ring_fn, curve, RING_DATA, ts, progress=False)
    line_barrier, curve_barrier = connect.barrier(line), connect.barrier(on_curve)
    assert line_barrier.height > 0.9 and abs(line_barrier.t - 0.5) < 0.05
    assert curve_barrier.height < 0.1 * line_barrier.height
    assert curve.bends[0]["w"][1] > 1.0  # the bend went round the ring, above the centre
    assert len(curve.metadata["history"]) == 60


def test_polychain_fits_too():
    curve = connect.fit_curve(ring_fn, RING_A, RING_B, RING_DATA, kind="polychain",
                              epochs=60, batch_size=16, optimizer=optax.adam(0.05),
                              key=jax.random.key(1), log=None)
    s = connect.evaluate_curve(ring_fn, curve, RING_DATA, np.linspace(0, 1, 41),
                               progress=False)
    assert connect.barrier(s).height < 0.3


def test_fit_curve_resumes_from_its_checkpoint_dir(tmp_path):
    kwargs = {"batch_size": 16, "optimizer": optax.adam(0.05), "key": jax.random.key(3),
              "log": None}
    straight = connect.fit_curve(ring_fn, RING_A, RING_B, RING_DATA, epochs=4, **kwargs)
    lines = []
    connect.fit_curve(ring_fn, RING_A, RING_B, RING_DATA, epochs=2,
                      checkpoint_dir=tmp_path / "c", **kwargs)
    resumed = connect.fit_curve(ring_fn, RING_A, RING_B, RING_DATA, epochs=4,
                                checkpoint_dir=tmp_path / "c",
                                **{**kwargs, "log": lines.append})
    assert "resuming after epoch 2" in lines[0] and len(lines) == 3
    np.testing.assert_array_equal(resumed.bends[0]["w"], straight.bends[0]["w"])
    assert [h["epoch"] for h in resumed.metadata["history"]] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="num_bends: stored 1, requested 2"):
        connect.fit_curve(ring_fn, RING_A, RING_B, RING_DATA, epochs=4, num_bends=2,
                          checkpoint_dir=tmp_path / "c", **kwargs)


# --------------------------------------------------------------------------- curves
def _curve(kind="bezier", num_bends=1, seed=0):
    keys = jax.random.split(jax.random.key(seed), num_bends + 2)
    points = [dense_params(k) for k in keys]
    return connect.Curve(kind, points)


@pytest.mark.parametrize("kind", connect.KINDS)
@pytest.mark.parametrize("num_bends", [1, 3])
def test_end_points_are_exact(kind, num_bends):
    curve = _curve(kind, num_bends)
    assert curve.at(0) is curve.params_a and curve.at(1.0) is curve.params_b
    c = curve.coefficients([0.0, 1.0])
    assert c[0].tolist() == [1.0] + [0.0] * (num_bends + 1)
    assert c[1].tolist() == [0.0] * (num_bends + 1) + [1.0]
    data = classification_data()
    s = connect.evaluate_curve(mlp_fn, curve, data, [0.0, 0.5, 1.0], batch_size=25,
                               progress=False)
    for i, p in ((0, curve.params_a), (2, curve.params_b)):
        exact = js.dataset_mean(mlp_fn, data, batch_size=25)(p)
        assert s.metrics["loss"][i] == pytest.approx(exact["loss"], rel=1e-6)


@settings(max_examples=30, deadline=None)
@given(t=st.floats(0, 1), kind=st.sampled_from(connect.KINDS), bends=st.integers(0, 4))
def test_coefficients_sum_to_one_and_are_nonnegative(t, kind, bends):
    c = connect.curve_coefficients(kind, bends, t)
    assert c.shape == (bends + 2,)
    assert np.all(c >= 0) and c.sum() == pytest.approx(1.0)


def test_bezier_midpoint_and_evaluation_match_the_points():
    curve = _curve("bezier", 1)
    a, bend, b = curve.points
    mid = curve.at(0.5)
    want = jax.tree_util.tree_map(lambda x, y, z: 0.25 * x + 0.5 * y + 0.25 * z, a, bend, b)
    for got, exp in zip(jax.tree_util.tree_leaves(mid), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-7)
    data = classification_data()
    ts = np.array([0.0, 0.3, 0.5, 1.0])
    s = connect.evaluate_curve(mlp_fn, curve, data, ts, progress=False)
    direct = [js.dataset_mean(mlp_fn, data)(curve.at(float(t)))["loss"] for t in ts]
    np.testing.assert_allclose(s.metrics["loss"], direct, rtol=1e-5)
    assert s.metadata["kind"] == "curve" and s.betas is None


def test_line_curve_matches_interpolate():
    curve = _curve("bezier", 1)
    data = classification_data()
    ts = np.linspace(0, 1, 5)
    s = connect.evaluate_curve(mlp_fn, connect.line(curve.params_a, curve.params_b), data,
                               ts, progress=False)
    ref = js.interpolate(mlp_fn, curve.params_a, curve.params_b, data, ts, progress=False)
    np.testing.assert_allclose(s.metrics["loss"], ref.metrics["loss"], rtol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    curve = _curve("polychain", 2)
    curve.metadata["note"] = "x"
    path = curve.save(tmp_path / "curve.npz")
    back = connect.load_curve(path, params_like=curve.params_a)
    assert back.kind == "polychain" and back.num_bends == 2 and back.metadata["note"] == "x"
    for p, q in zip(curve.points, back.points):
        for x, y in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(q)):
            np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="other params"):
        connect.load_curve(path, params_like=dense_params(jax.random.key(0), (5, 4, 4, 3)))


# --------------------------------------------------------------------------- barrier
def test_barrier_of_a_convex_quadratic_is_zero():
    def quad(params, batch):
        return jnp.sum((params["w"] - 0.3) ** 2) + 0.0 * jnp.mean(batch["x"])

    a, b = {"w": jnp.array([-2.0, 1.0])}, {"w": jnp.array([1.5, 4.0])}
    s = js.interpolate(quad, a, b, RING_DATA, np.linspace(-0.5, 1.5, 41), progress=False)
    assert connect.barrier(s) == (0.0, 0.0)


def test_barrier_value_and_grid_checks():
    ts = np.linspace(0, 1, 11)
    s = js.Surface(ts, None, {"loss": 1.0 + ts + np.sin(np.pi * ts)})
    height, t = connect.barrier(s)
    assert height == pytest.approx(1.0) and t == pytest.approx(0.5)
    with pytest.raises(ValueError, match="t = 0 and t = 1"):
        connect.barrier(js.Surface(np.linspace(0.1, 1, 5), None, {"loss": np.ones(5)}))
    with pytest.raises(KeyError, match="accuracy"):
        connect.barrier(s, "accuracy")


def test_error_barrier_is_built_in():
    """barrier(metric="error") is the barrier of 1 - accuracy (issue 27)."""
    ts = np.linspace(0, 1, 11)
    accuracy = 0.9 - 0.4 * np.sin(np.pi * ts)  # error 0.1 at the ends, 0.5 midway
    s = js.Surface(ts, None, {"loss": 1.0 + ts, "accuracy": accuracy})
    height, t = connect.barrier(s, metric="error")
    assert height == pytest.approx(0.4) and t == pytest.approx(0.5)
    with pytest.raises(KeyError, match="1 - accuracy"):
        connect.barrier(js.Surface(ts, None, {"loss": ts}), "error")


# --------------------------------------------------------------------------- plane
def test_curve_plane_holds_the_three_points():
    curve = _curve("bezier", 1)
    origin, d1, d2, coords = connect.curve_plane(curve)
    assert float(js.tree.dot(d1, d2)) == pytest.approx(0.0, abs=1e-6)
    assert float(js.tree.norm(d1)) == pytest.approx(1.0, abs=1e-6)
    assert coords[0].tolist() == [0.0, 0.0] and coords[2][1] == pytest.approx(0.0, abs=1e-5)
    for point, (x, y) in zip(curve.points, coords):
        rebuilt = js.tree.axpy(y, d2, js.tree.axpy(x, d1, origin))
        for p, q in zip(jax.tree_util.tree_leaves(rebuilt), jax.tree_util.tree_leaves(point)):
            np.testing.assert_allclose(p, q, atol=1e-5)
    path = connect.curve_path(curve, coords, [0.0, 1.0])
    np.testing.assert_allclose(path, coords[[0, 2]])
    with pytest.raises(ValueError, match="at least one bend"):
        connect.curve_plane(connect.line(curve.params_a, curve.params_b))


# --------------------------------------------------------------------------- BatchNorm
class _BNNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dense(6, name="dense")(x)
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(h)
        return nn.Dense(3, name="head")(nn.relu(h))


def test_recompute_batch_stats_gives_the_data_set_statistics():
    data = classification_data(n=103)
    model = _BNNet()
    variables = model.init(jax.random.key(0), data["x"][:2])
    stats = connect.recompute_batch_stats(model, variables["params"], data, batch_size=25)
    h = np.asarray(data["x"], np.float64) @ np.asarray(variables["params"]["dense"]["kernel"]) \
        + np.asarray(variables["params"]["dense"]["bias"])
    np.testing.assert_allclose(stats["bn"]["mean"], h.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats["bn"]["var"], h.var(0), rtol=1e-4, atol=1e-6)


def test_evaluate_curve_recomputes_statistics_at_every_t():
    data = classification_data(n=103)
    model = _BNNet()
    va = model.init(jax.random.key(0), data["x"][:2])
    vb = model.init(jax.random.key(1), data["x"][:2])
    curve = connect.line(va["params"], vb["params"])
    recompute = connect.BatchStatsRecompute(model, data, batch_size=50)
    fn = js.flax.linen_metrics_fn(model)
    s = connect.evaluate_curve(fn, curve, data, [0.0, 0.5, 1.0], recompute=recompute,
                               progress=False)
    mid = curve.at(0.5)
    want = js.dataset_mean(fn, data)({"params": mid, "batch_stats": recompute(mid)})
    assert s.metrics["loss"][1] == pytest.approx(want["loss"], rel=1e-5)
    assert "recomputed" in s.metadata["batch_norm"]


def _adapted_bn_pair(data):
    """Two Linen BatchNorm nets with trained-looking (non-default) statistics, adapted."""
    model = _BNNet()
    va, vb = (model.init(jax.random.key(k), data["x"][:2]) for k in (0, 1))
    va = {**va, "batch_stats": {"bn": {"mean": jnp.full((6,), 0.3), "var": jnp.full((6,), 2.0)}}}
    vb = {**vb, "batch_stats": {"bn": {"mean": jnp.full((6,), -0.2), "var": jnp.full((6,), 0.5)}}}
    fn, pa = js.flax.adapt(model, va)
    fn_b, pb = js.flax.adapt(model, vb)
    return model, (va, vb), (fn, fn_b), (pa, pb)


def test_evaluate_curve_recompute_policy_recomputes_adapted_batchnorm_statistics():
    data = classification_data(n=103)
    model, _, (fn, _), (pa, pb) = _adapted_bn_pair(data)
    curve = connect.line(pa, pb)
    s = connect.evaluate_curve(fn, curve, data, [0.0, 0.5, 1.0], batch_size=103,
                               state_policy="recompute", progress=False)
    assert s.metadata["state_policy"] == "recompute"
    assert s.metadata["recompute_examples"] == 103
    # by hand: the data-set mean and (biased) variance of the BatchNorm inputs at t = 0.5
    mid = curve.at(0.5)
    h = np.asarray(data["x"], np.float64) @ np.asarray(mid["dense"]["kernel"], np.float64) \
        + np.asarray(mid["dense"]["bias"], np.float64)
    stats = {"bn": {"mean": jnp.asarray(h.mean(0), jnp.float32),
                    "var": jnp.asarray(h.var(0), jnp.float32)}}
    logits = model.apply({"params": mid, "batch_stats": stats}, data["x"])
    want = optax.softmax_cross_entropy_with_integer_labels(logits, data["y"]).mean()
    assert s.metrics["loss"][1] == pytest.approx(float(want), rel=1e-4)
    # recomputing differs from holding model A's statistics
    fixed = connect.evaluate_curve(fn, curve, data, [0.5], state_policy="fixed", progress=False)
    assert abs(fixed.metrics["loss"][0] - s.metrics["loss"][1]) > 1e-3
    # recompute_data: statistics from other examples than those evaluated
    first_40 = {k: v[:40] for k, v in data.items()}
    other = connect.evaluate_curve(fn, curve, data, [0.5], recompute_data=first_40,
                                   progress=False)
    assert other.metadata["recompute_examples"] == 40
    assert other.metrics["loss"][0] != pytest.approx(s.metrics["loss"][1], rel=1e-6)


@pytest.mark.parametrize("kind, num_bends", [("bezier", 1), ("bezier", 2), ("polychain", 2)])
def test_evaluate_curve_interpolated_statistics_end_points_are_each_model(kind, num_bends):
    data = classification_data(n=61)
    _, _, (fn, fn_b), (pa, pb) = _adapted_bn_pair(data)
    bends = [jax.tree_util.tree_map(lambda x, k=k: x + 0.1 * k, pa)
             for k in range(1, num_bends + 1)]
    curve = connect.Curve(kind, [pa, *bends, pb])
    ts = [0.0, 0.3, 1.0]
    s = connect.evaluate_curve(fn, curve, data, ts, state_policy="interpolate", progress=False)
    assert s.metadata["state_policy"] == "interpolate"
    own_a, own_b = js.dataset_mean(fn, data)(pa), js.dataset_mean(fn_b, data)(pb)
    assert s.metrics["loss"][0] == own_a["loss"]
    assert s.metrics["loss"][-1] == own_b["loss"]
    # between: the statistics are (1 - t) * state_a + t * state_b for every curve kind
    state = {"batch_stats": {"bn": {"mean": jnp.full((6,), 0.7 * 0.3 + 0.3 * -0.2),
                                    "var": jnp.full((6,), 0.7 * 2.0 + 0.3 * 0.5)}}}
    want = js.dataset_mean(lambda p, b: fn.jaxsurf_state.apply(p, state, b),
                           data)(curve.at(0.3))
    assert s.metrics["loss"][1] == pytest.approx(want["loss"], rel=1e-5)
    # a curve whose end points are not the adapter's arrays needs their states
    copied = connect.Curve(kind, [jax.tree_util.tree_map(jnp.array, p) for p in curve.points])
    with pytest.raises(ValueError, match=r"states=\(state_a, state_b\)"):
        connect.evaluate_curve(fn, copied, data, ts, state_policy="interpolate")
    given = connect.evaluate_curve(fn, copied, data, ts, state_policy="interpolate",
                                   states=(fn.jaxsurf_state.state, fn_b.jaxsurf_state.state),
                                   progress=False)
    np.testing.assert_array_equal(given.metrics["loss"], s.metrics["loss"])


def test_evaluate_curve_state_policies_on_equinox_and_plain_fns():
    eqx = pytest.importorskip("equinox")
    data = classification_data(n=40)

    class Net(eqx.Module):
        dense: eqx.nn.Linear
        bn: eqx.nn.BatchNorm
        head: eqx.nn.Linear

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.dense = eqx.nn.Linear(5, 6, key=k1)
            self.bn = eqx.nn.BatchNorm(6, axis_name="batch", mode="batch")
            self.head = eqx.nn.Linear(6, 3, key=k2)

        def __call__(self, x, state):
            h, state = self.bn(self.dense(x), state)
            return self.head(jax.nn.relu(h)), state

    net_a, state_a = eqx.nn.make_with_state(Net)(jax.random.key(0))
    net_b, state_b = eqx.nn.make_with_state(Net)(jax.random.key(1))
    fn, pa = js.equinox.adapt(net_a, state_a)
    fn_b, pb = js.equinox.adapt(net_b, state_b)
    curve = connect.line(pa, pb)
    with pytest.raises(ValueError, match="pass state_policy='interpolate'"):
        connect.evaluate_curve(fn, curve, data, [0.0, 1.0], state_policy="recompute")
    s = connect.evaluate_curve(fn, curve, data, [0.0, 0.5, 1.0], state_policy="interpolate",
                               progress=False)
    assert s.metrics["loss"][0] == js.dataset_mean(fn, data)(pa)["loss"]
    assert s.metrics["loss"][-1] == js.dataset_mean(fn_b, data)(pb)["loss"]
    # a plain fn has no state: the default is unchanged, state policies are refused
    plain = _curve()
    connect.evaluate_curve(mlp_fn, plain, classification_data(), [0.0, 1.0], progress=False)
    with pytest.raises(ValueError, match="needs fn from js.flax.adapt or js.equinox.adapt"):
        connect.evaluate_curve(mlp_fn, plain, classification_data(), [0.0, 1.0],
                               state_policy="recompute")


def test_fit_curve_state_policy_interpolate_trains_with_the_moving_statistics():
    data = classification_data(n=64)
    _, _, (fn, _), (pa, pb) = _adapted_bn_pair(data)
    fit = dict(epochs=4, batch_size=16, optimizer=optax.adam(0.05), key=jax.random.key(3),
               log=None)
    curve = connect.fit_curve(fn, pa, pb, data, state_policy="interpolate", **fit)
    fixed = connect.fit_curve(fn, pa, pb, data, **fit)
    assert curve.metadata["state_policy"] == "interpolate"
    assert fixed.metadata["state_policy"] == "fixed"
    assert not np.allclose(curve.bends[0]["dense"]["kernel"], fixed.bends[0]["dense"]["kernel"])
    ts = np.linspace(0, 1, 9)
    along = connect.evaluate_curve(fn, curve, data, ts, state_policy="interpolate",
                                   progress=False)
    straight = connect.evaluate_curve(fn, connect.line(pa, pb), data, ts,
                                      state_policy="interpolate", progress=False)
    assert along.metrics["loss"][1:-1].mean() < straight.metrics["loss"][1:-1].mean()
    with pytest.raises(ValueError, match="training-mode loss"):
        connect.fit_curve(fn, pa, pb, data, state_policy="recompute", **fit)
    with pytest.raises(ValueError, match="needs fn from js.flax.adapt"):
        connect.fit_curve(mlp_fn, dense_params(jax.random.key(0)),
                          dense_params(jax.random.key(1)), classification_data(),
                          state_policy="interpolate", **fit)


def test_evaluate_curve_state_policy_bad_input_is_explained():
    data = classification_data(n=30)
    model, (va, _), (fn, _), (pa, pb) = _adapted_bn_pair(data)
    curve = connect.line(pa, pb)
    with pytest.raises(ValueError, match="unknown state_policy 'mean'"):
        connect.evaluate_curve(fn, curve, data, [0.0], state_policy="mean")
    with pytest.raises(ValueError, match="recompute_data= is only used with"):
        connect.evaluate_curve(fn, curve, data, [0.0], state_policy="fixed",
                               recompute_data=data["x"])
    with pytest.raises(ValueError, match="cannot be combined with state_policy"):
        connect.evaluate_curve(js.flax.linen_metrics_fn(model), curve, data, [0.0],
                               recompute=connect.BatchStatsRecompute(model, data),
                               state_policy="recompute")
    with pytest.raises(TypeError, match="pass recompute_data="):
        connect.evaluate_curve(fn, curve, iter([data]), [0.5], state_policy="recompute")
    with pytest.raises(TypeError, match="states must be a pair"):
        connect.evaluate_curve(fn, curve, data, [0.5], state_policy="interpolate",
                               states=va["batch_stats"])


# --------------------------------------------------------------------------- alignment
def _integer_variables(variables, seed):
    """Integer-valued weights (two +-1 entries per output unit), BatchNorm that only
    shifts (variance + eps == 1): every sum is exact in float32, so a permuted network
    must give bit-for-bit the same outputs whatever order the sums run in."""
    rng = np.random.default_rng(seed)

    def leaf(path, x):
        name = jax.tree_util.keystr(path)
        if "'var'" in name:
            return np.full(x.shape, np.float32(1.0) - np.float32(1e-5), np.float32)
        if "'scale'" in name:
            return np.ones(x.shape, np.float32)
        if x.ndim <= 1:
            return rng.integers(-1, 2, x.shape).astype(np.float32)
        w = np.zeros((int(np.prod(x.shape[:-1])), x.shape[-1]), np.float32)
        for j in range(x.shape[-1]):
            w[rng.choice(w.shape[0], 2, replace=False), j] = rng.choice([-1.0, 1.0], 2)
        return w.reshape(x.shape)

    return jax.tree_util.tree_map_with_path(leaf, jax.device_get(variables))


def _random_perms(spec, seed):
    rng = np.random.default_rng(seed)
    perms = {}
    for name, group in spec.groups.items():
        perm = np.arange(group.size)
        for block in group.index_blocks():
            perm[block] = rng.permutation(block)
        perms[name] = perm
    return perms


def test_align_dense_net_same_function_bit_for_bit():
    model = models.DenseRegressor(hidden=2, width=24, outputs=10, dropout=0.0,
                                  activation="relu")
    x = np.random.default_rng(0).integers(-3, 4, (32, 20)).astype(np.float32)
    va = _integer_variables(model.init(jax.random.key(0), x), 1)
    vb = _integer_variables(model.init(jax.random.key(1), x), 2)
    spec = connect.mlp_spec(va)
    perms = connect.weight_matching(va, vb, spec)
    assert any(not np.array_equal(p, np.arange(len(p))) for p in perms.values())
    aligned = connect.apply_permutation(vb, spec, perms)
    np.testing.assert_array_equal(model.apply(aligned, x), model.apply(vb, x))
    np.testing.assert_array_equal(model.apply(connect.align(va, vb, spec), x),
                                  model.apply(vb, x))


def test_align_dense_net_with_gaussian_weights_moves_closer():
    model = models.DenseRegressor(hidden=2, width=32, outputs=10, dropout=0.0,
                                  activation="relu")
    x = jax.random.normal(jax.random.key(5), (16, 20))
    va, vb = model.init(jax.random.key(0), x), model.init(jax.random.key(1), x)
    aligned = connect.align(va, vb, connect.mlp_spec(va))
    np.testing.assert_allclose(model.apply(aligned, x), model.apply(vb, x), rtol=1e-5,
                               atol=1e-5)
    def dist(p):
        return float(js.tree.norm(js.tree.sub(p["params"], va["params"])))

    assert dist(aligned) < 0.9 * dist(vb)


def test_align_plain_pytree_mlp_in_pytorch_layout():
    """Not Flax: a plain dict MLP with (out, in) weights."""
    rng = np.random.default_rng(0)
    sizes = (7, 16, 12, 3)

    def init(seed):
        r = np.random.default_rng(seed)
        return {f"l{i}": {"w": r.normal(size=(b, a)).astype(np.float32),
                          "b": r.normal(size=b).astype(np.float32)}
                for i, (a, b) in enumerate(itertools.pairwise(sizes))}

    def apply(p, x):
        for i in range(len(sizes) - 1):
            x = x @ p[f"l{i}"]["w"].T + p[f"l{i}"]["b"]
            x = np.maximum(x, 0) if i < len(sizes) - 2 else x
        return x

    pa, pb = init(1), init(2)
    spec = connect.mlp_spec(pb, layers=["l0", "l1", "l2"], weight="w", bias="b", in_axis=1)
    aligned = connect.align(pa, pb, spec)
    x = rng.normal(size=(9, 7)).astype(np.float32)
    np.testing.assert_allclose(apply(aligned, x), apply(pb, x), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def resnet20_init():
    model = models.resnet20(num_classes=10)
    x = np.random.default_rng(0).integers(-2, 3, (1, 16, 16, 3)).astype(np.float32)
    return model, x, jax.device_get(model.init(jax.random.key(0), x))


@pytest.fixture(scope="module")
def resnet20_pair(resnet20_init):
    model, x, init = resnet20_init
    return model, x, _integer_variables(init, 1), _integer_variables(init, 2)


def test_align_resnet20_with_batchnorm_same_function_bit_for_bit(resnet20_pair):
    model, x, va, vb = resnet20_pair
    spec = connect.resnet_spec(va)
    assert "['batch_stats']['bn_init']['mean']" in spec.follow
    y = np.asarray(model.apply(vb, x))
    assert np.abs(y).max() > 1  # the outputs are not trivially zero
    aligned = connect.align(va, vb, spec)
    np.testing.assert_array_equal(model.apply(aligned, x), y)
    shuffled = connect.apply_permutation(vb, spec, _random_perms(spec, 3))
    np.testing.assert_array_equal(model.apply(shuffled, x), y)


def test_resnet_nested_residual_streams_are_needed(resnet20_pair):
    """A spec that permutes each stage's residual stream on its own (ignoring the
    option-A zero padding that ties them) changes the function, so the test above
    can fail; and a permutation that leaves the nested blocks is refused."""
    model, x, va, vb = resnet20_pair
    spec = connect.resnet_spec(va)
    names = {16: "res1", 32: "res2", 64: "res3"}

    def untie(entry):
        if isinstance(entry, tuple) and entry[0] == "res":
            return names[64 if entry[1] is None else len(entry[1])]
        return entry

    naive = connect.PermutationSpec(
        {**{k: g for k, g in spec.groups.items() if k != "res"},
         **{n: connect.Group(w) for w, n in names.items()}},
        {path: tuple(untie(e) for e in entries) for path, entries in spec.axes.items()},
        spec.follow)
    broken = connect.apply_permutation(vb, naive, _random_perms(naive, 3))
    assert not np.array_equal(model.apply(broken, x), model.apply(vb, x))
    perms = _random_perms(spec, 3)
    perms["res"] = np.random.default_rng(4).permutation(64)
    with pytest.raises(ValueError, match="moves units out of the block"):
        connect.apply_permutation(vb, spec, perms)


def test_weight_matching_recovers_a_hidden_permutation(resnet20_init):
    """B = A with its units shuffled: aligning B to A must give A back exactly."""
    _, _, va = resnet20_init
    spec = connect.resnet_spec(va)
    vb = connect.apply_permutation(va, spec, _random_perms(spec, 5))
    assert float(js.tree.norm(js.tree.sub(vb["params"], va["params"]))) > 1.0
    back = connect.align(va, vb, spec)
    for x, y in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(va)):
        np.testing.assert_array_equal(x, y)
    pa = dense_params(jax.random.key(0), (6, 9, 7, 3))
    mlp = connect.mlp_spec(pa, layers=["Dense_0", "Dense_1", "Dense_2"])
    pb = connect.apply_permutation(pa, mlp, _random_perms(mlp, 6))
    for x, y in zip(jax.tree_util.tree_leaves(connect.align(pa, pb, mlp)),
                    jax.tree_util.tree_leaves(pa)):
        np.testing.assert_array_equal(x, y)


def test_align_resnet20_gaussian_weights_close(resnet20_init):
    model, x, va = resnet20_init
    rng = np.random.default_rng(7)  # network b: every weight tensor's entries shuffled
    vb = jax.tree_util.tree_map(
        lambda v: rng.permutation(v.ravel()).reshape(v.shape) if v.ndim > 1 else v, va)
    x = jax.random.normal(jax.random.key(3), x.shape)
    aligned = connect.align(va, vb, connect.resnet_spec(va))
    np.testing.assert_allclose(model.apply(aligned, x), model.apply(vb, x), rtol=1e-4,
                               atol=1e-5)


# --------------------------------------------------------------------------- bad input
def test_bad_input_is_explained():
    a = dense_params(jax.random.key(0))
    other = dense_params(jax.random.key(1), (5, 4, 4, 3))
    with pytest.raises(ValueError, match=r"params_b does not match params_a at \['Dense_1'\]"):
        connect.fit_curve(mlp_fn, a, other, classification_data(), epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"\['Dense_1'\]"):
        connect.line(a, other)
    curve = _curve()
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
            curve.at(bad)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        connect.evaluate_curve(mlp_fn, curve, classification_data(), [0.0, 1.2])
    for bends in (0, -1, 1.5):
        with pytest.raises(ValueError, match="num_bends must be an integer >= 1"):
            connect.fit_curve(mlp_fn, a, a, classification_data(), num_bends=bends,
                              epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="unknown curve kind"):
        connect.fit_curve(mlp_fn, a, a, classification_data(), kind="spline", epochs=1)


def test_spec_not_matching_the_params_is_explained():
    small = models.DenseRegressor(hidden=2, width=8, outputs=3, dropout=0.0)
    big = models.DenseRegressor(hidden=3, width=8, outputs=3, dropout=0.0)
    x = np.ones((2, 4), np.float32)
    vs, vb = small.init(jax.random.key(0), x), big.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"built for other params: params_a has leaf "
                                         r"\['params'\]\['hidden_2'\]\['bias'\]"):
        connect.align(vb, vb, connect.mlp_spec(vs))
    wide = models.DenseRegressor(hidden=2, width=16, outputs=3, dropout=0.0)
    vw = wide.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"\['params'\]\['hidden_0'\]\['kernel'\]"):
        connect.align(vw, vw, connect.mlp_spec(vs))
    loose = connect.PermutationSpec({"h": connect.Group(8)}, {"['params']['nope']": ("h",)})
    with pytest.raises(ValueError, match=r"names leaf \['params'\]\['nope'\]"):
        connect.align(vs, vs, loose)
    with pytest.raises(ValueError, match="resnet_spec expects"):
        connect.resnet_spec(vs)


# --------------------------------------------------------------------------- figures
def test_connectivity_figures_render(tmp_path):
    curve = _curve("bezier", 1)
    data = classification_data()
    ts = np.linspace(0, 1, 5)
    on_curve = connect.evaluate_curve(mlp_fn, curve, data, ts, progress=False)
    on_line = connect.evaluate_curve(mlp_fn, connect.line(curve.params_a, curve.params_b),
                                     data, ts, progress=False)
    fig = js.plot.connectivity_lines({"line": on_line, "curve": on_curve},
                                     out=tmp_path / "paths.png")
    assert (tmp_path / "paths.png").stat().st_size > 1000
    assert fig.axes[0].get_xlabel().startswith("t (0: solution A")
    assert fig.axes[1].get_ylabel().startswith("accuracy (%)")
    origin, d1, d2, coords = connect.curve_plane(curve)
    grid = np.linspace(-0.5, 1.5, 4) * coords[2, 0]
    betas = np.linspace(-0.5, 1.5, 3) * coords[1, 1]
    plane = js.evaluate_plane(mlp_fn, origin, d1, d2, data, grid, betas, progress=False)
    fig = js.plot.connectivity_plane(plane, {"curve": connect.curve_path(curve, coords, ts),
                                             "line": coords[[0, 2]]},
                                     points={"A": coords[0], "B": coords[2]},
                                     out=tmp_path / "plane.png")
    assert (tmp_path / "plane.png").stat().st_size > 1000
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "curve" in labels and "line" in labels
    with pytest.raises(ValueError, match=r"\(n, 2\) array"):
        js.plot.connectivity_plane(plane, {"bad": np.zeros(3)})


@pytest.mark.slow
def test_experiment_smoke(tmp_path):
    import json

    from experiments import connectivity

    results = connectivity.main(["--preset", "smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["preset"] == "smoke" and set(saved["models"]) == {"dense", "resnet"}
    for r in results["models"].values():
        for row in r["barriers"].values():
            assert row["train_loss_barrier"] >= 0 and np.isfinite(row["test_loss_barrier"])
        for name in r["figures"].values():
            assert (tmp_path / name).stat().st_size > 1000
    assert "curve_plane" in results["models"]["dense"]["figures"]
    assert len(results["models"]["resnet"]["barriers"]) == 5
    assert (tmp_path / "dense" / "curve.npz").exists()
