"""Victim-facing pages. Thin: forms in forms.py, work in services.py, throttling in throttle.py."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from anshim.cases.models import Case
from anshim.portal import services, throttle
from anshim.portal.forms import MessageForm, ReportForm, SignInForm
from anshim.security.middleware import client_address

SESSION_CASE = "portal_case_id"
SESSION_SEEN = "portal_seen_at"
SESSION_NEW = "portal_new_case"
PORTAL_IDLE = dt.timedelta(minutes=15)


def _portal_case(request: HttpRequest) -> Case | None:
    case_id = request.session.get(SESSION_CASE)
    seen = request.session.get(SESSION_SEEN)
    if not case_id or not seen:
        return None
    if timezone.now() - dt.datetime.fromisoformat(seen) > PORTAL_IDLE:
        request.session.pop(SESSION_CASE, None)
        return None
    request.session[SESSION_SEEN] = timezone.now().isoformat()
    return Case.objects.filter(pk=case_id).first()


def _sign_in(request: HttpRequest, case: Case) -> None:
    request.session.cycle_key()  # no session fixation
    request.session[SESSION_CASE] = case.pk
    request.session[SESSION_SEEN] = timezone.now().isoformat()


def start(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/start.html", {"hotline": services.CENTER_HOTLINE})


@require_http_methods(["GET", "POST"])
def report(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        case, passphrase = services.submit_report(form.cleaned_data, request=request)
        _sign_in(request, case)
        request.session[SESSION_NEW] = {"code": case.code, "passphrase": passphrase}
        return redirect("portal:report_done")
    return render(request, "portal/report.html", {"form": form})


def report_done(request: HttpRequest) -> HttpResponse:
    # The passphrase is shown exactly once: it leaves the session as it is displayed.
    new = request.session.pop(SESSION_NEW, None)
    if not new:
        return redirect("portal:status")
    return render(request, "portal/report_done.html", {"new": new, "hotline": services.CENTER_HOTLINE})


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"].strip().upper()
        code_key = throttle.key_for("code", code)
        keys = [code_key, throttle.key_for("addr", client_address(request))]
        state = throttle.check(keys)
        if not state.allowed:
            form.add_error(None, _("Too many attempts. Please wait %(s)d seconds and try again.")
                           % {"s": state.retry_after_seconds})
            status = 429
        else:
            case = services.authenticate(code, form.cleaned_data["passphrase"])
            if case is None:
                throttle.record_failure(keys)
                # The same words whether the code exists or not.
                form.add_error(None, _("The case code or passphrase is not correct."))
                status = 400
            else:
                throttle.record_success(code_key)
                _sign_in(request, case)
                return redirect("portal:status")
    response = render(request, "portal/sign_in.html", {"form": form}, status=status)
    if status == 429:
        response["Retry-After"] = str(throttle.check([]).retry_after_seconds or 1)
    return response


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return redirect("portal:start")


def status(request: HttpRequest) -> HttpResponse:
    case = _portal_case(request)
    if case is None:
        return redirect("portal:sign_in")
    return render(request, "portal/status.html", {
        "case": case,
        "progress": services.case_progress(case),
        "message_form": MessageForm(),
        "messages_sent": services.messages_for(case),
    })


@require_POST
def send_message(request: HttpRequest) -> HttpResponse:
    case = _portal_case(request)
    if case is None:
        return redirect("portal:sign_in")
    form = MessageForm(request.POST)
    if form.is_valid():
        services.send_message(case, form.cleaned_data["body"], request=request)
        messages.success(request, _("Your message was sent to your counselor."))
    else:
        messages.error(request, _("The message could not be sent: %(e)s")
                       % {"e": " ".join(str(e) for e in form.errors.get("body", []))})
    return redirect("portal:status")


def fingerprint(request: HttpRequest) -> HttpResponse:
    case = _portal_case(request)
    if case is None:
        return redirect("portal:sign_in")
    return render(request, "portal/fingerprint.html", {
        "case": case,
        "can_register": services.registration_blocker(case) is None,
        "blocker": services.registration_blocker(case),
    })


@require_POST
def register_fingerprints(request: HttpRequest) -> JsonResponse:
    """JSON from the on-device fingerprinting page: hashes only, never media."""
    case = _portal_case(request)
    if case is None:
        return JsonResponse({"error": "signed_out", "message": _("Please sign in again.")}, status=401)
    if len(request.body) > services.MAX_REGISTRATION_BYTES:
        return JsonResponse({"error": "too_large", "message": _("Too many items at once.")}, status=413)
    try:
        payload: Any = json.loads(request.body)
        result = services.register_from_device(case, payload, request=request)
    except (ValueError, TypeError):
        return JsonResponse({"error": "invalid_json", "message": _("The request was not valid.")}, status=400)
    except ValidationError as exc:
        return JsonResponse({"error": "invalid", "message": " ".join(exc.messages)}, status=422)
    return JsonResponse(result, status=201)


@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest) -> HttpResponse:
    case = _portal_case(request)
    if case is None:
        return redirect("portal:sign_in")
    if request.method == "POST":
        entry_ids = [int(v) for v in request.POST.getlist("entry") if v.isdigit()]
        scopes = request.POST.getlist("consent")
        everything = request.POST.get("everything") == "1"
        try:
            done = services.withdraw(case, entry_ids=entry_ids, scopes=scopes, everything=everything,
                                     request=request)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Withdrawn: %(n)d fingerprints, %(c)d permissions. "
                                        "They are no longer used.") % done)
        return redirect("portal:withdraw")
    return render(request, "portal/withdraw.html", {
        "case": case,
        "entries": services.entries_for(case),
        "consents": services.active_consents(case),
    })
