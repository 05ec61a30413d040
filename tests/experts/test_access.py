"""Need to know: an expert sees only their assigned cases, the brief, appointments, their logs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from anshim.experts import services
from anshim.experts.models import Appointment, AppointmentStatus, Assignment, SessionLog
from anshim.experts.panels import case_panel_context

from .conftest import book, next_weekday

pytestmark = pytest.mark.django_db


def _past(assignment: Any) -> Appointment:
    start = timezone.now() - dt.timedelta(hours=2)
    return Appointment.objects.create(assignment=assignment, expert=assignment.expert,
                                      starts_at=start, ends_at=start + dt.timedelta(hours=1))


def test_session_log_only_by_the_assigned_expert(
    assignment: Any, counselor: Any, supervisor: Any, make_expert: Any,
) -> None:
    appt = _past(assignment)
    for actor in (counselor, supervisor, make_expert().user):
        with pytest.raises(PermissionDenied):
            services.write_session_log(actor, appt, "text")
    # Another expert assigned to the same case for another need cannot write this one either.
    other = make_expert(specialties=("family",))
    Assignment.objects.create(case=assignment.case, expert=other, specialty="family")
    with pytest.raises(PermissionDenied):
        services.write_session_log(other.user, appt, "text")
    log = services.write_session_log(assignment.expert.user, appt, "  Calm session.  ",
                                     follow_up_needed=True)
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.DONE
    assert log.summary == "Calm session." and log.follow_up_needed
    # Encrypted at rest.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT summary FROM experts_sessionlog WHERE id = %s", [log.pk])
        raw = cursor.fetchone()[0]
    assert "Calm session" not in raw and raw.startswith("enc1:")
    # Correcting the log keeps one row.
    services.write_session_log(assignment.expert.user, appt, "Corrected.")
    assert SessionLog.objects.get().summary == "Corrected."


def test_session_log_rules(assignment: Any, counselor: Any) -> None:
    user = assignment.expert.user
    future = book(counselor, assignment, next_weekday(0, 10))
    with pytest.raises(services.NotStartedYet):
        services.write_session_log(user, future, "text")
    appt = _past(assignment)
    with pytest.raises(services.ExpertsError):
        services.write_session_log(user, appt, "   ")
    appt.status = AppointmentStatus.CANCELLED
    appt.save()
    with pytest.raises(services.InvalidStatusChange):
        services.write_session_log(user, appt, "text")
    # Once the assignment has ended, the expert can no longer write.
    ok = _past(assignment)
    services.end_assignment(counselor, assignment)
    with pytest.raises(PermissionDenied):
        services.write_session_log(user, ok, "text")


def test_panel_for_the_expert_shows_only_their_assignment(
    assignment: Any, make_expert: Any, counselor: Any,
) -> None:
    other = make_expert(specialties=("family",))
    services.assign_expert(counselor, assignment.case, other, "family", "Other brief")
    panel = case_panel_context(assignment.expert.user, assignment.case)["experts_panel"]
    assert [r.assignment.pk for r in panel["assignments"]] == [assignment.pk]
    assert panel["assignments"][0].show_brief
    assert not panel["can_assign"] and panel["assign_url"] == ""
    staff = case_panel_context(counselor, assignment.case)["experts_panel"]
    assert len(staff["assignments"]) == 2 and staff["can_assign"]
    # An unrelated expert gets nothing.
    stranger = make_expert()
    assert case_panel_context(stranger.user, assignment.case)["experts_panel"]["assignments"] == []
    assert not case_panel_context(stranger.user, assignment.case)["experts_panel"]["visible"]


def test_panel_shows_logs_per_policy(assignment: Any, counselor: Any, make_user: Any) -> None:
    appt = _past(assignment)
    services.write_session_log(assignment.expert.user, appt, "Log text")
    assignment.case.lead_counselor = counselor
    assignment.case.save()
    for user, sees in ((counselor, True), (assignment.expert.user, True),
                       (make_user("supervisor"), True),
                       (make_user("counselor"), False),  # not assigned to the case
                       (make_user("erasure"), False), (make_user("prevention"), False)):
        rows = case_panel_context(user, assignment.case)["experts_panel"]["assignments"]
        logs = [ar.log for r in rows for ar in r.appointments if ar.log]
        assert bool(logs) is sees, user.role
