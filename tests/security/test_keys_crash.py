"""Issue 17, item 10: key rotation is crash-safe and retirement is safe against concurrent
writers. The crash tests kill a real `anshim` process (SIGKILL: no clean-up runs) at the
points that matter, on a real SQLite file, and check that every row stays readable and that
`anshim keys rotate --resume` finishes the job."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections, transaction

from anshim.security import keyring, rotation
from anshim.security.keyring import KeyRing

MANAGE = [sys.executable, "-m", "anshim.config.cli"]
ROWS = 12

SEED = f"""
from anshim.cases.models import Case, Channel, Note, Person
from anshim.security.models import User
u = User.objects.create_user("c1", password="x" * 16, role="counselor")
for i in range({ROWS}):
    p = Person.objects.create(name=f"name-{{i}}", phone=f"010-0000-{{i:04d}}")
    c = Case.objects.create(code=f"AS-K-{{i}}", person=p, channel=Channel.PHONE)
    Note.objects.create(case=c, author=u, body=f"note-{{i}}")
print("seeded")
"""

# Reads every encrypted value through the ORM (a DecryptionError fails the script) and prints
# how many values each key id encrypts.
CHECK = f"""
import json
from anshim.cases.models import Note, Person
from anshim.security import rotation
names = sorted(p.name for p in Person.objects.all())
notes = sorted(n.body for n in Note.objects.all())
assert names == sorted(f"name-{{i}}" for i in range({ROWS})), names
assert notes == sorted(f"note-{{i}}" for i in range({ROWS})), notes
print(json.dumps(dict(rotation.total_usage(rotation.key_usage()))))
"""

KILL_AFTER_BATCHES = """
import os, signal
from anshim.security import rotation
n = {"batches": 0}
def hook(model, count):
    if count:
        n["batches"] += 1
        if n["batches"] == BATCHES:
            os.kill(os.getpid(), signal.SIGKILL)
rotation.rotate(batch_size=1, on_batch=hook, retire_old=RETIRE)
"""

KILL_AROUND_REPLACE = """
import os, signal
from anshim.security import keyring, rotation
real_replace = os.replace
def replace(src, dst):
    if "WHEN" == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
rotation.rotate()
"""


def _env(data: Path) -> dict[str, str]:
    env = {**os.environ, "ANSHIM_DATA_DIR": str(data), "ANSHIM_DEMO": "1",
           "DJANGO_SETTINGS_MODULE": "anshim.config.settings"}
    for name in ("DATABASE_URL", "ANSHIM_KEYS", "ANSHIM_KEY_FILE", "ANSHIM_AUDIT_KEY_FILE"):
        env.pop(name, None)
    return env


def _run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MANAGE, *args], env=_env(data), capture_output=True, text=True,
                          timeout=300)


def _shell(data: Path, code: str) -> subprocess.CompletedProcess[str]:
    return _run(data, "shell", "-c", code)


def _usage(data: Path) -> dict[str, int]:
    done = _shell(data, CHECK)
    assert done.returncode == 0, done.stderr  # every row readable
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("seeded")
    assert _run(data, "migrate", "--noinput", "--skip-checks", "-v0").returncode == 0
    done = _shell(data, SEED)
    assert done.returncode == 0, done.stderr
    return data


@pytest.fixture
def data_dir(seeded: Path, tmp_path: Path) -> Path:
    data = tmp_path / "var"
    shutil.copytree(seeded, data)
    return data


def _ring(data: Path) -> KeyRing:
    return KeyRing.from_json((data / "keyring.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("retire", [False, True])
def test_killed_mid_rotation_every_row_stays_readable_and_resume_finishes(
    data_dir: Path, retire: bool
) -> None:
    old = _ring(data_dir).primary_id
    script = KILL_AFTER_BATCHES.replace("BATCHES", "5").replace("RETIRE", str(retire))
    killed = _shell(data_dir, script)
    assert killed.returncode == -signal.SIGKILL
    ring = _ring(data_dir)
    assert ring.primary_id != old and old in ring.keys  # new key saved, old one kept
    usage = _usage(data_dir)  # half re-encrypted, all readable
    assert usage.get(old, 0) > 0 and usage.get(ring.primary_id, 0) >= 5
    done = _run(data_dir, "keys", "--skip-checks", "rotate", "--resume", "--retire-old")
    assert done.returncode == 0, done.stderr
    assert f"Retired keys: {old}" in done.stdout
    assert _usage(data_dir) == {ring.primary_id: 3 * ROWS}
    assert list(_ring(data_dir).keys) == [ring.primary_id]


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_while_replacing_the_key_file(data_dir: Path, when: str) -> None:
    before = (data_dir / "keyring.json").read_text()
    killed = _shell(data_dir, KILL_AROUND_REPLACE.replace("WHEN", when))
    assert killed.returncode == -signal.SIGKILL
    ring = _ring(data_dir)  # a whole key file, never a torn one
    if when == "before":
        assert (data_dir / "keyring.json").read_text() == before
    else:
        assert len(ring.keys) == 2
    assert set(_usage(data_dir)) <= set(ring.keys)  # nothing encrypted with a lost key
    done = _run(data_dir, "keys", "--skip-checks", "rotate", "--resume", "--retire-old")
    assert done.returncode == 0, done.stderr
    assert set(_usage(data_dir)) == {_ring(data_dir).primary_id}


def test_key_file_replacement_fsyncs_file_and_directory(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is durable only once the directory is fsynced (a crash could otherwise
    bring back the old key file after rows were re-encrypted with the new key)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    keyring.write_key_file(KeyRing.generate(), key_file)
    assert str(key_file.parent) in synced
    assert synced.index(str(key_file.parent)) == len(synced) - 1  # after the file's own
    assert not list(key_file.parent.glob(".*.tmp"))


# --- Retirement and a writer that began before the new key ----------------------------------


@pytest.mark.django_db(transaction=True)
def test_retirement_waits_for_a_writer_that_began_before_the_new_key(
    key_file: Path, make_user: Any
) -> None:
    """A transaction encrypts with the old primary key, then rotation saves a new one, re-
    encrypts, scans and retires: the writer's row was invisible to the scan until it committed.
    The barrier waits for it, re-encrypts it, and only then retires the old key."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("threads share the in-memory test database; PostgreSQL runs this")
    from anshim.cases.models import Case, Channel, Note, Person

    user = make_user("counselor")
    case = Case.objects.create(code="AS-RACE-1", person=Person.objects.create(name="n"),
                               channel=Channel.PHONE)
    old = keyring.get_keyring().primary_id
    encrypted = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with transaction.atomic():
                Note.objects.create(case=case, author=user, body="written during rotation")
                encrypted.set()
                time.sleep(2.0)  # still open while rotation scans
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    assert encrypted.wait(30)
    report = rotation.rotate(retire_old=True)
    thread.join()
    assert not errors, errors
    assert report.retired == [old]
    keyring.set_keyring(None)
    note = Note.objects.get(body__isnull=False, case=case)  # decrypts: no error
    assert note.body == "written during rotation"
    assert set(rotation.total_usage(rotation.key_usage())) == {report.primary_id}
