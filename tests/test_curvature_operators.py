"""Hutch++, the Gauss-Newton and empirical Fisher operators, against direct computations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxsurf as js
from helpers import classification_data, dense_params


def flat(tree_):
    return np.asarray(ravel_pytree(tree_)[0], np.float64)


def matrix_of(operator, params):
    """The operator as a dense matrix, column by column."""
    x, unravel = ravel_pytree(params)
    eye = np.eye(x.size, dtype=np.float32)
    return np.stack([flat(operator(unravel(jnp.asarray(e)))) for e in eye], axis=1)


def mlp_outputs(p, x):
    h = jnp.tanh(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
    return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]


# --------------------------------------------------------------------------- Hutch++
def decaying_quadratic(dim, seed):
    """``1/2 w^T A w`` with eigenvalues ``i^-2`` (a fast-decaying spectrum), A as data."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    eigenvalues = 1.0 / np.arange(1, dim + 1) ** 2
    A = ((q * eigenvalues) @ q.T).astype(np.float32)
    fn = lambda p, b: 0.5 * jnp.mean(jnp.einsum("i,eij,j->e", p["w"], b["A"], p["w"]))
    return fn, {"w": jnp.zeros(dim, jnp.float32)}, {"A": A[None]}, float(np.trace(A))


def test_hutchpp_has_at_most_half_the_median_error_of_hutchinson_at_equal_products():
    errors = {"hutchinson": [], "hutch++": []}
    for seed in range(12):
        fn, params, data, exact = decaying_quadratic(120, seed)
        for method in errors:
            estimate, se = js.hessian.trace(fn, params, data, key=jax.random.key(seed),
                                            num_samples=30, method=method)
            errors[method].append(abs(estimate - exact) / exact)
            assert se >= 0.0
    hutchinson, hutchpp = np.median(errors["hutchinson"]), np.median(errors["hutch++"])
    assert hutchpp <= 0.5 * hutchinson, (hutchpp, hutchinson)


def test_hutchpp_standard_error_is_honest():
    """Over seeds the errors are of the size the standard errors say (not 0, not tiny)."""
    fn, params, data, exact = decaying_quadratic(80, 7)
    z = []
    for seed in range(16):
        estimate, se = js.hessian.trace(fn, params, data, key=jax.random.key(seed),
                                        num_samples=18, method="hutch++")
        assert se > 0
        z.append((estimate - exact) / se)
    assert 0.3 < np.sqrt(np.mean(np.square(z))) < 2.5, z


def test_hutchpp_is_exact_when_the_sketch_spans_the_space():
    fn, params, data, exact = decaying_quadratic(4, 0)
    estimate, se = js.hessian.trace(fn, params, data, key=jax.random.key(0), num_samples=12,
                                    method="hutch++")
    assert se == 0.0 and estimate == pytest.approx(exact, rel=1e-4)


def test_bad_trace_method_and_sample_counts():
    fn, params, data, _ = decaying_quadratic(5, 0)
    with pytest.raises(ValueError, match="method must be one of"):
        js.hessian.trace(fn, params, data, key=jax.random.key(0), method="hutch+")
    with pytest.raises(ValueError, match="num_samples"):
        js.hessian.trace(fn, params, data, key=jax.random.key(0), method="hutch++",
                         num_samples=5)


# --------------------------------------------------------------------------- GGN
def test_ggn_equals_jtj_for_least_squares():
    """Squared error on a nonlinear model: GGN = (2 / (N K)) J^T J, J the Jacobian of
    all N x K outputs (the mean is over all entries)."""
    params = dense_params(jax.random.key(1), sizes=(3, 4, 2))
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(17, 3)).astype(np.float32),
            "y": rng.normal(size=(17, 2)).astype(np.float32)}
    fn = js.hessian.output_split(lambda p, b: mlp_outputs(p, b["x"]),
                                 lambda z, b: js.losses.mse(z, b["y"]))
    G = matrix_of(js.hessian.hvp_operator(fn, params, data, operator="ggn", batch_size=5),
                  params)
    x, unravel = ravel_pytree(params)
    J = np.asarray(jax.jacobian(lambda f: mlp_outputs(unravel(f), data["x"]).ravel())(x),
                   np.float64)
    np.testing.assert_allclose(G, 2.0 / J.shape[0] * J.T @ J, atol=2e-5)
    assert np.linalg.eigvalsh(G).min() > -1e-5                    # PSD
    H = np.asarray(jax.hessian(lambda f: fn(unravel(f), data)["loss"])(x), np.float64)
    assert np.abs(H - G).max() > 1e-3                              # not the Hessian here


def test_ggn_equals_the_hessian_at_an_interpolating_minimum():
    params = dense_params(jax.random.key(2), sizes=(3, 5, 2))
    x_in = np.random.default_rng(1).normal(size=(11, 3)).astype(np.float32)
    data = {"x": x_in, "y": np.asarray(mlp_outputs(params, x_in))}   # residuals are zero
    fn = js.hessian.output_split(lambda p, b: mlp_outputs(p, b["x"]),
                                 lambda z, b: js.losses.mse(z, b["y"]))
    G = matrix_of(js.hessian.hvp_operator(fn, params, data, operator="ggn"), params)
    H = matrix_of(js.hessian.hvp_operator(fn, params, data), params)
    np.testing.assert_allclose(G, H, atol=1e-5)
    assert np.abs(H).max() > 1e-2


def test_ggn_of_cross_entropy_from_the_flax_adapter_is_jt_softmax_hessian_j():
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(nn.tanh(nn.Dense(4)(x)))

    data = classification_data(n=13, features=2)
    model = MLP()
    variables = model.init(jax.random.key(0), data["x"][:1])
    fn, params = js.flax.adapt(model, variables, loss="cross_entropy")
    G = matrix_of(js.hessian.hvp_operator(fn, params, data, operator="ggn"), params)
    x, unravel = ravel_pytree(params)
    logits_of = lambda f: model.apply({"params": unravel(f)}, data["x"])
    J = np.asarray(jax.jacobian(logits_of)(x), np.float64)           # (N, K, P)
    p = np.asarray(jax.nn.softmax(logits_of(x)), np.float64)
    direct = sum(J[i].T @ (np.diag(p[i]) - np.outer(p[i], p[i])) @ J[i]
                 for i in range(len(p))) / len(p)
    np.testing.assert_allclose(G, direct, atol=2e-5)
    lams, _ = js.hessian.top_eigenpairs(fn, params, data, k=2, key=jax.random.key(0),
                                        operator="ggn")
    np.testing.assert_allclose(lams, np.linalg.eigvalsh(direct)[::-1][:2], rtol=1e-3)


def test_ggn_from_the_equinox_adapter_matches_output_split():
    eqx = pytest.importorskip("equinox")
    mlp = eqx.nn.MLP(2, 3, 4, 1, key=jax.random.key(0))
    data = classification_data(n=9, features=2)
    fn, params = js.equinox.adapt(mlp, loss="mse")
    G = js.hessian.hvp_operator(fn, params, data, operator="ggn")
    v = js.random_direction(jax.random.key(1), params)
    x, unravel = ravel_pytree(params)

    def outputs(f):
        net = eqx.combine(unravel(f), eqx.partition(mlp, eqx.is_array)[1])
        return jax.vmap(net)(data["x"]).ravel()

    J = np.asarray(jax.jacobian(outputs)(x), np.float64)
    expected = 2.0 / J.shape[0] * J.T @ (J @ flat(v))
    np.testing.assert_allclose(flat(G(v)), expected, atol=2e-5)


def test_ggn_without_a_split_is_refused_clearly():
    params = dense_params(jax.random.key(0))
    data = classification_data(n=8)
    plain = lambda p, b: jnp.mean(mlp_outputs(p, b["x"]) ** 2)
    for call in (lambda: js.hessian.hvp_operator(plain, params, data, operator="ggn"),
                 lambda: js.hessian.trace(plain, params, data, key=jax.random.key(0),
                                          operator="ggn"),
                 lambda: js.hessian.top_eigenpairs(plain, params, data, key=jax.random.key(0),
                                                   operator="ggn"),
                 lambda: js.hessian.spectral_density(plain, params, data,
                                                     key=jax.random.key(0), operator="ggn")):
        with pytest.raises(ValueError, match="output_split"):
            call()
    with pytest.raises(ValueError, match="operator must be one of"):
        js.hessian.hvp_operator(plain, params, data, operator="gauss-newton")


# --------------------------------------------------------------------------- Fisher
def test_fisher_equals_the_mean_outer_product_of_per_example_gradients():
    params = dense_params(jax.random.key(3), sizes=(3, 4, 3))
    data = classification_data(n=23, features=3)

    def fn(p, b):
        logp = jax.nn.log_softmax(mlp_outputs(p, b["x"]))
        return {"loss": -jnp.mean(jnp.take_along_axis(logp, b["y"][:, None], axis=1)),
                "accuracy": jnp.mean(jnp.argmax(logp, -1) == b["y"])}

    F = matrix_of(js.hessian.hvp_operator(fn, params, data, operator="fisher", batch_size=7),
                  params)
    x, unravel = ravel_pytree(params)
    grads = np.stack([
        np.asarray(jax.grad(lambda f: fn(unravel(f), {"x": data["x"][i:i + 1],
                                                     "y": data["y"][i:i + 1]})["loss"])(x))
        for i in range(23)]).astype(np.float64)
    np.testing.assert_allclose(F, grads.T @ grads / 23, atol=1e-5)
    tr, se = js.hessian.trace(fn, params, data, key=jax.random.key(0), operator="fisher",
                              num_samples=60, method="hutch++")
    exact = float(np.mean(np.sum(grads ** 2, axis=1)))
    assert abs(tr - exact) < 4 * se + 1e-3 * exact
    t, phi = js.hessian.spectral_density(fn, params, data, key=jax.random.key(0),
                                         operator="fisher", num_iterations=20)
    assert t[np.argmax(phi)] > -1e-3 and phi.sum() * (t[1] - t[0]) == pytest.approx(1, 0.05)


def test_ggn_from_an_nnx_model_with_batchnorm_is_psd_and_matches_jtj():
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(2, 4, rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.b = nnx.Linear(4, 2, rngs=rngs)

        def __call__(self, x):
            return self.b(jnp.tanh(self.bn(self.a(x))))

    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(10, 2)).astype(np.float32),
            "y": rng.normal(size=(10, 2)).astype(np.float32)}
    net = Net(nnx.Rngs(0))
    fn, params = js.flax.adapt(net, loss="mse")
    G = matrix_of(js.hessian.hvp_operator(fn, params, data, operator="ggn"), params)
    x, unravel = ravel_pytree(params)

    def outputs(f):  # the same net written out: BatchNorm at its initial statistics (0, 1)
        p = unravel(f)
        h = data["x"] @ p["a"]["kernel"] + p["a"]["bias"]
        h = h / np.sqrt(1.0 + 1e-5) * p["bn"]["scale"] + p["bn"]["bias"]
        return (jnp.tanh(h) @ p["b"]["kernel"] + p["b"]["bias"]).ravel()

    J = np.asarray(jax.jacobian(outputs)(x), np.float64)
    np.testing.assert_allclose(G, 2.0 / J.shape[0] * J.T @ J, atol=2e-5)
