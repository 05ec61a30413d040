"""Forms of the erasure staff pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import AgeGroup, HarmType
from anshim.erasure.models import NoticeLanguage, NoticeRoute, Platform, TakedownState


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("confirm", _("Confirm")), ("reject", _("Reject"))])
    #: the copy carries the victim's personal information (the annual co-leak table)
    leaks_personal_info = forms.BooleanField(required=False,
                                             label=_("Personal information leaked with it"))


class DraftForm(forms.Form):
    language = forms.ChoiceField(label=_("Notice language"), required=False,
                                 choices=[("", _("Platform default")), *NoticeLanguage.choices])


class ResponseForm(forms.Form):
    state = forms.ChoiceField(label=_("Platform answer"), choices=[
        (TakedownState.ACKNOWLEDGED, TakedownState.ACKNOWLEDGED.label),
        (TakedownState.REMOVED, TakedownState.REMOVED.label),
        (TakedownState.REFUSED, TakedownState.REFUSED.label),
        (TakedownState.ESCALATED, TakedownState.ESCALATED.label),
    ])
    note = forms.CharField(label=_("Note"), max_length=300, required=False)


class NoticeEditForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=300)
    body = forms.CharField(label=_("Text"), max_length=20_000,
                           widget=forms.Textarea(attrs={"rows": 24, "cols": 90}))


def _platform_field() -> forms.ModelChoiceField[Any]:
    return forms.ModelChoiceField(label=_("Platform"), required=False, queryset=None,
                                  empty_label=_("All platforms"))


def _day_field(label: Any) -> forms.DateField:
    return forms.DateField(label=label, required=False,
                           widget=forms.DateInput(attrs={"type": "date"}))


class _SliceForm(forms.Form):
    """The supervisor dashboard's slice (the same names as reports.forms), so a dashboard
    number links to exactly the rows it counts."""

    platform = _platform_field()
    harm = forms.ChoiceField(label=_("Harm type"), required=False,
                             choices=[("", _("All harm types")), *HarmType.choices])
    age = forms.ChoiceField(label=_("Age group"), required=False,
                            choices=[("", _("All age groups")), *AgeGroup.choices])

    #: the (from, until) date fields checked for order
    date_range: tuple[str, str] = ("", "")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["platform"].queryset = (  # type: ignore[attr-defined]
            Platform.objects.order_by("name"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = (data.get(name) for name in self.date_range)
        if start and end and start > end:
            raise forms.ValidationError(_("The start date is after the end date."))
        return data


class RequestFilterForm(_SliceForm):
    """Find requests on the erasure page, finished ones included."""

    show = forms.ChoiceField(label=_("Requests"), required=False, choices=[
        ("", _("All requests")), ("open", _("In progress")), ("finished", _("Finished"))])
    case = forms.CharField(label=_("Case code"), max_length=16, required=False)
    state = forms.ChoiceField(label=_("State"), required=False,
                              choices=[("", _("All")), *TakedownState.choices])
    sent_from = _day_field(_("Sent from"))
    sent_to = _day_field(_("Sent until"))
    resent = forms.BooleanField(label=_("Only notices sent again"), required=False)
    route = forms.ChoiceField(label=_("Route"), required=False,
                              choices=[("", _("All")), *NoticeRoute.choices])
    date_range = ("sent_from", "sent_to")
    field_order = ["show", "case", "state", "platform", "harm", "age", "sent_from", "sent_to",
                   "resent", "route"]


class SightingStage(models.TextChoices):
    """The erasure funnel's stages (reports.summary counts them), the backlog and the review
    queue."""

    CONFIRMED = "confirmed", _("Confirmed by a reviewer")
    REQUESTED = "requested", _("Takedown request sent")
    REMOVED = "removed", _("Removed")
    REUPLOADED = "reuploaded", _("Re-uploaded")
    BACKLOG = "backlog", _("Confirmed, not yet removed")
    QUEUE = "queue", _("Waiting for review")


class SightingFilterForm(_SliceForm):
    stage = forms.ChoiceField(label=_("Stage"), required=False,
                              choices=[("", _("All sightings")), *SightingStage.choices])
    seen_from = _day_field(_("First seen from"))
    seen_to = _day_field(_("First seen until"))
    older_than = forms.IntegerField(label=_("First seen at least (hours ago)"), required=False,
                                    min_value=0, max_value=1_000_000)
    newer_than = forms.IntegerField(label=_("First seen less than (hours ago)"),
                                    required=False, min_value=1, max_value=1_000_000)
    date_range = ("seen_from", "seen_to")
