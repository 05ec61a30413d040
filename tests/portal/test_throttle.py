"""Sign-in throttling: backoff, lockout, identical answers for unknown codes and wrong
passphrases, a success that clears only this client's counter for the code, and (issue 16
item 3) a stranger who knows a case code cannot lock the victim out."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from anshim.portal import throttle
from anshim.portal.models import AccessThrottle

pytestmark = pytest.mark.django_db

SIGN_IN = "/status/sign-in/"


def unblock() -> None:
    """Let the backoff pass without waiting for it."""
    AccessThrottle.objects.update(blocked_until=timezone.now() - dt.timedelta(seconds=1))


def visible(response) -> str:
    """The page without the per-response CSRF token."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_backoff_schedule():
    b = throttle.PAIR_BUDGET
    assert [throttle.backoff(n, b).total_seconds() for n in range(1, 9)] == \
        [0, 0, 0, 2, 4, 8, 16, 32]
    assert throttle.backoff(b.lockout_after, b) == throttle.LOCKOUT
    assert throttle.backoff(9, b) <= throttle.MAX_BACKOFF


def test_keys_are_digests_not_codes():
    key = throttle.pair_key("127.0.0.1", "AN-2345-67").key
    assert len(key) == 64 and "AN" not in key and "127" not in key
    assert throttle.code_watch_key("AN-2345-67") != throttle.address_key("AN-2345-67")


def test_record_failure_then_check_blocks():
    keys = [throttle.pair_key("10.0.0.1", "AN-AAAA-AA")]
    for _ in range(throttle.PAIR_BUDGET.free_attempts):
        throttle.record_failure(keys)
        assert throttle.check(keys).allowed
    throttle.record_failure(keys)
    state = throttle.check(keys)
    assert not state.allowed and 1 <= state.retry_after_seconds <= 3


def test_failures_are_forgotten_after_a_day():
    keys = [throttle.pair_key("10.0.0.1", "AN-BBBB-BB")]
    for _ in range(5):
        throttle.record_failure(keys)
    AccessThrottle.objects.update(last_failure_at=timezone.now() - dt.timedelta(days=2),
                                  blocked_until=None)
    throttle.record_failure(keys)
    assert AccessThrottle.objects.get().failures == 1
    assert throttle.forget_old(timezone.now() + dt.timedelta(days=2)) == 1


def test_wrong_passphrase_backs_off_then_locks_out(client, portal_case):
    case, _ = portal_case
    data = {"code": case.code, "passphrase": "WRNG-WRNG-WRNG-WRNG"}
    for attempt in range(1, throttle.PAIR_BUDGET.lockout_after + 1):
        response = client.post(SIGN_IN, data)
        assert response.status_code == 400, attempt
        if attempt > throttle.PAIR_BUDGET.free_attempts:
            blocked = client.post(SIGN_IN, data)
            assert blocked.status_code == 429
            assert int(blocked["Retry-After"]) >= 1
            unblock() if attempt < throttle.PAIR_BUDGET.lockout_after else None
    locked = client.post(SIGN_IN, data)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 29 * 60
    # Locked out: even the right passphrase is refused from this client until the lockout ends.
    _, passphrase = portal_case
    assert client.post(SIGN_IN, {"code": case.code, "passphrase": passphrase}).status_code == 429


def test_unknown_code_and_wrong_passphrase_answer_identically(client, portal_case):
    case, _ = portal_case
    other = "AN-2222-2" + ("2" if case.code != "AN-2222-22" else "3")
    wrong = client.post(SIGN_IN, {"code": case.code, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
    unknown = client.post(SIGN_IN, {"code": other, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
    malformed = client.post(SIGN_IN, {"code": "nonsense", "passphrase": "x"})
    assert wrong.status_code == unknown.status_code == malformed.status_code == 400
    assert visible(wrong) == visible(unknown) == visible(malformed)
    assert case.code not in visible(wrong)


def test_throttled_answers_are_identical_for_unknown_and_known_codes(client, portal_case):
    case, _ = portal_case
    answers = []
    for code in (case.code, "AN-3333-33"):
        for _ in range(throttle.PAIR_BUDGET.free_attempts + 1):
            client.post(SIGN_IN, {"code": code, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
        answers.append(client.post(SIGN_IN, {"code": code, "passphrase": "x"}))
    assert [a.status_code for a in answers] == [429, 429]
    assert answers[0]["Retry-After"] == answers[1]["Retry-After"]
    assert visible(answers[0]) == visible(answers[1])


def test_success_resets_this_clients_code_counter_only(client, portal_case, settings):
    case, passphrase = portal_case
    for _ in range(2):
        client.post(SIGN_IN, {"code": case.code, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
    response = client.post(SIGN_IN, {"code": case.code, "passphrase": passphrase})
    assert response.status_code == 302 and response["Location"] == "/status/"
    pair = throttle.pair_key("127.0.0.1", case.code).key
    assert not AccessThrottle.objects.filter(key=pair).exists()
    addr = AccessThrottle.objects.get(key=throttle.address_key("127.0.0.1").key)
    assert addr.failures == 2
    # The code's watch counter stays: an attack in progress is not hidden by the victim.
    watch = AccessThrottle.objects.get(key=throttle.code_watch_key(case.code).key)
    assert watch.failures == 2 and watch.blocked_until is None


def test_address_is_throttled_across_codes(client):
    budget = throttle.ADDRESS_BUDGET
    for i in range(budget.free_attempts + 1):
        code = f"AN-{i:04d}-XY".replace("0", "2").replace("1", "3")
        client.post(SIGN_IN, {"code": code, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
    response = client.post(SIGN_IN, {"code": "AN-9999-99", "passphrase": "x"})
    assert response.status_code == 429


# --- A stranger who knows the code (issue 16 item 3) ------------------------------------------


def test_stranger_cannot_lock_the_victim_out(client, portal_case):
    """Before: 4 wrong passphrases from another client gave the victim a 429; 10 gave a
    30-minute lockout, renewable."""
    case, passphrase = portal_case
    wrong = {"code": case.code, "passphrase": "WRNG-WRNG-WRNG-WRNG"}
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(throttle.PAIR_BUDGET.lockout_after + 2):
        attacker.post(SIGN_IN, wrong)
        unblock()  # the attacker waits out every backoff; the code alone is never blocked
    locked = attacker.post(SIGN_IN, wrong)
    assert locked.status_code in (400, 429)
    victim = Client(REMOTE_ADDR="198.51.100.7")
    response = victim.post(SIGN_IN, {"code": case.code, "passphrase": passphrase})
    assert response.status_code == 302 and response["Location"] == "/status/"


def test_the_attacker_is_throttled(portal_case):
    case, passphrase = portal_case
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    wrong = {"code": case.code, "passphrase": "WRNG-WRNG-WRNG-WRNG"}
    for _ in range(throttle.PAIR_BUDGET.free_attempts + 1):
        assert attacker.post(SIGN_IN, wrong).status_code == 400
    assert attacker.post(SIGN_IN, wrong).status_code == 429
    for _ in range(throttle.PAIR_BUDGET.lockout_after):
        unblock()
        attacker.post(SIGN_IN, wrong)
    response = attacker.post(SIGN_IN, {"code": case.code, "passphrase": passphrase})
    assert response.status_code == 429 and int(response["Retry-After"]) > 29 * 60


def test_a_throttled_client_is_shown_how_to_reach_the_center(portal_case, settings):
    settings.ANSHIM_CENTER_PHONE = "1899-0000"  # the center's number, from settings
    case, _ = portal_case
    shared = Client(REMOTE_ADDR="192.0.2.1", HTTP_ACCEPT_LANGUAGE="en")
    for _ in range(throttle.PAIR_BUDGET.free_attempts + 1):
        shared.post(SIGN_IN, {"code": case.code, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
    response = shared.post(SIGN_IN, {"code": case.code, "passphrase": "x"})
    assert response.status_code == 429
    html = response.content.decode()
    assert 'id="reach-us"' in html and 'href="tel:1899-0000"' in html
    assert 'href="/report/"' in html and "112" in html


def test_many_failures_on_one_code_alert_its_counselors(portal_case, make_user, monkeypatch):
    from anshim.cases.models import Notification, TimelineEvent
    from anshim.security.models import AuditEntry

    monkeypatch.setattr(throttle, "ALERT_AT", (5, 50))  # each try costs an Argon2 check

    case, _ = portal_case
    supervisor = make_user("supervisor")  # nobody assigned yet: the supervisors hear of it
    wrong = {"code": case.code, "passphrase": "WRNG-WRNG-WRNG-WRNG"}
    for i in range(throttle.ALERT_AT[0]):
        Client(REMOTE_ADDR=f"203.0.113.{i + 1}").post(SIGN_IN, wrong)
    note = Notification.objects.get(recipient=supervisor)
    assert case.code in note.message
    assert TimelineEvent.objects.filter(case=case, kind="portal.sign_in_failures").count() == 1
    assert AuditEntry.objects.filter(action="portal.sign_in.failures", case_id=case.pk).exists()
    # An unknown code alerts nobody (and answers as before).
    for i in range(throttle.ALERT_AT[0]):
        Client(REMOTE_ADDR=f"203.0.113.{i + 1}").post(
            SIGN_IN, {"code": "AN-3333-33", "passphrase": "x"})
    assert Notification.objects.count() == 1
