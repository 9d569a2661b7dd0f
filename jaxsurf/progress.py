"""Progress of long evaluations: a terminal bar, or the same facts for a callback.

The evaluation functions take ``progress=``:

* ``None`` (default): a bar on stderr when stderr is a terminal, else nothing;
* ``True`` / ``False``: the bar always / never;
* a callable: called with a :class:`ProgressInfo` once at the start
  (``done == 0``) and after every chunk of points (for notebooks and logs).

The bar is one line redrawn with a carriage return (plain stdlib, ASCII)::

    jaxsurf [#########-----------]  96/441 points  21%  12.3 points/s  ETA 0:28

Example:
    >>> log = []
    >>> s = js.evaluate_line(fn, params, d, data, np.linspace(-1, 1, 51),
    ...                      progress=log.append)
    >>> log[-1].done == log[-1].total
    True
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO, Union

__all__ = ["ProgressInfo", "ProgressBar", "ProgressTracker", "ProgressOption", "make_sink",
           "format_line"]


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
    """

    done: int
    total: int
    elapsed: float
    rate: float | None
    eta: float | None
    stored: int = 0

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


def _rate_text(rate: float | None) -> str:
    if rate is None or rate <= 0:
        return "-- points/s"
    if rate < 1:
        return f"{1 / rate:.1f} s/point"
    return f"{rate:.3g} points/s"


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
        return f"jaxsurf: all {info.stored} points from the store"[:width]
    count = f"{info.done}/{info.total} points"
    share = f"{100 * info.done // info.total:3d}%" if info.total else "100%"
    if info.finished:
        timing = f"{_rate_text(info.rate)}  in {_clock_text(info.elapsed)}"
    else:
        eta = "--:--" if info.eta is None else _clock_text(info.eta)
        timing = f"{_rate_text(info.rate)}  ETA {eta}"
    tail = f" {count} {share}  {timing}"
    if info.stored:
        tail += f"  (+{info.stored} from store)"
    bar_width = max(0, min(20, width - len("jaxsurf []") - len(tail)))
    filled = bar_width * info.done // info.total if info.total else bar_width
    bar = f" [{'#' * filled}{'-' * (bar_width - filled)}]" if bar_width >= 5 else ""
    return f"jaxsurf{bar}{tail}"[:width]


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
        progress: ``None`` (a bar when stderr is a terminal), ``True``,
            ``False`` or a callable taking a :class:`ProgressInfo`.

    Returns:
        The callable to report to, or ``None`` for no reports.

    Example:
        >>> make_sink(False) is None
        True
    """
    if progress is None:
        stderr = sys.stderr
        is_tty = stderr is not None and hasattr(stderr, "isatty") and stderr.isatty()
        return ProgressBar() if is_tty else None
    if progress is True:
        return ProgressBar()
    if progress is False:
        return None
    if callable(progress):
        return progress
    raise TypeError(f"progress must be None (a bar when stderr is a terminal), True, False or "
                    f"a callable taking a jaxsurf.progress.ProgressInfo; got {progress!r}")


class ProgressTracker:
    """Turns "this many points are done" into :class:`ProgressInfo` reports.

    Args:
        sink: where reports go (from :func:`make_sink`), or ``None``.
        total: points to evaluate in this call.
        stored: points already done (taken from a store).
        clock: seconds counter (for tests).

    Example:
        >>> with ProgressTracker(print, total=4) as track:
        ...     track.update(2); track.update(4)
    """

    def __init__(self, sink: Callable[[ProgressInfo], object] | None, total: int,
                 stored: int = 0, clock: Callable[[], float] = time.perf_counter) -> None:
        self._sink = sink
        self._total = total
        self._stored = stored
        self._clock = clock
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
        self._sink(ProgressInfo(done, self._total, now - self._start, rate, eta, self._stored))

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
