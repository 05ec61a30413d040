"""The hotline intake form in a real browser (Debian's Chromium through Playwright): the
counselor fills it by label text, and lands on the triaged case with its reasons."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.browser, pytest.mark.slow,
]

CHROMIUM = Path(os.environ.get("ANSHIM_CHROMIUM", "/usr/bin/chromium"))
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def page(live_server: Any, chromium_browser: Any) -> Iterator[Any]:
    context = chromium_browser.new_context(locale="en-US")
    p = context.new_page()
    p.set_default_timeout(15_000)
    try:
        yield p
    finally:
        context.close()


def signed_in(page: Any, live_server: Any, user: Any, login_client: Any) -> None:
    """Reuse the test client's signed-in, TOTP-verified session in the browser."""
    from django.conf import settings
    from django.test import Client

    client = login_client(user, Client())
    page.context.add_cookies([{
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server.url,
    }])


def test_intake_form_by_labels(committed_audit: None, live_server: Any, page: Any,
                               make_user: Any, login_client: Any) -> None:
    from anshim.cases.models import Case, RiskLevel

    user = make_user("counselor")
    signed_in(page, live_server, user, login_client)
    page.goto(f"{live_server.url}/staff/cases/new/")
    page.get_by_label("Channel").select_option("chat")
    page.get_by_label("Duration (minutes)").fill("20")
    page.get_by_role("group", name="Harm types").get_by_label("Sextortion").check()
    page.get_by_role("group", name="Risk factors").get_by_label(
        "sextortion under way").check()
    page.get_by_label("Age group").select_option("under14")
    page.get_by_label("Guardian name").fill("Fictitious Guardian")
    page.get_by_role("group", name="Consents given by the victim").get_by_label(
        "Keep case data").check()
    page.get_by_role("group", name="Consents given by the legal guardian").get_by_label(
        "Keep case data").check()
    page.get_by_label("Summary").fill("Fictitious: threats to share a video.")
    page.get_by_role("button", name="Create case").click()

    page.wait_for_url("**/staff/cases/AN-*/")
    case = Case.objects.get()
    assert case.risk_level == RiskLevel.URGENT
    body = page.locator("main").inner_text()
    assert case.code in body and "Urgent" in body
    assert "Threat of spreading or sextortion under way" in body
    assert "Victim is under 14" in body


def test_intake_errors_shown_in_browser(committed_audit: None, live_server: Any, page: Any,
                                        make_user: Any, login_client: Any) -> None:
    from anshim.cases.models import Case

    signed_in(page, live_server, make_user("counselor"), login_client)
    page.goto(f"{live_server.url}/staff/cases/new/")
    page.get_by_label("Duration (minutes)").fill("-4")
    page.get_by_role("button", name="Create case").click()
    body = page.locator("main").inner_text()
    assert "Please correct the errors below." in body
    assert Case.objects.count() == 0

