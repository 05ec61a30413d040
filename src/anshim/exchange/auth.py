"""Bearer-token authentication and scope checks for the partner API."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from anshim.exchange.models import Partner, PartnerToken
from anshim.exchange.tokens import TokenError, authenticate_cached


class PartnerBearer(HttpBearer):
    """`Authorization: Bearer anx_…`; a refused token says why (expired, revoked, unknown).

    A verified token is trusted for `tokens.CACHE_SECONDS` by this process (see there).
    """

    def authenticate(self, request: HttpRequest, token: str) -> PartnerToken:
        try:
            return authenticate_cached(token.strip())
        except TokenError as exc:
            # An HttpError (not AuthenticationError) keeps the specific reason in the answer.
            raise HttpError(401, f"{exc.reason}: {exc.message}") from None


def partner_of(request: HttpRequest) -> Partner:
    token: PartnerToken = request.auth  # type: ignore[attr-defined]
    return token.partner


def require_scope(request: HttpRequest, scope: str) -> Partner:
    partner = partner_of(request)
    if not partner.has_scope(scope):
        raise HttpError(403, f"missing_scope: this token lacks the '{scope}' scope.")
    return partner
