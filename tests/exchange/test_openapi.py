"""The exchange in the OpenAPI document, and schemathesis against it (every response as
documented, never a server error), positive and negative examples, with a valid token."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from exchange.conftest import random_pdq

pytestmark = pytest.mark.django_db

EXAMPLES = 25  # per operation and mode (5 operations x 2 modes)


PARTNER_DOC = "/api/v1/exchange/openapi.json"


def test_the_partner_api_has_a_document_of_its_own(client):
    schema = client.get(PARTNER_DOC).json()
    assert schema["openapi"].startswith("3.1")
    paths = schema["paths"]
    assert set(paths) == {"/api/v1/exchange/fingerprints", "/api/v1/exchange/hashes",
                          "/api/v1/exchange/lookup", "/api/v1/exchange/feedback",
                          "/api/v1/exchange/feedback/hashes"}
    # Staff operations are not in it; partner operations are not in the staff document.
    staff = client.get("/api/v1/openapi.json").json()
    assert not any(p.startswith("/api/v1/exchange/") for p in staff["paths"])
    assert not any("/cases" in p for p in paths)
    lookup = paths["/api/v1/exchange/lookup"]["post"]
    assert lookup["security"] == [{"PartnerBearer": []}]
    assert {"200", "401", "403", "422", "429"} <= set(lookup["responses"])
    assert schema["components"]["securitySchemes"]["PartnerBearer"]["scheme"] == "bearer"


def test_operation_ids_a_code_generator_can_use(client):
    schema = client.get(PARTNER_DOC).json()
    ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert ids == {"getFingerprints", "getHashList", "lookupHashes", "reportRemoval",
                   "reportHashOpinions"}


def test_enums_error_codes_webhooks_and_retry_after_are_documented(client):
    schema = client.get(PARTNER_DOC).json()
    components = schema["components"]["schemas"]
    error = components["ErrorOut"]
    assert "error" in error["required"]
    assert {"unauthorized", "insufficient_scope", "rate_limited", "not_found",
            "bad_cursor", "invalid_input"} <= set(error["properties"]["error"]["enum"])
    fingerprint = components["FingerprintOut"]["properties"]
    assert fingerprint["kind"]["enum"] == ["pdq", "md5", "sha256", "vpdq"]
    item = components["FeedItemOut"]["properties"]
    assert item["opinion"]["enum"] == ["positive", "negative"]
    assert "allow_list" in item["purpose"]["enum"]
    for path in schema["paths"].values():
        for op in path.values():
            assert op["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"] == (
                "integer")
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"]["$ref"].endswith(
                        "/ErrorOut")
    hook = schema["webhooks"]["fingerprintsChanged"]["post"]
    assert {p["name"] for p in hook["parameters"]} == {"X-Anshim-Timestamp",
                                                         "X-Anshim-Signature"}


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "unauthorized"),
    ({"Authorization": "Bearer anx_nothing-like-a-real-token"}, "unauthorized"),
])
def test_every_error_body_has_an_error_code(client, headers, code):
    response = client.get("/api/v1/exchange/fingerprints", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == code


def test_scope_and_rate_limit_errors_have_codes_and_retry_after(
        make_bank, make_partner, partner_client):
    _, token = make_partner(make_bank(), scopes=("lookup",), rate_per_minute=1, burst=1)
    api = partner_client(token)
    forbidden = api.get("/fingerprints")
    assert (forbidden.status_code, forbidden.json()["error"]) == (403, "insufficient_scope")
    limited = api.get("/fingerprints")
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1


def test_swagger_for_partners_is_served_from_our_origin(client):
    import re

    response = client.get("/api/v1/exchange/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/exchange/openapi.json" in html
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/static/"), url
    assert "cdn" not in html.lower()


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


def _config() -> SchemathesisConfig:
    """A body over the upload limit is refused with the documented 413 payload_too_large
    before its fields are validated; that is a rejection of invalid data too (schemathesis'
    default list of rejection statuses lacks 413, so a >200,000-character vPDQ value that
    also makes the body too large was reported as 'accepted')."""
    default = SchemathesisConfig.from_dict({}).projects.get_default()
    statuses = [*default.checks.negative_data_rejection.expected_statuses, "413"]
    return SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": statuses}}})


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
    schema = schemathesis.openapi.from_wsgi(PARTNER_DOC, application, config=_config())
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exercise(operation, mode, headers)
