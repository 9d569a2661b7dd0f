#!/usr/bin/env bash
# Installs jaxsurf and what it needs on a fresh Debian machine:
# Fashion-MNIST from Debian (dataset-fashion-mnist) when it is missing and we
# may install packages, then the package itself with pip (extras in $1).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian package dataset-fashion-mnist ..."
    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null)) \
      || echo "warning: could not install dataset-fashion-mnist; tests that need it will be skipped"
  else
    echo "note: Fashion-MNIST not found; install it with 'sudo apt-get install dataset-fashion-mnist'"
  fi
fi
python3 -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}"
