"""The viewer's monitor page (``python -m jaxsurf view MONITOR_FOLDER``) in headless
Chromium, offline: one frame per record behind a step slider, each frame true to the
record's values and orientation, one colour scale for all frames, the curvature series
beside them with the current step marked."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _browser import PLOTS_JS, WHY, find_browser, in_ci, open_page, start_driver

import jaxsurf as js

pytest.importorskip("plotly")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_browser() is None and not in_ci(), reason=WHY)]

ALPHAS = np.array([-1.0, -0.5, 0.0, 0.25, 1.0])   # 5 x 3: a transpose would show
BETAS = np.array([-0.4, 0.0, 0.6])


def _fn(params, batch):
    import jax.numpy as jnp

    pred = batch["x"] @ params["w"] + params["b"]
    return {"loss": jnp.mean((pred - batch["y"]) ** 2)}


def _record(out, kind="plane", curvature=("top_eigenvalue", "trace")):
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    data = {"x": x, "y": (x @ np.array([[1.0], [-2.0], [0.5]], np.float32))}
    params = {"w": jnp.full((3, 1), 0.3), "b": jnp.zeros(1)}
    grid = (ALPHAS, BETAS) if kind == "plane" else ALPHAS
    m = js.Monitor(_fn, data, out=out, every=2, kind=kind, grid=grid, curvature=curvature,
                   progress=False)
    for step in range(7):
        m(step, params)
        params = {"w": params["w"] + 0.15 * (jnp.array([[1.0], [-2.0], [0.5]]) - params["w"]),
                  "b": params["b"]}
    return js.Monitor.load(out)


@pytest.fixture(scope="module")
def driver():
    d = start_driver()
    yield d
    d.quit()


def _drawn(driver):
    return {p["view"]: p["traces"] for p in driver.execute_script(PLOTS_JS)}


def test_monitor_page_has_a_step_slider_over_one_frame_per_record(driver, tmp_path):
    records = _record(tmp_path / "m")
    steps = list(records)
    assert steps == [0, 2, 4, 6]
    page = tmp_path / "monitor.html"
    done = subprocess.run([sys.executable, "-m", "jaxsurf", "view", str(tmp_path / "m"),
                           "--out", str(page)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    open_page(driver, page)
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(not u.startswith(("http:", "https:")) for u in loaded), loaded

    slider = driver.find_element("id", "step")
    assert int(slider.get_attribute("max")) + 1 == len(records)  # one position per record
    every = np.concatenate([s.metrics["loss"].ravel() for s in records.values()])
    for k, step in enumerate(steps):
        driver.execute_script(f"return window.jaxsurfMonitor.showStep({k})")
        driver.execute_script("return new Promise(r => setTimeout(r, 50))")
        assert driver.execute_script("return document.body.dataset.step") == str(step)
        drawn = _drawn(driver)
        contour = drawn["frame"][0]
        assert contour["type"] == "contour"
        np.testing.assert_array_equal(contour["x"], ALPHAS)
        np.testing.assert_array_equal(contour["y"], BETAS)
        z = np.array(contour["z"], dtype=float)       # z[j][i] = metrics["loss"][i, j]
        np.testing.assert_array_equal(z, records[step].metrics["loss"].T)
        # one colour scale for every frame: the range over all records
        assert contour["zmin"] == pytest.approx(every.min(), rel=1e-6)
        assert contour["zmax"] == pytest.approx(every.max(), rel=1e-6)
        title = driver.execute_script(
            "return document.getElementById('frame').layout.title.text")
        assert title == f"loss at step {step}"
        # the curvature series beside it, the current step marked
        series = drawn["series"]
        assert [t["name"] for t in series] == ["top Hessian eigenvalue",
                                               "Hessian trace (Hutchinson)"]
        curvature = js.Monitor.load_curvature(tmp_path / "m")
        np.testing.assert_allclose(series[0]["y"], curvature["top_eigenvalue"], rtol=1e-12)
        assert series[0]["x"] == steps
        shapes = driver.execute_script(
            "return document.getElementById('series').layout.shapes")
        assert len(shapes) == 1 and shapes[0]["x0"] == shapes[0]["x1"] == step

    # the slider itself moves the frame (an input event, as a user's drag sends)
    driver.execute_script("const s = document.getElementById('step'); s.value = '1';"
                          "s.dispatchEvent(new Event('input'));")
    driver.execute_script("return new Promise(r => setTimeout(r, 50))")
    assert driver.execute_script("return document.body.dataset.step") == "2"
    # play runs through the frames and stops at the last one
    driver.execute_script("window.jaxsurfMonitor.play()")
    driver.execute_script("return new Promise(r => setTimeout(r, 2600))")
    assert driver.execute_script("return document.body.dataset.step") == "6"
    assert driver.find_element("id", "play").text == "play"


def test_monitor_page_of_a_line_without_curvature(driver, tmp_path):
    records = _record(tmp_path / "m", kind="line", curvature=None)
    page = js.view.write([tmp_path / "m"])
    assert page is not None and page == tmp_path / "m" / "viewer.html"
    open_page(driver, page)
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    assert int(driver.find_element("id", "step").get_attribute("max")) == len(records) - 1
    driver.execute_script("return window.jaxsurfMonitor.showStep(3)")
    driver.execute_script("return new Promise(r => setTimeout(r, 50))")
    drawn = _drawn(driver)
    np.testing.assert_array_equal(drawn["frame"][0]["y"], records[6].metrics["loss"])
    # without curvature the series is the loss at the current params, step by step
    centre = [float(s.metrics["loss"][2]) for s in records.values()]
    np.testing.assert_allclose(drawn["series"][0]["y"], centre, rtol=1e-6)
    yrange = driver.execute_script("return document.getElementById('frame').layout.yaxis.range")
    every = np.concatenate([s.metrics["loss"] for s in records.values()])
    assert yrange[0] < every.min() and yrange[1] > every.max()
