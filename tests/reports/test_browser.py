"""The supervisor dashboard in Korean in Chromium at 1280 px and 390 px: the charts render
through the vendored vega-embed under the CSP (no eval, no CDN) and nothing overflows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from .conftest import YEAR, World

SHOTS = Path(os.environ.get("ANSHIM_SCREENSHOT_DIR", "var/screenshots"))


@pytest.mark.parametrize("width", [1280, 390])
def test_dashboard_screenshot_in_korean(width: int, live_server: Any, chromium_browser: Any,
                                        world: World, make_user: Any, login_client: Any,
                                        client: Any) -> None:
    login_client(make_user("supervisor"))
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    context = chromium_browser.new_context(locale="ko-KR",
                                           viewport={"width": width, "height": 900})
    host = live_server.url.split("//")[1].split(":")[0]
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session,
                          "domain": host, "path": "/"}])
    page = context.new_page()
    errors: list[str] = []
    page.on("console",
            lambda m: errors.append(f"{m.text} @ {m.location}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{live_server.url}/staff/reports/?year={YEAR}")
        page.wait_for_function(
            "document.querySelectorAll('.chart[data-rendered]').length"
            " === document.querySelectorAll('.chart').length", timeout=20_000)
        assert page.locator(".chart[data-rendered='error']").count() == 0
        assert page.locator(".chart svg").count() >= 6
        body = page.locator("main").inner_text()
        assert "관리자 대시보드" in body and "플랫폼별 삭제 요청부터 삭제까지 걸린 시간" in body
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"horizontal overflow of {overflow} px at {width} px"
        assert not [e for e in errors if "Content Security Policy" in e or "eval" in e], errors
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"reports-dashboard-ko-{width}.png"), full_page=True)
    finally:
        context.close()
