"""Command line: ``python -m jaxsurf {plot,vtp,info} SURFACE ...``.

Example:
    python -m jaxsurf info runs/plane.npz
    python -m jaxsurf plot runs/plane.npz --kind contour --vmin 0.1 --vmax 10 --vlevel 0.5
    python -m jaxsurf vtp runs/plane.npz --zmax 10 --log
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from jaxsurf.surface import Surface, SurfaceFileError

__all__ = ["main"]

KINDS = ("contour", "filled", "heatmap", "surface", "line")


class UsageError(Exception):
    """A bad command line; reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxsurf", description="Plot, export and describe jaxsurf Surface "
                                                 "files (.npz written by Surface.save).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plot = sub.add_parser("plot", help="draw a figure (PNG/PDF by the --out suffix)")
    plot.add_argument("surface", type=Path, help="Surface file (.npz)")
    plot.add_argument("--kind", choices=KINDS, default=None,
                      help="default: line for a line surface, contour for a plane")
    plot.add_argument("--metric", default=None,
                      help="metric to draw (default: loss if present, else the first; "
                           "a line draws all metrics)")
    plot.add_argument("--log", action="store_true", help="log-spaced levels / log scale")
    plot.add_argument("--vmin", type=float, default=None, help="lowest level / colour")
    plot.add_argument("--vmax", type=float, default=None, help="highest level / colour")
    plot.add_argument("--vlevel", type=float, default=None,
                      help="step between contour levels (levels = arange(vmin, vmax, vlevel))")
    plot.add_argument("--levels", type=int, default=None, help="number of automatic levels")
    plot.add_argument("--zmax", type=float, default=None, help="surface: clip heights above")
    plot.add_argument("--title", default=None, help="figure title")
    plot.add_argument("--out", type=Path, default=None,
                      help="output .png/.pdf/.svg (default: SURFACE.<kind>.png beside it)")

    vtp = sub.add_parser("vtp", help="write a ParaView .vtp height field of a plane")
    vtp.add_argument("surface", type=Path, help="Surface file (.npz)")
    vtp.add_argument("--metric", default=None, help="metric for the height (default: loss)")
    vtp.add_argument("--zmax", type=float, default=None, help="clip values above this")
    vtp.add_argument("--log", action="store_true", help="height is log10(value)")
    vtp.add_argument("--scale-z", type=float, default=1.0, help="multiply heights by this")
    vtp.add_argument("--out", type=Path, default=None,
                     help="output .vtp (default: SURFACE.<metric>.vtp beside it)")

    view = sub.add_parser("view", help="write one self-contained interactive HTML page")
    view.add_argument("paths", type=Path, nargs="+",
                      help="Surface files (.npz/.h5) and/or experiment --out folders")
    view.add_argument("--out", type=Path, default=None,
                      help="output .html (default: viewer.html in the folder, or beside the file)")
    view.add_argument("--title", default=None, help="page title")

    info = sub.add_parser("info", help="print the summary and metadata of a Surface file")
    info.add_argument("surface", type=Path, help="Surface file (.npz)")
    return parser


def _default_metric(surface: Surface, metric: str | None) -> str:
    if metric is not None:
        return metric
    return "loss" if "loss" in surface.metrics else surface.metric_names[0]


def _beside(source: Path, tag: str, suffix: str) -> Path:
    """``runs/plane.npz`` → ``runs/plane.<tag><suffix>``."""
    return source.with_name(f"{source.stem}.{tag}{suffix}")


def _plot(args: argparse.Namespace, surface: Surface) -> Path:
    from jaxsurf import plot

    kind = args.kind or ("contour" if surface.is_plane else "line")
    out = args.out or _beside(args.surface, kind, ".png")
    if kind == "line":
        plot.line(surface, args.metric, log=args.log, title=args.title, out=out)
        return out
    metric = _default_metric(surface, args.metric)
    common: dict[str, Any] = {"log": args.log, "title": args.title, "out": out}
    if kind == "surface":
        plot.surface3d(surface, metric, zmax=args.zmax, **common)
    elif kind == "heatmap":
        plot.heatmap(surface, metric, vmin=args.vmin, vmax=args.vmax, **common)
    else:
        draw = plot.contour if kind == "contour" else plot.filled
        draw(surface, metric, levels=args.levels, vmin=args.vmin, vmax=args.vmax,
             vlevel=args.vlevel, **common)
    return out


def _vtp(args: argparse.Namespace, surface: Surface) -> Path:
    from jaxsurf import export

    metric = _default_metric(surface, args.metric)
    out = args.out or _beside(args.surface, metric, ".vtp")
    return export.write_vtp(surface, out, metric, zmax=args.zmax, log=args.log,
                            scale_z=args.scale_z)


def _info(surface: Surface) -> None:
    print(surface.summary())
    print("metadata:")
    print(json.dumps(surface.metadata, indent=2, sort_keys=True, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0, or 2 for bad input).

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        0 on success; 2 with a one-line message on stderr for a bad file or
        bad arguments.

    Example:
        >>> main(["plot", "runs/plane.npz", "--kind", "filled", "--out", "plane.pdf"])
        0
    """
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as done:  # --help
            return int(done.code or 0)
        if args.command == "view":
            from jaxsurf import view
            print(f"wrote {view.write(args.paths, args.out, title=args.title)}")
            return 0
        surface = Surface.load(args.surface)
        if args.command == "info":
            _info(surface)
        else:
            written = _plot(args, surface) if args.command == "plot" else _vtp(args, surface)
            print(f"wrote {written}")
    except UsageError as err:
        print(err, file=sys.stderr)
        return 2
    except (SurfaceFileError, OSError, ValueError) as err:
        print(f"jaxsurf: error: {_one_line(err)}", file=sys.stderr)
        return 2
    return 0


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())
