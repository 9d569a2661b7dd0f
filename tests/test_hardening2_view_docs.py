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
from jaxsurf import cli

pytest.importorskip("plotly")
from jaxsurf import view  # noqa: E402

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
        view.folder_groups(folder)
    assert str(folder / "results.json") in str(err.value)
    assert cli.main(["view", str(folder)]) == 2      # one line, no traceback
    err_text = capsys.readouterr().err
    assert err_text.startswith("jaxsurf: error: ") and "Traceback" not in err_text
    assert not (folder / "viewer.html").exists()


def test_item_view_results_json_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    plane().save(tmp_path / "x.npz")
    (folder / "inside.npz").symlink_to(tmp_path / "x.npz")
    (folder / "results.json").write_text(json.dumps(
        {"variants": {"a": {"surfaces": {"plane_x": "inside.npz"}}}}))
    with pytest.raises(ValueError, match="lies outside"):
        view.folder_groups(folder)


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
