"""Bearer-token authentication and scope checks for the partner API."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from anshim.exchange.models import Partner, PartnerToken
from anshim.exchange.tokens import TokenError, authenticate_cached


class PartnerAPIError(HttpError):
    """An HttpError with a stable machine-readable `code` (the `error` of the answer)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(status_code, message)
        self.code = code


#: TokenError reasons as the API's error codes.
_TOKEN_CODES = {"invalid_token": "unauthorized", "token_revoked": "token_revoked",
                "token_expired": "token_expired", "partner_inactive": "partner_inactive"}


class PartnerBearer(HttpBearer):
    """`Authorization: Bearer anx_…`; a refused token says why (expired, revoked, unknown).

    A verified token is trusted for `tokens.CACHE_SECONDS` by this process (see there).
    """

    def authenticate(self, request: HttpRequest, token: str) -> PartnerToken:
        try:
            return authenticate_cached(token.strip())
        except TokenError as exc:
            # An HttpError (not AuthenticationError) keeps the specific reason in the answer.
            code = _TOKEN_CODES.get(exc.reason, "unauthorized")
            raise PartnerAPIError(401, code, f"{exc.reason}: {exc.message}") from None


def partner_of(request: HttpRequest) -> Partner:
    token: PartnerToken = request.auth  # type: ignore[attr-defined]
    return token.partner


def require_scope(request: HttpRequest, scope: str) -> Partner:
    partner = partner_of(request)
    if not partner.has_scope(scope):
        raise PartnerAPIError(403, "insufficient_scope",
                              f"missing_scope: this token lacks the '{scope}' scope.")
    return partner
