"""/api/v1/docs: Swagger UI from our own origin, so the Content-Security-Policy lets it run."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client


def test_docs_page_loads_assets_from_our_origin_only(client: Client) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    for url in sources:
        assert url.startswith("/static/"), f"{url} is not served by us"
        # collectstatic (and the development server) find each one in an installed app.
        assert finders.find(url.removeprefix("/static/")), url
    assert "cdn" not in html.lower()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_under_the_csp(live_server: Any, chromium_browser: Any) -> None:
    context = chromium_browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    try:
        page.goto(f"{live_server.url}/api/v1/docs")
        # Swagger UI renders one block per operation from /api/v1/openapi.json.
        page.locator(".opblock").first.wait_for()
        assert page.locator(".opblock").count() > 5
        assert "Anshim API" in page.locator(".information-container").inner_text()
        assert violations == []
    finally:
        context.close()
