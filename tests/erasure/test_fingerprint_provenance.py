"""Issue 20, item 4: every stored fingerprint says which engine and decode made it; entries of
the old reduced decode are flagged and still found; one file gives one hash on every path.

Benign generated pictures only.
"""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from anshim.erasure.models import (
    ENGINE_LEGACY,
    ENGINE_PORTAL_JS,
    BankEntry,
    EntrySource,
    Fingerprint,
    FingerprintDecode,
    FingerprintKind,
)
from anshim.fingerprint import ImageFingerprint, fingerprint_bytes, hamming_distance
from anshim.fingerprint.types import DECODE_EXACT, DECODE_REDUCED, ENGINE_VERSION

pytestmark = pytest.mark.django_db


def _photo(seed: int = 7, size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A benign photo-like JPEG (PDQ quality 100): smooth random colour fields and grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    small = rng.uniform(0, 255, (h // 40 + 2, w // 40 + 2, 3)).astype(np.uint8)
    field = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC),
                       dtype=np.float32)
    field += rng.normal(0, 4, field.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(field, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=88)
    return buf.getvalue()


def _detailed_photo(seed: int = 0, block: int = 3) -> bytes:
    """A 2400 x 1600 JPEG with fine sharp-edged detail over smooth colour: the reduced decode
    (1/8 scale) hashes it a few bits from the exact one."""
    rng = np.random.default_rng(seed)
    w, h = 2400, 1600
    small = rng.integers(0, 256, (h // block + 1, w // block + 1, 3), dtype=np.uint8)
    detail = np.kron(small, np.ones((block, block, 1), np.uint8))[:h, :w]
    coarse = rng.uniform(0, 255, (h // 200 + 2, w // 200 + 2, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC),
                        dtype=np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(smooth * 0.8 + detail * 0.2, 0, 255).astype(np.uint8)).save(
        buf, "JPEG", quality=88)
    return buf.getvalue()


def _rows(entry: BankEntry) -> list[tuple[str, str, str]]:
    return list(Fingerprint.objects.filter(entry=entry).values_list("kind", "decode", "engine"))


def test_decode_names_are_the_engine_constants() -> None:
    assert FingerprintDecode.EXACT == DECODE_EXACT
    assert FingerprintDecode.REDUCED == DECODE_REDUCED


def test_server_registration_is_exact_and_names_the_engine(bank: Any) -> None:
    from anshim.erasure.services import register_image_robust

    entry = register_image_robust(bank, data=_photo(), source=EntrySource.STAFF_EVIDENCE,
                                  actor=None)
    rows = _rows(entry)
    assert {kind for kind, _, _ in rows} >= {"md5", "sha256", "pdq"}
    assert {(decode, engine) for _, decode, engine in rows} == {(DECODE_EXACT, ENGINE_VERSION)}


def test_portal_rows_name_the_browser_engine(bank: Any) -> None:
    from anshim.erasure.services import register_fingerprints
    from anshim.portal.services import _hash_values

    fp = fingerprint_bytes(_photo(3))
    assert isinstance(fp, ImageFingerprint)
    item = {"kind": "image", "md5": fp.md5, "pdq": fp.pdq, "quality": fp.quality}
    entry = register_fingerprints(bank, fingerprints=_hash_values(item),
                                  source=EntrySource.VICTIM_PORTAL, actor=None)
    assert set(_rows(entry)) == {(FingerprintKind.MD5, DECODE_EXACT, ENGINE_PORTAL_JS),
                                 (FingerprintKind.PDQ, DECODE_EXACT, ENGINE_PORTAL_JS)}


def test_imported_hashes_have_no_engine(bank: Any) -> None:
    from anshim.erasure.services import HashValue, register_fingerprints

    entry = register_fingerprints(bank, fingerprints=[HashValue(FingerprintKind.PDQ, "a" * 64)],
                                  source=EntrySource.IMPORT, actor=None)
    assert _rows(entry) == [(FingerprintKind.PDQ, DECODE_EXACT, "")]


def test_migration_marks_rows_made_before_provenance(bank: Any) -> None:
    from django.apps import apps

    from anshim.erasure.services import HashValue, register_fingerprints

    def entry(source: str, *kinds: str) -> BankEntry:
        rows = [HashValue(k, ("b" if k == FingerprintKind.PDQ else "c") * (
            64 if k != FingerprintKind.MD5 else 32)) for k in kinds]
        return register_fingerprints(bank, fingerprints=rows, source=source, actor=None)

    staff = entry(EntrySource.STAFF_EVIDENCE, FingerprintKind.PDQ, FingerprintKind.MD5)
    portal = entry(EntrySource.VICTIM_PORTAL, FingerprintKind.PDQ)
    imported = entry(EntrySource.IMPORT, FingerprintKind.PDQ)
    # As the rows were before migration 0004: the field defaults.
    Fingerprint.objects.update(decode=DECODE_EXACT, engine="")
    migration = importlib.import_module("anshim.erasure.migrations.0004_fingerprint_provenance")
    migration.mark_existing(apps, None)
    assert set(_rows(staff)) == {(FingerprintKind.PDQ, DECODE_REDUCED, ENGINE_LEGACY),
                                 (FingerprintKind.MD5, DECODE_EXACT, ENGINE_LEGACY)}
    assert _rows(portal) == [(FingerprintKind.PDQ, DECODE_EXACT, ENGINE_PORTAL_JS)]
    assert _rows(imported) == [(FingerprintKind.PDQ, DECODE_EXACT, "")]


def test_reduced_entries_are_found_by_the_reduced_query(bank: Any) -> None:
    """An entry registered by the old engine (reduced decode, stored as such) is found by a
    re-upload of the same file through the query made the same way."""
    from anshim.erasure.matcher import match_bytes
    from anshim.erasure.services import HashValue, register_fingerprints

    data = _detailed_photo()
    exact = fingerprint_bytes(data)
    reduced = fingerprint_bytes(data, min_side=160)
    assert isinstance(exact, ImageFingerprint) and isinstance(reduced, ImageFingerprint)
    assert reduced.decode == DECODE_REDUCED and exact.pdq != reduced.pdq
    entry = register_fingerprints(
        bank, fingerprints=[HashValue(FingerprintKind.PDQ, reduced.pdq, reduced.quality,
                                      decode=DECODE_REDUCED, engine=ENGINE_LEGACY)],
        source=EntrySource.STAFF_EVIDENCE, actor=None)
    hits = [r for r in match_bytes(data) if r.entry_id == entry.pk]
    assert hits and hits[0].distance == 0


def test_one_file_one_hash_on_every_path(bank: Any, tmp_path: Path) -> None:
    """`anshim hash`, the crawl's record, a registered entry and the partner lookup give the same
    hash for the same file, and it is pdqhash's."""
    pdqhash = pytest.importorskip("pdqhash")
    from anshim.crawl.media import fingerprint_media
    from anshim.erasure.services import register_image_robust
    from anshim.exchange.lookup import forget_shared_banks
    from anshim.exchange.lookup import lookup as partner_lookup
    from anshim.exchange.services import create_partner
    from anshim.exchange.tokens import forget_cached_tokens
    from anshim.fingerprint.cli import main as hash_main
    from anshim.fingerprint.pdq import bits_to_hex

    data = _photo(5)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    out = io.StringIO()
    assert hash_main([str(path), "--workers", "1"], stdout=out, stderr=io.StringIO()) == 0
    cli = json.loads(out.getvalue())
    assert cli["decode"] == "exact" and cli["engine"] == ENGINE_VERSION
    crawl = fingerprint_media(data, 1.0)
    assert crawl["pdq"] == cli["pdq"] and crawl["decode"] == "exact"
    bits, _ = pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert hamming_distance(cli["pdq"], bits_to_hex(bits.astype(bool))) == 0

    entry = register_image_robust(bank, data=data, source=EntrySource.STAFF_EVIDENCE, actor=None)
    stored = Fingerprint.objects.get(entry=entry, kind=FingerprintKind.PDQ, variant="original")
    assert stored.value == cli["pdq"]
    forget_cached_tokens()
    forget_shared_banks()
    partner, _ = create_partner("platform-provenance", scopes=("read", "lookup"),
                                banks=[bank.name], rate_per_minute=1000, burst=100)
    try:
        [matches] = partner_lookup(partner, [("pdq", cli["pdq"])])
    finally:
        forget_cached_tokens()
        forget_shared_banks()
    assert [(m.entry_id, m.distance) for m in matches][:1] == [(entry.pk, 0)]
