"""Issue 19 item 10: consent toggles ask for confirmation and record how consent was given
and by whom; the timeline names which consent, for whom, by whom."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from anshim.cases import consent
from anshim.cases.models import Consent, ConsentScope

pytestmark = pytest.mark.django_db


def test_a_toggle_asks_first_and_records_how_and_by_whom(
        login_client: Any, make_case: Any, make_user: Any) -> None:
    counselor = make_user("counselor", display_name="상담원 가")
    case = make_case()
    c = login_client(counselor)
    url = reverse("cases:consent", kwargs={"code": case.code})
    toggle = {"scope": "keep_data", "given_by": "victim", "action": "grant"}
    with CaptureQueriesContext(connection) as queries:
        asked = c.post(url, toggle, HTTP_ACCEPT_LANGUAGE="ko")
    assert len(queries) <= 25
    body = asked.content.decode()
    # Nothing changed yet: the page names the consent and the giver and asks how.
    assert asked.status_code == 200 and not Consent.objects.filter(case=case).exists()
    assert "사례 자료 보관" in body or str(ConsentScope.KEEP_DATA.label) in body
    assert 'name="confirmed" value="1"' in body and 'value="in_person"' in body
    assert "동의를 어떤 방식으로 받았나요?" in body
    # Confirmed without saying how: refused, nothing recorded.
    missing = c.post(url, {**toggle, "confirmed": "1"}, HTTP_ACCEPT_LANGUAGE="ko")
    assert missing.status_code == 400 and not Consent.objects.filter(case=case).exists()
    done = c.post(url, {**toggle, "confirmed": "1", "method": "in_person"})
    assert done.status_code == 302
    record = Consent.objects.get(case=case, scope="keep_data")
    assert record.method == "in_person" and record.recorded_by == counselor
    # Withdrawal: asked the same way, then recorded with how it reached the center.
    withdraw = {**toggle, "action": "withdraw"}
    assert c.post(url, withdraw).status_code == 200 and consent.has_consent(case, "keep_data")
    assert c.post(url, {**withdraw, "confirmed": "1", "method": "verbal"}).status_code == 302
    assert not consent.has_consent(case, "keep_data")
    # The timeline names which consent, from whom, how, and who recorded it.
    page = c.get(reverse("cases:detail", kwargs={"code": case.code}),
                 HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    timeline = page[page.index('id="timeline-h"'):]
    assert "대면" in timeline and "전화로 구두 동의" in timeline and "(상담원 가)" in timeline
    event = case.timeline.filter(kind="consent.withdrawn").get()
    assert event.data == {"scope": "keep_data", "given_by": "victim", "method": "verbal"}


def test_the_confirmation_refuses_garbage(login_client: Any, make_case: Any,
                                          make_user: Any) -> None:
    case = make_case()
    c = login_client(make_user("counselor"))
    url = reverse("cases:consent", kwargs={"code": case.code})
    r = c.post(url, {"scope": "keep_data", "given_by": "victim", "action": "grant",
                     "confirmed": "1", "method": "telepathy"})
    assert r.status_code == 400 and not Consent.objects.filter(case=case).exists()


def test_withdrawing_keep_data_gives_the_counselor_a_banner_and_a_task(
        login_client: Any, make_case: Any, make_user: Any, settings: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    from anshim.cases.models import Notification

    settings.ANSHIM_WITHDRAWN_DATA_DELETE_DAYS = 30
    counselor = make_user("counselor")
    case = make_case()
    case.lead_counselor = counselor
    case.save()
    c = login_client(counselor)
    url = reverse("cases:consent", kwargs={"code": case.code})
    detail = reverse("cases:detail", kwargs={"code": case.code})
    c.post(url, {"scope": "keep_data", "given_by": "victim", "action": "grant",
                 "confirmed": "1", "method": "written"})
    assert "사례 자료 보관 동의를 철회했습니다" not in c.get(
        detail, HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert c.post(url, {"scope": "keep_data", "given_by": "victim", "action": "withdraw",
                        "confirmed": "1", "method": "portal"}).status_code == 302
    due = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    with CaptureQueriesContext(connection) as queries:
        page = c.get(detail, HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert len(queries) <= 60
    assert "피해자가 사례 자료 보관 동의를 철회했습니다" in page and due in page
    task = Notification.objects.get(recipient=counselor)
    assert case.code in task.message and due in task.message and task.link == detail
    # Consent given again: the banner goes.
    c.post(url, {"scope": "keep_data", "given_by": "victim", "action": "grant",
                 "confirmed": "1", "method": "in_person"})
    assert "사례 자료 보관 동의를 철회했습니다" not in c.get(
        detail, HTTP_ACCEPT_LANGUAGE="ko").content.decode()
