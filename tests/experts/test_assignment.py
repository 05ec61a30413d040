"""Assignment: policy, the Assignment row, audit, timeline, in-app and e-mail notice."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from anshim.cases.models import Notification, TimelineEvent
from anshim.experts import services
from anshim.experts.models import (
    Appointment,
    AppointmentStatus,
    Assignment,
    AssignmentStatus,
)
from anshim.experts.ranking import suggest_experts

from .conftest import book, next_weekday

pytestmark = pytest.mark.django_db


def test_assign_creates_assignment_and_notifies(
    make_case: Any, make_expert: Any, counselor: Any, immediate_tasks: None,
    mailoutbox: list, django_capture_on_commit_callbacks: Any,
) -> None:
    case = make_case()
    expert = make_expert(email="lawyer@ex.invalid", specialties=("trauma",))
    with django_capture_on_commit_callbacks(execute=True):
        a = services.assign_expert(counselor, case, expert, "trauma", "Needs trauma therapy.")
    a.refresh_from_db()
    assert a.status == AssignmentStatus.ACTIVE
    assert a.brief == "Needs trauma therapy."
    assert a.assigned_by == counselor
    note = Notification.objects.get(recipient=expert.user)
    assert case.code in note.message and note.link == f"/staff/experts/assignments/{a.pk}/"
    assert TimelineEvent.objects.filter(case=case, kind="expert.assigned").exists()
    [mail] = mailoutbox
    assert mail.to == ["lawyer@ex.invalid"]
    assert case.code in mail.subject
    # No personal data, no brief in an e-mail.
    for secret in ("홍길동", "010-0000-0000", "SECRET-SUMMARY", "Needs trauma therapy"):
        assert secret not in mail.body and secret not in mail.subject


def test_assign_is_audited(make_case: Any, make_expert: Any, counselor: Any) -> None:
    from anshim.security import audit
    from anshim.security.models import AuditEntry

    case = make_case()
    a = services.assign_expert(counselor, case, make_expert(), "trauma")
    assert AuditEntry.objects.filter(action="expert.assign", target_pk=str(a.pk)).exists()
    assert audit.verify_chain().ok


def test_assign_needs_the_policy(make_case: Any, make_expert: Any, make_user: Any) -> None:
    case = make_case()
    expert = make_expert()
    for role in ("erasure", "prevention", "expert", "admin"):
        with pytest.raises(PermissionDenied):
            services.assign_expert(make_user(role), case, expert, "trauma")
    assert not Assignment.objects.exists()


def test_assign_refuses_wrong_specialty_inactive_and_duplicates(
    make_case: Any, make_expert: Any, counselor: Any,
) -> None:
    case = make_case()
    with pytest.raises(services.SpecialtyMismatch):
        services.assign_expert(counselor, case, make_expert(specialties=("family",)), "trauma")
    with pytest.raises(services.ExpertInactive):
        services.assign_expert(counselor, case, make_expert(active=False), "trauma")
    expert = make_expert()
    services.assign_expert(counselor, case, expert, "trauma")
    with pytest.raises(services.AlreadyAssigned) as exc:
        services.assign_expert(counselor, case, expert, "trauma")
    assert exc.value.code == "already_assigned"
    assert Assignment.objects.filter(case=case, expert=expert).count() == 1


def test_end_assignment_cancels_future_appointments(
    assignment: Any, counselor: Any, make_user: Any,
) -> None:
    appt = book(counselor, assignment, next_weekday(0, 10))
    services.end_assignment(counselor, assignment, reason="Therapy moved elsewhere")
    assignment.refresh_from_db()
    appt.refresh_from_db()
    assert assignment.status == AssignmentStatus.ENDED and assignment.ended_at
    assert appt.status == AppointmentStatus.CANCELLED
    assert not appt.slots.exists()
    with pytest.raises(services.AssignmentNotActive):
        services.end_assignment(counselor, assignment)
    with pytest.raises(services.AssignmentNotActive):
        book(counselor, assignment, next_weekday(0, 11))
    # After the end, the expert no longer has access to the case.
    from anshim.security.policy import Action, can

    assert not can(assignment.expert.user, Action.VIEW_ASSIGNMENT, assignment.case)
    assert Appointment.objects.count() == 1


def test_suggest_experts_from_the_database(
    make_case: Any, make_expert: Any, counselor: Any,
) -> None:
    case = make_case()
    busy = make_expert(languages=("ko", "vi"), capacity=2)
    free = make_expert(languages=("ko", "vi"), capacity=4)
    korean_only = make_expert(languages=("ko",))
    make_expert(specialties=("family",), languages=("vi",))
    other = make_case()
    services.assign_expert(counselor, other, busy, "trauma")
    found = suggest_experts(case, "trauma", "vi", None)
    assert [s.expert_id for s in found] == [free.pk, busy.pk, korean_only.pk]
    # An expert already holding the need on this case is not suggested again.
    services.assign_expert(counselor, case, free, "trauma")
    assert free.pk not in [s.expert_id for s in suggest_experts(case, "trauma", "vi", None)]
    assert len(suggest_experts(case, "trauma", "vi", None, limit=1)) == 1


def test_booked_slots_reduce_availability(assignment: Any, counselor: Any) -> None:
    from anshim.cases.models import Case

    # The expert already holds the need on this case: look from another case.
    other = Case.objects.create(code="EX-OTHER", person=assignment.case.person, channel="web")
    before = suggest_experts(other, "trauma", "ko", None)[0].free_slots
    # 7 to 13 days ahead: inside the 14-day window.
    book(counselor, assignment, next_weekday(0, 10), duration_minutes=60)
    assert suggest_experts(other, "trauma", "ko", None)[0].free_slots == before - 4
