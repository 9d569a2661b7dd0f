"""Headless Chromium for the viewer tests, with networking off (skips when absent,
except in CI: with ``CI`` set and not false, a missing browser fails the tests)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WHY = ("no headless Chromium: run `bash scripts/install_browser.sh` (Debian packages chromium "
       "and chromium-driver) to run the viewer's browser tests")


def in_ci() -> bool:
    """Whether ``CI`` is set (and not ``0``/``false``/``no``), as CI services set it."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skips with ``reason``; in CI fails instead, so a broken install is never a green run."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the viewer's browser tests must run there, not "
                    f"skip)", pytrace=False)
    pytest.skip(reason)


def find_browser() -> tuple[str, str] | None:
    """``(browser, chromedriver)`` paths, or None."""
    driver = shutil.which("chromedriver")
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    return (browser, driver) if browser and driver else None


def start_driver(width: int = 1500, height: int = 1100) -> Any:
    """A selenium Chrome driver on the system Chromium, offline, browser logs kept."""
    found = find_browser()
    if found is None:
        unavailable(WHY)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[test]')")
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not fetch drivers
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                # no network: every request goes to a closed local port
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
    driver.set_network_conditions(offline=True, latency=0, download_throughput=0,
                                  upload_throughput=0)
    return driver


def open_page(driver: Any, path: Path, timeout: float = 60.0) -> None:
    """Loads ``path`` and waits until the viewer has drawn every plot."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.body.dataset.ready === '1'"))


PLOTS_JS = """
const list = v => v == null ? null : Array.from(v, r => (Array.isArray(r) || ArrayBuffer.isView(r))
                                                     ? Array.from(r) : r);
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
  surface: d.dataset.surface, view: d.dataset.view,
  traces: d.data.map(t => ({type: t.type, name: t.name || null, x: list(t.x), y: list(t.y),
                            z: list(t.z), text: list(t.text), cmin: t.cmin ?? null,
                            cmax: t.cmax ?? null, zmin: t.zmin ?? null, zmax: t.zmax ?? null}))}));
"""
