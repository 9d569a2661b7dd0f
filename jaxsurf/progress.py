"""Progress of long runs: a terminal bar, plain log lines, or a callback.

The evaluation functions (and :func:`jaxsurf.train.fit`) take ``progress=``:

* ``None`` (default): a bar on stderr when stderr is a terminal, else plain
  log lines on stderr (:class:`ProgressLog`: a batch job, ``nohup``, CI);
* ``True`` / ``False``: the bar always / nothing;
* a callable: called with a :class:`ProgressInfo` once at the start
  (``done == 0``) and after every chunk of points (for notebooks and logs).

The bar is one line redrawn with a carriage return (plain stdlib, ASCII)::

    jaxsurf [#########-----------]  96/441 points  21%  12.3 points/s  ETA 0:28

The log writes whole lines only (no ``\\r``): one at the start, then one each
time another 10 % is done or 60 s have passed since the last line, and one at
the end::

    jaxsurf: resuming: 128 of 441 points from the store; 313 to do on 4 devices
    jaxsurf: 96/313 points (30%), 12.3 points/s, ETA 0:17
    jaxsurf: done: 313 points in 0:25 (12.5 points/s); 128 more from the store

Training reports steps the same way (``unit="steps"``, ``label="epoch 2/3"``).

Example:
    >>> log = []
    >>> s = js.evaluate_line(fn, params, d, data, np.linspace(-1, 1, 51),
    ...                      progress=log.append)
    >>> log[-1].done == log[-1].total
    True
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._progress import ProgressBar, ProgressInfo, ProgressLog

__all__ = ["ProgressBar", "ProgressInfo", "ProgressLog"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._progress", ("ProgressTracker", "ProgressOption",
    "make_sink", "format_line", "log_line",))
