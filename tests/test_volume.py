"""Volumes: js.evaluate_volume, Surface.gammas, js.random_directions, .vti export, slices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf._surface import Surface

ALPHAS = np.array([-0.5, 0.0, 0.75])
BETAS = np.array([-1.0, -0.2, 0.3, 1.0])
GAMMAS = np.linspace(-0.4, 0.4, 5)


def plain_fn(params, batch):
    """A plain pytree model (no framework): least squares and a second metric."""
    pred = batch["x"] @ params["w"] + params["b"]
    err = pred - batch["y"]
    return {"loss": jnp.mean(err**2), "mae": jnp.mean(jnp.abs(err))}


def plain_problem():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
              "b": jnp.asarray(rng.normal(size=(2,)), jnp.float32)}
    data = {"x": rng.normal(size=(37, 3)).astype(np.float32),
            "y": rng.normal(size=(37, 2)).astype(np.float32)}
    return params, data


def test_volume_orientation_matches_direct_evaluation():
    params, data = plain_problem()
    d1, d2, d3 = js.random_directions(jax.random.key(1), params, n=3, method="layer",
                                      ignore=None)
    v = js.evaluate_volume(plain_fn, params, d1, d2, d3, data, ALPHAS, BETAS, GAMMAS,
                           batch_size=10, metadata={"seed": 1}, progress=False)
    assert v.is_volume and not v.is_plane and v.shape == (3, 4, 5)
    assert v.metrics["loss"].shape == (3, 4, 5) and set(v.metrics) == {"loss", "mae"}
    for i, j, k in [(0, 0, 0), (2, 1, 4), (1, 3, 2), (0, 2, 3)]:
        point = jax.tree_util.tree_map(
            lambda p, x, y, z: p + ALPHAS[i] * x + BETAS[j] * y + GAMMAS[k] * z,
            params, d1, d2, d3)
        direct = plain_fn(point, data)
        assert v.metrics["loss"][i, j, k] == pytest.approx(float(direct["loss"]), rel=1e-5)
        assert v.metrics["mae"][i, j, k] == pytest.approx(float(direct["mae"]), rel=1e-5)
    assert v.metadata["kind"] == "volume" and v.metadata["seed"] == 1
    assert len(v.metadata["directions"]) == 3 and v.metadata["normalization"] == "layer"
    assert set(v.metadata["directions_cosines"]) == {"12", "13", "23"}
    assert v.argmin("loss") == tuple(
        float(c[x]) for c, x in zip((ALPHAS, BETAS, GAMMAS), np.unravel_index(
            np.argmin(v.metrics["loss"]), v.shape)))


def test_volume_of_an_equinox_model_resumes_from_a_store(tmp_path):
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    _, data = plain_problem()

    def fn(p, batch):
        m = eqx.combine(p, static)
        return jnp.mean((jax.vmap(m)(batch["x"]) - batch["y"]) ** 2)

    d = js.random_directions(jax.random.key(2), params, n=3)
    grid = (ALPHAS, BETAS[:3], GAMMAS[:2])
    first = js.evaluate_volume(fn, params, *d, data, *grid, store=tmp_path / "s",
                               progress=False)
    again = js.evaluate_volume(fn, params, *d, data, *grid, store=tmp_path / "s",
                               progress=False)
    assert again.metadata["points_evaluated"] == 0
    np.testing.assert_array_equal(first.metrics["loss"], again.metrics["loss"])


def test_random_directions_are_normalized_and_distinct():
    params, _ = plain_problem()
    d = js.random_directions(jax.random.key(0), params, n=3)
    assert len(d) == 3
    for x in d:
        assert js.describe_direction(x, params)["normalization"] == "filter"
        np.testing.assert_array_equal(x["b"], 0.0)        # biasbn
    assert not np.allclose(d[0]["w"], d[1]["w"])
    ortho = js.random_directions(jax.random.key(0), params, n=3, method="none",
                                 orthogonal=True)
    assert abs(float(js.tree.dot(ortho[0], ortho[2]))) < 1e-5
    with pytest.raises(ValueError, match="n must be a positive integer"):
        js.random_directions(jax.random.key(0), params, n=0)


@pytest.mark.parametrize("which,bad", [("alphas", [0.0, 0.5, 0.5]), ("betas", [1.0, -1.0]),
                                       ("gammas", [0.2, 0.1, 0.3])])
def test_a_grid_that_is_not_strictly_increasing_is_refused(which, bad):
    params, data = plain_problem()
    d = js.random_directions(jax.random.key(0), params, n=3)
    grids = {"alphas": ALPHAS, "betas": BETAS, "gammas": GAMMAS, which: np.array(bad)}
    with pytest.raises(ValueError, match=f"{which} must be strictly increasing"):
        js.evaluate_volume(plain_fn, params, *d, data, grids["alphas"], grids["betas"],
                           grids["gammas"], progress=False)


def test_a_direction_of_another_shape_is_named():
    params, data = plain_problem()
    d1, d2, _ = js.random_directions(jax.random.key(0), params, n=3)
    with pytest.raises(ValueError, match="d3"):
        js.evaluate_volume(plain_fn, params, d1, d2, {"w": jnp.zeros((3, 3)),
                                                      "b": jnp.zeros(2)},
                           data, ALPHAS, BETAS, GAMMAS, progress=False)


def make_volume(nan: bool = False) -> Surface:
    A, B, G = np.meshgrid(ALPHAS, BETAS, GAMMAS, indexing="ij")
    loss = A + 10 * B + 100 * G + 1000.0
    if nan:
        loss[0, 1, 2] = np.nan
    return Surface(ALPHAS, BETAS, {"loss": loss, "acc": -loss}, {"seed": 3}, GAMMAS)


def test_surface_volume_save_load_summary(tmp_path):
    v = make_volume(nan=True)
    back = Surface.load(v.save(tmp_path / "v.npz"))
    assert back == v and back.gammas is not None and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back.gammas, GAMMAS)
    assert back != Surface(v.alphas, v.betas, {k: x[:, :, :] for k, x in v.metrics.items()},
                           v.metadata, GAMMAS + 1)
    text = v.summary()
    assert "3x4x5 volume" in text and "gamma in [-0.4, 0.4]" in text and "1 non-finite" in text
    assert "at origin" not in text           # (0, 0, 0) is not on this grid
    with pytest.raises(ValueError, match="shape"):
        Surface(ALPHAS, BETAS, {"loss": np.zeros((3, 4))}, {}, GAMMAS)
    with pytest.raises(ValueError, match="needs betas as well as gammas"):
        Surface(ALPHAS, None, {"loss": np.zeros(3)}, {}, GAMMAS)


def test_info_cli_reads_a_volume(tmp_path, capsys):
    from jaxsurf import _cli as cli

    path = make_volume().save(tmp_path / "v.npz")
    cli.main(["info", str(path)])
    assert "3x4x5 volume" in capsys.readouterr().out


def test_vti_read_back_by_vtk(tmp_path):
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    grid_a = np.linspace(-1, 1, 3)
    grid_b = np.linspace(0.0, 1.5, 4)
    grid_g = np.linspace(-0.4, 0.4, 5)
    A, B, G = np.meshgrid(grid_a, grid_b, grid_g, indexing="ij")
    loss = A + 10 * B + 100 * G + 1000.0
    loss[0, 1, 2] = np.nan
    v = Surface(grid_a, grid_b, {"loss": loss, "acc": -loss}, {}, grid_g)
    path = js.export.write_vti(v, tmp_path / "volume")
    assert path.suffix == ".vti"
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    assert image.GetDimensions() == (3, 4, 5)
    assert image.GetOrigin() == pytest.approx((-1.0, 0.0, -0.4))
    assert image.GetSpacing() == pytest.approx((1.0, 0.5, 0.2))
    values = vtk_to_numpy(image.GetPointData().GetArray("loss"))
    valid = vtk_to_numpy(image.GetPointData().GetArray("valid"))
    acc = vtk_to_numpy(image.GetPointData().GetArray("acc"))
    for ijk in np.ndindex(3, 4, 5):
        pid = image.ComputePointId(list(ijk))
        assert image.GetPoint(pid) == pytest.approx((grid_a[ijk[0]], grid_b[ijk[1]],
                                                     grid_g[ijk[2]]))
        if ijk == (0, 1, 2):
            assert valid[pid] == 0 and values[pid] == np.nanmax(loss)
        else:
            assert valid[pid] == 1 and values[pid] == pytest.approx(loss[ijk])
            assert acc[pid] == pytest.approx(-loss[ijk])
    assert image.GetPointData().GetScalars().GetName() == "loss"


def test_vti_of_a_plane_and_bad_input(tmp_path):
    vtk = pytest.importorskip("vtk")
    A, B = np.meshgrid(ALPHAS[:2], BETAS[::3], indexing="ij")
    plane = Surface(ALPHAS[:2], BETAS[::3], {"loss": A + B})
    path = js.export.write_vti(plane, tmp_path / "plane.vti")
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    assert reader.GetOutput().GetDimensions() == (2, 2, 1)
    with pytest.raises(ValueError, match="evenly spaced.*steps of alphas range from 0.5 to 0.75"):
        js.export.write_vti(make_volume(), tmp_path / "uneven.vti")   # ALPHAS are uneven
    with pytest.raises(ValueError, match="line of 3 points"):
        js.export.write_vti(Surface(ALPHAS, None, {"loss": ALPHAS}), tmp_path / "line.vti")


def test_slices_plot(tmp_path):
    grid_g = np.linspace(-2, 2, 7)
    A, B, G = np.meshgrid(ALPHAS, BETAS, grid_g, indexing="ij")
    loss = A**2 + B**2 + (G - 1) ** 2 + 0.1
    loss[0, 0, 0] = np.nan
    v = Surface(ALPHAS, BETAS, {"loss": loss}, {}, grid_g)
    fig = js.plot.slices(v, at="min", log=True, out=tmp_path / "slices.png")
    assert (tmp_path / "slices.png").stat().st_size > 0
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][:3]
    assert [ax.get_xlabel()[:5] for ax in panels] == ["alpha", "alpha", "beta "]
    assert [ax.get_ylabel()[:5] for ax in panels] == ["beta ", "gamma", "gamma"]
    assert "gamma = 1" in panels[0].get_title() and "alpha = 0" in panels[2].get_title()
    # one colour scale: every panel's mesh shares the volume's range
    norms = {(m.norm.vmin, m.norm.vmax) for ax in panels for m in ax.collections[:1]}
    assert len(norms) == 1
    with pytest.raises(ValueError, match="draws a volume"):
        js.plot.slices(Surface(ALPHAS, BETAS, {"loss": np.zeros((3, 4))}))
    with pytest.raises(ValueError, match="unknown metric"):
        js.plot.slices(v, "accuracy")
    with pytest.raises(ValueError, match="at must be"):
        js.plot.slices(v, at=(0.0, 1.0))
