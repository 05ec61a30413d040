"""The case file: the victim, guardians, the case and everything recorded on it.

Personal data (names, birth dates, phone numbers, e-mail and postal addresses, free-text
summaries and notes) is encrypted at rest; only the minimum needed to route work (age group,
harm types, status, risk) is kept in the clear.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from anshim.security.crypto import EncryptedDateField, EncryptedTextField


class HarmType(models.TextChoices):
    UNSOLICITED = "unsolicited", _("Unsolicited sexual images or messages")
    GROOMING = "grooming", _("Grooming (persistent messages, requests to meet offline)")
    DISTRIBUTION = "distribution", _("Distribution or threat of distribution of intimate images")
    SOLICITATION = "solicitation", _("Solicitation of sexual images or acts for money")
    SEXTORTION = "sextortion", _("Sextortion")
    SYNTHETIC = "synthetic", _("Synthetic or deepfake images")
    HIDDEN_CAMERA = "hidden_camera", _("Hidden-camera footage")
    OTHER = "other", _("Other")


class AgeGroup(models.TextChoices):
    UNDER_14 = "under14", _("Under 14")
    AGE_14_17 = "14to17", _("14–17")  # noqa: RUF001 - an en dash is right for a range
    ADULT = "adult", _("18 or older")
    UNKNOWN = "unknown", _("Unknown")


class Sex(models.TextChoices):
    """The victim's sex as the ministry's annual tables count it."""

    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other or not disclosed")
    UNKNOWN = "unknown", _("Unknown")


class Region(models.TextChoices):
    """Where the victim lives: the province or metropolitan city (시·도), never finer (the
    address itself is encrypted; this coarse code is what the annual tables count)."""

    SEOUL = "seoul", _("Seoul")
    BUSAN = "busan", _("Busan")
    DAEGU = "daegu", _("Daegu")
    INCHEON = "incheon", _("Incheon")
    GWANGJU = "gwangju", _("Gwangju")
    DAEJEON = "daejeon", _("Daejeon")
    ULSAN = "ulsan", _("Ulsan")
    SEJONG = "sejong", _("Sejong")
    GYEONGGI = "gyeonggi", _("Gyeonggi")
    GANGWON = "gangwon", _("Gangwon")
    CHUNGBUK = "chungbuk", _("North Chungcheong")
    CHUNGNAM = "chungnam", _("South Chungcheong")
    JEONBUK = "jeonbuk", _("North Jeolla")
    JEONNAM = "jeonnam", _("South Jeolla")
    GYEONGBUK = "gyeongbuk", _("North Gyeongsang")
    GYEONGNAM = "gyeongnam", _("South Gyeongsang")
    JEJU = "jeju", _("Jeju")
    ABROAD = "abroad", _("Abroad")
    UNKNOWN = "unknown", _("Unknown")


class OffenderRelationship(models.TextChoices):
    """The offender's relationship to the victim, in the ministry's categories."""

    STRANGER = "stranger", _("Stranger")
    ONLINE = "online", _("Met online (a passing acquaintance)")
    SOCIAL = "social", _("Social (school, work, acquaintance)")
    INTIMATE = "intimate", _("Intimate (partner or former partner)")
    FAMILY = "family", _("Family or relative")
    UNKNOWN = "unknown", _("Unknown")


class ContactPreference(models.TextChoices):
    NONE = "none", _("Do not contact me")
    PHONE = "phone", _("Phone call")
    SMS = "sms", _("Text message")
    EMAIL = "email", _("E-mail")
    PORTAL = "portal", _("Only through the portal")


class Person(models.Model):
    """The victim. Every identifying field is optional: anonymous reports are welcome."""

    name = EncryptedTextField(_("name"), blank=True)
    birth_date = EncryptedDateField(_("birth date"), blank=True, null=True)
    phone = EncryptedTextField(_("phone"), blank=True)
    email = EncryptedTextField(_("e-mail"), blank=True)
    address = EncryptedTextField(_("address"), blank=True)
    age_group = models.CharField(
        _("age group"), max_length=8, choices=AgeGroup.choices, default=AgeGroup.UNKNOWN
    )
    sex = models.CharField(_("sex"), max_length=8, choices=Sex.choices, default=Sex.UNKNOWN)
    region = models.CharField(_("region"), max_length=10, choices=Region.choices,
                              default=Region.UNKNOWN)
    contact_preference = models.CharField(
        _("how we may contact"), max_length=8, choices=ContactPreference.choices,
        default=ContactPreference.PORTAL,
    )
    preferred_language = models.CharField(_("language"), max_length=8, default="ko")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("person")

    def __str__(self) -> str:
        return f"Person #{self.pk}"


class Guardian(models.Model):
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="guardians")
    name = EncryptedTextField(_("name"), blank=True)
    phone = EncryptedTextField(_("phone"), blank=True)
    email = EncryptedTextField(_("e-mail"), blank=True)
    relationship = models.CharField(_("relationship"), max_length=40, blank=True)
    is_legal_guardian = models.BooleanField(_("legal guardian"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Guardian #{self.pk}"

    class Meta:
        verbose_name = _("guardian")
        verbose_name_plural = _("guardians")


class CaseStatus(models.TextChoices):
    """Every status a case can have; which moves between them are allowed is decided by
    `anshim.cases.workflow` (configurable), not here."""

    NEW = "new", _("New")
    TRIAGED = "triaged", _("Triaged")
    IN_SUPPORT = "in_support", _("In support")
    ERASURE = "erasure", _("Erasure ongoing")
    ON_HOLD = "on_hold", _("On hold")
    CLOSING = "closing", _("Closing (awaiting approval)")
    CLOSED = "closed", _("Closed")


class RiskLevel(models.TextChoices):
    URGENT = "urgent", _("Urgent")
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")
    LOW = "low", _("Low")
    UNASSESSED = "unassessed", _("Not assessed")


class Channel(models.TextChoices):
    PHONE = "phone", _("Phone")
    CHAT = "chat", _("Chat")
    WEB = "web", _("Web")
    WALK_IN = "walk_in", _("Walk-in")
    EMAIL = "email", _("E-mail")
    PORTAL = "portal", _("Victim portal")


class Case(models.Model):
    code = models.CharField(_("case code"), max_length=16, unique=True)
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(
        _("status"), max_length=16, choices=CaseStatus.choices, default=CaseStatus.NEW
    )
    risk_level = models.CharField(
        _("risk"), max_length=10, choices=RiskLevel.choices, default=RiskLevel.UNASSESSED
    )
    response_due = models.DateTimeField(_("respond by"), null=True, blank=True)
    channel = models.CharField(_("first contact"), max_length=10, choices=Channel.choices)
    offender_relationship = models.CharField(
        _("offender's relationship"), max_length=10, choices=OffenderRelationship.choices,
        default=OffenderRelationship.UNKNOWN)
    summary = EncryptedTextField(_("what happened"), blank=True)
    lead_counselor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="led_cases", verbose_name=_("lead counselor"),
    )
    counselors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="counseled_cases",
        verbose_name=_("assigned counselors"),
    )
    erasure_specialists = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="erasure_cases",
        verbose_name=_("assigned erasure specialists"),
    )
    # Victim portal access: the passphrase is stored only as an Argon2 hash.
    portal_passphrase_hash = models.CharField(max_length=200, blank=True)
    # Optimistic locking: every save through the services bumps it; a stale form is refused.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "risk_level"]), models.Index(fields=["response_due"]),
            # the reports read a period's cases (anshim.reports)
            models.Index(fields=["created_at"]),
        ]
        verbose_name = _("case")
        verbose_name_plural = _("cases")

    def __str__(self) -> str:
        return self.code

    @property
    def harm_types(self) -> list[str]:
        return [h.harm_type for h in self.harms.all()]


class CaseHarm(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="harms")
    harm_type = models.CharField(max_length=16, choices=HarmType.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "harm_type"], name="unique_harm_per_case")
        ]
        verbose_name = _("case harm type")
        verbose_name_plural = _("case harm types")


class Contact(models.Model):
    """One entry of the hotline log."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="contacts")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    started_at = models.DateTimeField(_("time"))
    duration_minutes = models.PositiveIntegerField(_("duration (minutes)"), default=0)
    counselor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    summary = EncryptedTextField(_("summary"), blank=True)

    class Meta:
        ordering = ["started_at"]
        # the reports read a month's contacts (the counseling view's live month)
        indexes = [models.Index(fields=["started_at"], name="cases_contact_started")]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")


class TriageAssessment(models.Model):
    """A risk assessment: the rule result with its reasons, and an optional supervisor override."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="assessments")
    created_at = models.DateTimeField(auto_now_add=True)
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    factors = models.JSONField(default=dict)
    computed_level = models.CharField(max_length=10, choices=RiskLevel.choices)
    reasons = models.JSONField(default=list)
    deadline = models.DateTimeField(null=True, blank=True)
    override_level = models.CharField(max_length=10, choices=RiskLevel.choices, blank=True)
    # Typed by the supervisor and may name people: personal data, encrypted like the rest.
    override_reason = EncryptedTextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("risk assessment")
        verbose_name_plural = _("risk assessments")

    @property
    def effective_level(self) -> str:
        return self.override_level or self.computed_level


class ConsentScope(models.TextChoices):
    KEEP_DATA = "keep_data", _("Keep case data")
    REGISTER_FINGERPRINTS = "register_fingerprints", _("Register fingerprints")
    CONTACT_PLATFORMS = "contact_platforms", _("Contact platforms for deletion")
    SHARE_POLICE = "share_police", _("Share with police")
    # Appointment e-mails (time, place, an .ics invitation) to the victim and legal guardians:
    # a family member may be the one the child must not be found by, so never by default.
    NOTIFY_FAMILY = "notify_family", _("E-mail appointments to the family")


class ConsentGiver(models.TextChoices):
    VICTIM = "victim", _("Victim")
    GUARDIAN = "guardian", _("Legal guardian")


class ConsentMethod(models.TextChoices):
    """How the consent (or its withdrawal) reached the center."""

    VERBAL = "verbal", _("Verbally, on the phone")
    WRITTEN = "written", _("In writing")
    IN_PERSON = "in_person", _("In person")
    PORTAL = "portal", _("Through the portal")


class Consent(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="consents")
    scope = models.CharField(max_length=24, choices=ConsentScope.choices)
    given_by = models.CharField(max_length=10, choices=ConsentGiver.choices)
    guardian = models.ForeignKey(Guardian, on_delete=models.SET_NULL, null=True, blank=True)
    method = models.CharField(max_length=10, choices=ConsentMethod.choices,
                              default=ConsentMethod.VERBAL)
    granted_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["granted_at"]
        indexes = [models.Index(fields=["case", "scope"])]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")


class TimelineEvent(models.Model):
    """Every event on the case, in order. `message` holds no personal data; details stay in
    their own (encrypted) records."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=300)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("timeline event")
        verbose_name_plural = _("timeline events")


class NoteKind(models.TextChoices):
    COUNSELING = "counseling", _("Counseling note")
    CASE = "case", _("Case note")


class Note(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=NoteKind.choices, default=NoteKind.COUNSELING)
    body = EncryptedTextField(_("note"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("note")
        verbose_name_plural = _("notes")


class ReferralTarget(models.TextChoices):
    POLICE = "police", _("Police")
    HOSPITAL = "hospital", _("Hospital")
    SHELTER = "shelter", _("Shelter")
    SCHOOL = "school", _("School")
    OTHER = "other", _("Other")


class ReferralStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed")
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    COMPLETED = "completed", _("Completed")
    DECLINED = "declined", _("Declined")


#: a referral still waiting for its outcome (the dashboard's "needs attention" and the case
#: list's filter count the same cases)
REFERRAL_PENDING = (ReferralStatus.PROPOSED, ReferralStatus.SENT, ReferralStatus.ACCEPTED)


class Referral(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="referrals")
    target = models.CharField(_("to"), max_length=10, choices=ReferralTarget.choices)
    organization = models.CharField(_("organization"), max_length=200)
    reason = EncryptedTextField(_("reason"), blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.PROPOSED
    )
    outcome = EncryptedTextField(_("outcome"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # the pending referrals are read by status (the dashboard; the case list's filter)
        indexes = [models.Index(fields=["status", "case"], name="cases_referral_status")]
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")


class Notification(models.Model):
    """An in-app message to a staff member or expert (also e-mailed by a background task)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    message = models.CharField(max_length=300)
    link = models.CharField(max_length=200, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")


class StatusChangeKind(models.TextChoices):
    MOVE = "move", _("Moved by hand")
    IMPLIED = "implied", _("Moved by an action")
    CLOSURE_REQUESTED = "closure_requested", _("Closure requested")
    CLOSURE_APPROVED = "closure_approved", _("Closure approved")
    CLOSURE_REJECTED = "closure_rejected", _("Closure rejected")
    REOPENED = "reopened", _("Reopened")
    MIGRATED = "migrated", _("Renamed by the workflow upgrade")


class StatusChange(models.Model):
    """One status move of a case: from, to, who, why. The latest closure request holds the
    status a rejected closure returns to."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="status_changes")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=StatusChangeKind.choices)
    from_status = models.CharField(max_length=16, choices=CaseStatus.choices)
    to_status = models.CharField(max_length=16, choices=CaseStatus.choices)
    # The implied event that caused an implied move (a workflow.Implied value).
    cause = models.CharField(max_length=40, blank=True)
    # Typed by staff (a closure note, a rejection or reopening reason) and may name people.
    reason = EncryptedTextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["case", "kind", "at"])]
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
