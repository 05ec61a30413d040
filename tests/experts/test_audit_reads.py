"""Reads of case data and refusals are audited; staff-typed reasons are encrypted and stay out
of the audit log (issue 17 items 2, 3 and 17)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from anshim.experts import services
from anshim.experts.models import Appointment, Assignment
from anshim.security.models import AuditEntry

from .conftest import book, next_weekday

pytestmark = pytest.mark.django_db
API = "/api/v1/experts"
SRC = Path(__file__).resolve().parents[2] / "src" / "anshim"


def test_listing_an_assignments_appointments_is_audited(login_client: Any, counselor: Any,
                                                        assignment: Assignment) -> None:
    book(counselor, assignment, next_weekday(0, 10))
    c = login_client(assignment.expert.user)
    before = AuditEntry.objects.count()
    r = c.get(f"{API}/assignments/{assignment.pk}/appointments")
    assert r.status_code == 200 and len(r.json()) == 1
    entry = AuditEntry.objects.order_by("-seq").first()
    assert AuditEntry.objects.count() == before + 1
    assert entry.action == "appointment.list" and entry.case_id == assignment.case_id
    assert entry.actor_id == assignment.expert.user_id


def test_the_experts_own_page_audits_each_case_it_shows(login_client: Any, counselor: Any,
                                                        assignment: Assignment) -> None:
    book(counselor, assignment, next_weekday(0, 10))
    c = login_client(assignment.expert.user)
    r = c.get("/staff/experts/my/")
    assert r.status_code == 200 and assignment.case.code in r.content.decode()
    rows = AuditEntry.objects.filter(action="assignment.list",
                                     actor_id=assignment.expert.user_id)
    assert [e.case_id for e in rows] == [assignment.case_id]


def test_refusals_are_audited_on_pages_and_the_api(login_client: Any, make_user: Any,
                                                   assignment: Assignment) -> None:
    outsider = make_user("prevention")
    c = login_client(outsider)
    assert c.get(f"/staff/experts/assignments/{assignment.pk}/").status_code == 403
    page = AuditEntry.objects.get(actor_id=outsider.pk, action="denied.view_assignment")
    assert page.case_id == assignment.case_id
    assert c.get(f"{API}/assignments/{assignment.pk}/appointments").status_code == 403
    assert AuditEntry.objects.filter(actor_id=outsider.pk,
                                     action="denied.view_assignment").count() == 2
    assert c.get(f"/staff/cases/{assignment.case.code}/").status_code == 403
    case_refusal = AuditEntry.objects.get(actor_id=outsider.pk, action="denied.view_case")
    assert case_refusal.case_code == assignment.case.code
    assert c.get(f"/api/v1/cases/{assignment.case.code}").status_code == 403
    assert AuditEntry.objects.filter(actor_id=outsider.pk, action="denied.view_case").count() == 2


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def test_end_and_cancel_reasons_are_encrypted_and_not_audited(counselor: Any,
                                                              assignment: Assignment) -> None:
    appt = book(counselor, assignment, next_weekday(0, 10))
    services.cancel_appointment(counselor, appt, reason="Mother 김영희 called: cannot come")
    services.end_assignment(counselor, assignment, reason="Expert 박 conflicts with family")
    assert Appointment.objects.get(pk=appt.pk).cancel_reason.startswith("Mother 김영희")
    assert Assignment.objects.get(pk=assignment.pk).end_reason.startswith("Expert 박")
    assert _raw("experts_appointment", "cancel_reason", appt.pk).startswith("enc1:")
    assert _raw("experts_assignment", "end_reason", assignment.pk).startswith("enc1:")
    for entry in AuditEntry.objects.all():
        assert "김영희" not in entry.reason and "박" not in entry.reason
    assert {"appointment.cancel", "expert.unassign"} <= set(
        AuditEntry.objects.values_list("action", flat=True))


def test_the_api_stores_the_reasons_encrypted_too(login_client: Any, counselor: Any,
                                                  assignment: Assignment) -> None:
    import json

    appt = book(counselor, assignment, next_weekday(0, 10))
    c = login_client(counselor)
    r = c.post(f"{API}/appointments/{appt.pk}/cancel", json.dumps({"reason": "family 이름"}),
               content_type="application/json")
    assert r.status_code == 200
    assert Appointment.objects.get(pk=appt.pk).cancel_reason == "family 이름"
    assert not AuditEntry.objects.filter(reason__contains="이름").exists()


@pytest.mark.parametrize("path", [
    "experts/services.py", "portal/services.py", "cases/views.py", "cases/services.py",
    "experts/views.py", "experts/api.py", "portal/views.py", "cases/api.py",
])
def test_no_fail_open_import_scaffolding(path: str) -> None:
    """A missing module is a crash at start, never a silent gap in the audit log or a blank
    progress count."""
    text = (SRC / path).read_text()
    assert not re.search(r"except\s*\(?\s*(ImportError|ModuleNotFoundError)", text), path


def test_staff_see_the_reasons_on_the_assignment_page(login_client: Any, counselor: Any,
                                                      assignment: Assignment) -> None:
    appt = book(counselor, assignment, next_weekday(0, 10))
    c = login_client(counselor)
    r = c.post(f"/staff/experts/appointments/{appt.pk}/cancel/", {"reason": "아파서 못 옴"})
    assert r.status_code == 302
    c.post(f"/staff/experts/assignments/{assignment.pk}/end/", {"reason": "가족 요청"})
    page = c.get(f"/staff/experts/assignments/{assignment.pk}/").content.decode()
    assert "아파서 못 옴" in page and "가족 요청" in page
