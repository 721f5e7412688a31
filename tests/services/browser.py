"""A headless Chromium driven by Playwright, for the dashboard's tests.

- ``browser``: a factory, ``open()`` -> :class:`Browser`, each a fresh browser profile under
  tmp_path (its own cookies), closed after the test. Playwright cannot download browsers
  here: it launches the system's ``chromium`` (tests/services/tools.sh installs it).
- :class:`Browser` records every JavaScript dialog (an ``alert`` an injected script would
  open) in ``dialogs``, and ``shot(name)`` saves a screenshot under tmp_path/screenshots.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


@dataclass
class Browser:
    context: Any  # playwright's BrowserContext
    page: Any  # playwright's Page
    shots: Path
    dialogs: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot as ``name``.png and return its path."""
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[[], Browser]]:
    """Yield ``open()`` -> a fresh :class:`Browser`; every one is closed after the test."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or CHROMIUM
    opened: list[Browser] = []
    with sync_playwright() as playwright:
        def open_browser() -> Browser:
            profile = tmp_path / f"chromium-{len(opened) + 1}"
            # A persistent context keeps the profile under tmp_path, not in /tmp. Root needs
            # --no-sandbox.
            context = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=executable, headless=True,
                args=["--no-sandbox"], viewport={"width": 1280, "height": 900})
            page = context.pages[0] if context.pages else context.new_page()
            opened_browser = Browser(context, page, tmp_path / "screenshots")
            page.on("dialog", lambda d: (opened_browser.dialogs.append(d.message),
                                         d.dismiss()))
            opened.append(opened_browser)
            return opened_browser

        try:
            yield open_browser
        finally:
            for b in opened:
                b.context.close()
