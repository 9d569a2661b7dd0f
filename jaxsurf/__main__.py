"""``python -m jaxsurf``: see :mod:`jaxsurf.cli`."""

from jaxsurf._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
