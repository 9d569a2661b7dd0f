"""Issue 23 (hardening, round 2): the viewer, the CLI's outputs, and every number backed.

One test (or a few) per item, named after it.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _cli as cli

pytest.importorskip("plotly")
from jaxsurf import view  # noqa: E402
from jaxsurf.view import _data as view_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def plane(**meta) -> js.Surface:
    a, b = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 4)
    A, B = np.meshgrid(a, b, indexing="ij")
    return js.Surface(a, b, {"loss": A**2 + B**2 + 0.1}, meta)


def embedded(text: str) -> dict:
    """The page's data, read as the page reads it (the element's text, JSON.parse)."""
    blobs = re.findall(r'<script type="application/json" id="jaxsurf-data">(.*?)</script>',
                       text, re.DOTALL)
    assert len(blobs) == 1
    return json.loads(blobs[0])


# --------------------------------------------------------------------------- item 9
@pytest.mark.parametrize("command", [
    ["view", "plane.npz", "--out", "plane.npz"],
    ["view", "plane", "--out", "./plane.npz"],
    ["plot", "plane.npz", "--out", "plane.npz"],
    ["vtp", "plane.npz", "--out", "plane.npz"],
    ["csv", "plane.npz", "--out", "plane.npz"],
])
def test_item9_no_command_writes_over_its_input(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    plane().save("plane.npz")
    before = Path("plane.npz").read_bytes()
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert "is the input plane.npz: writing it would destroy the input; choose another --out" \
        in err, err
    assert Path("plane.npz").read_bytes() == before
    js.Surface.load("plane.npz")                     # still the Surface


def test_item9_view_of_a_folder_never_writes_over_its_results_or_surfaces(tmp_path):
    folder = tmp_path / "run"
    plane().save(folder / "a" / "plane_final.npz")
    results = {"experiment": "demo", "variants": {"a": {"surfaces": {
        "plane_final": "a/plane_final.npz"}}}}
    (folder / "results.json").write_text(json.dumps(results))
    for out in (folder / "results.json", folder / "a" / "plane_final.npz"):
        before = out.read_bytes()
        with pytest.raises(ValueError, match="is the input .*: writing it would destroy"):
            view.write([folder], out)
        assert out.read_bytes() == before
    assert view.write([folder]) == folder / "viewer.html"          # the default is fine


# --------------------------------------------------------------------------- viewer page
@pytest.mark.parametrize("text", ["__APP__", "__DATA__", "__PLOTLY__", "__TITLE__",
                                  "<!--<script>", "</script><script>alert(1)</script>",
                                  "a & b < c > d"])
def test_item_viewer_page_survives_any_string_in_titles_and_names(text):
    s = plane(title=text, path_coordinates=[[0.0, 0.0], [0.5, 0.1]], path_labels=[text, "x"])
    page = view.html({text: s}, title=text)
    data = embedded(page)                            # one intact data element, valid JSON
    assert data["title"] == text
    (group,) = data["groups"]
    assert group["items"][0]["name"] == text
    assert group["items"][0]["paths"][0]["labels"][0] == text
    # the data element holds no markup the HTML parser could act on
    blob = re.search(r'id="jaxsurf-data">(.*?)</script>', page, re.DOTALL).group(1)
    assert not set("<>&") & set(blob)
    # the viewer's code is there exactly once, after the data, and the title is escaped text
    assert page.count("const DATA = JSON.parse(") == 1
    assert page.index('id="jaxsurf-data"') < page.index("const DATA = JSON.parse(")
    assert f"<title>{html.escape(text)}</title>" in page
    assert page.count("<script") == 3                # plotly.js, the data, the viewer


# --------------------------------------------------------------------------- view's inputs
def test_item_view_accepts_a_surface_name_without_npz_like_info(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    plane().save("plane.npz")
    assert cli.main(["info", "plane"]) == 0
    assert cli.main(["view", "plane", "--out", "page.html"]) == 0
    assert "wrote page.html" in capsys.readouterr().out
    assert embedded(Path("page.html").read_text())["groups"][0]["items"][0]["name"] == "plane"
    assert cli.main(["view", "plane"]) == 0          # default: beside the file
    assert Path("plane.viewer.html").is_file()
    assert cli.main(["view", "nothing"]) == 2
    assert "no such Surface file or folder: nothing" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("{not json", r"results.json is not valid JSON"),
    ("[1, 2]", r"results.json holds a JSON list, not an object"),
    ('{"variants": [1]}', r"results.json: \"variants\" must map each variant's name"),
    ('{"variants": {"a": 3}}', r"results.json: \"variants\" must map each variant's name"),
    ('{"variants": {"a": {"surfaces": ["x.npz"]}}}',
     r"results.json: variants\['a'\]\['surfaces'\] must map names to Surface files"),
    ('{"variants": {"a": {"surfaces": {"plane_x": 3}}}}',
     r"\['plane_x'\] must be a file name relative to"),
    ('{"variants": {"a": {"surfaces": {"plane_x": "../../x.npz"}}}}',
     r"\['plane_x'\] = '../../x.npz' lies outside .*run; the viewer reads only Surface files "
     r"inside"),
    ('{"variants": {"a": {"surfaces": {"plane_x": "/etc/x.npz"}}}}', r"lies outside"),
    ("[" * 100_000 + "]" * 100_000, r"results.json: JSON nested more than 64 levels deep"),
])
def test_item_view_results_json_bad_gives_a_clear_error_naming_the_file(
        tmp_path, capsys, content, message):
    folder = tmp_path / "run"
    folder.mkdir()
    plane().save(tmp_path / "x.npz")                 # a real Surface outside the folder
    (folder / "results.json").write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        view_data.folder_groups(folder)
    assert str(folder / "results.json") in str(err.value)
    assert cli.main(["view", str(folder)]) == 2      # one line, no traceback
    err_text = capsys.readouterr().err
    assert err_text.startswith("jaxsurf: error: ") and "Traceback" not in err_text
    assert not (folder / "viewer.html").exists()


@pytest.mark.parametrize("pca, drawn", [
    ({"path_coordinates": [[0.0, 0.0], [0.5, 0.5]], "epochs": 5}, True),   # labels: not a list
    ({"path_coordinates": [["a", 0]]}, "variants['v']['pca']['path_coordinates'] must be finite"),
])
def test_item_view_results_json_bad_pca_path_is_a_clear_error(tmp_path, capsys, pca, drawn):
    folder = tmp_path / "run"
    plane().save(folder / "plane_pca.npz")
    (folder / "results.json").write_text(json.dumps(
        {"variants": {"v": {"surfaces": {"plane_pca": "plane_pca.npz"}, "pca": pca}}}))
    status = cli.main(["view", str(folder)])
    err = capsys.readouterr().err
    if drawn is True:
        assert status == 0 and (folder / "viewer.html").is_file()
    else:
        assert status == 2 and f"{folder / 'results.json'}: {drawn}" in err, err


def test_item_view_results_json_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    plane().save(tmp_path / "x.npz")
    (folder / "inside.npz").symlink_to(tmp_path / "x.npz")
    (folder / "results.json").write_text(json.dumps(
        {"variants": {"a": {"surfaces": {"plane_x": "inside.npz"}}}}))
    with pytest.raises(ValueError, match="lies outside"):
        view_data.folder_groups(folder)


# ------------------------------------------------------------------ skips that hid regressions
def test_item_skips_no_regression_turns_into_a_skip():
    bad_input = (ROOT / "tests" / "test_bad_input.py").read_text()
    models = (ROOT / "tests" / "test_models.py").read_text()
    assert "not written yet" not in bad_input and "importorskip(\"jaxsurf" not in bad_input
    assert "importorskip(\"jaxsurf\")" not in models


def test_item_skips_browser_tests_fail_in_ci_instead_of_skipping(monkeypatch):
    sys.path.insert(0, str(ROOT / "tests"))
    import _browser

    monkeypatch.setattr(_browser, "find_browser", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set: the viewer's browser tests "
                                                    "must run there"):
        _browser.start_driver()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no headless Chromium"):
        _browser.start_driver()


@pytest.mark.skipif(os.name != "posix", reason="a bash script")
@pytest.mark.parametrize("ci, status", [("true", 1), ("", 0)])
def test_item_skips_install_browser_fails_in_ci_when_chromium_cannot_be_installed(
        tmp_path, ci, status):
    # a PATH with bash and the basics but no chromium, no apt-get: the install cannot happen
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "head", "env"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True,
                               text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "CI": ci}
    done = subprocess.run([str(bin_dir / "bash"), str(ROOT / "scripts" / "install_browser.sh")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == status, (done.stdout, done.stderr)
    if status:
        assert "CI is set, so the viewer's browser tests must run" in done.stderr


# ------------------------------------------------------------------ every number backed
def _checker():
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_doc_numbers",
                                                  ROOT / "scripts" / "check_doc_numbers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_item_numbers_every_cited_number_matches_its_results_file(capsys):
    """The CI check: every number README.md and docs/*.md back with a results file."""
    assert _checker().main() == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    checked = int(re.search(r"(\d+) numbers checked", out).group(1))
    assert checked >= 250 and " 0 wrong" in out
    for page in ("docs/benchmarks.md", "docs/curvature.md", "docs/experiments.md",
                 "docs/topology.md"):
        assert f"{page}:" in out                      # it lists what it checked


def test_item_numbers_checker_refuses_a_wrong_or_missing_number(tmp_path):
    checker = _checker()
    (tmp_path / "r.json").write_text(json.dumps({"runs": [{"s": 4.5447, "frac": 0.0615}],
                                                 "a b": {"x": 2252.9}}))
    page = tmp_path / "page.md"
    page.write_text("Gradient 4.54 s, error 6.15 points, trace 2,253, ratio 1.4·10⁻⁷.\n"
                    "<!-- checked against r.json:\n"
                    "runs[0].s = 4.54\n"
                    "runs[0].frac * 100 = 6.15\n"
                    '["a b"].x = 2,253\n'
                    "-->\n\n"
                    "Gradient 4.6 s.\n"
                    "<!-- checked against r.json:\n"
                    "runs[0].s = 4.6\n"
                    "runs[0].frac * 100 = 6.2\n"
                    "runs[1].s = 1\n"
                    "-->\n")
    checks, cited = checker.check_page(page, tmp_path)
    problems = [c.problem for c in checks]
    assert problems[:3] == [None, None, None]
    assert "the file says 4.5447" in problems[3]                        # wrong number
    assert "not written in the paragraph or table above" in problems[4]  # not on the page
    assert "no number at runs[1].s" in problems[5]                      # no such key


def test_item_numbers_hvp_cost_describes_the_loop_it_calls():
    source = (ROOT / "benchmarks" / "hvp_cost.py").read_text()
    assert "scanned inside one jitted function" not in source
    assert "hessian.dataset_mean(" not in source and "mean_over_batches" in source


def test_item_numbers_no_unbacked_pytorch_batch_sweep():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    assert "(each the fastest measured for it)" not in text
    assert "no PyTorch\nbatch-size sweep was kept" in text


def test_item_numbers_quickstart_times_agree_with_the_readme():
    readme = (ROOT / "README.md").read_text()
    quick = (ROOT / "docs" / "quickstart.md").read_text()
    for figure in ("2 min 20 s", "119 s"):
        assert figure in readme and figure in quick


def test_item_numbers_connectivity_tables_have_their_results_file():
    text = (ROOT / "docs" / "experiments.md").read_text()
    assert "benchmarks/results/connectivity_dense_quick.json" in text
    assert (ROOT / "benchmarks" / "results" / "connectivity_dense_quick.json").is_file()
    for unbacked in ("2.675", "1.539", "0.295", "3.266", "1.883", "50.3 to 48.3"):
        assert unbacked not in text                  # the ResNet run kept no results file


def test_item_numbers_scan_slowdown_is_measured_not_remembered():
    result = json.loads((ROOT / "benchmarks" / "results" / "scan_grad.json").read_text())
    assert result["scanned_over_loop"] > 1
    means = (ROOT / "jaxsurf" / "_engine" / "means.py").read_text()
    curvature = (ROOT / "docs" / "curvature.md").read_text()
    assert "~20x" not in means and "about 20×" not in curvature
    assert "benchmarks/results/scan_grad.json" in means
    assert "benchmarks/results/scan_grad.json" in curvature


def test_item_numbers_conftest_cites_only_files_that_exist():
    for conftest in (ROOT / "conftest.py", ROOT / "tests" / "conftest.py"):
        for cited in re.findall(r"[\w./-]+\.(?:md|json|py)\b", conftest.read_text()):
            if "/" in cited or cited.endswith((".md", ".json")):
                assert (ROOT / cited).exists() or (ROOT / "tests" / cited).exists(), cited


@pytest.mark.slow
def test_item_viewer_page_with_hostile_strings_draws_in_a_browser(tmp_path):
    """The page whose title, surface, metric and path names hold ``__APP__`` and
    ``<!--<script>`` is drawn in headless Chromium (skipped without it, except in CI)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from _browser import open_page, start_driver

    text = "x __APP__ <!--<script> </script> y"
    s = plane(path_coordinates=[[0.0, 0.0], [0.5, 0.1]], path_labels=[text, "b"])
    s.metrics[text] = s.metrics["loss"] * 2
    page = tmp_path / "page.html"
    view.html({text: s}, page, title=text)
    driver = start_driver()
    try:
        open_page(driver, page)                       # waits for the viewer's ready flag
        assert driver.execute_script("return document.getElementById('title').textContent") \
            == text
        assert driver.title == text
        drawn = driver.execute_script(
            "return document.querySelectorAll('.js-plotly-plot').length")
        assert drawn == 2                             # the surface and the contour
    finally:
        driver.quit()


def test_item_viewer_script_is_package_data_inlined_once():
    script = (ROOT / "jaxsurf" / "view" / "page.js").read_text(encoding="utf-8")
    assert '"page.js"' in (ROOT / "pyproject.toml").read_text()    # shipped in the wheel
    page = view.html(plane(title="__APP__"))
    assert page.count(script) == 1 and "__APP__" not in script
