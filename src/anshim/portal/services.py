"""What the portal does, as plain functions: reports, sign-in, progress, registration, withdrawal.

The portal acts on behalf of an anonymous victim, so the audit actor is None and the reason says
"victim portal". Registration and withdrawal go through the erasure app's bank services
(`anshim.erasure.services`) so that consent checks, tombstones, the partner feed and running
matchers all see the same thing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Min, Q
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from anshim.cases import codes
from anshim.cases import consent as consent_rules
from anshim.cases.models import (
    AgeGroup,
    Case,
    CaseHarm,
    CaseStatus,
    Channel,
    ConsentGiver,
    ConsentScope,
    ContactPreference,
    Guardian,
    HarmType,
    Notification,
    Person,
    TriageAssessment,
)
from anshim.cases.services import add_event
from anshim.cases.triage import TriageFactors, assess
from anshim.portal import sms
from anshim.portal.models import AccessRecipient, PortalAccessIssue, PortalMessage
from anshim.portal.passphrases import generate_passphrase, hash_passphrase, verify_passphrase
from anshim.security.audit import record as audit_record
from anshim.security.policy import Action, can, portal_inbox_cases, require
from anshim.security.roles import Role

PORTAL_BANK = "victim-portal"
MAX_ITEMS = 50  # media items in one registration
MAX_FRAMES = 3600  # one hour of video at one PDQ a second
MAX_VIDEO_SECONDS = 24 * 3600.0
MAX_REGISTRATION_BYTES = 2_000_000
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_HEX32 = re.compile(r"\A[0-9a-f]{32}\Z")
REASON = "victim portal"


def _audit(action: str, case: Case, request: HttpRequest | None, target: Any = None) -> None:
    audit_record(actor=None, action=action, target=target, case=case, request=request,
                 reason=REASON)


def _event(case: Case, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    add_event(case, kind, message, None, data or {})


# --- Reports --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewReport:
    case: Case
    passphrase: str  # shown once, never stored in the clear


def _factors(data: dict[str, Any]) -> TriageFactors:
    danger = data.get("in_danger") in ("yes", "unsure")
    return TriageFactors(
        threat_to_spread=bool(data.get("threatened")),
        content_spreading=bool(data.get("content_spreading")),
        # "In danger now" is treated like a self-harm risk: both call for the 2-hour response.
        self_harm_risk=danger,
        offline_meeting_planned=bool(data.get("meeting_planned")),
        age_group=data.get("age_group") or AgeGroup.UNKNOWN,
        harm_types=tuple(h for h in data.get("harm_types") or () if h in HarmType.values),
    )


DANGER_ANSWERS = {"yes": gettext_noop("Yes"), "unsure": gettext_noop("I am not sure")}


def _summary(data: dict[str, Any]) -> str:
    # Stored in the encrypted case summary, labelled in the center's language (the staff's,
    # settings.LANGUAGE_CODE), not the victim's: counselors read it on the case page.
    with translation.override(settings.LANGUAGE_CODE):
        parts = [data.get("summary") or ""]
        if data.get("urls"):
            parts.append(_("Where:") + "\n" + "\n".join(data["urls"]))
        if data.get("platforms"):
            parts.append(_("Apps or sites:") + " " + data["platforms"])
        if data.get("in_danger") in DANGER_ANSWERS:
            parts.append(_("In danger now:") + " " + _(DANGER_ANSWERS[data["in_danger"]]))
    return "\n\n".join(p for p in parts if p)


def _triage(case: Case, factors: TriageFactors) -> TriageAssessment:
    """Intake triage with the case app's rules (the same as hotline intake, no assessor)."""
    result = assess(factors)
    assessment = TriageAssessment.objects.create(
        case=case, assessed_by=None, factors=factors.to_json(), computed_level=result.level,
        reasons=result.reason_codes, deadline=result.deadline,
    )
    Case.objects.filter(pk=case.pk).update(
        risk_level=result.level, response_due=result.deadline,
        version=F("version") + 1, updated_at=timezone.now(),
    )
    case.refresh_from_db()
    _event(case, "triage.assessed", gettext_noop("Risk assessed"),
           {"level": result.level, "reasons": result.reason_codes})
    # The workflow moves the new case on, as after a hotline triage (with its history).
    from anshim.cases.transitions import imply
    from anshim.cases.workflow import Implied

    imply(case, Implied.TRIAGE_DONE)
    case.refresh_from_db()
    return assessment


def submit_report(data: dict[str, Any], *, request: HttpRequest | None = None) -> NewReport:
    """Create a case from an anonymous report (cleaned ReportForm data), triaged at once."""
    for attempt in range(3):
        try:
            return _submit_once(data, request)
        except IntegrityError:
            if attempt == 2:  # only a case-code collision is worth a retry
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _submit_once(data: dict[str, Any], request: HttpRequest | None) -> NewReport:
    passphrase = generate_passphrase()
    factors = _factors(data)
    preference = data.get("contact_preference") or ContactPreference.PORTAL
    detail = (data.get("contact_detail") or "").strip() if preference in (
        ContactPreference.PHONE, ContactPreference.SMS, ContactPreference.EMAIL) else ""
    language = (getattr(request, "LANGUAGE_CODE", "") or "ko")[:8]
    with transaction.atomic():
        person = Person.objects.create(
            age_group=factors.age_group, contact_preference=preference,
            phone=detail if preference != ContactPreference.EMAIL else "",
            email=detail if preference == ContactPreference.EMAIL else "",
            preferred_language=language,
        )
        case = Case.objects.create(
            code=codes.new_unique_code(), person=person, channel=Channel.PORTAL,
            summary=_summary(data), status=CaseStatus.NEW,
            portal_passphrase_hash=hash_passphrase(passphrase),
        )
        CaseHarm.objects.bulk_create(
            [CaseHarm(case=case, harm_type=h) for h in dict.fromkeys(factors.harm_types)]
        )
        _event(case, "case.created", gettext_noop("Case opened from an anonymous portal report"),
               {"channel": Channel.PORTAL, "harm_types": list(factors.harm_types)})
        _triage(case, factors)
        scopes = [ConsentScope.KEEP_DATA]
        if data.get("consent_contact_platforms"):
            scopes.append(ConsentScope.CONTACT_PLATFORMS)
        for scope in scopes:
            consent_rules.grant(case, scope, ConsentGiver.VICTIM, recorded_by=None,
                                method="portal")
            _event(case, "consent.granted", gettext_noop("Consent granted"),
                   {"scope": scope, "given_by": ConsentGiver.VICTIM})
        _audit("case.create", case, request, case)
    return NewReport(case=case, passphrase=passphrase)


# --- Sign-in --------------------------------------------------------------------------------

def authenticate(code: str, passphrase: str, *, request: HttpRequest | None = None
                 ) -> Case | None:
    """The case for this code and passphrase, or None. Costs one Argon2 check either way, so
    the time taken does not tell whether the code exists."""
    normalized = codes.normalize(code)
    case = Case.objects.filter(code=normalized).first() if codes.is_valid(normalized) else None
    stored = case.portal_passphrase_hash if case is not None else None
    if verify_passphrase(passphrase, stored) and case is not None:
        _audit("portal.sign_in", case, request, case)
        return case
    return None


AUDIT_PASSPHRASE_ISSUED = "portal.passphrase.issue"  # noqa: S105 - an event type


def access_stamp(case: Case) -> str:
    """A short digest of the case's passphrase hash, kept in the victim's session: a new
    passphrase changes it, which ends every portal session opened with the old one."""
    return hashlib.sha256(case.portal_passphrase_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AccessAddress:
    """An address on file the new passphrase may also be e-mailed to."""

    key: str  # "victim" or "guardian:<id>", the form's value
    label: str
    address: str
    recipient: str  # AccessRecipient
    guardian: Guardian | None = None


def access_addresses(case: Case) -> list[AccessAddress]:
    """Where the passphrase may be sent, by consent: the victim's own e-mail address (or phone,
    by text message, when an SMS gateway is configured) only when the victim chose that as the
    way the center may contact them; a legal guardian's e-mail address only when the victim
    agreed to be contacted at all (never "do not contact me")."""
    person = case.person
    out: list[AccessAddress] = []
    if person.contact_preference == ContactPreference.EMAIL and "@" in (person.email or ""):
        out.append(AccessAddress("victim", _("The victim (%(address)s)") % {
            "address": person.email}, person.email, AccessRecipient.VICTIM))
    if (person.contact_preference == ContactPreference.SMS and person.phone
            and sms.configured()):
        out.append(AccessAddress("sms", _("The victim's phone, by text message (%(phone)s)")
                                 % {"phone": person.phone}, person.phone, AccessRecipient.SMS))
    if person.contact_preference != ContactPreference.NONE:
        for g in person.guardians.filter(is_legal_guardian=True).order_by("pk"):
            if "@" in (g.email or ""):
                out.append(AccessAddress(
                    f"guardian:{g.pk}", _("Legal guardian %(name)s (%(address)s)") % {
                        "name": g.name or "—", "address": g.email},
                    g.email, AccessRecipient.GUARDIAN, g))
    return out


@dataclass(frozen=True)
class IssuedAccess:
    """The outcome of an issue form. `passphrase` is None when the form had been used before
    (a double click or a reload): nothing new was issued and the passphrase is not shown again."""

    issue: PortalAccessIssue
    passphrase: str | None
    reissued: bool  # an older passphrase stopped working

    @property
    def emailed(self) -> bool:
        return self.issue.emailed_at is not None


def issue_passphrase(actor: Any, case: Case, *, idempotency_key: str, email_to: str = "",
                     request: HttpRequest | None = None) -> IssuedAccess:
    """Portal access for the victim: the case code and a new passphrase, shown once to the
    counselor (printed or read out to the victim) and stored only as an Argon2 hash; also
    e-mailed, after commit, to an address of `access_addresses` when `email_to` names one.
    An older passphrase stops working and every portal session opened with it ends.

    Idempotent per `idempotency_key`: the same form sent twice issues one passphrase."""
    require(actor, Action.ISSUE_PORTAL_PASSPHRASE, case)
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", idempotency_key or ""):
        raise ValidationError(_("This form had expired. Please open it again."),
                              code="bad_idempotency_key")
    address = None
    if email_to:
        address = next((a for a in access_addresses(case) if a.key == email_to), None)
        if address is None:
            raise ValidationError(_(
                "The passphrase cannot be e-mailed there: the address is not on file, or the "
                "victim has not agreed to be contacted that way."), code="no_email_consent")
    passphrase = generate_passphrase()
    with transaction.atomic(durable=True):
        locked = Case.objects.select_for_update().get(pk=case.pk)
        earlier = PortalAccessIssue.objects.filter(idempotency_key=idempotency_key).first()
        if earlier is not None:
            if earlier.case_id != case.pk:
                raise ValidationError(_("This form had expired. Please open it again."),
                                      code="bad_idempotency_key")
            return IssuedAccess(earlier, None, reissued=False)
        reissued = bool(locked.portal_passphrase_hash)
        Case.objects.filter(pk=case.pk).update(portal_passphrase_hash=hash_passphrase(passphrase),
                                               updated_at=timezone.now())
        case.refresh_from_db(fields=["portal_passphrase_hash", "updated_at"])
        issue = PortalAccessIssue.objects.create(
            case=case, issued_by=actor, idempotency_key=idempotency_key,
            recipient=address.recipient if address else AccessRecipient.NONE,
            guardian=address.guardian if address else None)
        _event_by(actor, case, "portal.passphrase_issued",
                  gettext_noop("New portal passphrase issued") if reissued
                  else gettext_noop("Portal access issued"),
                  {"reissued": reissued, "emailed_to": issue.recipient})
        # The target is the issue row: it records to whom it was e-mailed (the passphrase is
        # nowhere).
        audit_record(actor=actor, action=AUDIT_PASSPHRASE_ISSUED, target=issue, case=case,
                     request=request)
        if address is not None:
            # The passphrase lives only in this closure: it never reaches the task queue.
            transaction.on_commit(lambda: _mail_access(issue.pk, passphrase))
    issue.refresh_from_db()
    return IssuedAccess(issue, passphrase, reissued)


REISSUE_NOT_CONFIRMED = gettext_lazy(
    "Tick the box to confirm: the victim's current passphrase will stop working.")


def portal_sign_in_url() -> str:
    from django.urls import reverse

    return settings.ANSHIM_SITE_URL.rstrip("/") + reverse("portal:sign_in")


def _mail_access(issue_id: int, passphrase: str) -> None:
    """Send the code and passphrase once (the claim on `emailed_at`), by e-mail or by text
    message; the consent is checked again here, at the moment of sending. A failure releases
    the claim and is recorded on the issue so the staff page can say so (the passphrase is
    gone: issue a new one to retry)."""
    claimed = PortalAccessIssue.objects.filter(pk=issue_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now())
    if not claimed:
        return
    issue = PortalAccessIssue.objects.select_related("case__person").get(pk=issue_id)
    case = issue.case
    key = {AccessRecipient.VICTIM: "victim", AccessRecipient.SMS: "sms"}.get(
        AccessRecipient(issue.recipient), f"guardian:{issue.guardian_id}")
    address = next((a for a in access_addresses(case) if a.key == key), None)
    try:
        if address is None:
            raise ValidationError("consent to this contact withdrawn", code="no_email_consent")
        with translation.override(case.person.preferred_language or settings.LANGUAGE_CODE):
            if address.recipient == AccessRecipient.SMS:
                _text_access(issue, address.address, passphrase)
            else:
                _email_access(issue, address.address, passphrase)
    except Exception as exc:  # any failure: the page reports it; the passphrase is gone
        PortalAccessIssue.objects.filter(pk=issue_id).update(
            emailed_at=None, email_error=type(exc).__name__[:200])
        return
    audit_record(actor=issue.issued_by, action=AUDIT_PASSPHRASE_TEXTED if address.recipient ==
                 AccessRecipient.SMS else AUDIT_PASSPHRASE_EMAILED, target=issue, case=case)


def _email_access(issue: PortalAccessIssue, address: str, passphrase: str) -> None:
    from django.core.mail import EmailMessage

    case = issue.case
    subject = _("Anshim support center: how to see your case")
    body = _(
        "Hello. This is the Anshim support center.\n\n"
        "You can see your case, write to your counselor and register your photos "
        "yourself at:\n%(link)s\n\nCase code: %(code)s\nPassphrase: %(passphrase)s\n\n"
        "Keep them where nobody else can see them. If you did not expect this e-mail, "
        "call us: %(phone)s"
    ) % {"link": portal_sign_in_url(), "code": case.code, "passphrase": passphrase,
         "phone": settings.ANSHIM_CENTER_PHONE or "—"}
    EmailMessage(subject, body, to=[address],
                 headers={"Message-ID": f"<portal-access-{issue.pk}-{issue.idempotency_key}"
                                        f"@anshim>"}).send()


def _text_access(issue: PortalAccessIssue, phone: str, passphrase: str) -> None:
    text = _("Anshim support center. See your case: %(link)s Case code: %(code)s "
             "Passphrase: %(passphrase)s") % {
        "link": portal_sign_in_url(), "code": issue.case.code, "passphrase": passphrase}
    sms.send(sms.SmsMessage(phone, text, f"portal-access-{issue.pk}-{issue.idempotency_key}"))


AUDIT_PASSPHRASE_EMAILED = "portal.passphrase.email"  # noqa: S105 - an event type
AUDIT_PASSPHRASE_TEXTED = "portal.passphrase.sms"  # noqa: S105 - an event type


def alert_failed_sign_ins(code: str, failures: int, *,
                          request: HttpRequest | None = None) -> bool:
    """Tell the case's counselors (or the supervisors) when a code's failed sign-ins reach an
    alert level: someone may be trying to get into the victim's case. Nothing happens for an
    unknown code, and nothing is shown to the client."""
    from anshim.portal.throttle import ALERT_AT

    if failures not in ALERT_AT:
        return False
    normalized = codes.normalize(code)
    case = Case.objects.filter(code=normalized).first() if codes.is_valid(normalized) else None
    if case is None:
        return False
    with transaction.atomic():
        _event(case, "portal.sign_in_failures",
               gettext_noop("Many failed sign-ins to the victim's portal page"),
               {"failures": failures})
        _notify_counselors(case, gettext_noop(
            "Many failed sign-ins to the portal on case %(code)s: someone may be trying to "
            "get in. Consider contacting the victim and issuing a new passphrase."))
        _audit(AUDIT_SIGN_IN_FAILURES, case, request)
    return True


AUDIT_SIGN_IN_FAILURES = "portal.sign_in.failures"


# --- Status -----------------------------------------------------------------------------------

# The case status as the young person reads it: what it means for them, not the staff's word
# for the workflow step ("triaged").
STATUS_FOR_VICTIM = {
    CaseStatus.NEW: gettext_noop("We have your report. A counselor will read it soon."),
    CaseStatus.TRIAGED: gettext_noop(
        "A counselor has read your report and will get in touch with you soon."),
    CaseStatus.IN_SUPPORT: gettext_noop("We are working on your case with you."),
    # Erasure work and a closure awaiting approval are still work on the case, for the victim.
    CaseStatus.ERASURE: gettext_noop("We are working on your case with you."),
    CaseStatus.CLOSING: gettext_noop("We are working on your case with you."),
    CaseStatus.ON_HOLD: gettext_noop(
        "Your case is paused for now. You can write to us at any time."),
    CaseStatus.CLOSED: gettext_noop(
        "Your case is closed. If you need help again, write to us or call."),
}


def case_progress(case: Case, *, request: HttpRequest | None = None) -> dict[str, Any]:
    """What the victim sees: counts only, no staff names or notes."""
    from anshim.erasure.models import BankEntry
    from anshim.erasure.summary import case_summary
    from anshim.experts.models import Appointment, AppointmentStatus

    progress: dict[str, Any] = {
        "status": _(STATUS_FOR_VICTIM.get(CaseStatus(case.status),
                                          STATUS_FOR_VICTIM[CaseStatus.IN_SUPPORT])),
        "status_code": case.status,
        "registered": BankEntry.objects.filter(case=case).count(),
        "found": None, "requests_sent": None, "removed": None, "reuploads": None,
        "next_appointment": None,
    }
    summary = case_summary(case) or {}
    for key in ("found", "requests_sent", "removed", "reuploads"):
        progress[key] = summary.get(key)
    nxt = (Appointment.objects.filter(assignment__case=case, status=AppointmentStatus.SCHEDULED,
                                      starts_at__gte=timezone.now())
           .select_related("expert").order_by("starts_at").first())
    if nxt is not None:
        progress["next_appointment"] = {"starts_at": nxt.starts_at, "mode": nxt.get_mode_display(),
                                        "kind": nxt.expert.get_kind_display()}
    _audit("portal.status.view", case, request)
    return progress


def messages_for(case: Case, *, mark_read: bool = False) -> list[PortalMessage]:
    """The thread as the victim sees it (both directions, oldest first). With `mark_read` the
    counselors' replies shown are marked read by the victim."""
    thread = list(case.portal_messages.all())
    unread = [m.pk for m in thread if not m.from_victim and m.read_at is None]
    if mark_read and unread:
        now = timezone.now()
        PortalMessage.objects.filter(pk__in=unread, read_at__isnull=True).update(read_at=now)
    return thread


def send_message(case: Case, body: str, *, request: HttpRequest | None = None) -> PortalMessage:
    from anshim.portal import tasks

    with transaction.atomic():
        msg = PortalMessage.objects.create(case=case, body=body)
        _event(case, "portal.message", gettext_noop("Message from the victim through the portal"),
               {"message": msg.pk})
        _notify_counselors(case, gettext_noop("New portal message on case %(code)s"))
        _audit("portal.message", case, request, msg)
        # The e-mail goes out once the message exists for the worker to read.
        transaction.on_commit(lambda: tasks.send_message_notice.enqueue(msg.pk))
    return msg


def message_recipients(case: Case) -> list[Any]:
    """Who hears of the victim's messages: the case's counselors; when nobody is assigned yet
    (a fresh portal report), the supervisors, who assign the case."""
    from anshim.security.models import User

    recipients = {u for u in [case.lead_counselor, *case.counselors.all()]
                  if u is not None and u.is_active}
    if not recipients:
        recipients = set(User.objects.filter(role=Role.SUPERVISOR, is_active=True))
    return sorted(recipients, key=lambda u: u.pk)


def _notify_counselors(case: Case, message: str) -> None:
    """In-app notifications to `message_recipients`, in each recipient's language."""
    notes = []
    for user in message_recipients(case):
        # Stored as text: translated now, into the language the recipient reads.
        with translation.override(getattr(user, "preferred_language", "") or
                                  settings.LANGUAGE_CODE):
            text = _(message) % {"code": case.code}
        notes.append(Notification(recipient=user, message=text[:300],
                                  link=f"/staff/cases/{case.code}/#messages"))
    Notification.objects.bulk_create(notes)


# --- The counselor's side of the thread ---------------------------------------------------------

INBOX_PAGE_SIZE = 50
MAX_MESSAGE_CHARS = 2000
# Audit event types of the staff side of the thread.
AUDIT_INBOX = "portal_message.inbox"
AUDIT_READ = "portal_message.read"
AUDIT_REPLY = "portal_message.reply"


def response_target() -> dt.timedelta:
    """How long a victim's message may wait for a reply (ANSHIM_PORTAL_RESPONSE_HOURS)."""
    return dt.timedelta(hours=float(settings.ANSHIM_PORTAL_RESPONSE_HOURS))


def is_message_overdue(msg: PortalMessage, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return (msg.from_victim and msg.answered_at is None
            and msg.created_at < now - response_target())


@dataclass(frozen=True)
class InboxRow:
    case: Case
    waiting: int  # the victim's messages with no reply yet
    unread: int  # ... of which no counselor has opened yet
    oldest: dt.datetime  # since when the oldest of them waits
    overdue: bool


def inbox(user: Any, *, page: int | str | None = 1,
          request: HttpRequest | None = None) -> tuple[list[InboxRow], Any]:
    """The cases whose victim is waiting for an answer, longest wait first, a page at a time:
    (rows, the Paginator page). Which cases: `policy.portal_inbox_cases`. Shows no message
    text (that is read, and audited, on the case page); the listing itself is audited."""
    require(user, Action.VIEW_PORTAL_INBOX)
    waiting = (PortalMessage.objects
               .filter(from_victim=True, answered_at__isnull=True,
                       case__in=portal_inbox_cases(user))
               .values("case_id")
               .annotate(waiting=Count("id"), unread=Count("id", filter=Q(read_at__isnull=True)),
                         oldest=Min("created_at"))
               .order_by("oldest", "case_id"))
    current = Paginator(waiting, INBOX_PAGE_SIZE).get_page(page)
    cases = Case.objects.in_bulk([r["case_id"] for r in current])
    cutoff = timezone.now() - response_target()
    rows = [InboxRow(case=cases[r["case_id"]], waiting=r["waiting"], unread=r["unread"],
                     oldest=r["oldest"], overdue=r["oldest"] < cutoff) for r in current]
    audit_record(actor=user, action=AUDIT_INBOX, request=request)
    return rows, current


def unanswered_count(user: Any) -> int:
    """How many cases wait for an answer in `user`'s inbox (for the link to it)."""
    return (PortalMessage.objects
            .filter(from_victim=True, answered_at__isnull=True,
                    case__in=portal_inbox_cases(user))
            .values("case_id").distinct().count())


@dataclass(frozen=True)
class ThreadItem:
    message: PortalMessage
    overdue: bool
    new: bool  # a victim's message no counselor had opened before this page view


def staff_thread(user: Any, case: Case, *,
                 request: HttpRequest | None = None) -> list[ThreadItem] | None:
    """The whole thread for the case page, or None when `user` may not read it. Opening it
    marks the victim's messages read (by `user`) and is audited."""
    if not can(user, Action.VIEW_PORTAL_MESSAGES, case):
        return None
    thread = list(case.portal_messages.select_related("author"))
    if not thread:
        return []
    now = timezone.now()
    unread = [m.pk for m in thread if m.from_victim and m.read_at is None]
    with transaction.atomic():
        if unread:
            PortalMessage.objects.filter(pk__in=unread, read_at__isnull=True).update(
                read_at=now, read_by=user)
        # The notifications that pointed here have done their job.
        Notification.objects.filter(recipient=user, read_at__isnull=True,
                                    link__startswith=f"/staff/cases/{case.code}/").update(
            read_at=now)
        audit_record(actor=user, action=AUDIT_READ, case=case, request=request)
    return [ThreadItem(message=m, overdue=is_message_overdue(m, now), new=m.pk in unread)
            for m in thread]


def reply(actor: Any, case: Case, body: str, *, idempotency_key: str = "",
          request: HttpRequest | None = None) -> PortalMessage:
    """A counselor answers the victim; the victim reads it on the status page.

    Every waiting message of the victim counts as answered. The form's one-time key makes a
    double click or a resent form store one reply, not two."""
    require(actor, Action.REPLY_PORTAL_MESSAGES, case)
    body = body.strip()
    if not body:
        raise ValidationError({"body": [_("The reply is empty.")]}, code="empty")
    if len(body) > MAX_MESSAGE_CHARS:
        raise ValidationError({"body": [_("Please keep the reply under %(n)d characters.")
                                        % {"n": MAX_MESSAGE_CHARS}]}, code="too_long")
    key = idempotency_key.strip()[:64] or None
    try:
        with transaction.atomic():
            msg = PortalMessage.objects.create(case=case, body=body, from_victim=False,
                                               author=actor, idempotency_key=key)
            now = timezone.now()
            answered = PortalMessage.objects.filter(
                case=case, from_victim=True, answered_at__isnull=True)
            answered.filter(read_at__isnull=True).update(read_at=now, read_by=actor)
            count = answered.update(answered_at=now)
            _event_by(actor, case, "portal.reply",
                      gettext_noop("Counselor replied through the portal"),
                      {"message": msg.pk, "answered": count})
            audit_record(actor=actor, action=AUDIT_REPLY, target=msg, case=case,
                         request=request)
    except IntegrityError:
        existing = PortalMessage.objects.filter(idempotency_key=key, case=case).first()
        if key is None or existing is None:
            raise
        return existing  # the same form sent twice: already stored once
    return msg


def _event_by(actor: Any, case: Case, kind: str, message: str, data: dict[str, Any]) -> None:
    add_event(case, kind, message, actor, data)


# --- On-device fingerprints -------------------------------------------------------------------

def registration_blocker(case: Case) -> str | None:
    """Why fingerprints cannot be registered from the portal (None when they can)."""
    if consent_rules.needs_guardian_consent(case) and ConsentGiver.GUARDIAN in (
            consent_rules.missing_givers(case, ConsentScope.REGISTER_FINGERPRINTS)):
        return _("Because you are under 14, a parent or legal guardian must also agree. "
                 "Your counselor will help you with this.")
    return None


def _hex(value: Any, pattern: re.Pattern[str]) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.lower()
    return value if pattern.match(value) else None


def _quality(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        return None
    return value


def _timestamp(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if 0 <= value <= MAX_VIDEO_SECONDS else None  # rejects nan and inf too


def validate_registration(payload: Any) -> list[dict[str, Any]]:
    """The items of a registration request, checked; ValidationError with a clear message."""
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise ValidationError(_("The request must contain a list of items."), code="no_items")
    if payload.get("consent") is not True:
        raise ValidationError(
            _("Please confirm that we may use these fingerprints to find copies."),
            code="no_consent")
    items = payload["items"]
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationError(_("Send between 1 and %(n)d items at once.") % {"n": MAX_ITEMS},
                              code="item_count")
    clean: list[dict[str, Any]] = []
    for i, item in enumerate(items, start=1):
        where = _("Item %(i)d") % {"i": i}
        if not isinstance(item, dict) or item.get("kind") not in ("image", "video"):
            raise ValidationError(_("%(w)s: unknown kind.") % {"w": where}, code="bad_kind")
        md5 = _hex(item.get("md5"), _HEX32)
        if md5 is None:
            raise ValidationError(_("%(w)s: the MD5 is not 32 hexadecimal characters.")
                                  % {"w": where}, code="bad_md5")
        if item["kind"] == "image":
            pdq = _hex(item.get("pdq"), _HEX64)
            quality = _quality(item.get("quality"))
            if pdq is None:
                raise ValidationError(_("%(w)s: the PDQ hash is not 64 hexadecimal characters.")
                                      % {"w": where}, code="bad_pdq")
            if quality is None:
                raise ValidationError(_("%(w)s: quality must be a whole number from 0 to 100.")
                                      % {"w": where}, code="bad_quality")
            clean.append({"kind": "image", "md5": md5, "pdq": pdq, "quality": quality})
            continue
        frames = item.get("frames")
        if not isinstance(frames, list) or not 1 <= len(frames) <= MAX_FRAMES:
            raise ValidationError(_("%(w)s: a video needs 1 to %(n)d frames.")
                                  % {"w": where, "n": MAX_FRAMES}, code="frame_count")
        out = []
        for f in frames:
            frame = f if isinstance(f, dict) else {}
            pdq = _hex(frame.get("pdq"), _HEX64)
            quality = _quality(frame.get("quality"))
            ts = _timestamp(frame.get("timestamp"))
            if pdq is None or quality is None or ts is None:
                raise ValidationError(_("%(w)s: a video frame is malformed.") % {"w": where},
                                      code="bad_frame")
            out.append({"pdq": pdq, "quality": quality, "timestamp": ts})
        clean.append({"kind": "video", "md5": md5, "frames": out})
    return clean


def _hash_values(item: dict[str, Any]) -> list[Any]:
    from anshim.erasure.models import ENGINE_PORTAL_JS, FingerprintKind
    from anshim.erasure.services import HashValue

    # Hashed in the victim's browser by pdq.js, which decodes at full size (exact).
    js = ENGINE_PORTAL_JS
    rows = [HashValue(FingerprintKind.MD5, item["md5"], engine=js)]
    if item["kind"] == "image":
        rows.append(HashValue(FingerprintKind.PDQ, item["pdq"], quality=item["quality"],
                              engine=js))
    else:
        rows.extend(
            HashValue(FingerprintKind.VPDQ, f["pdq"], quality=f["quality"], frame_number=n,
                      timestamp=f["timestamp"], engine=js)
            for n, f in enumerate(item["frames"])
        )
    return rows


def portal_bank() -> Any:
    """The bank that portal registrations go into (created on first use)."""
    from anshim.erasure import services as bank_services
    from anshim.erasure.models import Bank, BankPurpose

    bank = Bank.objects.filter(name=PORTAL_BANK).first()
    if bank is not None:
        return bank
    try:
        with transaction.atomic():
            return bank_services.create_bank(PORTAL_BANK, purpose=BankPurpose.VICTIM_IMAGES,
                                             actor=None)
    except (IntegrityError, ValidationError):  # created concurrently
        return Bank.objects.get(name=PORTAL_BANK)


def registered_md5s(case: Case) -> set[str]:
    from anshim.erasure.models import Fingerprint, FingerprintKind

    return set(Fingerprint.objects.filter(entry__case=case, kind=FingerprintKind.MD5)
               .values_list("value", flat=True))


def register_from_device(case: Case, payload: Any, *, request: HttpRequest | None = None
                         ) -> dict[str, Any]:
    """Register fingerprints computed on the victim's device into the portal bank.

    A file already registered on this case (same MD5) is skipped, so sending twice is harmless.
    """
    from anshim.erasure import services as bank_services
    from anshim.erasure.models import EntrySource

    items = validate_registration(payload)
    blocker = registration_blocker(case)
    if blocker:
        raise ValidationError(blocker, code="guardian_needed")
    with transaction.atomic():
        # Ticking the box on the page is the victim's consent to register fingerprints.
        consent_rules.grant(case, ConsentScope.REGISTER_FINGERPRINTS, ConsentGiver.VICTIM,
                            recorded_by=None, method="portal")
        bank = portal_bank()
        known = registered_md5s(case)
        entry_ids: list[int] = []
        skipped = 0
        for item in items:
            if item["md5"] in known:
                skipped += 1
                continue
            known.add(item["md5"])
            entry = bank_services.register_fingerprints(
                bank, case=case, fingerprints=_hash_values(item),
                source=EntrySource.VICTIM_PORTAL, actor=None,
                label=f"portal {item['kind']}",  # labels travel with exports: no personal data
            )
            entry_ids.append(entry.pk)
        _audit("portal.fingerprints.register", case, request)
    return {"registered": len(entry_ids), "skipped": skipped, "entries": entry_ids,
            "total": len(known)}


def entries_for(case: Case, *, request: HttpRequest | None = None) -> list[Any]:
    """The case's registered items (hashes only) for the withdrawal page."""
    from anshim.erasure.models import BankEntry

    entries = list(BankEntry.objects.filter(case=case).order_by("added_at", "pk")
                   .prefetch_related("fingerprints"))
    _audit("portal.fingerprints.view", case, request)
    return entries


@dataclass(frozen=True)
class WithdrawRow:
    """One registered item as the withdrawal page labels it: a number in the order of
    registration, the kind, the day, and a short id from its fingerprint, so two photos
    registered on one day can be told apart without the server ever holding the images."""

    pk: int
    number: int
    media_kind: str
    added_at: dt.datetime
    short_id: str
    frames: int


def withdraw_rows(case: Case, *, request: HttpRequest | None = None) -> list[WithdrawRow]:
    rows = []
    for number, entry in enumerate(entries_for(case, request=request), start=1):
        prints = list(entry.fingerprints.all())
        # The first 8 hex digits of the PDQ hash (a video's first frame): the registration
        # page shows the same next to its preview (fingerprint-page.js, shortId).
        perceptual = sorted((f for f in prints if f.kind in ("pdq", "vpdq")),
                            key=lambda f: (f.frame_number or 0, f.timestamp or 0.0, f.pk))
        short = perceptual[0].value[:8].upper() if perceptual else "—"
        rows.append(WithdrawRow(entry.pk, number, entry.media_kind, entry.added_at, short,
                                len(perceptual)))
    return rows


def active_consents(case: Case) -> list[str]:
    """The scopes the victim has granted and not withdrawn."""
    return sorted(set(case.consents.filter(withdrawn_at__isnull=True, given_by=ConsentGiver.VICTIM)
                      .values_list("scope", flat=True)))


def active_consent_choices(case: Case) -> list[tuple[str, str]]:
    """(scope, label) of the victim's active consents, for the withdrawal form."""
    return [(scope, str(ConsentScope(scope).label)) for scope in active_consents(case)]


@dataclass(frozen=True)
class Withdrawn:
    fingerprints: int
    consents: int


def withdraw(case: Case, *, entry_ids: list[int], scopes: list[str], everything: bool = False,
             request: HttpRequest | None = None) -> Withdrawn:
    """Withdraw fingerprints and/or consents; withdrawn fingerprints leave matching at once.

    Withdrawing the fingerprint consent withdraws every fingerprint of the case with it.
    """
    from anshim.erasure import services as bank_services
    from anshim.erasure.models import BankEntry

    if everything:
        entry_ids = list(BankEntry.objects.filter(case=case).values_list("pk", flat=True))
        scopes = active_consents(case)
    if set(scopes) - set(ConsentScope.values):
        raise ValidationError(_("Unknown permission."), code="bad_scope")
    if not entry_ids and not scopes:
        raise ValidationError(_("Choose what you want to withdraw."), code="nothing")
    own = set(BankEntry.objects.filter(case=case, pk__in=entry_ids).values_list("pk", flat=True))
    if own != set(entry_ids):
        raise ValidationError(_("Some of these fingerprints do not belong to your case."),
                              code="not_own")
    if ConsentScope.REGISTER_FINGERPRINTS in scopes:
        own |= set(BankEntry.objects.filter(case=case).values_list("pk", flat=True))
    consents = 0
    with transaction.atomic():
        if own:
            bank_services.withdraw_entries(sorted(own), actor=None, reason=REASON)
        for scope in scopes:
            # Only the victim's own consents: a guardian withdraws through the counselor.
            n = consent_rules.withdraw(case, scope, ConsentGiver.VICTIM)
            if n:
                consents += n
                _event(case, "consent.withdrawn", gettext_noop("Consent withdrawn"),
                       {"scope": scope, "given_by": ConsentGiver.VICTIM})
        if scopes:
            _notify_counselors(case, gettext_noop("The victim withdrew consent on case %(code)s"))
        _audit("portal.withdraw", case, request)
    return Withdrawn(fingerprints=len(own), consents=consents)
