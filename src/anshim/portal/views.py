"""Victim-facing pages. Thin: forms in forms.py, work in services.py, throttling in throttle.py.

Victims have no accounts. A report or a successful sign-in (case code + passphrase) puts the
case id in the session for PORTAL_IDLE; every page that shows case data needs it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from anshim.cases.models import Case
from anshim.portal import services, throttle
from anshim.portal.forms import MessageForm, ReportForm, SignInForm
from anshim.portal.payload import json_error, read_fingerprint_json
from anshim.security.middleware import client_address

SESSION_CASE = "portal_case_id"
SESSION_SEEN = "portal_seen_at"
SESSION_STAMP = "portal_access_stamp"  # which passphrase opened this session
SESSION_REPORT_TOKEN = "portal_report_token"  # noqa: S105 - a session key name
PORTAL_IDLE = dt.timedelta(minutes=15)


def _portal_case(request: HttpRequest) -> Case | None:
    """The signed-in case, or None (never signed in, or idle for longer than PORTAL_IDLE)."""
    case_id = request.session.get(SESSION_CASE)
    seen = request.session.get(SESSION_SEEN)
    if not case_id or not seen:
        return None
    try:
        idle = timezone.now() - dt.datetime.fromisoformat(seen)
    except (TypeError, ValueError):
        idle = PORTAL_IDLE * 2
    case = Case.objects.select_related("person").filter(pk=case_id).first() \
        if idle <= PORTAL_IDLE else None
    if case is None or request.session.get(SESSION_STAMP) != services.access_stamp(case):
        # Idle too long, or a counselor issued a new passphrase since this session began.
        for key in (SESSION_CASE, SESSION_SEEN, SESSION_STAMP):
            request.session.pop(key, None)
        return None
    request.session[SESSION_SEEN] = timezone.now().isoformat()
    return case


def _sign_in(request: HttpRequest, case: Case) -> None:
    request.session.cycle_key()  # no session fixation
    request.session[SESSION_CASE] = case.pk
    request.session[SESSION_SEEN] = timezone.now().isoformat()
    request.session[SESSION_STAMP] = services.access_stamp(case)


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {"hotline": settings.ANSHIM_CENTER_PHONE,
            "signed_in": bool(request.session.get(SESSION_CASE)), **extra}


@require_GET
def start(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/start.html", _context(request))


@never_cache
@require_http_methods(["GET", "POST"])
def report(request: HttpRequest) -> HttpResponse:
    """The anonymous report. On success the code and passphrase are shown in this response
    and nowhere else: they are never stored in the session, and a reload cannot resend."""
    form = ReportForm(request.POST or None)
    if request.method == "POST":
        expected = request.session.get(SESSION_REPORT_TOKEN)
        sent = request.POST.get("report_token", "")
        if not expected or not secrets.compare_digest(str(expected).encode(), sent.encode()):
            if request.session.get(SESSION_CASE):
                return redirect("portal:status")  # a reload of the page that showed the code
            form = ReportForm(request.POST)
            form.is_valid()
            form.add_error(None, _("This form had expired. Please check it and send it again."))
        elif form.is_valid():
            request.session.pop(SESSION_REPORT_TOKEN, None)
            new = services.submit_report(form.cleaned_data, request=request)
            _sign_in(request, new.case)
            danger = form.cleaned_data.get("in_danger") in ("yes", "unsure")
            return render(request, "portal/report_done.html", _context(
                request, code=new.case.code, passphrase=new.passphrase, danger=danger))
    token = secrets.token_urlsafe(16)
    request.session[SESSION_REPORT_TOKEN] = token
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/report.html", _context(request, form=form, token=token),
                  status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    if request.method != "POST":
        return render(request, "portal/sign_in.html", _context(request, form=form))
    if not form.is_valid():
        return render(request, "portal/sign_in.html", _context(request, form=form), status=400)
    code = form.cleaned_data["code"].strip().upper().replace(" ", "")
    address = client_address(request)
    # Only this client is ever held back: failures on the code from elsewhere never lock the
    # victim out (throttle.py explains why the code alone needs no lock).
    keys = throttle.blocking_keys(address, code)
    state = throttle.check(keys)
    if not state.allowed:
        error = _("Too many attempts. Please wait %(s)d seconds and try again.") % {
            "s": state.retry_after_seconds}
        response = render(request, "portal/sign_in.html", _context(
            request, form=SignInForm(), error=error, throttled=True), status=429)
        response["Retry-After"] = str(state.retry_after_seconds)
        return response
    case = services.authenticate(code, form.cleaned_data["passphrase"], request=request)
    if case is None:
        watch = throttle.code_watch_key(code)
        counts = throttle.record_failure([*keys, watch])
        services.alert_failed_sign_ins(code, counts[watch.key], request=request)
        # The same words and the same (empty) form whether the code exists or not.
        error = _("The case code or passphrase is not correct.")
        return render(request, "portal/sign_in.html",
                      _context(request, form=SignInForm(), error=error), status=400)
    throttle.record_success(keys[0])
    _sign_in(request, case)
    return redirect("portal:status")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return redirect("portal:start")


@never_cache
@require_GET
def status(request: HttpRequest) -> HttpResponse:
    case = _portal_case(request)
    if case is None:
        return redirect("portal:sign_in")
    return render(request, "portal/status.html", _context(
        request, case=case, progress=services.case_progress(case, request=request),
        message_form=MessageForm(), thread=services.messages_for(case, mark_read=True)))


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


@never_cache
@ensure_csrf_cookie
@require_GET
def fingerprint(request: HttpRequest) -> HttpResponse:
    case = _portal_case(request)
    if case is None:
        return redirect("portal:sign_in")
    return render(request, "portal/fingerprint.html", _context(
        request, case=case, blocker=services.registration_blocker(case),
        max_items=services.MAX_ITEMS, max_frames=services.MAX_FRAMES,
        strings=_fingerprint_page_strings()))


def _fingerprint_page_strings() -> dict[str, str]:
    """Messages the page script shows, translated here (the script holds no text)."""
    return {
        "working": _("Computing the fingerprint…"),
        "done": _("Fingerprint ready"),
        "failed": _("This file could not be read on this phone."),
        "unsupported": _("This is not a photo or video this phone can open."),
        "image": _("Photo"),
        "video": _("Video"),
        "seconds": _("%(n)s seconds of video"),
        "too_many": _("Please choose at most %(n)s files at once."),
        "none_ready": _("Choose at least one photo or video first."),
        "consent": _("Please tick the box to agree first."),
        "sending": _("Sending the fingerprints (not the photos)…"),
        "registered": _("Registered: %(n)s. Nothing else was sent."),
        "network": _("The fingerprints could not be sent. Check your connection and try again."),
        "preview": _("Preview, shown only on this phone"),
        # The same id labels the item on the withdrawal page.
        "short_id": _("ID %(id)s"),
    }


@require_POST
def register_fingerprints(request: HttpRequest) -> JsonResponse:
    """JSON from the on-device fingerprinting page: hashes only, never media."""
    case = _portal_case(request)
    if case is None:
        return json_error("signed_out", _("Please sign in again."), 401)
    payload = read_fingerprint_json(request)
    if isinstance(payload, JsonResponse):
        return payload
    try:
        result = services.register_from_device(case, payload, request=request)
    except ValidationError as exc:
        return json_error(exc.code or "invalid", " ".join(exc.messages), 422)
    return JsonResponse(result, status=201)


def _ids(values: list[str]) -> list[int] | None:
    """Entry ids from the form; None when one is not a plain number."""
    out = []
    for v in values:
        if not (v.isascii() and v.isdigit()) or len(v) > 18:
            return None
        out.append(int(v))
    return out


@never_cache
@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest) -> HttpResponse:
    case = _portal_case(request)
    if case is None:
        return redirect("portal:sign_in")
    everything = request.POST.get("everything") == "1"
    if request.method == "POST" and everything and request.POST.get("confirmed") != "1":
        # Withdrawing everything cannot be undone from here: ask once more first.
        return render(request, "portal/withdraw.html", _context(
            request, case=case, confirm_everything=True,
            entries=services.withdraw_rows(case, request=request),
            consents=services.active_consent_choices(case)))
    if request.method == "POST":
        entry_ids = _ids(request.POST.getlist("entry"))
        try:
            if entry_ids is None:
                raise ValidationError(_("Some of these fingerprints do not belong to your case."))
            done = services.withdraw(
                case, entry_ids=entry_ids, scopes=request.POST.getlist("consent"),
                everything=everything, request=request)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _(
                "Withdrawn: %(n)d fingerprints and %(c)d permissions. They are no longer used."
            ) % {"n": done.fingerprints, "c": done.consents})
        return redirect("portal:withdraw")
    return render(request, "portal/withdraw.html", _context(
        request, case=case, entries=services.withdraw_rows(case, request=request),
        consents=services.active_consent_choices(case)))
