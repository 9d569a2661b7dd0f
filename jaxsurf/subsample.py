"""A fixed random subset of the data, and the standard error of each value.

``js.evaluate_plane(..., subsample=2_000, subsample_seed=0)`` evaluates every
point on the same random 2,000 examples of in-memory data (drawn without
replacement) instead of all of them, and adds ``<metric>_sem`` next to every
metric: the standard error of the subset mean as an estimate of the
full-data mean,

    sem = sqrt(s**2 / n * (N - n) / (N - 1)),

with ``s**2`` the sample variance of the ``n`` per-example values at that
point and ``N`` the data set's size (the finite-population correction: a
subset of all ``N`` examples has ``sem == 0``).

The same subset at every point (common random numbers) keeps differences
between neighbouring points free of subset noise, so contours stay smooth;
the ``_sem`` grids say how far each value may sit from the full-data value.

Per-example values come from ``fn`` applied to one example at a time under
``jax.vmap`` (the batching rules fold the example axis back into one batched
computation, so the cost is that of the batch). Within a batch the spread is
taken about the batch mean, and batches (and data-parallel devices) are
merged with Chan et al.'s pairwise update, so no large sums are subtracted.

Example:
    >>> alphas, betas = np.linspace(-1, 1, 5), np.linspace(-1, 1, 3)
    >>> s = js.evaluate_plane(fn, params, d1, d2, data, alphas, betas,
    ...                       subsample=64, subsample_seed=0, progress=False)
    >>> s.metrics["loss"].shape, s.metrics["loss_sem"].shape   # (len(alphas), len(betas))
    ((5, 3), (5, 3))
"""

from jaxsurf._deprecation import moved_names

__all__ = []

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._subsample", ("Moments", "draw", "batch_moments",
    "merge", "merge_replicas", "standard_error", "SEM_SUFFIX",))
