"""Issue 17, item 12: production mode refuses development defaults, saying what to set; the
demo (`make run`, ANSHIM_DEMO=1) stays convenient."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anshim.security import startup

MANAGE = [sys.executable, "-m", "anshim.config.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "ANSHIM_DATA_DIR": str(tmp_path / "var"), "ANSHIM_DEBUG": "0",
           "DJANGO_SETTINGS_MODULE": "anshim.config.settings"}
    for name in ("ANSHIM_DEMO", "DATABASE_URL", "ANSHIM_SECRET_KEY", "ANSHIM_KEY_FILE",
                 "ANSHIM_KEYS", "ANSHIM_AUDIT_KEY", "ANSHIM_AUDIT_KEY_FILE"):
        env.pop(name, None)
    env.update(extra)
    return env


def _start_web(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What gunicorn does first: import the WSGI application."""
    return subprocess.run([sys.executable, "-c", "import anshim.config.wsgi"], env=env,
                          capture_output=True, text=True, timeout=120)


def _production(tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "keys"
    return _env(tmp_path, ANSHIM_SECRET_KEY=secrets.token_urlsafe(50),
                ANSHIM_KEY_FILE=str(keys / "keyring.json"),
                ANSHIM_AUDIT_KEY_FILE=str(keys / "audit-hmac.key"))


@pytest.mark.slow
def test_web_server_refuses_the_default_secret_key(tmp_path: Path) -> None:
    env = _production(tmp_path)
    env.pop("ANSHIM_SECRET_KEY")  # the insecure development default
    done = _start_web(env)
    assert done.returncode != 0
    assert "refuses to start in production mode" in done.stderr
    assert "ANSHIM_SECRET_KEY is not set" in done.stderr and "token_urlsafe" in done.stderr
    short = _start_web({**env, "ANSHIM_SECRET_KEY": "letmein"})
    assert short.returncode != 0 and "ANSHIM_SECRET_KEY" in short.stderr


@pytest.mark.slow
def test_web_server_refuses_key_files_beside_the_sqlite_database(tmp_path: Path) -> None:
    env = _production(tmp_path)
    env.pop("ANSHIM_KEY_FILE")  # default: var/keyring.json, next to var/anshim.sqlite3
    env.pop("ANSHIM_AUDIT_KEY_FILE")
    done = _start_web(env)
    assert done.returncode != 0
    assert "lies in the database's folder" in done.stderr
    assert "Set ANSHIM_KEY_FILE to a path outside" in done.stderr
    assert "Set ANSHIM_AUDIT_KEY_FILE to a path outside" in done.stderr
    # Keys given through the environment are not files in that folder.
    env["ANSHIM_KEYS"] = "k1:" + "A" * 43 + "="
    env["ANSHIM_AUDIT_KEY"] = "B" * 43 + "="
    assert _start_web(env).returncode == 0, _start_web(env).stderr


@pytest.mark.slow
def test_a_proper_production_configuration_starts_and_so_does_the_demo(tmp_path: Path) -> None:
    done = _start_web(_production(tmp_path))
    assert done.returncode == 0, done.stderr
    demo = _start_web(_env(tmp_path, ANSHIM_DEMO="1"))  # make run: every default allowed
    assert demo.returncode == 0, demo.stderr
    debug = _start_web(_env(tmp_path, ANSHIM_DEBUG="1"))
    assert debug.returncode == 0, debug.stderr


@pytest.mark.slow
def test_worker_and_scheduler_refuse_too(tmp_path: Path) -> None:
    env = _env(tmp_path)
    for command in (["worker", "--batch", "--no-startup-delay"], ["periodic", "--once"]):
        done = subprocess.run([*MANAGE, *command, "--skip-checks"], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode != 0
        assert "refuses to start in production mode" in done.stderr, done.stderr
        assert "ANSHIM_DEMO=1" in done.stderr


def test_problems_and_the_deploy_check(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ANSHIM_DEMO", raising=False)
    monkeypatch.delenv("ANSHIM_KEYS", raising=False)
    monkeypatch.delenv("ANSHIM_AUDIT_KEY", raising=False)
    settings.ANSHIM_KEY_FILE = tmp_path / "keyring.json"
    settings.ANSHIM_AUDIT_KEY_FILE = tmp_path / "audit-hmac.key"
    settings.ANSHIM_DEMO = False
    settings.DEBUG = False
    settings.SECRET_KEY = settings.ANSHIM_INSECURE_SECRET_KEY
    assert startup.production_mode()
    with pytest.raises(startup.InsecureStartError, match="ANSHIM_SECRET_KEY"):
        startup.refuse_insecure_start("web server")
    errors = startup.check_production_settings(None)
    assert [e.id for e in errors] == ["anshim.E001"]
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    startup.refuse_insecure_start("web server")
    # The suite's own database may be in memory: name a SQLite folder (the subprocess tests
    # above use the real one).
    monkeypatch.setattr(startup, "_sqlite_folder", lambda: tmp_path / "db")
    settings.ANSHIM_KEY_FILE = tmp_path / "db" / "keyring.json"
    assert [e.id for e in startup.check_production_settings(None)] == ["anshim.E001"]
    assert "Set ANSHIM_KEY_FILE" in startup.problems()[0]
    settings.ANSHIM_KEY_FILE = tmp_path / "keyring.json"
    assert startup.problems() == []
    settings.SECRET_KEY = "short"
    assert startup.problems()
    settings.ANSHIM_DEMO = True
    startup.refuse_insecure_start("web server")  # demo: allowed
