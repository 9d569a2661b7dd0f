"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from its IDX files.

Looks in ``data_dir`` when given; otherwise in
``/usr/share/datasets/fashion-mnist`` (Debian package
``dataset-fashion-mnist``), then in tensorflow-datasets if it is installed
and has the data prepared. 60,000 training and 10,000 test images of 28x28
gray pixels in 10 classes; a validation split is carved from the training
set with a fixed seed.

Example:
    >>> from jaxsurf.data import load_fashion_mnist, channel_stats, standardize
    >>> ds = load_fashion_mnist()
    >>> ds["train"]["x"].shape, ds["val"]["x"].shape, ds["test"]["y"].dtype
    ((55000, 28, 28, 1), (5000, 28, 28, 1), dtype('int32'))
    >>> mean, std = channel_stats(ds["train"]["x"])
    >>> x_test = standardize(ds["test"]["x"], mean, std)
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np

from jaxsurf.data.idx import IDXFormatError, read_idx
from jaxsurf.data.preprocess import split_validation, standardize

__all__ = ["DEFAULT_DIRS", "CLASS_NAMES", "load_fashion_mnist", "find_fashion_mnist",
           "standardize"]

DEFAULT_DIRS: tuple[str, ...] = ("/usr/share/datasets/fashion-mnist",)
CLASS_NAMES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_HOW_TO_GET = ("Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files go "
               "to /usr/share/datasets/fashion-mnist), or download the four *-ubyte.gz files "
               "from https://github.com/zalandoresearch/fashion-mnist and pass "
               "data_dir=<their folder>, or `pip install 'jaxsurf[tfds]'` and prepare "
               "tensorflow-datasets' 'fashion_mnist'.")


def _file_in(directory: str, stem: str) -> str | None:
    """The path of one IDX file in ``directory`` (raw or .gz, '-' or '.' before idx)."""
    variants = {stem, stem.replace("-idx", ".idx")}
    for name in sorted(variants):
        for suffix in (".gz", ""):
            path = os.path.join(directory, name + suffix)
            if os.path.isfile(path):
                return path
    return None


def find_fashion_mnist(data_dir: str | os.PathLike | None = None) -> tuple[dict[str, str] | None,
                                                                              list[str]]:
    """Finds the four IDX files.

    Args:
      data_dir: a folder to look in; ``None`` looks in ``DEFAULT_DIRS``.

    Returns:
      ``(paths, looked)``: ``paths`` maps ``train_x``/``train_y``/``test_x``/
      ``test_y`` to files (``None`` if some folder did not hold all four), and
      ``looked`` describes every place searched.

    Example:
      >>> paths, looked = find_fashion_mnist("/nonexistent")
      >>> paths is None, looked[0].startswith("/nonexistent")
      (True, True)
    """
    dirs = [os.fspath(data_dir)] if data_dir is not None else list(DEFAULT_DIRS)
    looked: list[str] = []
    for directory in dirs:
        if not os.path.isdir(directory):
            looked.append(f"{directory} (no such directory)")
            continue
        paths = {key: _file_in(directory, stem) for key, stem in _FILES.items()}
        found = {k: p for k, p in paths.items() if p is not None}
        missing = [_FILES[k] + "[.gz]" for k, p in paths.items() if p is None]
        if not missing:
            return found, looked + [directory]
        looked.append(f"{directory} (missing {', '.join(missing)})")
    return None, looked


def _read_split(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, expected_ndim=3)
    labels = read_idx(labels_path, expected_ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise IDXFormatError(f"{images_path}, {labels_path}: expected unsigned-byte IDX data")
    if images.shape[1:] != (28, 28):
        raise IDXFormatError(f"{images_path}: images are {images.shape[1:]}, expected (28, 28)")
    if labels.shape[0] != images.shape[0]:
        raise IDXFormatError(f"{labels_path}: {labels.shape[0]} labels for "
                             f"{images.shape[0]} images in {images_path}")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise IDXFormatError(f"{labels_path}: label {labels.max()} out of range 0..9")
    return images[..., None], labels.astype(np.int32)


def _from_tfds(validation: int, seed: int) -> tuple[dict[str, Any] | None, str]:
    """Tries tensorflow-datasets without downloading; returns (dataset, why-not)."""
    try:
        importlib.import_module("tensorflow_datasets")  # optional: is it installed?
    except ImportError:
        return None, "tensorflow-datasets (not installed)"
    from jaxsurf.data.tfds_loader import load_tfds
    try:
        return load_tfds("fashion_mnist", validation=validation, seed=seed), ""
    except Exception as e:  # noqa: BLE001 - any tfds failure means "not available here"
        return None, f"tensorflow-datasets 'fashion_mnist' ({type(e).__name__}: {e})"


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, *, validation: int = 5000,
                       seed: int = 0) -> dict[str, Any]:
    """Loads Fashion-MNIST into host memory.

    Args:
      data_dir: folder with ``train-images-idx3-ubyte[.gz]``,
        ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]`` and
        ``t10k-labels-idx1-ubyte[.gz]``. ``None`` looks in
        ``/usr/share/datasets/fashion-mnist``, then tensorflow-datasets.
      validation: training examples held out as the validation split (0 for none).
      seed: seed of the validation split.

    Returns:
      ``{"train": {"x", "y"}, "val": {"x", "y"}, "test": {"x", "y"}, "name",
      "num_classes", "synthetic", "source", "class_names"}``; ``x`` is uint8
      ``(N, 28, 28, 1)``, ``y`` int32 ``(N,)``. Train + val hold the 60,000
      training images, test the 10,000 test images.

    Raises:
      FileNotFoundError: the data set is nowhere; the message lists every place
        looked and how to get it.
      IDXFormatError: a file is corrupt (bad magic number or size).

    Example:
      >>> ds = load_fashion_mnist(validation=10_000)
      >>> len(ds["train"]["y"]), len(ds["val"]["y"])
      (50000, 10000)
    """
    paths, looked = find_fashion_mnist(data_dir)
    if paths is None:
        if data_dir is None:
            dataset, why_not = _from_tfds(validation, seed)
            if dataset is not None:
                return dataset
            looked.append(why_not)
        raise FileNotFoundError("Fashion-MNIST not found. Looked in: " + "; ".join(looked)
                                + ". " + _HOW_TO_GET)
    train_x, train_y = _read_split(paths["train_x"], paths["train_y"])
    test_x, test_y = _read_split(paths["test_x"], paths["test_y"])
    train_idx, val_idx = split_validation(len(train_y), validation, seed)
    return {
        "train": {"x": train_x[train_idx], "y": train_y[train_idx]},
        "val": {"x": train_x[val_idx], "y": train_y[val_idx]},
        "test": {"x": test_x, "y": test_y},
        "name": "fashion_mnist",
        "num_classes": len(CLASS_NAMES),
        "synthetic": False,
        "source": os.path.dirname(paths["train_x"]),
        "class_names": CLASS_NAMES,
    }
