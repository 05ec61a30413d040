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


# --- Issue 17, item 11: values are bound to their row ---------------------------------------


def _raw_name(pk: int) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM cases_person WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def _set_raw_name(pk: int, value: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_person SET name = %s WHERE id = %s", [value, pk])


def test_values_are_bound_to_their_row(db: Any, key_file: Path) -> None:
    from anshim.cases.models import Person
    from anshim.security.crypto import bound_pk_of

    person = Person.objects.create(name="first")  # auto-increment: bound right after insert
    assert bound_pk_of(_raw_name(person.pk)) == str(person.pk)
    person.name = "second"
    person.save()
    assert bound_pk_of(_raw_name(person.pk)) == str(person.pk)
    assert Person.objects.get(pk=person.pk).name == "second"
    assert bound_pk_of(encrypt("x", context="c", ring=KeyRing.generate())) == ""  # unbound


def test_value_swapped_between_rows_is_refused(db: Any, key_file: Path) -> None:
    from anshim.cases.models import Person

    victim = Person.objects.create(name="Victim Kim")
    other = Person.objects.create(name="Other Lee")
    _set_raw_name(other.pk, _raw_name(victim.pk))  # same column, another row
    with pytest.raises(DecryptionError, match=f"belongs to row {victim.pk}"):
        Person.objects.get(pk=other.pk)
    assert Person.objects.get(pk=victim.pk).name == "Victim Kim"


def test_changed_row_binding_fails_to_decrypt(db: Any, key_file: Path) -> None:
    from anshim.cases.models import Person

    a = Person.objects.create(name="A")
    b = Person.objects.create(name="B")
    stored = _raw_name(a.pk)
    _set_raw_name(b.pk, stored.replace(f"@{a.pk}:", f"@{b.pk}:"))  # claim row b
    with pytest.raises(DecryptionError, match="Cannot decrypt"):
        Person.objects.get(pk=b.pk)


def test_rotation_binds_unbound_values_and_leaves_misplaced_ones(db: Any,
                                                                 key_file: Path) -> None:
    from anshim.cases.models import Person
    from anshim.security import rotation
    from anshim.security.crypto import bound_pk_of

    old = keyring.get_keyring().primary_id
    unbound = Person.objects.create(name="x")
    _set_raw_name(unbound.pk, encrypt("legacy unbound", context="cases.person.name"))
    victim = Person.objects.create(name="Victim Kim")
    copy = Person.objects.create(name="y")
    _set_raw_name(copy.pk, _raw_name(victim.pk))
    report = rotation.rotate(retire_old=True)
    assert report.bound == 1 and bound_pk_of(_raw_name(unbound.pk)) == str(unbound.pk)
    assert Person.objects.get(pk=unbound.pk).name == "legacy unbound"
    assert report.misplaced == [f"cases.person.name row {copy.pk} (bound to row {victim.pk})"]
    assert report.retired == []  # the misplaced value still uses the old key: kept
    assert old in keyring.get_keyring().keys
    with pytest.raises(DecryptionError):
        Person.objects.get(pk=copy.pk)  # never laundered into a valid value of that row


def test_migration_binds_existing_values(db: Any, key_file: Path) -> None:
    import importlib

    from django.apps import apps

    from anshim.cases.models import Person
    from anshim.security.crypto import bound_pk_of

    people = [Person.objects.create(name=f"p{i}") for i in range(3)]
    for p in people:
        _set_raw_name(p.pk, encrypt(f"p{p.pk}", context="cases.person.name"))
    migration = importlib.import_module(
        "anshim.security.migrations.0005_bind_encrypted_values_to_rows")
    migration.bind(apps, None)
    for p in people:
        assert bound_pk_of(_raw_name(p.pk)) == str(p.pk)
        assert Person.objects.get(pk=p.pk).name == f"p{p.pk}"
