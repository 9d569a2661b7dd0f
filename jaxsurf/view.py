"""An interactive viewer: one self-contained HTML page of one or more Surfaces.

The page holds everything it needs (plotly.js, shipped with the ``plotly``
Python package, is inlined; the data is embedded), so it opens offline, from
a supplement or a lab wiki, with no server. Per plane it draws a rotatable
3-D surface and a contour map of the same values; the hover text gives
alpha, beta and every metric; a switcher picks the metric (loss, accuracy,
their ``_sem`` standard errors ...) and a toggle draws ``log10`` of it; the
solution (the origin) is starred; training paths and curves carried by the
Surface are drawn on both views; several planes in one group share one colour
scale, one set of contour levels and one z range; a volume is drawn one
slice ``[:, :, k]`` at a time with a slider over gamma. Lines are drawn with
all their metrics (accuracy in % on a right axis, ``_sem`` as ±2 SEM error
bars).

Orientation: ``surface.metrics[name][i, j]`` is the value at
``(alphas[i], betas[j])``. Plotly indexes a surface's ``z`` as
``z[row][column]`` with rows along y, so the page draws ``z[j][i] =
metrics[name][i, j]`` with ``x = alphas`` and ``y = betas``.

Paths and curves a Surface may carry (JSON metadata, set by the caller):
``metadata["path_coordinates"]``: ``[[a, b], ...]`` (e.g. the PCA
projection of a training trajectory, from :func:`jaxsurf.project`), with
optional ``metadata["path_labels"]``; ``metadata["curves"]``: ``{name:
[[a, b], ...]}`` (e.g. connectivity curves in the plane's coordinates).

Values are embedded exactly (base64 of the float32 or float64 array), so the
page shows the numbers of the file, not rounded copies. plotly.js is about
4.8 MB of the page; a 51x51 plane adds about 30 kB per metric.

Example:
    >>> import numpy as np, jaxsurf as js
    >>> a, b = np.linspace(-1, 1, 21), np.linspace(-0.5, 0.5, 11)
    >>> A, B = np.meshgrid(a, b, indexing="ij")
    >>> s = js.Surface(a, b, {"loss": A**2 + 4 * B**2 + 0.1})
    >>> text = js.view.html(s, "page.html")

    From the command line (Surface files, or an experiment's ``--out`` folder
    with its ``results.json``)::

        python -m jaxsurf view runs/resnet56_noskip_quick --out page.html
"""

from __future__ import annotations

import base64
import html as _html
import json
import os
import re
from importlib import resources
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxsurf import _atomic, _json, _validate
from jaxsurf.surface import Surface

__all__ = ["default_out", "folder_groups", "html", "write"]

PathLike = str | os.PathLike
Surfaces = Surface | Mapping[str, Surface] | Sequence[Surface]

# Numbers of results.json shown in an experiment's table: (column, key path, scale).
_TABLE = (("model", ("model",), None), ("data", ("dataset", "name"), None),
          ("params", ("num_params",), None),
          ("epochs", ("epochs",), None), ("val acc (%)", ("val_accuracy",), 100.0),
          ("test acc (%)", ("test_accuracy",), 100.0), ("test loss", ("test_loss",), None),
          ("val MAE", ("val_mae",), None), ("plane min loss", ("surface_stats", "minimum"), None),
          ("lambda_max", ("curvature", "lambda_max"), None),
          ("sharpness", ("sharpness", "sharpness"), None))


# --------------------------------------------------------------------------- data
def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as err:
        raise ImportError("the viewer needs plotly (its Python package ships plotly.js): "
                          "pip install 'jaxsurf[viewer]'") from err
    return get_plotlyjs()


def _array(values: Any) -> dict[str, Any]:
    """A metric array as exact little-endian base64 (float32 kept as float32)."""
    arr = np.asarray(values)
    dtype = "<f4" if arr.dtype == np.float32 else "<f8"
    return {"dtype": dtype[1:], "shape": list(arr.shape),
            "b64": base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode()}


def _points(value: Any, what: str) -> list[list[float]]:
    try:
        pts = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be finite [[alpha, beta], ...] pairs ({err})") from None
    if pts.ndim != 2 or pts.shape[1] < 2 or not np.all(np.isfinite(pts[:, :2])):
        raise ValueError(f"{what} must be finite [[alpha, beta], ...] pairs, got shape "
                         f"{pts.shape}")
    return pts[:, :2].tolist()


def _paths(surface: Surface) -> list[dict[str, Any]]:
    """Paths and curves the Surface carries in its metadata (see the module docstring)."""
    meta = surface.metadata
    out = []
    if meta.get("path_coordinates") is not None:
        pts = _points(meta["path_coordinates"], "metadata['path_coordinates']")
        labels = meta.get("path_labels")
        if not isinstance(labels, (list, tuple)) or not labels:  # absent, or not a list
            labels = list(range(len(pts)))
        out.append({"name": "training path", "points": pts,
                    "labels": [str(x) for x in labels][:len(pts)]})
    for name, pts in (meta.get("curves") or {}).items():
        out.append({"name": str(name), "points": _points(pts, f"metadata['curves'][{name!r}]"),
                    "labels": []})
    return out


def _labels(surface: Surface) -> list[str]:
    meta = surface.metadata.get("axis_labels")
    if isinstance(meta, (list, tuple)) and all(isinstance(s, str) for s in meta):
        if surface.betas is not None and len(meta) in (2, 3):
            return list(meta[:2])
        if not surface.is_plane and len(meta) >= 1:
            return [meta[0]]
    if isinstance(meta, str) and not surface.is_plane:
        return [meta]
    ratio = surface.metadata.get("explained_variance_ratio")
    if surface.is_plane and isinstance(ratio, (list, tuple)) and len(ratio) >= 2:
        return [f"PC{k + 1} ({100 * float(ratio[k]):.1f} % of variance)" for k in range(2)]
    return (["alpha (direction 1)", "beta (direction 2)"] if surface.betas is not None
            else ["alpha"])


def _item(name: str, surface: Surface) -> dict[str, Any]:
    """One surface as the page's data; a volume is drawn as planes ``[:, :, k]``."""
    if not isinstance(surface, Surface):
        raise TypeError(f"the viewer draws jaxsurf.Surface objects; {name!r} is a "
                        f"{type(surface).__name__}")
    item = {"name": name, "alphas": np.asarray(surface.alphas, float).tolist(),
            "metrics": {k: _array(v) for k, v in surface.metrics.items()},
            "labels": _labels(surface), "summary": surface.summary()}
    if surface.betas is not None:
        item["betas"] = np.asarray(surface.betas, float).tolist()
        item["paths"] = _paths(surface)
    if surface.gammas is not None:
        item["gammas"] = np.asarray(surface.gammas, float).tolist()
        meta = surface.metadata.get("axis_labels")
        item["gamma_label"] = (meta[2] if isinstance(meta, (list, tuple)) and len(meta) == 3
                               and isinstance(meta[2], str) else "gamma (direction 3)")
    return item


def _named(surfaces: Surfaces) -> dict[str, Surface]:
    if isinstance(surfaces, Surface):
        return {str(surfaces.metadata.get("title", "surface")): surfaces}
    if isinstance(surfaces, Mapping):
        named = {str(k): v for k, v in surfaces.items()}
    else:
        named = {}
        for k, s in enumerate(surfaces):
            title = getattr(s, "metadata", {}).get("title") if isinstance(s, Surface) else None
            name = str(title or f"surface {k + 1}")
            named[name if name not in named else f"{name} ({k + 1})"] = s
    if not named:
        raise ValueError("the viewer needs at least one Surface")
    return named


def _groups(surfaces: Surfaces) -> list[dict[str, Any]]:
    """Planes (and volumes) on the same grid in one group (one shared colour scale);
    lines in another.

    Planes on different grids (a random plane and a PCA plane, say) are not
    comparable point by point, so each such set gets its own colour scale.
    """
    named = _named(surfaces)
    grids: dict[tuple, list[dict[str, Any]]] = {}
    lines = []
    for name, s in named.items():
        item = _item(name, s)
        if "betas" in item:
            grids.setdefault((tuple(item["alphas"]), tuple(item["betas"]),
                              tuple(item.get("gammas", ()))), []).append(item)
        else:
            lines.append(item)
    groups = [{"title": "planes on one grid" if len(items) > 1 else items[0]["name"],
               "kind": "plane", "items": items} for items in grids.values()]
    if lines:
        groups.append({"title": "lines", "kind": "line", "items": lines})
    return groups


# --------------------------------------------------------------------------- experiment folders
def _get(result: Mapping[str, Any], keys: Sequence[str]) -> Any:
    value: Any = result
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _cell(value: Any, scale: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if scale is not None:
        return f"{scale * value:.2f}"
    return f"{value:,d}" if isinstance(value, int) else f"{value:.4g}"


def _read_results(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``folder/results.json`` and its variants, checked: a JSON object whose
    ``variants`` map names to objects; errors name the file."""
    path = folder / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no results.json: pass Surface files (.npz), or "
                                f"an experiment's --out folder")
    results = _json.load(path, ValueError, folder=folder)
    fix = "write it with the experiments' report step (a JSON object with \"variants\")"
    if not isinstance(results, dict):
        raise ValueError(f"{path} holds a JSON {type(results).__name__}, not an object; {fix}")
    variants = results.get("variants") or {}
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise ValueError(f"{path}: \"variants\" must map each variant's name to an object "
                         f"(got {type(variants).__name__}); {fix}")
    return results, variants


def _surface_files(folder: Path, vname: str, result: Mapping[str, Any]) -> list[tuple[str, Path]]:
    """``(key, file)`` of the Surface files a variant names, each inside ``folder``."""
    where = f"{folder / 'results.json'}: variants[{vname!r}]['surfaces']"
    surfaces = result.get("surfaces") or {}
    if not isinstance(surfaces, dict):
        raise ValueError(f"{where} must map names to Surface files relative to {folder}, got "
                         f"a {type(surfaces).__name__}")
    root = folder.resolve()
    files = []
    for key, rel in sorted(surfaces.items()):
        if not isinstance(rel, str) or not rel:
            raise ValueError(f"{where}[{key!r}] must be a file name relative to {folder}, got "
                             f"{rel!r}")
        file = folder / rel
        if Path(rel).is_absolute() or not file.resolve().is_relative_to(root):
            raise ValueError(f"{where}[{key!r}] = {rel!r} lies outside {folder}; the viewer "
                             f"reads only Surface files inside the experiment's folder")
        files.append((str(key), file))
    return files


def folder_groups(folder: PathLike) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """The surfaces and numbers of an experiment's ``--out`` folder.

    Args:
        folder: a folder holding ``results.json`` (written by the experiments'
            shared report step) and the Surface files it names.

    Returns:
        ``(groups, table, title)``: one group per kind of plane (``final``,
        ``pca`` ...: the variants side by side on one colour scale), one of
        lines, and the table of each variant's numbers. A PCA plane gets its
        variant's projected training path.

    Example:
        >>> import json, pathlib
        >>> out = pathlib.Path("runs/demo")           # as an experiment's report step writes
        >>> _ = plane.save(out / "skip" / "plane_final.npz")
        >>> results = {"experiment": "demo", "preset": "smoke", "variants": {"skip": {
        ...     "model": "mlp", "surfaces": {"plane_final": "skip/plane_final.npz"}}}}
        >>> _ = (out / "results.json").write_text(json.dumps(results))
        >>> groups, table, title = folder_groups(out)
        >>> title, [g["title"] for g in groups]
        ('demo (smoke)', ['final plane'])
    """
    folder = Path(folder)
    path = folder / "results.json"
    results, variants = _read_results(folder)
    by_tag: dict[str, dict[str, dict[str, Any]]] = {}
    lines: list[dict[str, Any]] = []
    for vname, result in variants.items():
        for key, file in _surface_files(folder, vname, result):
            if not file.exists():
                continue
            surface = Surface.load(file)
            kind, _, tag = key.partition("_")
            label = f"{result.get('model', '')} {vname}".strip()
            if surface.betas is not None:
                if tag == "pca" and "path_coordinates" not in surface.metadata:
                    pca = result.get("pca")
                    pca = pca if isinstance(pca, Mapping) else {}
                    if pca.get("path_coordinates"):
                        surface.metadata["path_coordinates"] = _points(
                            pca["path_coordinates"],
                            f"{path}: variants[{vname!r}]['pca']['path_coordinates']")
                        surface.metadata["path_labels"] = pca.get("epochs")
                by_tag.setdefault(tag or kind, {})[label] = _item(label, surface)
            else:
                lines.append(_item(f"{label}: {key}", surface))
    groups = [{"title": f"{tag} plane" + ("s" if len(items) > 1 else ""), "kind": "plane",
               "items": list(items.values())} for tag, items in by_tag.items()]
    if lines:
        groups.append({"title": "lines", "kind": "line", "items": lines})
    if not groups:
        raise ValueError(f"{path} names no Surface files that exist under {folder}")
    table = {"columns": ["variant"] + [c for c, _, _ in _TABLE],
             "rows": [[v] + [_cell(_get(r, keys), scale) for _, keys, scale in _TABLE]
                      for v, r in variants.items()]}
    used = [k for k in range(1, len(table["columns"]))
            if any(row[k] != "n/a" for row in table["rows"])]
    table = {"columns": [table["columns"][0]] + [table["columns"][k] for k in used],
             "rows": [[row[0]] + [row[k] for k in used] for row in table["rows"]]}
    # what the data was (a synthetic stand-in says so here too)
    table["notes"] = list(dict.fromkeys(
        str(_get(r, ("dataset", "description"))) for r in variants.values()
        if _get(r, ("dataset", "description"))))
    title = f"{results.get('experiment', folder.name)} ({results.get('preset', '?')})"
    return groups, table, title


# --------------------------------------------------------------------------- page
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


def _app_js() -> str:
    """The page's script, ``jaxsurf/_viewer.js`` (package data, so it can be read and
    linted as JavaScript)."""
    return (resources.files("jaxsurf") / "_viewer.js").read_text(encoding="utf-8")


def _page(groups: list[dict[str, Any]], title: str, table: Mapping[str, Any] | None) -> str:
    """The page: the template's four slots filled in one pass.

    Each slot of :data:`_TEMPLATE` is filled once and the inserted text is
    never searched again, so a title or metric named ``__APP__`` stays text.
    The data reach the page only as inert JSON (:func:`_script_json`), read by
    the viewer with ``JSON.parse``.
    """
    data = {"title": title, "groups": groups, "table": table}
    parts = {"TITLE": _html.escape(title),
             "PLOTLY": _plotly_js().replace("</script", "<\\/script").replace("<!--", "<\\!--"),
             "DATA": _script_json(data), "APP": _app_js()}
    return _SLOT.sub(lambda slot: parts[slot.group(1)], _TEMPLATE)


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
    groups = _groups(surfaces)
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
            experiment ``--out`` folders holding ``results.json``.
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
        _plotly_js()
    except ImportError as err:
        if not missing_ok:
            raise
        print(f"viewer.html not written: {err}")
        return None
    out = Path(out) if out is not None else default_out(paths)
    inputs: list[Path] = []            # every file the page is made from: never overwritten
    for p in paths:
        if p.is_dir():
            _, variants = _read_results(p)
            inputs += [p / "results.json"] + [file for v, r in variants.items()
                                               for _, file in _surface_files(p, v, r)]
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
        groups += _groups(files)
    _write_text(out, _page(groups, title or "jaxsurf viewer", table))
    return out


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; margin: 12px 18px; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 6px; } h2 { font-size: 1.05em; margin: 18px 0 4px; }
#controls { position: sticky; top: 0; background: #fff; padding: 6px 0; z-index: 10;
            border-bottom: 1px solid #ddd; }
#controls label { margin-right: 16px; }
table { border-collapse: collapse; font-size: 0.9em; margin: 8px 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.row { display: flex; flex-wrap: wrap; gap: 10px; }
.panel { border: 1px solid #e3e3e3; padding: 4px; }
.panel h3 { font-size: 0.95em; margin: 2px 4px; }
.plot { width: 470px; height: 420px; }
.line { width: 620px; height: 380px; }
.note { color: #666; font-size: 0.85em; margin: 2px 4px; white-space: pre-wrap; }
</style>
<script>__PLOTLY__</script>
</head><body>
<h1 id="title"></h1>
<div id="controls">
<label>metric <select id="metric"></select></label>
<label><input type="checkbox" id="log"> log10 scale</label>
<span class="note">drag to rotate the 3-D views; hover for alpha, beta and every metric</span>
</div>
<div id="table"></div>
<div id="groups"></div>
<script type="application/json" id="jaxsurf-data">__DATA__</script>
<script>__APP__</script>
</body></html>
"""
