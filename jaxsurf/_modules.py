"""What to call instead of a module: the hint for a module given where a function is wanted.

Calling a module fails with Python's own ``TypeError: 'module' object is not
callable``; jaxsurf does not change the class of its modules to say more. Where
jaxsurf itself receives a module in place of a function (``python -m jaxsurf
surface --model jaxsurf:models``) it names the module's functions with
:func:`functions_hint`.

Example:
    >>> import types
    >>> demo = types.ModuleType("demo")
    >>> demo.__all__, demo.fit = ["fit"], lambda: None
    >>> functions_hint(demo)
    'demo is a module, not a function; call one of its functions, e.g. demo.fit(...) (it has: fit)'
"""

from __future__ import annotations

import types

__all__ = ["functions_hint"]


def functions_hint(module: types.ModuleType) -> str:
    """Says that ``module`` is a module and which of its functions to call.

    Args:
        module: a module.

    Returns:
        One sentence naming the module's public functions (its ``__all__``
        entries that are callable and not classes; all of ``__all__`` if none).
    """
    exported = list(getattr(module, "__all__", ()))
    names = [n for n in exported if callable(getattr(module, n, None))
             and not isinstance(getattr(module, n), type)] or exported
    example = f", e.g. {module.__name__}.{names[0]}(...)" if names else ""
    listing = f" (it has: {', '.join(names)})" if names else ""
    return (f"{module.__name__} is a module, not a function; call one of its "
            f"functions{example}{listing}")
