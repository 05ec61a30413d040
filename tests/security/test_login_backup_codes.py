"""Backup (static) codes on the second-factor page: the demo's printed codes work, once each,
and every use or refusal is audited."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from anshim.security.models import AuditEntry

PASSWORD = "anshim-demo-2026"  # the demo password (anshim.cases.demo.DEMO_PASSWORD)
LANDING = "/staff/cases/"  # the counselor's start page
SUPERVISOR_LANDING = "/staff/reports/"  # the supervisor's: the dashboard


def _demo_login(username: str = "counselor") -> Any:
    from anshim.cases import demo

    role = dict((u, r) for u, r, _ in demo.STAFF)[username]
    user = demo.ensure_user(username, role, username)
    return user, demo.ensure_second_factor(user)


def _password_step(client: Client, username: str) -> None:
    response = client.post("/staff/login/", {"username": username, "password": PASSWORD})
    assert response["Location"] == "/staff/otp/"


@pytest.mark.django_db
def test_the_printed_backup_code_signs_in_once() -> None:
    user, login = _demo_login()
    client = Client()
    _password_step(client, "counselor")
    page = client.get("/staff/otp/").content.decode()
    assert 'name="backup_code"' in page
    # As printed, upper case and grouped by a human: still the same code.
    typed = f"{login.backup_code[:5].upper()} {login.backup_code[5:]}"
    response = client.post("/staff/otp/", {"backup_code": typed}, follow=True)
    assert response.redirect_chain[0][0] == LANDING
    assert client.get("/staff/")["Location"] == LANDING  # fully signed in
    used = AuditEntry.objects.get(action="auth.otp_backup")
    assert used.actor_id == user.pk and used.reason == "remaining=0"
    assert login.backup_code not in str(used.__dict__)

    # The same code a second time, from another browser: refused, audited.
    again = Client()
    _password_step(again, "counselor")
    response = again.post("/staff/otp/", {"backup_code": login.backup_code})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert again.get("/staff/")["Location"] == "/staff/otp/"
    assert AuditEntry.objects.filter(action="auth.otp_backup_failed").count() == 1


@pytest.mark.django_db
def test_running_the_demo_again_restores_the_printed_code() -> None:
    _, login = _demo_login("supervisor")
    client = Client()
    _password_step(client, "supervisor")
    client.post("/staff/otp/", {"backup_code": login.backup_code})
    _, again = _demo_login("supervisor")
    assert again.backup_code == login.backup_code
    fresh = Client()
    _password_step(fresh, "supervisor")
    assert fresh.post("/staff/otp/",
                      {"backup_code": login.backup_code})["Location"] == SUPERVISOR_LANDING


@pytest.mark.django_db
@pytest.mark.parametrize("data", [{"backup_code": "ab"}, {"backup_code": "x" * 30},
                                  {"backup_code": "백업코드입니다"},
                                  {"token": "123456", "backup_code": "abcdefgh"}, {}])
def test_malformed_backup_codes_give_a_form_error(data: dict[str, str]) -> None:
    _demo_login()
    client = Client()
    _password_step(client, "counselor")
    response = client.post("/staff/otp/", data)
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


@pytest.mark.django_db
def test_wrong_backup_codes_are_throttled() -> None:
    _, login = _demo_login()
    client = Client()
    _password_step(client, "counselor")
    for _ in range(3):
        client.post("/staff/otp/", {"backup_code": "zzzzzzzzzz"})
    # Even the right code waits while the device is throttled.
    response = client.post("/staff/otp/", {"backup_code": login.backup_code})
    assert response.status_code == 200
    assert "auth.otp_backup" not in set(AuditEntry.objects.values_list("action", flat=True))


@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
                    reason="SQLite's shared in-memory test database cannot serve threads; "
                           "PostgreSQL runs this")
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_uses_of_one_code_let_one_through() -> None:
    from anshim.security import services

    user, login = _demo_login()
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def use() -> None:
        try:
            barrier.wait()
            results.append(services.use_backup_code(user, login.backup_code).device is not None)
        finally:
            connection.close()

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
