"""Deprecated aliases: old public names that still work, warn, and point to the new one.

Example:
    >>> plot_path = deprecated_alias("js.pca.plot_path", "jaxsurf.plot", "pca_path")
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable, Iterable

__all__ = ["deprecated_alias", "moved_names"]


def deprecated_alias(old: str, module: str, name: str) -> Callable[..., Any]:
    """A function that emits a :class:`DeprecationWarning` naming ``old`` and its
    replacement, then calls ``module.name`` with the same arguments.

    The new module is imported on the first call, so an alias costs nothing at import.

    Args:
        old: the deprecated name as users write it (``"js.hessian.plot_convexity"``).
        module: the module that now holds the function (``"jaxsurf.plot"``).
        name: the function's new name there (``"convexity"``).

    Returns:
        The alias.
    """
    new = f"js.{module.removeprefix('jaxsurf.')}.{name}"

    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"{old} is deprecated and will be removed; call {new} (same arguments)",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old.rsplit(".", 1)[-1]
    alias.__doc__ = f"Deprecated alias of :func:`{module}.{name}` (warns, then calls it)."
    return alias


def moved_names(face: str, module: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a public face whose internals moved to a private module.

    ``face.name`` for a listed ``name`` emits a :class:`DeprecationWarning` and
    returns ``module.name`` itself (the same object as before); any other name
    raises :class:`AttributeError` as usual.

    Args:
        face: the public module, ``"jaxsurf.store"``.
        module: the private module that holds the implementation, ``"jaxsurf._store"``.
        names: the names that were public in ``face`` and are now internal.

    Returns:
        The function to bind as the face's module-level ``__getattr__``.

    Example:
        >>> getattr_ = moved_names("jaxsurf.demo", "jaxsurf._deprecation", ["deprecated_alias"])
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     getattr_("deprecated_alias") is deprecated_alias
        True
        >>> "jaxsurf.demo.deprecated_alias" in str(caught[0].message)
        True
    """
    known = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name in known:
            warnings.warn(f"{face}.{name} is internal and deprecated: it will be removed from "
                          f"{face} (the public names are {face}.__all__)",
                          DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {face!r} has no attribute {name!r}")

    __getattr__.deprecated = known  # type: ignore[attr-defined]
    __getattr__.module = module  # type: ignore[attr-defined]
    return __getattr__
