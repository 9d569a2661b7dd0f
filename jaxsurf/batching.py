"""Turning user data into device-resident batches whose means combine exactly.

Internal since issue 24: the implementation is :mod:`jaxsurf._batching`, and every
evaluator takes ``batch_size=`` (or ``js.Engine(batch_size=...)``) instead. The
old names (``split_batches``, ``iter_batches``, ``DEFAULT_BATCH_SIZE`` ...) still
resolve here with a :class:`DeprecationWarning`.
"""

from jaxsurf._deprecation import moved_names

__all__: list[str] = []

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._batching", ("SplitData", "is_in_memory",
    "num_examples", "split_batches", "iter_batches", "to_host_arrays", "DEFAULT_BATCH_SIZE",))
