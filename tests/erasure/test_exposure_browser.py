"""Browser test of the viewing time (issue 14), Debian's Chromium, Korean UI: a specialist
unblurs a queued picture, looks at it for two seconds and blurs it again; the record holds at
least those two seconds. Shown again and the tab closed, the time only grows."""

from __future__ import annotations

import time
from typing import Any

import pytest

from anshim.erasure.verification import Fetched

from .media import picture_bytes
from .test_browser_erasure import _sign_in, _user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _seconds_when(record_id: int, at_least: int, wait: float = 8.0) -> int | None:
    """The record's seconds once the page's report has landed (it is sent without waiting)."""
    from anshim.erasure.models import UnblurRecord

    deadline = time.monotonic() + wait
    seconds = None
    while time.monotonic() < deadline:
        seconds = UnblurRecord.objects.get(pk=record_id).seconds_viewed
        if seconds is not None and seconds >= at_least:
            break
        time.sleep(0.25)
    return seconds


def _sighting_with_picture(monkeypatch: Any, n: int) -> None:
    """A sighting whose picture (generated, benign) the preview fetch returns."""
    from anshim.erasure import preview as preview_mod
    from anshim.erasure.matcher import MatchResult
    from anshim.erasure.sightings import Observation, record_sighting

    data = picture_bytes(n)
    monkeypatch.setattr(preview_mod, "fetch",
                        lambda url, limit, **kw: Fetched(200, data, "image/png"))
    record_sighting(Observation(f"http://sns.test/post/{n}", f"http://sns.test/m/{n}.png"),
                    MatchResult(bank="victims", bank_id=1, entry_id=n, case_code=None,
                                distance=3, kind="pdq"))


def _open_unblurred(context: Any, base_url: str, user: Any) -> Any:
    """Sign in, unblur the sighting on the erasure page: the tab showing the picture."""
    page = _sign_in(context, base_url, user)
    page.goto(f"{base_url}/staff/erasure/")
    with context.expect_page() as opened:
        page.click("form[action$='/unblur/'] button[type=submit]")
    shown = opened.value
    shown.wait_for_load_state()
    shown.wait_for_selector("#unblurred-picture")
    return shown


def test_unblur_look_two_seconds_reblur_records_them(
        live_server: Any, chromium_browser: Any, monkeypatch: Any) -> None:
    from anshim.erasure.models import UnblurRecord

    _sighting_with_picture(monkeypatch, 1)
    user = _user("mina", "erasure")
    context = chromium_browser.new_context(locale="ko-KR")
    try:
        shown = _open_unblurred(context, live_server.url, user)
        assert shown.locator("h1").inner_text() == "원본 사진"
        record = UnblurRecord.objects.get(actor=user)
        shown.wait_for_timeout(2200)
        shown.click("#reblur")
        assert "reblurred" in (shown.get_attribute("#unblurred-picture", "class") or "")
        first = _seconds_when(record.pk, 2)
        assert first is not None and first >= 2
        # blurred, the clock stands still
        shown.wait_for_timeout(1500)
        assert UnblurRecord.objects.get(pk=record.pk).seconds_viewed == first
        # shown again for a moment, then the tab is closed: the report on leaving adds it
        shown.click("#reblur")
        shown.wait_for_timeout(1300)
        shown.close(run_before_unload=True)
        last = _seconds_when(record.pk, first + 1)
        assert last is not None and first + 1 <= last <= first + 3
    finally:
        context.close()


def test_the_picture_blurs_itself_at_the_most_one_viewing_counts(
        live_server: Any, chromium_browser: Any, monkeypatch: Any) -> None:
    from anshim.erasure import exposure
    from anshim.erasure.models import UnblurRecord

    # the page checks every 5 s (its floor); a viewing counts at most 6 s here
    monkeypatch.setattr(exposure, "REPORT_EVERY_SECONDS", 5)
    monkeypatch.setattr(exposure, "MAX_VIEWING_SECONDS", 6)
    _sighting_with_picture(monkeypatch, 2)
    user = _user("joon", "erasure")
    context = chromium_browser.new_context(locale="ko-KR")
    try:
        shown = _open_unblurred(context, live_server.url, user)
        shown.wait_for_selector("#unblurred-picture.reblurred", timeout=15_000)
        assert shown.locator("#reblur").inner_text() == "원본 다시 보기"
        record = UnblurRecord.objects.get(actor=user)
        assert _seconds_when(record.pk, 6) == 6
    finally:
        context.close()
