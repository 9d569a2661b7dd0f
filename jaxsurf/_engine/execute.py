"""The three evaluation paths (in-memory data, a stream read once, a stream with a
store) and :func:`execute`, which validates a request and picks one.

Example:
    >>> fn = lambda p, b: jnp.mean((b["x"] * p["w"]) ** 2)
    >>> values, evaluated, facts = execute(fn, {"w": jnp.ones(())}, [{"w": jnp.ones(())}],
    ...                                    {"x": jnp.arange(4.0)}, [[0.0], [1.0]],
    ...                                    Engine(progress=False))
    >>> values["loss"].tolist(), evaluated, facts["num_examples"]
    ([3.5, 14.0], 2, 4)
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import jax
import numpy as np

from jaxsurf import _batching as batching, _distributed as distributed, _validate
from jaxsurf import _subsample as subsample_lib
from jaxsurf import _store as store_lib
from jaxsurf._engine.data import (check_data_dtypes, check_not_empty_container, layout_for,
                                  stream_length)
from jaxsurf._engine.job import Job, as_compute_dtype, check_directions, default_progress
from jaxsurf._engine.loop import ChunkFn, open_store, run_chunks
from jaxsurf._engine.memory import compile_planned
from jaxsurf._engine.metrics import Fn, with_note
from jaxsurf._engine.options import Engine
from jaxsurf._engine.plan import plan
from jaxsurf._engine.programs import sums_program, values_program
from jaxsurf._progress import ProgressTracker, make_sink
from jaxsurf._tree import PyTree

__all__ = ["execute", "evaluate_in_memory", "evaluate_stream_once", "evaluate_stream_stored"]


def evaluate_in_memory(job: Job, data: PyTree, split: batching.SplitData,
                        store_path: str | os.PathLike | None
                        ) -> tuple[dict[str, np.ndarray], int]:
    sample = split.rest if split.rest is not None else \
        jax.tree_util.tree_map(lambda x: x[0], split.full)
    names = job.metric_names(sample)
    job.check_labels(data)
    sem_names = [] if job.sem_population is None else \
        [k + subsample_lib.SEM_SUFFIX for k in names]
    store = None
    todo = np.arange(job.num_points)
    values = {k: np.zeros(job.num_points, np.float32) for k in names + sem_names}
    if store_path is not None:
        data_print = store_lib.data_fingerprint(data, split.num_examples)
        if job.sem_population is not None:
            data_print["subsample_of"] = job.sem_population
        store, todo, values = open_store(job, store_path, data_print, names + sem_names,
                                          split.batch_size)

    def make_chunk_fn() -> ChunkFn:
        layout = layout_for(split, distributed.mesh_shape(job.mesh)["data"])
        origin, directions = job.put_params()
        full = job.put_data(layout.full, job.data_spec())
        weights = job.put(layout.weights, job.data_spec())  # float32 batch sizes
        rest = job.put_data(layout.rest)
        sample = job.put_coefficients(np.zeros((job.chunk, len(job.directions)), np.float32))
        run = compile_planned(job, lambda: sums_program(job.fn, names, job, layout.rest_size),
                              (origin, directions, sample, full, weights, rest), origin,
                              directions, (full, weights, rest))

        def evaluate_chunk(coeffs: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
            sums = run(origin, directions, job.put_coefficients(coeffs), full, weights, rest)
            out = {k: (distributed.to_host(sums[k]).astype(np.float64) / layout.num_examples)
                   .astype(np.float32) for k in names}
            if job.sem_population is not None:  # subsample=: their standard errors too
                for k in sem_names:
                    out[k] = subsample_lib.standard_error(distributed.to_host(sums[k]),
                                                          layout.num_examples, job.sem_population)
            return out
        return evaluate_chunk

    return values, run_chunks(job, todo, make_chunk_fn, values, store)


def survey_stream(job: Job, data: Iterable[PyTree]) -> tuple[list[int], list[str]]:
    """One pass over a stream for its batch sizes and metric names (no evaluation)."""
    sizes, names = [], []
    for b, (batch, size) in enumerate(batching.iter_batches(data)):
        check_data_dtypes(batch, f"batch {b}")
        if not names:
            names = job.metric_names(batch)
        job.check_labels(batch, f"batch {b}")
        sizes.append(size)
    if not sizes:
        raise ValueError("data is an empty iterable (no batches); pass at least one batch")
    return sizes, names


def evaluate_stream_once(job: Job, data: Iterable[PyTree]
                          ) -> tuple[dict[str, np.ndarray], int, int]:
    """Reads the stream once (batches outer, chunks inner); no store. Returns the
    values, the points evaluated and the examples read."""
    length = stream_length(data)
    wanted = np.arange(job.num_points) if job.only is None else job.only
    chunks = job.chunks(wanted)
    sums: dict[str, np.ndarray] = {}  # filled with the first batch, with run
    total, run, origin = 0, None, None
    directions: list[PyTree] = []
    with ProgressTracker(job.sink, len(wanted)) as track:
        for b, (batch, size) in enumerate(batching.iter_batches(data)):
            check_data_dtypes(batch, f"batch {b}")
            if run is None:
                names = job.metric_names(batch)
                origin, directions = job.put_params()
                sums = {k: np.zeros(job.num_points, np.float64) for k in names}
            job.check_labels(batch, f"batch {b}")
            batch = job.put_data(batch)
            if run is None:
                run = _planned_values_program(job, names, origin, directions, batch)
            for idx, coeffs in chunks:
                out = run(origin, directions, job.put_coefficients(coeffs), batch)
                for k in sums:
                    sums[k][idx] += distributed.to_host(out[k]).astype(np.float64)[:len(idx)] \
                        * size
            total += size
            if length and b + 1 < length:  # equivalent points: share of the batches read
                track.update(len(wanted) * (b + 1) // length)
        if total == 0:
            raise ValueError("data is an empty iterable (no batches); pass at least one batch")
        track.update(len(wanted))
    return {k: (v / total).astype(np.float32) for k, v in sums.items()}, len(wanted), total


def evaluate_stream_stored(job: Job, data: Iterable[PyTree], store_path: str | os.PathLike
                            ) -> tuple[dict[str, np.ndarray], int, int]:
    """Store mode for streams: chunks outer, the stream re-read for each chunk, so
    each finished chunk is saved at once. Returns as :func:`evaluate_stream_once`."""
    _validate.reiterable(data, "store=")
    sizes, names = survey_stream(job, data)
    store, todo, values = open_store(job, store_path, store_lib.stream_fingerprint(sizes),
                                      names, "stream")
    total = sum(sizes)

    def make_chunk_fn() -> ChunkFn:
        origin, directions = job.put_params()
        programs: dict[Any, Any] = {}  # one per batch shape (the last batch may be short)

        def evaluate_chunk(coeffs: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
            sums = {k: np.zeros(len(coeffs), np.float64) for k in names}
            seen = []
            placed = job.put_coefficients(coeffs)
            for batch, size in batching.iter_batches(data):
                batch = job.put_data(batch)
                key = _shapes(batch)
                if key not in programs:
                    programs[key] = _planned_values_program(job, names, origin, directions,
                                                            batch)
                out = programs[key](origin, directions, placed, batch)
                for k in names:
                    sums[k] += distributed.to_host(out[k]).astype(np.float64) * size
                seen.append(size)
            if seen != sizes:
                raise ValueError(f"the stream gave other batch sizes on a later pass "
                                 f"({len(seen)} batches, {sum(seen)} examples) than on the "
                                 f"first ({len(sizes)} batches, {total} examples); store= "
                                 f"needs a stream that yields the same batches every pass")
            return {k: (v / total).astype(np.float32) for k, v in sums.items()}
        return evaluate_chunk

    return values, run_chunks(job, todo, make_chunk_fn, values, store), total


def _shapes(batch: PyTree) -> tuple:
    return tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree_util.tree_leaves(batch))


def _planned_values_program(job: Job, names: list[str], origin: PyTree,
                            directions: list[PyTree], batch: PyTree) -> Any:
    """The stream's chunk program, planned (memory) and compiled for ``batch``; a
    batch of another shape compiles again through the plain jitted program."""
    sample = job.put_coefficients(np.zeros((job.chunk, len(job.directions)), np.float32))
    compiled = compile_planned(job, lambda: values_program(job.fn, names, job),
                               (origin, directions, sample, batch), origin, directions, batch)
    shapes = _shapes(batch)
    fallback = values_program(job.fn, names, job)

    def run(origin: PyTree, directions: list[PyTree], coeffs: Any, batch: PyTree) -> Any:
        if _shapes(batch) == shapes:
            return compiled(origin, directions, coeffs, batch)
        with distributed.mesh_context(job.mesh):
            return fallback(origin, directions, coeffs, batch)
    return run


def execute(fn: Fn, origin: PyTree | None, directions: Sequence[PyTree], data: Any,
            coefficients: Any, engine: Engine = Engine(), *, only: np.ndarray | None = None,
            ) -> tuple[dict[str, np.ndarray], int, dict[str, Any]]:
    """:func:`evaluate_points`, also returning how many points were evaluated
    (the rest came from the store) and facts about how they were evaluated.

    ``engine`` (an :class:`~jaxsurf._engine.options.Engine`, validated when it
    was made) carries every option. ``only`` (sorted unique indices into
    ``coefficients``) evaluates just those points while a store stays keyed
    by the whole grid (used by :mod:`jaxsurf.refine`); the returned arrays are
    full length, meaningful at ``only`` (and at points the store already held).
    ``engine.fingerprint`` is mixed into a store's request and recorded in the
    facts."""
    reference = check_directions(origin, directions)
    coefficients = _validate.coefficients(coefficients, len(directions))
    _validate.point_count([len(coefficients)], "js.evaluate_points", engine.max_points)
    dtype = as_compute_dtype(engine.compute_dtype)
    check_not_empty_container(data)
    if batching.is_in_memory(data):
        data = batching.to_host_arrays(data)   # PyTorch tensors, say
    fingerprint = engine.fingerprint
    facts: dict[str, Any] = {} if fingerprint is None else {"fingerprint": fingerprint}
    if engine.subsample is not None:
        data, facts["subsample"] = subsample_lib.draw(data, engine.subsample,
                                                      engine.subsample_seed)
    split = None
    if batching.is_in_memory(data):
        split = batching.split_batches(data, engine.batch_size)
        check_data_dtypes(data)
    num_wanted = len(coefficients) if only is None else len(only)
    trees = [origin, *directions] if origin is not None else list(directions)
    names = ["params", *[f"direction {k}" for k in range(len(directions))]] \
        if origin is not None else [f"params {k}" for k in range(len(directions))]
    params_mesh = distributed.sharded_mesh(trees)
    mesh, chunk = plan(num_wanted, engine.chunk_size, engine.devices, engine.mesh, split,
                       params_mesh)
    # every sharded leaf must lie on this mesh, over its model axes, directions like params
    specs = distributed.leaf_specs(mesh, list(zip(names, trees)))
    sink = make_sink(default_progress(engine.progress, mesh))
    job = Job(with_note(fn), origin, list(directions), reference, coefficients, mesh, chunk,
              engine.points_per_step, dtype, sink,
              sem_population=facts["subsample"]["of"] if engine.subsample is not None else None,
              only=only, fingerprint=None if fingerprint is None else dict(fingerprint),
              specs=specs if distributed.model_axes(mesh) else None,
              memory_limit=engine.memory_limit)
    store = engine.store
    if split is not None:
        values, evaluated = evaluate_in_memory(job, data, split, store)
        facts["num_examples"] = split.num_examples
    elif store is not None:
        values, evaluated, facts["num_examples"] = evaluate_stream_stored(job, data, store)
    else:
        values, evaluated, facts["num_examples"] = evaluate_stream_once(job, data)
    return values, evaluated, {**job.describe(), **facts}
