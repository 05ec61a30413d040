"""Case services: every change to a case goes through these plain functions.

Each one asks the access policy first, writes inside a transaction, adds a timeline event and
records an audit entry. Views and the API stay thin and call these.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import time_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from anshim.cases import codes, consent, transitions
from anshim.cases.models import (
    AgeGroup,
    Case,
    CaseHarm,
    CaseStatus,
    Channel,
    ConsentGiver,
    ConsentScope,
    Contact,
    ContactPreference,
    Guardian,
    HarmType,
    Note,
    NoteKind,
    Notification,
    OffenderRelationship,
    Person,
    Referral,
    ReferralStatus,
    ReferralTarget,
    Region,
    RiskLevel,
    Sex,
    TimelineEvent,
    TriageAssessment,
)
from anshim.cases.signals import case_rows_updated
from anshim.cases.triage import TriageFactors, assess
from anshim.cases.workflow import Implied
from anshim.security.audit import record as audit_record
from anshim.security.policy import Action, require

User = Any  # the staff user model instance


# --- Errors -----------------------------------------------------------------------------------


class StaleEdit(Exception):
    """The case changed since the editor loaded it (optimistic locking on Case.version)."""

    code = "stale_edit"

    def __init__(self, case: Case, expected_version: int) -> None:
        self.case = case
        self.expected_version = expected_version
        self.current_version = case.version
        self.changed_at = case.updated_at
        super().__init__(self.text)

    @property
    def text(self) -> str:
        when = time_format(timezone.localtime(self.changed_at), "H:i") if self.changed_at else "?"
        return str(_(
            "Someone else changed this case at %(time)s. Reload the page to see their changes; "
            "your input has been kept."
        ) % {"time": when})


# --- Audit and timeline ---------------------------------------------------------------------


def audit(*, actor: Any, action: str, target: Any = None, case: Case | None = None,
          request: HttpRequest | None = None, reason: str = "") -> None:
    """Record an audit entry (inside the caller's transaction, so a rolled-back write leaves
    no line claiming it happened)."""
    audit_record(actor=_actor_or_none(actor), action=action, target=target, case=case,
                 request=request, reason=reason)


def add_event(case: Case, kind: str, message: str, actor: Any = None,
              data: dict[str, Any] | None = None) -> TimelineEvent:
    """Append to the case timeline. `message` is an English msgid (translated on display) and
    must hold no personal data; `data` holds codes and ids only."""
    return TimelineEvent.objects.create(
        case=case, kind=kind, message=message[:300], actor=actor, data=data or {}
    )


def _actor_or_none(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


# --- Intake ---------------------------------------------------------------------------------


@dataclass
class GuardianData:
    name: str = ""
    phone: str = ""
    email: str = ""
    relationship: str = ""
    is_legal_guardian: bool = True


@dataclass
class IntakeData:
    channel: str
    started_at: dt.datetime
    duration_minutes: int = 0
    harm_types: list[str] = field(default_factory=list)
    factors: TriageFactors = field(default_factory=TriageFactors)
    age_group: str = AgeGroup.UNKNOWN
    sex: str = Sex.UNKNOWN
    region: str = Region.UNKNOWN
    offender_relationship: str = OffenderRelationship.UNKNOWN
    name: str = ""
    birth_date: dt.date | None = None
    phone: str = ""
    email: str = ""
    address: str = ""
    contact_preference: str = ContactPreference.PORTAL
    guardian: GuardianData | None = None
    victim_consents: list[str] = field(default_factory=list)
    guardian_consents: list[str] = field(default_factory=list)
    summary: str = ""

    def validate(self) -> None:
        errors: dict[str, list[Any]] = {}
        if self.channel not in Channel.values:
            errors.setdefault("channel", []).append(_("Choose a channel."))
        if self.age_group not in AgeGroup.values:
            errors.setdefault("age_group", []).append(_("Choose an age group."))
        if self.sex not in Sex.values:
            errors.setdefault("sex", []).append(_("Choose a sex."))
        if self.region not in Region.values:
            errors.setdefault("region", []).append(_("Choose a region."))
        if self.offender_relationship not in OffenderRelationship.values:
            errors.setdefault("offender_relationship", []).append(
                _("Choose the offender's relationship."))
        if self.contact_preference not in ContactPreference.values:
            errors.setdefault("contact_preference", []).append(_("Choose a contact preference."))
        bad = [h for h in self.harm_types if h not in HarmType.values]
        if bad or not self.harm_types:
            errors.setdefault("harm_types", []).append(_("Choose at least one harm type."))
        if self.duration_minutes < 0 or self.duration_minutes > 24 * 60:
            errors.setdefault("duration_minutes", []).append(
                _("Duration must be between 0 and 1440 minutes."))
        try:
            self.started_at = contact_moment(self.started_at)
        except ValidationError as exc:
            errors.setdefault("started_at", []).extend(exc.message_dict["started_at"])
        if self.guardian_consents and self.guardian is None:
            errors.setdefault("guardian_consents", []).append(
                _("Enter the guardian before recording a guardian's consent."))
        if errors:
            raise ValidationError(errors)


#: the earliest contact time accepted (older is a typing error, and PostgreSQL cannot store
#: some far-off moments with their offsets)
EARLIEST_CONTACT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def contact_moment(value: dt.datetime) -> dt.datetime:
    """A contact's time as UTC, or a ValidationError: with a time zone, from 2000 on and not
    more than a day ahead (a clock's error, not a plan)."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    try:
        moment = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        moment = EARLIEST_CONTACT - dt.timedelta(days=1)
    if not EARLIEST_CONTACT <= moment <= timezone.now() + dt.timedelta(days=1):
        raise ValidationError({"started_at": [
            _("Enter a contact time from 2000 until today.")]})
    return moment


def intake(actor: Any, data: IntakeData, request: HttpRequest | None = None) -> Case:
    """Hotline intake: person, guardian, case, harms, first contact, triage and consents, all or
    nothing."""
    require(actor, Action.CREATE_CASE)
    data.validate()
    for attempt in range(3):
        try:
            return _intake_once(actor, data, request)
        except IntegrityError:
            # Only a case-code collision between two concurrent intakes is worth a retry.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _intake_once(actor: Any, data: IntakeData, request: HttpRequest | None) -> Case:
    with transaction.atomic():
        person = Person.objects.create(  # type: ignore[misc]  # encrypted date field
            name=data.name, birth_date=data.birth_date, phone=data.phone, email=data.email,
            address=data.address, age_group=data.age_group, sex=data.sex, region=data.region,
            contact_preference=data.contact_preference,
        )
        guardian = None
        if data.guardian is not None:
            guardian = Guardian.objects.create(
                person=person, name=data.guardian.name, phone=data.guardian.phone,
                email=data.guardian.email, relationship=data.guardian.relationship,
                is_legal_guardian=data.guardian.is_legal_guardian,
            )
        case = Case.objects.create(
            code=codes.new_unique_code(), person=person, channel=data.channel,
            summary=data.summary, status=CaseStatus.NEW,
            offender_relationship=data.offender_relationship,
            lead_counselor=actor if getattr(actor, "role", "") == "counselor" else None,
        )
        CaseHarm.objects.bulk_create(
            [CaseHarm(case=case, harm_type=h) for h in dict.fromkeys(data.harm_types)]
        )
        add_event(case, "case.created", gettext_noop("Case opened at hotline intake"), actor,
                  {"channel": data.channel, "harm_types": list(data.harm_types)})
        contact = Contact.objects.create(
            case=case, channel=data.channel, started_at=data.started_at,
            duration_minutes=data.duration_minutes, counselor=actor, summary=data.summary,
        )
        add_event(case, "contact.added", gettext_noop("Contact logged"), actor,
                  {"contact": contact.pk, "channel": data.channel})
        factors = TriageFactors(**{
            **data.factors.to_json(), "age_group": data.age_group,
            "harm_types": tuple(data.harm_types),
        })
        _apply_triage(case, factors, actor)
        for scope in data.victim_consents:
            consent.grant(case, scope, ConsentGiver.VICTIM, recorded_by=actor)
            add_event(case, "consent.granted", gettext_noop("Consent granted"), actor,
                      {"scope": scope, "given_by": ConsentGiver.VICTIM})
        for scope in data.guardian_consents:
            consent.grant(case, scope, ConsentGiver.GUARDIAN, recorded_by=actor, guardian=guardian)
            add_event(case, "consent.granted", gettext_noop("Consent granted"), actor,
                      {"scope": scope, "given_by": ConsentGiver.GUARDIAN})
        audit(actor=actor, action="case.create", target=case, case=case, request=request)
    return case


# --- Triage ---------------------------------------------------------------------------------


def _apply_triage(case: Case, factors: TriageFactors, actor: Any) -> TriageAssessment:
    result = assess(factors)
    assessment = TriageAssessment.objects.create(
        case=case, assessed_by=_actor_or_none(actor), factors=factors.to_json(),
        computed_level=result.level, reasons=result.reason_codes, deadline=result.deadline,
    )
    Case.objects.filter(pk=case.pk).update(
        risk_level=result.level, response_due=result.deadline, version=F("version") + 1,
        updated_at=timezone.now(),
    )
    case.refresh_from_db()
    add_event(case, "triage.assessed", gettext_noop("Risk assessed"), actor,
              {"level": result.level, "reasons": result.reason_codes})
    # A first assessment moves a new case on (the workflow says from where to where).
    transitions.imply(case, Implied.TRIAGE_DONE, actor=_actor_or_none(actor))
    case.refresh_from_db()
    return assessment


def reassess(actor: Any, case: Case, factors: TriageFactors,
             request: HttpRequest | None = None) -> TriageAssessment:
    require(actor, Action.TRIAGE, case)
    factors = TriageFactors(**{
        **factors.to_json(), "age_group": case.person.age_group,
        "harm_types": tuple(case.harm_types),
    })
    with transaction.atomic():
        assessment = _apply_triage(case, factors, actor)
        audit(actor=actor, action="triage.assess", target=assessment, case=case, request=request)
    return assessment


def override_triage(actor: Any, case: Case, level: str, reason: str,
                    request: HttpRequest | None = None) -> TriageAssessment:
    """A supervisor sets the level by hand; who, why and when are recorded."""
    require(actor, Action.OVERRIDE_TRIAGE, case)
    from anshim.cases.triage import RESPONSE_TIME

    if level not in RESPONSE_TIME:
        raise ValidationError({"level": [_("Choose a risk level.")]})
    if not reason.strip():
        raise ValidationError({"reason": [_("Give a reason for the override.")]})
    with transaction.atomic():
        assessment = case.assessments.order_by("-created_at", "-id").first()
        if assessment is None:
            raise ValidationError(_("The case has no assessment to override yet."))
        now = timezone.now()
        assessment.override_level = level
        assessment.override_reason = reason.strip()
        assessment.overridden_by = actor
        assessment.overridden_at = now
        assessment.save()
        deadline = assessment.created_at + RESPONSE_TIME[level]
        Case.objects.filter(pk=case.pk).update(
            risk_level=level, response_due=deadline, version=F("version") + 1, updated_at=now
        )
        case.refresh_from_db()
        add_event(case, "triage.overridden", gettext_noop("Risk level overridden by supervisor"),
                  actor, {"level": level, "previous": assessment.computed_level})
        # The reason is personal data: it stays in the encrypted assessment; the audit row
        # names the event type and the assessment only.
        audit(actor=actor, action="triage.override", target=assessment, case=case,
              request=request)
    return assessment


# --- Case edits (optimistic locking) --------------------------------------------------------

EDITABLE_FIELDS = ("status", "summary", "lead_counselor", "counselors", "erasure_specialists",
                   "offender_relationship")
# Who may be put on a case in each capacity (need-to-know follows these assignments).
_STAFF_ROLES = {
    "lead_counselor": ("counselor", "supervisor"),
    "counselors": ("counselor", "supervisor"),
    "erasure_specialists": ("erasure", "supervisor"),
}


def _check_staff(changes: dict[str, Any]) -> None:
    for name, roles in _STAFF_ROLES.items():
        if name not in changes or changes[name] is None:
            continue
        people = changes[name] if isinstance(changes[name], list) else [changes[name]]
        for person in people:
            if getattr(person, "role", None) not in roles or not person.is_active:
                raise ValidationError({name: [_("%(user)s cannot be assigned in this role.")
                                               % {"user": person}]})


def update_case(actor: Any, case: Case, expected_version: int, changes: dict[str, Any],
                request: HttpRequest | None = None) -> Case:
    """Apply `changes` only if nobody saved the case since `expected_version` was read.

    The compare-and-set is a single UPDATE ... WHERE version = expected, so two concurrent
    editors can never both win (on SQLite and PostgreSQL alike). Raises StaleEdit otherwise.
    Changing who is assigned needs ASSIGN_COUNSELORS as well (need-to-know follows the
    assignment, so nobody may put themselves on a case to read its notes).
    """
    return _update_case(actor, case, expected_version, changes, request)


def _update_case(actor: Any, case: Case, expected_version: int, changes: dict[str, Any],
                 request: HttpRequest | None, *,
                 event: tuple[str, str] | None = None) -> Case:
    """update_case, plus an optional extra timeline event (kind, msgid) written in the same
    transaction."""
    require(actor, Action.EDIT_CASE, case)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(_("These fields cannot be changed here: %(fields)s"),
                              params={"fields": ", ".join(sorted(unknown))})
    if "status" in changes and changes["status"] not in CaseStatus.values:
        raise ValidationError({"status": [_("Choose a status.")]})
    _check_staff(changes)
    many = ("summary", "counselors", "erasure_specialists")
    # Not durable: the role-matrix test runs every view inside a rolled-back transaction.
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        assignment = _assignment_changes(locked, changes)
        if assignment:
            require(actor, Action.ASSIGN_COUNSELORS, case)
        values: dict[str, Any] = {k: v for k, v in changes.items() if k not in many}
        if values.get("status", locked.status) != locked.status:
            # The status moves only along the workflow (anshim.cases.transitions): its checks,
            # the closure approval and the history live there, never in a plain edit.
            raise ValidationError({"status": [_(
                "Change the status with the workflow buttons on the case page.")]},
                code="status_via_workflow")
        values.pop("status", None)
        now = timezone.now()
        updated = Case.objects.filter(pk=case.pk, version=expected_version).update(
            version=F("version") + 1, updated_at=now, **values
        )
        if not updated:
            case.refresh_from_db()
            raise StaleEdit(case, expected_version)
        # A queryset update sends no post_save: say which columns changed (the reports drop
        # the kept tables of a closed period that counts one of them).
        case_rows_updated.send(sender=Case, case_ids=[case.pk], fields=frozenset(values))
        if "summary" in changes:
            # Encrypted fields must go through the field's get_prep_value: save() them.
            fresh = Case.objects.get(pk=case.pk)
            fresh.summary = changes["summary"]
            fresh.save(update_fields=["summary"])
        if "counselors" in changes:
            case.counselors.set(changes["counselors"])
        if "erasure_specialists" in changes:
            case.erasure_specialists.set(changes["erasure_specialists"])
        case.refresh_from_db()
        add_event(case, "case.updated", gettext_noop("Case updated"), actor,
                  {"fields": sorted(changes)})
        audit(actor=actor, action="case.update", target=case, case=case, request=request)
        if assignment:
            add_event(case, "case.staff_assigned", gettext_noop("Staff assignment changed"),
                      actor, assignment)
            # The ids added and removed are on the timeline event; the audit row names the
            # event type and the case.
            audit(actor=actor, action=CASE_STAFF_ASSIGN, target=case, case=case,
                  request=request)
        if event is not None:
            add_event(case, event[0], event[1], actor)
    return case


# The audit event type of a change of who is assigned to a case (data: the user ids added and
# removed per capacity).
CASE_STAFF_ASSIGN = "case.staff_assign"


def _assignment_changes(case: Case, changes: dict[str, Any]) -> dict[str, Any]:
    """What `changes` does to the case's staff, as ids: {capacity: {"added": [...],
    "removed": [...]}}; empty when nobody is added or removed."""
    current: dict[str, set[int]] = {
        "lead_counselor": {case.lead_counselor_id} if case.lead_counselor_id else set(),
        "counselors": set(case.counselors.values_list("pk", flat=True)),
        "erasure_specialists": set(case.erasure_specialists.values_list("pk", flat=True)),
    }
    out: dict[str, Any] = {}
    for name, before in current.items():
        if name not in changes:
            continue
        value = changes[name]
        people = value if isinstance(value, list) else ([value] if value is not None else [])
        after = {p.pk for p in people}
        if after != before:
            out[name] = {"added": sorted(after - before), "removed": sorted(before - after)}
    return out


# --- Contacts, notes ------------------------------------------------------------------------


def add_contact(actor: Any, case: Case, *, channel: str, started_at: dt.datetime,
                duration_minutes: int = 0, summary: str = "",
                request: HttpRequest | None = None) -> Contact:
    require(actor, Action.EDIT_CASE, case)
    if channel not in Channel.values:
        raise ValidationError({"channel": [_("Choose a channel.")]})
    if not 0 <= duration_minutes <= 24 * 60:
        raise ValidationError({"duration_minutes": [
            _("Duration must be between 0 and 1440 minutes.")]})
    started_at = contact_moment(started_at)
    with transaction.atomic():
        contact = Contact.objects.create(
            case=case, channel=channel, started_at=started_at,
            duration_minutes=duration_minutes, counselor=actor, summary=summary,
        )
        add_event(case, "contact.added", gettext_noop("Contact logged"), actor,
                  {"contact": contact.pk, "channel": channel})
        audit(actor=actor, action="contact.create", target=contact, case=case, request=request)
    return contact


def add_note(actor: Any, case: Case, *, body: str, kind: str = NoteKind.COUNSELING,
             request: HttpRequest | None = None) -> Note:
    require(actor, Action.ADD_NOTE, case)
    if kind not in NoteKind.values:
        raise ValidationError({"kind": [_("Choose a note kind.")]})
    if not body.strip():
        raise ValidationError({"body": [_("The note is empty.")]})
    with transaction.atomic():
        note = Note.objects.create(case=case, author=actor, kind=kind, body=body)
        add_event(case, "note.added", gettext_noop("Note added"), actor,
                  {"note": note.pk, "kind": kind})
        audit(actor=actor, action="note.create", target=note, case=case, request=request)
    return note


def visible_notes(actor: Any, case: Case, request: HttpRequest | None = None) -> list[Note]:
    """Notes `actor` may read: counseling notes per VIEW_COUNSELING_NOTES, case notes per
    VIEW_PERSONAL_DATA (they are free text and may name people). Reading them is audited."""
    from anshim.security.policy import can

    kinds = []
    if can(actor, Action.VIEW_COUNSELING_NOTES, case):
        kinds.append(NoteKind.COUNSELING)
    if can(actor, Action.VIEW_PERSONAL_DATA, case):
        kinds.append(NoteKind.CASE)
    notes = list(case.notes.filter(kind__in=kinds).select_related("author"))
    if notes:
        audit(actor=actor, action="note.view", case=case, request=request)
    return notes


# --- Consent --------------------------------------------------------------------------------


def grant_consent(actor: Any, case: Case, scope: str, given_by: str, *, method: str = "verbal",
                  guardian: Guardian | None = None, request: HttpRequest | None = None) -> Any:
    require(actor, Action.MANAGE_CONSENT, case)
    if given_by == ConsentGiver.GUARDIAN and guardian is None:
        guardian = case.person.guardians.filter(is_legal_guardian=True).first()
    with transaction.atomic():
        record = consent.grant(case, scope, given_by, recorded_by=actor, method=method,
                               guardian=guardian)
        add_event(case, "consent.granted", gettext_noop("Consent granted"), actor,
                  {"scope": scope, "given_by": given_by, "method": method})
        audit(actor=actor, action="consent.grant", target=record, case=case, request=request)
    return record


@dataclass(frozen=True)
class KeepDataFollowUp:
    """The victim withdrew consent to keep case data: what to delete, and by when."""

    withdrawn_at: dt.datetime
    delete_by: dt.date


def keep_data_follow_up(case: Case) -> KeepDataFollowUp | None:
    """The open follow-up of a withdrawn keep-data consent (none while a consent is active)."""
    if consent.has_consent(case, ConsentScope.KEEP_DATA):
        return None
    last = (case.consents.filter(scope=ConsentScope.KEEP_DATA, withdrawn_at__isnull=False)
            .order_by("-withdrawn_at").first())
    if last is None or last.withdrawn_at is None:
        return None
    days = dt.timedelta(days=settings.ANSHIM_WITHDRAWN_DATA_DELETE_DAYS)
    return KeepDataFollowUp(last.withdrawn_at, timezone.localdate(last.withdrawn_at + days))


def _keep_data_follow_up(actor: Any, case: Case) -> None:
    """A task for the case's counselor (and whoever recorded it): delete the case data by the
    retention deadline. In the center's language: notifications are stored as text."""
    follow = keep_data_follow_up(case)
    if follow is None:
        return
    recipients = {u.pk: u for u in (case.lead_counselor, actor) if u is not None}
    with translation.override(settings.LANGUAGE_CODE):
        text = _("%(code)s: the victim withdrew consent to keep case data. Delete the case "
                 "data by %(date)s.") % {"code": case.code, "date": follow.delete_by.isoformat()}
    link = reverse("cases:detail", kwargs={"code": case.code})
    Notification.objects.bulk_create(
        Notification(recipient=u, message=str(text)[:300], link=link) for u in recipients.values())


def withdraw_consent(actor: Any, case: Case, scope: str, given_by: str | None = None,
                     request: HttpRequest | None = None, *, method: str = "") -> int:
    """Withdraw; `method` is how the withdrawal reached the center (a ConsentMethod value)."""
    require(actor, Action.MANAGE_CONSENT, case)
    with transaction.atomic():
        count = consent.withdraw(case, scope, given_by)
        add_event(case, "consent.withdrawn", gettext_noop("Consent withdrawn"), actor,
                  {"scope": scope, "given_by": given_by or "all", "method": method})
        audit(actor=actor, action="consent.withdraw", case=case, request=request)
        if scope == ConsentScope.KEEP_DATA and count and not consent.has_consent(case, scope):
            _keep_data_follow_up(actor, case)
        if scope == ConsentScope.REGISTER_FINGERPRINTS and not consent.has_consent(case, scope):
            # Without this consent the case's fingerprints may not be used: they leave every
            # bank (tombstones tell partners to delete them too).
            from anshim.erasure.services import withdraw_case_entries

            # The system acts here (the withdrawal above is audited with the staff member):
            # counselors record consent but do not manage banks.
            withdraw_case_entries(case, actor=None, reason="consent withdrawn")
    return count


# --- Referrals ------------------------------------------------------------------------------


def create_referral(actor: Any, case: Case, *, target: str, organization: str, reason: str = "",
                    request: HttpRequest | None = None) -> Referral:
    require(actor, Action.MANAGE_REFERRALS, case)
    if target not in ReferralTarget.values:
        raise ValidationError({"target": [_("Choose where to refer.")]})
    if not organization.strip():
        raise ValidationError({"organization": [_("Name the organization.")]})
    if target == ReferralTarget.POLICE:
        # Passing the case to the police shares case data: it needs the victim's consent.
        consent.require_consent(case, "share_police")
    with transaction.atomic():
        referral = Referral.objects.create(
            case=case, target=target, organization=organization.strip()[:200], reason=reason,
            created_by=actor,
        )
        add_event(case, "referral.created", gettext_noop("Referral created"), actor,
                  {"referral": referral.pk, "target": target})
        audit(actor=actor, action="referral.create", target=referral, case=case, request=request)
        transitions.imply(case, Implied.SUPPORT_STARTED, actor=actor, request=request)
    return referral


def update_referral(actor: Any, referral: Referral, *, status: str, outcome: str = "",
                    request: HttpRequest | None = None) -> Referral:
    case = referral.case
    require(actor, Action.MANAGE_REFERRALS, case)
    if status not in ReferralStatus.values:
        raise ValidationError({"status": [_("Choose a status.")]})
    with transaction.atomic():
        referral.status = status
        if outcome:
            referral.outcome = outcome
        referral.save()
        add_event(case, "referral.updated", gettext_noop("Referral status changed"), actor,
                  {"referral": referral.pk, "status": status})
        audit(actor=actor, action="referral.update", target=referral, case=case, request=request)
    return referral


def is_overdue(case: Case, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return (case.status != CaseStatus.CLOSED and case.response_due is not None
            and case.response_due < now)


__all__ = [
    "GuardianData", "IntakeData", "RiskLevel", "StaleEdit", "add_contact", "add_event",
    "add_note", "create_referral", "grant_consent", "intake", "is_overdue",
    "override_triage", "reassess", "update_case", "update_referral",
    "visible_notes", "withdraw_consent",
]
