"""Deprecated aliases: old public names that still work, warn, and point to the new one.

Example:
    >>> plot_path = deprecated_alias("js.pca.plot_path", "jaxsurf.plot", "pca_path")
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable

__all__ = ["deprecated_alias"]


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
