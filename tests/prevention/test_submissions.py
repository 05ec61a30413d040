"""Class sessions and submissions: one sheet per device, resends never double, closing."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from anshim.prevention import services
from anshim.prevention.models import ClassSession, Response


def _post(client: Any, cs: ClassSession, key: str, answers: dict) -> Any:
    return client.post(f"/s/{cs.short_code}/submit/", json.dumps({"key": key, "answers": answers}),
                       content_type="application/json")


def test_offline_resubmission_never_doubles(client: Any, class_session: ClassSession,
                                           good_answers: dict) -> None:
    key = "device-key-0123456789abcdef"
    first = _post(client, class_session, key, good_answers)
    assert first.status_code == 201 and first.json() == {"ok": True, "duplicate": False}
    # The phone did not see the answer (network dropped) and sends the queued sheet again,
    # twice; and once more with edited answers.
    for answers in (good_answers, good_answers, {**good_answers, "age": "15"}):
        again = _post(client, class_session, key, answers)
        assert again.status_code == 200 and again.json()["duplicate"] is True
    assert Response.objects.count() == 1
    assert Response.objects.get().answers["age"] == 14  # the first sheet stands
    # Another phone is another sheet.
    assert _post(client, class_session, "another-device-key-987654321", good_answers
                 ).status_code == 201
    assert Response.objects.count() == 2


def test_the_page_without_javascript_is_idempotent_too(client: Any, class_session: ClassSession,
                                                       good_answers: dict) -> None:
    page = client.get(f"/s/{class_session.short_code}/")
    key = page.context["key"]
    data = {**good_answers, "key": key}
    for _ in range(2):  # a double tap on "send"
        response = client.post(f"/s/{class_session.short_code}/", data)
        assert response.status_code == 200
    assert Response.objects.count() == 1


def test_invalid_answers_are_refused_and_nothing_is_stored(client: Any,
                                                           class_session: ClassSession,
                                                           good_answers: dict) -> None:
    bad = _post(client, class_session, "k" * 20, {**good_answers, "age": "40"})
    assert bad.status_code == 422
    assert bad.json()["errors"] == {"age": "constraint"}
    page = client.post(f"/s/{class_session.short_code}/", {**good_answers, "age": "",
                                                           "key": "q" * 20})
    assert page.status_code == 422
    assert "Please answer this question." in page.content.decode() or "질문" in \
        page.content.decode()
    assert page.context["questions"][1]["children"][1]["value"] == "female"  # kept
    assert not Response.objects.exists()


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", json.dumps({"key": "short",
                                                                         "answers": {}}).encode(),
                                  json.dumps({"key": "k" * 20, "answers": [1]}).encode()])
def test_bad_requests_get_a_clear_4xx(client: Any, class_session: ClassSession,
                                      body: bytes) -> None:
    response = client.post(f"/s/{class_session.short_code}/submit/", body,
                           content_type="application/json")
    assert 400 <= response.status_code < 500
    assert "code" in response.json()


def test_closed_and_unknown_class_sessions(client: Any, officer: Any,
                                           class_session: ClassSession,
                                           good_answers: dict) -> None:
    assert _post(client, ClassSession(short_code="ZZZZZZ"), "k" * 20, good_answers
                 ).status_code == 404
    services.close_class_session(officer, class_session)
    # Sheets answered offline before the close still arrive within the grace period...
    assert _post(client, class_session, "late-phone-key-0000000", good_answers
                 ).status_code == 201
    assert client.get(f"/s/{class_session.short_code}/").status_code == 410  # no new ones
    # ... but not after it.
    later = timezone.now() + services.SUBMIT_GRACE + dt.timedelta(minutes=1)
    with pytest.raises(services.ClassClosed):
        services.submit_response(class_session.short_code, "later-phone-key-00000",
                                 good_answers, now=later)


def test_short_code_page_finds_the_class(client: Any, class_session: ClassSession) -> None:
    response = client.get("/s/", {"code": class_session.short_code.lower()})
    assert response.status_code == 302
    assert response["Location"].endswith(f"/s/{class_session.short_code}/")


def test_only_published_versions_open_class_sessions(officer: Any, school: Any) -> None:
    from .forms import kobo_style_form

    survey = services.create_survey(officer, title="Draft", content=kobo_style_form(),
                                    filename="f.xlsx")
    with pytest.raises(services.NotPublished):
        services.open_class_session(officer, survey.versions.get(), school=school, grade=5)


@pytest.mark.django_db(transaction=True)
def test_concurrent_resends_store_one_sheet(officer: Any, school: Any,
                                            good_answers: dict) -> None:
    from .forms import kobo_style_form

    survey = services.create_survey(officer, title="", content=kobo_style_form(),
                                    filename="f.xlsx")
    version = services.publish_version(officer, survey.versions.get())
    cs = services.open_class_session(officer, version, school=school, grade=8)
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        try:
            barrier.wait()
            results.append(services.submit_response(cs.short_code, "same-key-123456789",
                                                    good_answers).created)
        except Exception as exc:  # collected and asserted below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results)) == ["False", "False", "False", "True"], results
    assert Response.objects.count() == 1
