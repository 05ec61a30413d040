"""Database triggers that make the audit table append-only, for SQLite and PostgreSQL.

Used by migration 0002 and by `suspended_triggers()` (tests and the tamper drills only):
the statements must stay stable, since a migration depends on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

TABLE = "security_auditentry"
MESSAGE = "anshim: the audit log is append-only"

CREATE: dict[str, list[str]] = {
    "sqlite": [
        f"CREATE TRIGGER IF NOT EXISTS anshim_audit_no_update BEFORE UPDATE ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;",
        f"CREATE TRIGGER IF NOT EXISTS anshim_audit_no_delete BEFORE DELETE ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION anshim_audit_append_only() RETURNS trigger AS $$ "
        f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege'; END; "
        "$$ LANGUAGE plpgsql;",
        f"DROP TRIGGER IF EXISTS anshim_audit_no_change ON {TABLE};",
        f"CREATE TRIGGER anshim_audit_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
        "FOR EACH ROW EXECUTE FUNCTION anshim_audit_append_only();",
    ],
}

DROP: dict[str, list[str]] = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS anshim_audit_no_update;",
        "DROP TRIGGER IF EXISTS anshim_audit_no_delete;",
    ],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS anshim_audit_no_change ON {TABLE};",
        "DROP FUNCTION IF EXISTS anshim_audit_append_only();",
    ],
}


def create_triggers(using: str = "default") -> None:
    connection = connections[using]
    with connection.cursor() as cursor:
        for sql in CREATE.get(connection.vendor, []):
            cursor.execute(sql)


def drop_triggers(using: str = "default") -> None:
    connection = connections[using]
    with connection.cursor() as cursor:
        for sql in DROP.get(connection.vendor, []):
            cursor.execute(sql)


@contextmanager
def suspended_triggers(using: str = "default") -> Iterator[None]:
    """Lift append-only protection for the duration (test clean-up and tamper drills only).

    Needs DDL rights, which the production database role should not have on this table.
    """
    drop_triggers(using)
    try:
        yield
    finally:
        create_triggers(using)
