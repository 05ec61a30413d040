"""Issue 17, item 13: the task worker survives a busy database, the supervisor's start page
says when it last ran, and a read under write contention never answers 500.

The contention tests use real processes on a real SQLite file: the test holds SQLite's write
lock (`BEGIN EXCLUSIVE`) longer than the 5 s busy timeout, as a long write would.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MANAGE = [sys.executable, "-m", "anshim.config.cli"]
VENV_BIN = Path(sys.executable).parent


def _env(data: Path) -> dict[str, str]:
    env = {**os.environ, "ANSHIM_DATA_DIR": str(data), "ANSHIM_DEMO": "1",
           "ANSHIM_REQUIRE_OTP": "0", "ANSHIM_LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "anshim.config.settings"}
    for name in ("DATABASE_URL", "ANSHIM_KEY_FILE", "ANSHIM_AUDIT_KEY_FILE",
                 "ANSHIM_AUDIT_ANCHOR_FILE", "ANSHIM_EVIDENCE_KEY_FILE"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite data folder; each test works on a copy."""
    data = tmp_path_factory.mktemp("migrated")
    subprocess.run([*MANAGE, "migrate", "--noinput", "--skip-checks", "-v0"], env=_env(data),
                   check=True, timeout=300)
    return data


@pytest.fixture
def data_dir(migrated: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(migrated, data)
    return data


def _shell(data: Path, code: str) -> str:
    done = subprocess.run([*MANAGE, "shell", "-c", code], env=_env(data), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


class WriteLock:
    """SQLite's write lock on the data folder's database, held from another process's view
    (a separate connection) for `seconds`."""

    def __init__(self, data: Path, seconds: float) -> None:
        self.db = data / "anshim.sqlite3"
        self.seconds = seconds
        self.taken = threading.Event()

    def _hold(self) -> None:
        conn = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            self.taken.set()
            time.sleep(self.seconds)
            conn.execute("COMMIT")
        finally:
            conn.close()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._hold)
        thread.start()
        assert self.taken.wait(30)
        return thread


# --- The worker --------------------------------------------------------------------------


def _task_status(data: Path, task_id: str) -> str:
    conn = sqlite3.connect(data / "anshim.sqlite3", timeout=30)
    try:
        row = conn.execute("SELECT status FROM django_tasks_database_dbtaskresult WHERE id = ?",
                           [task_id.replace("-", "")]).fetchone()
    finally:
        conn.close()
    return str(row[0]) if row else "missing"


@pytest.mark.slow
def test_worker_survives_a_locked_database_where_db_worker_dies(data_dir: Path) -> None:
    env = _env(data_dir)
    # --skip-checks: Django probes SQLite for JSON support at start and takes a lock error
    # there for "no JSON" (a check error); that start-up race is not what is tested here.
    args = ["--queue-name", "*", "--interval", "0.2", "--no-startup-delay", "--no-reload",
            "--skip-checks"]
    ours = subprocess.Popen([*MANAGE, "worker", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    upstream = subprocess.Popen([*MANAGE, "db_worker", *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(3)  # both started and polling
        assert ours.poll() is None and upstream.poll() is None
        WriteLock(data_dir, seconds=8).start().join()
        # django-tasks-db's own worker exited on "database is locked" (the bug)...
        assert upstream.wait(timeout=30) != 0
        assert "database is locked" in (upstream.stdout.read() if upstream.stdout else "")
        # ...ours is still there, and still runs tasks.
        assert ours.poll() is None
        task_id = _shell(data_dir, "from anshim.experts.tasks import schedule_due_reminders\n"
                                   "print(schedule_due_reminders.enqueue().id)")
        deadline = time.monotonic() + 60
        while _task_status(data_dir, task_id) != "SUCCESSFUL":
            assert time.monotonic() < deadline, _task_status(data_dir, task_id)
            assert ours.poll() is None
            time.sleep(0.3)
    finally:
        for proc in (ours, upstream):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    output = ours.stdout.read() if ours.stdout else ""
    assert "database busy" in output and "retried after" in output


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    from anshim.config.worker import Backoff

    slept: list[float] = []
    backoff = Backoff(start=0.5, maximum=4.0, sleep=slept.append)
    for _ in range(6):
        backoff.wait()
    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(cap / 2 <= s <= cap for s, cap in zip(slept, caps, strict=True))
    backoff.reset()
    assert backoff.delay == 0.5


def test_transient_errors_are_recognised() -> None:
    from django.db import IntegrityError, OperationalError

    from anshim.security.contention import is_transient

    assert is_transient(OperationalError("database is locked"))
    wrapped = OperationalError("outer")
    wrapped.__cause__ = OperationalError("database table is locked: x")
    assert is_transient(wrapped)
    assert not is_transient(OperationalError("no such table: x"))
    assert not is_transient(IntegrityError("UNIQUE constraint failed"))
    assert not is_transient(ValueError("database is locked"))


# --- The health line ---------------------------------------------------------------------


@pytest.mark.django_db
def test_supervisor_start_page_shows_when_the_worker_last_ran(
    make_user: Any, login_client: Any, settings: Any
) -> None:
    from django.urls import reverse
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.LANGUAGE_CODE = "en"
    from anshim.experts.tasks import schedule_due_reminders

    start = reverse("cases:list")
    client = login_client(make_user("supervisor"))
    page = client.get(start, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Task worker: has not run any task yet." in page

    done = schedule_due_reminders.enqueue()
    DBTaskResult.objects.filter(id=done.id).update(
        status="SUCCESSFUL", started_at=timezone.now() - dt.timedelta(minutes=3),
        finished_at=timezone.now())
    waiting = schedule_due_reminders.enqueue()
    DBTaskResult.objects.filter(id=waiting.id).update(
        enqueued_at=timezone.now() - dt.timedelta(minutes=10))
    page = client.get(start, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Task worker: last ran a task 3\xa0minutes ago." in page
    assert "1 task has been waiting for 10\xa0minutes: the worker may be stopped" in page

    # Korean by default.
    page = client.get(start, HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert "작업 처리기" in page

    # Other roles: no line.
    counselor = login_client(make_user("counselor"), client.__class__())
    assert "Task worker" not in counselor.get(start, HTTP_ACCEPT_LANGUAGE="en").content.decode()


# --- Reads under write contention: wait and succeed, or 503 with Retry-After -----------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(data_dir: Path) -> Iterator[tuple[str, str, str]]:
    """gunicorn on the copied database; yields (base URL, session cookie, case code)."""
    session, code = _shell(data_dir, (
        "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "from anshim.cases.models import Case, Channel, Person\n"
        "from anshim.security.models import User\n"
        "u = User.objects.create_user('boss', password='x' * 16, role='supervisor')\n"
        "c = Case.objects.create(code='AS-BUSY-1', person=Person.objects.create(name='n'),"
        " channel=Channel.PHONE)\n"
        "s = SessionStore()\n"
        "s[SESSION_KEY] = str(u.pk)\n"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s[HASH_SESSION_KEY] = u.get_session_auth_hash()\n"
        "s.save()\n"
        "print(s.session_key, c.code)\n")).split()
    port = _free_port()
    env = _env(data_dir)  # demo mode: tests/security/test_startup.py covers production mode
    proc = subprocess.Popen([str(VENV_BIN / "gunicorn"), "anshim.config.wsgi:application",
                             "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60",
                             "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert proc.poll() is None, "gunicorn did not start"
                assert time.monotonic() < deadline
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", session, code
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str, session: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers={
        "Cookie": f"sessionid={session}", "Accept-Language": "ko", "Host": "127.0.0.1"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.mark.slow
def test_a_case_read_under_write_contention_waits_or_answers_503(
    server: tuple[str, str, str], data_dir: Path
) -> None:
    base, session, code = server
    url = f"{base}/staff/cases/{code}/"
    status, _, body = _get(url, session)
    assert status == 200 and code in body

    # A short write: the read (which appends an audit row) waits for it and succeeds.
    holder = WriteLock(data_dir, seconds=1.5).start()
    status, _, body = _get(url, session)
    holder.join()
    assert status == 200 and code in body

    # A write longer than the busy timeout: a clear 503 with Retry-After, never a 500.
    holder = WriteLock(data_dir, seconds=8).start()
    status, headers, body = _get(url, session)
    holder.join()
    assert status == 503, body[:500]
    assert headers.get("Retry-After") == "5"
    assert "잠시 후" in body  # Korean: "try again shortly"
    # Afterwards everything is as before, and the audit chain is intact.
    status, _, _ = _get(url, session)
    assert status == 200
    assert _shell(data_dir, "from anshim.security import audit\n"
                            "print(audit.verify_chain().ok)") == "True"


@pytest.mark.django_db
@pytest.mark.urls("security.busy_urls")
def test_busy_database_answers_503_in_korean_html_and_json_for_the_api() -> None:
    from django.test import Client

    client = Client(raise_request_exception=False)
    page = client.get("/staff/locked/", HTTP_ACCEPT_LANGUAGE="ko")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "시스템이 바쁩니다" in page.content.decode()
    assert page["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in page
    api = client.get("/api/v1/locked/")
    assert api.status_code == 503 and api.json()["code"] == "database_busy"
    assert api["Retry-After"] == "5"
    # Any other error stays what it is (a bug to fix, not a retry).
    assert client.get("/staff/broken/").status_code == 500


@pytest.mark.django_db(transaction=True)
def test_a_task_that_meets_a_busy_database_runs_again(settings: Any, tmp_path: Path) -> None:
    from django.core.management import call_command
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from security.flaky_tasks import always_broken, busy_once

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    flaky = busy_once.enqueue(str(tmp_path / "marker"))
    broken = always_broken.enqueue()
    batch = ["worker", "--batch", "--no-startup-delay", "--interval", "0", "--no-reload",
             "--queue-name", "*"]
    call_command(*batch, verbosity=0)
    row = DBTaskResult.objects.get(id=flaky.id)
    assert row.status == "READY" and row.run_after > timezone.now()  # queued again, later
    assert DBTaskResult.objects.get(id=broken.id).status == "FAILED"  # a bug is not retried
    DBTaskResult.objects.filter(id=flaky.id).update(run_after=timezone.now())
    call_command(*batch, verbosity=0)
    row = DBTaskResult.objects.get(id=flaky.id)
    assert row.status == "SUCCESSFUL" and row.return_value == "done"
    assert len(row.worker_ids) == 2


def test_make_run_restarts_the_worker_and_the_scheduler() -> None:
    """`make run` wraps both in a restart loop and runs them as a demo (ANSHIM_DEMO=1)."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(["make", "-n", "-s", "run"], cwd=root, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "MAKEFLAGS": ""})
    assert done.returncode == 0, done.stderr
    script = done.stdout.replace("\\\n", " ")
    assert "while true; do .venv/bin/anshim worker --queue-name '*';" in script
    assert "while true; do .venv/bin/anshim periodic;" in script
    assert "restarting in 5 s" in script
    makefile = (root / "Makefile").read_text()
    assert "run: export ANSHIM_DEMO = 1" in makefile
