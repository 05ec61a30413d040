"""The counseling team's view: contacts by channel and hour of the day (the center's time
zone), cases opened by harm type and by age group — hand-computed on the fixture, the same
from the summary rows as live for every slice, and dropped with the month a change touches."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from anshim.reports import figures, summary
from anshim.reports.models import CounselingMonth, SummarizedMonth

from .conftest import SEOUL, YEAR, World, at

DIST, SEXT, GROOM, U14, TEEN = "distribution", "sextortion", "grooming", "under14", "14to17"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def contacts(world: World) -> World:
    """Five contacts in 2025 (two at local midnight: one on 1 March, in March although it is
    still February in UTC; one on 1 January, in 2025 although it is 2024 in UTC) and one on
    31 December 2024 (left out)."""
    from anshim.cases.models import Contact

    c0, c1, c2, c3 = world.cases
    for case, channel, moment in (
            (c0, "phone", at(3, 1, 0)), (c0, "chat", at(2, 28, 23)),
            (c1, "phone", at(5, 2, 9)), (c2, "phone", at(9, 3, 14)),
            (c3, "phone", dt.datetime(YEAR, 1, 1, 0, 10, tzinfo=SEOUL)),
            (c3, "phone", dt.datetime(YEAR - 1, 12, 31, 23, 30, tzinfo=SEOUL))):
        Contact.objects.create(case=case, channel=channel, started_at=moment)
    return world


def _hours(table: figures.Table) -> dict[str, list[Any]]:
    """Hour -> [per channel..., total], only the hours with contacts."""
    return {str(r[0]): r[1:] for r in table.rows if r[-1]}


def _col(table: figures.Table, label: str) -> int:
    return [str(c) for c in table.columns].index(label)


def _counts(table: figures.Table) -> dict[str, int]:
    """Row key (the harm type or age group; else the label) -> count."""
    keys = table.row_keys or [str(r[0]) for r in table.rows]
    return {k: r[1] for k, r in zip(keys, table.rows, strict=True)}


def test_the_hand_computed_year(contacts: World) -> None:
    period = figures.year_period(YEAR)
    hours = figures.contacts_by_hour(period)
    phone, chat = _col(hours, "Phone"), _col(hours, "Chat")
    got = _hours(hours)
    assert set(got) == {"00:00", "09:00", "14:00", "23:00"}
    assert got["00:00"][phone - 1] == 2 and got["00:00"][-1] == 2
    assert got["23:00"][chat - 1] == 1 and got["23:00"][-1] == 1
    assert sum(r[-1] for r in hours.rows) == 5
    assert hours.chart_column == len(hours.columns) - 1  # the chart draws the total
    channels = _counts(figures.contacts_by_channel(period))
    assert channels["Phone"] == 4 and channels["Chat"] == 1 and sum(channels.values()) == 5
    harms = _counts(figures.cases_by_harm(period))
    assert {k: v for k, v in harms.items() if v} == {
        DIST: 2, SEXT: 1, GROOM: 1}
    ages = _counts(figures.cases_by_age(period))
    assert {k: v for k, v in ages.items() if v} == {U14: 2, TEEN: 1}


SLICES = [summary.ALL, summary.Slice(age_group="under14"),
          summary.Slice(harm_type="distribution"), summary.Slice(harm_type="grooming",
                                                                 age_group="14to17")]


@pytest.mark.parametrize("s", [*SLICES, "webhard"])
def test_the_summary_gives_the_live_figures(contacts: World, s: Any) -> None:
    if s == "webhard":
        s = summary.Slice(platform_id=contacts.platforms["webhard"].pk)
    period = figures.year_period(YEAR)
    cached = summary.plan(period.start, period.end, build=True)
    assert len(cached.cached) == 12
    assert CounselingMonth.objects.filter(month=dt.date(YEAR, 3, 1)).exists()
    live = summary.Plan(cached=[], live=[(period.start, period.end)])
    assert summary.counseling_counts(cached, s) == summary.counseling_counts(live, s)


def test_the_slices_hand_computed(contacts: World) -> None:
    period = figures.year_period(YEAR)
    summary.plan(period.start, period.end, build=True)

    def tables(s: summary.Slice) -> tuple[int, dict[str, int], dict[str, int]]:
        hours = figures.contacts_by_hour(period, s)
        return (sum(r[-1] for r in hours.rows), _counts(figures.cases_by_harm(period, s)),
                _counts(figures.cases_by_age(period, s)))

    n, harms, ages = tables(summary.Slice(age_group="under14"))
    assert n == 3 and harms[DIST] == 2 and harms[SEXT] == 1
    assert harms[GROOM] == 0 and list(ages) == [U14] and ages[U14] == 2
    # a harm slice: that harm type's row only; the ages of the cases with it
    n, harms, ages = tables(summary.Slice(harm_type="distribution"))
    assert n == 3 and harms == {DIST: 2}
    assert ages[U14] == 2 and ages[TEEN] == 0
    n, harms, ages = tables(summary.Slice(platform_id=contacts.platforms["webhard"].pk))
    assert n == 1 and harms[GROOM] == 1 and ages[TEEN] == 1
    assert sum(harms.values()) == 1


def test_changes_drop_the_months_they_touch(contacts: World) -> None:
    from anshim.cases.models import CaseHarm, Contact

    period = figures.year_period(YEAR)
    summary.plan(period.start, period.end, build=True)
    march, may = dt.date(YEAR, 3, 1), dt.date(YEAR, 5, 1)
    # a contact logged late in May
    Contact.objects.create(case=contacts.cases[1], channel="chat", started_at=at(5, 20, 20))
    assert not SummarizedMonth.objects.filter(month=may).exists()
    assert SummarizedMonth.objects.filter(month=march).exists()
    # a harm type added to case 0 (opened in February): its March contact counts by harm too
    CaseHarm.objects.create(case=contacts.cases[0], harm_type="grooming")
    assert not SummarizedMonth.objects.filter(month=march).exists()
    p = summary.plan(period.start, period.end)  # the dropped months read live meanwhile
    grooming = summary.counseling_counts(p, summary.Slice(harm_type="grooming"))
    # case 0's two, case 2's one, and case 3's (opened in 2024) on 1 January
    assert sum(grooming.contacts.values()) == 4
    assert grooming.by_harm == {"grooming": 2}


def test_the_counseling_view_of_the_dashboard(contacts: World, make_user: Any,
                                              login_client: Any) -> None:
    c = login_client(make_user("supervisor"))
    response = c.get("/staff/reports/", {"year": YEAR, "team": "counseling"})
    assert response.status_code == 200
    keys = [t.key for t, _spec in response.context["charted"]]
    assert {"contacts_by_channel", "contacts_by_hour", "cases_by_harm",
            "cases_by_age"} <= set(keys)
    assert "funnel" not in keys
    page = response.content.decode()
    assert "Counseling contacts by hour and channel" in page
