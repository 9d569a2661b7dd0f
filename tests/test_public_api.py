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
    "read_reference_directions",
    # evaluation
    "evaluate_line", "evaluate_plane", "evaluate_volume", "evaluate_points", "interpolate",
    "dataset_mean", "Engine",
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
    """Each name is what it says: a function, a class, a module, or the version string,
    and defined in jaxsurf (not a stray re-export or a placeholder)."""
    import inspect
    import types

    for name in js.__all__:
        value = getattr(js, name)
        if name == "__version__":
            assert isinstance(value, str) and value[:1].isdigit(), value
        elif isinstance(value, types.ModuleType):
            assert value.__name__ == f"jaxsurf.{name}", (name, value.__name__)
        else:
            assert inspect.isclass(value) or inspect.isfunction(value), (name, type(value))
            assert value.__module__.startswith("jaxsurf"), (name, value.__module__)
            assert value.__name__ == name, (name, value.__name__)
            assert value.__doc__, f"js.{name} has no docstring"


def test_an_unknown_name_says_so():
    try:
        js.evaluate_surface  # noqa: B018
    except AttributeError as err:
        assert "evaluate_surface" in str(err)
    else:  # pragma: no cover
        raise AssertionError("js.evaluate_surface should not exist")
