"""Database triggers that make the audit table append-only, for SQLite and PostgreSQL, and
the grants of the PostgreSQL runtime role that cannot lift them.

Used by migrations 0002/0003 and by `suspended_triggers()` (tests and the tamper drills only):
the statements must stay stable, since a migration depends on them.

On PostgreSQL a trigger can be dropped or disabled only by the table's owner (or a superuser),
so production runs with two roles: the owner, which runs `anshim migrate`, and a runtime role
for the web server and the workers with the grants of `runtime_role_sql()`: ordinary data
access everywhere, but on the audit table only SELECT and INSERT (docs/deployment.md,
"PostgreSQL roles").
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


HEAD_TABLE = "security_audithead"


def runtime_role_sql(role: str, schema: str = "public") -> list[str]:
    """GRANT statements for the runtime role (run them as the owner after each `migrate`).

    The role gets SELECT/INSERT/UPDATE/DELETE on every table and the sequences, never
    ownership, TRUNCATE, REFERENCES or TRIGGER; the audit table loses UPDATE and DELETE too, so
    even without the triggers the role could only append."""
    if not role.replace("_", "").isalnum():
        raise ValueError(f"Not a plain role name: {role!r}")
    r, s = f'"{role}"', f'"{schema}"'
    return [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r};",
        f"GRANT USAGE ON SCHEMA {s} TO {r};",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r};",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {r};",
        f"REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER ON {s}.{TABLE} FROM {r};",
        f"REVOKE DELETE, TRUNCATE ON {s}.{HEAD_TABLE} FROM {r};",
        f"REVOKE CREATE ON SCHEMA {s} FROM {r};",
    ]


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
