"""Scan now (a source, a case), a scan's progress, and a case's reported links."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from anshim.cases.models import Case
from anshim.cases.services import audit
from anshim.erasure import scan_now
from anshim.erasure.forms import DraftForm
from anshim.erasure.models import MonitoredSource, ReportedLink, ScanRun, TakedownRequest
from anshim.security.decorators import staff_required
from anshim.security.policy import Action, require


class LinkForm(forms.Form):
    url = forms.CharField(label=gettext_lazy("Web address"), max_length=2000)


def _errors(request: HttpRequest, exc: ValidationError) -> None:
    for msg in exc.messages:
        messages.error(request, msg)


@require_POST
@staff_required(Action.MANAGE_ERASURE)
def scan_source(request: HttpRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(MonitoredSource, pk=pk)
    try:
        run = scan_now.start_source_scan(source, actor=request.user, request=request)
    except ValidationError as exc:
        _errors(request, exc)
        return redirect("erasure:source", pk=source.pk)
    messages.success(request, _("The scan has started; this page shows its progress."))
    return redirect("erasure:scan", pk=run.pk)


@require_POST
@staff_required(Action.MANAGE_ERASURE)
def scan_case(request: HttpRequest, code: str) -> HttpResponse:
    case = get_object_or_404(Case, code=code)
    require(request.user, Action.MANAGE_ERASURE, case)
    try:
        run = scan_now.start_case_scan(case, actor=request.user, request=request)
    except ValidationError as exc:
        _errors(request, exc)
        return redirect("erasure:case", code=case.code)
    messages.success(request, _("The scan has started; this page shows its progress."))
    return redirect("erasure:scan", pk=run.pk)


@staff_required(Action.MANAGE_ERASURE)
def scan(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(ScanRun.objects.select_related("source", "case", "requested_by"),
                            pk=pk)
    if run.case is not None:
        require(request.user, Action.MANAGE_ERASURE, run.case)
    audit(actor=request.user, action="erasure.scan.view", target=run, case=run.case,
          request=request)
    return render(request, "erasure/scan.html", {
        "run": run, "active": run.status in scan_now.ACTIVE})


@staff_required(Action.MANAGE_ERASURE)
def case_erasure(request: HttpRequest, code: str) -> HttpResponse:
    """A case's erasure work: the links reported on it, scan now, its scans."""
    case = get_object_or_404(Case, code=code)
    require(request.user, Action.MANAGE_ERASURE, case)
    form = LinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            scan_now.add_staff_link(case, form.cleaned_data["url"].strip(), actor=request.user,
                                    request=request)
        except ValidationError as exc:
            for msg in exc.messages:
                form.add_error("url", msg)
        else:
            messages.success(request, _("Link added; it is being checked."))
            return redirect("erasure:case", code=case.code)
    audit(actor=request.user, action="erasure.case.view", target=case, case=case,
          request=request)
    return render(request, "erasure/case.html", {
        "case": case, "form": form,
        "links": ReportedLink.objects.filter(case=case).order_by("-added_at", "-id")[:200],
        "runs": ScanRun.objects.filter(case=case).order_by("-created_at", "-id")[:10],
        "draft_form": DraftForm(),
        "requests": TakedownRequest.objects.filter(case=case).select_related("platform")
        .order_by("-created_at", "-id")[:50],
    })
