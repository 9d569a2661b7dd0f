"""The viewer's data of a monitor folder: a step slider (and a play button) over the
recorded frames, the curvature series beside it with the current step marked.

Part of :mod:`jaxsurf.view` (its public face): ``python -m jaxsurf view OUT`` on
a folder written by :class:`jaxsurf.Monitor` writes this page
(:func:`jaxsurf.view._page.monitor_page` fills the template
``jaxsurf/view/monitor.html`` and script ``jaxsurf/view/monitor.js``, package
data, with these data; plotly.js is inlined as in the Surface viewer, so the
page works offline). Every frame's values are embedded exactly (base64), and
each metric keeps one colour scale (one y range for lines) over all frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from jaxsurf._monitor import Monitor, is_monitor_folder
from jaxsurf.view._data import PathLike, array_json

__all__ = ["monitor_data", "is_monitor_folder"]


def _range(frames: list[np.ndarray]) -> list[float | None]:
    finite = np.concatenate([f[np.isfinite(f)].ravel() for f in frames])
    if not finite.size:
        return [None, None]
    return [float(finite.min()), float(finite.max())]


def _positive_min(frames: list[np.ndarray]) -> float | None:
    values = np.concatenate([f[np.isfinite(f) & (f > 0)].ravel() for f in frames])
    return float(values.min()) if values.size else None


def monitor_data(folder: PathLike) -> dict[str, Any]:
    """The page's JSON data of a monitor folder (read with :meth:`Monitor.load`)."""
    folder = Path(folder)
    config = Monitor.config(folder)
    records = Monitor.load(folder)
    if not records:
        raise ValueError(f"the monitor folder {folder} holds no recorded step yet; run the "
                         f"training loop until the monitor's first step (step 0, or the first "
                         f"of its steps)")
    steps = list(records)
    first = records[steps[0]]
    names = list(first.metrics)
    metrics: dict[str, Any] = {}
    for name in names:
        frames = [np.asarray(records[s].metrics[name]) for s in steps]
        metrics[name] = {"frames": [array_json(f) for f in frames], "range": _range(frames),
                         "positive_min": _positive_min(frames)}
    centre = {}
    zero_a = np.flatnonzero(first.alphas == 0)
    zero_b = None if first.betas is None else np.flatnonzero(first.betas == 0)
    if zero_a.size and (zero_b is None or zero_b.size):
        for name in names:
            index = (zero_a[0],) if zero_b is None else (zero_a[0], zero_b[0])
            centre[name] = [float(np.asarray(records[s].metrics[name])[index]) for s in steps]
    series = Monitor.load_curvature(folder)
    curvature = {k: [None if not np.isfinite(v) else float(v) for v in values]
                 for k, values in series.items() if k != "step"}
    return {"kind": "plane" if first.is_plane else "line", "folder": folder.name,
            "steps": steps, "alphas": first.alphas.tolist(),
            "betas": None if first.betas is None else first.betas.tolist(),
            "metrics": metrics, "centre": centre, "curvature": curvature,
            "directions": config.get("directions"), "every": config.get("every"),
            "schedule": config.get("steps")}
