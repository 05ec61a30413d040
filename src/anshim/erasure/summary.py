"""Numbers: the per-case summary (case page, victim portal) and per-platform metrics."""

from __future__ import annotations

import statistics
from typing import Any

from anshim.cases.models import Case
from anshim.erasure.models import Platform, Sighting, SightingStatus, TakedownRequest, TakedownState

_COUNTED = (SightingStatus.NEW, SightingStatus.CONFIRMED, SightingStatus.REMOVED)


def _median_hours(sightings: list[Sighting]) -> float | None:
    hours = [h for s in sightings if (h := s.hours_to_removal) is not None]
    return round(statistics.median(hours), 1) if hours else None


def case_summary(case: Case) -> dict[str, Any] | None:
    """found, confirmed, requests_sent, removed, reuploads, median_hours_to_removal; None
    while the case has no erasure activity."""
    sightings = list(Sighting.objects.filter(case=case, status__in=_COUNTED))
    # Sent means a notice went out: a draft stopped by a withdrawn consent never was.
    requests_sent = TakedownRequest.objects.filter(case=case, sent_at__isnull=False).count()
    if not sightings and not requests_sent:
        return None
    removed = [s for s in sightings if s.status == SightingStatus.REMOVED]
    return {
        "found": len(sightings),
        "confirmed": sum(s.status != SightingStatus.NEW for s in sightings),
        "requests_sent": requests_sent,
        "removed": len(removed),
        "reuploads": sum(s.is_reupload for s in sightings),
        "median_hours_to_removal": _median_hours(removed),
    }


def platform_metrics() -> list[dict[str, Any]]:
    """Per platform: median hours to removal, share removed within 24 h / 72 h (of confirmed
    or removed sightings), open requests and re-upload rate."""
    rows = []
    open_states = [TakedownState.SENT, TakedownState.ACKNOWLEDGED, TakedownState.NO_RESPONSE,
                   TakedownState.REFUSED]
    for platform in Platform.objects.all():
        sightings = list(platform.sightings.filter(
            status__in=[SightingStatus.CONFIRMED, SightingStatus.REMOVED]))
        if not sightings and not platform.takedown_requests.exists():
            continue
        removed = [s for s in sightings if s.status == SightingStatus.REMOVED]
        n = len(sightings)

        def within(hours: float, removed: list[Sighting] = removed, n: int = n) -> float | None:
            if not n:
                return None
            return round(sum((s.hours_to_removal or 0) <= hours for s in removed) / n, 3)

        rows.append({
            "platform": platform.name,
            "sightings": n,
            "removed": len(removed),
            "median_hours_to_removal": _median_hours(removed),
            "removed_within_24h": within(24),
            "removed_within_72h": within(72),
            "open_requests": platform.takedown_requests.filter(state__in=open_states).count(),
            "reupload_rate": round(sum(s.is_reupload for s in sightings) / n, 3) if n else None,
        })
    return rows
