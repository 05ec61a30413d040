"""Every refusal (403) is audited: who tried what, on which case, from where.

The policy raises `policy.Refused` (a PermissionDenied that knows the action and the case);
`RefusalAuditMiddleware` records it for HTML views, and the JSON APIs call `record_refusal`
where they turn the exception into their 403. Both run after the view's own transactions have
been rolled back, so the refusal line survives the refused attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from anshim.security.audit import record
from anshim.security.policy import Refused

# The audit event type of a refusal; the refused policy action follows it ("denied.view_case").
DENIED = "denied"


def refusal_action(exc: PermissionDenied) -> str:
    """The audit event type: `denied.<policy action>`, or `denied` when not the policy's."""
    return f"{DENIED}.{exc.action.value}" if isinstance(exc, Refused) else DENIED


def record_refusal(request: HttpRequest, exc: PermissionDenied) -> None:
    user = getattr(request, "user", None)
    case = exc.case if isinstance(exc, Refused) else None
    record(actor=user if getattr(user, "is_authenticated", False) else None,
           action=refusal_action(exc), target=case, case=case, request=request)


class RefusalAuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if isinstance(exception, PermissionDenied):
            record_refusal(request, exception)
        return None  # Django renders the 403 as before
