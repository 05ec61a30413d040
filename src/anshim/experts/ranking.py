"""Ranked expert suggestions for a case's need.

`rank_experts` is a pure function over snapshots (no database, no clock): the table tests pin
its behaviour. `suggest_experts` builds the snapshots from the database and calls it.

The score is a weighted sum of five factors, each in [0, 1]; specialty fit is not a factor but
a requirement (an expert without the needed specialty is never suggested):

- load:         1 - active assignments / weekly capacity (an expert at capacity scores 0)
- availability: free 15-minute slots in the next 14 days (weekly availability minus booked
                slots), saturating at AVAILABILITY_TARGET_SLOTS
- language:     1 when the expert speaks the victim's language
- age:          1 when the expert specialises in the victim's age group, 0.5 when the expert
                lists no age groups (works with all ages), 0 when they list others; 0 for
                everyone when the victim's age is unknown, so it does not change the order
- region:       1 when the expert works in the requested region (0 for everyone when no
                region is requested, so it does not change the order)

The staff member sees the reasons and decides; the ranking never assigns by itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from anshim.experts.models import SLOT_MINUTES, Specialty

if TYPE_CHECKING:
    from anshim.cases.models import Case

# Explicit weights: language first (a session in a language the child does not speak is no
# session), then load (spread work over the 100 experts), availability, the victim's age
# (a child under 14 is best served by a child specialist), and region.
WEIGHT_LANGUAGE = 0.30
WEIGHT_LOAD = 0.25
WEIGHT_AVAILABILITY = 0.20
WEIGHT_AGE = 0.15
WEIGHT_REGION = 0.10
# Age groups that say nothing about the victim's age: the age factor is left out.
UNKNOWN_AGES = frozenset({"", "unknown"})
AVAILABILITY_WINDOW = dt.timedelta(days=14)
# Sixteen free slots (four hours in two weeks) count as fully available.
AVAILABILITY_TARGET_SLOTS = 16

SLOT = dt.timedelta(minutes=SLOT_MINUTES)


@dataclass(frozen=True)
class Window:
    """A recurring weekly window of availability, in local time (weekday 0 = Monday)."""

    weekday: int
    start: dt.time
    end: dt.time


@dataclass(frozen=True)
class ExpertSnapshot:
    expert_id: int
    specialties: frozenset[str]
    languages: frozenset[str]
    regions: frozenset[str]
    weekly_capacity: int
    active_assignments: int
    windows: tuple[Window, ...] = ()
    booked_slots: frozenset[dt.datetime] = frozenset()
    active: bool = True
    # The victims' age groups the expert specialises in; empty: all ages.
    age_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Suggestion:
    expert_id: int
    score: float
    reasons: tuple[str, ...]
    # Each factor's weighted contribution to the score, for tests and the detail view.
    factors: dict[str, float] = field(default_factory=dict, compare=False)
    free_slots: int = 0
    load: float = 0.0


def slot_starts(
    windows: Iterable[Window], start: dt.datetime, end: dt.datetime
) -> list[dt.datetime]:
    """Every slot start inside the weekly windows between `start` and `end` (aware datetimes).

    Windows are read in `start`'s time zone; a slot must fit wholly inside its window.
    """
    tz = start.tzinfo
    by_weekday: dict[int, list[Window]] = {}
    for w in windows:
        by_weekday.setdefault(w.weekday, []).append(w)
    result: list[dt.datetime] = []
    day = start.date()
    while day <= end.date():
        for w in by_weekday.get(day.weekday(), []):
            slot = dt.datetime.combine(day, w.start, tzinfo=tz)
            window_end = dt.datetime.combine(day, w.end, tzinfo=tz)
            while slot + SLOT <= window_end:
                if start <= slot < end:
                    result.append(slot)
                slot += SLOT
        day += dt.timedelta(days=1)
    return result


def free_slot_count(snapshot: ExpertSnapshot, at: dt.datetime) -> int:
    slots = slot_starts(snapshot.windows, at, at + AVAILABILITY_WINDOW)
    return sum(1 for s in slots if s not in snapshot.booked_slots)


def rank_experts(
    need: Specialty | str,
    *,
    language: str,
    region: str | None,
    at: dt.datetime,
    candidates: Sequence[ExpertSnapshot],
    age_group: str | None = None,
) -> list[Suggestion]:
    """Rank the candidates that have the needed specialty, best first.

    Ties go to the lower load, then the lower expert id, so the order is deterministic.
    """
    need = str(need)
    ranked: list[tuple[float, float, int, Suggestion]] = []
    for c in candidates:
        if not c.active or need not in c.specialties:
            continue
        reasons = [_("Specialty fits")]
        load = c.active_assignments / c.weekly_capacity if c.weekly_capacity > 0 else 1.0
        load_factor = max(0.0, 1.0 - load)
        if load >= 1.0:
            reasons.append(_("At or over weekly capacity"))
        else:
            reasons.append(
                _("Load %(active)d of %(capacity)d")
                % {"active": c.active_assignments, "capacity": c.weekly_capacity}
            )
        free = free_slot_count(c, at)
        availability_factor = min(free / AVAILABILITY_TARGET_SLOTS, 1.0)
        if free:
            reasons.append(_("%(count)d free slots in the next 14 days") % {"count": free})
        else:
            reasons.append(_("No free slots in the next 14 days"))
        speaks = language in c.languages
        reasons.append(_("Speaks the language") if speaks else _("Does not speak the language"))
        age_factor = 0.0
        if age_group is not None and age_group not in UNKNOWN_AGES:
            if not c.age_groups:
                age_factor = 0.5
                reasons.append(_("Works with all ages"))
            elif age_group in c.age_groups:
                age_factor = 1.0
                reasons.append(_("Specialises in the victim's age group"))
            else:
                reasons.append(_("Works with other age groups"))
        in_region = region is not None and region in c.regions
        if region is not None:
            reasons.append(_("Works in the region") if in_region else _("Works in other regions"))
        factors = {
            "load": WEIGHT_LOAD * load_factor,
            "availability": WEIGHT_AVAILABILITY * availability_factor,
            "language": WEIGHT_LANGUAGE * (1.0 if speaks else 0.0),
            "age": WEIGHT_AGE * age_factor,
            "region": WEIGHT_REGION * (1.0 if in_region else 0.0),
        }
        score = round(sum(factors.values()), 4)
        suggestion = Suggestion(
            expert_id=c.expert_id, score=score, reasons=tuple(reasons), factors=factors,
            free_slots=free, load=load,
        )
        ranked.append((-score, load, c.expert_id, suggestion))
    ranked.sort(key=lambda t: t[:3])
    return [t[3] for t in ranked]


def snapshots(at: dt.datetime, *, exclude_case: Case | None = None,
              need: str | None = None) -> list[ExpertSnapshot]:
    """Snapshots of every active expert, built with three queries."""
    from django.db.models import Count, Q

    from anshim.experts.models import (
        AppointmentSlot,
        AppointmentStatus,
        AssignmentStatus,
        Expert,
    )

    experts = (
        Expert.objects.filter(active=True)
        .annotate(active_count=Count(
            "assignments", filter=Q(assignments__status=AssignmentStatus.ACTIVE)))
        .prefetch_related("availability")
        .order_by("pk")
    )
    if exclude_case is not None and need is not None:
        # Already holding this need on this case: suggesting them again would be useless.
        experts = experts.exclude(
            assignments__case=exclude_case, assignments__specialty=need,
            assignments__status=AssignmentStatus.ACTIVE,
        )
    booked: dict[int, set[dt.datetime]] = {}
    for expert_id, slot_start in AppointmentSlot.objects.filter(
        slot_start__gte=at, slot_start__lt=at + AVAILABILITY_WINDOW,
        appointment__status=AppointmentStatus.SCHEDULED,
    ).values_list("expert_id", "slot_start"):
        booked.setdefault(expert_id, set()).add(slot_start)
    return [
        ExpertSnapshot(
            expert_id=e.pk,
            specialties=frozenset(e.specialties or ()),
            languages=frozenset(e.languages or ()),
            regions=frozenset(e.regions or ()),
            weekly_capacity=e.weekly_capacity,
            active_assignments=e.active_count,  # type: ignore[attr-defined]
            windows=tuple(
                Window(a.weekday, a.start_time, a.end_time) for a in e.availability.all()),
            booked_slots=frozenset(booked.get(e.pk, ())),
            active=e.active,
            age_groups=frozenset(e.age_groups or ()),
        )
        for e in experts
    ]


def suggest_experts(
    case: Case,
    need: Specialty | str,
    language: str,
    region: str | None,
    limit: int = 5,
    *,
    at: dt.datetime | None = None,
    age_group: str | None = None,
) -> list[Suggestion]:
    """The `limit` best experts for `need` on `case` right now, for a victim of `age_group`
    (a cases.AgeGroup value; None or "unknown": age left out)."""
    from django.utils import timezone

    at = timezone.localtime(at or timezone.now())
    candidates = snapshots(at, exclude_case=case, need=str(need))
    return rank_experts(need, language=language, region=region or None, at=at,
                        candidates=candidates, age_group=age_group)[:limit]
