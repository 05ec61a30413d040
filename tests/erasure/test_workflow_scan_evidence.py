"""`anshim scan --json` on a loopback site, and signed evidence packages (JSON + PDF)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from anshim.erasure import evidence as ev_mod
from anshim.erasure.evidence_export import verify_package
from anshim.erasure.models import EntrySource, Evidence, Sighting
from anshim.erasure.scan import fingerprint_from_record
from anshim.erasure.services import register_fingerprints
from anshim.fingerprint import fingerprint_bytes

from .media import picture_bytes
from .workflow_support import FakeSite, transformed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def evidence_key(settings: Any, tmp_path: Path) -> None:
    settings.ANSHIM_EVIDENCE_KEY_FILE = str(tmp_path / "evidence.pem")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_scan_command_prints_json_lines_and_exports_signed_evidence(
        tmp_path: Path, bank: Any, make_case: Any) -> None:
    case = make_case()
    entry = register_fingerprints(bank, case=case, source=EntrySource.STAFF_EVIDENCE, actor=None,
                                  fingerprints=fingerprint_bytes(picture_bytes(900),
                                                                 dihedral=True))
    with FakeSite(tmp_path / "site") as site:
        site.put_image("a.jpg", transformed(900, "recompressed"))
        site.put_image("b.png", picture_bytes(901))
        (site.root / "img" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png")
        page = site.put_page("index.html", ["a.jpg", "b.png", "bad.png"])
        lines = [json.loads(x) for x in run("scan", "--json", "--depth", "0", "--rate", "200",
                                            "--allow-private-host", "127.0.0.1",
                                            page).splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["page_url"] == page and line["media_url"].endswith("/img/a.jpg")
    assert (line["bank"], line["entry"], line["case"]) == ("victims", entry.pk, case.code)
    assert line["distance"] <= 31 and line["new"] is True
    sighting = Sighting.objects.get()
    ev = Evidence.objects.get()
    assert ev_mod.verify_record(ev) and ev.media_sha256 and "<img" in ev.page_html

    out = tmp_path / "export"
    printed = run("evidence", "export", case.code, "--out", str(out))
    json_path = out / f"{case.code}-evidence.json"
    pdf_path = out / f"{case.code}-evidence.pdf"
    assert str(json_path) in printed and pdf_path.read_bytes().startswith(b"%PDF")
    doc = json.loads(json_path.read_text())
    assert doc["package"]["records"][0]["page_url"] == sighting.page_url
    # URLs and hashes of the media, never the media itself.
    assert {k for k in doc["package"]["records"][0] if "media" in k} == {"media_url",
                                                                         "media_sha256"}
    assert verify_package(json_path, ev_mod.public_key_bytes())
    assert "Signature OK" in run("evidence", "verify", str(json_path))

    # Any change breaks it: the package, a record, or the PDF.
    doc["package"]["records"][0]["distance"] = 0 if line["distance"] else 1
    json_path.write_text(json.dumps(doc))
    assert not verify_package(json_path)
    with pytest.raises(CommandError):
        run("evidence", "verify", str(json_path))


def test_export_unknown_case_is_a_clear_error(db: Any) -> None:
    with pytest.raises(CommandError, match="No case"):
        run("evidence", "export", "AN-NOPE")


def test_records_without_fingerprint_are_skipped() -> None:
    assert fingerprint_from_record({"type": "media", "gone": True}) is None
    assert fingerprint_from_record({"type": "media", "error": "CorruptMedia"}) is None
    fp = fingerprint_from_record({"sha256": "a" * 64, "md5": "b" * 32, "pdq": "c" * 64,
                                  "quality": 90})
    assert fp is not None and fp.pdq == "c" * 64
    video = fingerprint_from_record({"sha256": "a" * 64, "md5": "b" * 32, "vpdq": [
        {"frame_number": 0, "quality": 90, "pdq": "d" * 64, "timestamp": 0.0}]})
    assert video is not None and len(video.frames) == 1  # type: ignore[union-attr]
