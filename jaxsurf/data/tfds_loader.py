"""CIFAR-10 / ImageNet (and other image sets) through tensorflow-datasets, plus
small generated stand-ins of the right shapes for tests and smoke runs.

tensorflow-datasets is optional (``pip install 'jaxsurf[tfds]'``) and imported
only when ``load_tfds`` runs; nothing is downloaded unless asked.

Example:
    >>> from jaxsurf.data import fake_image_dataset
    >>> ds = fake_image_dataset("cifar10", n=16)
    >>> ds["train"]["x"].shape, ds["num_classes"], ds["synthetic"]
    ((16, 32, 32, 3), 10, True)
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Iterable, Mapping, cast

import numpy as np

from jaxsurf.data.preprocess import split_validation

__all__ = ["IMAGE_SHAPES", "NUM_CLASSES", "DEFAULT_SPLITS", "load_tfds", "fake_image_dataset",
           "center_crop_resize"]

IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    "cifar10": (32, 32, 3),
    "cifar100": (32, 32, 3),
    "fashion_mnist": (28, 28, 1),
    "mnist": (28, 28, 1),
    "imagenet2012": (224, 224, 3),
}
NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "fashion_mnist": 10,
                               "mnist": 10, "imagenet2012": 1000}
# tfds split strings per part. ImageNet's 1.28M training images do not fit host
# memory as one uint8 array (~190 GB at 224x224x3), so the default takes
# subsets; pass your own `split` mapping for others.
DEFAULT_SPLITS: dict[str, dict[str, str]] = {
    "imagenet2012": {"train": "train[:10000]", "val": "train[10000:15000]",
                     "test": "validation[:10000]"},
}
_VARIABLE_SIZE = {"imagenet2012"}


def _import_tfds() -> Any:
    try:
        return importlib.import_module("tensorflow_datasets")
    except ImportError as e:
        raise ImportError("load_tfds needs tensorflow-datasets: pip install 'jaxsurf[tfds]' "
                          "(or pip install tensorflow-datasets tensorflow)") from e


def center_crop_resize(image: np.ndarray, size: int = 224, resize: int = 256) -> np.ndarray:
    """Resizes the shorter side to ``resize`` (bilinear) and crops the central
    ``size`` x ``size`` square: the usual ImageNet evaluation transform.

    Args:
      image: ``(H, W, C)`` uint8 image.
      size: output side.
      resize: shorter side before the crop.

    Returns:
      ``(size, size, C)`` uint8.

    Example:
      >>> import numpy as np
      >>> center_crop_resize(np.zeros((300, 400, 3), np.uint8)).shape
      (224, 224, 3)
    """
    from PIL import Image

    h, w = image.shape[:2]
    scale = resize / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    squeeze = image.ndim == 3 and image.shape[-1] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    out = np.asarray(pil.resize((new_w, new_h), Image.Resampling.BILINEAR))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = out[top:top + size, left:left + size]
    return out[..., None] if squeeze else out


def _to_arrays(examples: Mapping[str, Any] | Iterable[Mapping[str, Any]], name: str
               ) -> dict[str, np.ndarray]:
    """tfds output (a whole-split dict, or an iterable of examples) -> {"x", "y"}."""
    if isinstance(examples, Mapping):  # the whole split, keyed by feature name
        whole = cast(Mapping[str, Any], examples)  # not an iterable of examples keyed by dicts
        x, y = np.asarray(whole["image"]), np.asarray(whole["label"])
    else:
        images, labels = [], []
        for ex in examples:
            image = np.asarray(ex["image"])
            if name in _VARIABLE_SIZE:
                image = center_crop_resize(image, IMAGE_SHAPES[name][0])
            images.append(image)
            labels.append(int(ex["label"]))
        shape = IMAGE_SHAPES.get(name, (0, 0, 0))
        x = np.stack(images) if images else np.zeros((0, *shape), np.uint8)
        y = np.asarray(labels)
    if x.ndim == 3:
        x = x[..., None]
    return {"x": x.astype(np.uint8, copy=False), "y": y.astype(np.int32, copy=False)}


def load_tfds(name: str = "cifar10", data_dir: str | os.PathLike | None = None,
              split: Mapping[str, str] | None = None, *, validation: int = 5000, seed: int = 0,
              download: bool = False) -> dict[str, Any]:
    """Loads an image classification set from tensorflow-datasets into host memory.

    Args:
      name: tfds name, e.g. ``"cifar10"``, ``"imagenet2012"``, ``"fashion_mnist"``.
      data_dir: tfds data folder (``None``: tfds' default, ``~/tensorflow_datasets``).
      split: tfds split strings per part, e.g. ``{"train": "train[:90%]",
        "val": "train[90%:]", "test": "test"}``. ``None``: for ImageNet the
        subsets of ``DEFAULT_SPLITS``; for other sets ``"train"`` and ``"test"``
        with ``validation`` training examples held out (seeded by ``seed``).
      validation: held-out examples when ``split`` is ``None`` (not ImageNet).
      seed: seed of that split.
      download: let tfds download and prepare the data (needs internet).

    Returns:
      ``{part: {"x": uint8 (N, H, W, C), "y": int32 (N,)}, ..., "name",
      "num_classes", "synthetic": False, "source"}``. ImageNet images are
      resized (shorter side 256) and center-cropped to 224x224.

    Raises:
      ImportError: tensorflow-datasets is not installed.

    Example:
      >>> # needs tensorflow-datasets and a downloaded CIFAR-10:
      >>> ds = load_tfds("cifar10", data_dir="~/tensorflow_datasets")  # doctest: +SKIP
      >>> ds["train"]["x"].shape                                         # doctest: +SKIP
      (45000, 32, 32, 3)
    """
    tfds = _import_tfds()
    data_dir = os.path.expanduser(os.fspath(data_dir)) if data_dir is not None else None
    variable = name in _VARIABLE_SIZE

    def load(split_string: str) -> dict[str, np.ndarray]:
        ds = tfds.load(name, split=split_string, data_dir=data_dir, download=download,
                       batch_size=None if variable else -1)
        return _to_arrays(tfds.as_numpy(ds), name)

    if split is None and name in DEFAULT_SPLITS:
        split = DEFAULT_SPLITS[name]
    if split is not None:
        parts = {part: load(s) for part, s in split.items()}
    else:
        train, test = load("train"), load("test")
        train_idx, val_idx = split_validation(len(train["y"]), validation, seed)
        parts = {"train": {k: v[train_idx] for k, v in train.items()},
                 "val": {k: v[val_idx] for k, v in train.items()},
                 "test": test}
    num_classes = NUM_CLASSES.get(name)
    if num_classes is None:
        num_classes = int(max(int(p["y"].max()) for p in parts.values() if p["y"].size) + 1)
    return {**parts, "name": name, "num_classes": num_classes, "synthetic": False,
            "source": f"tensorflow-datasets:{name}" + (f" ({data_dir})" if data_dir else "")}


def fake_image_dataset(name: str = "cifar10", n: int = 64, seed: int = 0, *,
                       n_val: int | None = None, n_test: int | None = None) -> dict[str, Any]:
    """Small generated arrays with the shapes and dtypes of a real image set.

    Each class has a fixed random low-resolution template; an image is its
    class template plus noise, so a net can learn something in a smoke run.
    The result is flagged ``synthetic``.

    Args:
      name: ``"cifar10"`` (32x32x3, 10 classes), ``"imagenet2012"`` (224x224x3,
        1000 classes), ``"cifar100"``, ``"fashion_mnist"``/``"mnist"`` (28x28x1).
      n: training examples.
      seed: numpy seed.
      n_val: validation examples (default ``max(1, n // 4)``).
      n_test: test examples (default ``max(1, n // 4)``).

    Returns:
      The loader dict layout, with ``"synthetic": True`` and a ``"description"``.

    Example:
      >>> ds = fake_image_dataset("imagenet2012", n=2, n_val=1, n_test=1)
      >>> ds["train"]["x"].shape, ds["train"]["x"].dtype, ds["num_classes"]
      ((2, 224, 224, 3), dtype('uint8'), 1000)
    """
    if name not in IMAGE_SHAPES:
        raise ValueError(f"unknown image set {name!r}; use one of {sorted(IMAGE_SHAPES)}")
    h, w, c = IMAGE_SHAPES[name]
    classes = NUM_CLASSES[name]
    rng = np.random.default_rng(seed)
    coarse = next(c_ for c_ in (8, 4, 1) if h % c_ == 0 and w % c_ == 0 and h // c_ >= 7)
    templates = rng.uniform(0, 255, (classes, h // coarse, w // coarse, c)).astype(np.float32)

    def part(count: int) -> dict[str, np.ndarray]:
        y = rng.integers(0, classes, count).astype(np.int32)
        base = templates[y].repeat(coarse, axis=1).repeat(coarse, axis=2)
        noise = rng.normal(0.0, 40.0, (count, h, w, c)).astype(np.float32)
        x = np.clip(0.5 * base + 64.0 + noise, 0, 255).astype(np.uint8)
        return {"x": x, "y": y}

    n_val = max(1, n // 4) if n_val is None else n_val
    n_test = max(1, n // 4) if n_test is None else n_test
    return {
        "train": part(n), "val": part(n_val), "test": part(n_test),
        "name": name, "num_classes": classes, "synthetic": True,
        "description": (f"SYNTHETIC stand-in for {name}: random class templates plus noise, "
                        f"shape {(h, w, c)}, {classes} classes, seed {seed}; not real data."),
    }
