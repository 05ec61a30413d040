"""Sign-in throttling: backoff, lockout, identical answers for unknown codes and wrong
passphrases, and a success that clears only the code's counter."""

from __future__ import annotations

import datetime as dt
import re

import pytest
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
    b = throttle.CODE_BUDGET
    assert [throttle.backoff(n, b).total_seconds() for n in range(1, 9)] == \
        [0, 0, 0, 2, 4, 8, 16, 32]
    assert throttle.backoff(b.lockout_after, b) == throttle.LOCKOUT
    assert throttle.backoff(9, b) <= throttle.MAX_BACKOFF


def test_keys_are_digests_not_codes():
    key = throttle.code_key("AN-2345-67").key
    assert len(key) == 64 and "AN" not in key
    assert throttle.code_key("AN-2345-67") != throttle.address_key("AN-2345-67")


def test_record_failure_then_check_blocks():
    keys = [throttle.code_key("AN-AAAA-AA")]
    for _ in range(throttle.CODE_BUDGET.free_attempts):
        throttle.record_failure(keys)
        assert throttle.check(keys).allowed
    throttle.record_failure(keys)
    state = throttle.check(keys)
    assert not state.allowed and 1 <= state.retry_after_seconds <= 3


def test_failures_are_forgotten_after_a_day():
    keys = [throttle.code_key("AN-BBBB-BB")]
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
    for attempt in range(1, throttle.CODE_BUDGET.lockout_after + 1):
        response = client.post(SIGN_IN, data)
        assert response.status_code == 400, attempt
        if attempt > throttle.CODE_BUDGET.free_attempts:
            blocked = client.post(SIGN_IN, data)
            assert blocked.status_code == 429
            assert int(blocked["Retry-After"]) >= 1
            unblock() if attempt < throttle.CODE_BUDGET.lockout_after else None
    locked = client.post(SIGN_IN, data)
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 29 * 60
    # Locked out: even the right passphrase is refused until the lockout ends.
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
        for _ in range(throttle.CODE_BUDGET.free_attempts + 1):
            client.post(SIGN_IN, {"code": code, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
        answers.append(client.post(SIGN_IN, {"code": code, "passphrase": "x"}))
    assert [a.status_code for a in answers] == [429, 429]
    assert answers[0]["Retry-After"] == answers[1]["Retry-After"]
    assert visible(answers[0]) == visible(answers[1])


def test_success_resets_the_code_counter_only(client, portal_case, settings):
    case, passphrase = portal_case
    for _ in range(2):
        client.post(SIGN_IN, {"code": case.code, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
    response = client.post(SIGN_IN, {"code": case.code, "passphrase": passphrase})
    assert response.status_code == 302 and response["Location"] == "/status/"
    assert not AccessThrottle.objects.filter(key=throttle.code_key(case.code).key).exists()
    addr = AccessThrottle.objects.get(key=throttle.address_key("127.0.0.1").key)
    assert addr.failures == 2


def test_address_is_throttled_across_codes(client):
    budget = throttle.ADDRESS_BUDGET
    for i in range(budget.free_attempts + 1):
        code = f"AN-{i:04d}-XY".replace("0", "2").replace("1", "3")
        client.post(SIGN_IN, {"code": code, "passphrase": "WRNG-WRNG-WRNG-WRNG"})
    response = client.post(SIGN_IN, {"code": "AN-9999-99", "passphrase": "x"})
    assert response.status_code == 429
