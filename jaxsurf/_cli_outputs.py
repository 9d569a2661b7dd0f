"""What the command line writes from a Surface: figures, ``.vtp`` files, titles, names.

The ``plot`` and ``vtp`` subcommands of :mod:`jaxsurf.cli` and the ``surface``
subcommand (:mod:`jaxsurf._compute_cli`) share these; both import them from here,
so the two command modules do not import each other (``jaxsurf.cli`` re-exports
:func:`describe`, :func:`plot_surface` and :func:`beside`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxsurf._surface import Surface

__all__ = ["KINDS", "beside", "describe", "plot_surface", "write_vtp"]

KINDS = ("contour", "filled", "heatmap", "surface", "line")


def beside(source: Path, tag: str, suffix: str) -> Path:
    """``runs/plane.npz`` → ``runs/plane.<tag><suffix>`` (outputs go next to the input)."""
    return source.with_name(f"{source.stem}.{tag}{suffix}")


def _default_metric(surface: Surface, metric: str | None) -> str:
    if metric is not None:
        return metric
    return "loss" if "loss" in surface.metrics else surface.metric_names[0]


def describe(surface: Surface, metric: str) -> str:
    """A title that says what the surface is, e.g.
    ``"loss — 21×21 plane, filter-normalized directions"``.

    Uses ``metadata["title"]`` when there is one; else the kind, the grid size,
    how the directions were normalized and the model, where the metadata say.

    Example:
        >>> describe(Surface(np.linspace(-1, 1, 5), None, {"loss": np.ones(5)},
        ...                  {"kind": "line", "normalization": "filter"}), "loss")
        'loss — 5-point line along a filter-normalized direction'
    """
    meta = surface.metadata
    if isinstance(meta.get("title"), str):
        return meta["title"]
    norm = meta.get("normalization")
    normalized = {None: "", "none": "unnormalized ", "mixed": "mixed-normalized "}.get(
        norm, f"{norm}-normalized ")
    kind = meta.get("kind", "plane" if surface.is_plane else "line")
    if kind == "interpolation":
        what = f"{len(surface.alphas)}-point interpolation between two solutions"
    elif surface.is_plane:
        what = ("×".join(str(n) for n in surface.shape) + " plane"
                + (f", {normalized}directions" if normalized else ""))
    else:
        what = (f"{len(surface.alphas)}-point line"
                + (f" along a {normalized}direction" if normalized else ""))
    model = meta.get("model")
    return f"{metric} — {what}" + (f" ({model})" if isinstance(model, str) else "")


def plot_surface(surface: Surface, kind: str | None, out: Path, *, metric: str | None = None,
                 log: bool = False, title: str | None = None, **options: Any) -> Path:
    """Draws one figure of ``surface`` into ``out`` (the ``plot`` subcommand's work).

    Args:
        surface: the Surface.
        kind: one of :data:`KINDS` (``None``: line for a line, contour for a plane).
        out: the figure file.
        metric: the metric (a line draws all metrics when ``None``).
        log, title, options: as in :mod:`jaxsurf.plot` (``vmin``, ``vmax``,
            ``vlevel``, ``levels``, ``zmax``); ``None`` values are left out.

    Returns:
        ``out``.
    """
    from jaxsurf import plot

    kind = kind or ("contour" if surface.is_plane else "line")
    options = {k: v for k, v in options.items() if v is not None}
    if kind == "line":
        names = metric or [m for m in surface.metric_names if not m.endswith("_sem")]
        shown = metric or ", ".join(names)
        plot.line(surface, metric, log=log, title=title or describe(surface, shown), out=out)
        return out
    metric = _default_metric(surface, metric)
    common: dict[str, Any] = {"log": log, "title": title or describe(surface, metric),
                              "out": out}
    if kind == "surface":
        plot.surface3d(surface, metric, zmax=options.get("zmax"), **common)
    elif kind == "heatmap":
        plot.heatmap(surface, metric, vmin=options.get("vmin"), vmax=options.get("vmax"),
                     **common)
    else:
        draw = plot.contour if kind == "contour" else plot.filled
        draw(surface, metric, levels=options.get("levels"), vmin=options.get("vmin"),
             vmax=options.get("vmax"), vlevel=options.get("vlevel"), **common)
    return out


def write_vtp(surface: Surface, source: Path, out: Path | None = None, metric: str | None = None,
              **options: Any) -> Path:
    """The ``vtp`` subcommand's work: ``source`` → ``<source stem>.<metric>.vtp`` beside it."""
    from jaxsurf import export

    if surface.betas is None:  # a volume: export.write_vtp says to use write_vti
        raise ValueError(f"{source} is a line of {len(surface.alphas)} points; a .vtp height "
                         f"field needs a 2-D plane. Write the line as a table with: "
                         f"python -m jaxsurf csv {source}")
    metric = _default_metric(surface, metric)
    return export.write_vtp(surface, out or beside(source, metric, ".vtp"), metric, **options)
