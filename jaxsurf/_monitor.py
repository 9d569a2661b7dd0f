"""Surfaces during training: :class:`Monitor`, called as ``monitor(step, params)``
from any training loop.

At every ``every``-th step (or at a given list of steps) the monitor evaluates
a line or a plane through the current params on the one evaluation engine and
stores it under ``out`` with its step, plus the requested curvature numbers
(the top Hessian eigenvalue, Hutchinson's trace). :meth:`Monitor.load` reads
the records back as ``{step: Surface}``, :meth:`Monitor.load_curvature` the
curvature series; :func:`jaxsurf.plot.animate` and ``python -m jaxsurf view
OUT`` show them.

**Directions.** ``directions="fixed"`` (default) draws Gaussian directions
from ``key`` once and filter-normalizes them against the params of the first
recorded step; every later frame is a slice through that step's params along
*the same* directions, so frames share their axes and are comparable.
``"renormalized"`` keeps the same Gaussian draw but normalizes it against each
step's own params (the Li et al. convention applied per checkpoint): each frame
is scaled to its own weights, so shapes compare across training while absolute
distances do not. Either way the directions (normalized for ``"fixed"``, the
raw draw for ``"renormalized"``) are saved once in ``out/directions.npz``.

**Files** (every write through the atomic writer, :mod:`jaxsurf._io.atomic`)::

    out/monitor.json           the configuration: one jaxsurf header (format
                               "jaxsurf.monitor"), written once
    out/directions.npz         the directions (jaxsurf.save_directions)
    out/steps/step_<step>.npz  one Surface per recorded step (metadata: step,
                               curvature)

**Resuming.** A monitor made on an existing ``out`` reads what is recorded: a
restarted training run calls it again at steps already recorded, and those are
skipped (never evaluated twice, never overwritten). A monitor made with another
configuration (grid, kind, directions, metrics, curvature, key, data, batch
size, params structure ...) is refused, naming every field that differs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _batching as batching, _tree as tree, _validate
from jaxsurf._directions import normalize, random_direction
from jaxsurf._engine.options import Engine, takes_engine
from jaxsurf._evaluate import evaluate_line, evaluate_plane
from jaxsurf._io import atomic, jsonfile
from jaxsurf._io.directions import load_directions, save_directions
from jaxsurf._io.header import FORMATS, Header
from jaxsurf._progress import ProgressOption
from jaxsurf._store import data_fingerprint, differences
from jaxsurf._surface import Surface
from jaxsurf._tree import PyTree

__all__ = ["Monitor", "MonitorError", "DEFAULT_EVERY", "DEFAULT_GRIDS", "CURVATURES",
           "is_monitor_folder", "CONFIG_FILE", "STEPS_DIR"]

FORMAT = "jaxsurf.monitor"
CONFIG_FILE = "monitor.json"
DIRECTIONS_FILE = "directions.npz"
STEPS_DIR = "steps"
_STEP_FILE = re.compile(r"^step_(\d+)\.npz$")

#: The default ``every``: with the default line of 21 points on an evaluation set
#: of 1,024 examples, the overhead measured for ResNet-20 and the SmallCNN (batches
#: of 128) stays under 5 % of training time; it grows with the evaluation examples
#: times the grid points, over ``every`` (``python -m benchmarks.monitor``,
#: ``benchmarks/results/monitor.json``, ``docs/monitor.md``).
DEFAULT_EVERY = 1000
#: The default grids: 21 points on [-1, 1] for a line, 11 x 11 for a plane.
DEFAULT_GRIDS = {"line": 21, "plane": 11}
#: The curvature numbers a monitor can record, with the options each accepts.
CURVATURES = {"top_eigenvalue": ("num_iterations", "tol"), "trace": ("num_samples",)}
_CURVATURE_DEFAULTS: dict[str, dict[str, Any]] = {
    "top_eigenvalue": {"num_iterations": 30, "tol": 1e-3}, "trace": {"num_samples": 20}}
_UNSET: Any = object()


class MonitorError(ValueError):
    """A monitor folder that cannot be used: not a monitor, damaged, made for another
    configuration, or a call that breaks the monitor's rules (steps that do not
    increase, params whose structure changed)."""


def is_monitor_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a monitor's ``monitor.json``."""
    return (Path(path) / CONFIG_FILE).is_file()


# --------------------------------------------------------------------------- checks
def _as_step(step: Any) -> int:
    arr = np.asarray(step) if not isinstance(step, (bool, np.bool_)) else None
    if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iu":
        raise TypeError(f"step must be an integer (the training step), got {step!r}; call "
                        f"monitor(step, params)")
    value = int(arr.item())
    if value < 0:
        raise ValueError(f"step must be >= 0, got {value}")
    return value


def _schedule(every: Any) -> tuple[int | None, tuple[int, ...] | None]:
    """``(every, None)`` for an interval, ``(None, steps)`` for a list of steps."""
    if isinstance(every, (int, np.integer)) and not isinstance(every, (bool, np.bool_)):
        if every < 1:
            raise ValueError(f"every must be a positive integer (record every that many "
                             f"steps) or a list of steps, got {every!r}")
        return int(every), None
    if isinstance(every, (str, bytes, Mapping)) or not isinstance(every, Iterable):
        raise TypeError(f"every must be a positive integer or a list of steps, got "
                        f"{type(every).__name__}")
    steps = [_as_step(s) for s in every]
    if not steps:
        raise ValueError("every is an empty list of steps; give at least one step, or an "
                         "interval such as every=1000")
    for i in range(1, len(steps)):
        if steps[i] <= steps[i - 1]:
            raise ValueError(f"the steps in every must be strictly increasing: every[{i}] = "
                             f"{steps[i]} follows every[{i - 1}] = {steps[i - 1]}; pass e.g. "
                             f"sorted(set(steps))")
    return None, tuple(steps)


def _grid(kind: str, grid: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if grid is None:
        n = DEFAULT_GRIDS[kind]
        g = np.linspace(-1.0, 1.0, n)
        return g, (g if kind == "plane" else None)
    if kind == "plane" and isinstance(grid, (tuple, list)) and len(grid) == 2 \
            and all(np.ndim(g) == 1 for g in grid):
        return (_validate.grid(grid[0], "grid[0] (alphas)", float32=True).astype(np.float64),
                _validate.grid(grid[1], "grid[1] (betas)", float32=True).astype(np.float64))
    g = _validate.grid(grid, "grid", float32=True).astype(np.float64)
    return g, (g if kind == "plane" else None)


def _curvature(curvature: Any) -> dict[str, dict[str, Any]]:
    if curvature is None:
        return {}
    if isinstance(curvature, str):
        curvature = (curvature,)
    items = curvature.items() if isinstance(curvature, Mapping) else \
        [(name, {}) for name in curvature]
    out: dict[str, dict[str, Any]] = {}
    for name, options in items:
        if name not in CURVATURES:
            raise ValueError(f"unknown curvature {name!r}; use any of {sorted(CURVATURES)}, "
                             f"e.g. curvature=('top_eigenvalue', 'trace')")
        options = dict(options or {})
        unknown = sorted(set(options) - set(CURVATURES[name]))
        if unknown:
            raise ValueError(f"curvature {name!r} takes the options {list(CURVATURES[name])}, "
                             f"got {unknown}")
        out[name] = {**_CURVATURE_DEFAULTS[name], **options}
    return out


def _key_data(key: Any) -> tuple[jax.Array, list[int]]:
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        key = jax.random.key(int(key))
    if not isinstance(key, jax.Array):
        raise TypeError(f"key must be a jax.random.key(...) or an integer seed, got "
                        f"{type(key).__name__}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        data = jax.random.key_data(key)
    else:
        data = key
        key = jax.random.wrap_key_data(key)
    return key, np.asarray(data).ravel().tolist()


def _structure(params: PyTree) -> list[list[Any]]:
    out = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        out.append([tree.leaf_path(path), list(np.shape(leaf)),
                    str(np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype)))])
    return out


def _read_config(path: Path) -> dict[str, Any]:
    file = path / CONFIG_FILE
    try:
        stored = jsonfile.load(file, MonitorError, folder=path, what=f"the monitor file {file}")
    except FileNotFoundError:
        raise MonitorError(f"{path} is not a monitor folder: it has no {CONFIG_FILE}; record "
                           f"one with js.Monitor(fn, data, out={str(path)!r}, every=...)") \
            from None
    header = Header.parse(stored, MonitorError, str(file)).check(
        FORMAT, MonitorError, str(file),
        advice=f"; use another out=, or delete {path} to start over")
    return header.fields


def _step_files(path: Path) -> dict[int, Path]:
    folder = path / STEPS_DIR
    if not folder.is_dir():
        return {}
    found = {}
    for entry in folder.iterdir():
        match = _STEP_FILE.match(entry.name)
        if match:
            found[int(match.group(1))] = entry
    return dict(sorted(found.items()))


def _step_path(path: Path, step: int) -> Path:
    return path / STEPS_DIR / f"step_{step:010d}.npz"


# --------------------------------------------------------------------------- the monitor
class Monitor:
    """Records a slice of the loss surface through the current params during training.

    Call it as ``monitor(step, params)`` after every step of any training loop
    (plain optax, :func:`jaxsurf.train.fit` with ``monitor=``, Equinox, NNX): at
    the steps it records it evaluates the line or plane through ``params``
    (exact dataset means on the evaluation engine) and writes it to
    ``out/steps/``; at the others it returns at once.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means, the same
            ``fn`` the evaluators take. With :func:`jaxsurf.train.fit` the params
            are the whole variables (``{"params", "batch_stats"}``): build ``fn``
            with :func:`jaxsurf.flax.linen_metrics_fn`.
        data: the evaluation data: in-memory arrays (a fixed held-out set, e.g.
            2,048 examples; hashed once to fingerprint the run) or a re-iterable
            stream of batches.
        out: the folder of the records (created; an existing monitor folder is
            resumed, see the module docstring).
        every: record at steps ``0, every, 2 every, ...`` (a positive integer,
            default :data:`DEFAULT_EVERY`), or a strictly increasing list of
            steps to record.
        kind: ``"line"`` (one direction) or ``"plane"`` (two).
        grid: coordinates: a 1-D array (a plane uses it on both axes) or, for a
            plane, ``(alphas, betas)``; default 21 points (line) or 11 x 11
            (plane) on [-1, 1].
        key: random key (or an integer seed) of the directions; also seeds the
            curvature estimates (``fold_in(key, step)``).
        directions: ``"fixed"`` (drawn and filter-normalized against the first
            recorded params, the same at every step) or ``"renormalized"`` (the
            same draw, normalized against each step's params).
        measure: the metrics of ``fn`` to keep (default ``("loss",)``; a scalar
            ``fn`` returns ``"loss"``); ``<name>_sem`` too with ``subsample``.
        curvature: ``None``, or names from ``("top_eigenvalue", "trace")`` (or a
            dict name → options: ``num_iterations``/``tol`` of the Lanczos run,
            ``num_samples`` of Hutchinson's estimate) computed at the current
            params on the whole ``data`` at every record, on the first metric of
            ``measure``. Each costs tens of Hessian-vector products per record.
        progress: progress of each record's evaluation (default ``False``: a
            training loop prints its own; see :mod:`jaxsurf.progress`).
        metadata: JSON facts added to every recorded Surface's metadata.
        engine: a :class:`jaxsurf.Engine`; ``batch_size``, ``subsample``,
            ``subsample_seed``, ``compute_dtype``, ``chunk_size``, ``devices``,
            ``mesh``, ``points_per_step``, ``fingerprint`` and ``max_points``
            apply to every record (also as keywords). ``store`` is refused: the
            records are the monitor's own store.

    Returns (of a call):
        The :class:`jaxsurf.Surface` recorded at this step, or ``None`` (not a
        step to record, or recorded before).

    Raises:
        MonitorError: ``out`` was made for another configuration (every field
            that differs is named), a call whose step does not increase, or
            params whose structure, shapes or dtypes changed.

    Example:
        >>> import optax
        >>> monitor = js.Monitor(fn, data, out="runs/monitor", every=2, progress=False)
        >>> opt = optax.sgd(0.1)
        >>> state = opt.init(params)
        >>> grad = jax.jit(jax.grad(lambda p: fn(p, data)["loss"]))
        >>> for step in range(5):
        ...     _ = monitor(step, params)
        ...     updates, state = opt.update(grad(params), state)
        ...     params = optax.apply_updates(params, updates)
        >>> monitor.steps
        [0, 2, 4]
        >>> frames = js.Monitor.load("runs/monitor")
        >>> sorted(frames), frames[4].metrics["loss"].shape
        ([0, 2, 4], (21,))
    """

    @takes_engine("js.Monitor")
    def __init__(self, fn: Callable[[PyTree, Any], Any], data: Any, *,
                 out: str | os.PathLike, every: int | Sequence[int] = DEFAULT_EVERY,
                 kind: Literal["line", "plane"] = "line", grid: Any = None, key: Any = 0,
                 directions: Literal["fixed", "renormalized"] = "fixed",
                 measure: str | Sequence[str] = ("loss",),
                 curvature: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
                 progress: ProgressOption = _UNSET,
                 metadata: Mapping[str, Any] | None = None,
                 engine: Engine = Engine()) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be a function fn(params, batch), got {type(fn).__name__}")
        if engine.store is not None:
            raise ValueError("js.Monitor keeps its records in out=; it takes no store= (a "
                             "restarted run resumes from out=)")
        if kind not in ("line", "plane"):
            raise ValueError(f"kind must be 'line' or 'plane', got {kind!r}")
        if directions not in ("fixed", "renormalized"):
            raise ValueError(f"directions must be 'fixed' or 'renormalized', got "
                             f"{directions!r}")
        measure = (measure,) if isinstance(measure, str) else tuple(measure)
        if not measure or not all(isinstance(m, str) for m in measure) \
                or len(set(measure)) != len(measure):
            raise ValueError(f"measure must be distinct metric names of fn, e.g. ('loss', "
                             f"'accuracy'), got {measure!r}")
        if out is None or not isinstance(out, (str, os.PathLike)):
            raise TypeError(f"out must be a folder path, got {out!r}")
        if progress is _UNSET:
            progress = engine.progress if "progress" in engine.changed() else False
        self.fn = fn
        self.data = data
        self.out = Path(out)
        self.kind = kind
        self.mode = directions
        self.measure = measure
        self.every, self.schedule = _schedule(every)
        self.alphas, self.betas = _grid(kind, grid)
        self.key, key_data = _key_data(key)
        self.curvature = _curvature(curvature)
        self.metadata = _validate.json_safe(metadata, "metadata")
        self.engine = dataclasses.replace(engine, progress=progress)
        if batching.is_in_memory(data):
            data_facts = data_fingerprint(data, batching.num_examples(data))
        else:
            _validate.reiterable(data, "js.Monitor (it reads the data at every record)")
            data_facts = {"type": "stream",
                          "content": "a stream of batches (its values are not hashed)"}
        self._config: dict[str, Any] = {
            "kind": kind, "alphas": self.alphas.tolist(),
            "betas": None if self.betas is None else self.betas.tolist(),
            "every": self.every, "steps": None if self.schedule is None else list(self.schedule),
            "directions": directions, "normalization": "filter", "ignore": "biasbn",
            "key": key_data, "measure": list(measure),
            "curvature": self.curvature, "data": data_facts,
            "batch_size": engine.batch_size, "subsample": engine.subsample,
            "subsample_seed": engine.subsample_seed,
            "compute_dtype": None if engine.compute_dtype is None else str(
                np.dtype(engine.compute_dtype)),
            "fingerprint": None if engine.fingerprint is None else dict(engine.fingerprint),
        }
        self._config = json.loads(json.dumps(self._config))  # compared as the file holds it
        if self.out.exists() and not self.out.is_dir():
            raise MonitorError(f"out={str(self.out)!r} is a file; a monitor writes a folder")
        self._stored: dict[str, Any] | None = None
        if (self.out / CONFIG_FILE).exists():
            self._stored = _read_config(self.out)
            self._compare(self._stored, skip=("params",))
        elif self.out.is_dir() and any(not p.name.startswith(".") for p in self.out.iterdir()):
            shown = sorted(p.name for p in self.out.iterdir())[:5]
            raise MonitorError(f"{self.out} is a folder that is not a monitor's (it holds "
                               f"{shown}); pass a new or empty folder as out=")
        self._recorded = set(_step_files(self.out))
        self._last_step: int | None = None
        self._treedef: Any = None
        self._directions: list[PyTree] | None = None
        self._normalized_at: int | None = None

    # ------------------------------------------------------------------ configuration
    def _compare(self, stored: Mapping[str, Any], skip: tuple[str, ...] = (),
                 params: list | None = None) -> None:
        requested = dict(self._config)
        if params is not None:
            requested["params"] = params
        ignore = set(skip) | {"library_version", "format_version"}
        diff = differences({k: v for k, v in stored.items() if k not in ignore},
                           {k: v for k, v in requested.items() if k not in ignore})
        if diff:
            raise MonitorError(
                f"{self.out} holds a monitor run with another configuration; these fields "
                f"differ:\n  " + "\n  ".join(diff[:12])
                + ("\n  ..." if len(diff) > 12 else "")
                + f"\nIt is neither resumed nor overwritten: pass another out=, or delete "
                  f"{self.out} to start over.")

    def _open(self, params: PyTree) -> None:
        """At the first record: writes the configuration (or checks it) with the
        params' structure."""
        structure = _structure(params)
        if self._stored is None:
            self.out.mkdir(parents=True, exist_ok=True)
            header = Header.new(FORMAT, **self._config, params=structure)
            atomic.create_once(self.out / CONFIG_FILE, json.dumps(
                header.to_dict(), indent=1, sort_keys=True).encode())
            self._stored = _read_config(self.out)
        self._compare(self._stored, params=structure)

    @property
    def steps(self) -> list[int]:
        """The steps recorded in ``out`` (this run's and earlier runs')."""
        return sorted(self._recorded)

    def due(self, step: int) -> bool:
        """Whether ``step`` is one this monitor records (recorded before or not)."""
        if self.every is not None:
            return step % self.every == 0
        return step in (self.schedule or ())

    def __repr__(self) -> str:
        when = f"every={self.every}" if self.every is not None else f"steps={self.schedule}"
        return (f"Monitor(out={str(self.out)!r}, kind={self.kind!r}, {when}, directions="
                f"{self.mode!r}, recorded={len(self._recorded)})")

    # ------------------------------------------------------------------ a call
    def __call__(self, step: Any, params: PyTree) -> Surface | None:
        step = _as_step(step)
        if self._last_step is not None and step <= self._last_step:
            raise MonitorError(f"monitor steps must increase from call to call: got step "
                               f"{step} after step {self._last_step}; pass the global training "
                               f"step (a restarted run uses a new Monitor on the same out=)")
        treedef = jax.tree_util.tree_structure(params)
        if self._treedef is not None and treedef != self._treedef:
            raise MonitorError(f"the params' structure changed between calls (step {step}: "
                               f"{_short(treedef)}, before: {_short(self._treedef)}); a "
                               f"monitor follows one model: pass the same pytree every step")
        self._last_step = step
        self._treedef = treedef
        if not self.due(step) or step in self._recorded:
            return None
        if _step_path(self.out, step).exists():  # recorded meanwhile by another run
            self._recorded.add(step)
            return None
        return self._record(step, params)

    def _record(self, step: int, params: PyTree) -> Surface:
        tree.check_arrays(params, name="params")
        self._open(params)
        dirs = self._current_directions(step, params)
        extra = {**self.metadata, "step": step,
                 "monitor": {"directions": self.mode, "normalized_at_step":
                             self._normalized_at if self.mode == "fixed" else step}}
        if self.kind == "line":
            surface = evaluate_line(self.fn, params, dirs[0], self.data, self.alphas,
                                    metadata=extra, engine=self.engine)
        else:
            surface = evaluate_plane(self.fn, params, dirs[0], dirs[1], self.data, self.alphas,
                                     self.betas, metadata=extra, engine=self.engine)
        keep = {}
        for name in self.measure:
            if name not in surface.metrics:
                raise MonitorError(f"measure names {name!r}, but fn returns "
                                   f"{[m for m in surface.metrics if not m.endswith('_sem')]}; "
                                   f"pass measure= a subset of them")
            keep[name] = surface.metrics[name]
            if name + "_sem" in surface.metrics:
                keep[name + "_sem"] = surface.metrics[name + "_sem"]
        curvature = self._curvature_at(step, params)
        metadata = {**surface.metadata, "curvature": curvature}
        surface = Surface(surface.alphas, surface.betas, keep, metadata)
        path = _step_path(self.out, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():  # never overwritten
            raise MonitorError(f"step {step} was recorded in {path} while this one was "
                               f"computed (two runs on one out=?); it is not overwritten")
        surface.save(path)
        self._recorded.add(step)
        return surface

    def _current_directions(self, step: int, params: PyTree) -> list[PyTree]:
        count = 1 if self.kind == "line" else 2
        file = self.out / DIRECTIONS_FILE
        if self._directions is None:
            if file.exists():
                self._directions, saved = load_directions(file, params, with_metadata=True)
                self._normalized_at = saved.get("normalized_at_step")
            else:
                keys = jax.random.split(self.key, 2)[:count]
                raw = [random_direction(k, params) for k in keys]
                if self.mode == "fixed":
                    raw = [normalize(d, params, "filter", "biasbn") for d in raw]
                    for i, d in enumerate(raw):
                        if not float(tree.norm(d)) > 0:
                            raise MonitorError(
                                f"the filter-normalized direction {i + 1} is all zero at "
                                f"step {step}: the params are zero on every leaf it moves "
                                f"(biases and 1-D leaves are ignored); record from trained "
                                f"or initialised (non-zero) params")
                self._directions = [tree.to_numpy(d) for d in raw]
                self._normalized_at = step
                save_directions(file, *self._directions, metadata={
                    "mode": self.mode, "normalized_at_step": step if self.mode == "fixed"
                    else None, "params_fingerprint": tree.fingerprint(params)})
        directions: list[PyTree] = self._directions or []
        if self.mode == "fixed":
            return directions
        return [normalize(d, params, "filter", "biasbn") for d in directions]

    def _curvature_at(self, step: int, params: PyTree) -> dict[str, float]:
        if not self.curvature:
            return {}
        from jaxsurf import _hessian as hessian  # the measures layer: loaded on use

        metric = self.measure[0]
        key = jax.random.fold_in(self.key, step)
        out: dict[str, float] = {}
        if "top_eigenvalue" in self.curvature:
            options = self.curvature["top_eigenvalue"]
            dim = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(params))
            values, _ = hessian.top_eigenpairs(
                self.fn, params, self.data, k=1, key=key, batch_size=self.engine.batch_size,
                num_iterations=min(int(options["num_iterations"]), dim), tol=options["tol"],
                metric=metric)
            out["top_eigenvalue"] = float(values[0])
        if "trace" in self.curvature:
            estimate, sem = hessian.trace(
                self.fn, params, self.data, key=jax.random.fold_in(key, 1),
                num_samples=int(self.curvature["trace"]["num_samples"]),
                batch_size=self.engine.batch_size, metric=metric)
            out["trace"], out["trace_sem"] = estimate, sem
        return out

    # ------------------------------------------------------------------ reading
    @staticmethod
    def load(out: str | os.PathLike) -> dict[int, Surface]:
        """The records of a monitor folder, ``{step: Surface}`` in step order.

        Args:
            out: the folder a :class:`Monitor` wrote.

        Returns:
            ``{step: Surface}``; each Surface's ``metadata["step"]`` is its step and
            ``metadata["curvature"]`` its curvature numbers (``{}`` without).

        Raises:
            MonitorError: not a monitor folder, or a record whose step differs from
                its file name.

        Example:
            >>> m = js.Monitor(fn, data, out="runs/m", every=2, progress=False)
            >>> _ = [m(step, params) for step in range(5)]
            >>> frames = js.Monitor.load("runs/m")
            >>> list(frames), frames[2].metadata["step"]
            ([0, 2, 4], 2)
        """
        path = Path(out)
        _read_config(path)
        frames = {}
        for step, file in _step_files(path).items():
            surface = Surface.load(file)
            if surface.metadata.get("step") != step:
                raise MonitorError(f"{file} holds step {surface.metadata.get('step')!r}, not "
                                   f"{step}; the folder was edited by hand: move it away")
            frames[step] = surface
        return frames

    @staticmethod
    def load_curvature(out: str | os.PathLike) -> dict[str, np.ndarray]:
        """The curvature series of a monitor folder.

        Returns:
            ``{"step": int64 (n,), name: float64 (n,) ...}`` over the recorded steps,
            one entry per curvature number recorded (``"top_eigenvalue"``,
            ``"trace"``, ``"trace_sem"``); only ``"step"`` when none was.

        Example:
            >>> m = js.Monitor(fn, data, out="runs/m", every=2, curvature=("trace",),
            ...                progress=False)
            >>> _ = [m(step, params) for step in range(3)]
            >>> series = js.Monitor.load_curvature("runs/m")
            >>> series["step"].tolist(), sorted(series)
            ([0, 2], ['step', 'trace', 'trace_sem'])
        """
        frames = Monitor.load(out)
        names: list[str] = []
        for surface in frames.values():
            names += [k for k in surface.metadata.get("curvature") or {} if k not in names]
        series: dict[str, np.ndarray] = {"step": np.array(list(frames), np.int64)}
        for name in names:
            series[name] = np.array([float((s.metadata.get("curvature") or {}).get(name, np.nan))
                                     for s in frames.values()], np.float64)
        return series

    @staticmethod
    def load_directions(out: str | os.PathLike, params_like: PyTree) -> list[PyTree]:
        """The directions saved in a monitor folder (normalized for ``"fixed"``, the
        raw Gaussian draw for ``"renormalized"``), in the structure of ``params_like``.

        Example:
            >>> _ = js.Monitor(fn, data, out="runs/m", progress=False)(0, params)
            >>> (d,) = js.Monitor.load_directions("runs/m", params)
        """
        path = Path(out)
        _read_config(path)
        return load_directions(path / DIRECTIONS_FILE, params_like)

    @staticmethod
    def config(out: str | os.PathLike) -> dict[str, Any]:
        """The configuration a monitor folder was recorded with (its ``monitor.json``).

        Example:
            >>> _ = js.Monitor(fn, data, out="runs/m", kind="plane", progress=False)(0, params)
            >>> js.Monitor.config("runs/m")["kind"]
            'plane'
        """
        return _read_config(Path(out))


def _short(treedef: Any) -> str:
    text = str(treedef)
    return text if len(text) <= 120 else text[:117] + "..."


assert FORMAT in FORMATS, "jaxsurf._io.header.FORMATS names every file kind"
