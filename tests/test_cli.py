"""Command line: writes the files it promises, one-line errors with status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxsurf import _cli as cli
from jaxsurf._surface import Surface

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plane_file(tmp_path) -> Path:
    a, b = np.linspace(-1, 1, 7), np.linspace(-0.5, 0.5, 5)
    A, B = np.meshgrid(a, b, indexing="ij")
    loss = A**2 + 4 * B**2 + 0.1
    s = Surface(a, b, {"loss": loss, "accuracy": 1 - loss / 10},
                {"kind": "plane", "seed": 3, "normalization": "filter"})
    return s.save(tmp_path / "runs" / "plane.npz")


@pytest.fixture
def line_file(tmp_path) -> Path:
    a = np.linspace(-1, 1, 9)
    return Surface(a, None, {"loss": a**2 + 0.1}, {"kind": "line"}).save(tmp_path / "line.npz")


def run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(x) for x in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_plot_defaults_write_beside_the_surface(plane_file, line_file, capsys):
    code, out, _ = run(["plot", plane_file], capsys)
    expected = plane_file.with_name("plane.contour.png")
    assert code == 0 and expected.is_file() and str(expected) in out
    code, _, _ = run(["plot", line_file], capsys)
    assert code == 0 and line_file.with_name("line.line.png").is_file()


@pytest.mark.parametrize("kind", ["contour", "filled", "heatmap", "surface"])
def test_plot_each_kind(plane_file, tmp_path, capsys, kind):
    out = tmp_path / "figs" / f"{kind}.pdf"
    code, _, err = run(["plot", plane_file, "--kind", kind, "--metric", "accuracy",
                        "--out", out], capsys)
    assert code == 0, err
    assert out.read_bytes()[:5] == b"%PDF-"


def test_plot_levels_and_log(plane_file, tmp_path, capsys):
    out = tmp_path / "c.png"
    code, _, err = run(["plot", plane_file, "--vmin", "0.1", "--vmax", "2", "--vlevel", "0.25",
                        "--log", "--out", out], capsys)
    assert code == 0, err
    assert out.is_file()


def test_vtp(plane_file, tmp_path, capsys):
    code, out, _ = run(["vtp", plane_file, "--zmax", "1.0", "--log"], capsys)
    default = plane_file.with_name("plane.loss.vtp")
    assert code == 0 and default.is_file() and str(default) in out
    target = tmp_path / "x" / "acc.vtp"
    assert run(["vtp", plane_file, "--metric", "accuracy", "--out", target], capsys)[0] == 0
    assert 'Name="accuracy"' in target.read_text()


def test_info_in_process(plane_file, capsys):
    code, out, _ = run(["info", plane_file], capsys)
    assert code == 0
    summary, meta = out.split("metadata:\n")
    assert "7x5 grid" in summary
    assert json.loads(meta) == {"kind": "plane", "seed": 3, "normalization": "filter"}


def test_info_subprocess(plane_file):
    result = subprocess.run([sys.executable, "-m", "jaxsurf", "info", str(plane_file)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "7x5 grid" in result.stdout and '"seed": 3' in result.stdout


@pytest.mark.parametrize("argv, needle", [
    (["info", "{missing}"], "no Surface file"),
    (["info", "{garbage}"], "not a readable Surface file"),
    (["plot", "{line}", "--kind", "contour"], "is a line"),
    (["plot", "{plane}", "--kind", "line"], "plane"),
    (["plot", "{plane}", "--metric", "nope"], "unknown metric 'nope'"),
    (["plot", "{plane}", "--out", "{tmp}/figure.txt"], "suffix"),
    (["vtp", "{line}"], "needs a 2-D plane"),
    (["plot", "{plane}", "--kind", "pie"], "invalid choice"),
    (["plot", "{plane}", "--vmin", "abc"], "invalid float value"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_errors_are_one_line_status_2(plane_file, line_file, tmp_path, capsys, argv, needle):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    names = {"missing": tmp_path / "missing.npz", "garbage": garbage, "line": line_file,
             "plane": plane_file, "tmp": tmp_path}
    code, out, err = run([a.format(**names) for a in argv], capsys)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err and "Traceback" not in err
