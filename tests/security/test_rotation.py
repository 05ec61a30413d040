"""`anshim keys rotate`: re-encryption, resuming after an interruption, retiring keys."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from anshim.security import keyring, rotation
from anshim.security.crypto import encrypted_fields, key_id_of
from anshim.security.keyring import KeyRing

from .factories import BIRTH_DATE, PLAIN, make_case_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(key_file: Path, make_user: Any) -> dict[str, Any]:
    return make_case_data(make_user("counselor"), make_user("expert"))


def _raw_key_ids() -> set[str | None]:
    """The key id of every non-empty encrypted value, read straight from the tables."""
    qn = connection.ops.quote_name
    found: set[str | None] = set()
    with connection.cursor() as cursor:
        for model, names in encrypted_fields():
            for name in names:
                column = model._meta.get_field(name).column
                cursor.execute(f"SELECT {qn(column)} FROM {qn(model._meta.db_table)}")
                found.update(key_id_of(v) for (v,) in cursor.fetchall() if v)
    return found


def _assert_readable() -> None:
    from anshim.cases.models import Note, Person
    from anshim.experts.models import Assignment, SessionLog

    person = Person.objects.get(phone__isnull=False, birth_date__isnull=False)
    assert (person.name, person.birth_date, person.phone, person.email, person.address) == (
        PLAIN["name"], BIRTH_DATE, PLAIN["phone"], PLAIN["email"], PLAIN["address"])
    assert Note.objects.get().body == PLAIN["note"]
    assert Assignment.objects.get().brief == PLAIN["brief"]
    assert SessionLog.objects.get().summary == PLAIN["session"]


def test_rotation_round_trip(data: dict[str, Any]) -> None:
    old = keyring.get_keyring().primary_id
    assert _raw_key_ids() == {old}
    report = rotation.rotate(batch_size=2)
    new = keyring.get_keyring().primary_id
    assert new != old and report.primary_id == new
    assert report.reencrypted >= 15
    assert _raw_key_ids() == {new}
    assert old in keyring.get_keyring().keys  # kept until --retire-old
    _assert_readable()


def test_retire_old_removes_unused_keys(data: dict[str, Any], key_file: Path) -> None:
    old = keyring.get_keyring().primary_id
    report = rotation.rotate(retire_old=True)
    ring = KeyRing.from_json(key_file.read_text())
    assert report.retired == [old]
    assert list(ring.keys) == [ring.primary_id]
    keyring.set_keyring(None)
    _assert_readable()


def test_interrupted_rotation_resumes(data: dict[str, Any], key_file: Path) -> None:
    old = keyring.get_keyring().primary_id
    calls = {"n": 0}

    def crash_after_first_batch(model: Any, n: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotation.rotate(batch_size=1, on_batch=crash_after_first_batch)
    ring = KeyRing.from_json(key_file.read_text())
    new = ring.primary_id
    assert new != old and set(ring.keys) == {old, new}  # the old key is still there
    assert _raw_key_ids() == {old, new}  # half done
    keyring.set_keyring(None)
    _assert_readable()  # both halves readable meanwhile

    # Even --retire-old cannot remove a key that rows still use.
    report = rotation.rotate(new_key=False, retire_old=True)
    assert report.primary_id == new and report.retired == [old]
    assert _raw_key_ids() == {new}
    _assert_readable()


def test_retire_keeps_keys_still_in_use(data: dict[str, Any]) -> None:
    ring = keyring.get_keyring()
    smaller, retired = rotation.retire_unused_keys(
        ring.with_new_primary(), rotation.total_usage(rotation.key_usage()))
    assert retired == [] and ring.primary_id in smaller.keys


def test_values_written_during_rotation_use_the_new_key(data: dict[str, Any]) -> None:
    from anshim.cases.models import Note

    rotation.rotate()
    note = Note.objects.create(case=data["case"], body="written after")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM cases_note WHERE id = %s", [note.pk])
        assert key_id_of(cursor.fetchone()[0]) == keyring.get_keyring().primary_id


def test_plaintext_value_gets_encrypted(data: dict[str, Any]) -> None:
    from anshim.cases.models import Note

    note = Note.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_note SET body = %s WHERE id = %s", ["legacy", note.pk])
    assert rotation.total_usage(rotation.key_usage())[rotation.PLAINTEXT] == 1
    report = rotation.rotate(new_key=False)
    assert report.plaintext_encrypted == 1
    assert Note.objects.get().body == "legacy"


def test_keys_command_status_and_rotate(data: dict[str, Any], key_file: Path) -> None:
    old = keyring.get_keyring().primary_id
    out = StringIO()
    call_command("keys", "status", stdout=out)
    assert f"{old} (primary)" in out.getvalue()
    assert "cases.person.name" in out.getvalue()
    out = StringIO()
    call_command("keys", "rotate", "--retire-old", stdout=out)
    new = keyring.get_keyring().primary_id
    assert f"Primary key is now {new}" in out.getvalue()
    assert f"Retired keys: {old}" in out.getvalue()
    out = StringIO()
    call_command("keys", "status", stdout=out)
    assert f"{new} (primary)" in out.getvalue() and old not in out.getvalue()


def test_keys_rotate_with_env_keys_explains(data: dict[str, Any],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ring = keyring.get_keyring()
    monkeypatch.setenv("ANSHIM_KEYS", ring.to_env_value())
    out = StringIO()
    call_command("keys", "rotate", stdout=out)
    text = out.getvalue()
    assert "ANSHIM_KEYS=" in text and "--resume" in text
    value = text.split("ANSHIM_KEYS=")[-1].strip()
    newer = KeyRing.from_env_value(value)
    assert ring.primary_id in newer.keys and newer.primary_id != ring.primary_id
    assert _raw_key_ids() == {ring.primary_id}  # nothing re-encrypted yet
    # The operator installs the value, then resumes.
    monkeypatch.setenv("ANSHIM_KEYS", value)
    call_command("keys", "rotate", "--resume", "--retire-old", stdout=(out := StringIO()))
    assert _raw_key_ids() == {newer.primary_id}
    assert newer.without({ring.primary_id}).to_env_value() in out.getvalue()
    _assert_readable()
