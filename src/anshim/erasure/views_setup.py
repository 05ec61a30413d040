"""Staff pages for setting up erasure: platforms and monitored sources (not the Django admin)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from anshim.cases.services import audit
from anshim.erasure.models import MonitoredSource, Platform
from anshim.erasure.setup import PlatformForm, SourceForm, save_config
from anshim.security.decorators import staff_required
from anshim.security.policy import Action

PER_PAGE = 50
SECRET_VIEWED = "erasure.platform.secret_view"  # noqa: S105 - an audit action name


@staff_required(Action.CONFIGURE_ERASURE)
def platforms(request: HttpRequest) -> HttpResponse:
    page = Paginator(Platform.objects.order_by("name"), PER_PAGE).get_page(request.GET.get("page"))
    audit(actor=request.user, action="erasure.platforms.view", request=request)
    return render(request, "erasure/platforms.html", {"page": page})


@staff_required(Action.CONFIGURE_ERASURE)
def platform_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    instance = get_object_or_404(Platform, pk=pk) if pk is not None else None
    form = PlatformForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            obj = save_config(form, actor=request.user, request=request)
        except ValidationError:
            pass  # the form carries the error
        else:
            messages.success(request, _("Platform “%(name)s” saved.") % {"name": obj})
            return redirect("erasure:platforms")
    secret = ""
    if instance is not None:
        audit(actor=request.user, action="erasure.platform.view", target=instance,
              request=request)
        if request.GET.get("secret") == "1" and instance.webhook_secret:
            # The specialist hands the signing secret to the platform: shown on request only,
            # and audited as its own read.
            audit(actor=request.user, action=SECRET_VIEWED, target=instance, request=request)
            secret = instance.webhook_secret
    return render(request, "erasure/config_form.html", {
        "form": form, "instance": instance, "back": "erasure:platforms",
        "webhook_secret": secret,
        "has_secret": bool(instance is not None and instance.webhook_secret),
        "title": _("Edit platform") if instance else _("New platform")})


@staff_required(Action.CONFIGURE_ERASURE)
def sources(request: HttpRequest) -> HttpResponse:
    page = Paginator(MonitoredSource.objects.select_related("last_scan").order_by("name"),
                     PER_PAGE).get_page(
        request.GET.get("page"))
    audit(actor=request.user, action="erasure.sources.view", request=request)
    return render(request, "erasure/sources.html", {"page": page})


@staff_required(Action.CONFIGURE_ERASURE)
def source_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    instance = (get_object_or_404(MonitoredSource.objects.select_related("last_scan"), pk=pk)
                if pk is not None else None)
    form = SourceForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            obj = save_config(form, actor=request.user, request=request)
        except ValidationError:
            pass
        else:
            messages.success(request, _("Monitored source “%(name)s” saved.") % {"name": obj})
            return redirect("erasure:sources")
    if instance is not None:
        audit(actor=request.user, action="erasure.source.view", target=instance,
              request=request)
    return render(request, "erasure/config_form.html", {
        "form": form, "instance": instance, "back": "erasure:sources", "scan_source": instance,
        "title": _("Edit monitored source") if instance else _("New monitored source")})
