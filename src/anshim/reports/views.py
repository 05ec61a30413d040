"""Thin views: the figures come from `figures`, the charts from `charts`."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone, translation
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


@staff_required(Action.VIEW_DASHBOARDS)
@require_GET
def annual(request: HttpRequest) -> HttpResponse:
    period = figures.year_period(_year(request))
    fmt = request.GET.get("format", "html")
    tables = figures.annual_tables(period)
    if fmt in report_render.FORMATS:
        body, content_type = report_render.render(fmt, period, tables, figures.NOT_RECORDED)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = (
            f'attachment; filename="anshim-annual-{period.label}.{fmt}"')
        return response
    return render(request, "reports/annual.html", {
        "period": period, "charted": _charted(tables), "not_recorded": figures.NOT_RECORDED,
        "year": period.label,
    })


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


@require_GET
def statistics(request: HttpRequest) -> HttpResponse:
    year = _year(request)
    tables = _public_tables(year)
    if request.GET.get("format") == "json":
        return JsonResponse({"year": year, "tables": [t.as_json() for t in tables]})
    return render(request, "reports/statistics.html", {
        "year": year, "charted": _charted(tables),
        "years": list(range(timezone.localdate().year, timezone.localdate().year - 5, -1)),
    })
