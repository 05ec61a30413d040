"""Free start times of an expert for the booking form's slot picker.

The picker only offers; `services.validate_booking` and the slot table's unique constraint stay
authoritative (a time shown as free can be taken by someone else before the form is sent).
The rules are those of the booking: inside one weekly window, after now, no booked slot, and
the week's capacity not yet used up.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.utils import timezone

from anshim.experts.choices import DURATIONS
from anshim.experts.models import SLOT_MINUTES, Appointment, AppointmentSlot, Expert

PICKER_DAYS = 14
SLOT = dt.timedelta(minutes=SLOT_MINUTES)


@dataclass(frozen=True)
class FreeDay:
    day: dt.date
    starts: tuple[dt.datetime, ...]


def _week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def free_starts(expert: Expert, duration_minutes: int, *, now: dt.datetime | None = None,
                days: int = PICKER_DAYS, exclude: Appointment | None = None) -> list[dt.datetime]:
    """Aware local start times at which a `duration_minutes` session could be booked."""
    return [s for d in free_days(expert, [duration_minutes], now=now, days=days,
                                 exclude=exclude)[duration_minutes] for s in d.starts]


def free_days(expert: Expert, durations: list[int] | tuple[int, ...] = DURATIONS, *,
              now: dt.datetime | None = None, days: int = PICKER_DAYS,
              exclude: Appointment | None = None) -> dict[int, list[FreeDay]]:
    """For each duration, the days with free start times (three queries in all)."""
    from anshim.experts.services import COUNTED_STATUSES

    now = timezone.localtime(now or timezone.now())
    first = now.date()
    last = first + dt.timedelta(days=days)
    range_start = timezone.make_aware(dt.datetime.combine(_week_start(first), dt.time(0)))
    range_end = timezone.make_aware(dt.datetime.combine(
        _week_start(last) + dt.timedelta(days=7), dt.time(0)))
    windows = list(expert.availability.all())
    slots = AppointmentSlot.objects.filter(
        expert=expert, slot_start__gte=range_start, slot_start__lt=range_end)
    booked_counts = Appointment.objects.filter(
        expert=expert, status__in=COUNTED_STATUSES,
        starts_at__gte=range_start, starts_at__lt=range_end)
    if exclude is not None:
        slots = slots.exclude(appointment=exclude)
        booked_counts = booked_counts.exclude(pk=exclude.pk)
    busy = {timezone.localtime(s) for s in slots.values_list("slot_start", flat=True)}
    per_week: dict[dt.date, int] = defaultdict(int)
    for start in booked_counts.values_list("starts_at", flat=True):
        per_week[_week_start(timezone.localtime(start).date())] += 1

    result: dict[int, list[FreeDay]] = {}
    for minutes in durations:
        length = dt.timedelta(minutes=minutes)
        day_list: list[FreeDay] = []
        day = first
        while day < last:
            if per_week[_week_start(day)] >= expert.weekly_capacity:
                day += dt.timedelta(days=1)
                continue
            starts: list[dt.datetime] = []
            for w in windows:
                if w.weekday != day.weekday():
                    continue
                slot = timezone.make_aware(dt.datetime.combine(day, w.start_time))
                end = timezone.make_aware(dt.datetime.combine(day, w.end_time))
                while slot + length <= end:
                    if slot > now and not any(
                            slot + i * SLOT in busy for i in range(minutes // SLOT_MINUTES)):
                        starts.append(slot)
                    slot += SLOT
            if starts:
                day_list.append(FreeDay(day=day, starts=tuple(sorted(set(starts)))))
            day += dt.timedelta(days=1)
        result[minutes] = day_list
    return result
