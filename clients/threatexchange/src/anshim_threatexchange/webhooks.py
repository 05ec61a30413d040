"""Verify an Anshim webhook delivery (no Django, no anshim: the standard library only).

Anshim signs every POST to a partner: ``X-Anshim-Signature = hex(HMAC-SHA256(secret,
timestamp + "." + raw body))`` with the Unix time in ``X-Anshim-Timestamp``. Refuse a delivery
whose signature does not match or whose timestamp is more than five minutes away (replays)::

    from anshim_threatexchange import verify_webhook

    if not verify_webhook(SECRET, request.headers, request.get_data()):
        abort(401)
"""

import hashlib
import hmac
import time
import typing as t

SIGNATURE_HEADER = "X-Anshim-Signature"
TIMESTAMP_HEADER = "X-Anshim-Timestamp"
DEFAULT_TOLERANCE = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Anshim sends for `body` at `timestamp`."""
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _header(headers: t.Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; HTTP header names are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return str(value or "")


def verify_webhook(secret: str, headers: t.Mapping[str, str], body: bytes, *,
                   tolerance: int = DEFAULT_TOLERANCE, now: t.Optional[float] = None) -> bool:
    """True when `body` (the raw bytes, before any JSON parsing) was signed by Anshim with
    `secret` within `tolerance` seconds of `now`."""
    timestamp = _header(headers, TIMESTAMP_HEADER)
    sent = _header(headers, SIGNATURE_HEADER)
    if not timestamp.isdigit() or not sent:
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), sent)
