"""jaxsurf: see and measure the loss surfaces of neural networks, in JAX.

Example (the Li et al. 2018 filter-normalized plane of a Flax model)::

    import jax, numpy as np, jaxsurf as js
    fn, params = js.flax.adapt(model, variables, loss="cross_entropy")
    d1, d2 = js.random_plane(jax.random.key(0), params)          # filter-normalized
    grid = np.linspace(-1, 1, 21)
    surface = js.evaluate_plane(fn, params, d1, d2, data, grid, grid, batch_size=500)
    js.plot.contour(surface, out="contour.png")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from jaxsurf import _tree as tree
from jaxsurf._io.directions import DirectionFileError, load_directions, save_directions
from jaxsurf._io.h5 import read_reference_directions
from jaxsurf._version import __version__
from jaxsurf._directions import (between, describe_direction, normalize, orthogonalize,
                                random_direction, random_plane, random_planes)
from jaxsurf._monitor import Monitor
from jaxsurf._evaluate import (Engine, dataset_mean, evaluate_line, evaluate_plane,
                              evaluate_planes, evaluate_points, evaluate_volume, interpolate)
from jaxsurf._pca import pca_directions, project
from jaxsurf._progress import ProgressBar, ProgressInfo
from jaxsurf._ranges import auto_range
from jaxsurf._statistics import summary
from jaxsurf._refine import Refine
from jaxsurf._store import StoreError, StoreMismatchError
from jaxsurf._surface import Surface, SurfaceFileError
from jaxsurf._trajectory import TrajectoryRecorder, load_trajectory
from jaxsurf._volume import random_directions

# Submodules that pull in heavier dependencies load on first use: js.plot
# (matplotlib), js.export, js.flax (flax), js.equinox (equinox), js.losses, js.hessian,
# js.sharpness, js.topology, js.view (plotly), js.connect (optax; scipy for alignment).
if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads them
    from jaxsurf import (
    connect,
    _equinox as equinox,
    export,
    _flax as flax,
    _hessian as hessian,
    _losses as losses,
    _pca as pca,
    plot,
    _sharpness as sharpness,
    _topology as topology,
    view,
)

_LAZY_SUBMODULES = ("plot", "export", "flax", "equinox", "losses", "hessian", "sharpness", "pca",
                    "topology", "view", "connect")

__all__ = [
    "__version__",
    "tree",
    "Surface",
    "SurfaceFileError",
    "ProgressInfo",
    "ProgressBar",
    "StoreError",
    "StoreMismatchError",
    "random_direction",
    "normalize",
    "orthogonalize",
    "between",
    "random_plane",
    "random_planes",
    "random_directions",
    "describe_direction",
    "save_directions",
    "load_directions",
    "DirectionFileError",
    "read_reference_directions",
    "evaluate_line",
    "evaluate_plane",
    "evaluate_planes",
    "evaluate_volume",
    "evaluate_points",
    "Engine",
    "dataset_mean",
    "TrajectoryRecorder",
    "load_trajectory",
    "pca_directions",
    "project",
    "interpolate",
    "Refine",
    "Monitor",
    "auto_range",
    "summary",
    # the lazy submodules, spelled out so that type checkers see the exports
    "plot", "export", "flax", "equinox", "losses", "hessian", "sharpness", "pca", "topology",
    "view", "connect",
]
assert set(_LAZY_SUBMODULES) <= set(__all__), "list every lazy submodule in __all__"


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"jaxsurf.{name}")
    raise AttributeError(f"module 'jaxsurf' has no attribute {name!r}")
