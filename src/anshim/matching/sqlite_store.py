"""A `BankStore` in one SQLite file, shared by several processes (multi-process engine tests,
`bench/bench_snapshot.py`). Django-free (stdlib ``sqlite3``); the app's store is the ORM one
(`anshim.erasure.bank_store`). Writers serialise on SQLite's write lock (``BEGIN IMMEDIATE``),
so change-log order is commit order, as the ORM store's change-log lock guarantees.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from anshim.matching.store import (
    ADD,
    CONFIG,
    EXACT_KINDS,
    PERCEPTUAL_KINDS,
    WITHDRAW,
    BankInfo,
    BankLoad,
    Change,
    ChangeKind,
    EntryFingerprint,
    ExactHit,
    LiveFingerprint,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS banks (bank_id INTEGER PRIMARY KEY, name TEXT NOT NULL,
    threshold INTEGER NOT NULL, allow_list INTEGER NOT NULL, enabled INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entries (entry_id INTEGER PRIMARY KEY, bank_id INTEGER NOT NULL,
    case_code TEXT, label TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fingerprints (fp_id INTEGER PRIMARY KEY, entry_id INTEGER NOT NULL,
    bank_id INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, quality INTEGER,
    variant TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fp_entry ON fingerprints (entry_id);
CREATE INDEX IF NOT EXISTS fp_value ON fingerprints (kind, value);
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_id INTEGER NOT NULL, entry_id INTEGER, op TEXT NOT NULL);
"""
#: Ids per IN (...) query (SQLite's bound-parameter limit is 32,766).
_PAGE = 5_000


def _op(value: str) -> ChangeKind:
    return ADD if value == ADD else WITHDRAW if value == WITHDRAW else CONFIG


class SqliteBankStore:
    """A writable `BankStore` in the SQLite file at `path` (created when missing)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._db.executemany(sql, rows)

    # --- writing (not part of BankStore) ---

    def add_bank(self, name: str, *, threshold: int = 31, allow_list: bool = False) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(
                "INSERT INTO banks (name, threshold, allow_list, enabled) VALUES (?, ?, ?, 1)",
                (name, threshold, int(allow_list)))
            bank_id = int(cur.lastrowid or 0)
            self._db.execute("INSERT INTO changes (bank_id, entry_id, op) VALUES (?, NULL, ?)",
                             (bank_id, CONFIG))
            self._db.execute("COMMIT")
            return bank_id

    def configure(self, bank_id: int, *, threshold: int | None = None,
                  enabled: bool | None = None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            if threshold is not None:
                self._db.execute("UPDATE banks SET threshold = ? WHERE bank_id = ?",
                                 (threshold, bank_id))
            if enabled is not None:
                self._db.execute("UPDATE banks SET enabled = ? WHERE bank_id = ?",
                                 (int(enabled), bank_id))
            self._db.execute("INSERT INTO changes (bank_id, entry_id, op) VALUES (?, NULL, ?)",
                             (bank_id, CONFIG))
            self._db.execute("COMMIT")

    def add_entry(self, bank_id: int, perceptual: Iterable[tuple[str, str, int | None, str]],
                  *, md5: str = "", sha256: str = "", case_code: str | None = None,
                  label: str = "") -> int:
        """Add an entry: `perceptual` is (kind, hex, quality, variant) per row."""
        return self.add_entries(bank_id, [(list(perceptual), md5, sha256, case_code, label)])[0]

    def add_entries(self, bank_id: int,
                    entries: Sequence[tuple[Sequence[tuple[str, str, int | None, str]], str, str,
                                            str | None, str]]) -> list[int]:
        """Add many entries in one transaction (bulk loads): (rows, md5, sha256, case, label)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM banks WHERE bank_id = ?",
                                    (bank_id,)).fetchone() is None:
                    raise KeyError(f"no bank {bank_id}")
                ids: list[int] = []
                for rows, md5, sha256, case_code, label in entries:
                    cur = self._db.execute(
                        "INSERT INTO entries (bank_id, case_code, label) VALUES (?, ?, ?)",
                        (bank_id, case_code, label))
                    entry_id = int(cur.lastrowid or 0)
                    ids.append(entry_id)
                    values = [(entry_id, bank_id, k, v.lower(), q, var) for k, v, q, var in rows]
                    values += [(entry_id, bank_id, k, v.lower(), None, "original")
                               for k, v in (("md5", md5), ("sha256", sha256)) if v]
                    self._write("INSERT INTO fingerprints (entry_id, bank_id, kind, value, "
                                "quality, variant) VALUES (?, ?, ?, ?, ?, ?)", values)
                    self._db.execute("INSERT INTO changes (bank_id, entry_id, op) "
                                     "VALUES (?, ?, ?)", (bank_id, entry_id, ADD))
                self._db.execute("COMMIT")
                return ids
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def withdraw(self, entry_id: int) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT bank_id FROM entries WHERE entry_id = ?",
                                   (entry_id,)).fetchone()
            if row is None:
                self._db.execute("ROLLBACK")
                raise KeyError(f"no entry {entry_id}")
            self._db.execute("DELETE FROM fingerprints WHERE entry_id = ?", (entry_id,))
            self._db.execute("DELETE FROM entries WHERE entry_id = ?", (entry_id,))
            self._db.execute("INSERT INTO changes (bank_id, entry_id, op) VALUES (?, ?, ?)",
                             (row[0], entry_id, WITHDRAW))
            self._db.execute("COMMIT")

    # --- BankStore ---

    def latest_seq(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes")
                       .fetchone()[0])

    def load(self, bank_ids: Collection[int] | None = None) -> BankLoad:
        with self._lock:
            self._db.execute("BEGIN")  # one read snapshot (WAL): seq and rows agree
            try:
                seq = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes")
                          .fetchone()[0])
                banks = [BankInfo(b, n, t, bool(a)) for b, n, t, a in self._db.execute(
                    "SELECT bank_id, name, threshold, allow_list FROM banks WHERE enabled = 1 "
                    "ORDER BY bank_id") if bank_ids is None or b in bank_ids]
                rows: dict[int, list[EntryFingerprint]] = {b.bank_id: [] for b in banks}
                kinds = ", ".join(f"'{k}'" for k in PERCEPTUAL_KINDS)
                for bank in banks:
                    rows[bank.bank_id] = [EntryFingerprint(*r) for r in self._db.execute(
                        "SELECT fp_id, entry_id, kind, value, quality, variant FROM "  # noqa: S608 - constant kinds
                        f"fingerprints WHERE bank_id = ? AND kind IN ({kinds}) ORDER BY fp_id",
                        (bank.bank_id,))]
            finally:
                self._db.execute("COMMIT")
        return BankLoad(seq, banks, rows)

    def changes_after(self, seq: int, upto: int) -> list[Change]:
        with self._lock:
            return [Change(s, b, e, _op(op)) for s, b, e, op in self._db.execute(
                "SELECT seq, bank_id, entry_id, op FROM changes WHERE seq > ? AND seq <= ? "
                "ORDER BY seq", (seq, upto))]

    def _in(self, sql: str, ids: Sequence[object], extra: Sequence[object] = (),
            ) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), _PAGE):
            page = ids[start:start + _PAGE]
            marks = ", ".join("?" * len(page))
            out.extend(self._db.execute(sql.format(marks=marks), [*extra, *page]).fetchall())
        return out

    def fingerprints_of(self, bank_id: int, entry_ids: Sequence[int]) -> list[EntryFingerprint]:
        kinds = ", ".join(f"'{k}'" for k in PERCEPTUAL_KINDS)
        with self._lock:
            rows = self._in(
                "SELECT fp_id, entry_id, kind, value, quality, variant FROM fingerprints "  # noqa: S608 - constant kinds
                f"WHERE bank_id = ? AND kind IN ({kinds}) AND entry_id IN ({{marks}}) "
                "ORDER BY fp_id", list(entry_ids), (bank_id,))
        return [EntryFingerprint(*r) for r in rows]

    def live(self, fp_ids: Collection[int]) -> dict[int, LiveFingerprint]:
        with self._lock:
            rows = self._in(
                "SELECT f.fp_id, f.entry_id, f.bank_id, b.name, b.threshold, b.allow_list, "
                "e.case_code, e.label, f.value, f.variant, f.quality FROM fingerprints f "
                "JOIN banks b ON b.bank_id = f.bank_id JOIN entries e ON e.entry_id = "
                "f.entry_id WHERE b.enabled = 1 AND f.fp_id IN ({marks})", list(fp_ids))
        return {int(r[0]): LiveFingerprint(
            r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8], r[9], r[10])
            for r in rows}

    def exact(self, pairs: Collection[tuple[str, str]]) -> list[ExactHit]:
        out: list[ExactHit] = []
        with self._lock:
            for kind in EXACT_KINDS:
                values = sorted({v for k, v in pairs if k == kind})
                if not values:
                    continue
                rows = self._in(
                    "SELECT f.kind, f.value, f.entry_id, f.bank_id, b.name, b.allow_list, "
                    "e.case_code, e.label FROM fingerprints f JOIN banks b ON b.bank_id = "
                    "f.bank_id JOIN entries e ON e.entry_id = f.entry_id WHERE b.enabled = 1 "
                    "AND f.kind = ? AND f.value IN ({marks})", values, (kind,))
                out.extend(ExactHit(str(r[0]), str(r[1]), int(r[2]),
                                    int(r[3]), str(r[4]), bool(r[5]), r[6], str(r[7]))
                           for r in rows)
        return out

    def video_frames(self, entry_ids: Collection[int], min_quality: int) -> dict[int, int]:
        with self._lock:
            rows = self._in(
                "SELECT entry_id, COUNT(DISTINCT value) FROM fingerprints WHERE kind = 'vpdq' "
                "AND variant = 'original' AND (quality IS NULL OR quality >= ?) "
                "AND entry_id IN ({marks}) GROUP BY entry_id", list(entry_ids), (min_quality,))
        return {int(e): int(n) for e, n in rows}
