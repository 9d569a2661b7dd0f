"""Surface metadata, built in one place for every engine-evaluated Surface.

Example:
    >>> shared_normalization([{"normalization": "filter", "ignore": "biasbn"}] * 2)
    {'normalization': 'filter', 'ignore': 'biasbn'}
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, Callable, Mapping

import jax
import numpy as np

from jaxsurf import _validate, _batching as batching
from jaxsurf._engine.execute import execute
from jaxsurf._engine.metrics import Fn
from jaxsurf._engine.options import Engine
from jaxsurf._state import bind
from jaxsurf._version import __version__
from jaxsurf._surface import Surface
from jaxsurf._tree import PyTree

__all__ = ["LIBRARY_METADATA_KEYS", "USER_MAY_SET", "ENTRY_POINTS", "run_surface",
           "shared_normalization", "library_facts"]

LIBRARY_METADATA_KEYS = frozenset({
    "kind", "num_examples", "batch_size", "points_per_step", "num_devices", "mesh",
    "num_processes", "compute_dtype", "subsample", "nonfinite", "points_evaluated",
    "points_from_store", "store", "seconds", "seconds_per_point", "library_version",
    "jax_version", "backend", "directions", "directions_cosine", "directions_cosines",
    "params_fingerprint",
    "params_a_fingerprint", "params_b_fingerprint", "distance", "normalization", "ignore",
    "points_total", "points_exact", "points_interpolated", "interpolated", "refine",
    "model_state", "fingerprint", "memory"})


USER_MAY_SET = frozenset({"axis_labels", "title"})  # presentation hints: user wins


ENTRY_POINTS = {"line": "js.evaluate_line", "plane": "js.evaluate_plane",
                 "volume": "js.evaluate_volume", "interpolation": "js.interpolate",
                "planes": "js.evaluate_planes"}


def library_facts() -> dict[str, Any]:
    """The versions and backend every Surface records."""
    return {"library_version": __version__, "jax_version": jax.__version__,
            "backend": jax.default_backend()}


def run_surface(kind: str, fn: Fn, origin: PyTree | None, directions: list[PyTree], data: Any,
                alphas: Any, betas: Any | None, coefficients: np.ndarray,
                info: dict[str, Any], metadata: Mapping[str, Any] | None,
                gammas: Any | None = None, evaluator: Callable[..., Any] | None = None,
                engine: Engine = Engine()) -> Surface:
    """Runs ``evaluator`` (default :func:`~jaxsurf._engine.execute.execute`) with the
    options ``engine`` and builds the Surface with its metadata."""
    entry = ENTRY_POINTS.get(kind, f"js.evaluate ({kind})")
    reserved = (LIBRARY_METADATA_KEYS | set(info)) - USER_MAY_SET
    user_metadata = _validate.user_metadata(metadata, reserved, entry)  # before the work
    fn, model_state = bind(fn, origin)  # the params' own BatchNorm statistics (_state.bind)
    info = {"model_state": model_state, **info}  # an interpolation's plan says its own
    start = time.perf_counter()
    values, evaluated, where = (evaluator or execute)(fn, origin, directions, data,
                                                        coefficients, engine)
    seconds = time.perf_counter() - start
    shape = (len(alphas),) if betas is None else (len(alphas), len(betas))
    if gammas is not None:
        shape = (*shape, len(gammas))
    metrics = {k: v.reshape(shape) for k, v in values.items()}
    nonfinite = {k: int(np.size(v) - np.count_nonzero(np.isfinite(v))) for k, v in metrics.items()}
    if any(nonfinite.values()):
        warnings.warn(f"{kind}: non-finite values at {nonfinite} points (diverged loss?); they "
                      f"are kept as NaN/inf in the Surface and masked in plots", RuntimeWarning,
                      stacklevel=3)
    batch_size, store = engine.batch_size, engine.store
    n = where.pop("num_examples")  # examples each value averages (the subset's, if any)
    meta = {
        "kind": kind,
        **info,
        "num_examples": n,
        "batch_size": (batching.resolve_batch_size(batch_size, n) if batching.is_in_memory(data)
                       else "stream"),
        "points_per_step": engine.points_per_step,
        **where,
        "nonfinite": nonfinite,
        "points_evaluated": evaluated,
        "points_from_store": len(coefficients) - evaluated,
        "store": None if store is None else os.fspath(store),
        "seconds": seconds,
        "seconds_per_point": seconds / evaluated if evaluated else None,
        **library_facts(),
        **user_metadata,
    }
    return Surface(np.asarray(alphas), None if betas is None else np.asarray(betas),
                   metrics, meta, None if gammas is None else np.asarray(gammas))


def shared_normalization(descriptions: list[dict[str, Any]]) -> dict[str, Any]:
    """Top-level ``normalization``/``ignore`` when all directions agree."""
    norms = {d["normalization"] for d in descriptions}
    ignores = {d["ignore"] for d in descriptions}
    return {"normalization": norms.pop() if len(norms) == 1 else "mixed",
            "ignore": ignores.pop() if len(ignores) == 1 else "mixed"}
