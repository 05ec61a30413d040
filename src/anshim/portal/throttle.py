"""Portal status sign-in: throttle the attacker, never the victim.

What is counted (every key a SHA-256 digest: the table holds neither codes nor addresses):

- the client and the code together (`pair_key`): a client that keeps failing on one code waits,
  then is locked out of that code;
- the client across all codes (`address_key`): a client guessing many codes is slowed down and
  locked out (a larger budget: many children reach us through one school or carrier address);
- the code alone (`code_watch_key`): counted but never blocking. A stranger who knows a case
  code must not be able to lock the victim out by failing on purpose, so the victim signing in
  from any other client is not slowed by someone else's failures. Instead, many failures on one
  code alert the case's counselors (`ALERT_AT`), who can reach the victim and issue a new
  passphrase.

Why the code itself needs no lock: the passphrase has 79 bits of entropy and each try costs an
Argon2 check. Even a botnet with a million addresses, each held to its per-client budget, stays
many orders of magnitude short of guessing it, while a per-code lock hands every such attacker a
way to keep a child out of their own case. docs/portal.md gives the reasoning in full.

The response never says whether a code exists: an unknown code and a wrong passphrase count and
read the same.
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


PAIR_BUDGET = Budget(free_attempts=3, lockout_after=10)  # one client on one code
ADDRESS_BUDGET = Budget(free_attempts=10, lockout_after=50)  # one client on any code
# Counting only: a code's failures from every client together never block anybody.
WATCH_BUDGET = Budget(free_attempts=2**31, lockout_after=2**31)
# A code's failures (from all clients, within FORGET_AFTER) at which its counselors are alerted.
ALERT_AT = (20, 200, 2000)


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


def pair_key(address: str, code: str) -> ThrottleKey:
    return ThrottleKey(key_for("pair", f"{address}\n{code}"), PAIR_BUDGET)


def address_key(address: str) -> ThrottleKey:
    return ThrottleKey(key_for("addr", address), ADDRESS_BUDGET)


def code_watch_key(code: str) -> ThrottleKey:
    return ThrottleKey(key_for("code", code), WATCH_BUDGET)


def blocking_keys(address: str, code: str) -> list[ThrottleKey]:
    """The keys that may refuse a sign-in from `address` for `code` (never the code alone)."""
    return [pair_key(address, code), address_key(address)]


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


def record_failure(keys: list[ThrottleKey]) -> dict[str, int]:
    """Count a failure on every key; returns each key's failure count (within FORGET_AFTER)."""
    now = timezone.now()
    counts: dict[str, int] = {}
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
            counts[tk.key] = row.failures
    return counts


def record_success(key: ThrottleKey) -> None:
    # Only this client's counter for this code is cleared: clearing the address counter would
    # let someone who holds one valid case reset their guessing budget for other codes, and
    # clearing the code's watch counter would hide an ongoing attack from the counselors.
    AccessThrottle.objects.filter(key=key.key).delete()


def forget_old(now: dt.datetime | None = None) -> int:
    """Delete rows with no failure for FORGET_AFTER (run from a periodic task)."""
    now = now or timezone.now()
    deleted, _ = AccessThrottle.objects.filter(last_failure_at__lt=now - FORGET_AFTER).delete()
    return deleted
