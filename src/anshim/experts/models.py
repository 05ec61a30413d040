"""External experts (lawyers, psychotherapists), their assignments to cases, and appointments.

Everything is free of charge for victims: there is deliberately no billing here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import Case
from anshim.security.crypto import EncryptedTextField


class ExpertKind(models.TextChoices):
    LEGAL = "legal", _("Legal support")
    THERAPY = "therapy", _("Psychotherapy")


class Specialty(models.TextChoices):
    CRIMINAL_COMPLAINT = "criminal_complaint", _("Criminal complaint")
    CIVIL_DAMAGES = "civil_damages", _("Civil damages")
    COURT_ACCOMPANIMENT = "court_accompaniment", _("Court accompaniment")
    TRAUMA = "trauma", _("Trauma therapy")
    FAMILY = "family", _("Family therapy")
    CHILD_ADOLESCENT = "child_adolescent", _("Child and adolescent therapy")
    CRISIS = "crisis", _("Crisis intervention")


SPECIALTY_KIND: dict[str, str] = {
    Specialty.CRIMINAL_COMPLAINT: ExpertKind.LEGAL,
    Specialty.CIVIL_DAMAGES: ExpertKind.LEGAL,
    Specialty.COURT_ACCOMPANIMENT: ExpertKind.LEGAL,
    Specialty.TRAUMA: ExpertKind.THERAPY,
    Specialty.FAMILY: ExpertKind.THERAPY,
    Specialty.CHILD_ADOLESCENT: ExpertKind.THERAPY,
    Specialty.CRISIS: ExpertKind.THERAPY,
}


class Expert(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="expert_profile"
    )
    kind = models.CharField(_("kind"), max_length=8, choices=ExpertKind.choices)
    organization = models.CharField(_("organization"), max_length=200, blank=True)
    specialties = models.JSONField(_("specialties"), default=list)  # list[Specialty]
    languages = models.JSONField(_("languages"), default=list)  # ISO 639-1 codes
    regions = models.JSONField(_("regions"), default=list)
    # The victims' age groups (cases.AgeGroup values) the expert specialises in; empty: all ages.
    # An input of the ranking: a child under 14 is best served by a child specialist.
    age_groups = models.JSONField(_("age groups"), default=list, blank=True)
    weekly_capacity = models.PositiveSmallIntegerField(_("weekly capacity (sessions)"), default=5)
    active = models.BooleanField(_("active"), default=True)

    def __str__(self) -> str:
        return str(self.user)

    class Meta:
        verbose_name = _("expert")
        verbose_name_plural = _("experts")


class WeeklyAvailability(models.Model):
    expert = models.ForeignKey(Expert, on_delete=models.CASCADE, related_name="availability")
    weekday = models.PositiveSmallIntegerField(_("weekday"))  # 0 = Monday
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("until"))

    class Meta:
        ordering = ["weekday", "start_time"]
        verbose_name = _("weekly availability")
        verbose_name_plural = _("weekly availabilities")


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")


class Assignment(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="expert_assignments")
    expert = models.ForeignKey(Expert, on_delete=models.PROTECT, related_name="assignments")
    specialty = models.CharField(_("need"), max_length=24, choices=Specialty.choices)
    # What the expert needs to know; the expert sees this brief, not the whole case file.
    brief = EncryptedTextField(_("brief for the expert"), blank=True)
    status = models.CharField(
        max_length=8, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Free text typed by staff (it may name people): encrypted, never in the audit log.
    end_reason = EncryptedTextField(_("why the assignment ended"), blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "expert", "specialty"],
                condition=models.Q(status="active"),
                name="one_active_assignment_per_need",
            )
        ]
        # the dashboard's caseload reads the open assignments per expert
        indexes = [models.Index(fields=["status", "expert", "case"],
                                name="experts_assign_open")]
        verbose_name = _("expert assignment")
        verbose_name_plural = _("expert assignments")


class AppointmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")
    NO_SHOW = "no_show", _("Did not attend")


class AppointmentMode(models.TextChoices):
    IN_PERSON = "in_person", _("In person")
    VIDEO = "video", _("Video call")
    PHONE = "phone", _("Phone")


# Appointments are booked in slots of this many minutes; the slot table makes double booking
# impossible at the database level on SQLite and PostgreSQL alike (a unique constraint).
SLOT_MINUTES = 15


class Appointment(models.Model):
    assignment = models.ForeignKey(
        Assignment, on_delete=models.CASCADE, related_name="appointments"
    )
    expert = models.ForeignKey(Expert, on_delete=models.PROTECT, related_name="appointments")
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    mode = models.CharField(
        _("mode"), max_length=10, choices=AppointmentMode.choices, default=AppointmentMode.IN_PERSON
    )
    status = models.CharField(
        max_length=10, choices=AppointmentStatus.choices, default=AppointmentStatus.SCHEDULED
    )
    # Where an in-person session takes place. It may be the family's home or a place near it:
    # encrypted at rest, never in the audit log or timeline, shown only to those who manage or
    # hold the appointment, and sent only to the expert and (with consent) the family.
    location = EncryptedTextField(_("meeting place"), blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Free text typed by staff (it may name people): encrypted, never in the audit log.
    cancel_reason = EncryptedTextField(_("why it was cancelled"), blank=True)
    # The iCalendar SEQUENCE of the invitation: raised by every change that is mailed, so
    # calendars replace the earlier version of the same UID instead of adding a second event.
    sequence = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="appointment_ends_after_start",
            )
        ]
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")


class NoticeKind(models.TextChoices):
    BOOKED = "booked", _("Booked")
    CHANGED = "changed", _("Changed")
    CANCELLED = "cancelled", _("Cancelled")


class NoticeAudience(models.TextChoices):
    EXPERT = "expert", _("Expert")
    FAMILY = "family", _("Family")


class NoticeStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Being sent")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Not sent")


class AppointmentNotice(models.Model):
    """One appointment e-mail (with its .ics) to one audience, written in the transaction of
    the change it announces and sent by a task after commit.

    The row is the idempotency key: the task claims it with a conditional update, so a retried
    or duplicated task never sends it twice, and the key doubles as the Message-ID.
    """

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=10, choices=NoticeKind.choices)
    audience = models.CharField(max_length=8, choices=NoticeAudience.choices)
    sequence = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=8, choices=NoticeStatus.choices,
                              default=NoticeStatus.PENDING)
    # Why it was not sent (a code such as "no_consent", "no_address"), never an address.
    outcome = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["appointment", "sequence", "audience"],
                                    name="one_notice_per_version_and_audience")
        ]
        verbose_name = _("appointment notice")
        verbose_name_plural = _("appointment notices")


class AppointmentSlot(models.Model):
    """One occupied SLOT_MINUTES slot of an expert's calendar."""

    expert = models.ForeignKey(Expert, on_delete=models.CASCADE, related_name="+")
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="slots")
    slot_start = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["expert", "slot_start"], name="no_double_booking")
        ]
        verbose_name = _("appointment slot")
        verbose_name_plural = _("appointment slots")


class SessionLog(models.Model):
    """The expert's record of a session (no billing: every session is free)."""

    appointment = models.OneToOneField(Appointment, on_delete=models.CASCADE, related_name="log")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    summary = EncryptedTextField(_("session summary"))
    follow_up_needed = models.BooleanField(_("follow-up needed"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("session log")
        verbose_name_plural = _("session logs")
