"""Anonymity by design: what a student's submission leaves in the database, and what it
cannot be joined to."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from anshim.prevention import services
from anshim.prevention.models import ClassSession, HelpRequest, Response

IP = "203.0.113.77"
UA = "AnshimTestPhone/1.0 (Marker)"


def _everything_in_the_database() -> str:
    """Every row of every table as text (the raw columns, as stored)."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            parts.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(parts)


def _submit(client: Any, cs: ClassSession, answers: dict, key: str) -> Any:
    return client.post(f"/s/{cs.short_code}/submit/", json.dumps({"key": key, "answers": answers}),
                       content_type="application/json", REMOTE_ADDR=IP, HTTP_USER_AGENT=UA,
                       HTTP_X_FORWARDED_FOR=IP)


def test_no_ip_or_user_agent_in_the_database_after_a_submission(
        client: Any, class_session: ClassSession, good_answers: dict) -> None:
    assert client.get(f"/s/{class_session.short_code}/", REMOTE_ADDR=IP,
                      HTTP_USER_AGENT=UA).status_code == 200
    response = _submit(client, class_session, good_answers, "k" * 32)
    assert response.status_code == 201, response.content
    help_response = client.post("/s/help/", json.dumps(
        {"key": "h" * 32, "contact": "phone", "detail": "010-1234-5678", "message": "help"}),
        content_type="application/json", REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    assert help_response.status_code == 200, help_response.content
    dump = _everything_in_the_database()
    assert IP not in dump
    assert UA not in dump and "AnshimTestPhone" not in dump
    sheet = Response.objects.get()
    assert sheet.answers["age"] == 14
    # The date and the class session only: no time of day anywhere on the sheet.
    fields = {f.name for f in Response._meta.get_fields()}
    assert fields == {"id", "class_session", "version", "submitted_on", "key_hash", "answers"}
    assert not any(f.get_internal_type() == "DateTimeField" for f in Response._meta.fields)


def test_submissions_are_not_audited(client: Any, class_session: ClassSession,
                                     good_answers: dict) -> None:
    from anshim.security.models import AuditEntry

    before = AuditEntry.objects.count()
    assert _submit(client, class_session, good_answers, "k" * 32).status_code == 201
    assert AuditEntry.objects.count() == before  # an audit row would time-stamp the sheet


def test_the_help_request_cannot_be_joined_to_the_answers(
        client: Any, class_session: ClassSession, good_answers: dict) -> None:
    # No relation either way between the help request and answers or class sessions.
    related = {f.related_model for f in HelpRequest._meta.get_fields() if f.is_relation}
    assert Response not in related and ClassSession not in related
    assert not any(f.related_model is HelpRequest for f in Response._meta.get_fields()
                   if f.is_relation)
    # The only column both tables have is a date; neither has a time of day.
    help_columns = {f.column for f in HelpRequest._meta.fields}
    response_columns = {f.column for f in Response._meta.fields}
    assert help_columns & response_columns == {"id", "key_hash"}
    assert not any(f.get_internal_type() == "DateTimeField" for f in HelpRequest._meta.fields)
    # A help request and an answer sheet made on the same phone carry unrelated keys.
    assert _submit(client, class_session, good_answers, "s" * 32).status_code == 201
    assert client.post("/s/help/", json.dumps(
        {"key": "t" * 32, "contact": "sms", "detail": "010 9999 8888"}),
        content_type="application/json").status_code == 200
    sheet, card = Response.objects.get(), HelpRequest.objects.get()
    assert sheet.key_hash != card.key_hash
    # The counselor's case carries nothing of the answers either.
    case = card.case
    assert case is not None and case.channel == "portal"
    assert "someone asked for photos" not in case.summary
    assert class_session.short_code not in case.summary
    assert card.contact_detail == "010 9999 8888"


def test_help_request_creates_a_counselor_intake_and_is_idempotent(db: Any) -> None:
    from anshim.cases.models import Case

    data = services.HelpRequestData(key="x" * 32, contact_preference="email",
                                    contact_detail="student@example.invalid",
                                    message="please call")
    assert services.request_help(data).created
    assert not services.request_help(data).created  # a resend: the same request
    case = Case.objects.get()
    assert case.status == "triaged"
    assert case.person.email == "student@example.invalid"
    assert HelpRequest.objects.count() == 1


@pytest.mark.parametrize(("contact", "detail"), [("phone", ""), ("email", "no-at-sign"),
                                                 ("phone", "12"), ("portal", "x@y.z")])
def test_help_request_needs_a_usable_contact(db: Any, contact: str, detail: str) -> None:
    with pytest.raises(services.InvalidInput):
        services.request_help(services.HelpRequestData(key="y" * 32,
                                                       contact_preference=contact,
                                                       contact_detail=detail))
    assert not HelpRequest.objects.exists()


def test_counselor_sees_help_requests_but_no_answers(login_client: Any, make_user: Any,
                                                     class_session: ClassSession,
                                                     good_answers: dict, client: Any) -> None:
    services.request_help(services.HelpRequestData(key="z" * 32, contact_preference="phone",
                                                   contact_detail="010-2222-3333"))
    counselor = login_client(make_user("counselor"))
    page = counselor.get("/staff/prevention/help-requests/")
    assert page.status_code == 200
    assert HelpRequest.objects.get().case.code in page.content.decode()
    # ... and nothing else of the prevention team's.
    assert counselor.get(f"/staff/prevention/surveys/{class_session.version.survey_id}/"
                         ).status_code == 403
