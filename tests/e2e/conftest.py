"""The console's browser fixtures, for the test modules that define a `stack` (a running `edgeplane up`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import chromium, new_page
from tests.support.native import NativeStack


@pytest.fixture(scope="module")
def browser(stack: NativeStack) -> Iterator[Any]:
    """Chromium for the module's stack (asks for the stack first, so a stack that cannot start fails once)."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any, stack: NativeStack) -> Iterator[Any]:
    """A fresh browser context on the stack's console (no session cookie: in secure mode, logged out)."""
    with new_page(browser, stack.url("console")) as page:
        yield page
