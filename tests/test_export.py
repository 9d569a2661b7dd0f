"""ParaView .vtp and CSV export: point order, quads, masking, clipping, errors."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from jaxsurf import export
from jaxsurf._io.export import height_field
from jaxsurf._surface import Surface

ALPHAS = np.linspace(-1.0, 1.0, 5)
BETAS = np.array([-0.5, 0.1, 0.5])


def make_plane() -> Surface:
    A, B = np.meshgrid(ALPHAS, BETAS, indexing="ij")
    loss = 2.0 * A + 0.3 * B + 3.0 + 0.5 * A * B
    return Surface(ALPHAS, BETAS, {"loss": loss, "accuracy": 1.0 - loss / 10}, {"seed": 0})


def read_vtp(path) -> dict[str, np.ndarray]:
    """The vtp's arrays by name (Points included), checked against the declared counts."""
    root = ET.parse(path).getroot()
    assert root.tag == "VTKFile" and root.get("type") == "PolyData"
    piece = root.find("PolyData/Piece")
    arrays = {}
    for el in piece.iter("DataArray"):
        assert el.get("format") == "ascii"
        dtype = float if el.get("type").startswith("Float") else int
        arrays[el.get("Name")] = np.array(el.text.split(), dtype=dtype)
    arrays["Points"] = arrays["Points"].reshape(-1, 3)
    assert len(arrays["Points"]) == int(piece.get("NumberOfPoints"))
    assert len(arrays["offsets"]) == int(piece.get("NumberOfPolys"))
    assert piece.find("PointData").get("Scalars") in arrays
    return arrays


def test_points_are_alpha_i_beta_j_value_ij(tmp_path):
    s = make_plane()
    path = export.write_vtp(s, tmp_path / "plane")
    assert path == tmp_path / "plane.vtp"
    arrays = read_vtp(path)
    points = arrays["Points"]
    m = len(BETAS)
    for i, a in enumerate(ALPHAS):
        for j, b in enumerate(BETAS):
            assert tuple(points[i * m + j]) == (a, b, s["loss"][i, j])
    np.testing.assert_array_equal(arrays["loss"], s["loss"].ravel())
    np.testing.assert_array_equal(arrays["z"], s["loss"].ravel())
    np.testing.assert_array_equal(arrays["valid"], 1)


def test_quads_connect_neighbours(tmp_path):
    arrays = read_vtp(export.write_vtp(make_plane(), tmp_path / "q.vtp"))
    n, m = len(ALPHAS), len(BETAS)
    quads = arrays["connectivity"].reshape(-1, 4)
    assert len(quads) == (n - 1) * (m - 1)
    np.testing.assert_array_equal(arrays["offsets"], 4 * np.arange(1, len(quads) + 1))
    points = arrays["Points"]
    for quad in quads:
        corners = points[quad, :2]
        steps = np.abs(np.diff(np.vstack([corners, corners[:1]]), axis=0))
        # each side moves along exactly one axis, by one grid step
        assert np.all((steps[:, 0] == 0) ^ (steps[:, 1] == 0))
        i, j = divmod(int(quad[0]), m)
        assert set(quad.tolist()) == {i * m + j, (i + 1) * m + j, (i + 1) * m + j + 1,
                                      i * m + j + 1}
    # counter-clockwise seen from +z (positive signed area): normals point up
    x, y = points[quads[0], 0], points[quads[0], 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0


def test_non_finite_nodes_drop_their_quads(tmp_path):
    s = make_plane()
    s.metrics["loss"][2, 1] = np.nan  # interior node: touches 4 quads
    s.metrics["loss"][4, 2] = np.inf  # corner node: touches 1 quad
    arrays = read_vtp(export.write_vtp(s, tmp_path / "nan.vtp"))
    quads = arrays["connectivity"].reshape(-1, 4)
    assert len(quads) == 8 - 4 - 1
    bad = {2 * 3 + 1, 4 * 3 + 2}
    assert not bad & set(quads.ravel().tolist())
    valid = arrays["valid"].reshape(5, 3)
    assert valid[2, 1] == 0 and valid[4, 2] == 0 and valid.sum() == 13
    finite = s["loss"][np.isfinite(s["loss"])]
    z = arrays["z"].reshape(5, 3)
    assert z[2, 1] == z[4, 2] == finite.max()
    assert np.all(np.isfinite(arrays["loss"]))  # VTK's ASCII reader cannot parse nan
    assert len(arrays["Points"]) == 15


def test_clip_log_scale(tmp_path):
    s = make_plane()
    raw, z, valid = height_field(s, zmax=3.0, log=True, scale_z=2.0)
    np.testing.assert_allclose(z, 2.0 * np.log10(np.minimum(s["loss"], 3.0)))
    arrays = read_vtp(export.write_vtp(s, tmp_path / "c.vtp", "accuracy", zmax=0.8))
    np.testing.assert_allclose(arrays["Points"][:, 2], np.minimum(s["accuracy"], 0.8).ravel())
    np.testing.assert_array_equal(arrays["accuracy"], s["accuracy"].ravel())


def test_errors(tmp_path):
    line = Surface(ALPHAS, None, {"loss": ALPHAS**2}, {})
    with pytest.raises(ValueError, match="needs a 2-D plane.*line"):
        export.write_vtp(line, tmp_path / "l.vtp")
    with pytest.raises(ValueError, match="unknown metric 'x'"):
        export.write_vtp(make_plane(), tmp_path / "x.vtp", "x")
    s = make_plane()
    s.metrics["loss"] = s.metrics["loss"] - 10
    with pytest.raises(ValueError, match="log=True needs positive"):
        export.write_vtp(s, tmp_path / "neg.vtp", log=True)
    s.metrics["loss"][:] = np.nan
    with pytest.raises(ValueError, match="no finite values"):
        export.write_vtp(s, tmp_path / "nan.vtp")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_csv_rows_follow_the_grid(tmp_path):
    s = make_plane()
    s.metrics["loss"][0, 0] = np.nan
    path = export.write_csv(s, tmp_path / "plane.csv")
    with open(path) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["alpha", "beta", "loss", "accuracy"]
    values = np.array(rows[1:], dtype=float)
    assert values.shape == (15, 4)
    m = len(BETAS)
    for i, a in enumerate(ALPHAS):
        for j, b in enumerate(BETAS):
            row = values[i * m + j]
            assert (row[0], row[1]) == (a, b)
            np.testing.assert_equal(row[2:], [s["loss"][i, j], s["accuracy"][i, j]])
    line = Surface(ALPHAS, None, {"loss": ALPHAS**2}, {})
    with open(export.write_csv(line, tmp_path / "line")) as handle:
        assert next(csv.reader(handle)) == ["alpha", "loss"]
