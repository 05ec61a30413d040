"""Password spraying is throttled per address across usernames; weak passwords are refused by
Django's full validator set (12 characters minimum, common passwords) and by the
decorated-word rule, while the demo and test passwords pass."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from anshim.security.models import AuditEntry, User

pytestmark = pytest.mark.django_db

TEST_PASSWORD = "correct-horse-battery-staple"  # tests/conftest.py


def test_password_spraying_from_one_address_is_locked_out(make_user: Any,
                                                          settings: Any) -> None:
    limit = settings.ANSHIM_LOGIN_ADDRESS_FAILURE_LIMIT
    assert 3 <= limit <= 20
    names = [f"staff{i}" for i in range(limit + 2)]
    for name in names:
        make_user("counselor", username=name)
    sprayer = Client(REMOTE_ADDR="198.51.100.7")
    statuses = [sprayer.post("/staff/login/", {"username": n, "password": "Summer2026!!"})
                .status_code for n in names]
    # One try per username never trips the per-account lockout; the address limit does.
    assert statuses[:limit - 1] == [200] * (limit - 1)
    assert statuses[limit - 1:] == [429] * (len(names) - limit + 1)
    # From that address even a correct password of an untouched account is refused now...
    make_user("counselor", username="fresh")
    response = sprayer.post("/staff/login/", {"username": "fresh", "password": TEST_PASSWORD})
    assert response.status_code == 429 and "_auth_user_id" not in sprayer.session
    # ...while a colleague at another address signs in.
    other = Client(REMOTE_ADDR="198.51.100.8")
    response = other.post("/staff/login/", {"username": "fresh", "password": TEST_PASSWORD})
    assert response.status_code == 302
    lockouts = AuditEntry.objects.filter(action="auth.lockout")
    assert lockouts.exists()
    assert set(lockouts.values_list("reason", flat=True)) == {"scope=address"}


@pytest.mark.parametrize("password", [
    "counselor2024", "Counselor2024!", "supervisor-2026", "anshim12345678", "password1234!",
    "short-pw1", "123456789012345", "kimjiwoo2024", "!!!2024!!!2024!!!",
])
def test_weak_passwords_are_refused(password: str) -> None:
    user = User(username="kimjiwoo", display_name="Kim Jiwoo", role="counselor")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_the_validators_are_djangos_full_set_with_twelve_characters(settings: Any) -> None:
    names = [v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert {"UserAttributeSimilarityValidator", "MinimumLengthValidator",
            "CommonPasswordValidator", "NumericPasswordValidator"} <= set(names)
    minimum = next(v for v in settings.AUTH_PASSWORD_VALIDATORS
                   if v["NAME"].endswith("MinimumLengthValidator"))
    assert minimum["OPTIONS"]["min_length"] == 12


def test_demo_and_fixture_passwords_pass_the_validators() -> None:
    from anshim.cases import demo

    for username, role, display in demo.STAFF:
        user = User(username=username, role=role, display_name=display)
        validate_password(demo.DEMO_PASSWORD, user)
        validate_password(TEST_PASSWORD, user)
    validate_password("a-long-test-passphrase", User(username="hana", display_name="Hana"))


def test_validator_messages_are_in_korean() -> None:
    from django.utils import translation

    with translation.override("ko"), pytest.raises(ValidationError) as caught:
        validate_password("counselor2024", User(username="x"))
    text = " ".join(caught.value.messages)
    assert any("\uac00" <= ch <= "\ud7a3" for ch in text), text
