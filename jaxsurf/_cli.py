"""The implementation of :mod:`jaxsurf.cli`; its public face, with the
documentation and examples, is ``jaxsurf/cli.py``."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NoReturn, Sequence

import numpy as np

from jaxsurf import _validate, _interrupt as interrupt
from jaxsurf._cli_outputs import KINDS, beside, describe, plot_surface, write_vtp
from jaxsurf._surface import Surface, SurfaceFileError

__all__ = ["main", "register", "COMMANDS", "Command", "UsageError", "describe",
           "plot_surface", "beside"]


class UsageError(Exception):
    """A bad command line; reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its arguments and what it does.

    Attributes:
        help: one line for ``python -m jaxsurf --help``.
        add_arguments: adds the subcommand's arguments to its parser.
        run: runs it with the parsed arguments; returns the exit status.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int]) -> None:
    """Adds the subcommand ``name`` (later registrations of a name replace earlier ones).

    Example:
        >>> register("hello", "say hello", lambda p: None, lambda args: print("hi") or 0)
    """
    COMMANDS[name] = Command(help, add_arguments, run)


# --------------------------------------------------------------------------- subcommands
def _add_surface_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("surface", type=Path, help="Surface file (.npz)")


def _add_plot(parser: argparse.ArgumentParser) -> None:
    _add_surface_file(parser)
    parser.add_argument("--kind", choices=KINDS, default=None,
                        help="default: line for a line surface, contour for a plane")
    parser.add_argument("--metric", default=None,
                        help="metric to draw (default: loss if present, else the first; "
                             "a line draws all metrics)")
    parser.add_argument("--log", action="store_true", help="log-spaced levels / log scale")
    parser.add_argument("--vmin", type=float, default=None, help="lowest level / colour")
    parser.add_argument("--vmax", type=float, default=None, help="highest level / colour")
    parser.add_argument("--vlevel", type=float, default=None,
                        help="step between contour levels (levels = arange(vmin, vmax, vlevel))")
    parser.add_argument("--levels", type=int, default=None, help="number of automatic levels")
    parser.add_argument("--zmax", type=float, default=None, help="surface: clip heights above")
    parser.add_argument("--title", default=None,
                        help="figure title (default: what the surface is, from its metadata)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output .png/.pdf/.svg (default: SURFACE.<kind>.png beside it)")


def _run_plot(args: argparse.Namespace) -> int:
    surface = Surface.load(args.surface)
    kind = args.kind or ("contour" if surface.is_plane else "line")
    _check_kind(args.surface, surface, kind)
    out = args.out or beside(args.surface, kind, ".png")
    _validate.output_not_input(out, [args.surface])
    plot_surface(surface, kind, out, metric=args.metric, log=args.log, title=args.title,
                 vmin=args.vmin, vmax=args.vmax, vlevel=args.vlevel, levels=args.levels,
                 zmax=args.zmax)
    print(f"wrote {out}")
    return 0


def _check_kind(path: Path, surface: Surface, kind: str) -> None:
    """``--kind`` against what the file holds, said in the command line's terms."""
    shape = " x ".join(str(n) for n in np.shape(next(iter(surface.metrics.values()))))
    if surface.is_volume:  # js.plot says what draws a volume
        return
    if kind != "line" and not surface.is_plane:
        raise UsageError(f"jaxsurf plot: --kind {kind} draws a plane, but {path} is a line "
                         f"of {shape} points: use --kind line (or leave out --kind)")
    if kind == "line" and surface.is_plane:
        raise UsageError(f"jaxsurf plot: --kind line draws a line, but {path} is a {shape} "
                         f"plane: use --kind contour, filled, heatmap or surface (or leave "
                         f"out --kind)")


def _add_vtp(parser: argparse.ArgumentParser) -> None:
    _add_surface_file(parser)
    parser.add_argument("--metric", default=None, help="metric for the height (default: loss)")
    parser.add_argument("--zmax", type=float, default=None, help="clip values above this")
    parser.add_argument("--log", action="store_true", help="height is log10(value)")
    parser.add_argument("--scale-z", type=float, default=1.0, help="multiply heights by this")
    parser.add_argument("--out", type=Path, default=None,
                        help="output .vtp (default: SURFACE.<metric>.vtp beside it)")


def _run_vtp(args: argparse.Namespace) -> int:
    if args.out is not None:
        _validate.output_not_input(args.out, [args.surface])
    surface = Surface.load(args.surface)
    written = write_vtp(surface, args.surface, args.out, args.metric, zmax=args.zmax,
                        log=args.log, scale_z=args.scale_z)
    print(f"wrote {written}")
    return 0


def _add_csv(parser: argparse.ArgumentParser) -> None:
    _add_surface_file(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="output .csv (default: SURFACE with .csv, beside it)")


def _run_csv(args: argparse.Namespace) -> int:
    from jaxsurf import export

    if args.out is not None:
        _validate.output_not_input(args.out, [args.surface])
    surface = Surface.load(args.surface)
    written = export.write_csv(surface, args.out or args.surface.with_suffix(".csv"))
    print(f"wrote {written}")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    surface = Surface.load(args.surface)
    print(surface.summary())
    print("metadata:")
    print(json.dumps(surface.metadata, indent=2, sort_keys=True, default=str))
    return 0


def _add_compute(parser: argparse.ArgumentParser) -> None:
    from jaxsurf import _compute_cli

    _compute_cli.add_arguments(parser)


def _run_compute(args: argparse.Namespace) -> int:
    from jaxsurf import _compute_cli

    return _compute_cli.run(args)


register("surface", "compute a line, plane or interpolation from a saved checkpoint",
         _add_compute, _run_compute)
register("plot", "draw a figure (PNG/PDF by the --out suffix)", _add_plot, _run_plot)
register("vtp", "write a ParaView .vtp height field of a plane", _add_vtp, _run_vtp)
register("csv", "write a line or plane as a CSV table (alpha[, beta], one column per metric)",
         _add_csv, _run_csv)
register("info", "print the summary and metadata of a Surface file", _add_surface_file,
         _run_info)


def _add_view(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", type=Path, nargs="+",
                        help="Surface files (.npz/.h5) and/or experiment --out folders")
    parser.add_argument("--out", type=Path, default=None,
                        help="output .html (default: viewer.html in the folder, or beside the "
                             "file)")
    parser.add_argument("--title", default=None, help="page title")


def _run_view(args: argparse.Namespace) -> int:
    from jaxsurf import view

    print(f"wrote {view.write(args.paths, args.out, title=args.title)}")
    return 0


register("view", "write one self-contained interactive HTML page", _add_view, _run_view)


# --------------------------------------------------------------------------- entry point
def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxsurf", description="Compute loss surfaces from checkpoints, and "
                                                 "plot, export and describe jaxsurf Surface "
                                                 "files (.npz written by Surface.save).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help,
                                             description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status.

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        0 on success; 2 with a one-line message on stderr for a bad file or
        bad arguments; 130 with one line (what is saved, how to resume) when
        interrupted by Ctrl-C or SIGTERM.

    Example:
        >>> _ = plane.save("runs/plane.npz")
        >>> main(["plot", "runs/plane.npz", "--kind", "filled", "--out", "runs/plane.pdf"])
        wrote runs/plane.pdf
        0
    """
    try:
        with interrupt.terminate_as_interrupt():
            try:
                args = _parser().parse_args(_attach_negative_values(
                    sys.argv[1:] if argv is None else list(argv)))
            except SystemExit as done:  # --help
                return int(done.code or 0)
            return COMMANDS[args.command].run(args)
    except UsageError as err:
        print(err, file=sys.stderr)
        return 2
    except (SurfaceFileError, OSError, ValueError) as err:
        print(f"jaxsurf: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except BaseException as stop:  # Ctrl-C or SIGTERM: one line, status 130
        if not interrupt.is_interrupt(stop):
            raise
        print(interrupt.report(stop), file=sys.stderr, flush=True)
        return interrupt.EXIT_STATUS


RANGE_OPTIONS = ("--x", "--y")  # values such as -1:1:51 start with a minus sign


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``["--x", "-1:1:51"]`` → ``["--x=-1:1:51"]``: argparse would take ``-1:1:51``
    for an option (it only knows plain negative numbers)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = str(argv[i])
        following = str(argv[i + 1]) if i + 1 < len(argv) else ""
        if token in RANGE_OPTIONS and re.match(r"-[\d.]", following):
            out.append(f"{token}={following}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _one_line(err: BaseException) -> str:
    """The message on one line; its lines joined by ``; `` (after a colon, by a space)."""
    out = ""
    for line in str(err).splitlines():
        line = " ".join(line.split())
        if line:
            out += ("" if not out else " " if out.endswith(":") else "; ") + line
    return out
