"""Fixtures for the security tests: a private key ring, and audit clean-up for tests that
commit (threads need committed rows; the append-only triggers would block the flush)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def key_file(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh key file in a temporary directory; the process-wide ring follows it."""
    from anshim.security import keyring

    monkeypatch.delenv("ANSHIM_KEYS", raising=False)
    path = tmp_path / "keyring.json"
    settings.ANSHIM_KEY_FILE = path
    keyring.set_keyring(None)
    yield path
    keyring.set_keyring(None)


@pytest.fixture
def committed_audit(transactional_db: Any) -> Iterator[None]:
    """For transactional tests that write audit entries: remove them (triggers suspended)
    before pytest-django flushes the tables."""
    yield
    from anshim.security.audit_triggers import suspended_triggers
    from anshim.security.models import AuditEntry, AuditHead

    with suspended_triggers():
        AuditEntry.objects.all().delete()
    AuditHead.objects.all().delete()
