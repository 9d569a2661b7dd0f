"""The implementation of :mod:`jaxsurf.pca`; its public face, with the
documentation and examples, is ``jaxsurf/pca.py``."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _validate, _tree as tree
from jaxsurf._deprecation import deprecated_alias
from jaxsurf._directions import sharding_of
from jaxsurf._layout import leaf_layouts
from jaxsurf._tree import PyTree

__all__ = ["pca_directions", "project", "plot_path", "DEFAULT_MEMORY_BUDGET"]

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of trajectory rows held at once (1 GiB)
_CHUNK = 1 << 18  # elements converted to float64 at a time in dot products
_RANK_RTOL = 1e-10  # eigenvalues below this fraction of the largest count as zero
_IGNORES = ("biasbn", None)

Trajectory = Sequence[PyTree] | str | os.PathLike


# --------------------------------------------------------------------------- sources
def _spec(params: PyTree) -> PyTree:
    """Shapes and dtypes of ``params`` as ``jax.ShapeDtypeStruct`` leaves (no data)."""
    def leaf(x: Any) -> jax.ShapeDtypeStruct:
        shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
        return jax.ShapeDtypeStruct(tuple(shape) if shape is not None else np.shape(x),
                                    dtype if dtype is not None else np.asarray(x).dtype)

    return jax.tree_util.tree_map(leaf, params)


def _check_point(point: PyTree, spec: PyTree, name: str, reference_name: str) -> None:
    """``tree.check_like`` with a hint that fits trajectories."""
    try:
        tree.check_like(point, spec, name=name, reference_name=reference_name)
    except ValueError as error:
        reason = str(error).split("; make the ")[0]
        raise ValueError(f"{reason}; every point of a trajectory (and the origin) must have "
                         f"the same leaves, shapes and dtypes: record them from one model"
                         ) from None


class _Source:
    """The ``n`` points of a trajectory, read one at a time and checked.

    A directory is read through :mod:`jaxsurf.trajectory` (one checkpoint in
    memory per read); a list or tuple is indexed.
    """

    def __init__(self, trajectory: Trajectory, params_like: PyTree | None) -> None:
        self._reader = None
        if isinstance(trajectory, (str, os.PathLike)):
            from jaxsurf._trajectory import TrajectoryReader

            self._reader = TrajectoryReader(trajectory, params_like=params_like)
            self.labels = [f"step {s}" for s in self._reader.steps]
            self._points: Any = None
            self.n = len(self._reader.steps)
        elif isinstance(trajectory, (list, tuple)):
            if not trajectory:
                raise ValueError("the trajectory is empty: pass a list of at least two params "
                                 "pytrees, or a directory written by js.TrajectoryRecorder")
            self._points = trajectory
            self.labels = [f"trajectory[{i}]" for i in range(len(trajectory))]
            self.n = len(trajectory)
        else:
            raise TypeError(
                f"trajectory must be a list/tuple of params pytrees or a directory path, got "
                f"{type(trajectory).__name__}; it is read twice (Gram matrix, then "
                f"directions), so a one-shot iterator cannot be used: pass list(...)")
        if params_like is not None:
            first = params_like
        elif self._reader is not None:
            first = self._reader.template()  # from metadata: no checkpoint read
        else:
            first = self._points[0]
        self.spec = _spec(first)
        self.reference_name = "params_like" if params_like is not None else self.labels[0]

    def _read(self, i: int) -> PyTree:
        if self._reader is not None:
            return self._reader.params(self._reader.steps[i])
        return self._points[i]

    def get(self, i: int) -> PyTree:
        """Point ``i`` (0-based, in step order), checked against the first point."""
        point = self._read(i)
        _check_point(point, self.spec, self.labels[i], self.reference_name)
        return point

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> "_Source":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------- flat rows
@dataclass(frozen=True)
class _Layout:
    """Where each used leaf lives in the flat row vector of length ``size``."""

    treedef: Any
    leaves: list[jax.ShapeDtypeStruct]
    offsets: list[int | None]  # None: leaf not used (non-float, or ignored)
    size: int
    dtype: np.dtype  # float64 if any used leaf is float64, else float32


def _layout(spec: PyTree, ignore: str | None) -> _Layout:
    leaves, treedef = jax.tree_util.tree_flatten(spec)
    # ignore="biasbn" by role (biases and normalization parameters of any shape, and
    # every leaf of ndim <= 1), as js.normalize does
    ignored = [l.ignorable for l in leaf_layouts(spec, warn=False)] if ignore == "biasbn" \
        else [False] * len(leaves)
    offsets: list[int | None] = []
    size, wide = 0, False
    for leaf, skip in zip(leaves, ignored):
        used = jnp.issubdtype(leaf.dtype, jnp.floating) and not skip
        offsets.append(size if used else None)
        if used:
            size += math.prod(leaf.shape)
            wide |= np.dtype(leaf.dtype).itemsize > 4
    return _Layout(treedef, leaves, offsets, size, np.dtype(np.float64 if wide else np.float32))


def _used_leaves(layout: _Layout, params: PyTree) -> list[np.ndarray | None]:
    """The used leaves of ``params`` as host numpy arrays (None for unused ones)."""
    return [np.asarray(x) if off is not None else None
            for x, off in zip(jax.tree_util.tree_leaves(params), layout.offsets)]


def _fill_row(layout: _Layout, params: PyTree, origin: list[np.ndarray | None] | None,
              out: np.ndarray) -> np.ndarray:
    """Writes ``params - origin`` (used leaves, flattened) into ``out``; differences are
    taken in float64, one leaf at a time."""
    for i, (x, off) in enumerate(zip(jax.tree_util.tree_leaves(params), layout.offsets)):
        if off is None:
            continue
        flat = np.asarray(x).reshape(-1)
        if origin is None:
            out[off:off + flat.size] = flat
            continue
        base = origin[i]
        if base is None:  # origin is _used_leaves(layout, ...): None only for unused leaves
            raise ValueError(f"the origin has no values for leaf {i}, which is used")
        # computed in float64, buffered by numpy: no leaf-sized temporaries
        np.subtract(flat, base.reshape(-1), out=out[off:off + flat.size],
                    dtype=np.float64, casting="same_kind")
    return out


def _unflatten(layout: _Layout, vec: np.ndarray) -> PyTree:
    """A params-shaped pytree of numpy arrays from a flat vector (zeros on unused leaves)."""
    leaves = []
    for leaf, off in zip(layout.leaves, layout.offsets):
        if off is None:
            leaves.append(np.zeros(leaf.shape, leaf.dtype))
        else:
            n = math.prod(leaf.shape)
            leaves.append(vec[off:off + n].reshape(leaf.shape).astype(leaf.dtype))
    return jax.tree_util.tree_unflatten(layout.treedef, leaves)


def _dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` accumulated in float64, converting ``_CHUNK`` columns at a time."""
    out = np.zeros((a.shape[0], b.shape[0]))
    for c in range(0, a.shape[1], _CHUNK):
        out += a[:, c:c + _CHUNK].astype(np.float64) @ b[:, c:c + _CHUNK].astype(np.float64).T
    return out


def _origin(source: _Source, layout: _Layout, origin: PyTree | None
            ) -> list[np.ndarray | None]:
    if origin is None:
        return _used_leaves(layout, source.get(source.n - 1))
    _check_point(origin, source.spec, "origin", source.reference_name)
    return _used_leaves(layout, origin)


# --------------------------------------------------------------------------- passes
def _gram(source: _Source, layout: _Layout, origin: list, memory_budget: int) -> np.ndarray:
    """``G[i, j] = <θ_i - o, θ_j - o>`` (float64), holding one block of rows at a time."""
    n, size = source.n, layout.size
    row_bytes = max(size * layout.dtype.itemsize, 1)
    block = int(max(1, min(n, memory_budget // row_bytes)))
    gram = np.zeros((n, n))
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = np.empty((stop - start, size), layout.dtype)
        for r, i in enumerate(range(start, stop)):
            _fill_row(layout, source.get(i), origin, rows[r])
        gram[start:stop, start:stop] = _dots(rows, rows)
        other = np.empty((1, size), layout.dtype)
        for j in range(stop, n):
            g = _dots(rows, _fill_row(layout, source.get(j), origin, other[0])[None])[:, 0]
            gram[start:stop, j] = g
            gram[j, start:stop] = g
        del rows
    return gram


def _principal_axes(gram: np.ndarray, k: int, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row coefficients ``A`` (n, k) with ``v_j = Σ_i A[i, j] x_i`` unit principal axes,
    and the explained variance ratio of the first ``k`` components."""
    n = gram.shape[0]
    c = np.eye(n) - (1.0 / n if center else 0.0)
    g = c @ gram @ c
    lam, u = np.linalg.eigh((g + g.T) / 2)
    lam, u = np.clip(lam[::-1], 0.0, None), u[:, ::-1]
    total = float(lam.sum())
    if total <= 0.0:
        raise ValueError("all points of the trajectory are identical (zero variance): there is "
                         "no path to analyse; check that the params changed between saves")
    rank = int(np.sum(lam > _RANK_RTOL * lam[0]))
    if k > rank:
        raise ValueError(f"k={k} principal components requested but the trajectory spans only "
                         f"{rank} dimension(s) (numerically); use k <= {rank}")
    u = u[:, :k]
    for j in range(k):  # sign: the path's end lies at a larger coordinate than its start
        s = u[-1, j] - u[0, j]
        if s < 0 or (s == 0 and u[np.argmax(np.abs(u[:, j])), j] < 0):
            u[:, j] = -u[:, j]
    return c @ u / np.sqrt(lam[:k]), lam[:k] / total


def _combine(source: _Source, layout: _Layout, origin: list, coeffs: np.ndarray) -> np.ndarray:
    """``coeffs.T @ X`` (k, P) in float64, reading one point at a time."""
    k = coeffs.shape[1]
    out = np.zeros((k, layout.size))
    row = np.empty(layout.size, layout.dtype)
    for i in range(source.n):
        _fill_row(layout, source.get(i), origin, row)
        for j in range(k):
            for c in range(0, layout.size, _CHUNK):
                out[j, c:c + _CHUNK] += coeffs[i, j] * row[c:c + _CHUNK].astype(np.float64)
    return out


def _check_k(k: Any, n: int, center: bool) -> int:
    _validate.positive_int(k, "k")
    most = n - 1 if center else n
    if k > most:
        raise ValueError(f"k={k} is too large for a trajectory of {n} point(s): "
                         f"{'centred ' if center else ''}PCA of {n} points has at most {most} "
                         f"component(s); record more checkpoints or use k <= {max(most, 0)}")
    return int(k)


# --------------------------------------------------------------------------- public API
def pca_directions(trajectory: Trajectory, *, origin: PyTree | None = None, k: int = 2,
                   ignore: str | None = None, center: bool = True,
                   params_like: PyTree | None = None,
                   memory_budget: int = DEFAULT_MEMORY_BUDGET
                   ) -> tuple[list[PyTree], np.ndarray]:
    """The top-``k`` principal directions of a trajectory (Li et al. 2018), streamed.

    Args:
        trajectory: a list/tuple of params pytrees, or a directory written by
            :class:`jaxsurf.TrajectoryRecorder` (read with
            :func:`jaxsurf.load_trajectory`, one checkpoint at a time).
        origin: the point the rows ``θ_i - origin`` are measured from; default
            the last point. All ``n`` points are rows (the origin's own row is
            zero). With ``center=True`` the directions do not depend on it.
        k: number of directions.
        ignore: ``"biasbn"`` sets biases and normalization parameters (by
            role, whatever their shape, as :func:`jaxsurf.normalize`) and every
            leaf of ``ndim <= 1`` to zero before the analysis, so the
            directions are zero there; ``None`` uses every float leaf.
        center: subtract the mean row (ordinary PCA, the default); ``False``
            gives the principal axes of the uncentred rows ``θ_i - origin``.
        params_like: for a directory, the target pytree to restore into (see
            :func:`jaxsurf.load_trajectory`); the directions take its structure.
        memory_budget: bytes of rows held at once while building the Gram
            matrix; peak memory is about this plus ``k + 2`` checkpoints.

    Returns:
        ``(directions, explained_variance_ratio)``: ``k`` orthonormal pytrees
        of numpy arrays shaped and typed like the params (non-float leaves are
        zero; a leaf whose params, i.e. ``origin``, ``params_like`` or the
        list's first point, is a ``jax.Array`` sharded over a mesh comes back
        sharded the same way), and an array of shape ``(k,)``: each component's variance as a
        fraction of the total variance of all components. Signs are chosen so
        that the path's last point has a larger coordinate than its first.

    Raises:
        ValueError: empty trajectory, ``k`` too large for the number of points
            or the dimension the path spans, points (or the origin) that do
            not match the first point (naming the leaf), or a corrupt step.

    Example:
        >>> (d1, d2), ratio = js.pca_directions(trajectory, ignore="biasbn")
        >>> print(f"PC1 {ratio[0]:.1%}, PC2 {ratio[1]:.1%}")
        PC1 ...%, PC2 ...%
    """
    if ignore not in _IGNORES:
        raise ValueError(f"unknown ignore option {ignore!r}; use 'biasbn' or None")
    with _Source(trajectory, params_like) as source:
        k = _check_k(k, source.n, center)
        layout = _layout(source.spec, ignore)
        if layout.size == 0:
            hint = (" of ndim >= 2 (ignore='biasbn' drops the others; use ignore=None)"
                    if ignore else "")
            raise ValueError(f"no parameters left to analyse: the params have no float "
                             f"leaves{hint}")
        o = _origin(source, layout, origin)
        coeffs, ratio = _principal_axes(_gram(source, layout, o, memory_budget), k, center)
        vecs = _combine(source, layout, o, coeffs)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    reference = origin if origin is not None else params_like if params_like is not None \
        else next(iter(trajectory)) if isinstance(trajectory, (list, tuple)) else None
    return [_placed_like(_unflatten(layout, v), reference) for v in vecs], ratio


def _placed_like(direction: PyTree, reference: PyTree | None) -> PyTree:
    """``direction`` (numpy leaves) with each leaf sharded as ``reference``'s leaf is,
    where that leaf is a ``jax.Array`` sharded over a mesh (only the shards move)."""
    if reference is None:
        return direction
    refs = jax.tree_util.tree_leaves(reference)
    leaves, treedef = jax.tree_util.tree_flatten(direction)
    if len(refs) != len(leaves):
        return direction
    placed = [leaf if sharding_of(ref) is None else jax.device_put(leaf, sharding_of(ref))
              for leaf, ref in zip(leaves, refs)]
    return jax.tree_util.tree_unflatten(treedef, placed)


def project(trajectory: Trajectory, origin: PyTree | None, directions: Sequence[PyTree], *,
            params_like: PyTree | None = None) -> np.ndarray:
    """Coordinates of each ``θ_i - origin`` in the span of ``directions`` (least squares).

    The contour under the path is evaluated at ``origin + Σ_j c_j d_j``, so the
    point drawn for ``θ_i`` must be the *nearest point of that plane*: the
    ``c`` minimising ``‖θ_i - origin - Σ_j c_j d_j‖``, i.e. the solution of the
    normal equations ``(D Dᵀ) c = D (θ_i - origin)`` with ``D`` the directions
    as rows. The reference code's "cosine" projection ``c_j = <x, d_j> / ‖d_j‖``
    equals this only when the directions are orthonormal; for filter-normalized
    or random directions (not unit, not orthogonal) it misplaces the path
    relative to the contour. PCA directions from :func:`pca_directions` are
    orthonormal, so there both agree (up to rounding).

    Args:
        trajectory: a list/tuple of params pytrees or a recorded directory.
        origin: the plane's origin (the params the surface was evaluated
            around); ``None`` means the last point of the trajectory.
        directions: ``k`` linearly independent pytrees shaped like the params.
        params_like: restore target for a directory (see :func:`pca_directions`).

    Returns:
        Array of shape ``(n, k)``: row ``i`` holds the coordinates of point ``i``.

    Example:
        >>> (d1, d2), _ = js.pca_directions(trajectory)
        >>> final_params = list(js.load_trajectory(trajectory))[-1][1]
        >>> coords = js.project(trajectory, final_params, [d1, d2])
        >>> coords[-1]          # the origin itself sits at (0, 0)
        array([0., 0.])
    """
    directions = list(directions)
    if not directions:
        raise ValueError("project needs at least one direction")
    with _Source(trajectory, params_like) as source:
        layout = _layout(source.spec, None)
        for j, d in enumerate(directions):
            _check_point(d, source.spec, f"directions[{j}]", source.reference_name)
        rows = np.stack([_fill_row(layout, d, None, np.empty(layout.size, layout.dtype))
                         for d in directions])
        normal = _dots(rows, rows)
        if np.linalg.matrix_rank(normal, tol=1e-10 * max(float(np.max(np.abs(normal))), 1e-300)
                                 ) < len(directions):
            raise ValueError("the directions are linearly dependent (or zero), so the "
                             "coordinates are not unique; use independent directions")
        o = _origin(source, layout, origin)
        coords = np.empty((source.n, len(directions)))
        x = np.empty((1, layout.size), layout.dtype)
        for i in range(source.n):
            _fill_row(layout, source.get(i), o, x[0])
            coords[i] = np.linalg.solve(normal, _dots(rows, x)[:, 0])
    return coords


# The figure moved to js.plot (one home for figures); the old name still works and warns.
plot_path = deprecated_alias("js.pca.plot_path", "jaxsurf.plot", "pca_path")
