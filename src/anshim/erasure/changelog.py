"""The bank change log: writers serialise so that sequence order is also commit order.

PostgreSQL hands out sequence values at insert time, not at commit: without care a transaction
holding seq 10 could commit after one holding seq 11, and a matcher that had already read
`max(seq) = 11` would never see change 10. Every writer therefore takes one transaction-scoped
advisory lock before writing change rows (exclusive), and a matcher that loads a consistent
snapshot takes it shared. SQLite already serialises writers (IMMEDIATE transactions), so there
the lock is a no-op.

Lock order, everywhere (docs/erasure.md): this change-log lock first, then row locks
(sightings, takedown requests, their deliveries, bank entries; each in primary-key order), the
audit head last (the audit entry is an action's last write). A transaction that already wrote
an audit entry must not take this lock afterwards: that is the inversion that deadlocked
consent withdrawal against registrations (fixed by withdrawing in the `consent_withdrawn`
receiver, before the caller audits).
"""

from __future__ import annotations

from django.db import connection

#: Arbitrary, fixed advisory lock key ("ANSHIMBK" as 8 ASCII bytes, as a signed 64-bit int).
CHANGE_LOG_LOCK_KEY = int.from_bytes(b"ANSHIMBK", "big", signed=True)


def lock_change_log(*, shared: bool = False) -> None:
    """Take the change-log lock until the end of the current transaction (call inside atomic)."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [CHANGE_LOG_LOCK_KEY])
