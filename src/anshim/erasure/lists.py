"""The erasure staff lists' filters, all in SQL: takedown requests (the erasure page's "Find
requests") and sightings (the sightings list). The supervisor dashboard links its erasure
numbers here (anshim.reports.links), so each filter counts rows the way the dashboard's
summary does (reports.summary): by the request's `sent_at`, the sighting's `first_seen`, and
the victim's age group and harm types on the linked case."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from anshim.cases.models import CaseHarm
from anshim.erasure import takedowns
from anshim.erasure.models import (
    Sighting,
    SightingStatus,
    TakedownItem,
    TakedownRequest,
    route_q,
)


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight of `day` in the center's time zone (a range on the indexed column)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _in_days(qs: QuerySet[Any], column: str, start: dt.date | None,
             end: dt.date | None) -> QuerySet[Any]:
    """`column` from the first moment of `start` to the last of `end` (both inclusive)."""
    if start:
        qs = qs.filter(**{f"{column}__gte": _day_start(start)})
    if end:
        qs = qs.filter(**{f"{column}__lt": _day_start(end + dt.timedelta(days=1))})
    return qs


def _sliced(qs: QuerySet[Any], params: dict[str, Any]) -> QuerySet[Any]:
    """The dashboard's slice on rows with a `case`: the victim's age group, a harm type of
    the case (EXISTS: each row once), the platform."""
    if params.get("platform"):
        qs = qs.filter(platform_id=getattr(params["platform"], "pk", params["platform"]))
    if params.get("age"):
        qs = qs.filter(case__person__age_group=params["age"])
    if params.get("harm"):
        qs = qs.filter(Exists(CaseHarm.objects.filter(case_id=OuterRef("case_id"),
                                                      harm_type=params["harm"])))
    return qs


def has_filters(params: dict[str, Any]) -> bool:
    return any(v not in (None, "", False) for v in params.values())


def filter_requests(params: dict[str, Any]) -> QuerySet[TakedownRequest]:
    """Requests by progress, case code, state, platform, slice, sending day, re-sending."""
    qs = TakedownRequest.objects.select_related("platform", "case")
    show = params.get("show")
    if show == "finished":
        qs = qs.filter(state__in=takedowns.CLOSING_STATES)
    elif show == "open":
        qs = qs.filter(state__in=takedowns.OPEN_STATES)
    code = (params.get("case") or "").strip()
    if code:
        qs = qs.filter(case__code__iexact=code)
    if params.get("state"):
        qs = qs.filter(state=params["state"])
        if params["state"] == "removed":
            # as the summary counts a removal: with the moment it was closed
            qs = qs.filter(closed_at__isnull=False)
    if params.get("resent"):
        qs = qs.filter(send_count__gt=1)
    if params.get("route"):
        qs = qs.filter(route_q(params["route"]))
    qs = _in_days(_sliced(qs, params), "sent_at", params.get("sent_from"),
                  params.get("sent_to"))
    return qs.order_by("-closed_at", "-created_at", "-id")


def filter_sightings(params: dict[str, Any], now: dt.datetime | None = None
                     ) -> QuerySet[Sighting]:
    """Sightings by the funnel's stage (or the backlog), platform, slice, first-seen day and
    age in hours (the backlog's bands: at least `older_than`, less than `newer_than`)."""
    now = now or timezone.now()
    qs = Sighting.objects.select_related("platform", "case")
    stage = params.get("stage")
    if stage == "confirmed":
        qs = qs.filter(status__in=[SightingStatus.CONFIRMED, SightingStatus.REMOVED])
    elif stage == "requested":
        qs = qs.filter(Exists(TakedownItem.objects.filter(sighting_id=OuterRef("pk"),
                                                          request__sent_at__isnull=False)))
    elif stage == "removed":
        qs = qs.filter(status=SightingStatus.REMOVED)
    elif stage == "reuploaded":
        qs = qs.filter(is_reupload=True)
    elif stage == "backlog":
        qs = qs.filter(status=SightingStatus.CONFIRMED)
    elif stage == "queue":
        qs = qs.filter(status=SightingStatus.NEW)
    if params.get("older_than") is not None:
        qs = qs.filter(first_seen__lte=now - dt.timedelta(hours=params["older_than"]))
    if params.get("newer_than") is not None:
        qs = qs.filter(Q(first_seen__gt=now - dt.timedelta(hours=params["newer_than"])))
    qs = _in_days(_sliced(qs, params), "first_seen", params.get("seen_from"),
                  params.get("seen_to"))
    return qs.order_by("-first_seen", "-id")
