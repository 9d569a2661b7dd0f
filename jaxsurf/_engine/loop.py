"""The chunk loop (progress, interrupts, the ``only=`` subset) and opening stores.

Example:
    >>> from jaxsurf._engine.options import Engine
    >>> from jaxsurf._engine.pointwise import execute_pointwise
    >>> w = {"w": jnp.zeros(2)}
    >>> values, done, _ = execute_pointwise(lambda i, device: {"i": float(i)}, ["i"],
    ...                                     w, [w], [[0.0], [1.0]], {},
    ...                                     engine=Engine(progress=False))
    >>> done, values["i"].tolist()   # run_chunks ran two chunks of one point
    (2, [0.0, 1.0])
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np

from jaxsurf import _distributed as distributed, _interrupt as interrupt
from jaxsurf import _store as store_lib
from jaxsurf._engine.job import Job
from jaxsurf._progress import ProgressTracker
from jaxsurf._store import PointStore, StoreError

__all__ = ["ChunkFn", "run_chunks", "write_chunk", "create_store", "open_store"]


# (padded chunk coefficients, the grid indices of its points) -> {name: values}
ChunkFn = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]


def run_chunks(job: Job, todo: np.ndarray, make_chunk_fn: Callable[[], ChunkFn],
                values: dict[str, np.ndarray], store: PointStore | None) -> int:
    """Evaluates the points ``todo`` chunk by chunk, in grid order, writing each
    finished chunk into ``values`` and the store; returns the points evaluated."""
    done = 0
    wanted, in_store = job.num_points, job.num_points - len(todo)
    if job.only is not None:  # a subset of the grid (refine=): the store keys the full grid
        todo, wanted = todo[np.isin(todo, job.only)], len(job.only)
    stored = wanted - len(todo)
    with ProgressTracker(job.sink, len(todo), stored=stored,
                         devices=int(job.mesh.devices.size)) as track:
        try:
            evaluate_chunk: ChunkFn | None = None  # built at the first chunk, if any
            for idx, coeffs in job.chunks(todo):
                if evaluate_chunk is None:
                    evaluate_chunk = make_chunk_fn()
                out = evaluate_chunk(coeffs, idx)
                finished = {k: v[:len(idx)] for k, v in out.items()}
                for k, v in finished.items():
                    values[k][idx] = v
                with interrupt.deferred():  # a finished chunk is saved (and counted) whole
                    if store is not None:
                        write_chunk(store, idx, finished, in_store + done, job.num_points)
                    done += len(idx)
                track.update(done)
        except BaseException as err:  # Ctrl-C / SIGTERM: say what is safe, and where
            if store is None or not interrupt.is_interrupt(err):
                raise
            raise interrupt.Interrupted(in_store + done, job.num_points, store.path) from None
    return done


def write_chunk(store: PointStore, idx: np.ndarray, finished: dict[str, np.ndarray],
                saved: int, total: int) -> None:
    """``store.write``; a failed write (a full disk, say) raises an ``OSError`` of the
    same ``errno`` that names the store and says how many points are safe in it."""
    try:
        store.write(idx, finished)
    except OSError as err:
        raise OSError(err.errno, f"{err.strerror or err} while saving {len(idx)} finished "
                                 f"points to the store {store.path}; {saved}/{total} points "
                                 f"are saved there: free space (or move the store) and run the "
                                 f"same call again to resume") from err


def create_store(path: str | os.PathLike, request: dict[str, Any]) -> PointStore:
    """``PointStore.open``; a failed write of the new store's folder or request (a
    full disk, say) raises an ``OSError`` of the same ``errno`` naming the store."""
    try:
        return PointStore.open(path, request)
    except OSError as err:
        raise OSError(err.errno, f"{err.strerror or err} while creating the store {path} "
                                 f"(no points are saved yet): free space or pass another "
                                 f"store path") from err


def open_store(job: Job, path: str | os.PathLike, data_print: dict[str, Any],
                names: list[str], batch_size: int | str
                ) -> tuple[PointStore | None, np.ndarray, dict[str, np.ndarray]]:
    """Opens the store for this request; returns it, the points to do and the values.

    When the mesh spans processes, process 0 alone opens, reads and writes the
    store, and the others receive what it read (the store returned to them is
    ``None``), so every process evaluates the same points.
    """
    request = store_lib.make_request(job.origin, job.directions, job.coefficients, data_print,
                                     names, batch_size,
                                     compute_dtype=None if job.compute_dtype is None
                                     else str(job.compute_dtype), fingerprint=job.fingerprint)
    if not job.spans_processes:
        store = create_store(path, request)
        done, values = store.read()
        return store, np.flatnonzero(~done), values
    store, error = None, None
    done = np.zeros(job.num_points, bool)
    values = {k: np.zeros(job.num_points, np.float32) for k in names}
    if jax.process_index() == 0:
        try:
            store = create_store(path, request)
            done, values = store.read()
        except Exception as err:  # raised below, after the others learn of it
            error = err
    ok, done, values = distributed.broadcast_from_first(
        (np.int32(error is None), done.astype(np.int32), values), job.mesh)
    if error is not None:
        raise error
    if not ok:
        raise StoreError(f"process 0 could not open the store {path}; see its error")
    return store, np.flatnonzero(done == 0), {k: np.array(v) for k, v in values.items()}
