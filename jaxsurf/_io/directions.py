"""Save and load directions, so a plane can be recomputed or extended later
(the reference tool's ``--dir_file``).

The file is an ``.npz`` (never pickled): one array per leaf of each
direction, and a JSON header with the leaf paths, shapes and dtypes and
any metadata. Loading checks every leaf by **path** against ``params_like``
and names the first that differs. bfloat16 leaves are stored as their bits.

Example:
    >>> d1, d2 = js.random_plane(jax.random.key(0), params)
    >>> js.save_directions("plane_dirs.npz", d1, d2, metadata={"seed": 0})
    PosixPath('plane_dirs.npz')
    >>> d1, d2 = js.load_directions("plane_dirs.npz", params)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxsurf import _validate, _tree as tree
from jaxsurf._io import atomic
from jaxsurf._io.header import FORMATS, Header
from jaxsurf._io.npz import NpzReader
from jaxsurf._tree import PyTree

__all__ = ["save_directions", "load_directions", "DirectionFileError"]

FORMAT = "jaxsurf.directions"
FORMAT_VERSION = FORMATS[FORMAT]  # the versions of every kind: jaxsurf._io.header


class DirectionFileError(ValueError):
    """A directions file that is damaged or does not fit the params."""


def _storable(leaf: Any) -> tuple[np.ndarray, str]:
    arr = np.asarray(leaf)
    name = str(arr.dtype)
    return arr.view(_stored_dtype(arr.dtype)), name


def _stored_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a leaf of ``dtype`` is stored as: itself, or its bits for bfloat16 and
    the other dtypes numpy's ``.npy`` format cannot name."""
    if dtype.kind == "V" or str(dtype) not in np.sctypeDict:
        return np.dtype(f"u{dtype.itemsize}")
    return dtype


def save_directions(path: str | os.PathLike, *directions: PyTree,
                    metadata: Mapping[str, Any] | None = None) -> Path:
    """Writes ``directions`` (pytrees with the same leaves) to ``path`` (``.npz``).

    Args:
        path: file to write (``.npz`` is added when missing); written atomically.
        *directions: one or more direction pytrees shaped like the same params.
        metadata: JSON-serialisable facts to keep (seed, normalization, ...).

    Returns:
        The path written.

    Example:
        >>> js.save_directions("dirs.npz", d1, d2)
        PosixPath('dirs.npz')
    """
    if not directions:
        raise ValueError("give at least one direction: js.save_directions(path, d1, d2)")
    for k, d in enumerate(directions[1:], 1):
        tree.check_like(d, directions[0], name=f"direction {k}", reference_name="direction 0")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays: dict[str, np.ndarray] = {}
    leaves_info = []
    for k, d in enumerate(directions):
        for i, (p, leaf) in enumerate(jax.tree_util.tree_leaves_with_path(d)):
            arr, dtype = _storable(leaf)
            arrays[f"d{k}_{i}"] = arr
            if k == 0:
                leaves_info.append({"path": tree.leaf_path(p), "shape": list(arr.shape),
                                    "dtype": dtype})
    header = Header.new(FORMAT, metadata=_validate.json_safe(metadata, "metadata"),
                        count=len(directions), leaves=leaves_info)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_with(
        path, lambda handle: np.savez(handle, header=np.array(header.to_json()),
                                      allow_pickle=False, **arrays))


def load_directions(path: str | os.PathLike, params_like: PyTree, *,
                    with_metadata: bool = False) -> Any:
    """Reads directions written by :func:`save_directions` into the structure of
    ``params_like``.

    Args:
        path: the ``.npz`` file.
        params_like: params (or any pytree) with the saved leaf paths, shapes
            and dtypes; the directions take its container types.
        with_metadata: also return the saved metadata.

    Returns:
        A list of direction pytrees (and the metadata dict with ``with_metadata``).

    Raises:
        DirectionFileError: not a directions file (text, a single ``.npy``, a
            FIFO or device), damaged, leaves that do not match ``params_like``
            (naming the first leaf path that differs), an array stored in
            another dtype than its header says (naming the array, the leaf and
            both dtypes; its bits are never reinterpreted), or an array larger
            than :func:`jaxsurf._limits.max_read_bytes`.

    Example:
        >>> _ = js.save_directions("dirs.npz", d1, d2)
        >>> d1, d2 = js.load_directions("dirs.npz", params)
    """
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    try:
        reader = NpzReader(path, DirectionFileError, kind="directions file")
    except FileNotFoundError as err:
        raise DirectionFileError(f"{path} is not a readable directions file: there is no such "
                                 f"file; write one with js.save_directions") from err
    with reader as npz:
        if "header" not in npz:
            raise DirectionFileError(f"{path} is not a jaxsurf directions file (no header; it "
                                     f"has arrays {sorted(npz.names)[:5]})")
        header = Header.parse(str(npz.read("header", kinds="U", shape=())), DirectionFileError,
                              str(path)).check(FORMAT, DirectionFileError, str(path),
                                               max_version=FORMAT_VERSION)
        count, infos = header.fields.get("count"), header.fields.get("leaves")
        if not isinstance(count, int) or isinstance(count, bool) or \
                not isinstance(infos, list) or count < 1 or \
                not all(isinstance(info, dict) for info in infos):
            raise DirectionFileError(f"{path} has a damaged header (count or leaves)")
        if count * len(infos) > len(npz.names):  # checked before anything is listed
            raise DirectionFileError(f"{path} has a damaged header: it declares {count} "
                                     f"direction(s) of {len(infos)} leaves, but the file holds "
                                     f"{len(npz.names)} arrays")
        wanted = jax.tree_util.tree_leaves_with_path(params_like)
        _check_leaves(path, infos, wanted)
        missing = [f"d{k}_{i}" for k in range(count) for i in range(len(infos))
                   if f"d{k}_{i}" not in npz]
        if missing:
            raise DirectionFileError(f"{path} is missing arrays {missing[:3]}: damaged")
        treedef = jax.tree_util.tree_structure(params_like)
        out = []
        for k in range(count):
            leaves = []
            for i, ((p, leaf), info) in enumerate(zip(wanted, infos)):
                leaves.append(jnp.asarray(_read_leaf(npz, path, f"d{k}_{i}",
                                                     tree.leaf_path(p), _dtype_of(leaf),
                                                     tuple(info["shape"]))))
            out.append(jax.tree_util.tree_unflatten(treedef, leaves))
    return (out, header.metadata) if with_metadata else out


def _dtype_of(leaf: Any) -> np.dtype:
    return np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.dtype(jnp.asarray(leaf).dtype)


def _read_leaf(npz: NpzReader, path: Path, member: str, name: str, dtype: np.dtype,
               shape: tuple[int, ...]) -> np.ndarray:
    """Array ``member`` (leaf ``name``): stored exactly as the header's ``dtype`` and
    ``shape`` say, else a :class:`DirectionFileError` naming both dtypes; never
    reinterpreted from another dtype's bits."""
    stored = _stored_dtype(dtype)
    found, _ = npz.describe(member)
    if found != stored:
        raise DirectionFileError(
            f"{path}: array {member} (leaf {name}) is stored as {found}, but the header "
            f"says {dtype}" + ("" if stored == dtype else f" (stored as its bits, {stored})")
            + "; the file is damaged or was edited: save the directions again")
    try:
        arr = npz.read(member, kinds=stored.kind, shape=shape)
    except DirectionFileError as err:
        raise DirectionFileError(f"{err} (leaf {name})") from None
    return arr if stored == dtype else arr.view(dtype)


def _check_leaves(path: Path, infos: list, wanted: list) -> None:
    for i, (p, leaf) in enumerate(wanted):
        name = tree.leaf_path(p)
        if i >= len(infos):
            raise DirectionFileError(f"{path} has {len(infos)} leaves, params_like has more; "
                                     f"the first missing is {name}")
        info = infos[i]
        if info.get("path") != name:
            raise DirectionFileError(
                f"{path} does not match params_like at leaf {i}: the file has "
                f"{info.get('path')}, params_like has {name}; load it with the params of "
                f"the model it was made for")
        shape = list(getattr(leaf, "shape", np.shape(leaf)))
        dtype = str(jnp.asarray(leaf).dtype) if not hasattr(leaf, "dtype") else str(leaf.dtype)
        if info.get("shape") != shape or info.get("dtype") != dtype:
            raise DirectionFileError(
                f"{path} does not match params_like at {name}: the file has shape "
                f"{tuple(info.get('shape', ()))} dtype {info.get('dtype')}, params_like has "
                f"shape {tuple(shape)} dtype {dtype}")
    if len(infos) > len(wanted):
        raise DirectionFileError(f"{path} has {len(infos)} leaves, params_like only "
                                 f"{len(wanted)}; the first extra is "
                                 f"{infos[len(wanted)].get('path')}")
