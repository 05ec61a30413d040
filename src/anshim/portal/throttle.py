"""Brute-force protection for the status sign-in: backoff, then lockout.

Both the case code and the client address are throttled, and the response never says whether a
code exists: an unknown code and a wrong passphrase count and read the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from anshim.portal.models import AccessThrottle

FREE_ATTEMPTS = 3  # then each failure doubles the wait: 2, 4, 8, ... seconds
MAX_BACKOFF = dt.timedelta(minutes=5)
LOCKOUT_AFTER = 10  # failures on one code (or from one address)
LOCKOUT = dt.timedelta(minutes=30)
FORGET_AFTER = dt.timedelta(hours=24)


@dataclass(frozen=True)
class ThrottleState:
    allowed: bool
    retry_after_seconds: int = 0


def key_for(kind: str, value: str) -> str:
    return hashlib.sha256(f"anshim-portal:{kind}:{value}".encode()).hexdigest()


def check(keys: list[str]) -> ThrottleState:
    now = timezone.now()
    wait = 0
    for row in AccessThrottle.objects.filter(key__in=keys):
        if row.blocked_until and row.blocked_until > now:
            wait = max(wait, int((row.blocked_until - now).total_seconds()) + 1)
    return ThrottleState(allowed=wait == 0, retry_after_seconds=wait)


def record_failure(keys: list[str]) -> None:
    now = timezone.now()
    with transaction.atomic():
        for key in keys:
            row, _ = AccessThrottle.objects.select_for_update().get_or_create(key=key)
            if row.last_failure_at and now - row.last_failure_at > FORGET_AFTER:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            if row.failures >= LOCKOUT_AFTER:
                row.blocked_until = now + LOCKOUT
            elif row.failures > FREE_ATTEMPTS:
                backoff = dt.timedelta(seconds=2 ** (row.failures - FREE_ATTEMPTS))
                row.blocked_until = now + min(backoff, MAX_BACKOFF)
            row.save()


def record_success(code_key: str) -> None:
    # Only the code's counter is cleared: clearing the address counter would let someone who
    # holds one valid case reset their guessing budget for other codes.
    AccessThrottle.objects.filter(key=code_key).delete()
