"""Two bookings racing for overlapping times: exactly one wins, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection, connections

from anshim.experts import services
from anshim.experts.models import Appointment, AppointmentSlot, Assignment

from .conftest import book, next_weekday

ROUNDS = 3


def _race(jobs: list[tuple[Any, Any, dt.datetime]]) -> list[object]:
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(i: int, actor: Any, assignment_pk: int, start: dt.datetime) -> None:
        try:
            assignment = Assignment.objects.select_related("case", "expert").get(pk=assignment_pk)
            barrier.wait(timeout=10)
            results[i] = book(actor, assignment, start,
                                                   duration_minutes=60)
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, actor, a.pk, start))
               for i, (actor, a, start) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("offset_minutes", [0, 30])
def test_concurrent_overlapping_bookings_end_with_exactly_one(
    make_case: Any, make_expert: Any, make_user: Any, offset_minutes: int,
    committed_audit: None,
) -> None:
    counselor = make_user("counselor")
    expert = make_expert(capacity=50, windows=((0, 8, 20), (2, 8, 20)))
    first = Assignment.objects.create(case=make_case(), expert=expert, specialty="trauma")
    second = Assignment.objects.create(case=make_case(), expert=expert, specialty="trauma")
    for round_ in range(ROUNDS):
        start = next_weekday(0, 9 + 2 * round_)
        results = _race([
            (counselor, first, start),
            (counselor, second, start + dt.timedelta(minutes=offset_minutes)),
        ])
        booked = [r for r in results if isinstance(r, Appointment)]
        refused = [r for r in results if isinstance(r, services.DoubleBooking)]
        assert len(booked) == 1 and len(refused) == 1, (connection.vendor, results)
    assert Appointment.objects.count() == ROUNDS
    assert AppointmentSlot.objects.count() == ROUNDS * 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_bookings_of_different_slots_never_exceed_weekly_capacity(
    make_case: Any, make_expert: Any, make_user: Any, committed_audit: None,
) -> None:
    """The capacity is counted inside the booking transaction with the expert row locked, so
    bookings of different (non-overlapping) times cannot both take the last session."""
    counselor = make_user("counselor")
    expert = make_expert(capacity=1, windows=((0, 8, 20), (2, 8, 20)))
    assignments = [Assignment.objects.create(case=make_case(), expert=expert, specialty="trauma")
                   for _ in range(4)]
    for week in range(ROUNDS):
        results = _race([(counselor, a, next_weekday(0, 9 + 2 * i, weeks_ahead=1 + week))
                         for i, a in enumerate(assignments)])
        booked = [r for r in results if isinstance(r, Appointment)]
        refused = [r for r in results if isinstance(r, services.OverCapacity)]
        assert len(booked) == 1 and len(refused) == 3, (connection.vendor, results)
    assert Appointment.objects.count() == ROUNDS
