"""The error pages (403, 404, 500): styled, translated, with a way back.

Staff paths get the staff frame and a link to the role's start page; every other path (the
victim portal, the public pages) gets the portal's frame, so a young person who mistypes an
address never lands on a staff-looking page. The 500 page renders without the database (it
may be the thing that failed) and falls back to a fixed bilingual text if even that fails.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.urls import reverse

log = logging.getLogger(__name__)

STAFF_PREFIX = "/staff/"
FALLBACK_500 = ("<!doctype html><meta charset='utf-8'><title>오류 · Error</title>"
                "<h1>잠시 문제가 생겼습니다</h1><p>잠시 후 다시 시도해 주세요. "
                "<a href='/'>처음으로</a></p><p lang='en'>Something went wrong on our side. "
                "Please try again in a moment. <a href='/'>Home</a></p>")


def _context(request: HttpRequest) -> dict[str, object]:
    staff = request.path.startswith(STAFF_PREFIX)
    return {
        "error_base": "staff/base.html" if staff else "portal/base.html",
        "staff_area": staff,
        "home_url": reverse("staff:home") if staff else reverse("portal:start"),
        "hotline": settings.ANSHIM_CENTER_PHONE,
    }


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", _context(request), status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", _context(request), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context processors and no template tags that query: the database or a
    # context processor may be what failed.
    try:
        staff = request.path.startswith(STAFF_PREFIX)
        body = loader.get_template("500.html").render(
            {"home_url": STAFF_PREFIX if staff else "/", "staff_area": staff})
    except Exception:  # the error page itself must never fail
        log.exception("the 500 page could not be rendered")
        body = FALLBACK_500
    return HttpResponseServerError(body)
