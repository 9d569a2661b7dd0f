"""Curvature against exact Hessians (jax.hessian of a flattened tiny MLP) and
quadratics with known spectra."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from jax.flatten_util import ravel_pytree
from matplotlib.figure import Figure

import jaxsurf as js
from jaxsurf import _hessian as hessian
from helpers import classification_data, dense_params, mlp_fn


@pytest.fixture(scope="module")
def exact():
    """A tanh MLP with 39 params on 103 examples, and its exact Hessian."""
    params = dense_params(jax.random.key(0))
    data = classification_data()
    flat, unravel = ravel_pytree(params)
    H = jax.jit(jax.hessian(lambda f: mlp_fn(unravel(f), data)["loss"]))(flat)
    return params, data, np.asarray(H, np.float64), unravel


def flat(tree_):
    return np.asarray(ravel_pytree(tree_)[0], np.float64)


def quadratic_problem(eigenvalues, seed):
    """``L(w) = 1/2 w^T A w`` with ``A = Q diag(eigenvalues) Q^T``; A travels as data
    (one example), so fn is a batch mean like any other."""
    n = len(eigenvalues)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    A = (q * np.asarray(eigenvalues)) @ q.T
    fn = lambda p, b: 0.5 * jnp.mean(jnp.einsum("i,eij,j->e", p["w"], b["A"], p["w"]))
    params = {"w": jnp.asarray(np.random.default_rng(seed + 1).normal(size=n), jnp.float32)}
    return fn, params, {"A": A[None].astype(np.float32)}, A


def test_hvp_with_ragged_last_batch_is_exact(exact):
    params, data, H, _ = exact
    v = js.random_direction(jax.random.key(1), params)
    ragged = hessian.hvp(mlp_fn, params, data, v, batch_size=16)     # 6 x 16 + 7
    whole = hessian.hvp(mlp_fn, params, data, v, batch_size=103)
    js.tree.check_like(ragged, params)
    np.testing.assert_allclose(flat(ragged), H @ flat(v), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(flat(ragged), flat(whole), rtol=1e-4, atol=1e-6)


def test_hvp_on_a_stream_and_a_one_shot_iterator(exact):
    params, data, H, _ = exact
    v = js.random_direction(jax.random.key(2), params)
    batches = [{k: x[i:i + 52] for k, x in data.items()} for i in range(0, 103, 52)]
    matvec = hessian.hvp_operator(mlp_fn, params, batches)
    for _ in range(2):   # each product reads the list again
        np.testing.assert_allclose(flat(matvec(v)), H @ flat(v), rtol=1e-4, atol=1e-6)
    with pytest.raises(TypeError, match="one-shot iterator"):
        hessian.hvp_operator(mlp_fn, params, iter(batches))
    fn, params, data, A = quadratic_problem(np.arange(1.0, 6.0), 0)
    stream = iter([data, data])                 # hvp itself reads a stream once
    np.testing.assert_allclose(flat(hessian.hvp(fn, params, stream, params)),
                               A @ flat(params), rtol=1e-5, atol=1e-5)


def test_top_and_bottom_eigenpairs_match_the_exact_hessian(exact):
    params, data, H, _ = exact
    want = np.linalg.eigvalsh(H)
    scale = np.abs(want).max()
    lams, vecs = hessian.top_eigenpairs(mlp_fn, params, data, k=3, key=jax.random.key(0))
    np.testing.assert_allclose(lams, want[::-1][:3], rtol=1e-3)
    for lam, vec in zip(lams, vecs):
        js.tree.check_like(vec, params)
        v = flat(vec)
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
        assert np.linalg.norm(H @ v - lam * v) <= 1e-3 * scale
    low, low_vecs = hessian.top_eigenpairs(mlp_fn, params, data, k=2, key=jax.random.key(1),
                                           which="smallest")
    np.testing.assert_allclose(low, want[:2], rtol=1e-3, atol=1e-4 * scale)
    for lam, vec in zip(low, low_vecs):
        assert np.linalg.norm(H @ flat(vec) - lam * flat(vec)) <= 1e-3 * scale


@settings(max_examples=4, deadline=None)
@given(n=st.sampled_from([8, 24]), seed=st.integers(0, 10_000),
       negative=st.booleans(), which=st.sampled_from(["largest", "smallest"]))
def test_quadratic_extreme_eigenvalues(n, seed, negative, which):
    rng = np.random.default_rng(seed)
    # well-separated magnitudes in [1, 10], some negative: relative accuracy is meaningful
    eig = np.sort(rng.choice(np.linspace(1.0, 10.0, 91), n, replace=False))
    if negative:
        eig = eig * rng.choice([-1.0, 1.0], n)
    fn, params, data, A = quadratic_problem(eig, seed)
    lams, vecs = hessian.top_eigenpairs(fn, params, data, k=2, key=jax.random.key(seed),
                                        which=which, num_iterations=n)
    want = np.sort(eig)[::-1][:2] if which == "largest" else np.sort(eig)[:2]
    np.testing.assert_allclose(lams, want, rtol=1e-3)
    for lam, vec in zip(lams, vecs):
        v = flat(vec)
        assert np.linalg.norm(A @ v - lam * v) <= 1e-3 * np.abs(eig).max()


def test_outliers_of_a_large_spectrum_converge_before_the_iteration_cap():
    # a network-like spectrum: a bulk near zero and a few outliers; 300 params,
    # so Lanczos stops on its residual test long before spanning the space
    bulk = np.random.default_rng(0).uniform(-0.5, 2.0, 297)
    eig = np.concatenate([[40.0, 25.0, 18.0], bulk])
    fn, params, data, A = quadratic_problem(eig, 1)
    lams, vecs = hessian.top_eigenpairs(fn, params, data, k=3, key=jax.random.key(0))
    np.testing.assert_allclose(lams, [40.0, 25.0, 18.0], rtol=1e-3)
    for lam, vec in zip(lams, vecs):
        assert np.linalg.norm(A @ flat(vec) - lam * flat(vec)) <= 1e-3 * 40


def test_repeated_eigenvalue_is_found_through_restart():
    # the Krylov space of a 2-value spectrum is invariant after 2 steps
    eig = np.array([3.0] * 4 + [1.0] * 4)
    fn, params, data, _ = quadratic_problem(eig, 3)
    lams, _ = hessian.top_eigenpairs(fn, params, data, k=3, key=jax.random.key(0))
    np.testing.assert_allclose(lams, [3.0, 3.0, 3.0], rtol=1e-4)


def test_non_convergence_warns(exact):
    params, data, _, _ = exact
    with pytest.warns(RuntimeWarning, match="raise num_iterations"):
        hessian.top_eigenpairs(mlp_fn, params, data, k=1, key=jax.random.key(0),
                               num_iterations=3)


def test_hutchinson_trace_within_standard_errors(exact):
    params, data, H, _ = exact
    estimate, se = hessian.trace(mlp_fn, params, data, key=jax.random.key(0),
                                 num_samples=60)
    assert se > 0
    assert abs(estimate - np.trace(H)) <= 4 * se


def test_spectral_density_integrates_to_one_and_finds_the_eigenvalues():
    eig = np.array([1.0] * 6 + [5.0] * 2 + [-2.0] * 2)     # mass 0.6, 0.2, 0.2
    fn, params, data, _ = quadratic_problem(eig, 0)
    grid, density = hessian.spectral_density(fn, params, data, key=jax.random.key(0),
                                             num_probes=30, num_iterations=10, sigma=0.05)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)

    def mass(lo, hi):
        inside = (grid >= lo) & (grid <= hi)
        return np.trapezoid(density[inside], grid[inside])

    assert mass(0.7, 1.3) == pytest.approx(0.6, abs=0.15)
    assert mass(4.7, 5.3) == pytest.approx(0.2, abs=0.12)
    assert mass(-2.3, -1.7) == pytest.approx(0.2, abs=0.12)
    assert mass(2.0, 4.0) < 1e-6


def test_spectral_density_of_the_mlp_covers_its_spectrum(exact, tmp_path):
    params, data, H, _ = exact
    grid, density = hessian.spectral_density(mlp_fn, params, data, key=jax.random.key(1),
                                             num_iterations=39)
    want = np.linalg.eigvalsh(H)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)
    assert grid[0] < want[0] and grid[-1] > want[-1]
    fig = js.plot.spectrum(grid, density, out=tmp_path / "spectrum.png")
    assert isinstance(fig, Figure) and (tmp_path / "spectrum.png").stat().st_size > 0
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_xlabel() == "eigenvalue"


def test_hessian_plane_is_orthonormal_and_feeds_evaluate_plane(exact):
    params, data, H, _ = exact
    d1, d2 = hessian.hessian_plane(mlp_fn, params, data, key=jax.random.key(0))
    v1, v2 = flat(d1), flat(d2)
    assert abs(v1 @ v2) < 1e-4 and np.linalg.norm(v1) == pytest.approx(1, abs=1e-5)
    assert v1 @ H @ v1 == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-3)
    js.tree.check_like(d1, params)
    js.tree.check_like(d2, params)


def test_convexity_map_matches_exact_eigenvalues_on_a_non_square_grid(exact, tmp_path):
    params, data, _, unravel = exact
    d1, d2 = js.random_plane(jax.random.key(4), params)
    alphas, betas = np.array([-0.5, 0.5]), np.array([-0.4, 0.0, 0.6])
    cm = hessian.convexity_map(mlp_fn, params, d1, d2, data, alphas, betas,
                               key=jax.random.key(0), num_iterations=39)
    assert cm.metrics["ratio"].shape == (2, 3) and cm.metadata["hvps"] == 6 * 39
    hess = jax.jit(jax.hessian(lambda f: mlp_fn(unravel(f), data)["loss"]))
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            point = flat(params) + a * flat(d1) + b * flat(d2)
            eig = np.linalg.eigvalsh(np.asarray(hess(jnp.asarray(point, jnp.float32))))
            scale = float(np.abs(eig).max())
            assert cm.metrics["lambda_max"][i, j] == pytest.approx(eig[-1], abs=1e-4 * scale)
            assert cm.metrics["lambda_min"][i, j] == pytest.approx(eig[0], abs=1e-4 * scale)
    np.testing.assert_allclose(cm.metrics["ratio"],
                               np.abs(cm.metrics["lambda_min"] / cm.metrics["lambda_max"]))
    fig = js.plot.convexity(cm, out=tmp_path / "convexity.png")
    assert isinstance(fig, Figure) and (tmp_path / "convexity.png").exists()
    mesh = fig.axes[0].collections[0]
    values, corners = np.asarray(mesh.get_array()), mesh.get_coordinates()
    assert values.shape == (2, 3)
    # orientation: cell [i, j] holds the ratio at (alphas[i], betas[j]), alpha on x
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            assert values[i, j] == pytest.approx(cm.metrics["ratio"][i, j])
            cell = corners[i:i + 2, j:j + 2].reshape(-1, 2)
            assert cell[:, 0].min() < a < cell[:, 0].max()
            assert cell[:, 1].min() < b < cell[:, 1].max()


def test_errors_are_clear(exact):
    params, data, _, _ = exact
    with pytest.raises(KeyError, match="pass metric="):
        hessian.hvp(mlp_fn, params, data, params, metric="nll")
    with pytest.raises(ValueError, match="k must be"):
        hessian.top_eigenpairs(mlp_fn, params, data, k=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="which"):
        hessian.top_eigenpairs(mlp_fn, params, data, key=jax.random.key(0), which="top")
    with pytest.raises(ValueError, match="does not match"):
        hessian.hvp(mlp_fn, params, data, {"w": jnp.ones(3)})
