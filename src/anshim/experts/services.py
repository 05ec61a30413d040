"""Expert assignments, appointments and session logs: every write goes through here.

Each function checks the access policy first, validates, writes in one transaction, records
an audit entry, and adds a case timeline event (whose message never holds personal data).
Notifications and e-mails go out through background tasks once the transaction has committed.

No double booking: an appointment occupies one `AppointmentSlot` row per 15-minute slot, and a
unique constraint on (expert, slot_start) makes the database refuse overlapping bookings even
when two requests race; the resulting IntegrityError becomes a typed `DoubleBooking` error.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from anshim.cases.models import Case, Notification
from anshim.cases.services import add_event
from anshim.experts.models import (
    SLOT_MINUTES,
    Appointment,
    AppointmentMode,
    AppointmentSlot,
    AppointmentStatus,
    Assignment,
    AssignmentStatus,
    Expert,
    NoticeKind,
    SessionLog,
    Specialty,
)
from anshim.experts.notices import queue_notices
from anshim.security.audit import record
from anshim.security.policy import Action, can, require

SLOT = dt.timedelta(minutes=SLOT_MINUTES)
MAX_APPOINTMENT_MINUTES = 180
MAX_LOCATION_LENGTH = 300
# Statuses that use up a session of the expert's weekly capacity.
COUNTED_STATUSES = (AppointmentStatus.SCHEDULED, AppointmentStatus.DONE, AppointmentStatus.NO_SHOW)


# Timeline messages are English msgids, translated when the timeline is displayed.
OUTCOME_MESSAGES = {
    AppointmentStatus.DONE: gettext_noop("Expert appointment took place"),
    AppointmentStatus.NO_SHOW: gettext_noop("Expert appointment: did not attend"),
}


# --- Errors --------------------------------------------------------------------------------
class ExpertsError(ValidationError):
    """A refused expert operation. A ValidationError so forms show it as a form error; the
    API returns it as 4xx JSON with `code`. The message is translated when rendered."""

    default_message: Any = _("This operation is not possible.")
    default_code = "invalid"
    http_status = 422

    def __init__(self, message: Any = None, *, params: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.default_message, code=self.default_code, params=params)

    @property
    def text(self) -> str:
        """The message in the active language."""
        return str(self.messages[0])


class DoubleBooking(ExpertsError):
    default_message = _(
        "The expert already has an appointment at this time. Choose another time."
    )
    default_code = "double_booking"
    http_status = 409


class OutsideAvailability(ExpertsError):
    default_message = _("The appointment is outside the expert's weekly availability.")
    default_code = "outside_availability"


class NotAligned(ExpertsError):
    default_message = _(
        "Appointments start and end on a quarter hour (:00, :15, :30, :45) and last "
        "15 minutes to 3 hours."
    )
    default_code = "not_aligned"


class InThePast(ExpertsError):
    default_message = _("The appointment time has already passed.")
    default_code = "in_the_past"


class NotEndedYet(ExpertsError):
    default_message = _(
        "A session can be recorded once it has ended. For a session still to come, book an "
        "appointment.")
    default_code = "not_ended"


class OverCapacity(ExpertsError):
    default_message = _(
        "The expert's weekly capacity of %(capacity)d sessions is reached in that week.")
    default_code = "over_capacity"
    http_status = 409


class AssignmentNotActive(ExpertsError):
    default_message = _("The assignment has ended.")
    default_code = "assignment_ended"
    http_status = 409


class AlreadyAssigned(ExpertsError):
    default_message = _("This expert is already assigned to this case for this need.")
    default_code = "already_assigned"
    http_status = 409


class SpecialtyMismatch(ExpertsError):
    default_message = _("This expert does not offer the needed specialty.")
    default_code = "specialty_mismatch"


class ExpertInactive(ExpertsError):
    default_message = _("This expert is not active.")
    default_code = "expert_inactive"
    http_status = 409


class InvalidStatusChange(ExpertsError):
    default_message = _("This appointment can no longer be changed.")
    default_code = "invalid_status"
    http_status = 409


class LocationRequired(ExpertsError):
    default_message = _("Enter where the in-person session takes place.")
    default_code = "location_required"


class NotStartedYet(ExpertsError):
    default_message = _("The appointment has not started yet.")
    default_code = "not_started"
    http_status = 409


# --- Audit and timeline -------------------------------------------------------------------
def audit(*, actor: Any, action: str, target: models.Model | None, case: Case | None,
          request: Any = None) -> None:
    """Record an audit entry (never free text: the event type and the target say it all)."""
    record(actor=actor, action=action, target=target, case=case, request=request)


def _timeline(case: Case, *, actor: Any, kind: str, message: str, data: dict[str, Any]) -> None:
    """Add a case timeline event. `message` must hold no personal data."""
    add_event(case, kind=kind, message=message, actor=actor, data=data)


def _on_commit(func: Any, *args: Any) -> None:
    # Enqueue only once the rows exist for the worker to read.
    transaction.on_commit(lambda: func.enqueue(*args))


# --- Assignments --------------------------------------------------------------------------
def assign_expert(
    actor: Any, case: Case, expert: Expert, need: Specialty | str, brief: str = "", *,
    request: Any = None,
) -> Assignment:
    """Assign `expert` to `case` for `need`; notify the expert (in-app and e-mail)."""
    from anshim.experts import tasks

    require(actor, Action.ASSIGN_EXPERT, case)
    need = Specialty(need)
    if not expert.active:
        raise ExpertInactive()
    if need not in (expert.specialties or []):
        raise SpecialtyMismatch()
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(
                case=case, expert=expert, specialty=need, brief=brief, assigned_by=actor,
            )
            audit(actor=actor, action="expert.assign", target=assignment, case=case,
                  request=request)
            _timeline(case, actor=actor, kind="expert.assigned",
                      message=gettext_noop("Expert assigned"),
                      data={"assignment": assignment.pk, "expert": expert.pk, "need": need.value})
            # Stored as text: written now, in the language the expert reads.
            with translation.override(expert.user.preferred_language or settings.LANGUAGE_CODE):
                message = str(_("New assignment: case %(code)s (%(need)s)") % {
                    "code": case.code, "need": need.label})
            Notification.objects.create(
                recipient=expert.user, message=message[:300],
                link=reverse("experts:assignment", args=[assignment.pk]),
            )
    except IntegrityError:
        raise AlreadyAssigned() from None
    _on_commit(tasks.send_assignment_notification, assignment.pk)
    return assignment


def end_assignment(actor: Any, assignment: Assignment, *, reason: str = "",
                   request: Any = None) -> Assignment:
    """End the assignment and cancel its future appointments (freeing their slots)."""
    require(actor, Action.ASSIGN_EXPERT, assignment.case)
    if assignment.status != AssignmentStatus.ACTIVE:
        raise AssignmentNotActive()
    with transaction.atomic():
        now = timezone.now()
        assignment.status = AssignmentStatus.ENDED
        assignment.ended_at = now
        assignment.end_reason = reason.strip()
        assignment.save(update_fields=["status", "ended_at", "end_reason"])
        future = list(assignment.appointments.filter(
            status=AppointmentStatus.SCHEDULED, starts_at__gt=now))
        for appointment in future:
            _cancel(appointment)
            queue_notices(appointment, NoticeKind.CANCELLED)
        # The reason may name people: it is kept encrypted on the assignment, not in the log.
        audit(actor=actor, action="expert.unassign", target=assignment, case=assignment.case,
              request=request)
        _timeline(assignment.case, actor=actor, kind="expert.unassigned",
                  message=gettext_noop("Expert assignment ended"),
                  data={"assignment": assignment.pk, "cancelled_appointments": len(future)})
    return assignment


# --- Appointments -------------------------------------------------------------------------
LOCK_RETRIES = 25


def retry_when_locked[F: Callable[..., Any]](func: F) -> F:
    """Retry a whole booking when SQLite reports a lock (busy timeout exceeded, or the
    table locks of a shared-cache test database). Only outside an enclosing transaction,
    which a lock error would have spoilt. Overlaps are never retried: they are refused."""

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, LOCK_RETRIES + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if ("locked" not in str(exc) or connection.in_atomic_block
                        or attempt == LOCK_RETRIES):
                    raise
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    return wrapped  # type: ignore[return-value]


def slot_range(starts_at: dt.datetime, ends_at: dt.datetime) -> list[dt.datetime]:
    slots = []
    slot = starts_at
    while slot < ends_at:
        slots.append(slot)
        slot += SLOT
    return slots


def _check_aligned(starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise NotAligned()
    local_start = timezone.localtime(starts_at)
    duration = ends_at - starts_at
    if (
        local_start.minute % SLOT_MINUTES or local_start.second or local_start.microsecond
        or duration <= dt.timedelta(0) or duration % SLOT
        or duration > dt.timedelta(minutes=MAX_APPOINTMENT_MINUTES)
    ):
        raise NotAligned()


def validate_booking(expert: Expert, starts_at: dt.datetime, ends_at: dt.datetime, *,
                     exclude: Appointment | None = None, now: dt.datetime | None = None) -> None:
    """Raise the first rule the booking breaks (in Python; overlaps are the database's job)."""
    now = now or timezone.now()
    _check_aligned(starts_at, ends_at)
    local_start = timezone.localtime(starts_at)
    local_end = timezone.localtime(ends_at)
    if starts_at <= now:
        raise InThePast()
    # The whole appointment lies inside one window of that weekday (never across midnight).
    fits = local_start.date() == local_end.date() and any(
        w.start_time <= local_start.time() and local_end.time() <= w.end_time
        for w in expert.availability.filter(weekday=local_start.weekday())
    )
    if not fits:
        raise OutsideAvailability()
    week_start = timezone.make_aware(dt.datetime.combine(
        local_start.date() - dt.timedelta(days=local_start.weekday()), dt.time(0)))
    booked = Appointment.objects.filter(
        expert=expert, status__in=COUNTED_STATUSES,
        starts_at__gte=week_start, starts_at__lt=week_start + dt.timedelta(days=7),
    )
    if exclude is not None:
        booked = booked.exclude(pk=exclude.pk)
    if booked.count() >= expert.weekly_capacity:
        raise OverCapacity(params={"capacity": expert.weekly_capacity})


def _lock_calendar(expert: Expert) -> None:
    """Lock the expert's row until the booking transaction ends.

    The slot constraint stops overlaps, but the weekly capacity is a count over different
    slots: two bookings of different times could both count N-1 and both insert. Holding the
    expert row while counting and inserting serialises bookings of one expert (on PostgreSQL a
    row lock; on SQLite the IMMEDIATE transaction already holds the write lock)."""
    Expert.objects.select_for_update().filter(pk=expert.pk).values_list("pk", flat=True).first()


def _occupy(appointment: Appointment) -> None:
    """Insert the slot rows; the unique constraint refuses any overlap."""
    try:
        with transaction.atomic():
            AppointmentSlot.objects.bulk_create(
                AppointmentSlot(expert_id=appointment.expert_id, appointment=appointment,
                                slot_start=s)
                for s in slot_range(appointment.starts_at, appointment.ends_at)
            )
    except IntegrityError:
        raise DoubleBooking() from None


def clean_location(mode: AppointmentMode, location: str) -> str:
    """The meeting place: required in person, dropped otherwise (no stray home address kept
    on a video or phone session)."""
    location = " ".join(location.split())[:MAX_LOCATION_LENGTH]
    if mode != AppointmentMode.IN_PERSON:
        return ""
    if not location:
        raise LocationRequired()
    return location


@retry_when_locked
def book_appointment(
    actor: Any, assignment: Assignment, starts_at: dt.datetime, *,
    duration_minutes: int = 60, mode: str = AppointmentMode.IN_PERSON, location: str = "",
    request: Any = None,
) -> Appointment:
    """Book a session of the assignment's expert; raises an `ExpertsError` subclass.

    The expert (and, with consent, the family) get an e-mail with an .ics invitation once
    the booking has committed."""
    require(actor, Action.MANAGE_APPOINTMENTS, assignment.case)
    if assignment.status != AssignmentStatus.ACTIVE:
        raise AssignmentNotActive()
    mode = AppointmentMode(mode)
    expert = assignment.expert
    ends_at = starts_at + dt.timedelta(minutes=duration_minutes)
    with transaction.atomic():
        _lock_calendar(expert)
        validate_booking(expert, starts_at, ends_at)
        location = clean_location(mode, location)  # after the time: the rules that matter most
        appointment = Appointment.objects.create(
            assignment=assignment, expert=expert, starts_at=starts_at, ends_at=ends_at, mode=mode,
            location=location,
        )
        _occupy(appointment)
        audit(actor=actor, action="appointment.create", target=appointment,
               case=assignment.case, request=request)
        _timeline(assignment.case, actor=actor, kind="appointment.booked",
                  message=gettext_noop("Expert appointment booked"),
                  data={"appointment": appointment.pk, "starts_at": starts_at.isoformat()})
        queue_notices(appointment, NoticeKind.BOOKED)
    return appointment


@retry_when_locked
def record_held_session(
    actor: Any, assignment: Assignment, starts_at: dt.datetime, summary: str, *,
    duration_minutes: int = 60, mode: str = AppointmentMode.IN_PERSON,
    follow_up_needed: bool = False, request: Any = None,
) -> SessionLog:
    """The expert records a session that took place without being booked here first (agreed
    by phone, say): the appointment (done) and its log in one transaction. Booking refuses
    the past, so this is the only way such a session gets onto the case."""
    case = assignment.case
    require(actor, Action.WRITE_SESSION_LOG, case)
    if assignment.expert.user_id != actor.pk:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Not permitted: write_session_log")
    if assignment.status != AssignmentStatus.ACTIVE:
        raise AssignmentNotActive()
    mode = AppointmentMode(mode)
    ends_at = starts_at + dt.timedelta(minutes=duration_minutes)
    _check_aligned(starts_at, ends_at)
    if ends_at > timezone.now():
        raise NotEndedYet()
    summary = summary.strip()
    if not summary:
        raise ExpertsError(_("The session summary is empty."))
    expert = assignment.expert
    with transaction.atomic():
        _lock_calendar(expert)
        appointment = Appointment.objects.create(
            assignment=assignment, expert=expert, starts_at=starts_at, ends_at=ends_at, mode=mode,
            status=AppointmentStatus.DONE,
        )
        _occupy(appointment)  # two sessions of one expert at once: refused, as for bookings
        log = SessionLog.objects.create(appointment=appointment, summary=summary,
                                        follow_up_needed=follow_up_needed, author=actor)
        audit(actor=actor, action="appointment.recorded", target=appointment, case=case,
              request=request)
        audit(actor=actor, action="session_log.create", target=log, case=case, request=request)
        _timeline(case, actor=actor, kind="session_log.created",
                  message=gettext_noop("Expert session log written"),
                  data={"appointment": appointment.pk, "follow_up": follow_up_needed,
                        "starts_at": starts_at.isoformat(), "recorded_afterwards": True})
    return log


def _cancel(appointment: Appointment) -> None:
    appointment.status = AppointmentStatus.CANCELLED
    appointment.save(update_fields=["status"])
    appointment.slots.all().delete()


def cancel_appointment(actor: Any, appointment: Appointment, *, reason: str = "",
                       request: Any = None) -> Appointment:
    """Cancel a scheduled appointment; its slots become free at once."""
    case = appointment.assignment.case
    require(actor, Action.MANAGE_APPOINTMENTS, case)
    if appointment.status != AppointmentStatus.SCHEDULED:
        raise InvalidStatusChange()
    with transaction.atomic():
        appointment.cancel_reason = reason.strip()
        appointment.save(update_fields=["cancel_reason"])
        _cancel(appointment)
        queue_notices(appointment, NoticeKind.CANCELLED)
        # The reason may name people: it is kept encrypted on the appointment, not in the log.
        audit(actor=actor, action="appointment.cancel", target=appointment, case=case,
              request=request)
        _timeline(case, actor=actor, kind="appointment.cancelled",
                  message=gettext_noop("Expert appointment cancelled"),
                  data={"appointment": appointment.pk})
    return appointment


@retry_when_locked
def reschedule_appointment(
    actor: Any, appointment: Appointment, starts_at: dt.datetime, *,
    duration_minutes: int | None = None, mode: str | None = None, location: str | None = None,
    request: Any = None,
) -> Appointment:
    """Move a scheduled appointment (or change its mode or place); on any error the old time
    stays booked. The expert (and, with consent, the family) get the updated invitation."""
    case = appointment.assignment.case
    require(actor, Action.MANAGE_APPOINTMENTS, case)
    if appointment.status != AppointmentStatus.SCHEDULED:
        raise InvalidStatusChange()
    if appointment.assignment.status != AssignmentStatus.ACTIVE:
        raise AssignmentNotActive()
    if duration_minutes is None:
        duration_minutes = int((appointment.ends_at - appointment.starts_at).total_seconds() // 60)
    ends_at = starts_at + dt.timedelta(minutes=duration_minutes)
    new_mode = AppointmentMode(mode) if mode is not None else AppointmentMode(appointment.mode)
    old_start = appointment.starts_at
    try:
        with transaction.atomic():
            _lock_calendar(appointment.expert)
            validate_booking(appointment.expert, starts_at, ends_at, exclude=appointment)
            new_location = clean_location(
                new_mode, appointment.location if location is None else location)
            appointment.slots.all().delete()
            appointment.starts_at = starts_at
            appointment.ends_at = ends_at
            appointment.mode = new_mode
            appointment.location = new_location
            appointment.reminder_sent_at = None  # the new time deserves its own reminder
            appointment.save(update_fields=["starts_at", "ends_at", "mode", "location",
                                            "reminder_sent_at"])
            _occupy(appointment)
            queue_notices(appointment, NoticeKind.CHANGED)
            audit(actor=actor, action="appointment.reschedule", target=appointment, case=case,
                  request=request)
            _timeline(case, actor=actor, kind="appointment.rescheduled",
                      message=gettext_noop("Expert appointment moved"),
                      data={"appointment": appointment.pk, "from": old_start.isoformat(),
                            "to": starts_at.isoformat()})
    except DoubleBooking:
        appointment.refresh_from_db()
        raise
    return appointment


def set_outcome(actor: Any, appointment: Appointment, status: str, *,
                request: Any = None) -> Appointment:
    """Mark a started appointment as done or as a no-show."""
    case = appointment.assignment.case
    require(actor, Action.MANAGE_APPOINTMENTS, case)
    status = AppointmentStatus(status)
    if status not in (AppointmentStatus.DONE, AppointmentStatus.NO_SHOW):
        raise InvalidStatusChange()
    if appointment.status != AppointmentStatus.SCHEDULED:
        raise InvalidStatusChange()
    if appointment.starts_at > timezone.now():
        raise NotStartedYet()
    with transaction.atomic():
        appointment.status = status
        appointment.save(update_fields=["status"])
        audit(actor=actor, action=f"appointment.{status.value}", target=appointment, case=case,
              request=request)
        _timeline(case, actor=actor, kind=f"appointment.{status.value}",
                  message=OUTCOME_MESSAGES[status],
                  data={"appointment": appointment.pk})
    return appointment


# --- Session logs -------------------------------------------------------------------------
def may_write_log(user: Any, appointment: Appointment) -> bool:
    """Only the appointment's own expert, while assigned, writes its log."""
    return (
        can(user, Action.WRITE_SESSION_LOG, appointment.assignment.case)
        and appointment.expert.user_id == getattr(user, "pk", None)
    )


def may_record_held(user: Any, assignment: Assignment) -> bool:
    """The assignment's own expert, while it is active, records sessions afterwards."""
    return (assignment.status == AssignmentStatus.ACTIVE
            and can(user, Action.WRITE_SESSION_LOG, assignment.case)
            and assignment.expert.user_id == getattr(user, "pk", None))


def log_is_open(appointment: Appointment, now: dt.datetime | None = None) -> bool:
    """A log can be saved once the session has started, unless it was cancelled or missed
    (the same rules `write_session_log` enforces)."""
    return (appointment.status not in (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW)
            and appointment.starts_at <= (now or timezone.now()))


def can_write_log(user: Any, appointment: Appointment) -> bool:
    """Whether saving a log would succeed now: the pages offer the link only then."""
    return log_is_open(appointment) and may_write_log(user, appointment)


def can_view_log(user: Any, appointment: Appointment) -> bool:
    return can(user, Action.VIEW_SESSION_LOGS, appointment.assignment.case) or may_write_log(
        user, appointment)


def write_session_log(actor: Any, appointment: Appointment, summary: str, *,
                      follow_up_needed: bool = False, request: Any = None) -> SessionLog:
    """The expert records (or corrects) the log of a session that has taken place."""
    case = appointment.assignment.case
    require(actor, Action.WRITE_SESSION_LOG, case)
    if appointment.expert.user_id != actor.pk:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Not permitted: write_session_log")
    if appointment.status in (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW):
        raise InvalidStatusChange()
    if appointment.starts_at > timezone.now():
        raise NotStartedYet()
    summary = summary.strip()
    if not summary:
        raise ExpertsError(_("The session summary is empty."))
    with transaction.atomic():
        if appointment.status == AppointmentStatus.SCHEDULED:
            appointment.status = AppointmentStatus.DONE
            appointment.save(update_fields=["status"])
        log, created = SessionLog.objects.update_or_create(
            appointment=appointment,
            defaults={"summary": summary, "follow_up_needed": follow_up_needed, "author": actor},
        )
        audit(actor=actor, action="session_log.create" if created else "session_log.update",
               target=log, case=case, request=request)
        if created:
            _timeline(case, actor=actor, kind="session_log.created",
                      message=gettext_noop("Expert session log written"),
                      data={"appointment": appointment.pk, "follow_up": follow_up_needed})
    return log
