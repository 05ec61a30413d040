"""Portal access for a hotline case in Chromium (issue 19 item 3), Korean UI: the counselor opens
it from the case page, issues it, the sheet prints without the staff frame, and the victim signs
in with it on a 390 px phone."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_counselor_prints_access_and_the_victim_signs_in_on_a_phone(
        live_server: Any, browser_context: Any, chromium_browser: Any, login_client: Any,
        make_user: Any, flushable_audit_log: Any) -> None:
    from anshim.cases import codes
    from anshim.cases.models import Case, Person

    counselor = make_user("counselor")
    case = Case.objects.create(code=codes.new_unique_code(), channel="phone",
                               person=Person.objects.create(age_group="14to17"),
                               lead_counselor=counselor)
    staff = login_client(counselor, Client())
    browser_context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                                  "value": staff.cookies[settings.SESSION_COOKIE_NAME].value}])
    page = browser_context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/staff/cases/{case.code}/")
    page.click("#portal-access-link")
    assert page.locator("#confirm-reissue").count() == 0  # a first issue: nothing to replace
    page.click("#issue-access")
    passphrase = page.inner_text("#new-passphrase").strip()
    assert page.inner_text("#access-code").strip() == case.code and len(passphrase) == 19
    assert "인쇄" in page.inner_text(".screen-only")
    page.emulate_media(media="print")
    assert page.locator(".access-sheet").is_visible()
    assert not page.locator(".topbar").is_visible()
    assert not page.locator(".screen-only").is_visible()

    # The victim, on their own phone.
    phone = chromium_browser.new_context(locale="ko-KR", viewport={"width": 390, "height": 844})
    try:
        victim = phone.new_page()
        victim.goto(f"{live_server.url}/status/sign-in/")
        victim.fill("input[name=code]", case.code)
        victim.fill("input[name=passphrase]", passphrase)
        victim.click("form.portal-form button[type=submit]")
        assert victim.url.endswith("/status/")
    finally:
        phone.close()
