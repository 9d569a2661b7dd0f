"""An interactive viewer: one self-contained HTML page of one or more Surfaces.

The page holds everything it needs (plotly.js, shipped with the ``plotly``
Python package, is inlined; the data is embedded), so it opens offline, from
a supplement or a lab wiki, with no server. Per plane it draws a rotatable
3-D surface and a contour map of the same values; the hover text gives
alpha, beta and every metric; a switcher picks the metric (loss, accuracy,
their ``_sem`` standard errors ...) and a toggle draws ``log10`` of it; the
solution (the origin) is starred; training paths and curves carried by the
Surface are drawn on both views; several planes in one group share one colour
scale, one set of contour levels and one z range; a volume is drawn one
slice ``[:, :, k]`` at a time with a slider over gamma. Lines are drawn with
all their metrics (accuracy in % on a right axis, ``_sem`` as ±2 SEM error
bars).

Orientation: ``surface.metrics[name][i, j]`` is the value at
``(alphas[i], betas[j])``. Plotly indexes a surface's ``z`` as
``z[row][column]`` with rows along y, so the page draws ``z[j][i] =
metrics[name][i, j]`` with ``x = alphas`` and ``y = betas``.

Paths and curves a Surface may carry (JSON metadata, set by the caller):
``metadata["path_coordinates"]``: ``[[a, b], ...]`` (e.g. the PCA
projection of a training trajectory, from :func:`jaxsurf.project`), with
optional ``metadata["path_labels"]``; ``metadata["curves"]``: ``{name:
[[a, b], ...]}`` (e.g. connectivity curves in the plane's coordinates).

Values are embedded exactly (base64 of the float32 or float64 array), so the
page shows the numbers of the file, not rounded copies. plotly.js is about
4.8 MB of the page; a 51x51 plane adds about 30 kB per metric.

Example:
    >>> import numpy as np, jaxsurf as js
    >>> a, b = np.linspace(-1, 1, 21), np.linspace(-0.5, 0.5, 11)
    >>> A, B = np.meshgrid(a, b, indexing="ij")
    >>> s = js.Surface(a, b, {"loss": A**2 + 4 * B**2 + 0.1})
    >>> text = js.view.html(s, "page.html")

    From the command line (Surface files, or an experiment's ``--out`` folder
    with its ``results.json``)::

        python -m jaxsurf view runs/resnet56_noskip_quick --out page.html
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._surface import Surface  # noqa: F401  (kept importable from here, as before)
from jaxsurf.view._data import PathLike, Surfaces  # noqa: F401
from jaxsurf.view._page import html, write

__all__ = ["html", "write"]

# public before the face was narrowed (issue 24): they warn, then resolve as before (the
# command line's helpers: the default output path, a results folder's figure groups)
__getattr__ = moved_names(__name__, "jaxsurf.view._page", ("default_out", "folder_groups"))
