"""Per-partner token bucket, shared through the database; 429 with Retry-After."""

from __future__ import annotations

import pytest

from anshim.exchange.ratelimit import take

pytestmark = pytest.mark.django_db


def test_bucket_empties_then_refills(make_partner):
    partner, _ = make_partner(rate_per_minute=60, burst=3)
    now = 1_000_000.0
    assert [take(partner, now=now) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = take(partner, now=now)
    assert wait == pytest.approx(1.0)
    assert take(partner, now=now + 1.01) == 0.0
    assert take(partner, now=now + 1.02) > 0
    # A long pause refills to the burst size, no more.
    assert [take(partner, now=now + 1000) for _ in range(4)][-1] > 0


def test_partners_have_separate_buckets(make_partner):
    a, _ = make_partner(rate_per_minute=60, burst=1)
    b, _ = make_partner(rate_per_minute=60, burst=1)
    assert take(a, now=5.0) == 0.0
    assert take(a, now=5.0) > 0
    assert take(b, now=5.0) == 0.0


def test_api_answers_429_with_retry_after(make_bank, make_partner, partner_client):
    _, token = make_partner(make_bank(), rate_per_minute=6, burst=2)
    api = partner_client(token)
    assert api.get("/fingerprints").status_code == 200
    assert api.get("/fingerprints").status_code == 200
    response = api.get("/fingerprints")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["detail"]


def test_buckets_stay_out_of_the_write_ahead_log_on_postgresql():
    from django.db import connection

    from anshim.exchange.models import RateBucket

    if connection.vendor != "postgresql":
        pytest.skip("UNLOGGED tables are a PostgreSQL feature")
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = %s",
                       [RateBucket._meta.db_table])
        assert cursor.fetchone() == ("u",)
