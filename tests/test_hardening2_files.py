"""Issue 23 (hardening, round 2), file formats and readers: one test (or a few) per item.

Each failed on main before the fix (the before behaviour is quoted in the
docstring); docs/robustness.md has the probe table. Files are built by hand,
tiny, the way a damaged or crafted file would be.
"""

import csv
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _limits, _cli as cli
from jaxsurf import _store as store_lib
from jaxsurf._io.npz import NpzReader, open_regular


def volume():
    """A 2x3x4 volume whose value tells every (i, j, k) apart."""
    a, b, g = np.linspace(-1, 1, 2), np.linspace(0, 1, 3), np.linspace(-2, 1, 4)
    loss = 100 * a[:, None, None] + 10 * b[None, :, None] + g[None, None, :]
    return js.Surface(a, b, {"accuracy": np.full((2, 3, 4), 0.5), "loss": loss}, gammas=g)


def rewrite_npz(path, out, **replace):
    """``path`` with some members replaced (the way a hand-edited file would be)."""
    with np.load(path) as contents:
        arrays = {name: contents[name] for name in contents.files}
    arrays.update(replace)
    np.savez(out, **arrays)
    return out


# --------------------------------------------------------------------------- item 2
def test_item2_write_h5_then_load_keeps_values_equal_to_minus_one(tmp_path):
    """Before: the -1.0 values came back NaN (the reference's "unfilled" marker applied to
    a file jaxsurf wrote itself)."""
    x, y = np.linspace(-1, 1, 3), np.linspace(0, 1, 2)
    loss = np.array([[-1.0, 2.0], [3.0, -1.0], [0.5, 1.0]])
    back = js.Surface.load(js.export.write_h5(js.Surface(x, y, {"loss": loss}), tmp_path / "a"))
    np.testing.assert_array_equal(back.metrics["train_loss"], loss)
    assert "unfilled_marker" not in back.metadata


def test_item2_only_the_reference_tools_files_map_minus_one_to_nan_and_say_so(tmp_path):
    x, y = np.linspace(-1, 1, 3), np.linspace(0, 1, 2)
    with h5py.File(tmp_path / "ref.h5", "w") as f:  # no jaxsurf_metadata: the reference's file
        f["xcoordinates"], f["ycoordinates"] = x, y
        f["train_loss"] = np.array([[1.0, -1.0, 2.0], [-1.0, -1.0, 3.0]])
    s = js.Surface.load(tmp_path / "ref.h5")
    assert s.metadata["unfilled"] == {"train_loss": 3}
    assert s.metadata["unfilled_marker"] == -1.0
    assert int(np.isnan(s.metrics["train_loss"]).sum()) == 3


def test_item2_a_damaged_jaxsurf_metadata_attribute_is_an_error(tmp_path):
    path = js.export.write_h5(js.Surface(np.arange(3.0), None, {"loss": -np.ones(3)}),
                              tmp_path / "a.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["jaxsurf_metadata"] = "[" * 100_000
    with pytest.raises(js.SurfaceFileError, match=r"jaxsurf_metadata.*a\.h5.*nested"):
        js.Surface.load(path)


# --------------------------------------------------------------------------- item 3
def test_item3_csv_writes_every_point_of_a_volume(tmp_path):
    """Before: 3 of 27 rows (alpha only) and exit 0."""
    v = volume()
    rows = list(csv.reader(io.StringIO(js.export.write_csv(v, tmp_path / "v.csv").read_text())))
    assert rows[0] == ["alpha", "beta", "gamma", "accuracy", "loss"]
    assert len(rows) == 1 + 2 * 3 * 4
    for row in rows[1:]:
        a, b, g, acc, loss = map(float, row)
        i, j, k = (int(np.flatnonzero(axis == value)[0])
                   for axis, value in ((v.alphas, a), (v.betas, b), (v.gammas, g)))
        assert loss == v.metrics["loss"][i, j, k] and acc == 0.5
    v.save(tmp_path / "v.npz")
    assert cli.main(["csv", str(tmp_path / "v.npz"), "--out", str(tmp_path / "c.csv")]) == 0
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 1 + 24


def test_item3_csv_takes_non_ascii_metric_names(tmp_path):
    """Before: UnicodeEncodeError: 'ascii' codec can't encode character '\\xe9'."""
    s = js.Surface(np.arange(3.0), None, {"lossé": np.arange(3.0), "精度": np.ones(3)})
    text = js.export.write_csv(s, tmp_path / "u.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "alpha,lossé,精度"
    js.export.write_vtp(js.Surface(np.arange(2.0), np.arange(2.0), {"lossé": np.ones((2, 2))}),
                        tmp_path / "u.vtp", metric="lossé")  # ASCII file, name made safe
    assert 'Name="loss_"' in (tmp_path / "u.vtp").read_text(encoding="ascii")


def test_item3_vtp_of_a_volume_points_to_write_vti(tmp_path, capsys):
    """Before: "a .vtp height field needs a 2-D plane, but this surface is a line of 2 points"."""
    with pytest.raises(ValueError, match="2x3x4 volume.*write_vti"):
        js.export.write_vtp(volume(), tmp_path / "v.vtp")
    volume().save(tmp_path / "v.npz")
    assert cli.main(["vtp", str(tmp_path / "v.npz")]) == 2
    assert "volume" in capsys.readouterr().err and not (tmp_path / "v.loss.vtp").exists()


def test_item3_plot_of_a_volume_is_a_clear_error(tmp_path, capsys):
    """Before: matplotlib's "x and y can be no greater than 2D, but have shapes (2,) and
    (2, 3, 4)"."""
    with pytest.raises(ValueError, match=r"2x3x4 volume.*js\.plot\.slices.*write_vti"):
        js.plot.line(volume())
    with pytest.raises(ValueError, match="volume"):
        js.plot.contour(volume())
    volume().save(tmp_path / "v.npz")
    assert cli.main(["plot", str(tmp_path / "v.npz")]) == 2
    assert "2x3x4 volume" in capsys.readouterr().err


# --------------------------------------------------------------------------- item 7
@pytest.mark.parametrize("stored", [np.ones(2, np.float64), np.ones(4, np.int32),
                                    np.ones(4, ">f4")])
def test_item7_a_direction_leaf_stored_in_another_dtype_is_refused(tmp_path, stored):
    """Before: float64 bits read as float32, [0., 1.875, 0., 1.875]; int32 ones as 1e-45."""
    params = {"w": np.zeros(4, np.float32)}
    path = js.save_directions(tmp_path / "d.npz", {"w": np.ones(4, np.float32)})
    bad = rewrite_npz(path, tmp_path / "bad.npz", d0_0=stored)
    with pytest.raises(js.DirectionFileError,
                       match=rf"bad\.npz: array d0_0 \(leaf \['w'\]\) is stored as "
                             rf"{np.dtype(stored.dtype)}, but the header says float32"):
        js.load_directions(bad, params)


def test_item7_bfloat16_leaves_still_load_and_their_bits_must_match(tmp_path):
    import jax.numpy as jnp

    params = {"w": jnp.zeros(4, jnp.bfloat16)}
    path = js.save_directions(tmp_path / "d.npz", {"w": jnp.arange(4, dtype=jnp.bfloat16)})
    np.testing.assert_array_equal(js.load_directions(path, params)[0]["w"],
                                  jnp.arange(4, dtype=jnp.bfloat16))
    bad = rewrite_npz(path, tmp_path / "bad.npz", d0_0=np.ones(4, np.float16))
    with pytest.raises(js.DirectionFileError, match=r"float16, but the header says bfloat16 "
                                                    r"\(stored as its bits, uint16\)"):
        js.load_directions(bad, params)


# --------------------------------------------------------------------------- item 8
def reference_plane(f):
    f["xcoordinates"], f["ycoordinates"] = np.arange(3.0), np.arange(2.0)


def test_item8_h5_datasets_that_are_links_are_refused(tmp_path):
    """Before: an external link loaded other.h5's values (all 7.0); a dangling link raised
    KeyError 'Unable to synchronously open object (component not found)'."""
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["vals"] = np.full((2, 3), 7.0)
    links = {"external": (h5py.ExternalLink("other.h5", "/vals"), "external link.*other.h5"),
             "soft-out": (h5py.SoftLink("/elsewhere/vals"), "SoftLink to '/elsewhere/vals'"),
             "dangling": (h5py.SoftLink("/nowhere"), "SoftLink to '/nowhere'")}
    for name, (link, words) in links.items():
        with h5py.File(tmp_path / f"{name}.h5", "w") as f:
            reference_plane(f)
            f["train_loss"] = link
        with pytest.raises(js.SurfaceFileError, match=rf"{name}\.h5: '/train_loss' is an? {words}"):
            js.Surface.load(tmp_path / f"{name}.h5")
    with h5py.File(tmp_path / "inside.h5", "w") as f:  # a soft link inside the file: refused too
        reference_plane(f)
        f["real"] = np.ones((2, 3))
        f["train_loss"] = h5py.SoftLink("/real")
    with pytest.raises(js.SurfaceFileError, match="hard links"):
        js.Surface.load(tmp_path / "inside.h5")


def test_item8_reference_direction_files_refuse_links_too(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["w"] = np.ones(3)
    with h5py.File(tmp_path / "dirs.h5", "w") as f:
        f["xdirection/0"] = h5py.ExternalLink("other.h5", "/w")
    with pytest.raises(js.SurfaceFileError, match="'/xdirection/0' is an external link"):
        js.read_reference_directions(tmp_path / "dirs.h5")


@pytest.mark.parametrize("x, words", [([0.0, np.nan, 1.0], "finite"),
                                      ([0.0, 2.0, 1.0], "strictly increasing")])
def test_item8_h5_coordinates_nan_or_unsorted_name_the_file(tmp_path, x, words):
    """Before: "alphas must hold finite numbers" without the file (ValueError)."""
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["xcoordinates"], f["train_loss"] = np.array(x), np.ones(3)
    with pytest.raises(js.SurfaceFileError, match=rf"c\.h5: dataset 'xcoordinates' .*{words}"):
        js.Surface.load(tmp_path / "c.h5")


# --------------------------------------------------------------------------- item 9
def test_item9_read_reference_directions_is_public(tmp_path):
    """Before: AttributeError: module 'jaxsurf' has no attribute 'read_reference_directions'."""
    assert "read_reference_directions" in js.__all__
    with h5py.File(tmp_path / "dirs.h5", "w") as f:
        f["xdirection/0"], f["xdirection/1"] = np.arange(6.0).reshape(2, 3), np.ones(2)
    (xdir,) = js.read_reference_directions(tmp_path / "dirs.h5")
    np.testing.assert_array_equal(xdir[0], np.arange(6.0).reshape(2, 3))
    docs = (Path(__file__).parent.parent / "docs" / "frameworks.md").read_text()
    assert "js.read_reference_directions(" in docs and "jaxsurf._h5" not in docs


# --------------------------------------------------------------------------- item 10
def test_item10_write_vti_makes_loss_the_active_scalar(tmp_path):
    """Before: <PointData Scalars="accuracy"> (the first metric)."""
    text = js.export.write_vti(volume(), tmp_path / "v.vti").read_text()
    assert '<PointData Scalars="loss">' in text
    s = js.Surface(np.arange(2.0), np.arange(2.0), {"acc": np.ones((2, 2))})
    assert '<PointData Scalars="acc">' in js.export.write_vti(s, tmp_path / "a.vti").read_text()


# --------------------------------------------------------------------------- crashes: sizes
def test_crash_surface_files_declaring_too_many_grid_points_are_refused(tmp_path, capsys):
    """Before: 10^8 deflated zeros took `info` to 870 MB; now refused from the coordinates'
    lengths, before a metric is read."""
    s = js.Surface(np.arange(3.0), np.arange(2.0), {"loss": np.ones((3, 2))})
    big = rewrite_npz(s.save(tmp_path / "s.npz"), tmp_path / "big.npz",
                      alphas=np.arange(10_000.0), betas=np.arange(10_000.0))
    with pytest.raises(js.SurfaceFileError,
                       match=r"big\.npz declares 100,000,000 grid points, more than the "
                             r"10,000,000.*JAXSURF_MAX_GRID_POINTS"):
        js.Surface.load(big)
    assert cli.main(["info", str(big)]) == 2
    assert "100,000,000 grid points" in capsys.readouterr().err


def test_crash_deflated_zero_metrics_are_refused_by_the_grid_cap(tmp_path, monkeypatch):
    a = np.arange(1000.0)
    s = js.Surface(a, a, {"loss": np.zeros((1000, 1000), np.float32)})
    path = tmp_path / "z.npz"
    header = json.dumps({"format": "jaxsurf.surface", "format_version": 1,
                         "metric_names": ["loss"], "metadata": {}})
    np.savez_compressed(path, alphas=a, betas=a, metric_0=s.metrics["loss"],
                        header=np.array(header))
    assert os.path.getsize(path) < 20_000
    monkeypatch.setenv("JAXSURF_MAX_GRID_POINTS", "100000")
    with pytest.raises(js.SurfaceFileError, match="1,000,000 grid points, more than the 100,000"):
        js.Surface.load(path)
    monkeypatch.setenv("JAXSURF_MAX_GRID_POINTS", "1000000")
    assert js.Surface.load(path).shape == (1000, 1000)


def test_crash_a_chunked_h5_metric_of_40000_squared_is_refused(tmp_path):
    """Before: MemoryError: Unable to allocate 11.9 GiB for an array with shape (40000, 40000)."""
    with h5py.File(tmp_path / "big.h5", "w") as f:
        f["xcoordinates"] = f["ycoordinates"] = np.linspace(-1, 1, 40_000)
        f.create_dataset("train_loss", shape=(40_000, 40_000), dtype="f8", chunks=(1000, 1000))
    with pytest.raises(js.SurfaceFileError, match="1,600,000,000 grid points"):
        js.Surface.load(tmp_path / "big.h5")


def test_crash_many_unallocated_h5_metrics_are_refused_in_total(tmp_path, monkeypatch):
    """Each dataset fits the grid, but together they declare more than one read may take."""
    with h5py.File(tmp_path / "many.h5", "w") as f:
        f["xcoordinates"] = f["ycoordinates"] = np.arange(100.0)
        for k in range(50):
            f.create_dataset(f"m{k}", shape=(100, 100), dtype="f8", chunks=(10, 10))
    monkeypatch.setenv("JAXSURF_MAX_READ_BYTES", str(10 * 100 * 100 * 8))
    with pytest.raises(js.SurfaceFileError, match=r"many\.h5: 50 metric datasets of 10,000 "
                                                  r"values declares 4,000,000 bytes"):
        js.Surface.load(tmp_path / "many.h5")


def test_crash_direction_and_store_arrays_are_capped_before_reading(tmp_path, monkeypatch):
    params = {"w": np.zeros(1000, np.float32)}
    path = js.save_directions(tmp_path / "d.npz", params)
    monkeypatch.setenv("JAXSURF_MAX_READ_BYTES", "1000")
    with pytest.raises(js.DirectionFileError, match=r"d0_0'.*4,000 bytes, more than the 1,000"):
        js.load_directions(path, params)
    monkeypatch.delenv("JAXSURF_MAX_READ_BYTES")
    store = open_store(tmp_path / "s.store", num_points=3)
    np.savez(store.path / "part-1-x.npz", request=np.array(store._digest),
             indices=np.arange(4), metric_0=np.zeros(4, np.float32))
    with pytest.raises(js.StoreError, match=r"part-1-x\.npz.*'indices' declares shape \(4,\)"):
        store.read()


def test_crash_limits_are_one_documented_place(monkeypatch):
    assert _limits.max_grid_points() == _limits.MAX_GRID_POINTS == 10_000_000
    assert _limits.max_read_bytes() > 2**20
    monkeypatch.setenv("JAXSURF_MAX_READ_BYTES", "nope")
    with pytest.raises(ValueError, match="JAXSURF_MAX_READ_BYTES='nope' must be a positive"):
        _limits.max_read_bytes()


# --------------------------------------------------------------------------- crashes: files
def open_store(path, num_points=3):
    request = store_lib.make_request({"w": np.zeros(2, np.float32)},
                                     [{"w": np.ones(2, np.float32)}],
                                     np.zeros((num_points, 1), np.float32),
                                     store_lib.stream_fingerprint([4]), ["loss"], "stream")
    return store_lib.PointStore.open(path, request)


@pytest.mark.parametrize("make, words", [
    (lambda p: os.symlink("/dev/zero", p), "is a symbolic link"),
    (os.mkfifo, "is a FIFO"),
    (lambda p: os.symlink(os.path.abspath(__file__), p), "is a symbolic link")])
def test_crash_store_parts_that_are_links_fifos_or_devices_are_refused(tmp_path, make, words):
    """Before: a part linked to /dev/zero was OOM-killed; a FIFO part hung for ever."""
    store = open_store(tmp_path / "s.store")
    store.write(np.array([0]), {"loss": np.array([1.0], np.float32)})
    make(tmp_path / "s.store" / "part-9-bad.npz")
    with pytest.raises(js.StoreError, match=rf"part-9-bad\.npz {words}.*delete it"):
        store.read()


def test_crash_store_request_json_that_is_a_fifo_or_deep_is_refused(tmp_path):
    """Before: a FIFO request.json hung; a 100,000-deep one raised RecursionError."""
    open_store(tmp_path / "a.store")
    request = tmp_path / "a.store" / "request.json"
    request.unlink()
    os.mkfifo(request)
    with pytest.raises(js.StoreError, match=r"request\.json is a FIFO"):
        open_store(tmp_path / "a.store")
    request.unlink()
    request.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(js.StoreError, match=r"request\.json: JSON nested more than 64.*delete"):
        open_store(tmp_path / "a.store")


def test_crash_open_regular_refuses_files_outside_their_folder(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "x.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="outside its folder"):
        open_regular(tmp_path / "store" / ".." / "x.npz", ValueError, folder=tmp_path / "store")
    with open_regular(tmp_path / "x.npz", ValueError) as handle:  # a file the user named
        assert handle.read() == b"x"
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(js.SurfaceFileError, match=r"pipe\.npz is a FIFO"):
        js.Surface.load(tmp_path / "pipe.npz")
    with pytest.raises(ValueError, match="is a character device"):
        NpzReader("/dev/zero", ValueError)


def test_crash_deep_json_in_file_headers_is_a_clear_error(tmp_path):
    """Before: RecursionError: maximum recursion depth exceeded while decoding a JSON array."""
    deep = np.array("[" * 100_000 + "]" * 100_000)
    s = js.Surface(np.arange(3.0), None, {"loss": np.ones(3)}).save(tmp_path / "s.npz")
    with pytest.raises(js.SurfaceFileError, match=r"header of .*deep\.npz: JSON nested"):
        js.Surface.load(rewrite_npz(s, tmp_path / "deep.npz", header=deep))
    params = {"w": np.zeros(2, np.float32)}
    d = js.save_directions(tmp_path / "d.npz", params)
    with pytest.raises(js.DirectionFileError, match=r"header of .*deepd\.npz: JSON nested"):
        js.load_directions(rewrite_npz(d, tmp_path / "deepd.npz", header=deep), params)


def test_crash_a_direction_header_declaring_a_billion_directions_is_refused(tmp_path):
    """Before: the header's count was trusted (a loop over 10^9 names)."""
    params = {"w": np.zeros(2, np.float32)}
    path = js.save_directions(tmp_path / "d.npz", params)
    with np.load(path) as contents:
        header = json.loads(str(contents["header"]))
    header["count"] = 10**9
    bad = rewrite_npz(path, tmp_path / "bad.npz", header=np.array(json.dumps(header)))
    with pytest.raises(js.DirectionFileError, match="declares 1000000000 direction"):
        js.load_directions(bad, params)


def test_crash_text_garbage_passed_to_load_directions_names_the_file(tmp_path):
    """Before: "This file contains pickled (object) data. If you trust the file you can load
    it unsafely using the `allow_pickle=` keyword argument" (misleading)."""
    (tmp_path / "g.npz").write_text("hello, not an npz\n" * 5)
    with pytest.raises(js.DirectionFileError, match=r"g\.npz is damaged or not a readable "
                                                    r"directions file") as info:
        js.load_directions(tmp_path / "g.npz", {"w": np.zeros(2)})
    assert "pickle" not in str(info.value)


def test_crash_surface_with_a_bare_array_as_metrics_is_a_type_error():
    """Before: ValueError: The truth value of an array with more than one element is
    ambiguous."""
    with pytest.raises(TypeError, match="metrics must be a dict of metric name -> array"):
        js.Surface(np.arange(3.0), None, np.arange(3.0))  # pyright: ignore[reportArgumentType]


# --------------------------------------------------------------------------- crashes: trajectory
@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("traj") / "t"
    with js.TrajectoryRecorder(path) as rec:
        rec.save(0, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)})
    return path


def test_crash_trajectory_steps_holding_links_or_fifos_are_refused(recorded, tmp_path):
    """Before: orbax followed the link (or blocked on the FIFO)."""
    for name, make, words in (("link", lambda p: os.symlink("/dev/zero", p), "symbolic link"),
                              ("fifo", os.mkfifo, "not a regular file")):
        copy = tmp_path / name
        shutil.copytree(recorded, copy)
        target = next(p for p in (copy / "0" / "params").rglob("*") if p.is_file()
                      and p.parent.name == "d")
        target.unlink()
        make(target)
        with pytest.raises(ValueError, match=rf"cannot read step 0 .*{words}"):
            list(js.load_trajectory(copy))


def test_crash_trajectory_leaves_and_json_are_capped(recorded, tmp_path, monkeypatch):
    copy = tmp_path / "t"
    shutil.copytree(recorded, copy)
    monkeypatch.setenv("JAXSURF_MAX_READ_BYTES", "16")
    with pytest.raises(ValueError, match=r"params leaf \['w'\] \(shape \(2, 3\), float32\) "
                                         r"declares 24 bytes, more than the 16"):
        list(js.load_trajectory(copy))
    monkeypatch.delenv("JAXSURF_MAX_READ_BYTES")
    (copy / "0" / "params" / "_METADATA").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"cannot read step 0 .*JSON nested more than 64"):
        list(js.load_trajectory(copy))


def test_crash_npz_members_are_checked_without_reading_unused_ones(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(3))
    (tmp_path / "one.npz").write_bytes(buf.getvalue())
    with zipfile.ZipFile(tmp_path / "one.npz") as z:
        assert z.namelist() == ["a.npy"]
    with NpzReader(tmp_path / "one.npz", ValueError) as npz:
        assert npz.describe("a") == (np.dtype(np.arange(3).dtype), (3,))
        with pytest.raises(ValueError, match="3 values\\), more than the 2"):
            npz.read("a", kinds="i", max_values=2)
