"""js.auto_range: bisection to the extent where the loss reaches rise x the centre's."""
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js


def quadratic(curvatures, centre_loss):
    """``L(w) = c + 1/2 sum_i lambda_i w_i^2``; the data set is irrelevant (a dummy)."""
    lam = jnp.asarray(curvatures, jnp.float32)
    fn = lambda p, b: centre_loss + 0.5 * jnp.sum(lam * p["w"] ** 2) + 0.0 * jnp.mean(b["x"])
    params = {"w": jnp.zeros(len(curvatures), jnp.float32)}
    data = {"x": np.zeros((4, 1), np.float32)}
    unit = [{"w": jnp.eye(len(curvatures), dtype=jnp.float32)[i]} for i in
            range(len(curvatures))]
    return fn, params, data, unit


def test_quadratic_gives_the_analytic_extent():
    lam, c, rise = np.array([4.0, 0.25, 1.0]), 0.5, 10.0
    fn, params, data, dirs = quadratic(lam, c)
    dirs[2] = {"w": 3.0 * dirs[2]["w"]}            # a longer direction: a shorter extent
    e = js.auto_range(fn, params, dirs, data, rise=rise, rtol=1e-4)
    norms = np.array([1.0, 1.0, 3.0])
    expected = np.sqrt(2 * c * (rise - 1) / lam) / norms   # c + lam (e n)^2 / 2 = rise c
    np.testing.assert_allclose(e, expected, rtol=2e-4)
    assert np.all(e >= expected * (1 - 1e-6))           # the upper end of the bracket


def test_additive_rise_and_a_start_above_the_target():
    fn, params, data, dirs = quadratic([2.0], 0.0)
    e = js.auto_range(fn, params, dirs, data, rise_by=0.04, start=100.0, rtol=1e-4)
    np.testing.assert_allclose(e, [np.sqrt(2 * 0.04 / 2.0)], rtol=2e-4)


def test_uses_the_side_that_reaches_the_target_first():
    fn = lambda p, b: 1.0 + jnp.where(p["w"][0] > 0, 8.0, 0.5) * p["w"][0] ** 2 \
        + 0.0 * jnp.mean(b["x"])
    params = {"w": jnp.zeros(1)}
    e = js.auto_range(fn, params, [{"w": jnp.ones(1)}], {"x": np.zeros((2, 1))}, rise=3.0,
                      rtol=1e-4)
    np.testing.assert_allclose(e, [0.5], rtol=2e-4)     # 1 + 8 t^2 = 3


@pytest.mark.parametrize("kwargs, message", [
    ({"rise": 1.0}, "rise must be > 1"),
    ({"rise": 0.5}, "rise must be > 1"),
    ({"rise_by": 0.0}, "rise_by must be > 0"),
    ({"rtol": 1.5}, "rtol"),
])
def test_bad_rise_is_refused(kwargs, message):
    fn, params, data, dirs = quadratic([1.0], 1.0)
    with pytest.raises(ValueError, match=message):
        js.auto_range(fn, params, dirs, data, **kwargs)


def test_centre_loss_at_or_below_zero_offers_an_additive_rise():
    fn, params, data, dirs = quadratic([1.0], -0.2)
    with pytest.raises(ValueError, match=r"<= 0.*rise_by="):
        js.auto_range(fn, params, dirs, data)
    e = js.auto_range(fn, params, dirs, data, rise_by=0.5, rtol=1e-4)
    np.testing.assert_allclose(e, [1.0], rtol=2e-4)


def test_no_directions_and_flat_directions_are_refused():
    fn, params, data, dirs = quadratic([1.0, 0.0], 1.0)
    with pytest.raises(ValueError, match="k = 0"):
        js.auto_range(fn, params, [], data)
    with pytest.raises(TypeError, match="list of direction"):
        js.auto_range(fn, params, dirs[0], data)
    with pytest.raises(ValueError, match=r"directions \[1\].*stays below"):
        js.auto_range(fn, params, dirs, data, max_extent=100.0)
    with pytest.raises(TypeError, match="unknown option 'store'"):
        js.auto_range(fn, params, dirs[:1], data, store="x")


def test_cli_x_auto_uses_auto_range(tmp_path, capsys):
    import jax

    from jaxsurf import _cli as cli, _train as train
    from test_cli_surface import TinyNet, blobs

    data = {"train": blobs(128, 0), "val": blobs(32, 1)}
    result = train.fit(TinyNet(), data, train.TrainConfig(epochs=1, batch_size=64,
                                                          learning_rate=0.05),
                       out_dir=tmp_path / "run", log=None, progress=False)
    np.savez(tmp_path / "eval.npz", **blobs(50, 2))
    out = tmp_path / "out"
    code = cli.main(["surface", "--model", "test_cli_surface:tiny_net", "--checkpoint",
                     str(tmp_path / "run"), "--data", str(tmp_path / "eval.npz"),
                     "--x", "auto:5", "--y", "auto:3", "--rise", "2", "--seed", "3",
                     "--batch-size", "25", "--out", str(out)])
    text, err = capsys.readouterr()
    assert code == 0, err
    plane = js.Surface.load(out / "plane.npz")
    fn, params = js.flax.adapt(TinyNet(), result.variables, loss="cross_entropy")
    d1, d2 = js.random_plane(jax.random.key(3), params, "filter", "biasbn")
    e = js.auto_range(fn, params, [d1, d2], dict(np.load(tmp_path / "eval.npz")), rise=2.0,
                      batch_size=25)
    np.testing.assert_allclose(plane.alphas, np.linspace(-e[0], e[0], 5), rtol=1e-6)
    np.testing.assert_allclose(plane.betas, np.linspace(-e[1], e[1], 3), rtol=1e-6)
    assert plane.metadata["auto_range"]["extents"] == pytest.approx(list(e))
    assert "auto range" in text
    code = cli.main(["surface", "--model", "test_cli_surface:tiny_net", "--checkpoint",
                     str(tmp_path / "run"), "--data", str(tmp_path / "eval.npz"),
                     "--x", "auto:x", "--out", str(out)])
    assert code == 2 and "auto:NUM" in capsys.readouterr().err
