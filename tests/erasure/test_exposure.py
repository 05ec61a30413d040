"""Reviewer exposure (issue 14): the unblurred page and the report of how long the picture was
visible — the reviewer's own record only, never lowered, capped, bad input a clear 400."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from anshim.erasure.exposure import MAX_VIEWING_SECONDS, REPORT_EVERY_SECONDS
from anshim.erasure.matcher import MatchResult
from anshim.erasure.models import UnblurRecord
from anshim.erasure.sightings import Observation, record_sighting
from anshim.erasure.verification import Fetched

from .media import picture_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def picture(monkeypatch: Any) -> bytes:
    from anshim.erasure import preview as preview_mod

    data = picture_bytes(3)
    monkeypatch.setattr(preview_mod, "fetch",
                        lambda url, limit, **kw: Fetched(200, data, "image/png"))
    return data


@pytest.fixture
def sighting(make_case: Any) -> Any:
    case = make_case()
    match = MatchResult(bank="victims", bank_id=1, entry_id=1, case_code=case.code, distance=4,
                        kind="pdq")
    s, _ = record_sighting(Observation("http://dom.test/p/1", "http://dom.test/p/m.jpg",
                                       http_status=200, page_html="<p>x</p>"), match)
    return s


def _unblurred(c: Any, sighting: Any) -> UnblurRecord:
    response = c.post(f"/staff/erasure/sightings/{sighting.pk}/unblur/")
    assert response.status_code == 200
    return UnblurRecord.objects.latest("pk")


def _report(c: Any, record: UnblurRecord, seconds: Any) -> Any:
    data = {} if seconds is None else {"seconds": seconds}
    return c.post(f"/staff/erasure/unblurred/{record.pk}/viewed/", data)


def _age(record: UnblurRecord, seconds: float) -> None:
    """As if the picture had been unblurred `seconds` ago."""
    UnblurRecord.objects.filter(pk=record.pk).update(
        at=timezone.now() - dt.timedelta(seconds=seconds))


def test_the_unblurred_page_carries_the_timer_and_no_second_url(
        picture: bytes, sighting: Any, make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    response = c.post(f"/staff/erasure/sightings/{sighting.pk}/unblur/")
    record = UnblurRecord.objects.get()
    html = response.content.decode()
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"].startswith("no-store")
    assert "erasure/unblur-timer.js" in html and "<script>" not in html
    assert f'data-report-url="/staff/erasure/unblurred/{record.pk}/viewed/"' in html
    assert f'data-report-every="{REPORT_EVERY_SECONDS}"' in html
    # the picture is inline: no URL shows it unblurred again without a new audited POST
    assert 'src="data:image/png;base64,' in html
    assert record.seconds_viewed is None  # nothing reported yet: the default counts


def test_reports_only_grow_and_are_capped_by_the_time_since_unblurring(
        picture: bytes, sighting: Any, make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    record = _unblurred(c, sighting)
    _age(record, 40)
    assert json.loads(_report(c, record, "12.4").content) == {"record": record.pk,
                                                              "seconds": 12}
    # the same report again, and an older (smaller) one arriving late: no double count
    assert _report(c, record, "12.4").json()["seconds"] == 12
    assert _report(c, record, "3").json()["seconds"] == 12
    assert _report(c, record, "30").json()["seconds"] == 30
    # more than the record's age: the page cannot have shown it that long
    assert _report(c, record, "5000").json()["seconds"] <= 42
    record.refresh_from_db()
    assert 40 <= record.seconds_viewed <= 42


def test_one_viewing_counts_at_most_the_maximum(picture: bytes, sighting: Any,
                                                make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    record = _unblurred(c, sighting)
    _age(record, 10 * 3600)
    assert _report(c, record, "36000").json()["seconds"] == MAX_VIEWING_SECONDS


def test_only_the_reviewer_who_unblurred_it_may_report(
        picture: bytes, sighting: Any, make_user: Any, login_client: Any,
        client_factory: Any) -> None:
    owner = make_user("erasure")
    record = _unblurred(login_client(owner, client_factory()), sighting)
    _age(record, 60)
    for other in (make_user("erasure"), make_user("supervisor")):
        response = _report(login_client(other, client_factory()), record, "20")
        assert response.status_code in (403, 404)
    assert login_client(make_user("counselor"), client_factory()).post(
        f"/staff/erasure/unblurred/{record.pk}/viewed/", {"seconds": "20"}).status_code == 403
    record.refresh_from_db()
    assert record.seconds_viewed is None
    owner_client = login_client(owner, client_factory())
    assert _report(owner_client, record, "20").status_code == 200
    assert owner_client.get(f"/staff/erasure/unblurred/{record.pk}/viewed/").status_code == 405
    assert _report(owner_client, UnblurRecord(pk=record.pk + 99), "1").status_code == 404


@pytest.mark.parametrize("bad", [None, "", "abc", "-1", "nan", "inf", "1e999", "1" * 40,
                                 "0x10", "1,5"])
def test_bad_input_is_a_clear_400_and_writes_nothing(
        bad: Any, picture: bytes, sighting: Any, make_user: Any, login_client: Any) -> None:
    c = login_client(make_user("erasure"))
    record = _unblurred(c, sighting)
    response = _report(c, record, bad)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]
    record.refresh_from_db()
    assert record.seconds_viewed is None


def test_a_picture_that_could_not_be_shown_counts_no_time(
        monkeypatch: Any, sighting: Any, make_user: Any, login_client: Any) -> None:
    from anshim.erasure import preview as preview_mod

    monkeypatch.setattr(preview_mod, "fetch",
                        lambda url, limit, **kw: Fetched(404, b"", "text/html"))
    c = login_client(make_user("erasure"))
    assert c.post(f"/staff/erasure/sightings/{sighting.pk}/unblur/").status_code == 410
    assert UnblurRecord.objects.get().seconds_viewed == 0


@pytest.fixture
def client_factory() -> Any:
    from django.test import Client

    return Client
