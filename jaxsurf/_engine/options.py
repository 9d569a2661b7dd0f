"""One options object for every function that computes many points: :class:`Engine`.

The engine's options (batches, points per step, chunks, devices or a mesh,
compute dtype, progress, store, subsampling, fingerprint, point limit) are
the fields of one frozen dataclass, validated in one place
(:meth:`Engine.__post_init__`). Entry points take them either as one object,
``engine=js.Engine(...)``, or as keyword arguments as before; the decorator
:func:`takes_engine` does the merging (a keyword overrides that field of
``engine=``) and refuses a misspelled keyword, naming the closest one. The
set of option names is the dataclass's fields: there is no list to keep in
sync.

Example:
    >>> eng = Engine(batch_size=256, chunk_size=64, progress=False)
    >>> dataclasses.replace(eng, chunk_size=8).chunk_size
    8
    >>> Engine(points_per_step=0)
    Traceback (most recent call last):
    ValueError: points_per_step must be a positive integer, got 0
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import os
from typing import Any, Callable, Collection, Mapping, Sequence, TypeVar

import numpy as np
from jax.sharding import Mesh

from jaxsurf import _validate
from jaxsurf._engine.job import as_compute_dtype
from jaxsurf._distributed import Device
from jaxsurf._progress import ProgressOption, check_progress

__all__ = ["Engine", "takes_engine", "unknown_keyword", "OPTION_NAMES"]

R = TypeVar("R")

# Options that change the values computed: a function that does not use one of them
# refuses an engine= that sets it. The others (how points are run, shown, stored)
# are ignored where they do not apply, so one Engine serves every call.
VALUE_OPTIONS = frozenset({"compute_dtype", "subsample", "subsample_seed"})


@dataclasses.dataclass(frozen=True)
class Engine:
    """How the evaluation engine computes many points; one frozen object.

    Every function that computes many points accepts it as ``engine=``:
    :func:`jaxsurf.evaluate_points`, :func:`~jaxsurf.evaluate_line`,
    :func:`~jaxsurf.evaluate_plane` (``refine=`` too), :func:`~jaxsurf.evaluate_planes`,
    :func:`~jaxsurf.evaluate_volume`, :func:`~jaxsurf.interpolate`,
    :func:`~jaxsurf.auto_range` (every field but ``store``),
    :func:`jaxsurf.connect.evaluate_curve` and, for the fields they use
    (``batch_size``; :func:`jaxsurf.hessian.convexity_map` also ``store``,
    ``progress``, ``devices``, ``chunk_size``), :func:`jaxsurf.dataset_mean`,
    the :mod:`jaxsurf.hessian` and :mod:`jaxsurf.sharpness` functions. The
    keyword arguments of the same names keep working; a keyword given
    together with ``engine=`` overrides that field. One ``Engine`` serves
    every call: fields that only say how points are run, shown or stored
    (``progress``, ``store``, ``chunk_size`` ...) are ignored by a function
    that has no use for them, but one that would change the values
    (``compute_dtype``, ``subsample``, ``subsample_seed``) is refused there
    rather than silently ignored.

    Build variants with :func:`dataclasses.replace` (it validates again).

    Attributes:
        batch_size: examples per batch for in-memory data (default
            ``min(n, 512)``); ignored for streams.
        points_per_step: points evaluated together with ``vmap`` (default 1).
        chunk_size: points per jitted call over all devices (default 32 per
            device of the points axis); also how often ``store`` saves and
            ``progress`` reports.
        devices: devices to spread the work over (default ``jax.devices()``).
        mesh: instead of ``devices``, a ``jax.sharding.Mesh`` with axes
            ``"points"`` and/or ``"data"`` and any others ("model axes", e.g.
            ``jax.make_mesh((2, 4), ("points", "model"))``): params sharded
            over the model axes keep their shardings, and each point's forward
            pass runs sharded over them (``docs/scale.md``). Default: the
            mesh the params are sharded over, if they are.
        compute_dtype: e.g. ``jnp.bfloat16`` (the combination and the sums stay
            float32); ``None``: as given.
        progress: ``None`` (a bar when stderr is a terminal, else log lines),
            ``True``, ``False`` or a callable taking a
            :class:`jaxsurf.ProgressInfo`.
        store: a directory that keeps every finished chunk; a rerun resumes.
        subsample: evaluate on that many examples (an int, or a float in
            (0, 1] for a fraction) and add standard errors ``<metric>_sem``;
            checked against the data's size when the data are seen.
        subsample_seed: the seed of that draw (default 0).
        fingerprint: a non-empty JSON-serialisable dict naming what the library
            cannot see (the model's code, the loss), mixed into a store's request.
        max_points: the most points one call may evaluate (default
            ``JAXSURF_MAX_POINTS``, else 250,000).
        memory_limit: bytes one device may use; the engine plans the
            per-device bytes of params, directions, data, combined params and
            activations (XLA's ``memory_analysis``) before running, lowers
            ``points_per_step`` to fit, and refuses (naming the bytes) what
            cannot fit one point per step. Default: 90% of what the device
            reports, or for CPU devices 80% of the host's memory shared
            among them.

    Example:
        >>> eng = js.Engine(batch_size=128, chunk_size=16, progress=False)
        >>> line = js.evaluate_line(fn, params, d, data, np.linspace(-1, 1, 5), engine=eng)
        >>> fast = dataclasses.replace(eng, compute_dtype="bfloat16")
    """

    batch_size: int | None = None
    points_per_step: int = 1
    chunk_size: int | None = None
    devices: Sequence[Device] | None = None
    mesh: Mesh | None = None
    compute_dtype: Any = None
    progress: ProgressOption = None
    store: str | os.PathLike | None = None
    subsample: int | float | None = None
    subsample_seed: int = 0
    fingerprint: Mapping[str, Any] | None = None
    max_points: int | None = None
    memory_limit: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None:
            _validate.positive_int(self.batch_size, "batch_size")
        _validate.positive_int(self.points_per_step, "points_per_step")
        if self.chunk_size is not None:
            _validate.positive_int(self.chunk_size, "chunk_size")
        if self.devices is not None and self.mesh is not None:
            raise ValueError("pass devices= or mesh=, not both")
        as_compute_dtype(self.compute_dtype)
        check_progress(self.progress)
        if self.store is not None and not isinstance(self.store, (str, os.PathLike)):
            raise TypeError(f"store must be a directory path (a str or os.PathLike) or None, "
                            f"got {type(self.store).__name__}")
        if self.subsample is not None:
            size = self.subsample
            whole = isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_))
            if not (whole and size >= 2 or isinstance(size, (float, np.floating))
                    and 0 < size <= 1):
                raise ValueError(f"subsample must be an integer between 2 (a standard error "
                                 f"needs two examples) and the number of examples, or a "
                                 f"fraction in (0, 1], got {size!r}")
        _validate.non_negative_int(self.subsample_seed, "subsample_seed")
        if self.fingerprint is not None:
            if not isinstance(self.fingerprint, Mapping) or not self.fingerprint:
                raise TypeError(f"fingerprint must be a non-empty dict of JSON values (e.g. "
                                f"{{'model': 'v2', 'loss': 'mse'}}), got "
                                f"{self.fingerprint!r:.80}")
            object.__setattr__(self, "fingerprint",
                               _validate.json_safe(self.fingerprint, "fingerprint"))
        if self.max_points is not None:
            _validate.max_points(self.max_points)
        if self.memory_limit is not None:
            _validate.positive_int(self.memory_limit, "memory_limit")

    def changed(self) -> dict[str, Any]:
        """The fields set to something other than their defaults.

        Example:
            >>> Engine(chunk_size=8, progress=False).changed()
            {'chunk_size': 8, 'progress': False}
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not f.default
                and not _equal(getattr(self, f.name), f.default)}

    def keywords(self) -> dict[str, Any]:
        """Every field as a keyword argument (a shallow copy: devices and meshes are
        not copied), e.g. to call an entry point that takes the keywords."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _equal(value: Any, default: Any) -> bool:
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # an array or a mesh: not a default
        return False


OPTION_NAMES = tuple(f.name for f in dataclasses.fields(Engine))


def unknown_keyword(given: Collection[str], allowed: Collection[str], where: str) -> None:
    """Refuses a keyword ``where`` does not take, suggesting the closest one.

    Example:
        >>> unknown_keyword(["chunksize"], ["chunk_size"], "js.evaluate_line")
        Traceback (most recent call last):
        TypeError: js.evaluate_line got an unknown option 'chunksize' (did you mean ...
    """
    names = sorted(allowed)
    for key in given:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{where} got an unknown option {key!r}{hint}; its options are "
                            f"{names}")


def takes_engine(where: str, uses: Collection[str] | None = None
                 ) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorator: the function accepts ``engine=`` and the engine's keywords.

    The decorated function declares either a parameter ``engine`` (it then
    receives one resolved :class:`Engine`; ``uses`` limits the fields it
    accepts, default all) or the engine fields it uses by name (e.g.
    ``batch_size``; each then receives its value from ``engine=`` unless given
    itself). Keywords naming engine fields override the fields of
    ``engine=``; an unknown keyword raises :func:`unknown_keyword`'s error;
    an ``engine=`` that sets a field the function does not use is refused.
    The public signature (``inspect.signature``) lists every accepted option
    and ``engine``.

    Example:
        >>> @takes_engine("js.f")
        ... def f(*, engine=Engine()):
        ...     return engine.chunk_size
        >>> f(chunk_size=4), f(engine=Engine(chunk_size=2)), f(engine=Engine(chunk_size=2),
        ...                                                     chunk_size=3)
        (4, 2, 3)
        >>> f(chunksize=2)
        Traceback (most recent call last):
        TypeError: js.f got an unknown option 'chunksize' (did you mean 'chunk_size'?); ...
    """
    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        signature = inspect.signature(func)
        params = signature.parameters
        whole = "engine" in params
        declared = [name for name in OPTION_NAMES if name in params]
        used = set(uses if uses is not None else OPTION_NAMES if whole else declared)
        own = {name for name, p in params.items()
               if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - {"engine"}
        allowed = own | used | {"engine"}
        defaults = Engine()

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> R:
            engine = kwargs.pop("engine", None)
            unknown_keyword([k for k in kwargs if k not in own | used], allowed, where)
            if engine is not None and not isinstance(engine, Engine):
                raise TypeError(f"{where}: engine must be a js.Engine (e.g. "
                                f"js.Engine(batch_size=256)) or None, got "
                                f"{type(engine).__name__}")
            if engine is not None:
                unused = sorted(set(engine.changed()) & VALUE_OPTIONS - used)
                if unused:
                    raise ValueError(
                        f"{where} does not use the engine options {unused} set in engine= "
                        f"(it uses {sorted(used)}), and they change values; pass "
                        f"dataclasses.replace(engine, "
                        f"{', '.join(f'{k}={getattr(defaults, k)!r}' for k in unused)})")
            if not whole:
                if engine is not None:
                    bound = signature.bind_partial(*args, **kwargs).arguments
                    kwargs.update({k: getattr(engine, k) for k in declared if k not in bound})
                return func(*args, **kwargs)
            options = {k: kwargs.pop(k) for k in list(kwargs) if k in used and k not in own}
            engine = dataclasses.replace(engine or defaults, **options)
            return func(*args, engine=engine, **kwargs)

        shown = [p for name, p in params.items() if name != "engine"
                 and p.kind is not p.VAR_KEYWORD]
        extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                   annotation=f.type)
                 for f in dataclasses.fields(Engine) if f.name in used and f.name not in own]
        shown += extra + [inspect.Parameter("engine", inspect.Parameter.KEYWORD_ONLY,
                                            default=None, annotation="Engine | None")]
        call.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
        return call
    return decorate
