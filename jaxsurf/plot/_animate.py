"""Animations of surfaces recorded during training (:func:`animate`)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
from matplotlib import colors as mcolors, ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jaxsurf._io import atomic
from jaxsurf._surface import Surface
from jaxsurf.plot._checks import (DEFAULT_CMAP, check_log, line_label, metric_values,
                                  surface_axis_labels)

PathLike = str | os.PathLike
FORMATS = (".gif", ".mp4")


def _frames(surfaces: Any) -> list[tuple[int, Surface]]:
    """``[(step, Surface)]`` in step order, from a dict, a list or a monitor folder."""
    if isinstance(surfaces, (str, os.PathLike)):
        from jaxsurf._monitor import Monitor  # a monitor folder: read on use

        surfaces = Monitor.load(surfaces)
    if isinstance(surfaces, Mapping):
        items = []
        for step, surface in surfaces.items():
            if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
                raise TypeError(f"animate() takes {{step: Surface}} with integer steps, got key "
                                f"{step!r}")
            items.append((int(step), surface))
        items.sort(key=lambda item: item[0])
    elif isinstance(surfaces, Sequence):
        items = [(int(s.metadata.get("step", i)) if isinstance(s, Surface) else i, s)
                 for i, s in enumerate(surfaces)]
    else:
        raise TypeError(f"animate() takes {{step: Surface}} (js.Monitor.load(out)), a list of "
                        f"Surfaces or a monitor folder, got {type(surfaces).__name__}")
    if not items:
        raise ValueError("animate() needs at least one Surface; the monitor has recorded none")
    first = None
    for step, surface in items:
        if not isinstance(surface, Surface):
            raise TypeError(f"frame {step} is a {type(surface).__name__}, not a jaxsurf.Surface")
        if surface.is_volume:
            raise ValueError(f"frame {step} is a volume; animate() draws lines and planes")
        shape = (surface.is_plane, surface.alphas.tolist(),
                 None if surface.betas is None else surface.betas.tolist())
        if first is None:
            first = shape
        elif shape != first:
            raise ValueError(f"frame {step} has another grid than frame {items[0][0]}; the "
                             f"frames of one animation share their coordinates (record them "
                             f"with one js.Monitor)")
    return items


def _shared_range(values: list[np.ndarray], metric: str, log: bool,
                  vmin: float | None, vmax: float | None) -> tuple[float, float]:
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in values])
    if not finite.size:
        raise ValueError(f"metric {metric!r} has no finite value in any frame (the evaluation "
                         f"diverged everywhere); use a smaller grid range")
    if log:
        for v in values:
            check_log(v, metric)
    low = float(finite.min()) if vmin is None else float(vmin)
    high = float(finite.max()) if vmax is None else float(vmax)
    if not high > low:
        high = low + (abs(low) * 1e-3 or 1e-3)
    return low, high


def _render(fig: Figure, dpi: int) -> np.ndarray:
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _title(step: int, metric: str, title: str | None) -> str:
    return f"{title + ': ' if title else ''}{metric} at step {step}"


def _line_frame(surface: Surface, step: int, metric: str, *, log: bool, low: float,
                high: float, figsize: tuple[float, float], title: str | None,
                xlabel: str | None) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    values = metric_values(surface, metric)
    ax.plot(surface.alphas, values, color="C0", marker="o", markersize=3)
    sem = surface.metrics.get(metric + "_sem")
    if sem is not None:
        ax.fill_between(surface.alphas, values - sem, values + sem, color="C0", alpha=0.25,
                        label="± standard error")
        ax.legend(loc="upper right")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(low / (high / low) ** 0.05, high * (high / low) ** 0.05)
    else:
        pad = 0.05 * (high - low)
        ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(surface.alphas[0], surface.alphas[-1])
    ax.axvline(0.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel(line_label(surface, xlabel))
    ax.set_ylabel(metric + (" (log scale)" if log else ""))
    ax.grid(True, alpha=0.3)
    ax.set_title(_title(step, metric, title))
    return fig


def _plane_frame(surface: Surface, step: int, metric: str, *, log: bool, low: float,
                 high: float, figsize: tuple[float, float], title: str | None,
                 labels: Sequence[str] | None, cmap: str, levels: int, style: str) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    values = np.ma.masked_invalid(metric_values(surface, metric))
    assert surface.betas is not None
    X, Y = np.meshgrid(surface.alphas, surface.betas, indexing="ij")
    norm: mcolors.Normalize = mcolors.LogNorm(low, high) if log else \
        mcolors.Normalize(low, high)
    bounds = (np.geomspace(low, high, levels + 1) if log else
              np.linspace(low, high, levels + 1))
    xlabel, ylabel = surface_axis_labels(surface, labels)
    bar_label = metric + (" (log scale)" if log else "")
    if style == "surface3d":
        ax = fig.add_subplot(projection="3d")
        heights = np.log10(values) if log else values
        zlow, zhigh = (np.log10(low), np.log10(high)) if log else (low, high)
        clipped = np.ma.clip(heights, zlow, zhigh)
        mappable = ax.plot_surface(X, Y, clipped.filled(np.nan), cmap=cmap,
                                   norm=mcolors.Normalize(zlow, zhigh), linewidth=0,
                                   antialiased=True, rstride=1, cstride=1)
        ax.set_zlim(zlow, zhigh)
        ax.set_zlabel(("log10 " if log else "") + metric)
        ax.view_init(elev=35, azim=-60)
        fig.colorbar(mappable, ax=ax, shrink=0.7, label=("log10 " if log else "") + metric)
    else:
        ax = fig.add_subplot()
        filled = ax.contourf(X, Y, np.ma.clip(values, low, high), levels=bounds, cmap=cmap,
                             norm=norm, extend="neither")
        ax.contour(X, Y, values, levels=bounds[::2], colors="k", linewidths=0.4, alpha=0.5)
        ax.plot([0], [0], marker="+", color="white", markersize=10, markeredgewidth=1.5)
        if np.isfinite(metric_values(surface, metric)).any():
            a, b = surface.argmin(metric)
            ax.plot([a], [b], marker="x", color="red", markersize=7,
                    label="lowest point of this frame")
            ax.legend(loc="upper right", fontsize=7)
        ax.set_aspect("equal" if np.isclose(np.ptp(surface.alphas), np.ptp(surface.betas))
                      else "auto")
        fig.colorbar(filled, ax=ax, label=bar_label,
                     ticks=ticker.LogLocator() if log else ticker.MaxNLocator(8))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_title(step, metric, title))
    return fig


def _write_gif(path: Path, frames: list[np.ndarray], fps: float, comment: str) -> None:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    # one palette for every frame (from all of them), so a colour means one value throughout
    sample = np.concatenate([frame[::2, ::2] for frame in frames], axis=0)
    palette = Image.fromarray(sample).quantize(colors=255, method=Image.Quantize.MEDIANCUT,
                                               dither=Image.Dither.NONE)
    quantized = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]

    def write(handle: io.BufferedWriter | Any) -> None:
        quantized[0].save(handle, format="GIF", save_all=True, append_images=quantized[1:],
                          duration=int(round(1000 / fps)), loop=0, optimize=False,
                          disposal=1, comment=comment.encode())
    atomic.write_with(path, write)


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError(f"writing {path.name} needs ffmpeg, which is not on this machine's "
                           f"PATH; install it (e.g. apt-get install ffmpeg) or write a GIF "
                           f"(out='{path.with_suffix('.gif').name}'), which needs only Pillow")
    height, width = frames[0].shape[:2]
    even = [np.pad(f, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge") for f in frames]
    h, w = even[0].shape[:2]

    def write(tmp: Path) -> None:
        command = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                   "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264",
                   "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)]
        done = subprocess.run(command, input=b"".join(f.tobytes() for f in even),
                              capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg failed writing {path} (exit {done.returncode}): "
                               f"{done.stderr.decode(errors='replace')[-500:]}")
    atomic.write_via_path(path, write)


def animate(surfaces: Mapping[int, Surface] | Sequence[Surface] | PathLike, out: PathLike,
            metric: str = "loss", *, log: bool = False, fps: float = 4,
            style: Literal["filled", "surface3d"] = "filled", vmin: float | None = None,
            vmax: float | None = None, levels: int = 20, cmap: str = DEFAULT_CMAP,
            figsize: tuple[float, float] | None = None, dpi: int = 100,
            title: str | None = None, labels: Sequence[str] | None = None) -> Path:
    """Writes an animation of surfaces recorded during training, one frame per step.

    Every frame shares one colour scale (and, for lines and ``style="surface3d"``,
    one value axis): the range of ``metric`` over *all* frames, so a colour (a
    height) means the same value throughout and the landscape is seen to change,
    not its scale. Each frame's title names its step. Planes are drawn filled
    with contour lines, the origin (the current params) marked ``+`` and the
    frame's lowest point ``x``; lines as curves (with the ``_sem`` band when
    recorded with ``subsample``).

    Args:
        surfaces: ``{step: Surface}`` (what :meth:`jaxsurf.Monitor.load` returns), a
            list of Surfaces (steps from ``metadata["step"]``), or a monitor folder.
            All frames share their grid.
        out: ``.gif`` (written with Pillow; one palette for all frames) or ``.mp4``
            (written with ffmpeg, which must be on the PATH: a clear error
            otherwise). Written atomically.
        metric: the metric to draw.
        log: a logarithmic colour (and value) scale; needs positive values.
        fps: frames per second.
        style: for planes, ``"filled"`` contours or ``"surface3d"``.
        vmin, vmax: the shared range (default: over all frames' finite values).
        levels: colour levels of a filled plane.
        cmap, figsize, dpi: the look; frames are ``figsize * dpi`` pixels.
        title: a prefix of each frame's title.
        labels: axis labels of a plane (default from the metadata).

    Returns:
        The path written. A GIF's comment holds the frames' steps and the shared
        range as JSON.

    Example:
        >>> a = np.linspace(-1, 1, 11)
        >>> A, B = np.meshgrid(a, a, indexing="ij")
        >>> frames = {s: js.Surface(a, a, {"loss": (1 + s) * A**2 + B**2})
        ...           for s in (0, 10, 20)}
        >>> js.plot.animate(frames, out="landscape.gif", fps=2)
        PosixPath('landscape.gif')
    """
    items = _frames(surfaces)
    path = Path(out)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"out must end in .gif or .mp4, got {str(out)!r}")
    if style not in ("filled", "surface3d"):
        raise ValueError(f"style must be 'filled' or 'surface3d', got {style!r}")
    if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps <= 100):
        raise ValueError(f"fps must be a number in (0, 100], got {fps!r}")
    if not (isinstance(levels, int) and 2 <= levels <= 256):
        raise ValueError(f"levels must be an integer in [2, 256], got {levels!r}")
    values = [metric_values(surface, metric) for _, surface in items]
    low, high = _shared_range(values, metric, log, vmin, vmax)
    plane = items[0][1].is_plane
    size = figsize or ((6.4, 5.0) if plane else (6.4, 4.2))
    frames = []
    for step, surface in items:
        if plane:
            fig = _plane_frame(surface, step, metric, log=log, low=low, high=high, figsize=size,
                               title=title, labels=labels, cmap=cmap, levels=levels,
                               style=style)
        else:
            fig = _line_frame(surface, step, metric, log=log, low=low, high=high, figsize=size,
                              title=title, xlabel=labels[0] if labels else None)
        frames.append(_render(fig, dpi))
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:  # a fixed figsize and dpi make them equal; refuse rather than crop
        raise RuntimeError(f"frames rendered at different sizes {sorted(shapes)}; pass figsize=")
    path.parent.mkdir(parents=True, exist_ok=True)
    comment = json.dumps({"metric": metric, "steps": [s for s, _ in items], "vmin": low,
                          "vmax": high, "log": log})
    if path.suffix.lower() == ".gif":
        _write_gif(path, frames, fps, comment)
    else:
        _write_mp4(path, frames, fps)
    return path
