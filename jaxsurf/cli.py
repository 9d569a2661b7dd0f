"""Command line: ``python -m jaxsurf {surface,plot,vtp,csv,info,view} ...``.

``surface`` computes a Surface from a saved checkpoint (see
:mod:`jaxsurf._compute_cli`); the others post-process a saved Surface file.

Example:
    python -m jaxsurf surface --model jaxsurf.models:SmallCNN --checkpoint runs/cnn \\
        --data fashion_mnist --x -1:1:21 --y -1:1:21 --out runs/cnn/surface
    python -m jaxsurf info runs/plane.npz
    python -m jaxsurf plot runs/plane.npz --kind contour --vmin 0.1 --vmax 10 --vlevel 0.5
    python -m jaxsurf vtp runs/plane.npz --zmax 10 --log
    python -m jaxsurf csv runs/line.npz

Each subcommand is one entry of :data:`COMMANDS`: a help line, a function that
adds its arguments, and a function that runs it (returning the exit status).
Adding one is :func:`register` (``name``, ``help``, ``add_arguments``, ``run``).
An interrupt (Ctrl-C, SIGTERM) ends with one line and status 130.
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._cli import Command, main, register

__all__ = ["Command", "main", "register"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._cli", ("COMMANDS", "UsageError", "describe",
    "plot_surface", "beside",))
