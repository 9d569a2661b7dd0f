r"""``python -m jaxsurf surface``: compute a surface from a saved checkpoint.

    python -m jaxsurf surface --model jaxsurf.models:SmallCNN --checkpoint runs/cnn \
        --data fashion_mnist --x -1:1:51 --y -1:1:51 --xnorm filter --xignore biasbn \
        --out runs/cnn/surface

Loads the model's checkpoint, draws the directions (Li et al. 2018:
filter-normalized random directions, biases and BatchNorm zeroed), evaluates
the plane (``--y``), the line (no ``--y``, or ``--line`` too) or the
interpolation to a second checkpoint (``--interpolate``) with a resumable
store, and writes the Surface files and their figures to ``--out``.

**The model contract** (``--model PKG.MODULE:FACTORY``): ``FACTORY`` is an
attribute of the importable module ``PKG.MODULE`` (dots allowed after the
colon, e.g. ``mypkg.nets:ZOO.small``). It is either a model object, or a
callable that returns one when called with the keywords of ``--model-kwargs``
(a JSON object; none by default). A class is such a callable, so
``jaxsurf.models:SmallCNN`` and ``jaxsurf.models:resnet56`` both work. The
model must be the one that was trained: its parameter tree must match the
checkpoint's (the error names the first leaf that differs).

Supported models (see :data:`LOADERS`): Flax Linen modules. Their variables
are initialised on one example of the data (in evaluation mode) to learn the
parameter tree, then restored from the checkpoint; BatchNorm statistics and
other non-parameter collections come from the checkpoint's ``state`` (as
:func:`jaxsurf.train.fit` saves them, ``state["batch_stats"][collection]``,
or as ``state[collection]``) and stay fixed.

**Checkpoints** (``--checkpoint DIR``): a :func:`jaxsurf.train.fit` run
folder (holding ``trajectory/``), or a folder written by
:class:`jaxsurf.TrajectoryRecorder`, or one step folder inside it;
``--step`` picks a step (default the latest).

**Adding a framework**: append a loader to :data:`LOADERS`, an object with
``name``, ``accepts(model) -> bool`` and ``load(model, checkpoint, batch, loss)
-> (fn, params)`` (see :class:`FlaxLinenLoader`); e.g. an Equinox loader that
restores the checkpoint into ``eqx.filter(model, eqx.is_array)`` and calls
``js.equinox.adapt``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from jaxsurf import _validate
from jaxsurf._modules import functions_hint

__all__ = ["add_arguments", "run", "parse_range", "load_model", "find_checkpoint",
           "Checkpoint", "load_data", "LOADERS", "ModelLoader", "FlaxLinenLoader",
           "default_out", "ComputeError", "auto_points"]

NORMS = ("filter", "layer", "weight", "none")
NAMED_DATA = ("fashion_mnist", "cifar10")


class ComputeError(ValueError):
    """A request the command cannot carry out; reported in one line (status 2)."""


# --------------------------------------------------------------------------- grids
def parse_range(text: str, what: str = "--x") -> np.ndarray:
    """``"MIN:MAX:NUM"`` → ``np.linspace(MIN, MAX, NUM)`` (the reference tool's syntax).

    Example:
        >>> parse_range("-1:1:5")
        array([-1. , -0.5,  0. ,  0.5,  1. ])
    """
    parts = text.split(":")
    try:
        lo, hi, num = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise ComputeError(f"{what} must be MIN:MAX:NUM, e.g. -1:1:51; got {text!r}") from None
    if num < 2 or not hi > lo or not np.isfinite([lo, hi]).all():
        raise ComputeError(f"{what} {text!r}: need MIN < MAX (finite) and NUM >= 2 points")
    return np.linspace(lo, hi, num)


def auto_points(text: str | None, what: str = "--x") -> int | None:
    """``"auto"`` or ``"auto:NUM"`` → NUM (default 51): the range comes from
    :func:`jaxsurf.auto_range`; ``None`` for any other text.

    Example:
        >>> auto_points("auto:21"), auto_points("-1:1:5")
        (21, None)
    """
    if text is None or not text.startswith("auto"):
        return None
    head, sep, num = text.partition(":")
    try:
        if head != "auto":
            raise ValueError
        points = int(num) if sep else 51
    except ValueError:
        raise ComputeError(f"{what} auto takes the form auto or auto:NUM (e.g. auto:51); "
                           f"got {text!r}") from None
    if points < 2:
        raise ComputeError(f"{what} {text!r}: need NUM >= 2 points")
    return points


# --------------------------------------------------------------------------- the model
def load_model(spec: str, kwargs: dict[str, Any] | None = None) -> Any:
    """The model named by ``PKG.MODULE:FACTORY`` (see the module docstring).

    Example:
        >>> load_model("jaxsurf.models:resnet20", {"skip": False}).skip
        False
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ComputeError(f"--model must be PKG.MODULE:FACTORY (e.g. jaxsurf.models:SmallCNN), "
                           f"got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: modules beside the user
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ComputeError(f"--model {spec}: cannot import {module_name!r} ({err}); is it on "
                           f"PYTHONPATH?") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ComputeError(f"--model {spec}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if any(loader.accepts(target) for loader in LOADERS):
        if kwargs:
            raise ComputeError(f"--model {spec} is already a model; --model-kwargs needs a "
                               f"factory to call")
        return target
    if isinstance(target, types.ModuleType):
        raise ComputeError(f"--model {spec}: {functions_hint(target)}; name it as "
                           f"{module_name}:{attr}.FUNCTION")
    if not callable(target):
        raise ComputeError(f"--model {spec} is a {type(target).__name__}, neither a model "
                           f"nor a callable that returns one")
    try:
        model = target(**(kwargs or {}))
    except TypeError as err:
        raise ComputeError(f"--model {spec}: calling {attr}(**{kwargs or {}}) failed: {err}; "
                           f"pass its arguments with --model-kwargs '{{\"name\": value}}'"
                           ) from None
    if not any(loader.accepts(model) for loader in LOADERS):
        raise ComputeError(f"--model {spec} returned a {type(model).__name__}; supported are "
                           f"{', '.join(loader.name for loader in LOADERS)}")
    return model


# --------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class Checkpoint:
    """One recorded step of a trajectory.

    Attributes:
        trajectory: the orbax directory (step folders inside).
        step: the step to read.
        run_dir: the :func:`jaxsurf.train.fit` folder holding ``trajectory``, if any.
    """

    trajectory: Path
    step: int
    run_dir: Path | None = None

    def read(self, params_like: Any) -> tuple[Any, Any]:
        """``(params, state)`` of the step; ``params`` restored into ``params_like``'s
        structure (shapes and dtypes checked), ``state`` as saved (or ``None``)."""
        from jaxsurf._trajectory import TrajectoryRecorder

        with TrajectoryRecorder(self.trajectory) as recorder:
            return recorder.restore(self.step, params_like=params_like)

    def __str__(self) -> str:
        return f"{self.trajectory} step {self.step}"


def _steps(path: Path) -> list[int]:
    return sorted(int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit())


def find_checkpoint(path: str | os.PathLike, step: int | None = None,
                    option: str = "--checkpoint") -> Checkpoint:
    """Resolves ``--checkpoint`` (a train run, a trajectory or a step folder) and ``--step``;
    ``option`` names the argument in messages (``--interpolate`` for the second model).

    Example:
        >>> with js.TrajectoryRecorder("runs/cnn/trajectory") as rec:
        ...     rec.save(0, params); rec.save(1, params)
        >>> str(find_checkpoint("runs/cnn"))    # runs/cnn/trajectory, the latest step
        'runs/cnn/trajectory step 1'
    """
    path = Path(path)
    if not path.is_dir():
        raise ComputeError(f"{option} {path}: no such directory; give the folder "
                           f"jaxsurf._train.fit wrote (out_dir) or a TrajectoryRecorder folder")
    run_dir = None
    if (path / "trajectory").is_dir():
        run_dir, path = path, path / "trajectory"
    elif path.name.isdigit() and not _steps(path) and _steps(path.parent):
        if step is not None and step != int(path.name):
            raise ComputeError(f"{option} {path} is step {path.name}, but --step {step}")
        step, path = int(path.name), path.parent
    steps = _steps(path)
    if not steps:
        raise ComputeError(f"{option} {path} holds no recorded steps (numbered folders "
                           f"written by jaxsurf.train.fit or js.TrajectoryRecorder)")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise ComputeError(f"--step {step} is not recorded in {path}; recorded: {steps}")
    if run_dir is None and (path.parent / "log.jsonl").exists():
        run_dir = path.parent
    return Checkpoint(path, step, run_dir)


def default_out(checkpoint: Checkpoint) -> Path:
    """Where results go without ``--out``: ``RUN/surface`` for a train run,
    ``TRAJECTORY_surface`` beside a bare trajectory (never inside orbax's folder)."""
    if checkpoint.run_dir is not None:
        return checkpoint.run_dir / "surface"
    return checkpoint.trajectory.with_name(checkpoint.trajectory.name + "_surface")


# --------------------------------------------------------------------------- loaders
class ModelLoader(Protocol):
    """Turns a model object and a checkpoint into ``(fn, params)`` for one framework."""

    name: str

    def accepts(self, model: Any) -> bool: ...

    def load(self, model: Any, checkpoint: Checkpoint, batch: dict[str, np.ndarray],
             loss: str) -> tuple[Callable, Any]: ...


def _matches(saved: Any, template: Any) -> bool:
    import jax

    try:
        pairs = zip(jax.tree_util.tree_leaves(saved), jax.tree_util.tree_leaves(template),
                    strict=True)
        same = jax.tree_util.tree_structure(jax.tree_util.tree_map(lambda x: 0, saved)) == \
            jax.tree_util.tree_structure(jax.tree_util.tree_map(lambda x: 0, template))
        return same and all(np.shape(a) == np.shape(b) for a, b in pairs)
    except (ValueError, TypeError):
        return False


class FlaxLinenLoader:
    """Flax Linen modules, checkpoints of :func:`jaxsurf.train.fit` or
    :class:`jaxsurf.TrajectoryRecorder` (params, and ``state`` with the other
    collections)."""

    name = "Flax Linen modules"

    def accepts(self, model: Any) -> bool:
        try:
            import flax.linen as nn
        except ImportError:  # pragma: no cover - flax is a dependency
            return False
        return isinstance(model, nn.Module)

    def load(self, model: Any, checkpoint: Checkpoint, batch: dict[str, np.ndarray],
             loss: str) -> tuple[Callable, Any]:
        import jax

        import jaxsurf as js
        from jaxsurf._flax import eval_mode_kwargs, split_batch

        inputs, _ = split_batch({k: v[:1] for k, v in batch.items()})
        try:
            template = model.init(jax.random.key(0), inputs, **eval_mode_kwargs(model.__call__))
        except Exception as err:  # the user's model on the user's data
            raise ComputeError(f"initialising the model on one example of the data (shape "
                               f"{np.shape(inputs)}) failed: {type(err).__name__}: {err}"
                               ) from None
        params, state = checkpoint.read(template["params"])
        variables = {"params": params}
        for collection, like in template.items():
            if collection == "params":
                continue
            candidates = [((state or {}).get("batch_stats") or {}).get(collection),
                          (state or {}).get(collection)]
            found = next((c for c in candidates if c is not None and _matches(c, like)), None)
            if found is None:
                raise ComputeError(f"{checkpoint} holds no {collection!r} variables shaped like "
                                   f"the model's; save them in the state (as jaxsurf.train "
                                   f"does: state={{'batch_stats': {{{collection!r}: ...}}}})")
            variables[collection] = jax.tree_util.tree_map(
                lambda ref, x: np.asarray(x, np.asarray(ref).dtype), like, found)
        return js.flax.adapt(model, variables, loss=loss)


#: The frameworks ``--model`` can be; the first that accepts the model loads it.
LOADERS: list[ModelLoader] = [FlaxLinenLoader()]


def _loader_for(model: Any) -> ModelLoader:
    for loader in LOADERS:
        if loader.accepts(model):
            return loader
    raise ComputeError(f"no loader for a {type(model).__name__}; supported: "
                       f"{', '.join(loader.name for loader in LOADERS)}")


# --------------------------------------------------------------------------- data
def load_data(spec: str, split: str = "train", data_dir: str | None = None,
              examples: int | None = None) -> tuple[dict[str, np.ndarray], str]:
    """The evaluation data and a description of it.

    ``fashion_mnist`` and ``cifar10`` are standardized per channel with the
    training split's statistics, as the experiments train on them; a ``.npz``
    file is used as it is (arrays ``x`` and ``y``, already preprocessed the
    way the model expects).

    Example:
        >>> np.savez("batch.npz", x=np.zeros((8, 4), np.float32), y=np.zeros(8, np.int32))
        >>> data, what = load_data("batch.npz", examples=5)
        >>> data["x"].shape, what
        ((5, 4), 'batch.npz')
    """
    if spec in NAMED_DATA:
        from jaxsurf.data import channel_stats, load_fashion_mnist, load_tfds, standardize

        try:
            raw = load_fashion_mnist(data_dir) if spec == "fashion_mnist" else \
                load_tfds("cifar10", data_dir)
        except (FileNotFoundError, ImportError) as err:
            raise ComputeError(f"--data {spec}: {err}") from None
        if split not in raw:
            raise ComputeError(f"--split {split}: {spec} has splits train, val, test")
        mean, std = channel_stats(raw["train"]["x"])
        part = raw[split]
        data = {"x": standardize(part["x"][:examples], mean, std),
                "y": np.asarray(part["y"][:examples])}
        return data, f"{spec}/{split} (standardized with train statistics)"
    path = Path(spec)
    if path.suffix != ".npz":
        raise ComputeError(f"--data must be one of {', '.join(NAMED_DATA)} or a .npz file; "
                           f"got {spec!r}")
    if not path.is_file():
        raise ComputeError(f"--data {spec}: no such file")
    data = _read_npz_data(path, examples)
    if "x" not in data or "y" not in data:
        raise ComputeError(f"--data {spec} must hold arrays 'x' and 'y'; it holds "
                           f"{sorted(data)}")
    return data, str(path)


def _read_npz_data(path: Path, examples: int | None) -> dict[str, np.ndarray]:
    """The numeric arrays of a ``--data`` file; anything else is refused naming it."""
    import zipfile

    fix = "write it with np.savez(path, x=inputs, y=labels)"
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            head = handle.read(16)
        raise ComputeError(f"--data {path} is not a .npz file (a zip archive of .npy arrays); "
                           f"it starts with {head!r}; {fix}")
    try:
        with np.load(path, allow_pickle=False) as contents:
            return {k: contents[k][:examples] for k in contents.files}
    except ValueError as err:
        reason = ("an array holds Python objects (dtype object), which jaxsurf never unpickles"
                  if "pickle" in str(err) else str(err))
        raise ComputeError(f"--data {path}: cannot read its arrays: {reason}; {fix}") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise ComputeError(f"--data {path} is damaged ({type(err).__name__}: {err}); "
                           f"{fix}") from None


# --------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``surface`` subcommand's options."""
    what = parser.add_argument_group("model and data")
    what.add_argument("--model", required=True, metavar="PKG.MODULE:FACTORY",
                      help="the model: a factory (e.g. jaxsurf.models:SmallCNN) or object")
    what.add_argument("--model-kwargs", default=None, metavar="JSON",
                      help='keywords for the factory, e.g. \'{"skip": false}\'')
    what.add_argument("--checkpoint", required=True, type=Path, metavar="DIR",
                      help="a jaxsurf.train run folder, a TrajectoryRecorder folder or a step")
    what.add_argument("--step", type=int, default=None, help="recorded step (default: latest)")
    what.add_argument("--data", required=True, metavar="fashion_mnist|cifar10|PATH.npz",
                      help="evaluation data (.npz: arrays x and y, preprocessed)")
    what.add_argument("--data-dir", default=None, help="folder of the named data set")
    what.add_argument("--split", default="train", choices=("train", "val", "test"),
                      help="split of a named data set (default: train, as Li et al.)")
    what.add_argument("--examples", type=int, default=None,
                      help="use the first N examples (default: all)")
    what.add_argument("--loss", default="cross_entropy", choices=("cross_entropy", "mse", "mae"))
    grid = parser.add_argument_group("directions and grid")
    grid.add_argument("--x", default=None, metavar="MIN:MAX:NUM",
                      help="first axis (default -1:1:51; with --interpolate -0.5:1.5:41); "
                           "auto[:NUM]: the symmetric range where the loss reaches --rise x "
                           "the centre's (js.auto_range)")
    grid.add_argument("--y", default=None, metavar="MIN:MAX:NUM",
                      help="second axis: a 2-D plane (without it: a 1-D line); auto[:NUM] "
                           "as for --x")
    grid.add_argument("--rise", type=float, default=10.0,
                      help="with --x/--y auto: the multiple of the centre's loss the range "
                           "reaches (> 1; default 10)")
    grid.add_argument("--rise-by", type=float, default=None,
                      help="with --x/--y auto: instead, reach centre + RISE_BY (for a centre "
                           "loss <= 0)")
    grid.add_argument("--line", action="store_true",
                      help="with --y: also the 1-D line along the first direction (on --x)")
    grid.add_argument("--interpolate", type=Path, default=None, metavar="OTHER_CKPT",
                      help="the straight path from --checkpoint (0) to this checkpoint (1)")
    grid.add_argument("--xnorm", choices=NORMS, default="filter")
    grid.add_argument("--xignore", choices=("biasbn", "none"), default="biasbn")
    grid.add_argument("--ynorm", choices=NORMS, default=None, help="default: --xnorm")
    grid.add_argument("--yignore", choices=("biasbn", "none"), default=None,
                      help="default: --xignore")
    grid.add_argument("--seed", type=int, default=0, help="seed of the random directions")
    run_group = parser.add_argument_group("evaluation and output")
    run_group.add_argument("--batch-size", type=int, default=None,
                           help="examples per batch (default: min(n, 512))")
    run_group.add_argument("--chunk-size", type=int, default=None,
                           help="points per jitted call; also how often the store saves")
    run_group.add_argument("--subsample", type=float, default=None,
                           help="evaluate on a random subset (N examples, or a fraction < 1) "
                                "and add <metric>_sem")
    run_group.add_argument("--store", type=Path, default=None,
                           help="resumable point store (default: OUT/<kind>.store)")
    run_group.add_argument("--out", type=Path, default=None,
                           help="output folder (default: RUN/surface beside the checkpoint)")
    run_group.add_argument("--max-points", type=int, default=None, metavar="N",
                           help=f"refuse grids of more points than this (default: "
                                f"${_validate.MAX_POINTS_ENV} or {_validate.MAX_POINTS:,}); "
                                f"each point is a pass over the data")


def _subsample(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value >= 1 and float(value).is_integer() else value


def _positive(value: int | None, name: str) -> None:
    if value is not None and value < 1:
        raise ComputeError(f"{name} must be a positive integer, got {value}")


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _remove_if_empty(folders: list[Path], stores: list[Path]) -> None:
    """After a failed run: removes the stores it created that hold no points (only
    ``request.json``), then the folders it created that are left empty."""
    for store in stores:
        try:
            if store.is_dir() and {p.name for p in store.iterdir()} <= {"request.json"}:
                (store / "request.json").unlink(missing_ok=True)
                store.rmdir()
        except OSError:
            pass
    for folder in folders:
        try:
            folder.rmdir()  # only if empty
        except OSError:
            break


def _size_line(kinds: dict[str, tuple[int, ...]], names: list[str], subsample: bool) -> str:
    """``plane 51 x 51 = 2,601 points, 2 metrics (accuracy, loss): 20.8 kB of results``."""
    points = sum(int(np.prod(shape)) for shape in kinds.values())
    grids = " + ".join(f"{kind} {' x '.join(map(str, shape))}" for kind, shape in kinds.items())
    values = points * len(names) * (2 if subsample else 1)  # subsample: <name>_sem too
    nbytes = values * 4 + sum(int(np.prod(shape)) * len(shape) * 8 for shape in kinds.values())
    return (f"{grids} = {points:,} points x {len(names)} metrics ({', '.join(names)}), "
            f"{_validate.format_bytes(nbytes)} of results and coordinates")


def run(args: argparse.Namespace) -> int:
    """Computes and saves the surfaces the arguments ask for; returns 0.

    The folders and stores it creates are removed again if it fails before
    saving a point (an ``--out`` that existed before is never touched)."""
    for name in ("examples", "batch_size", "chunk_size", "max_points"):
        _positive(getattr(args, name, None), "--" + name.replace("_", "-"))
    if args.step is not None and args.step < 0:
        raise ComputeError(f"--step must be a recorded step (0, 1, 2, ...), got {args.step}")
    if args.interpolate is not None and args.y is not None:
        raise ComputeError("--interpolate draws a 1-D path; leave out --y")
    args.auto_axes = (auto_points(args.x, "--x"), auto_points(args.y, "--y"))
    if any(args.auto_axes) and args.interpolate is not None:
        raise ComputeError("--x/--y auto find ranges along random directions; with "
                           "--interpolate give --x MIN:MAX:NUM")
    alphas = (np.linspace(-1, 1, args.auto_axes[0]) if args.auto_axes[0] else
              parse_range(args.x or ("-0.5:1.5:41" if args.interpolate else "-1:1:51")))
    betas = None if args.y is None else (np.linspace(-1, 1, args.auto_axes[1])
                                         if args.auto_axes[1] else parse_range(args.y, "--y"))
    kinds: dict[str, tuple[int, ...]] = {}
    if args.interpolate is not None:
        kinds["interpolation"] = (len(alphas),)
    else:
        if betas is not None:
            kinds["plane"] = (len(alphas), len(betas))
        if betas is None or args.line:
            kinds["line"] = (len(alphas),)
    for kind, shape in kinds.items():  # before anything is loaded or allocated
        _validate.point_count(shape, f"jaxsurf surface ({kind})", args.max_points)
    try:
        kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
    except ValueError as err:
        raise ComputeError(f"--model-kwargs is not JSON: {err}") from None
    if not isinstance(kwargs, dict):
        raise ComputeError("--model-kwargs must be a JSON object, e.g. '{\"skip\": false}'")

    checkpoint = find_checkpoint(args.checkpoint, args.step)
    other = None if args.interpolate is None else find_checkpoint(args.interpolate,
                                                                  option="--interpolate")
    out = args.out or default_out(checkpoint)
    stores = {kind: args.store if args.store is not None and kind == next(iter(kinds)) else
              out / f"{kind}.store" for kind in kinds}
    created = _missing_folders(out)
    new_stores = [path for path in stores.values() if not path.exists()]
    try:
        return _compute(args, kwargs, checkpoint, other, out, kinds, stores, alphas, betas)
    except BaseException:
        _remove_if_empty(created, new_stores)
        raise


def _compute(args: argparse.Namespace, kwargs: dict[str, Any], checkpoint: Checkpoint,
             other: Checkpoint | None, out: Path, kinds: dict[str, tuple[int, ...]],
             stores: dict[str, Path], alphas: np.ndarray, betas: np.ndarray | None) -> int:
    import jax

    import jaxsurf as js
    from jaxsurf import _cli_outputs as outputs
    from jaxsurf._engine.metrics import metric_shapes

    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, kwargs)
    data, data_text = load_data(args.data, args.split, args.data_dir, args.examples)
    loader = _loader_for(model)
    fn, params = loader.load(model, checkpoint, data, args.loss)
    names = sorted(metric_shapes(fn, params, {k: v[:1] for k, v in data.items()}))
    print(f"jaxsurf surface: {_size_line(kinds, names, args.subsample is not None)}; "
          f"{checkpoint} on {data_text} ({len(data['y'])} examples) -> {out}", flush=True)

    # everything the command knows that changes the values, beyond what the store
    # fingerprints itself (params, directions, grid, data, batch size): fn's code
    fingerprint = {"model": args.model, "model_kwargs": kwargs, "loss": args.loss,
                   "step": checkpoint.step, "data": args.data if args.data in NAMED_DATA
                   else "npz", "split": args.split if args.data in NAMED_DATA else None,
                   "examples": args.examples, "loader": loader.name}
    meta = {"model": args.model.partition(":")[2].split(".")[-1], "model_spec": args.model,
            "model_kwargs": kwargs, "checkpoint": str(checkpoint.trajectory),
            "step": checkpoint.step, "data": data_text, "loss": args.loss,
            "seed": args.seed, "command": shlex.join(["python", "-m", "jaxsurf", "surface",
                                                      *sys.argv[2:]])
            if sys.argv[1:2] == ["surface"] else None}
    options = {"batch_size": args.batch_size, "chunk_size": args.chunk_size,
               "subsample": _subsample(args.subsample), "max_points": args.max_points,
               "fingerprint": fingerprint}
    surfaces: dict[str, js.Surface] = {}

    if other is not None:
        _, params_b = loader.load(model, other, data, args.loss)
        fingerprint["step_b"] = other.step
        # (js.interpolate records how the BatchNorm statistics move: state_policy)
        meta.update({"checkpoint_b": str(other.trajectory), "step_b": other.step})
        surfaces["interpolation"] = js.interpolate(fn, params, params_b, data, alphas,
                                                   metadata=meta,
                                                   store=stores["interpolation"], **options)
    else:
        k1, k2 = jax.random.split(jax.random.key(args.seed))
        ignore = lambda value: None if value == "none" else value  # noqa: E731
        d1 = js.normalize(js.random_direction(k1, params), params, args.xnorm,
                          ignore(args.xignore))
        d2 = None if betas is None else js.normalize(
            js.random_direction(k2, params), params, args.ynorm or args.xnorm,
            ignore(args.yignore or args.xignore))
        auto: tuple[int | None, int | None] = getattr(args, "auto_axes", (None, None))
        if any(auto):  # --x/--y auto: the range where the loss reaches rise x the centre's
            extents = js.auto_range(fn, params, [d1] if d2 is None else [d1, d2], data,
                                    rise=args.rise, rise_by=args.rise_by,
                                    batch_size=args.batch_size)
            if auto[0] is not None:
                alphas = np.linspace(-extents[0], extents[0], auto[0])
            if auto[1] is not None and d2 is not None:
                betas = np.linspace(-extents[1], extents[1], auto[1])
            meta["auto_range"] = {"rise": None if args.rise_by is not None else args.rise,
                                  "rise_by": args.rise_by, "extents": extents.tolist()}
            print(f"auto range: extents {', '.join(f'{e:.4g}' for e in extents)}", flush=True)
        if d2 is not None:
            surfaces["plane"] = js.evaluate_plane(fn, params, d1, d2, data, alphas, betas,
                                                  metadata=meta, store=stores["plane"],
                                                  **options)
        if "line" in kinds:
            surfaces["line"] = js.evaluate_line(fn, params, d1, data, alphas, metadata=meta,
                                                store=stores["line"], **options)
    for kind, surface in surfaces.items():
        target = out / f"{kind}.npz"
        try:
            path = surface.save(target)
            written = [path]
            if surface.is_plane:
                for figure in ("contour", "surface"):
                    target = outputs.beside(path, figure, ".png")
                    written.append(outputs.plot_surface(surface, figure, target))
                target = outputs.beside(path, "<metric>", ".vtp")
                written.append(outputs.write_vtp(surface, path))
            else:
                target = outputs.beside(path, "line", ".png")
                written.append(outputs.plot_surface(surface, "line", target))
        except OSError as err:
            raise OSError(err.errno, f"writing {target} failed ({err.strerror or err}); the "
                                     f"{int(np.prod(kinds[kind])):,} points of the {kind} are "
                                     f"saved in the store "
                                     f"{stores[kind]}: free space and run the same command "
                                     f"again (it reads them from the store)") from err
        print("\n".join([surface.summary(), *(f"wrote {p}" for p in written)]), flush=True)
    return 0
