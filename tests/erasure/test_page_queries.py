"""The case's erasure page costs the same queries with 5 and with 60 takedown requests, reported
links, scans and sightings (no N+1; issue 19 item 15)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from anshim.erasure.models import (
    Platform,
    ReportedLink,
    ScanKind,
    ScanRun,
    Sighting,
    TakedownRequest,
)

pytestmark = pytest.mark.django_db


def _grow(case: Any, start: int, n: int, actor: Any) -> None:
    platforms = Platform.objects.bulk_create(
        Platform(name=f"Platform {i}", domains=f"p{i}.test", contact_email=f"abuse@p{i}.test")
        for i in range(start, start + n))
    TakedownRequest.objects.bulk_create(
        TakedownRequest(case=case, platform=p, language="ko", subject=f"Request {p.pk}",
                        body="Body", created_by=actor) for p in platforms)
    ReportedLink.objects.bulk_create(
        ReportedLink(case=case, url=f"https://p{i}.test/post/{i}", origin="staff")
        for i in range(start, start + n))
    ScanRun.objects.bulk_create(ScanRun(kind=ScanKind.CASE, case=case, requested_by=actor)
                                for _ in range(n))
    now = timezone.now()
    Sighting.objects.bulk_create(
        Sighting(page_url=f"https://p{i}.test/post/{i}", media_url=f"https://p{i}.test/m.jpg",
                 platform=platforms[i - start], entry_id=i, bank_name="victims", case=case,
                 match_kind="pdq", distance=3, first_seen=now, last_seen=now)
        for i in range(start, start + n))


def test_case_erasure_page_queries_do_not_grow_with_rows(
        make_case: Any, make_user: Any, login_client: Any,
        django_assert_max_num_queries: Any) -> None:
    specialist = make_user("erasure")
    case = make_case()
    case.erasure_specialists.add(specialist)
    c = login_client(specialist)
    url = f"/staff/erasure/cases/{case.code}/"
    _grow(case, 0, 5, specialist)
    c.get(url)  # warm the session and the translations
    with django_assert_max_num_queries(20), CaptureQueriesContext(connection) as few:
        assert c.get(url).status_code == 200
    _grow(case, 5, 55, specialist)
    with CaptureQueriesContext(connection) as many:
        page = c.get(url).content.decode()
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
    assert page.count("/staff/erasure/requests/") >= 50  # the page shows the newest 50
