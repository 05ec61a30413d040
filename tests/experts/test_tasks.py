"""Background tasks: assignment notice, reminders (immediate backend and the DB worker)."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from anshim.experts import services, tasks
from anshim.experts.models import Appointment, AppointmentStatus

from .conftest import DATABASE, book, next_weekday

pytestmark = pytest.mark.django_db


def _soon(assignment: Any, hours: float, **extra: Any) -> Appointment:
    """An appointment `hours` from now, created directly (booking refuses odd times)."""
    start = timezone.now() + dt.timedelta(hours=hours)
    return Appointment.objects.create(
        assignment=assignment, expert=assignment.expert, starts_at=start,
        ends_at=start + dt.timedelta(hours=1), **extra)


def test_reminder_is_sent_once_and_has_no_personal_data(
    assignment: Any, immediate_tasks: None, mailoutbox: list,
) -> None:
    appt = _soon(assignment, 3, mode="video")
    assert tasks.send_appointment_reminder.enqueue(appt.pk).return_value == "sent"
    appt.refresh_from_db()
    assert appt.reminder_sent_at is not None
    [mail] = mailoutbox
    assert mail.to == [assignment.expert.user.email]
    assert assignment.case.code in mail.subject and assignment.case.code in mail.body
    for secret in ("홍길동", "010-0000-0000", "victim@example.invalid", "SECRET-SUMMARY",
                   assignment.brief):
        assert secret not in mail.body and secret not in mail.subject
    # Idempotent: a second run sends nothing.
    assert tasks.send_appointment_reminder.enqueue(appt.pk).return_value == "skipped"
    assert len(mailoutbox) == 1


def test_reminder_skips_cancelled_and_missing(
    assignment: Any, immediate_tasks: None, mailoutbox: list,
) -> None:
    appt = _soon(assignment, 3, status=AppointmentStatus.CANCELLED)
    assert tasks.send_appointment_reminder.enqueue(appt.pk).return_value == "skipped"
    assert tasks.send_appointment_reminder.enqueue(999999).return_value == "skipped"
    assert mailoutbox == []
    appt.refresh_from_db()
    assert appt.reminder_sent_at is None


def test_reminder_language_follows_the_expert(
    assignment: Any, immediate_tasks: None, mailoutbox: list,
) -> None:
    user = assignment.expert.user
    user.preferred_language = "en"
    user.save()
    tasks.send_appointment_reminder.enqueue(_soon(assignment, 2).pk)
    assert "Reminder" in mailoutbox[0].body


def test_schedule_due_reminders_immediate(
    assignment: Any, immediate_tasks: None, mailoutbox: list,
) -> None:
    due = _soon(assignment, 5)
    _soon(assignment, 30)  # too far ahead
    _soon(assignment, 2, status=AppointmentStatus.CANCELLED)
    _soon(assignment, 4, reminder_sent_at=timezone.now())  # already reminded
    _soon(assignment, -1)  # already started
    assert tasks.schedule_due_reminders.enqueue().return_value == 1
    assert len(mailoutbox) == 1
    due.refresh_from_db()
    assert due.reminder_sent_at is not None
    assert tasks.schedule_due_reminders.enqueue().return_value == 0


# The worker closes old connections between tasks, as in production: that needs real
# commits (a test transaction would lose its connection on PostgreSQL).
@pytest.mark.django_db(transaction=True)
def test_reminders_through_the_database_worker(
    assignment: Any, settings: Any, mailoutbox: list, committed_audit: None,
) -> None:
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = DATABASE
    due = [_soon(assignment, 1), _soon(assignment, 20)]
    out = StringIO()
    call_command("reminders", stdout=out)
    assert "2" in out.getvalue()
    assert mailoutbox == []  # only enqueued so far
    assert DBTaskResult.objects.count() == 2
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "*",
                 "--interval", "0", "--no-reload", verbosity=0)
    assert len(mailoutbox) == 2
    assert all(Appointment.objects.get(pk=a.pk).reminder_sent_at for a in due)
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    # A second cron run finds nothing to do.
    call_command("reminders", "--quiet", stdout=out)
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    assert len(mailoutbox) == 2


@pytest.mark.django_db(transaction=True)
def test_assignment_notice_through_the_database_worker(
    make_case: Any, make_expert: Any, counselor: Any, settings: Any, mailoutbox: list,
    committed_audit: None,
) -> None:
    settings.TASKS = DATABASE
    expert = make_expert(email="therapist@ex.invalid")
    services.assign_expert(counselor, make_case(), expert, "trauma", "brief")
    assert mailoutbox == []
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    [mail] = mailoutbox
    assert mail.to == ["therapist@ex.invalid"]


def test_no_email_address_is_not_an_error(
    assignment: Any, immediate_tasks: None, mailoutbox: list,
) -> None:
    user = assignment.expert.user
    user.email = ""
    user.save()
    assert tasks.send_assignment_notification.enqueue(assignment.pk).return_value == "no_email"
    assert tasks.send_assignment_notification.enqueue(999999).return_value == "missing"
    assert mailoutbox == []


def test_booking_then_reminder_end_to_end(
    assignment: Any, counselor: Any, immediate_tasks: None, mailoutbox: list,
) -> None:
    appt = book(counselor, assignment, next_weekday(0, 10))
    # A week ahead: not due yet.
    assert tasks.schedule_due_reminders.enqueue().return_value == 0
    assert appt.reminder_sent_at is None and mailoutbox == []
