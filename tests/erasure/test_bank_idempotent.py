"""Adding the same file to the same bank twice is idempotent (issue 17, item 9): re-running
`anshim bank add` after a crash adds only what is missing and reports the rest as already
registered, so no duplicated hashes and no second sighting for one image."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import translation

from anshim.erasure.models import BankChange, BankEntry, EntrySource, Fingerprint
from anshim.erasure.services import register_fingerprints
from anshim.fingerprint import fingerprint_bytes

from .media import picture_bytes

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_rerunning_bank_add_adds_only_what_is_missing(tmp_path: Path) -> None:
    run("bank", "create", "victims")
    files = []
    for i in range(3):
        path = tmp_path / f"p{i}.png"
        path.write_bytes(picture_bytes(60 + i))
        files.append(str(path))
    first = run("bank", "add", "--bank", "victims", *files[:2])  # "crashed" after two files
    assert first.count(": entry ") == 2
    counts = (BankEntry.objects.count(), Fingerprint.objects.count(), BankChange.objects.count())
    again = run("bank", "add", "--bank", "victims", *files)
    assert again.count("already registered") == 2 and again.count(": entry ") == 1
    assert BankEntry.objects.count() == counts[0] + 1
    md5s = list(Fingerprint.objects.filter(kind="md5").values_list("value", flat=True))
    assert len(md5s) == len(set(md5s)) == 3
    assert BankChange.objects.count() == counts[2] + 1


def test_the_service_returns_the_registered_entry(bank: Any, make_case: Any) -> None:
    case = make_case()
    fp = fingerprint_bytes(picture_bytes(70))
    first = register_fingerprints(bank, case=case, fingerprints=fp,
                                  source=EntrySource.STAFF_EVIDENCE, actor=None)
    second = register_fingerprints(bank, case=case, fingerprints=fp,
                                   source=EntrySource.STAFF_EVIDENCE, actor=None)
    assert second.pk == first.pk and second.already_registered and not first.already_registered
    # Another case's copy of the same file is that case's own entry (its consent, its
    # withdrawal); so is a file without a case.
    other = register_fingerprints(bank, case=make_case(), fingerprints=fp,
                                  source=EntrySource.STAFF_EVIDENCE, actor=None)
    loose = register_fingerprints(bank, fingerprints=fp, source=EntrySource.STAFF_EVIDENCE,
                                  actor=None)
    assert len({first.pk, other.pk, loose.pk}) == 3
    assert BankEntry.objects.count() == 3
