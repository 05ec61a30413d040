"""The victim's status page costs the same queries with 5 and with 60 messages, sightings and
takedown requests on the case (no N+1; issue 19 item 15)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from anshim.erasure.models import Platform, Sighting, TakedownRequest
from anshim.portal.models import PortalMessage

pytestmark = pytest.mark.django_db


def _grow(case: Any, start: int, n: int) -> None:
    PortalMessage.objects.bulk_create(
        PortalMessage(case=case, body=f"Message {i}", from_victim=bool(i % 2))
        for i in range(start, start + n))
    platforms = Platform.objects.bulk_create(
        Platform(name=f"Platform {i}", domains=f"p{i}.test", contact_email=f"abuse@p{i}.test")
        for i in range(start, start + n))
    now = timezone.now()
    Sighting.objects.bulk_create(
        Sighting(page_url=f"https://p{i}.test/post/{i}", media_url=f"https://p{i}.test/m.jpg",
                 platform=platforms[i - start], entry_id=i, bank_name="victims", case=case,
                 match_kind="pdq", distance=3, first_seen=now, last_seen=now)
        for i in range(start, start + n))
    TakedownRequest.objects.bulk_create(
        TakedownRequest(case=case, platform=p, language="ko", subject="Request", body="Body")
        for p in platforms)


def test_status_page_queries_do_not_grow_with_rows(
        signed_in_client: Any, portal_case: Any, django_assert_max_num_queries: Any) -> None:
    case, _ = portal_case
    _grow(case, 0, 5)
    signed_in_client.get("/status/")  # warm; marks the replies shown as read
    with django_assert_max_num_queries(25), CaptureQueriesContext(connection) as few:
        assert signed_in_client.get("/status/").status_code == 200
    _grow(case, 5, 55)
    signed_in_client.get("/status/")
    with CaptureQueriesContext(connection) as many:
        page = signed_in_client.get("/status/").content.decode()
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
    assert page.count("Message ") == 60
