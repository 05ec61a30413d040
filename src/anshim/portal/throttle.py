"""Brute-force protection for the status sign-in: backoff, then lockout.

Both the case code and the client address are throttled, and the response never says whether a
code exists: an unknown code and a wrong passphrase count and read the same.

The address budget is larger than a code's: many children reach us from behind the same school
or carrier address, and a code is what an attacker actually guesses at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from anshim.portal.models import AccessThrottle

MAX_BACKOFF = dt.timedelta(minutes=5)
LOCKOUT = dt.timedelta(minutes=30)
FORGET_AFTER = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Budget:
    """How many failures are free, and after how many the key is locked out."""

    free_attempts: int
    lockout_after: int


CODE_BUDGET = Budget(free_attempts=3, lockout_after=10)
ADDRESS_BUDGET = Budget(free_attempts=10, lockout_after=50)


@dataclass(frozen=True)
class ThrottleKey:
    key: str
    budget: Budget


@dataclass(frozen=True)
class ThrottleState:
    allowed: bool
    retry_after_seconds: int = 0


def key_for(kind: str, value: str) -> str:
    """A SHA-256 digest: the table holds neither codes nor addresses."""
    return hashlib.sha256(f"anshim-portal:{kind}:{value}".encode()).hexdigest()


def code_key(code: str) -> ThrottleKey:
    return ThrottleKey(key_for("code", code), CODE_BUDGET)


def address_key(address: str) -> ThrottleKey:
    return ThrottleKey(key_for("addr", address), ADDRESS_BUDGET)


def backoff(failures: int, budget: Budget) -> dt.timedelta:
    """The wait after `failures` failures: none, then 2, 4, 8 ... seconds, then the lockout."""
    if failures >= budget.lockout_after:
        return LOCKOUT
    if failures <= budget.free_attempts:
        return dt.timedelta(0)
    return min(dt.timedelta(seconds=2 ** (failures - budget.free_attempts)), MAX_BACKOFF)


def check(keys: list[ThrottleKey]) -> ThrottleState:
    now = timezone.now()
    wait = 0
    for row in AccessThrottle.objects.filter(key__in=[k.key for k in keys]):
        if row.blocked_until and row.blocked_until > now:
            wait = max(wait, int((row.blocked_until - now).total_seconds()) + 1)
    return ThrottleState(allowed=wait == 0, retry_after_seconds=wait)


def record_failure(keys: list[ThrottleKey]) -> None:
    now = timezone.now()
    with transaction.atomic():
        for tk in keys:
            row, _ = AccessThrottle.objects.select_for_update().get_or_create(key=tk.key)
            if row.last_failure_at and now - row.last_failure_at > FORGET_AFTER:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            wait = backoff(row.failures, tk.budget)
            row.blocked_until = now + wait if wait else None
            row.save()


def record_success(key: ThrottleKey) -> None:
    # Only the code's counter is cleared: clearing the address counter would let someone who
    # holds one valid case reset their guessing budget for other codes.
    AccessThrottle.objects.filter(key=key.key).delete()


def forget_old(now: dt.datetime | None = None) -> int:
    """Delete rows with no failure for FORGET_AFTER (run from a periodic task)."""
    now = now or timezone.now()
    deleted, _ = AccessThrottle.objects.filter(last_failure_at__lt=now - FORGET_AFTER).delete()
    return deleted
