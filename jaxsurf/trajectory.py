"""Record a training trajectory with orbax-checkpoint, and read it back in order.

:class:`TrajectoryRecorder` writes one orbax checkpoint per call to
:meth:`~TrajectoryRecorder.save` (typically one per epoch) into a directory:
the params, and optionally an extra ``state`` pytree (BatchNorm statistics,
optimizer state, epoch counters). Saves are asynchronous (the write to disk
overlaps the next epoch), but **no step is ever skipped**: each save first
waits for the previous one to finish. :func:`load_trajectory` yields the
recorded ``(step, params)`` in step order, holding one checkpoint in memory
at a time, which is what :func:`jaxsurf.pca_directions` streams over.

Without a ``*_like`` target, arrays come back as host numpy arrays with the
saved shapes and dtypes (bit-exact), whatever devices they were saved from;
containers come back as orbax stores them (dicts and lists; Python scalars as
0-d arrays). Give ``params_like`` / ``state_like`` (e.g. the freshly
initialised params and ``optimizer.init(params)``) to get the original
container types (FrozenDict, optax NamedTuples) and leaf types back.

Reading refuses, naming the entry, a step directory holding a symbolic link,
a FIFO or a device, orbax JSON metadata nested or sized beyond
:mod:`jaxsurf._io.jsonfile`'s bounds, and a leaf whose saved shape needs more than
:func:`jaxsurf._limits.max_read_bytes`, all before orbax reads anything.

Example:
    >>> import jaxsurf as js, optax
    >>> opt = optax.sgd(0.1)
    >>> opt_state = opt.init(params)
    >>> grad = jax.jit(jax.grad(lambda p: fn(p, data)["loss"]))
    >>> with js.TrajectoryRecorder("runs/traj") as rec:
    ...     for epoch in range(3):      # one full-batch step as an "epoch"
    ...         updates, opt_state = opt.update(grad(params), opt_state)
    ...         params = optax.apply_updates(params, updates)
    ...         rec.save(epoch, params, state={"opt": opt_state, "epoch": epoch})
    >>> for step, p in js.load_trajectory("runs/traj"):
    ...     print(step, p["Dense_0"]["kernel"].shape, js.tree.norm(p) > 0)
    0 (4, 8) True
    1 (4, 8) True
    2 (4, 8) True
"""

from jaxsurf._trajectory import TrajectoryRecorder, load_trajectory

__all__ = ["TrajectoryRecorder", "load_trajectory"]
