"""Control characters in any text input: a 422 that names the field, nothing saved, on SQLite
and on PostgreSQL alike (NUL used to reach psycopg and end in a 500 there)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

CONTROLS = ["\x00", "\x1b", "\x7f", "\x85", "\x08"]


@pytest.fixture
def world(make_user: Any, login_client: Any) -> dict[str, Any]:
    from anshim.cases.models import Case, Person
    from anshim.experts.models import Assignment, Expert

    supervisor = make_user("supervisor", username="sup")
    person = Person.objects.create(name="Control Person", age_group="14to17")
    case = Case.objects.create(code="AN-CTRL-1A", person=person, channel="phone",
                               lead_counselor=supervisor)
    expert_user = make_user("expert", username="exp")
    expert = Expert.objects.create(user=expert_user, kind="therapy", specialties=["trauma"],
                                   languages=["ko"], regions=["Mapo-gu"], weekly_capacity=5)
    assignment = Assignment.objects.create(case=case, expert=expert, specialty="trauma")
    return {"client": login_client(supervisor, Client()), "case": case,
            "assignment": assignment}


def _api(client: Client, path: str, body: dict[str, Any], method: str = "POST") -> Any:
    return client.generic(method, path, json.dumps(body), content_type="application/json")


def _named(response: Any, loc: list[Any]) -> None:
    assert response.status_code == 422, response.content[:500]
    detail = response.json()["detail"]
    assert detail[0]["loc"] == loc and detail[0]["type"] == "control_character"
    assert str(loc[-1]) in detail[0]["msg"]


@pytest.mark.parametrize("char", CONTROLS)
def test_referral_organization(world: dict[str, Any], char: str) -> None:
    from anshim.cases.models import Referral

    response = _api(world["client"], f"/api/v1/cases/{world['case'].code}/referrals",
                    {"target": "hospital", "organization": f"Clinic{char}"})
    _named(response, ["body", "organization"])
    assert not Referral.objects.exists()


def test_triage_override_reason(world: dict[str, Any]) -> None:
    from anshim.cases.models import TriageAssessment

    before = TriageAssessment.objects.count()
    response = _api(world["client"], f"/api/v1/cases/{world['case'].code}/triage/override",
                    {"level": "high", "reason": "because\x00"})
    _named(response, ["body", "reason"])
    assert TriageAssessment.objects.count() == before


def test_guardian_relationship_in_the_api_and_the_intake_form(world: dict[str, Any]) -> None:
    from anshim.cases.models import Case

    response = _api(world["client"], "/api/v1/cases/", {
        "channel": "phone", "started_at": timezone.now().isoformat(),
        "harm_types": ["grooming"], "guardian": {"name": "G", "relationship": "mother\x00"}})
    _named(response, ["body", "guardian", "relationship"])
    form = world["client"].post("/staff/cases/new/", {
        "channel": "phone", "harm_types": ["grooming"], "age_group": "14to17",
        "guardian_name": "G", "guardian_relationship": "mother\x00"})
    assert form.status_code == 422
    html = form.content.decode()
    assert "guardian_relationship" in html and "U+0000" in html
    assert Case.objects.count() == 1  # only the fixture's


def test_assignment_end_reason(world: dict[str, Any]) -> None:
    assignment = world["assignment"]
    response = _api(world["client"], f"/api/v1/experts/assignments/{assignment.pk}/end",
                    {"reason": "moved\x00away"})
    _named(response, ["body", "reason"])
    assignment.refresh_from_db()
    assert assignment.status == "active"


def test_keys_and_nested_lists_are_checked_too(world: dict[str, Any]) -> None:
    response = _api(world["client"], "/api/v1/cases/", {
        "channel": "phone", "started_at": timezone.now().isoformat(),
        "harm_types": ["grooming", "x\x01"]})
    _named(response, ["body", "harm_types", 1])
    response = _api(world["client"], "/api/v1/cases/", {"bad\x00key": 1})
    _named(response, ["body", "bad\x00key"])


def test_html_form_gives_a_korean_422_naming_the_field(world: dict[str, Any]) -> None:
    from anshim.cases.models import Note

    response = world["client"].post(f"/staff/cases/{world['case'].code}/notes/",
                                    {"body": "a note\x00", "kind": "note"})
    assert response.status_code == 422
    html = response.content.decode()
    assert '<html lang="ko">' in html and "“body”" in html
    assert any("\uac00" <= ch <= "\ud7a3" for ch in html)
    assert not Note.objects.exists()


def test_query_string_and_path(world: dict[str, Any]) -> None:
    client = world["client"]
    response = client.get("/staff/cases/", {"q": "kim\x00"})
    assert response.status_code == 422 and "“q”" in response.content.decode()
    assert client.get("/staff/cases/AN-CT%00RL/").status_code == 422
    response = client.get("/api/v1/experts/suggestions", {"case_code": "AN\x00", "need": "x"})
    _named(response, ["query", "case_code"])


def test_the_portal_and_the_sign_in_page_refuse_them_too() -> None:
    response = Client().post("/staff/login/", {"username": "kim\x00", "password": "x"})
    assert response.status_code == 422
    response = Client().get("/?next=%00")
    assert response.status_code == 422


def test_ordinary_text_with_tabs_and_new_lines_passes(world: dict[str, Any]) -> None:
    from anshim.cases.models import Referral

    response = _api(world["client"], f"/api/v1/cases/{world['case'].code}/referrals",
                    {"target": "hospital", "organization": "한빛\t병원\r\n(서울) é ✓"})
    assert response.status_code == 201, response.content[:300]
    assert Referral.objects.get().organization == "한빛\t병원\r\n(서울) é ✓"


def test_a_broken_json_body_is_left_to_the_api(world: dict[str, Any]) -> None:
    response = world["client"].generic(
        "POST", f"/api/v1/cases/{world['case'].code}/referrals", b'{"organization": "\\u00',
        content_type="application/json")
    assert 400 <= response.status_code < 500


def test_dates_stay_dates(world: dict[str, Any]) -> None:
    """A timestamp with a NUL is refused by the same rule, before the schema parses it."""
    response = _api(world["client"], f"/api/v1/cases/{world['case'].code}/contacts",
                    {"channel": "phone", "started_at": (timezone.now() - dt.timedelta(hours=1))
                     .isoformat() + "\x00"})
    _named(response, ["body", "started_at"])
