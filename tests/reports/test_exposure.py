"""Reviewer exposure (issue 14): minutes of unblurred viewing per specialist per ISO week, on
a hand-made fixture — the same from the closed months' summary rows and live, a week split
between two months added up, the week boundary in the center's time zone (Asia/Seoul)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from anshim.erasure.exposure import UNREPORTED_SECONDS, record_viewing
from anshim.reports import figures, summary
from anshim.reports.models import ExposureMonth

SEOUL = ZoneInfo("Asia/Seoul")
W40 = dt.date(2025, 9, 29)  # Monday of 2025-W40 (Sep 29 - Oct 5)
W41 = dt.date(2025, 10, 6)


def seoul(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, minute, tzinfo=SEOUL)


@dataclass
class Fixture:
    mina: Any
    joon: Any
    records: dict[str, Any]


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def viewings(db: Any, make_user: Any) -> Fixture:
    """Mina: Sep 30 (120 s) and Oct 1 (300 s), the same ISO week across the month boundary;
    Sunday Oct 5 23:30 (no report: the default) and Monday Oct 6 00:30 Seoul time (90 s) —
    both Oct 5 in UTC, a week apart in Seoul. Joon: Oct 2 (600 s)."""
    from anshim.erasure.matcher import MatchResult
    from anshim.erasure.models import UnblurRecord
    from anshim.erasure.sightings import Observation, record_sighting

    match = MatchResult(bank="victims", bank_id=1, entry_id=1, case_code=None, distance=3,
                        kind="pdq")
    sighting, _ = record_sighting(Observation("http://sns.test/p/1", "http://sns.test/m/1"),
                                  match)
    mina = make_user("erasure", display_name="Mina")
    joon = make_user("erasure", display_name="Joon")
    specs = {"sep30": (mina, seoul(9, 30, 10), 120), "oct1": (mina, seoul(10, 1, 10), 300),
             "sun": (mina, seoul(10, 5, 23, 30), None), "mon": (mina, seoul(10, 6, 0, 30), 90),
             "joon": (joon, seoul(10, 2, 9), 600)}
    records = {}
    for key, (actor, at, seconds) in specs.items():
        r = UnblurRecord.objects.create(sighting=sighting, actor=actor, seconds_viewed=seconds)
        # auto_now_add: the time is set afterwards (no summary is built yet)
        UnblurRecord.objects.filter(pk=r.pk).update(at=at)
        records[key] = r
    return Fixture(mina, joon, records)


def _period(start: dt.datetime, end: dt.datetime) -> figures.Period:
    return figures.Period(start, end, "test")


def test_minutes_per_specialist_per_week_exact(viewings: Fixture) -> None:
    p = summary.plan(seoul(9, 1, 0), seoul(11, 1, 0), build=True)
    assert p.cached == [dt.date(2025, 9, 1), dt.date(2025, 10, 1)] and not p.live
    weeks = summary.exposure_weeks(p)
    mina, joon = viewings.mina.pk, viewings.joon.pk
    assert weeks == {
        (mina, W40): summary.Exposure(views=3, seconds=120 + 300 + UNREPORTED_SECONDS),
        (mina, W41): summary.Exposure(views=1, seconds=90),
        (joon, W40): summary.Exposure(views=1, seconds=600),
    }
    assert weeks[(mina, W40)].minutes == 8.0
    # W40 is stored in two rows for Mina (September's and October's part)
    rows = ExposureMonth.objects.filter(actor=viewings.mina, week=W40).order_by("month")
    assert [(r.month.month, r.views, r.seconds) for r in rows] == [(9, 1, 120), (10, 2, 360)]


def test_live_and_summary_agree(viewings: Fixture) -> None:
    whole = summary.exposure_weeks(summary.plan(seoul(9, 1, 0), seoul(11, 1, 0), build=True))
    # from mid-September: September is read live, October from the summary
    partial = summary.plan(seoul(9, 15, 0), seoul(11, 1, 0), build=True)
    assert partial.live and partial.cached == [dt.date(2025, 10, 1)]
    assert summary.exposure_weeks(partial) == whole


def test_the_dashboard_tables(viewings: Fixture) -> None:
    period = _period(seoul(9, 1, 0), seoul(11, 1, 0))
    weeks = (period.end - period.start).total_seconds() / (7 * 86400)
    table = figures.reviewer_exposure(period)
    assert [str(c) for c in table.columns] == [
        "Specialist", "Minutes", "Views", "Minutes per week", "Most minutes in one week"]
    assert table.rows == [["Joon", 10.0, 1, round(10.0 / weeks, 1), 10.0],
                          ["Mina", 9.5, 4, round(9.5 / weeks, 1), 8.0]]
    assert "counts 1 minute" in table.note
    by_week = figures.reviewer_exposure_weeks(period)
    assert by_week.rows == [["2025-W40 (09-29)", 18.0, 4, 2, 10.0],
                            ["2025-W41 (10-06)", 1.5, 1, 1, 1.5]]
    keys = [t.key for t in figures.dashboard_tables(period, team="erasure")]
    assert "exposure" in keys and "exposure_weeks" in keys


def test_a_late_report_rebuilds_the_closed_month(viewings: Fixture) -> None:
    period = (seoul(9, 1, 0), seoul(11, 1, 0))
    summary.plan(*period, build=True)  # both months summarized
    # Mina's page reports the Sunday viewing after all (months later): 200 s, not the default
    record_viewing(viewings.records["sun"].pk, viewings.mina, 200)
    weeks = summary.exposure_weeks(summary.plan(*period))
    assert weeks[(viewings.mina.pk, W40)] == summary.Exposure(views=3, seconds=620)
    # nobody else's report changes it
    with pytest.raises(Exception, match="no such viewing"):
        record_viewing(viewings.records["sun"].pk, viewings.joon, 3000)


def test_the_dashboard_page_shows_the_exposure(viewings: Fixture, make_user: Any,
                                               login_client: Any) -> None:
    c = login_client(make_user("supervisor"))
    response = c.get("/staff/reports/", {"start": "2025-09", "end": "2025-10",
                                         "team": "erasure"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "2025-W40 (09-29)" in html and "Joon" in html


def test_the_demo_fills_viewing_times(db: Any) -> None:
    from anshim.erasure.models import UnblurRecord
    from anshim.reports import demo

    demo.generate(300)
    seconds = sorted(UnblurRecord.objects.exclude(seconds_viewed=None)
                     .values_list("seconds_viewed", flat=True))
    assert len(seconds) > 20
    median = seconds[len(seconds) // 2]
    assert 5 <= median <= 120 and seconds[-1] > 3 * median  # long-tailed
    table = figures.reviewer_exposure(figures.last_months(24))
    assert table.rows and table.rows[0][1] > 0
