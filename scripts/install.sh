#!/usr/bin/env bash
# Installs jaxsurf and what it needs on a fresh Debian machine:
#   - Fashion-MNIST from Debian (dataset-fashion-mnist) when it is missing and
#     we may install packages;
#   - the package itself, with the extras named in the first argument
#     (e.g. "test"), into the active virtual environment or, when none is
#     active, into the project's own .venv (created here; Debian's system
#     Python refuses pip installs);
#   - versions pinned by constraints.txt, unless --latest is given (today's
#     releases, to test against them on purpose).
# Usage: bash scripts/install.sh [--latest] [EXTRAS]
set -euo pipefail
cd "$(dirname "$0")/.."
latest=0
if [ "${1:-}" = "--latest" ]; then latest=1; shift; fi
extras="${1:-}"

as_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
  apt-get install -y -q "$@" >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null)
}

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if as_root; then
    echo "installing Debian package dataset-fashion-mnist ..."
    apt_install dataset-fashion-mnist \
      || echo "warning: could not install dataset-fashion-mnist; tests that need it will be skipped"
  else
    echo "note: Fashion-MNIST not found; install it with 'sudo apt-get install dataset-fashion-mnist'"
  fi
fi

if [ -n "${VIRTUAL_ENV:-}" ]; then
  python="$VIRTUAL_ENV/bin/python"
  echo "using the active virtual environment $VIRTUAL_ENV"
else
  if [ ! -x .venv/bin/python ]; then
    echo "creating the project's virtual environment .venv ..."
    if ! python3 -m venv .venv 2>/dev/null; then
      rm -rf .venv
      if as_root; then
        v=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install "python$v-venv" || apt_install python3-venv
        python3 -m venv .venv
      else
        echo "error: python3 -m venv failed; install python3-venv (sudo apt-get install python3-venv)" >&2
        exit 1
      fi
    fi
  fi
  python=.venv/bin/python
  echo "using the project's virtual environment .venv (activate it with 'source .venv/bin/activate')"
fi

pins=(-c constraints.txt)
if [ "$latest" = 1 ]; then pins=(--upgrade --upgrade-strategy eager); echo "installing today's releases (no pins)"; fi
"$python" -m pip install -q --disable-pip-version-check --upgrade pip
"$python" -m pip install -q --disable-pip-version-check "${pins[@]}" -e ".${extras:+[$extras]}"
