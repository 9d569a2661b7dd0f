"""Sharded params (issue 25): meshes with model axes, directions that keep the
params' shardings, Hessian and sharpness on sharded params, memory planning, and
the errors for params and directions placed wrongly.

The test session has 4 simulated CPU devices (tests/conftest.py): the in-process
tests use a ("points", "model") 2 x 2 mesh; ``test_eight_devices`` runs the 2 x 4
mesh of the issue in a subprocess with 8 devices.
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

import jaxsurf as js
from jaxsurf._engine.memory import MemoryPlanError

SPECS = {"Dense_0": {"kernel": P(None, "model"), "bias": P("model")},
         "Dense_1": {"kernel": P("model", None), "bias": P()}}


def make_mesh(kind: str) -> Mesh:
    types = (AxisType.Explicit,) * 2 if kind == "explicit" else (AxisType.Auto,) * 2
    return jax.make_mesh((2, 2), ("points", "model"), axis_types=types,
                         devices=jax.devices()[:4])


def make_params(seed: int = 0) -> dict:
    k0, k1, k2 = jax.random.split(jax.random.key(seed), 3)
    return {"Dense_0": {"kernel": 0.5 * jax.random.normal(k0, (6, 8)),
                        "bias": 0.1 * jax.random.normal(k2, (8,))},
            "Dense_1": {"kernel": 0.5 * jax.random.normal(k1, (8, 3)), "bias": jnp.zeros(3)}}


def shard(tree, mesh):
    return jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), tree, SPECS)


def fn(params, batch):
    """A tanh MLP's cross-entropy, written to run under explicit sharding too (the
    contraction over the sharded hidden axis names its output's sharding)."""
    h = jnp.tanh(batch["x"] @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
    logits = jnp.einsum("bh,ho->bo", h, params["Dense_1"]["kernel"],
                        out_sharding=P() if _explicit(h) else None)
    logits = logits + params["Dense_1"]["bias"]
    logp = jax.nn.log_softmax(logits)
    return {"loss": -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1)),
            "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}


def _explicit(x) -> bool:
    mesh = jax.typeof(x).sharding.mesh
    return any(t == AxisType.Explicit for t in getattr(mesh, "axis_types", ()))


def make_data(n: int = 40) -> dict:
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(n, 6)).astype(np.float32),
            "y": rng.integers(0, 3, n).astype(np.int32)}


def specs_of(tree):
    return jax.tree.map(lambda x: x.sharding.spec, tree)


def assert_sharded_like(tree, params):
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(tree),
                            jax.tree_util.tree_leaves(params)):
        assert isinstance(a, jax.Array), path
        assert a.sharding.is_equivalent_to(b.sharding, a.ndim), (path, a.sharding, b.sharding)


GRID = np.linspace(-1.0, 1.0, 5)


@pytest.mark.parametrize("kind", ["auto", "explicit"])
def test_plane_on_points_model_mesh_equals_unsharded(kind):
    params, data = make_params(), make_data()
    d1, d2 = js.random_plane(jax.random.key(1), params)
    plain = js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID, batch_size=16,
                              progress=False)
    mesh = make_mesh(kind)
    sp, s1, s2 = shard(params, mesh), shard(d1, mesh), shard(d2, mesh)
    sharded = js.evaluate_plane(fn, sp, s1, s2, data, GRID, GRID, batch_size=16,
                                progress=False, mesh=mesh)
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(sharded.metrics[name], plain.metrics[name],
                                   rtol=2e-6, atol=2e-6)
    meta = sharded.metadata
    assert meta["mesh"] == {"points": 2, "data": 1, "model": 2}
    plan = meta["memory"]["per_device_bytes"]
    # each device holds half of the sharded leaves: 6*4 + 4 + 4*3 floats + the bias (3)
    assert plan["params"] == (6 * 4 + 4 + 4 * 3 + 3) * 4
    assert plan["directions"] == 2 * plan["params"]
    assert plan["total"] >= plan["params"] + plan["directions"]


def test_sharded_params_are_never_gathered():
    """The program the engine runs holds one shard of each sharded leaf per
    device: XLA's own count of the argument bytes is that of the shards."""
    params, data = make_params(), make_data()
    mesh = make_mesh("auto")
    sp = shard(params, mesh)
    d = js.random_direction(jax.random.key(3), sp)
    line = js.evaluate_line(fn, sp, d, data, GRID, batch_size=40, progress=False, mesh=mesh)
    assert line.metadata["memory"]["measured_by"] == "xla"
    replicated = js.evaluate_line(fn, params, jax.tree.map(np.asarray, d), data, GRID,
                                  batch_size=40, progress=False,
                                  mesh=Mesh(np.array(jax.devices()[:4]).reshape(2, 2),
                                            ("points", "data")))
    np.testing.assert_allclose(line.metrics["loss"], replicated.metrics["loss"], rtol=2e-6)
    assert line.metadata["memory"]["per_device_bytes"]["params"] < \
        replicated.metadata["memory"]["per_device_bytes"]["params"]


def test_lines_volumes_interpolate_points_store_resume(tmp_path):
    params, data = make_params(), make_data()
    other = make_params(seed=5)
    mesh = make_mesh("auto")
    sp, so = shard(params, mesh), shard(other, mesh)
    d1, d2, d3 = js.random_directions(jax.random.key(2), sp, n=3)
    host = [jax.tree.map(np.asarray, d) for d in (d1, d2, d3)]
    kw = dict(batch_size=16, progress=False)
    line = js.evaluate_line(fn, sp, d1, data, GRID, mesh=mesh, **kw)
    ref = js.evaluate_line(fn, params, host[0], data, GRID, **kw)
    np.testing.assert_allclose(line.metrics["loss"], ref.metrics["loss"], rtol=2e-6)
    small = np.linspace(-1, 1, 3)
    vol = js.evaluate_volume(fn, sp, d1, d2, d3, data, small, small, small, **kw)  # params' mesh
    ref = js.evaluate_volume(fn, params, *host, data, small, small, small, **kw)
    np.testing.assert_allclose(vol.metrics["loss"], ref.metrics["loss"], rtol=2e-6)
    assert vol.metadata["mesh"]["model"] == 2
    inter = js.interpolate(fn, sp, so, data, np.linspace(0, 1, 4), mesh=mesh, **kw)
    ref = js.interpolate(fn, params, other, data, np.linspace(0, 1, 4), **kw)
    np.testing.assert_allclose(inter.metrics["loss"], ref.metrics["loss"], rtol=2e-6)
    coeffs = [[0.0, 0.0], [0.5, -0.25], [1.0, 1.0]]
    values = js.evaluate_points(fn, sp, [d1, d2], data, coeffs, mesh=mesh, **kw)
    ref = js.evaluate_points(fn, params, host[:2], data, coeffs, **kw)
    np.testing.assert_allclose(values["loss"], ref["loss"], rtol=2e-6)
    store = tmp_path / "store"
    first = js.evaluate_plane(fn, sp, d1, d2, data, GRID, GRID, mesh=mesh, store=store, **kw)
    again = js.evaluate_plane(fn, sp, d1, d2, data, GRID, GRID, mesh=mesh, store=store, **kw)
    assert again.metadata["points_from_store"] == GRID.size ** 2
    np.testing.assert_array_equal(again.metrics["loss"], first.metrics["loss"])
    fine = np.linspace(-1, 1, 9)
    refined = js.evaluate_plane(fn, sp, d1, d2, data, fine, fine, mesh=mesh,
                                refine=js.Refine(tol=1e-3, start=2), **kw)
    ref = js.evaluate_plane(fn, params, host[0], host[1], data, fine, fine,
                            refine=js.Refine(tol=1e-3, start=2), **kw)
    np.testing.assert_allclose(refined.metrics["loss"], ref.metrics["loss"], rtol=2e-6)
    batches = [{k: v[i:i + 16] for k, v in data.items()} for i in range(0, 40, 16)]
    streamed = js.evaluate_line(fn, sp, d1, batches, GRID, mesh=mesh, progress=False)
    np.testing.assert_allclose(streamed.metrics["loss"], line.metrics["loss"], rtol=2e-6)


@pytest.mark.parametrize("kind", ["auto", "explicit"])
def test_directions_keep_each_leafs_sharding(kind):
    params = make_params()
    mesh = make_mesh(kind)
    sp = shard(params, mesh)
    key = jax.random.key(0)
    d = js.random_direction(key, sp)
    assert_sharded_like(d, sp)
    # the same draws as unsharded (JAX's partitionable threefry)
    np.testing.assert_array_equal(np.asarray(d["Dense_0"]["kernel"]),
                                  np.asarray(js.random_direction(key, params)["Dense_0"]["kernel"]))
    for out in (js.normalize(d, sp), *js.random_plane(key, sp, orthogonal=True),
                *js.random_directions(key, sp, n=2, orthogonal=True),
                js.orthogonalize(d, js.normalize(d, sp)), js.between(sp, shard(make_params(3),
                                                                              mesh))):
        assert_sharded_like(out, sp)
    trajectory = [shard(make_params(s), mesh) for s in range(4)]
    (p1, p2), _ = js.pca_directions(trajectory, k=2)
    assert_sharded_like(p1, sp)
    assert_sharded_like(p2, sp)


def _filter_norms(direction, axis_of):
    return {k: np.linalg.norm(np.asarray(direction[k]["kernel"]),
                              axis=axis_of(direction[k]["kernel"])) for k in direction}


@pytest.mark.parametrize("kind", ["auto", "explicit"])
def test_filter_norms_of_sharded_directions_equal_unsharded(kind):
    params = make_params()
    mesh = make_mesh(kind)
    sp = shard(params, mesh)
    plain = js.normalize(js.random_direction(jax.random.key(4), params), params)
    sharded = js.normalize(js.random_direction(jax.random.key(4), sp), sp)
    rows = lambda x: tuple(range(x.ndim - 1))  # Flax: the last axis indexes the filters
    got, want = _filter_norms(sharded, rows), _filter_norms(plain, rows)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6)
        np.testing.assert_allclose(got[k], np.linalg.norm(np.asarray(params[k]["kernel"]),
                                                          axis=0), rtol=1e-5)
    assert js.describe_direction(sharded, sp)["normalization"] == "filter"


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(0.1, 10.0), min_size=8, max_size=8),
       st.lists(st.floats(0.1, 10.0), min_size=3, max_size=3))
def test_filter_normalization_is_invariant_to_per_filter_rescaling(hidden, out):
    """Li et al.'s reason for filter normalization: rescaling filter j of the params
    by s_j > 0 rescales filter j of the normalized direction by s_j, so the
    plotted surface does not see the rescaling. Checked on sharded params."""
    mesh = make_mesh("auto")
    params = make_params()
    scales = {"Dense_0": jnp.asarray(hidden, jnp.float32), "Dense_1": jnp.asarray(out, jnp.float32)}
    rescaled = {k: {"kernel": params[k]["kernel"] * scales[k], "bias": params[k]["bias"]}
                for k in params}
    d = js.random_direction(jax.random.key(7), params)
    sp, sr, sd = shard(params, mesh), shard(rescaled, mesh), shard(d, mesh)
    base, moved = js.normalize(sd, sp), js.normalize(sd, sr)
    assert_sharded_like(moved, sr)
    for k in params:
        np.testing.assert_allclose(np.asarray(moved[k]["kernel"]),
                                   np.asarray(base[k]["kernel"]) * np.asarray(scales[k]),
                                   rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["auto", "explicit"])
def test_hessian_and_sharpness_on_sharded_params_equal_unsharded(kind):
    params, data = make_params(), make_data()
    mesh = make_mesh(kind)
    sp = shard(params, mesh)
    key = jax.random.key(0)
    with jax.set_mesh(mesh):
        lam, vecs = js.hessian.top_eigenpairs(fn, sp, data, k=1, key=key)
        hv = js.hessian.hvp(fn, sp, data, sp)
        tr, se = js.hessian.trace(fn, sp, data, key=key, num_samples=8)
        eps = js.sharpness.epsilon_sharpness(fn, sp, data, steps=3)
    lam0, _ = js.hessian.top_eigenpairs(fn, params, data, k=1, key=key)
    np.testing.assert_allclose(lam, lam0, rtol=1e-5)
    assert_sharded_like(vecs[0], sp)
    assert_sharded_like(hv, sp)
    hv0 = js.hessian.hvp(fn, params, data, params)
    for a, b in zip(jax.tree.leaves(hv), jax.tree.leaves(hv0)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    tr0, _ = js.hessian.trace(fn, params, data, key=key, num_samples=8)
    np.testing.assert_allclose(tr, tr0, rtol=1e-5)
    eps0 = js.sharpness.epsilon_sharpness(fn, params, data, steps=3)
    np.testing.assert_allclose(eps, eps0, rtol=1e-4)


def test_other_operators_and_hutchpp_on_sharded_params_are_refused_not_swapped():
    # the sharded Lanczos path computes Hessian products only: asking for GGN / Fisher
    # or Hutch++'s dense sketch there is an error, never a silent Hessian
    params, data = make_params(), make_data()
    mesh = make_mesh("auto")
    sp = shard(params, mesh)
    with jax.set_mesh(mesh):
        for operator in ("ggn", "fisher"):
            with pytest.raises(ValueError, match=f"operator='{operator}' is not available "
                                                 f"for params sharded"):
                js.hessian.trace(fn, sp, data, key=jax.random.key(0), num_samples=4,
                                 operator=operator)
        with pytest.raises(ValueError, match="hutch\\+\\+'\\) needs params on one device"):
            js.hessian.trace(fn, sp, data, key=jax.random.key(0), num_samples=6,
                             method="hutch++")


def test_memory_planning_refuses_with_the_numbers():
    params, data = make_params(), make_data()
    d1, d2 = js.random_plane(jax.random.key(1), params)
    with pytest.raises(MemoryPlanError) as caught:
        js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID, progress=False,
                          memory_limit=1000)
    message = str(caught.value)
    params_bytes = sum(x.size * 4 for x in jax.tree.leaves(params))
    assert f"params {params_bytes} B" in message and "1000 bytes, memory_limit" in message
    assert "per device" in message and "model axis" in message and "bfloat16" in message
    assert "at least" in message and "before activations" in message  # refused before compiling
    assert "\n" not in message
    fits = js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID, progress=False)
    need = fits.metadata["memory"]["per_device_bytes"]
    with pytest.raises(MemoryPlanError, match=rf"needs .* \({need['total']} bytes: .*"
                                              rf"activations .*\) with 1 point\(s\) per step, "
                                              rf"but .* \({need['total'] - 1} bytes, "
                                              rf"memory_limit\)"):
        js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID, progress=False,
                          memory_limit=need["total"] - 1)


def test_memory_planning_lowers_points_per_step_to_fit():
    params, data = make_params(), make_data()
    d1, d2 = js.random_plane(jax.random.key(1), params)
    kw = dict(progress=False, batch_size=40, chunk_size=8)
    wide = js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID, points_per_step=8, **kw)
    one = js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID, points_per_step=1, **kw)
    need8 = wide.metadata["memory"]["per_device_bytes"]["total"]
    need1 = one.metadata["memory"]["per_device_bytes"]["total"]
    assert need8 > need1
    fitted = js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID, points_per_step=8,
                               memory_limit=(need1 + need8) // 2, **kw)
    assert 1 <= fitted.metadata["points_per_step"] < 8
    assert fitted.metadata["memory"]["points_per_step_requested"] == 8
    assert fitted.metadata["memory"]["per_device_bytes"]["total"] <= (need1 + need8) // 2
    np.testing.assert_allclose(fitted.metrics["loss"], one.metrics["loss"], rtol=1e-6)


def test_memory_limit_is_an_engine_option():
    assert js.Engine(memory_limit=2 ** 30).memory_limit == 2 ** 30
    with pytest.raises(ValueError, match="memory_limit must be a positive integer"):
        js.Engine(memory_limit=0)


def test_params_sharded_over_another_mesh_are_refused():
    params, data = make_params(), make_data()
    mesh = make_mesh("auto")
    other = jax.make_mesh((2, 2), ("points", "model"), axis_types=(AxisType.Auto,) * 2,
                          devices=jax.devices()[:4][::-1])
    sp = shard(params, other)
    d = shard(js.random_direction(jax.random.key(0), params), other)
    with pytest.raises(ValueError, match=r"params leaf \['Dense_0'\]\['bias'\] is sharded over "
                                         r"another mesh"):
        js.evaluate_line(fn, sp, d, data, GRID, mesh=mesh, progress=False)


def test_a_param_axis_missing_from_the_mesh_is_refused():
    params, data = make_params(), make_data()
    sp = shard(params, make_mesh("auto"))
    d = js.random_direction(jax.random.key(0), sp)
    flat = Mesh(np.array(jax.devices()[:4]).reshape(2, 2), ("points", "data"))
    with pytest.raises(ValueError, match=r"params leaf \['Dense_0'\]\['bias'\] is sharded "
                                         r".* over mesh axis 'model', which the evaluation "
                                         r"mesh .* lacks"):
        js.evaluate_line(fn, sp, d, make_data(), GRID, mesh=flat, progress=False)
    with pytest.raises(ValueError, match="'model', which the evaluation mesh"):
        js.evaluate_line(fn, sp, d, data, GRID, devices=jax.devices()[:2], progress=False)


def test_directions_sharded_unlike_params_are_refused():
    params, data = make_params(), make_data()
    mesh = make_mesh("auto")
    sp = shard(params, mesh)
    d = js.random_direction(jax.random.key(0), sp)
    d["Dense_0"]["kernel"] = jax.device_put(d["Dense_0"]["kernel"],
                                            NamedSharding(mesh, P("model", None)))
    with pytest.raises(ValueError, match=r"direction 0 leaf \['Dense_0'\]\['kernel'\] is "
                                         r"sharded P\('model', None\) but params leaf "
                                         r"\['Dense_0'\]\['kernel'\] is sharded P\(None, "
                                         r"'model'\)"):
        js.evaluate_line(fn, sp, d, data, GRID, mesh=mesh, progress=False)


def test_params_sharded_over_the_engines_axes_are_refused():
    params, data = make_params(), make_data()
    mesh = make_mesh("auto")
    bad = dict(params)
    bad["Dense_0"] = {"kernel": jax.device_put(params["Dense_0"]["kernel"],
                                               NamedSharding(mesh, P(None, "points"))),
                      "bias": params["Dense_0"]["bias"]}
    d = js.random_direction(jax.random.key(0), params)
    with pytest.raises(ValueError, match=r"params leaf \['Dense_0'\]\['kernel'\] is sharded "
                                         r".* over the engine's axis 'points'"):
        js.evaluate_line(fn, bad, d, data, GRID, mesh=mesh, progress=False)


EIGHT = textwrap.dedent('''
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax, numpy as np
    from jax.sharding import AxisType, NamedSharding
    import jaxsurf as js
    import test_sharded as t
    params, data = t.make_params(), t.make_data()
    d1, d2 = js.random_plane(jax.random.key(1), params)
    plain = js.evaluate_plane(t.fn, params, d1, d2, data, t.GRID, t.GRID, batch_size=16,
                              progress=False)
    for types in ((AxisType.Auto,) * 2, None):   # None: jax.make_mesh's explicit axes
        mesh = jax.make_mesh((2, 4), ("points", "model"), axis_types=types)
        sp = t.shard(params, mesh)
        s1, s2 = js.random_plane(jax.random.key(1), sp)
        t.assert_sharded_like(s1, sp)
        s = js.evaluate_plane(t.fn, sp, s1, s2, data, t.GRID, t.GRID, batch_size=16,
                              progress=False, mesh=mesh)
        assert s.metadata["mesh"] == {"points": 2, "data": 1, "model": 4}, s.metadata["mesh"]
        np.testing.assert_allclose(s.metrics["loss"], plain.metrics["loss"], rtol=2e-6,
                                   atol=2e-6)
    print("ok")
''')


def test_eight_devices_two_by_four_mesh_equals_unsharded():
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(here), here])}
    env.pop("XLA_FLAGS", None)
    run = subprocess.run([sys.executable, "-c", EIGHT], capture_output=True, text=True,
                         env=env, cwd=here, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("ok")


TWO_HOSTS = textwrap.dedent('''
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax, numpy as np
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=pid)
    from jax.sharding import AxisType, NamedSharding
    import jaxsurf as js
    import test_sharded as t
    mesh = jax.make_mesh((2, 2), ("points", "model"), axis_types=(AxisType.Auto,) * 2)
    params = jax.tree.map(lambda x, s: jax.make_array_from_callback(   # each process: its shards
        x.shape, NamedSharding(mesh, s), lambda idx, x=np.asarray(x): x[idx]),
        t.make_params(), t.SPECS)
    d1, d2 = js.random_plane(jax.random.key(1), params)
    plane = js.evaluate_plane(t.fn, params, d1, d2, t.make_data(), t.GRID, t.GRID,
                              batch_size=16, progress=False, mesh=mesh)
    with open(out, "w") as f:
        json.dump({"loss": plane.metrics["loss"].tolist(), "mesh": plane.metadata["mesh"],
                   "num_processes": plane.metadata["num_processes"]}, f)
    jax.distributed.shutdown()
''')


@pytest.mark.slow
def test_two_processes_with_sharded_params_equal_unsharded(tmp_path):
    """Multi-host: params sharded over a mesh spanning two processes (gloo on
    localhost, two CPU devices each), each process holding only its shards."""
    import socket

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(here), here])}
    env.pop("XLA_FLAGS", None)
    children = [subprocess.Popen([sys.executable, "-c", TWO_HOSTS, str(pid), str(port),
                                  str(tmp_path / f"out{pid}.json")], env=env, cwd=here,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for pid in range(2)]
    for child in children:
        _, err = child.communicate(timeout=400)
        assert child.returncode == 0, err[-3000:]
    params, data = make_params(), make_data()
    d1, d2 = js.random_plane(jax.random.key(1), params)
    want = js.evaluate_plane(fn, params, d1, d2, data, GRID, GRID, batch_size=16,
                             progress=False).metrics["loss"]
    import json

    for pid in range(2):
        got = json.loads((tmp_path / f"out{pid}.json").read_text())
        assert got["mesh"] == {"points": 2, "data": 1, "model": 2}
        assert got["num_processes"] == 2
        np.testing.assert_allclose(np.array(got["loss"]), want, rtol=2e-6, atol=2e-6)
