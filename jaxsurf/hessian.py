"""Curvature of the exact dataset-mean loss: Hessian-vector products, extreme
eigenpairs (Lanczos), trace (Hutchinson or Hutch++), spectral density (stochastic
Lanczos quadrature), Hessian-eigenvector planes and convexity maps; each of
``hvp``, ``hvp_operator``, ``top_eigenpairs``, ``trace`` and ``spectral_density``
also works on the Gauss–Newton (``operator="ggn"``) and empirical Fisher
(``operator="fisher"``) operators (``docs/curvature.md``).

Every quantity here is about the Hessian of the *whole data set's* mean loss
``L(w) = (1/N) sum_i loss_i(w)``, never of one mini-batch. Hessian-vector
products are forward-over-reverse (``jax.jvp`` of ``jax.grad``) per batch;
for in-memory data the batches are put on the device once and every product
runs one jitted step per batch, accumulating on the device with the short
last batch weighted by its size (see :func:`mean_over_batches` for why this is a
loop of jitted steps and not a ``lax.scan``). The jitted step takes the
params and the vector as traced arguments, so Lanczos, Hutchinson and
convexity maps compile it once.

Cost, in units of one HVP over the data (about 2.5 gradients: 2.3x for
ResNet-20 and 2.6x for a dense net on CPU, ``benchmarks/hvp_cost.py``):
``top_eigenpairs`` ``num_iterations``;
``trace`` ``num_samples``; ``spectral_density`` ``num_probes *
num_iterations``; ``convexity_map`` ``grid points * num_iterations``.

Example:
    >>> import jax, numpy as np, jaxsurf as js
    >>> values, vectors = js.hessian.top_eigenpairs(fn, params, data, k=2,
    ...                                              key=jax.random.key(0))
    >>> d1, d2 = vectors                      # or js.hessian.hessian_plane(...)
    >>> s = js.evaluate_plane(fn, params, d1, d2, data, np.linspace(-1, 1, 21),
    ...                       np.linspace(-1, 1, 21))
"""

from jaxsurf._hessian import (
    convexity_map,
    dataset_mean,
    hessian_plane,
    hvp,
    hvp_operator,
    mean_over_batches,
    output_split,
    plot_convexity,
    plot_spectrum,
    spectral_density,
    top_eigenpairs,
    trace,
)

__all__ = ["convexity_map", "dataset_mean", "hessian_plane", "hvp", "hvp_operator",
           "mean_over_batches", "output_split", "plot_convexity", "plot_spectrum",
           "spectral_density",
           "top_eigenpairs", "trace"]
