"""Export a :class:`~jaxsurf.Surface` for other tools: ParaView ``.vtp``/``.vti``, CSV
and the reference tool's ``.h5``.

``write_vtp`` writes a VTK XML PolyData height field: one point per grid
node at ``(alpha, beta, z)`` and one quad per grid cell, which ParaView opens
directly (File → Open) for lit, rotatable renderings. ``write_vti`` writes a
volume (three directions) as VTK ImageData for volume rendering and
iso-surfaces. ``write_csv`` writes one row per grid point; ``write_h5`` a
tomgoldstein/loss-landscape surface file that its ``plot_2D.py`` and
``h52vtp.py`` read (``loss`` → ``train_loss``, ``accuracy`` → ``train_acc`` in
percent). Every file is written atomically. The writers live in the I/O
layer (:mod:`jaxsurf._io.export`, :mod:`jaxsurf._io.h5`); this is their
public namespace.

Example:
    >>> import numpy as np, jaxsurf as js
    >>> a, b = np.linspace(-1, 1, 31), np.linspace(-0.5, 0.5, 21)
    >>> A, B = np.meshgrid(a, b, indexing="ij")
    >>> s = js.Surface(a, b, {"loss": A**2 + 4 * B**2 + 0.1})
    >>> js.export.write_vtp(s, "loss.vtp", log=True)
    PosixPath('loss.vtp')
    >>> js.export.write_csv(s, "loss.csv")
    PosixPath('loss.csv')
"""

from __future__ import annotations

from jaxsurf._deprecation import moved_names
from jaxsurf._io.export import write_csv, write_vti, write_vtp
from jaxsurf._io.h5 import write_h5

__all__ = ["write_csv", "write_h5", "write_vti", "write_vtp"]

# public before the face was narrowed (issue 24): it warns, then resolves as before
__getattr__ = moved_names(__name__, "jaxsurf._io.export", ("height_field",))
