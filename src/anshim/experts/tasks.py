"""Background tasks: assignment notices and appointment reminders for experts, by e-mail.

E-mails carry no victim personal data and no brief: only the case code, the need, the time and
the mode; the expert reads the rest after signing in. Reminders to victims are not sent from
here (victims are reached through the portal or their counselor).

Periodic trigger: `anshim reminders` (cron-able, e.g. every 15 minutes) enqueues a reminder for
each appointment starting within 24 hours that has none yet; `anshim db_worker` sends them.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.mail import EmailMessage
from django.tasks import task
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from anshim.experts.models import Appointment, AppointmentStatus, Assignment

REMINDER_LEAD = dt.timedelta(hours=24)


def _site_url(path: str) -> str:
    from anshim.experts.notices import site_url

    return site_url(path)


@task()
def send_appointment_notice(notice_id: int) -> str:
    """Send one appointment e-mail with its .ics (to the expert, or with consent the family).

    Idempotent: `notices.send_notice` claims the notice row with a conditional update first.
    """
    from anshim.experts.notices import send_notice

    return send_notice(notice_id)


@task()
def send_assignment_notification(assignment_id: int) -> str:
    """E-mail the expert that a case was assigned to them."""
    assignment = (
        Assignment.objects.select_related("case", "expert__user").filter(pk=assignment_id).first()
    )
    if assignment is None:
        return "missing"
    user = assignment.expert.user
    if not user.email:
        return "no_email"
    with translation.override(user.preferred_language or settings.LANGUAGE_CODE):
        subject = _("Anshim: new case assignment %(code)s") % {"code": assignment.case.code}
        body = _(
            "You have been assigned to case %(code)s for: %(need)s.\n\n"
            "Please sign in to Anshim to read the brief and arrange the first session:\n"
            "%(link)s\n\n"
            "All sessions are free of charge for the victim."
        ) % {
            "code": assignment.case.code,
            "need": assignment.get_specialty_display(),
            "link": _site_url(reverse("experts:assignment", args=[assignment.pk])),
        }
    EmailMessage(subject, body, to=[user.email]).send()
    return "sent"


@task()
def send_appointment_reminder(appointment_id: int) -> str:
    """Remind the expert of an upcoming appointment, once.

    Idempotent: the reminder is claimed by setting `reminder_sent_at` with a conditional
    update, so two workers (or a repeated cron run) never send it twice. Cancelled or finished
    appointments are skipped.
    """
    now = timezone.now()
    claimed = Appointment.objects.filter(
        pk=appointment_id, status=AppointmentStatus.SCHEDULED, reminder_sent_at__isnull=True,
        starts_at__gt=now,
    ).update(reminder_sent_at=now)
    if not claimed:
        return "skipped"
    appointment = Appointment.objects.select_related(
        "assignment__case", "expert__user").get(pk=appointment_id)
    user = appointment.expert.user
    if not user.email:
        return "no_email"
    try:
        with translation.override(user.preferred_language or settings.LANGUAGE_CODE):
            start = timezone.localtime(appointment.starts_at)
            subject = _("Anshim reminder: appointment for case %(code)s") % {
                "code": appointment.assignment.case.code}
            body = _(
                "Reminder: you have an appointment for case %(code)s.\n"
                "Time: %(start)s - %(end)s\nMode: %(mode)s\n\n%(link)s"
            ) % {
                "code": appointment.assignment.case.code,
                "start": date_format(start, "DATETIME_FORMAT"),
                "end": date_format(timezone.localtime(appointment.ends_at), "TIME_FORMAT"),
                "mode": appointment.get_mode_display(),
                "link": _site_url(reverse("experts:assignment", args=[appointment.assignment_id])),
            }
        EmailMessage(subject, body, to=[user.email]).send()
    except Exception:
        # Release the claim so a retry can send it.
        Appointment.objects.filter(pk=appointment_id).update(reminder_sent_at=None)
        raise
    return "sent"


def due_reminders(now: dt.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        Appointment.objects.filter(
            status=AppointmentStatus.SCHEDULED, reminder_sent_at__isnull=True,
            starts_at__gt=now, starts_at__lte=now + REMINDER_LEAD,
        ).values_list("pk", flat=True)
    )


@task()
def schedule_due_reminders() -> int:
    """Enqueue a reminder for every appointment starting within 24 hours without one, and
    queue again the appointment e-mails whose task was lost."""
    from anshim.experts.notices import requeue_pending

    ids = due_reminders()
    for pk in ids:
        send_appointment_reminder.enqueue(pk)
    requeue_pending()
    return len(ids)
