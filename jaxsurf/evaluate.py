"""Exact dataset means of ``fn`` at points ``origin + sum_k c_k d_k``.

How it is fast by construction:

* the data set is put on the device once per call; full batches are
  ``lax.scan``-ned inside one jitted function and the short last batch is
  evaluated in the same function, weighted by its size;
* grid coordinates are traced arguments: a whole surface compiles once
  (chunks of points have one fixed shape; the last chunk is padded by
  repeating its last point, and the repeats are dropped);
* inside a chunk, ``lax.map(..., batch_size=points_per_step)`` evaluates
  ``points_per_step`` points at a time with ``vmap``. The default of 1
  (points one after another) is the measured choice for conv nets on CPU:
  see ``benchmarks/points_per_step.py`` and ``docs/benchmarks.md``;
* the work is split over a ``("points", "data")`` device mesh with
  ``jax.shard_map`` (:mod:`jaxsurf.distributed`): by default every device
  (of every process, after ``jax.distributed.initialize``) evaluates its share
  of the points of every chunk over a copy of the data, and the chunk's values
  are all-gathered so that every process has them all. When that would leave
  devices idle (few points) the batches are split over the ``"data"`` axis
  instead and the per-device sums are added, still exact;
* ``compute_dtype=jnp.bfloat16`` runs ``fn`` on bf16 params and inputs while
  the combination ``origin + sum_k c_k d_k`` and every sum stay float32.

Long runs: ``store=PATH`` saves every finished chunk atomically and a rerun
evaluates only the missing points (:mod:`jaxsurf.store`); an interrupt
(Ctrl-C, SIGTERM) then raises :class:`jaxsurf.interrupt.Interrupted` after the
finished chunks are saved. ``progress=`` shows a bar with rate and ETA, log
lines, or feeds a callback (:mod:`jaxsurf.progress`).
Non-finite values are kept as they are, counted in
``metadata["nonfinite"]`` and reported in one warning. See
``docs/robustness.md``.

Example:
    >>> surface = js.evaluate_plane(fn, params, d1, d2, data,
    ...                             np.linspace(-1, 1, 21), np.linspace(-1, 1, 21))
    >>> surface.metrics["loss"].shape
    (21, 21)
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._evaluate import (
    Engine,
    dataset_mean,
    evaluate_line,
    evaluate_plane,
    evaluate_planes,
    evaluate_points,
    evaluate_volume,
    interpolate,
)

__all__ = ["Engine", "dataset_mean", "evaluate_line", "evaluate_plane", "evaluate_planes",
           "evaluate_points",
           "evaluate_volume", "interpolate"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._evaluate", ("DEFAULT_CHUNK_SIZE",
                                                      "LIBRARY_METADATA_KEYS"))
