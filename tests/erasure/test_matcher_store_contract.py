"""One contract for the matching core's storage interface (`anshim.matching.store.BankStore`),
run against every implementation: the in-memory store (engine tests, benchmarks), the
SQLite-file store (several processes) and the ORM store of the erasure app. The same tests
then run the matching core on each store, so the core behaves the same whichever store it
reads (issue 15 item 1)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import pytest

from anshim.matching.core import FileQuery, MatchingCore
from anshim.matching.sqlite_store import SqliteBankStore
from anshim.matching.store import BankStore, Change, EntryFingerprint, MemoryBankStore
from anshim.matching.strategy import QueryHash

# Both parameters get a database: pytest-django sets it up per test only for marked tests.
pytestmark = pytest.mark.django_db

Row = tuple[str, str, int | None, str]  # kind, hex, quality, variant


class Writer(Protocol):
    """Writes through each store's own write path (the erasure services for the ORM)."""

    store: BankStore

    def add_bank(self, name: str, *, threshold: int = 31, allow_list: bool = False) -> int: ...

    def add_entry(self, bank_id: int, rows: Iterable[Row], *, md5: str = "", sha256: str = "",
                  label: str = "") -> int: ...

    def withdraw(self, entry_id: int) -> None: ...

    def configure(self, bank_id: int, *, threshold: int | None = None,
                  enabled: bool | None = None) -> None: ...


class MemoryWriter:
    def __init__(self) -> None:
        self.store = MemoryBankStore()

    def add_bank(self, name: str, *, threshold: int = 31, allow_list: bool = False) -> int:
        return self.store.add_bank(name, threshold=threshold, allow_list=allow_list)

    def add_entry(self, bank_id: int, rows: Iterable[Row], *, md5: str = "", sha256: str = "",
                  label: str = "") -> int:
        return self.store.add_entry(bank_id, rows, md5=md5, sha256=sha256, label=label)

    def withdraw(self, entry_id: int) -> None:
        self.store.withdraw(entry_id)

    def configure(self, bank_id: int, *, threshold: int | None = None,
                  enabled: bool | None = None) -> None:
        self.store.configure(bank_id, threshold=threshold, enabled=enabled)


class SqliteWriter(MemoryWriter):
    """The SQLite-file store (shared by processes: engine multi-process tests, benchmarks)."""

    def __init__(self, path: Path) -> None:
        self.store = SqliteBankStore(path)  # type: ignore[assignment]


class OrmWriter:
    def __init__(self) -> None:
        from anshim.erasure.bank_store import OrmBankStore

        self.store = OrmBankStore()

    def add_bank(self, name: str, *, threshold: int = 31, allow_list: bool = False) -> int:
        from anshim.erasure.models import BankPurpose
        from anshim.erasure.services import create_bank

        purpose = BankPurpose.ALLOW_LIST if allow_list else BankPurpose.VICTIM_IMAGES
        return int(create_bank(name, purpose=purpose, threshold=threshold).pk)

    def add_entry(self, bank_id: int, rows: Iterable[Row], *, md5: str = "", sha256: str = "",
                  label: str = "") -> int:
        from anshim.erasure.models import Bank, EntrySource
        from anshim.erasure.services import HashValue, register_fingerprints

        values = [HashValue(kind, value, quality, variant) for kind, value, quality, variant
                  in rows]
        values += [HashValue(k, v) for k, v in (("md5", md5), ("sha256", sha256)) if v]
        entry = register_fingerprints(Bank.objects.get(pk=bank_id), fingerprints=values,
                                      source=EntrySource.STAFF_EVIDENCE, actor=None, label=label)
        return int(entry.pk)

    def withdraw(self, entry_id: int) -> None:
        from anshim.erasure.services import withdraw_entry

        withdraw_entry(entry_id, actor=None)

    def configure(self, bank_id: int, *, threshold: int | None = None,
                  enabled: bool | None = None) -> None:
        from anshim.erasure.models import Bank
        from anshim.erasure.services import update_bank

        changes: dict[str, Any] = {}
        if threshold is not None:
            changes["threshold"] = threshold
        if enabled is not None:
            changes["enabled"] = enabled
        update_bank(Bank.objects.get(pk=bank_id), **changes)


@pytest.fixture(params=["memory", "sqlite", "orm"])
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Writer:
    if request.param == "orm":
        return OrmWriter()
    if request.param == "sqlite":
        return SqliteWriter(tmp_path / "banks.sqlite3")
    return MemoryWriter()


_rnd = random.Random(15)


def code() -> str:
    return f"{_rnd.getrandbits(256):064x}"


def near(h: str, bits: int) -> str:
    """`h` with its first `bits` bits flipped (distance exactly `bits`)."""
    value = int(h, 16) ^ (((1 << bits) - 1) << (256 - bits))
    return f"{value:064x}"


def image(h: str, strategy: str = "original", quality: int = 100) -> FileQuery:
    return FileQuery(images=[QueryHash(h, quality, strategy)])


def test_the_change_log_records_adds_withdrawals_and_config_in_order(w: Writer) -> None:
    start = w.store.latest_seq()
    bank = w.add_bank("victims")
    entry = w.add_entry(bank, [("pdq", code(), 100, "original")])
    w.withdraw(entry)
    w.configure(bank, threshold=20)
    changes = w.store.changes_after(start, w.store.latest_seq())
    assert all(isinstance(c, Change) for c in changes)
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    ops = [(c.op, c.entry_id) for c in changes if c.bank_id == bank]
    assert ("add", entry) in ops and ("withdraw", entry) in ops
    assert ops.index(("add", entry)) < ops.index(("withdraw", entry)) < len(ops) - 1
    assert ops[-1] == ("config", None)
    assert w.store.changes_after(w.store.latest_seq(), w.store.latest_seq()) == []


def test_load_is_the_enabled_banks_with_their_perceptual_rows(w: Writer) -> None:
    a, b = w.add_bank("a", threshold=25), w.add_bank("b")
    h = code()
    entry = w.add_entry(a, [("pdq", h, 90, "original"), ("pdq", code(), 80, "crop-1-2-3-4")],
                        sha256="ab" * 32)
    w.add_entry(b, [("vpdq", code(), 70, "original")])
    w.configure(b, enabled=False)
    loaded = w.store.load()
    assert loaded.seq == w.store.latest_seq()
    [info] = [x for x in loaded.banks if x.bank_id in (a, b)]
    assert (info.bank_id, info.name, info.threshold, info.allow_list) == (a, "a", 25, False)
    rows = loaded.fingerprints[a]
    assert all(isinstance(r, EntryFingerprint) for r in rows)
    assert sorted((r.entry_id, r.kind, r.quality, r.variant) for r in rows) == [
        (entry, "pdq", 80, "crop-1-2-3-4"), (entry, "pdq", 90, "original")]
    assert h in {r.value for r in rows} and all(r.kind == "pdq" for r in rows)
    assert [x.bank_id for x in w.store.load([a]).banks] == [a]


def test_fingerprints_of_reads_the_rows_of_entries_since_a_checkpoint(w: Writer) -> None:
    bank = w.add_bank("victims")
    first = w.add_entry(bank, [("pdq", code(), 100, "original")])
    checkpoint = w.store.latest_seq()
    second = w.add_entry(bank, [("pdq", code(), 100, "original"), ("pdq", code(), 60, "trim")])
    added = [c.entry_id for c in w.store.changes_after(checkpoint, w.store.latest_seq())
             if c.op == "add"]
    assert added == [second]
    assert {r.entry_id for r in w.store.fingerprints_of(bank, added)} == {second}
    assert len(w.store.fingerprints_of(bank, [first, second])) == 3
    w.withdraw(second)
    assert w.store.fingerprints_of(bank, [second]) == []


def test_live_is_the_recheck_of_hit_entries(w: Writer) -> None:
    bank, allow = w.add_bank("victims", threshold=28), w.add_bank("ok", allow_list=True)
    entry = w.add_entry(bank, [("pdq", code(), 77, "trim")], label="lab")
    allowed = w.add_entry(allow, [("pdq", code(), 100, "original")])
    rows = w.store.load().fingerprints
    [fp] = rows[bank]
    [fp_allow] = rows[allow]
    live = w.store.live([fp.fp_id, fp_allow.fp_id, 10**9])
    assert set(live) == {fp.fp_id, fp_allow.fp_id}
    row = live[fp.fp_id]
    assert (row.entry_id, row.bank_id, row.bank_name, row.threshold, row.allow_list, row.label,
            row.value, row.variant, row.quality) == (entry, bank, "victims", 28, False, "lab",
                                                     fp.value, "trim", 77)
    assert live[fp_allow.fp_id].allow_list and live[fp_allow.fp_id].entry_id == allowed
    w.withdraw(entry)
    w.configure(allow, enabled=False)
    assert w.store.live([fp.fp_id, fp_allow.fp_id]) == {}


def test_exact_finds_digests_in_enabled_banks(w: Writer) -> None:
    bank, allow = w.add_bank("victims"), w.add_bank("ok", allow_list=True)
    sha, md5 = "cd" * 32, "ef" * 16
    entry = w.add_entry(bank, [("pdq", code(), 100, "original")], sha256=sha, md5=md5)
    w.add_entry(allow, [("pdq", code(), 100, "original")], sha256="01" * 32)
    hits = w.store.exact({("sha256", sha), ("md5", md5), ("sha256", "01" * 32),
                          ("md5", "00" * 16)})
    assert sorted((h.kind, h.entry_id, h.allow_list) for h in hits if h.bank_id == bank) == [
        ("md5", entry, False), ("sha256", entry, False)]
    assert [h.allow_list for h in hits if h.bank_id == allow] == [True]
    w.configure(bank, enabled=False)
    assert all(h.bank_id != bank for h in w.store.exact({("sha256", sha)}))


def test_video_frames_counts_distinct_good_original_frames(w: Writer) -> None:
    bank = w.add_bank("videos")
    f1, f2 = code(), code()
    entry = w.add_entry(bank, [("vpdq", f1, 100, "original"), ("vpdq", f1, 100, "original"),
                               ("vpdq", f2, 90, "original"), ("vpdq", code(), 10, "original"),
                               ("vpdq", code(), 100, "trim")])
    assert w.store.video_frames([entry], 50) == {entry: 2}


# --- the core on each store ------------------------------------------------------------------


def test_core_matches_and_reports_the_strategy(w: Writer) -> None:
    bank = w.add_bank("victims")
    h, crop = code(), code()
    entry = w.add_entry(bank, [("pdq", h, 100, "original"), ("pdq", crop, 100, "crop-5-5-5-5")])
    core = MatchingCore(w.store)
    [[plain], [cropped], [turned], none] = core.match_files([
        image(near(h, 10)), image(near(crop, 8)), image(near(h, 3), "dihedral-rotate90"),
        image(code())])
    assert (plain.entry_id, plain.distance, plain.strategy, plain.variant) == (
        entry, 10, "pdq", "original")
    assert (cropped.strategy, cropped.variant, cropped.distance) == ("crop", "crop-5-5-5-5", 8)
    assert turned.strategy == "dihedral" and none == []
    # A turned query is never compared with crop variants; a query hash under MIN_QUALITY is
    # not searched.
    assert core.match_files([image(near(crop, 2), "dihedral-flipx")]) == [[]]
    assert core.match_files([image(near(crop, 2), quality=40)]) == [[]]
    assert core.match_pdq_hashes([near(h, 31), near(h, 32)]) == [[core.match_pdq_hashes(
        [near(h, 31)])[0][0]], []]


def test_core_sees_a_withdrawal_without_polling_and_picks_up_additions(w: Writer) -> None:
    bank = w.add_bank("victims")
    h = code()
    entry = w.add_entry(bank, [("pdq", h, 100, "original")])
    still = MatchingCore(w.store, poll_interval=3600)  # another process that will not poll
    polling = MatchingCore(w.store)
    assert still.match_files([image(h)])[0] and polling.match_files([image(h)])[0]
    w.withdraw(entry)
    assert still.match_files([image(h)]) == [[]]  # the re-check drops it at once
    assert polling.match_files([image(h)]) == [[]]
    assert len(polling.banks[bank].pdq) == 0  # and the polling index forgot it
    later = code()
    again = w.add_entry(bank, [("pdq", later, 100, "original")])
    assert [r.entry_id for r in polling.match_files([image(later)])[0]] == [again]


def test_core_allow_lists_thresholds_and_disabled_banks(w: Writer) -> None:
    bank, allow = w.add_bank("victims"), w.add_bank("ok", threshold=10, allow_list=True)
    h, other = code(), code()
    w.add_entry(bank, [("pdq", h, 100, "original")])
    kept = w.add_entry(bank, [("pdq", other, 100, "original")], sha256="aa" * 32)
    w.add_entry(allow, [("pdq", near(h, 4), 100, "original")])
    core = MatchingCore(w.store)
    assert core.match_files([image(near(h, 2))]) == [[]]  # within the allow-list's 10 bits
    [[hit]] = core.match_files([image(near(other, 20))])
    assert hit.entry_id == kept
    [[exact]] = core.match_files([FileQuery(sha256="aa" * 32)])
    assert (exact.kind, exact.strategy, exact.distance) == ("sha256", "sha256", 0)
    w.configure(bank, threshold=15)
    assert core.match_files([image(near(other, 20))]) == [[]]
    w.configure(bank, enabled=False)
    assert core.match_files([image(other)]) == [[]]
