"""Staff forms. Labels are English msgids (Korean in the catalogue); every widget gets an id
from Django (`id_<name>`) and a <label for>, so screen readers and browser tests find them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import (
    AgeGroup,
    CaseStatus,
    Channel,
    ConsentGiver,
    ConsentMethod,
    ConsentScope,
    ContactPreference,
    HarmType,
    NoteKind,
    OffenderRelationship,
    ReferralStatus,
    ReferralTarget,
    Region,
    RiskLevel,
    Sex,
)
from anshim.cases.services import GuardianData, IntakeData
from anshim.cases.triage import FACTOR_LABELS, TriageFactors

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
TEXT_MAX = 200
SUMMARY_MAX = 10_000


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format=DATETIME_FORMAT, **kwargs)


class DateInput(forms.DateInput):
    input_type = "date"


CHANNELS = [(c.value, c.label) for c in Channel if c != Channel.PORTAL]
SCOPES = ConsentScope.choices


class IntakeForm(forms.Form):
    """The one page a counselor fills in during a hotline call."""

    channel = forms.ChoiceField(label=_("Channel"), choices=CHANNELS)
    started_at = forms.DateTimeField(
        label=_("Start time"), widget=DateTimeLocalInput(), input_formats=[DATETIME_FORMAT,
                                                                          "%Y-%m-%d %H:%M"],
    )
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), min_value=0, max_value=24 * 60, initial=0
    )
    harm_types = forms.MultipleChoiceField(
        label=_("Harm types"), choices=HarmType.choices, widget=forms.CheckboxSelectMultiple
    )
    factors = forms.MultipleChoiceField(
        label=_("Risk factors"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=list(FACTOR_LABELS.items()),
    )
    age_group = forms.ChoiceField(label=_("Age group"), choices=AgeGroup.choices,
                                  initial=AgeGroup.UNKNOWN)
    # the ministry's annual tables count these (anshim.reports); left out: unknown
    sex = forms.ChoiceField(label=_("Sex"), choices=Sex.choices, initial=Sex.UNKNOWN,
                            required=False)
    region = forms.ChoiceField(label=_("Region (province or city)"), choices=Region.choices,
                               initial=Region.UNKNOWN, required=False)
    offender_relationship = forms.ChoiceField(
        label=_("Offender's relationship"), choices=OffenderRelationship.choices,
        initial=OffenderRelationship.UNKNOWN, required=False)
    name = forms.CharField(label=_("Name"), required=False, max_length=TEXT_MAX)
    birth_date = forms.DateField(label=_("Birth date"), required=False, widget=DateInput())
    phone = forms.CharField(label=_("Phone"), required=False, max_length=40)
    email = forms.EmailField(label=_("E-mail"), required=False, max_length=TEXT_MAX)
    address = forms.CharField(label=_("Address"), required=False, max_length=500)
    contact_preference = forms.ChoiceField(
        label=_("Contact preference"), choices=ContactPreference.choices,
        initial=ContactPreference.PORTAL,
    )
    guardian_name = forms.CharField(label=_("Guardian name"), required=False, max_length=TEXT_MAX)
    guardian_phone = forms.CharField(label=_("Guardian phone"), required=False, max_length=40)
    guardian_relationship = forms.CharField(
        label=_("Relationship to the victim"), required=False, max_length=40
    )
    guardian_is_legal = forms.BooleanField(
        label=_("Legal guardian"), required=False, initial=True
    )
    victim_consents = forms.MultipleChoiceField(
        label=_("Consents given by the victim"), choices=SCOPES, required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    guardian_consents = forms.MultipleChoiceField(
        label=_("Consents given by the legal guardian"), choices=SCOPES, required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    summary = forms.CharField(label=_("Summary"), widget=forms.Textarea(attrs={"rows": 6}),
                              max_length=SUMMARY_MAX)

    def clean_birth_date(self) -> Any:
        value = self.cleaned_data.get("birth_date")
        if value and value > timezone.localdate():
            raise forms.ValidationError(_("The birth date is in the future."))
        if value and value.year < 1900:
            raise forms.ValidationError(_("Enter a valid date."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        has_guardian = bool(data.get("guardian_name") or data.get("guardian_phone"))
        if data.get("guardian_consents") and not has_guardian:
            self.add_error("guardian_consents",
                           _("Enter the guardian before recording a guardian's consent."))
        return data

    def to_intake(self) -> IntakeData:
        d = self.cleaned_data
        flags = set(d.get("factors") or [])
        guardian = None
        if d.get("guardian_name") or d.get("guardian_phone"):
            guardian = GuardianData(
                name=d["guardian_name"], phone=d["guardian_phone"],
                relationship=d["guardian_relationship"],
                is_legal_guardian=bool(d.get("guardian_is_legal")),
            )
        return IntakeData(
            channel=d["channel"], started_at=d["started_at"],
            duration_minutes=d["duration_minutes"] or 0, harm_types=list(d["harm_types"]),
            factors=TriageFactors.from_flags(flags), age_group=d["age_group"],
            sex=d.get("sex") or Sex.UNKNOWN, region=d.get("region") or Region.UNKNOWN,
            offender_relationship=(d.get("offender_relationship")
                                   or OffenderRelationship.UNKNOWN),
            name=d["name"], birth_date=d.get("birth_date"), phone=d["phone"], email=d["email"],
            address=d["address"], contact_preference=d["contact_preference"],
            guardian=guardian, victim_consents=list(d["victim_consents"]),
            guardian_consents=list(d["guardian_consents"]), summary=d["summary"],
        )


class CaseTeam(models.TextChoices):
    """Which team holds a case, for the case list's filter (assignments, not a stored field)."""

    UNASSIGNED = "unassigned", _("No lead counselor yet")
    COUNSELING = "counseling", _("Counseling team")
    ERASURE = "erasure", _("Erasure team")


class CaseFilterForm(forms.Form):
    q = forms.CharField(label=_("Case code"), required=False, max_length=20,
                        widget=forms.TextInput(attrs={"type": "search", "size": 12,
                                                      "spellcheck": "false"}))
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("All")), *CaseStatus.choices])
    risk = forms.ChoiceField(label=_("Risk"), required=False,
                             choices=[("", _("All")), *RiskLevel.choices])
    counselor: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Assigned counselor"), required=False, queryset=None, empty_label=_("All"))
    team = forms.ChoiceField(label=_("Team"), required=False,
                             choices=[("", _("All")), *CaseTeam.choices])
    opened_from = forms.DateField(label=_("Opened from"), required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))
    opened_to = forms.DateField(label=_("Opened until"), required=False,
                                widget=forms.DateInput(attrs={"type": "date"}))
    # The supervisor dashboard's slice (reports.forms.DashboardFilterForm uses the same
    # names), so a dashboard number links to exactly the cases it counts.
    harm = forms.ChoiceField(label=_("Harm type"), required=False,
                             choices=[("", _("All harm types")), *HarmType.choices])
    age = forms.ChoiceField(label=_("Age group"), required=False,
                            choices=[("", _("All age groups")), *AgeGroup.choices])
    platform: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Platform (a sighting on it)"), required=False, queryset=None,
        empty_label=_("All platforms"))
    lead: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Lead counselor"), required=False, queryset=None, empty_label=_("All"))
    mine = forms.BooleanField(label=_("Only my cases"), required=False)
    overdue = forms.BooleanField(label=_("Only overdue"), required=False)
    open = forms.BooleanField(label=_("Only open cases"), required=False)
    no_consent = forms.BooleanField(label=_("Only without a consent"), required=False)
    referral_pending = forms.BooleanField(label=_("Only with a referral without outcome"),
                                          required=False)
    expert: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Expert (an open assignment)"), required=False, queryset=None,
        empty_label=_("All"))
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=[
        ("risk", _("Risk")), ("deadline", _("Deadline")), ("newest", _("Newest")),
    ])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Evaluated per form, so new staff appear without a restart.
        self.fields["counselor"].queryset = _staff(  # type: ignore[attr-defined]
            "counselor", "supervisor")
        from anshim.erasure.models import Platform
        from anshim.security.models import User

        self.fields["platform"].queryset = (  # type: ignore[attr-defined]
            Platform.objects.order_by("name"))
        # Former staff too: the dashboard's caseload still counts the cases they lead.
        self.fields["lead"].queryset = (  # type: ignore[attr-defined]
            User.objects.filter(role__in=("counselor", "supervisor"))
            .order_by("display_name", "username"))
        from anshim.experts.models import Expert

        self.fields["expert"].queryset = (  # type: ignore[attr-defined]
            Expert.objects.select_related("user").order_by("user__username"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("opened_from"), data.get("opened_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date is after the end date."))
        return data


class VersionedForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


def _staff(*roles: str) -> Any:
    from anshim.security.models import User

    return User.objects.filter(role__in=roles, is_active=True).order_by("display_name", "username")


class CaseEditForm(VersionedForm):
    summary = forms.CharField(label=_("What happened"), required=False, max_length=SUMMARY_MAX,
                              widget=forms.Textarea(attrs={"rows": 4}))
    offender_relationship = forms.ChoiceField(
        label=_("Offender's relationship"), required=False,
        choices=OffenderRelationship.choices)
    lead_counselor = forms.ModelChoiceField(label=_("Lead counselor"), required=False,
                                            queryset=_staff("counselor", "supervisor"))
    counselors = forms.ModelMultipleChoiceField(
        label=_("Assigned counselors"), required=False, queryset=_staff("counselor", "supervisor"),
        widget=forms.CheckboxSelectMultiple)
    erasure_specialists = forms.ModelMultipleChoiceField(
        label=_("Assigned erasure specialists"), required=False,
        queryset=_staff("erasure", "supervisor"), widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Querysets are evaluated per form, so new staff appear without a restart.
        for name, roles in (("lead_counselor", ("counselor", "supervisor")),
                            ("counselors", ("counselor", "supervisor")),
                            ("erasure_specialists", ("erasure", "supervisor"))):
            self.fields[name].queryset = _staff(*roles)  # type: ignore[attr-defined]


class ContactForm(forms.Form):
    channel = forms.ChoiceField(label=_("Channel"), choices=CHANNELS)
    started_at = forms.DateTimeField(label=_("Start time"), widget=DateTimeLocalInput(),
                                     input_formats=[DATETIME_FORMAT])
    duration_minutes = forms.IntegerField(label=_("Duration (minutes)"), min_value=0,
                                          max_value=24 * 60, initial=0)
    summary = forms.CharField(label=_("Summary"), required=False, max_length=SUMMARY_MAX,
                              widget=forms.Textarea(attrs={"rows": 3}))


class NoteForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=NoteKind.choices)
    body = forms.CharField(label=_("Note"), max_length=SUMMARY_MAX,
                           widget=forms.Textarea(attrs={"rows": 3}))


class ReplyForm(forms.Form):
    """A counselor's answer to the victim's portal messages (the victim reads it on the
    status page). The one-time key makes a double click store one reply."""

    body = forms.CharField(label=_("Reply to the victim"), max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 3}))
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)


class OverrideForm(forms.Form):
    level = forms.ChoiceField(label=_("New risk level"), choices=[
        c for c in RiskLevel.choices if c[0] != RiskLevel.UNASSESSED])
    reason = forms.CharField(label=_("Reason for the override"), max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}))


class ReassessForm(forms.Form):
    factors = forms.MultipleChoiceField(
        label=_("Risk factors"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=list(FACTOR_LABELS.items()),
    )


class ConsentForm(forms.Form):
    """A consent toggle. The case page's buttons send scope, giver and action; the
    confirmation page adds how the consent reached the center and `confirmed`."""

    scope = forms.ChoiceField(label=_("Scope"), choices=SCOPES)
    given_by = forms.ChoiceField(label=_("Given by"), choices=ConsentGiver.choices)
    action = forms.ChoiceField(choices=[("grant", "grant"), ("withdraw", "withdraw")])
    method = forms.ChoiceField(label=_("How it was given"), choices=ConsentMethod.choices,
                               required=False, widget=forms.RadioSelect)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("confirmed") and not data.get("method"):
            self.add_error("method", _("Say how the consent was given."))
        return data


class ReferralForm(forms.Form):
    target = forms.ChoiceField(label=_("Refer to"), choices=ReferralTarget.choices)
    organization = forms.CharField(label=_("Organization"), max_length=TEXT_MAX)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=SUMMARY_MAX,
                             widget=forms.Textarea(attrs={"rows": 2}))


class ReferralStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=ReferralStatus.choices)
    outcome = forms.CharField(label=_("Outcome"), required=False, max_length=SUMMARY_MAX)
