"""Hash list import (all or nothing, line numbers) and export (round trip)."""

from __future__ import annotations

import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from anshim.erasure import services
from anshim.erasure.hashlists import (
    HashListError,
    export_hash_list,
    import_hash_list,
    parse_hash_list,
)
from anshim.erasure.matcher import BankMatcher
from anshim.erasure.models import Bank, BankChange, BankEntry, ChangeOp, EntrySource, Fingerprint
from anshim.erasure.services import HashValue, register_fingerprints
from anshim.fingerprint.engine import fingerprint_bytes

from .media import picture_bytes

PDQ_A = "a" * 64
PDQ_B = "0f" * 32
MD5 = "0123456789abcdef" * 2
SHA = "9" * 64

pytestmark = pytest.mark.django_db


def lines(text: str) -> list[str]:
    return io.StringIO(text).readlines()


def test_csv_with_header_and_auto_detected_kinds(bank: Bank) -> None:
    text = f"hash,kind,label\n{PDQ_A},,first\n{MD5},,\n{SHA},sha256,third\n\n{PDQ_B},pdq,x\n"
    result = import_hash_list(bank, lines(text), fmt="csv")
    assert (result.added, result.skipped) == (4, 0)
    got = set(Fingerprint.objects.values_list("kind", "value"))
    assert got == {("pdq", PDQ_A), ("md5", MD5), ("sha256", SHA), ("pdq", PDQ_B)}
    assert set(BankEntry.objects.values_list("label", "source")) == {
        ("first", "import"), ("", "import"), ("third", "import"), ("x", "import")}
    assert BankChange.objects.filter(op=ChangeOp.ADD).count() == 4


def test_csv_without_header_and_upper_case(bank: Bank) -> None:
    result = import_hash_list(bank, lines(f"{PDQ_A.upper()}\n{MD5},md5,label\n"), fmt="csv")
    assert result.added == 2
    assert Fingerprint.objects.filter(value=PDQ_A).exists()


def test_jsonl(bank: Bank) -> None:
    text = (json.dumps({"pdq": PDQ_A, "label": "a"}) + "\n\n"
            + json.dumps({"md5": MD5, "sha256": SHA}) + "\n")
    result = import_hash_list(bank, lines(text), fmt="jsonl")
    assert result.added == 2
    entry = BankEntry.objects.get(pk=result.entry_ids[1])
    assert set(entry.fingerprints.values_list("kind", flat=True)) == {"md5", "sha256"}


@pytest.mark.parametrize(("fmt", "text", "expected"), [
    ("csv", f"hash,kind,label\n{PDQ_A},,\n{PDQ_A[:-1]},pdq,\nzz,,\n{MD5},md5,\n",
     ["line 3: not a 64-hex PDQ hash", "line 4: not a PDQ (64 hex) or MD5 (32 hex) hash"]),
    ("csv", f"{PDQ_A},sha1,\n{MD5},pdq,\n,,label\n{MD5},md5,{'x' * 201}\n",
     ["line 1: unknown hash kind “sha1” (pdq, md5 or sha256)", "line 2: not a 64-hex PDQ hash",
      "line 3: the hash is missing", "line 4: the label is longer than 200 characters"]),
    ("jsonl", f'{{"pdq": "{PDQ_A}"}}\n{{"pdq": 5}}\nnot json\n[1]\n{{"label": "x"}}\n'
              f'{{"md5": "{PDQ_A}"}}\n',
     ["line 2: not a 64-hex PDQ hash", "line 3: not valid JSON", "line 4: not a JSON object",
      "line 5: no hash (pdq, md5 or sha256)", "line 6: not a 32-hex MD5 hash"]),
])
def test_malformed_lines_refuse_the_whole_import(bank: Bank, fmt: str, text: str,
                                                 expected: list[str]) -> None:
    with translation.override("en"), pytest.raises(HashListError) as info:
        import_hash_list(bank, lines(text), fmt=fmt)
    with translation.override("en"):
        assert info.value.lines == expected
    assert not BankEntry.objects.exists()
    assert not BankChange.objects.filter(op=ChangeOp.ADD).exists()


def test_error_report_is_capped(bank: Bank) -> None:
    with translation.override("en"), pytest.raises(HashListError) as info:
        parse_hash_list(["bad\n"] * 50, "csv")
    assert len(info.value.errors) == 20 and info.value.total == 50
    with translation.override("en"):
        assert info.value.lines[-1] == "… and 30 more malformed lines"


def test_error_messages_are_translated() -> None:
    with translation.override("ko"), pytest.raises(HashListError) as info:
        parse_hash_list(["zz\n"], "csv")
    assert info.value.lines[0].startswith("1")
    assert "line" not in info.value.lines[0]


def test_duplicates_are_skipped(bank: Bank) -> None:
    register_fingerprints(bank, fingerprints=[HashValue("pdq", PDQ_A)], source="import",
                          actor=None)
    result = import_hash_list(bank, lines(f"{PDQ_A}\n{PDQ_B}\n{PDQ_B}\n"), fmt="csv")
    assert (result.added, result.skipped) == (1, 2)
    other = services.create_bank("other")
    assert import_hash_list(other, lines(f"{PDQ_A}\n"), fmt="csv").added == 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_round_trip(bank: Bank, make_case, fmt: str) -> None:
    case = make_case()
    register_fingerprints(bank, case=case, fingerprints=fingerprint_bytes(picture_bytes(1)),
                          source=EntrySource.STAFF_EVIDENCE, actor=None, label="evidence 1")
    import_hash_list(bank, lines(f"{MD5},md5,partner-7\n"), fmt="csv")
    out = io.StringIO()
    assert export_hash_list(bank, out, fmt=fmt) == 2
    text = out.getvalue()
    assert case.code not in text
    copy = services.create_bank("copy", purpose="partner_list")
    result = import_hash_list(copy, lines(text), fmt=fmt, source=EntrySource.PARTNER)
    assert result.added == 2

    def content(b: Bank) -> set[tuple[str, frozenset[tuple[str, str]]]]:
        return {(e.label, frozenset(e.fingerprints.values_list("kind", "value")))
                for e in b.entries.all()}

    assert content(copy) == content(bank)


def test_export_formats(bank: Bank) -> None:
    result = import_hash_list(bank, lines(json.dumps({"pdq": PDQ_A, "md5": MD5, "label": "l"})),
                              fmt="jsonl")
    entry_id = result.entry_ids[0]
    out = io.StringIO()
    export_hash_list(bank, out, fmt="csv")
    assert out.getvalue() == (f"hash,kind,label,entry_id\n{PDQ_A},pdq,l,{entry_id}\n"
                              f"{MD5},md5,l,{entry_id}\n")
    out = io.StringIO()
    export_hash_list(bank, out, fmt="jsonl")
    assert json.loads(out.getvalue()) == {"entry_id": entry_id, "label": "l", "md5": MD5,
                                          "pdq": PDQ_A}


def test_hundred_thousand_lines_import_quickly_and_match(bank: Bank) -> None:
    import random

    rng = random.Random(7)
    hashes = list(dict.fromkeys(f"{rng.getrandbits(256):064x}" for _ in range(100_000)))
    text = "hash,kind,label\n" + "".join(f"{h},pdq,p{i}\n" for i, h in enumerate(hashes))
    # Fast means batched: a bounded number of statements, never one per line (no timed test).
    with CaptureQueriesContext(connection) as queries:
        result = import_hash_list(bank, lines(text), fmt="csv")
    assert result.added == len(hashes)
    print("statements for 100,000 lines:", len(queries))
    assert len(queries) < 1_000, len(queries)
    query = hashes[12345][:-1] + ("0" if hashes[12345][-1] != "0" else "1")
    matcher = BankMatcher()
    [hits] = matcher.match_pdq_hashes([query])
    assert [h.entry_id for h in hits] == [result.entry_ids[12345]]
