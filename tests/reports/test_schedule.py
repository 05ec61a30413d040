"""The closed months' summaries stay honest: `anshim periodic` enqueues the rebuild once a
night, the rebuild corrects a bulk write that sent no signal, and the case edit (a queryset
update) drops the kept tables of the period it changes (issue 14)."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from anshim.reports import figures, summary, tasks

from .conftest import SEOUL, YEAR, World

REBUILD = "anshim.reports.tasks.rebuild_summaries"


def _enqueued() -> int:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(task_path=REBUILD).count()


# The command closes old connections at each tick: that needs real commits.
@pytest.mark.django_db(transaction=True)
def test_periodic_enqueues_the_rebuild_once_a_night() -> None:
    from django_tasks_db.models import DBTaskResult

    out = StringIO()
    call_command("periodic", "--once", stdout=out)
    assert "(the nightly rebuild of the report summaries)" in out.getvalue()
    assert _enqueued() == 1
    call_command("periodic", "--once", stdout=StringIO())
    assert _enqueued() == 1  # not again the same night
    # The next night's first tick enqueues it again.
    DBTaskResult.objects.filter(task_path=REBUILD).update(
        enqueued_at=tasks.last_nightly_mark(timezone.now()) - dt.timedelta(minutes=1))
    call_command("periodic", "--once", stdout=StringIO())
    assert _enqueued() == 2


def test_the_nightly_mark_is_three_oclock_in_the_centers_time_zone() -> None:
    before = dt.datetime(2026, 3, 5, 2, 59, tzinfo=SEOUL)
    after = dt.datetime(2026, 3, 5, 3, 0, tzinfo=SEOUL)
    assert tasks.last_nightly_mark(before) == dt.datetime(2026, 3, 4, 3, tzinfo=SEOUL)
    assert tasks.last_nightly_mark(after) == after


def _funnel(period: figures.Period) -> list[int]:
    return [r[1] for r in figures.erasure_funnel(period).rows]


def test_the_rebuild_corrects_a_bulk_write_without_signals(world: World) -> None:
    """A queryset update on sightings of a closed month sends nothing: the summary keeps the
    old figures until the nightly task rebuilds them."""
    from anshim.erasure.models import Sighting

    period = figures.year_period(YEAR)
    summary.rebuild_all()
    before = _funnel(period)
    assert before[3] == 4  # removed
    Sighting.objects.filter(case=world.cases[0]).update(status="confirmed", removed_at=None)
    assert _funnel(period) == before  # stale: no signal reached the summary
    assert tasks.rebuild_summaries.call() > 0
    assert _funnel(period)[3] == 2


def test_a_case_edit_drops_the_kept_tables_of_its_period(world: World, make_user: Any) -> None:
    """`update_case` writes the case row with a queryset update; the offender's relationship
    it changes is counted by the kept annual tables of a closed year."""
    from anshim.cases.models import Case
    from anshim.cases.services import update_case
    from anshim.reports.models import PeriodTables

    period = figures.year_period(YEAR)

    def relationship() -> dict[str, int]:
        table = next(t for t in figures.annual_tables(period) if t.key == "relationship")
        return {str(r[0]): r[1] for r in table.rows}

    first = relationship()
    assert PeriodTables.objects.filter(start=period.start).exists()  # kept
    case = Case.objects.get(pk=world.cases[2].pk)  # the 2025 case whose offender is family
    update_case(make_user("supervisor"), case, case.version,
                {"offender_relationship": "stranger"})
    assert not PeriodTables.objects.filter(start=period.start).exists()
    second = relationship()
    assert sum(second.values()) == sum(first.values())
    assert second != first
    # A change the reports do not count keeps them.
    case.refresh_from_db()
    update_case(make_user("supervisor"), case, case.version,
                {"lead_counselor": make_user("counselor")})
    assert PeriodTables.objects.filter(start=period.start).exists()
