"""fit_curve(convention="garipov"): Garipov et al.'s training of a curve, checked step
by step against the update written out by hand (L2 on theta(t) with BatchNorm's
scale and bias, SGD with momentum, the reference's schedule, batch statistics,
the short last batch)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxsurf as js

WD, LR, MOMENTUM, EPS = 1e-2, 0.05, 0.9, 1e-5  # a large weight decay: the L2 term shows


class DenseBN(nn.Module):
    """Dense -> BatchNorm -> ReLU -> Dense, with a training flag."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dense(6)(x)
        h = nn.BatchNorm(use_running_average=not train, epsilon=EPS)(h)
        return nn.Dense(3)(nn.relu(h))


def by_hand_loss(p, x, y):
    """Cross-entropy of DenseBN in training mode, written without Flax."""
    h = x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    mean, var = h.mean(0), h.var(0)
    h = (h - mean) / jnp.sqrt(var + EPS) * p["BatchNorm_0"]["scale"] + p["BatchNorm_0"]["bias"]
    logits = jax.nn.relu(h) @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))


def end_points(model, x):
    va = model.init(jax.random.key(1), x[:2])
    vb = model.init(jax.random.key(2), x[:2])
    # running statistics far from the batch's: evaluation mode would differ clearly
    stats = jax.tree_util.tree_map(lambda s: s + 3.0, va["batch_stats"])
    return {**va, "batch_stats": stats}, vb


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 5)).astype(np.float32),
            "y": rng.integers(0, 3, size=n).astype(np.int32)}


def expected_bend(pa, pb, batches_and_ts, rates):
    """The reference's bend after SGD-with-momentum steps on loss + 0.5 wd ||theta(t)||^2."""
    bend = jax.tree_util.tree_map(lambda a, b: 0.5 * a + 0.5 * b, pa, pb)
    buf = None
    for (x, y, t), lr in zip(batches_and_ts, rates):
        def objective(bend_):
            theta = jax.tree_util.tree_map(
                lambda a, m, b: (1 - t) ** 2 * a + 2 * t * (1 - t) * m + t ** 2 * b,
                pa, bend_, pb)
            l2 = sum(jnp.sum(v ** 2) for v in jax.tree_util.tree_leaves(theta))
            return by_hand_loss(theta, x, y) + 0.5 * WD * l2
        g = jax.grad(objective)(bend)
        buf = g if buf is None else jax.tree_util.tree_map(lambda b_, g_: MOMENTUM * b_ + g_,
                                                           buf, g)
        bend = jax.tree_util.tree_map(lambda p, b_: p - lr * b_, bend, buf)
    return bend


def drawn(key, n, batch_size, epochs):
    """The batches' indices and the t of every step, from fit_curve's documented key use:
    per epoch one split for the shuffle, then one split per step for t."""
    out = []
    for _ in range(epochs):
        key, k_perm = jax.random.split(key)
        order = np.asarray(jax.random.permutation(k_perm, n))
        for start in range(0, n, batch_size):
            key, k_t = jax.random.split(key)
            out.append((order[start:start + batch_size], float(jax.random.uniform(k_t, ()))))
    return out


def test_garipov_steps_match_the_update_written_by_hand():
    d = data(n=12)
    model = DenseBN()
    va, vb = end_points(model, d["x"])
    fn, pa = js.flax.adapt(model, va, loss="cross_entropy")
    pb = vb["params"]
    convention = js.connect.GaripovConvention(learning_rate=LR, momentum=MOMENTUM,
                                              weight_decay=WD)
    key = jax.random.key(7)
    curve = js.connect.fit_curve(fn, pa, pb, d, epochs=2, batch_size=8, key=key,
                                 convention=convention, log=None)
    steps = drawn(key, 12, 8, epochs=2)
    assert [len(i) for i, _ in steps] == [8, 4, 8, 4]  # the short last batch is a step
    rates = [LR, LR, LR * 0.01, LR * 0.01]  # epoch 1 of 2: alpha 0.5; epoch 2: alpha 1
    want = expected_bend(pa, pb, [(d["x"][i], d["y"][i], t) for i, t in steps], rates)
    got = curve.bends[0]
    for w, g in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got)):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-6)
    assert curve.metadata["convention"]["name"] == "garipov"
    assert curve.metadata["model_mode"].startswith("training mode")
    assert len(curve.metadata["history"]) == 2


def test_jaxsurf_defaults_give_a_different_update_than_the_reference():
    """The default convention (adam, no L2, evaluation-mode BatchNorm) is not the
    reference's: the same single step moves the bend elsewhere."""
    d = data(n=8)
    model = DenseBN()
    va, vb = end_points(model, d["x"])
    fn, pa = js.flax.adapt(model, va, loss="cross_entropy")
    key = jax.random.key(3)
    mid = jax.tree_util.tree_map(lambda a, b: 0.5 * a + 0.5 * b, pa, vb["params"])
    fits = {c: js.connect.fit_curve(fn, pa, vb["params"], d, epochs=1, batch_size=8, key=key,
                                    convention=c, log=None,
                                    optimizer=optax.sgd(0.01) if c == "jaxsurf" else None)
            for c in ("jaxsurf", "garipov")}
    moves = {c: js.tree.sub(f.bends[0], mid) for c, f in fits.items()}
    gap = js.tree.norm(js.tree.sub(moves["jaxsurf"], moves["garipov"]))
    assert float(gap) > 0.05 * float(js.tree.norm(moves["garipov"]))


def test_learning_rate_schedule_is_the_references():
    g = js.connect.GaripovConvention()
    assert [g.learning_rate_at(e, 10) for e in (1, 5, 6, 9, 10)] == \
        [0.01, 0.01, 0.007525, 0.0001, 0.0001]
    tx = g.optimizer(epochs=4, steps_per_epoch=3)
    state = tx.init(jnp.zeros(()))
    seen = []
    for _ in range(12):
        update, state = tx.update(jnp.ones(()), state)
        seen.append(float(update))
    # momentum 0.9 on a constant gradient: buf_k = sum 0.9^j; the rate changes per epoch
    bufs = np.array([sum(0.9 ** j for j in range(k + 1)) for k in range(12)])
    rates = np.repeat([g.learning_rate_at(e, 4) for e in (1, 2, 3, 4)], 3)
    np.testing.assert_allclose(seen, -rates * bufs, rtol=1e-6)


def test_nnx_batchnorm_trains_in_training_mode():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(5, 6, rngs=rngs)
            self.norm = nnx.BatchNorm(6, epsilon=EPS, rngs=rngs)
            self.out = nnx.Linear(6, 3, rngs=rngs)

        def __call__(self, x):
            return self.out(jax.nn.relu(self.norm(self.dense(x))))

    d = data(n=8)
    net = Net(nnx.Rngs(0))
    net.norm.mean[...] = net.norm.mean[...] + 3.0  # running statistics the batch lacks
    fn, params = js.flax.adapt(net, loss="cross_entropy")
    stateful = fn.jaxsurf_state
    as_linen = {"Dense_0": params["dense"], "BatchNorm_0": params["norm"],
                "Dense_1": params["out"]}
    train_loss = stateful.train_metrics(params, stateful.state, d)["loss"]
    np.testing.assert_allclose(train_loss, by_hand_loss(as_linen, d["x"], d["y"]), rtol=1e-5)
    assert abs(float(fn(params, d)["loss"]) - float(train_loss)) > 1e-3  # eval mode differs
    # the running statistics were used for nothing and left as they were
    assert any(np.allclose(x, 3.0) for x in jax.tree_util.tree_leaves(stateful.state))
    other = jax.tree_util.tree_map(lambda x: x + 0.1, params)
    curve = js.connect.fit_curve(fn, params, other, d, epochs=1, batch_size=4,
                                 convention="garipov", log=None)
    assert curve.metadata["model_mode"].startswith("training mode")


def test_plain_fn_is_used_as_given_and_said_so():
    d = data(n=8)
    fn = lambda p, b: jnp.mean((b["x"] @ p["w"] - b["y"][:, None]) ** 2)  # noqa: E731
    pa, pb = {"w": jnp.zeros((5, 1))}, {"w": jnp.ones((5, 1))}
    curve = js.connect.fit_curve(fn, pa, pb, d, epochs=1, batch_size=8, convention="garipov",
                                 log=None)
    assert curve.metadata["model_mode"].startswith("fn as given")


def test_equinox_state_without_a_training_mode_is_refused():
    eqx = pytest.importorskip("equinox")
    model, state = eqx.nn.make_with_state(eqx.nn.BatchNorm)(3, axis_name="batch", mode="batch")
    fn, params = js.equinox.adapt(model, state, loss="mse")
    d = {"x": np.ones((4, 3), np.float32), "y": np.ones((4, 3), np.float32)}
    with pytest.raises(ValueError, match="training mode"):
        js.connect.fit_curve(fn, params, params, d, epochs=1, batch_size=4,
                             convention="garipov", log=None)


@pytest.mark.parametrize("kwargs, match", [
    ({"convention": "pytorch"}, "unknown convention"),
    ({"convention": "garipov", "optimizer": optax.adam(1e-3)}, "drop optimizer"),
    ({"convention": "garipov", "state_policy": "interpolate"}, "state_policy"),
])
def test_conflicting_settings_are_refused(kwargs, match):
    d = data(n=8)
    model = DenseBN()
    va, vb = end_points(model, d["x"])
    fn, pa = js.flax.adapt(model, va, loss="cross_entropy")
    with pytest.raises(ValueError, match=match):
        js.connect.fit_curve(fn, pa, vb["params"], d, epochs=1, batch_size=8, log=None,
                             **kwargs)


@pytest.mark.parametrize("field, value", [("momentum", 1.0), ("weight_decay", -1e-4),
                                          ("learning_rate", float("nan"))])
def test_convention_numbers_are_checked(field, value):
    with pytest.raises(ValueError, match=field):
        js.connect.GaripovConvention(**{field: value})


def test_resume_keeps_the_schedule_and_refuses_other_epochs(tmp_path):
    d = data(n=12)
    model = DenseBN()
    va, vb = end_points(model, d["x"])
    fn, pa = js.flax.adapt(model, va, loss="cross_entropy")
    kwargs = dict(batch_size=8, key=jax.random.key(1), convention="garipov", log=None,
                  checkpoint_dir=tmp_path / "curve")
    first = js.connect.fit_curve(fn, pa, vb["params"], d, epochs=2, **kwargs)
    again = js.connect.fit_curve(fn, pa, vb["params"], d, epochs=2, **kwargs)
    for a, b in zip(jax.tree_util.tree_leaves(first.bends), jax.tree_util.tree_leaves(again.bends)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="convention"):
        js.connect.fit_curve(fn, pa, vb["params"], d, epochs=3, **kwargs)


def test_batch_policy_trains_an_adapters_model_in_training_mode():
    """state_policy='batch': the default optimizer on the training-mode loss, the same
    steps as a plain fn written in training mode."""
    d = data(n=16)
    model = DenseBN()
    va, vb = end_points(model, d["x"])
    fn, pa = js.flax.adapt(model, va, loss="cross_entropy")
    by_hand = lambda p, b: by_hand_loss(p, b["x"], b["y"])  # noqa: E731
    kwargs = dict(epochs=1, batch_size=8, key=jax.random.key(4), log=None,
                  optimizer=optax.sgd(0.1))
    batch = js.connect.fit_curve(fn, pa, vb["params"], d, state_policy="batch", **kwargs)
    plain = js.connect.fit_curve(by_hand, pa, vb["params"], d, **kwargs)
    fixed = js.connect.fit_curve(fn, pa, vb["params"], d, **kwargs)
    for a, b in zip(jax.tree_util.tree_leaves(batch.bends), jax.tree_util.tree_leaves(plain.bends)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not np.allclose(fixed.bends[0]["Dense_0"]["kernel"], batch.bends[0]["Dense_0"]["kernel"])
    assert batch.metadata["state_policy"] == "batch"
    with pytest.raises(ValueError, match="carries no model state"):
        js.connect.fit_curve(by_hand, pa, vb["params"], d, state_policy="batch", **kwargs)
