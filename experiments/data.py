"""Data sets of the experiments: standardized splits and what results.json says
about them (:class:`Data`, :func:`load_data`, :func:`fashion_mnist`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from experiments.config import Preset
from jaxsurf.data.fashion_mnist import load_fashion_mnist
from jaxsurf.data.preprocess import channel_stats, standardize


IMAGE_SETS = {"fashion_mnist": "fashion_mnist", "cifar10": "cifar10", "imagenet": "imagenet2012"}


@dataclass
class Data:
    """Standardized splits plus what ``results.json`` says about them."""

    splits: dict[str, dict[str, np.ndarray]]
    name: str
    synthetic: bool
    description: str
    num_classes: int | None

    @property
    def regression(self) -> bool:
        return self.num_classes is None

    def subset(self, n: int, split: str = "train") -> dict[str, np.ndarray]:
        """The first ``n`` examples of a split (a fixed subset)."""
        return {k: v[:n] for k, v in self.splits[split].items()}

    def label(self) -> str:
        """Short name for titles; synthetic data say so."""
        return f"{self.name} (SYNTHETIC)" if self.synthetic else self.name

    def info(self, preset: Preset) -> dict[str, Any]:
        sizes = {split: int(len(part["y"])) for split, part in self.splits.items()}
        sizes["surface"] = min(preset.surface_examples, sizes["train"])
        sizes["analysis"] = min(preset.analysis_examples, sizes["train"])
        return {"name": self.name, "sizes": sizes, "synthetic": self.synthetic,
                "description": self.description}


def fashion_mnist(data_dir: str | None = None, train_limit: int | None = None) -> dict:
    """Standardized Fashion-MNIST (train statistics), optionally fewer training examples.

    Raises ``SystemExit`` with the loader's explanation when the files are missing.
    """
    try:
        raw = load_fashion_mnist(data_dir)
    except FileNotFoundError as err:
        raise SystemExit(f"error: {err}") from None
    mean, std = channel_stats(raw["train"]["x"])
    limits = {"train": train_limit, "val": None, "test": None}
    return {split: {"x": standardize(raw[split]["x"][:limit], mean, std),
                    "y": raw[split]["y"][:limit]}
            for split, limit in limits.items()}

def _standardized(raw: Mapping[str, Any], limits: Mapping[str, int | None]) -> dict:
    mean, std = channel_stats(raw["train"]["x"])
    return {split: {"x": standardize(raw[split]["x"][:limit], mean, std),
                    "y": np.asarray(raw[split]["y"][:limit])}
            for split, limit in limits.items()}

def _fake_images(name: str, preset: Preset, seed: int, why: str) -> Data:
    from jaxsurf.data import fake_image_dataset

    n = preset.train_examples or 256
    raw = fake_image_dataset(
        IMAGE_SETS[name], n=n, seed=seed,
        n_val=max(1, n // 4) if preset.val_examples is None else preset.val_examples,
        n_test=max(1, n // 4) if preset.test_examples is None else preset.test_examples)
    print(f"{name} not available ({why}); using the SYNTHETIC stand-in of the smoke preset")
    return Data(_standardized(raw, {"train": None, "val": None, "test": None}), name, True,
                raw["description"], raw["num_classes"])

def load_data(name: str, data_dir: str | None, preset: Preset, *, seed: int = 0) -> Data:
    """Loads ``fashion_mnist``, ``cifar10``, ``imagenet`` or ``gene_expression``.

    Images are standardized per channel with the statistics of the training
    split; the splits are cut to the preset's sizes (first examples). Where
    the set is missing, the smoke preset falls back to a generated stand-in
    of the same shape (flagged synthetic) unless ``data_dir`` was given; the
    others stop with the reason.
    Gene expression: the D-GEX ``.npy`` files in ``data_dir``, else the
    synthetic stand-in (always flagged).
    """
    limits = {"train": preset.train_examples, "val": preset.val_examples,
              "test": preset.test_examples}
    fallback = preset.synthetic_fallback and data_dir is None  # a given folder must be right
    if name == "gene_expression":
        from jaxsurf.data import load_gene_expression

        try:
            raw = load_gene_expression(data_dir, n_train=limits["train"], n_val=limits["val"],
                                       n_test=limits["test"], seed=seed)
        except (OSError, ValueError) as err:  # a given folder without usable D-GEX files
            raise SystemExit(f"error: {err}") from None
        splits = {s: {"x": raw[s]["x"], "y": raw[s]["y"]} for s in ("train", "val", "test")}
        return Data(splits, raw["name"], raw["synthetic"], raw["description"], None)
    if name == "fashion_mnist":
        try:
            splits = fashion_mnist(data_dir, limits["train"])
        except SystemExit as err:
            if not fallback:
                raise
            return _fake_images(name, preset, seed, str(err))
        splits = {s: {k: v[:limits[s]] for k, v in part.items()} for s, part in splits.items()}
        return Data(splits, "fashion_mnist", False,
                    f"Fashion-MNIST (Xiao et al. 2017), real, 28x28x1; validation split = "
                    f"{len(splits['val']['y']):,} held-out training images", 10)
    if name in IMAGE_SETS:
        from jaxsurf.data import load_tfds

        try:
            raw = load_tfds(IMAGE_SETS[name], data_dir)
        except Exception as err:  # noqa: BLE001 - any failure means "not here"
            if not fallback:
                raise SystemExit(f"error: cannot load {name} through tensorflow-datasets "
                                 f"({type(err).__name__}: {err}); give --data-dir with the "
                                 f"prepared tfds data, or use --dataset fashion_mnist") from None
            return _fake_images(name, preset, seed, f"{type(err).__name__}: {err}")
        return Data(_standardized(raw, limits), name, False, raw.get("source", name),
                    raw["num_classes"])
    raise ValueError(f"unknown data set {name!r}")
