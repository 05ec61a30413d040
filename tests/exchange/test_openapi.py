"""The exchange in the OpenAPI document, and schemathesis against it (every response as
documented, never a server error), positive and negative examples, with a valid token."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from exchange.conftest import random_pdq

pytestmark = pytest.mark.django_db

EXAMPLES = 40  # per operation and mode: the whole run stays well under a minute


def test_openapi_documents_the_exchange(client):
    schema = client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/v1/exchange/fingerprints", "/api/v1/exchange/lookup",
            "/api/v1/exchange/feedback"} <= set(paths)
    lookup = paths["/api/v1/exchange/lookup"]["post"]
    assert lookup["security"] == [{"PartnerBearer": []}]
    assert {"200", "401", "403", "422", "429"} <= set(lookup["responses"])
    assert schema["components"]["securitySchemes"]["PartnerBearer"]["scheme"] == "bearer"


def exercise(operation, mode, headers):
    """Run `EXAMPLES` generated requests of one operation in one generation mode."""
    # Our valid token replaces any deliberately broken one in negative cases, so "ignored
    # auth" is only judged on positive ones (it also probes without auth by itself).
    base_excluded = [ignored_auth] if mode is GenerationMode.NEGATIVE else []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        case.headers = {**(case.headers or {}), **headers}
        response = case.call()
        assert response.status_code < 500, (case.path, response.text[:300])
        excluded = list(base_excluded)
        # A cursor is opaque and signed: one that fits the schema but that we never issued is
        # refused (400 bad_cursor), which that check would call a rejection of valid data.
        if (case.query or {}).get("cursor"):
            excluded.append(positive_data_acceptance)
        case.validate_response(response, excluded_checks=excluded)

    check()


@pytest.fixture
def keep_test_connection():
    """Schemathesis calls the WSGI app directly, so Django would close the database
    connection after each request, in the middle of the test's transaction (Django's own test
    client disconnects this handler the same way)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.usefixtures("keep_test_connection")
def test_schemathesis_finds_no_server_error_and_no_undocumented_response(
        make_bank, add_entry, make_partner, rng):
    from anshim.config.wsgi import application

    bank = make_bank()
    for _ in range(5):
        add_entry(bank, pdq=random_pdq(rng))
    _, token = make_partner(bank, rate_per_minute=10**7, burst=10**7)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application).include(
        path_regex="^/api/v1/exchange/")
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exercise(operation, mode, headers)
    assert time.monotonic() - started < 60
