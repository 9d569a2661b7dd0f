#!/usr/bin/env bash
# Installs a headless browser for the viewer tests (tests/test_view_browser.py):
# Debian's chromium and chromium-driver, when they are missing and we may
# install packages (root with apt-get). selenium comes from the test extra.
# Without them the browser tests skip and say why.
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
  echo "warning: could not install chromium; the viewer's browser tests will be skipped"
else
  echo "note: chromium not found and not root; the viewer's browser tests will be skipped" \
       "(install with: sudo apt-get install chromium chromium-driver)"
fi
exit 0
