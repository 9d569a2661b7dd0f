"""The I/O layer: every file jaxsurf writes or reads back, in one private package.

Names inside the package carry no underscore (the package itself is private,
as in ``jaxsurf/_engine``). Modules, lowest first (each imports only those
above it, plus :mod:`jaxsurf._limits`, :mod:`jaxsurf._validate` and
:mod:`jaxsurf.tree`; nothing here imports :mod:`jaxsurf.surface` or anything
above it):

* ``npz``: ``open_regular`` (only regular files: no FIFO, no device) and
  ``NpzReader`` (members checked before anything is allocated);
* ``jsonfile``: the bounded JSON reader (``loads``, ``load``, ``read_bounded``);
* ``atomic``: **the one atomic writer** (``write_with``, ``write_via_path``,
  ``write_text``, ...) and the append-only log protocol (``append_line``,
  ``read_json_lines``);
* ``header``: **the one file header**, ``Header`` (``format``,
  ``format_version``, ``library_version``, ``metadata``, the kind's fields),
  with ``Header.parse`` and ``Header.check`` used by every reader; ``FORMATS``;
* ``surfacefile``: the Surface ``.npz`` format (``write``, ``read``,
  ``SurfaceFileError``);
* ``h5``: the reference tool's ``.h5`` surfaces and direction files;
* ``directions``: ``save_directions`` / ``load_directions``;
* ``export``: ``write_vtp``, ``write_vti``, ``write_csv`` (public, with
  ``h5.write_h5``, as :mod:`jaxsurf.export`).

Stores (``request.json``, :mod:`jaxsurf.store`) and curves
(:meth:`jaxsurf.connect.Curve.save`) write their headers with ``Header`` and
their files with ``atomic``.
"""
