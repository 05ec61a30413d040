"""Schemathesis against the staff API (cases and experts) as a signed-in supervisor: whatever
it sends (NUL bytes and other control characters included), never a server error. Runs on
SQLite and, in `make test-postgres`, on PostgreSQL, where NUL used to end in a 500."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

pytestmark = pytest.mark.django_db

EXAMPLES = 12  # per operation and mode: about a minute for the whole staff API
CSRF = "b2a" * 10 + "ok"  # an unmasked 32-character secret: cookie and header alike


@pytest.fixture
def keep_test_connection() -> Any:
    """Schemathesis calls the WSGI app directly: keep Django from closing the test's database
    connection after each request (its test client disconnects the same handlers)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def supervisor_cookies(make_user: Any, login_client: Any) -> dict[str, str]:
    from django.test import Client

    from anshim.cases.models import Case, Person

    user = make_user("supervisor", username="schema-sup")
    person = Person.objects.create(name="Schema Person")
    Case.objects.create(code="AN-SCHM-1A", person=person, channel="phone", lead_counselor=user)
    client = login_client(user, Client())
    return {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF}


def _exercise(operation: Any, mode: GenerationMode, cookies: dict[str, str],
              statuses: list[int]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        # Our session and CSRF token replace whatever was generated for them.
        case.cookies = {**(case.cookies or {}), **cookies}
        case.headers = {**(case.headers or {}), "X-CSRFToken": CSRF}
        response = case.call()
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.method, case.path, case.path_parameters,
                                            case.query, case.body, response.text[:300])

    check()


@pytest.mark.slow
@pytest.mark.usefixtures("keep_test_connection")
def test_staff_api_never_answers_a_server_error(supervisor_cookies: dict[str, str]) -> None:
    from anshim.config.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application).include(
        path_regex="^/api/v1/(cases|experts)")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    statuses: list[int] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _exercise(operation, mode, supervisor_cookies, statuses)
    # Signed in for real: many requests got through to the operations themselves.
    assert sum(200 <= s < 300 for s in statuses) >= 20, sorted(set(statuses))
    assert 422 in statuses
