"""Every figure of the annual tables and the dashboard against the hand-computed fixture."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db.models import F

from anshim.reports import figures, summary

from .conftest import YEAR, World


def _rows(table: figures.Table) -> dict[str, list[Any]]:
    return {str(r[0]): r[1:] for r in table.rows}


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


def test_victims_by_age(world: World) -> None:
    rows = _rows(figures.victims_by_age(figures.year_period(YEAR)))
    assert rows == {"Under 14": [2], "14–17": [1], "18 or older": [0], "Unknown": [0]}  # noqa: RUF001


def test_harm_types_several_per_victim(world: World) -> None:
    rows = _rows(figures.harm_types(figures.year_period(YEAR)))
    assert rows["Distribution or threat of distribution of intimate images"] == [2]
    assert rows["Sextortion"] == [1]
    assert rows["Grooming (persistent messages, requests to meet offline)"] == [1]
    assert sum(v[0] for v in rows.values()) == 4


def test_deletions_by_platform_type_and_hosting(world: World) -> None:
    period = figures.year_period(YEAR)
    kinds = _rows(figures.deletions_by_platform_kind(period))
    assert kinds["Social media"] == [3] and kinds["Webhard"] == [1] and kinds["Forum"] == [0]
    hosting = _rows(figures.deletions_by_hosting(period))
    assert hosting == {"Domestic": [1, 25.0], "Overseas": [3, 75.0]}
    origin = _rows(figures.proactive_vs_requested(period))
    assert origin == {"Requested by the victim": [0], "Found proactively": [4]}


def test_services_count_notices(world: World) -> None:
    rows = _rows(figures.services_by_type(figures.year_period(YEAR)))
    assert rows["Takedown notices sent"] == [4]


def test_removal_times_median_p90_and_shares(world: World) -> None:
    rows = _rows(figures.removal_times(figures.year_period(YEAR)))
    # social: 10, 30, 100 h -> median 30, p90 (nearest rank 3 of 3) 100;
    # within 24 h 1/3, 48 h 2/3, 7 days 3/3
    assert rows["Social"] == [3, 3, 30.0, 100.0, 33.3, 66.7, 100.0]
    assert rows["Webhard"] == [1, 1, 5.0, 5.0, 100.0, 100.0, 100.0]


def test_intake_to_first_notice_by_route(world: World) -> None:
    rows = _rows(figures.intake_to_notice(figures.year_period(YEAR)))
    # every first notice went out 3 h after intake: cases 0 and 1 by e-mail, case 2 by API
    assert rows == {"Direct notice (e-mail, web form)": [2, 3.0, 3.0, 100.0, 100.0, 100.0],
                    "Partner API": [1, 3.0, 3.0, 100.0, 100.0, 100.0]}


@pytest.mark.parametrize("cached", [False, True])
def test_removal_by_route(world: World, cached: bool) -> None:
    from anshim.erasure.models import TakedownRequest

    # case 0's 30 h removal went through the regulator
    escalated = TakedownRequest.objects.get(case=world.cases[0], closed_at__isnull=False,
                                            sent_at__isnull=False,
                                            closed_at__gt=F("sent_at") + dt.timedelta(hours=20))
    escalated.escalation = "regulator"
    escalated.save()
    period = figures.year_period(YEAR)
    plan = summary.plan(period.start, period.end, build=cached)
    assert bool(plan.cached) == cached
    rows = _rows(figures.removal_by_route(period, plan=plan))
    # direct: 10 h and 100 h (nearest rank: median 10, p90 100); one of two within 24 and 48 h
    assert rows == {"Direct notice (e-mail, web form)": [2, 2, 10.0, 100.0, 50.0, 50.0, 100.0],
                    "Partner API": [1, 1, 5.0, 5.0, 100.0, 100.0, 100.0],
                    "Regulator escalation": [1, 1, 30.0, 30.0, 0.0, 100.0, 100.0]}
    # the first notice of case 0 was the 10 h one, by e-mail: intake to notice unchanged
    assert _rows(figures.intake_to_notice(period, plan=plan))["Partner API"][0] == 1


def test_platform_scorecard(world: World) -> None:
    rows = _rows(figures.platform_scorecard(figures.year_period(YEAR)))
    # social: 3 notices, all removed, median 30 h, p90 100 h, no re-upload, none sent again
    assert rows["Social"] == [3, 100.0, 30.0, 100.0, 0.0, 0, 0]
    assert rows["Webhard"] == [1, 100.0, 5.0, 5.0, 0.0, 0, 0]


def test_funnel_and_open_cases(world: World) -> None:
    funnel = _rows(figures.erasure_funnel(figures.year_period(YEAR)))
    assert funnel["Sightings found"] == [4] and funnel["Removed"] == [4]
    assert funnel["Takedown requests sent"] == [4]
    open_cases = _rows(figures.open_cases())
    # every fixture case is unassessed; those with a notice moved on to "erasure ongoing"
    assert sum(r[-1] for r in open_cases.values()) == 4


def test_a_month_is_a_month(world: World) -> None:
    period = figures.month_period(YEAR, 2)
    assert _rows(figures.victims_by_age(period))["Under 14"] == [1]
    assert figures.month_period(YEAR, 12).end.year == YEAR + 1


def test_figures_are_a_fixed_number_of_queries(world: World,
                                               django_assert_max_num_queries: Any) -> None:
    from anshim.reports import summary

    summary.rebuild_all()  # the closed months' summary (else the first reader builds it)
    # the annual tables of a closed year: computed once (one or two queries a table), then
    # kept (one query)
    with django_assert_max_num_queries(18):
        figures.annual_tables(figures.year_period(YEAR))
    with django_assert_max_num_queries(1):
        figures.annual_tables(figures.year_period(YEAR))
    # the dashboard: the same count of queries whatever the volume (prevention included)
    with django_assert_max_num_queries(30):
        figures.dashboard_tables(figures.year_period(YEAR))


def test_team_views(world: World, make_user: Any) -> None:
    import datetime as dt

    from anshim.cases.models import Contact
    from anshim.erasure.models import Sighting, UnblurRecord

    from .conftest import at

    Contact.objects.create(case=world.cases[0], channel="phone", started_at=at(3, 2, 23))
    Contact.objects.create(case=world.cases[0], channel="chat", started_at=at(3, 3, 23))
    rows = _rows(figures.contacts_by_hour(figures.year_period(YEAR)))
    assert rows["23:00"][0] == 1 and rows["23:00"][1] == 1 and rows["23:00"][-1] == 2
    assert sum(r[-1] for r in rows.values()) == 2
    specialist = make_user("erasure", display_name="Mina")
    for _ in range(3):
        UnblurRecord.objects.create(sighting=Sighting.objects.first(), actor=specialist)
    from django.utils import timezone

    week = figures.Period(timezone.now() - dt.timedelta(days=14), timezone.now()
                          + dt.timedelta(minutes=1), "2w")
    # no viewing time reported: each view counts the default minute (erasure.exposure)
    assert _rows(figures.reviewer_exposure(week)) == {"Mina": [3.0, 3, 1.5, 3.0]}


def test_victims_by_sex_and_region(world: World) -> None:
    period = figures.year_period(YEAR)
    sex = _rows(figures.victims_by_sex(period))
    assert sex == {"Female": [2], "Male": [1], "Other or not disclosed": [0], "Unknown": [0]}
    region = _rows(figures.victims_by_region(period))
    assert region["Seoul"] == [2] and region["Gyeonggi"] == [1] and region["Busan"] == [0]
    assert sum(v[0] for v in region.values()) == 3  # the 2024 victim (Busan) is left out


def test_offender_relationship(world: World) -> None:
    rows = _rows(figures.offender_relationship(figures.year_period(YEAR)))
    assert rows["Met online (a passing acquaintance)"] == [2]
    assert rows["Family or relative"] == [1] and rows["Stranger"] == [0]
    assert sum(v[0] for v in rows.values()) == 3


def test_personal_information_co_leak_share(world: World) -> None:
    rows = _rows(figures.personal_info_coleak(figures.year_period(YEAR)))
    # 1 of the 4 items removed in 2025 also leaked personal information: 25.0%
    assert rows == {"With personal information": [1, 25.0], "Without": [3, 75.0]}


def test_every_ministry_table_is_in_the_annual_report(world: World) -> None:
    keys = [t.key for t in figures.annual_tables(figures.year_period(YEAR))]
    assert keys == ["victims_by_sex", "victims_by_age", "victims_by_region", "services",
                    "harm_types", "relationship", "deletions_by_kind", "deletions_by_hosting",
                    "coleak", "proactive"]
    assert figures.NOT_RECORDED == ()


def test_kept_annual_tables_are_dropped_when_a_source_row_changes(world: World) -> None:
    from anshim.erasure.models import Sighting

    period = figures.year_period(YEAR)
    assert _rows(figures.personal_info_coleak(period))["With personal information"][0] == 1
    kept = {t.key: t for t in figures.annual_tables(period)}  # computed, then kept
    assert _rows(kept["coleak"]) == _rows(figures.annual_tables(period)[8])
    sighting = Sighting.objects.get(leaks_personal_info=False, case=world.cases[2])
    sighting.leaks_personal_info = True
    sighting.save()
    again = {t.key: t for t in figures.annual_tables(period)}
    assert _rows(again["coleak"])["With personal information"] == [2, 50.0]
