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
    # Keyed: the plain SHA-256 of the same fields is not the link.
    assert entry.entry_hash != audit.plain_sha256(audit.entry_values(entry))


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


def test_missing_head_is_an_error_not_a_rebuild() -> None:
    """Deleting the head row must not let the next write rebuild it from whatever rows are
    left (that would bless a cut-off tail)."""
    _write(2)
    AuditHead.objects.all().delete()
    with pytest.raises(audit.AuditHeadMissing), transaction.atomic():
        audit.record(actor=None, action="x")
    assert AuditEntry.objects.count() == 2  # nothing written
    result = audit.verify_chain()
    assert not result.ok and result.problem is audit.Problem.HEAD_MISSING
    err = StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("audit", "verify", stdout=StringIO(), stderr=err)
    assert exc.value.code == 1 and "head row is missing" in err.getvalue()


def test_an_empty_log_gets_a_fresh_head() -> None:
    AuditHead.objects.all().delete()
    entry = audit.record(actor=None, action="first")
    assert entry.seq == 1 and entry.prev_hash == audit.GENESIS_HASH
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
    assert "No anchor yet" in out.getvalue()


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
    assert "intact (100 entries" in done.stdout


# --- Keyed links and external anchors: the two attacks of issue 17 ---------------------------


def _recompute_from(entries_from_seq: int, digest: Any) -> None:
    """What an attacker with DDL rights does after editing a row: recompute every later link
    with `digest` and fix the head, so the chain looks consistent again."""
    with suspended_triggers():
        prev = AuditEntry.objects.filter(seq__lt=entries_from_seq).order_by("-seq").first()
        prev_hash = prev.entry_hash if prev else audit.GENESIS_HASH
        for entry in AuditEntry.objects.filter(seq__gte=entries_from_seq).order_by("seq"):
            entry.prev_hash = prev_hash
            entry.entry_hash = digest(audit.entry_values(entry))
            _raw("UPDATE security_auditentry SET prev_hash = %s, entry_hash = %s WHERE id = %s",
                 [entry.prev_hash, entry.entry_hash, entry.pk])
            prev_hash = entry.entry_hash
        _raw("UPDATE security_audithead SET last_hash = %s", [prev_hash])


def _truncate_after(seq: int) -> None:
    """Cut off every entry after `seq` and fix the head to match the shortened log."""
    last = AuditEntry.objects.get(seq=seq)
    with suspended_triggers():
        _raw("DELETE FROM security_auditentry WHERE seq > %s", [seq])
    _raw("UPDATE security_audithead SET seq = %s, last_hash = %s", [seq, last.entry_hash])


def test_truncated_tail_with_fixed_head_is_caught_by_the_anchor() -> None:
    entries = _write(6)
    anchor = audit.anchor_head()
    assert anchor is not None and anchor.seq == entries[-1].seq
    _write(2)
    _truncate_after(entries[2].seq)
    result = audit.verify_chain()
    assert not result.ok and result.problem is audit.Problem.REMOVED
    assert f"records seq {entries[-1].seq}" in result.message
    err = StringIO()
    with pytest.raises(SystemExit):
        call_command("audit", "verify", stdout=StringIO(), stderr=err)
    assert "TAMPERED" in err.getvalue() and "anchor" in err.getvalue()


def test_rewritten_row_with_every_later_hash_recomputed_is_caught_by_the_key() -> None:
    """The attacker edits a row and recomputes the chain the only way they can without the
    audit key (plain SHA-256, as the chain was before): every link is consistent, yet the
    first rewritten entry fails its keyed hash."""
    entries = _write(5)
    with suspended_triggers():
        _raw("UPDATE security_auditentry SET reason = 'nothing happened' WHERE id = %s",
             [entries[1].pk])
    _recompute_from(entries[1].seq, audit.plain_sha256)
    result = audit.verify_chain()
    assert not result.ok and result.problem is audit.Problem.EDITED
    assert result.bad_entry_id == entries[1].pk


def test_rewrite_with_a_guessed_key_is_caught_too() -> None:
    entries = _write(4)
    other_key = b"k" * audit.AUDIT_KEY_BYTES
    with suspended_triggers():
        _raw("UPDATE security_auditentry SET action = 'case.view' WHERE id = %s", [entries[2].pk])
    _recompute_from(entries[2].seq, lambda values: audit.compute_hash(values, other_key))
    result = audit.verify_chain()
    assert result.problem is audit.Problem.EDITED and result.bad_entry_id == entries[2].pk


def test_rewrite_by_someone_holding_the_audit_key_is_caught_by_the_anchor() -> None:
    """Even with the audit key stolen, entries up to the last anchor are fixed: the anchor is
    signed with the evidence key, which the database never sees."""
    entries = _write(5)
    audit.anchor_head()
    _write(1)
    with suspended_triggers():
        _raw("UPDATE security_auditentry SET reason = 'rewritten' WHERE id = %s", [entries[1].pk])
    _recompute_from(entries[1].seq, audit.compute_hash)
    result = audit.verify_chain()
    assert not result.ok and result.problem is audit.Problem.EDITED
    assert result.bad_seq == entries[-1].seq and "anchor" in result.message


def test_anchor_file_lines_are_signed_and_appended(settings: Any) -> None:
    assert audit.anchor_head() is None  # an empty log: nothing to anchor
    entries = _write(3)
    first = audit.anchor_head()
    assert first is not None and audit.anchor_head() is None  # head did not move
    _write(1)
    second = audit.anchor_head()
    lines = audit.anchor_path().read_text().splitlines()
    assert [audit.Anchor.from_line(line) for line in lines] == [first, second]
    assert first.seq == entries[-1].seq and first.hash == entries[-1].entry_hash
    assert oct(audit.anchor_path().stat().st_mode & 0o777) == "0o600"
    result = audit.verify_chain()
    assert result.ok and result.anchors == 2 and result.anchored_seq == second.seq


def test_forged_anchor_is_refused() -> None:
    _write(2)
    real = audit.anchor_head()
    assert real is not None
    forged = audit.Anchor(seq=real.seq + 5, hash=real.hash, at=real.at, key_id=real.key_id,
                          signature=real.signature)
    audit.append_anchor(forged)
    result = audit.verify_chain()
    assert result.problem is audit.Problem.ANCHOR and "not signed" in result.message


def test_verify_against_an_anchor_held_elsewhere(tmp_path: Any) -> None:
    """The anchor file itself lost its last line (or was replaced): the mailed copy still
    proves the log was longer."""
    entries = _write(4)
    anchor = audit.anchor_head()
    assert anchor is not None
    audit.anchor_path().unlink()
    _truncate_after(entries[1].seq)
    assert audit.verify_chain().ok  # nothing local to compare with
    err = StringIO()
    with pytest.raises(SystemExit):
        call_command("audit", "verify", "--anchor-line", anchor.to_line(), stdout=StringIO(),
                     stderr=err)
    assert "TAMPERED" in err.getvalue()
    copy = tmp_path / "copy.jsonl"
    copy.write_text(anchor.to_line() + "\n")
    with pytest.raises(SystemExit):
        call_command("audit", "verify", "--anchor", str(copy), stdout=StringIO(),
                     stderr=StringIO())


def test_command_anchor_and_mail_to_a_second_party(settings: Any) -> None:
    import email
    import socket

    from aiosmtpd.controller import Controller

    received: list[email.message.Message] = []

    class Inbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    _write(2)
    try:
        settings.MAILERS = {"default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10}}}
        settings.ANSHIM_AUDIT_ANCHOR_MAIL_TO = ["auditor@example.org"]
        out = StringIO()
        call_command("audit", "anchor", stdout=out)
        assert "Anchored seq" in out.getvalue()
        call_command("audit", "anchor", stdout=out)
        assert "nothing added" in out.getvalue()
    finally:
        controller.stop()
    assert len(received) == 1
    line = audit.anchor_path().read_text().strip()
    body = received[0].get_payload(decode=True)
    assert isinstance(body, bytes) and line in body.decode()


def test_missing_audit_key_is_an_error(settings: Any, tmp_path: Any) -> None:
    _write(2)
    settings.ANSHIM_AUDIT_KEY_FILE = tmp_path / "gone.key"
    audit.forget_audit_key()
    try:
        result = audit.verify_chain()
        assert result.problem is audit.Problem.KEY_MISSING and "gone.key" in result.message
        with pytest.raises(audit.AuditKeyMissing), transaction.atomic():
            audit.record(actor=None, action="x")
        assert not (tmp_path / "gone.key").exists()
    finally:
        audit.forget_audit_key()


# The scheduler closes old connections between ticks: that needs real commits.
@pytest.mark.usefixtures("committed_audit")
def test_periodic_anchors_the_head(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    _write(2)
    out = StringIO()
    call_command("periodic", "--once", stdout=out)
    assert "anchored the audit log at seq" in out.getvalue()
    assert len(audit.read_anchors()) == 1


# --- PostgreSQL: the runtime role cannot lift the protection --------------------------------


@pytest.mark.usefixtures("committed_audit")
def test_postgresql_runtime_role_cannot_alter_or_disable_the_triggers() -> None:
    """docs/deployment.md, "PostgreSQL roles": the owner migrates, the runtime role gets the
    grants of `anshim audit grants`; with them it appends to the log but can neither change
    rows nor drop, disable or bypass the append-only trigger."""
    if connection.vendor != "postgresql":
        pytest.skip("the role split is a PostgreSQL feature")
    import secrets

    import psycopg

    from anshim.security.audit_triggers import runtime_role_sql

    entries = _write(2)
    role = f"anshim_rt_{secrets.token_hex(4)}"
    out = StringIO()
    call_command("audit", "grants", "--role", role, stdout=out)
    grants = out.getvalue().splitlines()
    assert grants == runtime_role_sql(role)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN')
        for sql in grants:
            cursor.execute(sql)
    db = connection.settings_dict
    try:
        with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432,
                             dbname=db["NAME"], user=role, autocommit=True) as rt:
            # Ordinary work: read any table, append to the log, move the head.
            rt.execute("SELECT count(*) FROM cases_case")
            assert rt.execute("SELECT count(*) FROM security_auditentry").fetchone() == (2,)
            rt.execute("UPDATE security_audithead SET seq = seq WHERE id = 1")
            refused = [
                "ALTER TABLE security_auditentry DISABLE TRIGGER ALL",
                "ALTER TABLE security_auditentry DISABLE TRIGGER anshim_audit_no_change",
                "DROP TRIGGER anshim_audit_no_change ON security_auditentry",
                "DROP FUNCTION anshim_audit_append_only()",
                "CREATE OR REPLACE FUNCTION anshim_audit_append_only() RETURNS trigger AS "
                "$$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql",
                "SET session_replication_role = replica",
                "TRUNCATE security_auditentry",
                f"DELETE FROM security_auditentry WHERE id = {entries[0].pk}",
                f"UPDATE security_auditentry SET reason = 'x' WHERE id = {entries[0].pk}",
                "DELETE FROM security_audithead",
                "ALTER TABLE security_auditentry OWNER TO CURRENT_USER",
            ]
            for sql in refused:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    rt.execute(sql)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')
    assert audit.verify_chain().ok
    assert [e.reason for e in AuditEntry.objects.order_by("seq")] == ["r0", "r1"]


# --- Migration 0003: an existing unkeyed chain is checked, then re-linked with the key -------

_OLD_CHAIN = """
import datetime as dt
from django.db import connection
from anshim.security import audit
prev = audit.GENESIS_HASH
for seq in range(1, 6):
    values = {name: "" for name in audit.HASHED_FIELDS}
    values.update(seq=seq, at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), actor_id=None,
                  case_id=None, action="case.view", reason=f"old {seq}", prev_hash=prev)
    digest = audit.plain_sha256(values)
    if seq == int("TAMPER_SEQ"):
        values["reason"] = "edited before the upgrade"
    with connection.cursor() as c:
        c.execute("INSERT INTO security_auditentry (seq, at, actor_id, actor_username, "
                  "actor_role, action, target_model, target_pk, case_id, case_code, "
                  "client_address, user_agent, reason, prev_hash, entry_hash) VALUES "
                  "(%s, %s, NULL, '', '', %s, '', '', NULL, '', '', '', %s, %s, %s)",
                  [seq, values["at"], values["action"], values["reason"], prev, digest])
        c.execute("UPDATE security_audithead SET seq = %s, last_hash = %s", [seq, digest])
    prev = digest
"""


@pytest.mark.slow
@pytest.mark.parametrize("tamper_seq", [0, 3])
def test_migration_relinks_an_intact_old_chain_and_refuses_a_broken_one(
    tmp_path: Any, tamper_seq: int
) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "ANSHIM_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    env.pop("ANSHIM_AUDIT_KEY", None)
    manage = [sys.executable, "-m", "anshim.config.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*manage, *args], env=env, capture_output=True, text=True,
                              timeout=300)

    assert run("migrate", "security", "0002", "--skip-checks", "-v0").returncode == 0
    seeded = run("shell", "-c", _OLD_CHAIN.replace("TAMPER_SEQ", str(tamper_seq)))
    assert seeded.returncode == 0, seeded.stderr
    migrated = run("migrate", "security", "--skip-checks", "-v0")
    check = run("shell", "-c", "from anshim.security import audit\n"
                "r = audit.verify_chain()\nprint(r.ok, r.entries, r.message)")
    if tamper_seq:
        assert migrated.returncode != 0
        assert "already broken at seq 3" in migrated.stderr
        assert not (tmp_path / "audit-hmac.key").exists() or "False" in check.stdout
    else:
        assert migrated.returncode == 0, migrated.stderr
        assert (tmp_path / "audit-hmac.key").exists()
        assert "True 5 " in check.stdout, check.stdout + check.stderr


def test_verify_never_creates_an_evidence_key(settings: Any, tmp_path: Any) -> None:
    _write(1)
    assert audit.anchor_head() is not None
    settings.ANSHIM_EVIDENCE_KEY_FILE = tmp_path / "gone.pem"
    result = audit.verify_chain()
    assert result.problem is audit.Problem.ANCHOR and "gone.pem" in result.message
    assert not (tmp_path / "gone.pem").exists()
