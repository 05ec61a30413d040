"""Thin views: the figures come from `figures`, the charts from `charts`."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from anshim.reports import charts, figures, links, public
from anshim.reports import render as report_render
from anshim.reports.forms import DashboardFilterForm, filters
from anshim.security.decorators import staff_required
from anshim.security.policy import Action


def _year(request: HttpRequest) -> int:
    """?year=YYYY, clamped to a sensible range; anything else is this year (never a 500)."""
    this = timezone.localdate().year
    try:
        year = int(request.GET.get("year", this))
    except ValueError:
        return this
    return year if 2000 <= year <= this else this


def _period(request: HttpRequest) -> figures.Period:
    """This month and the 11 before it (whole months: the closed ones come from the
    summary rows), or ?year=YYYY."""
    if "year" in request.GET:
        return figures.year_period(_year(request))
    return figures.last_months(12)


def _charted(tables: list[figures.Table]) -> list[tuple[figures.Table, dict[str, object]]]:
    return [(t, charts.bar_spec(t)) for t in tables]


@staff_required(Action.VIEW_DASHBOARDS)
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    form = DashboardFilterForm(request.GET or None)
    chosen = filters(form)
    tables = links.restrict(
        figures.dashboard_tables(chosen.period, chosen.slice, chosen.team), request.user)
    return render(request, "reports/dashboard.html", {
        "period": chosen.period, "charted": _charted(tables), "form": form,
        "filters": chosen, "year": _year(request), "show_links": True,
    })


def _report(request: HttpRequest, kind: str, period: figures.Period,
            context: dict[str, object]) -> HttpResponse:
    """A report page, or its download (?format=pdf|xlsx|json): the same tables as
    `anshim report` writes (figures.report_tables)."""
    tables = figures.report_tables(period)
    fmt = request.GET.get("format", "html")
    if fmt in report_render.FORMATS:
        body, content_type = report_render.render(fmt, period, tables, figures.NOT_RECORDED)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = (
            f'attachment; filename="anshim-{kind}-{period.label}.{fmt}"')
        return response
    return render(request, f"reports/{kind}.html", {
        "period": period, "charted": _charted(tables), "not_recorded": figures.NOT_RECORDED,
        **context})


@staff_required(Action.VIEW_DASHBOARDS)
@require_GET
def annual(request: HttpRequest) -> HttpResponse:
    period = figures.year_period(_year(request))
    return _report(request, "annual", period, {"year": period.label})


@staff_required(Action.VIEW_DASHBOARDS)
@require_GET
def monthly(request: HttpRequest) -> HttpResponse:
    """?month=YYYY-MM (default: the last month that is over); a bad month is said on the
    page, which shows the default instead (never a 500)."""
    error = ""
    text = (request.GET.get("month") or "").strip()
    try:
        period = figures.parse_month(text) if text else figures.last_closed_month()
    except figures.BadMonth as exc:
        error, period = str(exc), figures.last_closed_month()
        if request.GET.get("format") in report_render.FORMATS:
            return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    return _report(request, "monthly", period, {"month": period.label, "error": error})


def _public_tables(year: int) -> list[figures.Table]:
    period = figures.year_period(year)
    if not period.closed:
        return public.public_tables(period)
    # A closed year does not change: cache its protected tables.
    # (per language: row labels are translated when the table is built)
    key = f"reports:public:{year}:{translation.get_language()}"
    tables: list[figures.Table] | None = cache.get(key)
    if tables is None:
        tables = public.public_tables(period)
        cache.set(key, tables, 24 * 3600)
    return tables


def _public_pdf(year: int, tables: list[figures.Table]) -> bytes:
    """The public annual report: the protected tables as a PDF, kept like the tables (a
    closed year a day, the current one an hour: each costs a chart render per table)."""
    key = f"reports:public-pdf:{year}:{translation.get_language()}"
    body: bytes | None = cache.get(key)
    if body is None:
        body = report_render.to_pdf(figures.year_period(year), tables, (),
                                    title=_("Support center statistics"))
        cache.set(key, body, 24 * 3600 if figures.year_period(year).closed else 3600)
    return body


@require_GET
def statistics(request: HttpRequest) -> HttpResponse:
    year = _year(request)
    tables = _public_tables(year)
    if request.GET.get("format") == "json":
        return JsonResponse({"year": year, "tables": [t.as_json() for t in tables]})
    if request.GET.get("format") == "pdf":
        response = HttpResponse(_public_pdf(year, tables), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="anshim-statistics-{year}.pdf"'
        return response
    return render(request, "reports/statistics.html", {
        "year": year, "charted": _charted(tables),
        "years": list(range(timezone.localdate().year, timezone.localdate().year - 5, -1)),
    })
