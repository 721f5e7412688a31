"""A headless Chromium driven by Playwright, for the dashboard's tests.

- ``browser``: a factory, ``open()`` -> :class:`Browser`, each a fresh context (its own
  cookies and storage) of one Chromium per test process, closed after the test. Playwright
  cannot download browsers here: it launches the system's ``chromium``
  (tests/services/tools.sh installs it).
- :class:`Browser` records every JavaScript dialog (an ``alert`` an injected script would
  open) in ``dialogs``, ``shot(name)`` saves a screenshot under tmp_path/screenshots, and
  ``follow(target)`` clicks a link or a submit button and waits for the page it leads to.
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

    def follow(self, target: Any) -> None:
        """Click ``target`` (a locator, or a selector on the page) and wait until the page
        the click navigates to has loaded.

        A click returns once it is dispatched; ``wait_for_load_state`` or a query that does
        not wait (``count``, ``all_inner_texts``) right after it can still see the page being
        left. Waiting for the navigation the click starts cannot.
        """
        with self.page.expect_navigation():
            if isinstance(target, str):
                self.page.click(target)
            else:
                target.click()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Chromium per test process (a launch costs seconds); tests get contexts of it."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or CHROMIUM
    root = tmp_path_factory.mktemp("chromium")
    # Playwright's driver and the browser it starts inherit this environment: their
    # profile and temporary files stay under pytest's temporary folder, not in /tmp or ~.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(root))
        env.setenv("TMPDIR", str(root))
        playwright = sync_playwright().start()
        try:
            # Root needs --no-sandbox.
            chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                                  args=["--no-sandbox"])
        except BaseException:
            playwright.stop()
            raise
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture
def browser(chromium: Any, tmp_path: Path) -> Iterator[Callable[[], Browser]]:
    """Yield ``open()`` -> a fresh :class:`Browser`; every one is closed after the test."""
    opened: list[Browser] = []

    def open_browser() -> Browser:
        # A new context is a fresh profile: no cookies, storage or cache of any other.
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        opened_browser = Browser(context, page, tmp_path / "screenshots")
        page.on("dialog", lambda d: (opened_browser.dialogs.append(d.message), d.dismiss()))
        opened.append(opened_browser)
        return opened_browser

    try:
        yield open_browser
    finally:
        for b in opened:
            b.context.close()
