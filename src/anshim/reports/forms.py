"""The dashboard's filters (GET): period, team view, platform, harm type, age group. An
invalid value is reported on the form and left out, never a 500."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import AgeGroup, HarmType
from anshim.erasure.models import Platform
from anshim.reports import figures, summary


class Team(models.TextChoices):
    """Which team's view of the dashboard: the sections shown."""

    COUNSELING = "counseling", _("Counseling")
    ERASURE = "erasure", _("Erasure")
    PREVENTION = "prevention", _("Prevention")


class MonthInput(forms.DateInput):
    input_type = "month"

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, dt.date):
            return f"{value:%Y-%m}"
        return super().format_value(value)  # type: ignore[no-any-return]


def _month_field(label: Any) -> forms.DateField:
    return forms.DateField(label=label, required=False, input_formats=["%Y-%m"],
                           widget=MonthInput(),
                           error_messages={"invalid": _("Enter a month as YYYY-MM.")})


class DashboardFilterForm(forms.Form):
    start = _month_field(_("From month"))
    end = _month_field(_("Until month"))
    year = forms.IntegerField(label=_("Year"), required=False, min_value=2000)
    team = forms.ChoiceField(label=_("Team"), required=False,
                             choices=[("", _("All teams")), *Team.choices])
    platform: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=_("Platform"), required=False, queryset=None, empty_label=_("All platforms"))
    harm = forms.ChoiceField(label=_("Harm type"), required=False,
                             choices=[("", _("All harm types")), *HarmType.choices])
    age = forms.ChoiceField(label=_("Age group"), required=False,
                            choices=[("", _("All age groups")), *AgeGroup.choices])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["platform"].queryset = (  # type: ignore[attr-defined]
            Platform.objects.order_by("name"))

    def clean_year(self) -> int | None:
        year: int | None = self.cleaned_data.get("year")
        if year is not None and year > timezone.localdate().year:
            raise forms.ValidationError(_("The year is in the future."))
        return year

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError(_("The first month is after the last month."))
        if start and start > timezone.localdate():
            self.add_error("start", _("The month is in the future."))
        return data


@dataclass(frozen=True, slots=True)
class Filters:
    """The valid filters of one request."""

    period: figures.Period
    team: str
    slice: summary.Slice
    #: the query string of the filters (kept by the page's links)
    query: str

    def shows(self, team: str) -> bool:
        return not self.team or self.team == team


def filters(form: DashboardFilterForm) -> Filters:
    """The period and slice of a (validated) form; invalid fields are left out."""
    data = form.cleaned_data if form.is_valid() else {
        k: v for k, v in getattr(form, "cleaned_data", {}).items() if k not in form.errors}
    start, end, year = data.get("start"), data.get("end"), data.get("year")
    if start or end:
        # from the first month (only `end`: that month alone) up to the end of the last
        # month (only `start`: up to now)
        first: dt.date = (start or end).replace(day=1)  # type: ignore[union-attr]
        last = summary.next_month(end) if end else summary.next_month(
            summary.month_start(timezone.now()))
        lo, _e = summary.bounds(first)
        hi = min(summary.bounds(last)[0], timezone.now())
        label = f"{first:%Y-%m} – {summary.month_start(max(lo, hi - dt.timedelta(seconds=1))):%Y-%m}"  # noqa: E501,RUF001
        period = figures.Period(lo, max(lo, hi), label)
    elif year:
        period = figures.year_period(year)
    else:
        period = figures.last_months(12)
    platform = data.get("platform")
    s = summary.Slice(platform_id=platform.pk if platform else None,
                      age_group=data.get("age") or None, harm_type=data.get("harm") or None)
    kept = {k: form.data.get(k) for k in form.fields if k not in form.errors
            and form.data.get(k)}
    return Filters(period, data.get("team") or "", s, urlencode(kept))
