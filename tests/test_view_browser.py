"""The viewer page in a real browser (headless Chromium, networking off).

What is drawn is read back from plotly's plot objects
(``document.querySelectorAll('.js-plotly-plot')[k].data``) and compared with
the Surface: on a non-square, uneven grid the value drawn at
``(alphas[i], betas[j])`` must be ``metrics[name][i, j]``. Skipped, with the
reason, where Chromium and chromedriver are not installed
(``bash scripts/install_browser.sh``); in CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from _browser import PLOTS_JS, WHY, find_browser, in_ci, open_page, start_driver

import jaxsurf as js

pytest.importorskip("plotly")
pytestmark = [pytest.mark.slow,
              # in CI a missing browser fails (start_driver) instead of skipping
              pytest.mark.skipif(find_browser() is None and not in_ci(), reason=WHY)]

ALPHAS = np.array([-1.0, -0.6, -0.1, 0.0, 0.3, 0.8, 1.2])     # 7, uneven
BETAS = np.array([-0.5, 0.0, 0.2, 0.45])                       # 4


def plane(shift: float = 0.0, **meta) -> js.Surface:
    A, B = np.meshgrid(ALPHAS, BETAS, indexing="ij")
    loss = 2.0 * A + 0.3 * B**2 + 3.0 + shift + 0.01 * A * B   # no symmetry to hide a transpose
    return js.Surface(ALPHAS, BETAS, {
        "loss": loss, "accuracy": np.exp(-0.2 * loss).astype(np.float32),
        "loss_sem": 0.01 * loss}, meta)


@pytest.fixture(scope="module")
def driver():
    d = start_driver()
    yield d
    d.quit()


def plots(driver) -> dict:
    return {(p["surface"], p["view"]): p["traces"] for p in driver.execute_script(PLOTS_JS)}


def assert_grid(trace: dict, values: np.ndarray) -> None:
    """x = alphas, y = betas and z[j][i] = values[i, j] (plotly's z[row = y][column = x])."""
    np.testing.assert_array_equal(trace["x"], ALPHAS)
    np.testing.assert_array_equal(trace["y"], BETAS)
    z = np.array(trace["z"], dtype=float)
    assert z.shape == (len(BETAS), len(ALPHAS))
    for i in range(len(ALPHAS)):
        for j in range(len(BETAS)):
            assert z[j, i] == values[i, j], (i, j)


def test_page_offline_draws_the_surface_true_to_orientation(driver, tmp_path):
    s = plane(path_coordinates=[[-0.9, 0.4], [-0.2, 0.1], [0.0, 0.0]])
    line = js.Surface(ALPHAS, None, {"loss": ALPHAS**2 + 0.1,
                                     "accuracy": 1 - ALPHAS**2 / 3,
                                     "loss_sem": 0.01 * (ALPHAS**2 + 0.1)})
    regression = js.Surface(ALPHAS, None, {"loss": ALPHAS**2 + 1.0, "mae": ALPHAS**2 + 0.5})
    page = tmp_path / "page.html"
    js.view.html({"plane": s, "line": line, "regression": regression}, page)
    open_page(driver, page)

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(not u.startswith(("http:", "https:")) for u in loaded), loaded

    drawn = plots(driver)
    surface3d, contour = drawn[("plane", "surface")], drawn[("plane", "contour")]
    assert surface3d[0]["type"] == "surface" and contour[0]["type"] == "contour"
    for trace in (surface3d[0], contour[0]):
        assert_grid(trace, s["loss"])
    hover = dict(re.findall(r"(\w+) ([-+.\de]+)", surface3d[0]["text"][2][5]))  # j=2, i=5
    assert float(hover["alpha"]) == pytest.approx(ALPHAS[5])
    assert float(hover["beta"]) == pytest.approx(BETAS[2])
    for name in ("loss", "accuracy"):
        assert float(hover[name]) == pytest.approx(float(s[name][5, 2]), rel=1e-4)
    sem = re.search(r"loss [-+.\de]+ ± ([-+.\de]+) \(SEM\)", surface3d[0]["text"][2][5])
    assert sem is not None and float(sem.group(1)) == pytest.approx(float(s["loss_sem"][5, 2]),
                                                                    rel=1e-4)
    names = [t["name"] for t in contour]
    assert "training path" in names and "solution (origin)" in names
    path = contour[names.index("training path")]
    np.testing.assert_allclose(path["x"], [-0.9, -0.2, 0.0])
    np.testing.assert_allclose(path["y"], [0.4, 0.1, 0.0])

    line_traces = drawn[("line", "line")]
    np.testing.assert_allclose(line_traces[0]["y"], line["loss"])
    np.testing.assert_allclose(line_traces[1]["y"], 100 * line["accuracy"])   # in %
    sem = driver.execute_script(  # the line's SEM travels to the hover as customdata
        "const d = Array.from(document.querySelectorAll('.js-plotly-plot')).find(d => "
        "d.dataset.surface === 'line' && d.dataset.view === 'line');"
        "return [Array.from(d.data[0].customdata), d.data[0].hovertemplate, d.data.length];")
    np.testing.assert_allclose(sem[0], line["loss_sem"], rtol=1e-6)
    assert "(SEM" in sem[1] and sem[2] == 2
    assert [t["name"] for t in drawn[("regression", "line")]] == ["loss", "mae"]

    driver.execute_script("const s = document.getElementById('metric'); s.value = 'accuracy';"
                          "s.dispatchEvent(new Event('change'));")
    assert_grid(plots(driver)[("plane", "surface")][0], s["accuracy"].astype(float))
    driver.execute_script("document.getElementById('log').click();")
    z = np.array(plots(driver)[("plane", "contour")][0]["z"], dtype=float)
    np.testing.assert_allclose(z, np.log10(s["accuracy"].astype(float)).T, rtol=1e-12)

    shot = tmp_path / "viewer.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_side_by_side_planes_share_one_colour_scale(driver, tmp_path):
    low, high = plane(), plane(shift=5.0)
    page = tmp_path / "compare.html"
    js.view.html({"skip": low, "noskip": high}, page)
    open_page(driver, page)
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    drawn = plots(driver)
    lo, hi = float(low["loss"].min()), float(high["loss"].max())
    for name in ("skip", "noskip"):
        surf, cont = drawn[(name, "surface")][0], drawn[(name, "contour")][0]
        assert (surf["cmin"], surf["cmax"]) == pytest.approx((lo, hi))
        assert (cont["zmin"], cont["zmax"]) == pytest.approx((lo, hi))
    assert_grid(drawn[("noskip", "surface")][0], high["loss"])
    driver.save_screenshot(str(tmp_path / "compare.png"))


def test_volume_is_drawn_slice_by_slice_with_a_slider(driver, tmp_path):
    gammas = np.array([-0.4, 0.1, 0.5])                         # the slice nearest 0 is k = 1
    A, B, G = np.meshgrid(ALPHAS, BETAS, gammas, indexing="ij")
    vol = js.Surface(ALPHAS, BETAS, {"loss": 2.0 * A + 0.3 * B**2 + 5.0 * G + 3.0}, {},
                     gammas)
    page = tmp_path / "volume.html"
    js.view.html({"volume": vol}, page)
    open_page(driver, page)
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    assert_grid(plots(driver)[("volume", "surface")][0], vol["loss"][:, :, 1])
    driver.execute_script("const r = document.getElementById('g0-i0-slider'); r.value = 2;"
                          "r.dispatchEvent(new Event('input'));")
    drawn = plots(driver)
    assert_grid(drawn[("volume", "contour")][0], vol["loss"][:, :, 2])
    cont = drawn[("volume", "contour")][0]
    assert (cont["zmin"], cont["zmax"]) == pytest.approx((vol["loss"].min(), vol["loss"].max()))
    assert "solution (origin)" not in [t["name"] for t in drawn[("volume", "contour")]]
    driver.save_screenshot(str(tmp_path / "volume.png"))


def test_issue27_toolbar_above_plots_one_title_and_log_bar_in_values(driver, tmp_path):
    """Before: plotly's toolbar over the top of each contour panel (top margin 10 px),
    a single surface's title twice (group and panel), and with log10 on a colour bar
    ticked in log units (-1.236, 0.718) instead of loss values."""
    a = np.linspace(-1, 1, 9)
    A, B = np.meshgrid(a, a, indexing="ij")
    wide = js.Surface(a, a, {"loss": 0.05 * np.exp(3 * (A**2 + B**2))})
    wide.save(tmp_path / "wide.npz")
    page = js.view.write([tmp_path / "wide.npz"], tmp_path / "page.html")
    assert page is not None
    open_page(driver, page)
    assert driver.execute_script("return document.getElementById('log').checked")
    headings = driver.execute_script(
        "return Array.from(document.querySelectorAll('h2, h3')).map(h => h.textContent)")
    assert headings.count("wide") == 1, headings
    info = driver.execute_script("""
      const d = document.querySelector('[data-view=contour]');
      const bar = d.data[0].colorbar;
      return {top: d._fullLayout.margin.t, vals: bar.tickvals, text: bar.ticktext,
              title: bar.title.text};""")
    assert info["top"] >= 30                       # the toolbar's row is above the plot
    assert "log" in info["title"] and "log10(" not in info["title"]
    values = [float(t) for t in info["text"]]
    np.testing.assert_allclose(np.log10(values), info["vals"], atol=1e-9)  # ticks at values
    assert min(values) <= 0.1 and max(values) >= 10
