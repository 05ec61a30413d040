"""Issue 19 item 8: an expert records a session after its time; the log link appears only
when saving can succeed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from anshim.experts import services
from anshim.experts.models import Appointment, AppointmentStatus, SessionLog
from anshim.security.models import AuditEntry

from .conftest import book, next_weekday

pytestmark = pytest.mark.django_db


def _quarter_hours_ago(hours: int) -> dt.datetime:
    now = timezone.localtime()
    return now.replace(minute=now.minute - now.minute % 15, second=0,
                       microsecond=0) - dt.timedelta(hours=hours)


def _form(start: dt.datetime, **extra: str) -> dict[str, str]:
    local = timezone.localtime(start)
    return {"date": local.date().isoformat(), "time": local.strftime("%H:%M"),
            "duration": "60", "mode": "in_person", "summary": "Talked through the next steps.",
            **extra}


def test_the_expert_records_a_held_session_from_the_assignment_page(
        login_client: Any, assignment: Any, counselor: Any) -> None:
    c = login_client(assignment.expert.user)
    page = c.get(f"/staff/experts/assignments/{assignment.pk}/", HTTP_ACCEPT_LANGUAGE="ko")
    url = f"/staff/experts/assignments/{assignment.pk}/held/"
    assert url in page.content.decode() and "이미 진행한 상담 기록하기" in page.content.decode()
    assert c.get(url).status_code == 200
    start = _quarter_hours_ago(3)
    with CaptureQueriesContext(connection) as queries:
        response = c.post(url, _form(start, follow_up_needed="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert len(queries) <= 40
    appt = Appointment.objects.get()
    assert appt.status == AppointmentStatus.DONE and appt.starts_at == start
    log = SessionLog.objects.get()
    assert log.appointment == appt and log.follow_up_needed
    assert log.summary == "Talked through the next steps."
    assert {"appointment.recorded", "session_log.create"} <= set(
        AuditEntry.objects.values_list("action", flat=True))
    # The same hour again: the expert cannot have held two sessions at once.
    again = c.post(url, _form(start))
    assert again.status_code == 400 and SessionLog.objects.count() == 1
    # The counselor sees the log; the counselor may not record for the expert.
    assignment.case.lead_counselor = counselor
    assignment.case.save()
    staff = login_client(counselor, Client())
    assert "Talked through the next steps." in staff.get(
        f"/staff/experts/assignments/{assignment.pk}/").content.decode()
    assert url not in staff.get(f"/staff/experts/assignments/{assignment.pk}/").content.decode()
    assert staff.post(url, _form(_quarter_hours_ago(6))).status_code == 403
    assert SessionLog.objects.count() == 1


def test_a_session_still_to_come_or_running_is_refused(assignment: Any) -> None:
    user = assignment.expert.user
    with pytest.raises(services.NotEndedYet):
        services.record_held_session(user, assignment, _quarter_hours_ago(0), "x",
                                     duration_minutes=60)
    with pytest.raises(services.NotAligned):
        services.record_held_session(user, assignment,
                                     _quarter_hours_ago(3) + dt.timedelta(minutes=7), "x")
    with pytest.raises(services.ExpertsError):
        services.record_held_session(user, assignment, _quarter_hours_ago(3), "   ")
    assert not Appointment.objects.exists()


def test_only_the_assigned_expert_records_and_only_while_assigned(
        assignment: Any, counselor: Any, make_expert: Any) -> None:
    for actor in (counselor, make_expert().user):
        with pytest.raises(PermissionDenied):
            services.record_held_session(actor, assignment, _quarter_hours_ago(3), "x")
    services.end_assignment(counselor, assignment)
    with pytest.raises((PermissionDenied, services.AssignmentNotActive)):
        services.record_held_session(assignment.expert.user, assignment,
                                     _quarter_hours_ago(3), "x")
    assert not Appointment.objects.exists()


def test_the_log_link_appears_only_when_saving_can_succeed(
        login_client: Any, assignment: Any, counselor: Any) -> None:
    future = book(counselor, assignment, next_weekday(0, 10))
    start = timezone.now() - dt.timedelta(hours=2)
    past = Appointment.objects.create(assignment=assignment, expert=assignment.expert,
                                      starts_at=start, ends_at=start + dt.timedelta(hours=1))
    user = assignment.expert.user
    assert services.can_write_log(user, past) and not services.can_write_log(user, future)
    c = login_client(user)
    body = c.get(f"/staff/experts/assignments/{assignment.pk}/").content.decode()
    assert f"/appointments/{past.pk}/log/" in body
    assert f"/appointments/{future.pk}/log/" not in body
    # The case page's panel offers the same.
    from anshim.experts.panels import case_panel_context

    rows = case_panel_context(user, assignment.case)["experts_panel"]["assignments"]
    offered = {ar.appointment.pk for r in rows for ar in r.appointments if ar.can_write_log}
    assert offered == {past.pk}
    # Typed in anyway: back to the assignment with the reason, never a form that cannot save.
    response = c.get(f"/staff/experts/appointments/{future.pk}/log/", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 302
    follow = c.get(response["Location"], HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "상담 기록은 상담이 시작된 뒤에 쓸 수 있으며" in follow
