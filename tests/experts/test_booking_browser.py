"""Booking with the slot picker in a real browser (Debian's Chromium through Playwright), in
the Korean UI: the counselor picks a duration, clicks a free time, enters the meeting place and
books; times already taken are not offered."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import book, next_weekday

pytestmark = [pytest.mark.browser, pytest.mark.slow]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def ko_page(live_server: Any, chromium_browser: Any) -> Iterator[Any]:
    context = chromium_browser.new_context(locale="ko-KR")
    p = context.new_page()
    # Generous: the shared test machine can be slow to serve the first page.
    p.set_default_timeout(60_000)
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


def test_booking_with_the_slot_picker(
    committed_audit: None, live_server: Any, ko_page: Any, assignment: Any, counselor: Any,
    login_client: Any,
) -> None:
    from anshim.experts.models import Appointment

    monday = next_weekday(0, 9)
    day = monday.date().isoformat()
    book(counselor, assignment, monday.replace(hour=10))  # 10:00-11:00 is taken
    page = ko_page
    signed_in(page, live_server, counselor, login_client)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/staff/experts/assignments/{assignment.pk}/book/")
    picker = page.get_by_role("region", name="앞으로 14일간 빈 시간")
    slots = picker.locator(f'button.slot[data-date="{day}"]')
    times = slots.all_inner_texts()
    assert "09:00" in times and "10:00" not in times and "11:00" in times
    # Two hours: 09:00 no longer fits before the booking at 10:00; the list follows.
    page.get_by_label("소요 시간").select_option("120")
    times = slots.all_inner_texts()
    assert "09:00" not in times and "11:00" in times and "15:00" in times
    assert "15:15" not in times
    picker.locator(f'button.slot[data-date="{day}"][data-time="11:00"]').click()
    assert page.get_by_label("날짜").input_value() == day
    assert page.get_by_label("시작 시각").input_value().startswith("11:00")
    assert picker.locator('button[aria-pressed="true"]').inner_text() == "11:00"
    page.get_by_label("방식").select_option("video")
    assert not page.get_by_label("만나는 장소").is_visible()  # no place for a video call
    page.get_by_label("방식").select_option("in_person")
    assert page.get_by_label("만나는 장소").is_visible()
    page.get_by_label("만나는 장소").fill("센터 2층 상담실 (fictitious)")
    page.get_by_role("button", name="저장").click()
    page.wait_for_url(f"**/staff/experts/assignments/{assignment.pk}/")
    assert "예약했습니다." in page.locator("body").inner_text()
    assert errors == []
    new = Appointment.objects.exclude(starts_at=monday.replace(hour=10)).get()
    assert new.starts_at == monday.replace(hour=11)
    assert (new.ends_at - new.starts_at).total_seconds() == 7200
    assert new.location == "센터 2층 상담실 (fictitious)"
