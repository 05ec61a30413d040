"""The closed months' summary rows: the same figures as the live computation, dropped when a
source row of a closed month changes, never built for the open month; the dashboard's filters
(platform, age group, harm type) against the hand-computed fixture."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from anshim.reports import figures, summary, tasks
from anshim.reports.models import DurationMeasure, PlatformMonth, SummarizedMonth

from .conftest import YEAR, World, at


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


def _live(period: figures.Period) -> summary.Plan:
    """The whole period computed from the source rows, nothing from the summary."""
    return summary.Plan(cached=[], live=[(period.start, period.end)])


def test_cached_months_give_the_live_figures(world: World) -> None:
    period = figures.year_period(YEAR)
    cached = summary.plan(period.start, period.end, build=True)
    assert len(cached.cached) == 12 and cached.live == []
    live = _live(period)
    for s in (summary.ALL, summary.Slice(harm_type="distribution"),
              summary.Slice(age_group="under14"),
              summary.Slice(platform_id=world.platforms["social"].pk)):
        assert summary.platform_counts(cached, s) == summary.platform_counts(live, s)
        assert summary.route_counts(cached, s) == summary.route_counts(live, s)
        for measure in DurationMeasure.values:
            assert (summary.quantiles(cached, s, measure, (0.5, 0.9))
                    == summary.quantiles(live, s, measure, (0.5, 0.9)))


def test_a_change_in_a_closed_month_drops_that_month(world: World) -> None:
    from anshim.erasure.models import Sighting

    summary.rebuild_all()
    feb = dt.date(YEAR, 2, 1)
    assert SummarizedMonth.objects.filter(month=feb).exists()
    sighting = Sighting.objects.filter(case=world.cases[0]).first()
    assert sighting is not None
    sighting.is_reupload = True
    sighting.save()
    assert not SummarizedMonth.objects.filter(month=feb).exists()
    assert not PlatformMonth.objects.filter(month=feb).exists()
    assert SummarizedMonth.objects.filter(month=dt.date(YEAR, 5, 1)).exists()
    # the next reader sees the change at once (February read live) and leaves the build to
    # the worker, queued once however many readers come before it runs
    for _reader in range(3):
        p = summary.plan(figures.year_period(YEAR).start, figures.year_period(YEAR).end)
        assert feb not in p.cached and len(p.cached) == 11
        funnel = dict((str(r[0]), r[1]) for r in
                      figures.erasure_funnel(figures.year_period(YEAR)).rows)
        assert funnel["Re-uploaded"] == 1
    assert not SummarizedMonth.objects.filter(month=feb).exists()
    queued = DBTaskResult.objects.filter(task_path=tasks.build_months.module_path)
    assert [r.args_kwargs["args"] for r in queued] == [[[feb.isoformat()]]]
    # the worker's run builds it: the same figure, now from the summary
    assert tasks.build_months.call([feb.isoformat()]) == 1
    assert SummarizedMonth.objects.filter(month=feb).exists()
    p = summary.plan(figures.year_period(YEAR).start, figures.year_period(YEAR).end)
    assert len(p.cached) == 12
    assert dict((str(r[0]), r[1]) for r in figures.erasure_funnel(
        figures.year_period(YEAR)).rows)["Re-uploaded"] == 1
    # a second build of a built month is a no-op
    assert tasks.build_months.call([feb.isoformat()]) == 0


def test_two_builders_of_one_month_write_it_once(world: World) -> None:
    feb = dt.date(YEAR, 2, 1)
    summary.build_month(feb)
    rows = PlatformMonth.objects.filter(month=feb).count()
    summary.build_month(feb)  # again: the rows replaced, not added to
    assert PlatformMonth.objects.filter(month=feb).count() == rows
    assert SummarizedMonth.objects.filter(month=feb).count() == 1


def test_the_open_month_is_live_never_cached(world: World) -> None:
    from anshim.erasure.models import Sighting, TakedownItem, TakedownRequest

    now = timezone.now()
    this_month = summary.month_start(now)
    with pytest.raises(ValueError, match="not over"):
        summary.build_month(this_month)
    start = summary.bounds(this_month)[0]
    sent = start + (now - start) / 2
    sighting = Sighting.objects.create(
        page_url="https://x.invalid/now", media_url="https://x.invalid/mnow",
        platform=world.platforms["webhard"], entry_id=0, bank_name="b", case=world.cases[2],
        match_kind="pdq", distance=1, status="removed", first_seen=sent, last_seen=sent,
        removed_at=sent)
    request = TakedownRequest.objects.create(
        case=world.cases[2], platform=world.platforms["webhard"], subject="s", body="b",
        state="removed", sent_at=sent, closed_at=sent)
    TakedownItem.objects.create(request=request, sighting=sighting)
    period = figures.Period(start, now, "this month")
    rows = {str(r[0]): r[1:] for r in figures.removal_times(period).rows}
    assert rows["Webhard"][:2] == [1, 1]
    assert not SummarizedMonth.objects.filter(month=this_month).exists()


def test_filters_slice_the_figures(world: World) -> None:
    period = figures.year_period(YEAR)
    social = world.platforms["social"].pk

    def removal(s: summary.Slice) -> dict[str, list[Any]]:
        return {str(r[0]): r[1:] for r in figures.removal_times(period, s).rows}

    # sextortion: only case 0 (two notices on Social, 10 h and 30 h): nearest-rank median
    # rank 1 of 2 -> 10 h, p90 rank 2 of 2 -> 30 h
    assert removal(summary.Slice(harm_type="sextortion")) == {
        "Social": [2, 2, 10.0, 30.0, 50.0, 100.0, 100.0]}
    # 14-17: only case 2 (Webhard, 5 h)
    assert removal(summary.Slice(age_group="14to17")) == {
        "Webhard": [1, 1, 5.0, 5.0, 100.0, 100.0, 100.0]}
    # distribution (cases 0 and 1: 10, 30, 100 h) on Social
    assert removal(summary.Slice(harm_type="distribution", platform_id=social)) == {
        "Social": [3, 3, 30.0, 100.0, 33.3, 66.7, 100.0]}
    funnel = {str(r[0]): r[1] for r in
              figures.erasure_funnel(period, summary.Slice(age_group="under14")).rows}
    assert funnel["Sightings found"] == 3
    # the first notice of case 2: 3 h after intake (seen +2 h, sent +1 h), partner API
    first = {str(r[0]): r[1:] for r in
             figures.intake_to_notice(period, summary.Slice(harm_type="grooming")).rows}
    assert first == {"Partner API": [1, 3.0, 3.0, 100.0, 100.0, 100.0]}


def test_scorecard_trend_is_monthly(world: World) -> None:
    rows = {str(r[0]): r[1:] for r in
            figures.scorecard_trend(figures.year_period(YEAR)).rows}
    assert rows == {f"{YEAR}-02 Social": [2, 100.0], f"{YEAR}-05 Social": [1, 100.0],
                    f"{YEAR}-09 Webhard": [1, 100.0]}


def test_the_cold_build_costs_a_fixed_number_of_queries_per_month(
        world: World, django_assert_max_num_queries: Any) -> None:
    # per month: the groupings by platform, age (and all ages) and harm (and all harms),
    # the histograms, banks, exposure, the counseling counts, the routes, and writing the rows
    with django_assert_max_num_queries(12 * 60):
        summary.plan(figures.year_period(YEAR).start, figures.year_period(YEAR).end,
                     build=True)
    assert at(1, 1).year == YEAR


def test_concurrent_builders_of_an_unbuilt_month_write_it_once(transactional_db: Any,
                                                               world: World) -> None:
    """Two builders of a month nobody has built (the worker's task and `anshim report`, or two
    tasks): the second waits on the marker and replaces the first's rows."""
    import threading

    from django.db import connection, connections

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("needs a file or server database for real concurrent writers")
    feb = dt.date(YEAR, 2, 1)
    summary.build_month(feb)
    expected = PlatformMonth.objects.filter(month=feb).count()
    assert expected
    SummarizedMonth.objects.filter(month=feb).delete()
    PlatformMonth.objects.filter(month=feb).delete()
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def builder() -> None:
        try:
            barrier.wait()
            summary.build_month(feb)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=builder) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert SummarizedMonth.objects.filter(month=feb).count() == 1
    assert PlatformMonth.objects.filter(month=feb).count() == expected
