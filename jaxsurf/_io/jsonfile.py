"""Reading JSON that jaxsurf did not necessarily write: bounded, and errors that name the file.

Every JSON text the library reads back (file headers, ``request.json`` of a
store, curve and training logs, the viewer's ``results.json``) goes through
:func:`loads`. It refuses texts longer than :data:`MAX_JSON_CHARS` and
nesting deeper than :data:`MAX_JSON_DEPTH` *before* parsing (Python's parser
would otherwise raise ``RecursionError`` on a crafted 100,000-deep text), and
turns every parse failure into the caller's error class with the file's name.

:func:`load` and :func:`read_bounded` read such a file first: only a regular
file (never a FIFO or a device; inside ``folder`` when one is given, and not a
symbolic link there, see :func:`jaxsurf._io.npz.open_regular`), and never more
than :data:`MAX_JSON_CHARS` bytes of it.

Example:
    >>> loads('{"version": 1, "grid": [1, 2]}', ValueError, "header of s.npz")
    {'version': 1, 'grid': [1, 2]}
    >>> loads("[" * 1000 + "]" * 1000, ValueError, "request.json")
    Traceback (most recent call last):
    ...
    ValueError: request.json: JSON nested more than 64 levels deep (crafted or damaged); ...
"""

from __future__ import annotations

import json
import os
from typing import Any

from jaxsurf._io.npz import open_regular

__all__ = ["MAX_JSON_CHARS", "MAX_JSON_DEPTH", "load", "loads", "read_bounded"]

MAX_JSON_DEPTH = 64  # jaxsurf's own headers nest at most a handful of levels
MAX_JSON_CHARS = 64 * 2**20  # 64 MiB of text


def _depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text: str | bytes, error: type[Exception], what: str) -> Any:
    """Parses ``text`` as JSON, raising ``error`` (with ``what`` named) for anything wrong.

    Args:
        text: the JSON text (bytes are decoded as UTF-8).
        error: the exception class to raise, e.g. ``StoreError``.
        what: how to name the source in messages, e.g. ``"runs/a.store/request.json"``.

    Returns:
        The parsed value (any JSON type; callers check the type they need).

    Example:
        >>> loads(b'{"a": 1}', ValueError, "x.json")
        {'a': 1}
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"{what} is not UTF-8 text (damaged or not a jaxsurf file): "
                        f"{err}") from None
    if len(text) > MAX_JSON_CHARS:
        raise error(f"{what}: {len(text):,} characters of JSON, more than the "
                    f"{MAX_JSON_CHARS:,} jaxsurf reads; the file is damaged or crafted")
    openers = text.count("[") + text.count("{")
    if openers > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise error(f"{what}: JSON nested more than {MAX_JSON_DEPTH} levels deep (crafted or "
                    f"damaged); jaxsurf's files nest only a few levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise error(f"{what} is not valid JSON ({err}); the file is damaged or was not "
                    f"written by jaxsurf") from None


def read_bounded(path: str | os.PathLike, error: type[Exception], *,
                 folder: str | os.PathLike | None = None, what: str | None = None) -> bytes:
    """The bytes of a JSON (or JSON-lines) file, at most :data:`MAX_JSON_CHARS` of them.

    Args:
        path: the file; opened only if it is a regular file
            (:func:`jaxsurf._io.npz.open_regular`).
        error: the exception class raised for anything wrong with it.
        folder: the folder the file must lie in (no symbolic links), or ``None``
            for a file the user named.
        what: how to name the file in messages (default: its path).

    Raises:
        FileNotFoundError: there is no such file.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("r.json").write_text('{"a": 1}')
        >>> read_bounded("r.json", ValueError, folder=".")
        b'{"a": 1}'
    """
    what = what or str(path)
    with open_regular(path, error, folder=folder, what=what) as handle:
        data = handle.read(MAX_JSON_CHARS + 1)
    if len(data) > MAX_JSON_CHARS:
        raise error(f"{what} holds more than {MAX_JSON_CHARS:,} bytes, more than any JSON file "
                    f"jaxsurf writes; it is damaged or crafted: move it away")
    return data


def load(path: str | os.PathLike, error: type[Exception], *,
         folder: str | os.PathLike | None = None, what: str | None = None) -> Any:
    """The JSON value in the file ``path``: :func:`read_bounded`, then :func:`loads`.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("r.json").write_text('{"a": [1, 2]}')
        >>> load("r.json", ValueError)
        {'a': [1, 2]}
    """
    what = what or str(path)
    return loads(read_bounded(path, error, folder=folder, what=what), error, what)
