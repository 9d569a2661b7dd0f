"""Pieces shared by the experiment scripts: data preparation and reuse of
finished surfaces (never silently reusing one made for other params/grid)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

import jaxsurf as js
from jaxsurf.data.fashion_mnist import load_fashion_mnist
from jaxsurf.data.preprocess import channel_stats, standardize


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


def reuse_or_compute(path: Path, params, alphas, betas,
                     compute: Callable[[], js.Surface], *,
                     expect: Mapping[str, Any] | None = None,
                     params_fingerprint: str | None = None) -> js.Surface:
    """Loads ``path`` if it holds a surface of these params on this grid (and with
    the metadata values in ``expect``, e.g. seed, loss, directions), else computes
    and saves it. ``params_fingerprint``: ``js.tree.fingerprint(params)`` when the
    caller already has it.

    Example:
        >>> plane = reuse_or_compute(out / "plane.npz", params, grid, grid,
        ...                          lambda: js.evaluate_plane(fn, params, d1, d2, data,
        ...                                                    grid, grid))
    """
    if path.exists():
        saved = js.Surface.load(path)
        same_grid = np.array_equal(saved.alphas, alphas) and (
            (betas is None and saved.betas is None)
            or (betas is not None and saved.betas is not None
                and np.array_equal(saved.betas, betas)))
        stale = [k for k, v in (expect or {}).items() if saved.metadata.get(k) != v]
        fingerprint = params_fingerprint or js.tree.fingerprint(params)
        if same_grid and not stale and saved.metadata.get("params_fingerprint") == fingerprint:
            print(f"reusing {path}")
            return saved
        why = f"other {', '.join(stale)}" if stale else "other params or another grid"
        print(f"{path} was made with {why}: recomputing")
    else:
        print(f"computing {path}", flush=True)
    surface = compute()
    surface.save(path)
    return surface
