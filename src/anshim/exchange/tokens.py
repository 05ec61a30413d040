"""Partner API tokens: issue, authenticate, rotate, revoke.

A token is ``anx_`` + 32 random bytes (url-safe base64). Only its SHA-256 digest is stored (see
`PartnerToken` for why a fast hash is right for high-entropy tokens) with a short prefix so staff
can tell tokens apart in listings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from anshim.exchange.models import Partner, PartnerToken

TOKEN_PREFIX = "anx_"  # noqa: S105 - a marker, not a secret
PREFIX_LENGTH = 12  # "anx_" + 8 characters: enough to tell tokens apart, useless to guess one.
# Don't write last_used_at on every request: once a minute is plenty for an audit trail.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
#: How long a server process trusts a token it verified, without asking the database again.
#: Revoking, rotating or disabling through this process's services or models takes effect at
#: once here; other processes (other gunicorn workers, the admin's) follow within this delay.
#: An expiry time is checked on every request, cached or not.
CACHE_SECONDS = 5.0
_CACHE_LIMIT = 10_000
# SHA-256 digest of the token -> (verified record with its partner, monotonic deadline).
_verified: dict[str, tuple[PartnerToken, float]] = {}


class TokenError(Exception):
    """The token cannot be used; `reason` is a stable code, `message` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    record: PartnerToken


def issue_token(partner: Partner, *, expires_at: dt.datetime | None = None) -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = PartnerToken.objects.create(
        partner=partner, prefix=token[:PREFIX_LENGTH], digest=digest_of(token),
        expires_at=expires_at,
    )
    return IssuedToken(token=token, record=record)


def authenticate(token: str) -> PartnerToken:
    """The usable token record for `token`, or TokenError saying why it is refused."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise TokenError("invalid_token", "The token is not an Anshim partner token.")
    record = (
        PartnerToken.objects.select_related("partner").filter(digest=digest_of(token)).first()
    )
    if record is None:
        raise TokenError("invalid_token", "Unknown token.")
    now = timezone.now()
    if record.revoked_at is not None:
        raise TokenError("token_revoked", "This token has been revoked.")
    if record.expires_at is not None and record.expires_at <= now:
        raise TokenError("token_expired", "This token has expired.")
    if not record.partner.active:
        raise TokenError("partner_inactive", "This partner account is disabled.")
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
        PartnerToken.objects.filter(pk=record.pk).update(last_used_at=now)
        record.last_used_at = now
    return record


def authenticate_cached(token: str) -> PartnerToken:
    """`authenticate`, remembered for `CACHE_SECONDS`: the API's per-request check.

    The record (and its partner) is shared by the requests in that window: read it, never
    change it.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise TokenError("invalid_token", "The token is not an Anshim partner token.")
    digest = digest_of(token)
    cached = _verified.get(digest)
    if cached is not None and time.monotonic() < cached[1]:
        record = cached[0]
        if record.expires_at is None or record.expires_at > timezone.now():
            return record
    _verified.pop(digest, None)
    record = authenticate(token)  # raises for refused tokens, which are never cached
    if len(_verified) >= _CACHE_LIMIT:
        _verified.clear()
    _verified[digest] = (record, time.monotonic() + CACHE_SECONDS)
    return record


def forget_cached_tokens() -> None:
    """Ask the database again on the next request (a token or partner changed)."""
    _verified.clear()


def revoke_tokens(partner: Partner) -> int:
    """Revoke every token of the partner, effective immediately. Returns how many."""
    revoked = PartnerToken.objects.filter(partner=partner, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    forget_cached_tokens()
    return revoked


def rotate_token(partner: Partner, *, grace: dt.timedelta = dt.timedelta(0)) -> IssuedToken:
    """Issue a new token; the old ones stop working after `grace` (at once when zero)."""
    now = timezone.now()
    with transaction.atomic():
        live = PartnerToken.objects.select_for_update().filter(
            partner=partner, revoked_at__isnull=True
        )
        if grace > dt.timedelta(0):
            cutoff = now + grace
            for old in live:
                if old.expires_at is None or old.expires_at > cutoff:
                    old.expires_at = cutoff
                    old.save(update_fields=["expires_at"])
        else:
            live.update(revoked_at=now)
        issued = issue_token(partner)
    forget_cached_tokens()
    return issued
