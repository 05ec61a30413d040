"""The figures of the dashboards and reports, each one aggregate query (GROUP BY, window
functions) that runs the same on PostgreSQL and SQLite: no row is loaded into a Python loop.

Every function returns typed records (`Table`), which the views, the charts, the PDF, the
workbook and the JSON output all share, so the screen and the report show the same numbers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Count,
    FloatField,
    Func,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import (
    REFERRAL_PENDING,
    AgeGroup,
    Case,
    CaseHarm,
    CaseStatus,
    Channel,
    Consent,
    Contact,
    HarmType,
    OffenderRelationship,
    Referral,
    ReferralTarget,
    Region,
    RiskLevel,
    Sex,
)
from anshim.erasure.models import (
    Bank,
    BankEntry,
    Jurisdiction,
    NoticeRoute,
    Platform,
    PlatformKind,
    Sighting,
    SightingStatus,
    TakedownRequest,
)
from anshim.experts.models import Assignment, AssignmentStatus, Expert
from anshim.reports import summary
from anshim.reports.models import DurationMeasure
from anshim.reports.summary import WITHIN_HOURS
from anshim.security.models import User


class HoursBetween(Func):
    """Hours from `start` to `end` as a float in the database's own arithmetic: SQLite's
    julianday() instead of Django's duration subtraction, which calls a Python function per
    row there (and makes a window over 100,000 rows take seconds)."""

    output_field = FloatField()
    arity = 2

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection,
                           template="((julianday(%(expressions)s)) * 24.0)",
                           arg_joiner=") - julianday(", **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection,
                           template="(EXTRACT(EPOCH FROM (%(expressions)s)) / 3600.0)",
                           arg_joiner=" - ", **extra)


#: A heading: a string or a lazy translation (rendered in the language of the request).
Label = str | Promise

COUNSELING = _("Counseling")
REFERRAL = _("Referral")
COUNSELOR = _("Counselor")
EXPERT = _("Expert")


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open interval [start, end) in the center's time zone."""

    start: dt.datetime
    end: dt.datetime
    label: str

    @property
    def closed(self) -> bool:
        return self.end <= timezone.now()


def year_period(year: int) -> Period:
    tz = timezone.get_current_timezone()
    return Period(dt.datetime(year, 1, 1, tzinfo=tz), dt.datetime(year + 1, 1, 1, tzinfo=tz),
                  str(year))


def month_period(year: int, month: int) -> Period:
    tz = timezone.get_current_timezone()
    start = dt.datetime(year, month, 1, tzinfo=tz)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return Period(start, end, f"{year}-{month:02d}")


class BadMonth(ValueError):
    """A month that is not YYYY-MM, or has not begun."""


def parse_month(text: str) -> Period:
    """`YYYY-MM` as that month's period (the report command and the monthly page); a month
    after the current one is refused (it has no figures yet)."""
    import re

    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not m or not 1 <= int(m[2]) <= 12 or int(m[1]) < 2000:
        raise BadMonth(_("A month is written YYYY-MM, for example 2026-03."))
    period = month_period(int(m[1]), int(m[2]))
    if period.start > timezone.now():
        raise BadMonth(_("That month has not begun yet."))
    return period


def last_closed_month() -> Period:
    """The latest month that is over (the monthly report's default)."""
    first = timezone.localtime().date().replace(day=1) - dt.timedelta(days=1)
    return month_period(first.year, first.month)


def last_months(n: int) -> Period:
    """The open month and the n - 1 months before it, up to now."""
    now = timezone.now()
    first = timezone.localtime(now).date().replace(day=1)
    for _i in range(n - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    tz = timezone.get_current_timezone()
    return Period(dt.datetime(first.year, first.month, 1, tzinfo=tz), now, f"{n}m")


@dataclass(slots=True)
class Table:
    """One published table: a key, a title, column headings and rows of label + numbers."""

    key: str
    title: Label
    columns: list[Label]
    rows: list[list[Any]] = field(default_factory=list)
    #: (row, column) of cells that must not be shown (public disclosure control).
    suppressed: set[tuple[int, int]] = field(default_factory=set)
    note: str = ""
    #: (row, column) -> the staff list behind that number (reports.links: shown to roles
    #: that may see it)
    links: dict[tuple[int, int], str] = field(default_factory=dict)
    #: what each row stands for, where its label cannot say (reports.links reads them)
    row_keys: list[Any] = field(default_factory=list)
    #: the column its chart draws (the screen's and the PDF's: charts.bar_spec)
    chart_column: int = 1

    @property
    def cells(self) -> list[list[tuple[Any, str | None]]]:
        """Each shown value with the list behind it (None where there is none)."""
        return [[(v, self.links.get((i, j))) for j, v in enumerate(row)]
                for i, row in enumerate(self.display_rows)]

    @property
    def display_rows(self) -> list[list[Any]]:
        """The rows with every suppressed cell as None (shown as a dash)."""
        return [[None if (i, j) in self.suppressed else v for j, v in enumerate(row)]
                for i, row in enumerate(self.rows)]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        """A kept table back (`as_json` of an unsuppressed table: its rows are whole)."""
        return cls(data["key"], data["title"], list(data["columns"]),
                   [list(r) for r in data["rows"]],
                   {(int(i), int(j)) for i, j in data["suppressed"]}, data["note"],
                   chart_column=int(data.get("chart_column", 1)))

    def as_json(self) -> dict[str, Any]:
        rows = self.display_rows
        return {"key": self.key, "title": str(self.title),
                "columns": [str(c) for c in self.columns], "rows": rows,
                "suppressed": sorted([list(c) for c in self.suppressed]),
                "note": str(self.note), "chart_column": self.chart_column}


def _labelled(counts: dict[str, int], choices: Iterable[tuple[str, Any]]) -> list[list[Any]]:
    """Every choice in its order (zeros included: a missing row says nothing), then a total."""
    rows: list[list[Any]] = [[str(label), counts.get(value, 0)] for value, label in choices]
    return rows


def _counts(qs: QuerySet[Any], key: str, distinct: str | None = None) -> dict[str, int]:
    agg = Count(distinct, distinct=True) if distinct else Count("pk")
    return {r[key]: r["n"] for r in qs.values(key).annotate(n=agg).order_by()}


def _cases(period: Period) -> QuerySet[Case]:
    return Case.objects.filter(created_at__gte=period.start, created_at__lt=period.end)


# ---------------------------------------------------------------------------------------------
# The annual (ministry-format) tables


def victims_by_age(period: Period) -> Table:
    counts = _counts(_cases(period), "person__age_group", distinct="person_id")
    rows = _labelled(counts, AgeGroup.choices)
    return Table("victims_by_age", _("Victims supported by age group"),
                 [_("Age group"), _("Victims")], rows)


def victims_by_sex(period: Period) -> Table:
    counts = _counts(_cases(period), "person__sex", distinct="person_id")
    return Table("victims_by_sex", _("Victims supported by sex"), [_("Sex"), _("Victims")],
                 _labelled(counts, Sex.choices))


def victims_by_region(period: Period) -> Table:
    counts = _counts(_cases(period), "person__region", distinct="person_id")
    return Table("victims_by_region", _("Victims supported by region"),
                 [_("Region"), _("Victims")], _labelled(counts, Region.choices))


def offender_relationship(period: Period) -> Table:
    counts = _counts(_cases(period), "offender_relationship")
    return Table("relationship", _("Offender's relationship to the victim"),
                 [_("Relationship"), _("Cases")], _labelled(counts, OffenderRelationship.choices))


def harm_types(period: Period) -> Table:
    qs = CaseHarm.objects.filter(case__created_at__gte=period.start,
                                 case__created_at__lt=period.end)
    rows = _labelled(_counts(qs, "harm_type", distinct="case_id"), HarmType.choices)
    return Table("harm_types", _("Harm types (several per victim)"),
                 [_("Harm type"), _("Victims")], rows)


def services_by_type(period: Period) -> Table:
    """Counseling contacts by channel, referrals by target, expert assignments, notices."""
    contacts = _counts(Contact.objects.filter(started_at__gte=period.start,
                                              started_at__lt=period.end), "channel")
    referrals = _counts(Referral.objects.filter(created_at__gte=period.start,
                                                created_at__lt=period.end), "target")
    assignments = _counts(Assignment.objects.filter(created_at__gte=period.start,
                                                    created_at__lt=period.end), "expert__kind")
    notices = TakedownRequest.objects.filter(sent_at__gte=period.start,
                                             sent_at__lt=period.end).count()
    rows: list[list[Any]] = []
    for value, label in Channel.choices:
        rows.append([f"{COUNSELING}: {label}", contacts.get(value, 0)])
    for value, label in ReferralTarget.choices:
        rows.append([f"{REFERRAL}: {label}", referrals.get(value, 0)])
    rows.append([str(_("Expert assignments")), sum(assignments.values())])
    rows.append([str(_("Takedown notices sent")), notices])
    return Table("services", _("Services by type"), [_("Service"), _("Count")], rows)


def _removed(period: Period) -> QuerySet[Sighting]:
    return Sighting.objects.filter(status=SightingStatus.REMOVED, removed_at__gte=period.start,
                                   removed_at__lt=period.end)


def deletions_by_platform_kind(period: Period) -> Table:
    counts = _counts(_removed(period), "platform__kind")
    rows = _labelled(counts, PlatformKind.choices)
    if counts.get(None):  # type: ignore[call-overload]
        rows.append([str(_("Unknown platform")), counts[None]])  # type: ignore[index]
    return Table("deletions_by_kind", _("Deletions by platform type"),
                 [_("Platform type"), _("Items removed")], rows)


def deletions_by_hosting(period: Period) -> Table:
    counts = _counts(_removed(period), "platform__jurisdiction")
    rows = _labelled(counts, Jurisdiction.choices)
    total = sum(r[1] for r in rows)
    for row in rows:
        row.append(round(100 * row[1] / total, 1) if total else 0.0)
    return Table("deletions_by_hosting", _("Deletions by hosting country"),
                 [_("Hosting"), _("Items removed"), _("Share (%)")], rows)


def personal_info_coleak(period: Period) -> Table:
    """Items removed in the period that were posted with the victim's personal information
    (the reviewer's flag on the sighting), and their share of all removed items."""
    agg = _removed(period).aggregate(total=Count("pk"),
                                     leaked=Count("pk", filter=Q(leaks_personal_info=True)))
    total, leaked = agg["total"], agg["leaked"]
    rows = [[str(_("With personal information")), leaked,
             round(100 * leaked / total, 1) if total else 0.0],
            [str(_("Without")), total - leaked,
             round(100 * (total - leaked) / total, 1) if total else 0.0]]
    return Table("coleak", _("Deleted items that also leaked personal information"),
                 [_("Items removed"), _("Items"), _("Share (%)")], rows)


def proactive_vs_requested(period: Period) -> Table:
    """Requested: the image came from the victim (portal or staff evidence on the case);
    proactive: the center found it through imported lists or partners' banks."""
    requested_sources = ["victim_portal", "staff_evidence"]
    requested_entries = BankEntry.objects.filter(source__in=requested_sources).values("pk")
    qs = _removed(period)
    agg = qs.aggregate(
        requested=Count("pk", filter=Q(entry_id__in=requested_entries)),
        total=Count("pk"),
    )
    rows = [[str(_("Requested by the victim")), agg["requested"]],
            [str(_("Found proactively")), agg["total"] - agg["requested"]]]
    return Table("proactive", _("Proactive versus requested deletions"),
                 [_("Origin"), _("Items removed")], rows)


ANNUAL_TABLES = (victims_by_sex, victims_by_age, victims_by_region, services_by_type,
                 harm_types, offender_relationship, deletions_by_platform_kind,
                 deletions_by_hosting, personal_info_coleak, proactive_vs_requested)


def annual_tables(period: Period) -> list[Table]:
    """The ministry-format tables; those of a closed period are kept (`PeriodTables`, per
    language) until a source row inside the period changes."""
    if not period.closed:
        return [f(period) for f in ANNUAL_TABLES]
    from django.db import IntegrityError, transaction
    from django.utils import translation

    from anshim.reports.models import PeriodTables

    language = translation.get_language() or ""
    kept = PeriodTables.objects.filter(start=period.start, end=period.end,
                                       language=language).values_list("tables", flat=True)
    for payload in kept:
        return [Table.from_json(t) for t in payload]
    tables = [f(period) for f in ANNUAL_TABLES]
    try:
        with transaction.atomic():
            PeriodTables.objects.create(start=period.start, end=period.end, language=language,
                                        tables=[t.as_json() for t in tables])
    except IntegrityError:
        pass  # another reader kept the same tables first
    return tables


#: Ministry tables the case file does not record (none since the case file records sex,
#: region, the offender's relationship and the co-leak flag; the report still lists any).
NOT_RECORDED: tuple[Label, ...] = ()


# ---------------------------------------------------------------------------------------------
# The supervisor dashboard


def _cases_in(s: summary.Slice) -> QuerySet[Case]:
    """Cases of the slice: the victim's age group, a harm type, a sighting on a platform."""
    qs = Case.objects.all()
    if s.age_group:
        qs = qs.filter(person__age_group=s.age_group)
    if s.harm_type:
        qs = qs.filter(harms__harm_type=s.harm_type)  # one row per case and harm type
    if s.platform_id is not None:
        qs = qs.filter(pk__in=Sighting.objects.filter(platform_id=s.platform_id)
                       .values("case_id"))
    return qs


#: every status but closed: the status index finds the open cases (NOT closed scanned all)
OPEN_STATUSES = [c for c, _l in CaseStatus.choices if c != CaseStatus.CLOSED]


def open_case_counts() -> list[dict[str, Any]]:
    """The open cases in one pass, by status, risk and lead counselor, with the overdue
    triage deadlines and the cases without a consent: the open cases, the attention list and
    the caseload read these rows (one scan of the open cases instead of four)."""
    consents = Consent.objects.filter(withdrawn_at__isnull=True).values("case_id")
    # grouped by the lead's id only, the names read afterwards for the few leads: grouping
    # by the names too sorted every open case by two strings (half the query's time)
    rows = [dict(r) for r in (
        Case.objects.filter(status__in=OPEN_STATUSES)
        .values("status", "risk_level", "lead_counselor")
        .annotate(n=Count("pk"), overdue=Count("pk", filter=Q(response_due__lt=
                                                              timezone.now())),
                  no_consent=Count("pk", filter=~Q(pk__in=consents)))
        .order_by())]
    names = _user_names(r["lead_counselor"] for r in rows)
    for r in rows:
        username, display = names.get(r["lead_counselor"], (None, None))
        r["lead_counselor__username"], r["lead_counselor__display_name"] = username, display
    return rows


def _user_names(ids: Iterable[Any]) -> dict[Any, tuple[str, str]]:
    """User id -> (username, display name), for the ids given (None left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {pk: (username, display) for pk, username, display in
            User.objects.filter(pk__in=wanted).values_list("pk", "username", "display_name")}


def open_cases(period: Period | None = None, s: summary.Slice = summary.ALL,
               counts: list[dict[str, Any]] | None = None) -> Table:
    grid: dict[tuple[str, str], int] = {}
    if counts is not None and s == summary.ALL:
        for r in counts:
            key = (r["status"], r["risk_level"])
            grid[key] = grid.get(key, 0) + r["n"]
    else:
        qs = _cases_in(s).filter(status__in=OPEN_STATUSES)
        grid = {(r["status"], r["risk_level"]): r["n"]
                for r in qs.values("status", "risk_level").annotate(n=Count("pk")).order_by()}
    statuses = [c for c in CaseStatus.choices if c[0] != CaseStatus.CLOSED]
    rows = [[str(label)] + [grid.get((s, r), 0) for r, _l in RiskLevel.choices]
            for s, label in statuses]
    return Table("open_cases", _("Open cases by status and risk"),
                 [_("Status"), *[lbl for _v, lbl in RiskLevel.choices]], rows,
                 chart_column=len(RiskLevel.choices))


def workload(counts: list[dict[str, Any]] | None = None) -> Table:
    counts = open_case_counts() if counts is None else counts
    new = [r for r in counts if r["status"] == CaseStatus.NEW]
    agg = {"overdue": sum(r["overdue"] for r in new), "untriaged": sum(r["n"] for r in new)}
    consent_pending = sum(r["no_consent"] for r in counts)
    # cases, as the column says (a case with two pending referrals counts once), read from
    # the (status, case) index
    referrals_pending = (Referral.objects.filter(status__in=REFERRAL_PENDING)
                         .values("case_id").distinct().count())
    rows = [[str(_("Triage deadlines overdue")), agg["overdue"]],
            [str(_("Not yet triaged")), agg["untriaged"]],
            [str(_("Open cases without a consent")), consent_pending],
            [str(_("Cases with a referral without outcome")), referrals_pending]]
    return Table("attention", _("Needs attention"), [_("Item"), _("Cases")], rows)


def caseload(counts: list[dict[str, Any]] | None = None) -> Table:
    per_lead: dict[Any, dict[str, Any]] = {}
    for r in open_case_counts() if counts is None else counts:
        lead = per_lead.setdefault(r["lead_counselor"], {**r, "n": 0})
        lead["n"] += r["n"]
    # most open cases first, then by username (no lead counselor last, as PostgreSQL sorts)
    leads = sorted(per_lead.values(), key=lambda r: (
        -r["n"], r["lead_counselor__username"] is None, r["lead_counselor__username"] or ""))[:50]
    rows = [[r["lead_counselor__display_name"] or r["lead_counselor__username"] or "—", r["n"]]
            for r in leads]
    # cases, not assignments: an expert assigned twice to one case (two specialties) has
    # one case more, as the case list filtered by that expert shows
    # by the expert's id (the names afterwards, for at most one row per expert)
    per_expert = dict(Assignment.objects.filter(status=AssignmentStatus.ACTIVE)
                      .values_list("expert_id").annotate(n=Count("case_id", distinct=True))
                      .order_by())
    usernames = dict(Expert.objects.filter(pk__in=per_expert)
                     .values_list("pk", "user__username"))
    experts = sorted(per_expert.items(), key=lambda kv: (-kv[1], usernames.get(kv[0], "")))[:50]
    return Table("caseload", _("Caseload per counselor and per expert"),
                 [_("Staff member"), _("Open cases")],
                 [[f"{COUNSELOR}: {r[0]}", r[1]] for r in rows]
                 + [[f"{EXPERT}: {usernames.get(pk) or '—'}", n] for pk, n in experts],
                 row_keys=[("lead", r["lead_counselor"]) for r in leads]
                 + [("expert", pk) for pk, _n in experts])


def _platform_names() -> dict[Any, str]:
    return dict(Platform.objects.values_list("pk", "name"))


def _plan(period: Period) -> summary.Plan:
    return summary.plan(period.start, period.end)


def erasure_funnel(period: Period, s: summary.Slice = summary.ALL,
                   plan: summary.Plan | None = None) -> Table:
    counts = summary.platform_counts(plan or _plan(period), s)
    agg = {k: sum(c[k] for c in counts.values())
           for k in ("found", "confirmed", "requested", "taken_down", "reuploaded")}
    rows = [[str(_("Sightings found")), agg["found"]],
            [str(_("Confirmed by a reviewer")), agg["confirmed"]],
            [str(_("Takedown requests sent")), agg["requested"]],
            [str(_("Removed")), agg["taken_down"]],
            [str(_("Re-uploaded")), agg["reuploaded"]]]
    return Table("funnel", _("Erasure funnel"), [_("Stage"), _("Items")], rows)


def _rounded(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


#: the "removed (sent) within" columns, for summary.WITHIN_HOURS
WITHIN_COLUMNS = (_("Within 24 h (%)"), _("Within 48 h (%)"), _("Within 7 days (%)"))


def removal_times(period: Period, s: summary.Slice = summary.ALL,
                  plan: summary.Plan | None = None,
                  names: dict[Any, str] | None = None) -> Table:
    """Time from notice to removal per platform: median, p90 and shares within 24/48/168 h
    (the summary's histograms: exact to 0.1 h under 100 h, 1 h under 1,000 h)."""
    plan = plan or _plan(period)
    names = names if names is not None else _platform_names()
    counts = summary.platform_counts(plan, s)
    pct = summary.quantiles(plan, s, DurationMeasure.REMOVAL, (0.5, 0.9))
    rows: list[list[Any]] = []
    for pid, c in sorted(counts.items(), key=lambda kv: names.get(kv[0], "")):
        if not c["sent"]:
            continue
        med, p90 = pct.get(str(pid), [None, None])
        rows.append([names.get(pid, "—"), c["sent"], c["removed"], _rounded(med),
                     _rounded(p90),
                     *[round(100 * c[f"within_{h}"] / c["sent"], 1) for h in WITHIN_HOURS]])
    return Table("removal_times", _("Time from notice to removal per platform"),
                 [_("Platform"), _("Notices"), _("Removed"), _("Median (h)"), _("p90 (h)"),
                  *WITHIN_COLUMNS], rows)


def _route_rows(plan: summary.Plan, s: summary.Slice, measure: str,
                removed: bool) -> tuple[list[list[Any]], list[str]]:
    """Per route with notices (in NoticeRoute's order): the count (and the removed), the
    median and p90 hours, the shares within 24 h / 48 h / 7 days; and the routes."""
    counts = summary.route_counts(plan, s)
    pct = summary.quantiles(plan, s, measure, (0.5, 0.9))
    rows: list[list[Any]] = []
    keys: list[str] = []
    for route, label in NoticeRoute.choices:
        c = counts.get((DurationMeasure.REMOVAL if removed else DurationMeasure.FIRST_NOTICE,
                        route))
        if not c or not c["n"]:
            continue
        med, p90 = pct.get(route, [None, None])
        rows.append([str(label), c["n"], *([c["removed"]] if removed else []),
                     _rounded(med), _rounded(p90),
                     *[round(100 * c[f"within_{h}"] / c["n"], 1) for h in WITHIN_HOURS]])
        keys.append(route)
    return rows, keys


def intake_to_notice(period: Period, s: summary.Slice = summary.ALL,
                     plan: summary.Plan | None = None) -> Table:
    """Time from intake to the first takedown notice of each case opened in the period, by
    the route of that notice: median, p90 and the shares sent within 24 h / 48 h / 7 days."""
    rows, keys = _route_rows(plan or _plan(period), s, DurationMeasure.FIRST_NOTICE,
                             removed=False)
    return Table("intake_to_notice", _("Time from intake to the first takedown notice"),
                 [_("Route"), _("First notices"), _("Median (h)"), _("p90 (h)"),
                  *WITHIN_COLUMNS], rows, row_keys=keys)


def removal_by_route(period: Period, s: summary.Slice = summary.ALL,
                     plan: summary.Plan | None = None) -> Table:
    """Time from notice to removal per route (direct notice, partner API, regulator
    escalation): notices sent in the period, removed, median and p90 hours, the shares
    removed within 24 h / 48 h / 7 days."""
    rows, keys = _route_rows(plan or _plan(period), s, DurationMeasure.REMOVAL_ROUTE,
                             removed=True)
    return Table("removal_by_route", _("Time from notice to removal per route"),
                 [_("Route"), _("Notices"), _("Removed"), _("Median (h)"), _("p90 (h)"),
                  *WITHIN_COLUMNS], rows, row_keys=keys)


def platform_scorecard(period: Period, s: summary.Slice = summary.ALL,
                       plan: summary.Plan | None = None,
                       names: dict[Any, str] | None = None) -> Table:
    """Per platform: notices sent, removal rate, median and p90 hours to removal, re-upload
    rate, notices that had to be sent again, refusals."""
    plan = plan or _plan(period)
    names = names if names is not None else _platform_names()
    counts = summary.platform_counts(plan, s)
    pct = summary.quantiles(plan, s, DurationMeasure.REMOVAL, (0.5, 0.9))
    rows: list[list[Any]] = []
    for pid, c in sorted(counts.items(), key=lambda kv: names.get(kv[0], "")):
        if not c["sent"]:
            continue
        med, p90 = pct.get(str(pid), [None, None])
        rows.append([names.get(pid, "—"), c["sent"], round(100 * c["removed"] / c["sent"], 1),
                     _rounded(med), _rounded(p90),
                     round(100 * c["reuploaded"] / c["found"], 1) if c["found"] else None,
                     c["renotices"], c["refused"]])
    return Table("scorecard", _("Platform scorecard"),
                 [_("Platform"), _("Notices"), _("Removal rate (%)"), _("Median (h)"),
                  _("p90 (h)"), _("Re-upload rate (%)"), _("Notices sent again"),
                  _("Refusals")], rows)


def scorecard_trend(period: Period, s: summary.Slice = summary.ALL,
                    plan: summary.Plan | None = None,
                    names: dict[Any, str] | None = None) -> Table:
    """The scorecard's trend: notices and removal rate per platform per month."""
    names = names if names is not None else _platform_names()
    monthly = summary.monthly_platform_counts(plan or _plan(period), s)
    rows: list[list[Any]] = []
    for (month, pid), c in sorted(monthly.items(),
                                  key=lambda kv: (kv[0][0], names.get(kv[0][1], ""))):
        if not c["sent"]:
            continue
        rows.append([f"{month:%Y-%m} {names.get(pid, '—')}", c["sent"],
                     round(100 * c["removed"] / c["sent"], 1)])
    return Table("scorecard_trend", _("Platform scorecard: monthly trend"),
                 [_("Month and platform"), _("Notices"), _("Removal rate (%)")], rows)


#: the age bands of the backlog and the review queue: hours since first seen, at least, less
#: than (reports.links opens the sightings list with the same bounds)
AGE_BANDS = ((_("under 24 h"), 0, 24), (_("1–7 days"), 24, 168),  # noqa: RUF001
             (_("1–4 weeks"), 168, 672), (_("over 4 weeks"), 672, None))  # noqa: RUF001


def _aged(status: str, s: summary.Slice) -> list[list[Any]]:
    """Sightings in `status` per age band (hours since first seen), in one aggregate."""
    now = timezone.now()
    aggs = {}
    for i, (_label, lo, hi) in enumerate(AGE_BANDS):
        cond = Q(first_seen__lte=now - dt.timedelta(hours=lo))
        if hi is not None:
            cond &= Q(first_seen__gt=now - dt.timedelta(hours=hi))
        aggs[f"b{i}"] = Count("pk", filter=cond)
    agg = s.case_rows(Sighting.objects.filter(status=status)).aggregate(**aggs)
    return [[str(label), agg[f"b{i}"]] for i, (label, _lo, _hi) in enumerate(AGE_BANDS)]


def backlog(s: summary.Slice = summary.ALL) -> Table:
    """Confirmed items not yet removed, by age."""
    return Table("backlog", _("Undeleted backlog by age"), [_("Age"), _("Items")],
                 _aged(SightingStatus.CONFIRMED, s))


def review_queue(s: summary.Slice = summary.ALL) -> Table:
    """Erasure: found items waiting for a reviewer's decision, by age (how long the queue
    keeps a victim's footage unanswered)."""
    return Table("review_queue", _("Review queue by age"), [_("Age"), _("Items")],
                 _aged(SightingStatus.NEW, s))


def hash_banks() -> Table:
    entries = Bank.objects.values("name").annotate(n=Count("entries")).order_by("name")
    counts = summary.bank_counts()
    empty = {"matches": 0, "confirmed": 0, "rejected": 0}
    rows = [[r["name"], r["n"], *counts.get(r["name"], empty).values()] for r in entries]
    return Table("hash_banks", _("Hash-bank health"),
                 [_("Bank"), _("Entries"), _("Matches"), _("Confirmed"), _("Rejected")], rows)


def contacts_by_hour(period: Period, s: summary.Slice = summary.ALL,
                     plan: summary.Plan | None = None) -> Table:
    """Counseling: contacts by hour of the day (the center's time zone) and channel, of the
    slice's cases; the chart draws the total."""
    grid = summary.counseling_counts(plan or _plan(period), s).contacts
    channels = Channel.choices
    rows = [[f"{h:02d}:00", *[grid.get((c, h), 0) for c, _l in channels],
             sum(grid.get((c, h), 0) for c, _l in channels)] for h in range(24)]
    return Table("contacts_by_hour", _("Counseling contacts by hour and channel"),
                 [_("Hour"), *[lbl for _c, lbl in channels], _("Total")], rows,
                 chart_column=len(channels) + 1)


def contacts_by_channel(period: Period, s: summary.Slice = summary.ALL,
                        plan: summary.Plan | None = None) -> Table:
    """Counseling: contacts per channel in the period, of the slice's cases."""
    grid = summary.counseling_counts(plan or _plan(period), s).contacts
    totals: dict[str, int] = {}
    for (channel, _hour), n in grid.items():
        totals[channel] = totals.get(channel, 0) + n
    return Table("contacts_by_channel", _("Counseling contacts by channel"),
                 [_("Channel"), _("Contacts")], _labelled(totals, Channel.choices))


def _kept(choices: Iterable[tuple[str, Any]], only: str | None) -> list[tuple[str, Any]]:
    """The choices a table shows: all, or the one the slice chose."""
    return [(v, label) for v, label in choices if not only or v == only]


def cases_by_harm(period: Period, s: summary.Slice = summary.ALL,
                  plan: summary.Plan | None = None) -> Table:
    """Counseling: cases opened in the period per harm type (several per case)."""
    counts = summary.counseling_counts(plan or _plan(period), s).by_harm
    choices = _kept(HarmType.choices, s.harm_type)
    return Table("cases_by_harm", _("Cases opened by harm type (several per case)"),
                 [_("Harm type"), _("Cases")], _labelled(counts, choices),
                 row_keys=[v for v, _l in choices])


def cases_by_age(period: Period, s: summary.Slice = summary.ALL,
                 plan: summary.Plan | None = None) -> Table:
    """Counseling: cases opened in the period per victim age group."""
    counts = summary.counseling_counts(plan or _plan(period), s).by_age
    choices = _kept(AgeGroup.choices, s.age_group)
    return Table("cases_by_age", _("Cases opened by victim age group"),
                 [_("Age group"), _("Cases")], _labelled(counts, choices),
                 row_keys=[v for v, _l in choices])


#: the dashboard's note on the exposure tables (the default of a viewing without a report)
EXPOSURE_NOTE = _("Minutes the unblurred picture was on screen (the tab visible, not blurred "
                  "again), as each reviewer's page reported them; a viewing whose page sent no "
                  "report (the browser was closed first) counts %(minutes)s minute(s). Weeks "
                  "are ISO weeks (Monday to Sunday); the first and last week of the period "
                  "may be partial.")


#: an ISO week by its year, number and Monday
WEEK_LABEL = _("%(year)s-W%(week)02d (%(monday)s)")


def _exposure_note() -> str:
    from anshim.erasure.exposure import UNREPORTED_SECONDS

    return str(EXPOSURE_NOTE) % {"minutes": f"{UNREPORTED_SECONDS / 60:g}"}


def _reviewer_names(ids: Iterable[Any]) -> dict[Any, str]:
    users = User.objects.filter(pk__in=[k for k in ids if k])
    return {u.pk: u.display_name or u.username for u in users}


def reviewer_exposure(period: Period, plan: summary.Plan | None = None) -> Table:
    """Erasure: minutes each specialist looked at unblurred pictures in the period, the
    views, the average per week and the most in one ISO week (a wellbeing measure)."""
    weeks = max(1.0, (period.end - period.start).total_seconds() / (7 * 86400))
    by_week = summary.exposure_weeks(plan or _plan(period))
    totals = summary.exposure_counts(plan or _plan(period))
    most: dict[Any, int] = {}
    for (actor_id, _week), e in by_week.items():
        most[actor_id] = max(most.get(actor_id, 0), e.seconds)
    names = _reviewer_names(totals)
    rows: list[list[Any]] = [
        [names.get(k, "—"), round(e.minutes, 1), e.views, round(e.minutes / weeks, 1),
         round(most.get(k, 0) / 60, 1)] for k, e in totals.items()]
    rows.sort(key=lambda r: (-r[1], -r[2], r[0]))
    return Table("exposure", _("Reviewer exposure: minutes of unblurred viewing per specialist"),
                 [_("Specialist"), _("Minutes"), _("Views"), _("Minutes per week"),
                  _("Most minutes in one week")], rows, note=_exposure_note())


def reviewer_exposure_weeks(period: Period, plan: summary.Plan | None = None) -> Table:
    """Erasure: per ISO week with any unblurred viewing, the minutes of all specialists, the
    views, how many specialists viewed and the most minutes of one of them."""
    by_week = summary.exposure_weeks(plan or _plan(period))
    weeks: dict[dt.date, list[summary.Exposure]] = {}
    for (_actor_id, week), e in by_week.items():
        weeks.setdefault(week, []).append(e)
    rows = []
    for week in sorted(weeks):
        iso = week.isocalendar()
        total = sum(weeks[week], summary.Exposure())
        label = str(WEEK_LABEL) % {"year": iso.year, "week": iso.week,
                                   "monday": f"{week:%m-%d}"}
        rows.append([label, round(total.minutes, 1),
                     total.views, len(weeks[week]),
                     round(max(e.seconds for e in weeks[week]) / 60, 1)])
    return Table("exposure_weeks", _("Reviewer exposure per week"),
                 [_("ISO week (Monday)"), _("Minutes"), _("Views"), _("Specialists"),
                  _("Most minutes of one specialist")], rows, note=_exposure_note())


# ---------------------------------------------------------------------------------------------
# The prevention team's figures: counts by SQL aggregation, every estimate (pre/post gains,
# survey prevalence, their CIs and the suppression of small cells) from the prevention app's
# analysis over anshim.stats, never re-estimated here.

#: the latest knowledge tests and surveys shown (each analysis kept until its inputs change:
#: prevention.analysis.cached_survey_results / cached_test_results)
PREVENTION_LATEST = 3


def prevention_sessions(period: Period) -> Table:
    from anshim.prevention.models import Attendance, ProgrammeSession, SessionStatus

    delivered = ProgrammeSession.objects.filter(status=SessionStatus.DELIVERED,
                                                starts_at__gte=period.start,
                                                starts_at__lt=period.end)
    agg = delivered.aggregate(sessions=Count("pk"), schools=Count("school_id", distinct=True))
    reached = Attendance.objects.filter(session__in=delivered.values("pk")).aggregate(
        n=Sum("count"))["n"] or 0
    rows = [[str(_("Sessions delivered")), agg["sessions"]],
            [str(_("Schools")), agg["schools"]], [str(_("Students reached")), reached]]
    return Table("prevention_sessions", _("Prevention sessions"), [_("Item"), _("Count")],
                 rows)


def prevention_gains(period: Period) -> Table:
    """Pre to post (and follow-up) score gains of the latest knowledge tests, with the
    paired analysis' 95% CI (prevention.analysis.test_results, kept until its inputs
    change)."""
    from anshim.prevention.analysis import cached_test_results
    from anshim.prevention.models import KnowledgeTest

    rows: list[list[Any]] = []
    for test in KnowledgeTest.objects.order_by("-created_at", "-pk")[:PREVENTION_LATEST]:
        for comparison in cached_test_results(test):
            r = comparison.report
            if r is None:
                continue
            o = r.overall
            rows.append([f"{test.name}: {comparison.before} → {comparison.after}", o.n_pairs,
                         round(o.mean_change, 2), round(o.ci_low, 2), round(o.ci_high, 2)])
    return Table("prevention_gains", _("Knowledge gains (pre/post) with 95% CI"),
                 [_("Test"), _("Linked pairs"), _("Mean gain"), _("CI low"), _("CI high")],
                 rows, note=str(_("The latest knowledge tests; paired by the students' "
                                  "self-generated codes.")))


def prevention_prevalence(period: Period) -> Table:
    """Survey prevalence (weighted %, 95% CI) of the latest surveys' first answer of each
    analysed question; suppressed cells stay suppressed (prevention.analysis, kept until its
    inputs change)."""
    from anshim.prevention.analysis import cached_survey_results
    from anshim.prevention.models import Survey

    rows: list[list[Any]] = []
    for survey in Survey.objects.order_by("-created_at", "-pk")[:PREVENTION_LATEST]:
        results = cached_survey_results(survey)
        for t in results.tables:
            if not t.rows:
                continue
            cell = t.rows[0].cells[-1]
            rows.append([f"{survey.title}: {t.title} — {t.rows[0].label}", cell.n,
                         round(cell.percent, 1) if cell.shown and cell.percent is not None
                         else None,
                         round(cell.ci_low, 1) if cell.shown and cell.ci_low is not None
                         else None,
                         round(cell.ci_high, 1) if cell.shown and cell.ci_high is not None
                         else None])
    table = Table("prevention_prevalence", _("Survey prevalence with 95% CI"),
                  [_("Survey, question and answer"), _("Respondents"), _("Weighted %"),
                   _("CI low"), _("CI high")], rows)
    return table


def prevention_tables(period: Period) -> list[Table]:
    return [prevention_sessions(period), prevention_gains(period),
            prevention_prevalence(period)]


#: which team view shows which dashboard table (no team chosen: all)
TEAM_OF = {"open_cases": "counseling", "attention": "counseling", "caseload": "counseling",
           "contacts_by_channel": "counseling", "contacts_by_hour": "counseling",
           "cases_by_harm": "counseling", "cases_by_age": "counseling",
           "funnel": "erasure", "removal_times": "erasure", "scorecard": "erasure",
           "scorecard_trend": "erasure", "intake_to_notice": "erasure", "backlog": "erasure",
           "removal_by_route": "erasure", "review_queue": "erasure",
           "hash_banks": "erasure", "exposure": "erasure", "exposure_weeks": "erasure"}


def dashboard_tables(period: Period, s: summary.Slice = summary.ALL,
                     team: str = "") -> list[Table]:
    """The supervisor dashboard: the current state (open cases, attention, caseload, backlog,
    banks) and the period's figures, read from one plan (closed months from the summary);
    `team`: only that team's view."""
    plan = _plan(period)
    names = _platform_names()
    kept: list[list[dict[str, Any]]] = []

    def counts() -> list[dict[str, Any]]:
        if not kept:
            kept.append(open_case_counts())
        return kept[0]

    builders: list[tuple[str, Any]] = [
        ("counseling", lambda: open_cases(s=s, counts=counts())),
        ("counseling", lambda: workload(counts())),
        ("counseling", lambda: caseload(counts())),
        ("counseling", lambda: contacts_by_channel(period, s, plan)),
        ("counseling", lambda: contacts_by_hour(period, s, plan)),
        ("counseling", lambda: cases_by_harm(period, s, plan)),
        ("counseling", lambda: cases_by_age(period, s, plan)),
        ("erasure", lambda: erasure_funnel(period, s, plan)),
        ("erasure", lambda: removal_times(period, s, plan, names)),
        ("erasure", lambda: platform_scorecard(period, s, plan, names)),
        ("erasure", lambda: scorecard_trend(period, s, plan, names)),
        ("erasure", lambda: removal_by_route(period, s, plan)),
        ("erasure", lambda: intake_to_notice(period, s, plan)),
        ("erasure", lambda: review_queue(s)),
        ("erasure", lambda: backlog(s)), ("erasure", hash_banks),
        ("erasure", lambda: reviewer_exposure(period, plan)),
        ("erasure", lambda: reviewer_exposure_weeks(period, plan)),
        ("prevention", lambda: prevention_sessions(period)),
        ("prevention", lambda: prevention_gains(period)),
        ("prevention", lambda: prevention_prevalence(period))]
    from anshim.reports import links

    return links.attach([build() for t, build in builders if not team or t == team],
                        period, s, names)


def report_tables(period: Period) -> list[Table]:
    """The monthly and the annual report (PDF, xlsx, JSON; `anshim report` and the report
    pages): the ministry-format tables, then every table of the dashboard for the period."""
    return annual_tables(period) + dashboard_tables(period)


__all__ = ["ANNUAL_TABLES", "NOT_RECORDED", "Period", "Platform", "Table", "annual_tables",
           "dashboard_tables", "month_period", "year_period"]
