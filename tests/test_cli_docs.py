"""The commands README.md and docs/*.md show run as written.

Every ``python -m ...`` line of their fenced ``bash`` blocks is collected.
``python -m jaxsurf`` commands that post-process a Surface run for real, in a
folder holding stand-ins of the files they name; the others (training,
computing surfaces, benchmarks) are checked against their argument parser,
which is what "as written" can break. One experiment also runs for real with
no ``--out`` (slow)."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxsurf import _cli as cli
from jaxsurf._surface import Surface

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
POST_PROCESSING = ("info", "plot", "vtp", "csv")


def documented_commands() -> list[tuple[str, str]]:
    """``(file name, command)`` for every ``python -m`` line of a fenced bash block
    (continuation lines joined, trailing comments dropped)."""
    found = []
    for path in DOCS:
        blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:2] == ["python", "-m"]:
                    found.append((path.name, shlex.join(words)))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    modules = {shlex.split(c)[2] for _, c in COMMANDS}
    assert {"jaxsurf", "experiments.resnet56"} <= modules
    assert any(shlex.split(c)[3] == "surface" for _, c in COMMANDS if "jaxsurf " in c)


def _runs_here(command: str) -> bool:
    words = shlex.split(command)
    return words[2] == "jaxsurf" and words[3] in POST_PROCESSING


RUN = [c for c in COMMANDS if _runs_here(c[1])]
PARSE = [c for c in COMMANDS if not _runs_here(c[1])]


def _stand_in(path: Path) -> None:
    """A small Surface at ``path``: a line if its name says so, else a plane."""
    a = np.linspace(-1, 1, 5)
    if "line" in path.name:
        surface = Surface(a, None, {"loss": a**2 + 0.1, "accuracy": 1 - a**2 / 4},
                          {"kind": "line", "normalization": "filter"})
    else:
        A, B = np.meshgrid(a, a[:4], indexing="ij")
        surface = Surface(a, a[:4], {"loss": A**2 + B**2 + 0.1},
                          {"kind": "plane", "normalization": "filter"})
    surface.save(path)


@pytest.mark.parametrize("where, command", RUN, ids=[c for _, c in RUN])
def test_documented_jaxsurf_command_runs(where, command, tmp_path, monkeypatch, capsys):
    argv = shlex.split(command)[3:]
    monkeypatch.chdir(tmp_path)
    source = Path(argv[1])
    source.parent.mkdir(parents=True, exist_ok=True)
    _stand_in(source)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, f"{where}: {command}: {err}"
    for written in re.findall(r"wrote (\S+)", out):  # next to the input without --out
        assert Path(written).is_file() and Path(written).parent != Path(".")
        if "--out" not in argv:
            assert Path(written).parent == source.parent


class Parsed(Exception):
    """Raised instead of running, once the arguments parsed."""


@pytest.mark.parametrize("where, command", PARSE, ids=[c for _, c in PARSE])
def test_documented_command_parses(where, command, monkeypatch):
    words = shlex.split(command)
    module, argv = words[2], words[3:]
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    monkeypatch.setattr(sys, "argv", [module, *argv])
    main = cli.main if module == "jaxsurf" else importlib.import_module(module).main
    with pytest.raises(Parsed):
        main(argv) if inspect.signature(main).parameters else main()


@pytest.mark.slow
def test_resnet56_noskip_smoke_runs_without_out(tmp_path):
    """``python -m experiments.resnet56 --noskip --preset smoke``, as a user types it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    result = subprocess.run([sys.executable, "-m", "experiments.resnet56", "--noskip",
                             "--preset", "smoke"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "runs" / "resnet56_noskip_smoke"
    assert result.stdout.splitlines()[0] == "output: runs/resnet56_noskip_smoke"
    assert (out / "results.json").is_file() and (out / "noskip" / "plane_final.npz").is_file()
    assert "\r" not in result.stderr and "jaxsurf: done:" in result.stderr
