"""The reference tool's .h5 surfaces and direction files, and saved directions."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from helpers import dense_params


def f(x, y):
    """A function whose value tells x from y (non-symmetric)."""
    return 3.0 * x + y ** 2 + 0.5 * x * y


def write_reference_file(path, x, y):
    """What loss-landscape's plot_surface.py writes: values filled in the ravel order of
    np.meshgrid(x, y) into an array of shape (len(x), len(y)), -1 where not computed."""
    with h5py.File(path, "w") as h:
        h["dir_file"] = "dirs.h5"
        h["xcoordinates"] = x
        h["ycoordinates"] = y
        loss = -np.ones((len(x), len(y)))
        acc = -np.ones((len(x), len(y)))
        xm, ym = np.meshgrid(x, y)
        for k in range(loss.size):
            loss.ravel()[k] = f(xm.ravel()[k], ym.ravel()[k])
            acc.ravel()[k] = 50.0
        loss.ravel()[-1] = -1.0  # the last point not computed yet
        h["train_loss"] = loss
        h["train_acc"] = acc


@pytest.mark.parametrize("ny", [5, 4])
def test_reference_surface_file_reads_in_our_orientation(tmp_path, ny):
    x, y = np.linspace(-1, 1, 5), np.linspace(-0.5, 1.5, ny)
    write_reference_file(tmp_path / "s.h5", x, y)
    s = js.Surface.load(tmp_path / "s.h5")
    np.testing.assert_allclose(s.alphas, x)
    np.testing.assert_allclose(s.betas, y)
    expected = f(x[:, None], y[None, :])
    got = s.metrics["train_loss"]
    assert got.shape == (5, ny)
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(got)])
    assert np.isnan(got[-1, -1]) and s.metadata["unfilled"] == {"train_loss": 1}
    assert s.metadata["dir_file"] == "dirs.h5" and s.metadata["accuracy_unit"] == "percent"


def test_write_h5_round_trips_and_matches_what_plot_2d_draws(tmp_path):
    x, y = np.linspace(-1, 1, 6), np.linspace(0, 2, 4)
    ours = js.Surface(x, y, {"loss": f(x[:, None], y[None, :]), "accuracy": np.full((6, 4), 0.25)},
                      {"seed": 3})
    path = js.export.write_h5(ours, tmp_path / "plane")
    assert path.suffix == ".h5"
    with h5py.File(path, "r") as h:  # plot_2D.py: X, Y = meshgrid(x, y); contour(X, Y, Z)
        X, Y = np.meshgrid(h["xcoordinates"][:], h["ycoordinates"][:])
        Z = h["train_loss"][:]
        assert Z.shape == X.shape
        np.testing.assert_allclose(Z, f(X, Y))
        np.testing.assert_allclose(h["train_acc"][:], 25.0)
        # the reference's ravel order: the k-th value is at the k-th point of meshgrid(x, y)
        for k, (xk, yk) in enumerate(zip(X.ravel(), Y.ravel())):
            assert Z.ravel()[k] == f(xk, yk)
    back = js.Surface.load(path)
    assert back.metrics["train_loss"].shape == (6, 4)
    for i, a in enumerate(back.alphas):  # [i, j] at (alphas[i], betas[j]) after the round trip
        for j, b in enumerate(back.betas):
            assert back.metrics["train_loss"][i, j] == ours.metrics["loss"][i, j] == f(a, b)
    assert back.metadata["seed"] == 3
    line = js.Surface(x, None, {"loss": 2 * x})
    np.testing.assert_allclose(js.Surface.load(js.export.write_h5(line, tmp_path / "l.h5"))
                               .metrics["train_loss"], 2 * x)


def test_h5_files_missing_coordinates_or_values_get_clear_errors(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as h:
        h["train_loss"] = np.ones(3)
    with pytest.raises(js.SurfaceFileError, match="no dataset 'xcoordinates'"):
        js.Surface.load(tmp_path / "a.h5")
    with h5py.File(tmp_path / "b.h5", "w") as h:
        h["xcoordinates"] = np.linspace(0, 1, 3)
        h["ycoordinates"] = np.linspace(0, 1, 2)
        h["train_loss"] = np.ones((3, 3))
    with pytest.raises(js.SurfaceFileError, match="dataset 'train_loss' has shape"):
        js.Surface.load(tmp_path / "b.h5")
    with h5py.File(tmp_path / "c.h5", "w") as h:
        h["xcoordinates"] = np.linspace(0, 1, 3)
    with pytest.raises(js.SurfaceFileError, match="no metric"):
        js.Surface.load(tmp_path / "c.h5")
    (tmp_path / "d.h5").write_bytes(b"not hdf5")
    with pytest.raises(js.SurfaceFileError, match="not a readable HDF5"):
        js.Surface.load(tmp_path / "d.h5")


def test_reference_direction_file_maps_onto_flax_params(tmp_path):
    """The documented recipe: PyTorch (out, in) weights transpose onto Flax kernels, values
    and all: the Flax layer computes what the PyTorch layer computes."""
    read_reference_directions = js.read_reference_directions

    params = dense_params(jax.random.key(0), (5, 4, 3))
    rng = np.random.default_rng(0)
    torch_order = [rng.normal(size=(4, 5)), rng.normal(size=4), rng.normal(size=(3, 4)),
                   rng.normal(size=3)]  # net.parameters(): weight, bias per layer
    with h5py.File(tmp_path / "dirs.h5", "w") as h:
        g = h.create_group("xdirection")
        for i, a in enumerate(torch_order):
            g[str(i)] = a
    (xdir,) = read_reference_directions(tmp_path / "dirs.h5")
    for got, want in zip(xdir, torch_order):
        np.testing.assert_array_equal(got, want)
    to_flax = lambda a: a.transpose(2, 3, 1, 0) if a.ndim == 4 else a.T if a.ndim == 2 else a
    d = {f"Dense_{i}": {"kernel": jnp.asarray(to_flax(xdir[2 * i]), jnp.float32),
                        "bias": jnp.asarray(xdir[2 * i + 1], jnp.float32)} for i in range(2)}
    js.tree.check_like(d, params)
    x = rng.normal(size=(7, 5))
    for i in range(2):  # torch: x @ W.T + b; flax: x @ kernel + bias, on a non-square W
        torch_out = x @ torch_order[2 * i].T + torch_order[2 * i + 1]
        np.testing.assert_allclose(x @ np.asarray(d[f"Dense_{i}"]["kernel"], np.float64)
                                   + np.asarray(d[f"Dense_{i}"]["bias"]), torch_out, rtol=1e-5,
                                   atol=1e-5)
        assert d[f"Dense_{i}"]["kernel"][1, 2] == np.float32(torch_order[2 * i][2, 1])
        x = torch_out  # the next layer's input


def test_save_and_load_directions_by_path(tmp_path):
    params = dense_params(jax.random.key(0))
    d1, d2 = js.random_plane(jax.random.key(1), params)
    path = js.save_directions(tmp_path / "dirs", d1, d2, metadata={"seed": 1})
    (l1, l2), meta = js.load_directions(path, params, with_metadata=True)
    assert meta == {"seed": 1}
    for a, b in ((d1, l1), (d2, l2)):
        assert js.tree.fingerprint(a) == js.tree.fingerprint(b)
    bf = jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), params)
    db = js.random_direction(jax.random.key(2), bf)
    (back,) = js.load_directions(js.save_directions(tmp_path / "bf.npz", db), bf)
    assert js.tree.fingerprint(back) == js.tree.fingerprint(db)
    other = {"Dense_0": params["Dense_0"], "Dense_9": params["Dense_1"]}
    with pytest.raises(js.DirectionFileError, match=r"Dense_9"):
        js.load_directions(path, other)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(js.DirectionFileError, match="not a readable"):
        js.load_directions(tmp_path / "junk.npz", params)
