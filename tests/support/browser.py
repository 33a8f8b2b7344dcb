"""Headless Chromium for the page's browser tests: Debian's ``chromium`` driven by Playwright
(never ``playwright install``), with the flags that keep it off this closed network.

The ``browser`` fixture (tests/conftest.py) launches one for each test; ``needs_browser``
marks a test that cannot run without it (and VIDGROUND_NO_SKIPS=1 turns such a skip red)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("VIDGROUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: where browser tests leave screenshots for people to look at
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"

needs_browser = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)",
)


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (a Playwright ``Browser``), closed on exit."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
