"""Forms of the experts app. They only parse and validate input; services do the work."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.forms import inlineformset_factory
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import AgeGroup
from anshim.experts.choices import (
    LANGUAGE_CHOICES,
    SEOUL_DISTRICTS,
    WEEKDAY_CHOICES,
    duration_choices,
)
from anshim.experts.models import (
    SPECIALTY_KIND,
    AppointmentMode,
    Expert,
    Specialty,
    WeeklyAvailability,
)


class SuggestForm(forms.Form):
    need = forms.ChoiceField(label=_("Need"), choices=Specialty.choices)
    language = forms.ChoiceField(label=_("Victim's language"), choices=LANGUAGE_CHOICES)
    region = forms.ChoiceField(
        label=_("Region"), choices=[("", _("Any region")), *SEOUL_DISTRICTS], required=False)
    age_group = forms.ChoiceField(
        label=_("Victim's age group"), choices=AgeGroup.choices, required=False)


class AssignForm(forms.Form):
    expert = forms.ModelChoiceField(
        label=_("Expert"), queryset=Expert.objects.filter(active=True).select_related("user"))
    need = forms.ChoiceField(label=_("Need"), choices=Specialty.choices)
    brief = forms.CharField(
        label=_("Brief for the expert"), required=False, max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Only what the expert needs to know. The expert does not see the case file."),
    )


class AppointmentForm(forms.Form):
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(
        label=_("Start time"), widget=forms.TimeInput(attrs={"type": "time", "step": 900}))
    duration = forms.TypedChoiceField(
        label=_("Duration"), choices=duration_choices, coerce=int, initial=60)
    mode = forms.ChoiceField(
        label=_("Mode"), choices=AppointmentMode.choices, initial=AppointmentMode.IN_PERSON)
    location = forms.CharField(
        label=_("Meeting place"), required=False, max_length=300,
        help_text=_("For an in-person session: the room at the center or the address. Stored "
                    "encrypted; only the expert and the staff who arrange the session see it."))

    def starts_at(self) -> dt.datetime:
        """The start as an aware datetime in the centre's time zone (after is_valid())."""
        naive = dt.datetime.combine(self.cleaned_data["date"], self.cleaned_data["time"])
        return timezone.make_aware(naive)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date") and data.get("time"):
            try:
                self.starts_at()
            except (ValueError, OverflowError):
                raise forms.ValidationError(_("This date and time does not exist.")) from None
        if (data.get("mode") == AppointmentMode.IN_PERSON and not self.holds_session
                and not (data.get("location") or "").strip()):
            self.add_error("location", _("Enter where the in-person session takes place."))
        return data

    # A session recorded afterwards needs no meeting place (nobody is going there).
    holds_session = False


class HeldSessionForm(AppointmentForm):
    """A session that already took place: when, how long, how, and its log."""

    holds_session = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["location"]

    summary = forms.CharField(
        label=_("Session summary"), max_length=20000, widget=forms.Textarea(attrs={"rows": 8}))
    follow_up_needed = forms.BooleanField(label=_("Follow-up needed"), required=False)


class SessionLogForm(forms.Form):
    summary = forms.CharField(
        label=_("Session summary"), max_length=20000, widget=forms.Textarea(attrs={"rows": 8}))
    follow_up_needed = forms.BooleanField(label=_("Follow-up needed"), required=False)


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=300)


class OutcomeForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("done", _("Done")), ("no_show", _("Did not attend"))])


class ExpertForm(forms.ModelForm):
    specialties = forms.MultipleChoiceField(
        label=_("Specialties"), choices=Specialty.choices, widget=forms.CheckboxSelectMultiple)
    languages = forms.MultipleChoiceField(
        label=_("Languages"), choices=LANGUAGE_CHOICES, widget=forms.CheckboxSelectMultiple)
    regions = forms.MultipleChoiceField(
        label=_("Regions"), choices=SEOUL_DISTRICTS, widget=forms.CheckboxSelectMultiple,
        required=False)
    age_groups = forms.MultipleChoiceField(
        label=_("Age groups the expert specialises in"),
        choices=[c for c in AgeGroup.choices if c[0] != AgeGroup.UNKNOWN],
        widget=forms.CheckboxSelectMultiple, required=False,
        help_text=_("None ticked: works with all ages. Used to rank suggestions."))

    class Meta:
        model = Expert
        fields = ["kind", "organization", "specialties", "languages", "regions", "age_groups",
                  "weekly_capacity", "active"]

    def clean_weekly_capacity(self) -> int:
        value = self.cleaned_data["weekly_capacity"]
        if value > 60:
            raise forms.ValidationError(_("At most 60 sessions a week."))
        return int(value)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        wrong = [s for s in data.get("specialties", []) if SPECIALTY_KIND.get(s) != kind]
        if kind and wrong:
            self.add_error("specialties", _("These specialties do not match the expert's kind."))
        return data


class AvailabilityForm(forms.ModelForm):
    weekday = forms.TypedChoiceField(label=_("Weekday"), choices=WEEKDAY_CHOICES, coerce=int)

    class Meta:
        model = WeeklyAvailability
        fields = ["weekday", "start_time", "end_time"]
        widgets = {
            "start_time": forms.TimeInput(attrs={"type": "time", "step": 900}),
            "end_time": forms.TimeInput(attrs={"type": "time", "step": 900}),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_time"), data.get("end_time")
        for name in ("start_time", "end_time"):
            value = data.get(name)
            if value and (value.minute % 15 or value.second):
                self.add_error(name, _("Use a quarter hour (:00, :15, :30, :45)."))
        if start and end and end <= start:
            self.add_error("end_time", _("The end must be after the start."))
        return data


AvailabilityFormSet = inlineformset_factory(
    Expert, WeeklyAvailability, form=AvailabilityForm, extra=2, can_delete=True, max_num=28,
    validate_max=True,
)
