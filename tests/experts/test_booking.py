"""Booking rules and the database-level guarantee against double booking."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from anshim.experts import services
from anshim.experts.models import (
    Appointment,
    AppointmentSlot,
    AppointmentStatus,
    Assignment,
)

from .conftest import book, next_weekday

pytestmark = pytest.mark.django_db
MONDAY_10 = lambda: next_weekday(0, 10)  # noqa: E731 - inside the Mon 9-17 window


def test_booking_creates_one_slot_per_quarter_hour(assignment: Any, counselor: Any) -> None:
    start = MONDAY_10()
    appt = book(counselor, assignment, start, duration_minutes=60,
                                     mode="video")
    assert appt.ends_at - appt.starts_at == dt.timedelta(hours=1)
    assert appt.mode == "video" and appt.status == AppointmentStatus.SCHEDULED
    assert sorted(appt.slots.values_list("slot_start", flat=True)) == [
        start + dt.timedelta(minutes=15 * i) for i in range(4)]


def test_direct_orm_insert_of_an_overlapping_slot_is_refused(
    assignment: Any, counselor: Any,
) -> None:
    """The guarantee is the database's: bypassing the service still cannot double-book."""
    appt = book(counselor, assignment, MONDAY_10())
    other = Appointment.objects.create(
        assignment=assignment, expert=assignment.expert, starts_at=appt.starts_at,
        ends_at=appt.ends_at)
    with pytest.raises(IntegrityError), transaction.atomic():
        AppointmentSlot.objects.create(expert=assignment.expert, appointment=other,
                                       slot_start=appt.starts_at + dt.timedelta(minutes=30))


def test_overlapping_booking_raises_double_booking(
    assignment: Any, counselor: Any, make_case: Any,
) -> None:
    book(counselor, assignment, MONDAY_10(), duration_minutes=60)
    # Another case of the same expert, overlapping by 15 minutes.
    second = Assignment.objects.create(case=make_case(), expert=assignment.expert,
                                       specialty="trauma")
    with pytest.raises(services.DoubleBooking) as exc:
        book(counselor, second, MONDAY_10() + dt.timedelta(minutes=45))
    assert exc.value.code == "double_booking"
    with translation.override("en"):
        assert "already has an appointment" in exc.value.text
    with translation.override("ko"):
        assert "이미" in exc.value.text
    # Nothing of the refused booking remains.
    assert Appointment.objects.count() == 1
    assert AppointmentSlot.objects.count() == 4
    # Back to back is fine.
    book(counselor, second, MONDAY_10() + dt.timedelta(hours=1))


def test_another_expert_may_book_the_same_time(
    assignment: Any, counselor: Any, make_expert: Any,
) -> None:
    book(counselor, assignment, MONDAY_10())
    other = Assignment.objects.create(case=assignment.case, expert=make_expert(),
                                      specialty="trauma")
    book(counselor, other, MONDAY_10())
    assert Appointment.objects.count() == 2


@pytest.mark.parametrize(
    ("start", "minutes", "error"),
    [
        (lambda: next_weekday(0, 10, 5), 60, services.NotAligned),  # 10:05
        (lambda: next_weekday(0, 10), 50, services.NotAligned),  # not a multiple of 15
        (lambda: next_weekday(0, 10), 0, services.NotAligned),
        (lambda: next_weekday(0, 10), -15, services.NotAligned),
        (lambda: next_weekday(0, 9), 240, services.NotAligned),  # over 3 hours
        (lambda: next_weekday(0, 8), 60, services.OutsideAvailability),  # before 9
        (lambda: next_weekday(0, 16, 30), 60, services.OutsideAvailability),  # past 17
        (lambda: next_weekday(1, 10), 60, services.OutsideAvailability),  # Tuesday
        (lambda: next_weekday(0, 10, weeks_ahead=-2), 60, services.InThePast),
    ],
)
def test_booking_validation(assignment: Any, counselor: Any, start: Any, minutes: int,
                            error: type[Exception]) -> None:
    with pytest.raises(error):
        book(counselor, assignment, start(), duration_minutes=minutes)
    assert not Appointment.objects.exists()


def test_naive_datetimes_are_refused(assignment: Any, counselor: Any) -> None:
    with pytest.raises(services.NotAligned):
        book(counselor, assignment, timezone.make_naive(MONDAY_10()))


def test_weekly_capacity(assignment: Any, counselor: Any) -> None:
    assignment.expert.weekly_capacity = 2
    assignment.expert.save()
    book(counselor, assignment, next_weekday(0, 9))
    book(counselor, assignment, next_weekday(2, 9))
    with pytest.raises(services.OverCapacity) as exc:
        book(counselor, assignment, next_weekday(0, 13))
    with translation.override("en"):
        assert "2 sessions" in exc.value.text
    # The next week is free again.
    book(counselor, assignment, next_weekday(0, 13, weeks_ahead=2))


def test_cancel_frees_the_slots(assignment: Any, counselor: Any) -> None:
    appt = book(counselor, assignment, MONDAY_10())
    services.cancel_appointment(counselor, appt, reason="Victim asked to postpone")
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.CANCELLED and not appt.slots.exists()
    with pytest.raises(services.InvalidStatusChange):
        services.cancel_appointment(counselor, appt)
    book(counselor, assignment, MONDAY_10())  # the time is free again


def test_reschedule_moves_the_slots(assignment: Any, counselor: Any, make_case: Any) -> None:
    appt = book(counselor, assignment, MONDAY_10())
    appt.reminder_sent_at = timezone.now()
    appt.save()
    services.reschedule_appointment(counselor, appt, next_weekday(2, 14), duration_minutes=30)
    appt.refresh_from_db()
    assert appt.starts_at == next_weekday(2, 14) and appt.reminder_sent_at is None
    assert appt.slots.count() == 2
    # The old time is free; moving onto another booking is refused and keeps the old time.
    second = Assignment.objects.create(case=make_case(), expert=assignment.expert,
                                       specialty="trauma")
    blocker = book(counselor, second, MONDAY_10())
    with pytest.raises(services.DoubleBooking):
        services.reschedule_appointment(counselor, appt, blocker.starts_at)
    appt.refresh_from_db()
    assert appt.starts_at == next_weekday(2, 14) and appt.slots.count() == 2


def test_reschedule_within_its_own_time(assignment: Any, counselor: Any) -> None:
    appt = book(counselor, assignment, MONDAY_10(), duration_minutes=60)
    services.reschedule_appointment(counselor, appt, MONDAY_10() + dt.timedelta(minutes=30))
    assert appt.slots.count() == 4


def test_outcome_only_after_the_start(assignment: Any, counselor: Any) -> None:
    appt = book(counselor, assignment, MONDAY_10())
    with pytest.raises(services.NotStartedYet):
        services.set_outcome(counselor, appt, "done")
    Appointment.objects.filter(pk=appt.pk).update(
        starts_at=timezone.now() - dt.timedelta(hours=2),
        ends_at=timezone.now() - dt.timedelta(hours=1))
    appt.refresh_from_db()
    with pytest.raises(services.InvalidStatusChange):
        services.set_outcome(counselor, appt, "cancelled")
    services.set_outcome(counselor, appt, "no_show")
    assert appt.status == AppointmentStatus.NO_SHOW
    with pytest.raises(services.InvalidStatusChange):
        services.set_outcome(counselor, appt, "done")


def test_appointments_need_the_policy(assignment: Any, make_user: Any) -> None:
    from django.core.exceptions import PermissionDenied

    for role in ("erasure", "prevention", "admin"):
        with pytest.raises(PermissionDenied):
            book(make_user(role), assignment, MONDAY_10())
    # The assigned expert may arrange their own sessions.
    book(assignment.expert.user, assignment, MONDAY_10())
