"""The staff list behind each dashboard number: one builder per table, keyed by the table's
key, each returning (row, column) -> URL for the cells a list can show exactly.

Every URL opens a list whose total is the number in the cell: the case list
(`/staff/cases/`, anshim.cases.views.filter_cases), the erasure page's requests
(`/staff/erasure/`, anshim.erasure.lists.filter_requests) or the sightings list
(`/staff/erasure/sightings/`, anshim.erasure.lists.filter_sightings), with the dashboard's
slice (platform, harm type, age group) and period as their filters. Cells no list can show
exactly (percentages, medians, banks, counseling contacts) have no link.

Who may follow a link is the access policy's decision (`restrict`): the dashboard's numbers
count every case, so a link is kept only for a role that may see the dashboards and the
target list (an expert's case list holds only the expert's own cases: no link for them).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.urls import get_script_prefix, reverse
from django.utils import timezone

from anshim.cases.models import CaseStatus, RiskLevel
from anshim.security.policy import Action, can

if TYPE_CHECKING:
    from anshim.reports.figures import Period, Table
    from anshim.reports.summary import Slice

Cell = tuple[int, int]
Links = dict[Cell, str]


@dataclass(frozen=True, slots=True)
class Context:
    """What the builders need besides the table: the dashboard's period and slice, and the
    platforms' ids by name (platform names are unique; a row's label names its platform)."""

    period: Period
    slice: Slice
    platform_ids: dict[str, int] = field(default_factory=dict)


@functools.lru_cache(maxsize=32)
def _path(name: str, prefix: str) -> str:
    """`reverse(name)` once per script prefix (a dashboard asks for the same few lists a few
    hundred times)."""
    return reverse(name)


def _url(name: str, **params: Any) -> str:
    """The list's path and its filters; empty ones are left out (as the list reads them)."""
    kept = {k: v for k, v in params.items() if v not in (None, "", False)}
    query = urlencode({k: "on" if v is True else v for k, v in kept.items()})
    return _path(name, get_script_prefix()) + (f"?{query}" if query else "")


def _slice(s: Slice) -> dict[str, Any]:
    """The dashboard's slice under the lists' parameter names (the dashboard's own)."""
    return {"platform": s.platform_id, "harm": s.harm_type, "age": s.age_group}


def _days(start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date]:
    """[start, end) as the first and last day (inclusive) in the center's time zone: a
    period ends at a midnight (a whole month) or now (the open month)."""
    first = timezone.localtime(start).date()
    local_end = timezone.localtime(end)
    last = local_end.date()
    if local_end.time() == dt.time.min and last > first:
        last -= dt.timedelta(days=1)
    return first, last


def _period(prefix: str, start: dt.datetime, end: dt.datetime) -> dict[str, dt.date]:
    first, last = _days(start, end)
    return {f"{prefix}_from": first, f"{prefix}_to": last}


# ---------------------------------------------------------------------------------------------
# The counseling tables: the case list


def open_cases(table: Table, c: Context) -> Links:
    """Status x risk of the open cases, in the slice (figures.open_cases has no period)."""
    statuses = [v for v, _l in CaseStatus.choices if v != CaseStatus.CLOSED]
    return {(i, j + 1): _url("cases:list", status=status, risk=risk, **_slice(c.slice))
            for i, status in enumerate(statuses)
            for j, (risk, _rl) in enumerate(RiskLevel.choices)}


def attention(table: Table, c: Context) -> Links:
    """Overdue triage, untriaged, open cases without a consent, cases with a referral
    waiting for its outcome."""
    return {(0, 1): _url("cases:list", status=CaseStatus.NEW, overdue=True),
            (1, 1): _url("cases:list", status=CaseStatus.NEW),
            (2, 1): _url("cases:list", open=True, no_consent=True),
            (3, 1): _url("cases:list", referral_pending=True)}


def caseload(table: Table, c: Context) -> Links:
    """Open cases per lead counselor (`row_keys`: ("lead", user id or None)) and cases with
    an open assignment per expert (("expert", expert id))."""
    out: Links = {}
    for i, (kind, pk) in enumerate(table.row_keys):
        if kind == "expert":
            out[(i, 1)] = _url("cases:list", expert=pk)
        elif pk is not None:
            out[(i, 1)] = _url("cases:list", lead=pk, open=True)
        else:
            out[(i, 1)] = _url("cases:list", team="unassigned", open=True)
    return out


def _opened(c: Context, **filters: Any) -> str:
    """The case list of the cases opened in the period, in the slice, narrowed further."""
    return _url("cases:list", **{**_slice(c.slice), **filters},
                **_period("opened", c.period.start, c.period.end))


def cases_by_harm(table: Table, c: Context) -> Links:
    """Cases opened in the period with each harm type (`row_keys`: the harm types)."""
    return {(i, 1): _opened(c, harm=harm) for i, harm in enumerate(table.row_keys)}


def cases_by_age(table: Table, c: Context) -> Links:
    """Cases opened in the period per victim age group (`row_keys`: the age groups)."""
    return {(i, 1): _opened(c, age=age) for i, age in enumerate(table.row_keys)}


# ---------------------------------------------------------------------------------------------
# The erasure tables: sightings and requests

#: the funnel's rows, in figures.erasure_funnel's order, as the sightings list's stages
FUNNEL_STAGES = ("", "confirmed", "requested", "removed", "reuploaded")


def funnel(table: Table, c: Context) -> Links:
    """Sightings first seen in the period, by stage (reports.summary counts them so)."""
    dates = _period("seen", c.period.start, c.period.end)
    return {(i, 1): _url("erasure:sightings", stage=stage, **dates, **_slice(c.slice))
            for i, stage in enumerate(FUNNEL_STAGES)}


def _requests(platform: int, dates: dict[str, dt.date], s: Slice, **more: Any) -> str:
    return _url("erasure:index", platform=platform, **dates, **more,
                harm=s.harm_type, age=s.age_group)


def _per_platform(table: Table, c: Context, columns: dict[int, dict[str, Any]]) -> Links:
    """Rows per platform (platform names are unique): column -> the request list of the
    notices sent in the period on that row's platform, narrowed by the column's filters."""
    dates = _period("sent", c.period.start, c.period.end)
    out: Links = {}
    for i, row in enumerate(table.rows):
        pid = c.platform_ids.get(str(row[0]))
        if pid is None:
            continue
        for j, more in columns.items():
            out[(i, j)] = _requests(pid, dates, c.slice, **more)
    return out


def removal_times(table: Table, c: Context) -> Links:
    """Per platform: notices sent in the period, removed."""
    return _per_platform(table, c, {1: {}, 2: {"state": "removed"}})


def removal_by_route(table: Table, c: Context) -> Links:
    """Per route (`row_keys`): notices sent in the period, removed."""
    dates = _period("sent", c.period.start, c.period.end)
    out: Links = {}
    for i, route in enumerate(table.row_keys):
        out[(i, 1)] = _url("erasure:index", route=route, **dates, **_slice(c.slice))
        out[(i, 2)] = _url("erasure:index", route=route, state="removed", **dates,
                           **_slice(c.slice))
    return out


def scorecard(table: Table, c: Context) -> Links:
    """Per platform: notices, notices sent again, refusals."""
    return _per_platform(table, c, {1: {}, 6: {"resent": True}, 7: {"state": "refused"}})


def scorecard_trend(table: Table, c: Context) -> Links:
    """Notices per platform per month (rows "YYYY-MM platform"), within the period."""
    from anshim.reports.summary import bounds

    ids = c.platform_ids
    out: Links = {}
    for i, row in enumerate(table.rows):
        label = str(row[0])
        pid = ids.get(label[8:])
        try:
            month = dt.date.fromisoformat(label[:7] + "-01")
        except ValueError:
            continue
        if pid is None:
            continue
        lo, hi = bounds(month)
        dates = _period("sent", max(lo, c.period.start), min(hi, c.period.end))
        out[(i, 1)] = _requests(pid, dates, c.slice)
    return out


def _aged(stage: str, c: Context) -> Links:
    """Per age band of figures.AGE_BANDS (hours since first seen: at least, less than; no
    period: the current state), the sightings list of that stage."""
    from anshim.reports.figures import AGE_BANDS

    return {(i, 1): _url("erasure:sightings", stage=stage, older_than=lo,
                         newer_than=hi, **_slice(c.slice))
            for i, (_label, lo, hi) in enumerate(AGE_BANDS)}


def backlog(table: Table, c: Context) -> Links:
    """Confirmed items not yet removed, by age."""
    return _aged("backlog", c)


def review_queue(table: Table, c: Context) -> Links:
    """Found items waiting for review, by age."""
    return _aged("queue", c)


BUILDERS: dict[str, Callable[[Table, Context], Links]] = {
    "open_cases": open_cases, "attention": attention, "caseload": caseload,
    "cases_by_harm": cases_by_harm, "cases_by_age": cases_by_age,
    "funnel": funnel, "removal_times": removal_times, "scorecard": scorecard,
    "removal_by_route": removal_by_route,
    "scorecard_trend": scorecard_trend, "backlog": backlog, "review_queue": review_queue,
}


def attach(tables: list[Table], period: Period, s: Slice,
           platform_names: dict[Any, str] | None = None) -> list[Table]:
    """Put the links of every table that has a builder on the table (in place);
    `platform_names`: id -> name, as figures reads them for the rows' labels."""
    if platform_names is None:
        from anshim.erasure.models import Platform

        platform_names = dict(Platform.objects.values_list("pk", "name"))
    c = Context(period, s, {name: pk for pk, name in platform_names.items()})
    for table in tables:
        build = BUILDERS.get(table.key)
        if build is not None:
            table.links = {cell: url for cell, url in build(table, c).items()
                           if cell[0] < len(table.rows)}
    return tables


def _target_action(url: str) -> Action | None:
    prefix = get_script_prefix()
    if url.startswith(_path("cases:list", prefix)):
        return Action.VIEW_CASE_LIST
    if url.startswith(_path("erasure:index", prefix)):
        return Action.MANAGE_ERASURE
    return None


def restrict(tables: list[Table], user: Any) -> list[Table]:
    """Drop (in place) every link `user` may not follow to the very rows it counts: the
    policy decides on the dashboards and on the target list."""
    dashboards = can(user, Action.VIEW_DASHBOARDS)
    allowed: dict[Action, bool] = {}
    for table in tables:
        kept: Links = {}
        for cell, url in table.links.items():
            action = _target_action(url)
            if action is None or not dashboards:
                continue
            if action not in allowed:
                allowed[action] = can(user, action)
            if allowed[action]:
                kept[cell] = url
        table.links = kept
    return tables
