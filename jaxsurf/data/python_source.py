"""Real text without a download: the Python standard library's own source files.

Every machine with Python has them (``sysconfig.get_paths()["stdlib"]``, about
1,800 ``.py`` files and 30 MB for CPython 3.11, third-party ``site-packages``
and ``dist-packages`` excluded), nobody here wrote them, and they are text a
byte-level language model can learn. :func:`load_python_source` turns them into
fixed-length sequences of byte tokens, split into training and validation sets
**by file** (a file is wholly in one split, so validation text is never seen
in training), deterministically: a file's split is decided by the SHA-256 of
its path relative to the library root, not by a random seed or the listing
order. What was read is recorded (file lists, their hash, a hash of the
tokens, the Python version), since the library differs between Python
versions.

Example:
    >>> from jaxsurf.data import load_python_source
    >>> ds = load_python_source(seq_len=64, max_bytes=20_000)
    >>> ds["train"]["x"].shape[1], ds["train"]["x"].dtype
    (64, dtype('int32'))
    >>> ds["split"]["rule"]
    'sha256(relative path) < val_fraction: validation'
"""

from __future__ import annotations

import hashlib
import platform
import sysconfig
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["load_python_source", "stdlib_root", "python_files", "file_split", "to_sequences",
           "PAD"]

PAD = 0
"""The token at padded positions (the NUL byte; masked out of every loss)."""
_EXCLUDED = ("site-packages", "dist-packages")


def stdlib_root() -> Path:
    """The directory of this Python's standard library (``sysconfig``'s ``stdlib``)."""
    return Path(sysconfig.get_paths()["stdlib"])


def python_files(root: str | Path) -> list[str]:
    """The ``.py`` files under ``root`` as sorted POSIX paths relative to it,
    outside ``site-packages`` / ``dist-packages`` (third-party code).

    Example:
        >>> "os.py" in python_files(stdlib_root())
        True
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no directory {str(root)!r} to read Python source from")
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if set(rel.parts) & set(_EXCLUDED) or not path.is_file():
            continue
        found.append(rel.as_posix())
    return sorted(found)


def _position(relative: str) -> float:
    """A file's place in ``[0, 1)``: the first 8 bytes of the SHA-256 of its path."""
    return int.from_bytes(hashlib.sha256(relative.encode()).digest()[:8], "big") / 2.0 ** 64


def file_split(relative: str, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` for a file, from the hash of its relative path alone.

    Example:
        >>> file_split("os.py", 0.0), file_split("os.py", 1.0)
        ('train', 'val')
    """
    return "val" if _position(relative) < val_fraction else "train"


def _select(files: list[str], packages: Sequence[str] | None, exclude: Sequence[str],
            root: Path) -> list[str]:
    """The files of ``packages`` (all when ``None``) outside ``exclude``."""
    def under(name: str) -> Callable[[str], bool]:
        name = name.strip("/")
        return lambda f: f == name or f.startswith(name + "/")

    for what, names in (("packages", packages), ("exclude", exclude)):
        if names is None:
            continue
        if isinstance(names, (str, bytes)) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{what} must be a list of package or module paths relative to "
                             f"the root (e.g. ['email', 'json/decoder.py']), got {names!r}")
        unknown = [n for n in names if not any(map(under(n), files))]
        if unknown:
            tops = sorted({f.split("/")[0] for f in files})
            raise ValueError(f"{what}: {unknown[0]!r} names no .py file under {str(root)!r}; "
                             f"use a path relative to it, e.g. one of {tops[:12]}")
    keep = files if packages is None else [
        f for f in files if any(under(n)(f) for n in packages)]
    dropped = [under(n) for n in exclude]
    keep = [f for f in keep if not any(d(f) for d in dropped)]
    if not keep:
        raise ValueError(f"packages={packages!r} without exclude={list(exclude)!r} leaves no "
                         f"file to read")
    return keep


def to_sequences(data: bytes, seq_len: int) -> dict[str, np.ndarray]:
    """One file's bytes as next-token sequences: windows of ``seq_len + 1`` bytes
    starting every ``seq_len`` bytes; ``x`` is a window without its last byte,
    ``y`` without its first, so every byte but the file's first is a target
    exactly once. The last window is padded with :data:`PAD` and ``mask`` is 0
    there (and 1 at every real target).

    Example:
        >>> s = to_sequences(b"abcdef", 4)
        >>> s["x"].tolist(), s["y"].tolist()
        ([[97, 98, 99, 100], [101, 0, 0, 0]], [[98, 99, 100, 101], [102, 0, 0, 0]])
        >>> s["mask"].tolist()
        [[1, 1, 1, 1], [1, 0, 0, 0]]
    """
    tokens = np.frombuffer(data, np.uint8).astype(np.int32)
    count = max(0, -(-(len(tokens) - 1) // seq_len))   # ceil((L - 1) / seq_len)
    x = np.full((count, seq_len), PAD, np.int32)
    y = np.full((count, seq_len), PAD, np.int32)
    mask = np.zeros((count, seq_len), np.uint8)
    for i in range(count):
        window = tokens[i * seq_len: i * seq_len + seq_len + 1]
        n = len(window) - 1
        x[i, :n], y[i, :n], mask[i, :n] = window[:-1], window[1:], 1
    return {"x": x, "y": y, "mask": mask}


def load_python_source(seq_len: int = 128, *, max_bytes: int | None = None,
                       val_fraction: float = 0.1, root: str | Path | None = None,
                       packages: Sequence[str] | None = None, exclude: Sequence[str] = ()
                       ) -> dict[str, Any]:
    """Byte-level next-token data from the Python standard library's source.

    Files are assigned to a split by :func:`file_split` (a hash of the path
    relative to ``root``). Within a split they are read in the order of that
    hash (a spread sample of the library, not its first directories), whole,
    until the split's byte budget is spent; the file that crosses it
    contributes its first bytes only. Each file is cut into sequences by
    :func:`to_sequences`, so no sequence spans two files.

    Args:
        seq_len: tokens per sequence (the model's context).
        max_bytes: bytes read in all (``None``: every file): the validation
            split gets ``val_fraction`` of them, training the rest. Keeps tests
            and quick runs small.
        val_fraction: the share of files (by hash) held out for validation,
            in ``[0, 1)``.
        root: the source directory (default :func:`stdlib_root`).
        packages: read only the files of these packages or modules: paths
            relative to ``root`` (``"email"``: every file under
            ``email/``; ``"json/decoder.py"``; ``"os.py"``). ``None``: every
            file. A file's split does not depend on this (its path is still
            relative to ``root``), so the same file is in the same split of a
            load restricted to its package and of one that is not.
        exclude: leave out the files of these packages or modules (same
            form), e.g. to pretrain on the library without the packages a
            model is then fine-tuned on.

    Returns:
        ``{"train": {"x", "y", "mask"}, "val": {...}}`` (``x``, ``y``: int32
        ``(sequences, seq_len)`` byte tokens, ``y`` the next token of ``x``;
        ``mask``: uint8, 1 at a real target), ``"name"``, ``"vocab_size"``
        (256), ``"num_classes"`` (None: not a classifier), ``"synthetic"``
        (False), ``"description"``, ``"tokens_per_example"`` per split (for
        ``js.losses.next_token_cross_entropy``), and ``"split"``: the rule,
        ``val_fraction``, the root and Python version, and per split the
        files read (relative paths, in reading order), the bytes taken from
        each, the SHA-256 of that list and of the tokens, and the counts of
        files, sequences and target tokens.

    Raises:
        ValueError: a bad ``seq_len``, ``max_bytes`` or ``val_fraction``, a
            package in ``packages`` or ``exclude`` that names no file, or a
            split left without a sequence (raise ``max_bytes``).
        FileNotFoundError: ``root`` is not a directory or holds no ``.py`` file.

    Example:
        >>> ds = load_python_source(seq_len=32, max_bytes=10_000, val_fraction=0.2)
        >>> ds["split"]["val"]["bytes"], ds["split"]["train"]["bytes"]
        (2000, 8000)
        >>> int(ds["val"]["mask"].sum()) == ds["split"]["val"]["target_tokens"]
        True
        >>> mail = load_python_source(seq_len=32, max_bytes=10_000, packages=["email"])
        >>> all(f.startswith("email/") for f in mail["split"]["train"]["files"])
        True
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
    if max_bytes is not None and (isinstance(max_bytes, bool)
                                  or not isinstance(max_bytes, (int, np.integer))
                                  or max_bytes < 2):
        raise ValueError(f"max_bytes must be an int >= 2 (or None for every file), got "
                         f"{max_bytes!r}")
    if not (isinstance(val_fraction, (int, float)) and 0.0 <= val_fraction < 1.0):
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    root = stdlib_root() if root is None else Path(root)
    files = python_files(root)
    if not files:
        raise FileNotFoundError(f"no .py files under {str(root)!r}")
    files = _select(files, packages, exclude, root)
    budgets: dict[str, int | None] = {"train": None, "val": None}
    if max_bytes is not None:
        budgets["val"] = int(round(max_bytes * val_fraction))
        budgets["train"] = max_bytes - budgets["val"]
    by_split: dict[str, list[str]] = {"train": [], "val": []}
    for rel in sorted(files, key=lambda f: (_position(f), f)):
        by_split[file_split(rel, val_fraction)].append(rel)

    out: dict[str, Any] = {}
    record: dict[str, Any] = {
        "rule": "sha256(relative path) < val_fraction: validation",
        "val_fraction": float(val_fraction), "seq_len": int(seq_len),
        "max_bytes": max_bytes, "root": str(root), "python": platform.python_version(),
        "packages": None if packages is None else sorted(packages),
        "exclude": sorted(exclude), "files_available": len(files)}
    for split in ("train", "val"):
        budget = budgets[split]
        parts, taken, used = [], [], 0
        for rel in by_split[split]:
            if budget is not None and used >= budget:
                break
            data = (root / rel).read_bytes()
            if budget is not None:
                data = data[: budget - used]
            if len(data) < 2:      # no target in it
                continue
            parts.append(to_sequences(data, seq_len))
            taken.append((rel, len(data)))
            used += len(data)
        if not parts:
            raise ValueError(f"the {split} split holds no sequence (val_fraction="
                             f"{val_fraction}, max_bytes={max_bytes}); raise max_bytes or "
                             f"val_fraction")
        arrays = {k: np.concatenate([p[k] for p in parts]) for k in ("x", "y", "mask")}
        out[split] = arrays
        names = "\n".join(rel for rel, _ in taken).encode()
        digest = hashlib.sha256()
        for k in ("x", "y", "mask"):
            digest.update(np.ascontiguousarray(arrays[k]).tobytes())
        targets = int(arrays["mask"].sum(dtype=np.int64))
        record[split] = {"files": [rel for rel, _ in taken],
                         "file_bytes": [n for _, n in taken], "files_sha256":
                         hashlib.sha256(names).hexdigest(), "tokens_sha256": digest.hexdigest(),
                         "num_files": len(taken), "bytes": used,
                         "sequences": int(arrays["x"].shape[0]), "target_tokens": targets}
    out.update({
        "name": "python-stdlib", "vocab_size": 256, "num_classes": None, "synthetic": False,
        "description": (f"byte-level sequences of {seq_len} tokens from the .py files of the "
                        f"Python {platform.python_version()} standard library ({root}), split "
                        f"by file"),
        "tokens_per_example": {s: record[s]["target_tokens"] / record[s]["sequences"]
                               for s in ("train", "val")},
        "split": record})
    return out
