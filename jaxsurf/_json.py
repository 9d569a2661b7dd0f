"""Reading JSON that jaxsurf did not necessarily write: bounded, and errors that name the file.

Every JSON text the library reads back (file headers, ``request.json`` of a
store, curve and training logs, the viewer's ``results.json``) goes through
:func:`loads`. It refuses texts longer than :data:`MAX_JSON_CHARS` and
nesting deeper than :data:`MAX_JSON_DEPTH` *before* parsing (Python's parser
would otherwise raise ``RecursionError`` on a crafted 100,000-deep text), and
turns every parse failure into the caller's error class with the file's name.

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
from typing import Any

__all__ = ["MAX_JSON_CHARS", "MAX_JSON_DEPTH", "loads"]

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
