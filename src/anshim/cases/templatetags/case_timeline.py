"""Timeline details from an event's structured data (labels in the staff language)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from anshim.cases.models import ConsentGiver, ConsentMethod, ConsentScope

register = template.Library()


def _label(choices: Any, value: Any) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return ""


@register.filter
def consent_detail(event: Any) -> str:
    """For consent events: which consent, from whom and how ("Keep case data · Victim ·
    In person"); empty for any other event."""
    if not str(getattr(event, "kind", "")).startswith("consent."):
        return ""
    data = event.data or {}
    giver = (_("Everyone") if data.get("given_by") == "all"
             else _label(ConsentGiver, data.get("given_by")))
    parts = [_label(ConsentScope, data.get("scope")), giver,
             _label(ConsentMethod, data.get("method"))]
    return " · ".join(p for p in parts if p)


@register.filter
def status_detail(event: Any) -> str:
    """For status moves (anshim.cases.transitions): "From → To" in the staff language; empty
    for any other event."""
    data = getattr(event, "data", None) or {}
    if not str(getattr(event, "kind", "")).startswith("case.") or "to" not in data:
        return ""
    from anshim.cases.models import CaseStatus

    before, after = _label(CaseStatus, data.get("from")), _label(CaseStatus, data.get("to"))
    return f"{before} \u2192 {after}" if before and after else ""
