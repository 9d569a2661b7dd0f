"""Automatic axis ranges: :func:`auto_range` (public as ``js.auto_range``).

The range of a landscape plot is the choice that changes the picture most and
is reported least ("start from 1 and tune"). ``auto_range`` finds, for each
direction, the smallest symmetric extent at which the loss reaches a set
multiple (or a set increase) of the centre's loss, by bisection on exact
dataset means, so that grids of different models cover comparable loss ranges.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np

from jaxsurf import _tree as tree
from jaxsurf._engine.options import OPTION_NAMES, Engine, takes_engine
from jaxsurf._evaluate import evaluate_points
from jaxsurf._tree import PyTree

__all__ = ["auto_range"]

Fn = Callable[[PyTree, PyTree], Any]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


@takes_engine("js.auto_range", uses=tuple(o for o in OPTION_NAMES if o != "store"))
def auto_range(fn: Fn, params: PyTree, directions: Sequence[PyTree], data: Any, *,
               rise: float = 10.0, rise_by: float | None = None, metric: str = "loss",
               start: float = 1.0, rtol: float = 0.01, max_extent: float = 1e4,
               engine: Engine = Engine()) -> np.ndarray:
    """The smallest symmetric extent along each direction where the loss reaches
    ``rise`` × the centre's loss.

    For direction ``d`` let ``g(t) = max(L(params + t d), L(params - t d))``;
    the extent is the smallest ``t > 0`` found with ``g(t) >= target``, where
    ``target = rise * L(params)`` (or ``L(params) + rise_by``). It doubles (or
    halves) ``t`` from ``start`` until the target is bracketed, then bisects
    until the bracket is within ``rtol`` (relative); every value is an exact
    dataset mean from the evaluation engine (two points per direction per
    step, all directions in one call; a non-finite loss counts as above the
    target). The result is the upper end of the final bracket: ``[-e, e]``
    reaches the target on at least one side, to within ``rtol``. Where ``g``
    is not monotone (a ridge, then a lower valley) the crossing found is one
    of possibly several, the first one met by the doubling.

    Args:
        fn: ``fn(params, batch)`` → scalar or dict of scalar batch means.
        params: the centre.
        directions: a list of ``k >= 1`` direction pytrees shaped like
            ``params`` (e.g. ``[d1, d2]`` from :func:`jaxsurf.random_plane`).
        data: in-memory arrays or a re-iterable stream of batches.
        rise: the multiple of the centre's loss to reach (``> 1``); needs a
            positive centre loss.
        rise_by: instead, an additive rise: the target is ``centre + rise_by``
            (``> 0``); use it when the centre's loss is 0 or negative.
        metric: which entry of ``fn``'s dict.
        start: the first extent tried (``> 0``).
        rtol: relative width of the final bracket (``0 < rtol < 1``).
        max_extent: give up beyond this extent (a flat or zero direction).
        batch_size, points_per_step, chunk_size, devices, mesh, compute_dtype,
            progress (default off here), subsample, subsample_seed, fingerprint,
            max_points, engine: as in :func:`jaxsurf.evaluate_points` (no
            ``store``: each step is a new request).

    Returns:
        A float64 array ``(k,)``: the extent for each direction, in that
        direction's units (so ``np.linspace(-e[0], e[0], n)`` are the alphas).

    Raises:
        ValueError: ``rise <= 1``, ``rise_by <= 0``, a centre loss ``<= 0`` or
            non-finite with the multiplicative ``rise`` (the ratio is undefined:
            pass ``rise_by``), an empty ``directions`` list (``k < 1``), or a
            direction along which the loss does not reach the target within
            ``max_extent`` (named by its index).

    Example:
        >>> e = js.auto_range(fn, params, [d1, d2], data, rise=3.0)
        >>> e.shape
        (2,)
        >>> grid = np.linspace(-e[0], e[0], 21)     # alphas reaching 3x the centre's loss
    """
    if isinstance(directions, (list, tuple)):
        directions = list(directions)
    else:
        raise TypeError(f"directions must be a list of direction pytrees (e.g. [d1, d2]), got "
                        f"{type(directions).__name__}; for one direction pass [d]")
    if not directions:
        raise ValueError("directions is empty (k = 0): pass a list of k >= 1 directions, "
                         "e.g. [d1, d2]")
    for i, d in enumerate(directions):
        tree.check_like(d, params, name=f"directions[{i}]")
    additive = rise_by is not None
    if additive:
        step = _number(rise_by, "rise_by")
        if step <= 0:
            raise ValueError(f"rise_by must be > 0 (the loss increase to reach), got {step!r}")
    else:
        factor = _number(rise, "rise")
        if factor <= 1:
            raise ValueError(f"rise must be > 1 (the multiple of the centre's loss to reach), "
                             f"got {factor!r}; for an additive increase pass rise_by=...")
    start = _number(start, "start")
    rtol = _number(rtol, "rtol")
    max_extent = _number(max_extent, "max_extent")
    if start <= 0 or max_extent < start:
        raise ValueError(f"need 0 < start <= max_extent, got start={start!r}, "
                         f"max_extent={max_extent!r}")
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
    if engine.progress is None:
        engine = dataclasses.replace(engine, progress=False)
    k = len(directions)

    def losses(coefficients: np.ndarray) -> np.ndarray:
        values = evaluate_points(fn, params, directions, data, coefficients, engine=engine)
        if metric not in values:
            raise KeyError(f"fn returns the metrics {sorted(values)} but not {metric!r}; "
                           f"pass metric=<one of them>")
        return np.asarray(values[metric], np.float64)

    centre = float(losses(np.zeros((1, k)))[0])
    if not math.isfinite(centre):
        raise ValueError(f"the loss at the centre is {centre}: not finite, so no range can be "
                         f"found; check fn and params there")
    if additive:
        target = centre + step
    else:
        if centre <= 0:
            raise ValueError(
                f"the centre's loss is {centre:.6g} <= 0, so rise x centre loss is undefined as "
                f"a rise (a ratio of a loss at or below zero); pass an additive rise instead, "
                f"e.g. rise_by={max(abs(centre), 1.0):.3g} (the extent where the loss reaches "
                f"centre + rise_by)")
        target = factor * centre
    eye = np.eye(k)

    def reaches(t: np.ndarray) -> np.ndarray:
        """``g(t_i) >= target`` for each direction, at extents ``t`` (one call)."""
        coefficients = np.concatenate([eye * t[:, None], -eye * t[:, None]])
        values = losses(coefficients).reshape(2, k)
        above = ~np.isfinite(values) | (values >= target)
        return np.asarray(above.any(axis=0))

    lo = np.zeros(k)                 # g(lo) < target (the centre is below it)
    hi = np.full(k, np.nan)          # g(hi) >= target, once found
    t = np.full(k, start)
    above = reaches(t)
    hi[above] = t[above]
    lo[~above] = t[~above]
    # shrink where the start was already above; grow where it was below
    shrinking = above.copy()
    while True:
        open_ = np.isnan(hi) | (shrinking & (lo == 0))
        if not open_.any():
            break
        trial = np.where(np.isnan(hi), lo * 2.0, hi / 2.0)
        trial = np.where(open_, trial, hi)
        if np.any(trial[np.isnan(hi)] > max_extent):
            stuck = [int(i) for i in np.flatnonzero(np.isnan(hi) & (trial > max_extent))]
            raise ValueError(
                f"along directions {stuck} the loss stays below the target {target:.6g} "
                f"(centre {centre:.6g}) up to extent {max_extent:g}: a flat or all-zero "
                f"direction? Check the directions (js.describe_direction), lower rise, or "
                f"raise max_extent")
        tiny = shrinking & (lo == 0) & (trial < 1e-12 * start)
        if tiny.any():
            stuck = [int(i) for i in np.flatnonzero(tiny)]
            raise ValueError(f"along directions {stuck} the loss reaches the target at every "
                             f"extent tried down to {1e-12 * start:g}: is the centre's loss "
                             f"below the loss at any nearby point?")
        above = reaches(trial)
        grow = open_ & np.isnan(hi)
        shrink = open_ & ~np.isnan(hi)
        hi = np.where(grow & above, trial, hi)
        lo = np.where(grow & ~above, trial, lo)
        hi = np.where(shrink & above, trial, hi)
        lo = np.where(shrink & ~above, trial, lo)
    while np.any(hi - lo > rtol * hi):
        mid = np.where(hi - lo > rtol * hi, 0.5 * (lo + hi), hi)
        above = reaches(mid)
        active = hi - lo > rtol * hi
        hi = np.where(active & above, mid, hi)
        lo = np.where(active & ~above, mid, lo)
    return hi.astype(np.float64)
