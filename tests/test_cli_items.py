"""Small promises of the command line and the package: the csv subcommand that
``vtp`` points to, titles that say what a surface is, calling a submodule by
mistake, and subcommands added through the table."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _cli as cli
from jaxsurf._surface import Surface


@pytest.fixture
def files(tmp_path):
    a, b = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3)
    A, B = np.meshgrid(a, b, indexing="ij")
    plane = Surface(a, b, {"loss": A**2 + B**2 + 0.1},
                    {"kind": "plane", "normalization": "filter", "model": "SmallCNN"})
    line = Surface(a, None, {"loss": a**2 + 0.1, "accuracy": 1 - a**2 / 2},
                   {"kind": "line", "normalization": "filter"})
    return plane.save(tmp_path / "plane.npz"), line.save(tmp_path / "line.npz")


def test_vtp_of_a_line_points_to_the_csv_command_which_exists(files, capsys):
    plane, line = files
    assert cli.main(["vtp", str(line)]) == 2
    err = capsys.readouterr().err
    assert f"python -m jaxsurf csv {line}" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["csv", str(line)]) == 0
    written = line.with_suffix(".csv")
    assert str(written) in capsys.readouterr().out
    rows = list(csv.reader(written.read_text().splitlines()))
    assert len(rows) == 1 + 5 and "loss" in rows[0] and "accuracy" in rows[0]
    out = plane.parent / "tables" / "p.csv"
    assert cli.main(["csv", str(plane), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + 5 * 3


def test_titles_say_what_the_surface_is(files):
    plane, line = files
    assert cli.describe(Surface.load(plane), "loss") == \
        "loss — 5×3 plane, filter-normalized directions (SmallCNN)"
    assert cli.describe(Surface.load(line), "loss, accuracy") == \
        "loss, accuracy — 5-point line along a filter-normalized direction"
    titled = Surface(np.arange(3.0), None, {"loss": np.ones(3)}, {"title": "mine"})
    assert cli.describe(titled, "loss") == "mine"
    path = Surface(np.linspace(0, 1, 4), None, {"loss": np.ones(4)}, {"kind": "interpolation"})
    assert cli.describe(path, "loss") == "loss — 4-point interpolation between two solutions"
    bare = Surface(np.arange(3.0), np.arange(2.0), {"loss": np.ones((3, 2))})
    assert cli.describe(bare, "loss") == "loss — 3×2 plane"


def test_plot_uses_the_descriptive_title(files, capsys, monkeypatch):
    plane, _ = files
    seen = {}
    from jaxsurf import plot

    monkeypatch.setattr(plot, "contour", lambda surface, metric, **kw: seen.update(kw))
    assert cli.main(["plot", str(plane)]) == 0
    assert seen["title"] == "loss — 5×3 plane, filter-normalized directions (SmallCNN)"
    assert cli.main(["plot", str(plane), "--title", "given"]) == 0
    assert seen["title"] == "given"


def test_a_module_given_for_a_function_says_what_to_call(tmp_path):
    # jaxsurf no longer swaps its modules' class: calling one is Python's own error ...
    with pytest.raises(TypeError, match="'module' object is not callable"):
        js.sharpness(lambda p, b: 0.0, {}, {})  # pyright: ignore[reportCallIssue]
    assert callable(js.sharpness.sam_sharpness)  # the module itself still works
    # ... and where jaxsurf receives a module in place of a function, it names its functions
    from jaxsurf._compute_cli import ComputeError, load_model

    with pytest.raises(ComputeError, match=r"jaxsurf.sharpness is a module, not a function; "
                                           r"call one of its functions, e\.g\. "
                                           r"jaxsurf\.sharpness\.\w+\(\.\.\.\)") as caught:
        load_model("jaxsurf:sharpness", None)
    assert "sam_sharpness" in str(caught.value)


def test_subcommands_come_from_one_table(capsys):
    assert {"surface", "plot", "vtp", "csv", "info"} <= set(cli.COMMANDS)
    calls = []
    cli.register("hello", "say hello", lambda p: p.add_argument("--name", default="x"),
                 lambda args: calls.append(args.name) or 0)
    try:
        assert cli.main(["hello", "--name", "y"]) == 0 and calls == ["y"]
    finally:
        del cli.COMMANDS["hello"]
    assert cli.main(["hello"]) == 2
    assert "invalid choice" in capsys.readouterr().err
