"""Key rotation: add a new primary key, re-encrypt every encrypted column, retire old keys.

Safe to interrupt and re-run: the new key is saved to the key ring *before* any row is
re-encrypted (durably: file and directory fsynced), old keys stay in the ring until no row uses
them, and each batch is its own transaction that re-reads its rows under lock (a concurrent edit
is never overwritten with a stale value). A process killed at any point leaves every row
readable; `anshim keys rotate --resume` finishes the job.

Retiring a key is safe against concurrent writers: a transaction that began before the new
primary key was saved may still hold a value encrypted with the old key that no scan can see
until it commits. So before the usage scan that decides retirement, `writer_barrier()` waits
until every transaction older than the barrier has ended (PostgreSQL: `pg_stat_activity`;
SQLite: taking the write lock, which any open write transaction holds), re-encrypts what those
stragglers wrote, and only then scans and retires.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction

from anshim.security import keyring
from anshim.security.crypto import (
    UNBOUND,
    Seal,
    bound_pk_of,
    decrypt_bound,
    encrypted_fields,
    is_encrypted,
    key_id_of,
)
from anshim.security.keyring import KeyRing, KeyRingError

PLAINTEXT = "(not encrypted)"
DEFAULT_BATCH = 500
BARRIER_TIMEOUT_SECONDS = 600.0


class RotationError(Exception):
    """Rotation cannot proceed (e.g. the key ring comes from ANSHIM_KEYS and must be updated
    by the operator first)."""


@dataclass
class RotationReport:
    primary_id: str
    reencrypted: int = 0
    plaintext_encrypted: int = 0
    bound: int = 0  # unbound values (written before the row had its pk) now bound to it
    # Values bound to another row than the one holding them (copied there): left untouched,
    # so their key is never retired, and reported.
    misplaced: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _columns(model: type[models.Model], attnames: list[str]) -> list[str]:
    return [str(model._meta.get_field(name).column) for name in attnames]  # type: ignore[union-attr]


def _raw_rows(
    model: type[models.Model], attnames: list[str], *, after: object, limit: int,
    pks: list[object] | None = None, lock: bool = False,
) -> list[tuple[object, ...]]:
    """(pk, raw column values...) without the field's decryption, in primary-key order."""
    qn = connection.ops.quote_name
    pk_col = qn(str(model._meta.pk.column))  # type: ignore[union-attr]
    cols = ", ".join(qn(c) for c in _columns(model, attnames))
    sql = f"SELECT {pk_col}, {cols} FROM {qn(model._meta.db_table)}"  # noqa: S608 (quoted names)
    params: list[Any] = []
    if pks is not None:
        sql += f" WHERE {pk_col} IN ({', '.join(['%s'] * len(pks))})"
        params.extend(pks)
    elif after is not None:
        sql += f" WHERE {pk_col} > %s"
        params.append(after)
    sql += f" ORDER BY {pk_col}"
    if pks is None:
        sql += f" LIMIT {int(limit)}"
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _iter_raw(
    model: type[models.Model], attnames: list[str], batch_size: int
) -> Iterator[list[tuple[object, ...]]]:
    after: object = None
    while True:
        rows = _raw_rows(model, attnames, after=after, limit=batch_size)
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _needs_work(value: object, primary_id: str, pk: object = None) -> bool:
    """Not yet under the primary key, or not bound to its row."""
    if value is None or value == "":
        return False
    text = str(value)
    if key_id_of(text) != primary_id:
        return True
    return pk is not None and bound_pk_of(text) != str(pk)


def key_usage(batch_size: int = DEFAULT_BATCH) -> dict[str, Counter[str]]:
    """For every "app.model.field": how many values each key id encrypts."""
    usage: dict[str, Counter[str]] = {}
    for model, attnames in encrypted_fields():
        counters = {name: Counter[str]() for name in attnames}
        for rows in _iter_raw(model, attnames, batch_size):
            for row in rows:
                for name, value in zip(attnames, row[1:], strict=True):
                    if value is None or value == "":
                        continue
                    counters[name][key_id_of(str(value)) or PLAINTEXT] += 1
        for name, counter in counters.items():
            usage[f"{model._meta.label_lower}.{name}"] = counter
    return usage


def unbound_count(batch_size: int = DEFAULT_BATCH) -> int:
    """Encrypted values not bound to their row yet (`rotate --resume` binds them)."""
    n = 0
    for model, attnames in encrypted_fields():
        for rows in _iter_raw(model, attnames, batch_size):
            n += sum(1 for row in rows for v in row[1:]
                     if is_encrypted(v) and bound_pk_of(str(v)) == UNBOUND)
    return n


def total_usage(usage: dict[str, Counter[str]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counter in usage.values():
        total.update(counter)
    return total


def _reencrypt_batch(
    model: type[models.Model], attnames: list[str], pks: list[object], ring: KeyRing,
    report: RotationReport,
) -> None:
    """Decrypt with the old key, save as plaintext through the field (which encrypts with the
    primary key, bound to the row), all under a lock on the rows so a concurrent edit is not
    lost."""
    label = model._meta.label_lower
    with transaction.atomic():
        rows = _raw_rows(model, attnames, after=None, limit=0, pks=pks, lock=True)
        objs = []
        changed: set[str] = set()
        counts = Counter[str]()  # added to the report only when the batch is written
        for row in rows:
            pk = row[0]
            obj = model(pk=pk)
            for name, value in zip(attnames, row[1:], strict=True):
                if value is None or value == "":
                    setattr(obj, name, value)
                    continue
                text = str(value)
                if not is_encrypted(text):
                    counts["plaintext_encrypted"] += 1  # a legacy clear value
                    setattr(obj, name, Seal(text, pk))
                    changed.add(name)
                    continue
                plain, bound = decrypt_bound(text, context=f"{label}.{name}", ring=ring)
                if bound not in (UNBOUND, str(pk)):
                    report.misplaced.append(f"{label}.{name} row {pk} (bound to row {bound})")
                    raise _Misplaced(name)
                if _needs_work(text, ring.primary_id, pk):
                    if key_id_of(text) != ring.primary_id:
                        counts["reencrypted"] += 1
                    if bound == UNBOUND:
                        counts["bound"] += 1
                    changed.add(name)
                setattr(obj, name, Seal(plain, pk))
            objs.append(obj)
        if changed:
            # Every object carries the plaintext of every column, so a listed column is never
            # written as empty for a row that did not itself need work.
            model._base_manager.bulk_update(objs, sorted(changed))
    report.reencrypted += counts["reencrypted"]
    report.plaintext_encrypted += counts["plaintext_encrypted"]
    report.bound += counts["bound"]


class _Misplaced(Exception):
    """A value bound to another row: its batch is redone row by row, skipping that row."""


def _reencrypt(model: type[models.Model], attnames: list[str], pks: list[object],
               ring: KeyRing, report: RotationReport) -> None:
    try:
        _reencrypt_batch(model, attnames, pks, ring, report)
    except _Misplaced:
        if len(pks) == 1:
            return  # that row stays as it is (reported)
        report.misplaced.pop()  # reported again when its own row is redone
        for pk in pks:
            _reencrypt(model, attnames, [pk], ring, report)


BatchHook = Callable[[type[models.Model], int], None]


def reencrypt_all(
    ring: KeyRing, *, batch_size: int = DEFAULT_BATCH, on_batch: BatchHook | None = None,
    fields: list[tuple[type[models.Model], list[str]]] | None = None,
) -> RotationReport:
    """Bring every encrypted value onto `ring`'s primary key, bound to its row (values already
    there are left alone, which is what makes a re-run after an interruption cheap).

    `fields`: the models and columns to work on (a migration passes its historical models)."""
    report = RotationReport(primary_id=ring.primary_id)
    for model, attnames in fields if fields is not None else encrypted_fields():
        for rows in _iter_raw(model, attnames, batch_size):
            pks = [row[0] for row in rows
                   if any(_needs_work(v, ring.primary_id, row[0]) for v in row[1:])]
            if pks:
                _reencrypt(model, attnames, pks, ring, report)
            if on_batch is not None:
                on_batch(model, len(pks))
    return report


def add_primary_key() -> KeyRing:
    """Save a ring with a fresh primary key to the key file (before any row uses it)."""
    if keyring.keys_from_env():
        raise RotationError("The key ring comes from ANSHIM_KEYS.")
    ring = keyring.get_keyring().with_new_primary()
    keyring.write_key_file(ring, keyring.key_file_path())
    keyring.set_keyring(None)  # reload from the file, as every other process will
    return keyring.get_keyring()


def writer_barrier(timeout: float = BARRIER_TIMEOUT_SECONDS, poll: float = 0.2) -> None:
    """Return once every database transaction that was open when this was called has ended.

    Raises `RotationError` (nothing retired) if one is still open after `timeout` seconds."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            (since,) = cursor.fetchone()
            deadline = time.monotonic() + timeout
            while True:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                    "AND xact_start IS NOT NULL AND xact_start < %s", [since])
                older = [pid for (pid,) in cursor.fetchall()]
                if not older:
                    return
                if time.monotonic() > deadline:
                    raise RotationError(
                        f"Transactions older than the new key are still open (server pids "
                        f"{', '.join(map(str, older))}); nothing was retired. Re-run "
                        "`anshim keys rotate --resume --retire-old` later.")
                time.sleep(poll)
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        # BEGIN IMMEDIATE (settings' transaction mode) waits for the write lock, which every
        # open write transaction holds until it commits.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")


def retire_unused_keys(ring: KeyRing, usage: Counter[str]) -> tuple[KeyRing, list[str]]:
    unused = {k for k in ring.keys if k != ring.primary_id and usage.get(k, 0) == 0}
    return ring.without(unused), sorted(unused)


def rotate(
    *, new_key: bool = True, retire_old: bool = False, batch_size: int = DEFAULT_BATCH,
    on_batch: BatchHook | None = None,
) -> RotationReport:
    """The whole rotation. `new_key=False` resumes an interrupted one (or finishes one after
    the operator installed a new ANSHIM_KEYS value)."""
    if new_key:
        ring = add_primary_key()
    else:
        ring = keyring.get_keyring()
    report = reencrypt_all(ring, batch_size=batch_size, on_batch=on_batch)
    if retire_old:
        # Writers that encrypted with an old key before it stopped being primary may not have
        # committed yet: wait for them, then bring what they wrote onto the new key.
        writer_barrier()
        straggled = reencrypt_all(ring, batch_size=batch_size)
        report.reencrypted += straggled.reencrypted
        report.plaintext_encrypted += straggled.plaintext_encrypted
        report.bound += straggled.bound
        report.misplaced = sorted(set(report.misplaced + straggled.misplaced))
    usage = total_usage(key_usage(batch_size))
    if retire_old:
        if usage.get(PLAINTEXT):
            raise RotationError("Some values are still not encrypted; nothing was retired.")
        smaller, retired = retire_unused_keys(ring, usage)
        if retired and not keyring.keys_from_env():
            keyring.write_key_file(smaller, keyring.key_file_path())
            keyring.set_keyring(None)
        report.retired = retired
        ring = smaller
    report.kept = [k for k in ring.keys if k != ring.primary_id]
    return report


def check_readable(batch_size: int = DEFAULT_BATCH) -> list[str]:
    """Every key id in use that the ring lacks (such rows could not be read)."""
    ring = keyring.get_keyring()
    missing = []
    for key_id in total_usage(key_usage(batch_size)):
        if key_id == PLAINTEXT:
            continue
        try:
            ring.get(key_id)
        except KeyRingError:
            missing.append(key_id)
    return missing
