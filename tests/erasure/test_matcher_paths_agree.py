"""`anshim match`, the crawl's scan records and the partner lookup go through one matching core
(issue 15 item 1): for the same files they report the same entries, distances and strategies.

Benign generated pictures only (blobs and stripes, made in memory).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from anshim.crawl.media import fingerprint_media
from anshim.erasure.matcher import get_matcher, match_bytes
from anshim.erasure.models import Bank
from anshim.erasure.scan import ScanReport, match_records
from anshim.erasure.services import register_image_robust
from anshim.exchange.lookup import _pdq_matches
from anshim.fingerprint.engine import fingerprint_bytes

from .test_robust_integration import _cropped, _encode, _picture, _screenshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def files(bank: Bank, tmp_path: Path) -> dict[str, tuple[Path, bytes]]:
    for seed in (8, 9):
        register_image_robust(bank, data=_encode(_picture(seed)), case=None,
                              source="staff_evidence", actor=None, label=f"p{seed}")
    made = {
        "identical": _encode(_picture(8)),
        "jpeg": _encode(_picture(9), "JPEG"),
        "cropped": _encode(_cropped(_picture(8)), "JPEG"),
        "mirrored": _encode(_picture(9).transpose(0), "JPEG"),
        "screenshot": _encode(_screenshot(_picture(8)), "PNG"),
        "unrelated": _encode(_picture(31), "JPEG"),
    }
    out = {}
    for name, data in made.items():
        path = tmp_path / f"{name}.{'png' if data[:4] == b'\x89PNG' else 'jpg'}"
        path.write_bytes(data)
        out[name] = (path, data)
    return out


Found = set[tuple[int, str, int]]  # (entry, strategy, distance)


def _by_command(files: dict[str, tuple[Path, bytes]]) -> dict[str, Found]:
    out = io.StringIO()
    call_command("match", "--json", *[str(p) for p, _ in files.values()], stdout=out)
    names = {str(p): name for name, (p, _) in files.items()}
    found: dict[str, Found] = {name: set() for name in files}
    for line in out.getvalue().splitlines():
        row = json.loads(line)
        found[names[row["path"]]].add((row["entry"], row["strategy"], row["distance"]))
    return found


def _by_scan(files: dict[str, tuple[Path, bytes]]) -> dict[str, Found]:
    records: list[dict[str, Any]] = []
    for name, (_, data) in files.items():
        rec = fingerprint_media(data, 1.0)  # what a crawl worker makes of the fetched bytes
        records.append({"type": "media", "url": name, **rec})
    found: dict[str, Found] = {name: set() for name in files}
    for rec, m in match_records(records, ScanReport()):
        found[rec["url"]].add((m.entry_id, m.strategy, m.distance))
    return found


def test_match_command_and_scan_records_agree(files: dict[str, tuple[Path, bytes]]) -> None:
    by_bytes = {name: {(m.entry_id, m.strategy, m.distance) for m in match_bytes(data)}
                for name, (_, data) in files.items()}
    assert _by_command(files) == by_bytes
    assert _by_scan(files) == by_bytes
    strategies = {name: {s for _, s, _ in found} for name, found in by_bytes.items()}
    # The files exercise the strategies, not only exact copies.
    assert strategies["identical"] == {"sha256"}
    assert strategies["jpeg"] == {"pdq"}
    assert strategies["cropped"] == {"crop"}
    assert strategies["mirrored"] == {"dihedral"}
    assert strategies["screenshot"] == {"screenshot"}
    assert by_bytes["unrelated"] == set()


def test_the_partner_lookup_agrees_with_the_core(bank: Bank,
                                                 files: dict[str, tuple[Path, bytes]]) -> None:
    """A partner sends a bare PDQ hash: its lookup reports what the core finds for that hash,
    and for files found by their plain PDQ, what `anshim match` reports."""
    for name, (_, data) in files.items():
        fp = fingerprint_bytes(data)
        [partner] = _pdq_matches([bank.pk], [fp.pdq], None)
        [core] = get_matcher().match_pdq_hashes([fp.pdq], bank_ids={bank.pk})
        assert partner == [(m.entry_id, m.bank, m.distance) for m in core], name
        if name == "jpeg":
            [file_match] = match_bytes(data)
            [(entry, _, distance)] = partner
            assert (entry, distance) == (file_match.entry_id, file_match.distance)
            assert core[0].strategy == file_match.strategy == "pdq"
        if name == "unrelated":
            assert partner == []
