"""Display filters for the expert registry's code lists."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from anshim.experts.choices import LANGUAGE_LABELS, REGION_LABELS, WEEKDAY_CHOICES
from anshim.experts.models import Specialty

register = template.Library()
_WEEKDAYS = dict(WEEKDAY_CHOICES)


def _labels(codes: Iterable[str] | None, labels: dict[str, object]) -> str:
    return ", ".join(str(labels.get(c, c)) for c in (codes or []))


@register.filter
def specialty_labels(codes: Iterable[str] | None) -> str:
    return _labels(codes, dict(Specialty.choices))


@register.filter
def language_labels(codes: Iterable[str] | None) -> str:
    return _labels(codes, dict(LANGUAGE_LABELS))


@register.filter
def region_labels(codes: Iterable[str] | None) -> str:
    return _labels(codes, dict(REGION_LABELS))


@register.filter
def age_group_labels(codes: Iterable[str] | None) -> str:
    from anshim.cases.models import AgeGroup

    return _labels(codes, dict(AgeGroup.choices))


@register.filter
def weekday_label(day: int) -> str:
    return str(_WEEKDAYS.get(day, day))
