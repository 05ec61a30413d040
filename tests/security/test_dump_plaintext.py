"""A dump of the whole database must not contain any personal data in the clear."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from .factories import BIRTH_DATE, PLAIN, make_case_data

pytestmark = pytest.mark.django_db

SECRETS = [*PLAIN.values(), BIRTH_DATE.isoformat()]


def _table_dump() -> str:
    """Every row of every table, as text, read with raw SQL (no field decryption)."""
    qn = connection.ops.quote_name
    chunks: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if connection.vendor == "postgresql":
                cursor.execute(f"SELECT t::text FROM {qn(table)} AS t")
            else:
                cursor.execute(f"SELECT * FROM {qn(table)}")
            for row in cursor.fetchall():
                chunks.append(" | ".join(_as_text(v) for v in row))
    return "\n".join(chunks)


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _assert_clean(dump: str) -> None:
    leaked = [s for s in SECRETS if s in dump]
    assert not leaked, f"plaintext found in the database dump: {leaked}"


@pytest.fixture
def case_data(make_user: Any) -> dict[str, Any]:
    data = make_case_data(make_user("counselor"), make_user("expert"))
    # Sanity check: the values really are there, readable through the ORM.
    from anshim.cases.models import Person

    person = Person.objects.get(pk=data["person"].pk)
    assert person.name == PLAIN["name"] and person.birth_date == BIRTH_DATE
    return data


def test_raw_table_dump_holds_no_plaintext(case_data: dict[str, Any]) -> None:
    dump = _table_dump()
    assert "AS-DUMP-1" in dump  # the dump does see the data (case codes are in the clear)
    assert "enc1:" in dump
    _assert_clean(dump)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's iterdump")
def test_sqlite_iterdump_holds_no_plaintext(case_data: dict[str, Any]) -> None:
    connection.ensure_connection()
    dump = "\n".join(connection.connection.iterdump())
    assert "AS-DUMP-1" in dump
    _assert_clean(dump)


def test_audit_entries_hold_no_plaintext(case_data: dict[str, Any], make_user: Any) -> None:
    from anshim.security import audit

    user = make_user("supervisor")
    audit.record(actor=user, action="person.view", target=case_data["person"],
                 case=case_data["case"])
    audit.record(actor=user, action="case.view", target=case_data["case"])
    _assert_clean(_table_dump())
