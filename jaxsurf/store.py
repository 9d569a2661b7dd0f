"""Resumable stores of finished points: no finished work lost, no results mixed up.

A store is a directory::

    PATH/
      request.json              what was asked: fingerprints of the params and
                                directions, the grid, the data, the metric names,
                                the batch size and the jaxsurf version
      part-<pid>-<token>.npz    the points one run has finished (indices and the
                                metric values, float32 bit for bit), rewritten
                                atomically after every chunk

Every write goes to a hidden temporary file, is flushed to disk (``fsync``)
and then renamed over the old file (``os.replace``), so a run killed at any
moment leaves every part file whole and loses at most the chunk it was
evaluating. Each run writes only its own part file (``<token>`` is random, so
a reused process id never overwrites an older run's part); readers merge all
parts. ``request.json`` is created once, exclusively (``os.link`` fails if it
exists), so two processes starting together cannot record two requests.

Opening a store for a request that differs from ``request.json`` raises
:class:`StoreMismatchError` naming every field that differs; the store is
neither reused nor overwritten.

Reading opens only regular files inside the store (a part or
``request.json`` that is a symbolic link, a FIFO or a device is refused,
naming it), caps ``request.json`` at :data:`jaxsurf._io.jsonfile.MAX_JSON_CHARS`
and its nesting depth, and checks every part's arrays before reading
them (:class:`jaxsurf._io.npz.NpzReader`: no more indices than the grid has
points, no array above :func:`jaxsurf._limits.max_read_bytes`). ``request.json``
is a :class:`jaxsurf._io.header.Header` of format ``"jaxsurf.store"`` (no
``metadata`` field), read and checked like every jaxsurf file header.

Example:
    >>> s = js.evaluate_plane(fn, params, d1, d2, data, grid, grid, store="runs/plane")
    >>> # killed? run the same line again: only the missing points are evaluated.
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._store import StoreError, StoreMismatchError

__all__ = ["StoreError", "StoreMismatchError"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._store", ("PointStore", "make_request",
    "data_fingerprint", "stream_fingerprint", "differences", "FULL_HASH_BYTES",
    "SAMPLE_ROWS",))
