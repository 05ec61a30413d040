"""`anshim bank ...` and `anshim match` through call_command."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from anshim.erasure.models import Bank, BankEntry, BankPurpose, Fingerprint, Tombstone

from .media import animation_bytes, picture_bytes

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_create_list_set() -> None:
    assert "Created bank 'victims'" in run("bank", "create", "victims")
    run("bank", "create", "fp", "--purpose", "allow_list", "--threshold", "10")
    listing = run("bank", "list")
    assert "victims" in listing and "allow_list" in listing
    run("bank", "set", "victims", "--threshold", "20", "--disable")
    bank = Bank.objects.get(name="victims")
    assert (bank.threshold, bank.enabled) == (20, False)
    assert Bank.objects.get(name="fp").purpose == BankPurpose.ALLOW_LIST


@pytest.mark.parametrize("args", [
    ("bank", "create", "victims"),  # exists
    ("bank", "create", "wide", "--threshold", "65"),
    ("bank", "set", "nope", "--enable"),
    ("bank", "set", "victims"),
    ("bank", "add", "--bank", "nope", "x.png"),
    ("bank", "withdraw", "123456"),
])
def test_bad_input_is_a_command_error(args: tuple[str, ...]) -> None:
    run("bank", "create", "victims")
    with pytest.raises(CommandError):
        run(*args)


def test_add_files_with_case_and_consent(tmp_path: Path, make_case) -> None:
    run("bank", "create", "victims")
    case = make_case()
    a = write(tmp_path, "a.png", picture_bytes(1))
    v = write(tmp_path, "v.gif", animation_bytes([1, 2, 3]))
    out = run("bank", "add", "--bank", "victims", "--case", case.code.lower(), a, v)
    assert "(image)" in out and "(video)" in out
    assert BankEntry.objects.filter(case=case).count() == 2
    assert Fingerprint.objects.filter(kind="vpdq").exists()


def test_add_refused_without_consent(tmp_path: Path, make_case) -> None:
    run("bank", "create", "victims")
    case = make_case(consent=False)
    a = write(tmp_path, "a.png", picture_bytes(1))
    with translation.override("en"), pytest.raises(CommandError, match="Register fingerprints"):
        call_command("bank", "add", "--bank", "victims", "--case", case.code, a,
                     stdout=io.StringIO())
    assert not BankEntry.objects.exists()
    with pytest.raises(CommandError, match="No case"):
        run("bank", "add", "--bank", "victims", "--case", "AN-NONE-00", a)


def test_add_goes_on_after_a_bad_file_and_fails_at_the_end(tmp_path: Path) -> None:
    run("bank", "create", "victims")
    bad = write(tmp_path, "bad.png", b"not a picture")
    good = write(tmp_path, "good.png", picture_bytes(1))
    err = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("bank", "add", "--bank", "victims", bad, good, stdout=io.StringIO(),
                     stderr=err)
    assert info.value.returncode == 1
    assert "bad.png" in err.getvalue()
    assert BankEntry.objects.count() == 1


def test_import_export_withdraw(tmp_path: Path) -> None:
    run("bank", "create", "victims")
    good = tmp_path / "list.csv"
    good.write_text("hash,kind,label\n" + "a" * 64 + ",pdq,one\n" + "b" * 32 + ",,two\n")
    assert "Imported 2 entries" in run("bank", "import", "--bank", "victims", str(good))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"pdq": "c" * 64}) + "\n" + "{oops\n")
    with pytest.raises(CommandError) as info:
        run("bank", "import", "--bank", "victims", str(bad))
    assert "Nothing imported" in str(info.value) and "line 2: not valid JSON" in str(info.value)
    assert BankEntry.objects.count() == 2
    exported = run("bank", "export", "--bank", "victims", "--format", "jsonl")
    rows = [json.loads(line) for line in exported.splitlines()]
    assert [r["label"] for r in rows] == ["one", "two"]
    target = tmp_path / "out.csv"
    run("bank", "export", "--bank", "victims", "--format", "csv", "--output", str(target))
    assert target.read_text().startswith("hash,kind,label,entry_id\n")
    ids = [str(r["entry_id"]) for r in rows]
    out = run("bank", "withdraw", "--reason", "test", *ids)
    assert out.count("Withdrew entry") == 2
    assert not BankEntry.objects.exists() and Tombstone.objects.count() == 2
    assert "already withdrawn" in run("bank", "withdraw", ids[0])


def test_match_json(tmp_path: Path, make_case) -> None:
    run("bank", "create", "victims")
    case = make_case()
    run("bank", "add", "--bank", "victims", "--case", case.code,
        write(tmp_path, "banked.png", picture_bytes(1)))
    entry = BankEntry.objects.get()
    near = write(tmp_path, "near.jpg", picture_bytes(1, edit=4, fmt="JPEG"))
    same = write(tmp_path, "same.png", picture_bytes(1))
    other = write(tmp_path, "other.png", picture_bytes(2))
    out = run("match", "--json", near, same, other)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [list(line) for line in lines] == [
        ["path", "bank", "entry", "case", "kind", "distance", "strategy"]] * 2
    assert lines[0] | {"distance": None} == {
        "path": near, "bank": "victims", "entry": entry.pk, "case": case.code, "kind": "pdq",
        "distance": None, "strategy": "pdq"}
    assert 0 < lines[0]["distance"] <= 31
    assert lines[1] == {"path": same, "bank": "victims", "entry": entry.pk, "case": case.code,
                        "kind": "sha256", "distance": 0, "strategy": "sha256"}


def test_match_reports_bad_files_and_exits_1(tmp_path: Path) -> None:
    run("bank", "create", "victims")
    run("bank", "add", "--bank", "victims", write(tmp_path, "banked.png", picture_bytes(1)))
    bad = write(tmp_path, "bad.png", b"\x89PNG\r\n\x1a\nbroken")
    good = write(tmp_path, "good.png", picture_bytes(1))
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("match", "--json", bad, good, stdout=out)
    assert info.value.returncode == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["path"] == bad and lines[0]["error"] and lines[0]["message"]
    assert lines[1]["path"] == good and lines[1]["kind"] == "sha256"


def test_match_table_and_directories(tmp_path: Path) -> None:
    run("bank", "create", "victims")
    run("bank", "add", "--bank", "victims", write(tmp_path, "banked.png", picture_bytes(1)))
    folder = tmp_path / "inbox"
    folder.mkdir()
    write(folder, "x.png", picture_bytes(1, edit=4))
    write(folder, "y.png", picture_bytes(3))
    out = run("match", str(folder))
    assert "PATH" in out.splitlines()[0]
    assert "x.png" in out and "victims" in out and "(no match)" in out


def test_withdrawn_entry_no_longer_matched_by_the_command(tmp_path: Path) -> None:
    run("bank", "create", "victims")
    banked = write(tmp_path, "banked.png", picture_bytes(1))
    run("bank", "add", "--bank", "victims", banked)
    assert run("match", "--json", banked)
    run("bank", "withdraw", str(BankEntry.objects.get().pk))
    assert run("match", "--json", banked) == ""
