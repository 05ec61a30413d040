"""HMAC signatures of outgoing HTTP bodies (partner webhooks, takedown notices by partner API).

One scheme for everything Anshim POSTs to a partner, so a partner verifies both the same way:
``X-Anshim-Signature = hex(HMAC-SHA256(secret, timestamp + "." + body))`` with the Unix time in
``X-Anshim-Timestamp``; receivers refuse timestamps older than 5 minutes (replay) and compare in
constant time. Kept here, below the apps, so that exchange and erasure both use it without
importing each other.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Anshim-Signature"
TIMESTAMP_HEADER = "X-Anshim-Timestamp"
#: How old a signed timestamp a receiver should accept, in seconds.
DEFAULT_TOLERANCE = 300


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    message = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers for `body`, signed now."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(secret: str, timestamp: str, body: bytes, signature: str,
           *, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None) -> bool:
    """The check a receiver runs (the reference implementation, used by the tests)."""
    now = time.time() if now is None else now
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)
