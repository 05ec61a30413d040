"""The per-month summary rows (`reports.models`): built by SQL aggregation for one month,
read back for the closed months of a period, and computed the same way, live and unsaved, for
the open month (and for any month not built yet).

`build_month` and the live path share `month_rows`, so a cached month and a live one are the
same numbers by construction (`tests/reports/test_summary.py` compares them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Case as When_,
)
from django.db.models import (
    CharField,
    Count,
    DateField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, ExtractHour, Floor
from django.utils import timezone

from anshim.cases.models import Case, CaseHarm, Contact, Person
from anshim.erasure.exposure import counted_seconds
from anshim.erasure.models import (
    Sighting,
    SightingStatus,
    TakedownItem,
    TakedownRequest,
    TakedownState,
    UnblurRecord,
    route_expression,
)
from anshim.reports.models import (
    ALL_AGES,
    ALL_HARMS,
    BankMonth,
    CounselingMeasure,
    CounselingMonth,
    DurationBin,
    DurationMeasure,
    ExposureMonth,
    PeriodTables,
    PlatformMonth,
    RouteMonth,
    SummarizedMonth,
)

log = logging.getLogger(__name__)

#: the thresholds of "removed within" (hours): 24 h, 48 h, 7 days.
WITHIN_HOURS = (24, 48, 168)
COUNT_FIELDS = ("sent", "removed", "within_24", "within_48", "within_168", "renotices",
                "refused", "found", "confirmed", "requested", "taken_down", "reuploaded")


@dataclass(frozen=True, slots=True)
class Slice:
    """The dashboard's filters that the summary rows are keyed by (None: all)."""

    platform_id: int | None = None
    age_group: str | None = None
    harm_type: str | None = None

    def case_rows(self, qs: QuerySet[Any]) -> QuerySet[Any]:
        """`qs` (rows with a ``platform`` and a ``case``: sightings, notices) narrowed to the
        slice; one row per case and matching harm type, as the stored per-harm grouping."""
        if self.platform_id is not None:
            qs = qs.filter(platform_id=self.platform_id)
        if self.age_group:
            qs = qs.filter(case__person__age_group=self.age_group)
        if self.harm_type:
            qs = qs.filter(case__harms__harm_type=self.harm_type)
        return qs


#: no filter
ALL = Slice()


@dataclass(slots=True)
class MonthRows:
    """One month's summary rows (saved for a closed month, in memory for the open one)."""

    platforms: list[PlatformMonth] = field(default_factory=list)
    durations: list[DurationBin] = field(default_factory=list)
    banks: list[BankMonth] = field(default_factory=list)
    exposure: list[ExposureMonth] = field(default_factory=list)
    counseling: list[CounselingMonth] = field(default_factory=list)
    routes: list[RouteMonth] = field(default_factory=list)


def month_start(moment: dt.datetime | dt.date) -> dt.date:
    if isinstance(moment, dt.datetime):
        moment = timezone.localtime(moment).date()
    return moment.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    nxt = next_month(month)
    return (dt.datetime(month.year, month.month, 1, tzinfo=tz),
            dt.datetime(nxt.year, nxt.month, 1, tzinfo=tz))


def months_between(start: dt.date, stop: dt.date) -> Iterator[dt.date]:
    """Month starts from `start`'s month up to and excluding `stop`'s month."""
    month = start.replace(day=1)
    while month < stop:
        yield month
        month = next_month(month)


def is_closed(month: dt.date) -> bool:
    return bounds(month)[1] <= timezone.now()


# ---------------------------------------------------------------------------------------------
# Building


def hours_between(end: Any, start: Any) -> Any:
    from anshim.reports.figures import HoursBetween

    return HoursBetween(end, start)


def duration_bin(hours: Any) -> Any:
    """The histogram bin (tenths of an hour, lower edge) of a duration in hours, in SQL."""
    # + 1e-4: julianday() arithmetic gives 99.99999... for 100 h (a tenth of a millisecond
    # below the whole value); far under the bin's 0.1 h
    # whole hours under 1,000 h, 10 h above: few enough bins that a year of notices at
    # 100,000 cases sums in milliseconds
    tenths = Floor(hours * Value(10.0) + Value(1e-4))
    return Cast(When_(
        When(Q(_t__lt=10000), then=Floor(F("_t") / Value(10.0)) * Value(10.0)),
        default=Floor(F("_t") / Value(100.0)) * Value(100.0),
    ), IntegerField()), tenths


def _removal_counts() -> dict[str, Any]:
    """Notices sent, removed, and removed within each of WITHIN_HOURS (rows annotated with
    `_d`, the hours to removal); the per-platform and the per-route rows count alike."""
    # distinct: the per-harm grouping joins the case's harms
    removed = Q(state=TakedownState.REMOVED, closed_at__isnull=False)
    within = {f"within_{h}": Count("pk", filter=removed & Q(_d__lte=h), distinct=True)
              for h in WITHIN_HOURS}
    return {"sent": Count("pk", distinct=True),
            "removed": Count("pk", filter=removed, distinct=True), **within}


def _request_counts() -> dict[str, Any]:
    return {**_removal_counts(),
            "renotices": Count("pk", filter=Q(send_count__gt=1), distinct=True),
            "refused": Count("pk", filter=Q(state=TakedownState.REFUSED), distinct=True)}


def _sighting_counts() -> dict[str, Any]:
    return {"found": Count("pk", distinct=True),
            "confirmed": Count("pk", filter=Q(status__in=[SightingStatus.CONFIRMED,
                                                          SightingStatus.REMOVED]),
                               distinct=True),
            "requested": Count("pk", filter=Q(_req=True), distinct=True),
            "taken_down": Count("pk", filter=Q(status=SightingStatus.REMOVED), distinct=True),
            "reuploaded": Count("pk", filter=Q(is_reupload=True), distinct=True)}


def _by_harm(qs: QuerySet[Any], *keys: str, case: str = "case__") -> Iterator[QuerySet[Any]]:
    """The groupings of `qs` (rows with a `case`; `case=""`: cases themselves): every case
    once (`ALL_HARMS`) and each case once per harm type it has, by the victim's age group
    and for all ages (`ALL_AGES`: the unfiltered dashboard reads a quarter of the rows)."""
    for age in (Coalesce(f"{case}person__age_group", Value("")), Value(ALL_AGES)):
        aged = qs.annotate(age=age)
        yield aged.annotate(harm=Value(ALL_HARMS)).values(*keys, "age", "harm")
        yield (aged.annotate(harm=F(f"{case}harms__harm_type")).filter(harm__isnull=False)
               .values(*keys, "age", "harm"))


def _in_slice(qs: QuerySet[Any], s: Slice, *keys: str) -> Iterator[QuerySet[Any]]:
    """The one grouping of `qs` that the slice `s` reads, labelled as `_by_harm` labels the
    stored rows: the live month of a dashboard counts only what it shows (two queries, not
    eight: at 100,000 cases each grouping joins the open month's notices to the victims and
    the harms)."""
    yield s.case_rows(qs).annotate(age=Value(s.age_group or ALL_AGES),
                      harm=Value(s.harm_type or ALL_HARMS)).values(*keys, "age", "harm")


def platform_rows(start: dt.datetime, end: dt.datetime, month: dt.date,
                  s: Slice | None = None) -> list[PlatformMonth]:
    """Notices sent and sightings first seen in [start, end) per platform, age and harm
    (`s`: only the rows of that slice)."""
    grid: dict[tuple[Any, str, str], PlatformMonth] = {}

    def groupings(qs: QuerySet[Any], *keys: str) -> Iterator[QuerySet[Any]]:
        return _by_harm(qs, *keys) if s is None else _in_slice(qs, s, *keys)

    def cell(r: dict[str, Any]) -> PlatformMonth:
        key = (r["platform_id"], r["age"] or "", r["harm"] or "")
        if key not in grid:
            grid[key] = PlatformMonth(month=month, platform_id=key[0], age_group=key[1],
                                      harm_type=key[2])
        return grid[key]

    requests = (TakedownRequest.objects.filter(sent_at__gte=start, sent_at__lt=end)
                .annotate(_d=hours_between("closed_at", "sent_at")))
    for grouped in groupings(requests, "platform_id"):
        for r in grouped.annotate(**_request_counts()).order_by():
            row = cell(r)
            for name in ("sent", "removed", "within_24", "within_48", "within_168",
                         "renotices", "refused"):
                setattr(row, name, r[name])
    # EXISTS, not a join: joined, PostgreSQL hashed every notice item ever sent to count
    # the few sightings of the open month
    sent = TakedownItem.objects.filter(sighting_id=OuterRef("pk"),
                                       request__sent_at__isnull=False)
    sightings = (Sighting.objects.filter(first_seen__gte=start, first_seen__lt=end)
                 .annotate(_req=Exists(sent)))
    for grouped in groupings(sightings, "platform_id"):
        for r in grouped.annotate(**_sighting_counts()).order_by():
            row = cell(r)
            for name in ("found", "confirmed", "requested", "taken_down", "reuploaded"):
                setattr(row, name, r[name])
    return list(grid.values())


def removal_bins(start: dt.datetime, end: dt.datetime, month: dt.date) -> list[DurationBin]:
    bin_expr, tenths = duration_bin(hours_between("closed_at", "sent_at"))
    removed = (TakedownRequest.objects.filter(sent_at__gte=start, sent_at__lt=end,
                                              state=TakedownState.REMOVED,
                                              closed_at__isnull=False)
               .annotate(_t=tenths).annotate(b=bin_expr))
    return [DurationBin(month=month, measure=DurationMeasure.REMOVAL, grp=str(r["platform_id"]),
                        platform_id=r["platform_id"], age_group=r["age"], harm_type=r["harm"],
                        bin=r["b"], n=r["n"])
            for grouped in _by_harm(removed, "platform_id", "b")
            for r in grouped.annotate(n=Count("pk", distinct=True)).order_by()]


def bank_rows(start: dt.datetime, end: dt.datetime, month: dt.date) -> list[BankMonth]:
    return [BankMonth(month=month, **r) for r in (
        Sighting.objects.filter(first_seen__gte=start, first_seen__lt=end).values("bank_name")
        .annotate(matches=Count("pk"),
                  confirmed=Count("pk", filter=Q(status__in=[SightingStatus.CONFIRMED,
                                                             SightingStatus.REMOVED])),
                  rejected=Count("pk", filter=Q(status=SightingStatus.REJECTED))).order_by())]


def _week_of(start: dt.datetime, end: dt.datetime) -> Any:
    """The Monday of each record's ISO week in the center's time zone, as a CASE over the
    few week boundaries inside [start, end) (at most six for a month): plain comparisons that
    the index serves, where a per-row time zone conversion runs as a Python function on
    SQLite (16 times slower at 20,000 records)."""
    tz = timezone.get_current_timezone()
    local = timezone.localtime(start, tz).date()
    monday = local - dt.timedelta(days=local.weekday())
    whens = []
    while True:
        nxt = monday + dt.timedelta(days=7)
        boundary = dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
        if boundary >= end:
            break
        whens.append(When(at__lt=boundary, then=Value(monday)))
        monday = nxt
    last = Value(monday, output_field=DateField())
    return When_(*whens, default=last, output_field=DateField()) if whens else last


def _exposure_grouped(start: dt.datetime, end: dt.datetime) -> QuerySet[Any]:
    """Unblurred views and their counted seconds (`erasure.exposure.counted_seconds`: the
    reported time, or the default where none came) per reviewer and ISO week (its Monday in
    the center's time zone) of [start, end)."""
    return (UnblurRecord.objects.filter(at__gte=start, at__lt=end).annotate(wk=_week_of(start, end))
            .values("actor_id", "wk")
            .annotate(views=Count("pk"), seconds=Sum(counted_seconds())).order_by())


def exposure_rows(start: dt.datetime, end: dt.datetime, month: dt.date) -> list[ExposureMonth]:
    return [ExposureMonth(month=month, actor_id=r["actor_id"], week=r["wk"], views=r["views"],
                          seconds=r["seconds"] or 0)
            for r in _exposure_grouped(start, end)]


class LocalHour(Func):
    """SQLite: the hour of the day of a datetime column at a fixed offset from UTC, by
    strftime with the offset as a modifier (Django's ExtractHour converts each row in a
    Python function there: seconds for a month of contacts at 100,000 cases)."""

    output_field = IntegerField()
    arity = 1

    def __init__(self, expression: Any, offset_minutes: int) -> None:
        super().__init__(expression)
        self.offset_minutes = int(offset_minutes)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # an int of ours in the template, no user input; '%%%%H' is '%%H' in the SQL, which
        # the SQLite backend turns into '%H' (it substitutes its parameters with %)
        return self.as_sql(
            compiler, connection, template="CAST(strftime('%%%%H', %(expressions)s, "
            f"'{self.offset_minutes:+d} minutes') AS INTEGER)", **extra)


def local_hour(column: str, start: dt.datetime, end: dt.datetime) -> Any:
    """The hour of the day of `column` in the center's time zone for rows in [start, end):
    PostgreSQL converts natively (AT TIME ZONE); SQLite adds the zone's offset when it is
    the same over the range (Asia/Seoul has no daylight saving time) and otherwise falls
    back to Django's per-row conversion."""
    tz = timezone.get_current_timezone()
    first = start.astimezone(tz).utcoffset()
    last = (end - dt.timedelta(microseconds=1)).astimezone(tz).utcoffset()
    if connection.vendor == "sqlite" and first is not None and first == last:
        return LocalHour(column, int(first.total_seconds() // 60))
    return ExtractHour(column, tzinfo=tz)


def counseling_rows(start: dt.datetime, end: dt.datetime,
                    month: dt.date) -> list[CounselingMonth]:
    """Contacts of [start, end) by channel and local hour, and cases opened in it, per age
    group and harm type (every contact or case once under `ALL_HARMS`)."""
    contacts = (Contact.objects.filter(started_at__gte=start, started_at__lt=end)
                .annotate(hr=local_hour("started_at", start, end)))
    rows = [CounselingMonth(month=month, measure=CounselingMeasure.CONTACTS,
                            channel=r["channel"], hour=r["hr"], age_group=r["age"],
                            harm_type=r["harm"], n=r["n"])
            for grouped in _by_harm(contacts, "channel", "hr")
            for r in grouped.annotate(n=Count("pk", distinct=True)).order_by()]
    cases = Case.objects.filter(created_at__gte=start, created_at__lt=end)
    rows += [CounselingMonth(month=month, measure=CounselingMeasure.CASES,
                             age_group=r["age"], harm_type=r["harm"], n=r["n"])
             for grouped in _by_harm(cases, case="")
             for r in grouped.annotate(n=Count("pk", distinct=True)).order_by()]
    return rows


def month_rows(start: dt.datetime, end: dt.datetime, month: dt.date) -> MonthRows:
    """Every summary row of [start, end), labelled `month`, by aggregate queries."""
    return MonthRows(platforms=platform_rows(start, end, month),
                     durations=removal_bins(start, end, month)
                     + first_notice_bins(start, end, month)
                     + removal_route_bins(start, end, month),
                     routes=route_rows(start, end, month),
                     banks=bank_rows(start, end, month),
                     exposure=exposure_rows(start, end, month),
                     counseling=counseling_rows(start, end, month))


def first_notices(start: dt.datetime, end: dt.datetime) -> QuerySet[TakedownRequest]:
    """The first notice sent for each case opened in [start, end): found from the period's
    cases (the intake index, then each case's notices), not by a subquery per notice."""
    from django.db.models import OuterRef, Subquery

    earliest = (TakedownRequest.objects.filter(case_id=OuterRef("pk"), sent_at__isnull=False)
                .order_by("sent_at", "pk").values("pk")[:1])
    firsts = (Case.objects.filter(created_at__gte=start, created_at__lt=end)
              .annotate(first=Subquery(earliest)).filter(first__isnull=False).values("first"))
    return TakedownRequest.objects.filter(pk__in=firsts)


def first_notice_bins(start: dt.datetime, end: dt.datetime, month: dt.date) -> list[DurationBin]:
    """Intake to the first notice of each case opened in [start, end), by the channel of
    the platform the first notice went to."""

    bin_expr, tenths = duration_bin(hours_between("sent_at", "case__created_at"))
    first = (first_notices(start, end).annotate(route=route_expression(), _t=tenths)
             .annotate(b=bin_expr))
    out = []
    for grouped in _by_harm(first, "route", "platform_id", "b"):
        for r in grouped.annotate(n=Count("pk", distinct=True)).order_by():
            out.append(DurationBin(
                month=month, measure=DurationMeasure.FIRST_NOTICE,
                grp=r["route"], platform_id=r["platform_id"], age_group=r["age"],
                harm_type=r["harm"], bin=r["b"], n=r["n"]))
    return out


def removal_route_bins(start: dt.datetime, end: dt.datetime,
                       month: dt.date) -> list[DurationBin]:
    """Notice to removal of the notices sent in [start, end), by the notice's route."""
    bin_expr, tenths = duration_bin(hours_between("closed_at", "sent_at"))
    removed = (TakedownRequest.objects.filter(sent_at__gte=start, sent_at__lt=end,
                                              state=TakedownState.REMOVED,
                                              closed_at__isnull=False)
               .annotate(route=route_expression(), _t=tenths).annotate(b=bin_expr))
    return [DurationBin(month=month, measure=DurationMeasure.REMOVAL_ROUTE, grp=r["route"],
                        platform_id=r["platform_id"], age_group=r["age"], harm_type=r["harm"],
                        bin=r["b"], n=r["n"])
            for grouped in _by_harm(removed, "route", "platform_id", "b")
            for r in grouped.annotate(n=Count("pk", distinct=True)).order_by()]


def route_rows(start: dt.datetime, end: dt.datetime, month: dt.date,
               s: Slice | None = None) -> list[RouteMonth]:
    """The notices sent in [start, end) and the first notices of the cases opened in it, by
    route, platform, age group and harm type (`s`: only that slice's rows)."""

    def groupings(qs: QuerySet[Any]) -> Iterator[QuerySet[Any]]:
        return (_by_harm(qs, "route", "platform_id") if s is None
                else _in_slice(qs, s, "route", "platform_id"))

    out: list[RouteMonth] = []
    sent = (TakedownRequest.objects.filter(sent_at__gte=start, sent_at__lt=end)
            .annotate(route=route_expression(), _d=hours_between("closed_at", "sent_at")))
    for grouped in groupings(sent):
        for r in grouped.annotate(**_removal_counts()).order_by():
            out.append(RouteMonth(month=month, measure=DurationMeasure.REMOVAL,
                                  route=r["route"], platform_id=r["platform_id"],
                                  age_group=r["age"] or "", harm_type=r["harm"] or "",
                                  n=r["sent"], removed=r["removed"],
                                  **{f"within_{h}": r[f"within_{h}"] for h in WITHIN_HOURS}))
    first = (first_notices(start, end)
             .annotate(route=route_expression(), _d=hours_between("sent_at", "case__created_at")))
    within = {f"within_{h}": Count("pk", filter=Q(_d__lte=h), distinct=True)
              for h in WITHIN_HOURS}
    for grouped in groupings(first):
        for r in grouped.annotate(n=Count("pk", distinct=True), **within).order_by():
            out.append(RouteMonth(month=month, measure=DurationMeasure.FIRST_NOTICE,
                                  route=r["route"], platform_id=r["platform_id"],
                                  age_group=r["age"] or "", harm_type=r["harm"] or "",
                                  n=r["n"],
                                  **{f"within_{h}": r[f"within_{h}"] for h in WITHIN_HOURS}))
    return out


def build_month(month: dt.date) -> None:
    """(Re)build one closed month's rows in one transaction, under a lock on its marker so
    two builders do not write the month twice.

    The marker is taken (created if need be) before anything is written: a second builder
    of a month nobody has built waits on the marker's unique month until the first commits,
    then deletes and rewrites what the first wrote instead of adding to it. Readers see the
    marker only with the rows (one transaction); `built_at` is renewed on every build."""
    start, end = bounds(month)
    if end > timezone.now():
        raise ValueError(f"{month:%Y-%m} is not over: the open month is computed live")
    with transaction.atomic():
        marker, _created = SummarizedMonth.objects.select_for_update().get_or_create(
            month=month)
        _delete(month)
        rows = month_rows(start, end, month)
        PlatformMonth.objects.bulk_create(rows.platforms, batch_size=1000)
        DurationBin.objects.bulk_create(rows.durations, batch_size=1000)
        BankMonth.objects.bulk_create(rows.banks)
        ExposureMonth.objects.bulk_create(rows.exposure)
        CounselingMonth.objects.bulk_create(rows.counseling, batch_size=1000)
        RouteMonth.objects.bulk_create(rows.routes, batch_size=1000)
        marker.save(update_fields=["built_at"])


def _delete(month: dt.date) -> None:
    for model in SUMMARY_ROWS:
        model.objects.filter(month=month).delete()  # type: ignore[attr-defined]


_suspended = threading.local()


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Bulk writers (the demo generator) switch the per-row invalidation off and call
    `rebuild_all` afterwards: one rebuild instead of a query per row."""
    _suspended.on = True
    try:
        yield
    finally:
        _suspended.on = False


def invalidate(moments: Iterable[dt.datetime | None]) -> None:
    """Drop the summary of every closed month one of `moments` falls in (the worker, queued
    by the next reader, or the periodic task rebuilds it). Runs inside the writer's
    transaction: the summary and its source change together."""
    if getattr(_suspended, "on", False):
        return
    months = {month_start(m) for m in moments if m is not None}
    closed = [m for m in months if is_closed(m)]
    if not closed:
        return
    if SummarizedMonth.objects.filter(month__in=closed).delete()[0]:
        for m in closed:
            _delete(m)
    covering = Q()
    for m in closed:
        lo, _hi = bounds(m)
        covering |= Q(start__lte=lo, end__gt=lo)
    PeriodTables.objects.filter(covering).delete()


def ensure(months: Sequence[dt.date]) -> list[dt.date]:
    """Build the closed months among `months` that are not built yet; returns them."""
    return _ensure(months)[0]


def _ensure(months: Sequence[dt.date]) -> tuple[list[dt.date], tuple[Any, ...]]:
    """`ensure`, and the built months' versions (marker id and build time): a reader's key
    to what it keeps of those months (a rebuilt or dropped month gets a new marker or a new
    build time)."""
    missing, built = built_versions(months)
    for m in missing:
        build_month(m)
    if missing:
        _again, built = built_versions(months)
    return missing, built


def rebuild_all() -> int:
    """Rebuild every closed month from the first source row on (the periodic task; after bulk
    writes that send no signals)."""
    firsts = [d for d in (
        Case.objects.order_by("created_at").values_list("created_at", flat=True).first(),
        Sighting.objects.order_by("first_seen").values_list("first_seen", flat=True).first(),
        TakedownRequest.objects.filter(sent_at__isnull=False).order_by("sent_at")
        .values_list("sent_at", flat=True).first(),
        UnblurRecord.objects.order_by("at").values_list("at", flat=True).first(),
    ) if d is not None]
    _analyze(SOURCES)
    with transaction.atomic():
        SummarizedMonth.objects.all().delete()
        for model in (*SUMMARY_ROWS, PeriodTables):
            model.objects.all().delete()  # type: ignore[attr-defined]
    if not firsts:
        return 0
    months = [m for m in months_between(month_start(min(firsts)),
                                        month_start(timezone.now())) if is_closed(m)]
    for m in months:
        build_month(m)
    _analyze(SUMMARIES)
    return len(months)


#: the tables the summary is computed from, and its own
SOURCES = (Case, CaseHarm, Person, Contact, Sighting, TakedownRequest, TakedownItem,
           UnblurRecord)
#: a month's rows (deleted and written together), and every summary table
SUMMARY_ROWS = (PlatformMonth, DurationBin, BankMonth, ExposureMonth, CounselingMonth,
                RouteMonth)
SUMMARIES = (SummarizedMonth, *SUMMARY_ROWS)


def _analyze(models: Iterable[Any]) -> None:
    """PostgreSQL: fresh planner statistics for `models`' tables. `rebuild_all` runs after
    bulk writes (the generator, an import, the night's rebuild of every month): until
    autovacuum comes by (never, where it is off) the planner works from the sizes before the
    writes, and it then hashed every notice ever sent to find the open month's first notices
    (0.4 s of the dashboard at 100,000 cases instead of 10 ms)."""
    if connection.vendor != "postgresql":
        return  # SQLite plans without statistics; ANALYZE there would change its plans
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f'ANALYZE "{model._meta.db_table}"')


def first_month() -> dt.date | None:
    """The first month with a sighting (hash-bank health counts all time)."""
    first = Sighting.objects.order_by("first_seen").values_list("first_seen", flat=True).first()
    return month_start(first) if first else None


# ---------------------------------------------------------------------------------------------
# Reading: cached months plus live ranges


@dataclass(slots=True)
class Plan:
    """How a period is read: closed, built months from the summary, the rest live."""

    cached: list[dt.date]
    live: list[tuple[dt.datetime, dt.datetime]]
    #: results already read for this plan (the funnel, the removal times and the scorecard
    #: share one read of the counts and of the quantiles)
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    #: the cached months' versions (`_ensure`); None: not known, nothing kept is read
    versions: tuple[Any, ...] | None = None


def built_versions(months: Sequence[dt.date]) -> tuple[list[dt.date], tuple[Any, ...]]:
    """The closed months among `months` that have no summary yet, and the built ones'
    versions (marker id and build time)."""
    closed = [m for m in months if is_closed(m)]
    built = tuple(sorted(SummarizedMonth.objects.filter(month__in=closed)
                         .values_list("month", "pk", "built_at")))
    have = {m for m, _pk, _at in built}
    return [m for m in closed if m not in have], built


def plan(start: dt.datetime, end: dt.datetime, *, build: bool = False) -> Plan:
    """Whole closed months inside [start, end) come from the summary; the open month, partial
    months at the edges and closed months not built yet (a change dropped them, or the month
    has just ended) are computed live, the same numbers by construction.

    A missing month is not built on the read path (seconds at 100,000 cases, on the page of
    whoever came first): the build is handed to the worker (`reports.tasks.build_months`)
    and until it ran the month is read live. `build=True` (reports written to a file, where
    the writer waits anyway and will read more periods) builds them first."""
    first = month_start(start)
    months = list(months_between(first, month_start(end) if end > start else first))
    if month_start(end) not in months and bounds(month_start(end))[0] < end:
        months.append(month_start(end))
    cached: list[dt.date] = []
    live: list[tuple[dt.datetime, dt.datetime]] = []
    whole = [m for m in months if bounds(m)[0] >= start and bounds(m)[1] <= end
             and is_closed(m)]
    if build:
        _built, versions = _ensure(whole)
        missing: list[dt.date] = []
    else:
        missing, versions = built_versions(whole)
        if missing:
            from anshim.reports.tasks import queue_month_builds

            queue_month_builds(missing)
    for m in months:
        lo, hi = bounds(m)
        if m in whole and m not in missing:
            cached.append(m)
        else:
            live.append((max(lo, start), min(hi, end)))
    return Plan(cached, [r for r in live if r[0] < r[1]], versions=versions)


def _sliced(qs: QuerySet[Any], s: Slice, platform: bool = True) -> QuerySet[Any]:
    qs = qs.filter(harm_type=s.harm_type or ALL_HARMS, age_group=s.age_group or ALL_AGES)
    if platform and s.platform_id is not None:
        qs = qs.filter(platform_id=s.platform_id)
    return qs


def platform_counts(p: Plan, s: Slice) -> dict[Any, dict[str, int]]:
    """The summed counts per platform id over the plan."""
    key = ("platform_counts", s)
    if key in p.memo:
        return p.memo[key]  # type: ignore[no-any-return]
    out: dict[Any, dict[str, int]] = p.memo.setdefault(key, {})

    def add(platform_id: Any, values: dict[str, Any]) -> None:
        slot = out.setdefault(platform_id, dict.fromkeys(COUNT_FIELDS, 0))
        for name in COUNT_FIELDS:
            slot[name] += values[name] or 0

    if p.cached:
        for r in (_sliced(PlatformMonth.objects.filter(month__in=p.cached), s)
                  .values("platform_id").annotate(**{f"t_{n}": Sum(n) for n in COUNT_FIELDS})
                  .order_by()):
            add(r["platform_id"], {n: r[f"t_{n}"] for n in COUNT_FIELDS})
    for _month, row in _live_platforms(p, s):
        add(row.platform_id, {n: getattr(row, n) for n in COUNT_FIELDS})
    return out


ROUTE_FIELDS = ("n", "removed", *[f"within_{h}" for h in WITHIN_HOURS])


def route_counts(p: Plan, s: Slice) -> dict[tuple[str, str], dict[str, int]]:
    """The summed counts per (measure, route) over the plan: cached months from
    `RouteMonth`, the live ranges computed for the slice only."""
    key = ("route_counts", s)
    if key in p.memo:
        return p.memo[key]  # type: ignore[no-any-return]
    out: dict[tuple[str, str], dict[str, int]] = p.memo.setdefault(key, {})

    def add(measure: str, route: str, values: dict[str, Any]) -> None:
        slot = out.setdefault((measure, route), dict.fromkeys(ROUTE_FIELDS, 0))
        for name in ROUTE_FIELDS:
            slot[name] += values[name] or 0

    if p.cached:
        # the measure named: the slice index leads with it
        for r in (_sliced(RouteMonth.objects.filter(
                measure__in=[DurationMeasure.REMOVAL, DurationMeasure.FIRST_NOTICE],
                month__in=p.cached), s)
                  .values("measure", "route")
                  .annotate(**{f"t_{n}": Sum(n) for n in ROUTE_FIELDS}).order_by()):
            add(r["measure"], r["route"], {n: r[f"t_{n}"] for n in ROUTE_FIELDS})
    for lo, hi in p.live:
        for row in route_rows(lo, hi, month_start(lo), s):
            add(row.measure, row.route, {n: getattr(row, n) for n in ROUTE_FIELDS})
    return out


def month_rows_platforms(lo: dt.datetime, hi: dt.datetime, s: Slice) -> list[PlatformMonth]:
    """The slice's rows of [lo, hi), computed live (only that slice's grouping)."""
    return platform_rows(lo, hi, month_start(lo), s)


def _live_platforms(p: Plan, s: Slice) -> list[tuple[dt.date, PlatformMonth]]:
    """The live ranges' rows of the slice, once per plan (the totals and the monthly trend
    read the same rows)."""
    key = ("live_platforms", s)
    if key not in p.memo:
        p.memo[key] = [(month_start(lo), row) for lo, hi in p.live
                       for row in month_rows_platforms(lo, hi, s)]
    return p.memo[key]  # type: ignore[no-any-return]


def monthly_platform_counts(p: Plan, s: Slice) -> dict[tuple[dt.date, Any], dict[str, int]]:
    """The counts per (month, platform id): the scorecard's trend."""
    out: dict[tuple[dt.date, Any], dict[str, int]] = {}
    if p.cached:
        for r in (_sliced(PlatformMonth.objects.filter(month__in=p.cached), s)
                  .values("month", "platform_id")
                  .annotate(**{f"t_{n}": Sum(n) for n in COUNT_FIELDS}).order_by()):
            out[(r["month"], r["platform_id"])] = {n: r[f"t_{n}"] or 0 for n in COUNT_FIELDS}
    for month, row in _live_platforms(p, s):
        slot = out.setdefault((month, row.platform_id), dict.fromkeys(COUNT_FIELDS, 0))
        for n in COUNT_FIELDS:
            slot[n] += getattr(row, n)
    return out


def quantiles(p: Plan, s: Slice, measure: str,
              qs: Sequence[float]) -> dict[str, list[float | None]]:
    """Nearest-rank quantiles per group of the duration histograms over the plan: the bins of
    the cached months (summed in SQL, kept per slice until one of those months is rebuilt)
    and of the live ranges (one query) are added up per bin, and each quantile is the lower
    edge of the first bin whose running sum reaches its rank. Every measure is read at once
    (the dashboard shows both)."""
    key = ("quantiles", s, measure, tuple(qs))
    if key not in p.memo:
        hist = _histograms(p, s)
        for m in DurationMeasure.values:
            p.memo[("quantiles", s, m, tuple(qs))] = nearest_rank(hist.get(m, {}), qs)
    return p.memo[key]  # type: ignore[no-any-return]


Histogram = dict[str, dict[str, dict[int, int]]]
"""measure -> group -> bin -> count"""


def nearest_rank(groups: dict[str, dict[int, int]],
                 qs: Sequence[float]) -> dict[str, list[float | None]]:
    """Per group, the lower edge (hours) of the bin holding each quantile's nearest rank:
    the first bin whose running sum reaches q x the total."""
    out: dict[str, list[float | None]] = {}
    for grp, bins in groups.items():
        tot = sum(bins.values())
        if not tot:
            continue
        slot: list[float | None] = [None] * len(qs)
        cum = 0
        for b in sorted(bins):
            cum += bins[b]
            for i, q in enumerate(qs):
                if slot[i] is None and cum >= q * tot:
                    slot[i] = b / 10.0
        out[grp] = slot
    return out


def _histograms(p: Plan, s: Slice) -> Histogram:
    """The plan's histograms of every measure for the slice: the cached months' part from
    the process's cache when those months are unchanged (the version key), else summed in
    SQL and kept; the live ranges' part from one query."""
    measures = DurationMeasure.values
    kept = _cached_bins(p, s, measures) if p.cached else {}
    # the kept groups are shared, not copied; a group the live ranges add to is copied
    # first, so what the cache holds is never changed
    hist: Histogram = {m: dict(kept.get(m, {})) for m in measures}
    copied: set[tuple[str, str]] = set()

    def add(rows: Iterable[tuple[str, Any, int, int]]) -> None:
        for measure, grp, b, n in rows:
            g = str(grp)
            groups = hist[measure]
            if (measure, g) not in copied:
                groups[g] = dict(groups.get(g, {}))
                copied.add((measure, g))
            bins = groups[g]
            bins[int(b)] = bins.get(int(b), 0) + int(n)

    parts = [part for lo, hi in p.live for m in measures for part in _live_bins(lo, hi, s, m)]
    if parts:
        # the parts are Django-compiled querysets with their own placeholders; nothing here
        # is user input
        sql = " UNION ALL ".join(f"SELECT * FROM ({q}) AS p{i}"  # noqa: S608
                                 for i, (q, _p) in enumerate(parts))
        with connection.cursor() as cursor:
            cursor.execute(sql, [x for _q, ps in parts for x in ps])
            add(cursor.fetchall())
    return hist


def _cached_bins(p: Plan, s: Slice, measures: Sequence[str]) -> Histogram:
    """The cached months' histograms of the slice summed over the months, kept in the
    process's cache under the months' versions: a month rebuilt or dropped since (a late
    removal, the nightly rebuild) changes the key, so what is kept is always what the rows
    say. Kept merged (measure -> group -> bin), not as rows: the page adds only the live
    ranges to it."""
    from django.core.cache import cache

    identity = (tuple(p.cached), p.versions, s, tuple(measures))
    key = f"reports:histograms:{hashlib.sha256(repr(identity).encode()).hexdigest()}"
    if p.versions is not None:
        kept = cache.get(key)
        # the full identity is kept beside the rows: a key can never stand for other months
        if kept is not None and kept[0] == identity:
            return kept[1]  # type: ignore[no-any-return]
    hist: Histogram = {}
    for measure, grp, b, n in (
            _sliced(DurationBin.objects.filter(month__in=p.cached, measure__in=measures), s)
            .values_list("measure", "grp", "bin").annotate(total=Sum("n")).order_by()):
        bins = hist.setdefault(measure, {}).setdefault(str(grp), {})
        bins[int(b)] = bins.get(int(b), 0) + int(n)
    if p.versions is not None:
        cache.set(key, (identity, hist), 24 * 3600)
    return hist


def _live_bins(lo: dt.datetime, hi: dt.datetime, s: Slice,
               measure: str) -> list[tuple[str, Sequence[Any]]]:
    """The live histogram of [lo, hi) as SQL (the same expressions `month_rows` stores)."""
    if measure in (DurationMeasure.REMOVAL, DurationMeasure.REMOVAL_ROUTE):
        bin_expr, tenths = duration_bin(hours_between("closed_at", "sent_at"))
        qs: QuerySet[Any] = TakedownRequest.objects.filter(
            sent_at__gte=lo, sent_at__lt=hi, state=TakedownState.REMOVED,
            closed_at__isnull=False)
        grp: Any = (Cast("platform_id", output_field=CharField())
                    if measure == DurationMeasure.REMOVAL else route_expression())
    else:
        bin_expr, tenths = duration_bin(hours_between("sent_at", "case__created_at"))
        qs = first_notices(lo, hi)
        grp = route_expression()
    grouped = (s.case_rows(qs).annotate(_t=tenths).annotate(b=bin_expr)
               .values(measure=Value(measure, output_field=CharField()), grp=grp, bin=F("b"))
               .annotate(n=Count("pk", distinct=True)).order_by())
    return [grouped.query.sql_with_params()]


def bank_counts() -> dict[str, dict[str, int]]:
    """Sightings per bank since the first one: closed months from the summary, the rest
    live."""
    first = first_month()
    if first is None:
        return {}
    p = plan(bounds(first)[0], timezone.now())
    out: dict[str, dict[str, int]] = {}

    def add(name: str, values: dict[str, Any]) -> None:
        slot = out.setdefault(name, {"matches": 0, "confirmed": 0, "rejected": 0})
        for k in slot:
            slot[k] += values[k] or 0

    if p.cached:
        for r in (BankMonth.objects.filter(month__in=p.cached).values("bank_name")
                  .annotate(t_matches=Sum("matches"), t_confirmed=Sum("confirmed"),
                            t_rejected=Sum("rejected")).order_by()):
            row: dict[str, Any] = dict(r)
            add(row["bank_name"], {k: row[f"t_{k}"] for k in ("matches", "confirmed",
                                                              "rejected")})
    for lo, hi in p.live:
        for b in month_rows_banks(lo, hi):
            add(b.bank_name, {"matches": b.matches, "confirmed": b.confirmed,
                              "rejected": b.rejected})
    return out


def month_rows_banks(lo: dt.datetime, hi: dt.datetime) -> list[BankMonth]:
    return bank_rows(lo, hi, month_start(lo))


@dataclass(frozen=True, slots=True)
class Exposure:
    """Unblurred views and the seconds they count for (reviewer exposure)."""

    views: int = 0
    seconds: int = 0

    def __add__(self, other: Exposure) -> Exposure:
        return Exposure(self.views + other.views, self.seconds + other.seconds)

    @property
    def minutes(self) -> float:
        return self.seconds / 60


def exposure_weeks(p: Plan) -> dict[tuple[Any, dt.date], Exposure]:
    """Views and seconds per (reviewer id, ISO week's Monday) over the plan: a week split
    between two months (two summary rows, or a cached month and a live range) is added up."""
    key = ("exposure_weeks",)
    if key in p.memo:
        return p.memo[key]  # type: ignore[no-any-return]
    out: dict[tuple[Any, dt.date], Exposure] = p.memo.setdefault(key, {})

    def add(actor_id: Any, week: Any, views: Any, seconds: Any) -> None:
        slot = (actor_id, week)
        out[slot] = out.get(slot, Exposure()) + Exposure(int(views or 0), int(seconds or 0))

    if p.cached:
        for r in (ExposureMonth.objects.filter(month__in=p.cached).values("actor_id", "week")
                  .annotate(v=Sum("views"), s=Sum("seconds")).order_by()):
            add(r["actor_id"], r["week"], r["v"], r["s"])
    for lo, hi in p.live:
        for r in _exposure_grouped(lo, hi):
            add(r["actor_id"], r["wk"], r["views"], r["seconds"])
    return out


def exposure_counts(p: Plan) -> dict[Any, Exposure]:
    """Views and seconds per reviewer id over the plan."""
    out: dict[Any, Exposure] = {}
    for (actor_id, _week), e in exposure_weeks(p).items():
        out[actor_id] = out.get(actor_id, Exposure()) + e
    return out


# ---------------------------------------------------------------------------------------------
# The counseling team's view


@dataclass(slots=True)
class CounselingCounts:
    """Over a plan and a slice: contacts per (channel, local hour), and the cases opened per
    harm type and per age group. The slice narrows the cases; a harm-type (age-group) slice
    keeps only that harm type's (age group's) row of its own table."""

    contacts: dict[tuple[str, int], int] = field(default_factory=dict)
    by_harm: dict[str, int] = field(default_factory=dict)
    by_age: dict[str, int] = field(default_factory=dict)

    def add(self, table: dict[Any, int], key: Any, n: Any) -> None:
        table[key] = table.get(key, 0) + int(n or 0)


def _counseling_slice(qs: QuerySet[Any], s: Slice, case_ref: str,
                      prefix: str) -> QuerySet[Any]:
    """`qs` narrowed to the cases of the slice (`case_ref`: the column holding the case id,
    `prefix`: the path to the case); EXISTS, so each row stays once."""
    if s.age_group:
        qs = qs.filter(**{f"{prefix}person__age_group": s.age_group})
    if s.harm_type:
        qs = qs.filter(Exists(CaseHarm.objects.filter(case_id=OuterRef(case_ref),
                                                      harm_type=s.harm_type)))
    if s.platform_id is not None:
        qs = qs.filter(Exists(Sighting.objects.filter(case_id=OuterRef(case_ref),
                                                      platform_id=s.platform_id)))
    return qs


def _live_counseling(lo: dt.datetime, hi: dt.datetime, s: Slice,
                     out: CounselingCounts) -> None:
    contacts = _counseling_slice(
        Contact.objects.filter(started_at__gte=lo, started_at__lt=hi), s, "case_id", "case__")
    for r in (contacts.annotate(hr=local_hour("started_at", lo, hi)).values("channel", "hr")
              .annotate(n=Count("pk")).order_by()):
        out.add(out.contacts, (r["channel"], r["hr"]), r["n"])
    harms = CaseHarm.objects.filter(case__created_at__gte=lo, case__created_at__lt=hi)
    if s.harm_type:
        harms = harms.filter(harm_type=s.harm_type)
    harms = _counseling_slice(harms, Slice(s.platform_id, s.age_group), "case_id", "case__")
    for r in harms.values("harm_type").annotate(n=Count("case_id", distinct=True)).order_by():
        out.add(out.by_harm, r["harm_type"], r["n"])
    cases = _counseling_slice(Case.objects.filter(created_at__gte=lo, created_at__lt=hi), s,
                              "pk", "")
    for r in (cases.annotate(age=Coalesce("person__age_group", Value(""))).values("age")
              .annotate(n=Count("pk")).order_by()):
        out.add(out.by_age, r["age"], r["n"])


def counseling_counts(p: Plan, s: Slice) -> CounselingCounts:
    """The counseling view's counts: closed months from `CounselingMonth` (keyed by age
    group and harm type), the rest live. The rows have no platform: with a platform in the
    slice every month is read from the source rows (a narrower, rarer view)."""
    key = ("counseling", s)
    if key in p.memo:
        return p.memo[key]  # type: ignore[no-any-return]
    out = CounselingCounts()
    ranges = list(p.live)
    if s.platform_id is not None:
        ranges += [bounds(m) for m in p.cached]
    elif p.cached:
        rows = CounselingMonth.objects.filter(month__in=p.cached)
        age, harm = s.age_group or ALL_AGES, s.harm_type or ALL_HARMS
        for channel, hour, n in (rows.filter(measure=CounselingMeasure.CONTACTS,
                                             age_group=age, harm_type=harm)
                                 .values_list("channel", "hour").annotate(t=Sum("n"))
                                 .order_by()):
            out.add(out.contacts, (channel, hour), n)
        harms = rows.filter(measure=CounselingMeasure.CASES, age_group=age).exclude(
            harm_type=ALL_HARMS)
        if s.harm_type:
            harms = harms.filter(harm_type=s.harm_type)
        for h, n in harms.values_list("harm_type").annotate(t=Sum("n")).order_by():
            out.add(out.by_harm, h, n)
        ages = rows.filter(measure=CounselingMeasure.CASES, harm_type=harm).exclude(
            age_group=ALL_AGES)
        if s.age_group:
            ages = ages.filter(age_group=s.age_group)
        for a, n in ages.values_list("age_group").annotate(t=Sum("n")).order_by():
            out.add(out.by_age, a, n)
    for lo, hi in ranges:
        _live_counseling(lo, hi, s, out)
    p.memo[key] = out
    return out
