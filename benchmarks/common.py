"""Shared helpers for the benchmarks: timing, the machine's description,
Fashion-MNIST subsets, and writing results as JSON plus a printed table."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import flax.linen as nn
import jax
import numpy as np

RESULTS = Path(__file__).parent / "results"


def device_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    device = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": device.device_kind,
            "num_devices": jax.device_count(), "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(),
            "jax": jax.__version__}


def time_call(run: Callable[[], Any], *, repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """Median and min wall seconds of ``run()`` (its result is blocked on)."""
    for _ in range(warmup):
        jax.block_until_ready(run())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeats": repeats}


class SteadyTimer:
    """A ``progress=`` callback that times a call's steady state: seconds per point
    from the end of its first chunk (compilation and first run) to its end.

    Example:
        >>> timer = SteadyTimer()
        >>> js.evaluate_points(fn, params, dirs, data, coords, chunk_size=1, progress=timer)
        >>> timer.s_per_point()     # None with fewer than two finished chunks
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stamps: list[tuple[int, float]] = []

    def __call__(self, info: Any) -> None:
        self.stamps.append((info.done, time.perf_counter()))

    def s_per_point(self) -> float | None:
        if len(self.stamps) < 3:  # the start, the first chunk, and at least one more
            return None
        (first, t_first), (last, t_last) = self.stamps[1], self.stamps[-1]
        return (t_last - t_first) / (last - first)


def fashion_mnist_subset(n: int, split: str = "train") -> tuple[dict[str, np.ndarray], str]:
    """``n`` standardized Fashion-MNIST examples, or random stand-ins if the
    files are absent (the second value says which)."""
    try:
        from jaxsurf.data.fashion_mnist import load_fashion_mnist
        from jaxsurf.data.preprocess import channel_stats, standardize

        raw = load_fashion_mnist()
        mean, std = channel_stats(raw["train"]["x"])
        return ({"x": standardize(raw[split]["x"][:n], mean, std),
                 "y": raw[split]["y"][:n]}, "fashion_mnist")
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        return ({"x": rng.normal(size=(n, 28, 28, 1)).astype(np.float32),
                 "y": rng.integers(0, 10, n).astype(np.int32)}, "random (Fashion-MNIST missing)")


def save_results(name: str, results: dict[str, Any], table: list[list[Any]],
                 header: list[str]) -> Path:
    """Prints ``table`` and writes ``results`` to ``benchmarks/results/<name>.json``."""
    widths = [max(len(str(r[i])) for r in [header] + table) for i in range(len(header))]
    for row in [header] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"device": device_info(), **results}, indent=1))
    print(f"saved {path}")
    return path


class MLP(nn.Module):
    """A plain ReLU MLP on flattened images (the benchmarks' dense net)."""

    hidden: int = 512
    layers: int = 3
    outputs: int = 10

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape((x.shape[0], -1))
        for _ in range(self.layers):
            x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.outputs)(x)
