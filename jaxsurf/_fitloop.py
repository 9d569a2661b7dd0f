"""The one resumable fit loop, shared by :func:`jaxsurf.train.fit` and
:func:`jaxsurf.connect.fit_curve`.

A caller supplies what differs (its epoch function, the params and state it
starts from, the settings that identify the fit) and :func:`run` does the
rest, the same way for both:

* **epochs**: ``epoch(params, state, report) -> (params, state, metrics)``
  once per epoch; the row ``{"epoch", **metrics, "seconds"}`` goes to the
  history (and ``log(describe(row))``).
* **checkpoints** (with a :class:`Folder`): after every epoch the params and
  state (typed PRNG keys saved as their key data) go to an orbax
  :class:`jaxsurf.trajectory.TrajectoryRecorder`; the epoch's log row is
  appended to ``log.jsonl`` *before* its checkpoint (a crash in between only
  leaves a row that a resume drops), whole and fsynced
  (:func:`jaxsurf._io.atomic.append_line`); a torn last line is dropped on resume.
* **resume**: a folder that holds checkpoints resumes from the last complete
  one, bit for bit as an uninterrupted run (the key and optimizer state are
  in the checkpoint). The settings file (the fingerprint of data and settings)
  must match the request; a folder made for other data or settings is
  refused, naming every field that differs (:func:`jaxsurf._store.differences`).
* **interrupts**: the log append and the checkpoint of a finished epoch are
  written with SIGINT/SIGTERM held back (:func:`jaxsurf._interrupt.deferred`),
  so a finished epoch is never lost; Ctrl-C or SIGTERM then raises
  :class:`jaxsurf.interrupt.Interrupted` saying how many epochs are saved where.
* **progress**: steps within each epoch (``progress=`` as in
  :mod:`jaxsurf.progress`, ``unit="steps"``, ``label="epoch 2/3"``).

Example:
    >>> def epoch(params, state, report):
    ...     return params - 0.5 * params, state, {"loss": float(params ** 2)}
    >>> fit = run(epoch, jnp.float32(4.0), {"step": jnp.int32(0)}, epochs=2, log=None)
    >>> [row["epoch"] for row in fit.history], float(fit.params)
    ([1, 2], 1.0)
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _tree as tree
from jaxsurf._io import atomic as _atomic, jsonfile as _json
from jaxsurf._interrupt import Interrupted, deferred, is_interrupt
from jaxsurf._progress import ProgressOption, ProgressTracker, make_sink
from jaxsurf._store import differences
from jaxsurf._tree import PyTree

__all__ = ["Folder", "Fit", "run", "check_settings", "optimizer_fingerprint",
           "describe_callable", "LOG"]

LOG = "log.jsonl"

#: ``epoch(params, state, report) -> (params, state, metrics)``; ``report(done)``
#: (``None`` without progress) counts the steps done in the epoch.
EpochFn = Callable[[PyTree, PyTree, "Callable[[int], None] | None"],
                   "tuple[PyTree, PyTree, Mapping[str, Any]]"]


@dataclass(frozen=True)
class Folder:
    """Where a fit keeps its files, and how to name them in messages.

    Attributes:
        path: the folder (created if missing).
        settings_file: the JSON file of the settings that identify the fit.
        checkpoints: the orbax folder inside ``path``.
        noun: what is fitted, for messages (``"training run"``, ``"curve"``).
        argument: the caller's argument naming ``path`` (``"out_dir"``).
        writer: who writes such folders (``"train.fit"``), for messages.
        max_to_keep: checkpoints kept (``None``: every epoch).
        save_initial: also save the starting point as step 0.
        required: settings a folder must have recorded to be resumed (a folder of
            an earlier jaxsurf without them is refused).
        added: settings an earlier jaxsurf did not record: compared only when
            the folder has them.
    """

    path: Path
    settings_file: str
    checkpoints: str
    noun: str
    argument: str
    writer: str
    max_to_keep: int | None = None
    save_initial: bool = False
    required: tuple[str, ...] = ()
    added: tuple[str, ...] = ()


@dataclass
class Fit:
    """What :func:`run` returns: the final params and state, every epoch's row
    (resumed ones included) and the seconds this call trained."""

    params: PyTree
    state: PyTree
    history: list[dict[str, Any]]
    seconds: float


# --------------------------------------------------------------------------- fingerprints
_LEAF_TYPES = (bool, int, float, str, type(None))


def describe_callable(value: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
    """A JSON description of an optax transformation (or any callable): the names of
    its functions and the constants their closures hold (learning rates, betas,
    schedule lengths), recursively. Two optimizers built the same way describe
    the same; settings kept outside closures are seen only as their type's name.

    Example:
        >>> import optax
        >>> describe_callable(optax.sgd(0.1)) == describe_callable(optax.sgd(0.2))
        False
    """
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no NaN (and NaN != NaN would refuse every resume)
    if isinstance(value, _LEAF_TYPES):
        return value
    if depth > 32 or id(value) in seen:
        return "..."
    seen = seen | {id(value)}

    def inner(x: Any) -> Any:
        return describe_callable(x, depth + 1, seen)

    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        arr = np.asarray(value)
        return inner(arr.tolist()) if arr.size <= 16 else \
            f"{arr.dtype}{list(arr.shape)}:{tree.fingerprint(arr)}"
    if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
        return [inner(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): inner(v) for k, v in value.items()}
    if isinstance(value, functools.partial):
        return {"partial": inner(value.func), "args": inner(value.args),
                "keywords": inner(value.keywords)}
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, types.MethodType):
        return {"method": inner(value.__func__), "self": inner(value.__self__)}
    wrapped = getattr(value, "__wrapped__", None)  # jitted or decorated functions
    if not isinstance(value, types.FunctionType) and wrapped is not None:
        return inner(wrapped)
    if isinstance(value, types.FunctionType):
        cells = []
        for cell in value.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # an empty cell
                cells.append(None)
        return {"fn": f"{value.__module__}.{value.__qualname__}", "closure": inner(cells),
                "defaults": inner(value.__defaults__ or ())}
    if hasattr(value, "_fields"):  # optax's GradientTransformation is a NamedTuple
        return {type(value).__qualname__: inner(tuple(value))}
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _numbers(description: Any) -> list[Any]:
    """The numbers in a :func:`describe_callable` description, in order (at most 32)."""
    found: list[Any] = []

    def walk(x: Any) -> None:
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            found.append(x)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)

    walk(description)
    return found[:32]


def optimizer_fingerprint(tx: Any) -> dict[str, Any]:
    """What identifies an optax transformation in a settings file: the numbers its
    closures hold (shown when they differ) and a hash of its whole description.

    Example:
        >>> import optax
        >>> optimizer_fingerprint(optax.sgd(0.1))["numbers"]
        [-0.1]
    """
    description = describe_callable(tx)
    return {"numbers": _numbers(description), "sha256": hashlib.sha256(
        json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:16]}


def check_settings(saved: Any, settings: Mapping[str, Any], folder: Folder,
                   unchecked: tuple[str, ...] = ("epochs",)) -> None:
    """Refuses a folder made for another fit, naming every field that differs.

    Args:
        saved: the folder's settings (from its settings file).
        settings: the request's.
        folder: the :class:`Folder` (names, required and added fields).
        unchecked: fields a resume may change (``epochs``: a resume may train on).

    Example:
        >>> where = Folder(Path("runs/c"), "fit_config.json", "checkpoints", "curve",
        ...                "checkpoint_dir", "fit_curve")
        >>> check_settings({"batch_size": 8}, {"batch_size": 16}, where)
        Traceback (most recent call last):
        ValueError: runs/c holds a curve fit with other settings or data; these differ:
          batch_size: stored 8, requested 16
        It is neither resumed nor overwritten: use another checkpoint_dir, or delete it to ...
    """
    file = folder.path / folder.settings_file
    if not isinstance(saved, Mapping):
        raise ValueError(f"{file} holds {type(saved).__name__}, not a {folder.writer} "
                         f"settings object; use another {folder.argument}")
    if any(k not in saved for k in folder.required):
        raise ValueError(f"{folder.path} holds a {folder.noun} fit by an earlier jaxsurf that "
                         f"did not record the data and optimizer it was trained with, so "
                         f"resuming it could mix two fits; use another {folder.argument} or "
                         f"delete it")
    skip = set(unchecked) | {k for k in folder.added if k not in saved}
    differs = differences({k: v for k, v in saved.items() if k not in skip},
                          {k: v for k, v in settings.items() if k not in skip})
    if differs:
        raise ValueError(f"{folder.path} holds a {folder.noun} fit with other settings or data; "
                         f"these differ:\n  " + "\n  ".join(differs)
                         + f"\nIt is neither resumed nor overwritten: use another "
                           f"{folder.argument}, or delete it to start over.")


def _read_settings(path: Path) -> Any:
    """The settings in a fit folder's settings file (``None`` if missing); only a
    regular file inside the folder is opened, and its JSON is bounded."""
    try:
        return _json.load(path, ValueError, folder=path.parent)
    except FileNotFoundError:
        return None


# --------------------------------------------------------------------------- keys
def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _storable(state: PyTree) -> PyTree:
    """``state`` with typed PRNG keys as their key data (what orbax can save)."""
    return jax.tree_util.tree_map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)


def _unstored(saved: PyTree, like: PyTree) -> PyTree:
    """The inverse of :func:`_storable`, keys wrapped as in ``like``."""
    return jax.tree_util.tree_map(
        lambda ref, x: jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref))
        if _is_key(ref) else x, like, saved)


# --------------------------------------------------------------------------- the loop
def run(epoch: EpochFn, params: PyTree, state: PyTree, *, epochs: int,
        folder: Folder | None = None, settings: Mapping[str, Any] | None = None,
        log: Callable[[str], None] | None = print,
        describe: Callable[[Mapping[str, Any]], str] = lambda row: json.dumps(dict(row)),
        resumed: Callable[[int], str] = lambda start: f"resuming after epoch {start}",
        progress: ProgressOption = False, steps: int = 0,
        start: Callable[[int], None] | None = None) -> Fit:
    """Runs ``epoch`` for epochs ``1 .. epochs``, resumably when given a ``folder``.

    Args:
        epoch: ``epoch(params, state, report) -> (params, state, metrics)``, one
            pass over the data; ``report(done)`` (``None`` without progress)
            after ``done`` of ``steps`` steps.
        params, state: where the fit starts (the checkpointed pytrees; ``state``
            may hold typed PRNG keys).
        epochs: the epochs the fit has in all.
        folder: where checkpoints, ``log.jsonl`` and the settings go (``None``:
            nothing is saved and nothing resumed).
        settings: the JSON-serialisable fingerprint of data and settings, written
            to the folder's settings file and compared on resume.
        log: called with ``describe(row)`` after every epoch, and with
            ``resumed(start)`` on a resume (``None``: silent).
        describe, resumed: the log lines.
        progress: steps within each epoch (see :mod:`jaxsurf.progress`).
        steps: steps per epoch (for progress).
        start: called once with the number of epochs already done (0, or the
            epoch a resume starts after) before the first epoch runs.

    Returns:
        :class:`Fit`.

    Raises:
        ValueError: a folder made for other settings or data, or holding more
            epochs than ``epochs``.
        jaxsurf.interrupt.Interrupted: on Ctrl-C or SIGTERM with a folder,
            after the finished epochs are saved.
    """
    history: list[dict[str, Any]] = []
    start_epoch, recorder = 0, None
    if folder is not None:
        recorder, params, state, history, start_epoch = _open(
            folder, params, state, settings or {}, epochs, log, resumed)
    if start is not None:
        start(start_epoch)
    sink = make_sink(progress)
    began = time.perf_counter()
    saved_epoch = start_epoch
    try:
        for number in range(start_epoch + 1, epochs + 1):
            t0 = time.perf_counter()
            with ProgressTracker(sink, steps, unit="steps",
                                 label=f"epoch {number}/{epochs}") as track:
                params, state, metrics = epoch(params, state,
                                               track.update if sink is not None else None)
            row = {"epoch": number, **metrics, "seconds": time.perf_counter() - t0}
            history.append(row)
            if recorder is not None and folder is not None:  # set together above
                with deferred():  # a finished epoch is written whole, then Ctrl-C lands
                    # the row first: a crash before the checkpoint leaves a row a resume drops
                    _atomic.append_line(folder.path / LOG, json.dumps(row))
                    recorder.save(number, params, state=_storable(state))
                    saved_epoch = number
            if log:
                log(describe(row))
                if log is print:  # in order with the progress lines on stderr in a log
                    sys.stdout.flush()
    except BaseException as err:  # Ctrl-C / SIGTERM: the saved epochs are the resume point
        if folder is None or isinstance(err, Interrupted) or not is_interrupt(err):
            raise
        raise Interrupted(saved_epoch, epochs, folder.path, unit="epochs") from None
    finally:  # a crash mid-run still finishes the saves in flight
        if recorder is not None:
            recorder.close()
    return Fit(params, state, history, time.perf_counter() - began)


def _open(folder: Folder, params: PyTree, state: PyTree, settings: Mapping[str, Any],
          epochs: int, log: Callable[[str], None] | None, resumed: Callable[[int], str]
          ) -> tuple[Any, PyTree, PyTree, list[dict[str, Any]], int]:
    """Checks the folder's settings, restores its last checkpoint (if any) and
    writes the settings: ``(recorder, params, state, history, start_epoch)``."""
    from jaxsurf._trajectory import TrajectoryRecorder

    path = folder.path
    path.mkdir(parents=True, exist_ok=True)
    settings = json.loads(json.dumps(dict(settings)))  # compared as the file holds it
    settings_file, log_file = path / folder.settings_file, path / LOG
    saved_settings = _read_settings(settings_file)
    if saved_settings is not None:
        check_settings(saved_settings, settings, folder)
    recorder = TrajectoryRecorder(path / folder.checkpoints, max_to_keep=folder.max_to_keep)
    history: list[dict[str, Any]] = []
    start_epoch = recorder.latest_step
    try:
        if start_epoch is not None:
            if saved_settings is None:
                raise ValueError(f"{path} holds {folder.noun} checkpoints but no "
                                 f"{folder.settings_file}, so what they were fitted for cannot "
                                 f"be checked; use another {folder.argument}")
            if start_epoch > epochs:
                lost = "its earlier epochs are not kept: " if folder.max_to_keep else ""
                raise ValueError(
                    f"{path} holds a {folder.noun} fitted for {start_epoch} epochs, more than "
                    f"epochs={epochs}; {lost}pass epochs={start_epoch} (or more, to train on) "
                    f"or use another {folder.argument}")
            restored, saved = recorder.restore(start_epoch, params_like=params,
                                               state_like=_storable(state))
            if saved is None:
                raise ValueError(f"the checkpoint of epoch {start_epoch} in {path} has no "
                                 f"state ({', '.join(_names(state))}), so it was not written "
                                 f"by {folder.writer}; pass a new {folder.argument}")
            params = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params),
                                                  jax.tree_util.tree_leaves(restored))
            state = _unstored(saved, state)
            # rows after the checkpoint (each row is logged before its checkpoint) and a
            # torn last line (see jaxsurf._io.atomic.append_line) are dropped
            history = [row for row in _atomic.read_json_lines(log_file, key="epoch")
                       if row["epoch"] <= start_epoch]
            _atomic.write_text(log_file, "".join(json.dumps(row) + "\n" for row in history))
            if log:
                log(resumed(start_epoch))
        _atomic.write_text(settings_file, json.dumps(settings, indent=1))
        if start_epoch is None and folder.save_initial:
            recorder.save(0, params, state=_storable(state))
    except BaseException:
        recorder.close()
        raise
    return recorder, params, state, history, start_epoch or 0


def _names(state: PyTree) -> list[str]:
    return [str(k) for k in state] if isinstance(state, Mapping) else [type(state).__name__]
