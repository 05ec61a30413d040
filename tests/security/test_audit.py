"""The audit log: recording, the hash chain, tamper detection, triggers, concurrency."""

from __future__ import annotations

import itertools
import threading
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.test import RequestFactory

from anshim.security import audit
from anshim.security.audit_triggers import suspended_triggers
from anshim.security.models import AuditEntry, AuditHead

pytestmark = pytest.mark.django_db


def _write(n: int, actor: Any = None) -> list[AuditEntry]:
    return [audit.record(actor=actor, action=f"test.action{i}", reason=f"r{i}") for i in range(n)]


def _raw(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def test_record_captures_who_what_where_why(make_user: Any) -> None:
    from anshim.cases.models import Case, Channel, Note, Person

    user = make_user("counselor")
    person = Person.objects.create(name="x")
    case = Case.objects.create(code="AS-TEST-1", person=person, channel=Channel.PHONE)
    note = Note.objects.create(case=case, author=user, body="b")
    request = RequestFactory().get("/staff/cases/", HTTP_USER_AGENT="Mozilla/5.0 Test")
    request.client_address = "203.0.113.7"  # type: ignore[attr-defined]
    entry = audit.record(actor=user, action="note.view", target=note, request=request,
                         reason="follow-up call")
    entry.refresh_from_db()
    assert entry.seq >= 1
    assert entry.actor_id == user.pk
    assert entry.actor_username == user.username
    assert entry.actor_role == "counselor"
    assert entry.action == "note.view"
    assert entry.target_model == "cases.note"
    assert entry.target_pk == str(note.pk)
    assert entry.case_id == case.pk and entry.case_code == "AS-TEST-1"  # found via note.case
    assert entry.client_address == "203.0.113.7"
    assert entry.user_agent == "Mozilla/5.0 Test"
    assert entry.reason == "follow-up call"
    assert entry.entry_hash == audit.compute_hash(audit.entry_values(entry))


def test_case_target_is_its_own_case(make_user: Any) -> None:
    from anshim.cases.models import Case, Channel, Person

    case = Case.objects.create(code="AS-TEST-2", person=Person.objects.create(),
                               channel=Channel.WEB)
    entry = audit.record(actor=make_user("supervisor"), action="case.view", target=case)
    assert entry.case_code == "AS-TEST-2" and entry.case_id == case.pk


def test_anonymous_actor_and_typed_username() -> None:
    entry = audit.record(actor=None, action="auth.login_failed", actor_username="mallory")
    assert entry.actor_id is None and entry.actor_username == "mallory"
    assert entry.actor_role == ""


def test_chain_links_each_entry_to_the_one_before() -> None:
    entries = _write(4)
    assert entries[0].prev_hash == audit.GENESIS_HASH or entries[0].seq > 1
    for before, after in itertools.pairwise(entries):
        assert after.seq == before.seq + 1
        assert after.prev_hash == before.entry_hash
    assert audit.head_hash() == (entries[-1].seq, entries[-1].entry_hash)
    result = audit.verify_chain()
    assert result.ok and result.entries == 4 and result.bad_entry_id is None


def test_empty_log_verifies() -> None:
    result = audit.verify_chain()
    assert result.ok and result.entries == 0


def test_orm_update_and_delete_are_refused_by_the_database() -> None:
    entry = _write(1)[0]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="changed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    entry.reason = "changed again"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        entry.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _raw("DELETE FROM security_auditentry")
    assert AuditEntry.objects.get(pk=entry.pk).reason == "r0"


def test_edited_entry_is_detected() -> None:
    entries = _write(5)
    with suspended_triggers():
        _raw("UPDATE security_auditentry SET reason = %s WHERE id = %s",
             ["nothing to see", entries[2].pk])
    result = audit.verify_chain()
    assert not result.ok
    assert result.problem is audit.Problem.EDITED
    assert result.bad_entry_id == entries[2].pk
    assert "edited" in result.message


def test_edited_actor_is_detected() -> None:
    entries = _write(3)
    with suspended_triggers():
        _raw("UPDATE security_auditentry SET actor_username = 'someone-else' WHERE id = %s",
             [entries[0].pk])
    result = audit.verify_chain()
    assert result.problem is audit.Problem.EDITED and result.bad_entry_id == entries[0].pk


def test_removed_entry_is_detected() -> None:
    entries = _write(5)
    with suspended_triggers():
        _raw("DELETE FROM security_auditentry WHERE id = %s", [entries[2].pk])
    result = audit.verify_chain()
    assert not result.ok
    assert result.problem is audit.Problem.REMOVED
    assert result.bad_entry_id == entries[3].pk
    assert f"jumps from {entries[1].seq} to {entries[3].seq}" in result.message


def test_removed_last_entry_is_detected_through_the_head() -> None:
    entries = _write(3)
    with suspended_triggers():
        _raw("DELETE FROM security_auditentry WHERE id = %s", [entries[2].pk])
    result = audit.verify_chain()
    assert result.problem is audit.Problem.REMOVED
    assert "ends at seq" in result.message


def test_removed_and_renumbered_is_detected() -> None:
    entries = _write(4)
    with suspended_triggers():
        _raw("DELETE FROM security_auditentry WHERE id = %s", [entries[1].pk])
        # Two steps: PostgreSQL checks the unique seq row by row during one UPDATE.
        _raw("UPDATE security_auditentry SET seq = seq + 1000000 WHERE seq > %s", [entries[1].seq])
        _raw("UPDATE security_auditentry SET seq = seq - 1000001 WHERE seq > 1000000")
        _raw("UPDATE security_audithead SET seq = seq - 1")
    result = audit.verify_chain()
    assert not result.ok
    assert result.bad_entry_id == entries[2].pk
    assert result.problem in (audit.Problem.REMOVED, audit.Problem.EDITED)


def test_swapped_entries_are_detected() -> None:
    entries = _write(5)
    a, b = entries[1], entries[2]
    with suspended_triggers():
        # Exchange the positions of two entries (via a temporary value: seq is unique).
        _raw("UPDATE security_auditentry SET seq = %s WHERE id = %s", [10**9, a.pk])
        _raw("UPDATE security_auditentry SET seq = %s WHERE id = %s", [a.seq, b.pk])
        _raw("UPDATE security_auditentry SET seq = %s WHERE id = %s", [b.seq, a.pk])
    result = audit.verify_chain()
    assert not result.ok
    assert result.problem is audit.Problem.REORDERED
    assert result.bad_entry_id == b.pk
    assert "reordered" in result.message


def test_swapped_row_contents_are_detected() -> None:
    entries = _write(4)
    a, b = entries[1], entries[2]
    cols = [f for f in audit.HASHED_FIELDS] + ["entry_hash"]
    with suspended_triggers():
        # Move every column of the two rows into the other row (ids stay where they were).
        _raw("UPDATE security_auditentry SET seq = %s, entry_hash = %s WHERE id = %s",
             [10**9, "x" * 64, a.pk])
        sets = ", ".join(f"{c} = %s" for c in cols)
        _raw(f"UPDATE security_auditentry SET {sets} WHERE id = %s",
             [*_column_values(a, cols), b.pk])
        _raw(f"UPDATE security_auditentry SET {sets} WHERE id = %s",
             [*_column_values(b, cols), a.pk])
    result = audit.verify_chain()
    assert result.problem is audit.Problem.REORDERED


def _column_values(entry: AuditEntry, cols: list[str]) -> list[Any]:
    return [getattr(entry, c) for c in cols]


def test_head_row_is_rebuilt_when_missing() -> None:
    entries = _write(2)
    AuditHead.objects.all().delete()
    new = audit.record(actor=None, action="x")
    assert new.seq == entries[-1].seq + 1 and new.prev_hash == entries[-1].entry_hash
    assert audit.verify_chain().ok


def test_rolled_back_write_leaves_no_entry_and_no_gap() -> None:
    _write(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record(actor=None, action="case.update")
        raise RuntimeError("the write failed")
    _write(1)
    assert audit.verify_chain().ok
    assert not AuditEntry.objects.filter(action="case.update").exists()


# --- The management command --------------------------------------------------------------------


def test_command_verify_ok() -> None:
    _write(3)
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    assert "OK" in out.getvalue() and "3 entries" in out.getvalue()


def test_command_verify_tampered_exits_1() -> None:
    entries = _write(3)
    with suspended_triggers():
        _raw("UPDATE security_auditentry SET action = 'case.view' WHERE id = %s", [entries[1].pk])
    err = StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("audit", "verify", stdout=StringIO(), stderr=err)
    assert exc.value.code == 1
    assert "TAMPERED" in err.getvalue() and f"entry id {entries[1].pk}" in err.getvalue()


def test_command_show_filters_by_case(make_user: Any) -> None:
    from anshim.cases.models import Case, Channel, Person

    case = Case.objects.create(code="AS-SHOW-1", person=Person.objects.create(),
                               channel=Channel.PHONE)
    user = make_user("counselor")
    audit.record(actor=user, action="case.view", case=case, reason="triage")
    audit.record(actor=user, action="other.thing")
    out = StringIO()
    call_command("audit", "show", "--case", "AS-SHOW-1", "--limit", "10", stdout=out)
    text = out.getvalue()
    assert "case.view" in text and "AS-SHOW-1" in text and "triage" in text
    assert "other.thing" not in text


# --- Concurrency -------------------------------------------------------------------------------


@pytest.mark.usefixtures("committed_audit")
def test_concurrent_appends_never_fork_the_chain() -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        # Threads share the in-memory test database through SQLite's shared cache, whose
        # table locks are not waited on (busy_timeout does not apply): PostgreSQL runs this.
        pytest.skip("needs a file or server database for real concurrent writers")
    threads_n, per_thread = 6, 10
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def worker(k: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                audit.record(actor=None, action=f"t{k}.{i}")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    seqs = list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(seqs[0], seqs[0] + threads_n * per_thread))
    result = audit.verify_chain()
    assert result.ok, result.message
    assert result.entries == threads_n * per_thread


@pytest.mark.slow
def test_concurrent_processes_on_a_sqlite_file(tmp_path: Any) -> None:
    """Several processes append to one SQLite file at once (BEGIN IMMEDIATE serialises them);
    the chain stays gap-free and verifies."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ANSHIM_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE":
           "anshim.config.settings"}
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, "-m", "anshim.config.cli"]
    subprocess.run([*manage, "migrate", "--noinput", "--skip-checks", "-v0"], env=env,
                   check=True, timeout=300)
    script = ("from anshim.security import audit\n"
              "for i in range(25):\n"
              "    audit.record(actor=None, action='proc.append')\n")
    procs = [subprocess.Popen([*manage, "shell", "-c", script], env=env) for _ in range(4)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    done = subprocess.run([*manage, "audit", "verify"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "intact (100 entries)" in done.stdout
