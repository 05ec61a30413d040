"""Appointment e-mails with an iCalendar (.ics) invitation: to the expert, and to the family
when the case's consent "E-mail appointments to the family" is given at the moment of sending.

`queue_notices` runs inside the transaction of the change it announces (booked, moved,
cancelled): it raises the appointment's SEQUENCE and writes one `AppointmentNotice` row per
audience, and the send task is enqueued only once that transaction has committed. The task
claims its row with a conditional update, so a retry or a duplicated task never sends twice.

What the e-mails hold: the expert's carries the case code and an absolute link to the
assignment page (the expert signs in to read the rest); the family's carries the time, the
mode, the expert's name and, for an in-person session, the meeting place, and never the case
code, the need or any link to the staff pages.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from anshim.cases.consent import has_consent
from anshim.cases.models import ConsentScope, ContactPreference
from anshim.experts.models import (
    Appointment,
    AppointmentMode,
    AppointmentNotice,
    NoticeAudience,
    NoticeKind,
    NoticeStatus,
)
from anshim.security.audit import record

PRODID = "-//Anshim//Expert appointments//KO"


def site_url(path: str) -> str:
    """`path` made absolute from ANSHIM_SITE_URL: an e-mail has no page to be relative to."""
    return str(settings.ANSHIM_SITE_URL).rstrip("/") + path


def _uid(appointment: Appointment) -> str:
    # Stable for the appointment's life, so each update replaces the same calendar entry.
    host = urlsplit(settings.ANSHIM_SITE_URL).hostname or "anshim.invalid"
    return f"appointment-{appointment.pk}@{host}"


def _local_tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def build_ics(appointment: Appointment, kind: str, *, summary: str, description: str,
              attendees: list[str], sequence: int | None = None,
              now: dt.datetime | None = None) -> bytes:
    """The invitation: METHOD:REQUEST for a booking or a change, METHOD:CANCEL for a
    cancellation; times in the center's zone (Asia/Seoul) with its VTIMEZONE."""
    tz = _local_tz()
    cancel = kind == NoticeKind.CANCELLED
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "CANCEL" if cancel else "REQUEST")
    event = icalendar.Event()
    event.add("uid", _uid(appointment))
    event.add("sequence", appointment.sequence if sequence is None else sequence)
    event.add("dtstamp", (now or timezone.now()).astimezone(dt.UTC))
    event.add("dtstart", appointment.starts_at.astimezone(tz))
    event.add("dtend", appointment.ends_at.astimezone(tz))
    event.add("summary", summary)
    event.add("description", description)
    event.add("status", "CANCELLED" if cancel else "CONFIRMED")
    if appointment.mode == AppointmentMode.IN_PERSON and appointment.location:
        event.add("location", appointment.location)
    organizer = icalendar.vCalAddress(f"mailto:{settings.DEFAULT_FROM_EMAIL}")
    organizer.params["cn"] = icalendar.vText(str(settings.ANSHIM_CENTER_NAME))
    event.add("organizer", organizer)
    for address in attendees:
        attendee = icalendar.vCalAddress(f"mailto:{address}")
        attendee.params["role"] = icalendar.vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = icalendar.vText("NEEDS-ACTION")
        event.add("attendee", attendee, encode=False)
    cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def queue_notices(appointment: Appointment, kind: str) -> list[AppointmentNotice]:
    """Inside the changing transaction: the next SEQUENCE and one notice per audience, sent
    after commit. Whether the family's is sent is decided when it is sent (consent then)."""
    from anshim.experts import tasks

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("queue_notices belongs inside the change's transaction")
    # A booking is version 0; every later mailed change raises it.
    if kind != NoticeKind.BOOKED:
        Appointment.objects.filter(pk=appointment.pk).update(sequence=F("sequence") + 1)
        appointment.refresh_from_db(fields=["sequence"])
    notices = [
        AppointmentNotice.objects.create(
            appointment=appointment, kind=kind, audience=audience,
            sequence=appointment.sequence, idempotency_key=uuid.uuid4().hex)
        for audience in (NoticeAudience.EXPERT, NoticeAudience.FAMILY)
    ]
    for notice in notices:
        # Robust: the change has committed; a failed enqueue must not turn it into an error
        # (or a retried booking). The row stays pending and `requeue_pending` queues it again.
        transaction.on_commit(
            lambda pk=notice.pk: tasks.send_appointment_notice.enqueue(pk),  # type: ignore[misc]
            robust=True)
    return notices


# A pending notice older than this has lost its task (the enqueue failed, or its worker died).
LOST_TASK = dt.timedelta(minutes=10)


def requeue_pending(now: dt.datetime | None = None) -> int:
    """Queue again the notices whose task is lost; the claim keeps a late original harmless."""
    from anshim.experts import tasks

    now = now or timezone.now()
    ids = list(AppointmentNotice.objects.filter(
        status=NoticeStatus.PENDING, created_at__lte=now - LOST_TASK).values_list("pk", flat=True))
    for pk in ids:
        tasks.send_appointment_notice.enqueue(pk)
    return len(ids)


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str
    to: list[str]
    language: str


def family_addresses(appointment: Appointment) -> tuple[list[str], str]:
    """The victim's address (unless they asked not to be contacted) and the legal guardians'
    addresses, and the language to write in (the victim's)."""
    person = appointment.assignment.case.person
    addresses: list[str] = []
    if person.email and person.contact_preference != ContactPreference.NONE:
        addresses.append(person.email)
    addresses += [g.email for g in person.guardians.filter(is_legal_guardian=True) if g.email]
    unique = list(dict.fromkeys(a.strip() for a in addresses if a.strip()))
    return unique, person.preferred_language or settings.LANGUAGE_CODE


def _when(appointment: Appointment) -> str:
    start = timezone.localtime(appointment.starts_at)
    end = timezone.localtime(appointment.ends_at)
    return f"{date_format(start, 'DATETIME_FORMAT')} - {date_format(end, 'TIME_FORMAT')}"


def _subject(kind: str, appointment: Appointment) -> str:
    texts = {
        NoticeKind.BOOKED: _("Anshim: appointment on %(when)s"),
        NoticeKind.CHANGED: _("Anshim: appointment moved to %(when)s"),
        NoticeKind.CANCELLED: _("Anshim: appointment on %(when)s cancelled"),
    }
    start = timezone.localtime(appointment.starts_at)
    return texts[NoticeKind(kind)] % {"when": date_format(start, "DATETIME_FORMAT")}


def _place_line(appointment: Appointment) -> str:
    if appointment.mode == AppointmentMode.IN_PERSON and appointment.location:
        return _("Place: %(place)s") % {"place": appointment.location} + "\n"
    return ""


def _lead(kind: str) -> str:
    return {
        NoticeKind.BOOKED: _("An appointment was booked."),
        NoticeKind.CHANGED: _("An appointment was moved. The new time is below."),
        NoticeKind.CANCELLED: _("This appointment was cancelled."),
    }[NoticeKind(kind)]


def expert_mail(notice: AppointmentNotice) -> Mail | str:
    appointment = notice.appointment
    user = appointment.expert.user
    if not user.email:
        return "no_address"
    language = user.preferred_language or settings.LANGUAGE_CODE
    with translation.override(language):
        code = appointment.assignment.case.code
        body = _(
            "%(lead)s\n\nCase: %(code)s\nTime: %(when)s\nMode: %(mode)s\n%(place)s\n"
            "The invitation is attached. Sign in to Anshim for the brief:\n%(link)s"
        ) % {
            "lead": _lead(notice.kind), "code": code, "when": _when(appointment),
            "mode": appointment.get_mode_display(), "place": _place_line(appointment),
            "link": site_url(reverse("experts:assignment", args=[appointment.assignment_id])),
        }
        subject = f"{_subject(notice.kind, appointment)} ({code})"
    return Mail(subject=subject, body=body, to=[user.email], language=language)


def family_mail(notice: AppointmentNotice) -> Mail | str:
    appointment = notice.appointment
    case = appointment.assignment.case
    # Checked now, at sending, every time: a consent withdrawn after booking stops the mail.
    if not has_consent(case, ConsentScope.NOTIFY_FAMILY):
        return "no_consent"
    to, language = family_addresses(appointment)
    if not to:
        return "no_address"
    expert = appointment.expert
    with translation.override(language):
        body = _(
            "%(lead)s\n\nTime: %(when)s\nWith: %(expert)s (%(kind)s)\nMode: %(mode)s\n"
            "%(place)s\nThe invitation is attached for your calendar. All sessions are free "
            "of charge. To change the time, please contact your counselor at the center."
        ) % {
            "lead": _lead(notice.kind), "when": _when(appointment),
            "expert": expert.user.display_name or expert.user.get_username(),
            "kind": expert.get_kind_display(), "mode": appointment.get_mode_display(),
            "place": _place_line(appointment),
        }
        subject = _subject(notice.kind, appointment)
    return Mail(subject=subject, body=body, to=to, language=language)


def claim(notice_id: int) -> bool:
    """Take the notice for sending; False when another run has it or it is done."""
    return bool(AppointmentNotice.objects.filter(
        pk=notice_id, status=NoticeStatus.PENDING).update(status=NoticeStatus.SENDING))


def send_notice(notice_id: int) -> str:
    """Send one claimed-once notice; returns its outcome ("sent", "no_consent", ...)."""
    if not claim(notice_id):
        return "skipped"
    notice = AppointmentNotice.objects.select_related(
        "appointment__assignment__case__person", "appointment__expert__user").get(pk=notice_id)
    try:
        mail = expert_mail(notice) if notice.audience == NoticeAudience.EXPERT \
            else family_mail(notice)
        if isinstance(mail, str):
            AppointmentNotice.objects.filter(pk=notice_id).update(
                status=NoticeStatus.SKIPPED, outcome=mail)
            return mail
        appointment = notice.appointment
        # The family's addresses go in Bcc and not into the invitation: the victim and each
        # guardian get one message (one send, so one claim covers it) without learning the
        # others' addresses.
        family = notice.audience == NoticeAudience.FAMILY
        with translation.override(mail.language):
            ics = build_ics(appointment, notice.kind, summary=mail.subject,
                            description=mail.body, attendees=[] if family else mail.to,
                            sequence=notice.sequence)
        method = "CANCEL" if notice.kind == NoticeKind.CANCELLED else "REQUEST"
        message = EmailMessage(
            mail.subject, mail.body, to=[] if family else mail.to,
            bcc=mail.to if family else [], headers={
                # One Message-ID per notice: a copy re-sent after a crash is the same message.
                "Message-ID": f"<{notice.idempotency_key}@appointments.anshim.invalid>",
                "X-Anshim-Idempotency-Key": notice.idempotency_key,
            })
        message.attach("invite.ics", ics, f"text/calendar; method={method}; charset=utf-8")
        message.send()
    except Exception:
        # Release the claim so the task's retry can send it.
        AppointmentNotice.objects.filter(pk=notice_id).update(status=NoticeStatus.PENDING)
        raise
    AppointmentNotice.objects.filter(pk=notice_id).update(
        status=NoticeStatus.SENT, sent_at=timezone.now(), outcome="")
    if notice.audience == NoticeAudience.FAMILY:
        # Personal data (the family's addresses) was used: audited, with no address in it.
        record(actor=None, action="appointment.notice_family", target=appointment,
               case=appointment.assignment.case)
    return "sent"
