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


# --------------------------------------------------------------------------- python examples
def documented_python_examples() -> list:
    """``pytest.param(page, [(line, block), ...])`` per page of the docs: its fenced
    ``python`` blocks, run in order in one namespace and one folder, as a reader
    pastes them, in the names the docstring examples use (the repo-root
    conftest's ``_doctest_objects``) plus the stand-ins of :func:`_doc_names`. A
    page holding ``<!-- examples: slow -->`` is marked slow."""
    found = []
    for path in DOCS:
        text = path.read_text()
        blocks = [(text[:m.start(1)].count("\n") + 1, m.group(1))
                  for m in re.finditer(r"```python\n(.*?)```", text, flags=re.S)]
        if blocks:
            marks = [pytest.mark.slow] if "<!-- examples: slow -->" in text else []
            found.append(pytest.param(path.name, blocks, marks=marks, id=path.name))
    return found


PYTHON_EXAMPLES = documented_python_examples()


def test_the_docs_show_python_examples():
    assert sum(len(p.values[1]) for p in PYTHON_EXAMPLES) >= 25


def _blobs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The docstring examples' three Gaussian blobs in 4-D, more of them (the docs'
    batch sizes and subsample sizes are a real data set's)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    x = (np.eye(3, 4, dtype=np.float32)[y] * 2.0 + rng.normal(size=(n, 4))).astype(np.float32)
    return {"x": x, "y": y}


def _nudged(params, seed: int):
    """``params`` moved a little along a seeded random direction (a stand-in fine-tune)."""
    import jax

    import jaxsurf as js

    step = js.random_direction(jax.random.key(seed), params)
    return jax.tree.map(lambda p, d: p + 0.05 * d, params, step)


@pytest.fixture(scope="session")
def _doc_names(_doctest_objects):
    """Names the docs' examples use beyond the docstring examples' ones: small stand-ins
    of a user's model, data and results (each example gets a fresh copy of the dict)."""
    import equinox as eqx
    import jax
    from flax import nnx

    import jaxsurf as js

    objects = dict(_doctest_objects)
    model, variables = objects["model"], objects["variables"]
    fn, params = objects["fn"], objects["params"]
    data = _blobs(6000)

    class Net(eqx.Module):
        layers: list

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.layers = [eqx.nn.Linear(4, 8, key=k1), eqx.nn.Linear(8, 3, key=k2)]

        def __call__(self, x, state):
            return self.layers[1](jax.nn.tanh(self.layers[0](x))), state

    class NNXNet(nnx.Module):
        def __init__(self, rngs):
            self.l1, self.l2 = nnx.Linear(4, 8, rngs=rngs), nnx.Linear(8, 3, rngs=rngs)

        def __call__(self, x):
            return self.l2(nnx.tanh(self.l1(x)))

    def my_loss(params, x, y):  # softmax regression, any pytree of params
        logp = jax.nn.log_softmax(x @ params["w"] + params["b"])
        return -jax.numpy.mean(jax.numpy.take_along_axis(logp, y[:, None], axis=1))

    grid = np.linspace(-1, 1, 5)
    small = {k: v[:200] for k, v in data.items()}
    lams, vecs = js.hessian.top_eigenpairs(fn, params, small, k=1, key=jax.random.key(0))
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy":
                1 - 0.5 / e, "val_accuracy": 1 - 0.6 / e} for e in range(1, 4)]
    eqx_model, state = eqx.nn.make_with_state(Net)(jax.random.key(0))
    convexity = js.hessian.convexity_map(fn, params, objects["d1"], objects["d2"], small,
                                         grid[::2], grid[::2], key=jax.random.key(1),
                                         num_iterations=5, engine=js.Engine(progress=False))
    objects.update({
        "data": data, "x": data["x"], "y": data["y"], "module": model, "eqx": eqx,
        "Net": Net, "nnx_model": NNXNet(nnx.Rngs(0)), "eqx_model": eqx_model, "state": state,
        "key": jax.random.key(0), "alphas": grid, "betas": grid, "direction": objects["d"],
        "results": {}, "train_data": data, "train": data, "test": _blobs(500, 1),
        "history": history, "lams": lams, "vecs": vecs,
        "train_xy": _blobs(2000, 2), "val_xy": _blobs(500, 3),
        "density": np.exp(-grid**2), "convexity_map": convexity,
        "coords": np.array([[-0.5, 0.2], [0.0, 0.1], [0.3, 0.0]]),
        "ratio": np.array([0.7, 0.2]), "my_loss": my_loss,
        "raw": js.random_direction(jax.random.key(3), params),
        "reordered": lambda arrays: [arrays[1], arrays[0], arrays[3], arrays[2]],
        "batch_stats": variables["batch_stats"], "num_epochs": 2,
        "opt_state": {"count": np.zeros((), np.int32)},
        "train_one_epoch": lambda p, b, o: (p, b, o),
        # merging.md: a base and two fine-tunes of it, each task's validation data
        "base": params, "ft_a": _nudged(params, 4), "ft_b": _nudged(params, 5),
        "val_a": _blobs(300, 4), "val": _blobs(300, 5),
        # monitor.md: held-out data and a training batch
        "held_out": _blobs(300, 6), "train_batch": _blobs(256, 7),
    })
    return objects


@pytest.fixture(scope="session")
def _user_folder(_doctest_objects, tmp_path_factory) -> Path:
    """The files the docs' examples read, as a user who ran the quickstart has them."""
    import h5py


    root = tmp_path_factory.mktemp("user")
    (root / "runs" / "resnet56" / "skip").mkdir(parents=True)
    _doctest_objects["plane"].save(root / "runs" / "plane.npz")
    _doctest_objects["line_surface"].save(root / "runs" / "line.npz")
    _doctest_objects["plane"].save(root / "runs" / "resnet56" / "skip" / "plane_final.npz")
    (root / "runs" / "resnet56" / "results.json").write_text(
        '{"experiment": "resnet56", "preset": "smoke", "variants": {"skip": {"surfaces": '
        '{"plane_final": "skip/plane_final.npz"}}}}')
    params = _doctest_objects["params"]
    torch = [np.asarray(params["Dense_0"]["kernel"]).T, np.asarray(params["Dense_0"]["bias"]),
             np.asarray(params["Dense_1"]["kernel"]).T, np.asarray(params["Dense_1"]["bias"])]
    with h5py.File(root / "m.t7_weights_xignore=biasbn_xnorm=filter.h5", "w") as f:
        for name in ("xdirection", "ydirection"):
            for i, array in enumerate(torch):
                f[f"{name}/{i}"] = array
    return root


@pytest.mark.parametrize("page, blocks", PYTHON_EXAMPLES)
def test_documented_python_examples_run(page, blocks, _doc_names, _user_folder, tmp_path,
                                        monkeypatch):
    import shutil

    shutil.copytree(_user_folder, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    namespace = dict(_doc_names)
    try:
        for line, code in blocks:
            try:
                exec(compile(code, f"{page}:{line}", "exec"), namespace)
            except Exception as err:
                raise AssertionError(f"the example at docs {page}:{line} fails as written: "
                                     f"{type(err).__name__}: {err}") from err
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


# --------------------------------------------------------------------------- surface, for real
MYNETS = '''"""A user's module, as docs/quickstart.md names it (stand-in written by the test)."""
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def make_mlp(key):
    return eqx.nn.MLP(4, 3, 8, 1, key=key)


def fn_and_params():
    params = {"w": jnp.ones((4, 3)) / 4, "b": jnp.zeros(3)}

    def fn(params, batch):
        logits = batch["x"] @ params["w"] + params["b"]
        logp = jax.nn.log_softmax(logits)
        return {"loss": -jnp.mean(jnp.take_along_axis(logp, batch["y"][:, None], axis=1)),
                "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}

    return fn, params


def eval_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 64).astype(np.int32)
    return {"x": (np.eye(3, 4)[y] + rng.normal(size=(64, 4))).astype(np.float32), "y": y}
'''

#: documented ``surface`` commands run for real; the ResNet-56 one (a quick experiment's
#: checkpoint, minutes of CPU per run) is checked by its parser above only
SLOW_CHECKPOINTS = ("runs/resnet56_noskip_quick",)
SURFACE = [c for c in COMMANDS if shlex.split(c[1])[2:4] == ["jaxsurf", "surface"]
           and not any(s in c[1] for s in SLOW_CHECKPOINTS)]


@pytest.fixture(scope="module")
def _surface_folder(tmp_path_factory) -> Path:
    """What the documented ``surface`` commands read: a SmallCNN ``jaxsurf.train`` run
    at runs/quickstart/train (one short epoch), ``mynets.py``, ``runs/mlp.eqx``,
    ``runs/eval.npz`` with arrays ``image`` and ``label``."""
    import equinox as eqx
    import jax

    from jaxsurf import _train as train
    from jaxsurf.data import channel_stats, load_fashion_mnist, standardize
    from jaxsurf.data.fashion_mnist import find_fashion_mnist
    from jaxsurf.models import SmallCNN

    if find_fashion_mnist()[0] is None:
        pytest.skip("needs Fashion-MNIST (Debian package dataset-fashion-mnist, which "
                    "scripts/install.sh installs)")
    root = tmp_path_factory.mktemp("surface_docs")
    raw = load_fashion_mnist()
    mean, std = channel_stats(raw["train"]["x"])
    data = {k: {"x": standardize(raw[k]["x"][:128], mean, std), "y": raw[k]["y"][:128]}
            for k in ("train", "val")}
    train.fit(SmallCNN(), data, train.TrainConfig(epochs=1, batch_size=64),
              out_dir=root / "runs" / "quickstart" / "train", log=None, progress=False)
    (root / "mynets.py").write_text(MYNETS)
    eqx.tree_serialise_leaves(root / "runs" / "mlp.eqx", eqx.nn.MLP(4, 3, 8, 1,
                                                                      key=jax.random.key(5)))
    rng = np.random.default_rng(1)
    label = rng.integers(0, 3, 64).astype(np.int32)
    np.savez(root / "runs" / "eval.npz", label=label,
             image=(np.eye(3, 4)[label] + rng.normal(size=(64, 4))).astype(np.float32))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("where, command", SURFACE, ids=[c for _, c in SURFACE])
def test_documented_surface_command_runs(where, command, _surface_folder, monkeypatch,
                                         capsys):
    """The documented ``python -m jaxsurf surface`` lines, as written, on stand-ins of
    the files they name (``--step 0 --interpolate`` included)."""
    monkeypatch.chdir(_surface_folder)
    monkeypatch.syspath_prepend(str(_surface_folder))
    code = cli.main(shlex.split(command)[3:])
    out, err = capsys.readouterr()
    assert code == 0, f"{where}: {command}: {err[-2000:]}"
    assert "wrote" in out
