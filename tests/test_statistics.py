"""js.summary: statistics across planes, mean ± standard error, with known answers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js


def quadratic_problem(dim=6, seed=0):
    """``L(w) = 1 + 1/2 (w - w0)^T A (w - w0)``-free: ``1 + 1/2 w^T A w`` with A as data."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(dim, dim))
    A = (m @ m.T / dim + np.eye(dim)).astype(np.float32)
    fn = lambda p, b: 1.0 + 0.5 * jnp.mean(jnp.einsum("i,eij,j->e", p["w"], b["A"], p["w"]))
    params = {"w": jnp.asarray(rng.normal(size=dim) * 0.1, jnp.float32)}
    return fn, params, {"A": A[None]}, A


def test_exact_dthd_equals_the_grid_finite_difference_on_a_quadratic():
    fn, params, data, A = quadratic_problem()
    planes = js.random_planes(jax.random.key(0), params, 4, method="none", ignore=None)
    grid = np.linspace(-0.5, 0.5, 5)
    surfaces = js.evaluate_planes(fn, params, planes, data, grid, grid, progress=False)
    stats = js.summary(surfaces, fn=fn, params=params, planes=planes, data=data,
                       topology=False)
    exact_alpha = [float(np.asarray(d1["w"]) @ A @ np.asarray(d1["w"])) for d1, _ in planes]
    exact_beta = [float(np.asarray(d2["w"]) @ A @ np.asarray(d2["w"])) for _, d2 in planes]
    np.testing.assert_allclose(stats["curvature_exact_alpha"]["values"], exact_alpha, rtol=1e-4)
    np.testing.assert_allclose(stats["curvature_exact_beta"]["values"], exact_beta, rtol=1e-4)
    np.testing.assert_allclose(stats["curvature_alpha"]["values"], exact_alpha, rtol=2e-3)
    np.testing.assert_allclose(stats["curvature_beta"]["values"], exact_beta, rtol=2e-3)
    values = np.array(exact_alpha)
    assert stats["curvature_exact_alpha"]["mean"] == pytest.approx(values.mean(), rel=1e-4)
    assert stats["curvature_exact_alpha"]["sem"] == pytest.approx(
        values.std(ddof=1) / 2.0, rel=1e-3)
    assert stats["num_planes"] == 4 and stats["curvature_alpha"]["n"] == 4
    with pytest.raises(ValueError, match="fingerprint"):
        js.summary(surfaces, fn=fn, params=params, planes=planes[::-1], data=data,
                   topology=False)
    with pytest.raises(ValueError, match="together"):
        js.summary(surfaces, fn=fn, params=params, topology=False)


def bowl(scale=1.0, n=41):
    a = np.linspace(-1, 1, n)
    A, B = np.meshgrid(a, a, indexing="ij")
    return js.Surface(a, a, {"loss": scale * (A ** 2 + B ** 2) + 0.1})


def test_basin_width_is_the_largest_centred_disc_below_the_level():
    stats = js.summary([bowl(1.0), bowl(4.0)], level=0.35, topology=False)
    # loss < 0.35 inside r = 0.5 (scale 1) and r = 0.25 (scale 4), to the grid's spacing
    np.testing.assert_allclose(stats["basin_width"]["values"], [0.5, 0.25], atol=0.05 + 1e-9)
    assert stats["basin_width_censored"] == 0
    wide = js.summary(bowl(1.0), level=100.0, topology=False)
    assert wide["basin_width"]["values"] == [1.0] and wide["basin_width_censored"] == 1
    assert wide["basin_width"]["sem"] is None                 # one plane: no spread
    default = js.summary([bowl(1.0)], topology=False)         # level = 2 x centre value
    assert default["level"] == [pytest.approx(0.2)]
    assert default["basin_width"]["values"][0] == pytest.approx(np.sqrt(0.1), abs=0.05)


def test_topology_counts_persistent_minima_and_the_deepest_barrier():
    a = np.linspace(-1, 1, 41)
    A, B = np.meshgrid(a, a, indexing="ij")
    loss = 4 * (A ** 2 - 0.25) ** 2 + B ** 2 + 0.2 * A + 1.0   # two wells, the right shallower
    s = js.Surface(a, a, {"loss": loss})
    stats = js.summary([s, bowl()], level=1.5, min_persistence=0.05)
    assert stats["num_persistent_minima"]["values"] == [2.0, 1.0]
    right = loss[a > 0.1].min()
    saddle = loss[np.abs(a) < 0.3][:, 20].max()               # along B = 0, between the wells
    assert stats["deepest_barrier"]["values"][0] == pytest.approx(saddle - right, rel=0.05)
    assert stats["deepest_barrier"]["values"][1] == 0.0


def test_bad_input_is_refused_clearly():
    a = np.linspace(0.1, 1, 5)
    off = js.Surface(a, a, {"loss": np.ones((5, 5))})
    with pytest.raises(ValueError, match="no point at the centre 0"):
        js.summary([off], level=1.0, topology=False)
    with pytest.raises(ValueError, match="empty"):
        js.summary([])
    line = js.Surface(np.linspace(-1, 1, 5), None, {"loss": np.ones(5)})
    with pytest.raises(ValueError, match="not a plane"):
        js.summary([line])
    g = np.linspace(-1, 1, 5)
    G, _ = np.meshgrid(g, g, indexing="ij")
    negative = js.Surface(g, g, {"loss": G ** 2 - 1.0})
    with pytest.raises(ValueError, match="level="):
        js.summary(negative, topology=False)
    with pytest.raises(KeyError, match="no metric 'acc'"):
        js.summary(bowl(), "acc", topology=False)
