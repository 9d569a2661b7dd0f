"""The viewer page without a browser: self-contained, exact data, size, folders, CLI, errors."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _cli as cli

pytest.importorskip("plotly")
from jaxsurf import view
from jaxsurf.view import _page as view_page


def plane(n_alpha: int = 7, n_beta: int = 4, dtype=np.float64, **meta) -> js.Surface:
    a, b = np.linspace(-1, 1, n_alpha), np.linspace(-0.5, 0.5, n_beta)
    A, B = np.meshgrid(a, b, indexing="ij")
    loss = (2 * A + B**2 + 3.0).astype(dtype)
    return js.Surface(a, b, {"loss": loss, "accuracy": np.exp(-loss / 5).astype(dtype)}, meta)


def embedded(text: str) -> dict:
    blob = re.search(r'<script type="application/json" id="jaxsurf-data">(.*?)</script>', text,
                     re.DOTALL).group(1)
    return json.loads(blob.replace("<\\/", "</"))


def decoded(entry: dict) -> np.ndarray:
    raw = base64.b64decode(entry["b64"])
    return np.frombuffer(raw, dtype="<" + entry["dtype"]).reshape(entry["shape"])


def test_page_is_self_contained():
    from plotly.offline import get_plotlyjs
    text = view.html(plane())
    bundle = get_plotlyjs().replace("</script", "<\\/script")
    assert bundle in text                            # inlined whole
    ours = text.replace(bundle, "")
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import|https?://", ours)
    assert ours.count("<script") == 3                # plotly.js, the data, the viewer
    # (plotly.js itself names CDN URLs only for map and geo traces, which the page never uses;
    # the browser test checks that nothing is fetched.)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_are_embedded_exactly_in_ij_order(dtype):
    s = plane(dtype=dtype)
    s.metrics["loss"][1, 2] = np.nan                 # a diverged point survives the trip
    (group,) = embedded(view.html(s))["groups"]
    (item,) = group["items"]
    np.testing.assert_array_equal(item["alphas"], s.alphas)
    np.testing.assert_array_equal(item["betas"], s.betas)
    for name, values in s.metrics.items():
        back = decoded(item["metrics"][name])
        assert back.dtype == dtype and back.shape == values.shape
        np.testing.assert_array_equal(back, values)


def test_51x51_page_is_under_5_mb(tmp_path):
    s = plane(51, 51, dtype=np.float32)
    s.metrics["loss_sem"] = 0.01 * s.metrics["loss"]
    size = len(view.html(s, tmp_path / "p.html").encode())
    assert (tmp_path / "p.html").stat().st_size == size
    assert size < 5_000_000, size


def test_paths_curves_and_groups():
    s = plane(path_coordinates=[[-1.0, 0.2], [0.0, 0.0]], path_labels=[0, 7],
              curves={"bezier": [[0.0, 0.0], [0.5, 0.1], [1.0, 0.0]]})
    line = js.Surface(np.linspace(0, 1, 5), None, {"loss": np.arange(5.0)})
    data = embedded(view.html({"a": s, "b": plane(), "l": line}, title="t"))
    planes, lines = data["groups"]
    assert [i["name"] for i in planes["items"]] == ["a", "b"] and planes["kind"] == "plane"
    assert [i["name"] for i in lines["items"]] == ["l"] and lines["kind"] == "line"
    paths = planes["items"][0]["paths"]
    assert paths[0] == {"name": "training path", "points": [[-1.0, 0.2], [0.0, 0.0]],
                        "labels": ["0", "7"]}
    assert paths[1]["name"] == "bezier" and len(paths[1]["points"]) == 3
    other = embedded(view.html({"a": s, "pca": plane(5, 3)}))["groups"]   # another grid
    assert [[i["name"] for i in g["items"]] for g in other] == [["a"], ["pca"]]
    with pytest.raises(ValueError, match="path_coordinates"):
        view.html(plane(path_coordinates=[1.0, 2.0]))


def experiment_folder(tmp_path):
    out = tmp_path / "exp"
    results = {"experiment": "resnet56", "preset": "smoke", "variants": {}}
    for k, name in enumerate(["skip", "noskip"]):
        (out / name).mkdir(parents=True)
        plane(variant=k).save(out / name / "plane_final.npz")
        plane(5, 3).save(out / name / "plane_pca.npz")
        js.Surface(np.linspace(-1, 1, 5), None, {"loss": np.arange(5.0) + k}).save(
            out / name / "line_final.npz")
        results["variants"][name] = {
            "model": "ResNet-8", "num_params": 1234 + k, "val_accuracy": 0.5 + k / 10,
            "dataset": {"name": "dgex_synthetic", "description": "SYNTHETIC stand-in"},
            "surface_stats": {"minimum": 0.1}, "curvature": {"lambda_max": 3.0},
            "surfaces": {"plane_final": f"{name}/plane_final.npz",
                         "plane_pca": f"{name}/plane_pca.npz",
                         "line_final": f"{name}/line_final.npz"},
            "pca": {"path_coordinates": [[-1.0, -0.5], [0.0, 0.0]], "epochs": [0, 1]}}
    (out / "results.json").write_text(json.dumps(results))
    return out


def test_experiment_folder_every_variant_and_the_table(tmp_path):
    out = experiment_folder(tmp_path)
    groups, table, title = view_page.folder_groups(out)
    assert title == "resnet56 (smoke)"
    assert [(g["title"], g["kind"], len(g["items"])) for g in groups] == [
        ("final planes", "plane", 2), ("pca planes", "plane", 2), ("lines", "line", 2)]
    pca = groups[1]["items"][0]
    assert pca["paths"][0]["points"] == [[-1.0, -0.5], [0.0, 0.0]]
    assert table["columns"] == ["variant", "model", "data", "params", "val acc (%)",
                                "plane min loss", "lambda_max"]
    assert table["rows"][1] == ["noskip", "ResNet-8", "dgex_synthetic", "1,235", "60.00", "0.1",
                                "3"]
    assert table["notes"] == ["SYNTHETIC stand-in"]
    written = view.write([out])
    assert written == out / "viewer.html" and written.stat().st_size > 1_000_000


def test_cli_view(tmp_path, capsys):
    f1, f2 = tmp_path / "a.npz", tmp_path / "b.npz"
    plane().save(f1)
    plane(5, 3).save(f2)
    page = tmp_path / "out" / "page.html"
    assert cli.main(["view", str(f1), str(f2), "--out", str(page), "--title", "two"]) == 0
    assert f"wrote {page}" in capsys.readouterr().out
    data = embedded(page.read_text())
    assert data["title"] == "two"
    assert [i["name"] for g in data["groups"] for i in g["items"]] == ["a", "b"]
    assert cli.main(["view", str(f1)]) == 0 and (tmp_path / "a.viewer.html").exists()
    assert cli.main(["view", str(tmp_path / "missing.npz")]) == 2
    assert "no such Surface file" in capsys.readouterr().err
    assert cli.main(["view", str(tmp_path)]) == 2            # a folder without results.json
    assert "results.json" in capsys.readouterr().err


def test_bad_input_and_missing_plotly(tmp_path, monkeypatch, capsys):
    with pytest.raises(TypeError, match="Surface"):
        view.html({"x": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="at least one"):
        view.html({})

    def no_plotly():
        raise ImportError("the viewer needs plotly")
    monkeypatch.setattr(view_page, "plotly_js", no_plotly)
    plane().save(tmp_path / "a.npz")
    assert view.write([tmp_path / "a.npz"], missing_ok=True) is None
    assert "not written" in capsys.readouterr().out
    with pytest.raises(ImportError, match="plotly"):
        view.write([tmp_path / "a.npz"])


def test_volume_keeps_its_third_axis_exactly():
    a, b, g = np.linspace(-1, 1, 4), np.linspace(-1, 1, 3), np.array([-0.5, 0.0, 0.5, 1.0, 2.0])
    A, B, G = np.meshgrid(a, b, g, indexing="ij")
    vol = js.Surface(a, b, {"loss": A + 10 * B + 100 * G}, {"axis_labels": ["x", "y", "z"]}, g)
    (group,) = embedded(view.html(vol))["groups"]
    (item,) = group["items"]
    assert item["gammas"] == g.tolist() and item["gamma_label"] == "z"
    assert item["labels"] == ["x", "y"]
    np.testing.assert_array_equal(decoded(item["metrics"]["loss"]), vol["loss"])
