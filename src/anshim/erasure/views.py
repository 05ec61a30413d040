"""Staff pages of the erasure workflow: thin; the policy decides, the services act."""

from __future__ import annotations

import base64

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from anshim.cases.models import Case
from anshim.cases.services import audit
from anshim.erasure import exposure, takedowns
from anshim.erasure import sightings as sighting_services
from anshim.erasure.forms import (
    DraftForm,
    NoticeEditForm,
    RequestFilterForm,
    ResponseForm,
    ReviewForm,
    SightingFilterForm,
)
from anshim.erasure.history import history
from anshim.erasure.lists import filter_requests, filter_sightings, has_filters
from anshim.erasure.models import (
    ReportedLink,
    Sighting,
    TakedownRequest,
    TakedownState,
    UnblurRecord,
)
from anshim.erasure.preview import PreviewUnavailable, preview_png
from anshim.erasure.services import actor_or_none
from anshim.erasure.summary import platform_metrics
from anshim.security.decorators import staff_required
from anshim.security.policy import Action, require


def _errors(request: HttpRequest, exc: ValidationError) -> None:
    for msg in exc.messages:
        messages.error(request, msg)


@staff_required(Action.MANAGE_ERASURE)
def index(request: HttpRequest) -> HttpResponse:
    """The review queue (re-uploads first), requests in progress, platform metrics."""
    audit(actor=request.user, action="erasure.queue.view", request=request)
    filter_form = RequestFilterForm(request.GET or None)
    params = filter_form.cleaned_data if filter_form.is_valid() else {}
    found = None
    if has_filters(params):
        found = Paginator(filter_requests(params), 50).get_page(request.GET.get("page"))
    # Page links keep the filters: the query string without its page number.
    page_query = request.GET.copy()
    page_query.pop("page", None)
    queue = list(sighting_services.review_queue()[:200])
    # Sightings at an address the victim reported are marked (one query for the page).
    reported = set(ReportedLink.objects.filter(
        case_id__in={s.case_id for s in queue if s.case_id}).values_list("case_id", "url"))
    for s in queue:
        s.reported_by_victim = bool(  # type: ignore[attr-defined]
            reported & {(s.case_id, s.page_url), (s.case_id, s.media_url)})
    return render(request, "erasure/index.html", {
        "queue": queue,
        "reported_links": ReportedLink.objects.select_related("case")
        .order_by("-added_at", "-id")[:50],
        "drafts": TakedownRequest.objects.filter(state=TakedownState.DRAFT)
        .select_related("platform", "case"),
        "open_requests": TakedownRequest.objects.filter(state__in=takedowns.OPEN_STATES)
        .select_related("platform", "case").order_by("due_at"),
        "metrics": platform_metrics(),
        "review_form": ReviewForm(),
        "filter_form": filter_form, "found": found,
        "page_query": page_query.urlencode() if found else "",
    })


@staff_required(Action.MANAGE_ERASURE)
def sighting_list(request: HttpRequest) -> HttpResponse:
    """Sightings by the erasure funnel's stage, platform, slice and first-seen day (the
    supervisor dashboard's erasure numbers link here)."""
    form = SightingFilterForm(request.GET or None)
    params = form.cleaned_data if form.is_valid() else {}
    page = Paginator(filter_sightings(params), 50).get_page(request.GET.get("page"))
    page_query = request.GET.copy()
    page_query.pop("page", None)
    audit(actor=request.user, action="erasure.sightings.view", request=request)
    return render(request, "erasure/sightings.html", {
        "form": form, "page": page, "page_query": page_query.urlencode()})


@require_POST
@staff_required(Action.MANAGE_ERASURE)
def review(request: HttpRequest, pk: int) -> HttpResponse:
    sighting = get_object_or_404(Sighting, pk=pk)
    if sighting.case is not None:
        require(request.user, Action.MANAGE_ERASURE, sighting.case)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose confirm or reject."))
        return redirect("erasure:index")
    confirm = form.cleaned_data["decision"] == "confirm"
    try:
        sighting_services.review_sighting(
            sighting, confirm=confirm, actor=request.user, request=request,
            leaks_personal_info=form.cleaned_data["leaks_personal_info"])
    except ValidationError as exc:
        _errors(request, exc)
    else:
        code = sighting.case.code if sighting.case else "-"
        messages.success(request, (_("Confirmed: %(url)s (case %(code)s). Draft the request "
                                     "when the case's sightings are reviewed.") if confirm
                                   else _("Rejected as a false match: %(url)s."))
                         % {"url": sighting.page_url[:80], "code": code})
    return redirect("erasure:index")


def _image_response(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "no-store, private"
    return response


@staff_required(Action.MANAGE_ERASURE)
def preview(request: HttpRequest, pk: int) -> HttpResponse:
    """A blurred preview, made in memory and never stored."""
    sighting = get_object_or_404(Sighting, pk=pk)
    try:
        data = preview_png(sighting.media_url, blurred=True)
    except PreviewUnavailable:
        return HttpResponse(_("The media could not be fetched."), status=410,
                            content_type="text/plain; charset=utf-8")
    audit(actor=request.user, action="sighting.preview", target=sighting, case=sighting.case,
          request=request)
    return _image_response(data)


@require_POST
@staff_required(Action.MANAGE_ERASURE)
def unblur(request: HttpRequest, pk: int) -> HttpResponse:
    """The unblurred picture: an explicit action (a POST), audited before anything is shown."""
    sighting = get_object_or_404(Sighting, pk=pk)
    if sighting.case is not None:
        require(request.user, Action.MANAGE_ERASURE, sighting.case)
    # The typed reason is kept encrypted; the audit row points at it instead of holding prose.
    record = UnblurRecord.objects.create(sighting=sighting, actor=actor_or_none(request.user),
                                         reason=request.POST.get("reason", "")[:500])
    audit(actor=request.user, action="sighting.unblur", target=record, case=sighting.case,
          request=request, reason=f"sighting:{sighting.pk}")
    try:
        data = preview_png(sighting.media_url, blurred=False)
    except PreviewUnavailable:
        exposure.mark_not_shown(record)
        return HttpResponse(_("The media could not be fetched."), status=410,
                            content_type="text/plain; charset=utf-8")
    # A page, not the bare image: its script reports how long the picture stays visible
    # (reviewer exposure). The picture is inline (a data: URL): there is no second URL
    # that would show it unblurred again.
    response = render(request, "erasure/unblurred.html", {
        "sighting": sighting, "record": record,
        "picture": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
        "report_every": exposure.REPORT_EVERY_SECONDS,
        "max_seconds": exposure.MAX_VIEWING_SECONDS,
    })
    response["Cache-Control"] = "no-store, private"
    return response


@require_POST
@staff_required(Action.MANAGE_ERASURE)
def unblur_viewed(request: HttpRequest, pk: int) -> JsonResponse:
    """The unblurred page's report of how long the picture was visible (seconds, the running
    total of that viewing): only the reviewer who unblurred it; never lowers the time."""
    try:
        seconds = exposure.parse_seconds(request.POST.get("seconds"))
    except exposure.ViewingReportError as exc:
        return JsonResponse({"error": exc.message}, status=400)
    viewing = exposure.record_viewing(pk, request.user, seconds)
    return JsonResponse({"record": viewing.record_id, "seconds": viewing.seconds})


@require_POST
@staff_required(Action.MANAGE_ERASURE)
def draft(request: HttpRequest, code: str) -> HttpResponse:
    case = get_object_or_404(Case, code=code)
    require(request.user, Action.MANAGE_ERASURE, case)
    form = DraftForm(request.POST)
    language = form.cleaned_data["language"] if form.is_valid() else ""
    try:
        drafts = takedowns.draft_requests(case, actor=request.user, language=language or None)
    except ValidationError as exc:
        _errors(request, exc)
        return redirect("erasure:index")
    if not drafts:
        messages.info(request, _("No confirmed sightings are waiting for a request."))
        return redirect("erasure:case", code=case.code)
    messages.success(request, _("%(n)d request(s) drafted.") % {"n": len(drafts)})
    return redirect("erasure:request", pk=drafts[0].pk)


def _request_or_404(request: HttpRequest, pk: int) -> TakedownRequest:
    req = get_object_or_404(TakedownRequest.objects.select_related(
        "platform", "case", "created_by", "edited_by", "approved_by"), pk=pk)
    require(request.user, Action.MANAGE_ERASURE, req.case)
    return req


@staff_required(Action.MANAGE_ERASURE)
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    req = _request_or_404(request, pk)
    audit(actor=request.user, action="takedown.view", target=req, case=req.case,
          request=request)
    problem = takedowns.approval_problem(req, request.user)
    return render(request, "erasure/request_detail.html", {
        "req": req, "items": req.items.select_related("sighting"),
        "history": history(list(req.events.select_related("actor"))),
        "deliveries": req.deliveries.all(),
        "response_form": ResponseForm(),
        "approval_problem": _(problem) if problem and req.state == TakedownState.DRAFT else "",
    })


@staff_required(Action.MANAGE_ERASURE)
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change the draft's subject and text before it is approved."""
    req = _request_or_404(request, pk)
    if req.state != TakedownState.DRAFT:
        messages.error(request, _("Only a draft can be edited."))
        return redirect("erasure:request", pk=req.pk)
    form = NoticeEditForm(request.POST or None,
                          initial={"subject": req.subject, "body": req.body})
    if request.method == "POST" and form.is_valid():
        try:
            takedowns.edit_draft(req, subject=form.cleaned_data["subject"],
                                 body=form.cleaned_data["body"], actor=request.user,
                                 request=request)
        except ValidationError as exc:
            for msg in exc.messages:
                form.add_error(None, msg)
        else:
            messages.success(request, _("The notice was saved. A second person approves it.")
                             if settings.ANSHIM_TAKEDOWN_SECOND_APPROVER
                             else _("The notice was saved."))
            return redirect("erasure:request", pk=req.pk)
    audit(actor=request.user, action="takedown.view", target=req, case=req.case,
          request=request, reason="edit")
    return render(request, "erasure/request_edit.html", {"req": req, "form": form})


@staff_required(Action.MANAGE_ERASURE)
def approve(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the confirmation step (the notice as it will go out); POST: approve and send."""
    req = _request_or_404(request, pk)
    if request.method != "POST":
        problem = takedowns.approval_problem(req, request.user)
        if problem is not None:
            messages.error(request, _(problem))
            return redirect("erasure:request", pk=req.pk)
        audit(actor=request.user, action="takedown.view", target=req, case=req.case,
              request=request, reason="approve")
        return render(request, "erasure/request_approve.html", {
            "req": req, "items": req.items.select_related("sighting")})
    try:
        takedowns.approve_and_send(req, actor=request.user, request=request)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        # Sent by the task queue once approved (retried if the platform does not answer).
        messages.success(request, _("Request approved: the notice is being sent."))
    return redirect("erasure:request", pk=req.pk)


@require_POST
@staff_required(Action.MANAGE_ERASURE)
def respond(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(TakedownRequest, pk=pk)
    require(request.user, Action.MANAGE_ERASURE, req.case)
    form = ResponseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose the platform's answer."))
        return redirect("erasure:request", pk=req.pk)
    try:
        takedowns.record_response(req, form.cleaned_data["state"], actor=request.user,
                                  note=form.cleaned_data["note"], request=request)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(request, _("Recorded: %(state)s.") % {"state": req.get_state_display()})
    return redirect("erasure:request", pk=req.pk)
