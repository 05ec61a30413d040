"""The preventive environment team: school programmes, knowledge tests and anonymous surveys.

Anonymity is built into the tables, not promised by the code that writes them:

- `Response` has no IP address, user agent, timestamp or user column. It records the date and
  the class session only, and its primary key is a random UUID, so not even the insertion order
  can be read back from it.
- One submission per device per class session is enforced by `key_hash`: the SHA-256 of a
  random key the student's browser makes for that session (it also makes the offline resend
  idempotent). The key identifies a browser profile for one session, never a person.
- `HelpRequest` (the "I want someone to contact me" card) has no column in common with
  `Response` and no key to it or to a class session: it is sent by a separate request.
- Programme sessions record attendance as counts by grade and sex; no student names anywhere.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from anshim.security.crypto import EncryptedTextField

# Sessions are booked in 15-minute slots; one row per slot makes "no facilitator twice at the
# same time" a plain unique constraint that SQLite and PostgreSQL both enforce.
SLOT_MINUTES = 15


class SchoolLevel(models.TextChoices):
    ELEMENTARY = "elementary", _("Elementary school")
    MIDDLE = "middle", _("Middle school")
    HIGH = "high", _("High school")


class Sex(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    UNSTATED = "unstated", _("Not stated")


class Topic(models.TextChoices):
    GROOMING = "grooming", _("Grooming awareness")
    SEXTORTION = "sextortion", _("Sextortion and what to do")
    CONSENT = "consent", _("Digital consent and image sharing")
    BYSTANDER = "bystander", _("Bystander action")
    DEEPFAKES = "deepfakes", _("Deepfakes")


class School(models.Model):
    name = models.CharField(_("name"), max_length=200)
    level = models.CharField(_("level"), max_length=12, choices=SchoolLevel.choices)
    district = models.CharField(_("district"), max_length=100)
    contact_name = models.CharField(_("contact person"), max_length=200, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=40, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    students = models.PositiveIntegerField(_("students enrolled"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name", "district"], name="prevention_school_unique"),
        ]
        verbose_name = _("school")
        verbose_name_plural = _("schools")

    def __str__(self) -> str:
        return f"{self.name} ({self.district})"


class Module(models.Model):
    """One entry of the programme catalogue."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    topic = models.CharField(_("topic"), max_length=16, choices=Topic.choices)
    target_levels = models.JSONField(_("target levels"), default=list)  # list[SchoolLevel]
    duration_minutes = models.PositiveSmallIntegerField(_("duration (minutes)"), default=45)
    materials = models.TextField(_("materials"), blank=True)
    description = models.TextField(_("description"), blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("education module")
        verbose_name_plural = _("education modules")

    def __str__(self) -> str:
        return self.name


class FacilitatorKind(models.TextChoices):
    STAFF = "staff", _("Center staff")
    EXTERNAL = "external", _("External expert")


class Facilitator(models.Model):
    kind = models.CharField(_("kind"), max_length=10, choices=FacilitatorKind.choices)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.PROTECT, related_name="facilitator")
    name = models.CharField(_("name"), max_length=200)
    organization = models.CharField(_("organization"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    modules = models.ManyToManyField(Module, blank=True, related_name="facilitators")
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("facilitator")
        verbose_name_plural = _("facilitators")

    def __str__(self) -> str:
        return self.name


class BookingStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SCHEDULED = "scheduled", _("Scheduled")
    DECLINED = "declined", _("Declined")


class BookingRequest(models.Model):
    """A school's request from the public form. Contact details are encrypted at rest."""

    school_name = models.CharField(_("school"), max_length=200)
    level = models.CharField(_("level"), max_length=12, choices=SchoolLevel.choices)
    district = models.CharField(_("district"), max_length=100)
    contact_name = EncryptedTextField(_("contact person"))
    contact_phone = EncryptedTextField(_("contact phone"), blank=True)
    contact_email = EncryptedTextField(_("contact e-mail"), blank=True)
    class_count = models.PositiveSmallIntegerField(_("number of classes"))
    grades = models.JSONField(_("grades"), default=list)  # list[int]
    preferred_dates = models.JSONField(_("preferred dates"), default=list)  # ISO dates
    module = models.ForeignKey(Module, null=True, blank=True, on_delete=models.SET_NULL,
                               verbose_name=_("programme"))
    message = EncryptedTextField(_("message"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=BookingStatus.choices,
                              default=BookingStatus.PENDING)
    school = models.ForeignKey(School, null=True, blank=True, on_delete=models.SET_NULL)
    decline_reason = models.CharField(_("reason"), max_length=300, blank=True)
    handled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("booking request")
        verbose_name_plural = _("booking requests")


class SessionStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    DELIVERED = "delivered", _("Delivered")
    CANCELLED = "cancelled", _("Cancelled")


class ProgrammeSession(models.Model):
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="sessions",
                               verbose_name=_("school"))
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="sessions",
                               verbose_name=_("programme"))
    facilitator = models.ForeignKey(Facilitator, on_delete=models.PROTECT,
                                    related_name="sessions", verbose_name=_("facilitator"))
    booking = models.ForeignKey(BookingRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="sessions")
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    grade = models.PositiveSmallIntegerField(_("grade"))
    classes = models.PositiveSmallIntegerField(_("classes"), default=1)
    status = models.CharField(_("status"), max_length=10, choices=SessionStatus.choices,
                              default=SessionStatus.SCHEDULED)
    # The report after the session.
    fidelity = models.JSONField(_("fidelity checklist"), default=dict)  # item code -> bool
    satisfaction = models.JSONField(_("satisfaction"), default=dict)  # "1".."5" -> count
    disclosures = models.PositiveSmallIntegerField(_("disclosures"), default=0)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")),
                                   name="prevention_session_ends_after_start"),
        ]
        verbose_name = _("programme session")
        verbose_name_plural = _("programme sessions")

    def __str__(self) -> str:
        return f"{self.module} · {self.school}"

    @property
    def satisfaction_mean(self) -> float | None:
        total = sum(int(n) for n in self.satisfaction.values())
        if not total:
            return None
        return sum(int(k) * int(n) for k, n in self.satisfaction.items()) / total


class FacilitatorSlot(models.Model):
    """One 15-minute slot a facilitator is booked for: the database refuses a second session
    in the same slot."""

    facilitator = models.ForeignKey(Facilitator, on_delete=models.CASCADE, related_name="slots")
    session = models.ForeignKey(ProgrammeSession, on_delete=models.CASCADE, related_name="slots")
    slot_start = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["facilitator", "slot_start"],
                                    name="prevention_facilitator_no_double_booking"),
        ]
        verbose_name = _("facilitator slot")
        verbose_name_plural = _("facilitator slots")


class Attendance(models.Model):
    session = models.ForeignKey(ProgrammeSession, on_delete=models.CASCADE,
                                related_name="attendance")
    grade = models.PositiveSmallIntegerField(_("grade"))
    sex = models.CharField(_("sex"), max_length=10, choices=Sex.choices)
    count = models.PositiveIntegerField(_("students"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "grade", "sex"],
                                    name="prevention_attendance_unique"),
        ]
        verbose_name = _("attendance")
        verbose_name_plural = _("attendances")


class Disclosure(models.Model):
    """A child told the facilitator after the session. No name; where the child asked for
    help, the counselors received an intake (the case)."""

    session = models.ForeignKey(ProgrammeSession, on_delete=models.CASCADE,
                                related_name="disclosure_records")
    harm_type = models.CharField(_("harm type"), max_length=32)
    wants_help = models.BooleanField(_("asked for help"), default=False)
    case = models.ForeignKey("cases.Case", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("disclosure")
        verbose_name_plural = _("disclosures")


# --- Knowledge and attitude tests ---------------------------------------------------------


class Wave(models.TextChoices):
    PRE = "pre", _("Pre-test")
    POST = "post", _("Post-test")
    FOLLOW_UP = "follow_up", _("Follow-up")


class KnowledgeTest(models.Model):
    name = models.CharField(_("name"), max_length=200)
    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="tests",
                               verbose_name=_("programme"))
    max_score = models.PositiveSmallIntegerField(_("maximum score"), default=10)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name = _("knowledge test")
        verbose_name_plural = _("knowledge tests")

    def __str__(self) -> str:
        return self.name


class TestScore(models.Model):
    """One student's score in one wave, under their self-generated code (which identifies
    nobody). Duplicated codes within a wave are kept and reported as unmatched."""

    test = models.ForeignKey(KnowledgeTest, on_delete=models.CASCADE, related_name="scores")
    session = models.ForeignKey(ProgrammeSession, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="scores")
    wave = models.CharField(_("wave"), max_length=10, choices=Wave.choices)
    code = models.CharField(_("self-generated code"), max_length=16)
    score = models.FloatField(_("score"))
    taken_on = models.DateField(_("date"))

    class Meta:
        indexes = [models.Index(fields=["test", "wave", "code"])]
        verbose_name = _("test score")
        verbose_name_plural = _("test scores")


# --- Surveys --------------------------------------------------------------------------------


class Survey(models.Model):
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Known population margins for post-stratification / raking: [{"grade": 5, "sex":
    # "female", "count": 1234}, ...]; empty means no calibration.
    population_margins = models.JSONField(default=list, blank=True)
    # Schools invited (the school response rate's denominator).
    schools_invited = models.PositiveIntegerField(_("schools invited"), default=0)

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")

    def __str__(self) -> str:
        return self.title


class SurveyVersion(models.Model):
    """One uploaded XLSForm. Once published it never changes (the save() guard and the
    services refuse); editing uploads a new version."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    xlsform = models.BinaryField()
    filename = models.CharField(max_length=200)
    definition = models.JSONField()  # anshim.prevention.xlsform.FormDefinition.to_json()
    published_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["survey", "number"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "number"],
                                    name="prevention_version_unique"),
        ]
        verbose_name = _("survey version")
        verbose_name_plural = _("survey versions")

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            stored = SurveyVersion.objects.filter(pk=self.pk).values(
                "published_at", "definition").first()
            if stored and stored["published_at"] is not None and (
                    stored["definition"] != self.definition
                    or stored["published_at"] != self.published_at):
                raise ImmutableVersion(self)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class ImmutableVersion(Exception):
    code = "immutable_version"

    def __init__(self, version: SurveyVersion) -> None:
        super().__init__(f"Survey version {version.number} is published and cannot change.")


class SampledSchool(models.Model):
    """The sampling design: a school drawn into the survey sample."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="sample")
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+")
    stratum = models.CharField(_("stratum"), max_length=100)
    selection_probability = models.FloatField(_("selection probability"))
    students_sampled = models.PositiveIntegerField(_("students sampled"), default=0)
    participated = models.BooleanField(_("participated"), default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["survey", "school"],
                                    name="prevention_sampled_school_unique"),
            models.CheckConstraint(
                condition=Q(selection_probability__gt=0) & Q(selection_probability__lte=1),
                name="prevention_probability_range"),
        ]
        verbose_name = _("sampled school")
        verbose_name_plural = _("sampled schools")


class ClassSession(models.Model):
    """A class answering a published version on their phones, opened by the officer."""

    version = models.ForeignKey(SurveyVersion, on_delete=models.PROTECT,
                                related_name="class_sessions")
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("school"))
    grade = models.PositiveSmallIntegerField(_("grade"))
    label = models.CharField(_("class"), max_length=40, blank=True)
    expected = models.PositiveIntegerField(_("students in class"), default=0)
    short_code = models.CharField(max_length=8, unique=True)
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                  on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-opens_at", "id"]
        verbose_name = _("class survey session")
        verbose_name_plural = _("class survey sessions")


class Response(models.Model):
    """One anonymous answer sheet: the date and the class session only (see the module doc)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    class_session = models.ForeignKey(ClassSession, on_delete=models.PROTECT,
                                      related_name="responses")
    version = models.ForeignKey(SurveyVersion, on_delete=models.PROTECT,
                                related_name="responses")
    submitted_on = models.DateField()
    key_hash = models.CharField(max_length=64)
    answers = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["class_session", "key_hash"],
                                    name="prevention_one_response_per_device"),
        ]
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")


class AnalysisStamp(models.Model):
    """The version marker of everything the survey and test analyses read
    (`anshim.prevention.stamp`): one row whose token is renewed in the same transaction as
    every change to those inputs, so a result kept under a token is what the rows said then.

    The token is a fresh random UUID each time, never a counter: a transaction rolled back
    (a test's, a failed upload's) restores the old token, and a counter would then hand the
    next change the very number the rolled-back one had cached results under."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    token = models.UUIDField(default=uuid.uuid4)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="prevention_analysis_stamp_one_row"),
        ]
        verbose_name = _("analysis stamp")
        verbose_name_plural = _("analysis stamps")


class HelpRequest(models.Model):
    """'I want someone to contact me': deliberately no link to a response or class session."""

    created_on = models.DateField()
    contact_preference = models.CharField(max_length=10)
    contact_detail = EncryptedTextField(blank=True)
    message = EncryptedTextField(blank=True)
    language = models.CharField(max_length=8, default="ko")
    case = models.ForeignKey("cases.Case", null=True, on_delete=models.SET_NULL, related_name="+")
    key_hash = models.CharField(max_length=64, unique=True)  # the browser's idempotency key

    class Meta:
        verbose_name = _("help request")
        verbose_name_plural = _("help requests")

