"""Trajectory PCA: agreement with numpy's SVD, projection, orbax directories, errors."""

import jax
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf._pca import pca_directions, project
from jaxsurf.plot import pca_path
from jaxsurf._trajectory import TrajectoryRecorder


def random_trajectory(n=7, seed=0):
    """A random walk of small params pytrees (a conv-like kernel, biases, a dense layer)."""
    rng = np.random.default_rng(seed)
    p = {"conv": {"kernel": rng.normal(size=(3, 3, 2, 4)), "bias": rng.normal(size=4)},
         "dense": {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=3)}}
    out = []
    for _ in range(n):
        p = jax.tree_util.tree_map(lambda x: x + rng.normal(size=x.shape) * rng.uniform(.1, 1), p)
        out.append(jax.tree_util.tree_map(lambda x: x.astype(np.float32), p))
    return out


def flat(p, skip_1d=False):
    return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree_util.tree_leaves(p)
                           if not (skip_1d and np.ndim(x) <= 1)])


def numpy_pca(traj, skip_1d=False):
    x = np.stack([flat(p, skip_1d) for p in traj])
    x = x - x[-1]
    _, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    return vt, s**2 / np.sum(s**2)


def test_matches_numpy_svd_up_to_sign():
    traj = random_trajectory()
    vt, ratio = numpy_pca(traj)
    dirs, got = pca_directions(traj, k=3)
    np.testing.assert_allclose(got, ratio[:3], rtol=1e-6)
    for j, d in enumerate(dirs):
        v = flat(d)
        assert abs(v @ vt[j]) == pytest.approx(1.0, abs=1e-6)
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-6)
        assert jax.tree_util.tree_structure(d) == jax.tree_util.tree_structure(traj[0])
        js.tree.check_like(d, traj[0])  # same shapes and dtypes as the params
    assert abs(flat(dirs[0]) @ flat(dirs[1])) < 1e-6
    coords = project(traj, None, dirs)
    assert np.all(coords[-1] - coords[0] > 0)  # sign convention: end beyond start


def test_origin_does_not_change_centred_pca_and_uncentred_matches_svd():
    traj = random_trajectory(n=5, seed=1)
    (a1, a2), r_a = pca_directions(traj)
    (b1, b2), r_b = pca_directions(traj, origin=traj[0])
    np.testing.assert_allclose(r_a, r_b, rtol=1e-6)
    np.testing.assert_allclose(flat(a1), flat(b1), atol=1e-6)
    (u1,), r_u = pca_directions(traj, k=1, center=False)
    x = np.stack([flat(p) for p in traj])
    _, s, vt = np.linalg.svd(x - x[-1], full_matrices=False)
    assert abs(flat(u1) @ vt[0]) == pytest.approx(1.0, abs=1e-6)
    assert r_u[0] == pytest.approx(s[0]**2 / np.sum(s**2), rel=1e-6)


def test_planar_path_is_reconstructed_by_its_projection():
    rng = np.random.default_rng(2)
    origin = {"w": rng.normal(size=(6, 5)), "b": rng.normal(size=5)}
    e1 = {"w": rng.normal(size=(6, 5)), "b": rng.normal(size=5)}
    e2 = jax.tree_util.tree_map(lambda x, y: 0.6 * x + y, e1,  # far from orthogonal
                                {"w": rng.normal(size=(6, 5)), "b": rng.normal(size=5)})
    ab = rng.normal(size=(8, 2))
    traj = [jax.tree_util.tree_map(lambda o, x, y: o + a * x + b * y, origin, e1, e2)
            for a, b in ab]
    dirs, ratio = pca_directions(traj, origin=origin)
    assert ratio.sum() == pytest.approx(1.0, abs=1e-12)
    coords = project(traj, origin, dirs)
    for c, theta in zip(coords, traj):
        rebuilt = flat(origin) + c[0] * flat(dirs[0]) + c[1] * flat(dirs[1])
        np.testing.assert_allclose(rebuilt, flat(theta), atol=1e-10)
    # least squares recovers the true (non-orthonormal) coordinates; cosine would not
    np.testing.assert_allclose(project(traj, origin, [e1, e2]), ab, atol=1e-10)
    cosine = [(flat(traj[0]) - flat(origin)) @ flat(e) / np.linalg.norm(flat(e))
              for e in (e1, e2)]
    assert not np.allclose(cosine, ab[0], atol=0.1)
    with pytest.raises(ValueError, match="spans only 2"):
        pca_directions(traj, k=3)


def test_directory_gives_same_result_as_list(tmp_path):
    traj = random_trajectory(n=6, seed=3)
    with TrajectoryRecorder(tmp_path / "traj") as rec:
        for step, p in enumerate(traj):
            rec.save(10 * step, p)
    dirs, ratio = pca_directions(traj, ignore="biasbn")
    size = 4 * flat(traj[0], skip_1d=True).size
    ddirs, dratio = pca_directions(tmp_path / "traj", ignore="biasbn", memory_budget=2 * size)
    np.testing.assert_allclose(dratio, ratio, rtol=1e-6)
    for d, e in zip(ddirs, dirs):
        np.testing.assert_allclose(flat(d), flat(e), atol=1e-6)
    np.testing.assert_allclose(project(str(tmp_path / "traj"), None, ddirs),
                               project(traj, None, dirs), atol=1e-5)


class CountingList(list):
    reads = 0

    def __getitem__(self, i):
        CountingList.reads += 1
        return super().__getitem__(i)


def test_ignore_biasbn_and_bounded_reads():
    traj = CountingList(random_trajectory(n=8, seed=4))
    vt, ratio = numpy_pca(traj, skip_1d=True)
    row_bytes = 4 * flat(traj[0], skip_1d=True).size
    CountingList.reads = 0
    (d1, d2), got = pca_directions(traj, ignore="biasbn", memory_budget=3 * row_bytes)
    assert np.all(d1["conv"]["bias"] == 0) and np.all(d2["dense"]["bias"] == 0)
    np.testing.assert_allclose(got, ratio[:2], rtol=1e-6)
    assert abs(flat(d1, skip_1d=True) @ vt[0]) == pytest.approx(1.0, abs=1e-6)
    # blocks of 3 rows: 8 + 5 + 2 reads for the Gram matrix, 8 for the directions,
    # plus the shape probe and the origin: never all points at once.
    assert CountingList.reads == 8 + 5 + 2 + 8 + 2


def test_clear_errors():
    traj = random_trajectory(n=4)
    with pytest.raises(ValueError, match="empty"):
        pca_directions([])
    with pytest.raises(ValueError, match="k=4 is too large"):
        pca_directions(traj, k=4)
    with pytest.raises(ValueError, match="positive integer"):
        pca_directions(traj, k=0)
    bad = list(traj)
    bad[2] = {**traj[2], "dense": {**traj[2]["dense"], "kernel": np.zeros((3, 4), np.float32)}}
    with pytest.raises(ValueError, match=r"trajectory\[2\] does not match trajectory\[0\] at "
                                         r"\['dense'\]\['kernel'\]"):
        pca_directions(bad)
    with pytest.raises(ValueError, match=r"origin does not match .*\['conv'\]\['bias'\]"):
        pca_directions(traj, origin={**traj[0], "conv": {"kernel": traj[0]["conv"]["kernel"]}})
    with pytest.raises(ValueError, match="identical"):
        pca_directions([traj[0]] * 3)
    with pytest.raises(TypeError, match="list"):
        pca_directions(iter(traj))
    with pytest.raises(ValueError, match="linearly dependent"):
        project(traj, None, [traj[0], traj[0]])
    with pytest.raises(FileNotFoundError):
        pca_directions("/nonexistent/trajectory")


def test_plot_path(tmp_path):
    a, b = np.linspace(-2, 2, 9), np.linspace(-1, 1, 7)
    A, B = np.meshgrid(a, b, indexing="ij")
    surface = js.Surface(a, b, {"loss": A**2 + 2 * B**2 + 0.1})
    coords = np.stack([np.linspace(-2.5, 0, 12), np.linspace(0.8, 0, 12)], axis=1)
    out = tmp_path / "path.png"
    fig = pca_path(surface, coords, explained_variance_ratio=np.array([0.8123, 0.1]),
                    epochs=range(0, 24, 2), out=out)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "PC1 (81.2 % of variance)"
    assert ax.get_ylabel() == "PC2 (10.0 % of variance)"
    assert ax.get_xlim()[0] < -2.5  # widened to show the start, outside the grid
    assert {t.get_text() for t in ax.texts} >= {"0", "22"}
    assert out.stat().st_size > 0
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        pca_path(surface, coords[:, :1])
