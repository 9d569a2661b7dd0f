"""The implementation of :mod:`jaxsurf.progress`; its public face, with the
documentation and examples, is ``jaxsurf/progress.py``."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, TextIO, Union

__all__ = ["ProgressInfo", "ProgressBar", "ProgressLog", "ProgressTracker", "ProgressOption",
           "make_sink", "format_line", "log_line"]


@dataclass(frozen=True)
class ProgressInfo:
    """Where a running evaluation stands.

    Attributes:
        done: points evaluated by this call so far.
        total: points this call has to evaluate (the grid's points minus those
            already found in a ``store``).
        elapsed: seconds since this call started evaluating.
        rate: points per second (``None`` until the first chunk is done). Once
            a second chunk is done, the first chunk (which includes
            compilation) is left out of the rate.
        eta: estimated seconds left at that rate (``None`` while unknown).
        stored: points taken from the store instead of evaluated (not counted
            in ``done`` or ``total``).
        devices: devices the work is spread over (``None``: not said).
        unit: what is counted, plural (``"points"``; training: ``"steps"``).
        label: who reports (``"jaxsurf"``; training: ``"epoch 2/3"``).
    """

    done: int
    total: int
    elapsed: float
    rate: float | None
    eta: float | None
    stored: int = 0
    devices: int | None = None
    unit: str = "points"
    label: str = "jaxsurf"

    @property
    def finished(self) -> bool:
        """True once every point of this call is done."""
        return self.done >= self.total


ProgressOption = Union[bool, None, Callable[[ProgressInfo], object]]


def _clock_text(seconds: float) -> str:
    """``75.2`` → ``'1:15'``; ``3725`` → ``'1:02:05'``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _singular(unit: str) -> str:
    return unit[:-1] if unit.endswith("s") else unit


def _rate_text(rate: float | None, unit: str = "points") -> str:
    if rate is None or rate <= 0:
        return f"-- {unit}/s"
    if rate < 1:
        return f"{1 / rate:.1f} s/{_singular(unit)}"
    return f"{rate:.3g} {unit}/s"


def format_line(info: ProgressInfo, width: int = 80) -> str:
    """The bar's text for ``info``, at most ``width`` characters.

    Args:
        info: the progress to show.
        width: the terminal's width.

    Returns:
        One line without a line break.

    Example:
        >>> format_line(ProgressInfo(10, 40, 2.0, 5.0, 6.0), width=70)
        'jaxsurf [#####---------------] 10/40 points  25%  5 points/s  ETA 0:06'

    The bar shrinks to fit ``width`` and is left out when under 5 characters.
    """
    if info.total == 0:
        return f"{info.label}: all {info.stored} {info.unit} from the store"[:width]
    count = f"{info.done}/{info.total} {info.unit}"
    share = f"{100 * info.done // info.total:3d}%" if info.total else "100%"
    if info.finished:
        timing = f"{_rate_text(info.rate, info.unit)}  in {_clock_text(info.elapsed)}"
    else:
        eta = "--:--" if info.eta is None else _clock_text(info.eta)
        timing = f"{_rate_text(info.rate, info.unit)}  ETA {eta}"
    tail = f" {count} {share}  {timing}"
    if info.stored:
        tail += f"  (+{info.stored} from store)"
    bar_width = max(0, min(20, width - len(info.label) - len(" []") - len(tail)))
    filled = bar_width * info.done // info.total if info.total else bar_width
    bar = f" [{'#' * filled}{'-' * (bar_width - filled)}]" if bar_width >= 5 else ""
    return f"{info.label}{bar}{tail}"[:width]


def log_line(info: ProgressInfo) -> str:
    """The plain log line for ``info`` (start, middle or end of a run).

    Args:
        info: the progress to describe.

    Returns:
        One line without a line break or carriage return.

    Example:
        >>> log_line(ProgressInfo(0, 313, 0.0, None, None, stored=128, devices=4))
        'jaxsurf: resuming: 128 of 441 points from the store; 313 to do on 4 devices'
        >>> log_line(ProgressInfo(96, 313, 8.0, 12.3, 17.6))
        'jaxsurf: 96/313 points (30%), 12.3 points/s, ETA 0:18'
    """
    unit = info.unit
    on = "" if info.devices is None else \
        f" on {info.devices} device{'' if info.devices == 1 else 's'}"
    if info.total == 0:
        return f"{info.label}: all {info.stored} {unit} from the store, nothing to evaluate"
    if info.done == 0 and not info.finished:
        if info.stored:
            return (f"{info.label}: resuming: {info.stored} of {info.stored + info.total} "
                    f"{unit} from the store; {info.total} to do{on}")
        return f"{info.label}: {info.total} {unit} to do{on}"
    if info.finished:
        rate = "" if info.rate is None else f" ({_rate_text(info.rate, unit)})"
        stored = f"; {info.stored} more from the store" if info.stored else ""
        return (f"{info.label}: done: {info.total} {unit} in {_clock_text(info.elapsed)}"
                f"{rate}{stored}")
    eta = "--:--" if info.eta is None else _clock_text(info.eta)
    return (f"{info.label}: {info.done}/{info.total} {unit} "
            f"({100 * info.done // info.total}%), {_rate_text(info.rate, unit)}, ETA {eta}")


class ProgressLog:
    """Progress as plain lines, for logs that are not a terminal (no ``\\r``).

    One line at the start (what is to do, what came from the store, on how
    many devices), then one whenever another ``every`` share of the work is
    done or ``interval`` seconds have passed since the last line, and one at
    the end.

    Args:
        stream: where to write (default: ``sys.stderr`` at each line).
        every: share of the work between lines (default 0.1: every 10 %).
        interval: seconds after which a line is written anyway (default 60).
        clock: seconds counter (for tests).

    Example:
        >>> s = js.evaluate_plane(fn, params, d1, d2, data, grid, grid,
        ...                       progress=ProgressLog(sys.stdout))
        jaxsurf: 25 points to do on 4 devices
        jaxsurf: done: 25 points in 0:... (... points/s)
    """

    def __init__(self, stream: TextIO | None = None, every: float = 0.1,
                 interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < every <= 1:
            raise ValueError(f"every must be a share of the work in (0, 1], got {every!r}")
        self._stream = stream
        self._every = every
        self._interval = interval
        self._clock = clock
        self._last_time = -float("inf")
        self._last_mark = 0

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def _mark(self, info: ProgressInfo) -> int:
        """How many whole ``every`` shares of the work are done."""
        return int(info.done / info.total / self._every + 1e-9) if info.total else 0

    def _due(self, info: ProgressInfo, now: float) -> bool:
        if info.done == 0 or info.finished or info.total == 0:
            return True
        return self._mark(info) > self._last_mark or now - self._last_time >= self._interval

    def __call__(self, info: ProgressInfo) -> None:
        now = self._clock()
        if info.done == 0:
            self._last_mark = 0
        if not self._due(info, now):
            return
        self.stream.write(log_line(info) + "\n")
        self.stream.flush()
        self._last_time = now
        self._last_mark = self._mark(info)


class ProgressBar:
    """A one-line progress bar redrawn in place with ``\\r``.

    Args:
        stream: where to draw (default: ``sys.stderr`` at each draw).
        min_interval: seconds between redraws (the first and last always draw).

    Example:
        >>> s = js.evaluate_plane(fn, params, d1, d2, data, grid, grid,
        ...                       progress=ProgressBar())
    """

    def __init__(self, stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        self._stream = stream
        self._min_interval = min_interval
        self._last_draw = -float("inf")
        self._drawn = 0  # characters on the open line; 0 when none is open

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def __call__(self, info: ProgressInfo) -> None:
        now = time.monotonic()
        if not info.finished and self._drawn and now - self._last_draw < self._min_interval:
            return
        width = shutil.get_terminal_size(fallback=(80, 24)).columns - 1
        line = format_line(info, max(width, 20))
        self.stream.write("\r" + line + " " * max(0, self._drawn - len(line)))
        self._drawn = len(line)
        self._last_draw = now
        if info.finished:
            self.close()
        else:
            self.stream.flush()

    def close(self) -> None:
        """Ends the open line (if any) so that later output starts on a new one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0


def make_sink(progress: ProgressOption) -> Callable[[ProgressInfo], object] | None:
    """Resolves a ``progress=`` argument to a callable or ``None``.

    Args:
        progress: ``None`` (a bar when stderr is a terminal, else
            :class:`ProgressLog` lines), ``True``, ``False`` or a callable
            taking a :class:`ProgressInfo`.

    Returns:
        The callable to report to, or ``None`` for no reports.

    Example:
        >>> make_sink(False) is None
        True
    """
    check_progress(progress)
    if progress is None:
        stderr = sys.stderr
        if stderr is None:  # pythonw, some daemons: nowhere to write
            return None
        is_tty = hasattr(stderr, "isatty") and stderr.isatty()
        return ProgressBar() if is_tty else ProgressLog()
    if progress is True:
        return ProgressBar()
    if progress is False:
        return None
    return progress


def check_progress(progress: Any) -> None:
    """Refuses a ``progress=`` that is not ``None``, ``True``, ``False`` or a callable.

    Example:
        >>> check_progress("yes")
        Traceback (most recent call last):
        TypeError: progress must be None (a bar when stderr is a terminal, else log lines), ...
    """
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    raise TypeError(f"progress must be None (a bar when stderr is a terminal, else log "
                    f"lines), True, False or a callable taking a "
                    f"jaxsurf._progress.ProgressInfo; got {progress!r}")


class ProgressTracker:
    """Turns "this many points are done" into :class:`ProgressInfo` reports.

    Args:
        sink: where reports go (from :func:`make_sink`), or ``None``.
        total: points to evaluate in this call.
        stored: points already done (taken from a store).
        clock: seconds counter (for tests).
        devices: devices the work is spread over (shown at the start).
        unit, label: as in :class:`ProgressInfo`.

    Example:
        >>> with ProgressTracker(lambda info: print(info.done, "/", info.total), total=4) as track:
        ...     track.update(2); track.update(4)
        0 / 4
        2 / 4
        4 / 4
    """

    def __init__(self, sink: Callable[[ProgressInfo], object] | None, total: int,
                 stored: int = 0, clock: Callable[[], float] = time.perf_counter, *,
                 devices: int | None = None, unit: str = "points",
                 label: str = "jaxsurf") -> None:
        self._sink = sink
        self._total = total
        self._stored = stored
        self._clock = clock
        self._extra = {"devices": devices, "unit": unit, "label": label}
        self._start = clock()
        self._first: tuple[float, int] | None = None  # (time, done) after the first chunk
        self._report(0, self._start)

    def _rate(self, done: int, now: float) -> float | None:
        if self._first is None or self._first[1] == done:
            elapsed = now - self._start
            return done / elapsed if done and elapsed > 0 else None
        first_time, first_done = self._first
        return (done - first_done) / (now - first_time) if now > first_time else None

    def _report(self, done: int, now: float) -> None:
        if self._sink is None:
            return
        rate = self._rate(done, now)
        left = self._total - done
        eta = 0.0 if left <= 0 else (left / rate if rate else None)
        self._sink(ProgressInfo(done, self._total, now - self._start, rate, eta, self._stored,
                                **self._extra))

    def update(self, done: int) -> None:
        """Reports that ``done`` points (in all) are finished."""
        now = self._clock()
        if self._first is None and done > 0:
            self._first = (now, done)
        self._report(done, now)

    def close(self) -> None:
        """Closes a bar's line (also after an error); callbacks are left alone."""
        if isinstance(self._sink, ProgressBar):
            self._sink.close()

    def __enter__(self) -> "ProgressTracker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
