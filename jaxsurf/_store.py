"""The implementation of :mod:`jaxsurf.store`; its public face, with the
documentation and examples, is ``jaxsurf/store.py``."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from jaxsurf import _tree as tree
from jaxsurf._io import atomic, jsonfile
from jaxsurf._io.header import FORMATS, Header
from jaxsurf._io.npz import NpzReader
from jaxsurf._tree import PyTree

__all__ = ["StoreError", "StoreMismatchError", "PointStore", "make_request",
           "data_fingerprint", "stream_fingerprint", "differences", "FULL_HASH_BYTES",
           "SAMPLE_ROWS"]

FORMAT = "jaxsurf.store"
FORMAT_VERSION = FORMATS[FORMAT]  # the versions of every kind: jaxsurf._io.header
FULL_HASH_BYTES = 256 * 2**20  # in-memory data up to this size is hashed in full
SAMPLE_ROWS = 4096  # larger data: this many evenly spaced examples are hashed


class StoreError(ValueError):
    """A store that cannot be used: not a store, damaged, or from a newer jaxsurf."""


class StoreMismatchError(StoreError):
    """A store that was made for another request (the message lists the fields)."""


# --------------------------------------------------------------------------- fingerprints
def _sha256(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()[:16]


def _sample_rows(n: int, nbytes: int) -> np.ndarray | None:
    """Row indices to hash (``None``: all rows)."""
    if nbytes <= FULL_HASH_BYTES or n <= SAMPLE_ROWS:
        return None
    return np.unique(np.linspace(0, n - 1, SAMPLE_ROWS).round().astype(np.int64))


def data_fingerprint(data: PyTree, num_examples: int) -> dict[str, Any]:
    """What identifies in-memory data: leaf paths, shapes, dtypes and a content hash.

    The hash covers every byte when the data holds at most
    ``FULL_HASH_BYTES`` (256 MiB); larger data hashes ``SAMPLE_ROWS`` (4096)
    evenly spaced examples, always including the first and the last, of every
    leaf. ``"content"`` in the result says which.

    Args:
        data: a pytree of arrays with a shared leading example axis.
        num_examples: that leading size.

    Returns:
        A JSON-serialisable dict.

    Example:
        >>> data_fingerprint({"x": np.zeros((3, 2))}, 3)["content"]
        'every byte of 3 examples'
    """
    items = jax.tree_util.tree_leaves_with_path(data)
    nbytes = sum(int(np.prod(np.shape(x))) * np.dtype(x.dtype).itemsize for _, x in items)
    rows = _sample_rows(num_examples, nbytes)
    h = hashlib.sha256()
    leaves = []
    for path, leaf in items:
        arr = np.asarray(leaf if rows is None else leaf[rows])
        leaves.append([tree.leaf_path(path), list(np.shape(leaf)), str(np.dtype(leaf.dtype))])
        h.update(f"{leaves[-1]}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    content = (f"every byte of {num_examples} examples" if rows is None else
               f"{len(rows)} evenly spaced of {num_examples} examples")
    return {"type": "arrays", "num_examples": num_examples, "leaves": leaves,
            "content": content, "sha256": h.hexdigest()[:16]}


def stream_fingerprint(batch_sizes: Sequence[int]) -> dict[str, Any]:
    """What identifies a stream of batches: only the batch sizes seen (no content).

    Example:
        >>> stream_fingerprint([32, 32, 7])["num_examples"]
        71
    """
    sizes = [int(s) for s in batch_sizes]
    return {"type": "stream", "num_examples": sum(sizes), "num_batches": len(sizes),
            "batch_sizes_sha256": _sha256(json.dumps(sizes).encode()),
            "content": "batch sizes only (the stream's values are not hashed)"}


def make_request(origin: PyTree | None, directions: Sequence[PyTree], coefficients: np.ndarray,
                 data: Mapping[str, Any], metric_names: Sequence[str],
                 batch_size: int | str, *, compute_dtype: str | None = None,
                 fingerprint: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fingerprint of one evaluation request, as stored in ``request.json``.

    Args:
        origin: the params at coordinates 0 (``None`` for interpolation).
        directions: the direction pytrees.
        coefficients: ``(num_points, len(directions))`` float32 grid.
        data: from :func:`data_fingerprint` or :func:`stream_fingerprint`.
        metric_names: the metrics ``fn`` returns, in order.
        batch_size: examples per batch (``"stream"`` for streams).
        compute_dtype: the dtype ``fn`` computes in (e.g. ``"bfloat16"``), or
            ``None`` for params and data as given. It changes the values, so a
            store never mixes points of two compute dtypes.
        fingerprint: what else identifies the values and the library cannot see
            (``fn``'s code, the model, the loss): a JSON-serialisable dict kept as
            the request's ``"fingerprint"`` field (absent when ``None``).

    Returns:
        A JSON-serialisable dict.

    Example:
        >>> req = make_request(params, [d], np.zeros((3, 1), np.float32),
        ...                    stream_fingerprint([10]), ["loss"], "stream")
    """
    coefficients = np.ascontiguousarray(coefficients, np.float32)
    extra = {} if fingerprint is None else {"fingerprint": dict(fingerprint)}
    return Header.new(FORMAT, **{
        "origin": None if origin is None else tree.fingerprint(origin),
        "directions": [tree.fingerprint(d) for d in directions],
        "coefficients": {"shape": list(coefficients.shape),
                         "first": coefficients[0].tolist(), "last": coefficients[-1].tolist(),
                         "sha256": _sha256(coefficients.tobytes())},
        "data": dict(data),
        "metric_names": list(metric_names),
        "batch_size": batch_size,
        "compute_dtype": compute_dtype,
        **extra,
    }).to_dict()


def _flatten(request: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in request.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(stored: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """``"field: stored X, requested Y"`` for every field that differs.

    Example:
        >>> differences({"batch_size": 16}, {"batch_size": 32})
        ['batch_size: stored 16, requested 32']
    """
    a, b = _flatten(stored), _flatten(requested)
    out = []
    for key in [k for k in b if k != "format_version"] + [k for k in a if k not in b]:
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            out.append(f"{key}: stored {a.get(key, '<absent>')}, requested "
                       f"{b.get(key, '<absent>')}")
    return out


def _digest(request: Mapping[str, Any]) -> str:
    return _sha256(json.dumps(request, sort_keys=True).encode())


# --------------------------------------------------------------------------- files
def _read_request(path: Path) -> dict[str, Any]:
    """The request stored in ``path`` (a regular file inside the store, bounded JSON)."""
    advice = f"delete the store directory {path.parent} to start over"
    try:
        stored = jsonfile.load(path, StoreError, folder=path.parent,
                               what=f"the store request {path}")
    except StoreError as err:
        raise StoreError(f"{err}; {advice}") from None
    except OSError as err:  # missing, or unreadable
        raise StoreError(f"{path} is not a readable jaxsurf store request ({err}); "
                         f"{advice}") from err
    if isinstance(stored, dict) and "format_version" not in stored:  # every store has one
        stored = {**stored, "format_version": None}
    Header.parse(stored, StoreError, str(path)).check(
        FORMAT, StoreError, str(path), max_version=FORMAT_VERSION,
        advice=f"; use another store path, or delete the store directory {path.parent} to "
               f"start over")
    return stored


class PointStore:
    """The finished points of one request, on disk (see the module docstring).

    Use :meth:`open`; then :meth:`read` what is done and :meth:`write` new
    points after every chunk.

    Example:
        >>> request = make_request(params, [d], np.zeros((3, 1), np.float32),
        ...                        stream_fingerprint([10]), ["loss"], "stream")
        >>> store = PointStore.open("runs/line", request)
        >>> store.write(np.array([0, 1]), {"loss": np.array([2.3, 2.1], np.float32)})
        >>> done, values = store.read()
        >>> done, values["loss"][:2]
        (array([ True,  True, False]), array([2.3, 2.1], dtype=float32))
    """

    def __init__(self, path: Path, request: dict[str, Any]) -> None:
        self.path = path
        self.request = request
        self.num_points = int(request["coefficients"]["shape"][0])
        self.metric_names = list(request["metric_names"])
        self._digest = _digest(request)
        self._part = path / f"part-{os.getpid()}-{secrets.token_hex(4)}.npz"
        self._indices: list[np.ndarray] = []
        self._values: list[dict[str, np.ndarray]] = []

    @classmethod
    def open(cls, path: str | os.PathLike, request: dict[str, Any]) -> "PointStore":
        """Opens (or creates) the store at ``path`` for ``request``.

        Args:
            path: the store directory (created if missing).
            request: from :func:`make_request`.

        Returns:
            The store.

        Raises:
            StoreMismatchError: the store holds another request.
            StoreError: ``path`` is a file, a directory that is not a store, or
                a store from a newer jaxsurf.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise StoreError(f"store path {path} is a file; a store is a directory: pass a "
                             f"new path such as {path.with_suffix('.store')}")
        path.mkdir(parents=True, exist_ok=True)
        request_file = path / "request.json"
        if not request_file.exists():
            foreign = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
            if foreign:
                raise StoreError(f"{path} is a directory that is not a jaxsurf store (it holds "
                                 f"{foreign[:5]}); pass a new or empty directory as store")
            atomic.create_once(request_file,
                               json.dumps(request, indent=1, sort_keys=True).encode())
        stored = _read_request(request_file)
        diff = differences(stored, request)
        if diff:
            raise StoreMismatchError(
                f"the store {path} was made for another request; these fields differ:\n  "
                + "\n  ".join(diff)
                + f"\nIt is neither reused nor overwritten: pass another store path, or "
                  f"delete {path} to start over.")
        return cls(path, stored)

    def parts(self) -> list[Path]:
        """The part files now in the store."""
        return sorted(self.path.glob("part-*.npz"))

    def _read_part(self, part: Path) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """The indices and metric values of one part file; each member's type and
        shape checked before it is read (a :class:`StoreError` names the file)."""
        advice = "delete it and run again to recompute its points"
        try:
            npz = NpzReader(part, StoreError, what=f"store part {part}", kind="store part",
                            folder=self.path)
        except FileNotFoundError:
            return None  # deleted by hand between listing and reading
        except StoreError as err:
            raise StoreError(f"{err}; {advice}") from err
        try:
            with npz:
                got = self._part_arrays(npz)
        except StoreError as err:
            raise StoreError(f"{err}; {advice}") from err
        if got is None:
            raise StoreError(f"store part {part} belongs to another request than "
                             f"{self.path / 'request.json'}; move it out of the store")
        indices, arrays = got
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_points):
            raise StoreError(f"store part {part} has point indices outside the grid "
                             f"[0, {self.num_points}); {advice}")
        return indices, arrays

    def _part_arrays(self, npz: NpzReader) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """``(indices, metric arrays)`` of an open part, or ``None`` if it belongs to
        another request."""
        digest = npz.read("request", kinds="U", shape=()) if "request" in npz else ""
        if str(digest) != self._digest:
            return None
        indices = npz.read("indices", kinds="iu", ndim=1,
                           max_values=self.num_points).astype(np.int64)  # each point once
        return indices, [npz.read(f"metric_{i}", kinds="f", shape=indices.shape)
                         for i in range(len(self.metric_names))]

    def read(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Merges every part.

        Returns:
            ``(done, values)``: a bool mask ``(num_points,)`` of finished
            points and ``{metric: float32 (num_points,)}`` (meaningful where
            ``done``; NaN and inf are kept bit for bit).
        """
        done = np.zeros(self.num_points, bool)
        values = {k: np.zeros(self.num_points, np.float32) for k in self.metric_names}
        for part in self.parts():
            got = self._read_part(part)
            if got is None:
                continue
            indices, arrays = got
            for name, arr in zip(self.metric_names, arrays):
                values[name][indices] = arr
            done[indices] = True
        return done, values

    def write(self, indices: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Adds finished points to this run's part file (atomic rewrite).

        Args:
            indices: point indices ``(m,)`` into the grid.
            values: ``{metric: float32 (m,)}``.
        """
        self._indices.append(np.asarray(indices, np.int64))
        self._values.append({k: np.asarray(values[k], np.float32) for k in self.metric_names})
        arrays = {"request": np.array(self._digest),
                  "indices": np.concatenate(self._indices)}
        for i, name in enumerate(self.metric_names):
            arrays[f"metric_{i}"] = np.concatenate([v[name] for v in self._values])
        atomic.write_with(self._part, lambda h: np.savez(h, allow_pickle=False, **arrays))

