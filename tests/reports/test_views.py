"""The pages: who sees what, the public page's disclosure control, the downloads, the queries."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from django.core.cache import cache

from anshim.reports import figures, public

from .conftest import YEAR, World


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


@pytest.mark.parametrize("role", ["counselor", "erasure", "prevention", "expert", "admin"])
def test_only_supervisors_see_case_derived_dashboards(role: str, make_user: Any,
                                                      login_client: Any, world: World) -> None:
    c = login_client(make_user(role))
    for url in ("/staff/reports/", f"/staff/reports/annual/?year={YEAR}",
                f"/staff/reports/annual/?year={YEAR}&format=json",
                f"/staff/reports/monthly/?month={YEAR}-02&format=json"):
        response = c.get(url)
        assert response.status_code == 403, url
        assert b"Not permitted" not in response.content  # the translated 403 page


def test_supervisor_dashboard_in_korean(make_user: Any, login_client: Any, world: World,
                                        django_assert_max_num_queries: Any) -> None:
    from anshim.reports import summary

    c = login_client(make_user("supervisor"))
    summary.rebuild_all()  # the closed months' summary rows (the first reader builds them)
    with django_assert_max_num_queries(40):
        response = c.get(f"/staff/reports/?year={YEAR}", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="spec-removal_times"' in body and 'id="chart-removal_times"' in body
    assert "<table>" in body  # every chart has its data table
    assert "vendor/vega-embed.min.js" in body and "cdn" not in body.lower()
    # every number links to the list behind it
    # (three of the four cases moved on to "erasure ongoing" with their first notice)
    assert 'href="/staff/cases/?status=new&amp;risk=unassessed">1</a>' in body
    assert c.get("/staff/cases/?status=new&risk=unassessed").status_code == 200


def test_annual_downloads(make_user: Any, login_client: Any, world: World) -> None:
    c = login_client(make_user("supervisor"))
    data = json.loads(c.get(f"/staff/reports/annual/?year={YEAR}&format=json").content)
    ages = next(t for t in data["tables"] if t["key"] == "victims_by_age")
    assert [r[1] for r in ages["rows"]] == [2, 1, 0, 0]
    xlsx = c.get(f"/staff/reports/annual/?year={YEAR}&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert c.get(f"/staff/reports/annual/?year={YEAR}").status_code == 200


def test_bad_year_is_no_500(make_user: Any, login_client: Any, world: World, client: Any) -> None:
    assert client.get("/statistics/?year=abc").status_code == 200
    assert client.get("/statistics/?year=99999").status_code == 200
    c = login_client(make_user("supervisor"))
    assert c.get("/staff/reports/?year=-1").status_code == 200


def test_public_page_needs_no_login_and_hides_small_cells(client: Any, world: World) -> None:
    response = client.get(f"/statistics/?year={YEAR}&format=json")
    assert response.status_code == 200
    for table in response.json()["tables"]:
        for row in table["rows"]:
            value = row[1]
            assert value is None or value == 0 or value >= 10, (table["key"], row)
    html = client.get(f"/statistics/?year={YEAR}").content.decode()
    assert "T-0" not in html  # aggregates only: no case code, no name
    assert "/staff/cases/" not in html  # and no link into the case lists


@pytest.mark.django_db
def test_public_tables_at_volume_are_safe(client: Any) -> None:
    from django.utils import timezone

    from anshim.reports import demo

    demo.generate(400)
    year = timezone.localdate().year
    published = 0
    for table in public.public_tables(figures.year_period(year)):
        for i, j in table.suppressed:
            assert table.display_rows[i][j] is None
        for row in table.display_rows:
            if row[1] is not None:
                published += 1
                assert row[1] == 0 or row[1] >= 10, (table.key, row)
        assert public.derivable(table) == [], table.key
    assert published > 0


def test_secondary_suppression_hides_a_second_cell() -> None:
    from django.utils import translation

    table = figures.Table("t", "t", ["a", "n"], [["x", 5], ["y", 40], ["z", 12]])
    with translation.override("en"):
        protected = public.protect(table)
    assert (0, 1) in protected.suppressed  # 5: primary
    assert (2, 1) in protected.suppressed  # 12: else 5 = total - 40 - 12
    assert protected.display_rows[-1] == ["Total", 57]
    assert public.derivable(protected) == []
    values = np.array([[5.0, 40.0, 12.0, 57.0]] * 2)
    mask = np.zeros(values.shape, dtype=bool)
    mask[:, 0] = True
    from anshim import stats

    assert stats.derivable_cells(values, mask) != []  # primary suppression alone is not enough


def test_dashboard_filters(make_user: Any, login_client: Any, world: World,
                           django_assert_max_num_queries: Any) -> None:
    """Period, team, platform, harm type and age group as GET parameters: the figures are
    sliced in SQL, the form keeps the values, the page's own link keeps the filters."""
    from anshim.reports import summary

    summary.rebuild_all()
    c = login_client(make_user("supervisor"))
    social = world.platforms["social"].pk
    url = (f"/staff/reports/?start={YEAR}-01&end={YEAR}-12&team=erasure&platform={social}"
           "&harm=sextortion&age=under14")
    with django_assert_max_num_queries(40):
        response = c.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    tables = {t.key: t for t, _spec in response.context["charted"]}
    assert "open_cases" not in tables and "removal_times" in tables  # the erasure team's view
    assert tables["removal_times"].rows == [["Social", 2, 2, 10.0, 30.0, 50.0, 100.0, 100.0]]
    body = response.content.decode()
    assert f'value="{YEAR}-01"' in body and 'value="sextortion" selected' in body
    assert "harm=sextortion" in body and "team=erasure" in body  # the link keeps them
    counseling = c.get(f"/staff/reports/?year={YEAR}&team=counseling&age=14to17")
    tables = {t.key: t for t, _spec in counseling.context["charted"]}
    assert set(tables) == {"open_cases", "attention", "caseload", "contacts_by_channel",
                           "contacts_by_hour", "cases_by_harm", "cases_by_age"}
    # the 14-17 case opened in the year (the other one opened in 2024)
    assert tables["cases_by_age"].rows[0][1] == 1 and len(tables["cases_by_age"].rows) == 1
    # both 14-17 cases are open (open cases are the current state, whatever the period)
    assert sum(r[-1] for r in tables["open_cases"].rows) == 2


def test_bad_filters_are_reported_not_a_500(make_user: Any, login_client: Any,
                                            world: World) -> None:
    c = login_client(make_user("supervisor"))
    response = c.get("/staff/reports/?start=2025-13&platform=999999&harm=nope&age=x"
                     f"&end={YEAR}-01&team=nobody", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) >= {"start", "platform", "harm", "age", "team"}
    # the bad values are left out: the default view
    assert len(response.context["charted"]) > 10
    later = c.get(f"/staff/reports/?start={YEAR}-06&end={YEAR}-02")
    assert later.status_code == 200 and later.context["form"].non_field_errors()


def test_prevention_figures_on_the_dashboard(make_user: Any, login_client: Any,
                                             world: World) -> None:
    c = login_client(make_user("supervisor"))
    response = c.get(f"/staff/reports/?year={YEAR}&team=prevention", HTTP_ACCEPT_LANGUAGE="en")
    keys = [t.key for t, _spec in response.context["charted"]]
    assert keys == ["prevention_sessions", "prevention_gains", "prevention_prevalence"]
    sessions = {r[0]: r[1] for r in response.context["charted"][0][0].rows}
    assert sessions == {"Sessions delivered": 0, "Schools": 0, "Students reached": 0}


def test_intake_records_sex_region_and_relationship(make_user: Any, login_client: Any) -> None:
    from anshim.cases.models import Case

    c = login_client(make_user("counselor"))
    response = c.post("/staff/cases/new/", {
        "channel": "phone", "started_at": "2026-01-05T10:00", "duration_minutes": "10",
        "harm_types": ["sextortion"], "age_group": "14to17", "sex": "female",
        "region": "busan", "offender_relationship": "online",
        "contact_preference": "portal", "summary": "demo"})
    assert response.status_code == 302, response.content.decode()[:3000]
    case = Case.objects.select_related("person").get()
    assert (case.person.sex, case.person.region, case.offender_relationship) == (
        "female", "busan", "online")


def test_the_reviewer_ticks_a_personal_information_co_leak(make_user: Any, login_client: Any,
                                                           world: World) -> None:
    from anshim.erasure.models import Sighting

    from .conftest import at

    s = Sighting.objects.create(
        page_url="https://x.invalid/review", media_url="https://x.invalid/mreview",
        platform=world.platforms["social"], entry_id=0, bank_name="b", case=world.cases[0],
        match_kind="pdq", distance=3, first_seen=at(3, 1), last_seen=at(3, 1))
    c = login_client(make_user("erasure"))
    assert 'name="leaks_personal_info"' in c.get("/staff/erasure/").content.decode()
    r = c.post(f"/staff/erasure/sightings/{s.pk}/review/",
               {"decision": "confirm", "leaks_personal_info": "on"})
    assert r.status_code == 302
    s.refresh_from_db()
    assert s.status == "confirmed" and s.leaks_personal_info


def test_every_dashboard_chart_is_a_valid_vega_lite_spec(world: World) -> None:
    """The page skips altair's schema check (its shape is fixed; only the data changes): the
    check runs here, for every table of the dashboard and the annual report."""
    from anshim.reports import charts

    period = figures.year_period(YEAR)
    for table in figures.dashboard_tables(period) + figures.annual_tables(period):
        assert charts.bar_spec(table, validate=True) == charts.bar_spec(table), table.key
