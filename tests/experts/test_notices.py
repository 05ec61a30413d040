"""Appointment e-mails with an .ics invitation, through a real SMTP server (aiosmtpd).

To the expert always; to the family only while the consent "E-mail appointments to the
family" is given, checked when each e-mail is sent. Sent after commit, never twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import Message
from typing import Any

import icalendar
import pytest

from anshim.cases import consent
from anshim.cases.models import AgeGroup, ConsentGiver, ConsentScope, Guardian
from anshim.experts import services
from anshim.experts.models import AppointmentNotice, NoticeStatus
from erasure.workflow_support import Inbox, free_port, smtp_server

from .conftest import next_weekday

pytestmark = pytest.mark.django_db

ROOM = "센터 3층 상담실 (fictitious)"


@pytest.fixture
def inbox(settings: Any, immediate_tasks: None) -> Iterator[Inbox]:
    settings.ANSHIM_SITE_URL = "https://anshim.example.org"
    with smtp_server() as (box, mailers):
        settings.MAILERS = mailers
        yield box


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """Run `fn` and then its on-commit callbacks (the sends), as a committed request would."""

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def _parts(msg: Message) -> tuple[str, icalendar.Calendar, str]:
    body, ics, ctype = "", None, ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            body = bytes(part.get_payload(decode=True)).decode("utf-8")  # type: ignore[arg-type]
        if part.get_content_type() == "text/calendar":
            ctype = str(part.get_param("method"))
            ics = icalendar.Calendar.from_ical(bytes(part.get_payload(decode=True)))  # type: ignore[arg-type]
    assert ics is not None, "no .ics attached"
    return body, ics, ctype


def _event(cal: icalendar.Calendar) -> Any:
    [event] = cal.walk("VEVENT")
    return event


def _to(inbox: Inbox, address: str) -> list[Message]:
    return [m for m in inbox.messages if address in m["X-Envelope-To"]]


def _grant_family(case: Any, counselor: Any) -> None:
    consent.grant(case, ConsentScope.NOTIFY_FAMILY, ConsentGiver.VICTIM, recorded_by=counselor)


def test_booking_mails_the_expert_an_invitation(
    assignment: Any, counselor: Any, inbox: Inbox, commit: Callable[..., Any],
) -> None:
    start = next_weekday(0, 10)
    appt = commit(services.book_appointment, counselor, assignment, start, location=ROOM)
    expert_email = assignment.expert.user.email
    [msg] = _to(inbox, expert_email)
    body, cal, ctype = _parts(msg)
    assert ctype == "REQUEST"
    assert cal["METHOD"] == "REQUEST"
    event = _event(cal)
    assert str(event["UID"]) == f"appointment-{appt.pk}@anshim.example.org"
    assert int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].dt == start
    assert event["DTSTART"].params["TZID"] == "Asia/Seoul"
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Seoul"]
    assert str(event["LOCATION"]) == ROOM
    assert assignment.case.code in body and ROOM in body
    assert f"https://anshim.example.org/staff/experts/assignments/{assignment.pk}/" in body \
        or f"https://anshim.example.org/experts/assignments/{assignment.pk}/" in body
    # The victim's data and the brief never travel by e-mail.
    assert "SECRET-SUMMARY" not in body and "홍길동" not in body and "Brief" not in body
    # No consent: the family gets nothing, and the notice says why.
    assert _to(inbox, "victim@example.invalid") == []
    family = AppointmentNotice.objects.get(appointment=appt, audience="family")
    assert (family.status, family.outcome) == (NoticeStatus.SKIPPED, "no_consent")


def test_family_gets_it_only_with_consent_checked_at_each_send(
    assignment: Any, counselor: Any, inbox: Inbox, commit: Callable[..., Any],
) -> None:
    case = assignment.case
    Guardian.objects.create(person=case.person, name="보호자 (fictitious)",
                            email="guardian@example.invalid", is_legal_guardian=True)
    Guardian.objects.create(person=case.person, name="이웃 (fictitious)",
                            email="neighbour@example.invalid", is_legal_guardian=False)
    _grant_family(case, counselor)
    appt = commit(services.book_appointment, counselor, assignment, next_weekday(0, 10),
                  location=ROOM)
    [msg] = _to(inbox, "victim@example.invalid")
    assert "guardian@example.invalid" in msg["X-Envelope-To"]
    # One message, but nobody's address is shown to the others.
    raw = msg.as_string().replace(str(msg["X-Envelope-To"]), "")
    assert "victim@example.invalid" not in raw and "guardian@example.invalid" not in raw
    assert _to(inbox, "neighbour@example.invalid") == []  # not a legal guardian
    body, cal, _ = _parts(msg)
    assert ROOM in body and str(_event(cal)["LOCATION"]) == ROOM
    # The family's mail names no case code and links to no staff page.
    assert case.code not in body and "http" not in body
    assert "SECRET-SUMMARY" not in body

    # Moved: both get the update, SEQUENCE 1, same UID.
    commit(services.reschedule_appointment, counselor, appt, next_weekday(2, 11))
    family = _to(inbox, "victim@example.invalid")
    assert len(family) == 2
    ev0, ev1 = (_event(_parts(m)[1]) for m in family)
    assert str(ev0["UID"]) == str(ev1["UID"])
    assert (int(ev0["SEQUENCE"]), int(ev1["SEQUENCE"])) == (0, 1)

    # Consent withdrawn, then cancelled: the expert is told, the family no longer.
    consent.withdraw(case, ConsentScope.NOTIFY_FAMILY)
    appt.refresh_from_db()
    commit(services.cancel_appointment, counselor, appt)
    assert len(_to(inbox, "victim@example.invalid")) == 2
    expert_msgs = _to(inbox, assignment.expert.user.email)
    assert len(expert_msgs) == 3
    _, cal, ctype = _parts(expert_msgs[-1])
    assert cal["METHOD"] == "CANCEL" and ctype == "CANCEL"
    event = _event(cal)
    assert int(event["SEQUENCE"]) == 2 and str(event["STATUS"]) == "CANCELLED"


def test_under_14_needs_the_guardians_consent_too(
    assignment: Any, counselor: Any, inbox: Inbox, commit: Callable[..., Any],
) -> None:
    case = assignment.case
    case.person.age_group = AgeGroup.UNDER_14
    case.person.save()
    _grant_family(case, counselor)  # the child's alone is not enough
    commit(services.book_appointment, counselor, assignment, next_weekday(0, 10), location=ROOM)
    assert _to(inbox, "victim@example.invalid") == []
    assert len(_to(inbox, assignment.expert.user.email)) == 1


def test_a_retried_send_never_mails_twice(
    assignment: Any, counselor: Any, inbox: Inbox, commit: Callable[..., Any],
) -> None:
    from anshim.experts import tasks

    appt = commit(services.book_appointment, counselor, assignment, next_weekday(0, 10),
                  location=ROOM)
    notice = AppointmentNotice.objects.get(appointment=appt, audience="expert")
    assert notice.status == NoticeStatus.SENT and notice.sent_at is not None
    assert tasks.send_appointment_notice.call(notice.pk) == "skipped"
    assert len(inbox.messages) == 1


def test_a_failed_send_is_released_for_the_retry(
    assignment: Any, counselor: Any, settings: Any, immediate_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:

    settings.MAILERS = {"default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2}}}
    with django_capture_on_commit_callbacks(execute=True):
        services.book_appointment(counselor, assignment, next_weekday(0, 10), location=ROOM)
    notice = AppointmentNotice.objects.get(audience="expert")
    assert notice.status == NoticeStatus.PENDING  # the task failed; its retry will send it
    from anshim.experts.notices import send_notice

    with pytest.raises(OSError):
        send_notice(notice.pk)
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.PENDING and notice.sent_at is None


def test_nothing_is_sent_for_a_refused_booking(
    assignment: Any, counselor: Any, inbox: Inbox, commit: Callable[..., Any],
) -> None:
    with pytest.raises(services.LocationRequired):
        commit(services.book_appointment, counselor, assignment, next_weekday(0, 10))
    with pytest.raises(services.OutsideAvailability):
        commit(services.book_appointment, counselor, assignment, next_weekday(1, 10),
               location=ROOM)
    assert inbox.messages == [] and not AppointmentNotice.objects.exists()


LINK = re.compile(r"""(?:href=["']|\s|^)(/[A-Za-z0-9_\-/]+/)""", re.MULTILINE)


def test_no_e_mail_body_holds_a_relative_link(
    assignment: Any, counselor: Any, inbox: Inbox, commit: Callable[..., Any],
    make_case: Callable[..., Any],
) -> None:
    """Every mail of the experts app: assignment, booking, move, reminder, cancellation."""
    from anshim.experts import tasks

    expert = assignment.expert
    case = assignment.case
    _grant_family(case, counselor)
    commit(services.assign_expert, counselor, make_case(), expert, "trauma", "brief")
    appt = commit(services.book_appointment, counselor, assignment, next_weekday(0, 10),
                  location=ROOM)
    commit(services.reschedule_appointment, counselor, appt, next_weekday(0, 13))
    appt.refresh_from_db()
    appt.reminder_sent_at = None
    appt.save()
    tasks.send_appointment_reminder.call(appt.pk)
    commit(services.cancel_appointment, counselor, appt)
    assert len(inbox.messages) >= 7
    for msg in inbox.messages:
        texts = []
        for p in msg.walk():
            payload = p.get_payload(decode=True)
            if p.get_content_type() == "text/plain":
                texts.append(bytes(payload).decode("utf-8"))  # type: ignore[arg-type]
            elif p.get_content_type() == "text/calendar":  # its description, unfolded
                event = _event(icalendar.Calendar.from_ical(bytes(payload)))  # type: ignore[arg-type]
                texts.append(str(event["DESCRIPTION"]))
        body = "\n".join(texts)
        assert LINK.findall(body) == [], body
        for url in re.findall(r"https?://\S+", body):
            assert url.startswith("https://anshim.example.org/"), url
