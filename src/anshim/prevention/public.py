"""Public pages: the schools' booking form and the students' anonymous class survey.

The survey endpoints read no client address or user agent and write no log line or audit
row; the answer sheet gets the date and the class session only (see models.Response).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from anshim.prevention import services, xlsform
from anshim.prevention.forms import BookingRequestForm
from anshim.prevention.models import SurveyVersion

MAX_BODY = 200_000
HOTLINE = "1899-0000"  # fictitious, as the portal's (set per deployment)


def _language(request: HttpRequest) -> str:
    return (get_language() or "ko")[:2]


@require_http_methods(["GET", "POST"])
def booking_request(request: HttpRequest) -> HttpResponse:
    form = BookingRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        if d.get("website"):  # the hidden field: a bot; answer as if it worked
            return redirect("survey:booking_done")
        try:
            services.request_booking(services.BookingData(
                school_name=d["school_name"], level=d["level"], district=d["district"],
                contact_name=d["contact_name"], contact_phone=d["contact_phone"],
                contact_email=d["contact_email"], class_count=d["class_count"],
                grades=d["grades"], preferred_dates=d["preferred_dates"], module=d["module"],
                message=d["message"]))
        except services.PreventionError as exc:
            form.add_error(None, exc.text)
        else:
            return redirect("survey:booking_done")
    return render(request, "prevention/public/booking.html", {"form": form})


def booking_done(request: HttpRequest) -> HttpResponse:
    return render(request, "prevention/public/booking_done.html")


# --- The class survey ---------------------------------------------------------------------


def _error_text(code: str, q: xlsform.Question, language: str) -> str:
    if code == "required":
        return _("Please answer this question.")
    if code == "constraint" and q.constraint_messages:
        return xlsform.pick(q.constraint_messages, language)
    return _("This answer is not valid.")


def _question_view(q: xlsform.Question, language: str, values: dict[str, Any],
                   errors: dict[str, str]) -> dict[str, Any]:
    value = values.get(q.name)
    picked = set(value) if isinstance(value, list) else {value}
    return {
        "q": q, "label": q.label(language), "hint": xlsform.pick(q.hints, language),
        "constraint_message": xlsform.pick(q.constraint_messages, language),
        "choices": [{"name": c.name, "label": xlsform.pick(c.labels, language),
                     "columns": json.dumps(c.columns, ensure_ascii=False),
                     "checked": c.name in picked} for c in q.choices],
        "children": [_question_view(c, language, values, errors) for c in q.children],
        "input_type": {"integer": "number", "decimal": "number", "date": "date"}.get(
            q.kind, "text"),
        "value": "" if value is None or isinstance(value, list) else value,
        "error": _error_text(errors[q.name], q, language) if q.name in errors else "",
    }


def form_context(version: SurveyVersion, language: str, *, preview: bool = False,
                 values: dict[str, Any] | None = None, errors: dict[str, str] | None = None
                 ) -> dict[str, Any]:
    form = xlsform.FormDefinition.from_json(version.definition)
    return {
        "form": form, "preview": preview, "hotline": HOTLINE, "form_language": language,
        "questions": [_question_view(q, language, values or {}, errors or {})
                      for q in form.questions],
        "contact_choices": [("phone", _("Phone call")), ("sms", _("Text message")),
                            ("email", _("E-mail"))],
        # The help card's own key: made apart from the answers' key, so nothing links them.
        "help_key": secrets.token_urlsafe(24),
    }


@never_cache
def enter_code(request: HttpRequest) -> HttpResponse:
    """Students who cannot scan the QR code type the short code here."""
    code = request.GET.get("code", "").strip()
    error = ""
    if code:
        try:
            cs = services.class_session_for(code)
        except services.PreventionError as exc:
            error = exc.text
        else:
            return redirect("survey:answer", cs.short_code)
    return render(request, "prevention/public/enter.html", {"error": error, "code": code})


@never_cache
@require_http_methods(["GET", "POST"])
def answer(request: HttpRequest, code: str) -> HttpResponse:
    """The mobile form. With JavaScript it posts JSON (and queues offline); without, this
    form posts here with a key made for this page, so a double submit is still one sheet."""
    lang = request.GET.get("lang")
    if lang in ("ko", "en"):
        translation.activate(lang)
        request.LANGUAGE_CODE = lang
    try:
        cs = services.class_session_for(code)
    except services.PreventionError as exc:
        return render(request, "prevention/public/closed.html", {"message": exc.text},
                      status=exc.http_status)
    language = _language(request)
    context = {"cs": cs, "key": secrets.token_urlsafe(24), "errors": {},
               "submit_url": reverse("survey:submit", args=[cs.short_code]),
               "help_url": reverse("survey:help"), **form_context(cs.version, language)}
    if request.method == "POST":
        raw: dict[str, Any] = {}
        for q in context["form"].inputs():
            values = request.POST.getlist(q.name)
            if q.kind == "select_multiple":
                raw[q.name] = values
            elif values:
                raw[q.name] = values[0]
        try:
            services.submit_response(cs.short_code, request.POST.get("key", ""), raw)
        except services.InvalidAnswers as exc:
            context.update(form_context(cs.version, language, values=raw, errors=exc.errors))
            context["errors"] = exc.errors
            context["key"] = request.POST.get("key") or context["key"]
            return render(request, "prevention/public/answer.html", context, status=422)
        except services.PreventionError as exc:
            return render(request, "prevention/public/closed.html", {"message": exc.text},
                          status=exc.http_status)
        return render(request, "prevention/public/thanks.html", context)
    return render(request, "prevention/public/answer.html", context)


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    if len(request.body) > MAX_BODY:
        return None
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _error(exc: services.PreventionError) -> JsonResponse:
    body: dict[str, Any] = {"code": exc.default_code, "message": exc.text}
    if isinstance(exc, services.InvalidAnswers):
        body["errors"] = exc.errors
    return JsonResponse(body, status=exc.http_status)


@require_POST
def submit(request: HttpRequest, code: str) -> JsonResponse:
    """The JavaScript form's submission: {"key": ..., "answers": {...}}. A resend of the same
    key is answered 200 with "duplicate": true, so the browser can forget it."""
    data = _json_body(request)
    if data is None:
        return JsonResponse({"code": "bad_request", "message": _("The request is not valid.")},
                            status=400)
    try:
        result = services.submit_response(code, str(data.get("key", "")),
                                          data.get("answers") or {})
    except services.PreventionError as exc:
        return _error(exc)
    return JsonResponse({"ok": True, "duplicate": not result.created},
                        status=201 if result.created else 200)


@require_POST
def help_request(request: HttpRequest) -> HttpResponse:
    """'I want someone to contact me': its own request, with its own key, carrying nothing of
    the answers (JSON from the script; a plain form post without it)."""
    is_json = request.content_type == "application/json"
    data = _json_body(request) if is_json else request.POST.dict()
    if data is None:
        return JsonResponse({"code": "bad_request", "message": _("The request is not valid.")},
                            status=400)
    try:
        services.request_help(services.HelpRequestData(
            key=str(data.get("key", "")), contact_preference=str(data.get("contact", "")),
            contact_detail=str(data.get("detail", "")), message=str(data.get("message", "")),
            language=_language(request)))
    except services.PreventionError as exc:
        if is_json:
            return _error(exc)
        return render(request, "prevention/public/help_done.html",
                      {"error": exc.text, "hotline": HOTLINE}, status=exc.http_status)
    if is_json:
        return JsonResponse({"ok": True})
    return render(request, "prevention/public/help_done.html", {"hotline": HOTLINE})

