#!/usr/bin/env bash
# Installs jaxsurf with its test extras and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
python3 -m pytest -q "$@"
