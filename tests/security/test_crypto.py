"""AES-GCM values and the key ring: round trips, tampering, wrong context, missing keys."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from anshim.security import keyring
from anshim.security.crypto import (
    DecryptionError,
    EncryptedDateField,
    decrypt,
    encrypt,
    key_id_of,
)
from anshim.security.keyring import KEY_BYTES, KeyRing, KeyRingError, write_key_file


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate()


def test_round_trip_and_format(ring: KeyRing) -> None:
    stored = encrypt("안심 상담 기록", context="cases.note.body", ring=ring)
    assert stored.startswith(f"enc1:{ring.primary_id}:")
    assert "안심" not in stored
    assert key_id_of(stored) == ring.primary_id
    assert decrypt(stored, context="cases.note.body", ring=ring) == "안심 상담 기록"


def test_same_plaintext_gives_different_ciphertexts(ring: KeyRing) -> None:
    assert encrypt("x", context="c", ring=ring) != encrypt("x", context="c", ring=ring)


def test_tampered_ciphertext_is_refused(ring: KeyRing) -> None:
    stored = encrypt("secret", context="c", ring=ring)
    prefix, key_id, b64 = stored.split(":", 2)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    with pytest.raises(DecryptionError):
        decrypt(f"{prefix}:{key_id}:{base64.b64encode(bytes(raw)).decode()}", context="c",
                ring=ring)


@pytest.mark.parametrize("bad", ["plain text", "enc1:", "enc1:k1", "enc2:k:AAAA",
                                 "enc1:{kid}:not-base64!!", "enc1:{kid}:AAAA"])
def test_malformed_values_are_refused(ring: KeyRing, bad: str) -> None:
    with pytest.raises(DecryptionError):
        decrypt(bad.format(kid=ring.primary_id), context="c", ring=ring)


def test_value_moved_to_another_column_is_refused(ring: KeyRing) -> None:
    stored = encrypt("secret", context="cases.person.name", ring=ring)
    with pytest.raises(DecryptionError):
        decrypt(stored, context="cases.person.phone", ring=ring)


def test_missing_key_is_a_decryption_error(ring: KeyRing) -> None:
    stored = encrypt("secret", context="c", ring=ring)
    other = KeyRing.generate()
    with pytest.raises(DecryptionError, match="not in the key ring"):
        decrypt(stored, context="c", ring=other)


def test_old_keys_still_decrypt_after_new_primary(ring: KeyRing) -> None:
    stored = encrypt("old", context="c", ring=ring)
    newer = ring.with_new_primary()
    assert newer.primary_id != ring.primary_id and ring.primary_id in newer.keys
    assert decrypt(stored, context="c", ring=newer) == "old"
    assert key_id_of(encrypt("new", context="c", ring=newer)) == newer.primary_id
    with pytest.raises(DecryptionError):
        decrypt(stored, context="c", ring=newer.without({ring.primary_id}))


def test_json_round_trip(ring: KeyRing) -> None:
    newer = ring.with_new_primary()
    assert KeyRing.from_json(newer.to_json()) == newer


def test_env_value_round_trip(ring: KeyRing) -> None:
    newer = ring.with_new_primary()
    again = KeyRing.from_env_value(newer.to_env_value())
    assert again.primary_id == newer.primary_id and again.keys == newer.keys


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        "{}",
        '{"primary": "a", "keys": []}',
        '{"primary": "a", "keys": [{"id": "a"}]}',
        '{"primary": "a", "keys": [{"id": "a", "key": "!!!"}]}',
        '{"primary": "a", "keys": [{"id": "a", "key": "AAAA"}]}',  # 3 bytes, not 32
        '{"primary": "b", "keys": [{"id": "a", "key": "' + "A" * 43 + '="}]}',  # no primary
        '{"primary": "a", "keys": "abc"}',
    ],
)
def test_malformed_key_file_is_refused(text: str) -> None:
    with pytest.raises(KeyRingError):
        KeyRing.from_json(text)


def test_duplicate_key_ids_are_refused() -> None:
    key = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    with pytest.raises(KeyRingError):
        KeyRing.from_env_value(f"a:{key},a:{key}")
    doc = {"primary": "a", "keys": [{"id": "a", "key": key}, {"id": "a", "key": key}]}
    with pytest.raises(KeyRingError):
        KeyRing.from_json(json.dumps(doc))


@pytest.mark.parametrize("value", ["", "nocolon", "a:!!!", "a:AAAA", ":" + "A" * 44,
                                   "a:b:c"])
def test_malformed_env_value_is_refused(value: str) -> None:
    with pytest.raises(KeyRingError):
        KeyRing.from_env_value(value)


def test_key_file_is_private_and_created_once(key_file: Path) -> None:
    ring = keyring.get_keyring()
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o077 == 0
    keyring.set_keyring(None)
    assert keyring.get_keyring() == ring  # loaded again, not regenerated
    assert [p.name for p in key_file.parent.iterdir()] == [key_file.name]  # no temp files


def test_malformed_key_file_is_not_replaced(key_file: Path) -> None:
    key_file.write_text("garbage")
    with pytest.raises(KeyRingError, match="Malformed"):
        keyring.get_keyring()
    assert key_file.read_text() == "garbage"


def test_changed_key_file_is_picked_up(key_file: Path) -> None:
    first = keyring.get_keyring()
    newer = first.with_new_primary()
    write_key_file(newer, key_file)
    assert keyring.get_keyring().primary_id == newer.primary_id


def test_env_keys_take_precedence(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = KeyRing.generate()
    monkeypatch.setenv("ANSHIM_KEYS", ring.to_env_value())
    assert keyring.get_keyring() == ring
    assert not key_file.exists()


def test_encrypted_date_field_round_trip(db: Any, key_file: Path) -> None:
    from anshim.cases.models import Person

    person = Person.objects.create(birth_date=dt.date(2010, 1, 2), name="")
    person.refresh_from_db()
    assert person.birth_date == dt.date(2010, 1, 2)
    assert person.name == ""
    person.birth_date = "2010-03-04"
    person.save()
    person.refresh_from_db()
    assert person.birth_date == dt.date(2010, 3, 4)
    assert EncryptedDateField().to_python(None) is None


def test_tampered_column_fails_to_load(db: Any, key_file: Path) -> None:
    from django.db import connection

    from anshim.cases.models import Person

    person = Person.objects.create(name="secret name")
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM cases_person WHERE id = %s", [person.pk])
        stored = cursor.fetchone()[0]
        tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
        cursor.execute("UPDATE cases_person SET name = %s WHERE id = %s", [tampered, person.pk])
    with pytest.raises(DecryptionError):
        Person.objects.get(pk=person.pk)
