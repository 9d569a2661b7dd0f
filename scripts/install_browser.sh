#!/usr/bin/env bash
# Installs a headless browser for the viewer tests (tests/test_view_browser.py):
# Debian's chromium and chromium-driver, when they are missing and we may
# install packages (root with apt-get). selenium comes from the test extra.
# Without them the browser tests skip and say why, except in CI (CI set and
# not false): there a failed install exits 1 and the browser tests fail.
# Usage: bash scripts/install_browser.sh
set -uo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
if have chromedriver && (have chromium || have chromium-browser || have google-chrome); then
  echo "browser for the viewer tests: $(command -v chromium chromium-browser google-chrome | head -1)"
  exit 0
fi
if [ "$(id -u)" = 0 ] && have apt-get; then
  echo "installing Debian packages chromium and chromium-driver (viewer tests) ..."
  if apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
     || (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null); then
    echo "installed $(chromium --version 2>/dev/null)"
    exit 0
  fi
  problem="could not install chromium and chromium-driver with apt-get"
else
  problem="chromium not found and not root (install with: sudo apt-get install chromium chromium-driver)"
fi
# In CI (CI=true, as CI services set it) the browser tests must run, not skip:
# a failed install fails the run here, and the tests fail too (tests/_browser.py).
case "${CI:-}" in
  ""|0|false|False|FALSE|no)
    echo "note: $problem; the viewer's browser tests will be skipped"
    exit 0 ;;
  *)
    echo "error: $problem; CI is set, so the viewer's browser tests must run" >&2
    exit 1 ;;
esac
