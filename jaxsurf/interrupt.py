"""Clean interrupts: Ctrl-C (SIGINT) or SIGTERM never leaves half-written results.

The library side: an evaluation with ``store=`` that is interrupted saves the
chunks it finished and raises :class:`Interrupted` (a ``KeyboardInterrupt``,
so ``except KeyboardInterrupt`` still catches it) saying how many points are
safe and where. While a finished chunk is being written, SIGINT and SIGTERM
are held back (:func:`deferred`) and delivered right after the write.

The command-line side: :func:`run_command` runs a ``main`` with SIGTERM
turned into ``KeyboardInterrupt`` and ends an interrupted run with one line on
stderr and exit status 130, no traceback::

    interrupted: 288/625 points saved in runs/x/plane.store; rerun the same command to resume

Example:
    >>> def ctrl_c(info):          # as if Ctrl-C came after the first chunk
    ...     if info.done > 0:
    ...         raise KeyboardInterrupt
    >>> try:
    ...     s = js.evaluate_plane(fn, params, d1, d2, data, grid, grid, store="runs/p",
    ...                           chunk_size=4, progress=ctrl_c)
    ... except js.interrupt.Interrupted as stop:
    ...     print(stop.saved, stop.total, stop.where)
    4 25 runs/p
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._interrupt import Interrupted, run_command

__all__ = ["Interrupted", "run_command"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._interrupt", ("deferred",
    "terminate_as_interrupt", "report", "is_interrupt", "EXIT_STATUS",))
