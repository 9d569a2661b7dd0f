"""TrajectoryRecorder / load_trajectory: orbax round trips, ordering, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsurf._trajectory import TrajectoryRecorder, load_trajectory


def mixed_params(seed):
    """Leaves of several dtypes and ranks, numpy and jax, one on a non-default device."""
    rng = np.random.default_rng(seed)
    return {
        "conv": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32),
                 "bias": jnp.asarray(rng.normal(size=4), jnp.bfloat16)},
        "dense": {"kernel": rng.normal(size=(4, 3)).astype(np.float16),
                  "bias": jax.device_put(jnp.asarray(rng.normal(size=3), jnp.float32),
                                         jax.devices()[-1])},
        "count": np.int32(seed),
    }


def assert_bit_exact(got, want):
    want_leaves, want_def = jax.tree_util.tree_flatten(want)
    got_leaves, got_def = jax.tree_util.tree_flatten(got)
    assert got_def == want_def
    for g, w in zip(got_leaves, want_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()


def test_record_load_round_trip_bit_exact_in_order_with_state(tmp_path):
    optimizer = optax.sgd(0.1, momentum=0.9)
    saved = {}
    with TrajectoryRecorder(tmp_path / "traj") as rec:
        for step in (0, 5, 10):  # rapid async saves: none may be skipped
            params = mixed_params(step)
            state = {"opt": optimizer.init(params), "epoch": step}
            rec.save(step, params, state=state)
            saved[step] = (params, state)
        assert rec.steps == [0, 5, 10] and rec.latest_step == 10
        like = mixed_params(99)
        params, state = rec.restore(5, params_like=like,
                                    state_like={"opt": optimizer.init(like), "epoch": 0})
    assert_bit_exact(params, saved[5][0])
    assert isinstance(state["opt"][0], optax.TraceState) and state["epoch"] == 5
    assert_bit_exact(state["opt"], saved[5][1]["opt"])

    loaded = list(load_trajectory(tmp_path / "traj"))
    assert [s for s, _ in loaded] == [0, 5, 10]
    for step, params in loaded:  # no like: host numpy, same dtypes and bytes
        assert all(isinstance(x, np.ndarray) for x in jax.tree_util.tree_leaves(params))
        assert_bit_exact(params, saved[step][0])


def test_reopen_continues_and_steps_must_increase(tmp_path):
    p = mixed_params(0)
    with TrajectoryRecorder(tmp_path) as rec:
        rec.save(0, p)
        rec.save(1, p)
    with TrajectoryRecorder(tmp_path) as rec:
        assert rec.steps == [0, 1]
        with pytest.raises(ValueError, match="continue from step 2"):
            rec.save(1, p)
        rec.save(2, p)
        params, state = rec.restore()  # latest, saved without state
        assert state is None
    assert [s for s, _ in load_trajectory(tmp_path)] == [0, 1, 2]


def test_numpy_leaves_are_snapshotted_and_max_to_keep(tmp_path):
    w = np.zeros(5, np.float32)
    with TrajectoryRecorder(tmp_path, max_to_keep=2) as rec:
        for step in range(3):
            w[:] = step
            rec.save(step, {"w": w})  # mutated in place right after the async save
        rec.wait()
        assert rec.steps == [1, 2]
    assert [float(p["w"][0]) for _, p in load_trajectory(tmp_path)] == [1.0, 2.0]


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="TrajectoryRecorder"):
        load_trajectory(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no recorded steps"):
        load_trajectory(tmp_path / "empty")
    p = {"w": np.ones((2, 3), np.float32)}
    rec = TrajectoryRecorder(tmp_path / "t")
    with pytest.raises(ValueError, match="non-negative integer"):
        rec.save(-1, p)
    rec.save(0, p)
    rec.save(1, p)
    with pytest.raises(ValueError, match="step 7 is not recorded"):
        rec.restore(7)
    with pytest.raises(ValueError, match=r"params_like does not match step 1 at \['w'\]"):
        rec.restore(params_like={"w": np.ones((3, 2), np.float32)})
    with pytest.raises(ValueError, match="saved without state"):
        rec.restore(params_like=p, state_like={"epoch": 0})
    rec.close()
    with pytest.raises(ValueError, match="closed"):
        rec.save(2, p)
    # a step whose params item is damaged: named in the error
    for f in (tmp_path / "t" / "1" / "params").rglob("*"):
        if f.is_file() and f.name == "_METADATA":
            f.write_text("garbage")
    it = load_trajectory(tmp_path / "t")
    assert next(it)[0] == 0
    with pytest.raises(ValueError, match="cannot read step 1"):
        next(it)
