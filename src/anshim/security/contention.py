"""Transient database errors: a lock that was not granted in time is "busy", not a bug.

On SQLite a writer waits `busy_timeout` (5 s) for the write lock and then fails with
"database is locked"; on PostgreSQL a lock timeout, a deadlock victim or a serialization
failure ends the same way. Nothing was written (the transaction rolled back), so the honest
answer is "try again shortly": the task worker backs off and retries (`anshim worker`), and a
web request answers 503 with `Retry-After` instead of a 500 (`DatabaseBusyMiddleware`).
Reading a case page writes an audit row, so even reads meet this under write contention.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from django.utils.translation import gettext as _

RETRY_AFTER_SECONDS = 5
# PostgreSQL SQLSTATEs that mean "not now": lock_not_available, deadlock_detected,
# serialization_failure, query_canceled (lock_timeout / statement_timeout), admin_shutdown,
# cannot_connect_now.
TRANSIENT_SQLSTATES = frozenset({"55P03", "40P01", "40001", "57014", "57P01", "57P03"})
SQLITE_BUSY_TEXT = ("database is locked", "database table is locked", "database is busy")
_FLAG = "_anshim_database_busy"
KEPT_HEADERS = ("Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options",
                "Referrer-Policy", "Cross-Origin-Opener-Policy", "X-Frame-Options",
                "Permissions-Policy", "Vary")


def is_transient(exc: BaseException | None) -> bool:
    """True for a database error that a retry a little later can be expected to cure."""
    while exc is not None:
        if isinstance(exc, OperationalError | InterfaceError):
            text = str(exc).lower()
            if any(t in text for t in SQLITE_BUSY_TEXT):
                return True
            if isinstance(exc, InterfaceError) or ("connection" in text and "closed" in text):
                return True  # a dropped connection: Django reconnects on the next use
        state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if state in TRANSIENT_SQLSTATES:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _remember(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django turns an exception into a 500 response inside every middleware layer, so the
    # outermost layer only sees the response; this signal still sees the exception.
    if request is not None and is_transient(sys.exc_info()[1]):
        setattr(request, _FLAG, True)


got_request_exception.connect(_remember, dispatch_uid="anshim-database-busy")


def busy_response(request: HttpRequest) -> HttpResponse:
    title = _("The system is busy")
    text = _("Another task is writing to the database right now, so this page could not be "
             "opened. Nothing was lost or changed. Please try again in a few seconds.")
    response: HttpResponse
    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        response = JsonResponse({"detail": text, "code": "database_busy"}, status=503)
    else:
        again = _("Try again")
        response = HttpResponse(
            f'<!doctype html><html lang="{escape(getattr(request, "LANGUAGE_CODE", "ko"))}">'
            f'<meta charset="utf-8"><title>{escape(title)}</title>'
            f"<main><h1>{escape(title)}</h1><p>{escape(text)}</p>"
            f'<p><a href="{escape(request.get_full_path())}">{escape(again)}</a></p></main>',
            status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseBusyMiddleware:
    """Outermost: a request that failed on a busy database answers 503 + Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _FLAG, False):
            busy = busy_response(request)
            # The inner layers already put their security headers on the 500: keep them.
            for header in KEPT_HEADERS:
                if header in response:
                    busy[header] = response[header]
            return busy
        return response
