"""The implementation of :mod:`jaxsurf.interrupt`; its public face, with the
documentation and examples, is ``jaxsurf/interrupt.py``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator, Sequence

__all__ = ["Interrupted", "deferred", "terminate_as_interrupt", "run_command", "report",
           "is_interrupt",
           "EXIT_STATUS"]

EXIT_STATUS = 130  # 128 + SIGINT, what shells report for a Ctrl-C
_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None))
                 if s is not None)


class Interrupted(KeyboardInterrupt):
    """An interrupted run whose finished work is saved.

    Args:
        saved: units saved (points of a surface, epochs of a training run).
        total: units the whole run has.
        where: where they are saved (a store or run directory).
        unit: what ``saved`` counts (``"points"``, ``"epochs"``).

    Example:
        >>> str(Interrupted(288, 625, "runs/x/store"))
        'interrupted: 288/625 points saved in runs/x/store; rerun the same command to resume'
    """

    def __init__(self, saved: int, total: int, where: str | os.PathLike, unit: str = "points"
                 ) -> None:
        self.saved, self.total, self.where, self.unit = saved, total, os.fspath(where), unit
        super().__init__(self.message())

    def message(self, resume: str = "rerun the same command to resume") -> str:
        """The one-line report, ending with how to resume."""
        return (f"interrupted: {self.saved}/{self.total} {self.unit} saved in {self.where}; "
                f"{resume}")

    def __str__(self) -> str:
        return self.message()


def is_interrupt(err: BaseException) -> bool:
    """True for a ``KeyboardInterrupt``, also one raised inside a JAX host callback
    (``jax.debug.print``/``callback``), which JAX hands on as a ``RuntimeError``
    whose text holds the callback's traceback.

    Example:
        >>> is_interrupt(KeyboardInterrupt()), is_interrupt(ValueError("x"))
        (True, False)
    """
    if isinstance(err, KeyboardInterrupt):
        return True
    return isinstance(err, RuntimeError) and "KeyboardInterrupt" in str(err)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deferred(signals: Sequence[int] = _SIGNALS) -> Iterator[None]:
    """Holds SIGINT/SIGTERM back inside the block and delivers them after it.

    Used around the write of a finished chunk, so that a signal cannot cut it
    short. Outside the main thread (where Python cannot set handlers) and for
    ignored signals, nothing changes.

    Example:
        >>> got = []
        >>> previous = signal.signal(signal.SIGTERM, lambda *_: got.append("SIGTERM"))
        >>> with deferred():
        ...     signal.raise_signal(signal.SIGTERM)
        ...     print("written", got)      # held back inside the block
        written []
        >>> got                            # delivered right after it
        ['SIGTERM']
        >>> _ = signal.signal(signal.SIGTERM, previous)
    """
    if not _in_main_thread():
        yield
        return
    received: list[int] = []
    previous: dict[int, Any] = {}
    for sig in signals:
        handler = signal.getsignal(sig)
        if handler is None or handler is signal.SIG_IGN:
            continue
        previous[sig] = signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(received):  # each at most once, in arrival order
            signal.raise_signal(sig)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM raises ``KeyboardInterrupt``, like Ctrl-C
    (so a batch system's stop saves the finished work the same way).

    Example:
        >>> with terminate_as_interrupt():
        ...     try:
        ...         signal.raise_signal(signal.SIGTERM)
        ...     except KeyboardInterrupt as stop:
        ...         print("caught", stop)
        caught signal SIGTERM
    """
    sigterm = getattr(signal, "SIGTERM", None)
    if sigterm is None or not _in_main_thread():
        yield
        return
    previous = signal.signal(sigterm, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(sigterm, previous)


def report(stop: BaseException) -> str:
    """The one line an interrupted command ends with."""
    if isinstance(stop, Interrupted):
        return stop.message()
    return "interrupted; finished work is kept: rerun the same command to resume"


def run_command(main: Callable[[], Any]) -> int:
    """Runs ``main()`` as a command: SIGTERM acts like Ctrl-C, and an interrupt
    ends with one line on stderr and status 130 instead of a traceback.

    Args:
        main: the command's body; its return value is ignored unless an int.

    Returns:
        The exit status: ``main``'s int result (else 0), or 130 when interrupted.

    Example:
        >>> if __name__ == "__main__":
        ...     raise SystemExit(run_command(main))
    """
    try:
        with terminate_as_interrupt():
            result = main()
    except BaseException as stop:
        if not is_interrupt(stop):
            raise
        print(report(stop), file=sys.stderr, flush=True)
        return EXIT_STATUS
    return result if isinstance(result, int) and not isinstance(result, bool) else 0
