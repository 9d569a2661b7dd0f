"""The viewer's data: Surfaces and experiment folders as the page's JSON-ready groups.

Part of :mod:`jaxsurf.view` (its public face); :mod:`jaxsurf.view._page` turns
these groups into the page.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxsurf._io import jsonfile as _json
from jaxsurf._surface import Surface

__all__ = ["PathLike", "Surfaces", "folder_groups", "read_results", "surface_files",
           "surface_groups"]

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



def _array(values: Any) -> dict[str, Any]:
    """A metric array as exact little-endian base64 (float32 kept as float32)."""
    arr = np.asarray(values)
    dtype = "<f4" if arr.dtype == np.float32 else "<f8"
    return {"dtype": dtype[1:], "shape": list(arr.shape),
            "b64": base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode()}


array_json = _array  # shared with the monitor page (jaxsurf.view._monitor_page)


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


def surface_groups(surfaces: Surfaces) -> list[dict[str, Any]]:
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


def read_results(folder: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
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


def surface_files(folder: Path, vname: str, result: Mapping[str, Any]) -> list[tuple[str, Path]]:
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
    results, variants = read_results(folder)
    by_tag: dict[str, dict[str, dict[str, Any]]] = {}
    lines: list[dict[str, Any]] = []
    for vname, result in variants.items():
        for key, file in surface_files(folder, vname, result):
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
