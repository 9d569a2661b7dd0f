"""The viewer's page: the template and script (package data) filled with the data.

Part of :mod:`jaxsurf.view` (its public face). The page's HTML template
(``jaxsurf/view/page.html``) and script (``jaxsurf/view/page.js``) are package
data files read with :mod:`importlib.resources`, so they can be read, linted and
shipped as HTML and JavaScript.
"""

from __future__ import annotations

import html as _html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from jaxsurf import _validate
from jaxsurf._io import atomic as _atomic
from jaxsurf._surface import Surface
from jaxsurf.view._data import PathLike, Surfaces, folder_groups, read_results, \
    surface_files, surface_groups
from jaxsurf.view._monitor_page import is_monitor_folder, monitor_data

__all__ = ["default_out", "html", "monitor_page", "plotly_js", "resource", "write"]


def plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as err:
        raise ImportError("the viewer needs plotly (its Python package ships plotly.js): "
                          "pip install 'jaxsurf[viewer]'") from err
    return get_plotlyjs()


def _script_json(data: Any) -> str:
    """JSON that is inert inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are written as ``\\u003c``, ``\\u003e`` and ``\\u0026``
    (they can only occur inside JSON strings, where ``JSON.parse`` turns them
    back), so no value (``</script>``, ``<!--<script>``) can end the element or
    switch the HTML parser into a script-escape state.
    """
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_SLOT = re.compile(r"__(TITLE|PLOTLY|DATA|APP)__")


def resource(name: str) -> str:
    """The text of the package data file ``jaxsurf/view/<name>`` (``page.html``, ``page.js``)."""
    return (resources.files("jaxsurf.view") / name).read_text(encoding="utf-8")


def _page(groups: list[dict[str, Any]], title: str, table: Mapping[str, Any] | None) -> str:
    """The page: the template's four slots filled in one pass.

    Each slot of the template ``page.html`` is filled once and the inserted text is
    never searched again, so a title or metric named ``__APP__`` stays text.
    The data reach the page only as inert JSON (:func:`_script_json`), read by
    the viewer with ``JSON.parse``.
    """
    return _fill("page.html", "page.js", title, {"title": title, "groups": groups,
                                                 "table": table})


def _fill(template: str, script: str, title: str, data: Any) -> str:
    """The package data ``template`` with its slots filled: the title, plotly.js, the
    data as inert JSON and the package data ``script`` (each slot filled once)."""
    parts = {"TITLE": _html.escape(title),
             "PLOTLY": plotly_js().replace("</script", "<\\/script").replace("<!--", "<\\!--"),
             "DATA": _script_json(data), "APP": resource(script)}
    return _SLOT.sub(lambda slot: parts[slot.group(1)], resource(template))


def monitor_page(folder: PathLike, title: str | None = None) -> str:
    """The self-contained page of a :class:`jaxsurf.Monitor` folder: a step slider and
    a play button over its frames (one colour scale per metric for all of them), the
    curvature series beside them with the current step marked (the metric at the
    current params when no curvature was recorded).

    Args:
        folder: a folder written by :class:`jaxsurf.Monitor`.
        title: the page title (default: ``jaxsurf monitor: <folder name>``).

    Returns:
        The HTML text (the template ``monitor.html`` and script ``monitor.js``).
    """
    data = monitor_data(folder)
    title = title or f"jaxsurf monitor: {Path(folder).name}"
    data["title"] = title
    return _fill("monitor.html", "monitor.js", title, data)


def html(surfaces: Surfaces, path: PathLike | None = None, *, title: str | None = None,
         table: Mapping[str, Any] | None = None) -> str:
    """The viewer page of one or more Surfaces, as one self-contained HTML string.

    Args:
        surfaces: a Surface, a list of them, or ``{name: Surface}``. All planes
            share one colour scale (compare like with like: skip vs no skip);
            lines are drawn below them.
        path: also write the page to this file (parent folders are created).
        title: page title; default the single surface's title or "jaxsurf viewer".
        table: optional ``{"columns": [...], "rows": [[...], ...]}`` shown above
            the plots.

    Returns:
        The HTML text.

    Example:
        >>> text = html({"skip": s_skip, "no skip": s_noskip}, "compare.html")
    """
    groups = surface_groups(surfaces)
    if title is None:
        title = str(groups[0]["title"]) if isinstance(surfaces, Surface) else "jaxsurf viewer"
    text = _page(groups, title, table)
    if path is not None:
        _write_text(Path(path), text)
    return text


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic.write_text(path, text)


def default_out(paths: Sequence[PathLike]) -> Path:
    """Where a page goes by default: ``viewer.html`` in a folder, else beside the file.

    Args:
        paths: the inputs of :func:`write`; the first one decides.

    Returns:
        ``FOLDER/viewer.html`` for a folder, ``DIR/NAME.viewer.html`` for ``DIR/NAME.npz``.

    Example:
        >>> default_out(["runs/plane.npz"])
        PosixPath('runs/plane.viewer.html')
    """
    first = Path(paths[0])
    return first / "viewer.html" if first.is_dir() else first.with_suffix(".viewer.html")


def _surface_path(path: Path) -> Path:
    """The Surface file ``path`` names; like :meth:`Surface.load` (and ``jaxsurf
    info``), ``runs/plane`` means ``runs/plane.npz`` when only that exists."""
    if path.exists():
        return path
    npz = path.with_name(path.name + ".npz")
    if path.suffix != ".npz" and npz.exists():
        return npz
    raise FileNotFoundError(f"no such Surface file or folder: {path}")


def write(paths: Iterable[PathLike], out: PathLike | None = None, *, title: str | None = None,
          missing_ok: bool = False) -> Path | None:
    """Writes the page of Surface files and experiment folders (what ``jaxsurf view`` does).

    Args:
        paths: Surface files (``.npz``, or the reference tool's ``.h5``) and/or
            experiment ``--out`` folders holding ``results.json``; or one folder
            written by :class:`jaxsurf.Monitor` (its own page: a step slider over
            the records, see :func:`monitor_page`).
        out: the page; default :func:`default_out`.
        title: page title; default the experiment (one folder) or "jaxsurf viewer".
        missing_ok: when plotly is not installed, print one line and return
            None instead of raising (for scripts where the page is a bonus).

    Returns:
        The path written (None when skipped with ``missing_ok``).

    Raises:
        ValueError: ``out`` is one of the inputs (a Surface file, a folder's
            ``results.json`` or a Surface it lists: the page never replaces
            what it is made from), or a ``results.json`` is not an
            experiment's (not a JSON object, ``variants`` not objects, a
            Surface path outside its folder); the message names the file.
        FileNotFoundError: a path that is neither a folder nor a Surface file
            (``runs/plane`` is read as ``runs/plane.npz``, as by
            :meth:`Surface.load`).

    Example:
        >>> _ = plane.save("runs/quickstart/plane.npz")
        >>> _ = line_surface.save("runs/quickstart/line.npz")
        >>> write(["runs/quickstart/plane.npz", "runs/quickstart/line.npz"], "page.html")
        PosixPath('page.html')
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("name at least one Surface file or experiment folder")
    try:
        plotly_js()
    except ImportError as err:
        if not missing_ok:
            raise
        print(f"viewer.html not written: {err}")
        return None
    if any(is_monitor_folder(p) for p in paths):
        if len(paths) != 1:
            raise ValueError("a monitor folder makes a page of its own (a step slider over its "
                             "records): name it alone, e.g. python -m jaxsurf view runs/monitor")
        out = Path(out) if out is not None else default_out(paths)
        _validate.output_not_input(out, [paths[0] / "monitor.json"])
        _write_text(out, monitor_page(paths[0], title))
        return out
    out = Path(out) if out is not None else default_out(paths)
    inputs: list[Path] = []            # every file the page is made from: never overwritten
    for p in paths:
        if p.is_dir():
            _, variants = read_results(p)
            inputs += [p / "results.json"] + [file for v, r in variants.items()
                                               for _, file in surface_files(p, v, r)]
        else:
            inputs.append(_surface_path(p))
    _validate.output_not_input(out, inputs)
    groups: list[dict[str, Any]] = []
    files: dict[str, Surface] = {}
    table = None
    for p in paths:
        if p.is_dir():
            more, table, folder_title = folder_groups(p)
            groups += more
            title = title or (folder_title if len(paths) == 1 else None)
        else:
            file = _surface_path(p)
            files[file.stem if file.stem not in files else str(file)] = Surface.load(file)
    if files:
        groups += surface_groups(files)
    _write_text(out, _page(groups, title or "jaxsurf viewer", table))
    return out
