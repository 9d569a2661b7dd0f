"""`Surface`: the coordinates, metric arrays and metadata of one evaluation.

Orientation contract: for a plane, ``surface.metrics[name][i, j]`` is the
value at ``(alphas[i], betas[j])``; its shape is ``(len(alphas), len(betas))``.
For a line (or an interpolation) ``betas`` is ``None`` and each metric has
shape ``(len(alphas),)``. A volume (three directions) has a third axis
``gammas``: ``metrics[name][i, j, k]`` is at ``(alphas[i], betas[j], gammas[k])``.

Example:
    >>> import numpy as np, jaxsurf as js
    >>> s = js.Surface(np.linspace(-1, 1, 3), None, {"loss": np.array([2., 1., 2.])})
    >>> s.save("line.npz")
    PosixPath('line.npz')
    >>> js.Surface.load("line.npz").metrics["loss"]
    array([2., 1., 2.])
"""

from jaxsurf._surface import SEM_SUFFIX, Surface, SurfaceFileError

__all__ = ["SEM_SUFFIX", "Surface", "SurfaceFileError"]
