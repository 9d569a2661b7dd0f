r"""``python -m jaxsurf surface``: compute a surface of any model from its checkpoint.

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
``jaxsurf.models:SmallCNN`` and ``jaxsurf.models:resnet56`` both work. A
required ``key`` (Equinox) or ``rngs`` (NNX) parameter the keywords leave out
is given a fixed throwaway key: the weights come from the checkpoint.

What the factory may return (see :data:`LOADERS`, the first that accepts it
loads it):

- a **Flax Linen** module, with ``--checkpoint`` (required): its variables are
  initialised on one example of the data (in evaluation mode) to learn the
  parameter tree, then restored; BatchNorm statistics and other collections
  come from the checkpoint's ``state`` (as :func:`jaxsurf.train.fit` saves
  them, ``state["batch_stats"][collection]``, or as ``state[collection]``);
- an **Equinox** module, or ``(model, state)`` from ``eqx.nn.make_with_state``;
  ``--checkpoint`` a file written by ``eqx.tree_serialise_leaves(path, model)``
  (or of ``(model, state)``), a TrajectoryRecorder of the adapted params, or
  none (the factory's weights);
- a **Flax NNX** module; ``--checkpoint`` an orbax directory of
  ``nnx.state(model)`` (``ocp.StandardCheckpointer().save(path, state)``, as
  the Flax documentation saves one), a TrajectoryRecorder, or none;
- ``(fn, params)`` for **any framework** (``fn(params, batch)`` returns batch
  means, a scalar or a dict); ``--checkpoint`` optional (any of the above,
  restored into ``params``' structure); ``--loss`` does not apply.

The model must be the one that was trained: a checkpoint that does not fit
is reported with the first leaf that differs and the shapes on both sides.

**Checkpoints** (``--checkpoint PATH``): a :func:`jaxsurf.train.fit` run
folder (holding ``trajectory/``), or a folder written by
:class:`jaxsurf.TrajectoryRecorder`, or one step folder inside it
(``--step`` picks a step, default the latest); an Equinox file; an orbax
checkpoint directory.

**Data** (``--data``): ``fashion_mnist`` or ``cifar10`` (standardized with the
train split's statistics), a ``.npz`` file (arrays ``x`` and ``y``, or the
two arrays ``--data-keys INPUTS,TARGETS`` names), or ``PKG.MODULE:FACTORY``,
a function (called with ``--data-kwargs``) returning a dict of arrays or an
``(inputs, targets)`` pair. ``--metric error`` adds ``error = 1 - accuracy``
and draws it.

**Adding a framework**: append a loader to :data:`LOADERS`, an object with
``name``, ``accepts(model) -> bool`` and ``load(model, checkpoint, batch, loss,
*, input_key=None, target_key=None) -> (fn, params)`` (see
:class:`EquinoxLoader`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from jaxsurf import _validate
from jaxsurf._modules import functions_hint

__all__ = ["add_arguments", "run", "parse_range", "load_model", "find_checkpoint",
           "resolve_checkpoint", "Checkpoint", "SavedTree", "load_data", "LOADERS",
           "ModelLoader", "FlaxLinenLoader", "EquinoxLoader", "NNXLoader", "FunctionLoader",
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
def _is_model(target: Any) -> bool:
    return any(loader.accepts(target) for loader in LOADERS)


def _init_keywords(factory: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A throwaway initialisation key for factories that require one (``key=`` of an
    Equinox module, ``rngs=`` of an NNX module): the weights come from the checkpoint,
    or are the factory's own; the key only builds the structure."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    extra: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if name in kwargs or parameter.default is not inspect.Parameter.empty or \
                parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name == "key":
            import jax

            extra[name] = jax.random.key(0)
        elif name == "rngs":
            from flax import nnx

            extra[name] = nnx.Rngs(0)
    return extra


def _supported() -> str:
    return "; ".join(loader.name for loader in LOADERS)


def load_model(spec: str, kwargs: dict[str, Any] | None = None) -> Any:
    """The model named by ``PKG.MODULE:FACTORY`` (see the module docstring): a
    model object of a supported framework, or ``(fn, params)``.

    Example:
        >>> load_model("jaxsurf.models:resnet20", {"skip": False}).skip
        False
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ComputeError(f"--model must be PKG.MODULE:FACTORY (e.g. jaxsurf.models:SmallCNN), "
                           f"got {spec!r}")
    target = _import_attribute(spec, module_name, attr, "--model")
    if _is_model(target):
        if kwargs:
            raise ComputeError(f"--model {spec} is already a model; --model-kwargs needs a "
                               f"factory to call")
        return target
    if isinstance(target, types.ModuleType):
        raise ComputeError(f"--model {spec}: {functions_hint(target)}; name it as "
                           f"{module_name}:{attr}.FUNCTION")
    if not callable(target):
        raise ComputeError(f"--model {spec} is a {type(target).__name__}, neither a model "
                           f"nor a callable that returns one; supported: {_supported()}")
    kwargs = dict(kwargs or {})
    model = _call_factory(target, kwargs, f"--model {spec}", attr, "--model-kwargs")
    if not _is_model(model):
        raise ComputeError(f"--model {spec} returned a {_describe(model)}; supported: "
                           f"{_supported()}")
    return model


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        inside = ", ".join(type(v).__name__ for v in value)
        return f"{type(value).__name__} of {len(value)} ({inside})"
    return type(value).__name__


def _import_attribute(spec: str, module_name: str, attr: str, option: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: modules beside the user
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ComputeError(f"{option} {spec}: cannot import {module_name!r} ({err}); is it on "
                           f"PYTHONPATH?") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ComputeError(f"{option} {spec}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    return target


def _call_factory(factory: Any, kwargs: dict[str, Any], what: str, attr: str,
                  option: str) -> Any:
    import inspect

    try:
        inspect.signature(factory).bind(**kwargs, **_init_keywords(factory, kwargs))
    except TypeError as err:  # the keywords do not fit: say which, before calling
        raise ComputeError(f"{what}: calling {attr}(**{kwargs}) does not fit its parameters "
                           f"{_signature(factory)}: {err}; pass its arguments with {option} "
                           f"'{{\"name\": value}}'") from None
    except ValueError:  # no signature (a builtin): let the call tell
        pass
    try:
        return factory(**kwargs, **_init_keywords(factory, kwargs))
    except TypeError as err:
        raise ComputeError(f"{what}: calling {attr}(**{kwargs}) failed: {err}; pass its "
                           f"arguments with {option} '{{\"name\": value}}'") from None


def _signature(factory: Any) -> str:
    import inspect

    try:
        return str(inspect.signature(factory))
    except (TypeError, ValueError):
        return "(unknown)"


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


@dataclass(frozen=True)
class SavedTree:
    """A checkpoint that is one saved pytree, not a recorded trajectory.

    Attributes:
        path: the file or directory.
        kind: ``"equinox"`` (a file written by ``eqx.tree_serialise_leaves``) or
            ``"orbax"`` (a directory written by ``ocp.StandardCheckpointer().save``,
            as the Flax NNX documentation saves ``nnx.state(model)``).
    """

    path: Path
    kind: str

    @property
    def step(self) -> None:
        return None

    def __str__(self) -> str:
        what = "eqx.tree_serialise_leaves file" if self.kind == "equinox" else "orbax checkpoint"
        return f"{self.path} ({what})"


_ORBAX_MARKERS = ("_METADATA", "manifest.ocdbt")


def resolve_checkpoint(path: str | os.PathLike, step: int | None = None,
                       option: str = "--checkpoint") -> Checkpoint | SavedTree:
    """``--checkpoint``: a recorded trajectory (see :func:`find_checkpoint`), an
    Equinox file or an orbax checkpoint directory (:class:`SavedTree`).

    Example:
        >>> import equinox as eqx
        >>> eqx.tree_serialise_leaves("mlp.eqx", eqx.nn.MLP(2, 1, 4, 1, key=jax.random.key(0)))
        >>> resolve_checkpoint("mlp.eqx").kind
        'equinox'
    """
    path = Path(path)
    saved: SavedTree | None = None
    if path.is_file():
        saved = SavedTree(path, "equinox")
    elif path.is_dir() and any((path / name).exists() for name in _ORBAX_MARKERS) and \
            not _steps(path) and not (path.name.isdigit() and _steps(path.parent)):
        saved = SavedTree(path, "orbax")
    if saved is None:
        return find_checkpoint(path, step, option)
    if step is not None:
        raise ComputeError(f"--step {step}: {option} {saved} holds one set of weights, not "
                           f"recorded steps; leave out --step")
    return saved


def default_out(checkpoint: Checkpoint | SavedTree | None, model_spec: str = "") -> Path:
    """Where results go without ``--out``: ``RUN/surface`` for a train run,
    ``TRAJECTORY_surface`` beside a bare trajectory (never inside orbax's folder),
    ``NAME_surface`` beside a saved file or directory, and ``FACTORY_surface`` in
    the current folder for a model without a checkpoint."""
    if checkpoint is None:
        return Path((model_spec.partition(":")[2].split(".")[-1] or "model") + "_surface")
    if isinstance(checkpoint, SavedTree):
        return checkpoint.path.with_name(checkpoint.path.stem + "_surface")
    if checkpoint.run_dir is not None:
        return checkpoint.run_dir / "surface"
    return checkpoint.trajectory.with_name(checkpoint.trajectory.name + "_surface")


# --------------------------------------------------------------------------- loaders
class ModelLoader(Protocol):
    """Turns a model object and a checkpoint into ``(fn, params)`` for one framework.

    ``checkpoint`` is a :class:`Checkpoint` (a recorded trajectory step), a
    :class:`SavedTree` (an Equinox file or an orbax directory) or ``None`` (the
    model's own weights); ``input_key``/``target_key`` name the batch's entries."""

    name: str

    def accepts(self, model: Any) -> bool: ...

    def load(self, model: Any, checkpoint: Checkpoint | SavedTree | None,
             batch: dict[str, np.ndarray], loss: str, *, input_key: str | None = None,
             target_key: str | None = None) -> tuple[Callable, Any]: ...


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


_MISMATCH = re.compile(r"at (?P<leaf>\S+): saved shape (?P<saved>\(.*?\)) dtype (?P<sdtype>\S+), "
                       r"params_like has shape (?P<model>\(.*?\)) dtype (?P<mdtype>\w+)")


def _mismatch_error(checkpoint: Any, detail: str, context: str) -> ComputeError:
    """A checkpoint that does not fit the model, said in the command line's terms."""
    found = _MISMATCH.search(detail)
    if found:
        where = (f"at {found['leaf']} the checkpoint has shape {found['saved']} "
                 f"({found['sdtype']}), the model {found['model']} ({found['mdtype']})")
    else:
        where = detail.replace("params_like", "the model's parameters")
    return ComputeError(f"the model does not fit {checkpoint}: {where}. {context}")


def _fit_context(batch: dict[str, np.ndarray] | None, input_key: str | None) -> str:
    """What to check when a checkpoint does not fit: the model's arguments, and the
    data's shape when the model learns its shapes from the data (Flax Linen)."""
    text = "Check that --model and --model-kwargs build the network that was trained"
    if batch is not None:
        key = input_key or next((k for k in ("x", "image", "images", "inputs") if k in batch),
                                None)
        if key is not None:
            shape = tuple(np.shape(batch[key]))
            text += (f", and that --data is shaped as in training: the model's shapes were "
                     f"inferred from its {key!r} of shape {shape}")
            if len(shape) == 3:
                text += (f" (images without a channel axis? save them as "
                         f"{(*shape, 1)}, e.g. x[..., None])")
    return text + "."


def _read_recorded(checkpoint: Checkpoint, like: Any, context: str) -> tuple[Any, Any]:
    try:
        return checkpoint.read(like)
    except ValueError as err:
        text = str(err)
        if "does not match step" in text or "leaves but step" in text or \
                "into the given params_like" in text:
            raise _mismatch_error(checkpoint, text, context) from None
        raise


def _read_saved(saved: SavedTree, like: Any, context: str) -> Any:
    """``like`` with the values of an Equinox file or an orbax directory."""
    import jax

    if saved.kind == "equinox":
        import equinox as eqx

        try:
            return eqx.tree_deserialise_leaves(saved.path, like)
        except Exception as err:  # eqx raises plain RuntimeError/ValueError on a mismatch
            raise ComputeError(f"the model does not fit {saved} (eqx.tree_deserialise_leaves: "
                               f"{type(err).__name__}: {_short(err)}). {context}") from None
    import orbax.checkpoint as ocp

    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
    checkpointer = ocp.StandardCheckpointer()
    try:
        return checkpointer.restore(saved.path.resolve(), abstract)
    except Exception as err:  # orbax raises many types for a mismatch or damaged files
        raise ComputeError(f"the model does not fit the orbax checkpoint {saved} "
                           f"({type(err).__name__}: {_short(err)}). {context}") from None
    finally:
        checkpointer.close()


def _short(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " ..."


class FlaxLinenLoader:
    """Flax Linen modules, checkpoints of :func:`jaxsurf.train.fit` or
    :class:`jaxsurf.TrajectoryRecorder` (params, and ``state`` with the other
    collections), or an orbax directory of the variables (or of the params)."""

    name = ("Flax Linen modules (with --checkpoint)")

    def accepts(self, model: Any) -> bool:
        try:
            import flax.linen as nn
        except ImportError:  # pragma: no cover - flax is a dependency
            return False
        return isinstance(model, nn.Module)

    def load(self, model: Any, checkpoint: Checkpoint | SavedTree | None,
             batch: dict[str, np.ndarray], loss: str, *, input_key: str | None = None,
             target_key: str | None = None) -> tuple[Callable, Any]:
        import jax

        import jaxsurf as js
        from jaxsurf._flax import eval_mode_kwargs, split_batch

        if checkpoint is None:
            raise ComputeError(f"a Flax Linen module ({type(model).__name__}) holds no weights: "
                               f"give --checkpoint (a jaxsurf.train run, a TrajectoryRecorder "
                               f"folder or an orbax directory of its variables), or let the "
                               f"factory return (fn, params), e.g. "
                               f"js.flax.adapt(module, variables)")
        try:
            inputs, _ = split_batch({k: v[:1] for k, v in batch.items()}, input_key,
                                    target_key)
        except (KeyError, TypeError) as err:
            raise ComputeError(f"--data: {_short(err)}; name the inputs and targets with "
                               f"--data-keys INPUTS,TARGETS") from None
        try:
            template = model.init(jax.random.key(0), inputs, **eval_mode_kwargs(model.__call__))
        except Exception as err:  # the user's model on the user's data
            raise ComputeError(f"initialising the model on one example of the data (shape "
                               f"{np.shape(inputs)}) failed: {type(err).__name__}: "
                               f"{_short(err)}; is --data shaped as in training (images "
                               f"with their channel axis), and do --model/--model-kwargs "
                               f"build the trained network?") from None
        context = _fit_context(batch, input_key)
        template = jax.tree_util.tree_map(np.asarray, dict(template))
        if isinstance(checkpoint, SavedTree):
            variables = _read_linen_saved(checkpoint, template, context)
            return js.flax.adapt(model, variables, loss=loss, input_key=input_key,
                                 target_key=target_key)
        params, state = _read_recorded(checkpoint, template["params"], context)
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
        return js.flax.adapt(model, variables, loss=loss, input_key=input_key,
                             target_key=target_key)


def _read_linen_saved(saved: SavedTree, template: dict[str, Any], context: str) -> Any:
    """All the variables from ``saved``; or only the params, when the model has no other
    collection."""
    try:
        return _read_saved(saved, template, context)
    except ComputeError:
        if set(template) != {"params"}:
            raise
    return {"params": _read_saved(saved, template["params"], context)}


class EquinoxLoader:
    """Equinox modules (``model`` or ``(model, state)`` from ``eqx.nn.make_with_state``);
    checkpoints written by ``eqx.tree_serialise_leaves(path, model)`` (or of
    ``(model, state)``), a :class:`jaxsurf.TrajectoryRecorder` of the adapted params,
    or none (the factory's weights)."""

    name = "Equinox modules (or (model, state))"

    def accepts(self, model: Any) -> bool:
        eqx = sys.modules.get("equinox")
        if eqx is None:
            return False
        if isinstance(model, (tuple, list)) and len(model) == 2:
            return isinstance(model[0], eqx.Module) and isinstance(model[1], eqx.nn.State)
        return isinstance(model, eqx.Module)

    def load(self, model: Any, checkpoint: Checkpoint | SavedTree | None,
             batch: dict[str, np.ndarray], loss: str, *, input_key: str | None = None,
             target_key: str | None = None) -> tuple[Callable, Any]:
        import equinox as eqx

        import jaxsurf as js

        state = None
        if isinstance(model, (tuple, list)):
            model, state = model
        context = _fit_context(None, None)
        if isinstance(checkpoint, SavedTree):
            if checkpoint.kind != "equinox":
                raise ComputeError(f"{checkpoint} is an orbax directory; for an Equinox model "
                                   f"give the file written by eqx.tree_serialise_leaves(path, "
                                   f"model) or a TrajectoryRecorder folder")
            if state is not None:
                try:
                    model, state = _read_saved(checkpoint, (model, state), context)
                except ComputeError:
                    model = _read_saved(checkpoint, model, context)
            else:
                model = _read_saved(checkpoint, model, context)
        elif checkpoint is not None:
            params, static = eqx.partition(model, eqx.is_array)
            params, _ = _read_recorded(checkpoint, params, context)
            model = eqx.combine(params, static)
        try:
            return js.equinox.adapt(model, state, loss=loss, input_key=input_key,
                                    target_key=target_key)
        except (TypeError, ValueError) as err:
            raise ComputeError(f"js.equinox.adapt: {_short(err)}") from None


class NNXLoader:
    """Flax NNX modules; checkpoints: an orbax directory of ``nnx.state(model)`` (as
    the Flax documentation saves one: ``ocp.StandardCheckpointer().save(path,
    nnx.state(model))``, or of its ``nnx.Param`` state), a
    :class:`jaxsurf.TrajectoryRecorder` of the adapted params, or none."""

    name = "Flax NNX modules"

    def accepts(self, model: Any) -> bool:
        try:
            from flax import nnx
        except ImportError:  # pragma: no cover - flax is a dependency
            return False
        return isinstance(model, nnx.Module)

    def load(self, model: Any, checkpoint: Checkpoint | SavedTree | None,
             batch: dict[str, np.ndarray], loss: str, *, input_key: str | None = None,
             target_key: str | None = None) -> tuple[Callable, Any]:
        import jax
        from flax import nnx

        import jaxsurf as js

        context = _fit_context(None, None)
        if checkpoint is not None:
            state = nnx.state(model)
            if isinstance(checkpoint, SavedTree):
                like = jax.tree_util.tree_map(np.asarray, state)
                try:
                    restored = _read_saved(checkpoint, like, context)
                except ComputeError:
                    restored = _read_saved(checkpoint, jax.tree_util.tree_map(
                        np.asarray, nnx.state(model, nnx.Param)), context)
                nnx.update(model, restored)
            else:
                param_state = nnx.state(model, nnx.Param)
                like = jax.tree_util.tree_map(np.asarray, nnx.to_pure_dict(param_state))
                params, _ = _read_recorded(checkpoint, like, context)
                nnx.replace_by_pure_dict(param_state, params)
                nnx.update(model, param_state)
        return js.flax.adapt(model, loss=loss, input_key=input_key, target_key=target_key)


class FunctionLoader:
    """A factory's ``(fn, params)`` (any framework: ``fn(params, batch)`` returns the
    batch means); ``--checkpoint`` optional: a :class:`jaxsurf.TrajectoryRecorder`
    of ``params``, an ``eqx.tree_serialise_leaves`` file or an orbax directory of
    them, restored into ``params``' structure."""

    name = "a factory returning (fn, params), fn(params, batch) -> batch means"

    def accepts(self, model: Any) -> bool:
        return isinstance(model, tuple) and len(model) == 2 and callable(model[0]) and \
            not isinstance(model[1], (str, bytes)) and not EquinoxLoader().accepts(model)

    def load(self, model: Any, checkpoint: Checkpoint | SavedTree | None,
             batch: dict[str, np.ndarray], loss: str, *, input_key: str | None = None,
             target_key: str | None = None) -> tuple[Callable, Any]:
        import jax

        from jaxsurf import _tree

        fn, params = model
        try:
            _tree.check_arrays(params)
        except (TypeError, ValueError) as err:
            raise ComputeError(f"the factory's params are not a pytree of arrays: "
                               f"{_short(err)}") from None
        context = "Check that --model and --model-kwargs build the params that were saved."
        if isinstance(checkpoint, SavedTree):
            params = _read_saved(checkpoint, params, context)
        elif checkpoint is not None:
            like = jax.tree_util.tree_map(np.asarray, params)
            params, _ = _read_recorded(checkpoint, like, context)
        return fn, params


#: The frameworks ``--model`` can be; the first that accepts the model loads it.
LOADERS: list[ModelLoader] = [FlaxLinenLoader(), EquinoxLoader(), NNXLoader(), FunctionLoader()]


def _loader_for(model: Any) -> ModelLoader:
    for loader in LOADERS:
        if loader.accepts(model):
            return loader
    raise ComputeError(f"no loader for a {_describe(model)}; supported: {_supported()}")


# --------------------------------------------------------------------------- data
def load_data(spec: str, split: str = "train", data_dir: str | None = None,
              examples: int | None = None, keys: Sequence[str] | None = None,
              kwargs: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], str]:
    """The evaluation data and a description of it.

    ``fashion_mnist`` and ``cifar10`` are standardized per channel with the
    training split's statistics, as the experiments train on them; a ``.npz``
    file is used as it is (arrays ``x`` and ``y``, or the arrays named by
    ``keys``: inputs first, then targets; already preprocessed the way the
    model expects); ``PKG.MODULE:FACTORY`` calls a Python function (with
    ``kwargs``) that returns a dict of arrays or an ``(inputs, targets)`` pair.

    Example:
        >>> np.savez("batch.npz", x=np.zeros((8, 4), np.float32), y=np.zeros(8, np.int32))
        >>> data, what = load_data("batch.npz", examples=5)
        >>> data["x"].shape, what
        ((5, 4), 'batch.npz')
        >>> np.savez("pairs.npz", image=np.zeros((8, 4), np.float32), label=np.zeros(8))
        >>> sorted(load_data("pairs.npz", keys=["image", "label"])[0])
        ['image', 'label']
    """
    if spec in NAMED_DATA:
        from jaxsurf.data import channel_stats, load_fashion_mnist, load_tfds, standardize

        if keys or kwargs:
            raise ComputeError(f"--data {spec} has arrays x and y; --data-keys and "
                               f"--data-kwargs are for .npz files and factories")
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
    if path.suffix != ".npz" and ":" in spec:
        if kwargs and not isinstance(kwargs, dict):
            raise ComputeError("--data-kwargs must be a JSON object")
        data = _data_from_factory(spec, dict(kwargs or {}), examples)
        what = spec
    else:
        if kwargs:
            raise ComputeError("--data-kwargs is for a data factory (--data PKG.MODULE:FACTORY)")
        if path.suffix != ".npz":
            raise ComputeError(f"--data must be one of {', '.join(NAMED_DATA)}, a .npz file or "
                               f"PKG.MODULE:FACTORY (a function returning the arrays); got "
                               f"{spec!r}")
        if not path.is_file():
            raise ComputeError(f"--data {spec}: no such file")
        data = _read_npz_data(path, examples)
        what = str(path)
    return _select(data, keys, spec), what


def _data_from_factory(spec: str, kwargs: dict[str, Any], examples: int | None
                       ) -> dict[str, np.ndarray]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ComputeError(f"--data {spec!r}: a data factory is named PKG.MODULE:FACTORY")
    target = _import_attribute(spec, module_name, attr, "--data")
    value = _call_factory(target, kwargs, f"--data {spec}", attr, "--data-kwargs") \
        if callable(target) else target
    if isinstance(value, (tuple, list)) and len(value) == 2:
        value = {"x": value[0], "y": value[1]}
    if not isinstance(value, dict) or not value:
        raise ComputeError(f"--data {spec} gave a {_describe(value)}; a data factory returns "
                           f"a dict of arrays (e.g. {{'x': inputs, 'y': labels}}) or an "
                           f"(inputs, targets) pair")
    out = {}
    for key, array in value.items():
        try:
            out[str(key)] = np.asarray(array)[:examples]
        except (TypeError, ValueError, IndexError) as err:
            raise ComputeError(f"--data {spec}: entry {key!r} is not an array with an example "
                               f"axis ({_short(err)})") from None
    return out


def _select(data: dict[str, np.ndarray], keys: Sequence[str] | None,
            spec: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` names (all without keys), checked to share an example axis."""
    if keys:
        missing = [k for k in keys if k not in data]
        if missing:
            raise ComputeError(f"--data-keys {','.join(keys)}: --data {spec} has no "
                               f"{', '.join(map(repr, missing))}; it holds {sorted(data)}")
        data = {k: data[k] for k in keys}
    sizes = {k: (np.shape(v)[0] if np.ndim(v) else None) for k, v in data.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ComputeError(f"--data {spec}: the arrays must share their first (example) axis; "
                           f"lengths: {sizes}" + ("" if keys else "; pick the model's inputs "
                                                  "and targets with --data-keys INPUTS,TARGETS"))
    return data


def _check_roles(data: dict[str, np.ndarray], keys: Sequence[str] | None, spec: str) -> None:
    """A model adapted by jaxsurf needs to tell the inputs from the targets."""
    from jaxsurf._flax import INPUT_KEYS, TARGET_KEYS

    if keys:
        if len(keys) != 2:
            raise ComputeError(f"--data-keys {','.join(keys)}: name two arrays, the model's "
                               f"inputs and its targets (e.g. --data-keys image,label)")
        return
    if not any(k in data for k in INPUT_KEYS) or not any(k in data for k in TARGET_KEYS):
        raise ComputeError(f"--data {spec} holds {sorted(data)}: which are the inputs and the "
                           f"targets? Name them with --data-keys INPUTS,TARGETS (or save "
                           f"them as 'x' and 'y')")


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
                      help="the model: a factory or object (Flax Linen, Flax NNX, Equinox "
                           "module or (model, state)), or a factory returning (fn, params) "
                           "for any framework")
    what.add_argument("--model-kwargs", default=None, metavar="JSON",
                      help='keywords for the factory, e.g. \'{"skip": false}\'')
    what.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                      help="a jaxsurf.train run folder, a TrajectoryRecorder folder or a step, "
                           "an eqx.tree_serialise_leaves file or an orbax directory (NNX: "
                           "nnx.state(model)); required for Linen; without it, the weights "
                           "the factory built")
    what.add_argument("--step", type=int, default=None, help="recorded step (default: latest)")
    what.add_argument("--data", required=True,
                      metavar="fashion_mnist|cifar10|PATH.npz|PKG.MODULE:FACTORY",
                      help="evaluation data (.npz: arrays x and y, or --data-keys; a factory "
                           "returns a dict of arrays or an (inputs, targets) pair)")
    what.add_argument("--data-keys", default=None, metavar="INPUTS,TARGETS",
                      help="the arrays of --data that are the inputs and the targets "
                           "(default: x,y)")
    what.add_argument("--data-kwargs", default=None, metavar="JSON",
                      help="keywords for a data factory")
    what.add_argument("--data-dir", default=None, help="folder of the named data set")
    what.add_argument("--split", default="train", choices=("train", "val", "test"),
                      help="split of a named data set (default: train, as Li et al.)")
    what.add_argument("--examples", type=int, default=None,
                      help="use the first N examples (default: all)")
    what.add_argument("--loss", default=None, choices=("cross_entropy", "mse", "mae"),
                      help="loss of an adapted model (default: cross_entropy, with accuracy); "
                           "a factory's (fn, params) computes its own metrics")
    what.add_argument("--metric", default=None, choices=("error",),
                      help="add a derived metric and draw it: error = 1 - accuracy")
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
    kwargs = _json_object(args.model_kwargs, "--model-kwargs")
    _json_object(getattr(args, "data_kwargs", None), "--data-kwargs")
    _data_keys(getattr(args, "data_keys", None))

    if args.checkpoint is None:
        if args.step is not None:
            raise ComputeError("--step picks a recorded step of --checkpoint; give --checkpoint")
        checkpoint = None
    else:
        checkpoint = resolve_checkpoint(args.checkpoint, args.step)
    other = None if args.interpolate is None else resolve_checkpoint(args.interpolate,
                                                                     option="--interpolate")
    out = args.out or default_out(checkpoint, args.model)
    stores = {kind: args.store if args.store is not None and kind == next(iter(kinds)) else
              out / f"{kind}.store" for kind in kinds}
    created = _missing_folders(out)
    new_stores = [path for path in stores.values() if not path.exists()]
    try:
        return _compute(args, kwargs, checkpoint, other, out, kinds, stores, alphas, betas)
    except BaseException:
        _remove_if_empty(created, new_stores)
        raise


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError as err:
        raise ComputeError(f"{option} is not JSON: {err}") from None
    if not isinstance(value, dict):
        raise ComputeError(f"{option} must be a JSON object, e.g. '{{\"skip\": false}}'")
    return value


def _data_keys(text: str | None) -> list[str] | None:
    if text is None:
        return None
    keys = [k.strip() for k in text.split(",")]
    if len(keys) != 2 or not all(keys) or keys[0] == keys[1]:
        raise ComputeError(f"--data-keys {text!r}: name the inputs and the targets, two "
                           f"different arrays, e.g. --data-keys image,label")
    return keys


def _add_error(surface: Any) -> Any:
    """``error = 1 - accuracy`` (and its standard error), exact: a mean is linear."""
    from jaxsurf._surface import SEM_SUFFIX

    if "accuracy" not in surface.metrics:
        raise ComputeError(f"--metric error is 1 - accuracy, but the model's metrics are "
                           f"{surface.metric_names}; leave out --metric, or return an "
                           f"'accuracy' from fn")
    surface.metrics["error"] = 1.0 - surface.metrics["accuracy"]
    if "accuracy" + SEM_SUFFIX in surface.metrics:
        surface.metrics["error" + SEM_SUFFIX] = surface.metrics["accuracy" + SEM_SUFFIX]
    return surface


def _where(checkpoint: Checkpoint | SavedTree) -> str:
    return str(checkpoint.path if isinstance(checkpoint, SavedTree) else checkpoint.trajectory)


def _shapes(data: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k}: {tuple(np.shape(v))}" for k, v in data.items())


def _compute(args: argparse.Namespace, kwargs: dict[str, Any],
             checkpoint: Checkpoint | SavedTree | None,
             other: Checkpoint | SavedTree | None, out: Path, kinds: dict[str, tuple[int, ...]],
             stores: dict[str, Path], alphas: np.ndarray, betas: np.ndarray | None) -> int:
    import jax

    import jaxsurf as js
    from jaxsurf import _cli_outputs as outputs
    from jaxsurf._engine.metrics import metric_shapes

    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, kwargs)
    keys = _data_keys(getattr(args, "data_keys", None))
    data_kwargs = _json_object(getattr(args, "data_kwargs", None), "--data-kwargs")
    metric = getattr(args, "metric", None)
    data, data_text = load_data(args.data, args.split, args.data_dir, args.examples, keys,
                                data_kwargs)
    loader = _loader_for(model)
    is_function = isinstance(loader, FunctionLoader)
    if is_function and args.loss is not None:
        raise ComputeError(f"--loss {args.loss}: the factory's fn computes its own metrics; "
                           f"leave out --loss (or return a model to adapt instead of "
                           f"(fn, params))")
    if not is_function:
        _check_roles(data, keys, args.data)
    loss = args.loss or "cross_entropy"
    input_key, target_key = (keys[0], keys[1]) if keys else (None, None)
    try:
        fn, params = loader.load(model, checkpoint, data, loss, input_key=input_key,
                                 target_key=target_key)
    except ComputeError as err:
        if "does not fit" not in str(err):
            raise
        raise ComputeError(f"{err} (Here: --model {args.model}"
                           + (f" --model-kwargs '{json.dumps(kwargs)}'" if kwargs else "")
                           + ")") from None
    try:
        names = sorted(metric_shapes(fn, params, {k: v[:1] for k, v in data.items()}))
    except Exception as err:  # the user's model on the user's data
        raise ComputeError(f"evaluating the model on one example of --data failed: "
                           f"{type(err).__name__}: {_short(err)}; is --data shaped as the "
                           f"model expects ({_shapes(data)})?") from None
    if metric == "error" and "accuracy" not in names:
        _add_error(types.SimpleNamespace(metrics={}, metric_names=names))  # raises
    if metric == "error":
        names = sorted([*names, "error"])
    count = len(next(iter(data.values())))
    where = checkpoint if checkpoint is not None else f"{args.model} (the factory's weights)"
    print(f"jaxsurf surface: {_size_line(kinds, names, args.subsample is not None)}; "
          f"{where} on {data_text} ({count} examples) -> {out}", flush=True)

    # everything the command knows that changes the values, beyond what the store
    # fingerprints itself (params, directions, grid, data, batch size): fn's code
    data_named = args.data in NAMED_DATA
    fingerprint = {"model": args.model, "model_kwargs": kwargs,
                   "loss": None if is_function else loss,
                   "step": None if checkpoint is None else checkpoint.step,
                   "checkpoint_kind": None if checkpoint is None else
                   getattr(checkpoint, "kind", "trajectory"),
                   "data": args.data if data_named else
                   "npz" if args.data.endswith(".npz") else args.data,
                   "data_kwargs": data_kwargs, "data_keys": keys,
                   "split": args.split if data_named else None,
                   "examples": args.examples, "loader": loader.name}
    meta = {"model": args.model.partition(":")[2].split(".")[-1], "model_spec": args.model,
            "model_kwargs": kwargs, "loader": loader.name,
            "checkpoint": None if checkpoint is None else _where(checkpoint),
            "step": None if checkpoint is None else checkpoint.step, "data": data_text,
            "data_keys": keys, "loss": None if is_function else loss,
            "seed": args.seed, "command": shlex.join(["python", "-m", "jaxsurf", "surface",
                                                      *sys.argv[2:]])
            if sys.argv[1:2] == ["surface"] else None}
    options = {"batch_size": args.batch_size, "chunk_size": args.chunk_size,
               "subsample": _subsample(args.subsample), "max_points": args.max_points,
               "fingerprint": fingerprint}
    surfaces: dict[str, js.Surface] = {}

    if other is not None:
        if is_function:  # the factory's params are the template of the second end too
            model = load_model(args.model, kwargs)
        _, params_b = loader.load(model, other, data, loss, input_key=input_key,
                                  target_key=target_key)
        fingerprint["step_b"] = other.step
        # (js.interpolate records how the BatchNorm statistics move: state_policy)
        meta.update({"checkpoint_b": _where(other), "step_b": other.step})
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
        if metric == "error":
            _add_error(surface)
        target = out / f"{kind}.npz"
        try:
            path = surface.save(target)
            written = [path]
            if surface.is_plane:
                for figure in ("contour", "surface"):
                    target = outputs.beside(path, figure, ".png")
                    written.append(outputs.plot_surface(surface, figure, target,
                                                        metric=metric))
                target = outputs.beside(path, "<metric>", ".vtp")
                written.append(outputs.write_vtp(surface, path, metric=metric))
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
