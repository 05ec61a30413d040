"""Staff pages of the prevention team. Thin: parse, ask the policy, call services.

Nobody sees an individual survey response here: survey pages show counts and estimates only;
answer sheets leave the center only as an audited export.
"""

from __future__ import annotations

from typing import Any

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db import models
from django.db.models import Count, Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from anshim.prevention import analysis, services, xlsform
from anshim.prevention.forms import (
    FIDELITY_LABELS,
    ClassSessionForm,
    DeclineForm,
    DesignForm,
    DisclosureForm,
    ExportForm,
    FacilitatorForm,
    ModuleForm,
    SchoolForm,
    ScoresForm,
    SessionPlanForm,
    SessionReportForm,
    TestForm,
    UploadForm,
    VersionUploadForm,
)
from anshim.prevention.models import (
    BookingRequest,
    BookingStatus,
    ClassSession,
    Facilitator,
    HelpRequest,
    KnowledgeTest,
    Module,
    ProgrammeSession,
    School,
    SessionStatus,
    Survey,
    SurveyVersion,
    Wave,
)
from anshim.security.decorators import staff_required
from anshim.security.policy import Action, can, require

PAGE_SIZE = 25


def _posted(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


def _page(request: HttpRequest, queryset: Any) -> Page:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _language() -> str:
    return (get_language() or "ko")[:2]


def _errors(form: Any, exc: services.PreventionError) -> None:
    form.add_error(None, exc.text)


# --- Start page -------------------------------------------------------------------------


@staff_required(Action.VIEW_PREVENTION)
def home(request: HttpRequest) -> HttpResponse:
    """The prevention officer's start page."""
    now = timezone.now()
    upcoming = list(ProgrammeSession.objects.filter(
        status=SessionStatus.SCHEDULED, starts_at__gte=now).select_related(
        "school", "module", "facilitator")[:10])
    pending = list(BookingRequest.objects.filter(status=BookingStatus.PENDING)
                   .select_related("module")[:10])
    pending_count = BookingRequest.objects.filter(status=BookingStatus.PENDING).count()
    surveys = list(Survey.objects.filter(versions__published_at__isnull=False).distinct()
                   .order_by("-created_at")[:5])
    rates = [(s, services.response_rates(s)) for s in surveys]
    open_classes = list(ClassSession.objects.filter(opens_at__lte=now, closes_at__gte=now)
                        .select_related("school", "version__survey"))
    counts = services.response_counts(open_classes)
    return render(request, "prevention/home.html", {
        "upcoming": upcoming, "pending": pending, "pending_count": pending_count,
        "rates": rates, "open_classes": [(c, counts.get(c.pk, 0)) for c in open_classes],
        "may_manage": can(request.user, Action.MANAGE_PREVENTION),
    })


# --- Schools, programmes, facilitators ----------------------------------------------------


def _record_list(request: HttpRequest, model: type[models.Model], template: str,
                 form_class: type,
                 title: str, **extra: Any) -> HttpResponse:
    form = form_class(_posted(request)) if can(request.user, Action.MANAGE_PREVENTION) else None
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        if form is not None and form.is_valid():
            obj = form.save(commit=False)
            services.save_record(request.user, obj, m2m=form.save_m2m, request=request)
            messages.success(request, _("Saved."))
            return redirect(request.path)
    return render(request, template, {"page": _page(request, extra.pop(
        "queryset", model._default_manager.all())), "form": form, "title": title, **extra})


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def schools(request: HttpRequest) -> HttpResponse:
    return _record_list(request, School, "prevention/schools.html", SchoolForm, _("Schools"))


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def modules(request: HttpRequest) -> HttpResponse:
    return _record_list(request, Module, "prevention/modules.html", ModuleForm,
                        _("Programme catalogue"))


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def facilitators(request: HttpRequest) -> HttpResponse:
    return _record_list(request, Facilitator, "prevention/facilitators.html", FacilitatorForm,
                        _("Facilitators"), queryset=Facilitator.objects.prefetch_related(
                            "modules").select_related("user"))


_EDITABLE: dict[str, tuple[type[models.Model], type]] = {
    "school": (School, SchoolForm), "module": (Module, ModuleForm),
    "facilitator": (Facilitator, FacilitatorForm),
}


@staff_required(Action.MANAGE_PREVENTION)
@require_http_methods(["GET", "POST"])
def edit_record(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    if kind not in _EDITABLE:
        raise Http404
    model, form_class = _EDITABLE[kind]
    obj: models.Model = get_object_or_404(model, pk=pk)
    form = form_class(_posted(request), instance=obj)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        services.save_record(request.user, saved, m2m=form.save_m2m, request=request)
        messages.success(request, _("Saved."))
        return redirect(f"prevention:{kind}s")
    return render(request, "prevention/edit.html", {"form": form, "obj": obj,
                                                     "back": reverse(f"prevention:{kind}s")})


# --- Bookings and sessions ----------------------------------------------------------------


@staff_required(Action.VIEW_PREVENTION)
def bookings(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", BookingStatus.PENDING)
    if status not in BookingStatus.values:
        status = BookingStatus.PENDING
    queryset = BookingRequest.objects.filter(status=status).select_related("module")
    return render(request, "prevention/bookings.html", {
        "page": _page(request, queryset), "status": status, "statuses": BookingStatus.choices})


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def booking(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(BookingRequest.objects.select_related("module", "school"), pk=pk)
    may_manage = can(request.user, Action.MANAGE_PREVENTION)
    school = item.school or School.objects.filter(name=item.school_name,
                                                  district=item.district).first()
    plan_form = SessionPlanForm(request.POST if request.POST.get("do") == "schedule" else None,
                                initial={"school": school, "module": item.module,
                                         "grade": (item.grades or [1])[0],
                                         "classes": item.class_count,
                                         "date": (item.preferred_dates or [None])[0]},
                                prefix="plan")
    decline_form = DeclineForm(request.POST if request.POST.get("do") == "decline" else None,
                               prefix="decline")
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        try:
            if request.POST.get("do") == "schedule" and plan_form.is_valid():
                d = plan_form.cleaned_data
                session = services.schedule_booking(request.user, item, services.SessionPlan(
                    school=d["school"], module=d["module"], facilitator=d["facilitator"],
                    starts_at=plan_form.starts_at(), grade=d["grade"], classes=d["classes"],
                    duration_minutes=d["duration_minutes"] or 0), request=request)
                messages.success(request, _("Session scheduled."))
                return redirect("prevention:session", session.pk)
            if request.POST.get("do") == "decline" and decline_form.is_valid():
                services.decline_booking(request.user, item, decline_form.cleaned_data["reason"],
                                         request=request)
                messages.success(request, _("Request declined."))
                return redirect("prevention:bookings")
        except services.PreventionError as exc:
            _errors(plan_form if request.POST.get("do") == "schedule" else decline_form, exc)
    return render(request, "prevention/booking.html", {
        "item": item, "plan_form": plan_form, "decline_form": decline_form,
        "may_manage": may_manage, "sessions": item.sessions.select_related(
            "module", "facilitator")})


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def sessions(request: HttpRequest) -> HttpResponse:
    form = SessionPlanForm(_posted(request), prefix="plan")
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        if form.is_valid():
            d = form.cleaned_data
            try:
                session = services.schedule_session(request.user, services.SessionPlan(
                    school=d["school"], module=d["module"], facilitator=d["facilitator"],
                    starts_at=form.starts_at(), grade=d["grade"], classes=d["classes"],
                    duration_minutes=d["duration_minutes"] or 0), request=request)
            except services.PreventionError as exc:
                _errors(form, exc)
            else:
                messages.success(request, _("Session scheduled."))
                return redirect("prevention:session", session.pk)
    when = request.GET.get("when", "upcoming")
    queryset = ProgrammeSession.objects.select_related("school", "module", "facilitator")
    now = timezone.now()
    if when == "past":
        queryset = queryset.filter(starts_at__lt=now).order_by("-starts_at")
    else:
        when = "upcoming"
        queryset = queryset.filter(starts_at__gte=now)
    return render(request, "prevention/sessions.html", {
        "page": _page(request, queryset), "form": form, "when": when,
        "may_manage": can(request.user, Action.MANAGE_PREVENTION)})


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def session(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(ProgrammeSession.objects.select_related(
        "school", "module", "facilitator", "booking").prefetch_related("attendance"), pk=pk)
    do = request.POST.get("do")
    report_form = SessionReportForm(request.POST if do == "report" else None, session=item,
                                    prefix="report")
    disclosure_form = DisclosureForm(request.POST if do == "disclosure" else None,
                                     prefix="disclosure")
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        try:
            if do == "report" and report_form.is_valid():
                services.report_session(request.user, item, services.SessionReport(
                    attendance=report_form.attendance(), fidelity=report_form.fidelity(),
                    satisfaction=report_form.satisfaction(),
                    expected_version=report_form.cleaned_data["version"]), request=request)
                messages.success(request, _("Session report saved."))
                return redirect("prevention:session", item.pk)
            if do == "disclosure" and disclosure_form.is_valid():
                d = disclosure_form.cleaned_data
                record = services.record_disclosure(
                    request.user, item, harm_type=d["harm_type"], wants_help=d["wants_help"],
                    contact_preference=d["contact_preference"],
                    contact_detail=d["contact_detail"], note=d["note"], request=request)
                messages.success(request, _("Disclosure recorded; the counselors have an intake.")
                                 if record.case_id else _("Disclosure recorded."))
                return redirect("prevention:session", item.pk)
            if do == "cancel":
                services.cancel_session(request.user, item, request=request)
                messages.success(request, _("Session cancelled."))
                return redirect("prevention:session", item.pk)
        except services.PreventionError as exc:
            _errors(report_form if do == "report" else disclosure_form, exc)
    total = sum(a.count for a in item.attendance.all())
    return render(request, "prevention/session.html", {
        "item": item, "report_form": report_form, "disclosure_form": disclosure_form,
        "fidelity_labels": FIDELITY_LABELS, "attendance_total": total,
        "disclosures": item.disclosure_records.count(),
        "routed": item.disclosure_records.filter(case__isnull=False).count(),
        "may_manage": can(request.user, Action.MANAGE_PREVENTION)})


# --- Knowledge tests ----------------------------------------------------------------------


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def tests(request: HttpRequest) -> HttpResponse:
    form = TestForm(_posted(request))
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        if form.is_valid():
            try:
                test = services.create_test(request.user, **form.cleaned_data, request=request)
            except services.PreventionError as exc:
                _errors(form, exc)
            else:
                return redirect("prevention:test", test.pk)
    queryset = KnowledgeTest.objects.select_related("module").annotate(
        n_scores=Count("scores")).order_by("-created_at", "id")
    return render(request, "prevention/tests.html", {
        "page": _page(request, queryset), "form": form,
        "may_manage": can(request.user, Action.MANAGE_PREVENTION)})


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def test(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(KnowledgeTest.objects.select_related("module"), pk=pk)
    form = ScoresForm(_posted(request), test=item)
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        if form.is_valid():
            d = form.cleaned_data
            try:
                lines = services.parse_score_lines(d["lines"], item.max_score)
                n = services.add_scores(request.user, item, wave=d["wave"],
                                        taken_on=d["taken_on"], lines=lines,
                                        session=d["session"], request=request)
            except services.PreventionError as exc:
                _errors(form, exc)
            else:
                messages.success(request, _("%(n)d scores saved.") % {"n": n})
                return redirect("prevention:test", item.pk)
    counts = dict(item.scores.values_list("wave").annotate(n=Count("id")))
    labels = dict(Wave.choices)
    return render(request, "prevention/test.html", {
        "item": item, "form": form,
        "comparisons": [(c, labels[c.before], labels[c.after])
                        for c in analysis.cached_test_results(item)],
        "counts": [(label, counts.get(value, 0)) for value, label in Wave.choices],
        "may_manage": can(request.user, Action.MANAGE_PREVENTION)})


# --- Surveys ------------------------------------------------------------------------------


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def surveys(request: HttpRequest) -> HttpResponse:
    form = UploadForm(_posted(request), request.FILES or None)
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        if form.is_valid():
            upload = form.cleaned_data["xlsform"]
            try:
                survey = services.create_survey(
                    request.user, title=form.cleaned_data["title"],
                    description=form.cleaned_data["description"], content=upload.read(),
                    filename=upload.name, request=request)
            except services.PreventionError as exc:
                _errors(form, exc)
            else:
                messages.success(request, _("Survey created. Preview it, then publish."))
                return redirect("prevention:survey", survey.pk)
    queryset = Survey.objects.annotate(n_versions=Count("versions", distinct=True)).order_by(
        "-created_at", "id")
    return render(request, "prevention/surveys.html", {
        "page": _page(request, queryset), "form": form,
        "may_manage": can(request.user, Action.MANAGE_PREVENTION)})


def _load_survey(pk: int) -> Survey:
    return get_object_or_404(Survey.objects.prefetch_related(
        Prefetch("versions", queryset=SurveyVersion.objects.defer("xlsform")
                 .annotate(n_responses=Count("responses")))), pk=pk)


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest, pk: int) -> HttpResponse:
    item = _load_survey(pk)
    do = request.POST.get("do")
    version_form = VersionUploadForm(request.POST if do == "upload" else None,
                                     request.FILES if do == "upload" else None, prefix="v")
    class_form = ClassSessionForm(request.POST if do == "class" else None, prefix="class")
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        try:
            if do == "upload" and version_form.is_valid():
                upload = version_form.cleaned_data["xlsform"]
                version = services.upload_version(request.user, item, content=upload.read(),
                                                  filename=upload.name, request=request)
                messages.success(request, _("Version %(n)d uploaded as a draft.")
                                 % {"n": version.number})
                return redirect("prevention:survey", item.pk)
            if do == "publish":
                version = get_object_or_404(SurveyVersion, survey=item,
                                            number=request.POST.get("number", 0))
                services.publish_version(request.user, version, request=request)
                messages.success(request, _("Version %(n)d published.") % {"n": version.number})
                return redirect("prevention:survey", item.pk)
            if do == "class" and class_form.is_valid():
                published = item.versions.filter(published_at__isnull=False).order_by(
                    "-number").first()
                if published is None:
                    raise services.NotPublished()
                d = class_form.cleaned_data
                cs = services.open_class_session(
                    request.user, published, school=d["school"], grade=d["grade"],
                    label=d["label"], expected=d["expected"], minutes=d["minutes"],
                    request=request)
                return redirect("prevention:class_session", cs.pk)
        except services.PreventionError as exc:
            _errors(version_form if do == "upload" else class_form, exc)
            messages.error(request, exc.text)
    classes = list(ClassSession.objects.filter(version__survey=item).select_related(
        "school", "version")[:50])
    counts = services.response_counts(classes)
    versions = list(item.versions.all())
    latest = versions[-1] if versions else None
    return render(request, "prevention/survey.html", {
        "item": item, "versions": versions, "latest": latest,
        "warnings": (latest.definition.get("warnings", []) if latest else []),
        "version_form": version_form, "class_form": class_form,
        "classes": [(c, counts.get(c.pk, 0)) for c in classes],
        "rates": services.response_rates(item), "now": timezone.now(),
        "may_manage": can(request.user, Action.MANAGE_PREVENTION),
        "may_export": can(request.user, Action.EXPORT_SURVEY_DATA),
        "export_form": ExportForm(), "sample_size": item.sample.count()})


@staff_required(Action.VIEW_PREVENTION)
def preview(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    version = get_object_or_404(SurveyVersion.objects.select_related("survey"),
                                survey_id=pk, number=number)
    from anshim.prevention.public import form_context

    return render(request, "prevention/preview.html", {
        "version": version, **form_context(version, _language(), preview=True)})


@staff_required(Action.VIEW_PREVENTION)
def xlsform_download(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """The version written back as an XLSForm (from its stored definition)."""
    version = get_object_or_404(SurveyVersion, survey_id=pk, number=number)
    content = xlsform.to_xlsform(xlsform.FormDefinition.from_json(version.definition))
    response = HttpResponse(content, content_type=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    response["Content-Disposition"] = (
        f'attachment; filename="survey-{pk}-v{number}.xlsx"')
    return response


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def design(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Survey, pk=pk)
    sample = list(item.sample.select_related("school"))
    initial = {
        "schools_invited": item.schools_invited,
        "sample": "\n".join(f"{s.school_id}, {s.stratum}, {s.selection_probability:g}, "
                            f"{s.students_sampled}, {'yes' if s.participated else 'no'}"
                            for s in sample),
        "margins": "\n".join(f"{m['grade']}, {m['sex']}, {m['count']}"
                             for m in item.population_margins),
    }
    form = DesignForm(_posted(request), initial=initial)
    if request.method == "POST":
        require(request.user, Action.MANAGE_PREVENTION)
        if form.is_valid():
            d = form.cleaned_data
            schools_by_id = School.objects.in_bulk([r["school"] for r in d["sample"]])
            try:
                missing = [r["school"] for r in d["sample"] if r["school"] not in schools_by_id]
                if missing:
                    raise services.InvalidInput(params={"problem": _(
                        "Unknown school ids: %(ids)s") % {"ids": ", ".join(map(str, missing))}})
                services.save_design(request.user, item, sample=[
                    services.SampleRow(schools_by_id[r["school"]], r["stratum"],
                                       r["probability"], r["sampled"], r["participated"])
                    for r in d["sample"]], margins=d["margins"],
                    schools_invited=d["schools_invited"], request=request)
            except services.PreventionError as exc:
                _errors(form, exc)
            else:
                messages.success(request, _("Sampling design saved."))
                return redirect("prevention:survey", item.pk)
    return render(request, "prevention/design.html", {
        "item": item, "form": form, "schools": School.objects.all()[:200]})


@staff_required(Action.VIEW_PREVENTION)
def results(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Survey, pk=pk)
    dim = request.GET.get("by") or None
    if dim not in analysis.DIMENSIONS:
        dim = None
    outcome = analysis.cached_survey_results(item, dim=dim, language=_language())
    return render(request, "prevention/results.html", {
        "item": item, "results": outcome, "dim": dim,
        "dimensions": [("grade", _("Grade")), ("sex", _("Sex")), ("level", _("School level"))],
        "rates": services.response_rates(item)})


@staff_required(Action.VIEW_PREVENTION)
def results_table(request: HttpRequest, pk: int) -> HttpResponse:
    """The results as published: a CSV of the tables with every suppressed cell blank and
    marked (for reports; no answer sheet in it). Audited like the exports."""
    item = get_object_or_404(Survey, pk=pk)
    dim = request.GET.get("by") or None
    if dim not in analysis.DIMENSIONS:
        dim = None
    outcome = analysis.cached_survey_results(item, dim=dim, language=_language())
    content = analysis.published_csv(outcome)
    services.record_published_table(request.user, item, dim or "overall", request=request)
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="survey-{item.pk}-results-{dim or "overall"}.csv"')
    return response


@staff_required(Action.EXPORT_SURVEY_DATA)
@require_POST
def export(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Survey, pk=pk)
    form = ExportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a format and a profile."))
        return redirect("prevention:survey", item.pk)
    result = services.export_survey(request.user, item, form.cleaned_data["kind"],
                                    form.cleaned_data["profile"], language=_language(),
                                    request=request)
    response = HttpResponse(result.content, content_type=result.content_type)
    response["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


# --- Class sessions -----------------------------------------------------------------------


def _qr(url: str, label: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=12,
                        border=2)
    svg: str = image.to_string(encoding="unicode")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" class="qr" ', 1)


@staff_required(Action.VIEW_PREVENTION)
@require_http_methods(["GET", "POST"])
def class_session(request: HttpRequest, pk: int) -> HttpResponse:
    cs = get_object_or_404(ClassSession.objects.select_related("school", "version__survey"),
                           pk=pk)
    if request.method == "POST":
        services.close_class_session(request.user, cs, request=request)
        messages.success(request, _("Class survey closed."))
        return redirect("prevention:class_session", cs.pk)
    url = request.build_absolute_uri(reverse("survey:answer", args=[cs.short_code]))
    now = timezone.now()
    return render(request, "prevention/class_session.html", {
        "cs": cs, "url": url, "qr": _qr(url, _("QR code of the class survey")),
        "count": services.response_counts([cs]).get(cs.pk, 0),
        "is_open": cs.opens_at <= now <= cs.closes_at,
        "may_manage": can(request.user, Action.MANAGE_PREVENTION)})


@staff_required(Action.VIEW_PREVENTION)
def class_count(request: HttpRequest, pk: int) -> JsonResponse:
    """How many sheets have arrived (the class page polls this): a count, nothing else."""
    cs = get_object_or_404(ClassSession, pk=pk)
    now = timezone.now()
    return JsonResponse({"count": services.response_counts([cs]).get(cs.pk, 0),
                         "open": cs.opens_at <= now <= cs.closes_at})


# --- Help requests (counselors) -----------------------------------------------------------


@staff_required(Action.VIEW_HELP_REQUESTS)
def help_requests(request: HttpRequest) -> HttpResponse:
    """The 'contact me' cards from surveys: the case each one opened, and its contact wish.
    Contact details are shown on the case file, where reading them is audited."""
    queryset = HelpRequest.objects.select_related("case").order_by("-created_on", "-id")
    page = _page(request, queryset)
    services.record_help_view(request.user, len(page.object_list), request=request)
    from anshim.cases.models import ContactPreference

    labels = dict(ContactPreference.choices)
    return render(request, "prevention/help_requests.html", {
        "page": page, "rows": [(h, labels.get(h.contact_preference, h.contact_preference))
                               for h in page.object_list],
        "may_open_cases": can(request.user, Action.VIEW_CASE_LIST)})
