"""One validation layer for the entry points (evaluate, Surface, store, hessian).

Every check here raises an error that names the argument, says what was wrong
and how to fix it. The entry points call these instead of writing the same
check again, so the rules (and messages) are the same everywhere.

Example:
    >>> positive_int(3, "chunk_size")
    3
    >>> grid([0.0, 0.5, 1.0], "alphas").tolist()
    [0.0, 0.5, 1.0]
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import numpy as np

from jaxsurf._limits import env_int


__all__ = ["OneShotIteratorError", "coefficients", "finite_tree", "grid", "int_in_range",
           "format_bytes", "json_safe", "MAX_POINTS", "MAX_POINTS_ENV",
           "max_points", "non_negative_int", "output_not_input", "point_count", "positive_int",
           "positive_number",
           "real_array", "reiterable", "unique_str_keys", "user_metadata"]


# --------------------------------------------------------------------------- numbers
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (bools refused).

    Args:
        value: the argument.
        name: its name, for the message.

    Returns:
        ``int(value)``.

    Example:
        >>> positive_int(np.int64(4), "points_per_step")
        4
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` if it is an integer >= 0 (e.g. a seed).

    Example:
        >>> non_negative_int(0, "subsample_seed")
        0
    """
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (0, 1, 2, ...), got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- sizes
MAX_POINTS = 250_000  # points one call evaluates unless max_points= / JAXSURF_MAX_POINTS says more
MAX_POINTS_ENV = "JAXSURF_MAX_POINTS"


def max_points(value: Any = None) -> int:
    """The largest number of points one evaluation may have: ``value``, else the
    environment variable ``JAXSURF_MAX_POINTS``, else :data:`MAX_POINTS` (250,000).

    Example:
        >>> max_points(), max_points(10**6)
        (250000, 1000000)
    """
    if value is not None:
        return positive_int(value, "max_points")
    return env_int(MAX_POINTS_ENV) or MAX_POINTS


def format_bytes(n: float) -> str:
    """``1234567`` → ``'1.2 MB'`` (decimal units).

    Example:
        >>> format_bytes(20_808)
        '20.8 kB'
    """
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def point_count(shape: Iterable[int], where: str, limit: Any = None,
                num_metrics: int | None = None) -> int:
    """The number of points of a grid of ``shape``, refused beyond :func:`max_points`
    before anything is allocated, with the memory it would take.

    Args:
        shape: points per axis, e.g. ``(len(alphas), len(betas))``, or
            ``(num_points,)`` for a list of points.
        where: the entry point, for the message (e.g. ``"js.evaluate_plane"``).
        limit: the caller's ``max_points`` (``None``: the default, see :func:`max_points`).
        num_metrics: the metrics per point if known (else the estimate counts one).

    Returns:
        The number of points.

    Example:
        >>> point_count((101, 101), "js.evaluate_plane")
        10201
        >>> point_count((100_000, 100_000), "js.evaluate_plane")
        Traceback (most recent call last):
        ...
        ValueError: js.evaluate_plane: 10,000,000,000 points (100000 x 100000) are more than ...
    """
    shape = [int(n) for n in shape]
    points = math.prod(shape)
    allowed = max_points(limit)
    if points <= allowed:
        return points
    metrics = 1 if num_metrics is None else num_metrics
    per_point = 8 * len(shape) + 4 * metrics  # coordinates (float64) + float32 results
    results = (f"{metrics} metric{'s' if metrics > 1 else ''}" if num_metrics is not None
               else "one metric")
    coarser = "Use a coarser grid (or refine=js.Refine(...))" if len(shape) == 2 else \
        "Use fewer points"
    raise ValueError(
        f"{where}: {points:,} points ({' x '.join(map(str, shape))}) are more than the limit of "
        f"{allowed:,} points; their coordinates and {results} alone would take "
        f"{'at least ' if num_metrics is None else ''}{format_bytes(points * per_point)} of "
        f"memory, and each point is a pass over the data. {coarser}, or, if you mean it, raise "
        f"the limit with max_points={points} (the command line: --max-points {points}) or the "
        f"environment variable {MAX_POINTS_ENV}")


def int_in_range(value: Any, name: str, low: int, high: int | None = None,
                 what: str = "", hint: str = "") -> int:
    """``value`` as an ``int`` if it is an integer in ``[low, high]`` (bools refused).

    Args:
        value: the argument.
        name: its name, for the message.
        low: the smallest allowed value.
        high: the largest allowed value (``None``: no bound).
        what: what the bound means, for the message (e.g. "the number of params").
        hint: how to fix it, appended to the message.

    Returns:
        ``int(value)``.

    Example:
        >>> int_in_range(2, "num_samples", 2)
        2
    """
    if not _is_int(value) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        note = f" ({what})" if what else ""
        raise ValueError(f"{name} must be an integer {bound}{note}, got {value!r}"
                         + (f"; {hint}" if hint else ""))
    return int(value)


def positive_number(value: Any, name: str, what: str = "") -> float:
    """``value`` as a ``float`` if it is a finite real number > 0 (bools refused).

    Example:
        >>> positive_number(0.5, "rho")
        0.5
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or np.iscomplexobj(value) or not math.isfinite(value) or value <= 0:
        note = f" ({what})" if what else ""
        raise ValueError(f"{name} must be a positive finite number{note}, got {value!r}")
    return float(value)


class OneShotIteratorError(TypeError, ValueError):
    """Data that must be read more than once is a one-shot iterator.

    A ``TypeError`` (the kind of object is wrong) and, for callers written
    against older versions, a ``ValueError``.
    """


def reiterable(data: Any, what: str) -> None:
    """Refuses a one-shot iterator (``iter(data) is data``) where ``what`` reads
    the data more than once.

    Example:
        >>> reiterable([1, 2], "store=")
        >>> reiterable(iter([1, 2]), "store=")
        Traceback (most recent call last):
        jaxsurf._validate.OneShotIteratorError: store= reads the data more than once, ...
    """
    if iter(data) is data:
        raise OneShotIteratorError(
            f"{what} reads the data more than once, but data is a one-shot iterator "
            f"({type(data).__name__}); pass in-memory arrays, a list of batches, or an object "
            f"whose __iter__ starts a new pass (e.g. a tf.data.Dataset, or a class wrapping "
            f"your generator function)")


# --------------------------------------------------------------------------- grids
def grid(values: Any, name: str, *, float32: bool = False) -> np.ndarray:
    """A non-empty, finite, real, strictly increasing 1-D array of coordinates.

    Plots and exports draw cell ``i`` between ``values[i-1]`` and ``values[i+1]``,
    so an unsorted or repeated coordinate gives crossing contours and
    overlapping cells; it is refused, never sorted silently.

    Args:
        values: the coordinates.
        name: e.g. ``"alphas"``.
        float32: also require them finite and strictly increasing once cast to
            float32 (the evaluation engine computes in float32).

    Returns:
        The coordinates as a numpy array (dtype kept).

    Example:
        >>> grid([1.0, 0.0], "alphas")
        Traceback (most recent call last):
        ValueError: alphas must be strictly increasing ...
    """
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of coordinates, got shape "
                         f"{arr.shape}; pass e.g. np.linspace(-1, 1, 21)")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}; pass e.g. "
                         f"np.linspace(-1, 1, 21)")
    if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite numbers; got {arr!r}")
    checked = arr
    if float32:
        if np.any(np.abs(arr) > np.finfo(np.float32).max):
            raise ValueError(f"{name} must be finite in float32 (|x| < 3.4e38), got "
                             f"max |x| = {np.max(np.abs(arr)):g}")
        checked = arr.astype(np.float32)
    steps = np.diff(checked)
    bad = np.flatnonzero(~(steps > 0))
    if bad.size:
        i = int(bad[0])
        what = "a repeat" if checked[i + 1] == checked[i] else "a decrease"
        in32 = " in float32" if float32 and arr[i + 1] > arr[i] else ""
        raise ValueError(
            f"{name} must be strictly increasing (sorted, no repeats){in32}: {name}[{i + 1}] = "
            f"{arr[i + 1].item()!r} follows {name}[{i}] = {arr[i].item()!r} ({what}). Pass "
            f"sorted unique "
            f"coordinates, e.g. np.unique({name}) or np.linspace(-1, 1, 21); plots need them "
            f"in order")
    return arr


def coefficients(values: Any, num_directions: int) -> np.ndarray:
    """``(num_points, num_directions)`` finite float32 coefficients.

    Example:
        >>> coefficients([[0.0], [0.5]], 1).dtype
        dtype('float32')
    """
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[1] != num_directions or arr.shape[0] == 0:
        raise ValueError(f"coefficients must have shape (num_points, {num_directions}), "
                         f"got {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"coefficients must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("coefficients must be finite (also in float32); got NaN or inf at "
                         f"rows {np.flatnonzero(~np.all(np.isfinite(arr), axis=1))[:8].tolist()}")
    return arr


# --------------------------------------------------------------------------- values
def real_array(values: Any, what: str) -> np.ndarray:
    """``values`` as a numpy array of real numbers (bool, int or float).

    Strings, objects (e.g. ``None`` entries) and complex numbers are refused;
    JAX's ``bfloat16`` (and ``float8``) become float32, which files can hold.

    Example:
        >>> real_array([1, 2], "metric 'loss'").dtype.kind
        'i'
    """
    arr = np.asarray(values)
    if arr.dtype.name.startswith(("bfloat16", "float8")):  # ml_dtypes floats (from JAX)
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "biuf":
        hint = ("take jnp.real or jnp.abs first" if arr.dtype.kind == "c" else
                "convert them to numbers first")
        raise ValueError(f"{what} must hold real numbers (bool, int or float), got dtype "
                         f"{arr.dtype}; {hint}")
    return arr


def unique_str_keys(mapping: Mapping[Any, Any], what: str) -> dict[str, Any]:
    """``{str(k): v}``, refusing keys that become one string (e.g. ``1`` and ``"1"``).

    Example:
        >>> unique_str_keys({1: "a", "1": "b"}, "metric")
        Traceback (most recent call last):
        ValueError: metric names 1 and '1' are both '1' as strings; ...
    """
    out: dict[str, Any] = {}
    original: dict[str, Any] = {}
    for key, value in mapping.items():
        name = str(key)
        if name in out:
            raise ValueError(f"{what} names {original[name]!r} and {key!r} are both {name!r} "
                             f"as strings; one would silently replace the other. Give them "
                             f"distinct string names")
        out[name], original[name] = value, key
    return out


def _json_problem(value: Any, where: str) -> str | None:
    """Where in ``value`` (already converted) JSON fails, and why; ``None`` if it does not."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None  # NaN and inf are written as JSON extensions (allow_nan)
    if isinstance(value, dict):
        for k, v in value.items():
            problem = _json_problem(v, f"{where}[{k!r}]")
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for i, v in enumerate(value):
            problem = _json_problem(v, f"{where}[{i}]")
            if problem:
                return problem
        return None
    return f"{where} holds a value of type {type(value).__name__} ({value!r:.60})"


def json_safe(mapping: Mapping[str, Any] | None, what: str = "metadata") -> dict[str, Any]:
    """A JSON-safe copy of ``mapping`` (numpy scalars and arrays turned to lists),
    checked now: anything JSON cannot hold is refused here, not at save time.

    Args:
        mapping: e.g. user metadata.
        what: its name, for the message.

    Returns:
        The converted dict.

    Example:
        >>> json_safe({"seed": np.int64(0), "grid": np.arange(2)})
        {'seed': 0, 'grid': [0, 1]}
    """
    if mapping is not None and not isinstance(mapping, Mapping):
        raise TypeError(f"{what} must be a dict of JSON-serialisable values, got "
                        f"{type(mapping).__name__}")

    def convert(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in unique_str_keys(value, f"{what} key").items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        if hasattr(value, "tolist"):
            return convert(value.tolist())
        return value

    out = convert(dict(mapping or {}))
    problem = _json_problem(out, what)
    if problem:
        raise TypeError(f"{what} must be JSON-serialisable (dicts, lists, strings, numbers, "
                        f"bools, None): {problem}; convert it, e.g. with str()")
    json.dumps(out, allow_nan=True)  # the check above mirrors json; this makes sure
    return out


def user_metadata(metadata: Mapping[str, Any] | None, reserved: Collection[str],
                  where: str) -> dict[str, Any]:
    """User ``metadata=`` made JSON-safe, refusing keys the library writes itself.

    Args:
        metadata: the user's dict (or ``None``).
        reserved: the library's own keys for this surface.
        where: the entry point, for the message.

    Returns:
        The JSON-safe dict.

    Example:
        >>> user_metadata({"seed": 0}, {"kind"}, "js.evaluate_line")
        {'seed': 0}
    """
    out = json_safe(metadata, "metadata")
    taken = sorted(k for k in out if k in reserved)
    if taken:
        raise ValueError(
            f"{where}: metadata keys {taken} are written by jaxsurf itself and cannot be "
            f"overridden (the library keys are listed in docs/robustness.md); put your own "
            f"facts under other names, e.g. {{'user_{taken[0]}': ...}}")
    return out


def finite_tree(items: Iterable[tuple[str, Any]], what: str, hint: str) -> None:
    """Refuses NaN or inf in any float leaf; ``items`` are ``(path, leaf)`` pairs.

    Example:
        >>> finite_tree([("['w']", np.array([1.0, np.nan]))], "params", "check it")
        Traceback (most recent call last):
        ValueError: params leaf ['w'] holds 1 NaN/inf of 2 values; check it
    """
    for path, leaf in items:
        arr = np.asarray(leaf)
        if arr.dtype.kind not in "fc" and arr.dtype.name != "bfloat16":
            continue
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise ValueError(f"{what} leaf {path} holds {bad} NaN/inf of "
                             f"{math.prod(arr.shape)} values; {hint}")


# --------------------------------------------------------------------------- files
def output_not_input(out: Any, inputs: Iterable[Any], option: str = "--out") -> None:
    """Refuses an output path that is one of the inputs (no command writes over its input).

    Paths are compared as files (``os.path.samefile``: links and ``./`` spellings
    of one file are the same file) where both exist, else as resolved paths.

    Example:
        >>> output_not_input("plane.html", ["plane.npz"])
        >>> output_not_input("./plane.npz", ["plane.npz"])
        Traceback (most recent call last):
        ValueError: --out plane.npz is the input plane.npz: writing it would destroy the ...
    """
    import os
    from pathlib import Path

    target = Path(out)
    for source in map(Path, inputs):
        try:
            same = os.path.samefile(target, source)
        except OSError:  # one of them does not exist (yet)
            same = target.resolve() == source.resolve()
        if same:
            raise ValueError(f"{option} {target} is the input {source}: writing it would "
                             f"destroy the input; choose another {option}")
