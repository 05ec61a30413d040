"""Every dashboard number with a link opens the list behind it: the list's total is the
number shown (followed with the test client as a supervisor), with and without the
dashboard's slice; no other role gets a link to a list (issue 14)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.utils import timezone

from anshim.reports import figures, links, summary

from .conftest import YEAR, World, at


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


@pytest.fixture
def busy(world: World, make_user: Any) -> World:
    """The hand-computed world plus what the other tables count: a lead counselor, a consent,
    a closed case, an overdue new case; a backlog (confirmed, not removed) of several ages; a
    re-upload; a refused notice that was sent twice; this year's sightings and notices;
    referrals (two pending on one case, one pending on a closed case, one completed) and
    experts (one assigned twice to one case and once to another, one whose assignment
    ended)."""
    from anshim.cases.models import Case, CaseHarm, Consent, Person, Referral
    from anshim.erasure.models import Sighting, TakedownItem, TakedownRequest
    from anshim.experts.models import Assignment, Expert

    now = timezone.now()
    social, webhard = world.platforms["social"], world.platforms["webhard"]
    lead = make_user("counselor", display_name="Lead")
    c0, c1, c2, _c3 = world.cases
    Case.objects.filter(pk__in=[c0.pk, c1.pk]).update(lead_counselor=lead, risk_level="high")
    Consent.objects.create(case=c0, scope="keep_data", given_by="victim", granted_at=now)
    closed = Case.objects.create(code="T-closed", person=Person.objects.create(age_group="adult"),
                                 channel="phone", status="closed", closed_at=now)
    CaseHarm.objects.create(case=closed, harm_type="distribution")
    overdue = Case.objects.create(code="T-late", channel="online",
                                  person=Person.objects.create(age_group="under14"),
                                  response_due=now - dt.timedelta(hours=3))
    CaseHarm.objects.create(case=overdue, harm_type="distribution")
    n = 0

    def sighting(case: Any, platform: Any, seen: dt.datetime, status: str,
                 **extra: Any) -> Any:
        nonlocal n
        n += 1
        return Sighting.objects.create(
            page_url=f"https://y.invalid/{n}", media_url=f"https://y.invalid/m{n}",
            platform=platform, entry_id=0, bank_name="b", case=case, match_kind="pdq",
            distance=2, status=status, first_seen=seen, last_seen=seen, **extra)

    sighting(c0, social, at(3, 1), "confirmed")
    sighting(c2, webhard, at(10, 1), "new", is_reupload=True)
    for hours in (2, 30, 200, 24 * 40):  # one in each of the backlog's age bands
        sighting(c0 if hours % 3 else overdue, social, now - dt.timedelta(hours=hours),
                 "confirmed")
    recent = sighting(overdue, social, now - dt.timedelta(days=10), "new")
    refused = TakedownRequest.objects.create(
        case=c1, platform=social, subject="s", body="b", state="refused", sent_at=at(6, 1),
        send_count=2)
    TakedownItem.objects.create(request=refused, sighting=sighting(c1, social, at(5, 20),
                                                                   "confirmed"))
    fresh = TakedownRequest.objects.create(
        case=overdue, platform=social, subject="s", body="b", state="sent",
        sent_at=now - dt.timedelta(days=5), send_count=1)
    TakedownItem.objects.create(request=fresh, sighting=recent)
    for case, status in ((c0, "proposed"), (c0, "accepted"), (closed, "sent"),
                         (c1, "completed")):
        Referral.objects.create(case=case, target="school", organization="o", status=status)
    busy_expert = Expert.objects.create(user=make_user("expert", username="ex-busy"),
                                        kind="legal")
    idle_expert = Expert.objects.create(user=make_user("expert", username="ex-idle"),
                                        kind="therapy")
    for case, expert, specialty, status in (
            (c0, busy_expert, "criminal_complaint", "active"),
            (c0, busy_expert, "civil_damages", "active"),
            (c2, busy_expert, "criminal_complaint", "active"),
            (c1, idle_expert, "trauma", "ended")):
        Assignment.objects.create(case=case, expert=expert, specialty=specialty, status=status)
    return world


def _total(c: Any, url: str) -> int:
    """The total of the list `url` opens, read from the page it renders."""
    response = c.get(url)
    assert response.status_code == 200, url
    ctx = response.context
    form = ctx["filter_form"] if "filter_form" in ctx else ctx["form"]
    assert not form.errors, (url, form.errors)  # a list with an ignored filter proves nothing
    page = ctx["found"] if "found" in ctx else ctx["page"]
    assert page is not None, url
    return int(page.paginator.count)


def _linked(c: Any, query: str) -> list[tuple[str, Any, str]]:
    response = c.get(f"/staff/reports/?{query}")
    assert response.status_code == 200
    out = []
    for table, _spec in response.context["charted"]:
        for (i, j), url in table.links.items():
            out.append((table.key, table.rows[i][j], url))
    return out


#: every table with a list behind (some of) its numbers
LINKED = {"open_cases", "attention", "caseload", "cases_by_harm", "cases_by_age", "funnel",
          "removal_times", "removal_by_route", "scorecard",
          "scorecard_trend", "backlog", "review_queue"}


@pytest.mark.parametrize("slice_", [False, True])
@pytest.mark.parametrize("period", ["year", "last12"])
def test_every_linked_number_is_the_total_of_its_list(busy: World, make_user: Any,
                                                      login_client: Any, period: str,
                                                      slice_: bool) -> None:
    c = login_client(make_user("supervisor"))
    summary.rebuild_all()  # closed months from the summary rows, the open month live
    params: dict[str, Any] = {"year": YEAR} if period == "year" else {}
    if slice_:
        params |= {"platform": busy.platforms["social"].pk, "harm": "distribution",
                   "age": "under14"}
    linked = _linked(c, urlencode(params))
    keys = {key for key, _v, _u in linked}
    assert keys == LINKED, keys
    nonzero = 0
    for key, shown, url in linked:
        assert _total(c, url) == shown, (key, url)
        nonzero += bool(shown)
    assert nonzero >= 8  # the fixture puts rows behind the links, not only zeros
    if slice_:
        sliced = [u for k, _v, u in linked if k in ("open_cases", "funnel", "backlog")]
        assert all("harm=distribution" in u and "age=under14" in u for u in sliced)


def test_the_links_are_the_lists_filters(busy: World, make_user: Any,
                                         login_client: Any) -> None:
    c = login_client(make_user("supervisor"))
    summary.rebuild_all()
    linked = {(k, u) for k, _v, u in _linked(c, f"year={YEAR}")}
    assert ("attention", "/staff/cases/?status=new&overdue=on") in linked
    assert ("attention", "/staff/cases/?open=on&no_consent=on") in linked
    pending = [v for k, v, u in _linked(c, f"year={YEAR}")
               if u == "/staff/cases/?referral_pending=on"]
    assert pending == [2]  # c0 once (two pending referrals) and the closed case
    from anshim.experts.models import Expert

    busy_expert = Expert.objects.get(user__username="ex-busy")
    experts = [(v, u) for k, v, u in _linked(c, f"year={YEAR}")
               if k == "caseload" and "expert=" in u]
    assert experts == [(2, f"/staff/cases/?expert={busy_expert.pk}")]  # c0 once, c2
    assert ("funnel", f"/staff/erasure/sightings/?stage=removed&seen_from={YEAR}-01-01"
                      f"&seen_to={YEAR}-12-31") in linked
    social = busy.platforms["social"].pk
    assert ("scorecard", f"/staff/erasure/?platform={social}&sent_from={YEAR}-01-01"
                         f"&sent_to={YEAR}-12-31&state=refused") in linked
    assert ("backlog", "/staff/erasure/sightings/?stage=backlog&older_than=672") in linked


@pytest.mark.parametrize("role", ["counselor", "erasure", "prevention", "expert", "admin"])
def test_only_a_role_that_sees_the_dashboards_and_the_list_gets_links(
        role: str, busy: World, make_user: Any) -> None:
    """The policy decides: an expert's case list holds only the expert's own cases and a
    prevention officer sees no case list, so neither may follow a dashboard number to one."""
    period = figures.year_period(YEAR)
    tables = links.restrict(figures.dashboard_tables(period), make_user(role))
    assert not any(t.links for t in tables), role
    supervisor = links.restrict(figures.dashboard_tables(period), make_user("supervisor"))
    assert {t.key for t in supervisor if t.links} == LINKED


def test_the_public_page_has_no_links(busy: World, client: Any) -> None:
    body = client.get(f"/statistics/?year={YEAR}").content.decode()
    assert "/staff/" not in body


def test_bad_list_filters_are_a_message_not_a_500(busy: World, make_user: Any,
                                                  login_client: Any) -> None:
    c = login_client(make_user("supervisor"))
    for url in ("/staff/cases/?harm=nonsense&age=old&platform=999999&lead=abc",
                "/staff/cases/?expert=999999", "/staff/cases/?expert=x",
                "/staff/erasure/?route=nope",
                "/staff/erasure/?platform=x&sent_from=2025-13-01&state=gone",
                "/staff/erasure/sightings/?stage=nope&older_than=-1&seen_from=2025-02-30",
                "/staff/erasure/sightings/?seen_from=2025-05-01&seen_to=2025-04-01"):
        response = c.get(url)
        assert response.status_code == 200, url
        form = response.context["filter_form" if "filter_form" in response.context else "form"]
        assert form.errors, url


def test_the_case_list_with_the_dashboards_filters_costs_no_query_per_row(
        busy: World, make_user: Any, login_client: Any,
        django_assert_max_num_queries: Any) -> None:
    from anshim.cases.models import Case, CaseHarm, Person
    from anshim.erasure.models import Sighting
    from anshim.experts.models import Expert

    c = login_client(make_user("supervisor"))
    social = busy.platforms["social"]
    query = (f"/staff/cases/?harm=distribution&age=under14&platform={social.pk}&open=on"
             f"&no_consent=on&lead=&opened_from={YEAR - 1}-01-01")
    expert = Expert.objects.get(user__username="ex-busy")
    for extra in ("&referral_pending=on", f"&expert={expert.pk}"):
        with django_assert_max_num_queries(25):
            assert c.get(query + extra).status_code == 200
    c.get(query)
    with django_assert_max_num_queries(25) as few:
        c.get(query)
    for i in range(30):
        case = Case.objects.create(code=f"T-more-{i}", channel="phone",
                                   person=Person.objects.create(age_group="under14"))
        CaseHarm.objects.create(case=case, harm_type="distribution")
        Sighting.objects.create(page_url=f"https://z.invalid/{i}", media_url="https://z.invalid/m",
                                platform=social, entry_id=0, bank_name="b", case=case,
                                match_kind="pdq", distance=1, first_seen=timezone.now(),
                                last_seen=timezone.now())
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = c.get(query)
    assert response.context["page"].paginator.count >= 30


def test_the_erasure_lists_cost_no_query_per_row(busy: World, make_user: Any,
                                                 login_client: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from anshim.erasure.models import Sighting, TakedownRequest

    c = login_client(make_user("supervisor"))
    social = busy.platforms["social"]
    urls = (f"/staff/erasure/sightings/?platform={social.pk}&harm=distribution",
            f"/staff/erasure/?platform={social.pk}&harm=distribution&sent_from={YEAR}-01-01")

    def queries() -> list[int]:
        counts = []
        for url in urls:
            with CaptureQueriesContext(connection) as q:
                assert c.get(url).status_code == 200
            counts.append(len(q))
        return counts

    queries()  # warm the session and the translations
    few = queries()
    case = busy.cases[0]
    for i in range(30):
        Sighting.objects.create(page_url=f"https://w.invalid/{i}", media_url="https://w.i/m",
                                platform=social, entry_id=0, bank_name="b", case=case,
                                match_kind="pdq", distance=1, first_seen=at(7, 1),
                                last_seen=at(7, 1))
        TakedownRequest.objects.create(case=case, platform=social, subject="s", body="b",
                                       state="sent", sent_at=at(7, 2), send_count=1)
    assert queries() == few
