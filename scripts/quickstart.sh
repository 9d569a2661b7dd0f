#!/usr/bin/env bash
# The main job: install, train a small CNN on Fashion-MNIST for a short while on
# the CPU, and write its 1-D and 21x21 filter-normalized surfaces, figures and a
# summary to runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh viewer
python=.venv/bin/python
[ -n "${VIRTUAL_ENV:-}" ] && python="$VIRTUAL_ENV/bin/python"
"$python" -m experiments.quickstart --out runs/quickstart "$@"
