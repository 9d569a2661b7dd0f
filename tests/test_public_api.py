"""The public API is pinned: a name leaves ``js.__all__`` only on purpose
(with a deprecation alias), and every listed name resolves."""

from __future__ import annotations

import jaxsurf as js

PUBLIC = {
    "__version__", "tree", "Surface", "SurfaceFileError", "ProgressInfo", "ProgressBar",
    "StoreError", "StoreMismatchError", "DirectionFileError", "Refine",
    # directions
    "random_direction", "random_directions", "normalize", "orthogonalize", "between",
    "random_plane", "describe_direction", "save_directions", "load_directions",
    # evaluation
    "evaluate_line", "evaluate_plane", "evaluate_volume", "evaluate_points", "interpolate",
    "dataset_mean",
    # trajectories
    "TrajectoryRecorder", "load_trajectory", "pca_directions", "project",
    # submodules, loaded on first use
    "plot", "export", "flax", "equinox", "losses", "hessian", "sharpness", "pca",
    "topology", "view", "connect",
}


def test_all_is_pinned():
    assert set(js.__all__) == PUBLIC, (
        f"added: {sorted(set(js.__all__) - PUBLIC)}, removed: {sorted(PUBLIC - set(js.__all__))}")
    assert len(js.__all__) == len(set(js.__all__)), "a name is listed twice in js.__all__"


def test_every_public_name_resolves():
    for name in js.__all__:
        assert getattr(js, name) is not None, name


def test_an_unknown_name_says_so():
    try:
        js.evaluate_surface  # noqa: B018
    except AttributeError as err:
        assert "evaluate_surface" in str(err)
    else:  # pragma: no cover
        raise AssertionError("js.evaluate_surface should not exist")
