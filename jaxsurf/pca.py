"""Principal-component directions of a training trajectory, and the path projected on them.

Li et al. (2018, Sec. 7) draw the loss surface in the plane of the first two
principal components of the optimisation path: with checkpoints
``θ_0 … θ_{n-1}`` and an origin ``o`` (by default the last checkpoint), the
rows ``x_i = θ_i - o`` are centred (the mean row is subtracted, as in any
PCA) and their top principal axes become the plot's directions. The path is
then drawn on the contour of ``o + a d1 + b d2``.

Which rows: all ``n`` checkpoints, including the origin itself when it is
the last point (its row is zero). This is what the reference code does (its
list of epochs ends with the final model) and, because the rows are centred,
it makes the directions those of the cloud of recorded points, independent of
the origin: centring subtracts the mean row, and with it any common offset
``o``. (Dropping the origin's row would make the result depend on which
point is called the origin.) ``center=False`` gives the uncentred variant,
where the origin does matter.

Memory: the ``n × P`` matrix of rows (P parameters) is never formed. A first
streaming pass builds the ``n × n`` Gram matrix ``G = X Xᵀ`` block of rows by
block of rows (at most ``memory_budget`` bytes of rows held at once; each
checkpoint is read about ``1 + n·row_bytes / (2·memory_budget)`` times),
``G`` is centred and eigendecomposed in float64, and a second pass builds the
directions ``v_j = X_cᵀ u_j / σ_j`` one checkpoint at a time. A list in
memory goes through the same code.

Example:
    >>> import numpy as np, jaxsurf as js
    >>> trajectory          # a directory written by js.TrajectoryRecorder
    '.../traj'
    >>> (d1, d2), ratio = js.pca_directions(trajectory, ignore="biasbn")
    >>> with js.TrajectoryRecorder(trajectory) as rec:
    ...     final, _ = rec.restore(params_like=params)      # the last step: the origin
    >>> coords = js.project(trajectory, final, [d1, d2])
    >>> lo, hi = coords.min(0) - 0.2 * np.ptp(coords, 0), coords.max(0) + 0.2 * np.ptp(coords, 0)
    >>> s = js.evaluate_plane(fn, final, d1, d2, data, np.linspace(lo[0], hi[0], 21),
    ...                       np.linspace(lo[1], hi[1], 21))
    >>> fig = js.plot.pca_path(s, coords, explained_variance_ratio=ratio, out="pca_path.png")
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._pca import pca_directions, plot_path, project

__all__ = ["pca_directions", "plot_path", "project"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._pca", ("DEFAULT_MEMORY_BUDGET",))
