"""The staff side of portal access: issue a case's portal code and passphrase (hotline cases
too), shown once on a printable page and optionally e-mailed to an address on file.

Wired into the case URLs (`cases:portal_passphrase`); thin: the work is
`anshim.portal.services.issue_passphrase`.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from anshim.cases.models import Case
from anshim.portal import services
from anshim.security.decorators import staff_required
from anshim.security.policy import Action, require


@never_cache
@staff_required()
@require_http_methods(["GET", "POST"])
def portal_access(request: HttpRequest, code: str) -> HttpResponse:
    """GET: the confirmation (what happens, where it may be e-mailed). POST: issue, and show
    the code and passphrase once, in this response only (never cached, never stored)."""
    case = get_object_or_404(Case.objects.select_related("person"), code=code.upper())
    require(request.user, Action.ISSUE_PORTAL_PASSPHRASE, case)
    addresses = services.access_addresses(case)
    context = {"case": case, "addresses": addresses, "has_access": bool(
        case.portal_passphrase_hash), "sign_in_url": services.portal_sign_in_url()}
    if request.method == "POST":
        if context["has_access"] and request.POST.get("confirm_reissue") != "1":
            context["error"] = services.REISSUE_NOT_CONFIRMED
        else:
            try:
                issued = services.issue_passphrase(
                    request.user, case, idempotency_key=request.POST.get("key", ""),
                    email_to=request.POST.get("email_to", ""), request=request)
            except ValidationError as exc:
                context["error"] = " ".join(exc.messages)
            else:
                return render(request, "portal/staff/access_issued.html",
                              {**context, "issued": issued})
        context["key"] = secrets.token_urlsafe(24)
        return render(request, "portal/staff/access_confirm.html", context, status=400)
    context["key"] = secrets.token_urlsafe(24)
    return render(request, "portal/staff/access_confirm.html", context)
