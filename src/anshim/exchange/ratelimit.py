"""Per-partner rate limit: a token bucket kept in the database.

The database (not the per-process LocMemCache, the only cache configured) is what every server
process and thread shares, so the limit holds however many workers serve the API. One row per
partner, and one conditional UPDATE per request.
"""

from __future__ import annotations

import math
import threading
import time

from django.db import connection, transaction
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

from anshim.exchange.models import Partner, RateBucket


def take(partner: Partner, cost: float = 1.0, *, now: float | None = None) -> float:
    """Take `cost` tokens. Returns 0 when allowed, else the seconds to wait before retrying."""
    now = time.time() if now is None else now
    rate = partner.rate_per_minute / 60.0
    capacity = float(max(partner.burst, 1))
    # The common case is one conditional UPDATE, atomic without an explicit lock. Raw SQL:
    # the ORM spends more CPU compiling this expression than the database spends running it.
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    available = f"{least}(%s, tokens + {greatest}(0.0, %s - updated) * %s)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {RateBucket._meta.db_table} SET tokens = {available} - %s, updated = %s "  # noqa: S608
            f"WHERE partner_id = %s AND {available} >= %s",
            [capacity, now, rate, cost, now, partner.pk, capacity, now, rate, cost],
        )
        taken = cursor.rowcount
    if taken:
        return 0.0
    bucket = RateBucket.objects.filter(partner=partner).first()
    if bucket is None:
        with transaction.atomic():
            _, created = RateBucket.objects.get_or_create(
                partner=partner, defaults={"tokens": capacity - cost, "updated": now})
        return 0.0 if created else take(partner, cost, now=now)
    tokens = min(capacity, bucket.tokens + max(0.0, now - bucket.updated) * rate)
    if rate <= 0:
        return 60.0
    return max(0.0, cost - tokens) / rate or 1.0 / rate


class PartnerThrottle(BaseThrottle):
    """django-ninja throttle over `take`; ninja answers 429 with Retry-After from `wait()`."""

    def __init__(self) -> None:
        # One instance serves every thread: remember each thread's last wait separately.
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        token = getattr(request, "auth", None)
        partner = getattr(token, "partner", None)
        if partner is None:  # unauthenticated requests never get this far
            return True
        wait = take(partner)
        self._local.wait = wait
        return wait == 0.0

    def wait(self) -> float | None:
        wait = getattr(self._local, "wait", None)
        return None if wait is None else float(max(1, math.ceil(wait)))
