import numpy as np
import pytest

import jaxsurf as js


def plane():
    a, b = np.linspace(-1, 1, 4), np.linspace(-0.5, 0.5, 3)
    loss = (a[:, None] ** 2 + 3 * b[None, :] ** 2).astype(np.float32)
    loss[0, 0] = np.nan
    return js.Surface(a, b, {"loss": loss, "accuracy": 1 - loss / 10},
                      {"kind": "plane", "seed": 3, "directions": [{"norm": 1.5}],
                       "small": 0.1 + 0.2})


def test_round_trip_is_exact(tmp_path):
    s = plane()
    path = s.save(tmp_path / "sub" / "plane.npz")
    back = js.Surface.load(path)
    assert back == s
    assert back.metrics["loss"].dtype == np.float32 and back.metadata["small"] == 0.1 + 0.2
    line = js.Surface(np.arange(3.0), None, {"loss": np.array([1.0, 0.5, 1.0])})
    assert js.Surface.load(line.save(tmp_path / "line")) == line  # suffix added
    assert (tmp_path / "line.npz").exists()


def test_orientation_and_shape_checks():
    s = plane()
    assert s.shape == (4, 3) and s.is_plane
    with pytest.raises(ValueError, match=r"shape \(3, 4\).*\(4, 3\)"):
        js.Surface(s.alphas, s.betas, {"loss": s.metrics["loss"].T})
    with pytest.raises(ValueError, match="at least one metric"):
        js.Surface(s.alphas, s.betas, {})
    assert s.argmin() == (0.0, 0.0) or s.argmin()[1] == 0.0


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Surface file"):
        js.Surface.load(tmp_path / "missing.npz")
    path = plane().save(tmp_path / "p.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(js.SurfaceFileError, match="truncated"):
        js.Surface.load(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(js.SurfaceFileError, match="not a jaxsurf Surface"):
        js.Surface.load(tmp_path / "other.npz")


def test_summary_mentions_grid_and_nonfinite():
    text = plane().summary()
    assert "4x3 grid" in text and "1 non-finite" in text and "seed: 3" in text


def test_foreign_and_damaged_files_are_surface_file_errors(tmp_path):
    import json
    np.save(tmp_path / "array.npy", np.ones(3))
    header = lambda **h: np.array(json.dumps({"format": "jaxsurf.surface", **h}))
    np.savez(tmp_path / "text.npz", alphas=np.ones(2), header=np.array("not json"))
    np.savez(tmp_path / "names.npz", alphas=np.ones(2), header=header())
    np.savez(tmp_path / "shape.npz", alphas=np.arange(2.0), metric_0=np.ones(5),
             header=header(metric_names=["loss"], metadata={}))
    for name, words in [("array.npy", "single array"), ("text.npz", "not valid JSON"),
                        ("names.npz", "damaged header"), ("shape.npz", "inconsistent")]:
        with pytest.raises(js.SurfaceFileError, match=words):
            js.Surface.load(tmp_path / name)


def test_metadata_is_kept_json_safe_so_a_built_surface_round_trips(tmp_path):
    s = js.Surface(np.arange(3.0), np.arange(2.0), {"loss": np.ones((3, 2))},
                   {"grid": (3, 2), "seed": np.int64(3), "scale": np.float32(0.5)})
    assert s.metadata == {"grid": [3, 2], "seed": 3, "scale": 0.5}
    assert js.Surface.load(s.save(tmp_path / "built")) == s  # also without the suffix
