"""Refuse to serve in production mode with development defaults.

Production mode is `DEBUG` off outside the demo (`ANSHIM_DEMO=1`, which `make run` sets for
all its processes). In production mode the web application (wsgi.py), the task worker and the
scheduler refuse to start

- with the insecure default `SECRET_KEY` (or one too short to be a secret): sessions, CSRF
  tokens and password-reset links would be forgeable by anyone who read the source;
- with the encryption key file (or the audit key file) inside the SQLite database's folder: one
  copy of that folder (a backup, a stolen disk) would hold the data and the keys to read it.

Each problem says what to set. `anshim check --deploy` lists the same problems.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

MIN_SECRET_KEY_CHARS = 40


class InsecureStartError(ImproperlyConfigured):
    """Production mode with a development default; the message says what to set."""


def production_mode() -> bool:
    demo = os.environ.get("ANSHIM_DEMO", "0") == "1" or bool(getattr(settings, "ANSHIM_DEMO",
                                                                     False))
    return not settings.DEBUG and not demo


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _sqlite_folder() -> Path | None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        return None
    name = str(db["NAME"])
    if name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name).parent


def problems() -> list[str]:
    """What is wrong for production, whatever the mode (empty: nothing)."""
    found = []
    key = str(settings.SECRET_KEY or "")
    if key == settings.ANSHIM_INSECURE_SECRET_KEY or len(key) < MIN_SECRET_KEY_CHARS:
        found.append(
            "ANSHIM_SECRET_KEY is not set (or is shorter than "
            f"{MIN_SECRET_KEY_CHARS} characters): set it to a long random value, e.g. the "
            "output of `python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`, the "
            "same for every process.")
    folder = _sqlite_folder()
    if folder is not None:
        from anshim.security import keyring

        held = []
        if not keyring.keys_from_env() and _inside(Path(settings.ANSHIM_KEY_FILE), folder):
            held.append(("ANSHIM_KEY_FILE", Path(settings.ANSHIM_KEY_FILE)))
        audit_key = Path(settings.ANSHIM_AUDIT_KEY_FILE)
        if not os.environ.get("ANSHIM_AUDIT_KEY") and _inside(audit_key, folder):
            held.append(("ANSHIM_AUDIT_KEY_FILE", audit_key))
        for variable, path in held:
            found.append(
                f"The key file {path} lies in the database's folder {folder}: one copy of "
                f"that folder would hold the data and the key. Set {variable} to a path "
                "outside it (another disk, backed up separately)"
                + (", or give the keys through ANSHIM_KEYS." if variable == "ANSHIM_KEY_FILE"
                   else ", or give the key through ANSHIM_AUDIT_KEY."))
    return found


def refuse_insecure_start(what: str) -> None:
    """Raise `InsecureStartError` in production mode when `problems()` finds any."""
    if not production_mode():
        return
    found = problems()
    if found:
        raise InsecureStartError(
            f"Anshim {what} refuses to start in production mode (ANSHIM_DEBUG is off):\n"
            + "\n".join(f"  - {p}" for p in found)
            + "\nFor a local demo, set ANSHIM_DEMO=1 (make run does).")


@checks.register(checks.Tags.security, deploy=True)
def check_production_settings(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    return [checks.Error(p, id=f"anshim.E00{i}") for i, p in enumerate(problems(), start=1)]
