"""The ParaView (``.vtp``/``.vti``) and CSV writers behind :mod:`jaxsurf.export` (its
public face, with the documentation and examples).

Every file goes through :func:`jaxsurf._io.atomic.write_text`. The I/O layer
sits below :mod:`jaxsurf.surface`, so a Surface is recognised by its fields,
not imported.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

import numpy as np

from jaxsurf._io import atomic

__all__ = ["write_vtp", "write_vti", "write_csv", "height_field"]

_SURFACE_FIELDS = ("alphas", "betas", "gammas", "metrics", "metric_names", "is_plane",
                   "is_volume", "shape")


def check_surface(surface: Any) -> None:
    """Refuses anything that is not a :class:`jaxsurf.Surface` (told by its fields)."""
    if not all(hasattr(surface, name) for name in _SURFACE_FIELDS):
        raise TypeError(f"expected a jaxsurf.Surface, got {type(surface).__name__}")


def height_field(surface: Any, metric: str = "loss", *, zmax: float | None = None,
                 log: bool = False, scale_z: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The heights :func:`write_vtp` uses, with the mask of valid nodes.

    Args:
        surface: a plane Surface.
        metric: the metric that gives the height.
        zmax: clip values above ``zmax`` (in the metric's units) before ``log``.
        log: use ``log10`` of the (clipped) value; needs positive values.
        scale_z: multiply the heights by this factor (to exaggerate or flatten).

    Returns:
        ``(raw, z, valid)``, each of shape ``(len(alphas), len(betas))``:
        the metric as stored, the height (non-finite nodes get the largest
        finite height), and whether the node's value was finite.

    Example:
        >>> raw, z, valid = height_field(s, zmax=10, log=True)
    """
    check_surface(surface)
    if surface.is_volume:
        raise ValueError(f"a .vtp height field needs a 2-D plane, but this surface is a "
                         f"{'x'.join(map(str, surface.shape))} volume; write a volume for "
                         f"ParaView with js.export.write_vti(surface, 'volume.vti') (volume "
                         f"rendering, slices, iso-surfaces), or as a table with write_csv")
    if not surface.is_plane:
        raise ValueError(f"a .vtp height field needs a 2-D plane, but this surface is a line "
                         f"of {len(surface.alphas)} points; evaluate a plane "
                         f"(evaluate_plane) or export the line with write_csv")
    if metric not in surface.metrics:
        raise ValueError(f"unknown metric {metric!r}; this surface has "
                         f"{surface.metric_names}: pass one of them as metric=")
    for name, value in (("zmax", zmax), ("scale_z", scale_z)):
        if value is not None and not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if scale_z == 0:
        raise ValueError("scale_z must not be 0 (it would flatten the surface to a plane)")
    raw = np.asarray(surface.metrics[metric], dtype=float)
    valid = np.isfinite(raw)
    if not valid.any():
        raise ValueError(f"metric {metric!r} has no finite values: nothing to export")
    z = np.where(valid, raw, 0.0)  # invalid nodes get their height below
    if zmax is not None:
        z = np.minimum(z, zmax)
    if log:
        if z[valid].min() <= 0:
            raise ValueError(f"log=True needs positive values, but metric {metric!r} has "
                             f"minimum {z[valid].min():.6g}; use log=False")
        z = np.log10(np.where(valid, z, 1.0))
    z = z * scale_z
    z = np.where(valid, z, z[valid].max())
    return raw, z, valid


def _quad_connectivity(n: int, m: int, valid: np.ndarray) -> np.ndarray:
    """Point indices ``(k, 4)`` of the cells whose four corners are valid.

    Point ``(i, j)`` has index ``i * m + j``; corners go (i, j), (i+1, j),
    (i+1, j+1), (i, j+1): counter-clockwise seen from +z for increasing axes.
    """
    index = np.arange(n * m).reshape(n, m)
    corners = [index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]]
    quads = np.stack([c.ravel() for c in corners], axis=1)
    keep = valid.ravel()[quads].all(axis=1)
    return quads[keep]


def _numbers(values: Iterable[Any], fmt: Callable[[Any], str], per_line: int) -> str:
    items = [fmt(v) for v in values]
    rows = [" ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)]
    return "\n".join("          " + r for r in rows)


def _float(value: float) -> str:
    return repr(float(value))


def _data_array(out: TextIO, kind: str, name: str | None, values: np.ndarray, fmt: Callable,
                components: int = 1, per_line: int = 6) -> None:
    name_attr = f' Name="{name}"' if name else ""
    comp_attr = f' NumberOfComponents="{components}"' if components > 1 else ""
    out.write(f'        <DataArray type="{kind}"{name_attr}{comp_attr} format="ascii">\n')
    out.write(_numbers(values.ravel(), fmt, per_line) + "\n")
    out.write("        </DataArray>\n")


def _safe_name(name: str, taken: set[str]) -> str:
    clean = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "_-." else "_"
                    for ch in name) or "metric"
    return clean if clean not in taken else f"metric_{clean}"


def write_vtp(surface: Any, path: str | os.PathLike, metric: str = "loss", *,
              zmax: float | None = None, log: bool = False, scale_z: float = 1.0) -> Path:
    """Writes a plane as a ParaView ``.vtp`` (VTK XML PolyData) height field.

    One point per grid node, ``(alphas[i], betas[j], z[i, j])`` with index
    ``i * len(betas) + j``, and one quad per cell of neighbouring nodes.
    Point data: the metric as stored (non-finite values written as the
    largest finite value, since VTK's ASCII reader cannot parse ``nan``),
    ``z`` (the height drawn), and ``valid`` (1 where the value was finite).
    Quads that touch an invalid node are left out, so diverged regions show
    as holes. The file is ASCII and written atomically.

    Args:
        surface: a plane Surface.
        path: where to write; ``.vtp`` is appended when missing.
        metric: the metric that gives the height and the point data.
        zmax: clip values above ``zmax`` (metric units) before ``log``.
        log: height ``log10(value)``; needs positive values.
        scale_z: multiply heights by this factor.

    Returns:
        The path written.

    Example:
        >>> write_vtp(surface, "runs/loss.vtp", zmax=10, log=True)
        PosixPath('runs/loss.vtp')
    """
    raw, z, valid = height_field(surface, metric, zmax=zmax, log=log, scale_z=scale_z)
    if surface.betas is None:  # height_field has refused lines already
        raise ValueError("write_vtp needs a 2-D plane, but this surface is a line")
    n, m = raw.shape
    X, Y = np.meshgrid(surface.alphas, surface.betas, indexing="ij")
    points = np.stack([X.ravel(), Y.ravel(), z.ravel()], axis=1).astype(float)
    quads = _quad_connectivity(n, m, valid)
    raw_out = np.where(valid, raw, raw[valid].max())
    name = _safe_name(metric, {"z", "valid"})

    buf = io.StringIO()
    buf.write('<?xml version="1.0"?>\n')
    buf.write('<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian">\n')
    buf.write("  <PolyData>\n")
    buf.write(f'    <Piece NumberOfPoints="{n * m}" NumberOfVerts="0" NumberOfLines="0" '
              f'NumberOfStrips="0" NumberOfPolys="{len(quads)}">\n')
    buf.write(f'      <PointData Scalars="{name}">\n')
    _data_array(buf, "Float64", name, raw_out, _float)
    _data_array(buf, "Float64", "z", z, _float)
    _data_array(buf, "UInt8", "valid", valid.astype(np.uint8), str, per_line=30)
    buf.write("      </PointData>\n      <Points>\n")
    _data_array(buf, "Float64", "Points", points, _float, components=3, per_line=3)
    buf.write("      </Points>\n      <Polys>\n")
    _data_array(buf, "Int64", "connectivity", quads, str, per_line=4)
    _data_array(buf, "Int64", "offsets", 4 * np.arange(1, len(quads) + 1), str, per_line=10)
    buf.write("      </Polys>\n    </Piece>\n  </PolyData>\n</VTKFile>\n")
    return atomic.write_text(_target(path, ".vtp"), buf.getvalue(), encoding="ascii",
                             newline="\n")


def _uniform_spacing(coords: np.ndarray, name: str) -> float:
    """The step of an evenly spaced axis (1.0 for a single point), else a clear error."""
    if len(coords) == 1:
        return 1.0
    steps = np.diff(np.asarray(coords, dtype=float))
    if np.any(steps <= 0):
        raise ValueError(f"{name} must be strictly increasing to be written as VTK ImageData, "
                         f"got {np.asarray(coords).tolist()}")
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-12 * np.max(np.abs(coords))):
        raise ValueError(f"VTK ImageData needs evenly spaced coordinates, but the steps of "
                         f"{name} range from {steps.min():g} to {steps.max():g}; evaluate on "
                         f"np.linspace(...) or export with write_csv")
    return float(steps.mean())


def write_vti(surface: Any, path: str | os.PathLike) -> Path:
    """Writes a volume (or a plane) as VTK ImageData (``.vti``) for ParaView.

    ParaView opens it directly (File → Open) for volume rendering, slices and
    iso-surfaces (Contour filter) of the metric. Point ``(i, j, k)`` sits at
    ``(alphas[i], betas[j], gammas[k])`` (x, y, z); a plane is written with
    one layer in z. Every metric is a point-data array; ``loss`` is the
    active scalar (ParaView colours by it on opening), or the first metric
    when there is no ``loss``; non-finite values are written as the metric's largest
    finite value (VTK's ASCII reader cannot parse ``nan``) and ``valid``
    holds 1 where every metric is finite. The file is ASCII and written
    atomically.

    Args:
        surface: a volume (``gammas`` set) or a plane Surface on evenly
            spaced coordinates (ImageData has one step per axis).
        path: where to write; ``.vti`` is appended when missing.

    Returns:
        The path written.

    Example:
        >>> write_vti(volume, "runs/volume.vti")
        PosixPath('runs/volume.vti')
    """
    check_surface(surface)
    if surface.betas is None:
        raise ValueError(f"write_vti needs a volume or a plane, but this surface is a line of "
                         f"{len(surface.alphas)} points; export it with write_csv")
    axes = [surface.alphas, surface.betas,
            surface.gammas if surface.gammas is not None else np.zeros(1)]
    spacing = [_uniform_spacing(c, n) for c, n in zip(axes, ("alphas", "betas", "gammas"))]
    sizes = [len(c) for c in axes]
    extent = " ".join(f"0 {n - 1}" for n in sizes)
    origin = " ".join(_float(c[0]) for c in axes)
    valid = np.ones(sizes, dtype=bool)
    arrays, taken = [], {"valid"}
    for metric in surface.metric_names:
        values = np.asarray(surface.metrics[metric], dtype=float).reshape(sizes)
        finite = np.isfinite(values)
        valid &= finite
        fill = values[finite].max() if finite.any() else 0.0
        name = _safe_name(metric, taken)
        taken.add(name)
        # VTK's point order: x (alpha) fastest, then y, then z: Fortran order of [i, j, k]
        arrays.append((name, np.where(finite, values, fill).ravel(order="F")))

    active = arrays[surface.metric_names.index("loss")][0] if "loss" in surface.metrics \
        else arrays[0][0]  # ParaView colours by the active scalar when it opens the file
    buf = io.StringIO()
    buf.write('<?xml version="1.0"?>\n')
    buf.write('<VTKFile type="ImageData" version="0.1" byte_order="LittleEndian">\n')
    buf.write(f'  <ImageData WholeExtent="{extent}" Origin="{origin}" '
              f'Spacing="{" ".join(_float(x) for x in spacing)}">\n')
    buf.write(f'    <Piece Extent="{extent}">\n')
    buf.write(f'      <PointData Scalars="{active}">\n')
    for name, values in arrays:
        _data_array(buf, "Float64", name, values, _float)
    _data_array(buf, "UInt8", "valid", valid.astype(np.uint8).ravel(order="F"), str,
                per_line=30)
    buf.write("      </PointData>\n      <CellData>\n      </CellData>\n")
    buf.write("    </Piece>\n  </ImageData>\n</VTKFile>\n")
    return atomic.write_text(_target(path, ".vti"), buf.getvalue(), encoding="ascii",
                             newline="\n")


def write_csv(surface: Any, path: str | os.PathLike) -> Path:
    """Writes a surface as CSV: columns ``alpha`` (, ``beta``(, ``gamma``)), then one per metric.

    One row per grid point, the last axis varying fastest: row ``i *
    len(betas) + j`` is ``(alphas[i], betas[j])`` for a plane, row ``(i *
    len(betas) + j) * len(gammas) + k`` is ``(alphas[i], betas[j],
    gammas[k])`` for a volume. Non-finite values are written as
    ``nan``/``inf``. The file is UTF-8 (metric names may be any text).

    Args:
        surface: a line, plane or volume Surface.
        path: where to write; ``.csv`` is appended when missing.

    Returns:
        The path written.

    Example:
        >>> write_csv(surface, "runs/surface.csv")
        PosixPath('runs/surface.csv')
    """
    check_surface(surface)
    axes = [a for a in (surface.alphas, surface.betas, surface.gammas) if a is not None]
    grids = np.meshgrid(*axes, indexing="ij")
    columns: dict[str, np.ndarray] = {axis: g.ravel() for axis, g
                                      in zip(("alpha", "beta", "gamma"), grids)}
    for name in surface.metric_names:
        values = surface.metrics[name].ravel()
        if values.size != len(columns["alpha"]):  # guarded by Surface; never a partial table
            raise ValueError(f"metric {name!r} has {values.size} values for "
                             f"{len(columns['alpha'])} grid points")
        columns[name if name not in columns else f"metric_{name}"] = values
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(columns))
    for row in zip(*columns.values()):
        writer.writerow([_float(v) for v in row])
    return atomic.write_text(_target(path, ".csv"), buf.getvalue(), encoding="utf-8",
                             newline="\n")


def _target(path: str | os.PathLike, suffix: str) -> Path:
    """``path`` with ``suffix`` added when missing, its folder created."""
    path = Path(path)
    path = path if path.suffix.lower() == suffix else path.with_name(path.name + suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
