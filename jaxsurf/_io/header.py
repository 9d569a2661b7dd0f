"""One file header for every file jaxsurf writes and reads back.

Every jaxsurf file carries a JSON header: a Surface (the ``header`` member of
its ``.npz``), a store (its ``request.json``), a directions file and a curve
(the ``header`` member of their ``.npz``). :class:`Header` is that header:
``format`` (what the file is, e.g. ``"jaxsurf.surface"``), ``format_version``
(the layout of the file, raised when a change would mislead an older reader),
``library_version`` (the jaxsurf that wrote it), ``metadata`` (the user's
facts) and the fields of the kind (``fields``: metric names, leaf paths, ...).

Every reader parses it with :meth:`Header.parse` and checks it with
:meth:`Header.check`, so a file of another kind, a damaged header and a file
from a newer jaxsurf get the same messages, naming the file, for every kind.
The newest version of each kind this jaxsurf reads is in :data:`FORMATS`.

On disk the headers keep the JSON they always had (files written before this
module still load, and files written now load in older jaxsurf): the curve
format spells its version inside its name (``"jaxsurf.curve/1"``), which
:meth:`Header.parse` understands; a header without ``format_version`` is
version 1.

Example:
    >>> header = Header.new("jaxsurf.surface", metadata={"seed": 0}, metric_names=["loss"])
    >>> text = header.to_json()
    >>> back = Header.parse(text, ValueError, "s.npz").check("jaxsurf.surface", ValueError, "s.npz")
    >>> back.format_version, back.metadata, back.fields["metric_names"]
    (1, {'seed': 0}, ['loss'])
    >>> newer = Header("jaxsurf.surface", 2, "9.0.0")
    >>> newer.check("jaxsurf.surface", ValueError, "s.npz")
    Traceback (most recent call last):
    ...
    ValueError: s.npz was written by jaxsurf 9.0.0 in Surface file format 2, newer than ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from jaxsurf._io import jsonfile
from jaxsurf._version import __version__

__all__ = ["FORMATS", "NAMES", "Header"]

FORMATS: dict[str, int] = {  # the newest format_version of each kind this jaxsurf reads
    "jaxsurf.surface": 1,
    "jaxsurf.store": 1,
    "jaxsurf.directions": 1,
    "jaxsurf.curve": 1,
    "jaxsurf.monitor": 1,
}
NAMES = {  # how messages call each kind
    "jaxsurf.surface": "Surface file",
    "jaxsurf.store": "store request",
    "jaxsurf.directions": "directions file",
    "jaxsurf.curve": "curve file",
    "jaxsurf.monitor": "monitor folder",
}
_VERSION_IN_NAME = ("jaxsurf.curve",)  # kinds whose on-disk name carries "/<version>"
_OWN_KEYS = ("format", "format_version", "library_version", "metadata")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class Header:
    """The header of one jaxsurf file.

    Attributes:
        format: what the file is, e.g. ``"jaxsurf.store"`` (a key of :data:`FORMATS`).
        format_version: the file layout's version (a positive integer, or whatever
            a damaged file holds until :meth:`check` refuses it).
        library_version: the jaxsurf version that wrote the file (``None`` when the
            file does not say: directions and curves written before this module).
        metadata: the user's JSON facts (``{}`` when absent; :meth:`check` refuses
            anything but an object).
        fields: every other field of the header, as stored.
        has_metadata: whether the header holds a ``metadata`` field (a store's
            request has none, and must not gain one: it is compared field by field).
    """

    format: str
    format_version: Any
    library_version: str | None = None
    metadata: Any = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    has_metadata: bool = True

    @classmethod
    def new(cls, format: str, *, metadata: Mapping[str, Any] | None = None,
            **fields: Any) -> "Header":
        """The header this jaxsurf writes for a file of kind ``format`` (its newest
        version, this library's version); ``metadata=None`` leaves the field out."""
        return cls(format, FORMATS[format], __version__, dict(metadata or {}), dict(fields),
                   has_metadata=metadata is not None)

    def to_dict(self) -> dict[str, Any]:
        """The header as the JSON object written to the file."""
        name = f"{self.format}/{self.format_version}" if self.format in _VERSION_IN_NAME \
            else self.format
        out: dict[str, Any] = {"format": name, "format_version": self.format_version,
                               "library_version": self.library_version}
        if self.has_metadata:
            out["metadata"] = self.metadata
        return {**out, **self.fields}

    def to_json(self, **dumps: Any) -> str:
        """:meth:`to_dict` as JSON text (``dumps`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **dumps)

    @classmethod
    def parse(cls, raw: Any, error: type[Exception], what: str) -> "Header":
        """The header in ``raw`` (JSON text or bytes, or an already parsed object).

        Only the shape is checked here (an object with a string ``format``);
        :meth:`check` checks the kind and the version.

        Args:
            raw: the header's JSON text (read with :func:`jaxsurf._io.jsonfile.loads`:
                bounded, errors name the file) or an already parsed JSON value.
            error: the exception class raised, e.g. ``SurfaceFileError``.
            what: how to name the file in messages.

        Example:
            >>> Header.parse('{"format": "jaxsurf.curve/1", "kind": "bezier"}', ValueError,
            ...              "c.npz").format_version
            1
        """
        value = jsonfile.loads(raw, error, f"the header of {what}") \
            if isinstance(raw, (str, bytes)) else raw
        if not isinstance(value, dict):  # JSON, but not a header
            return cls(f"(a JSON {type(value).__name__}, not an object)", None)
        name = value.get("format")
        name = name if isinstance(name, str) else "(none)" if name is None else repr(name)
        version = value.get("format_version", 1)  # absent only in hand-made headers
        base, slash, suffix = name.partition("/")
        if slash and base in _VERSION_IN_NAME:  # "jaxsurf.curve/1"
            named = int(suffix) if suffix.isdigit() else suffix
            version = value.get("format_version", named)
            if _positive_int(version) and version != named:  # damaged: two versions
                version = f"{version}, but the format name {name!r} says {named}"
            name = base
        elif name in _VERSION_IN_NAME:  # a bare curve name never was written
            name = f"{name} (without /version)"
        library = value.get("library_version")
        return cls(name, version, library if isinstance(library, str) else None,
                   value.get("metadata", {}),
                   {k: v for k, v in value.items() if k not in _OWN_KEYS},
                   has_metadata="metadata" in value)

    def check(self, kind: str, error: type[Exception], what: str, *,
              max_version: int | None = None, advice: str = "") -> "Header":
        """This header, if it is a readable header of ``kind``; else ``error``.

        One check for every reader, with the same messages for every kind:
        another kind (or no jaxsurf header), a damaged ``format_version`` or
        ``metadata``, or a version newer than ``max_version`` (default
        :data:`FORMATS` ``[kind]``, the newest this jaxsurf reads).

        Args:
            kind: the expected format, e.g. ``"jaxsurf.surface"``.
            error: the exception class raised.
            what: how to name the file in messages.
            max_version: the newest version the caller reads.
            advice: appended to every message (``"; delete the store ..."``).

        Returns:
            ``self``.
        """
        noun = NAMES.get(kind, kind)
        newest = FORMATS[kind] if max_version is None else max_version
        if self.format != kind:
            raise error(f"{what} is not a jaxsurf {noun}: it has format {self.format!r}, "
                        f"expected {kind!r}{advice}")
        if not _positive_int(self.format_version):
            raise error(f"{what} has a damaged header: format_version must be a positive "
                        f"integer, got {self.format_version!r}{advice}")
        if self.format_version > newest:
            raise error(f"{what} was written by jaxsurf {self.library_version or '(unknown)'} "
                        f"in {noun} format {self.format_version}, newer than this jaxsurf "
                        f"{__version__} reads (format {newest}); upgrade jaxsurf{advice}")
        if not isinstance(self.metadata, dict):
            raise error(f"{what} has a damaged header: metadata must be a JSON object, got "
                        f"{type(self.metadata).__name__}{advice}")
        return self
