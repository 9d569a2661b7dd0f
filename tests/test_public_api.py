"""The public API is pinned: every public namespace (``jaxsurf`` and each module or
package whose dotted path has no part starting with ``_``) exports exactly the
names below in ``__all__``. Adding or removing a name is a deliberate, reviewed
change: edit :data:`NAMESPACES` (and, for a removal, keep the old name working as a
deprecated alias listed in :data:`DEPRECATED`). The implementation lives in
private modules; a public module is a face that re-exports it (issue 24)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import types
import warnings

import pytest

import jaxsurf as js

# --- pinned (generated from the tree, then reviewed: edit by hand)
NAMESPACES: dict[str, list[str]] = {
    "jaxsurf": [
        "DirectionFileError", "Engine", "Monitor", "ProgressBar", "ProgressInfo", "Refine",
        "StoreError",
        "StoreMismatchError", "Surface", "SurfaceFileError", "TrajectoryRecorder", "__version__",
        "auto_range", "between", "connect", "dataset_mean", "describe_direction", "equinox",
        "evaluate_line",
        "evaluate_plane", "evaluate_planes", "evaluate_points", "evaluate_volume", "export",
        "flax", "hessian", "interpolate", "load_directions", "load_trajectory", "losses",
        "normalize", "orthogonalize", "pca", "pca_directions", "plot", "project",
        "random_direction", "random_directions", "random_plane", "random_planes",
        "read_reference_directions", "save_directions",
        "sharpness", "summary", "topology", "tree", "view",
    ],
    "jaxsurf.batching": [
    ],
    "jaxsurf.cli": [
        "Command", "main", "register",
    ],
    "jaxsurf.connect": [
        "Barrier", "BatchStatsRecompute", "Curve", "CurvePlane", "GaripovConvention", "Group",
        "KINDS",
        "PermutationSpec", "activation_matching", "align", "apply_permutation",
        "attention_spec", "barrier", "combine_specs", "conv_spec", "curve_coefficients",
        "curve_path",
        "curve_plane", "evaluate_curve", "evaluate_path", "fit_curve", "line", "load_curve",
        "merge", "mlp_spec", "plane_coordinates", "plane_through", "recompute_batch_stats",
        "repair_path", "resnet_spec", "slerp", "task_plane", "weight_matching",
    ],
    "jaxsurf.data": [
        "FASHION_MNIST_CLASSES", "IDXFormatError", "N_LANDMARKS", "N_TARGETS", "augment",
        "channel_stats", "fake_image_dataset", "find_dgex_files", "find_fashion_mnist",
        "load_fashion_mnist", "load_gene_expression", "load_tfds", "random_crop", "random_flip",
        "load_python_source", "read_idx", "split_validation", "standardize",
        "synthetic_gene_expression",
    ],
    "jaxsurf.data.augment": [
        "augment", "random_crop", "random_flip",
    ],
    "jaxsurf.data.fashion_mnist": [
        "CLASS_NAMES", "DEFAULT_DIRS", "find_fashion_mnist", "load_fashion_mnist", "standardize",
    ],
    "jaxsurf.data.gene_expression": [
        "N_LANDMARKS", "N_TARGETS", "SYNTHETIC_SIZES", "find_dgex_files", "load_gene_expression",
        "synthetic_gene_expression",
    ],
    "jaxsurf.data.idx": [
        "IDXFormatError", "read_idx",
    ],
    "jaxsurf.data.preprocess": [
        "channel_stats", "split_validation", "standardize",
    ],
    "jaxsurf.data.python_source": [
        "PAD", "file_split", "load_python_source", "python_files", "stdlib_root", "to_sequences",
    ],
    "jaxsurf.data.tfds_loader": [
        "DEFAULT_SPLITS", "IMAGE_SHAPES", "NUM_CLASSES", "center_crop_resize",
        "fake_image_dataset", "load_tfds",
    ],
    "jaxsurf.directions": [
        "between", "describe_direction", "head_filter_axis", "normalize", "orthogonalize",
        "random_direction", "random_plane", "random_planes",
    ],
    "jaxsurf.distributed": [
        "plan_mesh",
    ],
    "jaxsurf.equinox": [
        "adapt",
    ],
    "jaxsurf.evaluate": [
        "Engine", "dataset_mean", "evaluate_line", "evaluate_plane", "evaluate_planes",
        "evaluate_points", "evaluate_volume", "interpolate",
    ],
    "jaxsurf.export": [
        "write_csv", "write_h5", "write_vti", "write_vtp",
    ],
    "jaxsurf.flax": [
        "adapt", "linen_metrics_fn",
    ],
    "jaxsurf.hessian": [
        "convexity_map", "dataset_mean", "hessian_plane", "hvp", "hvp_operator",
        "mean_over_batches", "output_split", "plot_convexity", "plot_spectrum",
        "spectral_density",
        "top_eigenpairs", "trace",
    ],
    "jaxsurf.interrupt": [
        "Interrupted", "run_command",
    ],
    "jaxsurf.losses": [
        "accuracy", "cross_entropy", "get_loss", "mae", "mse", "next_token_cross_entropy",
        "perplexity", "tokens_per_example",
    ],
    "jaxsurf.models": [
        "BasicBlock", "Bottleneck", "DenseNetBC", "DenseRegressor", "ResNet50", "ResNetCIFAR",
        "ResNetImageNet", "SmallCNN", "TAAF", "available", "build", "densenet_bc100",
        "TransformerLM", "densenet_bc_small", "num_params", "resnet110", "resnet20", "resnet50",
        "resnet56",
    ],
    "jaxsurf.models.dense": [
        "DenseRegressor", "TAAF",
    ],
    "jaxsurf.models.densenet": [
        "DenseNetBC", "densenet_bc100", "densenet_bc_small",
    ],
    "jaxsurf.models.resnet_cifar": [
        "BasicBlock", "ResNetCIFAR", "resnet110", "resnet20", "resnet56",
    ],
    "jaxsurf.models.resnet_imagenet": [
        "Bottleneck", "ResNet50", "ResNetImageNet", "resnet50",
    ],
    "jaxsurf.models.small_cnn": [
        "SmallCNN",
    ],
    "jaxsurf.models.transformer": [
        "Block", "CausalSelfAttention", "TransformerLM", "filter_axes", "partition_specs",
        "rotary_embedding",
    ],
    "jaxsurf.pca": [
        "pca_directions", "plot_path", "project",
    ],
    "jaxsurf.plot": [
        "animate", "basins", "compare", "connectivity_lines", "connectivity_plane", "contour",
        "contour_levels", "convexity", "difference", "filled", "heatmap", "line", "mark_minima",
        "pca_path", "persistence", "slices", "small_multiples", "spectrum", "surface3d",
        "training_curves", "training_history",
    ],
    "jaxsurf.progress": [
        "ProgressBar", "ProgressInfo", "ProgressLog",
    ],
    "jaxsurf.refine": [
        "Refine", "simulate",
    ],
    "jaxsurf.sharpness": [
        "adaptive_sharpness", "average_sharpness", "epsilon_sharpness", "sam_sharpness",
    ],
    "jaxsurf.store": [
        "StoreError", "StoreMismatchError",
    ],
    "jaxsurf.subsample": [
    ],
    "jaxsurf.surface": [
        "SEM_SUFFIX", "Surface", "SurfaceFileError",
    ],
    "jaxsurf.topology": [
        "Basin", "DEFAULT_RELATIVE_THRESHOLD", "merge_tree", "persistence", "summary",
    ],
    "jaxsurf.train": [
        "OPTIMIZERS", "TrainConfig", "TrainResult", "best_epoch", "fit", "make_optimizer",
        "make_schedule", "plot_history", "read_log",
    ],
    "jaxsurf.trajectory": [
        "TrajectoryRecorder", "load_trajectory",
    ],
    "jaxsurf.tree": [
        "PyTree", "add", "axpy", "check_like", "dot", "fingerprint", "leaf_path", "norm", "scale",
        "sub", "zeros_like",
    ],
    "jaxsurf.view": [
        "html", "write",
    ],
    "jaxsurf.volume": [
        "random_directions",
    ],
}

DEPRECATED: dict[str, tuple[str, list[str]]] = {
    "jaxsurf.batching": ("jaxsurf._batching", [
        "DEFAULT_BATCH_SIZE", "SplitData", "is_in_memory", "iter_batches", "num_examples",
        "split_batches", "to_host_arrays",
    ]),
    "jaxsurf.cli": ("jaxsurf._cli", [
        "COMMANDS", "UsageError", "beside", "describe", "plot_surface",
    ]),
    "jaxsurf.directions": ("jaxsurf._directions", [
        "METHODS",
    ]),
    "jaxsurf.distributed": ("jaxsurf._distributed", [
        "AXES", "as_mesh", "broadcast_from_first", "mesh_shape", "put", "spans_processes",
        "to_host",
    ]),
    "jaxsurf.evaluate": ("jaxsurf._evaluate", [
        "DEFAULT_CHUNK_SIZE", "LIBRARY_METADATA_KEYS",
    ]),
    "jaxsurf.export": ("jaxsurf._io.export", [
        "height_field",
    ]),
    "jaxsurf.flax": ("jaxsurf._flax", [
        "eval_mode_kwargs", "split_batch",
    ]),
    "jaxsurf.interrupt": ("jaxsurf._interrupt", [
        "EXIT_STATUS", "deferred", "is_interrupt", "report", "terminate_as_interrupt",
    ]),
    "jaxsurf.losses": ("jaxsurf._losses", [
        "LOSSES", "check_labels", "label_classes",
    ]),
    "jaxsurf.pca": ("jaxsurf._pca", [
        "DEFAULT_MEMORY_BUDGET",
    ]),
    "jaxsurf.progress": ("jaxsurf._progress", [
        "ProgressOption", "ProgressTracker", "format_line", "log_line", "make_sink",
    ]),
    "jaxsurf.refine": ("jaxsurf._refine", [
        "FILLS", "SCALES", "bilinear_fill", "cell_midpoints", "plan_start", "quadratic_fill",
        "runner",
    ]),
    "jaxsurf.store": ("jaxsurf._store", [
        "FULL_HASH_BYTES", "PointStore", "SAMPLE_ROWS", "data_fingerprint", "differences",
        "make_request", "stream_fingerprint",
    ]),
    "jaxsurf.subsample": ("jaxsurf._subsample", [
        "Moments", "SEM_SUFFIX", "batch_moments", "draw", "merge", "merge_replicas",
        "standard_error",
    ]),
    "jaxsurf.tree": ("jaxsurf._tree", [
        "check_arrays", "check_finite", "is_float_leaf", "to_numpy",
    ]),
    "jaxsurf.view": ("jaxsurf.view._page", [
        "default_out", "folder_groups",
    ]),
}
# --- end pinned


def public_namespaces() -> list[str]:
    found = ["jaxsurf"]
    for info in pkgutil.walk_packages(js.__path__, "jaxsurf."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            found.append(info.name)
    return sorted(found)


def test_every_public_namespace_is_pinned():
    found = set(public_namespaces())
    assert found == set(NAMESPACES), (
        f"unpinned: {sorted(found - set(NAMESPACES))}, gone: {sorted(set(NAMESPACES) - found)}")


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_all_is_pinned(namespace):
    module = importlib.import_module(namespace)
    names = list(module.__all__)
    pinned = set(NAMESPACES[namespace])
    assert set(names) == pinned, (
        f"{namespace}: added {sorted(set(names) - pinned)}, removed {sorted(pinned - set(names))}")
    assert len(names) == len(set(names)), f"a name is listed twice in {namespace}.__all__"


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
def test_every_pinned_name_resolves(namespace):
    module = importlib.import_module(namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a public name never warns
        for name in NAMESPACES[namespace]:
            assert getattr(module, name) is not None or name == "__version__", (namespace, name)


@pytest.mark.parametrize("namespace", sorted(DEPRECATED))
def test_deprecated_aliases_warn_and_resolve(namespace):
    module = importlib.import_module(namespace)
    private, names = DEPRECATED[namespace]
    implementation = importlib.import_module(private)
    for name in names:
        assert name not in module.__all__, (namespace, name)
        with pytest.warns(DeprecationWarning, match=rf"{namespace}\.{name}\b"):
            value = getattr(module, name)
        assert value is getattr(implementation, name), (namespace, name)


def faces() -> list[str]:
    """Public modules whose implementation is a private sibling ``_<name>``."""
    return [namespace for namespace in sorted(NAMESPACES) if "." in namespace
            and importlib.util.find_spec("{0}._{1}".format(*namespace.rsplit(".", 1)))]


@pytest.mark.parametrize("namespace", faces())
def test_faces_hold_no_internals(namespace):
    """A face module defines nothing itself: what it holds is its ``__all__``, the
    deprecation hook, and module dunders."""
    module = importlib.import_module(namespace)
    extra = {name for name in vars(module)
             if name.isidentifier() and not name.startswith("_")} - set(module.__all__)
    assert extra <= {"moved_names", "annotations"}, (namespace, sorted(extra))


def test_every_public_name_resolves():
    """Each name of ``js`` is what it says: a function, a class, a module, or the
    version string, and defined in jaxsurf (not a stray re-export or a placeholder)."""
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
    with pytest.raises(AttributeError, match="no_such_name"):
        js.store.no_such_name  # noqa: B018
