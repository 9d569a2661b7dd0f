"""The implementation of :mod:`jaxsurf.evaluate`; its public face, with the
documentation and examples, is ``jaxsurf/evaluate.py``."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from jaxsurf import _validate, _tree as tree
from jaxsurf._engine.execute import execute
from jaxsurf._engine.job import check_integer_leaves
from jaxsurf._engine.means import dataset_mean
from jaxsurf._engine.metadata import (LIBRARY_METADATA_KEYS, USER_MAY_SET, run_surface,
                                      shared_normalization)
from jaxsurf._engine.options import Engine, takes_engine
from jaxsurf._engine.plan import DEFAULT_CHUNK_SIZE
from jaxsurf._state import bind, interpolate_recomputed, plan_interpolation
from jaxsurf._directions import describe_direction
from jaxsurf._surface import Surface
from jaxsurf._tree import PyTree

__all__ = ["evaluate_points", "evaluate_line", "evaluate_plane", "evaluate_planes",
           "evaluate_volume",
           "interpolate", "dataset_mean", "Engine", "DEFAULT_CHUNK_SIZE"]

Fn = Callable[[PyTree, PyTree], Any]


def _as_grid(values: Any, name: str) -> np.ndarray:
    """A non-empty, strictly increasing 1-D array of real coordinates that stay
    finite and distinct in float32 (see :func:`jaxsurf._validate.grid`)."""
    return _validate.grid(values, name, float32=True)


@takes_engine("js.evaluate_points")
def evaluate_points(fn: Fn, origin: PyTree | None, directions: Sequence[PyTree], data: Any,
                    coefficients: Any, *, engine: Engine = Engine()) -> dict[str, np.ndarray]:
    """Exact dataset means of ``fn`` at ``origin + sum_k coefficients[p, k] * directions[k]``.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalars, each the mean
            over the batch.
        origin: params pytree at coordinates 0, or ``None`` for a pure
            combination of ``directions`` (used by :func:`interpolate`).
        directions: pytrees shaped like the params.
        data: an array or dict/tuple of arrays with a shared leading axis
            (kept on the device), or an iterable of such batches (read once;
            with ``store``, read once more per chunk, so it must be
            re-iterable).
        coefficients: finite array ``(num_points, len(directions))``.
        engine: the options below as one :class:`jaxsurf.Engine` (frozen,
            validated when made). Each option may also be given as a keyword,
            as before; a keyword given together with ``engine=`` overrides that
            field.
        batch_size: examples per batch for in-memory data (default
            ``min(n, 512)``); ignored for streams. With data parallelism each
            device evaluates whole batches of this size.
        points_per_step: points evaluated together with ``vmap`` (1: one
            after another, the measured best for conv nets on CPU).
        chunk_size: points per jitted call, over all devices (default 32
            per device of the points axis); also how often ``store`` saves
            and ``progress`` reports. The points axis of the planned mesh
            divides it (the other devices split the data); with a stream or
            a given ``mesh`` it is rounded down to a multiple of the points
            axis.
        devices: devices to spread the work over (default ``jax.devices()``:
            every local device, and after ``jax.distributed.initialize`` the
            devices of every process; each process then evaluates its share
            and every process gets all values). Points are split over the
            devices; with few points (fewer than devices, or a handful that
            divide badly over them), the batches of in-memory data are split
            too (data parallelism, see :func:`jaxsurf.distributed.plan_mesh`).
        mesh: instead of ``devices``, a ``jax.sharding.Mesh`` with axes
            ``"points"`` and/or ``"data"`` that fixes the split.
        compute_dtype: e.g. ``jnp.bfloat16``: the combined params and the
            float leaves of the data are cast to it before ``fn`` is called
            (the combination itself and the sums stay float32). Flax modules
            compute in their own ``dtype``; build them with
            ``dtype=jnp.bfloat16`` too. ``None`` (default): as given.
        progress: ``None`` (a bar on stderr when it is a terminal), ``True``,
            ``False``, or a callable taking a :class:`jaxsurf.progress.ProgressInfo`
            (called at the start and after every chunk).
        store: a directory that keeps every finished chunk (see
            :mod:`jaxsurf.store`); calling again with the same request
            evaluates only the missing points. A store made for another
            request raises :class:`jaxsurf.store.StoreMismatchError`. On a
            mesh over several processes, process 0 reads and writes it.
        subsample: evaluate every point on the same ``subsample`` examples (an
            int, or a float in (0, 1] for that fraction) of in-memory data,
            drawn at random without replacement with ``subsample_seed``, and
            add ``<metric>_sem``, the standard error of each value as an
            estimate of the full-data mean (see
            :mod:`jaxsurf.subsample`; ``fn`` is then also called on single
            examples under ``vmap``).
        subsample_seed: the seed of that draw (default 0).
        fingerprint: a JSON-serialisable dict that identifies what the library
            cannot see, mixed into a ``store``'s request and recorded in the
            metadata. A store fingerprints the params, directions, grid, data,
            metric names, batch size and compute dtype, but **not** ``fn``'s
            code (the model, the loss): change those and reuse a store, and
            say so here, e.g. ``fingerprint={"model": "v2", "loss": "mse"}``;
            a store made with another fingerprint is refused.
        max_points: the most points this call may evaluate (default: the
            environment variable ``JAXSURF_MAX_POINTS``, else 250,000). A larger
            grid is refused before anything is allocated, with the memory it
            would take.

    Returns:
        ``{metric name: float32 array (num_points,)}``; with ``subsample``
        also ``{metric name + "_sem": ...}``.

    Example:
        >>> vals = js.evaluate_points(fn, params, [d1], data, np.array([[0.], [0.5]]))
    """
    fn, _ = bind(fn, origin)  # the origin's own BatchNorm statistics (jaxsurf._state.bind)
    values, _, _ = execute(fn, origin, directions, data, coefficients, engine)
    return values


@takes_engine("js.evaluate_line")
def evaluate_line(fn: Fn, params: PyTree, direction: PyTree, data: Any, alphas: Any, *,
                  metadata: Mapping[str, Any] | None = None, filter_axis: Any = None,
                  engine: Engine = Engine()) -> Surface:
    """Metrics along the line ``params + alpha * direction``.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means.
        params: the centre (alpha = 0).
        direction: pytree shaped like ``params`` (e.g. filter-normalized).
        data: in-memory arrays or an iterable of batches (see
            :func:`evaluate_points`).
        alphas: finite 1-D coordinates.
        batch_size: examples per batch.
        metadata: extra JSON-serialisable facts to keep (e.g. ``{"seed": 0}``).
        store: directory that keeps finished points; rerunning the same call
            resumes (see :func:`evaluate_points` and ``docs/robustness.md``).
        progress: ``None`` (bar when stderr is a terminal), ``True``, ``False``
            or a callable taking a :class:`jaxsurf.progress.ProgressInfo`.
        filter_axis: the layout the direction's normalization is checked and
            recorded against (as in :func:`jaxsurf.normalize`; default inferred).
        points_per_step, chunk_size, devices, mesh, compute_dtype, subsample,
            subsample_seed, fingerprint, max_points, engine: as in
            :func:`evaluate_points` (every option also a field of :class:`jaxsurf.Engine`).

    Returns:
        A line :class:`Surface`; ``metrics[name][i]`` is at ``alphas[i]``.
        ``metadata["points_evaluated"]`` counts the points this call
        evaluated (the others came from the store).

    Example:
        >>> line = js.evaluate_line(fn, params, d, data, np.linspace(-1, 1, 51),
        ...                         store="runs/line")
    """
    alphas = _as_grid(alphas, "alphas")
    _validate.point_count([len(alphas)], "js.evaluate_line", engine.max_points)
    tree.check_like(direction, params)
    info = {"directions": [describe_direction(direction, params, filter_axis=filter_axis)],
            "params_fingerprint": tree.fingerprint(params)}
    info.update(shared_normalization(info["directions"]))
    return run_surface("line", fn, params, [direction], data, alphas, None,
                        alphas[:, None], info, metadata, engine=engine)


@takes_engine("js.evaluate_plane")
def evaluate_plane(fn: Fn, params: PyTree, d1: PyTree, d2: PyTree, data: Any, alphas: Any,
                   betas: Any, *, metadata: Mapping[str, Any] | None = None,
                   filter_axis: Any = None, refine: Any = None,
                   engine: Engine = Engine()) -> Surface:
    """Metrics on the plane ``params + alpha * d1 + beta * d2``.

    Args:
        fn, params, data, batch_size, metadata, store, progress, filter_axis,
            points_per_step, chunk_size, devices, mesh, compute_dtype, subsample,
            subsample_seed, fingerprint, max_points, engine: as in :func:`evaluate_line`.
        d1, d2: directions shaped like ``params``.
        alphas, betas: finite 1-D coordinates along ``d1`` and ``d2``.
        refine: ``None`` (every point evaluated) or a :class:`jaxsurf.Refine`:
            evaluate a coarse sub-grid, then only where interpolation misses
            by more than ``tol``; the other points are interpolated and
            flagged in ``surface.evaluated`` (see :mod:`jaxsurf.refine`). A
            ``store`` is keyed by the full grid, so an exact run later reuses
            the refined run's points.

    Returns:
        A plane :class:`Surface`: ``metrics[name][i, j]`` is the value at
        ``(alphas[i], betas[j])``, shape ``(len(alphas), len(betas))``.

    Example:
        >>> d1, d2 = js.random_plane(jax.random.key(0), params)
        >>> s = js.evaluate_plane(fn, params, d1, d2, data, np.linspace(-1, 1, 21),
        ...                       np.linspace(-1, 1, 21), metadata={"seed": 0},
        ...                       store="runs/plane")
    """
    alphas = _as_grid(alphas, "alphas")
    betas = _as_grid(betas, "betas")
    _validate.point_count([len(alphas), len(betas)], "js.evaluate_plane", engine.max_points)
    tree.check_like(d1, params, name="d1")
    tree.check_like(d2, params, name="d2")
    grid_a, grid_b = np.meshgrid(alphas, betas, indexing="ij")
    coefficients = np.stack([grid_a.ravel(), grid_b.ravel()], axis=1)
    descriptions = [describe_direction(d, params, filter_axis=filter_axis) for d in (d1, d2)]
    cosine = float(tree.dot(d1, d2) / (tree.norm(d1) * tree.norm(d2) + 1e-30))
    info = {"directions": descriptions, "directions_cosine": cosine,
            "params_fingerprint": tree.fingerprint(params),
            **shared_normalization(descriptions)}
    run = run_surface
    if refine is not None:
        from jaxsurf import _refine as refine_lib  # imports this module: loaded on use
        run = refine_lib.runner(refine, alphas, betas)
    return run("plane", fn, params, [d1, d2], data, alphas, betas, coefficients,
               info, metadata, engine=engine)


@takes_engine("js.evaluate_planes")
def evaluate_planes(fn: Fn, params: PyTree, planes: Sequence[tuple[PyTree, PyTree]], data: Any,
                    alphas: Any, betas: Any, *, metadata: Mapping[str, Any] | None = None,
                    filter_axis: Any = None, engine: Engine = Engine()) -> list[Surface]:
    """Metrics on several planes ``params + alpha * d1_p + beta * d2_p`` in one run.

    The planes (e.g. from :func:`jaxsurf.random_planes`) are evaluated as one
    request of the engine: one compilation, one progress bar, and one
    ``store`` holding every plane's points, so an interrupted run resumes
    where it stopped, whichever plane that was. Each value equals what
    :func:`evaluate_plane` gives for that plane alone (the other planes'
    directions enter with coefficient exactly 0). The directions of every
    plane are on the device together: ``2 * len(planes)`` copies of the params.

    Args:
        fn, params, data, batch_size, metadata, store, progress, filter_axis,
            points_per_step, chunk_size, devices, mesh, compute_dtype, subsample,
            subsample_seed, fingerprint, max_points, engine: as in
            :func:`evaluate_plane` (``max_points`` counts the points of all planes).
        planes: a sequence of ``(d1, d2)`` pairs, each shaped like ``params``.
        alphas, betas: the grid of every plane (finite, strictly increasing).

    Returns:
        One plane :class:`Surface` per plane, in order: ``metrics[name][i, j]``
        at ``(alphas[i], betas[j])``. Each has its own directions and
        normalization in the metadata, plus ``plane_index`` and ``num_planes``;
        ``points_evaluated``, ``points_from_store`` and ``seconds`` count the
        whole run (all planes).

    Example:
        >>> planes = js.random_planes(jax.random.key(0), params, 3)
        >>> grid = np.linspace(-1, 1, 5)
        >>> surfaces = js.evaluate_planes(fn, params, planes, data, grid, grid,
        ...                               store="runs/planes")
        >>> len(surfaces), surfaces[2].metrics["loss"].shape
        (3, (5, 5))
    """
    alphas = _as_grid(alphas, "alphas")
    betas = _as_grid(betas, "betas")
    planes = _check_planes(planes, params)
    k = len(planes)
    _validate.point_count([k, len(alphas), len(betas)], "js.evaluate_planes", engine.max_points)
    directions = [d for plane in planes for d in plane]
    # points ordered (i, j, plane), the plane fastest: the run is a (n, m, k) "volume"
    grid_a, grid_b, which = np.meshgrid(alphas, betas, np.arange(k), indexing="ij")
    coefficients = np.zeros((grid_a.size, 2 * k), np.float64)
    rows = np.arange(grid_a.size)
    coefficients[rows, 2 * which.ravel()] = grid_a.ravel()
    coefficients[rows, 2 * which.ravel() + 1] = grid_b.ravel()
    descriptions = [describe_direction(d, params, filter_axis=filter_axis) for d in directions]
    info = {"directions": descriptions, "params_fingerprint": tree.fingerprint(params),
            "num_planes": k, "plane_index": None, "directions_cosine": None,
            **shared_normalization(descriptions)}
    run = run_surface("planes", fn, params, directions, data, alphas, betas, coefficients,
                      info, metadata, gammas=np.arange(k, dtype=np.float64), engine=engine)
    surfaces = []
    for p, (d1, d2) in enumerate(planes):
        metrics = {name: np.ascontiguousarray(v[:, :, p]) for name, v in run.metrics.items()}
        own = descriptions[2 * p:2 * p + 2]
        cosine = float(tree.dot(d1, d2) / (tree.norm(d1) * tree.norm(d2) + 1e-30))
        nonfinite = {name: int(v.size - np.count_nonzero(np.isfinite(v)))
                     for name, v in metrics.items()}
        meta = {**run.metadata, "kind": "plane", "directions": own,
                "directions_cosine": cosine, "plane_index": p, "nonfinite": nonfinite,
                **shared_normalization(own)}
        surfaces.append(Surface(run.alphas, run.betas, metrics, meta))
    return surfaces


def _check_planes(planes: Any, params: PyTree) -> list[tuple[PyTree, PyTree]]:
    """``planes`` as a list of ``(d1, d2)`` pairs like ``params`` (a clear error otherwise)."""
    try:
        planes = list(planes)
    except TypeError:
        raise TypeError(f"planes must be a list of (d1, d2) pairs (e.g. from "
                        f"js.random_planes), got {type(planes).__name__}") from None
    if not planes:
        raise ValueError("planes is empty; pass at least one (d1, d2) pair, e.g. "
                         "js.random_planes(key, params, k=8)")
    checked = []
    for p, plane in enumerate(planes):
        if not isinstance(plane, (tuple, list)) or len(plane) != 2:
            raise ValueError(f"planes[{p}] must be a (d1, d2) pair of directions, got "
                             f"{type(plane).__name__}"
                             + (f" of length {len(plane)}" if isinstance(plane, (tuple, list))
                                else ""))
        tree.check_like(plane[0], params, name=f"planes[{p}][0]")
        tree.check_like(plane[1], params, name=f"planes[{p}][1]")
        checked.append((plane[0], plane[1]))
    return checked


@takes_engine("js.evaluate_volume")
def evaluate_volume(fn: Fn, params: PyTree, d1: PyTree, d2: PyTree, d3: PyTree, data: Any,
                    alphas: Any, betas: Any, gammas: Any, *,
                    metadata: Mapping[str, Any] | None = None,
                    engine: Engine = Engine()) -> Surface:
    """Metrics in the volume ``params + alpha * d1 + beta * d2 + gamma * d3``.

    The same engine as :func:`evaluate_plane` (devices, stores, progress);
    a ``n x m x l`` volume costs ``n * m * l`` exact dataset passes, so keep
    grids small (e.g. 21 x 21 x 21 is 9,261 points).

    Args:
        fn, params, data, batch_size, metadata, store, progress, points_per_step,
            chunk_size, devices, mesh, compute_dtype, subsample, subsample_seed,
            fingerprint, max_points, engine: as in :func:`evaluate_line`.
        d1, d2, d3: directions shaped like ``params`` (e.g. from
            :func:`jaxsurf.volume.random_directions` or the eigenvectors of
            :func:`jaxsurf.hessian.top_eigenpairs`); how each is normalized is
            read off it and recorded in ``metadata["directions"]``.
        alphas, betas, gammas: finite, strictly increasing 1-D coordinates.

    Returns:
        A volume :class:`Surface` (``surface.gammas`` set): ``metrics[name][i,
        j, k]`` is the value at ``(alphas[i], betas[j], gammas[k])``, shape
        ``(len(alphas), len(betas), len(gammas))``.

    Example:
        >>> d1, d2, d3 = js.random_directions(jax.random.key(0), params, n=3)
        >>> g = np.linspace(-1, 1, 11)
        >>> v = js.evaluate_volume(fn, params, d1, d2, d3, data, g, g, g)
        >>> v.metrics["loss"].shape
        (11, 11, 11)
    """
    grids = []
    for name, values in (("alphas", alphas), ("betas", betas), ("gammas", gammas)):
        grids.append(_as_grid(values, name))  # strictly increasing (jaxsurf._validate.grid)
    _validate.point_count([len(g) for g in grids], "js.evaluate_volume", engine.max_points)
    for name, d in (("d1", d1), ("d2", d2), ("d3", d3)):
        tree.check_like(d, params, name=name)
    points = np.meshgrid(*grids, indexing="ij")
    coefficients = np.stack([g.ravel() for g in points], axis=1)
    descriptions = [describe_direction(d, params) for d in (d1, d2, d3)]
    norms = [tree.norm(d) for d in (d1, d2, d3)]
    cosines = {f"{a + 1}{b + 1}": float(tree.dot(x, y) / (norms[a] * norms[b] + 1e-30))
               for a, b, x, y in ((0, 1, d1, d2), (0, 2, d1, d3), (1, 2, d2, d3))}
    info = {"directions": descriptions, "directions_cosines": cosines,
            "params_fingerprint": tree.fingerprint(params),
            **shared_normalization(descriptions)}
    return run_surface("volume", fn, params, [d1, d2, d3], data, grids[0], grids[1],
                        coefficients, info, metadata, gammas=grids[2], engine=engine)


@takes_engine("js.interpolate")
def interpolate(fn: Fn, params_a: PyTree, params_b: PyTree, data: Any, alphas: Any, *,
                metadata: Mapping[str, Any] | None = None, state_policy: str | None = None,
                recompute_data: Any = None, engine: Engine = Engine()) -> Surface:
    """Metrics along ``(1 - alpha) * params_a + alpha * params_b``.

    ``alpha = 0`` is exactly ``params_a`` and ``alpha = 1`` exactly
    ``params_b``; values outside [0, 1] extrapolate.

    Args:
        fn, data, batch_size, metadata, store, progress, points_per_step, chunk_size,
            devices, mesh, compute_dtype, subsample, subsample_seed, fingerprint,
            max_points, engine: as in :func:`evaluate_line`.
        params_a, params_b: the two end points (same structure, shapes, dtypes).
        alphas: finite 1-D coordinates.
        state_policy: for ``fn`` from an adapter of a model with state
            (BatchNorm statistics): ``"interpolate"`` (default) moves the state
            with the weights, ``(1 - alpha) * state_a + alpha * state_b``, so
            each end point is exactly its model; ``"fixed"`` keeps ``fn``'s own
            state (model A's) along the whole path; ``"recompute"``
            re-estimates the BatchNorm statistics at every alpha from
            ``recompute_data`` (default ``data``; Flax Linen and NNX models).
            See ``docs/frameworks.md``.

    Returns:
        A line :class:`Surface` with ``metadata["kind"] == "interpolation"``.

    Example:
        >>> s = js.interpolate(fn, params_a, params_b, data, np.linspace(-0.5, 1.5, 41))
        >>> s.metadata["kind"], s.metrics["loss"].shape
        ('interpolation', (41,))
    """
    alphas = _as_grid(alphas, "alphas")
    _validate.point_count([len(alphas)], "js.interpolate", engine.max_points)
    tree.check_like(params_b, params_a, name="params_b", reference_name="params_a")
    check_integer_leaves(None, [params_a, params_b], ["params_a", "params_b"])
    coefficients = np.stack([1.0 - alphas, alphas], axis=1)
    info = {"params_a_fingerprint": tree.fingerprint(params_a),
            "params_b_fingerprint": tree.fingerprint(params_b),
            "distance": float(tree.norm(tree.sub(params_b, params_a))),
            "axis_labels": ["alpha (0: params_a, 1: params_b)"]}
    if state_policy == "recompute":  # (the other path checks metadata in run_surface)
        _validate.user_metadata(metadata, (LIBRARY_METADATA_KEYS | set(info)) - USER_MAY_SET,
                                "js.interpolate")
        return interpolate_recomputed(fn, params_a, params_b, data, alphas, recompute_data,
                                      engine.batch_size, info, metadata,
                                      {k: v for k, v in engine.keywords().items()
                                       if k != "batch_size"}, evaluate_points)
    fn, params_a, params_b, state_facts = plan_interpolation(fn, params_a, params_b,
                                                             state_policy)
    info.update(state_facts)
    return run_surface("interpolation", fn, None, [params_a, params_b], data, alphas, None,
                        coefficients, info, metadata, engine=engine)
