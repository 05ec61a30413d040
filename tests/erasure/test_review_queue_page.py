"""The review queue (issue 19 item 5): the case code links the case, the matched media is
shown, every action is confirmed with a message, finished requests are found with a filter."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from anshim.cases.models import Consent, ConsentGiver, ConsentScope
from anshim.erasure.matcher import MatchResult
from anshim.erasure.models import Platform, Sighting, SightingStatus, TakedownState
from anshim.erasure.sightings import Observation, record_sighting
from anshim.erasure.takedowns import approve_and_send, draft_requests, record_response

pytestmark = pytest.mark.django_db


def _sighting(case: Any, n: int) -> Sighting:
    match = MatchResult(bank="victims", bank_id=1, entry_id=n, case_code=case.code, distance=4,
                        kind="pdq")
    s, _ = record_sighting(Observation(f"http://dom.test/p/{n}", f"http://dom.test/m/{n}.jpg",
                                       http_status=200, page_html="<p>x</p>"), match)
    return s


@pytest.fixture
def case(make_case: Any) -> Any:
    case = make_case()
    Consent.objects.create(case=case, scope=ConsentScope.CONTACT_PLATFORMS,
                           given_by=ConsentGiver.VICTIM, granted_at=timezone.now())
    Platform.objects.create(name="Domestic", domains="dom.test", contact_email="a@dom.test")
    return case


def test_queue_links_case_and_shows_the_matched_media(case: Any, make_user: Any,
                                                      login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    s = _sighting(case, 1)
    page = c.get("/staff/erasure/").content.decode()
    row = page[page.index(f'id="sighting-{s.pk}"'):]
    row = row[:row.index("</tr>")]
    assert f'href="/staff/cases/{case.code}/"' in row
    assert "http://dom.test/m/1.jpg" in row and "victims" in row
    r = c.post(f"/staff/erasure/sightings/{s.pk}/review/", {"decision": "confirm"}, follow=True)
    assert "확인했습니다: http://dom.test/p/1" in r.content.decode()
    s2 = _sighting(case, 2)
    r = c.post(f"/staff/erasure/sightings/{s2.pk}/review/", {"decision": "reject"}, follow=True)
    assert "오탐으로 기각했습니다" in r.content.decode()
    # Reviewing again is refused with a message.
    r = c.post(f"/staff/erasure/sightings/{s2.pk}/review/", {"decision": "confirm"}, follow=True)
    assert "이미 검토" in r.content.decode() or "already" in r.content.decode()
    s2.refresh_from_db()
    assert s2.status == SightingStatus.REJECTED


def test_queue_query_count_does_not_grow(case: Any, make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    _sighting(case, 1)
    with CaptureQueriesContext(connection) as one:
        c.get("/staff/erasure/")
    for n in range(2, 30):
        _sighting(case, n)
    with CaptureQueriesContext(connection) as many:
        c.get("/staff/erasure/")
    assert len(many) == len(one)


def test_finished_requests_are_found_by_the_filter(case: Any, make_user: Any,
                                                   login_client: Any, settings: Any) -> None:
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    user = make_user("erasure")
    c = login_client(user)
    s = _sighting(case, 1)
    c.post(f"/staff/erasure/sightings/{s.pk}/review/", {"decision": "confirm"})
    [req] = draft_requests(case, actor=user)
    approve_and_send(req, actor=user)
    record_response(req, TakedownState.REMOVED, actor=user)
    page = c.get("/staff/erasure/").content.decode()
    assert req.reference not in page  # no longer among drafts or open requests
    r = c.get("/staff/erasure/", {"show": "finished"})
    body = r.content.decode()
    assert r.status_code == 200 and req.reference in body and "found-requests" in body
    assert req.reference in c.get("/staff/erasure/", {"case": case.code.lower()}).content.decode()
    assert req.reference not in c.get("/staff/erasure/", {"show": "open"}).content.decode()
    assert c.get("/staff/erasure/", {"show": "bogus"}).status_code == 200
    r = c.post(f"/staff/erasure/requests/{req.pk}/respond/", {"state": "refused"}, follow=True)
    assert r.status_code == 200  # a removed request takes no answer: a message, not a 500
