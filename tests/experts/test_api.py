"""The experts JSON API: session + TOTP auth, policy, JSON 4xx errors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from anshim.experts import services
from anshim.experts.models import Appointment, Assignment

from .conftest import PLACE, next_weekday

pytestmark = pytest.mark.django_db
API = "/api/v1/experts"


def post(c: Client, url: str, data: Any, method: str = "post") -> Any:
    return getattr(c, method)(url, data=json.dumps(data), content_type="application/json")


def test_needs_a_signed_in_verified_session(client: Client, make_user: Any) -> None:
    assert client.get(f"{API}/").status_code == 401
    client.force_login(make_user("counselor"))  # no TOTP step
    assert client.get(f"{API}/").status_code == 401


def test_list_and_suggest(login_client: Any, counselor: Any, make_expert: Any,
                          make_case: Any) -> None:
    c = login_client(counselor)
    e1 = make_expert(languages=("ko", "ja"))
    make_expert(languages=("ko",))
    r = c.get(f"{API}/")
    assert r.status_code == 200 and {x["id"] for x in r.json()} >= {e1.pk}
    case = make_case()
    r = c.get(f"{API}/suggestions", {"case_code": case.code, "need": "trauma",
                                     "language": "ja"})
    assert r.status_code == 200
    assert r.json()[0]["expert_id"] == e1.pk and r.json()[0]["reasons"]
    assert c.get(f"{API}/suggestions", {"case_code": case.code, "need": "x"}).status_code == 422
    assert c.get(f"{API}/suggestions", {"case_code": "NOPE", "need": "trauma"}).status_code == 404


def test_assign_book_cancel(login_client: Any, counselor: Any, make_expert: Any,
                            make_case: Any) -> None:
    c = login_client(counselor)
    expert = make_expert()
    case = make_case()
    r = post(c, f"{API}/assignments", {"case_code": case.code, "expert_id": expert.pk,
                                       "need": "trauma", "brief": "b"})
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    r = post(c, f"{API}/assignments", {"case_code": case.code, "expert_id": expert.pk,
                                       "need": "trauma"})
    assert r.status_code == 409 and r.json()["error"] == "already_assigned"
    r = post(c, f"{API}/assignments", {"case_code": case.code, "expert_id": 999999,
                                       "need": "trauma"})
    assert r.status_code == 404
    start = next_weekday(0, 10)
    r = post(c, f"{API}/assignments/{pk}/appointments",
             {"starts_at": start.isoformat(), "duration_minutes": 45, "mode": "video"})
    assert r.status_code == 201, r.content
    appt_id = r.json()["id"]
    r = post(c, f"{API}/assignments/{pk}/appointments",
             {"starts_at": (start + dt.timedelta(minutes=30)).isoformat(), "location": PLACE})
    assert r.status_code == 409 and r.json()["error"] == "double_booking"
    assert r.json()["detail"]
    r = post(c, f"{API}/assignments/{pk}/appointments",
             {"starts_at": (start + dt.timedelta(minutes=7)).isoformat()})
    assert r.status_code == 422 and r.json()["error"] == "not_aligned"
    r = post(c, f"{API}/assignments/{pk}/appointments", {"starts_at": "yesterday"})
    assert r.status_code == 422
    r = c.get(f"{API}/assignments/{pk}/appointments")
    assert [a["id"] for a in r.json()] == [appt_id]
    r = post(c, f"{API}/appointments/{appt_id}/cancel", {"reason": "r"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = post(c, f"{API}/appointments/{appt_id}/cancel", {})
    assert r.status_code == 409
    r = post(c, f"{API}/assignments/{pk}/end", {})
    assert r.status_code == 200 and r.json()["status"] == "ended"
    assert c.get(f"{API}/assignments", {"case_code": case.code}).json()[0]["id"] == pk


def test_expert_api_scope(login_client: Any, assignment: Any, make_case: Any,
                          make_expert: Any) -> None:
    c = login_client(assignment.expert.user)
    assert c.get(f"{API}/").status_code == 403
    r = c.get(f"{API}/assignments")
    assert r.status_code == 200 and [a["id"] for a in r.json()] == [assignment.pk]
    assert r.json()[0]["brief"] == assignment.brief
    assert "person" not in json.dumps(r.json()) and "SECRET" not in json.dumps(r.json())
    foreign = Assignment.objects.create(case=make_case(), expert=make_expert(),
                                        specialty="trauma")
    assert c.get(f"{API}/assignments/{foreign.pk}/appointments").status_code == 403
    assert c.get(f"{API}/assignments", {"case_code": foreign.case.code}).status_code == 403
    r = post(c, f"{API}/assignments", {"case_code": assignment.case.code,
                                       "expert_id": assignment.expert_id, "need": "family"})
    assert r.status_code == 403


def test_session_log_api(login_client: Any, assignment: Any, counselor: Any,
                         make_user: Any) -> None:
    start = timezone.now() - dt.timedelta(hours=2)
    appt = Appointment.objects.create(assignment=assignment, expert=assignment.expert,
                                      starts_at=start, ends_at=start + dt.timedelta(hours=1))
    assignment.case.lead_counselor = counselor
    assignment.case.save()
    staff = login_client(counselor)
    url = f"{API}/appointments/{appt.pk}/log"
    assert post(staff, url, {"summary": "x"}, "put").status_code == 403
    assert staff.get(url).status_code == 404
    expert = login_client(assignment.expert.user, Client())
    assert post(expert, url, {"summary": ""}, "put").status_code == 422
    r = post(expert, url, {"summary": "Good session", "follow_up_needed": True}, "put")
    assert r.status_code == 200 and r.json()["follow_up_needed"] is True
    assert staff.get(url).json()["summary"] == "Good session"
    assert expert.get(url).status_code == 200
    # A counselor not assigned to the case does not read session logs.
    other = login_client(make_user("counselor"), Client())
    assert other.get(url).status_code == 403


def test_book_outside_availability_is_422(login_client: Any, assignment: Any,
                                          counselor: Any) -> None:
    c = login_client(counselor)
    r = post(c, f"{API}/assignments/{assignment.pk}/appointments",
             {"starts_at": next_weekday(1, 10).isoformat(), "location": PLACE})
    assert r.status_code == 422 and r.json()["error"] == "outside_availability"
    # In person (the default) without a meeting place: a typed error, nothing booked.
    r = post(c, f"{API}/assignments/{assignment.pk}/appointments",
             {"starts_at": next_weekday(0, 10).isoformat()})
    assert r.status_code == 422 and r.json()["error"] == "location_required"
    assert not assignment.appointments.exists()
    services.end_assignment(counselor, assignment)
    r = post(c, f"{API}/assignments/{assignment.pk}/appointments",
             {"starts_at": next_weekday(0, 10).isoformat()})
    assert r.status_code == 409
