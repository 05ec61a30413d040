"""`anshim scan --ray`: the same results as a local run, on a private local Ray instance."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from anshim.erasure.models import EntrySource, Sighting
from anshim.erasure.scan import run_scan
from anshim.erasure.services import register_fingerprints
from anshim.fingerprint import fingerprint_bytes

from .media import picture_bytes
from .workflow_support import FakeSite, transformed

pytest.importorskip("ray")
pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def evidence_key(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")


def test_ray_scan_matches_local_scan(tmp_path: Path, bank: Any, make_case: Any) -> None:
    case = make_case()
    for seed in (800, 801, 802):
        register_fingerprints(bank, case=case, source=EntrySource.STAFF_EVIDENCE, actor=None,
                              fingerprints=fingerprint_bytes(picture_bytes(seed), dihedral=True))
    with FakeSite(tmp_path / "site") as site:
        site.put_image("a.jpg", transformed(800, "recompressed"))
        site.put_image("b.png", transformed(801, "rotated"))
        site.put_image("c.png", transformed(802, "resized"))
        for i in range(4):
            site.put_image(f"n{i}.png", picture_bytes(850 + i))
        site.put_page("p1.html", ["a.jpg", "n0.png"], ["p2.html"])
        site.put_page("p2.html", ["b.png", "n1.png", "a.jpg"], ["p3.html"])
        site.put_page("p3.html", ["c.png", "n2.png"])  # depth 2: beyond depth 1
        seed = site.put_page("index.html", ["n3.png"], ["p1.html", "p2.html"])

        def key(report: Any) -> set[tuple[str, str, int, int]]:
            return {(m.page_url, m.media_url, m.match.entry_id, m.match.distance)
                    for m in report.matches}

        local = run_scan([seed], depth=1, per_host_rate=200, record=False,
                         allowed_private_hosts=["127.0.0.1"])
        out = io.StringIO()
        call_command("scan", "--ray", "local", "--json", "--depth", "1", "--rate", "200",
                     "--allow-private-host", "127.0.0.1", seed,
                     stdout=out, stderr=io.StringIO())
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    ray_found = {(x["page_url"], x["media_url"], x["entry"], x["distance"]) for x in lines}
    assert len(local.matches) == 3  # a.jpg on p1 and p2, b.png on p2
    assert ray_found == key(local)
    assert Sighting.objects.count() == 3
