"""Debian's Chromium for Playwright: the console tests and ``bench/console.py`` launch
it with ``executable_path`` (Playwright's own browser download is not used)."""

from __future__ import annotations

import os
import shutil

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """``TANK_CHROMIUM``, else ``chromium`` on PATH; None without either."""
    return os.environ.get("TANK_CHROMIUM") or shutil.which("chromium")
