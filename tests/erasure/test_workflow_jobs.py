"""Scheduled monitoring: monitored sources, the periodic jobs (django.tasks) and the command."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from anshim.erasure import tasks
from anshim.erasure.models import EntrySource, MonitoredSource, Sighting, SightingStatus
from anshim.erasure.services import register_fingerprints
from anshim.fingerprint import fingerprint_bytes

from .media import picture_bytes
from .workflow_support import FakeSite, transformed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def evidence_key(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}


def test_due_sources_are_scanned_then_verified(tmp_path: Path, bank: Any, make_case: Any) -> None:
    case = make_case()
    register_fingerprints(bank, case=case, source=EntrySource.STAFF_EVIDENCE, actor=None,
                          fingerprints=fingerprint_bytes(picture_bytes(700), dihedral=True))
    with FakeSite(tmp_path / "site") as site:
        site.put_image("x.png", transformed(700, "mirrored"))
        site.put_image("y.png", picture_bytes(701))
        page = site.put_page("index.html", ["x.png", "y.png"])
        source = MonitoredSource.objects.create(name="fake", seeds=page, depth=0,
                                                per_host_rate=200, every_minutes=60,
                                                allowed_private_hosts="127.0.0.1")
        assert tasks.due_sources() == [source]
        out = io.StringIO()
        call_command("erasure_jobs", stdout=out)
        result = json.loads(out.getvalue())
        assert result["scans"] == [{"pages": 1, "media": 2, "matches": 1}]
        assert result["verify"]["checked"] == 1 and result["verify"]["removed"] == 0
        source.refresh_from_db()
        assert source.last_run_at is not None and tasks.due_sources() == []
        site.delete("img/x.png")
        tasks.erasure_tick.enqueue()  # immediate backend: verification runs now
    assert Sighting.objects.get().status == SightingStatus.REMOVED
