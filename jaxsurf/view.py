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
    pts = np.asarray(value, dtype=float)
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
        labels = meta.get("path_labels") or list(range(len(pts)))
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
    if path.stat().st_size > _json.MAX_JSON_CHARS:
        raise ValueError(f"{path} is {path.stat().st_size:,} bytes, more than the "
                         f"{_json.MAX_JSON_CHARS:,} the viewer reads; it is not an "
                         f"experiment's results.json")
    results = _json.loads(path.read_bytes(), ValueError, str(path))
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
                        surface.metadata["path_coordinates"] = pca["path_coordinates"]
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
             "DATA": _script_json(data), "APP": _APP}
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

_APP = r"""
"use strict";
const DATA = JSON.parse(document.getElementById("jaxsurf-data").textContent);
const CONFIG = {displaylogo: false, responsive: true, displayModeBar: "hover"};

function decode(m) {
  const bin = atob(m.b64), bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  return m.dtype === "f4" ? new Float32Array(bytes.buffer) : new Float64Array(bytes.buffer);
}
for (const g of DATA.groups) for (const it of g.items)
  for (const name in it.metrics) it.metrics[name].values = decode(it.metrics[name]);

const isSem = (it, n) => n.endsWith("_sem") && (n.slice(0, -4) in it.metrics);
const fmt = v => (v === null || !isFinite(v)) ? String(v) : Number(v).toPrecision(5);
const fin = v => (v === null || !isFinite(v)) ? null : v;

// value of metric `name` at grid index (i, j): metrics[name][i, j], row-major (alphas, betas)
// a volume (metrics[name][i, j, k]) shows the slice k = it.k, chosen with its slider
function at(it, name, i, j) {
  const v = it.metrics[name].values, ij = i * it.betas.length + j;
  return it.gammas ? v[ij * it.gammas.length + it.k] : v[ij];
}
function transform(v, log) { return !isFinite(v) ? null : (log ? (v > 0 ? Math.log10(v) : null) : v); }

function hoverText(it) {           // text[j][i], plotly's z[row = beta][column = alpha]
  const names = Object.keys(it.metrics), na = it.alphas.length, nb = it.betas.length;
  const text = [];
  for (let j = 0; j < nb; j++) {
    const row = [];
    for (let i = 0; i < na; i++)
      row.push(`alpha ${fmt(it.alphas[i])}, beta ${fmt(it.betas[j])}` +
               (it.gammas ? `, gamma ${fmt(it.gammas[it.k])}` : "") + "<br>" +
               names.map(n => `${n} ${fmt(at(it, n, i, j))}`).join("<br>"));
    text.push(row);
  }
  return text;
}

function zGrid(it, name, log) {    // z[j][i] = metrics[name][i, j]
  const z = [];
  for (let j = 0; j < it.betas.length; j++) {
    const row = [];
    for (let i = 0; i < it.alphas.length; i++) row.push(transform(at(it, name, i, j), log));
    z.push(row);
  }
  return z;
}

function bilinear(it, name, a, b, log) {
  const A = it.alphas, B = it.betas;
  if (a < A[0] || a > A[A.length - 1] || b < B[0] || b > B[B.length - 1]) return null;
  let i = 0, j = 0;
  while (i < A.length - 2 && A[i + 1] < a) i++;
  while (j < B.length - 2 && B[j + 1] < b) j++;
  const ta = A.length > 1 ? (a - A[i]) / (A[i + 1] - A[i]) : 0;
  const tb = B.length > 1 ? (b - B[j]) / (B[j + 1] - B[j]) : 0;
  const v = (1 - ta) * (1 - tb) * at(it, name, i, j) + ta * (1 - tb) * at(it, name, i + 1, j)
          + (1 - ta) * tb * at(it, name, i, j + 1) + ta * tb * at(it, name, i + 1, j + 1);
  return transform(v, log);
}

function sharedRange(g, name, log) {
  let lo = Infinity, hi = -Infinity;
  for (const it of g.items) if (name in it.metrics)
    for (const v of it.metrics[name].values) {
      const t = transform(v, log);
      if (t !== null) { lo = Math.min(lo, t); hi = Math.max(hi, t); }
    }
  if (!(hi > lo)) { hi = lo + 1; }
  return [lo, hi];
}

function boxAspect(it) {
  const wa = it.alphas[it.alphas.length - 1] - it.alphas[0];
  const wb = it.betas[it.betas.length - 1] - it.betas[0];
  if (!(wa > 0 && wb > 0) || wa / wb > 4 || wb / wa > 4) return {x: 1, y: 1, z: 0.75};
  const s = 1 / Math.max(wa, wb);
  return {x: wa * s, y: wb * s, z: 0.75};
}

function planeTraces(it, name, log, range, showScale, zlabel) {
  const z = zGrid(it, name, log), text = hoverText(it);
  const common = {x: it.alphas, y: it.betas, z: z, text: text, colorscale: "Viridis",
                  hovertemplate: "%{text}<extra></extra>"};
  const bar = {title: {text: zlabel}, len: 0.8};
  const surf = Object.assign({type: "surface", name: it.name, cmin: range[0], cmax: range[1],
                              showscale: false}, common);   // the contour's bar is the scale
  const size = (range[1] - range[0]) / 20;
  const cont = Object.assign({type: "contour", name: it.name, zmin: range[0], zmax: range[1],
    autocontour: false, contours: {start: range[0] + size / 2, end: range[1], size: size,
                                   coloring: "heatmap", showlines: true},
    line: {width: 0.5, color: "rgba(0,0,0,0.35)"}, showscale: showScale, colorbar: bar}, common);
  const t3 = [surf], t2 = [cont];
  const mark = (pts, label, style) => {
    const zs = pts.map(p => bilinear(it, name, p[0], p[1], log));
    t2.push(Object.assign({type: "scatter", mode: style.mode, x: pts.map(p => p[0]),
      y: pts.map(p => p[1]), name: label, text: style.text, textposition: "top right",
      marker: style.marker, line: style.line, hovertemplate: label + " %{x:.4g}, %{y:.4g}<extra></extra>"}));
    t3.push({type: "scatter3d", mode: style.mode3d || style.mode.replace("+text", ""),
      x: pts.map(p => p[0]), y: pts.map(p => p[1]), z: zs, name: label,
      marker: Object.assign({}, style.marker, {size: 4}), line: style.line,
      hovertemplate: label + " %{x:.4g}, %{y:.4g}: %{z:.5g}<extra></extra>"});
  };
  const A = it.alphas, B = it.betas;
  for (const p of it.paths)
    mark(p.points, p.name, {mode: p.labels.length ? "lines+markers+text" : "lines+markers",
      text: p.labels, marker: {size: 5, color: "#d62728"}, line: {color: "#d62728", width: 2}});
  const G = it.gammas, nearest0 = G ? G.reduce((m, g, k) => Math.abs(g) < Math.abs(G[m]) ? k : m, 0) : 0;
  if (A[0] <= 0 && 0 <= A[A.length - 1] && B[0] <= 0 && 0 <= B[B.length - 1]
      && (!G || (it.k === nearest0 && G[0] <= 0 && 0 <= G[G.length - 1])))
    mark([[0, 0]], "solution (origin)", {mode: "markers", marker: {size: 14, symbol: "star",
      color: "white", line: {color: "black", width: 1.5}}, mode3d: "markers"});
  for (const t of t3) if (t.type === "scatter3d" && t.name === "solution (origin)")
    t.marker = {size: 6, symbol: "diamond", color: "white", line: {color: "black", width: 2}};
  return [t3, t2];
}

function drawPlaneGroup(g, gi, name, log) {
  const range = sharedRange(g, name, log);
  const zlabel = log ? `log10(${name})` : name;
  g.items.forEach((it, k) => {
    const d3 = document.getElementById(`g${gi}-i${k}-surface`);
    const d2 = document.getElementById(`g${gi}-i${k}-contour`);
    const note = document.getElementById(`g${gi}-i${k}-note`);
    if (!(name in it.metrics)) {
      Plotly.purge(d3); Plotly.purge(d2); note.textContent = `no metric ${name} in this surface`;
      return;
    }
    note.textContent = "";
    const last = k === g.items.length - 1;
    const [t3, t2] = planeTraces(it, name, log, range, last, zlabel);
    Plotly.react(d3, t3, {margin: {l: 0, r: 0, t: 0, b: 0}, showlegend: false,
      scene: {camera: {eye: {x: -1.35, y: -1.65, z: 1.25}},
              xaxis: {title: {text: it.labels[0]}}, yaxis: {title: {text: it.labels[1]}},
              zaxis: {title: {text: zlabel}, range: range}, aspectmode: "manual",
              aspectratio: boxAspect(it)}}, CONFIG);
    Plotly.react(d2, t2, {margin: {l: 60, r: 10, t: 10, b: 50}, showlegend: false,
      xaxis: {title: {text: it.labels[0]}, range: [it.alphas[0], it.alphas[it.alphas.length - 1]]},
      yaxis: {title: {text: it.labels[1]}, range: [it.betas[0], it.betas[it.betas.length - 1]]}},
      CONFIG);
  });
}

function drawLine(it, div, log) {
  const all = Object.keys(it.metrics).filter(n => !isSem(it, n));
  const names = all.filter(n => !/acc/i.test(n)).concat(all.filter(n => /acc/i.test(n)));
  const traces = [];
  let right = false;
  names.forEach((n, k) => {
    const vals = Array.from(it.metrics[n].values);
    const finite = vals.filter(v => isFinite(v));
    const pct = /acc/i.test(n) && finite.length && Math.min(...finite) >= 0 && Math.max(...finite) <= 1;
    const onRight = /acc/i.test(n) && names.some(m => !/acc/i.test(m));
    right = right || onRight;
    const s = pct ? 100 : 1;
    const t = {type: "scatter", mode: "lines+markers", x: it.alphas, y: vals.map(v => fin(v) === null ? null : s * v),
               name: pct ? `${n} (%)` : n, yaxis: onRight ? "y2" : "y", marker: {size: 4},
               hovertemplate: `alpha %{x:.4g}<br>${n} %{y:.5g}${pct ? " %" : ""}<extra></extra>`};
    const sem = it.metrics[n + "_sem"];
    if (sem) t.error_y = {type: "data", array: Array.from(sem.values).map(v => 2 * s * v),
                          visible: true, thickness: 1};
    traces.push(t);
  });
  const layout = {margin: {l: 60, r: 60, t: 10, b: 50},
    legend: {orientation: "h", y: -0.25}, hovermode: "x unified",
    xaxis: {title: {text: it.labels[0]}},
    yaxis: {title: {text: names.filter(n => !/acc/i.test(n)).join(", ") || names.join(", ")},
            type: log ? "log" : "linear"}};
  if (right) layout.yaxis2 = {overlaying: "y", side: "right", tickmode: "auto", showgrid: false,
    title: {text: traces.filter(t => t.yaxis === "y2").map(t => t.name).join(", ")}};
  Plotly.react(div, traces, layout, CONFIG);
}

function render() {
  const name = document.getElementById("metric").value;
  const log = document.getElementById("log").checked;
  DATA.groups.forEach((g, gi) => {
    if (g.kind === "plane") drawPlaneGroup(g, gi, name, log);
    else g.items.forEach((it, k) => drawLine(it, document.getElementById(`g${gi}-i${k}-line`), log));
  });
}

function build() {
  document.getElementById("title").textContent = DATA.title;
  document.title = DATA.title;
  if (DATA.table) {
    const t = document.createElement("table");
    const head = t.insertRow();
    for (const c of DATA.table.columns) { const th = document.createElement("th"); th.textContent = c; head.appendChild(th); }
    for (const r of DATA.table.rows) { const tr = t.insertRow(); for (const c of r) tr.insertCell().textContent = c; }
    document.getElementById("table").appendChild(t);
    for (const n of DATA.table.notes || []) {
      const p = document.createElement("div"); p.className = "note"; p.textContent = "data: " + n;
      document.getElementById("table").appendChild(p);
    }
  }
  const names = [];
  for (const g of DATA.groups) if (g.kind === "plane")
    for (const it of g.items) for (const n in it.metrics) if (!names.includes(n)) names.push(n);
  const sel = document.getElementById("metric");
  for (const n of names) { const o = document.createElement("option"); o.value = o.textContent = n; sel.appendChild(o); }
  if (names.includes("loss")) sel.value = "loss";
  if (!names.length) sel.parentElement.style.display = "none";
  const root = document.getElementById("groups");
  DATA.groups.forEach((g, gi) => {
    const h = document.createElement("h2");
    h.textContent = g.title + (g.kind === "plane" && g.items.length > 1 ? " (one colour scale)" : "");
    root.appendChild(h);
    const row = document.createElement("div"); row.className = "row"; root.appendChild(row);
    g.items.forEach((it, k) => {
      const p = document.createElement("div"); p.className = "panel"; row.appendChild(p);
      const t = document.createElement("h3"); t.textContent = it.name; p.appendChild(t);
      const views = g.kind === "plane" ? ["surface", "contour"] : ["line"];
      const box = document.createElement("div"); box.className = "row"; p.appendChild(box);
      if (g.items.length > 1) box.style.flexDirection = "column";   // panels side by side
      for (const v of views) {
        const d = document.createElement("div"); d.id = `g${gi}-i${k}-${v}`;
        d.className = v === "line" ? "line" : "plot";
        d.dataset.surface = it.name; d.dataset.view = v; d.dataset.group = String(gi);
        box.appendChild(d);
      }
      if (it.gammas) {                      // a volume: one slice at a time
        it.k = it.gammas.reduce((m, g, q) => Math.abs(g) < Math.abs(it.gammas[m]) ? q : m, 0);
        const lab = document.createElement("label"); lab.className = "note";
        const range = document.createElement("input");
        Object.assign(range, {type: "range", min: 0, max: it.gammas.length - 1, step: 1, value: it.k});
        range.id = `g${gi}-i${k}-slider`;
        const txt = document.createElement("span");
        const show = () => { txt.textContent = ` ${it.gamma_label} = ${fmt(it.gammas[it.k])} (slice ${it.k + 1} of ${it.gammas.length})`; };
        range.addEventListener("input", () => { it.k = Number(range.value); show(); render(); });
        show(); lab.appendChild(range); lab.appendChild(txt); p.insertBefore(lab, box);
      }
      const note = document.createElement("div"); note.className = "note"; note.id = `g${gi}-i${k}-note`;
      note.title = it.summary; p.appendChild(note);
    });
  });
  // like the static figures: start on a log scale when the values span over two decades
  const wide = DATA.groups.some(g => g.kind === "plane" && g.items.some(it => {
    const m = it.metrics[sel.value]; if (!m) return false;
    const v = Array.from(m.values).filter(x => isFinite(x));
    return v.length && Math.min(...v) > 0 && Math.max(...v) > 100 * Math.min(...v);
  }));
  document.getElementById("log").checked = wide;
  sel.addEventListener("change", render);
  document.getElementById("log").addEventListener("change", render);
  render();
  document.body.dataset.ready = "1";
}
build();
"""
