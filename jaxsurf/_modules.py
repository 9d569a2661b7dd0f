"""Submodules that say what to call when called: ``js.sharpness(...)`` explains itself.

Calling a module fails with Python's bare "'module' object is not callable".
jaxsurf's submodules get a module class whose ``__call__`` raises a
``TypeError`` naming the module's functions instead (a module-level
``__call__`` function is not consulted by Python, so the class is swapped).

Example:
    >>> import types
    >>> demo = explain_calls(types.ModuleType("demo"))   # done for jaxsurf's submodules
    >>> demo.__all__, demo.fit = ["fit"], lambda: None
    >>> demo()
    Traceback (most recent call last):
    TypeError: demo is a module, not a function; call one of its functions, e.g. demo.fit(...) \
(it has: fit)
"""

from __future__ import annotations

import sys
import types
from typing import Any, NoReturn

__all__ = ["explain_calls", "explain_loaded"]


class _ExplainingModule(types.ModuleType):
    """A module that, when called, says which of its functions to call."""

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        names = [n for n in getattr(self, "__all__", ()) if callable(getattr(self, n, None))
                 and not isinstance(getattr(self, n), type)] or \
            [n for n in getattr(self, "__all__", ())]
        example = f", e.g. {self.__name__}.{names[0]}(...)" if names else ""
        listing = f" (it has: {', '.join(names)})" if names else ""
        raise TypeError(f"{self.__name__} is a module, not a function; call one of its "
                        f"functions{example}{listing}")


def explain_calls(module: types.ModuleType) -> types.ModuleType:
    """Makes calling ``module`` raise a ``TypeError`` that lists its functions.

    Args:
        module: a plain module (other module classes are left as they are).

    Returns:
        The same module object.
    """
    if type(module) is types.ModuleType:
        module.__class__ = _ExplainingModule
    return module


def explain_loaded(package: str = "jaxsurf") -> None:
    """:func:`explain_calls` on every loaded submodule of ``package``."""
    for name, module in list(sys.modules.items()):
        if name.startswith(package + ".") and module is not None:
            explain_calls(module)
