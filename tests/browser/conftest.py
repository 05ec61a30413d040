"""Staff-interface browser tests: Debian's Chromium (the session fixture `chromium_browser`
in tests/conftest.py) driven by Playwright against a live server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def en_page(chromium_browser: Any) -> Iterator[Any]:
    """A fresh browser context that asks for English (the UI defaults to Korean)."""
    context = chromium_browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()
