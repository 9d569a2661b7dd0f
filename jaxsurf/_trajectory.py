"""The implementation of :mod:`jaxsurf.trajectory`; its public face, with the
documentation and examples, is ``jaxsurf/trajectory.py``."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any, Iterator

import jax
import numpy as np

from jaxsurf import _limits, _validate, _tree as tree
from jaxsurf._io import jsonfile
from jaxsurf._tree import PyTree

__all__ = ["TrajectoryRecorder", "load_trajectory"]

PathLike = str | os.PathLike
_ITEMS = ("params", "state")
_JSON_FILES = ("_CHECKPOINT_METADATA", "_METADATA")  # orbax's JSON, read before orbax does


# --------------------------------------------------------------------------- orbax plumbing
def _ocp() -> Any:
    """orbax.checkpoint, imported on first use (it is slow to import)."""
    import orbax.checkpoint as ocp

    return ocp


def _manager(path: Path, *, max_to_keep: int | None, create: bool) -> Any:
    """An orbax CheckpointManager with a params item and an optional state item."""
    ocp = _ocp()
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                           save_interval_steps=1)
    handlers = {name: ocp.StandardCheckpointHandler() for name in _ITEMS}
    return ocp.CheckpointManager(path, options=options, item_handlers=handlers)


def _host_target(metadata_tree: PyTree) -> PyTree:
    """A restore target from orbax metadata: numpy leaves with the saved shapes/dtypes.

    Restoring into numpy targets never consults the saved device sharding, so a
    trajectory recorded on 8 GPUs reads back on one CPU. ``np.zeros`` does not
    touch its pages, so the target costs no resident memory.
    """
    from orbax.checkpoint import metadata as ometa

    def leaf(meta: Any) -> Any:
        if isinstance(meta, ometa.ArrayMetadata):  # ScalarMetadata is a subclass
            return np.zeros(meta.shape, meta.dtype)
        return meta

    return jax.tree_util.tree_map(leaf, metadata_tree)


def _names(path: tuple) -> tuple[str, ...]:
    """A key path as plain names, so that ``.conv.weight`` (an Equinox module) and
    ``['conv']['weight']`` (how orbax stores it) compare equal."""
    out = []
    for key in path:
        for attr in ("name", "key", "idx"):
            if hasattr(key, attr):
                out.append(str(getattr(key, attr)))
                break
        else:
            out.append(str(key))
    return tuple(out)


def _check_target(like: PyTree, metadata_tree: PyTree, name: str, step: int) -> None:
    """Raises ``ValueError`` naming the first leaf of ``like`` that was not saved or
    whose shape/dtype differs from what was saved (restoring would otherwise cast
    silently). Leaves are matched by path, not by order: orbax stores containers
    as name-sorted dicts, while an Equinox module keeps its field order."""
    saved = {_names(p): meta for p, meta in jax.tree_util.tree_leaves_with_path(metadata_tree)}
    wanted = jax.tree_util.tree_leaves_with_path(like)
    if len(saved) != len(wanted):
        raise ValueError(
            f"{name} has {len(wanted)} leaves but step {step} saved {len(saved)}; pass a "
            f"{name} built like the saved tree (e.g. the model's freshly initialised params)")
    for path, got in wanted:
        meta = saved.get(_names(path))
        if meta is None:
            raise ValueError(
                f"{name} does not match step {step} at {tree.leaf_path(path)}: no such leaf "
                f"was saved (saved leaves: {['/'.join(k) for k in list(saved)[:5]]} ...); pass "
                f"a {name} built like the saved tree")
        shape, dtype = getattr(got, "shape", None), getattr(got, "dtype", None)
        if shape is None:
            continue
        if tuple(shape) != tuple(meta.shape) or np.dtype(dtype) != np.dtype(meta.dtype):
            raise ValueError(
                f"{name} does not match step {step} at {tree.leaf_path(path)}: saved shape "
                f"{tuple(meta.shape)} dtype {np.dtype(meta.dtype)}, {name} has shape "
                f"{tuple(shape)} dtype {np.dtype(dtype)}; pass a {name} with the saved "
                f"shapes and dtypes")


def _corrupt(path: Path, step: int, error: Exception) -> ValueError:
    detail = str(error)
    detail = detail if len(detail) <= 300 else detail[:300] + " ..."
    where = path / str(step) if (path / str(step)).is_dir() else f"its step directory in {path}"
    return ValueError(
        f"cannot read step {step} of the trajectory in {path} ({type(error).__name__}: "
        f"{detail}). The checkpoint is incomplete or corrupt (e.g. a run killed while writing "
        f"it): delete {where} or record that step again")


def _check_step_files(path: Path, step: int) -> None:
    """Refuses a step directory orbax should not read: an entry that is a symbolic link
    (it could stand for a file outside the trajectory), a FIFO (a reader would block)
    or a device (``/dev/zero`` never ends), and JSON metadata that is not bounded
    (:func:`jaxsurf._io.jsonfile.loads`). Raises ``ValueError`` naming the step and the entry."""
    root = path / str(step)
    try:
        _check_entries(root)
    except FileNotFoundError:
        return  # orbax names the step otherwise, or it vanished: orbax reports it
    except (ValueError, OSError) as error:
        raise _corrupt(path, step, error) from error


def _check_entries(root: Path) -> None:
    if not stat.S_ISDIR(os.lstat(root).st_mode):
        raise ValueError(f"{root} is not a directory (a symbolic link or a file)")
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            entry = Path(folder) / name
            mode = os.lstat(entry).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                raise ValueError(f"{entry} is {kind}; a trajectory holds only regular files "
                                 f"inside its folder")
            if name in _JSON_FILES and stat.S_ISREG(mode):
                jsonfile.load(entry, ValueError, folder=folder)


def _check_sizes(saved: PyTree, path: Path, step: int, item: str) -> None:
    """Refuses a leaf whose saved metadata declares more than
    :func:`jaxsurf._limits.max_read_bytes`, before anything is restored."""
    for leaf_path, meta in jax.tree_util.tree_leaves_with_path(saved):
        shape, dtype = getattr(meta, "shape", None), getattr(meta, "dtype", None)
        if shape is None or dtype is None:
            continue
        _limits.check_read_bytes(math.prod(shape) * np.dtype(dtype).itemsize, ValueError,
                                 f"step {step} of the trajectory in {path}: {item} leaf "
                                 f"{tree.leaf_path(leaf_path)} (shape {tuple(shape)}, {dtype})")


def _restore_step(manager: Any, path: Path, step: int, *, params_like: PyTree | None,
                  state_like: PyTree | None, with_state: bool) -> tuple[PyTree, PyTree | None]:
    """Restores ``(params, state)`` of one step; ``state`` is None when not saved."""
    ocp = _ocp()
    _check_step_files(path, step)
    try:
        metadata = manager.item_metadata(step)
        meta = {name: metadata[name] for name in _ITEMS if name in metadata}
    except Exception as error:  # orbax raises many types for damaged files
        raise _corrupt(path, step, error) from error
    if meta.get("params") is None:
        raise _corrupt(path, step, FileNotFoundError("no params item in this checkpoint"))
    has_state = meta.get("state") is not None
    if state_like is not None and not has_state:
        raise ValueError(f"step {step} in {path} was saved without state; "
                         f"restore it with state_like=None")
    targets = {"params": (params_like, meta["params"].tree, "params_like")}
    if with_state and has_state:
        targets["state"] = (state_like, meta["state"].tree, "state_like")
    args = {}
    for name, (like, saved, like_name) in targets.items():
        _check_sizes(saved, path, step, name)
        if like is not None:
            _check_target(like, saved, like_name, step)
        target = _scalars_as_arrays(like) if like is not None else _host_target(saved)
        args[name] = ocp.args.StandardRestore(target)
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**args))
    except Exception as error:
        if params_like is not None or state_like is not None:
            raise ValueError(
                f"cannot restore step {step} of {path} into the given params_like/state_like "
                f"({type(error).__name__}: {str(error)[:300]}); check their leaf types, or "
                f"restore without them to see what was saved") from error
        raise _corrupt(path, step, error) from error
    out = {name: restored[name] if like is None else _scalars_back(like, restored[name])
           for name, (like, _, _) in targets.items()}
    return out["params"], out.get("state")


def _scalars_as_arrays(like: PyTree) -> PyTree:
    """numpy scalars (``np.int32(3)``) are not orbax restore targets; 0-d arrays are."""
    return jax.tree_util.tree_map(
        lambda x: np.zeros((), x.dtype) if isinstance(x, np.generic) else x, like)


def _scalars_back(like: PyTree, restored: PyTree) -> PyTree:
    return jax.tree_util.tree_map(
        lambda x, r: x.dtype.type(np.asarray(r)[()]) if isinstance(x, np.generic) else r,
        like, restored)


def _existing_dir(path: PathLike) -> Path:
    p = Path(path).expanduser().absolute()
    if not p.is_dir():
        what = "is a file, not a directory" if p.exists() else "does not exist"
        raise FileNotFoundError(
            f"no trajectory at {p}: it {what}. Record one with "
            f"js.TrajectoryRecorder({str(path)!r}).save(step, params)")
    return p


def _pick_step(steps: list[int], step: int | None, path: Path) -> int:
    if not steps:
        raise ValueError(f"the trajectory in {path} holds no recorded steps; save some with "
                         f"TrajectoryRecorder.save(step, params) first")
    if step is None:
        return steps[-1]
    if int(step) not in steps:
        shown = steps if len(steps) <= 8 else steps[:4] + ["..."] + steps[-3:]
        raise ValueError(f"step {step} is not recorded in {path}; recorded steps: {shown}")
    return int(step)


# --------------------------------------------------------------------------- recorder
class TrajectoryRecorder:
    """Saves params (and optional extra state) once per step with orbax-checkpoint.

    Args:
        path: directory of the trajectory; created if missing. Reopening a
            directory that already holds steps continues it (``steps`` lists
            them; new steps must be larger than ``latest_step``).
        max_to_keep: keep only the newest this many steps (orbax deletes older
            ones); ``None`` keeps every step, which PCA of the path needs.

    Example:
        >>> import optax
        >>> stats, opt_state = variables["batch_stats"], optax.adam(1e-3).init(params)
        >>> rec = js.TrajectoryRecorder("runs/traj")
        >>> rec.save(0, params, state={"batch_stats": stats, "opt": opt_state})
        >>> rec.close()
        >>> with js.TrajectoryRecorder("runs/traj") as rec:
        ...     params, state = rec.restore(
        ...         params_like=params, state_like={"batch_stats": stats, "opt": opt_state})
        >>> type(state["opt"]) is type(opt_state)       # optax's NamedTuples come back
        True
    """

    def __init__(self, path: PathLike, *, max_to_keep: int | None = None) -> None:
        if max_to_keep is not None:
            _validate.positive_int(max_to_keep, "max_to_keep")
        self.path = Path(path).expanduser().absolute()
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"cannot record a trajectory in {self.path}: it is a file; "
                                  f"give a directory path")
        self.path.mkdir(parents=True, exist_ok=True)
        self._manager = _manager(self.path, max_to_keep=max_to_keep, create=True)
        self._closed = False

    def _open(self) -> Any:
        if self._closed:
            raise ValueError(f"this TrajectoryRecorder of {self.path} is closed; open a new "
                             f"one with js.TrajectoryRecorder({str(self.path)!r})")
        return self._manager

    @property
    def steps(self) -> list[int]:
        """The recorded steps, ascending (including a save still being written)."""
        return sorted(int(s) for s in self._open().all_steps())

    @property
    def latest_step(self) -> int | None:
        """The largest recorded step, or ``None`` for an empty trajectory."""
        steps = self.steps
        return steps[-1] if steps else None

    def save(self, step: int, params: PyTree, *, state: PyTree | None = None) -> None:
        """Writes ``params`` (and ``state``) as step ``step``, asynchronously.

        Every call writes a checkpoint: if the previous save is still being
        written, this one waits for it (never skips). Numpy leaves are copied
        before returning, so the caller may modify them in place afterwards.

        Args:
            step: a non-negative integer larger than every recorded step.
            params: pytree of arrays.
            state: optional extra pytree (BatchNorm statistics, optimizer state,
                counters) restored by :meth:`restore`.

        Returns:
            None.

        Example:
            >>> import optax
            >>> opt_state = optax.sgd(0.1).init(params)
            >>> with js.TrajectoryRecorder("runs/traj") as rec:
            ...     for epoch in range(2):
            ...         rec.save(epoch, params, state={"opt": opt_state, "epoch": epoch})
            ...     rec.steps
            [0, 1]
        """
        manager = self._open()
        step = self._check_step(step)
        items = {"params": params} if state is None else {"params": params, "state": state}
        ocp = _ocp()
        args = ocp.args.Composite(**{
            name: ocp.args.StandardSave(jax.tree_util.tree_map(_snapshot, value))
            for name, value in items.items()})
        # force=True: bypass orbax's save-decision policy (interval, "save in
        # progress" skipping); save() itself waits for the previous save.
        if not manager.save(step, args=args, force=True):
            raise RuntimeError(f"orbax declined to save step {step} in {self.path}")

    def _check_step(self, step: Any) -> int:
        _validate.non_negative_int(step, "step")
        latest = self.latest_step
        if latest is not None and int(step) <= latest:
            raise ValueError(
                f"step {int(step)} is not after the latest recorded step {latest} in "
                f"{self.path}; steps must increase (resuming? continue from step {latest + 1}, "
                f"or record into a new directory)")
        return int(step)

    def restore(self, step: int | None = None, *, params_like: PyTree | None = None,
                state_like: PyTree | None = None) -> tuple[PyTree, PyTree | None]:
        """Reads one recorded step back (waiting for a save in flight first).

        Args:
            step: which step; ``None`` is the latest.
            params_like, state_like: target pytrees (arrays or
                ``jax.ShapeDtypeStruct``) giving the container types, leaf types
                and shardings to restore into; shapes and dtypes must match.
                ``None`` restores host numpy arrays in orbax's dict/list form.

        Returns:
            ``(params, state)``; ``state`` is ``None`` if the step has none.

        Example:
            >>> import optax
            >>> opt = optax.sgd(0.1)
            >>> with js.TrajectoryRecorder("runs/traj") as rec:
            ...     rec.save(0, params, state={"opt": opt.init(params), "epoch": 0})
            ...     params, state = rec.restore(params_like=params,
            ...                                 state_like={"opt": opt.init(params), "epoch": 0})
            >>> int(state["epoch"])
            0
        """
        manager = self._open()
        self.wait()
        step = _pick_step(self.steps, step, self.path)
        return _restore_step(manager, self.path, step, params_like=params_like,
                             state_like=state_like, with_state=True)

    def wait(self) -> None:
        """Blocks until every save has been written to disk."""
        self._open().wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases orbax's resources (idempotent)."""
        if not self._closed:
            self._manager.wait_until_finished()
            self._manager.close()
            self._closed = True

    def __enter__(self) -> "TrajectoryRecorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self.steps)} steps"
        return f"TrajectoryRecorder({str(self.path)!r}, {state})"


def _snapshot(leaf: Any) -> Any:
    """Copies mutable numpy leaves so an async save cannot see later in-place updates."""
    return np.array(leaf, copy=True) if isinstance(leaf, np.ndarray) else leaf


# --------------------------------------------------------------------------- reading
class TrajectoryReader:
    """Random access to the params of a recorded trajectory (used by PCA)."""

    def __init__(self, path: PathLike, *, params_like: PyTree | None = None) -> None:
        self.path = _existing_dir(path)
        self.params_like = params_like
        self._manager = _manager(self.path, max_to_keep=None, create=False)
        self.steps = sorted(int(s) for s in self._manager.all_steps())
        if not self.steps:
            self._manager.close()
            raise ValueError(
                f"the directory {self.path} holds no recorded steps (no orbax step "
                f"directories); record a trajectory into it with js.TrajectoryRecorder")

    def template(self) -> PyTree:
        """Zero-filled (untouched, so free) numpy arrays shaped like the first step's params,
        read from orbax's metadata without loading the checkpoint."""
        if self.params_like is not None:
            return self.params_like
        step = self.steps[0]
        _check_step_files(self.path, step)
        try:
            meta = self._manager.item_metadata(step)["params"].tree
        except Exception as error:
            raise _corrupt(self.path, step, error) from error
        _check_sizes(meta, self.path, step, "params")
        return _host_target(meta)

    def params(self, step: int) -> PyTree:
        params, _ = _restore_step(self._manager, self.path, step, params_like=self.params_like,
                                  state_like=None, with_state=False)
        return params

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> "TrajectoryReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def load_trajectory(path: PathLike, *, params_like: PyTree | None = None
                    ) -> Iterator[tuple[int, PyTree]]:
    """Yields the recorded ``(step, params)`` in step order, one checkpoint at a time.

    The directory is checked when this is called (not at the first ``next``).

    Args:
        path: a directory written by :class:`TrajectoryRecorder`.
        params_like: optional target pytree (see :meth:`TrajectoryRecorder.restore`);
            default: host numpy arrays in orbax's dict/list form.

    Returns:
        An iterator of ``(step, params)``.

    Raises:
        FileNotFoundError: ``path`` is not a directory.
        ValueError: no steps recorded, or a step cannot be read (the message
            names the step).

    Example:
        >>> for step, params in js.load_trajectory(trajectory):
        ...     print(step, sorted(params))
        0 ['Dense_0', 'Dense_1']
        1 ['Dense_0', 'Dense_1']
        2 ['Dense_0', 'Dense_1']
        3 ['Dense_0', 'Dense_1']
        4 ['Dense_0', 'Dense_1']
        5 ['Dense_0', 'Dense_1']
    """
    TrajectoryReader(path, params_like=params_like).close()  # fail now on a bad directory

    def generate() -> Iterator[tuple[int, PyTree]]:
        with TrajectoryReader(path, params_like=params_like) as reader:
            for step in reader.steps:
                yield step, reader.params(step)

    return generate()
