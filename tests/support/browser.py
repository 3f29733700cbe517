"""The console in a real browser: Debian's Chromium (`/usr/bin/chromium`, installed by .ci/run) driven by
Playwright with `executable_path` (no browser download), skipped with the reason when it is absent; the page
helpers the console tests share. Screenshots go to `$EDGEPLANE_ARTIFACTS/console/` (default
`.artifacts/console/` in the repository)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).parents[2]
ARTIFACTS = Path(os.environ.get("EDGEPLANE_ARTIFACTS") or ROOT / ".artifacts") / "console"
WAIT_S = 45.0


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium for a module's tests (skips them when Chromium or Playwright is missing)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; .ci/run installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@contextmanager
def new_page(browser: Any, base_url: str) -> Iterator[Any]:
    """A page in a fresh context (no cookies: a secure console starts logged out)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=base_url)
    context.set_default_timeout(WAIT_S * 1000)
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def by_id(page: Any, testid: str) -> Any:
    return page.locator(f'[data-testid="{testid}"]')


def field(page: Any, testid: str) -> Any:
    """The text field of a ui.input (Quasar puts the attribute on the <input> itself)."""
    return page.locator(f'input[data-testid="{testid}"], [data-testid="{testid}"] input').first
